"""check and check-impl for the transposed convolutions: the call convention, the input
sizes to try, and the classic mistakes of a hand-written backward pass, each computed from
the truth or from the index rule with one thing changed:

- output_padding forgotten: the upstream gradient read only up to ``Lo - output_padding``
  (the size without it), so its last positions send nothing back;
- weight not transposed: ``w`` taken as a convolution's ``(out, in, K)``, input and output
  channels exchanged;
- kernel flipped: the convolution's ``dL/dx`` rule (rotate the kernel) applied where the
  transposed convolution's backward is a plain convolution of ``g``, no flip;
- stride not applied: ``g`` read at ``i - p + k*d`` instead of ``i*s - p + k*d``.
"""

from __future__ import annotations

import numpy as np

from symbackprop.check.formula_check import FORMULAS, FormulaParts
from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake, bias_not_summed
from symbackprop.kinds.conv_transpose.rules import flip_nd
from symbackprop.kinds.conv_transpose.spec import AXIS_NAMES, LAYER_TYPES

__all__ = ["MISTAKES", "index_rule_gradients"]


def index_rule_gradients(layer, x, w, g, stride=None) -> dict:
    """``{"x": dL/dx, "w": dL/dw}`` read off ``j = i*s - p_begin + k*d`` (any ``stride``).

    Numbers only; positions ``j`` outside ``g`` send nothing back.
    """
    stride = layer.stride if stride is None else stride
    cg, og = layer.group_in_channels, layer.group_out_channels
    grad_x, grad_w = np.zeros(x.shape), np.zeros(w.shape)
    sizes, out_sizes = x.shape[2:], g.shape[2:]
    for group in range(layer.groups):
        ins, outs = slice(group * cg, (group + 1) * cg), slice(group * og, (group + 1) * og)
        for offset in np.ndindex(*layer.kernel_size):
            inputs, outputs = [], []
            for size, out, k, s, p, d in zip(sizes, out_sizes, offset, stride,
                                             layer.pad_begin, layer.dilation):
                first = max(0, -((k * d - p) // s))
                last = min(size - 1, (out - 1 + p - k * d) // s)
                if last < first:
                    break
                inputs.append(slice(first, last + 1))
                outputs.append(slice(first * s - p + k * d, last * s - p + k * d + 1, s))
            else:
                g_part = g[(slice(None), outs, *outputs)]
                x_part = x[(slice(None), ins, *inputs)]
                w_k = w[(ins, slice(None), *offset)]
                grad_x[(slice(None), ins, *inputs)] += np.einsum("no...,co->nc...", g_part, w_k)
                grad_w[(ins, slice(None), *offset)] += np.einsum(
                    "ncp,nop->co", x_part.reshape(x.shape[0], cg, -1),
                    g_part.reshape(x.shape[0], og, -1))
    return {"x": grad_x, "w": grad_w}


def _output_padding_forgotten(gradient):
    def candidates(case):
        layer = case.derivation.layer
        if not any(layer.output_padding) or gradient not in case.results:
            return
        g = case.inputs["g"].copy()
        for axis, extra in enumerate(layer.output_padding):
            if extra:
                index = [slice(None)] * g.ndim
                index[2 + axis] = slice(g.shape[2 + axis] - extra, None)
                g[tuple(index)] = 0
        yield case.truth_with(g=g)[gradient]
    return candidates


def _square(case) -> bool:
    w = case.inputs.get("w")
    return w is not None and w.shape[0] == w.shape[1]


def _weight_not_transposed_x(case):
    if _square(case) and "x" in case.results:
        yield case.truth_with(w=np.swapaxes(case.inputs["w"], 0, 1))["x"]


def _weight_not_transposed_w(case):
    if "w" in case.results:
        expected = case.results["w"].expected
        if expected.shape[0] * expected.shape[1] > 1:
            yield np.swapaxes(expected, 0, 1)


def _kernel_flipped_x(case):
    if "x" in case.results:
        layer = case.derivation.layer
        yield case.truth_with(w=flip_nd(case.inputs["w"], layer.dims).copy())["x"]


def _kernel_flipped_w(case):
    if "w" in case.results:
        layer = case.derivation.layer
        yield flip_nd(case.results["w"].expected, layer.dims)


def _stride_not_applied(gradient):
    def candidates(case):
        layer = case.derivation.layer
        if all(s == 1 for s in layer.stride) or gradient not in case.results:
            return
        inputs = case.inputs
        yield index_rule_gradients(layer, inputs["x"], inputs["w"], inputs["g"],
                                   stride=(1,) * layer.dims)[gradient]
    return candidates


#: The known mistakes of hand-written transposed-convolution backward passes, in the order
#: they are tried (the first that matches is named).
MISTAKES = (
    Mistake("output_padding forgotten", "x",
            "the output has output_padding more positions at the end of each axis, and their "
            "upstream gradient reaches x too; this one read g only up to the size without "
            "output_padding", _output_padding_forgotten("x")),
    Mistake("weight not transposed", "x",
            "a transposed convolution's weight is laid out (in_channels, out_channels/groups, "
            "K): dL/dx[c] sums g[o] w[c, o]; this one took w as a convolution's (out, in, K), "
            "input and output channels exchanged", _weight_not_transposed_x),
    Mistake("kernel flipped", "x",
            "dL/dx of a transposed convolution is a plain convolution of g with the same "
            "weight, dL/dx[c, i] = sum g[o, i*s - p + k*d] w[c, o, k]: no rotation; this one "
            "flipped the kernel (the convolution's own dL/dx rule)", _kernel_flipped_x),
    Mistake("stride not applied", "x",
            "x[i] sends to output position i*s - p + k*d, so dL/dx[i] reads g there; this one "
            "read g at i - p + k*d, as if the stride were 1", _stride_not_applied("x")),
    Mistake("output_padding forgotten", "w",
            "the last output_padding positions of each axis carry upstream gradient into "
            "dL/dw too; this one read g only up to the size without output_padding",
            _output_padding_forgotten("w")),
    Mistake("weight not transposed", "w",
            "dL/dw is laid out like w, (in_channels, out_channels/groups, K); this one came "
            "out as a convolution's (out, in, K)", _weight_not_transposed_w),
    Mistake("kernel flipped", "w",
            "dL/dw[c, o, k] = sum x[c, i] g[o, i*s - p + k*d], indexed like w; this one is "
            "flipped along every spatial axis", _kernel_flipped_w),
    Mistake("stride not applied", "w",
            "dL/dw[c, o, k] reads g at i*s - p + k*d; this one read it at i - p + k*d",
            _stride_not_applied("w")),
    Mistake("bias not summed over the batch", "b",
            "dL/db[o] is the sum of g[n, o, j] over every sample n and position j; this one "
            "used one sample, the batch mean, or one row per sample", bias_not_summed),
)


def sizes(layer) -> list:
    """Input sizes to try: small, different along each axis, each a valid input."""
    tried = []
    for base in ((2, 3, 2), (3, 2, 3), (4, 3, 2)):
        size = base[:layer.dims]
        try:
            layer.output_size(size)
        except ValueError:
            size = tuple(s + 3 for s in size)
        tried.append(size)
    return list(dict.fromkeys(tried))[:2 if layer.dims == 3 else 3]


_AXES = {"x": ("sample", "input channel"), "g": ("sample", "output channel"),
         "z": ("sample", "output channel"), "w": ("input channel", "output channel"),
         "b": ("output channel",)}


for _layer_type in LAYER_TYPES:
    IMPLEMENTATIONS.register(_layer_type, Implementation(
        convention="backward(x, w, b, grad_z) -> (grad_x, grad_w, grad_b)",
        arguments=("x", "w", "b", "g"), gradients=("x", "w", "b"), mistakes=MISTAKES,
        sizes=sizes, leading_axes={"w": ("input channel", "output channel")}))
    positions = tuple(AXIS_NAMES[_layer_type.dims]) if _layer_type.dims > 1 else ("position",)
    FORMULAS.register(_layer_type, FormulaParts(
        words="the transposed convolution",
        meanings={"w": "the weight, (in_channels, out_channels/groups, kernel)"},
        axes={name: axes + positions for name, axes in _AXES.items() if name != "b"} |
        {"b": _AXES["b"]}))
