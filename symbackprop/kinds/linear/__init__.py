"""The fully connected layer ``z = w x + b``: spec, expansion and its parts in each stage."""

# Importing each part registers it with its stage.
import symbackprop.kinds.linear.array_api  # noqa: F401  (--target array-api)
from symbackprop.kinds.linear import check, cli, expand, html, latex, numpy, rules, text  # noqa: F401
from symbackprop.kinds.linear.spec import Linear

__all__ = ["Linear"]
