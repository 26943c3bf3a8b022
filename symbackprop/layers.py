"""Layer specifications: the first stage of the pipeline.

A layer is a small frozen value object.  Its parameters are normalised and
validated when it is built (``Conv2d(kernel_size=3)`` stores ``(3, 3)``), it is
changed with :func:`dataclasses.replace`, and it knows its own output shape.
Input-dependent rules (is the input large enough for the dilated kernel?) are
checked by :meth:`Conv2d.output_shape`.

Every layer answers the same questions, so the rest of the pipeline never needs
to know which layer it holds:

- ``kind``: its name on the command line and in a JSON spec (``"maxpool2d"``);
- ``parameter_names`` and ``parameter_shapes``: the arrays it learns (``w``, ``b``),
  in the order a generated ``forward(x, *params)`` takes them;
- ``input_shape(input_size, batch)``: the full input shape from a size a person gives;
- ``output_shape_for(input_shape)``: the output shape, checking that the input fits;
- ``term_count(input_shape)``: the size of its symbolic expansion;
- ``describe()`` (one line for people) and ``spec()`` (a JSON-ready dict that
  :func:`layer_from_spec` turns back into the layer).

Input shapes: convolution and pooling take ``(N, C, H, W)``; activations any
``(N, ...)``; :class:`Flatten` turns ``(N, C, H, W)`` into ``(N, C*H*W)`` in
row-major order; :class:`Linear` takes ``(N, in_features)``, or ``(N, C, H, W)``
with ``C*H*W = in_features``, which it reads flattened exactly as :class:`Flatten`
would (so ``conv -> pool -> linear`` works with or without an explicit Flatten).
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import re
import stat
from dataclasses import dataclass

from .indexing import _is_int, dilated_length, output_length, padding4, pair

__all__ = [
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Flatten",
    "Linear",
    "Sequential",
    "LAYER_KINDS",
    "input_shape_of",
    "output_shape_of",
    "layer_from_spec",
    "load_spec",
]


def sliding_output_size(input_size, kernel_size, stride, padding, dilation,
                        too_small) -> tuple[int, int]:
    """``(Ho, Wo)`` of a window sliding over an input of ``input_size``.

    ``Ho = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1`` (and ``Wo`` alike).
    ``ValueError`` when the padded input is smaller than the (dilated) window; its
    message ends with ``too_small(kernel, dilation, extent)``.
    """
    height, width = pair(input_size, "input_size")
    if height < 1 or width < 1:
        raise ValueError(f"input_size must be at least 1x1, got {height}x{width}")
    top, bottom, left, right = padding
    sizes = []
    for axis, size, kernel, step, before, after, spread in (
        ("height", height, kernel_size[0], stride[0], top, bottom, dilation[0]),
        ("width", width, kernel_size[1], stride[1], left, right, dilation[1]),
    ):
        extent = dilated_length(kernel, spread)
        if size + before + after < extent:
            raise ValueError(
                f"input_size: the padded input {axis} {size}+{before}+{after} = "
                f"{size + before + after} is smaller than {too_small(kernel, spread, extent)}")
        sizes.append(output_length(size, kernel, step, before, after, spread))
    return tuple(sizes)


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
        return sliding_output_size(
            input_size, self.kernel_size, self.stride, self.padding, self.dilation,
            lambda kernel, dilation, extent: (
                f"the dilated kernel {dilation}*({kernel}-1)+1 = {extent}; use a larger input, "
                f"more padding, or a smaller kernel_size/dilation"))

    @property
    def parameter_shapes(self) -> dict:
        """``{"w": (O, C/groups, KH, KW), "b": (O,)}`` (no ``b`` without bias)."""
        return {"w": self.weight_shape, **({"b": self.bias_shape} if self.bias else {})}

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
        batch, channels, height, width = _feature_maps(input_shape, self)
        if channels != self.in_channels:
            raise ValueError(f"{self.describe()} takes in_channels = {self.in_channels} "
                             f"channels, got an input of shape {tuple(input_shape)}")
        return self.output_shape((height, width), batch)

    def term_count(self, input_shape) -> int:
        """Products ``w*x`` in the expansion: ``N * O * Ho * Wo * (C/groups) * KH * KW``."""
        batch, out_channels, out_h, out_w = self.output_shape_for(input_shape)
        return batch * out_channels * out_h * out_w * self.group_in_channels * \
            self.kernel_size[0] * self.kernel_size[1]

    def spec(self) -> dict:
        """The layer as a JSON-ready dict (see :func:`layer_from_spec`)."""
        return _spec(self)

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


# ---------------------------------------------------------------------------
# Shapes shared by the layers below
# ---------------------------------------------------------------------------

def _positive_ints(values, name: str) -> tuple[int, ...]:
    if not all(_is_int(v) and v >= 1 for v in values):
        raise ValueError(f"{name} must be whole numbers >= 1, got {tuple(values)!r}")
    return tuple(int(v) for v in values)


def _sample_shape(input_size, allow_features: bool = False) -> tuple[int, ...]:
    """One sample's shape from what a person gives.

    An int ``s`` is a square ``1 x s x s`` feature map, ``(H, W)`` one channel,
    ``(C, H, W)`` as given; with ``allow_features`` a 1-tuple ``(F,)`` is a vector.
    """
    if _is_int(input_size):
        return _positive_ints((1, input_size, input_size), "input_size")
    if isinstance(input_size, (tuple, list)):
        if len(input_size) == 2:
            return _positive_ints((1, *input_size), "input_size")
        if len(input_size) == 3 or (allow_features and len(input_size) == 1):
            return _positive_ints(input_size, "input_size")
    takes = "(H, W), (C, H, W)" + (" or (F,)" if allow_features else "")
    raise ValueError(f"input_size must be an int (square), {takes}, got {input_size!r}")


def _check_batch(batch) -> int:
    if not _is_int(batch) or batch < 1:
        raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
    return int(batch)


def _feature_maps(input_shape, layer) -> tuple[int, int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(f"{layer.describe()} takes (N, C, H, W) feature maps, got an input of "
                         f"shape {shape}" + ("; put it before the Flatten/Linear layers"
                                             if len(shape) == 2 else ""))
    return shape


def _batched(input_shape, layer) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) < 2:
        raise ValueError(f"{layer.describe()} takes an input shaped (N, ...), got {shape}")
    return shape


def _short(values: tuple[int, ...]) -> str:
    if len(set(values)) == 1:
        return str(values[0])
    if len(values) == 4 and values[0] == values[1] and values[2] == values[3]:
        return f"({values[0]}, {values[2]})"
    return str(values)


class _SpecMixin:
    """``replace`` and ``spec`` for every layer."""

    def replace(self, **changes):
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def spec(self) -> dict:
        """The layer as a JSON-ready dict (see :func:`layer_from_spec`)."""
        return _spec(self)


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Pool2d(_SpecMixin):
    """Shared by max and average pooling: windows, stride, padding, shapes."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    parameter_names = ()

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
        return (_check_batch(batch), *_sample_shape(input_size))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        """``(N, C, Ho, Wo)``."""
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, int, int, int]:
        batch, channels, height, width = _feature_maps(input_shape, self)
        return (batch, channels, *self.output_size((height, width)))

    def term_count(self, input_shape) -> int:
        """Window elements written out: ``N * C * Ho * Wo * KH * KW``."""
        return math.prod(self.output_shape_for(input_shape)) * math.prod(self.kernel_size)

    @property
    def overlapping(self) -> bool:
        """Whether windows share input elements (stride smaller than the window)."""
        return self.stride[0] < self.kernel_size[0] or self.stride[1] < self.kernel_size[1]

    def _describe_window(self) -> str:
        kernel_h, kernel_w = self.kernel_size
        return (f"{type(self).__name__} {kernel_h}x{kernel_w}, stride {_short(self.stride)}, "
                f"padding {_short(self.padding)}")


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

    def describe(self) -> str:
        return self._describe_window()


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


