"""Hand-written loop references for softmax, log-softmax, cross-entropy and MSE.

Written from PyTorch's documented definitions, element by element with Python loops and
``math`` (``math.fsum`` for sums), independent of symbackprop: nothing here imports it.
The gradients are written from the definitions too (the softmax Jacobian ``s_j ([j=k] -
s_k)`` summed against ``g`` by a double loop), never from the package's closed forms.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _rows(shape, axis):
    """Every index tuple of ``shape`` without ``axis``, as a list of full-index makers."""
    others = [range(size) for position, size in enumerate(shape) if position != axis]
    for rest in itertools.product(*others):
        def at(k, rest=rest):
            index = list(rest)
            index.insert(axis, k)
            return tuple(index)
        yield at


def _softmax_row(values):
    top = max(values)
    if math.isnan(top):
        return [math.nan] * len(values)
    exps = [math.exp(v - top) for v in values]
    total = math.fsum(exps)
    return [e / total for e in exps]


def _log_softmax_row(values):
    top = max(values)
    total = top + math.log(math.fsum(math.exp(v - top) for v in values))
    return [v - total for v in values]


def softmax(x, dim):
    x = np.asarray(x, dtype=float)
    axis = dim % x.ndim
    out = np.zeros(x.shape)
    for at in _rows(x.shape, axis):
        row = _softmax_row([x[at(k)] for k in range(x.shape[axis])])
        for k, value in enumerate(row):
            out[at(k)] = value
    return out


def log_softmax(x, dim):
    x = np.asarray(x, dtype=float)
    axis = dim % x.ndim
    out = np.zeros(x.shape)
    for at in _rows(x.shape, axis):
        row = _log_softmax_row([x[at(k)] for k in range(x.shape[axis])])
        for k, value in enumerate(row):
            out[at(k)] = value
    return out


def softmax_backward(x, g, dim):
    """dL/dx_k = sum_j g_j ds_j/dx_k, ds_j/dx_k = s_j ([j = k] - s_k)."""
    x, g = np.asarray(x, dtype=float), np.asarray(g, dtype=float)
    axis = dim % x.ndim
    out = np.zeros(x.shape)
    length = x.shape[axis]
    for at in _rows(x.shape, axis):
        s = _softmax_row([x[at(k)] for k in range(length)])
        for k in range(length):
            out[at(k)] = math.fsum(g[at(j)] * s[j] * ((1.0 if j == k else 0.0) - s[k])
                                   for j in range(length))
    return out


def log_softmax_backward(x, g, dim):
    """dL/dx_k = sum_j g_j ([j = k] - s_k)."""
    x, g = np.asarray(x, dtype=float), np.asarray(g, dtype=float)
    axis = dim % x.ndim
    out = np.zeros(x.shape)
    length = x.shape[axis]
    for at in _rows(x.shape, axis):
        s = _softmax_row([x[at(k)] for k in range(length)])
        for k in range(length):
            out[at(k)] = math.fsum(g[at(j)] * ((1.0 if j == k else 0.0) - s[k])
                                   for j in range(length))
    return out


def _samples(x, target):
    """``(sample index without the class axis, its target)`` for every sample/position."""
    shape = (x.shape[0],) + x.shape[2:]
    for index in itertools.product(*[range(size) for size in shape]):
        yield index, int(target[index])


def _full(index, c):
    return (index[0], c) + tuple(index[1:])


def cross_entropy(x, target, weight=None, reduction="mean", ignore_index=-100,
                  label_smoothing=0.0):
    """PyTorch's ``cross_entropy`` with class-index targets, by loops."""
    x, target = np.asarray(x, dtype=float), np.asarray(target)
    classes = x.shape[1]
    w = [1.0] * classes if weight is None else [float(v) for v in weight]
    eps = label_smoothing
    losses = np.zeros(target.shape)
    counted = []
    for index, y in _samples(x, target):
        if y == ignore_index:
            continue
        log_p = _log_softmax_row([x[_full(index, c)] for c in range(classes)])
        loss = -(1 - eps) * w[y] * log_p[y]
        if eps:
            loss -= eps / classes * math.fsum(w[c] * log_p[c] for c in range(classes))
        losses[index] = loss
        counted.append(w[y])
    if reduction == "none":
        return losses
    total = math.fsum(losses.ravel())
    if reduction == "sum":
        return total
    denominator = math.fsum(counted)
    return total / denominator if denominator else math.nan


def cross_entropy_backward(x, target, weight=None, reduction="mean", ignore_index=-100,
                           label_smoothing=0.0, grad_out=1.0):
    """d loss / d x from the definition: d(-log p_j)/dx_k = s_k - [j = k], per term."""
    x, target = np.asarray(x, dtype=float), np.asarray(target)
    classes = x.shape[1]
    w = [1.0] * classes if weight is None else [float(v) for v in weight]
    eps = label_smoothing
    out = np.zeros(x.shape)
    grad_out = np.asarray(grad_out, dtype=float)
    denominator = math.fsum(w[y] for _, y in _samples(x, target) if y != ignore_index)
    for index, y in _samples(x, target):
        if y == ignore_index:
            continue
        s = _softmax_row([x[_full(index, c)] for c in range(classes)])
        upstream = float(grad_out[index]) if reduction == "none" else float(grad_out)
        scale = upstream / denominator if reduction == "mean" else upstream
        for k in range(classes):
            total = -(1 - eps) * w[y] * ((1.0 if k == y else 0.0) - s[k])
            for c in range(classes):
                total -= eps / classes * w[c] * ((1.0 if k == c else 0.0) - s[k])
            out[_full(index, k)] = total * scale
    return out


def mse(x, target, reduction="mean"):
    x, target = np.asarray(x, dtype=float), np.asarray(target, dtype=float)
    squares = np.zeros(x.shape)
    for index in itertools.product(*[range(size) for size in x.shape]):
        squares[index] = (x[index] - target[index]) ** 2
    if reduction == "none":
        return squares
    total = math.fsum(squares.ravel())
    return total / x.size if reduction == "mean" else total


def mse_backward(x, target, reduction="mean", grad_out=1.0):
    x, target = np.asarray(x, dtype=float), np.asarray(target, dtype=float)
    grad_out = np.asarray(grad_out, dtype=float)
    out = np.zeros(x.shape)
    for index in itertools.product(*[range(size) for size in x.shape]):
        upstream = float(grad_out[index]) if reduction == "none" else float(grad_out)
        out[index] = 2 * (x[index] - target[index]) * upstream
        if reduction == "mean":
            out[index] /= x.size
    return out
