"""Exact, fast constructors for the two expression shapes the pipeline builds.

Expanding a layer creates tens of thousands of products of distinct symbols
(``x*w``, ``g*w``).  ``sympy.Mul`` spends most of its time in generic
simplification that cannot apply to such a product, so :func:`product` builds it
directly in SymPy's canonical argument order; the result is the very object
``sympy.Mul`` would return (the tests check equality and hash).
"""

from __future__ import annotations

import sympy
from sympy.core.basic import _args_sortkey

__all__ = ["product", "total"]


def product(*factors) -> sympy.Expr:
    """``factors[0] * factors[1] * ...``, fast for distinct symbols."""
    symbols = [f for f in factors if not (f.is_Number and f == 1)]
    if any(f.is_zero for f in symbols if f.is_Number):
        return sympy.Integer(0)
    if len(symbols) == 1:
        return symbols[0]
    if all(f.is_Symbol for f in symbols) and len(set(symbols)) == len(symbols):
        return sympy.Mul._from_args(sorted(symbols, key=_args_sortkey), is_commutative=True)
    return sympy.Mul(*factors)


def total(terms) -> sympy.Expr:
    """The evaluated sum of ``terms`` (``0`` when empty)."""
    return sympy.Add(*terms)