# ---------------------------------------------------------------------------
# Activations (the functions and their derivatives are in local_rules.ACTIVATIONS)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Activation(_SpecMixin):
    """Elementwise ``a = f(net)``; ``kind`` names its entry in ``local_rules.ACTIVATIONS``."""

    parameter_names = ()
    title = ""

    @property
    def parameter_shapes(self) -> dict:
        return {}

    @property
    def constants(self) -> tuple:
        """Numbers the function takes besides ``net`` (the leaky slope)."""
        return ()

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, C, H, W)`` from an int, ``(H, W)`` or ``(C, H, W)``; ``(N, F)`` from ``(F,)``."""
        return (_check_batch(batch), *_sample_shape(input_size, allow_features=True))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        """The input's shape: the function applies to every element."""
        return _batched(input_shape, self)

    def term_count(self, input_shape) -> int:
        return math.prod(_batched(input_shape, self))

    def describe(self) -> str:
        return self.title


@dataclass(frozen=True)
class ReLU(_Activation):
    """``max(net, 0)``; its derivative is 1 where ``net > 0``, else 0 (0 at 0)."""

    kind = "relu"
    title = "ReLU"


@dataclass(frozen=True)
class LeakyReLU(_Activation):
    """``net`` where ``net > 0``, else ``negative_slope * net`` (slope alpha at 0)."""

    negative_slope: float = 0.01

    kind = "leakyrelu"
    title = "LeakyReLU"

    def __post_init__(self):
        slope = self.negative_slope
        if not isinstance(slope, numbers.Real) or isinstance(slope, bool) \
                or not math.isfinite(slope):
            raise ValueError(f"negative_slope must be a finite number, got {slope!r}")

    @property
    def constants(self) -> tuple:
        return (self.negative_slope,)

    def describe(self) -> str:
        return f"LeakyReLU, negative slope {self.negative_slope:g}"


