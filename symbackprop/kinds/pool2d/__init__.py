"""Max and average pooling over 2-D windows: spec, expansion, the routing indicator
of max pooling, the Kronecker form of average pooling, and their parts in each stage."""

# Importing each part registers it with its stage.
import symbackprop.kinds.pool2d.array_api  # noqa: F401  (--target array-api)
from symbackprop.kinds.pool2d import check, cli, expand, html, latex, numpy, rules, text  # noqa: F401
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d

__all__ = ["MaxPool2d", "AvgPool2d"]
