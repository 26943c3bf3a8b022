"""The transposed convolutions' specs (1-D, 2-D, 3-D): parameters, rules and shapes.

One N-dimensional class, :class:`ConvTransposeNd`, holds everything; the three kinds
differ only in their number of spatial axes.  Arguments and defaults are PyTorch's
(``ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
output_padding=0, dilation=1, groups=1, bias=True)``), the weight is shaped
``(in_channels, out_channels // groups, *kernel)`` and the output size per axis is

    Lo = (L - 1)*s - p_begin - p_end + d*(K - 1) + output_padding + 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.indexing import is_int
from symbackprop.core.layers import GroupedChannels, SpecMixin, positive_ints, short_numbers
from symbackprop.core.naming import MODULE_NAMES
from symbackprop.core.registry import register_kind

__all__ = ["ConvTransposeNd", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
           "AXIS_NAMES", "transposed_output_length", "per_axis", "padding_pairs"]

#: The spatial axes' names by the number of axes: in messages and printouts.
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def per_axis(value, name: str, dims: int) -> tuple[int, ...]:
    """``value`` as one whole number per spatial axis; an int means every axis."""
    if is_int(value):
        return (int(value),) * dims
    if isinstance(value, (tuple, list)) and len(value) == dims and all(map(is_int, value)):
        return tuple(int(v) for v in value)
    axes = ", ".join(AXIS_NAMES[dims])
    raise ValueError(f"{name} must be an int or {dims} ints ({axes}), got {value!r}")


def padding_pairs(value, dims: int) -> tuple[int, ...]:
    """Padding as ``(begin, end)`` per axis, flattened in axis order.

    An int pads every side, ``dims`` ints pad both ends of each axis, ``2*dims`` ints are
    taken as they are (the 2-D ``(top, bottom, left, right)``).  ``"valid"`` is 0;
    ``"same"`` is refused, as PyTorch refuses it for transposed convolutions.
    """
    if isinstance(value, str):
        if value == "valid":
            return (0,) * (2 * dims)
        if value == "same":
            raise ValueError(
                "padding='same' is not supported for transposed convolutions (PyTorch does "
                "not support it either): give the padding as numbers, 'valid' for 0")
        raise ValueError(f"padding must be a number, numbers or 'valid', got {value!r}")
    if is_int(value):
        return (int(value),) * (2 * dims)
    if isinstance(value, (tuple, list)) and all(map(is_int, value)):
        if len(value) == dims:
            return tuple(int(v) for v in value for _ in range(2))
        if len(value) == 2 * dims:
            return tuple(int(v) for v in value)
    ends = ", ".join(f"{axis} begin, {axis} end" for axis in AXIS_NAMES[dims])
    raise ValueError(f"padding must be an int, {dims} ints (one per axis) or {2 * dims} ints "
                     f"({ends}), got {value!r}")


def transposed_output_length(size: int, kernel: int, stride: int, begin: int, end: int,
                             dilation: int, output_padding: int) -> int:
    """``(L - 1)*s - p_begin - p_end + d*(K - 1) + output_padding + 1``."""
    return (size - 1) * stride - begin - end + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True)
class ConvTransposeNd(GroupedChannels, SpecMixin):
    """A transposed convolution over ``dims`` spatial axes (the subclasses fix ``dims``).

    Each input element ``x[n, c, i]`` scatters ``x[n, c, i] * w[c, o, k]`` onto output
    position ``i*s - p_begin + k*d`` of every output channel ``o`` of its group; what
    lands outside ``[0, Lo)`` is cropped (the padding).

    Parameters
    ----------
    in_channels, out_channels : int
        ``C`` and ``O``.
    kernel_size, stride, dilation, output_padding : int or one int per axis
        ``K``, ``s``, ``d`` and the extra positions at the end of each axis, each
        ``output_padding < stride`` or ``output_padding < dilation`` (PyTorch's rule).
    padding : int, one int per axis, or (begin, end) per axis flattened; or ``"valid"``
        Positions cropped from both ends of the full output.
    groups : int
        Channels are split into ``groups`` independent transposed convolutions.
    bias : bool
        Whether the layer adds ``b[o]``.
    """

    in_channels: int = 1
    out_channels: int = 1
    kernel_size: object = 2
    stride: object = 1
    padding: object = 0
    output_padding: object = 0
    dilation: object = 1
    groups: int = 1
    bias: bool = True

    dims = 0  # the subclasses' number of spatial axes
    spec_aliases = {"kernel": "kernel_size"}  # the command line's option name

    def __post_init__(self):
        set_ = object.__setattr__.__get__(self)
        for name in ("kernel_size", "stride", "dilation", "output_padding"):
            set_(name, per_axis(getattr(self, name), name, self.dims))
        set_("padding", padding_pairs(self.padding, self.dims))
        self.check_channel_counts()
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 along every axis, got "
                                 f"{getattr(self, name)}")
        if min(self.padding) < 0:
            raise ValueError(f"padding must be >= 0 on every side, got {self.padding}")
        if min(self.output_padding) < 0:
            raise ValueError(f"output_padding must be >= 0 along every axis, got "
                             f"{self.output_padding}")
        for axis, (extra, stride, dilation) in enumerate(
                zip(self.output_padding, self.stride, self.dilation)):
            if extra >= stride and extra >= dilation:
                raise ValueError(
                    f"output_padding must be smaller than either stride or dilation (PyTorch's "
                    f"rule), got output_padding {extra} >= stride {stride} and dilation "
                    f"{dilation} along the {AXIS_NAMES[self.dims][axis]}")
        self.check_groups_and_bias()

    def field_default(self, field):
        """The default as it is stored (``stride=1`` is kept as ``(1, 1)``)."""
        if field.name == "padding":
            return padding_pairs(field.default, self.dims)
        if field.name in ("kernel_size", "stride", "dilation", "output_padding"):
            return per_axis(field.default, field.name, self.dims)
        return field.default

    # -- shapes -------------------------------------------------------------
    @property
    def weight_shape(self) -> tuple[int, ...]:
        """``(C, O/groups, *K)``: PyTorch's layout, input channels first."""
        return (self.in_channels, self.group_out_channels, *self.kernel_size)

    @property
    def spatial_axes(self) -> int:
        """Trailing axes of x, w and z that are positions (always printed in a label)."""
        return self.dims

    @property
    def pad_begin(self) -> tuple[int, ...]:
        return self.padding[0::2]

    @property
    def pad_end(self) -> tuple[int, ...]:
        return self.padding[1::2]

    def output_size(self, input_size) -> tuple[int, ...]:
        """``Lo`` per axis; ``ValueError`` naming padding when an axis would be empty."""
        sizes = per_axis(input_size, "input_size", self.dims)
        if min(sizes) < 1:
            raise ValueError(f"input_size must be at least 1 along every axis, got {sizes}")
        out = []
        for axis, values in enumerate(zip(sizes, self.kernel_size, self.stride, self.pad_begin,
                                          self.pad_end, self.dilation, self.output_padding)):
            length = transposed_output_length(*values)
            if length < 1:
                size, kernel, stride, begin, end, dilation, extra = values
                full = f"({size}-1)*{stride} + {dilation}*({kernel}-1) + {extra} + 1"
                raise ValueError(
                    f"padding: cropping {begin}+{end} positions from the "
                    f"{AXIS_NAMES[self.dims][axis]} of the full output {full} = "
                    f"{length + begin + end} leaves {length}; use less padding or a larger input")
            out.append(length)
        return tuple(out)

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, C, *L)`` from the spatial size (an int: every axis), or ``(C, *L)``."""
        if isinstance(input_size, (tuple, list)) and len(input_size) == self.dims + 1:
            channels, *input_size = input_size
            if channels != self.in_channels:
                raise ValueError(f"input_size: {self.describe()} takes in_channels = "
                                 f"{self.in_channels} channels, got {channels!r}")
        if isinstance(input_size, (tuple, list)) and len(input_size) == 1 and self.dims == 1:
            input_size = input_size[0]
        sizes = per_axis(input_size, "input_size", self.dims)
        return (batch, self.in_channels, *positive_ints(sizes, "input_size"))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, O, *Lo)``."""
        return (batch, self.out_channels, *self.output_size(input_size))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        """``(N, O, *Lo)`` for an input of shape ``(N, C, *L)``; checks the rank and ``C``."""
        shape = tuple(input_shape)
        if len(shape) != self.dims + 2:
            axes = ", ".join(("N", "C", *(a[0].upper() for a in AXIS_NAMES[self.dims])))
            raise ValueError(f"{self.describe()} takes an input shaped ({axes}), got shape "
                             f"{shape}")
        if shape[1] != self.in_channels:
            raise ValueError(f"{self.describe()} takes in_channels = {self.in_channels} "
                             f"channels, got an input of shape {shape}")
        return self.output_shape(shape[2:], shape[0])

    def term_count(self, input_shape) -> int:
        """Products ``x*w`` the scatter computes: ``N * C * prod(L) * (O/groups) * prod(K)``.

        Products that land in the cropped padding are counted too: they are written out
        (and dropped) like the convolution's padding products.
        """
        shape = tuple(input_shape)
        self.output_shape_for(shape)
        return math.prod(shape) * self.group_out_channels * math.prod(self.kernel_size)

    def describe(self) -> str:
        """``ConvTranspose2d 64->32, kernel 4x4, stride 2, padding 1``."""
        name = type(self).__name__
        parts = [f"{name} {self.in_channels}->{self.out_channels}",
                 f"kernel {'x'.join(map(str, self.kernel_size))}",
                 f"stride {short_numbers(self.stride)}", f"padding {short_numbers(self.padding)}"]
        if any(self.output_padding):
            parts.append(f"output_padding {short_numbers(self.output_padding)}")
        if any(d != 1 for d in self.dilation):
            parts.append(f"dilation {short_numbers(self.dilation)}")
        if self.groups != 1:
            parts.append(f"groups {self.groups}")
        if not self.bias:
            parts.append("no bias")
        return ", ".join(parts)

    def convolution_arguments(self) -> dict:
        """The keyword arguments of the convolution this layer is the transpose of.

        ``Conv{n}d(out_channels, in_channels, kernel_size, stride, padding, dilation,
        groups)``: it maps the transposed convolution's output shape back to its input
        shape, and its weight ``(C, O/groups, *K)`` is this layer's weight, the same array.
        """
        return dict(in_channels=self.out_channels, out_channels=self.in_channels,
                    kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                    dilation=self.dilation, groups=self.groups, bias=False)


