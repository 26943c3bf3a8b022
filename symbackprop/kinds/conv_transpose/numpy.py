"""The NumPy code of a transposed convolution: the index rule, read off a derivation.

:func:`representative_instance` picks a small input (every kernel offset lands inside the
output from at least two input positions per axis) and at most 2 groups of at most 2
channels each; :func:`check_index_rule` proves that every term SymPy derived for ``z``,
``dL/dx`` and ``dL/dw`` pairs input position ``i``, kernel offset ``k`` and output
position ``j = i*s - p_begin + k*d`` of the channels of one group, and that each holds
as many terms as that rule gives: the rule both templates compute with.
"""

from __future__ import annotations

import functools
from collections import Counter

import numpy as np
import sympy

from symbackprop.core.derivation import derive_instance
from symbackprop.core.naming import element_symbol, flat, parse_element
from symbackprop.kinds.conv_transpose.expand import contributions
from symbackprop.kinds.conv_transpose.spec import AXIS_NAMES, LAYER_TYPES
from symbackprop.render.codegen import NUMPY, NumpyKind, PlanError, common_context

__all__ = ["representative_instance", "check_index_rule", "conv_transpose_context"]

#: How each style computes, said in the module's docstring.
HOW = {
    "fast": "the forward pass is one matrix product per group, the weight times x laid out "
            "(channel, sample and position), which gives every contribution x[n, c, i] "
            "w[c, o, k] summed over c, each kernel offset's as contiguous rows; each kernel "
            "offset's contributions are then added onto their strided slice of z (col2im). "
            "The backward pass gathers grad_out once per group into the same layout (im2col) "
            "and does two matrix products, one for dL/dx and one for dL/dw.",
    "reference": "one kernel offset at a time, each line the printed rule on the slices of "
                 "positions that land inside z (np.einsum over the channels).",
}


