"""The transposed convolutions (1-D, 2-D, 3-D), everything about them: their spec, the
scatter expansion, the closed forms, the relations to the convolution they are the
transpose of, and the part they plug into each stage."""

# Importing each part registers it with its stage.
from symbackprop.kinds.conv_transpose import (  # noqa: F401
    chain,
    check,
    cli,
    expand,
    html,
    latex,
    numpy,
    rules,
    text,
)
from symbackprop.kinds.conv_transpose.spec import (
    ConvTranspose1d,
    ConvTranspose2d,
    ConvTranspose3d,
)

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
