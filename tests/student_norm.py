"""Hand-written batch-norm backward passes for the check-impl tests: one right, and one
for each classic mistake.  Independent of symbackprop.  Each takes
``(x, weight, bias, grad_out)`` of ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``."""

import numpy as np


def _layout(x):
    """The axes batch norm reduces over, and the shape gamma is broadcast in."""
    return (0,) + tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)


def _closed_form(x, weight, grad_out, axes, shape, eps, ddof=0):
    m = int(np.prod([x.shape[axis] for axis in axes]))
    mu = x.mean(axis=axes, keepdims=True)
    sigma = np.sqrt(x.var(axis=axes, keepdims=True, ddof=ddof) + eps)
    xhat = (x - mu) / sigma
    g = grad_out
    dx = weight.reshape(shape) / (m * sigma) * (
        m * g - g.sum(axis=axes, keepdims=True) - xhat * (g * xhat).sum(axis=axes, keepdims=True))
    return dx, xhat


def right(x, weight, bias, grad_out, eps=1e-5):
    axes, shape = _layout(x)
    dx, xhat = _closed_form(x, weight, grad_out, axes, shape, eps)
    return dx, (grad_out * xhat).sum(axis=axes), grad_out.sum(axis=axes)


def no_gamma(x, weight, bias, grad_out, eps=1e-5):
    """gamma left out of dL/dx."""
    dx = right(x, np.ones_like(weight), bias, grad_out, eps)[0]
    return (dx, *right(x, weight, bias, grad_out, eps)[1:])


def constants(x, weight, bias, grad_out, eps=1e-5):
    """mu and sigma^2 treated as constants: the evaluation-mode gradient."""
    axes, shape = _layout(x)
    dx = grad_out * weight.reshape(shape) / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    return (dx, *right(x, weight, bias, grad_out, eps)[1:])


def unbiased(x, weight, bias, grad_out, eps=1e-5):
    """Normalised with the unbiased variance (divided by m - 1), by the graph."""
    axes, shape = _layout(x)
    m = int(np.prod([x.shape[axis] for axis in axes]))
    xc = x - x.mean(axis=axes, keepdims=True)
    istd = 1 / np.sqrt(x.var(axis=axes, keepdims=True, ddof=1) + eps)
    xhat = xc * istd
    dxhat = grad_out * weight.reshape(shape)
    dvar = -0.5 * istd**3 * (dxhat * xc).sum(axis=axes, keepdims=True)
    dxc = dxhat * istd + 2 / (m - 1) * xc * dvar
    dx = dxc - dxc.sum(axis=axes, keepdims=True) / m
    return dx, (grad_out * xhat).sum(axis=axes), grad_out.sum(axis=axes)


def per_sample(x, weight, bias, grad_out, eps=1e-5):
    """Spatial batch norm reduced per (sample, channel): instance norm's axes."""
    axes, shape = tuple(range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)
    dx, xhat = _closed_form(x, weight, grad_out, axes, shape, eps)
    over = (0, *axes)
    return dx, (grad_out * xhat).sum(axis=over), grad_out.sum(axis=over)
