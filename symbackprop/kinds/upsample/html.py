"""Upsampling on the interactive page: the forward copy and the backward block sum."""

from __future__ import annotations

from symbackprop.kinds.upsample.spec import Upsample
from symbackprop.render.html import HTML, HtmlParts, Step, general_formulas


def steps(view, printer, loss, cells):
    names = view.names
    sh, sw = view.layer.scale_factor
    return [Step(title=f"Forward: every element is copied into a {sh}x{sw} block.",
                 math=general_formulas(view, printer, loss)[0]),
            Step(title="Backward: each element receives the sum of the gradient over its "
                       "block.",
                 math=general_formulas(view, printer, loss)[1],
                 cell=cells[(names["grad_x"], (0,) * len(view.input_shape), False)].id)], []


HTML.register(Upsample, HtmlParts(steps=steps))
