"""Expand max and average pooling: every output as its window's maximum or mean.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.algebra import product
from symbackprop.core.expand import EXPAND, Forward, elementwise_forward
from symbackprop.core.naming import symbol_grid
from symbackprop.kinds.pool2d.rules import WindowMax
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d


def _window(layer, input_shape, n, c, i, j, x):
    """The window of output ``(n, c, i, j)`` in row-major order; ``None`` marks padding."""
    _, _, height, width = input_shape
    top, _, left, _ = layer.padding
    (sh, sw), (kernel_h, kernel_w) = layer.stride, layer.kernel_size
    window = []
    for m, k in itertools.product(range(kernel_h), range(kernel_w)):
        row, col = i * sh + m - top, j * sw + k - left
        window.append(x[n, c, row, col] if 0 <= row < height and 0 <= col < width else None)
    return window


def _pool_grids(layer, input_shape):
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", layer.output_shape_for(input_shape))
    return x, g


@EXPAND.register(MaxPool2d)
def _maxpool2d(layer, input_shape) -> Forward:
    x, g = _pool_grids(layer, input_shape)
    z = np.empty(g.shape, dtype=object)
    for index in progress.track(np.ndindex(*g.shape), "expanding z", g.size, unit="outputs"):
        # z[n,c,i,j] = max of the window's input elements; padding never wins.
        window = [element for element in _window(layer, input_shape, *index, x)
                  if element is not None]
        z[index] = WindowMax(sympy.Tuple(*window), sympy.Tuple(*index))
    return elementwise_forward(x, {}, g, z)


@EXPAND.register(AvgPool2d)
def _avgpool2d(layer, input_shape) -> Forward:
    x, g = _pool_grids(layer, input_shape)
    zero = sympy.Integer(0)
    z = np.empty(g.shape, dtype=object)
    written = np.empty(g.shape, dtype=object)
    for index in progress.track(np.ndindex(*g.shape), "expanding z", g.size, unit="outputs"):
        window = _window(layer, input_shape, *index, x)
        elements = [element for element in window if element is not None]
        # z[n,c,i,j] = (sum of the window) / divisor: KH*KW, or the real elements only.
        divisor = len(window) if layer.count_include_pad else len(elements)
        share = sympy.Rational(1, divisor)
        z[index] = sympy.Add(*[product(share, element) for element in elements])
        terms = [zero if element is None else element for element in window] \
            if layer.count_include_pad else elements
        total = sympy.Add(*terms, evaluate=False)
        written[index] = total if divisor == 1 else sympy.Mul(share, total, evaluate=False)
    return elementwise_forward(x, {}, g, z, written)
