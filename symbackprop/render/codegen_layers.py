"""Render stage (NumPy) for pooling, activation, flatten and fully connected layers.

The same pipeline as :mod:`~symbackprop.render.codegen` for convolutions: derive a small
instance, read what the template needs off the derived expressions, check it
against them, and hand plain numbers and strings to a template.

- Pooling: :func:`read_pool_plan` reads, from the derived windows (the arguments
  of ``max(...)`` or the terms of the mean), which padded rows and columns each
  window offset ``(m, k)`` meets: a :class:`PoolPlan`; :func:`check_pool_plan`
  proves that the plan rebuilds every ``z`` and every ``dL/dx`` of the derivation,
  window order (the tie rule) and divisors included.
- Activations: the NumPy expressions of ``f`` and ``f'`` are data in
  :data:`NUMPY_ACTIVATIONS`, next to the SymPy rules of
  :data:`~symbackprop.core.local_rules.ACTIVATIONS`; :func:`check_activation_code`
  evaluates both at sample points, ``net = 0`` included, before any code is written.
- Flatten and fully connected layers: one reshape, matrix products.

Each generator registers itself with :func:`~symbackprop.render.codegen.register_generator`.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import sympy

from symbackprop.core.derivation import Derivation, derive
from symbackprop.core.naming import element_symbol, parse_element
from symbackprop.kinds.activation.rules import ACTIVATIONS
from symbackprop.kinds.activation.spec import LeakyReLU, ReLU, Sigmoid, Tanh
from symbackprop.kinds.flatten.spec import Flatten
from symbackprop.kinds.linear.spec import Linear
from symbackprop.kinds.pool2d.rules import IsWindowMax, WindowMax
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d
from symbackprop.render.codegen import (
    PlanError,
    common_context,
    offset_slices,
    record_meeting,
    register_generator,
    register_instance,
)
from symbackprop.render.templating import python_environment

__all__ = [
    "PoolPlan",
    "WindowOffsetSlice",
    "representative_pool_instance",
    "read_pool_plan",
    "check_pool_plan",
    "pool_plan",
    "NUMPY_ACTIVATIONS",
    "check_activation_code",
    "layer_context",
]


# -- pooling -----------------------------------------------------------------------

def _minimal_pool_length(kernel: int, stride: int, before: int, after: int) -> int:
    """Smallest input length with two windows that hold no padding (to read a slice off).

    Window ``i`` spans rows ``i*stride - before`` to ``i*stride - before + kernel - 1``;
    the first without padding is ``i0 = ceil(before / stride)``, and window ``i0 + 1``
    is inside too (and exists: its end bounds the output size) from the length
    ``(i0 + 1)*stride - before + kernel`` on.  Closed form, whatever the sizes.
    """
    first_inside = -(-before // stride)
    return max(1, (first_inside + 1) * stride - before + kernel)


def representative_pool_instance(layer) -> tuple[int, int]:
    """``(H, W)`` of the one-channel instance :func:`pool_plan` derives.

    The smallest input with two windows along each axis that hold no padding, plus
    the padded windows around them.
    """
    top, bottom, left, right = layer.padding
    return (_minimal_pool_length(layer.kernel_size[0], layer.stride[0], top, bottom),
            _minimal_pool_length(layer.kernel_size[1], layer.stride[1], left, right))


def _pool_instance(layer, max_terms) -> tuple:
    return layer, layer.input_shape(representative_pool_instance(layer))


@dataclass(frozen=True)
class WindowOffsetSlice:
    """The strided slice of the padded input that window offset ``(m, k)`` meets.

    Window ``(i, j)`` holds padded row ``first_row + row_step*i`` and padded column
    ``first_col + col_step*j`` at its offset ``(m, k)``.
    """

    window_offset: tuple[int, int]
    first_row: int
    row_step: int
    first_col: int
    col_step: int


@dataclass(frozen=True)
class PoolPlan:
    """What the pooling templates need, read off a
    :class:`~symbackprop.core.derivation.Derivation`."""

    layer: object
    derivation: Derivation
    offsets: tuple[WindowOffsetSlice, ...]

    @property
    def steps(self) -> tuple[int, int]:
        steps = {(offset.row_step, offset.col_step) for offset in self.offsets}
        if len(steps) != 1:
            raise PlanError(f"window offsets step through the input differently: {sorted(steps)}")
        return steps.pop()


def _derived_windows(derivation) -> dict:
    """``{(n, c, i, j): [input element indices in row-major order]}`` from the derived ``z``."""
    windows = {}
    for index in np.ndindex(*derivation.output_shape):
        element = derivation.z[index]
        if isinstance(element, WindowMax):
            symbols = list(element.args[0])
        else:
            symbols = [term.as_coeff_Mul()[1] for term in sympy.Add.make_args(element)]
        windows[index] = sorted(parse_element(symbol)[1] for symbol in symbols)
    return windows


def read_pool_plan(derivation: Derivation) -> PoolPlan:
    """Read every window offset's slice off the windows that contain no padding.

    In such a window the ``KH*KW`` elements, in row-major order, are the offsets
    ``(m, k)``; the padded rows and columns of one offset over the windows must lie
    on one strided slice.
    """
    layer = derivation.layer
    top, _, left, _ = layer.padding
    kernel_h, kernel_w = layer.kernel_size
    rows, cols = defaultdict(dict), defaultdict(dict)
    for (_, _, i, j), elements in _derived_windows(derivation).items():
        if len(elements) != kernel_h * kernel_w:
            continue  # a window with padding: checked below, not read
        for position, (_, _, row, col) in enumerate(elements):
            record_meeting(rows, cols, "window", divmod(position, kernel_w), (i, j),
                           (row + top, col + left))
    offsets = offset_slices(rows, cols, itertools.product(range(kernel_h), range(kernel_w)),
                            "window", WindowOffsetSlice)
    return PoolPlan(layer=layer, derivation=derivation, offsets=offsets)


def check_pool_plan(plan: PoolPlan) -> None:
    """Raise :class:`~symbackprop.render.codegen.PlanError` unless the plan rebuilds the derivation.

    From the slices alone it writes every window (real elements in row-major
    order, which decides ties), every ``z`` (the first maximum, or the sum over
    the divisor) and every ``dL/dx``, and compares them with SymPy's.
    """
    derivation = plan.derivation
    layer = derivation.layer
    batch, channels, height, width = derivation.input_shape
    top, _, left, _ = layer.padding
    expected_grad = defaultdict(Counter)
    for n, c, i, j in np.ndindex(*derivation.output_shape):
        window = []
        for offset in plan.offsets:
            row = offset.first_row + offset.row_step * i - top
            col = offset.first_col + offset.col_step * j - left
            if 0 <= row < height and 0 <= col < width:
                window.append(element_symbol("x", (n, c, row, col)))
        g = element_symbol("g", (n, c, i, j))
        index = sympy.Tuple(n, c, i, j)
        if isinstance(layer, MaxPool2d):
            z = WindowMax(sympy.Tuple(*window), index)
            for position, element in enumerate(window):
                expected_grad[element][g * IsWindowMax(position, sympy.Tuple(*window), index)] += 1
        else:
            divisor = len(plan.offsets) if layer.count_include_pad else len(window)
            z = sympy.Add(*window) / divisor
            for element in window:
                expected_grad[element][g / divisor] += 1
        if derivation.z[n, c, i, j] != z:
            raise PlanError(f"the window-offset slices do not reproduce z{[n, c, i, j]} = "
                            f"{derivation.z[n, c, i, j]}, they give {z}")
    for index in np.ndindex(*derivation.input_shape):
        terms = Counter(term for term in sympy.Add.make_args(derivation.grad_x[index]) if term != 0)
        if terms != expected_grad.get(element_symbol("x", index), Counter()):
            raise PlanError(f"the window-offset slices do not reproduce dL/dx{list(index)} = "
                            f"{derivation.grad_x[index]}")


@functools.lru_cache(maxsize=128)  # a chain and its layer module share one derivation
def pool_plan(layer) -> PoolPlan:
    """Derive :func:`representative_pool_instance`, read the plan off it, and check it."""
    size = representative_pool_instance(layer)
    derivation = derive(layer, size, 1, max_terms=math.inf)  # the smallest instance
    plan = read_pool_plan(derivation)
    check_pool_plan(plan)
    return plan


def _pool_context(layer) -> dict:
    from symbackprop.kinds.pool2d.rules import tiles_input

    plan = pool_plan(layer)
    row_step, col_step = plan.steps
    return dict(
        common_context(layer),
        template="maxpool2d.py.j2" if isinstance(layer, MaxPool2d) else "avgpool2d.py.j2",
        exports=["forward", "backward", "output_size"],
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        count_include_pad=getattr(layer, "count_include_pad", True),
        tiles=tiles_input(layer),
        row_step=row_step,
        col_step=col_step,
        offsets=[(*offset.window_offset, offset.first_row, offset.first_col)
                 for offset in plan.offsets],
        instance_shape="x".join(map(str, plan.derivation.input_shape)),
    )


# -- activations -------------------------------------------------------------------

@dataclass(frozen=True)
class NumpyActivation:
    """NumPy expressions of ``f(x)`` and ``f'(x)``; ``f'`` may use ``a = f(x)``.

    Written so that a float32 ``x`` gives float32 results (NumPy treats Python
    numbers as weak) and without overflow.
    """

    value: str
    derivative: str
    constants: tuple = ()  # module constant names, in the rule's order

    @property
    def derivative_uses_value(self) -> bool:
        """Whether ``derivative`` reads ``a = f(x)``."""
        return "a" in re.findall(r"[A-Za-z_]\w*", self.derivative)


#: The generated code of each activation, by layer kind (the rule is in
#: :data:`~symbackprop.core.local_rules.ACTIVATIONS`).
NUMPY_ACTIVATIONS = {
    "relu": NumpyActivation(value="np.maximum(x, 0)", derivative="(x > 0).astype(x.dtype)"),
    "leakyrelu": NumpyActivation(value="np.where(x > 0, x, ALPHA * x)",
                                 derivative="np.where(x > 0, 1, ALPHA).astype(x.dtype)",
                                 constants=("ALPHA",)),
    "sigmoid": NumpyActivation(value="np.exp(-np.logaddexp(0, -x))", derivative="a * (1 - a)"),
    "tanh": NumpyActivation(value="np.tanh(x)", derivative="1 - a * a"),
}

_SAMPLES = np.array([-30.0, -2.5, -0.5, -1e-3, 0.0, 1e-3, 0.5, 2.5, 30.0])


def check_activation_code(layer) -> None:
    """Raise :class:`~symbackprop.render.codegen.PlanError` unless the NumPy code of ``f`` and
    ``f'`` equals the SymPy rule at sample points (0 included, where the notes fix f')."""
    rule, code = ACTIVATIONS[layer.kind], NUMPY_ACTIVATIONS[layer.kind]
    names = {"np": np, **dict(zip(code.constants, layer.constants))}
    for dtype in (np.float64, np.float32):
        x = _SAMPLES.astype(dtype)
        value = eval(code.value, names, {"x": x})  # noqa: S307 - our own table
        derivative = eval(code.derivative, names, {"x": x, "a": value})  # noqa: S307
        if value.dtype != dtype or np.asarray(derivative).dtype != dtype:
            raise PlanError(f"the NumPy code of {rule.kind} does not keep {np.dtype(dtype)}")
        net = sympy.Symbol("net", real=True)
        constants = [sympy.Float(c) for c in layer.constants]
        for sample, got, got_derivative in zip(_SAMPLES, value, derivative):
            point = sympy.Float(sample)
            want = float(rule.value(point, *constants))
            want_derivative = float(sympy.diff(rule.value(net, *constants), net).subs(net, point)
                                    if sample != 0 else _derivative_at_zero(layer))
            tolerance = 1e-6 if dtype == np.float32 else 1e-12
            if abs(got - want) > tolerance or abs(got_derivative - want_derivative) > tolerance:
                raise PlanError(f"the NumPy code of {rule.kind} differs from its rule at "
                                f"{sample}: f {got} vs {want}, f' {got_derivative} vs "
                                f"{want_derivative}")


def _derivative_at_zero(layer) -> float:
    """``f'(0)`` by the rule as the notes fix it (ReLU 0, leaky ReLU the slope)."""
    from symbackprop.kinds.activation.rules import activation_function

    net = sympy.Symbol("net", real=True)
    constants = [sympy.Float(c) for c in layer.constants]
    function = activation_function(layer.kind)
    return float(sympy.diff(function(net, *constants), net).subs(net, 0))


