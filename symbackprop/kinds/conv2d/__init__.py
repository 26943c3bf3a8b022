"""The 2-D convolution (cross-correlation), everything about it: its spec, its
expansion, its closed forms and the part it plugs into each stage."""

# Importing each part registers it with its stage.
import symbackprop.kinds.conv2d.array_api  # noqa: F401  (--target array-api)
from symbackprop.kinds.conv2d import check, cli, expand, html, latex, numpy, rules, text  # noqa: F401
from symbackprop.kinds.conv2d.spec import Conv2d

__all__ = ["Conv2d"]
