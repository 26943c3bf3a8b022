"""PReLU's spec: ``z = x if x > 0 else w_c x`` with learned slopes ``w`` (PyTorch's
``PReLU(num_parameters, init)``; its ``weight`` is ``w`` here).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from symbackprop.core.indexing import is_int
from symbackprop.core.layers import SpecMixin, batched, check_batch, sample_shape
from symbackprop.core.naming import MODULE_NAMES, number_token
from symbackprop.core.registry import register_kind


@register_kind
@dataclass(frozen=True)
class PReLU(SpecMixin):
    """``z = x`` where ``x > 0``, else ``w_c x``: a leaky ReLU whose slope is learned.

    Parameters
    ----------
    num_parameters : int
        1 (one slope for every element) or the channel count ``C`` (one slope per
        channel, axis 1 of the input, broadcast over the batch and the positions).
    init : float
        The slopes' initial value (PyTorch's 0.25); it does not enter the derivation.
    """

    num_parameters: int = 1
    init: float = 0.25

    kind = "prelu"
    parameter_names = ("w",)

    def __post_init__(self):
        if not is_int(self.num_parameters) or self.num_parameters < 1:
            raise ValueError(f"num_parameters must be a whole number >= 1 (1, or the channel "
                             f"count C), got {self.num_parameters!r}")
        if not isinstance(self.init, numbers.Real) or isinstance(self.init, bool) \
                or not math.isfinite(self.init):
            raise ValueError(f"init must be a finite number, got {self.init!r}")

    @property
    def weight_shape(self) -> tuple[int]:
        return (self.num_parameters,)

    @property
    def parameter_shapes(self) -> dict:
        return {"w": self.weight_shape}

    def input_shape(self, input_size=None, batch: int = 1) -> tuple[int, ...]:
        """``(N, C, H, W)`` from an int, ``(H, W)`` or ``(C, H, W)``; ``(N, F)`` from ``(F,)``;
        ``None``: ``num_parameters`` channels of 3 x 3."""
        if input_size is None:
            input_size = (self.num_parameters, 3, 3)
        shape = (check_batch(batch), *sample_shape(input_size, allow_features=True))
        self.output_shape_for(shape)
        return shape

    def output_shape(self, input_size=None, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        """The input's shape; with one slope per channel, axis 1 must have ``C`` of them."""
        shape = batched(input_shape, self)
        if self.num_parameters > 1 and shape[1] != self.num_parameters:
            raise ValueError(f"{self.describe()} takes num_parameters = {self.num_parameters} "
                             f"channels (axis 1, one slope each), got an input of shape {shape}")
        return shape

    def term_count(self, input_shape) -> int:
        return math.prod(batched(input_shape, self))

    def describe(self) -> str:
        slopes = "one slope" if self.num_parameters == 1 else \
            f"{self.num_parameters} slopes (one per channel)"
        return f"PReLU, {slopes}, init {self.init:g}"


MODULE_NAMES.register(PReLU, lambda layer: f"prelu_n{layer.num_parameters}_"
                                           f"i{number_token(layer.init)}")
