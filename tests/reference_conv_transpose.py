"""Hand-written loop references of the 1-D, 2-D and 3-D transposed convolution.

Written from the definition only (PyTorch's ConvTranspose{1,2,3}d), independently of
symbackprop (nothing here imports it): every input element scatters into the output,

    z[n, o, i*s - p_begin + k*d] += x[n, c, i] * w[c, o_local, k],

plain Python loops over every index, one product at a time, in float64.  A contribution
landing outside the output is dropped.  The backward pass is the same loop, each product
sending its share back: dL/dx[n, c, i] += g[n, o, j] w[c, o_local, k] and dL/dw[c,
o_local, k] += x[n, c, i] g[n, o, j].
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["output_length", "conv_transpose_forward_loops", "conv_transpose_backward_loops",
           "conv_forward_loops"]


def _per_axis(value, dims):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims


def _pads(padding, dims):
    """(begin, end) per axis from an int, one int per axis, or begin,end pairs flattened."""
    if isinstance(padding, int):
        return [(padding, padding)] * dims
    padding = tuple(padding)
    if len(padding) == dims:
        return [(p, p) for p in padding]
    return [(padding[2 * a], padding[2 * a + 1]) for a in range(dims)]


def output_length(size, kernel, stride, begin, end, dilation, output_padding):
    return (size - 1) * stride - begin - end + dilation * (kernel - 1) + output_padding + 1


def _setup(x, w, stride, padding, output_padding, dilation):
    dims = x.ndim - 2
    stride, dilation, extra = (_per_axis(v, dims) for v in (stride, dilation, output_padding))
    pads = _pads(padding, dims)
    kernel = w.shape[2:]
    out = tuple(output_length(x.shape[2 + a], kernel[a], stride[a], pads[a][0], pads[a][1],
                              dilation[a], extra[a]) for a in range(dims))
    return dims, stride, dilation, pads, kernel, out


def _contributions(x, w, groups, stride, pads, dilation, out):
    """Every (n, c, i, o, o_local, k, j) with j inside the output."""
    batch, channels = x.shape[:2]
    c_group, o_group = channels // groups, w.shape[1]
    for n in range(batch):
        for c in range(channels):
            group = c // c_group
            for i in itertools.product(*(range(size) for size in x.shape[2:])):
                for o_local in range(o_group):
                    for k in itertools.product(*(range(size) for size in w.shape[2:])):
                        j = tuple(i[a] * stride[a] - pads[a][0] + k[a] * dilation[a]
                                  for a in range(len(i)))
                        if all(0 <= j[a] < out[a] for a in range(len(j))):
                            yield n, c, i, group * o_group + o_local, o_local, k, j


def conv_transpose_forward_loops(x, w, b=None, stride=1, padding=0, output_padding=0,
                                 dilation=1, groups=1):
    """z of a transposed convolution: x (N, C, *L), w (C, O/groups, *K), b (O,) or None."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    dims, stride, dilation, pads, kernel, out = _setup(x, w, stride, padding, output_padding,
                                                       dilation)
    out_channels = w.shape[1] * groups
    z = np.zeros((x.shape[0], out_channels, *out))
    if b is not None:
        for o in range(out_channels):
            z[:, o] = b[o]
    for n, c, i, o, o_local, k, j in _contributions(x, w, groups, stride, pads, dilation, out):
        z[(n, o, *j)] += x[(n, c, *i)] * w[(c, o_local, *k)]
    return z


