"""Softmax, log-softmax and the losses on the interactive page: the forward with its
denominator, the stated derivative and the rule, one step each."""

from __future__ import annotations

from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax
from symbackprop.render.html import HTML, HtmlParts, Step, general_formulas

__all__ = ["formula_steps"]


def formula_steps(view, printer, loss, cells, backward_title: str):
    """Forward (the general formula, at the first output) and backward (the rule, at the
    first input gradient)."""
    names = view.names
    forward, backward = general_formulas(view, printer, loss)
    first_out = (0,) * len(view.output_shape)
    first_in = (0,) * len(view.input_shape)
    steps = [Step(title="Forward: every output reads its whole row along the axis.",
                  math=forward, cell=cells[(names["z"], first_out, False)].id),
             Step(title=backward_title, math=backward,
                  cell=cells[(names["grad_x"], first_in, False)].id)]
    return steps, []


def steps(view, printer, loss, cells):
    title = ("Backward: the Jacobian is not diagonal; each gradient element reads every g "
             "of its row." if isinstance(view.layer, Softmax) else
             "Backward: g minus softmax(x) times the row's sum of g.")
    return formula_steps(view, printer, loss, cells, title)


for _layer_type in (Softmax, LogSoftmax):
    HTML.register(_layer_type, HtmlParts(steps=steps))
