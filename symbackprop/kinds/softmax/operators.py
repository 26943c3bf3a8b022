"""Softmax and log-softmax in a chain: the error term each hands back, as one expression
(``core.operators``) that every printer prints.  Their rules read the layer's input ``x``
(``a^{l-1}``): ``softmax(x) * (g - sum(g * softmax(x)))`` and ``g - softmax(x) * sum(g)``."""

from __future__ import annotations

from symbackprop.core.operators import CHAIN_RULES, ChainOperator
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax
from symbackprop.render.codegen import GeneratedCodePrinter
from symbackprop.render.latex import LayerLatexPrinter
from symbackprop.render.text import TextPrinter

__all__ = ["SoftmaxBackward", "LogSoftmaxBackward"]


class SoftmaxBackward(ChainOperator):
    """``s * (g - sum(g * s))``, ``s = softmax(x)``, the sum along the layer's dim."""

    nargs = 2


class LogSoftmaxBackward(ChainOperator):
    """``g - softmax(x) * sum(g)``, the sum along the layer's dim."""

    nargs = 2


def _plain(printer, expr) -> str:
    g, x = (printer._print(arg) for arg in expr.args)
    if isinstance(expr, SoftmaxBackward):
        return f"softmax({x}) * ({g} - sum({g} * softmax({x})))"
    return f"{g} - softmax({x}) * sum({g})"


def _latex(printer, expr, exp=None) -> str:
    g, x = (printer._print(arg) for arg in expr.args)
    s = rf"\operatorname{{softmax}}({x})"
    if isinstance(expr, SoftmaxBackward):
        return rf"{s} \odot \bigl({g} - \textstyle\sum_j {g}_j\, {s}_j\bigr)"
    return rf"{g} - {s} \textstyle\sum_j {g}_j"


for _operator in (SoftmaxBackward, LogSoftmaxBackward):
    TextPrinter.print_function(_operator, _plain)
    LayerLatexPrinter.print_function(_operator, _latex)
    # a chain module's comments print the rule in words, as the text printout does
    GeneratedCodePrinter.print_function(_operator, _plain)

CHAIN_RULES.register(Softmax, lambda layer, names: SoftmaxBackward(names["g"], names["x"]))
CHAIN_RULES.register(LogSoftmax, lambda layer, names: LogSoftmaxBackward(names["g"], names["x"]))