@dataclass(frozen=True)
class Sigmoid(_Activation):
    """The logistic function ``1 / (1 + exp(-net))``; derivative ``s (1 - s)``."""

    kind = "sigmoid"
    title = "Sigmoid"


@dataclass(frozen=True)
class Tanh(_Activation):
    """``tanh(net)``; derivative ``1 - tanh(net)^2``."""

    kind = "tanh"
    title = "Tanh"


# ---------------------------------------------------------------------------
# Flatten and fully connected
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Flatten(_SpecMixin):
    """``(N, C, H, W) -> (N, C*H*W)`` in row-major order: feature ``f = (c*H + h)*W + w``."""

    kind = "flatten"
    parameter_names = ()

    @property
    def parameter_shapes(self) -> dict:
        return {}

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return (_check_batch(batch), *_sample_shape(input_size))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, int]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, int]:
        batch, *sample = _batched(input_shape, self)
        return (batch, math.prod(sample))

    def term_count(self, input_shape) -> int:
        return math.prod(_batched(input_shape, self))

    def describe(self) -> str:
        return "Flatten"


@dataclass(frozen=True)
class Linear(_SpecMixin):
    """Fully connected: ``z[n, o] = sum_f w[o, f] * x[n, f] + b[o]``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool

    The weight is shaped ``(out_features, in_features)``.  The input is
    ``(N, in_features)``, or ``(N, C, H, W)`` with ``C*H*W = in_features``, read in
    row-major order (``f = (c*H + h)*W + w``, as :class:`Flatten` numbers it).
    """

    in_features: int
    out_features: int
    bias: bool = True

    kind = "linear"

    def __post_init__(self):
        for name in ("in_features", "out_features"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False, got {self.bias!r}")

    @property
    def weight_shape(self) -> tuple[int, int]:
        """``(out_features, in_features)``."""
        return (self.out_features, self.in_features)

    @property
    def bias_shape(self) -> tuple[int] | None:
        return (self.out_features,) if self.bias else None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return ("w", "b") if self.bias else ("w",)

    @property
    def parameter_shapes(self) -> dict:
        return {"w": self.weight_shape, **({"b": self.bias_shape} if self.bias else {})}

    def input_shape(self, input_size=None, batch: int = 1) -> tuple[int, ...]:
        """``(N, in_features)`` for ``None`` or ``in_features``; ``(N, C, H, W)`` for a
        feature-map size with ``C*H*W = in_features``."""
        batch = _check_batch(batch)
        if input_size is None or (_is_int(input_size) and input_size == self.in_features):
            return (batch, self.in_features)
        if _is_int(input_size):
            raise ValueError(f"input_size: {self.describe()} takes in_features = "
                             f"{self.in_features} features, got {input_size}")
        shape = (batch, *_sample_shape(input_size))
        self.output_shape_for(shape)
        return shape

    def output_shape(self, input_size=None, batch: int = 1) -> tuple[int, int]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, int]:
        batch, *sample = _batched(input_shape, self)
        if math.prod(sample) != self.in_features:
            count = f"{math.prod(sample)} features" if len(sample) == 1 else \
                f"{' x '.join(map(str, sample))} = {math.prod(sample)} features"
            raise ValueError(
                f"{self.describe()} takes in_features = {self.in_features} features per sample, "
                f"got an input of shape {tuple(input_shape)} ({count})")
        return (batch, self.out_features)

    def term_count(self, input_shape) -> int:
        """Products ``w*x``: ``N * out_features * in_features``."""
        return self.output_shape_for(input_shape)[0] * self.out_features * self.in_features

    def describe(self) -> str:
        return f"Linear {self.in_features}->{self.out_features}" + \
            ("" if self.bias else ", no bias")


