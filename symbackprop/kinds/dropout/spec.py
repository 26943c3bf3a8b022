"""Dropout's spec: ``z = x * m / (1 - p)`` with the keep-mask ``m`` given (inverted dropout,
as PyTorch's ``Dropout(p)`` in training mode).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

from symbackprop.core.layers import SpecMixin, batched, check_batch, sample_shape
from symbackprop.core.naming import MODULE_NAMES, number_token
from symbackprop.core.registry import register_kind


@register_kind
@dataclass(frozen=True)
class Dropout(SpecMixin):
    """Inverted dropout: ``z = x * m / (1 - p)`` elementwise, ``m`` the keep-mask (1 keeps
    an element, 0 drops it), an input of the layer that is not differentiated.

    Parameters
    ----------
    p : float
        The probability of dropping an element, ``0 <= p < 1``: the kept ones are scaled
        by ``1 / (1 - p)`` so that the expected output is the input.  ``p = 1`` (drop
        everything) has no such scale and is refused.
    """

    p: float = 0.5

    kind = "dropout"
    short_name = "drop"  # in a chain's module name
    parameter_names = ()
    #: the arrays it reads besides x that are not differentiated (the keep-mask)
    constant_names = ("m",)

    def __post_init__(self):
        if not isinstance(self.p, numbers.Real) or isinstance(self.p, bool) \
                or not math.isfinite(self.p):
            raise ValueError(f"p must be a finite number, got {self.p!r}")
        if not 0 <= self.p < 1:
            raise ValueError(f"p must be in [0, 1), got {self.p!r}: p is the probability of "
                             f"dropping an element and the kept ones are scaled by "
                             f"1 / (1 - p), which p = 1 has not")

    @property
    def parameter_shapes(self) -> dict:
        return {}

    @property
    def scale(self) -> Fraction:
        """``1 / (1 - p)`` exactly, ``p`` read as the decimal it is written as (0.3 -> 10/7)."""
        return 1 / (1 - Fraction(repr(float(self.p))))

    def constant_shapes(self, input_shape) -> dict:
        """``{"m": shape of x}``: the keep-mask has one entry per element."""
        return {"m": tuple(input_shape)}

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, C, H, W)`` from an int, ``(H, W)`` or ``(C, H, W)``; ``(N, F)`` from ``(F,)``."""
        return (check_batch(batch), *sample_shape(input_size, allow_features=True))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        """The input's shape."""
        return batched(input_shape, self)

    def term_count(self, input_shape) -> int:
        return math.prod(batched(input_shape, self))

    def describe(self) -> str:
        return f"Dropout, p {self.p:g}"


MODULE_NAMES.register(Dropout, lambda layer: f"dropout_p{number_token(layer.p)}")
