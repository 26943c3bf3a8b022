"""Expand a 1-D or 3-D convolution: every output element as a sum of ``w*x`` products.

``z[n,o,i...] = b[o] + sum_{c,m...} w[o,c,m...] * xp[n, c', i*s + m*d ...]`` with one
``i`` and one ``m`` per spatial axis (``c'`` the ``c``-th channel of ``o``'s group);
the products that meet padding are kept as ``0 w`` for printing.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.algebra import product
from symbackprop.core.expand import EXPAND, Forward
from symbackprop.core.naming import symbol_grid, to_array
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d


def expand_convnd(layer, input_shape) -> Forward:
    """The forward pass of ``layer`` on ``input_shape``, written N-dimensionally."""
    batch, _, *sizes = input_shape
    out_sizes = layer.output_size(tuple(sizes))
    begins = layer.padding[::2]
    cg, og = layer.group_in_channels, layer.group_out_channels

    x = symbol_grid("x", input_shape)
    w = symbol_grid("w", layer.weight_shape)
    b = symbol_grid("b", layer.bias_shape) if layer.bias else None
    g = symbol_grid("g", (batch, layer.out_channels, *out_sizes))

    zero = sympy.Integer(0)
    offsets = list(itertools.product(*(range(k) for k in layer.kernel_size)))
    evaluated = []
    products_grid = np.empty(g.shape, dtype=object)
    for index in progress.track(np.ndindex(*g.shape), "expanding z", g.size, unit="outputs"):
        n, o, *out = index
        group = o // og
        products = []
        for c in range(cg):
            for offset in offsets:
                # the input position this kernel element meets, on every axis
                position = tuple(i * s + m * d - p for i, m, s, d, p in zip(
                    out, offset, layer.stride, layer.dilation, begins))
                inside = all(0 <= at < size for at, size in zip(position, sizes))
                source = x[(n, group * cg + c, *position)] if inside else zero
                products.append((source, w[(o, c, *offset)]))
        terms = [product(source, weight) for source, weight in products]
        if b is not None:
            terms.append(b[o])
            products.append((b[o],))
        evaluated.append(sympy.Add(*terms))
        products_grid[index] = tuple(products)
    params = {"w": to_array(w), "b": to_array(b)} if b is not None else {"w": to_array(w)}
    return Forward(x=to_array(x), params=params, g=to_array(g),
                   z=sympy.ImmutableDenseNDimArray(evaluated, g.shape),
                   z_products=products_grid)


for _layer_type in (Conv1d, Conv3d):
    EXPAND.register(_layer_type, expand_convnd)
