"""Expand max and average pooling in any number of spatial axes: every output as its
window's maximum or mean.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.algebra import product
from symbackprop.core.expand import EXPAND, Forward, elementwise_forward
from symbackprop.core.naming import symbol_grid
from symbackprop.kinds.pool2d.rules import OUTSIDE, PADDING, WindowMax, divisor, window
from symbackprop.kinds.pool2d.spec import MAX_POOLS, POOLS


def _is_element(entry) -> bool:
    return not isinstance(entry, str)


def _pool_grids(layer, input_shape):
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", layer.output_shape_for(input_shape))
    return x, g


def _maxpool(layer, input_shape) -> Forward:
    x, g = _pool_grids(layer, input_shape)
    z = np.empty(g.shape, dtype=object)
    for index in progress.track(np.ndindex(*g.shape), "expanding z", g.size, unit="outputs"):
        # z[n,c,i,...] = max of the window's input elements; padding never wins.
        elements = [e for e in window(layer, input_shape, index, x) if _is_element(e)]
        z[index] = WindowMax(sympy.Tuple(*elements), sympy.Tuple(*index))
    return elementwise_forward(x, {}, g, z)


def _avgpool(layer, input_shape) -> Forward:
    x, g = _pool_grids(layer, input_shape)
    zero = sympy.Integer(0)
    z = np.empty(g.shape, dtype=object)
    written = np.empty(g.shape, dtype=object)
    for index in progress.track(np.ndindex(*g.shape), "expanding z", g.size, unit="outputs"):
        entries = window(layer, input_shape, index, x)
        elements = [e for e in entries if _is_element(e)]
        # z = (sum of the window) / divisor: the positions inside the padded input
        # (count_include_pad), or the input elements only.
        share = sympy.Rational(1, divisor(layer, entries))
        z[index] = sympy.Add(*[product(share, element) for element in elements])
        terms = [zero if entry == PADDING else entry for entry in entries if entry != OUTSIDE] \
            if layer.count_include_pad else elements
        total = sympy.Add(*terms, evaluate=False)
        written[index] = total if share == 1 else sympy.Mul(share, total, evaluate=False)
    return elementwise_forward(x, {}, g, z, written)


for _kind in POOLS:
    if _kind in MAX_POOLS:
        EXPAND.register(_kind)(_maxpool)
    else:
        EXPAND.register(_kind)(_avgpool)
