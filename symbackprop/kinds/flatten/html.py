"""Flatten on the interactive page."""

from __future__ import annotations

from symbackprop.kinds.flatten.spec import Flatten
from symbackprop.render.html import HTML, HtmlParts, Step, general_formulas


def steps(view, printer, loss, cells):
    names = view.names
    steps = [Step(title="Forward: the maps are read row by row into one vector.",
                  math=general_formulas(view, printer, loss)[0]),
             Step(title="Backward: the gradient takes the shape of the maps again.",
                  math=general_formulas(view, printer, loss)[1],
                  cell=cells[(names["grad_x"], (0,) * len(view.input_shape), False)].id)]
    return steps, []


HTML.register(Flatten, HtmlParts(steps=steps))
