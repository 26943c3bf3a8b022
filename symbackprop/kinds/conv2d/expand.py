"""Expand a 2-D convolution: every output element as a sum of ``w*x`` products.

``z[n,o,i,j] = b[o] + sum_{c,m,k} w[o,c,m,k] * xp[n, c, i*sh + m*dh, j*sw + k*dw]``,
with the products that meet padding kept as ``0 w`` for printing.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.algebra import product
from symbackprop.core.expand import EXPAND, Forward
from symbackprop.core.naming import symbol_grid, to_array
from symbackprop.kinds.conv2d.spec import Conv2d


@EXPAND.register(Conv2d)
def _conv2d(layer, input_shape) -> Forward:
    batch, channels, height, width = input_shape
    out_h, out_w = layer.output_size((height, width))
    top, _, left, _ = layer.padding
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    kernel_h, kernel_w = layer.kernel_size
    cg, og = layer.group_in_channels, layer.group_out_channels

    # NumPy object grids index far faster than sympy.Array during the expansion.
    x = symbol_grid("x", input_shape)
    w = symbol_grid("w", layer.weight_shape)
    b = symbol_grid("b", layer.bias_shape) if layer.bias else None
    g = symbol_grid("g", (batch, layer.out_channels, out_h, out_w))

    zero = sympy.Integer(0)
    evaluated = []
    products_grid = np.empty(g.shape, dtype=object)
    for n, o, i, j in progress.track(itertools.product(
            range(batch), range(layer.out_channels), range(out_h), range(out_w)),
            "expanding z", g.size, unit="outputs"):
        group = o // og
        products = []
        # z[n,o,i,j] = b[o] + sum_{c,m,k} w[o,c,m,k] * xp[n, group*cg + c, i*sh + m*dh, j*sw + k*dw]
        for c, m, k in itertools.product(range(cg), range(kernel_h), range(kernel_w)):
            row, col = i * sh + m * dh - top, j * sw + k * dw - left
            inside = 0 <= row < height and 0 <= col < width
            source = x[n, group * cg + c, row, col] if inside else zero
            products.append((source, w[o, c, m, k]))
        terms = [product(source, weight) for source, weight in products]
        if b is not None:
            terms.append(b[o])
            products.append((b[o],))
        evaluated.append(sympy.Add(*terms))
        products_grid[n, o, i, j] = tuple(products)
    shape = g.shape
    params = {"w": to_array(w), "b": to_array(b)} if b is not None else {"w": to_array(w)}
    return Forward(x=to_array(x), params=params, g=to_array(g),
                   z=sympy.ImmutableDenseNDimArray(evaluated, shape),
                   z_products=products_grid)