# ---------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------

@dataclass(frozen=True, init=False)
class Sequential(_SpecMixin):
    """Layers applied one after the other: ``Sequential(conv, relu, pool, linear)``.

    Layer ``l`` (1-based) maps ``a^{l-1}`` to ``a^l`` (``a^0`` is the input).  Its
    parameters are named with its number (``w1``, ``b1``, ``w4``, ...) and a
    generated module takes them in that order.  A nested ``Sequential`` is
    spliced in.
    """

    layers: tuple

    kind = "sequential"

    def __init__(self, *layers, **keywords):
        if "layers" in keywords:  # dataclasses.replace(chain, layers=...)
            layers = tuple(layers) + tuple(keywords.pop("layers"))
        if keywords:
            raise TypeError(f"Sequential takes layers, got keyword(s) {sorted(keywords)}")
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        flat = []
        for position, layer in enumerate(layers, 1):
            if isinstance(layer, Sequential):
                flat.extend(layer.layers)
            elif type(layer) in LAYER_KINDS.values():
                flat.append(layer)
            else:
                raise ValueError(f"layers: item {position} is not a layer, got {layer!r}")
        if not flat:
            raise ValueError("layers: a Sequential needs at least one layer")
        object.__setattr__(self, "layers", tuple(flat))

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """``("w1", "b1", "w4", ...)``: each layer's parameters, numbered by the layer."""
        return tuple(f"{name}{number}" for number, layer in enumerate(self.layers, 1)
                     for name in layer.parameter_names)

    @property
    def parameter_shapes(self) -> dict:
        return {f"{name}{number}": shape for number, layer in enumerate(self.layers, 1)
                for name, shape in layer.parameter_shapes.items()}

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """The first layer's input shape."""
        return self.layers[0].input_shape(input_size, batch)

    def shapes(self, input_shape) -> tuple[tuple[int, ...], ...]:
        """``(shape of a^0, shape of a^1, ..., shape of a^L)``; errors name the layer."""
        shapes = [tuple(input_shape)]
        for number, layer in enumerate(self.layers, 1):
            try:
                shapes.append(tuple(layer.output_shape_for(shapes[-1])))
            except ValueError as error:
                named = str(error).startswith(layer.describe())
                where = f"layer {number}" + ("" if named else f" ({layer.describe()})")
                raise ValueError(f"{where}: {error}") from None
        return tuple(shapes)

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        return self.shapes(input_shape)[-1]

    def term_count(self, input_shape) -> int:
        shapes = self.shapes(input_shape)
        return sum(layer.term_count(shape) for layer, shape in zip(self.layers, shapes))

    def describe(self) -> str:
        return " -> ".join(layer.describe() for layer in self.layers)

    def spec(self) -> dict:
        return {"layer": self.kind, "layers": [layer.spec() for layer in self.layers]}

    @classmethod
    def from_spec(cls, spec) -> "Sequential":
        """A chain from a list of layer dicts (or ``{"layers": [...]}``)."""
        if isinstance(spec, dict):
            unknown = set(spec) - {"layer", "layers", "input"}
            if unknown or "layers" not in spec or spec.get("layer", cls.kind) != cls.kind:
                raise ValueError('a sequential spec is a list of layers or {"layers": [...], '
                                 f'"input": [C, H, W]}}, got keys {sorted(spec)}')
            spec = spec["layers"]
        if not isinstance(spec, list) or not spec:
            raise ValueError(f"layers: a sequential spec needs a non-empty list of layers, got "
                             f"{spec!r}")
        layers = []
        for number, item in enumerate(spec, 1):
            try:
                layers.append(layer_from_spec(item))
            except ValueError as error:
                raise ValueError(f"layer {number}: {error}") from None
        return cls(*layers)


#: Every layer kind by its name on the command line and in JSON specs.
LAYER_KINDS = {cls.kind: cls for cls in (Conv2d, MaxPool2d, AvgPool2d, ReLU, LeakyReLU,
                                          Sigmoid, Tanh, Flatten, Linear, Sequential)}
#: Other spellings accepted in a JSON spec (the command line's option names).
SPEC_ALIASES = {"kernel": "kernel_size", "slope": "negative_slope"}


