"""Max and average pooling over 2-D windows: spec, expansion, the routing indicator
of max pooling and the Kronecker form of average pooling."""

import symbackprop.kinds.pool2d.numpy  # noqa: F401  (the NumPy code generator's part)
from symbackprop.kinds.pool2d import cli, expand, rules  # noqa: F401  (they register themselves)
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d

__all__ = ["MaxPool2d", "AvgPool2d"]
