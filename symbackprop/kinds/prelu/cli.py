"""PReLU on the command line: ``--num-parameters``, ``--init``."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, CommandLineKind
from symbackprop.kinds.prelu.spec import PReLU


def _add_options(parser) -> None:
    parser.add_argument("--num-parameters", type=int, default=1, metavar="C",
                        help="1 (one slope for all) or the channel count C (one slope per "
                             "channel, axis 1) (default %(default)s)")
    parser.add_argument("--init", type=float, default=0.25, metavar="A",
                        help="the slopes' initial value (default %(default)s)")


def _arguments(layer) -> list[str]:
    return ["--num-parameters", str(layer.num_parameters), "--init", repr(float(layer.init))]


COMMAND_LINE.register(PReLU, CommandLineKind(
    help="PReLU, z = x if x > 0 else w x with learned slopes w",
    add_options=_add_options, build=lambda args: PReLU(args.num_parameters, args.init),
    arguments=_arguments, default_input=None,
    default_input_help="default: C x 3 x 3 with C = --num-parameters"))