def _activation_context(layer) -> dict:
    check_activation_code(layer)
    rule, code = ACTIVATIONS[layer.kind], NUMPY_ACTIVATIONS[layer.kind]
    return dict(
        common_context(layer),
        template="activation.py.j2",
        exports=["forward", "backward"],
        formula=rule.formula,
        derivative_formula=rule.derivative_formula,
        constants=[(name, repr(float(value)), rule_name) for name, value, rule_name in
                   zip(code.constants, layer.constants, rule.constants)],
        value=code.value,
        derivative=code.derivative,
        uses_value=code.derivative_uses_value,
    )


# -- flatten and fully connected ---------------------------------------------------

def _flatten_context(layer) -> dict:
    return dict(common_context(layer), template="flatten.py.j2",
                exports=["forward", "backward"])


def _linear_context(layer) -> dict:
    # The matrix forms do not depend on the sizes: check them on at most 3 -> 2 features.
    instance = Linear(min(layer.in_features, 3), min(layer.out_features, 2), bias=layer.bias)
    derivation = derive(instance, None, 2)
    _check_linear_derivation(derivation)
    return dict(
        common_context(layer),
        template="linear.py.j2",
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


# -- shared --------------------------------------------------------------------------

_CONTEXTS = {MaxPool2d: _pool_context, AvgPool2d: _pool_context, ReLU: _activation_context,
             LeakyReLU: _activation_context, Sigmoid: _activation_context,
             Tanh: _activation_context, Flatten: _flatten_context, Linear: _linear_context}


def layer_context(layer) -> dict:
    """The values the layer's template places (its name under ``"template"``)."""
    return _CONTEXTS[type(layer)](layer)


def _render(layer) -> str:
    context = layer_context(layer)
    return python_environment().get_template(context["template"]).render(**context)


for _layer_type in _CONTEXTS:
    register_generator(_layer_type)(_render)
for _layer_type in (MaxPool2d, AvgPool2d):
    register_instance(_layer_type)(_pool_instance)
