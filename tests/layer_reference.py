"""Any layer spec (and chains of them) run through the hand-written reference.

This only translates a symbackprop layer spec into calls of ``tests/reference.py``
(which never imports symbackprop); the tests compare derivations and generated
modules with it.  Parameters are dicts ``{"w": ..., "b": ...}`` per layer.
"""

from __future__ import annotations

import numpy as np
from reference import (
    avgpool2d_backward,
    avgpool2d_forward,
    conv2d_backward,
    conv2d_forward,
    leaky_relu,
    leaky_relu_grad,
    linear_backward,
    linear_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softplus,
    softplus_grad,
    tanh,
    tanh_grad,
)
from reference_pool_nd import (
    avgpool_backward,
    avgpool_forward,
    maxpool_backward,
    maxpool_forward,
    upsample_nearest_backward,
    upsample_nearest_forward,
)

ACTIVATIONS = {
    "relu": (lambda net, layer: relu(net), lambda net, layer: relu_grad(net)),
    "leakyrelu": (lambda net, layer: leaky_relu(net, layer.negative_slope),
                  lambda net, layer: leaky_relu_grad(net, layer.negative_slope)),
    "sigmoid": (lambda net, layer: sigmoid(net), lambda net, layer: sigmoid_grad(net)),
    "tanh": (lambda net, layer: tanh(net), lambda net, layer: tanh_grad(net)),
    "softplus": (lambda net, layer: softplus(net, layer.beta, layer.threshold),
                 lambda net, layer: softplus_grad(net, layer.beta, layer.threshold)),
}


def _pool_args(layer):
    top, bottom, left, right = layer.padding
    assert top == bottom and left == right, "the reference pools pad symmetrically"
    return dict(kernel_size=layer.kernel_size, stride=layer.stride, padding=(top, left))


def _pool_nd(layer) -> str | None:
    """``"max"`` or ``"avg"`` for pooling that tests/reference.py's 2-D loops do not cover
    (1-D, 3-D, dilation, ceil_mode): tests/reference_pool_nd.py runs it."""
    if layer.kind[:-2] not in ("maxpool", "avgpool") or (
            layer.kind.endswith("2d") and not layer.ceil_mode
            and set(getattr(layer, "dilation", (1,))) == {1}):
        return None
    return layer.kind[:3]


def _pool_nd_args(layer):
    if layer.kind.startswith("max"):
        return (layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
    return (layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
            layer.count_include_pad)


def _conv_args(layer):
    return dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                groups=layer.groups)


def forward(layer, x, params):
    """The layer's output for input ``x`` and its parameters."""
    kind = layer.kind
    if _pool_nd(layer):
        pool = maxpool_forward if _pool_nd(layer) == "max" else avgpool_forward
        return pool(x, *_pool_nd_args(layer))
    if kind == "conv2d":
        return conv2d_forward(x, params["w"], params.get("b"), **_conv_args(layer))
    if kind == "maxpool2d":
        return maxpool2d_forward(x, **_pool_args(layer))
    if kind == "avgpool2d":
        return avgpool2d_forward(x, count_include_pad=layer.count_include_pad,
                                 **_pool_args(layer))
    if kind == "upsample2d":
        return upsample_nearest_forward(x, layer.scale_factor)
    if kind == "flatten":
        return np.asarray(x, dtype=float).reshape(x.shape[0], -1)
    if kind == "linear":
        return linear_forward(np.asarray(x).reshape(x.shape[0], -1), params["w"],
                              params.get("b"))
    return ACTIVATIONS[kind][0](x, layer)


def backward(layer, x, params, grad_out):
    """``(grad_x, {"w": grad_w, "b": grad_b})`` of the layer."""
    kind = layer.kind
    if _pool_nd(layer):
        pool = maxpool_backward if _pool_nd(layer) == "max" else avgpool_backward
        return pool(x, grad_out, *_pool_nd_args(layer)), {}
    if kind == "conv2d":
        grad_x, grad_w, grad_b = conv2d_backward(x, params["w"], params.get("b"), grad_out,
                                                 **_conv_args(layer))
        return grad_x, {"w": grad_w, **({"b": grad_b} if "b" in params else {})}
    if kind == "maxpool2d":
        return maxpool2d_backward(x, grad_out, **_pool_args(layer)), {}
    if kind == "avgpool2d":
        return avgpool2d_backward(x, grad_out, count_include_pad=layer.count_include_pad,
                                  **_pool_args(layer)), {}
    if kind == "upsample2d":
        return upsample_nearest_backward(x, grad_out, layer.scale_factor), {}
    if kind == "flatten":
        return np.asarray(grad_out, dtype=float).reshape(x.shape), {}
    if kind == "linear":
        grad_a, grad_w, grad_b = linear_backward(np.asarray(x).reshape(x.shape[0], -1),
                                                 params["w"], params.get("b"), grad_out)
        return grad_a.reshape(x.shape), {"w": grad_w, **({"b": grad_b} if "b" in params else {})}
    return grad_out * ACTIVATIONS[kind][1](x, layer), {}


def chain_forward(layers, x, params_per_layer):
    """Outputs ``[a0, a1, ..., aL]`` of a chain."""
    outputs = [np.asarray(x, dtype=float)]
    for layer, params in zip(layers, params_per_layer):
        outputs.append(forward(layer, outputs[-1], params))
    return outputs


def chain_backward(layers, x, params_per_layer, grad_out):
    """``(deltas [delta0, ..., deltaL], param grads per layer)`` of a chain."""
    outputs = chain_forward(layers, x, params_per_layer)
    deltas = [np.asarray(grad_out, dtype=float)]
    grads = []
    for layer, a, params in reversed(list(zip(layers, outputs, params_per_layer))):
        delta, param_grads = backward(layer, a, params, deltas[0])
        deltas.insert(0, delta)
        grads.insert(0, param_grads)
    return deltas, grads


def random_parameters(layer, rng) -> dict:
    """Normal random values for each parameter of ``layer``."""
    return {name: rng.standard_normal(shape) for name, shape in layer.parameter_shapes.items()}
