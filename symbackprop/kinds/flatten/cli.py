"""Flatten on the command line: no options."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE
from symbackprop.kinds.flatten.spec import Flatten

COMMAND_LINE.register(Flatten, lambda layer: [])
