"""Hand-written references for ELU, GELU, SiLU, PReLU and Dropout, written from their
definitions (PyTorch's documentation) and never from symbackprop: this file imports
only NumPy and the standard library.

Each function loops over the elements one at a time (``math`` on Python floats), so it
shares no vectorised code with the generated modules it checks.
"""

from __future__ import annotations

import math

import numpy as np


def _elementwise(function, x):
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    for index in np.ndindex(*x.shape):
        out[index] = function(float(x[index]))
    return out


# -- ELU: x if x > 0 else alpha (exp(x) - 1); derivative alpha exp(x) where x <= 0 ----------

def elu(x, alpha=1.0):
    return _elementwise(lambda v: v if v > 0 else alpha * math.expm1(v), x)


def elu_grad(x, alpha=1.0):
    return _elementwise(lambda v: 1.0 if v > 0 else alpha * math.exp(v), x)


# -- GELU: x Phi(x), Phi the standard normal distribution function ------------------------

def _cdf(v):
    return 0.5 * (1.0 + math.erf(v / math.sqrt(2.0)))


def _pdf(v):
    return math.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi)


def gelu(x):
    return _elementwise(lambda v: v * _cdf(v), x)


def gelu_grad(x):
    return _elementwise(lambda v: _cdf(v) + v * _pdf(v), x)


# -- GELU, approximate="tanh": x (1 + tanh(k (x + 0.044715 x^3))) / 2, k = sqrt(2 / pi) ----

_K = math.sqrt(2.0 / math.pi)
_C = 0.044715


def gelu_tanh(x):
    return _elementwise(lambda v: 0.5 * v * (1.0 + math.tanh(_K * (v + _C * v ** 3))), x)


def _gelu_tanh_grad(v):
    t = math.tanh(_K * (v + _C * v ** 3))
    return 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * _K * (1.0 + 3.0 * _C * v * v)


def gelu_tanh_grad(x):
    return _elementwise(_gelu_tanh_grad, x)


# -- SiLU: x sigmoid(x) -------------------------------------------------------------------

def _sigmoid(v):
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def silu(x):
    return _elementwise(lambda v: v * _sigmoid(v), x)


def silu_grad(x):
    return _elementwise(lambda v: _sigmoid(v) * (1.0 + v * (1.0 - _sigmoid(v))), x)


# -- PReLU: x if x > 0 else a_c x, one slope per channel (axis 1) or one for all ------------

def _slope(weight, index):
    """The slope of element ``index`` (sample, channel, ...): channel ``index[1]``."""
    weight = np.asarray(weight, dtype=float).reshape(-1)
    return float(weight[0] if weight.size == 1 else weight[index[1]])


def prelu(x, weight):
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    for index in np.ndindex(*x.shape):
        v = float(x[index])
        out[index] = v if v > 0 else _slope(weight, index) * v
    return out


def prelu_backward(x, weight, grad_out):
    """``(grad_x, grad_weight)``: the slope's gradient sums g * x over every element of its
    channel where x <= 0 (every sample and position)."""
    x = np.asarray(x, dtype=float)
    weight = np.asarray(weight, dtype=float)
    grad_x = np.empty_like(x)
    grad_weight = np.zeros(weight.shape)
    flat_weight = grad_weight.reshape(-1)
    for index in np.ndindex(*x.shape):
        v, g = float(x[index]), float(grad_out[index])
        if v > 0:
            grad_x[index] = g
        else:
            grad_x[index] = _slope(weight, index) * g
            flat_weight[0 if weight.size == 1 else index[1]] += g * v
    return grad_x, grad_weight


# -- Dropout with an explicit keep-mask: y = x * mask / (1 - p) ----------------------------

def dropout(x, mask, p):
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    for index in np.ndindex(*x.shape):
        out[index] = float(x[index]) * float(mask[index]) / (1.0 - p)
    return out


def dropout_backward(x, mask, p, grad_out):
    grad_x = np.empty(np.shape(x))
    for index in np.ndindex(*grad_x.shape):
        grad_x[index] = float(grad_out[index]) * float(mask[index]) / (1.0 - p)
    return grad_x
