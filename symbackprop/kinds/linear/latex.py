"""The fully connected layer in the LaTeX document."""

from __future__ import annotations

from symbackprop.core.operators import CHAIN_RULES, MatrixProduct, Transposed
from symbackprop.kinds.linear.spec import Linear
from symbackprop.render.latex import LATEX, LatexParts


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    w, b = names["w"], names.get("b")
    dx = rf"\frac{{\partial {loss}}}{{\partial {x}}}"
    return {"forward": rf"{z} = {w}\, {x}" + (f" + {b}" if b else ""),
            "backward": rf"{dx} = {{{w}}}^{{T}} {g},\quad "
                        rf"\frac{{\partial {loss}}}{{\partial {w}}} = {g}\, {{{x}}}^{{T}}"
                        + (rf",\quad \frac{{\partial {loss}}}{{\partial {b}}} = {g}"
                           if b else "")}


# A chain's step delta^{l-1} from delta^l, written once: the text printout, the LaTeX
# walk and a chain module's comments print this expression (core/operators.py).
def chain_rule(layer, names):
    """``w^T g``."""
    return MatrixProduct(Transposed(names["w"]), names["g"])


CHAIN_RULES.register(Linear, chain_rule)


LATEX.register(Linear, LatexParts(
    title="Backpropagation through a fully connected layer", general=general,
    chain_words="a fully connected layer", shows_padding=True,
    vector_bias=True))
