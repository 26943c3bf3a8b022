"""The losses, cross-entropy and mean squared error: spec, expansion and their parts in
each stage."""

# Importing each part registers it with its stage.
from symbackprop.kinds.loss import (  # noqa: F401
    check,
    cli,
    expand,
    html,
    latex,
    numpy,
    operators,
    rules,
    text,
)
from symbackprop.kinds.loss.spec import CrossEntropyLoss, MSELoss

__all__ = ["CrossEntropyLoss", "MSELoss"]
