"""check and check-impl for the 1-D and 3-D convolutions: the axes' words for formula
messages, the call convention, the input sizes to try, and the classic mistakes of
hand-written convolution backward passes, each computed from the truth or from the
closed forms of :mod:`~symbackprop.kinds.convnd.rules` with one step left out."""

from __future__ import annotations

import itertools

import numpy as np

from symbackprop.check.formula_check import FORMULAS, FormulaParts
from symbackprop.check.impl import (
    IMPLEMENTATIONS,
    Implementation,
    Mistake,
    bias_not_summed,
)
from symbackprop.core.indexing import output_length
from symbackprop.kinds.convnd.rules import correlate_nd, flip_nd, pad_nd
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d

__all__ = ["MISTAKES", "input_sizes", "leaves_unread"]


# -- the cases ------------------------------------------------------------------------

def _axis_lengths(layer, axis: int, largest: int = 48):
    """(smallest length with 2 outputs, next length with one more, an uneven length or
    None) along one axis: as the 2-D check-impl picks them."""
    kernel, stride = layer.kernel_size[axis], layer.stride[axis]
    (before, after), dilation = layer.padding_pairs[axis], layer.dilation[axis]
    outputs = {}
    for size in range(1, largest + 1):
        if size + before + after >= dilation * (kernel - 1) + 1:
            outputs[size] = output_length(size, kernel, stride, before, after, dilation)
    even = [n for n, out in outputs.items() if out >= 2 and outputs.get(n - 1) != out]
    if len(even) < 2:
        raise ValueError(f"no input of up to {largest} gives {layer.describe()} an output "
                         f"of 2 or more")
    uneven = [n for n in range(even[0] + 1, even[1]) if outputs.get(n) == outputs[even[0]]]
    return even[0], even[1], (uneven[-1] if uneven else None)


def input_sizes(layer) -> list[tuple[int, ...]]:
    """Sizes to run a backward function on: small, one longer along the first axis, and,
    when a stride leaves positions unread, sizes where it does."""
    lengths = [_axis_lengths(layer, axis) for axis in range(layer.spatial_axes)]
    small = tuple(first for first, _, _ in lengths)
    longer = (lengths[0][1], *small[1:])
    sizes = [small, longer]
    if any(uneven for _, _, uneven in lengths):
        sizes.append(tuple(uneven or first for first, _, uneven in lengths))
    sizes.append(tuple(second for _, second, _ in lengths))
    sizes = list(dict.fromkeys(sizes))
    if len(sizes) < 3:  # a sequence without a stride: one length more
        sizes.append((lengths[0][1] + 1, *small[1:]))
    return sizes


def leaves_unread(layer, size) -> bool:
    """Whether the forward pass leaves the last positions of some axis unread."""
    own = layer.output_size(size)
    for axis in range(layer.spatial_axes):
        smaller = list(size)
        smaller[axis] -= 1
        try:
            if smaller[axis] >= 1 and layer.output_size(tuple(smaller)) == own:
                return True
        except ValueError:
            continue
    return False


# -- the mistakes ---------------------------------------------------------------------

def _square_channels(case) -> bool:
    w = case.inputs.get("w")
    return w is not None and w.shape[0] == w.shape[1] and case.derivation.layer.groups == 1


def _swap(array):
    return array.swapaxes(0, 1)


def _unflipped_kernel(case):
    layer = case.derivation.layer
    yield case.truth_with(w=flip_nd(case.inputs["w"], layer.spatial_axes))["x"]


def _channels_not_swapped_x(case):
    if _square_channels(case):
        yield case.truth_with(w=_swap(case.inputs["w"]))["x"]


def _both_x(case):
    if _square_channels(case):
        layer = case.derivation.layer
        yield case.truth_with(w=flip_nd(_swap(case.inputs["w"]), layer.spatial_axes))["x"]


def _grouped(layer, x_channel):
    """The output channels of input channel ``x_channel``'s group, and its index in it."""
    group, local = divmod(x_channel, layer.group_in_channels)
    return range(group * layer.group_out_channels, (group + 1) * layer.group_out_channels), local


def _stride_not_undone_x(case):
    """dL/dx from g padded by the kernel's reach but never dilated by the stride."""
    layer = case.derivation.layer
    if set(layer.stride) == {1}:
        return
    x, w, g = case.inputs["x"], case.inputs["w"], case.inputs["g"]
    sizes = x.shape[2:]
    reach = [d * (k - 1) for k, d in zip(layer.kernel_size, layer.dilation, strict=True)]
    # g padded as if it were dilated: by the reach less the padding, or by the reach and
    # up to the padded input's size, then cropped to x
    as_x = tuple((r - before, r - after) for r, (before, after)
                 in zip(reach, layer.padding_pairs, strict=True))
    as_xp = tuple((r, before + size + after - length) for r, (before, after), size, length
                  in zip(reach, layer.padding_pairs, sizes, g.shape[2:], strict=True))
    inside = tuple(slice(before, before + size)
                   for (before, _), size in zip(layer.padding_pairs, sizes, strict=True))
    flipped = flip_nd(w, layer.spatial_axes)
    for pads, crop in ((as_x, None), (as_xp, inside)):
        padded = pad_nd(g, pads)
        if min(padded.shape[2:]) < 1:
            continue
        grad = np.zeros(x.shape)
        for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
            outputs, local = _grouped(layer, c)
            full = sum(correlate_nd(padded[n, o], flipped[o, local], dilation=layer.dilation)
                       for o in outputs)
            full = full if crop is None else full[crop]
            grad[n, c][tuple(slice(0, min(a, b)) for a, b
                             in zip(full.shape, sizes, strict=True))] = \
                full[tuple(slice(0, min(a, b)) for a, b in zip(full.shape, sizes, strict=True))]
        yield grad


