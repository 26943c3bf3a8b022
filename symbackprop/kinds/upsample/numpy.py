"""The NumPy code of nearest-neighbour upsampling: fast (a reshape and a sum) and
reference (one strided slice per block offset, as the printed rule reads)."""

from __future__ import annotations

from symbackprop.kinds.upsample.rules import BlockSum
from symbackprop.kinds.upsample.spec import Upsample
from symbackprop.render.codegen import NUMPY, GeneratedCodePrinter, NumpyKind, common_context

GeneratedCodePrinter.print_function(
    BlockSum, lambda printer, expr: f"blocksum({printer._print(expr.args[0])})")


def _context(layer, style: str, strategy: str | None) -> dict:
    return dict(common_context(layer),
                template=f"upsample/upsample{'' if style == 'fast' else '_reference'}.py.j2",
                exports=["forward", "backward", "output_size"],
                scale_factor=layer.scale_factor)


def _chain_shape(number: int, layer, rank: int, channels) -> tuple:
    if rank != 4:
        raise ValueError(f"layer {number} ({layer.describe()}) takes (N, C, H, W) feature maps, "
                         f"but the layer before it gives (N, F); put it before the "
                         f"Flatten/Linear layers")
    return [f"shape = (shape[0], shape[1], *_output_size_{number}(shape[2], shape[3]))"], 4, \
        channels


NUMPY.register(Upsample, NumpyKind(
    context=_context, backward_rule=(": g summed over each block", ""),
    chain_shape=_chain_shape, input_shape=lambda layer: ("N", "C", "H", "W")))
