"""The specs of softmax and log-softmax along one axis (PyTorch's ``Softmax(dim)`` and
``LogSoftmax(dim)``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.indexing import is_int
from symbackprop.core.layers import SpecMixin, check_batch, positive_ints
from symbackprop.core.naming import MODULE_NAMES
from symbackprop.core.registry import register_kind

__all__ = ["Softmax", "LogSoftmax", "class_input_shape", "SOFTMAX_TYPES"]


def class_input_shape(input_size, batch: int = 1) -> tuple[int, ...]:
    """``(N, C)`` from ``C`` or ``(C,)``; ``(N, C, d1, ...)`` from ``(C, d1, ...)``: the
    classes come first, as PyTorch's ``dim=1`` and its losses read them."""
    batch = check_batch(batch)
    if is_int(input_size):
        return (batch, *positive_ints((input_size,), "input_size"))
    if isinstance(input_size, (tuple, list)) and 1 <= len(input_size) <= 3:
        return (batch, *positive_ints(input_size, "input_size"))
    raise ValueError(f"input_size must be C (classes), (C,), (C, L) or (C, H, W), "
                     f"got {input_size!r}")


@dataclass(frozen=True)
class _AlongAxis(SpecMixin):
    """A layer normalising along the axis ``dim`` (negative counts from the end)."""

    dim: int = 1

    parameter_names = ()
    title = ""

    def __post_init__(self):
        if not is_int(self.dim):
            raise ValueError(f"dim must be a whole number (the axis, negative from the end), "
                             f"got {self.dim!r}")
        object.__setattr__(self, "dim", int(self.dim))

    @property
    def parameter_shapes(self) -> dict:
        return {}

    def axis(self, rank: int) -> int:
        """``dim`` as a non-negative axis of an input of ``rank`` axes; ValueError otherwise."""
        if not -rank <= self.dim < rank:
            raise ValueError(f"dim = {self.dim} is not an axis of a {rank}-axis input "
                             f"(dim must be in [-{rank}, {rank - 1}])")
        return self.dim % rank

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        shape = class_input_shape(input_size, batch)
        self.output_shape_for(shape)
        return shape

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        """The input's shape; ``dim`` must be one of its axes."""
        shape = tuple(input_shape)
        if not shape:
            raise ValueError(f"{self.describe()} takes an input with at least one axis")
        self.axis(len(shape))
        return shape

    def term_count(self, input_shape) -> int:
        """Each output element's denominator has one term per element along ``dim``."""
        shape = self.output_shape_for(input_shape)
        return math.prod(shape) * shape[self.axis(len(shape))]

    def describe(self) -> str:
        return f"{self.title} along dim {self.dim}"


@register_kind
@dataclass(frozen=True)
class Softmax(_AlongAxis):
    """``z = exp(x) / sum(exp(x))`` along ``dim``.

    PyTorch's ``dim=None`` (a deprecated guess of the axis) is not taken: the default
    here is ``dim=1``, the class axis of ``(N, C)`` and ``(N, C, d1, ...)``.
    """

    kind = "softmax"
    title = "Softmax"


@register_kind
@dataclass(frozen=True)
class LogSoftmax(_AlongAxis):
    """``z = x - log(sum(exp(x)))`` along ``dim`` (``log(softmax(x))``, computed stably)."""

    kind = "logsoftmax"
    title = "LogSoftmax"


SOFTMAX_TYPES = (Softmax, LogSoftmax)


def softmax_module_name(layer) -> str:
    """``softmax_dim1``, ``logsoftmax_dimm1`` (dim -1)."""
    return f"{layer.kind}_dim{str(layer.dim).replace('-', 'm')}"


for _layer_type in SOFTMAX_TYPES:
    MODULE_NAMES.register(_layer_type, softmax_module_name)
