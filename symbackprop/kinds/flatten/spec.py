"""Flatten's spec: ``(N, C, H, W) -> (N, C*H*W)`` in row-major order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.layers import SpecMixin, batched, check_batch, sample_shape
from symbackprop.core.naming import MODULE_NAMES
from symbackprop.core.registry import register_kind


@register_kind
@dataclass(frozen=True)
class Flatten(SpecMixin):
    """``(N, C, H, W) -> (N, C*H*W)`` in row-major order: feature ``f = (c*H + h)*W + w``."""

    kind = "flatten"
    short_name = "flat"  # in a chain's module name
    parameter_names = ()

    @property
    def parameter_shapes(self) -> dict:
        return {}

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return (check_batch(batch), *sample_shape(input_size))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, int]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, int]:
        batch, *sample = batched(input_shape, self)
        return (batch, math.prod(sample))

    def term_count(self, input_shape) -> int:
        return math.prod(batched(input_shape, self))

    def describe(self) -> str:
        return "Flatten"


MODULE_NAMES.register(Flatten, lambda layer: "flatten")
