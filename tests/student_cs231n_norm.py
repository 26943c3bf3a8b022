"""Batch norm as Stanford CS231n's assignment 2 has students write it (plain NumPy, no
symbackprop): ``batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache)`` and
``batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta)``; the ``_alt`` version is the
one-line closed form; the ``constants`` one holds the classic mistake."""

import numpy as np


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    xhat = (x - mu) / np.sqrt(var + eps)
    return gamma * xhat + beta, (x, xhat, gamma, var, eps)


def batchnorm_backward(dout, cache):
    """Node by node through the computational graph."""
    x, xhat, gamma, var, eps = cache
    m = x.shape[0]
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    dxhat = dout * gamma
    istd = 1.0 / np.sqrt(var + eps)
    centred = x - x.mean(axis=0)
    dvar = (dxhat * centred).sum(axis=0) * -0.5 * istd ** 3
    dmu = -(dxhat * istd).sum(axis=0) + dvar * (-2.0 / m) * centred.sum(axis=0)
    dx = dxhat * istd + dvar * 2.0 * centred / m + dmu / m
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """The one-line closed form."""
    x, xhat, gamma, var, eps = cache
    m = x.shape[0]
    dgamma, dbeta = (dout * xhat).sum(axis=0), dout.sum(axis=0)
    dx = gamma / (m * np.sqrt(var + eps)) * (m * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta


def batchnorm_constants_forward(x, gamma, beta, bn_param):
    return batchnorm_forward(x, gamma, beta, bn_param)


def batchnorm_constants_backward(dout, cache):
    x, xhat, gamma, var, eps = cache
    # MISTAKE: the mean and the variance treated as constants
    return dout * gamma / np.sqrt(var + eps), (dout * xhat).sum(axis=0), dout.sum(axis=0)
