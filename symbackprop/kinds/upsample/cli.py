"""Upsampling on the command line: ``--scale-factor`` and ``--mode``."""

from __future__ import annotations

from symbackprop.core.command_line import (
    COMMAND_LINE,
    CommandLineKind,
    numbers_argument,
    parse_numbers,
)
from symbackprop.kinds.upsample.spec import Upsample


def _add_options(parser) -> None:
    parser.add_argument("--scale-factor", default="2", metavar="S|SHxSW",
                        help="whole scale factor: S (both axes) or SHxSW (default %(default)s)")
    parser.add_argument("--mode", default="nearest", choices=("nearest",),
                        help="how the new positions are filled: nearest, a copy of the "
                             "element (default %(default)s)")


def _build(args) -> Upsample:
    return Upsample(scale_factor=parse_numbers(args.scale_factor, "scale-factor"),
                    mode=args.mode)


def _arguments(layer) -> list[str]:
    return ["--scale-factor", numbers_argument(layer.scale_factor, "x")]


COMMAND_LINE.register(Upsample, CommandLineKind(
    help="nearest-neighbour upsampling: backward sums g over each block",
    add_options=_add_options, build=_build, arguments=_arguments, default_input="2x2"))
