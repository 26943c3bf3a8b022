"""The fully connected layer's spec: ``z = w x + b``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.indexing import is_int
from symbackprop.core.layers import SpecMixin, batched, check_batch, sample_shape
from symbackprop.core.naming import MODULE_NAMES
from symbackprop.core.registry import register_kind


@register_kind
@dataclass(frozen=True)
class Linear(SpecMixin):
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
    short_name = "fc"  # in a chain's module name

    def __post_init__(self):
        for name in ("in_features", "out_features"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
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
        batch = check_batch(batch)
        if input_size is None or (is_int(input_size) and input_size == self.in_features):
            return (batch, self.in_features)
        if is_int(input_size):
            raise ValueError(f"input_size: {self.describe()} takes in_features = "
                             f"{self.in_features} features, got {input_size}")
        shape = (batch, *sample_shape(input_size))
        self.output_shape_for(shape)
        return shape

    def output_shape(self, input_size=None, batch: int = 1) -> tuple[int, int]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, int]:
        batch, *sample = batched(input_shape, self)
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


def linear_module_name(layer: Linear) -> str:
    """``linear_in120_out84``, ``linear_in3_out2_nobias``."""
    return f"linear_in{layer.in_features}_out{layer.out_features}" + \
        ("" if layer.bias else "_nobias")


MODULE_NAMES.register(Linear, linear_module_name)
