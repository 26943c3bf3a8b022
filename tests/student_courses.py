"""Backward passes written the way three courses teach them, for check-impl's conventions.

Each is written from the course's own description (plain loops, no symbackprop):

- Stanford CS231n (assignment 2): ``conv_forward_naive(x, w, b, conv_param) -> (out,
  cache)``, ``conv_backward_naive(dout, cache) -> (dx, dw, db)``, NCHW, weights
  ``(F, C, HH, WW)``; ``max_pool_forward_naive(x, pool_param)``; ``affine_forward(x, w,
  b)`` with ``w`` of shape ``(D, M)``; ``relu_forward(x)``.
- deeplearning.ai (course 4, week 1; course 1, week 4): ``conv_forward(A_prev, W, b,
  hparameters)`` in NHWC with ``W`` of ``(f, f, n_C_prev, n_C)`` and ``b`` of ``(1, 1,
  1, n_C)``; ``pool_forward(A_prev, hparameters, mode)``; ``linear_forward(A, W, b)``
  with samples in columns; ``relu(Z) -> (A, cache)``, ``relu_backward(dA, cache)``.
- A textbook's exercise answer: a ``Conv2D`` class with ``forward`` and ``backward``
  methods, weights in ``self.W``, gradients in ``self.dW`` and ``self.db``.

Functions whose name says ``mistake`` hold one classic mistake each (commented).
"""

import numpy as np


# -- CS231n ----------------------------------------------------------------------------------
def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, F, Ho, Wo = dout.shape
    _, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    rows = slice(i * stride, i * stride + HH)
                    cols = slice(j * stride, j * stride + WW)
                    dxp[n, :, rows, cols] += w[f] * dout[n, f, i, j]
                    dw[f] += xp[n, :, rows, cols] * dout[n, f, i, j]
    dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
    return dx, dw, db


def conv_mistake_forward_naive(x, w, b, conv_param):
    return conv_forward_naive(x, w, b, conv_param)


def conv_mistake_backward_naive(dout, cache):
    dx, dw, db = conv_backward_naive(dout, cache)
    return dx, dw, dout[0].sum(axis=(1, 2))  # MISTAKE: db of the first sample only


def max_pool_forward_naive(x, pool_param):
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].max(
                axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    a, bb = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + a, j * stride + bb] += dout[n, c, i, j]
    return dx


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    return dx, dw, dout.sum(axis=0)


def affine_mistake_forward(x, w, b):
    return affine_forward(x, w, b)


def affine_mistake_backward(dout, cache):
    x, w, b = cache
    dx, dw, db = affine_backward(dout, cache)
    return dx, dw, dout.mean(axis=0)  # MISTAKE: the mean over the batch, not the sum


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


