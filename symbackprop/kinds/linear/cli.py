"""The fully connected layer on the command line."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE
from symbackprop.kinds.linear.spec import Linear


def linear_arguments(layer: Linear) -> list[str]:
    return ["--in-features", str(layer.in_features), "--out-features", str(layer.out_features),
            *([] if layer.bias else ["--no-bias"])]


COMMAND_LINE.register(Linear, linear_arguments)
