"""Max and average pooling specs: window, stride, padding and shapes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.indexing import padding4, pair, sliding_output_size
from symbackprop.core.layers import (
    SpecMixin,
    check_batch,
    feature_maps,
    sample_shape,
    short_numbers,
)
from symbackprop.core.naming import MODULE_NAMES, padding_token, pair_token
from symbackprop.core.registry import register_kind


@dataclass(frozen=True)
class _Pool2d(SpecMixin):
    """Shared by max and average pooling: windows, stride, padding, shapes."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    parameter_names = ()
    spec_aliases = {"kernel": "kernel_size"}  # the command line's option name

    def __post_init__(self):
        set_ = object.__setattr__.__get__(self)
        set_("kernel_size", pair(self.kernel_size, "kernel_size"))
        # stride defaults to the window size; the value is stored, so replace()
        # keeps it when only kernel_size changes.
        set_("stride", self.kernel_size if self.stride is None else pair(self.stride, "stride"))
        set_("padding", padding4(self.padding, "padding"))
        for name in ("kernel_size", "stride"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 along both axes, got {getattr(self, name)}")
        if min(self.padding) < 0:
            raise ValueError(f"padding must be >= 0 on every side, got {self.padding}")
        (kernel_h, kernel_w), (top, bottom, left, right) = self.kernel_size, self.padding
        if max(top, bottom) >= kernel_h or max(left, right) >= kernel_w:
            raise ValueError(
                f"padding must be smaller than kernel_size on every side, so that every window "
                f"holds at least one input element: got padding {self.padding} "
                f"(top, bottom, left, right) for a {kernel_h}x{kernel_w} window")

    @property
    def parameter_shapes(self) -> dict:
        return {}

    def output_size(self, input_size) -> tuple[int, int]:
        """``(Ho, Wo)``: ``Ho = floor((H + top + bottom - KH) / sh) + 1``."""
        return sliding_output_size(
            input_size, self.kernel_size, self.stride, self.padding, (1, 1),
            lambda kernel, dilation, extent: (
                f"the {kernel}-wide window; use a larger input or a smaller kernel_size"))

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        """``(N, C, H, W)`` from ``(H, W)`` (one channel), an int (square) or ``(C, H, W)``."""
        return (check_batch(batch), *sample_shape(input_size))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        """``(N, C, Ho, Wo)``."""
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, int, int, int]:
        batch, channels, height, width = feature_maps(input_shape, self)
        return (batch, channels, *self.output_size((height, width)))

    def term_count(self, input_shape) -> int:
        """Window elements written out: ``N * C * Ho * Wo * KH * KW``."""
        return math.prod(self.output_shape_for(input_shape)) * math.prod(self.kernel_size)

    @property
    def overlapping(self) -> bool:
        """Whether windows share input elements (stride smaller than the window)."""
        return self.stride[0] < self.kernel_size[0] or self.stride[1] < self.kernel_size[1]

    def field_default(self, field):
        """The stride's default is the window: a stride equal to it is left out of specs."""
        return self.kernel_size if field.name == "stride" else super().field_default(field)

    def _describe_window(self) -> str:
        kernel_h, kernel_w = self.kernel_size
        return (f"{type(self).__name__} {kernel_h}x{kernel_w}, "
                f"stride {short_numbers(self.stride)}, padding {short_numbers(self.padding)}")


@register_kind
@dataclass(frozen=True)
class MaxPool2d(_Pool2d):
    """Max pooling: each output is the largest element of its window.

    Parameters
    ----------
    kernel_size : int or (int, int)
        The window ``(KH, KW)``.
    stride : int, (int, int) or None
        Defaults to ``kernel_size`` (windows side by side).  Smaller strides make
        windows overlap, larger ones leave gaps.
    padding : int, (int, int) or (int, int, int, int)
        Padding never wins the maximum (it acts as ``-inf``); each side must be
        smaller than the window.

    Ties go to the first maximum of the window in row-major order.
    """

    kind = "maxpool2d"
    short_name = "maxpool"  # in a chain's module name

    def describe(self) -> str:
        return self._describe_window()


@register_kind
@dataclass(frozen=True)
class AvgPool2d(_Pool2d):
    """Average (mean) pooling.

    Parameters
    ----------
    kernel_size, stride, padding
        As in :class:`MaxPool2d`; padding adds zeros.
    count_include_pad : bool
        True (default): every window divides by ``KH*KW``, padded zeros included.
        False: it divides by the number of real input elements in the window.
    """

    count_include_pad: bool = True

    kind = "avgpool2d"
    short_name = "avgpool"  # in a chain's module name

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.count_include_pad, bool):
            raise ValueError(f"count_include_pad must be True or False, got "
                             f"{self.count_include_pad!r}")

    def describe(self) -> str:
        text = self._describe_window()
        if any(self.padding):
            text += (", padding counts in the divisor" if self.count_include_pad
                     else ", padding left out of the divisor")
        return text


def pool_module_name(layer) -> str:
    """``maxpool2d_k2_s2_p0``, ``avgpool2d_k3_s2_p1_nopadcount``."""
    parts = [layer.kind, f"k{pair_token(layer.kernel_size)}", f"s{pair_token(layer.stride)}",
             f"p{padding_token(layer.padding)}"]
    if not getattr(layer, "count_include_pad", True):
        parts.append("nopadcount")
    return "_".join(parts)


MODULE_NAMES.register(MaxPool2d, pool_module_name)
MODULE_NAMES.register(AvgPool2d, pool_module_name)
