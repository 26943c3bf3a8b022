"""Flatten in the LaTeX document."""

from __future__ import annotations

from symbackprop.core.operators import CHAIN_RULES, Reshape
from symbackprop.kinds.flatten.spec import Flatten
from symbackprop.render.latex import LATEX, LatexParts


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    return {"forward": rf"{z}_{{f}} = {x}_{{chw}},\quad f = (cH + h)W + w",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{chw}}}} = {g}_{{f}}"}


# A chain's step delta^{l-1} from delta^l, written once: the text printout, the LaTeX
# walk and a chain module's comments print this expression (core/operators.py).
def chain_rule(layer, names):
    """The error term takes the input's shape again: ``reshape(g, x)``."""
    return Reshape(names["g"], names["x"])


CHAIN_RULES.register(Flatten, chain_rule)


LATEX.register(Flatten, LatexParts(
    title="Backpropagation through a flatten layer", general=general,
    chain_words="flatten: the error takes the shape of the feature maps again"))
