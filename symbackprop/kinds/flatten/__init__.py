"""Flatten: ``(N, C, H, W) -> (N, C*H*W)``, row-major; its backward is a reshape."""

import symbackprop.kinds.flatten.html  # noqa: F401  (it registers itself)
import symbackprop.kinds.flatten.latex  # noqa: F401  (it registers itself)
import symbackprop.kinds.flatten.text  # noqa: F401  (it registers itself)
from symbackprop.kinds.flatten import cli, expand  # noqa: F401  (it registers itself)

from symbackprop.kinds.flatten import check  # noqa: F401  # isort: skip  (it registers itself)
from symbackprop.kinds.flatten.spec import Flatten

__all__ = ["Flatten"]
