"""Upsampling in the LaTeX document, and how :class:`BlockSum` prints in LaTeX."""

from __future__ import annotations

from symbackprop.kinds.upsample.rules import BlockSum
from symbackprop.kinds.upsample.spec import Upsample
from symbackprop.render.latex import LATEX, LatexParts, LayerLatexPrinter

LayerLatexPrinter.print_function(
    BlockSum, lambda printer, expr, exp=None:
    rf"\operatorname{{blocksum}}\bigl({printer._print(expr.args[0])}\bigr)")


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    sh, sw = layer.scale_factor
    if base == 1:
        source = rf"{x}_{{\lceil i/{sh} \rceil,\, \lceil j/{sw} \rceil}}"
        block = rf"{g}_{{{sh}(a-1)+p,\, {sw}(b-1)+q}}"
        ranges = rf"p=1}}^{{{sh}}} \sum_{{q=1}}^{{{sw}}}"
    else:
        source = rf"{x}_{{\lfloor i/{sh} \rfloor,\, \lfloor j/{sw} \rfloor}}"
        block = rf"{g}_{{{sh}a+p,\, {sw}b+q}}"
        ranges = rf"p=0}}^{{{sh - 1}}} \sum_{{q=0}}^{{{sw - 1}}}"
    return {"forward": rf"{z}_{{ij}} = {source}",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{ab}}}} = "
                        rf"\sum_{{{ranges} {block}"}


def notes(layer, names) -> list[str]:
    sh, sw = layer.scale_factor
    return [f"Nearest-neighbour upsampling copies every element into a ${sh}\\times{sw}$ "
            f"block; its gradient is the sum of ${names['g']}$ over that block (sum pooling with "
            f"${sh}\\times{sw}$ windows), the upsample of a pooling layer's error turned "
            f"around."]


def size_rows(layer, input_shape, output_shape) -> list[str]:
    sh, sw = layer.scale_factor
    return [rf"H_o &= H \cdot s_h = {input_shape[2]} \cdot {sh} = {output_shape[2]}",
            rf"W_o &= W \cdot s_w = {input_shape[3]} \cdot {sw} = {output_shape[3]}"]


LATEX.register(Upsample, LatexParts(
    title="Backpropagation through nearest-neighbour upsampling", general=general,
    chain_words="upsampling: each element's error is the sum over its block",
    notes=notes, notes_take_names=True, size_rows=size_rows))
