"""Hand-written reference for residual blocks, written without symbackprop.

A network here is a list of plain tuples, not symbackprop's specs:

- ``("conv", stride, padding)`` with parameters ``{"w", "b"}`` (``tests/reference.py``:
  its im2col forward, its plain loops backward),
- ``("linear",)`` with ``{"w", "b"}``, samples as rows,
- ``("relu",)``, ``("tanh",)``, ``("sigmoid",)``,
- ``("residual", [network])``: ``y = x + block(x)``.

Parameters are one list per network, in order, nested for a block (``[p_conv, {},
[p_conv2, {}], {}]``).  ``backward`` goes back through the network by hand: a residual
block's input gradient is the upstream gradient itself (the identity path) plus what
its block hands back.
"""

from __future__ import annotations

import numpy as np
from reference import conv2d_backward_loops, conv2d_forward

_ACTIVATIONS = {
    "relu": (lambda x: np.where(x > 0, x, 0.0), lambda x: (x > 0).astype(float)),
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "sigmoid": (lambda x: 1.0 / (1.0 + np.exp(-x)),
                lambda x: np.exp(-x) / (1.0 + np.exp(-x)) ** 2),
}


def forward(network, params, x):
    """The output of ``network`` for input ``x``."""
    a = np.asarray(x, dtype=float)
    for layer, p in zip(network, params):
        a = _forward_one(layer, p, a)
    return a


def _forward_one(layer, p, x):
    kind = layer[0]
    if kind == "conv":
        return conv2d_forward(x, p["w"], p["b"], stride=layer[1], padding=layer[2])
    if kind == "linear":
        return x @ p["w"].T + p["b"]
    if kind == "residual":
        return x + forward(layer[1], p, x)
    return _ACTIVATIONS[kind][0](x)


def backward(network, params, x, grad_out):
    """``(dL/dx, parameter gradients nested like params)`` for ``L = sum(grad_out * y)``."""
    inputs = [np.asarray(x, dtype=float)]
    for layer, p in zip(network, params):
        inputs.append(_forward_one(layer, p, inputs[-1]))
    delta = np.asarray(grad_out, dtype=float)
    grads = [None] * len(network)
    for position in reversed(range(len(network))):
        delta, grads[position] = _backward_one(network[position], params[position],
                                               inputs[position], delta)
    return delta, grads


def _backward_one(layer, p, x, g):
    kind = layer[0]
    if kind == "conv":
        gx, gw, gb = conv2d_backward_loops(x, p["w"], p["b"], g, stride=layer[1],
                                           padding=layer[2])
        return gx, {"w": gw, "b": gb}
    if kind == "linear":
        return g @ p["w"], {"w": g.T @ x, "b": g.sum(axis=0)}
    if kind == "residual":
        block_gx, block_grads = backward(layer[1], p, x, g)
        return g + block_gx, block_grads  # identity path + block path
    return g * _ACTIVATIONS[kind][1](x), {}


def backward_identity_forgotten(network, params, x, grad_out):
    """The classic mistake: a residual block hands back only its block's ``dL/dx``."""
    inputs = [np.asarray(x, dtype=float)]
    for layer, p in zip(network, params):
        inputs.append(_forward_one(layer, p, inputs[-1]))
    delta = np.asarray(grad_out, dtype=float)
    for position in reversed(range(len(network))):
        layer = network[position]
        if layer[0] == "residual":
            delta = backward_identity_forgotten(layer[1], params[position], inputs[position],
                                                delta)
        else:
            delta, _ = _backward_one(layer, params[position], inputs[position], delta)
    return delta
