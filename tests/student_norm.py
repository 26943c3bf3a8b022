"""Hand-written batch-norm backward passes for the check-impl tests: one right, and one
for each classic mistake.  Independent of symbackprop.  Each takes
``(x, weight, bias, grad_out)`` of ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``."""

import numpy as np


def _stats(x, axes):
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return mu, var

def right(x, weight, bias, grad_out, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    mu, var = _stats(x, axes)
    sigma = np.sqrt(var + eps)
    xhat = (x - mu) / sigma
    g = grad_out
    dx = weight.reshape(shape) / (m * sigma) * (m * g - g.sum(axis=axes, keepdims=True) - xhat * (g * xhat).sum(axis=axes, keepdims=True))
    return dx, (g * xhat).sum(axis=axes), g.sum(axis=axes)

def no_gamma(x, weight, bias, grad_out, eps=1e-5):
    dx, _, db = right(x, np.ones_like(weight), bias, grad_out, eps)
    return dx, right(x, weight, bias, grad_out)[1], db

def constants(x, weight, bias, grad_out, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim)); shape = (1, -1) + (1,) * (x.ndim - 2)
    mu, var = _stats(x, axes)
    _, dw, db = right(x, weight, bias, grad_out, eps)
    return grad_out * weight.reshape(shape) / np.sqrt(var + eps), dw, db

def unbiased(x, weight, bias, grad_out, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim)); shape = (1, -1) + (1,) * (x.ndim - 2)
    m = x.size // x.shape[1]
    mu = x.mean(axis=axes, keepdims=True); var = x.var(axis=axes, keepdims=True, ddof=1)
    istd = 1 / np.sqrt(var + eps); xc = x - mu; xhat = xc * istd
    g = grad_out; dxhat = g * weight.reshape(shape)
    dvar = -0.5 * istd**3 * (dxhat * xc).sum(axis=axes, keepdims=True)
    dxc = dxhat * istd + 2 / (m - 1) * xc * dvar
    dx = dxc - dxc.sum(axis=axes, keepdims=True) / m
    return dx, (g * xhat).sum(axis=axes), g.sum(axis=axes)

def per_sample(x, weight, bias, grad_out, eps=1e-5):
    axes = tuple(range(2, x.ndim)); shape = (1, -1) + (1,) * (x.ndim - 2)
    m = int(np.prod(x.shape[2:]))
    mu, var = _stats(x, axes)
    sigma = np.sqrt(var + eps); xhat = (x - mu) / sigma; g = grad_out
    dx = weight.reshape(shape) / (m * sigma) * (m * g - g.sum(axis=axes, keepdims=True) - xhat * (g * xhat).sum(axis=axes, keepdims=True))
    ax = (0,) + axes
    return dx, (g * xhat).sum(axis=ax), g.sum(axis=ax)
