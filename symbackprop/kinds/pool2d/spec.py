"""Max and average pooling specs in 1, 2 and 3 dimensions: window, stride, padding,
dilation, ceil_mode and shapes, with PyTorch's arguments and rules.

One N-dimensional base, :class:`PoolNd`, holds every rule; the six kinds differ
only in ``spatial_dims`` (1, 2 or 3) and in max or average.  Along each spatial axis
(input length ``L``, window ``k``, stride ``s``, padding ``b`` before and ``e`` after,
dilation ``d``) window ``i`` reads the padded positions ``i*s - b + d*m``,
``m = 0..k-1``, and the number of windows is PyTorch's::

    Lo = floor((L + b + e - d*(k-1) - 1) / s) + 1         (ceil_mode=False)
    Lo = ceil((L + b + e - d*(k-1) - 1) / s) + 1, minus 1 when that last window
         would start past the input and the left padding, at (Lo-1)*s >= L + b

Padding must be at most half the window, ``b, e <= k // 2`` (PyTorch's rule; the
dilation does not count), so that a window holds input elements; a dilated window that
would still read only padding (it can step over a small input) is refused with the
input size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.indexing import dilated_length, is_int, padding4, pair
from symbackprop.core.layers import (
    SpecMixin,
    check_batch,
    positive_ints,
    sample_shape,
    short_numbers,
)
from symbackprop.core.naming import MODULE_NAMES, padding_token, pair_token
from symbackprop.core.registry import register_kind

#: The names of the spatial axes of a (N, C, ...) feature map, per number of axes.
AXIS_NAMES = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
#: The letters of the spatial axes (input sizes), per number of axes.
AXIS_LETTERS = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def axis_tuple(value, name: str, dims: int) -> tuple[int, ...]:
    """``value`` as one int per spatial axis: an int means every axis."""
    if dims == 2:
        return pair(value, name)
    if is_int(value):
        return (int(value),) * dims
    if isinstance(value, (tuple, list)) and len(value) == dims and all(map(is_int, value)):
        return tuple(int(v) for v in value)
    raise ValueError(f"{name} must be an int or {dims} ints (one per axis: "
                     f"{', '.join(AXIS_NAMES[dims])}), got {value!r}")


def padding_pairs(value, name: str, dims: int) -> tuple[int, ...]:
    """Padding as ``(before, after)`` per axis, flattened in axis order.

    An int pads every side, one int per axis pads both ends of that axis, and
    ``2*dims`` ints are the (before, after) pairs (the 2-D ``(top, bottom, left,
    right)``).
    """
    if dims == 2:
        return padding4(value, name)
    if is_int(value):
        return (int(value),) * (2 * dims)
    if isinstance(value, (tuple, list)) and all(map(is_int, value)):
        if len(value) == dims:
            return tuple(int(v) for v in value for _ in range(2))
        if len(value) == 2 * dims:
            return tuple(int(v) for v in value)
    raise ValueError(f"{name} must be an int, {dims} ints (one per axis) or {2 * dims} ints "
                     f"((before, after) per axis), got {value!r}")


def pooled_length(size: int, kernel: int, stride: int, before: int, after: int,
                  dilation: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's number of windows along one axis (see the module docstring).

    Below 1 when the dilated window does not fit in the padded input.
    """
    span = size + before + after - dilated_length(kernel, dilation)
    if span < 0:
        return span // stride + 1
    count = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (count - 1) * stride >= size + before:
        count -= 1  # the last window would start in the right padding: PyTorch drops it
    return count


def window_positions(index: int, kernel: int, stride: int, before: int,
                     dilation: int = 1) -> list[int]:
    """Input positions (padding negative or past the end) of window ``index``."""
    return [index * stride - before + dilation * m for m in range(kernel)]


