"""The normalisations' specs: batch, layer, group and instance normalisation.

Every one of them is the same computation, "normalise over a set of axes, then scale
and shift": for each group of elements that share their statistics,

    mu = (1/m) sum x,   sigma^2 = (1/m) sum (x - mu)^2   (the biased variance),
    xhat = (x - mu) / sqrt(sigma^2 + eps),   z = gamma * xhat + beta.

The kinds differ only in which elements share a mean and a variance (the axes
reduced over) and in the shape of gamma and beta (PyTorch's ``weight`` and
``bias``).  :class:`Normalization` says it once; each kind names its layout:

- ``statistics_view(input_shape) -> (view_shape, reduced_axes)``: ``x`` reshaped to
  ``view_shape`` (row-major, as NumPy does) has one mean and one variance for every
  index of the axes not in ``reduced_axes``;
- ``parameter_view(input_shape)``: the shape ``weight`` and ``bias`` are broadcast
  against ``x`` in (``(1, C, 1, 1)`` for batch norm on feature maps).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import sympy

from symbackprop.core.indexing import is_int
from symbackprop.core.layers import SpecMixin, check_batch, sample_shape
from symbackprop.core.naming import MODULE_NAMES, number_token
from symbackprop.core.registry import register_kind

__all__ = ["EPS", "Normalization", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm",
           "InstanceNorm2d", "NORMALIZATION_TYPES"]


class _Epsilon(sympy.Symbol):
    """The epsilon of the formulas: ``eps`` in text, ``\\epsilon`` in LaTeX."""

    def _latex(self, printer):
        return r"\epsilon"


#: The epsilon of the printed formulas (its value is the layer's ``eps``:
#: :attr:`Normalization.symbol_values`).
EPS = _Epsilon("eps", positive=True)


def _check_positive_int(name: str, value) -> None:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")


def _check_eps(value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value) or value <= 0:
        raise ValueError(f"eps must be a finite number > 0 (it keeps sqrt(sigma^2 + eps) away "
                         f"from 0), got {value!r}")


def _check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


class Normalization(SpecMixin):
    """What every normalisation shares; a kind adds its fields and its layout.

    Subclasses define ``eps``, ``affine`` (a property for those whose PyTorch name
    differs), ``statistics_view``, ``parameter_view``, ``_check_shape`` and
    ``describe``.  ``uses_batch_statistics`` is False for batch norm in evaluation
    mode, which reads given running statistics instead.
    """

    #: What a printout calls the set of elements that share statistics.
    group_words = "group"
    #: PyTorch's weight and bias are the notes' gamma and beta (core.derivation reads this).
    display_names = {"weight": "gamma", "bias": "beta"}
    #: whether every element of a group has the same gamma (per channel, statistics per
    #: channel); group and layer norm vary gamma inside a group
    gamma_shared_by_group = False

    @property
    def symbol_values(self) -> dict:
        """``{EPS: eps}``: the numbers the formulas' own symbols stand for (read where
        the derivation is evaluated at numbers)."""
        return {EPS: sympy.Float(self.eps)}

    @property
    def uses_batch_statistics(self) -> bool:
        return getattr(self, "training", True)

    @property
    def has_affine(self) -> bool:
        return self.affine

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return ("weight", "bias") if self.has_affine else ()

    @property
    def constant_names(self) -> tuple[str, ...]:
        """Inputs read but not differentiated: the running statistics in evaluation mode."""
        return () if self.uses_batch_statistics else ("running_mean", "running_var")

    @property
    def parameter_shapes(self) -> dict:
        return {name: self.parameter_shape for name in self.parameter_names}

    def input_shape(self, input_size=None, batch: int = 1) -> tuple[int, ...]:
        shape = (check_batch(batch), *self._sample_shape(input_size))
        self._check_shape(shape)
        return shape

    def output_shape(self, input_size=None, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        shape = tuple(input_shape)
        self._check_shape(shape)
        return shape

    def input_argument(self, input_shape) -> str | None:
        """The command line's ``--input`` for ``input_shape`` (printouts quote the command
        that writes them again): one sample's shape, or None for ``(N, C)``."""
        sample = tuple(input_shape[1:])
        if len(sample) == 1 and not isinstance(self, LayerNorm):
            return None
        if isinstance(self, BatchNorm1d):
            return str(sample[1])
        return "x".join(map(str, sample))

    def group_size(self, input_shape) -> int:
        """``m``: how many elements share one mean and one variance."""
        view, axes = self.statistics_view(tuple(input_shape))
        return math.prod(view[axis] for axis in axes)

    def term_count(self, input_shape) -> int:
        """Each output reads its whole group: ``elements * m`` terms."""
        shape = self.output_shape_for(input_shape)
        return math.prod(shape) * self.group_size(shape)

    def _eps_text(self) -> str:
        return "" if self.eps == 1e-5 else f", eps {self.eps:g}"


