"""A chain's backward rule as one SymPy expression: the operators it is written with.

Each layer kind states once how it hands the error term back, ``delta^{l-1}`` from
``delta^l``: a function ``chain_rule(layer, names) -> sympy.Expr`` registered in
:data:`CHAIN_RULES`.  The text, LaTeX and NumPy-comment printers print that one
expression through their ``_print_<Class>`` methods (``render/text.py``,
``render/latex.py``, ``render/codegen.py``); no output language spells the rule by hand.

The operators are unevaluated SymPy functions: they stand for whole-array operations
the printers name (``upsample(delta3)``, ``\\operatorname{upsample}\\bigl(\\delta^{[3]}\\bigr)``),
never for values SymPy computes.  Their arguments are :class:`ArrayName` symbols, a
whole array by its name, which each printer names in its own language.
"""

from __future__ import annotations

import sympy
from sympy.printing.precedence import PRECEDENCE

from symbackprop.core.registry import Registry

__all__ = [
    "ArrayName",
    "ChainOperator",
    "Upsample",
    "Reshape",
    "Transposed",
    "MatrixProduct",
    "ElementwiseProduct",
    "ActivationDerivative",
    "TransposedConvolution",
    "CHAIN_RULES",
    "chain_rule",
    "chain_names",
]


class ArrayName(sympy.Symbol):
    """A whole array by its name (``delta3``, ``w4``, ``a2``); printers name it."""


class ChainOperator(sympy.Function):
    """An unevaluated whole-array operation of a backward rule.

    Attributes
    ----------
    result_index : str or None
        The index the LaTeX form writes on the rule's left-hand side when the operator
        states one slice of the result (a channel ``c``); None: the whole array.
    """

    result_index = None


class Upsample(ChainOperator):
    """``upsample(g)``: each window's error term sent back to the window's inputs."""

    nargs = 1


class Reshape(ChainOperator):
    """``reshape(g, like)``: ``g`` in the shape of the array ``like``."""

    nargs = 2


class Transposed(ChainOperator):
    """``w^T``: the transpose of a weight matrix."""

    nargs = 1


class MatrixProduct(ChainOperator):
    """``a b``: the matrix product (``w^T g``)."""

    nargs = 2
    #: binds like a product: bracketed inside another product, ``(w^T g) * f'(a)``
    precedence = PRECEDENCE["Mul"]


class ElementwiseProduct(ChainOperator):
    """``a * b`` elementwise (the notes' ``\\odot``)."""

    nargs = 2
    precedence = PRECEDENCE["Mul"]


class ActivationDerivative(ChainOperator):
    """``f'(a)``: the activation's derivative at its input, elementwise."""

    nargs = 1


class TransposedConvolution(ChainOperator):
    """``g`` sent back through the kernel ``w``: per input channel ``c``, the sum over the
    output channels ``o`` of the correlation of the padded, dilated ``g_o`` with the
    rotated ``w_{o,c}``."""

    nargs = 2
    result_index = "c"


#: Layer type -> ``chain_rule(layer, names) -> sympy.Expr``: the error term the layer
#: hands back.  ``names`` maps ``g`` (its error term ``delta^l``), ``x`` (its input
#: ``a^{l-1}``) and, when the layer has weights, ``w`` to :class:`ArrayName` symbols.
CHAIN_RULES = Registry("state a chain's backward rule of")


def chain_rule(layer, names: dict) -> sympy.Expr:
    """The expression of ``delta^{l-1}`` the layer's kind registered (see :data:`CHAIN_RULES`)."""
    return CHAIN_RULES[layer](layer, names)


def chain_names(g: str, x: str, w: str | None = None) -> dict:
    """``names`` for :func:`chain_rule` from the printed names of ``g``, ``x`` and ``w``."""
    names = {"g": ArrayName(g), "x": ArrayName(x)}
    if w is not None:
        names["w"] = ArrayName(w)
    return names
