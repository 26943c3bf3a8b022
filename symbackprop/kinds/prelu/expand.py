"""Expand PReLU: ``z = x if x > 0 else w_c x`` for every element, ``c`` its channel.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.expand import EXPAND, Forward, elementwise_forward
from symbackprop.core.naming import symbol_grid, to_array
from symbackprop.kinds.prelu.spec import PReLU


def slope_index(layer, index) -> tuple[int]:
    """The slope of element ``index`` (sample, channel, ...): its channel's, or the one."""
    return (index[1] if layer.num_parameters > 1 else 0,)


@EXPAND.register(PReLU)
def _prelu(layer, input_shape) -> Forward:
    x = symbol_grid("x", input_shape)
    w = symbol_grid("w", layer.weight_shape)
    g = symbol_grid("g", input_shape)
    z = np.empty(g.shape, dtype=object)
    for index in np.ndindex(*g.shape):
        # strict x > 0: at 0 the slope branch, as PyTorch (z = 0 either way; dL/dx = w g)
        z[index] = sympy.Piecewise((x[index], x[index] > 0),
                                   (w[slope_index(layer, index)] * x[index], True))
    return elementwise_forward(x, {"w": to_array(w)}, g, z)