def _channel_view(input_shape, channels: int, layer) -> tuple:
    return (1, channels) + (1,) * (len(input_shape) - 2)


class _ChannelNorm(Normalization):
    """Batch and instance norm: one gamma and beta per channel (axis 1)."""

    #: every element of a group has the same gamma (it factors out of dL/dx)
    gamma_shared_by_group = True

    rank_words = "(N, C, H, W)"
    ranks = (4,)

    @property
    def parameter_shape(self) -> tuple[int]:
        return (self.num_features,)

    def parameter_view(self, input_shape) -> tuple:
        return _channel_view(input_shape, self.num_features, self)

    def _check_shape(self, shape) -> None:
        if len(shape) not in self.ranks or shape[1] != self.num_features:
            raise ValueError(f"{self.describe()} takes an input shaped {self.rank_words} with "
                             f"C = num_features = {self.num_features}, got {shape}")
        if not all(is_int(size) and size >= 1 for size in shape):
            raise ValueError(f"{self.describe()}: every size of the input must be >= 1, "
                             f"got {shape}")

    def _common_checks(self) -> None:
        _check_positive_int("num_features", self.num_features)
        _check_eps(self.eps)
        _check_flag("affine", self.affine)


class _BatchNorm(_ChannelNorm):
    group_words = "channel"

    def statistics_view(self, input_shape) -> tuple:
        """One mean and variance per channel: over the batch and every other axis."""
        shape = tuple(input_shape)
        return shape, (0, *range(2, len(shape)))

    def __post_init__(self):
        self._common_checks()
        _check_flag("training", self.training)

    def over_words(self, input_shape) -> str:
        """What the statistics of one group are taken over, in words."""
        rest = {2: "", 3: " and the length", 4: " and both spatial axes"}[len(input_shape)]
        return f"each channel, over the batch{rest}"

    def describe(self) -> str:
        return f"{self.title}({self.num_features})" + self._eps_text() + \
            ("" if self.affine else ", no affine") + \
            ("" if self.training else ", eval mode (running statistics)")


