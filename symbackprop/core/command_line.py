"""Layers as command lines: the options that make ``symbackprop COMMAND`` build a layer.

Generated modules and documents quote the command that regenerates them; this is
where they find it, without importing the program itself.  Each kind registers the
function that spells its options in :data:`COMMAND_LINE` (``kinds/<kind>/cli.py``).
"""

from __future__ import annotations

import json

from symbackprop.core.layers import Sequential
from symbackprop.core.registry import Registry

__all__ = ["COMMAND_LINE", "layer_arguments", "numbers_argument", "padding_argument"]

#: layer type -> ``function(layer) -> [options...]`` naming it on the command line (the
#: inverse of parsing the kind's options).
COMMAND_LINE = Registry("spell on the command line")


def layer_arguments(layer) -> list[str]:
    """``[kind, options...]`` that make ``symbackprop COMMAND`` build ``layer`` again."""
    return [layer.kind, *COMMAND_LINE[layer](layer)]


def numbers_argument(values, separator=",") -> str:
    """``(3, 3) -> "3"``, ``(3, 2) -> "3x2"`` (with ``separator="x"``)."""
    return str(values[0]) if len(set(values)) == 1 else separator.join(map(str, values))


def padding_argument(padding) -> str:
    """The shortest ``--padding`` for ``(top, bottom, left, right)``: P, PH,PW or all four."""
    top, bottom, left, right = padding
    if (top, left) == (bottom, right):
        return numbers_argument((top, left))
    return numbers_argument(padding)


def _sequential_arguments(chain: Sequential) -> list[str]:
    return ["--spec", json.dumps(chain.spec()["layers"], separators=(", ", ": "))]


COMMAND_LINE.register(Sequential, _sequential_arguments)
