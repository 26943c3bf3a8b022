"""check-impl for every activation, from its row of :data:`rules.ACTIVATIONS` alone.

``backward(x, grad_out) -> grad_x`` (or ``(grad_x,)``).  The inputs hold some elements
exactly 0, where a derivative with a corner (ReLU's) is defined by the notes.  The known
mistakes are computed from the row and the truth, never per activation:

- ``f'`` evaluated at the output ``a = f(x)`` instead of the input (the true gradient
  at ``f(x)``);
- ``f'`` written with the output (the sigmoid's ``a (1 - a)``, tanh's ``1 - a^2``) but
  applied to the input: ``x (1 - x)``;
- ``f'(0)`` taken from the right, ``x >= 0`` instead of ``x > 0`` (ReLU's 1 at 0; the
  true gradient at the smallest positive number where ``x`` is 0).
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.check.formula_rules import NAMED_FUNCTIONS
from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake, course_convention
from symbackprop.kinds.activation.rules import ACTIVATIONS, activation_function
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES

__all__ = ["ACTIVATION_MISTAKES", "input_with_zeros", "SIZES"]

#: Input sizes an activation's backward pass runs on: feature maps and a feature vector.
SIZES = ((2, 3, 4), (1, 4, 3), (5,))


def input_with_zeros(rng: np.random.Generator, shape) -> np.ndarray:
    """Random normal numbers with about one element in six exactly 0 (at least one)."""
    x = rng.standard_normal(shape)
    zeros = rng.choice(x.size, max(1, x.size // 6), replace=False)
    x.flat[zeros] = 0.0
    return x


def _forward(layer, x: np.ndarray) -> np.ndarray:
    """``f(x)`` elementwise, from the row (the function's numeric ``_imp_``)."""
    return np.asarray(activation_function(layer.row)._imp_(x, *layer.constants), dtype=float)


def _at_output(case):
    layer = case.derivation.layer
    yield case.truth_with(x=_forward(layer, case.inputs["x"]))["x"]


def _output_formula_on_input(case):
    """``g * D(x)`` where ``D`` is the row's ``f'`` written with the output, ``f`` replaced
    by the identity (the sigmoid's ``a (1 - a)`` applied to ``x``)."""
    layer = case.derivation.layer
    net = sympy.Dummy("net", real=True)
    written = ACTIVATIONS[layer.row].derivative(lambda value: value, net, *layer.constants)
    if written.has(sympy.Function):  # not written with the output: nothing to confuse
        return
    derivative = sympy.lambdify([net], written, modules="numpy")
    x = case.inputs["x"]
    yield case.inputs["g"] * np.broadcast_to(np.asarray(derivative(x), dtype=float), x.shape)


def _from_the_right(case):
    x = case.inputs["x"]
    if (x == 0).any():
        yield case.truth_with(x=np.where(x == 0, np.finfo(float).tiny, x))["x"]


#: Known mistakes of any activation's backward pass; the first that matches is named.
ACTIVATION_MISTAKES = (
    Mistake("f' evaluated at the output instead of the input", "x",
            "dL/dx = g * f'(x), the derivative at the layer's input; this one evaluated it at "
            "the output a = f(x), as f'(f(x))", _at_output),
    Mistake("f' written with the output but applied to the input", "x",
            "f' written with the output a = f(x) (the sigmoid's a (1 - a), tanh's 1 - a^2) "
            "needs a; this one put the input x in its place", _output_formula_on_input),
    Mistake("f'(0) taken from the right (x >= 0 instead of x > 0)", "x",
            "at x = 0 the derivative is the value the notes define (ReLU's is 0, leaky "
            "ReLU's the slope); this one used the value for x > 0 there", _from_the_right),
)


def _sizes(layer) -> list:
    return list(SIZES)


def _cs231n(layer) -> dict:
    return course_convention(
        "cs231n", signature=f"{layer.kind}_forward(x) -> (out, cache), "
        f"{layer.kind}_backward(dout, cache) -> dx", forward_call=("x",), returns=("x",),
        names={"x": "dx"})


def _dlai(layer) -> dict:
    return course_convention(
        "dlai", signature=f"{layer.kind}(Z) -> (A, cache), {layer.kind}_backward(dA, cache) "
        f"-> dZ (the cache is Z)", forward_call=("x",), returns=("x",), names={"x": "dZ"})


_ENTRY = Implementation(
    convention="backward(x, grad_out) -> grad_x or (grad_x,)", mistakes=ACTIVATION_MISTAKES,
    sizes=_sizes, make_input=input_with_zeros, input_words=" (some elements exactly 0)",
    conventions={"cs231n": _cs231n, "dlai": _dlai})
for _layer_type in ACTIVATION_TYPES:
    IMPLEMENTATIONS.register(_layer_type, _ENTRY)


# -- what the formula checker needs: each activation's function by the name it prints -----
# (relu(x), sigmoid(x), tanh(x)); rows with constants (the slope, beta) need them written
for _rule in ACTIVATIONS.values():
    if not _rule.constants:
        NAMED_FUNCTIONS.setdefault(_rule.function_name, _rule.value)
