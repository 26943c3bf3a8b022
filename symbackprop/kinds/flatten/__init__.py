"""Flatten: ``(N, C, H, W) -> (N, C*H*W)``, row-major; its backward is a reshape."""

# Importing each part registers it with its stage.
import symbackprop.kinds.flatten.array_api  # noqa: F401  (--target array-api)
from symbackprop.kinds.flatten import check, cli, expand, html, latex, numpy, text  # noqa: F401
from symbackprop.kinds.flatten.spec import Flatten

__all__ = ["Flatten"]
