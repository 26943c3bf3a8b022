"""The normalisations on the interactive page: the graph step by step, forward then back."""

from __future__ import annotations

from symbackprop.kinds.normalization.latex import GRAPH_BACKWARD, GRAPH_FORWARD, closed_forms
from symbackprop.kinds.normalization.spec import NORMALIZATION_TYPES
from symbackprop.render.html import HTML, HtmlParts, Step, mathml


def steps(view, printer, loss, cells):
    """The forward graph's nodes, the closed forms, then the backward walk node by node."""
    names = view.names
    layer = view.layer
    first = (0,) * len(view.input_shape)
    out = []
    if layer.uses_batch_statistics:
        for number, (node, formula, words) in enumerate(GRAPH_FORWARD):
            out.append(Step(title=f"Forward {number + 1}: {words.replace('$m$', 'm')}.",
                            math=mathml(f"{node} = {formula}", display=True),
                            cell=cells[(names["z"], first, False)].id
                            if number == len(GRAPH_FORWARD) - 1 else None))
        for node, formula, words in GRAPH_BACKWARD:
            out.append(Step(title=f"Backward: {words}.".replace("$", ""),
                            math=mathml(f"{node} = {formula}", display=True)))
    for left, right in closed_forms(layer):
        out.append(Step(title="The closed form, proven against the elements:",
                        math=mathml(f"{left} = {right}", display=True),
                        cell=cells[(names["grad_x"], first, False)].id
                        if "x" in left else None))
    return out, []


PARTS = HtmlParts(steps=steps)

for _layer_type in NORMALIZATION_TYPES:
    HTML.register(_layer_type, PARTS)
