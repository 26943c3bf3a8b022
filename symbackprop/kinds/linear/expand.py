"""Expand a fully connected layer: ``z[n, o] = sum_f w[o, f] * x[n, f] + b[o]``.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.algebra import product
from symbackprop.core.expand import EXPAND, Forward
from symbackprop.core.naming import symbol_grid, to_array
from symbackprop.kinds.linear.spec import Linear


@EXPAND.register(Linear)
def _linear(layer, input_shape) -> Forward:
    x = symbol_grid("x", input_shape)
    features = x.reshape(input_shape[0], layer.in_features)  # row-major, as Flatten
    w = symbol_grid("w", layer.weight_shape)
    b = symbol_grid("b", layer.bias_shape) if layer.bias else None
    g = symbol_grid("g", layer.output_shape_for(input_shape))
    evaluated = np.empty(g.shape, dtype=object)
    products_grid = np.empty(g.shape, dtype=object)
    for n, o in progress.track(np.ndindex(*g.shape), "expanding z", g.size, unit="outputs"):
        # z[n, o] = sum_f w[o, f] * x[n, f] + b[o]
        products = [(features[n, f], w[o, f]) for f in range(layer.in_features)]
        if b is not None:
            products.append((b[o],))
        products_grid[n, o] = tuple(products)
        evaluated[n, o] = sympy.Add(*[product(*factors) for factors in products])
    params = {"w": to_array(w), **({"b": to_array(b)} if b is not None else {})}
    return Forward(x=to_array(x), params=params, g=to_array(g), z=to_array(evaluated),
                   z_products=products_grid)
