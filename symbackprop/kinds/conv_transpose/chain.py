"""A transposed convolution inside a chain: the error term it hands back, as one SymPy
expression (:data:`~symbackprop.core.operators.CHAIN_RULES`), and how each printer names it.

The rule is a plain convolution of ``delta^l`` with the same weight, no flip, no channel
swap: ``delta^{l-1}_c = sum_o corr(pad_p(delta^l_o), w_{c,o}, stride s, dilation d)``.
"""

from __future__ import annotations

from symbackprop.core.operators import CHAIN_RULES, ChainOperator
from symbackprop.kinds.conv_transpose.spec import LAYER_TYPES
from symbackprop.render.codegen import GeneratedCodePrinter
from symbackprop.render.latex import LayerLatexPrinter
from symbackprop.render.text import TextPrinter

__all__ = ["ConvolutionWithSameWeight", "chain_rule"]


class ConvolutionWithSameWeight(ChainOperator):
    """``g`` convolved with the kernel ``w`` as it is (stride, padding and dilation of the
    transposed layer): per input channel ``c``, the sum over ``o`` of the strided
    correlation of the padded ``g_o`` with ``w_{c,o}``."""

    nargs = 2
    result_index = "c"


def chain_rule(layer, names):
    """``conv(g, w)``: the transposed convolution's backward is a convolution."""
    return ConvolutionWithSameWeight(names["g"], names["w"])


def _text(printer, expr):
    g, w = (printer._print(arg) for arg in expr.args)
    return f"conv({g}, {w}; the layer's stride, padding and dilation, no flip)"


def _latex(printer, expr, exp=None):
    g, w = (printer._print(arg) for arg in expr.args)
    return (rf"\sum_o \operatorname{{corr}}\bigl(\operatorname{{pad}}_p({g}_{{o}}),\ "
            rf"{w}_{{c,o}},\ \text{{stride }} s\bigr)")


def _code(printer, expr):
    g, w = (printer._print(arg) for arg in expr.args)
    return f"{g} convolved with {w} (a convolution: no flip, no channel swap)"


TextPrinter.print_function(ConvolutionWithSameWeight, _text)
LayerLatexPrinter.print_function(ConvolutionWithSameWeight, _latex)
GeneratedCodePrinter.print_function(ConvolutionWithSameWeight, _code)

for _layer_type in LAYER_TYPES:
    CHAIN_RULES.register(_layer_type, chain_rule)
