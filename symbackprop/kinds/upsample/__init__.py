"""Nearest-neighbour upsampling, ``Upsample(scale_factor, mode="nearest")`` on 2-D
feature maps: spec, expansion, the proven block sum of its backward pass, and its parts
in each stage."""

# Importing each part registers it with its stage.
from symbackprop.kinds.upsample import check, cli, expand, html, latex, numpy, rules, text  # noqa: F401
from symbackprop.kinds.upsample.spec import Upsample

__all__ = ["Upsample"]
