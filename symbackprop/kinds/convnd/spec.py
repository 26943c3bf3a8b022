"""The 1-D and 3-D convolutions' specs: their parameters, their rules and their shapes.

Both are one N-dimensional convolution (:class:`ConvNd`) with a fixed number of
spatial axes: ``Conv1d`` reads ``(N, C, L)``, ``Conv3d`` ``(N, C, D, H, W)``.  Along
each axis ``a`` the output size is ``floor((size + begin + end - d*(K-1) - 1) / s) + 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.indexing import (
    axis_tuple,
    dilated_length,
    is_int,
    output_length,
    padding_pairs,
)
from symbackprop.core.layers import GroupedChannels, SpecMixin, positive_ints, short_numbers
from symbackprop.core.naming import MODULE_NAMES
from symbackprop.core.registry import register_kind

__all__ = ["ConvNd", "Conv1d", "Conv3d", "AXIS_NAMES"]

#: The spatial axes' names per number of axes: sizes, output sizes, and kernel offsets.
AXIS_NAMES = {1: ("L",), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class ConvNd(GroupedChannels, SpecMixin):
    """A convolution (cross-correlation) over ``spatial_axes`` axes; see :class:`Conv1d`."""

    in_channels: int = 1
    out_channels: int = 1
    kernel_size: tuple = (2,)
    stride: tuple = (1,)
    padding: tuple = (0, 0)
    dilation: tuple = (1,)
    groups: int = 1
    bias: bool = True

    spatial_axes = 1  # set by each kind
    spec_aliases = {"kernel": "kernel_size"}  # the command line's option name

    def __post_init__(self):
        set_ = object.__setattr__.__get__(self)
        axes = self.spatial_axes
        for name in ("kernel_size", "stride", "dilation"):
            set_(name, axis_tuple(getattr(self, name), axes, name))
        self.check_channel_counts()
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                along = "" if axes == 1 else " along every axis"
                raise ValueError(f"{name} must be >= 1{along}, got {getattr(self, name)}")
        # "same" and "valid" become numbers here: the layer holds (begin, end) per axis
        pairs = padding_pairs(self.padding, axes, self.kernel_size, self.dilation, self.stride)
        set_("padding", tuple(side for pair in pairs for side in pair))
        self.check_groups_and_bias()

    def field_default(self, field):
        """Defaults as stored: one value per axis (``kernel_size`` 2 on every axis)."""
        default = field.default
        if field.name in ("kernel_size", "stride", "dilation"):
            return (default[0],) * self.spatial_axes
        if field.name == "padding":
            return (0,) * (2 * self.spatial_axes)
        return default

    # -- shapes -------------------------------------------------------------
    @property
    def axis_names(self) -> tuple[str, ...]:
        """``("L",)`` or ``("D", "H", "W")``."""
        return AXIS_NAMES[self.spatial_axes]

    @property
    def padding_pairs(self) -> tuple[tuple[int, int], ...]:
        """``((begin, end), ...)``, one pair per spatial axis."""
        return tuple(zip(self.padding[::2], self.padding[1::2]))

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """``(O, C/groups, *kernel_size)``."""
        return (self.out_channels, self.group_in_channels, *self.kernel_size)

    def output_size(self, input_size) -> tuple[int, ...]:
        """The output's spatial sizes for an input of ``input_size`` (one per axis).

        ``size_o = floor((size + begin + end - d*(K-1) - 1) / s) + 1`` per axis;
        ``ValueError`` naming ``input_size`` when the dilated kernel does not fit.
        """
        sizes = axis_tuple(input_size, self.spatial_axes, "input_size")
        if min(sizes) < 1:
            raise ValueError(f"input_size must be at least 1 along every axis, got {sizes}")
        out = []
        for axis, size, kernel, step, (before, after), spread in zip(
                self.axis_names, sizes, self.kernel_size, self.stride, self.padding_pairs,
                self.dilation):
            extent = dilated_length(kernel, spread)
            if size + before + after < extent:
                raise ValueError(
                    f"input_size: the padded input {axis} {size}+{before}+{after} = "
                    f"{size + before + after} is smaller than the dilated kernel "
                    f"{spread}*({kernel}-1)+1 = {extent}; use a larger input, more padding, "
                    f"or a smaller kernel_size/dilation")
            out.append(output_length(size, kernel, step, before, after, spread))
        return tuple(out)

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, C, *sizes)`` from the spatial sizes (an int: the same on every axis), or
        from ``(C, *sizes)`` with ``C = in_channels``."""
        axes = self.spatial_axes
        if isinstance(input_size, (tuple, list)) and len(input_size) == axes + 1:
            channels, *input_size = input_size
            if channels != self.in_channels:
                raise ValueError(f"input_size: {self.describe()} takes in_channels = "
                                 f"{self.in_channels} channels, got {channels!r}")
        if isinstance(input_size, (tuple, list)) and len(input_size) == 1 and axes == 1:
            input_size = input_size[0]
        if not (is_int(input_size) or (isinstance(input_size, (tuple, list))
                                       and len(input_size) == axes)):
            names = "x".join(self.axis_names)
            raise ValueError(f"input_size: {self.describe()} takes {names} or C"
                             f"x{names}, got {input_size!r}")
        sizes = positive_ints(axis_tuple(input_size, axes, "input_size"), "input_size")
        return (batch, self.in_channels, *sizes)

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, O, *output sizes)``."""
        return (batch, self.out_channels, *self.output_size(input_size))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        """``(N, O, *output sizes)`` for an input of shape ``(N, C, *sizes)``; checks ``C``."""
        shape = tuple(input_shape)
        if len(shape) != 2 + self.spatial_axes:
            axes = ", ".join(("N", "C", *self.axis_names))
            raise ValueError(f"{self.describe()} takes inputs shaped ({axes}), got an input of "
                             f"shape {shape}")
        if shape[1] != self.in_channels:
            raise ValueError(f"{self.describe()} takes in_channels = {self.in_channels} "
                             f"channels, got an input of shape {shape}")
        return self.output_shape(shape[2:], shape[0])

    def term_count(self, input_shape) -> int:
        """Products ``w*x`` in the expansion: ``N * O * prod(outputs) * (C/groups) * prod(K)``."""
        return math.prod(self.output_shape_for(input_shape)) * self.group_in_channels * \
            math.prod(self.kernel_size)

    def padding_text(self) -> str:
        """``1`` (every side), ``(0, 1, 1)`` (per axis) or all ``(begin, end)`` numbers."""
        pairs = self.padding_pairs
        if all(before == after for before, after in pairs):
            return short_numbers(tuple(before for before, _ in pairs))
        return str(self.padding)

    def describe(self) -> str:
        """One line: ``Conv1d 16->32, kernel 5, stride 1, padding 2``."""
        parts = [f"{type(self).__name__} {self.in_channels}->{self.out_channels}",
                 f"kernel {'x'.join(map(str, self.kernel_size))}",
                 f"stride {short_numbers(self.stride)}",
                 f"padding {self.padding_text()}"]
        if set(self.dilation) != {1}:
            parts.append(f"dilation {short_numbers(self.dilation)}")
        if self.groups != 1:
            parts.append(f"groups {self.groups}")
        if not self.bias:
            parts.append("no bias")
        return ", ".join(parts)


@register_kind
@dataclass(frozen=True)
class Conv1d(ConvNd):
    """A 1-D convolution (cross-correlation) over sequences: audio, text.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``O``.
    kernel_size, stride, dilation : int or (int,)
        ``K``, ``s``, ``d``.
    padding : int, (int,), (begin, end), "valid" or "same"
        Zero padding: both ends, or ``(begin, end)``; ``"same"`` (stride 1 only) keeps
        the length, an odd extra zero at the end.  Stored as ``(begin, end)``.
    groups : int
        Channels are split into ``groups`` independent convolutions.
    bias : bool
        Whether the layer adds ``b[o]``.
    """

    kernel_size: tuple = (2,)
    stride: tuple = (1,)
    padding: tuple = (0, 0)
    dilation: tuple = (1,)

    kind = "conv1d"
    short_name = "conv1d"  # in a chain's module name
    spatial_axes = 1


@register_kind
@dataclass(frozen=True)
class Conv3d(ConvNd):
    """A 3-D convolution (cross-correlation) over volumes and video, ``(N, C, D, H, W)``.

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``O``.
    kernel_size, stride, dilation : int or (int, int, int)
        Per axis ``(D, H, W)``; an int means every axis.
    padding : int, 3 ints, 6 ints (begin, end per axis), "valid" or "same"
        Zero padding; ``"same"`` (stride 1 only) keeps the size, an odd extra zero at
        the end of an axis.  Stored as ``(front, back, top, bottom, left, right)``.
    groups : int
        Channels are split into ``groups`` independent convolutions.
    bias : bool
        Whether the layer adds ``b[o]``.
    """

    kernel_size: tuple = (2, 2, 2)
    stride: tuple = (1, 1, 1)
    padding: tuple = (0, 0, 0, 0, 0, 0)
    dilation: tuple = (1, 1, 1)

    kind = "conv3d"
    short_name = "conv3d"
    spatial_axes = 3


def _token(values) -> str:
    """``(3, 3, 3) -> "3"``, ``(1, 3, 3) -> "1x3x3"``."""
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _padding_token(layer) -> str:
    """``"1"`` (every side), ``"0x1x1"`` (per axis) or ``"0_1_0_1_0_1"`` (begin, end)."""
    pairs = layer.padding_pairs
    if all(before == after for before, after in pairs):
        return _token([before for before, _ in pairs])
    return "_".join(map(str, layer.padding))


def convnd_module_name(layer) -> str:
    """``conv1d_in16_out32_k5_s1_p2``; dilation, groups and no bias only when set."""
    parts = [layer.kind, f"in{layer.in_channels}", f"out{layer.out_channels}",
             f"k{_token(layer.kernel_size)}", f"s{_token(layer.stride)}",
             f"p{_padding_token(layer)}"]
    if set(layer.dilation) != {1}:
        parts.append(f"d{_token(layer.dilation)}")
    if layer.groups != 1:
        parts.append(f"g{layer.groups}")
    if not layer.bias:
        parts.append("nobias")
    return "_".join(parts)


for _layer_type in (Conv1d, Conv3d):
    MODULE_NAMES.register(_layer_type, convnd_module_name)
