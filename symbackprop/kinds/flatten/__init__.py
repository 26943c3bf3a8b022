"""Flatten: ``(N, C, H, W) -> (N, C*H*W)``, row-major; its backward is a reshape."""

import symbackprop.kinds.flatten.numpy  # noqa: F401  (the NumPy code generator's part)
from symbackprop.kinds.flatten import cli, expand  # noqa: F401  (it registers itself)
from symbackprop.kinds.flatten.spec import Flatten

__all__ = ["Flatten"]
