"""Dropout in the LaTeX document."""

from __future__ import annotations

from symbackprop.kinds.dropout.spec import Dropout
from symbackprop.render.latex import LATEX, LatexParts
from symbackprop.render.worked_example import WorkedHints


def scale_latex(layer) -> str:
    """``1/(1 - p)`` with this layer's numbers: ``2``, ``\\frac{10}{7}``."""
    scale = layer.scale
    return str(scale.numerator) if scale.denominator == 1 else \
        rf"\frac{{{scale.numerator}}}{{{scale.denominator}}}"


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    return {"forward": rf"{z} = \frac{{1}}{{1 - p}}\, {x} \odot m",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}}} = \frac{{1}}{{1 - p}}\, "
                        rf"{g} \odot m,\quad p = {layer.p:g},\quad \frac{{1}}{{1 - p}} = "
                        rf"{scale_latex(layer)}"}


def _notes(layer) -> list:
    return [r"The keep-mask $m$ (1 keeps an element, 0 drops it) is an input of the layer, "
            r"drawn once per forward pass; it is not differentiated, and the backward pass "
            r"uses the same mask and the same scale $1/(1 - p)$ as the forward pass."]


LATEX.register(Dropout, LatexParts(
    title="Backpropagation through dropout", general=general,
    chain_words="dropout: the same mask and scale as the forward pass", notes=_notes,
    worked_example=WorkedHints(constant_values={"m": (0, 1)})))
