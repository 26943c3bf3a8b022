"""Flatten in the LaTeX document."""

from __future__ import annotations

from symbackprop.kinds.flatten.spec import Flatten
from symbackprop.render.latex import LATEX, LatexParts


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    return {"forward": rf"{z}_{{f}} = {x}_{{chw}},\quad f = (cH + h)W + w",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{chw}}}} = {g}_{{f}}"}


def chain_rule(step, printer) -> str:
    before, after = printer.name(f"delta{step.number - 1}"), printer.name(f"delta{step.number}")
    return rf"{before} = \operatorname{{reshape}}\bigl({after}\bigr)"


LATEX.register(Flatten, LatexParts(
    title="Backpropagation through a flatten layer", general=general, chain_rule=chain_rule,
    chain_words="flatten: the error takes the shape of the feature maps again"))
