"""Dropout on the command line: ``--p``."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, CommandLineKind
from symbackprop.kinds.dropout.spec import Dropout


def _add_options(parser) -> None:
    parser.add_argument("--p", type=float, default=0.5, metavar="P",
                        help="probability of dropping an element, 0 <= P < 1; the kept ones "
                             "are scaled by 1/(1 - P) (default %(default)s)")


COMMAND_LINE.register(Dropout, CommandLineKind(
    help="inverted dropout z = x * m / (1 - p) with the keep-mask m given",
    add_options=_add_options, build=lambda args: Dropout(args.p),
    arguments=lambda layer: ["--p", repr(float(layer.p))], default_input="3x3"))
