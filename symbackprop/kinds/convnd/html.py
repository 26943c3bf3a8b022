"""The 1-D and 3-D convolutions on the interactive page: every element of x, w, z and the
gradients is a cell whose formula and terms the page shows; the padding is written into
the formulas (``0 w``) rather than drawn around the input, which the page draws in 2-D
only."""

from __future__ import annotations

from symbackprop.kinds.convnd.spec import Conv1d, Conv3d
from symbackprop.render.html import HTML, HtmlParts


def steps(view, printer, loss, cells):
    """No step-through: the closed forms are stated and proven in the text and LaTeX."""
    return [], []


for _layer_type in (Conv1d, Conv3d):
    HTML.register(_layer_type, HtmlParts(steps=steps))
