"""check-impl for the convolution: its call convention and the known mistakes of
hand-written convolution backward passes, each computed from the truth (the kernel left
unrotated is the true ``dL/dx`` of the flipped kernel; the stride left in place is the
true gradient of the same layer with stride 1 reading the same rows; ...)."""

from __future__ import annotations

import itertools

from symbackprop.check.formula_check import FORMULAS, FormulaParts
from symbackprop.check.impl import (
    IMPLEMENTATIONS,
    Implementation,
    Mistake,
    bias_not_summed,
    course_convention,
    fit_to,
    leaves_unread,
)
from symbackprop.core.rules import pad2d, rot180
from symbackprop.kinds.conv2d.spec import Conv2d

__all__ = ["MISTAKES"]


def _square_channels(case) -> bool:
    w = case.inputs.get("w")
    groups = getattr(case.derivation.layer, "groups", 1)
    return w is not None and w.ndim == 4 and w.shape[0] == w.shape[1] and groups == 1


def _unrotated_kernel(case):
    if case.inputs.get("w") is not None:
        yield case.truth_with(w=rot180(case.inputs["w"]))["x"]


def _channels_not_swapped_x(case):
    if _square_channels(case):
        yield case.truth_with(w=case.inputs["w"].transpose(1, 0, 2, 3))["x"]


def _both_x(case):
    if _square_channels(case):
        yield case.truth_with(w=rot180(case.inputs["w"].transpose(1, 0, 2, 3)))["x"]


def _channels_not_swapped_w(case):
    w_grad = case.results["w"].expected if "w" in case.results else None
    if w_grad is not None and w_grad.ndim == 4 and w_grad.shape[0] * w_grad.shape[1] > 1:
        yield w_grad.transpose(1, 0, 2, 3)


def _rotated_w(case):
    if "w" in case.results:
        yield rot180(case.results["w"].expected)


def _reads(case, gradient, *, stride_one=False, padding_shift=0):
    """The gradient a pass computes when it reads ``x`` with a wrong stride or padding."""
    layer = case.derivation.layer
    stride, padding = getattr(layer, "stride", None), getattr(layer, "padding", None)
    if stride is None or padding is None or len(padding) != 4 or gradient not in case.results:
        return
    if stride_one and stride == (1, 1):
        return
    top, left = padding[0] + padding_shift, padding[2] + padding_shift
    if top < 0 or left < 0:
        return
    grads = case.variant(stride=(1, 1) if stride_one else stride, padding=(top, 0, left, 0))
    if grads is not None:
        yield grads[gradient]


def _padding_not_removed(case):
    """The gradient of the padded input: the same layer without padding applied to ``xp``."""
    layer = case.derivation.layer
    padding = getattr(layer, "padding", None)
    if padding is None or len(padding) != 4 or not any(padding) or "x" not in case.results:
        return
    xp = pad2d(case.inputs["x"], padding)
    grads = case.variant(x=xp, padding=0)
    if grads is not None:
        yield grads["x"]                 # up to the last row the forward reads
        yield fit_to(grads["x"], xp.shape)  # the whole padded input


#: The known mistakes of hand-written convolution backward passes, as data: the first that
#: matches is reported.
MISTAKES = (
    Mistake("kernel not rotated", "x",
            "dL/dx is the full correlation of the (stride-dilated, padded) upstream gradient "
            "with the kernel rotated by 180 degrees; this one used the kernel as it is",
            _unrotated_kernel),
    Mistake("channels not swapped", "x",
            "dL/dx[c] sums g[o] correlated with rot180(w[o, c]) over the output channels o: "
            "the kernel's input and output channels swap roles; this one used w[c, o]",
            _channels_not_swapped_x),
    Mistake("kernel not rotated and channels not swapped", "x",
            "dL/dx needs the kernel rotated by 180 degrees and w[o, c] summed over output "
            "channels o; this one used w[c, o] unrotated",
            _both_x),
    Mistake("stride not undone", "x",
            "with stride s the upstream gradient must get s-1 zeros between its rows (and "
            "columns) before the full correlation; this one used it undilated",
            lambda case: _reads(case, "x", stride_one=True)),
    Mistake("padding not removed", "x",
            "this is the gradient of the zero-padded input; dL/dx is its interior, without "
            "the padding rows and columns",
            _padding_not_removed, fit=False),
    Mistake("padding off by one", "x",
            "the upstream gradient must be padded by d*(K-1) - padding on each side (and the "
            "result taken from the padded input's interior); this one is shifted by one",
            lambda case: itertools.chain(_reads(case, "x", padding_shift=-1),
                                         _reads(case, "x", padding_shift=1))),
    Mistake("stride not undone", "w",
            "dL/dw[m, k] sums g[i, j] * x_padded[i*s + m, j*s + k]: the input is read at "
            "strided positions; this one read it at i + m",
            lambda case: _reads(case, "w", stride_one=True)),
    Mistake("padding off by one", "w",
            "dL/dw reads the input padded by exactly the layer's padding; this one padded it "
            "by one more or one less",
            lambda case: itertools.chain(_reads(case, "w", padding_shift=-1),
                                         _reads(case, "w", padding_shift=1))),
    Mistake("input and output channels exchanged", "w",
            "dL/dw[o, c] is laid out like w, output channel first; this one came out as [c, o]",
            _channels_not_swapped_w),
    Mistake("kernel gradient rotated by 180 degrees", "w",
            "dL/dw is the correlation of the input with g, not a convolution; this one is "
            "flipped in both spatial axes",
            _rotated_w),
    Mistake("bias not summed over the batch", "b",
            "dL/db[o] is the sum of g[n, o, i, j] over every sample n and position (i, j); "
            "this one used one sample, the batch mean, or one row per sample",
            bias_not_summed),
)


