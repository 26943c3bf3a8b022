"""Hand-written N-dimensional pooling backward passes, as a student writes them, with
PyTorch's arguments: right ones and wrong ones (each wrong one marked ``# MISTAKE``).

``backward(x, grad_out, kernel_size, stride, padding, dilation, ceil_mode)`` (average
pooling: ``ceil_mode, count_include_pad``, no dilation); ``padding`` an int (symmetric)
or one int per axis.
"""

import itertools
import math

import numpy as np


def _tuple(value, dims):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _count(size, k, s, p, d, ceil_mode):
    span = size + 2 * p - d * (k - 1) - 1
    count = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (count - 1) * s >= size + p:
        count -= 1
    return count


def _windows(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Yield ``(out index, [input positions of the window], start per axis)``."""
    dims = x.ndim - 2
    k = _tuple(kernel_size, dims)
    s = k if stride is None else _tuple(stride, dims)
    p, d = _tuple(padding, dims), _tuple(dilation, dims)
    counts = [_count(x.shape[2 + a], k[a], s[a], p[a], d[a], ceil_mode) for a in range(dims)]
    for out in itertools.product(*(range(c) for c in counts)):
        starts = [out[a] * s[a] - p[a] for a in range(dims)]
        axes = [[starts[a] + d[a] * m for m in range(k[a])] for a in range(dims)]
        inside = [pos for pos in itertools.product(*axes)
                  if all(0 <= q < x.shape[2 + a] for a, q in enumerate(pos))]
        yield out, inside, starts, k, p


def max_backward(x, grad_out, kernel_size=2, stride=None, padding=0, dilation=1,
                 ceil_mode=False):
    """Right: each window's g to its first maximum."""
    grad = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out, inside, *_ in _windows(x, kernel_size, stride, padding, dilation,
                                            ceil_mode):
                best = max(inside, key=lambda pos: (x[(n, c, *pos)], -inside.index(pos)))
                grad[(n, c, *best)] += grad_out[(n, c, *out)]
    return grad


def max_backward_ceil_dropped(x, grad_out, kernel_size=2, stride=None, padding=0,
                              dilation=1, ceil_mode=False):
    """MISTAKE: pools as if ceil_mode were False (the last windows are left out)."""
    grad = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out, inside, *_ in _windows(x, kernel_size, stride, padding, dilation,
                                            False):  # MISTAKE
                best = max(inside, key=lambda pos: (x[(n, c, *pos)], -inside.index(pos)))
                grad[(n, c, *best)] += grad_out[(n, c, *out)]
    return grad


def max_backward_dilation_ignored(x, grad_out, kernel_size=2, stride=None, padding=0,
                                  dilation=1, ceil_mode=False):
    """MISTAKE: the windows start where the dilated ones start but read contiguous
    elements."""
    grad = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out, _, starts, k, _ in _windows(x, kernel_size, stride, padding, dilation,
                                                 ceil_mode):
                axes = [range(start, start + size) for start, size in zip(starts, k)]  # MISTAKE
                inside = [pos for pos in itertools.product(*axes)
                          if all(0 <= q < x.shape[2 + a] for a, q in enumerate(pos))]
                best = max(inside, key=lambda pos: (x[(n, c, *pos)], -inside.index(pos)))
                grad[(n, c, *best)] += grad_out[(n, c, *out)]
    return grad


def _divisor(x, starts, k, p, count_include_pad, inside):
    if not count_include_pad:
        return len(inside)
    total = 1
    for a, (start, size, pad) in enumerate(zip(starts, k, p)):
        total *= min(start + size, x.shape[2 + a] + pad) - start
    return total


def avg_backward(x, grad_out, kernel_size=2, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
    """Right: an equal share g / D to every element, D PyTorch's divisor."""
    grad = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out, inside, starts, k, p in _windows(x, kernel_size, stride, padding, 1,
                                                      ceil_mode):
                share = grad_out[(n, c, *out)] / _divisor(x, starts, k, p, count_include_pad,
                                                          inside)
                for pos in inside:
                    grad[(n, c, *pos)] += share
    return grad


def avg_backward_whole_divisor(x, grad_out, kernel_size=2, stride=None, padding=0,
                               ceil_mode=False, count_include_pad=True):
    """MISTAKE: every window divides by the whole window, a ceil_mode window too."""
    grad = np.zeros_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for out, inside, _starts, k, _p in _windows(x, kernel_size, stride, padding, 1,
                                                      ceil_mode):
                share = grad_out[(n, c, *out)] / math.prod(k)  # MISTAKE
                for pos in inside:
                    grad[(n, c, *pos)] += share
    return grad