def _spec(layer) -> dict:
    """Kind and every parameter that differs from its default, JSON-ready."""
    spec = {"layer": layer.kind}
    for field in dataclasses.fields(layer):
        value, default = getattr(layer, field.name), field.default
        if field.name == "stride" and isinstance(layer, _Pool2d):
            default = layer.kernel_size
        if default is not dataclasses.MISSING and value == default:
            continue
        if isinstance(value, tuple):  # (3, 3) -> 3, (0, 1, 0, 1) -> [0, 1, 0, 1]
            value = value[0] if len(set(value)) == 1 else list(value)
        spec[field.name] = value
    return spec


def layer_from_spec(spec: dict):
    """A layer from a dict such as ``{"layer": "maxpool2d", "kernel_size": 2}``.

    Keys are the constructor's keyword names (``kernel`` is accepted for
    ``kernel_size``); lists stand for tuples.  A list (or a ``"sequential"`` dict)
    builds a :class:`Sequential`.
    """
    if isinstance(spec, list) or (isinstance(spec, dict) and "layers" in spec):
        return Sequential.from_spec(spec)
    if not isinstance(spec, dict) or "layer" not in spec:
        shown = repr(spec)
        if len(shown) > 80:  # a spec may be a megabyte long: show its start
            shown = f"{shown[:70]}... ({len(shown):,} characters)"
        raise ValueError(f'a layer spec is a dict with a "layer" key naming one of '
                         f'{", ".join(LAYER_KINDS)}, got {shown}')
    kind = spec["layer"]
    if not isinstance(kind, str) or kind not in LAYER_KINDS:
        shown = repr(kind) if len(repr(kind)) <= 40 else f"{repr(kind)[:36]}..."
        raise ValueError(f"unknown layer {shown}; the kinds are {', '.join(LAYER_KINDS)}")
    cls = LAYER_KINDS[kind]
    if cls is Sequential:
        return Sequential.from_spec(spec)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    keywords = {}
    for key, value in spec.items():
        if key == "layer":
            continue
        name = SPEC_ALIASES.get(key, key)
        if name not in fields:
            raise ValueError(f"{kind} takes {', '.join(fields) or 'no parameters'}; got {key!r}")
        keywords[name] = tuple(value) if isinstance(value, list) else value
    missing = [name for name, field in fields.items()
               if field.default is dataclasses.MISSING and name not in keywords]
    if missing:
        raise ValueError(f"{kind} needs {', '.join(missing)}")
    return cls(**keywords)