# -- the courses' conventions: one stride and one symmetric pad, NCHW (cs231n), NHWC (dlai) ----
def _one_stride_and_pad(layer, course: str) -> tuple[int, int]:
    stride, (top, bottom, left, right) = layer.stride, layer.padding
    reasons = [why for broken, why in (
        (stride[0] != stride[1], f"one stride for both axes (this layer has {stride})"),
        (len({top, bottom, left, right}) > 1,
         f"one pad for all four sides (this layer has {layer.padding})"),
        (layer.dilation != (1, 1), "no dilation"), (layer.groups != 1, "no groups"),
        (not layer.bias, "a bias")) if broken]
    if reasons:
        raise ValueError(f"convention (--convention): a {course} convolution has "
                         f"{' and '.join(reasons)}; check this layer in the plain or class "
                         f"convention")
    return stride[0], top


def _cs231n(layer) -> dict:
    stride, pad = _one_stride_and_pad(layer, "cs231n")
    return course_convention(
        "cs231n", signature="conv_forward_naive(x, w, b, conv_param) -> (out, cache), "
        "conv_backward_naive(dout, cache) -> (dx, dw, db)",
        forward_call=("x", "w", "b", {"stride": stride, "pad": pad}), returns=("x", "w", "b"),
        names={"x": "dx", "w": "dw", "b": "db"})


def _dlai(layer) -> dict:
    stride, pad = _one_stride_and_pad(layer, "deeplearning.ai")
    if layer.kernel_size[0] != layer.kernel_size[1]:
        raise ValueError(f"convention (--convention): a deeplearning.ai convolution has a "
                         f"square f x f kernel (this layer has {layer.kernel_size})")
    channels_last = {"axes": [0, 2, 3, 1]}
    return course_convention(
        "dlai", signature="conv_forward(A_prev, W, b, hparameters) -> (Z, cache), "
        "conv_backward(dZ, cache) -> (dA_prev, dW, db), A_prev (m, n_H, n_W, n_C), "
        "W (f, f, n_C_prev, n_C), b (1, 1, 1, n_C)",
        forward_call=("x", "w", "b", {"stride": stride, "pad": pad}), returns=("x", "w", "b"),
        names={"x": "dA_prev", "w": "dW", "b": "db"},
        layouts={"x": channels_last, "g": channels_last, "w": {"axes": [2, 3, 1, 0]},
                 "b": {"shape": [1, 1, 1, -1]}})


IMPLEMENTATIONS.register(Conv2d, Implementation(
    convention="backward(x, w, b, grad_z) -> (grad_x, grad_w, grad_b)",
    arguments=("x", "w", "b", "g"), gradients=("x", "w", "b"), mistakes=MISTAKES,
    unread=leaves_unread, conventions={"cs231n": _cs231n, "dlai": _dlai}))



# -- what the formula checker needs: the letters of the printed rules ----------------------
def _rule_parameters(layer, input_shape) -> dict:
    """``s`` stride, ``p`` padding, ``P`` the padding of the stride-dilated upstream gradient
    for dL/dx, ``d`` dilation: as ``symbackprop latex`` prints the closed forms."""
    from symbackprop.kinds.conv2d.rules import grad_padding

    return {"s": layer.stride, "p": layer.padding, "d": layer.dilation,
            "P": grad_padding(layer, tuple(input_shape[2:]))}


FORMULAS.register(Conv2d, FormulaParts(words="the convolution", parameters=_rule_parameters))
