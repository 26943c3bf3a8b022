"""The fully connected layer ``z = w x + b``: spec and expansion."""

import symbackprop.kinds.linear.numpy  # noqa: F401  (the NumPy code generator's part)
from symbackprop.kinds.linear import cli, expand  # noqa: F401  (it registers itself)
from symbackprop.kinds.linear.spec import Linear

__all__ = ["Linear"]
