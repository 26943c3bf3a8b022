"""The NumPy code of PReLU: ``np.where`` forward and back, the slope's gradient a sum over
every axis but the channels', checked against a small derivation before any code is
written."""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.derivation import derive
from symbackprop.kinds.prelu.spec import PReLU
from symbackprop.render.codegen import NUMPY, NumpyKind, PlanError, common_context


def _check_prelu_derivation(layer) -> None:
    """The rules the template uses give every derived element, checked at numbers on each
    side of 0 (and at 0): dL/dx = g if x > 0 else w g; dL/dw_c = sum of g x where x <= 0."""
    # The rules do not depend on the channel count: two channels show the per-channel sums.
    instance = PReLU(1 if layer.num_parameters == 1 else 2, layer.init)
    shape = (2, 2, 2, 2)
    derivation = derive(instance, shape[1:], shape[0])
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    x.flat[0] = 0.0
    values = {"x": x, "g": rng.standard_normal(shape),
              "w": rng.standard_normal(instance.num_parameters)}
    slope = values["w"].reshape(1, -1, 1, 1)
    rules = {"x": np.where(x > 0, values["g"], slope * values["g"]),
             "w": np.where(x > 0, 0, x * values["g"]).sum(axis=(0, 2, 3))}
    if instance.num_parameters == 1:
        rules["w"] = np.array([rules["w"].sum()])
    symbols = {symbol: values[name][index] for name, array in
               (("x", derivation.x), ("g", derivation.g), ("w", derivation.w))
               for index, symbol in np.ndenumerate(np.array(array.tolist(), dtype=object))}
    for name, rule in rules.items():
        derived = np.array(derivation.grads[name].tolist(), dtype=object)
        for index in np.ndindex(*derived.shape):
            value = float(sympy.sympify(derived[index]).xreplace(symbols))
            if not np.isclose(value, rule[index], rtol=1e-12, atol=1e-12):
                raise PlanError(f"PReLU's rule for d{name} differs from the derivation at {index}")


def _prelu_context(layer, style: str, strategy: str | None) -> dict:
    _check_prelu_derivation(layer)
    return dict(
        common_context(layer),
        parameters_signature="weight", gradients_signature="grad_x, grad_weight",
        template="prelu/prelu.py.j2",  # both styles: the code is the rule
        exports=["forward", "backward", "initial_weight"],
        num_parameters=layer.num_parameters, init=repr(float(layer.init)),
        per_channel=layer.num_parameters > 1)


def _chain_shape(number: int, layer, rank: int, channels) -> tuple:
    if layer.num_parameters == 1:
        return [], rank, channels
    where = f"layer {number} ({layer.describe()})"
    if channels is not None and channels != layer.num_parameters:
        raise ValueError(f"{where} takes num_parameters = {layer.num_parameters} channels, "
                         f"but the layer before it gives {channels}")
    lines = [] if channels is not None else [
        f"_expect_channels(shape, {layer.num_parameters}, {number})"]
    return lines, rank, layer.num_parameters


NUMPY.register(PReLU, NumpyKind(
    context=_prelu_context,
    backward_rule=("; dL/dw{number} = sum of delta{number} * a{previous} where "
                   "a{previous} <= 0", ""),
    chain_shape=_chain_shape,
    elementwise=True,
))
