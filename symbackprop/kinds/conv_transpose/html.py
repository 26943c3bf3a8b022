"""The transposed convolutions on the interactive page: a step-through of the scatter and
of the three gradients, each step on the first element it explains."""

from __future__ import annotations

from symbackprop.kinds.conv_transpose.spec import LAYER_TYPES
from symbackprop.render.html import HTML, HtmlParts, Step, general_formulas, mathml


def steps(view, printer, loss, cells):
    names = view.names
    x, g, w = (printer.name(names[key]) for key in ("x", "g", "w"))
    j = r"i s - p + k d"
    first = lambda shape: (0,) * len(shape)  # noqa: E731 - the first element of an array
    steps = [
        Step(title="Forward: each input element scatters x[c,i] w[c,o,k] onto output position "
                   "i*s - p + k*d; each output is the sum of what lands on it.",
             math=general_formulas(view, printer, loss)[0],
             cell=cells[(names["z"], first(view.output_shape), False)].id),
        Step(title="Input gradient: g read at the positions x sent to, a plain convolution of "
                   "g with the same weight (no flip).",
             math=mathml(rf"\frac{{\partial {loss}}}{{\partial {x}_{{c,i}}}} = \sum_{{o,k}} "
                         rf"{g}_{{o,{j}}}\, {w}_{{c,o,k}}", display=True),
             cell=cells[(names["grad_x"], first(view.input_shape), False)].id),
        Step(title="Weight gradient: each input element times the upstream gradient where its "
                   "contribution landed, summed over the batch and the positions.",
             math=mathml(rf"\frac{{\partial {loss}}}{{\partial {w}_{{c,o,k}}}} = \sum_{{n,i}} "
                         rf"{x}_{{c,i}}\, {g}_{{o,{j}}}", display=True),
             cell=cells[(names["grad_w"], first(view.params["w"].shape), False)].id),
    ]
    if "b" in view.params:
        steps.append(Step(title="Bias gradient: the upstream gradient summed over the batch and "
                                "every position.",
                          math=mathml(rf"\frac{{\partial {loss}}}{{\partial "
                                      rf"{printer.name(names['b'])}_{{o}}}} = \sum_{{n,j}} "
                                      rf"{g}_{{o,j}}", display=True),
                          cell=cells[(names["grad_b"], (0,), False)].id))
    return steps, []


for _layer_type in LAYER_TYPES:
    HTML.register(_layer_type, HtmlParts(steps=steps))
