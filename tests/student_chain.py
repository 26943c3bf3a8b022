"""Backward passes of a whole chain, as a student writes them layer by layer for
``Sequential(Conv2d(1, 2, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(8, 3))`` on
1 x 4 x 4 inputs (plain loops and NumPy, no symbackprop); one holds a classic mistake."""

import numpy as np


def _conv_forward(x, w, b):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    z = np.zeros((n, w.shape[0], h, wd))
    for i in range(h):
        for j in range(wd):
            z[:, :, i, j] = np.einsum("nckl,ockl->no", xp[:, :, i:i + 3, j:j + 3], w) + b
    return z


def _conv_backward(x, w, g):
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for i in range(h):
        for j in range(wd):
            dxp[:, :, i:i + 3, j:j + 3] += np.einsum("no,ockl->nckl", g[:, :, i, j], w)
            dw += np.einsum("no,nckl->ockl", g[:, :, i, j], xp[:, :, i:i + 3, j:j + 3])
    return dxp[:, :, 1:-1, 1:-1], dw, g.sum(axis=(0, 2, 3))


def _backward(x, w1, b1, w5, b5, grad_out, relu_gradient=True):
    z1 = _conv_forward(x, w1, b1)
    a2 = np.maximum(z1, 0)
    n, c, h, wd = a2.shape
    windows = a2.reshape(n, c, h // 2, 2, wd // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    a3 = windows.reshape(n, c, h // 2, wd // 2, 4).max(axis=-1)
    a4 = a3.reshape(n, -1)
    d4 = grad_out @ w5
    dw5, db5 = grad_out.T @ a4, grad_out.sum(axis=0)
    d3 = d4.reshape(a3.shape)
    d2 = np.zeros_like(a2)
    flat = windows.reshape(n, c, h // 2, wd // 2, 4)
    first = flat.argmax(axis=-1)  # the first maximum of each window
    for index in np.ndindex(*first.shape):
        k, l = divmod(int(first[index]), 2)
        n_, c_, i, j = index
        d2[n_, c_, 2 * i + k, 2 * j + l] += d3[index]
    d1 = d2 * (z1 > 0) if relu_gradient else d2  # the ReLU's derivative
    dx, dw1, db1 = _conv_backward(x, w1, d1)
    return dx, dw1, db1, dw5, db5


def backward(x, w1, b1, w5, b5, grad_out):
    return _backward(x, w1, b1, w5, b5, grad_out)


def backward_relu_forgotten(x, w1, b1, w5, b5, grad_out):
    return _backward(x, w1, b1, w5, b5, grad_out, relu_gradient=False)