#: Largest spec :func:`load_spec` reads, file or text, in bytes (1 MiB; a chain of
#: a hundred layers is a few kilobytes).
SPEC_MAX_BYTES = 1 << 20
#: Deepest nesting of ``[`` and ``{`` in a spec (a chain needs 3 or 4 levels).
SPEC_MAX_DEPTH = 32
#: Most layers a spec may name (each costs about 2 ms and 20 kB to derive, so a
#: megabyte of ``{"layer": "relu"}`` would take minutes and gigabytes).
SPEC_MAX_LAYERS = 1000
#: Largest whole number in a spec (the command line's bound, ``cli.NUMBER_LIMIT``).
NUMBER_LIMIT = 10**9

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _json_depth(text: str) -> int:
    """Deepest bracket nesting of JSON ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    for bracket in re.finditer(r"[\[\]{}]", _JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _spec_integer(source: str):
    """``parse_int`` for :func:`json.loads`: whole numbers up to :data:`NUMBER_LIMIT`."""
    def parse(digits: str) -> int:
        if len(digits.lstrip("-").lstrip("0")) > len(str(NUMBER_LIMIT)) \
                or abs(int(digits)) > NUMBER_LIMIT:
            shown = digits if len(digits) <= 20 else f"{digits[:16]}... ({len(digits):,} digits)"
            raise ValueError(f"{source}: the number {shown} is too large: whole numbers in a "
                             f"spec are at most {NUMBER_LIMIT:,}")
        return int(digits)
    return parse


def _layer_count(spec) -> int:
    """Layers a parsed spec names: dicts with a ``"layer"`` key, however nested."""
    if isinstance(spec, dict):
        inner = sum(_layer_count(value) for value in spec.values())
        return inner + (1 if "layer" in spec else 0)
    if isinstance(spec, list):
        return sum(_layer_count(item) for item in spec)
    return 0


def read_spec_file(path: str) -> str:
    """The text of the spec file ``path``: a regular file of at most :data:`SPEC_MAX_BYTES`
    bytes of UTF-8.

    The file is opened without blocking and checked before it is read, so a FIFO,
    a device such as ``/dev/zero`` or a folder is refused at once instead of
    waiting for a writer or filling memory.

    Raises
    ------
    ValueError
        For a file that is not a regular file, too large, or not UTF-8 (naming it).
    OSError
        When it cannot be opened (naming it).
    """
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise type(error)(f"--spec: cannot read spec file {path!r}: "
                          f"{error.strerror or error}") from None
    status = os.fstat(handle)
    if not stat.S_ISREG(status.st_mode):
        os.close(handle)
        kind = ("a folder" if stat.S_ISDIR(status.st_mode) else
                "a FIFO (named pipe)" if stat.S_ISFIFO(status.st_mode) else
                "a device" if stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode)
                else "a socket" if stat.S_ISSOCK(status.st_mode) else "not a regular file")
        raise ValueError(f"--spec: {path!r} is {kind}; a spec is a regular JSON file "
                         f"or the JSON text itself")
    with os.fdopen(handle, "rb") as stream:
        if hasattr(os, "set_blocking"):
            os.set_blocking(stream.fileno(), True)
        data = stream.read(SPEC_MAX_BYTES + 1)
    if len(data) > SPEC_MAX_BYTES:
        raise ValueError(f"--spec: spec file {path!r} is larger than {SPEC_MAX_BYTES:,} bytes, "
                         f"the most a spec may have (symbackprop.layers.SPEC_MAX_BYTES)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"--spec: spec file {path!r} is not UTF-8 text: byte "
                         f"0x{data[error.start]:02x} at offset {error.start} cannot be "
                         f"decoded") from None


def load_spec(text: str):
    """``(layer, input_size or None)`` from JSON text or the path of a JSON file.

    The JSON is a list of layer dicts, a single layer dict, or
    ``{"input": [C, H, W], "layers": [...]}``; text starting with ``[`` or ``{`` is
    read as JSON itself, anything else as a file name.

    Bounds (checked before parsing, each a clear ``ValueError``): a file must be a
    regular file (:func:`read_spec_file`); text or file at most
    :data:`SPEC_MAX_BYTES`, nested at most :data:`SPEC_MAX_DEPTH` deep, whole
    numbers at most :data:`NUMBER_LIMIT`, at most :data:`SPEC_MAX_LAYERS` layers.
    """
    source = "the spec"
    if not text.lstrip().startswith(("[", "{")):
        source = f"spec file {text!r}"
        text = read_spec_file(text)
    elif len(text.encode("utf-8", "replace")) > SPEC_MAX_BYTES:
        raise ValueError(f"--spec: {source} is larger than {SPEC_MAX_BYTES:,} bytes, the most "
                         f"a spec may have (symbackprop.layers.SPEC_MAX_BYTES)")
    depth = _json_depth(text)
    if depth > SPEC_MAX_DEPTH:
        raise ValueError(f"--spec: {source} nests brackets {depth} deep; a spec needs 3 or 4 "
                         f"levels and at most {SPEC_MAX_DEPTH} are read "
                         f"(symbackprop.layers.SPEC_MAX_DEPTH)")
    try:
        spec = json.loads(text, parse_int=_spec_integer(f"--spec: {source}"))
    except json.JSONDecodeError as error:
        raise ValueError(f"--spec: {source} is not valid JSON: {error}") from None
    except RecursionError:  # not reached within SPEC_MAX_DEPTH; kept as a last guard
        raise ValueError(f"--spec: {source} is nested too deeply to read") from None
    layers = _layer_count(spec)
    if layers > SPEC_MAX_LAYERS:
        raise ValueError(f"--spec: {source} names {layers:,} layers, more than the "
                         f"{SPEC_MAX_LAYERS:,} a spec may have "
                         f"(symbackprop.layers.SPEC_MAX_LAYERS)")
    input_size = None
    if isinstance(spec, dict) and "layers" in spec:
        input_size = spec.get("input")
        if isinstance(input_size, list):
            input_size = tuple(input_size)
    return layer_from_spec(spec), input_size


def input_shape_of(layer, input_size, batch: int = 1):
    """The full input shape of ``layer`` (``(N, C, H, W)`` or ``(N, F)``), checking ``batch``."""
    _check_batch(batch)
    return tuple(layer.input_shape(input_size, batch))


def output_shape_of(layer, input_shape):
    """The output shape of ``layer`` for an input of ``input_shape`` (checked)."""
    return tuple(layer.output_shape_for(input_shape))
