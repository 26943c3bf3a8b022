"""PReLU: ``z = x`` where ``x > 0``, else ``w_c x``, with a learned slope ``w`` per channel
(or one for all) that has its own gradient.  A folder of its own, not a row of the
activation table: its slope is a parameter, and ``dL/dw`` sums over the batch and the
positions of each channel."""

# Importing each part registers it with its stage.
from symbackprop.kinds.prelu import check, cli, expand, html, latex, numpy, text  # noqa: F401
from symbackprop.kinds.prelu.spec import PReLU

__all__ = ["PReLU"]
