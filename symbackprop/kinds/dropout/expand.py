"""Expand dropout: ``z = x * m / (1 - p)`` for every element, ``m`` the keep-mask.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.algebra import product
from symbackprop.core.expand import EXPAND, Forward
from symbackprop.core.naming import symbol_grid, to_array
from symbackprop.kinds.dropout.spec import Dropout


@EXPAND.register(Dropout)
def _dropout(layer, input_shape) -> Forward:
    x = symbol_grid("x", input_shape)
    m = symbol_grid("m", layer.constant_shapes(input_shape)["m"])
    g = symbol_grid("g", input_shape)
    scale = sympy.Rational(layer.scale.numerator, layer.scale.denominator)
    z = np.empty(g.shape, dtype=object)
    products_grid = np.empty(g.shape, dtype=object)
    for index in np.ndindex(*g.shape):
        # z = x * m / (1 - p): the mask is read, never differentiated (a constant)
        factors = (m[index], x[index]) if scale == 1 else (scale, m[index], x[index])
        products_grid[index] = (factors,)
        z[index] = product(*factors)
    return Forward(x=to_array(x), params={}, z=to_array(z), z_products=products_grid,
                   g=to_array(g), constants={"m": to_array(m)})
