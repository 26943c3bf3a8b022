"""The 1-D and 3-D convolutions (``Conv1d``, ``Conv3d``), written once for any number of
spatial axes: their specs, expansions, closed forms and the part each plugs into each
stage."""

# Importing each part registers it with its stage.
from symbackprop.kinds.convnd import check, cli, expand, html, latex, numpy, rules, text  # noqa: F401
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d

__all__ = ["Conv1d", "Conv3d"]
