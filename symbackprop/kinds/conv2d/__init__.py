"""The 2-D convolution (cross-correlation), everything about it: spec, expansion,
closed forms and the parts it plugs into the stages."""

import symbackprop.kinds.conv2d.html  # noqa: F401  (it registers itself)
import symbackprop.kinds.conv2d.latex  # noqa: F401  (it registers itself)
import symbackprop.kinds.conv2d.text  # noqa: F401  (it registers itself)
from symbackprop.kinds.conv2d import cli, expand, rules  # noqa: F401  (they register themselves)

from symbackprop.kinds.conv2d import check  # noqa: F401  # isort: skip  (it registers itself)
from symbackprop.kinds.conv2d.spec import Conv2d

__all__ = ["Conv2d"]
