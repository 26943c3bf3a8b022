"""Stage 3, differentiate: forward expansion -> every gradient element.

Input: a :class:`~symbackprop.core.expand.Forward`.  Output: a dict of SymPy arrays
``{"x": dL/dx, "w": dL/dw, "b": dL/db}`` shaped like the arrays they differentiate.

The truth is SymPy's own differentiation of ``L = sum(g * z)`` (``method="diff"``).
``method="collect"`` (the default) gets the same result in one pass: for every
product in every ``z`` element it applies the product rule directly (the derivative
of ``g_e * x * w`` by ``x`` is ``g_e * w``), and hands any term that is not a
product of distinct symbols (a ``Max``, a ``Piecewise``, a power) to
``sympy.diff``.  The test suite proves the two methods equal.
"""

from __future__ import annotations

from collections import defaultdict

import sympy

from symbackprop.core import progress
from symbackprop.core.algebra import product
from symbackprop.core.naming import flat

__all__ = ["gradients", "METHODS"]

METHODS = ("collect", "diff")


def gradients(forward, method: str = "collect") -> dict:
    """Gradients of ``L = sum(g*z)`` with respect to the input and every parameter."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    wrt = {"x": forward.x, **{name: array for name, array in forward.params.items()}}
    if method == "diff":
        return _by_diff(forward, wrt)
    return _by_collection(forward, wrt)


def _by_diff(forward, wrt: dict) -> dict:
    loss = sympy.Add(*[g * z for g, z in zip(flat(forward.g), flat(forward.z))])
    symbols = [symbol for array in wrt.values() for symbol in flat(array)]
    derivatives = {symbol: sympy.diff(loss, symbol) for symbol in progress.track(
        symbols, "differentiating (sympy.diff)", unit="symbols")}
    return {name: array.applyfunc(derivatives.__getitem__) for name, array in wrt.items()}


def _by_collection(forward, wrt: dict) -> dict:
    ordered = [symbol for array in wrt.values() for symbol in flat(array)]
    targets = set(ordered)
    contributions = defaultdict(list)
    outputs = list(zip(flat(forward.g), flat(forward.z)))
    for g, z in progress.track(outputs, "differentiating", unit="outputs"):
        for term in sympy.Add.make_args(z):
            factors = sympy.Mul.make_args(term)
            present = [f for f in factors if f in targets]
            linear = len(set(present)) == len(present) and all(
                f.is_Symbol or f.is_number for f in factors)
            if linear:
                for symbol in present:
                    rest = [f for f in factors if f is not symbol]
                    contributions[symbol].append(product(g, *rest))
            else:
                for symbol in sorted(term.free_symbols & targets, key=sympy.default_sort_key):
                    contributions[symbol].append(sympy.diff(g * term, symbol))
    # Adding up a weight's contributions (one per output) is as slow as collecting them.
    sums = {symbol: sympy.Add(*contributions.get(symbol, ()))
            for symbol in progress.track(ordered, "summing the gradients", unit="elements")}
    return {name: array.applyfunc(sums.__getitem__) for name, array in wrt.items()}
