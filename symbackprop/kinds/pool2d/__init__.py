"""Max and average pooling over 1-D, 2-D and 3-D windows, one N-dimensional code: spec
(PyTorch's stride, padding, dilation, ceil_mode and count_include_pad), expansion, the
routing indicator of max pooling, the divisor and Kronecker form of average pooling, and
their parts in each stage."""

# Importing each part registers it with its stage.
import symbackprop.kinds.pool2d.array_api  # noqa: F401  (--target array-api)
from symbackprop.kinds.pool2d import check, cli, expand, html, latex, numpy, rules, text  # noqa: F401
from symbackprop.kinds.pool2d.spec import (
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"]