def conv_transpose_backward_loops(x, w, b, grad_out, stride=1, padding=0, output_padding=0,
                                  dilation=1, groups=1):
    """(dL/dx, dL/dw, dL/db) given grad_out = dL/dz; dL/db is None without bias."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    g = np.asarray(grad_out, dtype=float)
    dims, stride, dilation, pads, kernel, out = _setup(x, w, stride, padding, output_padding,
                                                       dilation)
    grad_x, grad_w = np.zeros_like(x), np.zeros_like(w)
    for n, c, i, o, o_local, k, j in _contributions(x, w, groups, stride, pads, dilation, out):
        grad_x[(n, c, *i)] += g[(n, o, *j)] * w[(c, o_local, *k)]
        grad_w[(c, o_local, *k)] += x[(n, c, *i)] * g[(n, o, *j)]
    grad_b = None if b is None else g.sum(axis=(0, *range(2, g.ndim)))
    return grad_x, grad_w, grad_b


def conv_forward_loops(x, w, stride=1, padding=0, dilation=1, groups=1):
    """The convolution z[n, c, i] = sum_(o,k) w[c, o_local, k] x_pad[n, o, i*s + k*d]:
    w laid out (out_channels, in_channels/groups, *K), as PyTorch's Conv{1,2,3}d."""
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    dims = x.ndim - 2
    stride, dilation = _per_axis(stride, dims), _per_axis(dilation, dims)
    pads = _pads(padding, dims)
    in_group = w.shape[1]
    out_group = w.shape[0] // groups
    out = tuple((x.shape[2 + a] + pads[a][0] + pads[a][1] - dilation[a] * (w.shape[2 + a] - 1)
                 - 1) // stride[a] + 1 for a in range(dims))
    z = np.zeros((x.shape[0], w.shape[0], *out))
    for n in range(x.shape[0]):
        for c in range(w.shape[0]):
            group = c // out_group
            for i in itertools.product(*(range(size) for size in out)):
                for o_local in range(in_group):
                    for k in itertools.product(*(range(size) for size in w.shape[2:])):
                        r = tuple(i[a] * stride[a] + k[a] * dilation[a] - pads[a][0]
                                  for a in range(dims))
                        if all(0 <= r[a] < x.shape[2 + a] for a in range(dims)):
                            z[(n, c, *i)] += w[(c, o_local, *k)] * \
                                x[(n, group * in_group + o_local, *r)]
    return z


def conv_transpose_vectorised(x, w, b, grad_out=None, stride=1, padding=0, output_padding=0,
                              dilation=1, groups=1):
    """The same scatter with the channels and the batch vectorised: a loop over every input
    position i and kernel offset k (one np.einsum over n, c, o each).

    Returns z, or (dL/dx, dL/dw, dL/db) when ``grad_out`` is given; for layers too wide
    for the plain loops (the catalog's 64 -> 32 channels).
    """
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    dims, stride, dilation, pads, kernel, out = _setup(x, w, stride, padding, output_padding,
                                                       dilation)
    c_group, o_group = x.shape[1] // groups, w.shape[1]
    z = np.zeros((x.shape[0], o_group * groups, *out))
    if grad_out is not None:
        g = np.asarray(grad_out, dtype=float)
        grad_x, grad_w = np.zeros_like(x), np.zeros_like(w)
    for group in range(groups):
        ins = slice(group * c_group, (group + 1) * c_group)
        outs = slice(group * o_group, (group + 1) * o_group)
        for i in itertools.product(*(range(size) for size in x.shape[2:])):
            for k in itertools.product(*(range(size) for size in kernel)):
                j = tuple(i[a] * stride[a] - pads[a][0] + k[a] * dilation[a]
                          for a in range(dims))
                if not all(0 <= j[a] < out[a] for a in range(dims)):
                    continue
                x_i, w_k = x[(slice(None), ins, *i)], w[(ins, slice(None), *k)]
                if grad_out is None:
                    z[(slice(None), outs, *j)] += x_i @ w_k
                else:
                    g_j = g[(slice(None), outs, *j)]
                    grad_x[(slice(None), ins, *i)] += g_j @ w_k.T
                    grad_w[(ins, slice(None), *k)] += x_i.T @ g_j
    if grad_out is None:
        if b is not None:
            z += np.asarray(b, dtype=float).reshape(-1, *(1,) * dims)
        return z
    grad_b = None if b is None else g.sum(axis=(0, *range(2, g.ndim)))
    return grad_x, grad_w, grad_b
