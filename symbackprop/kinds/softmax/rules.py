"""The closed forms of softmax and log-softmax, proven against the derived elements.

- softmax: ``dL/dx = z * (g - sum(g * z))``, the sum along ``dim`` (the Jacobian
  ``diag(z) - z z^T`` applied to ``g``: not diagonal);
- log-softmax: ``dL/dx = g - softmax(x) * sum(g)``, the sum along ``dim``.

Two things are proven.  The derivative each SymPy function of
:mod:`~symbackprop.kinds.softmax.functions` states (``d z_j/d x_k = z_j ([j=k] -
z_k)``) is the derivative of its explicit form ``exp(x_j) / sum exp(x)``, for every
``j, k`` of a row of this length; and every element of the closed form equals the
element SymPy derived.  Each proof is symbolic (the difference simplifies to 0) where
SymPy does that quickly, else numeric at random points with 50 significant digits; the
record says which.  The same helpers prove the losses' closed forms
(``kinds/loss/rules.py``).
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import sympy

from symbackprop.core.naming import to_grid
from symbackprop.core.rules import PROOFS
from symbackprop.kinds.softmax.functions import (
    LogSoftmaxOutput,
    Probability,
    SoftmaxOutput,
    explicit,
)
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax

__all__ = ["ClosedFormProof", "STATEMENTS", "DERIVATIVES", "closed_form_softmax",
           "closed_form_log_softmax", "prove_derivative", "prove_elements", "same_value",
           "SYMBOLIC", "numeric_words", "NUMERIC_POINTS", "NUMERIC_DIGITS"]

#: How a proof that SymPy simplified is described.
SYMBOLIC = "symbolically (the difference simplifies to 0)"
NUMERIC_POINTS = 5
NUMERIC_DIGITS = 50


def numeric_words(points: int = NUMERIC_POINTS) -> str:
    return (f"numerically (at {points} random points, {NUMERIC_DIGITS} significant digits, "
            f"agreeing to 1e-{NUMERIC_DIGITS - 10})")


@dataclass(frozen=True)
class ClosedFormProof:
    """One closed form (or one stated derivative), and whether and how it was proven.

    ``how`` is :data:`SYMBOLIC` or :func:`numeric_words`'s text; ``mismatches`` are the
    0-based indices of the elements that differ.
    """

    name: str
    statement: str
    holds: bool
    checked: int
    how: str
    mismatches: tuple = ()


STATEMENTS = {
    Softmax: "dL/dx = z * (g - sum(g * z)), the sum along dim (z = softmax(x))",
    LogSoftmax: "dL/dx = g - softmax(x) * sum(g), the sum along dim",
}
DERIVATIVES = {
    Softmax: "d z_j / d x_k = z_j ([j = k] - z_k), of z_j = exp(x_j) / sum_i exp(x_i)",
    LogSoftmax: "d z_j / d x_k = [j = k] - p_k, of z_j = x_j - log(sum_i exp(x_i)), "
                "p = softmax(x)",
}
_FUNCTIONS = {Softmax: SoftmaxOutput, LogSoftmax: LogSoftmaxOutput}


def _sum_along(array: np.ndarray, axis: int) -> np.ndarray:
    """Sum along ``axis``, kept as an axis of length 1 (broadcasts back)."""
    out = np.empty(array.shape[:axis] + (1,) + array.shape[axis + 1:], dtype=object)
    moved = np.moveaxis(array, axis, -1)
    target = np.moveaxis(out, axis, -1)
    for index in np.ndindex(*moved.shape[:-1]):
        target[index + (0,)] = sympy.Add(*moved[index])
    return out


def closed_form_softmax(z: np.ndarray, g: np.ndarray, axis: int) -> np.ndarray:
    """``z * (g - sum(g * z))`` on object arrays."""
    return z * (g - _sum_along(g * z, axis))


def closed_form_log_softmax(p: np.ndarray, g: np.ndarray, axis: int) -> np.ndarray:
    """``g - p * sum(g)`` on object arrays."""
    return g - p * _sum_along(g, axis)


def same_value(closed, derived, symbols, rng: random.Random) -> tuple[bool, str]:
    """Whether two expressions of the softmax functions are equal, and how it was shown.

    First ``sympy.expand`` of the difference (the functions as atoms), then the
    difference of their explicit forms simplified by ``cancel``; else compared at
    random points with :data:`NUMERIC_DIGITS` digits.
    """
    difference = sympy.expand(closed - derived)
    if difference == 0:
        return True, SYMBOLIC
    written = explicit(difference)
    try:
        if sympy.cancel(sympy.together(written)) == 0:
            return True, SYMBOLIC
    except sympy.PolynomialError:  # pragma: no cover - a form cancel cannot read
        pass
    symbols = sorted(written.free_symbols, key=str)
    for _ in range(NUMERIC_POINTS):
        point = {symbol: sympy.Float(rng.uniform(-3, 3), NUMERIC_DIGITS) for symbol in symbols}
        value = written.evalf(NUMERIC_DIGITS, subs=point)
        if not value.is_number or abs(value) > sympy.Float(10) ** (10 - NUMERIC_DIGITS):
            return False, numeric_words()
    return True, numeric_words()


@functools.lru_cache(maxsize=64)
def prove_derivative(layer_type, length: int) -> ClosedFormProof:
    """The derivative the layer's SymPy function states, against the derivative of its
    explicit form, for every pair ``j, k`` of a row of ``length`` elements."""
    function = _FUNCTIONS[layer_type]
    symbols = sympy.symbols(f"x1:{length + 1}", real=True)
    row = sympy.Tuple(*symbols)
    rng = random.Random(length)
    hows, wrong = set(), []
    for j in range(length):
        element = function(row, sympy.Tuple(0, j), sympy.Integer(1))
        for k, symbol in enumerate(symbols):
            stated = explicit(sympy.diff(element, symbol))
            truth = sympy.diff(explicit(element), symbol)
            holds, how = same_value(stated, truth, symbols, rng)
            hows.add(how)
            if not holds:
                wrong.append((j, k))
    how = SYMBOLIC if hows == {SYMBOLIC} else numeric_words()
    return ClosedFormProof(name="derivative", statement=DERIVATIVES[layer_type],
                           holds=not wrong, checked=length * length, how=how,
                           mismatches=tuple(wrong))


def prove_elements(name: str, statement: str, closed: np.ndarray, derived) -> ClosedFormProof:
    """Every element of ``closed`` against the derived array, as :func:`same_value` can."""
    truth = to_grid(derived)
    if closed.shape != truth.shape:
        raise ValueError(f"{statement}: the closed form has shape {closed.shape}, the "
                         f"derived gradient {truth.shape}")
    rng = random.Random(0)
    hows, wrong = set(), []
    for index in np.ndindex(*truth.shape):
        holds, how = same_value(closed[index], truth[index], None, rng)
        hows.add(how)
        if not holds:
            wrong.append(index)
    how = SYMBOLIC if hows <= {SYMBOLIC} else numeric_words()
    return ClosedFormProof(name=name, statement=statement, holds=not wrong,
                           checked=truth.size, how=how, mismatches=tuple(wrong))


def _prove_softmax(derivation) -> tuple[ClosedFormProof, ...]:
    layer = derivation.layer
    shape = derivation.input_shape
    axis = layer.axis(len(shape))
    z = to_grid(derivation.z)
    g = to_grid(derivation.g)
    if isinstance(layer, Softmax):
        closed = closed_form_softmax(z, g, axis)
    else:
        p = np.empty(z.shape, dtype=object)
        for index in np.ndindex(*z.shape):
            p[index] = z[index].func(*z[index].args).at(z[index].position, Probability)
        closed = closed_form_log_softmax(p, g, axis)
    return (prove_derivative(type(layer), shape[axis]),
            prove_elements("grad_x", STATEMENTS[type(layer)], closed, derivation.grads["x"]))


for _layer_type in (Softmax, LogSoftmax):
    PROOFS.register(_layer_type, _prove_softmax)
