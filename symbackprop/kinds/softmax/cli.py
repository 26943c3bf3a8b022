"""Softmax and log-softmax on the command line: ``--dim``."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, CommandLineKind, parse_whole_number
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax


def add_dim_option(parser) -> None:
    parser.add_argument("--dim", default="1", metavar="D",
                        help="the axis the softmax normalises along, negative from the end "
                             "(default %(default)s: the classes of (N, C) or (N, C, H, W))")


def _build(layer_type):
    def build(args):
        return layer_type(dim=parse_whole_number(args.dim, "dim"))
    return build


def dim_arguments(layer) -> list[str]:
    return ["--dim", str(layer.dim)]


for _layer_type, _formula in ((Softmax, "z = exp(x) / sum exp(x) along --dim"),
                              (LogSoftmax, "z = x - log(sum exp(x)) along --dim")):
    COMMAND_LINE.register(_layer_type, CommandLineKind(
        help=f"{_layer_type.title}, {_formula}", add_options=add_dim_option,
        build=_build(_layer_type), arguments=dim_arguments, default_input="3",
        input_form="C|CxL|CxHxW"))
