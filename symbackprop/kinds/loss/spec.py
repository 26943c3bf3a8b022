"""The specs of the losses: PyTorch's ``CrossEntropyLoss`` and ``MSELoss``.

A loss reads targets (and, weighted, class weights) that nobody differentiates by:
the derivation holds them in ``Forward.constants``, a generated module takes them as
arguments, ``forward(x, target[, weight])`` and ``backward(x, target[, weight],
grad_out=1.0)``.  The symbolic derivation of a cross-entropy needs concrete classes:
``target`` (one class per sample and position, row-major; ``None``: sample ``n`` has
class ``n mod C``) chooses them.  It changes the printout only, never the generated
module.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from symbackprop.core.indexing import is_int
from symbackprop.core.layers import SpecMixin, check_batch, sample_shape
from symbackprop.core.naming import MODULE_NAMES, number_token
from symbackprop.core.registry import register_kind
from symbackprop.kinds.softmax.spec import class_input_shape

__all__ = ["CrossEntropyLoss", "MSELoss", "REDUCTIONS", "LOSS_TYPES"]

#: PyTorch's reductions and what each does with the per-sample losses.
REDUCTIONS = {"mean": "their mean over the counted samples",
              "sum": "their sum",
              "none": "one loss per sample (and position)"}


def _check_reduction(value) -> None:
    if value not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, "
                         f"got {value!r}")


@dataclass(frozen=True)
class _Loss(SpecMixin):
    parameter_names = ()

    @property
    def parameter_shapes(self) -> dict:
        return {}

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def _reduced(self, per_sample: tuple) -> tuple:
        """The loss's shape: ``per_sample`` for ``none``, else one number, ``(1,)`` (a
        generated module returns a 0-d array, as PyTorch)."""
        return per_sample if self.reduction == "none" else (1,)


@register_kind
@dataclass(frozen=True)
class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits ``x`` (``(N, C)`` or ``(N, C, d1, ...)``) and class targets.

    Per sample ``i`` with target ``y_i`` (not ``ignore_index``), with ``p = softmax(x)``
    along the classes, ``eps = label_smoothing`` and ``w`` the class weights (1 when
    not ``weighted``):

        l_i = -sum_c a_ic log p_ic,   a_ic = (1 - eps) w_{y_i} [c = y_i] + eps w_c / C

    ``mean`` divides the sum of the ``l_i`` by the number of counted (not ignored)
    samples, or, weighted, by the sum of ``w_{y_i}`` over them (as PyTorch); ignored
    samples contribute 0.
    """

    reduction: str = "mean"
    ignore_index: int = -100
    label_smoothing: float = 0.0
    weighted: bool = False
    #: the classes the symbolic derivation uses (not part of the generated module)
    target: tuple | None = None

    kind = "crossentropyloss"
    short_name = "xent"

    def __post_init__(self):
        _check_reduction(self.reduction)
        if not is_int(self.ignore_index):
            raise ValueError(f"ignore_index must be a whole number, got {self.ignore_index!r}")
        eps = self.label_smoothing
        if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or \
                not 0.0 <= float(eps) <= 1.0:
            raise ValueError(f"label_smoothing must be a number in [0, 1], got {eps!r}")
        object.__setattr__(self, "label_smoothing", float(eps))
        if not isinstance(self.weighted, bool):
            raise ValueError(f"weighted must be True or False, got {self.weighted!r}")
        if self.target is not None:
            values = tuple(self.target) if isinstance(self.target, (tuple, list)) else None
            if not values or not all(is_int(value) for value in values):
                raise ValueError(f"target must be a non-empty list of whole numbers (classes), "
                                 f"got {self.target!r}")
            object.__setattr__(self, "target", tuple(int(value) for value in values))

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        shape = class_input_shape(input_size, batch)
        self.output_shape_for(shape)
        return shape

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        shape = tuple(input_shape)
        if len(shape) < 2:
            raise ValueError(f"{self.describe()} takes logits shaped (N, C) or "
                             f"(N, C, d1, ...), got {shape}")
        self.targets(shape)
        return self._reduced((shape[0], *shape[2:]))

    def targets(self, input_shape) -> tuple[int, ...]:
        """The class of every sample and position, row-major (``target`` or ``n mod C``)."""
        batch, classes, *rest = input_shape
        count = batch * math.prod(rest)
        if self.target is None:
            return tuple(position % classes for position in range(count))
        if len(self.target) != count:
            raise ValueError(f"target: {len(self.target)} classes given for {count} samples "
                             f"and positions of an input of shape {tuple(input_shape)}")
        for value in self.target:
            if value != self.ignore_index and not 0 <= value < classes:
                raise ValueError(f"target: class {value} is not in [0, {classes - 1}] nor "
                                 f"ignore_index = {self.ignore_index}")
        return self.target

    def term_count(self, input_shape) -> int:
        """Each sample's term reads its row of ``C`` logits (each of ``C`` terms smoothed)."""
        batch, classes, *rest = input_shape
        per_row = classes * (classes if self.label_smoothing else 1)
        return batch * math.prod(rest) * per_row

    def describe(self) -> str:
        parts = [f"CrossEntropyLoss, reduction {self.reduction}"]
        if self.label_smoothing:
            parts.append(f"label smoothing {self.label_smoothing:g}")
        if self.weighted:
            parts.append("class weights")
        if self.ignore_index != -100:
            parts.append(f"ignore_index {self.ignore_index}")
        return ", ".join(parts)


@register_kind
@dataclass(frozen=True)
class MSELoss(_Loss):
    """Mean squared error ``(x - y)^2`` of any shape, reduced by ``reduction``."""

    reduction: str = "mean"

    kind = "mseloss"
    short_name = "mse"

    def __post_init__(self):
        _check_reduction(self.reduction)

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, F)`` from ``F``; ``(N, C, H, W)`` from ``(H, W)`` or ``(C, H, W)``."""
        batch = check_batch(batch)
        if is_int(input_size):
            return (batch, *sample_shape((input_size,), allow_features=True))
        return (batch, *sample_shape(input_size, allow_features=True))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        shape = tuple(input_shape)
        if len(shape) < 1:
            raise ValueError(f"{self.describe()} takes an input with at least one axis")
        return self._reduced(shape)

    def term_count(self, input_shape) -> int:
        return math.prod(input_shape)

    def describe(self) -> str:
        return f"MSELoss, reduction {self.reduction}"


LOSS_TYPES = (CrossEntropyLoss, MSELoss)


def loss_module_name(layer) -> str:
    """``crossentropyloss_mean``, ``crossentropyloss_mean_ls0p1_weighted_ii3``, ``mseloss_sum``:
    every setting but the derivation's ``target``."""
    name = f"{layer.kind}_{layer.reduction}"
    if isinstance(layer, CrossEntropyLoss):
        if layer.label_smoothing:
            name += f"_ls{number_token(layer.label_smoothing)}"
        if layer.weighted:
            name += "_weighted"
        if layer.ignore_index != -100:
            name += f"_ii{str(layer.ignore_index).replace('-', 'm')}"
    return name


for _layer_type in LOSS_TYPES:
    MODULE_NAMES.register(_layer_type, loss_module_name)