def _minimal_length(kernel, stride, begin, dilation, extra, end) -> int:
    """Least input length on which every kernel offset lands inside the output from two
    input positions (tried upwards: a handful of lengths at most)."""
    # the least length whose output is not empty; a handful of lengths above it suffice
    first = max(2, -(-(begin + end - dilation * (kernel - 1) - extra) // stride) + 1)
    for length in range(first, first + 2 * (begin + end) // stride + kernel * dilation + 4):
        out = (length - 1) * stride - begin - end + dilation * (kernel - 1) + extra + 1
        if out >= 1 and all(
                sum(0 <= i * stride - begin + k * dilation < out for i in range(length)) >= 2
                for k in range(kernel)):
            return length
    return 2 + (begin + end) // stride + 1


def representative_instance(layer):
    """``(narrowed layer, input shape)`` derived to check the index rule."""
    groups = min(layer.groups, 2)
    narrow = layer.replace(in_channels=groups * min(layer.group_in_channels, 2),
                           out_channels=groups * min(layer.group_out_channels, 2), groups=groups)
    sizes = tuple(_minimal_length(k, s, b, d, e, end) for k, s, b, d, e, end in zip(
        layer.kernel_size, layer.stride, layer.pad_begin, layer.dilation,
        layer.output_padding, layer.pad_end))
    return narrow, (1, narrow.in_channels, *sizes)


def check_index_rule(derivation) -> None:
    """:class:`PlanError` unless the derived sums follow ``j = i*s - p_begin + k*d`` exactly."""
    layer = derivation.layer
    landed = contributions(layer, derivation.input_shape)
    expected = Counter()  # (x index, w index, g index)
    for target, sources in landed.items():
        for source, weight in sources:
            expected[(source, weight, target)] += 1
    for name, array, roles in (("z", derivation.z, ("x", "w")),
                               ("dL/dx", derivation.grads["x"], ("g", "w")),
                               ("dL/dw", derivation.grads["w"], ("g", "x"))):
        found = Counter()
        for position, element in zip(_indices(array.shape), flat(array)):
            for term in sympy.Add.make_args(element):
                if term == 0:
                    continue  # an element nothing lands on: the empty sum
                parts = dict(parse_element(f) for f in sympy.Mul.make_args(term)
                             if parse_element(f) is not None)
                if set(parts) == {"b"} and name == "z":
                    continue
                if set(parts) != set(roles) or term != sympy.Mul(
                        *[element_symbol(array, index) for array, index in parts.items()]):
                    raise PlanError(f"{name}{position}: a term {term} not of the form "
                                    f"{'*'.join(roles)}")
                own = {"z": "g", "dL/dx": "x", "dL/dw": "w"}[name]
                parts[own] = position
                found[(parts["x"], parts["w"], parts["g"])] += 1
        if found != expected:
            raise PlanError(f"the terms of {name} do not follow j = i*s - p_begin + k*d")


def _indices(shape):
    return list(np.ndindex(*shape))


def _instance(layer, max_terms):
    return representative_instance(layer)


@functools.lru_cache(maxsize=64)
def checked_instance(instance, input_shape) -> None:
    """Derive ``instance`` and check its index rule, once per instance (both styles ask)."""
    derivation = derive_instance(instance, input_shape, instance.output_shape_for(input_shape))
    check_index_rule(derivation)


def conv_transpose_context(layer, style: str, strategy: str | None) -> dict:
    instance, input_shape = representative_instance(layer)
    checked_instance(instance, input_shape)
    dims = layer.dims
    letters = ["L"] if dims == 1 else [axis[0].upper() for axis in AXIS_NAMES[dims]]
    kernel_letters = ["K"] if dims == 1 else [f"K{letter}" for letter in letters]
    derived = "this layer" if instance == layer and input_shape[0] == 1 else (
        f"{instance.describe()} on an input of {'x'.join(map(str, input_shape[2:]))} (the "
        f"index rule does not depend on the channel counts or the input size)")
    return dict(
        common_context(layer),
        template=f"conv_transpose/conv_transpose{'' if style == 'fast' else '_reference'}.py.j2",
        exports=["forward", "backward", "output_size"],
        in_channels=layer.in_channels, out_channels=layer.out_channels, groups=layer.groups,
        c_group=layer.group_in_channels, o_group=layer.group_out_channels,
        kernel_size=layer.kernel_size, stride=layer.stride, pad_begin=layer.pad_begin,
        pad_end=layer.pad_end, output_padding=layer.output_padding, dilation=layer.dilation,
        dims=dims, bias=layer.bias,
        weight_shape=str(layer.weight_shape),
        input_axes=", ".join(letters),
        input_letters=", ".join(f'"{letter}"' for letter in letters),
        output_axes=", ".join(f"{letter}o" for letter in letters),
        kernel_axes=", ".join(kernel_letters),
        size_names=", ".join(name.lower() if dims > 1 else "length"
                             for name in (AXIS_NAMES[dims] if dims > 1 else ("length",))),
        axes_words=" and ".join(AXIS_NAMES[dims]),
        size_rule="Lo = (L - 1)*s - p_begin - p_end + d*(K - 1) + output_padding + 1",
        derived_layer=derived,
        how=HOW[style],
    )


def _chain_shape(number: int, layer, rank: int, channels) -> tuple:
    where = f"layer {number} ({layer.describe()})"
    if rank != layer.dims + 2:
        raise ValueError(f"{where} takes inputs with {layer.dims} spatial axes, rank "
                         f"{layer.dims + 2}, but the layer before it gives rank {rank}")
    if channels is not None and channels != layer.in_channels:
        raise ValueError(f"{where} takes in_channels = {layer.in_channels} channels, "
                         f"but the layer before it gives {channels}")
    lines = [] if channels is not None else [
        f"_expect_channels(shape, {layer.in_channels}, {number})"]
    lines.append(f"shape = (shape[0], {layer.out_channels}, "
                 f"*_output_size_{number}(*shape[2:]))")
    if layer.dims == 2:  # the chain's emptiness check reads (N, C, H, W)
        lines.append(f"_expect_nonempty(input_shape, shape, {number})")
    return lines, layer.dims + 2, layer.out_channels


for _layer_type in LAYER_TYPES:
    NUMPY.register(_layer_type, NumpyKind(
        chain_shape=_chain_shape,
        context=conv_transpose_context,
        instance=_instance,
        backward_rule=("; dL/dw{number}{bias}", ", dL/db{number}"),
        input_shape=lambda layer: ("N", layer.in_channels,
                                   *(("L",) if layer.dims == 1 else
                                     tuple(a[0].upper() for a in AXIS_NAMES[layer.dims]))),
    ))
