"""The NumPy code of the fully connected layer: matrix products, checked against a
small derivation before any code is written."""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.derivation import derive
from symbackprop.kinds.linear.spec import Linear
from symbackprop.render.codegen import NUMPY, NumpyKind, PlanError, common_context


def _linear_context(layer, style: str, strategy: str | None) -> dict:
    # The matrix forms do not depend on the sizes: check them on at most 3 -> 2 features.
    instance = Linear(min(layer.in_features, 3), min(layer.out_features, 2), bias=layer.bias)
    derivation = derive(instance, None, 2)
    _check_linear_derivation(derivation)
    return dict(
        common_context(layer),
        template="linear/linear.py.j2",  # both styles: the code is the rule
        exports=["forward", "backward"],
        in_features=layer.in_features,
        out_features=layer.out_features,
        bias=layer.bias,
        weight_shape=str(layer.weight_shape),
        derived_layer="this layer" if instance == layer else
        f"a {instance.in_features} -> {instance.out_features} version of this layer (the index "
        f"rules do not depend on the sizes) with a batch of 2",
    )


def _check_linear_derivation(derivation) -> None:
    """The matrix form the template uses rebuilds every derived element (a small proof)."""
    x, w, g = (np.array(derivation.x.tolist(), dtype=object),
               np.array(derivation.w.tolist(), dtype=object),
               np.array(derivation.g.tolist(), dtype=object))
    forms = {"x": g @ w, "w": g.T @ x, "z": x @ w.T}
    if "b" in derivation.params:
        forms["z"] = forms["z"] + np.array(derivation.b.tolist(), dtype=object)
        forms["b"] = g.sum(axis=0)
    truth = {"z": derivation.z, **derivation.grads}
    for name, form in forms.items():
        for index in np.ndindex(*form.shape):
            if sympy.expand(form[index] - truth[name][index]) != 0:
                raise PlanError(f"the matrix form of {name} differs from the derivation at "
                                f"{index}")


def _chain_shape(number: int, layer, rank: int, channels) -> tuple:
    return [f"_expect_features(shape, {layer.in_features}, {number})",
            f"shape = (shape[0], {layer.out_features})"], 2, None


NUMPY.register(Linear, NumpyKind(
    context=_linear_context,
    backward_rule=("; dL/dw{number} = delta{number}^T a{previous}{bias}",
                   ", dL/db{number} = sum of delta{number}"),
    chain_shape=_chain_shape,
    input_shape=lambda layer: ("N", layer.in_features),
))