@register_kind
@dataclass(frozen=True)
class ConvTranspose1d(ConvTransposeNd):
    """A 1-D transposed convolution (PyTorch's ``ConvTranspose1d``)."""

    dims = 1
    kind = "convtranspose1d"
    short_name = "convt1d"  # in a chain's module name


@register_kind
@dataclass(frozen=True)
class ConvTranspose2d(ConvTransposeNd):
    """A 2-D transposed convolution (PyTorch's ``ConvTranspose2d``)."""

    dims = 2
    kind = "convtranspose2d"
    short_name = "convt"


@register_kind
@dataclass(frozen=True)
class ConvTranspose3d(ConvTransposeNd):
    """A 3-D transposed convolution (PyTorch's ``ConvTranspose3d``)."""

    dims = 3
    kind = "convtranspose3d"
    short_name = "convt3d"


LAYER_TYPES = (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)


def _token(values) -> str:
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def conv_transpose_module_name(layer: ConvTransposeNd) -> str:
    """``convtranspose2d_in64_out32_k4_s2_p1``; output padding, dilation, groups and no
    bias only when set; padding as ``b_e_b_e`` when the two ends differ."""
    begin, end = layer.pad_begin, layer.pad_end
    padding = _token(begin) if begin == end else "_".join(map(str, layer.padding))
    parts = [layer.kind, f"in{layer.in_channels}", f"out{layer.out_channels}",
             f"k{_token(layer.kernel_size)}", f"s{_token(layer.stride)}", f"p{padding}"]
    if any(layer.output_padding):
        parts.append(f"op{_token(layer.output_padding)}")
    if any(d != 1 for d in layer.dilation):
        parts.append(f"d{_token(layer.dilation)}")
    if layer.groups != 1:
        parts.append(f"g{layer.groups}")
    if not layer.bias:
        parts.append("nobias")
    return "_".join(parts)


for _layer_type in LAYER_TYPES:
    MODULE_NAMES.register(_layer_type, conv_transpose_module_name)
