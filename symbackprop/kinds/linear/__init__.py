"""The fully connected layer ``z = w x + b``: spec and expansion."""

import symbackprop.kinds.linear.html  # noqa: F401  (it registers itself)
import symbackprop.kinds.linear.latex  # noqa: F401  (it registers itself)
import symbackprop.kinds.linear.text  # noqa: F401  (it registers itself)
from symbackprop.kinds.linear import cli, expand  # noqa: F401  (it registers itself)

from symbackprop.kinds.linear import check  # noqa: F401  # isort: skip  (it registers itself)
from symbackprop.kinds.linear.spec import Linear

__all__ = ["Linear"]
