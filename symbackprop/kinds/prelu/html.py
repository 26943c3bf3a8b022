"""PReLU on the interactive page."""

from __future__ import annotations

from symbackprop.kinds.prelu.spec import PReLU
from symbackprop.render.html import HTML, HtmlParts, Step, general_formulas


def steps(view, printer, loss, cells):
    names = view.names
    forward, backward = general_formulas(view, printer, loss)
    first = (0,) * len(view.input_shape)
    return [Step(title="Forward: positive inputs pass, the others are scaled by their "
                       "channel's slope.", math=forward, cell=cells[(names["z"], first, False)].id),
            Step(title="Backward: g where the input is positive, slope times g elsewhere; the "
                       "slope's gradient adds g x over every non-positive input it scaled.",
                 math=backward, cell=cells[(names["grad_w"], (0,), False)].id)], []


HTML.register(PReLU, HtmlParts(steps=steps))
