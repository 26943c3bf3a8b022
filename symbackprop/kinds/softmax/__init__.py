"""Softmax and log-softmax along one axis: spec, expansion and their parts in each stage."""

# Importing each part registers it with its stage.
from symbackprop.kinds.softmax import (  # noqa: F401
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
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax

__all__ = ["Softmax", "LogSoftmax"]
