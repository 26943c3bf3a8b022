"""Expand Flatten: ``z[n, f] = x[n, c, h, w]`` with ``f = (c*H + h)*W + w``.
"""

from __future__ import annotations

from symbackprop.core.expand import EXPAND, Forward, elementwise_forward
from symbackprop.core.naming import symbol_grid
from symbackprop.kinds.flatten.spec import Flatten


@EXPAND.register(Flatten)
def _flatten(layer, input_shape) -> Forward:
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", layer.output_shape_for(input_shape))
    # z[n, f] = x[n, c, h, w] with f = (c*H + h)*W + w (row-major).
    z = x.reshape(g.shape)
    return elementwise_forward(x, {}, g, z)
