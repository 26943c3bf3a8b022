"""The 2-D convolution's spec: its parameters, their rules and its shapes.

The kind's first stage: a frozen value object, validated when it is built, that
knows its own output shape (``Ho = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

from symbackprop.core.indexing import padding_pairs, pair, sliding_output_size
from symbackprop.core.layers import GroupedChannels, SpecMixin, feature_maps, short_numbers
from symbackprop.core.naming import MODULE_NAMES, padding_token, pair_token
from symbackprop.core.registry import register_kind


@register_kind
@dataclass(frozen=True)
class Conv2d(GroupedChannels, SpecMixin):
    """A 2-D convolution (cross-correlation, as deep-learning libraries compute it).

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``O``.
    kernel_size, stride, dilation : int or (int, int)
        ``(KH, KW)``, ``(sh, sw)``, ``(dh, dw)``; an int means both axes.
    padding : int, (int, int), (int, int, int, int), "valid" or "same"
        Zero padding: all sides, ``(h, w)``, or ``(top, bottom, left, right)``;
        ``"valid"`` is none, ``"same"`` (stride 1 only) keeps the input's size, an odd
        extra row or column at the end.  Stored as ``(top, bottom, left, right)``.
    groups : int
        Channels are split into ``groups`` independent convolutions.
    bias : bool
        Whether the layer adds ``b[o]``.
    """

    in_channels: int = 1
    out_channels: int = 1
    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = True

    kind = "conv2d"
    short_name = "conv"  # in a chain's module name
    spec_aliases = {"kernel": "kernel_size"}  # the command line's option name

    def __post_init__(self):
        set_ = object.__setattr__.__get__(self)
        set_("kernel_size", pair(self.kernel_size, "kernel_size"))
        set_("stride", pair(self.stride, "stride"))
        set_("dilation", pair(self.dilation, "dilation"))
        self.check_channel_counts()
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 along both axes, got {getattr(self, name)}")
        # "same" and "valid" become numbers here: the layer holds (top, bottom, left, right)
        pairs = padding_pairs(self.padding, 2, self.kernel_size, self.dilation, self.stride)
        set_("padding", tuple(side for pair_ in pairs for side in pair_))
        self.check_groups_and_bias()

    # -- shapes -------------------------------------------------------------
    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """``(O, C/groups, KH, KW)``."""
        return (self.out_channels, self.group_in_channels, *self.kernel_size)

    def output_size(self, input_size) -> tuple[int, int]:
        """``(Ho, Wo)`` for an input of ``(H, W)``; ``ValueError`` if it does not fit.

        ``Ho = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1``.
        """
        return sliding_output_size(
            input_size, self.kernel_size, self.stride, self.padding, self.dilation,
            lambda kernel, dilation, extent: (
                f"the dilated kernel {dilation}*({kernel}-1)+1 = {extent}; use a larger input, "
                f"more padding, or a smaller kernel_size/dilation"))

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        """``(N, C, H, W)`` from ``(H, W)`` (or ``(C, H, W)`` with ``C = in_channels``)."""
        if isinstance(input_size, (tuple, list)) and len(input_size) == 3:
            channels, *input_size = input_size
            if channels != self.in_channels:
                raise ValueError(f"input_size: {self.describe()} takes in_channels = "
                                 f"{self.in_channels} channels, got {channels!r}")
        height, width = pair(input_size, "input_size")
        return (batch, self.in_channels, height, width)

    def output_shape_for(self, input_shape) -> tuple[int, int, int, int]:
        """``(N, O, Ho, Wo)`` for an input of shape ``(N, C, H, W)``; checks ``C``."""
        batch, channels, height, width = feature_maps(input_shape, self)
        if channels != self.in_channels:
            raise ValueError(f"{self.describe()} takes in_channels = {self.in_channels} "
                             f"channels, got an input of shape {tuple(input_shape)}")
        return self.output_shape((height, width), batch)

    def term_count(self, input_shape) -> int:
        """Products ``w*x`` in the expansion: ``N * O * Ho * Wo * (C/groups) * KH * KW``."""
        batch, out_channels, out_h, out_w = self.output_shape_for(input_shape)
        return batch * out_channels * out_h * out_w * self.group_in_channels * \
            self.kernel_size[0] * self.kernel_size[1]

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        """``(N, O, Ho, Wo)``."""
        return (batch, self.out_channels, *self.output_size(input_size))

    def describe(self) -> str:
        """One line in the user's terms: ``Conv2d 1->1, kernel 2x2, stride 1, padding 1``."""
        parts = [f"Conv2d {self.in_channels}->{self.out_channels}",
                 f"kernel {self.kernel_size[0]}x{self.kernel_size[1]}",
                 f"stride {short_numbers(self.stride)}", f"padding {short_numbers(self.padding)}"]
        if self.dilation != (1, 1):
            parts.append(f"dilation {short_numbers(self.dilation)}")
        if self.groups != 1:
            parts.append(f"groups {self.groups}")
        if not self.bias:
            parts.append("no bias")
        return ", ".join(parts)


def conv2d_module_name(layer: Conv2d) -> str:
    """``conv2d_in3_out16_k3_s2_p1``; dilation, groups and no bias only when set."""
    parts = [layer.kind, f"in{layer.in_channels}", f"out{layer.out_channels}",
             f"k{pair_token(layer.kernel_size)}", f"s{pair_token(layer.stride)}",
             f"p{padding_token(layer.padding)}"]
    if layer.dilation != (1, 1):
        parts.append(f"d{pair_token(layer.dilation)}")
    if layer.groups != 1:
        parts.append(f"g{layer.groups}")
    if not layer.bias:
        parts.append("nobias")
    return "_".join(parts)


MODULE_NAMES.register(Conv2d, conv2d_module_name)
