"""Normalisations: batch (1-d and 2-d), layer, group and instance norm, one computation
("normalise over a set of axes, then scale and shift") with a layout per kind."""

# Importing each part registers it with its stage.
from symbackprop.kinds.normalization import (  # noqa: F401
    check,
    cli,
    expand,
    html,
    latex,
    numpy,
    rules,
    text,
)
from symbackprop.kinds.normalization.spec import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
)

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm2d"]
