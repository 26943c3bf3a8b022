"""Any layer spec (and chains of them) run through the hand-written reference.

This only translates a symbackprop layer spec into calls of ``tests/reference.py``
(which never imports symbackprop); the tests compare derivations and generated
modules with it.  Parameters are dicts ``{"w": ..., "b": ...}`` per layer.
"""

from __future__ import annotations

import numpy as np
import reference_activations_more as more
import reference_softmax_loss as softmax_loss
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
from reference_conv_transpose import conv_transpose_vectorised
from reference_norm import (
    batch_norm_layout,
    group_norm_layout,
    instance_norm_layout,
    layer_norm_layout,
    norm_backward_loops,
    norm_forward_loops,
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
    # ELU, GELU, SiLU: tests/reference_activations_more.py
    "elu": (lambda net, layer: more.elu(net, layer.alpha),
            lambda net, layer: more.elu_grad(net, layer.alpha)),
    "gelu": (lambda net, layer: (more.gelu if layer.approximate == "none" else more.gelu_tanh)(net),
             lambda net, layer: (more.gelu_grad if layer.approximate == "none"
                                 else more.gelu_tanh_grad)(net)),
    "silu": (lambda net, layer: more.silu(net), lambda net, layer: more.silu_grad(net)),
}


def _pool_args(layer):
    top, bottom, left, right = layer.padding
    assert top == bottom and left == right, "the reference pools pad symmetrically"
    return dict(kernel_size=layer.kernel_size, stride=layer.stride, padding=(top, left))


#: The normalisations (training mode) by kind: the groups of tests/reference_norm.py.
NORMALIZATIONS = {
    "batchnorm1d": lambda layer, shape: batch_norm_layout(shape),
    "batchnorm2d": lambda layer, shape: batch_norm_layout(shape),
    "instancenorm2d": lambda layer, shape: instance_norm_layout(shape),
    "groupnorm": lambda layer, shape: group_norm_layout(shape, layer.num_groups),
    "layernorm": lambda layer, shape: layer_norm_layout(shape, layer.normalized_shape),
}
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


def _transposed_args(layer):
    return dict(stride=layer.stride, padding=layer.padding,
                output_padding=layer.output_padding, dilation=layer.dilation,
                groups=layer.groups)


def forward(layer, x, params):
    """The layer's output for input ``x`` and its parameters."""
    kind = layer.kind
    if kind.startswith("convtranspose"):
        return conv_transpose_vectorised(x, params["w"], params.get("b"),
                                         **_transposed_args(layer))
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
    if kind in ("softmax", "logsoftmax"):  # the loops of tests/reference_softmax_loss.py
        function = softmax_loss.softmax if kind == "softmax" else softmax_loss.log_softmax
        return function(x, layer.dim)
    if kind == "prelu":
        return more.prelu(x, params["w"])
    if kind in NORMALIZATIONS:
        return norm_forward_loops(x, NORMALIZATIONS[kind](layer, x.shape), params.get("weight"),
                                  params.get("bias"), layer.eps)
    return ACTIVATIONS[kind][0](x, layer)


def backward(layer, x, params, grad_out):
    """``(grad_x, {"w": grad_w, "b": grad_b})`` of the layer."""
    kind = layer.kind
    if kind.startswith("convtranspose"):
        grad_x, grad_w, grad_b = conv_transpose_vectorised(
            x, params["w"], params.get("b"), grad_out, **_transposed_args(layer))
        return grad_x, {"w": grad_w, **({"b": grad_b} if "b" in params else {})}
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
    if kind in ("softmax", "logsoftmax"):
        function = softmax_loss.softmax_backward if kind == "softmax" \
            else softmax_loss.log_softmax_backward
        return function(x, grad_out, layer.dim), {}
    if kind == "prelu":
        grad_x, grad_w = more.prelu_backward(x, params["w"], grad_out)
        return grad_x, {"w": grad_w}
    if kind in NORMALIZATIONS:
        grad_x, grad_weight, grad_bias = norm_backward_loops(
            x, NORMALIZATIONS[kind](layer, x.shape), grad_out, params.get("weight"), layer.eps)
        return grad_x, ({"weight": grad_weight, "bias": grad_bias} if "weight" in params else {})
    return grad_out * ACTIVATIONS[kind][1](x, layer), {}


def chain_forward(layers, x, params_per_layer):
    """Outputs ``[a0, a1, ..., aL]`` of a chain."""
    outputs = [np.asarray(x, dtype=float)]
    for layer, params in zip(layers, params_per_layer):
        if getattr(layer, "span", None):  # a residual sum: the block's input added back
            outputs.append(outputs[-1] + outputs[-1 - layer.span])
        else:
            outputs.append(forward(layer, outputs[-1], params))
    return outputs


def chain_backward(layers, x, params_per_layer, grad_out):
    """``(deltas [delta0, ..., deltaL], param grads per layer)`` of a chain."""
    outputs = chain_forward(layers, x, params_per_layer)
    deltas = [np.asarray(grad_out, dtype=float)]
    grads = []
    identity = {}  # a residual sum's delta, added to its block's input's (the identity path)
    for number in reversed(range(len(layers))):
        layer, a, params = layers[number], outputs[number], params_per_layer[number]
        if getattr(layer, "span", None):
            identity[number - layer.span] = identity.get(number - layer.span, 0) + deltas[0]
            delta, param_grads = deltas[0], {}
        else:
            delta, param_grads = backward(layer, a, params, deltas[0])
        deltas.insert(0, delta + identity.pop(number, 0))
        grads.insert(0, param_grads)
    return deltas, grads


def random_parameters(layer, rng) -> dict:
    """Normal random values for each parameter of ``layer``."""
    return {name: rng.standard_normal(shape) for name, shape in layer.parameter_shapes.items()}
