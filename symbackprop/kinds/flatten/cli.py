"""Flatten on the command line: no options."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, CommandLineKind, no_options
from symbackprop.kinds.flatten.spec import Flatten

COMMAND_LINE.register(Flatten, CommandLineKind(
    help="(N, C, H, W) -> (N, C*H*W), row-major", add_options=no_options,
    build=lambda args: Flatten(), arguments=lambda layer: [], default_input="2x2x2"))
