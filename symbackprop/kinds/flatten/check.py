"""check-impl for flatten: ``backward(x, grad_out) -> grad_x``, the upstream gradient
``(N, C*H*W)`` reshaped to the input's ``(N, C, H, W)``, row-major."""

from __future__ import annotations

from symbackprop.check.impl import IMPLEMENTATIONS, Implementation
from symbackprop.kinds.flatten.spec import Flatten

#: Input sizes ``(C, H, W)`` a flatten backward pass runs on (non-square, several channels).
SIZES = ((2, 3, 4), (3, 2, 5))


def _sizes(layer) -> list:
    return list(SIZES)


IMPLEMENTATIONS.register(Flatten, Implementation(
    convention="backward(x, grad_out) -> grad_x or (grad_x,)", sizes=_sizes))
