"""The fully connected layer on the interactive page."""

from __future__ import annotations

from symbackprop.kinds.linear.spec import Linear
from symbackprop.render.html import HTML, HtmlParts, Step, general_formulas, mathml


def steps(view, printer, loss, cells):
    names = view.names
    x, g, w = (printer.name(names[key]) for key in ("x", "g", "w"))
    first_x = (0,) * len(view.input_shape)
    steps = [Step(title="Forward: each output is a weighted sum of the inputs.",
                  math=general_formulas(view, printer, loss)[0],
                  cell=cells[(names["z"], (0,) * len(view.output_shape), False)].id),
             Step(title="Input gradient: the transposed weights times the upstream gradient.",
                  math=mathml(rf"\frac{{\partial {loss}}}{{\partial {x}}} = {{{w}}}^{{T}} {g}",
                              display=True),
                  cell=cells[(names["grad_x"], first_x, False)].id),
             Step(title=f"Weight gradient: the outer product of "
                        f"{printer.notation.name(names['g'])} and "
                        f"{printer.notation.name(names['x'])} (summed over the batch).",
                  math=mathml(rf"\frac{{\partial {loss}}}{{\partial {w}}} = {g}\, {{{x}}}^{{T}}",
                              display=True),
                  cell=cells[(names["grad_w"], (0, 0), False)].id)]
    if "b" in view.params:
        steps.append(Step(title="Bias gradient: the upstream gradient (summed over the batch).",
                          math=mathml(rf"\frac{{\partial {loss}}}{{\partial "
                                      rf"{printer.name(names['b'])}}} = {g}", display=True),
                          cell=cells[(names["grad_b"], (0,), False)].id))
    return steps, []


HTML.register(Linear, HtmlParts(steps=steps))
