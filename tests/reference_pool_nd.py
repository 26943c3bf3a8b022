"""Hand-written loop references for max and average pooling in 1, 2 and 3 dimensions,
with PyTorch's arguments (stride, padding, dilation, ceil_mode, count_include_pad).

Written from PyTorch's documented rules, independently of symbackprop (nothing is
imported from it): plain Python loops over the windows, slow and obvious.

Rules, per spatial axis (input length L, window k, stride s, padding p before and q
after, dilation d):

- number of windows: ``floor((L + p + q - d*(k-1) - 1) / s) + 1``; with ``ceil_mode``
  ``ceil`` instead of ``floor``, and then one less when the last window would start
  at or past ``L + p`` (in the right padding);
- window ``i`` reads positions ``i*s - p + d*m``, ``m = 0..k-1``;
- max pooling: padding never wins; the gradient goes to the first maximum of the
  window in row-major order;
- average pooling: the divisor of a window is, with ``count_include_pad``, the product
  over axes of its extent clipped to ``[-p, L + q)`` (positions a ceil_mode window
  reaches past the padded input do not count), else the number of input elements it
  holds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _as_tuple(value, dims):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _pairs(padding, dims):
    """(before, after) per axis from an int, one int per axis or 2*dims ints."""
    if isinstance(padding, int):
        return [(padding, padding)] * dims
    padding = list(padding)
    if len(padding) == dims:
        return [(p, p) for p in padding]
    return [(padding[2 * a], padding[2 * a + 1]) for a in range(dims)]


def windows_along(size, kernel, stride, before, after, dilation, ceil_mode):
    span = size + before + after - dilation * (kernel - 1) - 1
    count = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (count - 1) * stride >= size + before:
        count -= 1
    return count


def _setup(x, kernel_size, stride, padding, dilation, ceil_mode):
    dims = x.ndim - 2
    kernel = _as_tuple(kernel_size, dims)
    stride = kernel if stride is None else _as_tuple(stride, dims)
    dilation = _as_tuple(dilation, dims)
    pads = _pairs(padding, dims)
    counts = [windows_along(x.shape[2 + a], kernel[a], stride[a], *pads[a], dilation[a],
                            ceil_mode) for a in range(dims)]
    return dims, kernel, stride, dilation, pads, counts


def _positions(out, kernel, stride, dilation, pads):
    """Every position of window ``out`` (row-major), per axis ``i*s - p + d*m``."""
    per_axis = [[out[a] * stride[a] - pads[a][0] + dilation[a] * m for m in range(kernel[a])]
                for a in range(len(out))]
    return list(itertools.product(*per_axis))


def _inside(position, sizes):
    return all(0 <= p < size for p, size in zip(position, sizes))


def maxpool_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    dims, kernel, stride, dilation, pads, counts = _setup(x, kernel_size, stride, padding,
                                                          dilation, ceil_mode)
    sizes = x.shape[2:]
    z = np.zeros((*x.shape[:2], *counts))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out in itertools.product(*(range(count) for count in counts)):
                values = [x[(n, c, *p)] for p in _positions(out, kernel, stride, dilation, pads)
                          if _inside(p, sizes)]
                best = values[0]
                for value in values[1:]:
                    if value > best:
                        best = value
                z[(n, c, *out)] = best
    return z


def maxpool_backward(x, grad_out, kernel_size, stride=None, padding=0, dilation=1,
                     ceil_mode=False):
    dims, kernel, stride, dilation, pads, counts = _setup(x, kernel_size, stride, padding,
                                                          dilation, ceil_mode)
    sizes = x.shape[2:]
    grad = np.zeros(x.shape)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out in itertools.product(*(range(count) for count in counts)):
                best = None
                for p in _positions(out, kernel, stride, dilation, pads):
                    if _inside(p, sizes) and (best is None or x[(n, c, *p)] > x[(n, c, *best)]):
                        best = p  # strictly greater: a tie stays with the first
                grad[(n, c, *best)] += grad_out[(n, c, *out)]
    return grad


def _divisor(out, kernel, stride, pads, sizes, count_include_pad):
    if count_include_pad:
        total = 1
        for a in range(len(out)):
            start = out[a] * stride[a] - pads[a][0]
            end = min(start + kernel[a], sizes[a] + pads[a][1])
            total *= end - start
        return total
    return sum(1 for p in _positions(out, kernel, stride, (1,) * len(out), pads)
               if _inside(p, sizes))


def avgpool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True):
    dims, kernel, stride, dilation, pads, counts = _setup(x, kernel_size, stride, padding, 1,
                                                          ceil_mode)
    sizes = x.shape[2:]
    z = np.zeros((*x.shape[:2], *counts))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out in itertools.product(*(range(count) for count in counts)):
                total = sum(x[(n, c, *p)] for p in _positions(out, kernel, stride, dilation, pads)
                            if _inside(p, sizes))
                z[(n, c, *out)] = total / _divisor(out, kernel, stride, pads, sizes,
                                                   count_include_pad)
    return z


def avgpool_backward(x, grad_out, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True):
    dims, kernel, stride, dilation, pads, counts = _setup(x, kernel_size, stride, padding, 1,
                                                          ceil_mode)
    sizes = x.shape[2:]
    grad = np.zeros(x.shape)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out in itertools.product(*(range(count) for count in counts)):
                share = grad_out[(n, c, *out)] / _divisor(out, kernel, stride, pads, sizes,
                                                          count_include_pad)
                for p in _positions(out, kernel, stride, dilation, pads):
                    if _inside(p, sizes):
                        grad[(n, c, *p)] += share
    return grad


def upsample_nearest_forward(x, scale):
    """``z[n, c, i, j] = x[n, c, i // sh, j // sw]``."""
    sh, sw = scale
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * sh, w * sw))
    for i in range(h * sh):
        for j in range(w * sw):
            z[:, :, i, j] = x[:, :, i // sh, j // sw]
    return z


def upsample_nearest_backward(x, grad_out, scale):
    """``dL/dx[n, c, a, b]`` = the sum of g over the ``sh x sw`` block it was copied to."""
    sh, sw = scale
    grad = np.zeros(x.shape)
    for i in range(grad_out.shape[2]):
        for j in range(grad_out.shape[3]):
            grad[:, :, i // sh, j // sw] += grad_out[:, :, i, j]
    return grad
