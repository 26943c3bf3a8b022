"""The 2-D convolution (cross-correlation), everything about it: spec, expansion,
closed forms and the parts it plugs into the stages."""

import symbackprop.kinds.conv2d.numpy  # noqa: F401  (the NumPy code generator's part)
from symbackprop.kinds.conv2d import cli, expand, rules  # noqa: F401  (they register themselves)
from symbackprop.kinds.conv2d.spec import Conv2d

__all__ = ["Conv2d"]