def _padding_not_removed(case):
    """The gradient of the zero-padded input: the layer without padding on ``xp``."""
    layer = case.derivation.layer
    if not any(layer.padding):
        return
    xp = pad_nd(case.inputs["x"], layer.padding_pairs)
    w, g = case.inputs["w"], case.inputs["g"]
    flipped = flip_nd(w, layer.spatial_axes)
    reach = tuple((d * (k - 1), d * (k - 1)) for k, d
                  in zip(layer.kernel_size, layer.dilation, strict=True))
    dilated = np.zeros(g.shape[:2] + tuple((n - 1) * s + 1 for n, s
                                            in zip(g.shape[2:], layer.stride, strict=True)))
    dilated[(Ellipsis, *(slice(None, None, s) for s in layer.stride))] = g
    padded = pad_nd(dilated, reach)
    grad = np.zeros(xp.shape)
    for n, c in itertools.product(range(xp.shape[0]), range(xp.shape[1])):
        outputs, local = _grouped(layer, c)
        full = sum(correlate_nd(padded[n, o], flipped[o, local], dilation=layer.dilation)
                   for o in outputs)
        grad[n, c][tuple(slice(0, size) for size in full.shape)] = full
    yield grad


def _stride_not_undone_w(case):
    """dL/dw reading the padded input at i + m*d instead of s*i + m*d."""
    layer = case.derivation.layer
    if set(layer.stride) == {1} or "w" not in case.results:
        return
    xp = pad_nd(case.inputs["x"], layer.padding_pairs)
    g = case.inputs["g"]
    window = tuple(slice(0, k) for k in layer.kernel_size)
    grad = np.zeros(case.results["w"].expected.shape)
    for o, c in itertools.product(range(grad.shape[0]), range(grad.shape[1])):
        channel = (o // layer.group_out_channels) * layer.group_in_channels + c
        grad[o, c] = sum(correlate_nd(xp[n, channel], g[n, o], stride=layer.dilation)[window]
                         for n in range(xp.shape[0]))
    yield grad


def _flipped_w(case):
    if "w" in case.results:
        yield flip_nd(case.results["w"].expected, case.derivation.layer.spatial_axes)


def _channels_exchanged_w(case):
    expected = case.results["w"].expected if "w" in case.results else None
    if expected is not None and expected.shape[0] * expected.shape[1] > 1:
        yield _swap(expected)


#: The known mistakes, as data: the first that matches is reported.
MISTAKES = (
    Mistake("kernel not flipped", "x",
            "dL/dx is the full correlation of the (stride-dilated, padded) upstream gradient "
            "with the kernel flipped along every spatial axis; this one used it as it is",
            _unflipped_kernel),
    Mistake("channels not swapped", "x",
            "dL/dx[c] sums g[o] correlated with flip(w[o, c]) over the output channels o: the "
            "kernel's input and output channels swap roles; this one used w[c, o]",
            _channels_not_swapped_x),
    Mistake("kernel not flipped and channels not swapped", "x",
            "dL/dx needs the kernel flipped along every axis and w[o, c] summed over output "
            "channels o; this one used w[c, o] unflipped",
            _both_x),
    Mistake("stride dilation forgotten", "x",
            "with stride s the upstream gradient must get s-1 zeros between neighbours along "
            "every axis before the full correlation; this one used it undilated",
            _stride_not_undone_x),
    Mistake("padding not removed", "x",
            "this is the gradient of the zero-padded input; dL/dx is its interior, without "
            "the padding", _padding_not_removed, fit=False),
    Mistake("stride not undone", "w",
            "dL/dw[m] sums g[i] * x_padded[s*i + d*m]: the input is read at strided "
            "positions; this one read it at i + d*m",
            _stride_not_undone_w),
    Mistake("input and output channels exchanged", "w",
            "dL/dw[o, c] is laid out like w, output channel first; this one came out as [c, o]",
            _channels_exchanged_w),
    Mistake("kernel gradient flipped", "w",
            "dL/dw is the correlation of the input with g, not a convolution; this one is "
            "flipped along the spatial axes", _flipped_w),
    Mistake("bias not summed over the batch", "b",
            "dL/db[o] is the sum of g[n, o, ...] over every sample n and position; this one "
            "used one sample, the batch mean, or one row per sample",
            bias_not_summed),
)


def _notes(layer) -> tuple:
    return ("padding is passed as it is stored: (begin, end) per spatial axis, flattened "
            "in axis order (one number when every side is the same)",) \
        if len(set(layer.padding)) > 1 else ()


for _layer_type, _axes in ((Conv1d, ("position",)), (Conv3d, ("depth", "row", "column"))):
    IMPLEMENTATIONS.register(_layer_type, Implementation(
        convention="backward(x, w, b, grad_z) -> (grad_x, grad_w, grad_b)",
        arguments=("x", "w", "b", "g"), gradients=("x", "w", "b"), mistakes=MISTAKES,
        sizes=input_sizes, unread=leaves_unread, notes=_notes))
    FORMULAS.register(_layer_type, FormulaParts(
        words=f"{_layer_type.spatial_axes}-D convolution",
        axes={"x": ("sample", "channel", *_axes), "g": ("sample", "output channel", *_axes),
              "z": ("sample", "output channel", *_axes),
              "w": ("output channel", "input channel", *(f"kernel {a}" for a in _axes))}))