# -- deeplearning.ai -------------------------------------------------------------------------
def zero_pad(X, pad):
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def conv_forward(A_prev, W, b, hparameters):
    (m, n_H_prev, n_W_prev, n_C_prev) = A_prev.shape
    (f, f, n_C_prev, n_C) = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = (n_H_prev - f + 2 * pad) // stride + 1
    n_W = (n_W_prev - f + 2 * pad) // stride + 1
    Z = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    A_prev_pad = zero_pad(A_prev, pad)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    vs, hs = h * stride, w * stride
                    a_slice_prev = A_prev_pad[i, vs:vs + f, hs:hs + f, :]
                    Z[i, h, w, c] = np.sum(a_slice_prev * W[:, :, :, c]) + b[0, 0, 0, c]
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ, cache):
    (A_prev, W, b, hparameters) = cache
    (f, f, n_C_prev, n_C) = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    (m, n_H, n_W, n_C) = dZ.shape
    dA_prev_pad = zero_pad(np.zeros_like(A_prev), pad)
    A_prev_pad = zero_pad(A_prev, pad)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    vs, hs = h * stride, w * stride
                    a_slice = A_prev_pad[i, vs:vs + f, hs:hs + f, :]
                    dA_prev_pad[i, vs:vs + f, hs:hs + f, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[:, :, :, c] += dZ[i, h, w, c]
    dA_prev = dA_prev_pad[:, pad:pad + A_prev.shape[1], pad:pad + A_prev.shape[2], :]
    return dA_prev, dW, db


def conv_flipped_forward(A_prev, W, b, hparameters):
    return conv_forward(A_prev, W, b, hparameters)


def conv_flipped_backward(dZ, cache):
    (A_prev, W, b, hparameters) = cache
    # MISTAKE: "the backward pass is a convolution with the kernel rotated by 180 degrees",
    # applied to the scatter form, which needs the kernel as it is
    return conv_backward(dZ, (A_prev, W[::-1, ::-1], b, hparameters))


def pool_forward(A_prev, hparameters, mode="max"):
    (m, n_H_prev, n_W_prev, n_C) = A_prev.shape
    f, stride = hparameters["f"], hparameters["stride"]
    n_H, n_W = (n_H_prev - f) // stride + 1, (n_W_prev - f) // stride + 1
    A = np.zeros((m, n_H, n_W, n_C), dtype=A_prev.dtype)
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev[:, h * stride:h * stride + f, w * stride:w * stride + f, :]
            A[:, h, w, :] = window.max(axis=(1, 2)) if mode == "max" else window.mean(axis=(1, 2))
    return A, (A_prev, hparameters)


def pool_backward(dA, cache, mode="max"):
    (A_prev, hparameters) = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    dA_prev = np.zeros_like(A_prev)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    vs, hs = h * stride, w * stride
                    if mode == "max":
                        window = A_prev[i, vs:vs + f, hs:hs + f, c]
                        mask = window == np.max(window)
                        dA_prev[i, vs:vs + f, hs:hs + f, c] += mask * dA[i, h, w, c]
                    else:
                        dA_prev[i, vs:vs + f, hs:hs + f, c] += dA[i, h, w, c] / (f * f)
    return dA_prev


def linear_forward(A, W, b):
    return W @ A + b, (A, W, b)


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    dW = dZ @ A_prev.T
    db = np.sum(dZ, axis=1, keepdims=True)
    dA_prev = W.T @ dZ
    return dA_prev, dW, db


def linear_averaged_forward(A, W, b):
    return linear_forward(A, W, b)


def linear_averaged_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    # MISTAKE: the course's cost is averaged over m, so its dW has 1/m; a layer's backward
    # given dL/dZ of the summed loss must not divide again
    return W.T @ dZ, dZ @ A_prev.T / m, np.sum(dZ, axis=1, keepdims=True) / m


def relu(Z):
    return np.maximum(0, Z), Z


# -- a class, as in a textbook's exercise answers ------------------------------------------------
class Conv2D:
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        self.stride, self.padding = stride, padding
        self.W = np.zeros((out_channels, in_channels, kernel_size, kernel_size))
        self.b = np.zeros(out_channels)

    def forward(self, x):
        self.x = x
        out, self.cache = conv_forward_naive(x, self.W, self.b,
                                             {"stride": self.stride, "pad": self.padding})
        return out

    def backward(self, dout):
        dx, self.dW, self.db = conv_backward_naive(dout, self.cache)
        return dx


class Conv2DNoBiasSum(Conv2D):
    def backward(self, dout):
        dx = super().backward(dout)
        self.db = dout.sum(axis=(2, 3))  # MISTAKE: one bias gradient per sample
        return dx


class Dense:
    """Parameters and gradients in dictionaries, as some textbooks keep them."""

    def __init__(self, in_features, out_features):
        self.params = {"W": np.zeros((out_features, in_features)), "b": np.zeros(out_features)}
        self.grads = {}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"].T + self.params["b"]

    def backward(self, dout):
        self.grads["W"] = dout.T @ self.x
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"]
