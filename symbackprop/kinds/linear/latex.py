"""The fully connected layer in the LaTeX document."""

from __future__ import annotations

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


def chain_rule(step, printer) -> str:
    before, after = printer.name(f"delta{step.number - 1}"), printer.name(f"delta{step.number}")
    w = printer.name(f"w{step.number}")
    return rf"{before} = \bigl({w}\bigr)^{{T}} {after}"


LATEX.register(Linear, LatexParts(
    title="Backpropagation through a fully connected layer", general=general,
    chain_rule=chain_rule, chain_words="a fully connected layer", shows_padding=True,
    vector_bias=True))
