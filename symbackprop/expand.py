"""Stage 2, expand: layer spec -> every output element as a SymPy expression.

Input: a layer and the shape of its input.  Output: a :class:`Forward` holding
the symbol arrays (``x``, the parameters, the upstream gradient ``g``), the
evaluated outputs ``z`` and, for printing, ``z_written``: the same sums as a
textbook writes them by hand, padding terms kept as ``0 w``.

Expanders are registered per layer type; the rest of the pipeline never names a
particular layer.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import sympy

from . import progress
from .algebra import product
from .layers import AvgPool2d, Conv2d, Flatten, LeakyReLU, Linear, MaxPool2d, ReLU, Sigmoid, Tanh
from .local_rules import WindowMax, activation_function
from .naming import symbol_grid, to_array

__all__ = ["Forward", "expand", "register_expander"]


@dataclass(frozen=True)
class Forward:
    """The forward pass of one layer instance, element by element."""

    x: sympy.Array
    params: dict  # name -> sympy.Array (parameters in call order), e.g. {"w": ..., "b": ...}
    z: sympy.Array
    #: For printing: each output's products as factor tuples, in the order the
    #: formula writes them, with padding kept as ``(0, w)``; a bias is ``(b,)``.
    z_products: np.ndarray
    g: sympy.Array

    @functools.cached_property  # frozen: cached in the instance __dict__, computed once
    def z_written(self) -> sympy.Array:
        """``z`` as a textbook writes it: unevaluated sums, padding products as ``0*w``."""
        return to_array(written_sums(self.z_products))


def written_sums(products_grid: np.ndarray) -> np.ndarray:
    """Unevaluated sums of unevaluated products (so ``0*w`` stays visible)."""
    written = np.empty(products_grid.shape, dtype=object)
    for index in progress.track(np.ndindex(*products_grid.shape), "writing z out",
                                products_grid.size, unit="outputs"):
        written[index] = sympy.Add(
            *[sympy.Mul(*factors, evaluate=False) if len(factors) > 1 else factors[0]
              for factors in products_grid[index]], evaluate=False)
    return written


_EXPANDERS = {}


def register_expander(layer_type):
    """Decorator: ``expand`` dispatches ``layer_type`` instances to the function."""
    def decorate(function):
        _EXPANDERS[layer_type] = function
        return function
    return decorate


def expand(layer, input_shape: tuple[int, ...]) -> Forward:
    """Expand ``layer`` on an input of ``input_shape`` (``(N, C, H, W)`` or ``(N, F)``)."""
    try:
        expander = _EXPANDERS[type(layer)]
    except KeyError:
        raise TypeError(f"symbackprop cannot expand a {type(layer).__name__}") from None
    return expander(layer, input_shape)


@register_expander(Conv2d)
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



# ---------------------------------------------------------------------------
# Pooling, activations, flatten, fully connected
# ---------------------------------------------------------------------------

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


@register_expander(MaxPool2d)
def _maxpool2d(layer, input_shape) -> Forward:
    x, g = _pool_grids(layer, input_shape)
    z = np.empty(g.shape, dtype=object)
    for index in progress.track(np.ndindex(*g.shape), "expanding z", g.size, unit="outputs"):
        # z[n,c,i,j] = max of the window's input elements; padding never wins.
        window = [element for element in _window(layer, input_shape, *index, x)
                  if element is not None]
        z[index] = WindowMax(sympy.Tuple(*window), sympy.Tuple(*index))
    return _elementwise_forward(x, {}, g, z)


@register_expander(AvgPool2d)
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
    return _elementwise_forward(x, {}, g, z, written)


def _activation(layer, input_shape) -> Forward:
    function = activation_function(layer.kind)
    constants = [sympy.Float(value) for value in layer.constants]
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", input_shape)
    z = np.empty(g.shape, dtype=object)
    for index in np.ndindex(*g.shape):
        z[index] = function(x[index], *constants)  # a = f(net), elementwise
    return _elementwise_forward(x, {}, g, z)


for _layer_type in (ReLU, LeakyReLU, Sigmoid, Tanh):
    register_expander(_layer_type)(_activation)


@register_expander(Flatten)
def _flatten(layer, input_shape) -> Forward:
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", layer.output_shape_for(input_shape))
    # z[n, f] = x[n, c, h, w] with f = (c*H + h)*W + w (row-major).
    z = x.reshape(g.shape)
    return _elementwise_forward(x, {}, g, z)


@register_expander(Linear)
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


def _elementwise_forward(x, params, g, z, written=None) -> Forward:
    """A :class:`Forward` whose outputs are single expressions (no products to show)."""
    shown = z if written is None else written
    products_grid = np.empty(g.shape, dtype=object)
    for index in np.ndindex(*g.shape):
        products_grid[index] = ((shown[index],),)
    return Forward(x=to_array(x), params=params, g=to_array(g), z=to_array(z),
                   z_products=products_grid)
