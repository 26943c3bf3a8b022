"""The fully connected layer on the command line: its options, and the options of a layer."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, CommandLineKind
from symbackprop.kinds.linear.spec import Linear


def add_linear_options(parser) -> None:
    parser.add_argument("--in-features", type=int, default=3, metavar="F",
                        help="inputs per sample (default %(default)s)")
    parser.add_argument("--out-features", type=int, default=2, metavar="O",
                        help="outputs per sample (default %(default)s)")
    parser.add_argument("--no-bias", action="store_true",
                        help="a layer without bias b (default: with bias)")


def linear_from_args(args) -> Linear:
    return Linear(args.in_features, args.out_features, bias=not args.no_bias)


def linear_arguments(layer: Linear) -> list[str]:
    return ["--in-features", str(layer.in_features), "--out-features", str(layer.out_features),
            *([] if layer.bias else ["--no-bias"])]


COMMAND_LINE.register(Linear, CommandLineKind(
    help="fully connected layer z = w x + b", add_options=add_linear_options,
    build=linear_from_args, arguments=linear_arguments,
    default_input=None, default_input_help="default: --in-features", input_form="F"))
