"""Activations on the command line: each constant of the row as ``--name value``."""

from __future__ import annotations

import dataclasses

from symbackprop.core.command_line import COMMAND_LINE
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES


def activation_arguments(layer) -> list[str]:
    """``[]`` for ReLU, ``["--negative-slope", "0.01"]`` for leaky ReLU: every field."""
    arguments = []
    for field in dataclasses.fields(layer):
        arguments += [f"--{field.name.replace('_', '-')}", repr(float(getattr(layer, field.name)))]
    return arguments


for _layer_type in ACTIVATION_TYPES:
    COMMAND_LINE.register(_layer_type, activation_arguments)
