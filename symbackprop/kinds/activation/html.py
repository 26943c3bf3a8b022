"""Every activation on the interactive page: ``f``, ``f'`` (from the layer's row) and
the elementwise product with the upstream gradient."""

from __future__ import annotations

from symbackprop.kinds.activation.latex import formulas
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES
from symbackprop.render.html import HTML, HtmlParts, Step, mathml


def steps(view, printer, loss, cells):
    """Element-wise: the local derivative f'(x), then the product with g."""
    names = view.names
    layer = view.layer
    x, g, dx = (printer.name(names[key]) for key in ("x", "g", "x"))
    value, derivative = formulas(layer)
    first = (0,) * len(view.input_shape)
    steps = [
        Step(title="Forward: the activation works on each element alone.",
             math=mathml(rf"f(\mathit{{net}}) = {value}", display=True),
             cell=cells[(names["z"], first, False)].id),
        Step(title="Its local derivative, at each input element:",
             math=mathml(rf"f'(\mathit{{net}}) = {derivative}", display=True)),
        Step(title="Backward: multiply element by element with the upstream gradient.",
             math=mathml(rf"\frac{{\partial {loss}}}{{\partial {dx}}} = {g} \odot f'({x})",
                         display=True),
             cell=cells[(names["grad_x"], first, False)].id),
    ]
    return steps, []


#: One entry for every activation.
PARTS = HtmlParts(steps=steps)

for _layer_type in ACTIVATION_TYPES:
    HTML.register(_layer_type, PARTS)
