"""Dropout on the interactive page."""

from __future__ import annotations

from symbackprop.kinds.dropout.latex import scale_latex
from symbackprop.kinds.dropout.spec import Dropout
from symbackprop.render.html import HTML, HtmlParts, Step, general_formulas, mathml


def steps(view, printer, loss, cells):
    names = view.names
    x, g = (printer.name(names[key]) for key in ("x", "g"))
    first = (0,) * len(view.input_shape)
    forward, _ = general_formulas(view, printer, loss)
    return [Step(title="Forward: each element is kept (m = 1) and scaled, or dropped (m = 0).",
                 math=forward, cell=cells[(names["z"], first, False)].id),
            Step(title="Backward: the same mask and the same scale, element by element.",
                 math=mathml(rf"\frac{{\partial {loss}}}{{\partial {x}}} = "
                             rf"{scale_latex(view.layer)}\, {g} \odot m", display=True),
                 cell=cells[(names["grad_x"], first, False)].id)], []


HTML.register(Dropout, HtmlParts(steps=steps))