@dataclass(frozen=True)
class PoolNd(SpecMixin):
    """Shared by max and average pooling in any number of spatial axes."""

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] = (0, 0, 0, 0)

    parameter_names = ()
    spec_aliases = {"kernel": "kernel_size"}  # the command line's option name
    spatial_dims = 2

    def __post_init__(self):
        dims = self.spatial_dims
        set_ = object.__setattr__.__get__(self)
        set_("kernel_size", axis_tuple(self.kernel_size, "kernel_size", dims))
        # stride defaults to the window size; the value is stored, so replace()
        # keeps it when only kernel_size changes.
        set_("stride", self.kernel_size if self.stride is None
             else axis_tuple(self.stride, "stride", dims))
        set_("padding", padding_pairs(self.padding, "padding", dims))
        if "dilation" in self.__dataclass_fields__:
            set_("dilation", axis_tuple(self.dilation, "dilation", dims))
        axes = "both axes" if dims == 2 else ("the axis" if dims == 1 else "every axis")
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1 along {axes}, got {getattr(self, name)}")
        if min(self.padding) < 0:
            raise ValueError(f"padding must be >= 0 on every side, got {self.padding}")
        if not isinstance(self.ceil_mode, bool):
            raise ValueError(f"ceil_mode must be True or False, got {self.ceil_mode!r}")
        for axis in range(dims):
            kernel = self.kernel_size[axis]
            if max(self.padding[2 * axis:2 * axis + 2]) > kernel // 2:
                raise ValueError(
                    f"padding must be at most half the window on every side (PyTorch's rule, "
                    f"padding <= kernel_size // 2 = {kernel} // 2 = {kernel // 2} here, dilation "
                    f"not counted): "
                    f"got padding {self.padding} ({self._padding_order()}) for the "
                    f"{AXIS_NAMES[dims][axis]} axis' {kernel}-wide window")

    # -- shared rules ---------------------------------------------------------------
    @property
    def dilation(self) -> tuple[int, ...]:  # max pooling's is a field
        return (1,) * self.spatial_dims

    @property
    def ceil_mode(self) -> bool:  # a field of both kinds; here for the base alone
        return False

    @property
    def extent(self) -> tuple[int, ...]:
        """The span of a (dilated) window along each axis: ``d*(k-1) + 1``."""
        return tuple(dilated_length(k, d) for k, d in zip(self.kernel_size, self.dilation))

    @property
    def new_options(self) -> bool:
        """Whether the layer uses dilation or ceil_mode (or is not 2-D), which the first
        2-D pooling modules did not have."""
        return self.spatial_dims != 2 or self.ceil_mode or any(d != 1 for d in self.dilation)

    def _padding_order(self) -> str:
        return {1: "before, after", 2: "top, bottom, left, right",
                3: "front, back, top, bottom, left, right"}[self.spatial_dims]

    @property
    def parameter_shapes(self) -> dict:
        return {}

    def axis_values(self, axis: int) -> tuple[int, int, int, int, int]:
        """``(kernel, stride, before, after, dilation)`` of one spatial axis."""
        return (self.kernel_size[axis], self.stride[axis], self.padding[2 * axis],
                self.padding[2 * axis + 1], self.dilation[axis])

    def output_size(self, input_size) -> tuple[int, ...]:
        """The number of windows along each axis (PyTorch's rule, see the module)."""
        sizes = self._spatial(input_size)
        result = []
        for axis, size in enumerate(sizes):
            kernel, stride, before, after, dilation = self.axis_values(axis)
            extent = dilated_length(kernel, dilation)
            if size + before + after < extent:
                raise ValueError(
                    f"input_size: the padded input {AXIS_NAMES[self.spatial_dims][axis]} "
                    f"{size}+{before}+{after} = {size + before + after} is smaller than the "
                    f"{kernel}-wide window" + (f" of dilation {dilation} ({extent} wide)"
                                               if dilation > 1 else "")
                    + "; use a larger input or a smaller kernel_size")
            count = pooled_length(size, kernel, stride, before, after, dilation, self.ceil_mode)
            # Every window starts before the input's end (PyTorch's rule), and one that
            # starts at 0 or later holds its start.  A window starting in the left padding
            # first reaches 0 or more at start % dilation (padding <= kernel_size // 2
            # keeps that within the window), which a dilated window can step past an input
            # shorter than the dilation: only then is it all padding.
            starting_in_padding = min(count, -(-before // stride)) if size < dilation else 0
            for index in range(starting_in_padding):
                if (index * stride - before) % dilation >= size:
                    raise ValueError(
                        f"input_size: window {index + 1} along the "
                        f"{AXIS_NAMES[self.spatial_dims][axis]} reads only padding (a "
                        f"{kernel}-wide window of dilation {dilation} over {size} input "
                        f"elements padded {before}+{after}); use a larger input")
            result.append(count)
        return tuple(result)

    def _spatial(self, input_size) -> tuple[int, ...]:
        dims = self.spatial_dims
        if dims == 2:
            sizes = pair(input_size, "input_size")
            if min(sizes) < 1:
                raise ValueError(f"input_size must be at least 1x1, got {sizes[0]}x{sizes[1]}")
            return sizes
        return positive_ints(axis_tuple(input_size, "input_size", dims), "input_size")

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, C, *spatial)``: an int is every spatial size (one channel), the spatial
        sizes alone one channel, and ``(C, *spatial)`` as given."""
        dims = self.spatial_dims
        if dims == 2:
            return (check_batch(batch), *sample_shape(input_size))
        if is_int(input_size):
            return (check_batch(batch), *positive_ints((1,) + (input_size,) * dims,
                                                       "input_size"))
        if isinstance(input_size, (tuple, list)) and len(input_size) in (dims, dims + 1):
            shape = tuple(input_size) if len(input_size) == dims + 1 else (1, *input_size)
            return (check_batch(batch), *positive_ints(shape, "input_size"))
        letters = "x".join(AXIS_LETTERS[dims])
        raise ValueError(f"input_size must be an int, ({', '.join(AXIS_LETTERS[dims])}) or "
                         f"(C, {', '.join(AXIS_LETTERS[dims])}) ({letters} or Cx{letters}), "
                         f"got {input_size!r}")

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, C, *windows per axis)``."""
        return self.output_shape_for(self.input_shape(input_size, batch))

    def feature_maps(self, input_shape) -> tuple[int, ...]:
        shape = tuple(input_shape)
        rank = self.spatial_dims + 2
        if len(shape) != rank:
            axes = ", ".join(("N", "C", *AXIS_LETTERS[self.spatial_dims]))
            raise ValueError(f"{self.describe()} takes ({axes}) feature maps, got an input of "
                             f"shape {shape}" + ("; put it before the Flatten/Linear layers"
                                                 if len(shape) == 2 else ""))
        return shape

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        batch, channels, *spatial = self.feature_maps(input_shape)
        return (batch, channels, *self.output_size(tuple(spatial)))

    def term_count(self, input_shape) -> int:
        """Window elements written out: ``N * C * (windows) * (window size)``."""
        return math.prod(self.output_shape_for(input_shape)) * math.prod(self.kernel_size)

    @property
    def overlapping(self) -> bool:
        """Whether windows share input elements (stride smaller than the window)."""
        return any(s < e for s, e in zip(self.stride, self.extent))

    def field_default(self, field):
        """The stride's default is the window: a stride equal to it is left out of specs;
        padding 0 and dilation 1 are left out in every number of axes."""
        if field.name == "stride":
            return self.kernel_size
        if field.name == "padding":
            return (0,) * (2 * self.spatial_dims)
        if field.name == "dilation":
            return (1,) * self.spatial_dims
        return super().field_default(field)

    def _describe_window(self) -> str:
        name = type(self).__name__
        window = "x".join(map(str, self.kernel_size))
        text = f"{name} {window}, stride {short_numbers(self.stride)}, " \
               f"padding {short_numbers(self.padding)}"
        if any(d != 1 for d in self.dilation):
            text += f", dilation {short_numbers(self.dilation)}"
        if self.ceil_mode:
            text += ", ceil_mode"
        return text


@dataclass(frozen=True)
class MaxPoolNd(PoolNd):
    """Max pooling: each output is the largest element of its window.

    Parameters
    ----------
    kernel_size : int or one int per spatial axis
        The window.
    stride : int, one int per axis, or None
        Defaults to ``kernel_size`` (windows side by side).  Smaller strides make
        windows overlap, larger ones leave gaps.
    padding : int, one int per axis, or a (before, after) pair per axis
        Padding never wins the maximum (it acts as ``-inf``); each side at most half
        the window, ``kernel_size // 2``.
    dilation : int or one int per axis
        A window reads every ``dilation``-th element.
    ceil_mode : bool
        Round the number of windows up: a last window may run past the padded
        input (as long as it starts inside the input or the left padding).

    Ties go to the first maximum of the window in row-major order.
    """

    dilation: tuple[int, ...] = 1
    ceil_mode: bool = False

    def describe(self) -> str:
        return self._describe_window()


@dataclass(frozen=True)
class AvgPoolNd(PoolNd):
    """Average (mean) pooling.

    Parameters
    ----------
    kernel_size, stride, padding, ceil_mode
        As in max pooling (no dilation); padding adds zeros.
    count_include_pad : bool
        True (default): a window divides by its positions inside the padded input
        (padded zeros included; positions past it, which only ``ceil_mode`` windows
        reach, are not counted): the whole window ``k1*k2*...`` except for a
        ``ceil_mode`` window clipped at the end.  False: it divides by the number of
        input elements in the window.
    """

    ceil_mode: bool = False
    count_include_pad: bool = True

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


# The 2-D kinds first: the order people see the kinds in (help, messages).
@register_kind
@dataclass(frozen=True)
class MaxPool2d(MaxPoolNd):
    __doc__ = MaxPoolNd.__doc__
    kind = "maxpool2d"
    short_name = "maxpool"  # in a chain's module name
    spatial_dims = 2


@register_kind
@dataclass(frozen=True)
class AvgPool2d(AvgPoolNd):
    __doc__ = AvgPoolNd.__doc__
    kind = "avgpool2d"
    short_name = "avgpool"  # in a chain's module name
    spatial_dims = 2


@register_kind
@dataclass(frozen=True)
class MaxPool1d(MaxPoolNd):
    __doc__ = "1-D max pooling over ``(N, C, L)``." + MaxPoolNd.__doc__.partition("\n")[2]
    padding: tuple[int, ...] = (0, 0)
    kind = "maxpool1d"
    short_name = "maxpool1d"  # in a chain's module name
    spatial_dims = 1


@register_kind
@dataclass(frozen=True)
class MaxPool3d(MaxPoolNd):
    __doc__ = "3-D max pooling over ``(N, C, D, H, W)``." + \
        MaxPoolNd.__doc__.partition("\n")[2]
    padding: tuple[int, ...] = (0,) * 6
    kind = "maxpool3d"
    short_name = "maxpool3d"
    spatial_dims = 3


@register_kind
@dataclass(frozen=True)
class AvgPool1d(AvgPoolNd):
    __doc__ = "1-D average pooling over ``(N, C, L)``." + AvgPoolNd.__doc__.partition("\n")[2]
    padding: tuple[int, ...] = (0, 0)
    kind = "avgpool1d"
    short_name = "avgpool1d"
    spatial_dims = 1


@register_kind
@dataclass(frozen=True)
class AvgPool3d(AvgPoolNd):
    __doc__ = "3-D average pooling over ``(N, C, D, H, W)``." + \
        AvgPoolNd.__doc__.partition("\n")[2]
    padding: tuple[int, ...] = (0,) * 6
    kind = "avgpool3d"
    short_name = "avgpool3d"
    spatial_dims = 3


MAX_POOLS = (MaxPool2d, MaxPool1d, MaxPool3d)
AVG_POOLS = (AvgPool2d, AvgPool1d, AvgPool3d)
#: Every pooling kind, the 2-D ones first (the order stages list them in).
POOLS = (MaxPool2d, AvgPool2d, MaxPool1d, MaxPool3d, AvgPool1d, AvgPool3d)


def _axes_token(values) -> str:
    if len(values) == 2:
        return pair_token(values)
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _padding_token(padding) -> str:
    if len(padding) == 4:
        return padding_token(padding)
    if len(set(padding)) == 1:
        return str(padding[0])
    if all(padding[i] == padding[i + 1] for i in range(0, len(padding), 2)):
        return "x".join(map(str, padding[::2]))
    return "_".join(map(str, padding))


def pool_module_name(layer) -> str:
    """``maxpool2d_k2_s2_p0``, ``avgpool2d_k3_s2_p1_nopadcount``, ``maxpool1d_k3_s2_p1_d2_ceil``."""
    parts = [layer.kind, f"k{_axes_token(layer.kernel_size)}", f"s{_axes_token(layer.stride)}",
             f"p{_padding_token(layer.padding)}"]
    if any(d != 1 for d in layer.dilation):
        parts.append(f"d{_axes_token(layer.dilation)}")
    if layer.ceil_mode:
        parts.append("ceil")
    if not getattr(layer, "count_include_pad", True):
        parts.append("nopadcount")
    return "_".join(parts)


for _pool in POOLS:
    MODULE_NAMES.register(_pool, pool_module_name)
