"""The losses on the interactive page: the loss and its rule."""

from __future__ import annotations

from symbackprop.kinds.loss.spec import CrossEntropyLoss, MSELoss
from symbackprop.kinds.softmax.html import formula_steps
from symbackprop.render.html import HTML, HtmlParts


def steps(view, printer, loss, cells):
    title = ("Backward: softmax(x) minus the one-hot target, divided as the reduction says."
             if isinstance(view.layer, CrossEntropyLoss) else
             "Backward: twice the difference, divided as the reduction says.")
    return formula_steps(view, printer, loss, cells, title)


for _layer_type in (CrossEntropyLoss, MSELoss):
    HTML.register(_layer_type, HtmlParts(steps=steps))
