"""Hand-written loop references of the 1-D and 3-D convolutions, independent of symbackprop.

Plain Python loops over every index, as a textbook states the sums; padding is given
as one ``(begin, end)`` pair per spatial axis (the test turns the layer's padding into
pairs itself).  Nothing here imports the package.  Products with padding are not added
at all, so inf and NaN spread exactly as in the plain sums.
"""

from __future__ import annotations

import itertools

import numpy as np


def _positions(out_sizes, kernel, stride, dilation, pairs):
    """``(output index, kernel offset, input index)`` for every product with a real input;
    ``None`` in place of the input index for a padding position."""
    for out in itertools.product(*(range(s) for s in out_sizes)):
        for offset in itertools.product(*(range(k) for k in kernel)):
            yield out, offset, tuple(i * s + m * d - begin for i, m, s, d, (begin, _)
                                     in zip(out, offset, stride, dilation, pairs))


def output_sizes(sizes, kernel, stride, dilation, pairs):
    return tuple((size + begin + end - d * (k - 1) - 1) // s + 1
                 for size, k, s, d, (begin, end) in zip(sizes, kernel, stride, dilation, pairs))


def same_padding(kernel, dilation):
    """PyTorch's padding='same': d*(k-1) in all per axis, the odd extra at the end."""
    return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                 for k, d in zip(kernel, dilation))


def conv_forward_loops(x, w, b, stride, pairs, dilation, groups=1):
    batch, channels, *sizes = x.shape
    out_channels, group_in, *kernel = w.shape
    group_out = out_channels // groups
    out_sizes = output_sizes(sizes, kernel, stride, dilation, pairs)
    z = np.zeros((batch, out_channels, *out_sizes), dtype=np.result_type(x, w))
    for n in range(batch):
        for o in range(out_channels):
            first = (o // group_out) * group_in
            for out, offset, position in _positions(out_sizes, kernel, stride, dilation, pairs):
                if not all(0 <= p < s for p, s in zip(position, sizes)):
                    continue
                for c in range(group_in):
                    z[(n, o, *out)] += w[(o, c, *offset)] * x[(n, first + c, *position)]
            if b is not None:
                z[n, o] += b[o]
    return z


def conv_backward_loops(x, w, b, grad_out, stride, pairs, dilation, groups=1):
    batch, channels, *sizes = x.shape
    out_channels, group_in, *kernel = w.shape
    group_out = out_channels // groups
    out_sizes = grad_out.shape[2:]
    grad_x = np.zeros(x.shape, dtype=np.result_type(x, w, grad_out))
    grad_w = np.zeros(w.shape, dtype=grad_x.dtype)
    for n in range(batch):
        for o in range(out_channels):
            first = (o // group_out) * group_in
            for out, offset, position in _positions(out_sizes, kernel, stride, dilation, pairs):
                if not all(0 <= p < s for p, s in zip(position, sizes)):
                    continue
                g = grad_out[(n, o, *out)]
                for c in range(group_in):
                    grad_x[(n, first + c, *position)] += g * w[(o, c, *offset)]
                    grad_w[(o, c, *offset)] += g * x[(n, first + c, *position)]
    grad_b = None if b is None else grad_out.sum(axis=(0, *range(2, grad_out.ndim)))
    return grad_x, grad_w, grad_b
