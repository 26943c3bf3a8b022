"""Max and average pooling over 2-D windows: spec, expansion, the routing indicator
of max pooling and the Kronecker form of average pooling."""

import symbackprop.kinds.pool2d.html  # noqa: F401  (it registers itself)
import symbackprop.kinds.pool2d.latex  # noqa: F401  (it registers itself)
import symbackprop.kinds.pool2d.text  # noqa: F401  (it registers itself)
from symbackprop.kinds.pool2d import cli, expand, rules  # noqa: F401  (they register themselves)

from symbackprop.kinds.pool2d import check  # noqa: F401  # isort: skip  (it registers itself)
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d

__all__ = ["MaxPool2d", "AvgPool2d"]
