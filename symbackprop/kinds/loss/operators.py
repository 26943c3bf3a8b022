"""A loss at the end of a chain: the error term it hands back, as one expression every
printer prints (``g (softmax(x) - onehot(y)) / count``, ``2 g (x - y) / n``).  A chain may
end with a loss in ``derive``, ``latex`` and ``html``; a generated chain module does not
pass targets, so ``generate`` refuses it (``kinds/loss/numpy.py``)."""

from __future__ import annotations

from symbackprop.core.operators import CHAIN_RULES, ChainOperator
from symbackprop.kinds.loss.spec import CrossEntropyLoss, MSELoss
from symbackprop.render.codegen import GeneratedCodePrinter
from symbackprop.render.latex import LayerLatexPrinter
from symbackprop.render.text import TextPrinter

__all__ = ["CrossEntropyBackward", "MSEBackward"]


class CrossEntropyBackward(ChainOperator):
    """``g (softmax(x) - onehot(y)) / count`` (smoothed and weighted as the layer says)."""

    nargs = 2


class MSEBackward(ChainOperator):
    """``2 g (x - y) / n``."""

    nargs = 2


def _plain(printer, expr) -> str:
    g, x = (printer._print(arg) for arg in expr.args)
    if isinstance(expr, CrossEntropyBackward):
        return f"{g} (softmax({x}) - onehot(y)) / count"
    return f"2 {g} ({x} - y) / n"


def _latex(printer, expr, exp=None) -> str:
    g, x = (printer._print(arg) for arg in expr.args)
    if isinstance(expr, CrossEntropyBackward):
        return rf"\frac{{{g}\, (\operatorname{{softmax}}({x}) - \operatorname{{onehot}}(y))}}" \
               rf"{{\mathrm{{count}}}}"
    return rf"\frac{{2\, {g}\, ({x} - y)}}{{n}}"


for _operator in (CrossEntropyBackward, MSEBackward):
    TextPrinter.print_function(_operator, _plain)
    LayerLatexPrinter.print_function(_operator, _latex)
    GeneratedCodePrinter.print_function(_operator, _plain)

CHAIN_RULES.register(CrossEntropyLoss,
                     lambda layer, names: CrossEntropyBackward(names["g"], names["x"]))
CHAIN_RULES.register(MSELoss, lambda layer, names: MSEBackward(names["g"], names["x"]))
