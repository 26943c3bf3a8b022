"""Layers as command lines: each kind's options on ``symbackprop COMMAND KIND``.

Each kind registers one :class:`CommandLineKind` in :data:`COMMAND_LINE`
(``kinds/<kind>/cli.py``): its help line, how it adds its options to an ``argparse``
parser, how it builds the layer from the parsed options, and the inverse, the options
that build a given layer again (generated modules and documents quote the command that
regenerates them: :func:`layer_arguments`, without importing the program itself).  The
program (:mod:`symbackprop.cli`) builds one parser per registered kind from this table
and never names a kind.  A chain (``sequential``, read from a JSON ``--spec``) is core:
its entry is here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable

from symbackprop.core.layers import NUMBER_LIMIT, Residual, Sequential, load_spec
from symbackprop.core.registry import Registry

__all__ = ["COMMAND_LINE", "CommandLineKind", "layer_arguments", "numbers_argument",
           "padding_argument", "no_options", "INPUT_FORMS", "NUMBER_LIMIT", "parse_numbers",
           "parse_size", "parse_whole_number", "whole_number", "parse_padding"]

#: The ``--input`` forms a kind takes (its :attr:`CommandLineKind.input_form`), as the
#: help of ``--input`` explains them.
INPUT_FORMS = {"HxW": "HxW, the channels are --in-channels",
               "L": "L, the length of each channel (the channels come from the layer's options)",
               "DxHxW": "DxHxW (or D for a cube); the channels are --in-channels",
               "HxW|CxHxW": "HxW (one channel) or CxHxW",
               "F": "F features",
               "HxW|CxHxW|F": "HxW, CxHxW or F features, as the first layer takes it",
               "L|CxL": "L (a sequence of length L), the channels are --in-channels, or CxL",
               "DxHxW|CxDxHxW": "DxHxW (or S for SxSxS), the channels are --in-channels, "
                                "or CxDxHxW",
               "C|CxL|CxHxW": "C classes, CxL or CxHxW (the classes first, dim 1)",
               "shape": "D, D1xD2 or D1xD2xD3, the shape of one sample"}


@dataclass(frozen=True)
class CommandLineKind:
    """One layer kind on the command line.

    Attributes
    ----------
    help : the kind's line in ``symbackprop COMMAND --help``.
    add_options : ``add_options(parser)`` adds the kind's own options (``--kernel``, ...),
        each with a help that says its default.
    build : ``build(args) -> layer`` from the parsed options; a ``ValueError`` naming
        the option for a value that breaks a rule.
    arguments : ``arguments(layer) -> [options...]``, the inverse of ``build``: the
        options (without the kind's name) that build ``layer`` again.
    default_input : ``--input`` when it is not given; ``None`` when the layer decides
        (``default_input_help`` says how, a linear layer's ``--in-features``).
    input_form : the ``--input`` forms it takes, a key of :data:`INPUT_FORMS`.
    padding_products : whether its printouts write padding positions into the sums
        (a convolution's ``0 w``, average pooling's padded zeros), which
        ``--no-padding-terms`` hides; max pooling leaves padding out of every window.
    """

    help: str
    add_options: Callable
    build: Callable
    arguments: Callable
    default_input: str | None = "3x3"
    default_input_help: str = ""
    input_form: str = "HxW|CxHxW"
    padding_products: bool = False

    def __post_init__(self):
        if self.input_form not in INPUT_FORMS:
            raise ValueError(f"input_form must be one of {', '.join(INPUT_FORMS)}, "
                             f"got {self.input_form!r}")
        if self.default_input is None and not self.default_input_help:
            raise ValueError("a kind without a default --input says what decides it "
                             "(default_input_help)")


#: layer type -> its :class:`CommandLineKind`, filled by ``kinds/<kind>/cli.py``.
COMMAND_LINE = Registry("spell on the command line")

# The forms of layers without a channel count of their own (pooling: one channel unless
# the input names them).
INPUT_FORMS.update({"CxL|L": "CxL, or L (one channel)",
                    "CxDxHxW|DxHxW": "CxDxHxW, or DxHxW (one channel)"})


def layer_arguments(layer) -> list[str]:
    """``[kind, options...]`` that make ``symbackprop COMMAND`` build ``layer`` again."""
    return [layer.kind, *COMMAND_LINE[layer].arguments(layer)]


def numbers_argument(values, separator=",") -> str:
    """``(3, 3) -> "3"``, ``(3, 2) -> "3x2"`` (with ``separator="x"``)."""
    return str(values[0]) if len(set(values)) == 1 else separator.join(map(str, values))


def padding_argument(padding) -> str:
    """The shortest ``--padding`` for ``(top, bottom, left, right)``: P, PH,PW or all four."""
    top, bottom, left, right = padding
    if (top, left) == (bottom, right):
        return numbers_argument((top, left))
    return numbers_argument(padding)


# -- reading the options' values ----------------------------------------------------

# NUMBER_LIMIT (from core.layers, shared with the spec reader): the largest whole number any
# option or spec entry takes (sizes, channels, strides, --max-terms, --seed, ...).  Real
# layers are far smaller; the bound keeps a pasted 5000-digit number from reaching
# Python's integer-conversion limit.

_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _shown(text: str, limit: int = 24) -> str:
    """``text`` quoted for a message, shortened when it is long."""
    text = str(text)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit - 4]!r}... ({len(text):,} characters)"


def whole_number(text: str) -> int:
    """``"12" -> 12``; ``ValueError`` (not naming an option) unless ``text`` is a whole
    number of at most :data:`NUMBER_LIMIT` in size.  The digits are counted before
    ``int`` sees them, so a 5000-digit paste never reaches Python's own limit."""
    stripped = str(text).strip()
    if not _WHOLE_NUMBER.fullmatch(stripped):
        raise ValueError(f"expected a whole number, got {_shown(text)}")
    digits = stripped.lstrip("+-").lstrip("0")
    if len(digits) > len(str(NUMBER_LIMIT)) or abs(int(stripped)) > NUMBER_LIMIT:
        raise ValueError(f"{_shown(text)} is out of range: whole numbers here are at most "
                         f"{NUMBER_LIMIT:,} in size")
    return int(stripped)


def parse_whole_number(text: str, name: str, minimum: int | None = None) -> int:
    """``"12" -> 12``; ``ValueError`` naming ``--name`` unless it is a whole number
    of at most :data:`NUMBER_LIMIT` in size (and at least ``minimum`` when given)."""
    try:
        value = whole_number(text)
    except ValueError as error:
        raise ValueError(f"--{name}: {error}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"--{name} must be a whole number >= {minimum}, got {value}")
    return value


def parse_numbers(text: str, name: str, counts=(1, 2)) -> tuple[int, ...] | int:
    """``"3" -> 3``, ``"3x2"`` or ``"3,2" -> (3, 2)``; ``ValueError`` naming ``name``.

    Each number is a whole number of at most :data:`NUMBER_LIMIT` (the layer checks
    its own rules, such as ``stride >= 1``).
    """
    parts = text.replace("x", ",").split(",")
    if not all(_WHOLE_NUMBER.fullmatch(part.strip()) for part in parts):
        raise ValueError(f"--{name} takes whole numbers separated by ',' or 'x', got "
                         f"{_shown(text)}")
    values = tuple(parse_whole_number(part, name) for part in parts)
    if len(values) not in counts:
        raise ValueError(f"--{name} takes {' or '.join(map(str, counts))} numbers, got "
                         f"{_shown(text)}")
    return values[0] if len(values) == 1 else values


def parse_padding(text: str, counts=(1, 2, 4)):
    """``--padding``: ``"same"`` or ``"valid"`` as they are, else :func:`parse_numbers`
    (``"1"``, ``"1,2"``, ``"0,1,0,1"``); the layer checks its own rules."""
    word = str(text).strip().lower()
    if word in ("same", "valid"):
        return word
    try:
        return parse_numbers(text, "padding", counts=counts)
    except ValueError as error:
        raise ValueError(f"{error}, or 'same' or 'valid'") from None


def parse_size(text: str | None, name: str = "input") -> tuple[int, int]:
    """``"3x3"`` or ``"3"`` (square) -> ``(H, W)``; ``None`` (not given) -> ``(3, 3)``."""
    if text is None:
        return (3, 3)
    value = parse_numbers(text, name)
    return (value, value) if isinstance(value, int) else value


def no_options(parser) -> None:
    """``add_options`` of a kind without options of its own."""


# -- a chain: core, built from a JSON spec -------------------------------------------


def _add_sequential_options(parser) -> None:
    parser.add_argument("--spec", required=True, metavar="FILE|JSON",
                        help='the layers as JSON, a file or the text itself: [{"layer": "conv2d", '
                             '"out_channels": 2, "kernel_size": 3}, {"layer": "relu"}, ...], or '
                             '{"input": [C, H, W], "layers": [...]} (required, no default)')


def _composite_from_args(args, composite):
    """The layer ``--spec`` describes, as a ``composite`` (a chain, a residual block) even
    when it holds one layer; the spec's ``"input"`` becomes ``--input`` when none is given."""
    layer, input_size = load_spec(args.spec)
    if not isinstance(layer, composite):
        layer = composite(layer)
    if getattr(args, "input", 1) is None and input_size is not None:  # the spec's input: default
        args.input = "x".join(map(str, input_size)) if isinstance(input_size, tuple) \
            else str(input_size)
    return layer


def _sequential_from_args(args) -> Sequential:
    return _composite_from_args(args, Sequential)


def _sequential_arguments(chain: Sequential) -> list[str]:
    return ["--spec", json.dumps(chain.spec()["layers"], separators=(", ", ": "))]


COMMAND_LINE.register(Sequential, CommandLineKind(
    help="a chain of layers from a JSON spec (--spec)",
    add_options=_add_sequential_options, build=_sequential_from_args,
    arguments=_sequential_arguments, default_input=None,
    default_input_help='default: the spec\'s "input"', input_form="HxW|CxHxW|F"))


# -- a residual block: core too, its block read from a JSON --spec -------------------


def _add_residual_options(parser) -> None:
    parser.add_argument("--spec", required=True, metavar="FILE|JSON",
                        help='the block of y = x + block(x) as JSON, a file or the text itself: '
                             '[{"layer": "conv2d", "in_channels": 2, "out_channels": 2, '
                             '"kernel_size": 3, "padding": 1}, {"layer": "relu"}, ...] (its '
                             'output shaped like its input), or {"layer": "residual", "block": '
                             '[...], "input": [C, H, W]} (required, no default)')


def _residual_from_args(args) -> Residual:
    return _composite_from_args(args, Residual)


def _residual_arguments(residual: Residual) -> list[str]:
    return ["--spec", json.dumps(residual.spec()["block"], separators=(", ", ": "))]


COMMAND_LINE.register(Residual, CommandLineKind(
    help="a residual block y = x + block(x), the block from a JSON spec (--spec)",
    add_options=_add_residual_options, build=_residual_from_args,
    arguments=_residual_arguments, default_input=None,
    default_input_help='default: the spec\'s "input"', input_form="HxW|CxHxW|F"))
