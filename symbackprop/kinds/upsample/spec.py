"""Nearest-neighbour upsampling's spec: ``Upsample(scale_factor, mode="nearest")`` on
``(N, C, H, W)`` feature maps, whole scale factors per axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbackprop.core.indexing import pair
from symbackprop.core.layers import (
    SpecMixin,
    check_batch,
    feature_maps,
    sample_shape,
)
from symbackprop.core.naming import MODULE_NAMES, pair_token
from symbackprop.core.registry import register_kind


@register_kind
@dataclass(frozen=True)
class Upsample(SpecMixin):
    """Nearest-neighbour upsampling (PyTorch's ``nn.Upsample(scale_factor, mode="nearest")``).

    ``z[n, c, i, j] = x[n, c, i // sh, j // sw]``: every element copied into an
    ``sh x sw`` block; the output is ``(N, C, H*sh, W*sw)``.  Its backward pass sums
    ``g`` over each block: the "upsample" of a pooling layer's error in the notes,
    here as a layer of its own.

    Parameters
    ----------
    scale_factor : int or (int, int)
        Whole numbers >= 1 (PyTorch also takes fractions; they are not supported).
    mode : str
        ``"nearest"``, the only mode.
    """

    scale_factor: tuple[int, int] = 2
    mode: str = "nearest"

    kind = "upsample2d"
    short_name = "up"  # in a chain's module name
    parameter_names = ()

    def __post_init__(self):
        try:
            scale = pair(self.scale_factor, "scale_factor")
        except ValueError:
            raise ValueError(f"scale_factor must be a whole number >= 1 or one per axis "
                             f"(height, width); fractional factors are not supported, got "
                             f"{self.scale_factor!r}") from None
        if min(scale) < 1:
            raise ValueError(f"scale_factor must be >= 1 along both axes, got {scale}")
        object.__setattr__(self, "scale_factor", scale)
        if self.mode != "nearest":
            raise ValueError(f"mode must be 'nearest' (the only mode symbackprop derives), "
                             f"got {self.mode!r}")

    def field_default(self, field):
        """The default scale factor 2 is ``(2, 2)`` once stored."""
        return (2, 2) if field.name == "scale_factor" else super().field_default(field)

    @property
    def parameter_shapes(self) -> dict:
        return {}

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        """``(N, C, H, W)`` from ``(H, W)`` (one channel), an int (square) or ``(C, H, W)``."""
        return (check_batch(batch), *sample_shape(input_size))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, int, int, int]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, int, int, int]:
        """``(N, C, H*sh, W*sw)``."""
        batch, channels, height, width = feature_maps(input_shape, self)
        sh, sw = self.scale_factor
        return (batch, channels, height * sh, width * sw)

    def term_count(self, input_shape) -> int:
        """One copy per output element."""
        return math.prod(self.output_shape_for(input_shape))

    def describe(self) -> str:
        sh, sw = self.scale_factor
        return f"Upsample x{sh} (nearest)" if sh == sw else f"Upsample {sh}x{sw} (nearest)"


MODULE_NAMES.register(Upsample, lambda layer: f"upsample2d_s{pair_token(layer.scale_factor)}")