@register_kind
@dataclass(frozen=True)
class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)``: one mean and one (biased)
    variance per channel over the batch (and the length), as ``torch.nn.BatchNorm1d``.

    ``training=False`` normalises with given running statistics instead
    (``forward(x, weight, bias, running_mean, running_var)``).
    """

    num_features: int
    eps: float = 1e-5
    affine: bool = True
    training: bool = True

    kind = "batchnorm1d"
    short_name = "bn1d"
    title = "BatchNorm1d"
    rank_words = "(N, C) or (N, C, L)"
    ranks = (2, 3)

    def _sample_shape(self, input_size) -> tuple:
        """``None`` (or C) -> ``(C,)``; a length ``L`` or ``(C, L)`` -> ``(C, L)``."""
        if input_size is None:
            return (self.num_features,)
        if is_int(input_size):
            _check_positive_int("input_size", input_size)
            return (self.num_features, int(input_size))
        if isinstance(input_size, (tuple, list)) and len(input_size) in (1, 2):
            return tuple(input_size)
        raise ValueError(f"input_size of {self.describe()} is None for (N, C), a length L for "
                         f"(N, C, L), or (C, L); got {input_size!r}")


@register_kind
@dataclass(frozen=True)
class BatchNorm2d(_BatchNorm):
    """Spatial batch normalisation of ``(N, C, H, W)``: one mean and one (biased)
    variance per channel, over the batch and both spatial axes, as
    ``torch.nn.BatchNorm2d``."""

    num_features: int
    eps: float = 1e-5
    affine: bool = True
    training: bool = True

    kind = "batchnorm2d"
    short_name = "bn"
    title = "BatchNorm2d"

    def _sample_shape(self, input_size) -> tuple:
        """``HxW`` (the channels are ``num_features``) or ``CxHxW``."""
        if is_int(input_size) or (isinstance(input_size, (tuple, list)) and len(input_size) == 2):
            _, height, width = sample_shape(input_size)
            return (self.num_features, height, width)
        return sample_shape(input_size)


@register_kind
@dataclass(frozen=True)
class InstanceNorm2d(_ChannelNorm):
    """Instance normalisation of ``(N, C, H, W)``: one mean and variance per sample and
    channel, over the two spatial axes, as ``torch.nn.InstanceNorm2d`` (without running
    statistics; ``affine`` is off by default, as there)."""

    num_features: int
    eps: float = 1e-5
    affine: bool = False

    kind = "instancenorm2d"
    short_name = "in"
    title = "InstanceNorm2d"
    group_words = "sample and channel"

    def __post_init__(self):
        self._common_checks()

    def statistics_view(self, input_shape) -> tuple:
        shape = tuple(input_shape)
        return shape, tuple(range(2, len(shape)))

    _sample_shape = BatchNorm2d._sample_shape

    def over_words(self, input_shape) -> str:
        return "each sample and channel, over the two spatial axes"

    def describe(self) -> str:
        return f"InstanceNorm2d({self.num_features})" + self._eps_text() + \
            (", affine" if self.affine else "")


@register_kind
@dataclass(frozen=True)
class GroupNorm(Normalization):
    """Group normalisation: the channels of each sample split into ``num_groups``
    groups of ``num_channels / num_groups``; one mean and variance per sample and
    group, over its channels and spatial positions; gamma and beta per channel, as
    ``torch.nn.GroupNorm``.  Input ``(N, C)`` or ``(N, C, H, W)``."""

    num_groups: int
    num_channels: int
    eps: float = 1e-5
    affine: bool = True

    kind = "groupnorm"
    short_name = "gn"
    group_words = "sample and group"

    def __post_init__(self):
        _check_positive_int("num_groups", self.num_groups)
        _check_positive_int("num_channels", self.num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(f"num_channels must be divisible by num_groups, got "
                             f"num_channels={self.num_channels}, num_groups={self.num_groups}")
        _check_eps(self.eps)
        _check_flag("affine", self.affine)

    @property
    def parameter_shape(self) -> tuple[int]:
        return (self.num_channels,)

    def parameter_view(self, input_shape) -> tuple:
        return _channel_view(input_shape, self.num_channels, self)

    def statistics_view(self, input_shape) -> tuple:
        batch, channels, *rest = input_shape
        view = (batch, self.num_groups, channels // self.num_groups, *rest)
        return view, tuple(range(2, len(view)))

    def over_words(self, input_shape) -> str:
        per = self.num_channels // self.num_groups
        where = " and the spatial axes" if len(input_shape) > 2 else ""
        return (f"each sample and group of {per} channel{'s' if per > 1 else ''} "
                f"({self.num_groups} groups), over its channels{where}")

    def _sample_shape(self, input_size) -> tuple:
        if input_size is None:
            return (self.num_channels,)
        if is_int(input_size) or (isinstance(input_size, (tuple, list)) and len(input_size) == 2):
            _, height, width = sample_shape(input_size)
            return (self.num_channels, height, width)
        return sample_shape(input_size, allow_features=True)

    def _check_shape(self, shape) -> None:
        if len(shape) not in (2, 4) or shape[1] != self.num_channels:
            raise ValueError(f"{self.describe()} takes an input shaped (N, C) or (N, C, H, W) "
                             f"with C = num_channels = {self.num_channels}, got {shape}")

    def describe(self) -> str:
        return f"GroupNorm({self.num_groups}, {self.num_channels})" + self._eps_text() + \
            ("" if self.affine else ", no affine")


@register_kind
@dataclass(frozen=True)
class LayerNorm(Normalization):
    """Layer normalisation over the last ``len(normalized_shape)`` axes of each sample,
    with an elementwise gamma and beta of ``normalized_shape``, as ``torch.nn.LayerNorm``."""

    normalized_shape: tuple
    eps: float = 1e-5
    elementwise_affine: bool = True

    kind = "layernorm"
    short_name = "ln"
    group_words = "sample"

    def __post_init__(self):
        shape = self.normalized_shape
        if is_int(shape):
            shape = (shape,)
        if isinstance(shape, list):
            shape = tuple(shape)
        if not isinstance(shape, tuple) or not 1 <= len(shape) <= 3 or \
                not all(is_int(size) and size >= 1 for size in shape):
            raise ValueError(f"normalized_shape must be a whole number >= 1 or 1 to 3 of them, "
                             f"got {self.normalized_shape!r}")
        object.__setattr__(self, "normalized_shape", tuple(int(size) for size in shape))
        _check_eps(self.eps)
        _check_flag("elementwise_affine", self.elementwise_affine)

    @property
    def affine(self) -> bool:
        return self.elementwise_affine

    @property
    def parameter_shape(self) -> tuple:
        return self.normalized_shape

    def parameter_view(self, input_shape) -> tuple:
        return (1,) * (len(input_shape) - len(self.normalized_shape)) + self.normalized_shape

    def statistics_view(self, input_shape) -> tuple:
        shape = tuple(input_shape)
        return shape, tuple(range(len(shape) - len(self.normalized_shape), len(shape)))

    def over_words(self, input_shape) -> str:
        count = len(self.normalized_shape)
        axes = "axis" if count == 1 else f"{count} axes"
        return f"each sample, over its last {axes} ({' x '.join(map(str, self.normalized_shape))})"

    def _sample_shape(self, input_size) -> tuple:
        """``None``: the normalised shape itself; else the sample's shape as given."""
        if input_size is None:
            return self.normalized_shape
        if is_int(input_size):
            return (int(input_size),)
        return tuple(input_size)

    def _check_shape(self, shape) -> None:
        count = len(self.normalized_shape)
        if len(shape) < count + 1 or tuple(shape[-count:]) != self.normalized_shape or \
                not all(is_int(size) and size >= 1 for size in shape):
            raise ValueError(f"{self.describe()} takes an input shaped (N, ..., "
                             f"{', '.join(map(str, self.normalized_shape))}), whose last axes "
                             f"are normalized_shape, got {shape}")

    def spec(self) -> dict:
        spec = super().spec()
        spec["normalized_shape"] = list(self.normalized_shape)
        return spec

    def describe(self) -> str:
        shape = self.normalized_shape
        return f"LayerNorm({shape[0] if len(shape) == 1 else shape})" + self._eps_text() + \
            ("" if self.elementwise_affine else ", no affine")


NORMALIZATION_TYPES = (BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, InstanceNorm2d)


def normalization_module_name(layer) -> str:
    """``batchnorm2d_c64``, ``layernorm_512``, ``groupnorm_g32_c64``, with ``_eps..``,
    ``_noaffine``/``_affine`` and ``_eval`` where they differ from the default."""
    if isinstance(layer, GroupNorm):
        sizes = f"g{layer.num_groups}_c{layer.num_channels}"
    elif isinstance(layer, LayerNorm):
        sizes = "x".join(map(str, layer.normalized_shape))
    else:
        sizes = f"c{layer.num_features}"
    name = f"{layer.kind}_{sizes}"
    if layer.eps != 1e-5:
        name += f"_eps{number_token(layer.eps)}"
    default_affine = not isinstance(layer, InstanceNorm2d)
    if layer.affine != default_affine:
        name += "_affine" if layer.affine else "_noaffine"
    if not layer.uses_batch_statistics:
        name += "_eval"
    return name


for _layer_type in NORMALIZATION_TYPES:
    MODULE_NAMES.register(_layer_type, normalization_module_name)
