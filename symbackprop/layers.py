"""Layer specifications: the first stage of the pipeline.

A layer is a small frozen value object.  Its parameters are normalised and
validated when it is built (``Conv2d(kernel_size=3)`` stores ``(3, 3)``), it is
changed with :func:`dataclasses.replace`, and it knows its own output shape.
Input-dependent rules (is the input large enough for the dilated kernel?) are
checked by :meth:`Conv2d.output_shape`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .indexing import _is_int, dilated_length, output_length, padding4, pair

__all__ = ["Conv2d", "input_shape_of"]


@dataclass(frozen=True)
class Conv2d:
    """A 2-D convolution (cross-correlation, as deep-learning libraries compute it).

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``O``.
    kernel_size, stride, dilation : int or (int, int)
        ``(KH, KW)``, ``(sh, sw)``, ``(dh, dw)``; an int means both axes.
    padding : int, (int, int) or (int, int, int, int)
        Zero padding: all sides, ``(h, w)``, or ``(top, bottom, left, right)``.
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

    def __post_init__(self):
        set_ = object.__setattr__.__get__(self)
        set_("kernel_size", pair(self.kernel_size, "kernel_size"))
        set_("stride", pair(self.stride, "stride"))
        set_("dilation", pair(self.dilation, "dilation"))
        set_("padding", padding4(self.padding, "padding"))
        for name in ("in_channels", "out_channels", "groups"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 along both axes, got {getattr(self, name)}")
        if min(self.padding) < 0:
            raise ValueError(f"padding must be >= 0 on every side, got {self.padding}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False, got {self.bias!r}")
        for name in ("in_channels", "out_channels"):
            if getattr(self, name) % self.groups:
                raise ValueError(
                    f"groups must divide {name}: {getattr(self, name)} channels cannot be split "
                    f"into {self.groups} groups"
                )

    # -- shapes -------------------------------------------------------------
    @property
    def group_in_channels(self) -> int:
        """Input channels each kernel sees: ``C / groups``."""
        return self.in_channels // self.groups

    @property
    def group_out_channels(self) -> int:
        """Output channels per group: ``O / groups``."""
        return self.out_channels // self.groups

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """``(O, C/groups, KH, KW)``."""
        return (self.out_channels, self.group_in_channels, *self.kernel_size)

    @property
    def bias_shape(self) -> tuple[int] | None:
        return (self.out_channels,) if self.bias else None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return ("w", "b") if self.bias else ("w",)

    def output_size(self, input_size) -> tuple[int, int]:
        """``(Ho, Wo)`` for an input of ``(H, W)``; ``ValueError`` if it does not fit.

        ``Ho = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1``.
        """
        height, width = pair(input_size, "input_size")
        if height < 1 or width < 1:
            raise ValueError(f"input_size must be at least 1x1, got {height}x{width}")
        top, bottom, left, right = self.padding
        sizes = []
        for axis, size, kernel, stride, before, after, dilation in (
            ("height", height, self.kernel_size[0], self.stride[0], top, bottom, self.dilation[0]),
            ("width", width, self.kernel_size[1], self.stride[1], left, right, self.dilation[1]),
        ):
            extent = dilated_length(kernel, dilation)
            if size + before + after < extent:
                raise ValueError(
                    f"input_size: the padded input {axis} {size}+{before}+{after} = "
                    f"{size + before + after} is smaller than the dilated kernel "
                    f"{dilation}*({kernel}-1)+1 = {extent}; use a larger input, more padding, "
                    f"or a smaller kernel_size/dilation"
                )
            sizes.append(output_length(size, kernel, stride, before, after, dilation))
        return tuple(sizes)

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        """``(N, C, H, W)``."""
        height, width = pair(input_size, "input_size")
        return (batch, self.in_channels, height, width)

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        """``(N, O, Ho, Wo)``."""
        return (batch, self.out_channels, *self.output_size(input_size))

    def replace(self, **changes) -> "Conv2d":
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line in the user's terms: ``Conv2d 1->1, kernel 2x2, stride 1, padding 1``."""
        parts = [f"Conv2d {self.in_channels}->{self.out_channels}",
                 f"kernel {self.kernel_size[0]}x{self.kernel_size[1]}",
                 f"stride {_short(self.stride)}", f"padding {_short(self.padding)}"]
        if self.dilation != (1, 1):
            parts.append(f"dilation {_short(self.dilation)}")
        if self.groups != 1:
            parts.append(f"groups {self.groups}")
        if not self.bias:
            parts.append("no bias")
        return ", ".join(parts)


def _short(values: tuple[int, ...]) -> str:
    if len(set(values)) == 1:
        return str(values[0])
    if len(values) == 4 and values[0] == values[1] and values[2] == values[3]:
        return f"({values[0]}, {values[2]})"
    return str(values)


def input_shape_of(layer, input_size, batch: int = 1):
    """``(N, C, H, W)`` of ``layer``'s input, checking ``batch``."""
    if not _is_int(batch) or batch < 1:
        raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
    return layer.input_shape(input_size, batch)
