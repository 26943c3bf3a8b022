"""Expand a transposed convolution: every output element as the sum of what lands on it.

The scatter form, as the layer is defined: each input element sends a contribution to
every output channel of its group and every kernel offset,

    z[n, o, i*s - p_begin + k*d] += x[n, c, i] * w[c, o_local, k],

and a contribution whose position falls outside ``[0, Lo)`` is cropped.  Each output
element is the sum of the contributions that land on it (in the order of ``c``, ``i``,
``k``), plus ``b[o]``; an output no contribution reaches (output padding beyond the
last one, or the gaps of a stride larger than the dilated kernel) is its bias alone.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.algebra import product
from symbackprop.core.expand import EXPAND, Forward
from symbackprop.core.naming import symbol_grid, to_array
from symbackprop.kinds.conv_transpose.spec import LAYER_TYPES

__all__ = ["contributions"]


def contributions(layer, input_shape) -> dict:
    """``{output index: [(input index, weight index), ...]}`` of the scatter.

    Only contributions that land inside the output; each list in the order of the
    input channel, the input position and the kernel offset.
    """
    batch, channels, *sizes = input_shape
    out_sizes = layer.output_size(tuple(sizes))
    cg, og = layer.group_in_channels, layer.group_out_channels
    landed = {index: [] for index in np.ndindex(batch, layer.out_channels, *out_sizes)}
    offsets = list(np.ndindex(*layer.kernel_size))
    for n, c in itertools.product(range(batch), range(channels)):
        group = c // cg
        for position in np.ndindex(*sizes):
            for o_local in range(og):
                for offset in offsets:
                    target = tuple(i * s - p + k * d for i, s, p, k, d in zip(
                        position, layer.stride, layer.pad_begin, offset, layer.dilation))
                    if all(0 <= t < size for t, size in zip(target, out_sizes)):
                        landed[(n, group * og + o_local, *target)].append(
                            ((n, c, *position), (c, o_local, *offset)))
    return landed


def _expand_transposed(layer, input_shape) -> Forward:
    out_shape = layer.output_shape_for(input_shape)
    x = symbol_grid("x", input_shape)
    w = symbol_grid("w", layer.weight_shape)
    b = symbol_grid("b", layer.bias_shape) if layer.bias else None
    g = symbol_grid("g", out_shape)
    landed = contributions(layer, input_shape)

    evaluated = np.empty(out_shape, dtype=object)
    products_grid = np.empty(out_shape, dtype=object)
    for index in progress.track(np.ndindex(*out_shape), "expanding z", g.size, unit="outputs"):
        products = [(x[source], w[weight]) for source, weight in landed[index]]
        terms = [product(source, weight) for source, weight in products]
        if b is not None:
            terms.append(b[index[1]])
            products.append((b[index[1]],))
        evaluated[index] = sympy.Add(*terms)
        products_grid[index] = tuple(products)
    params = {"w": to_array(w), "b": to_array(b)} if b is not None else {"w": to_array(w)}
    return Forward(x=to_array(x), params=params, g=to_array(g), z=to_array(evaluated),
                   z_products=products_grid)


for _layer_type in LAYER_TYPES:
    EXPAND.register(_layer_type, _expand_transposed)
