"""The ``symbackprop`` command line: ``symbackprop COMMAND LAYER [options]``.

Each command (``derive``, ...) is registered with :func:`command`; each layer kind
(``conv2d``, ...) with :data:`LAYER_OPTIONS`.  Every ``ValueError`` a layer or a
stage raises becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .layers import Conv2d

__all__ = ["main", "command", "LAYER_OPTIONS", "parse_numbers", "parse_size", "layer_arguments"]

_COMMANDS = {}


def command(name: str, help: str):
    """Register ``function(args) -> int`` as ``symbackprop NAME``.

    The function's ``options`` attribute, if set, adds command options to every
    layer sub-parser of the command; ``command_options``, if set, adds arguments
    that come before ``LAYER``.
    """
    def decorate(function):
        _COMMANDS[name] = (help, function)
        return function
    return decorate


def parse_numbers(text: str, name: str, counts=(1, 2)) -> tuple[int, ...] | int:
    """``"3" -> 3``, ``"3x2"`` or ``"3,2" -> (3, 2)``; ``ValueError`` naming ``name``."""
    parts = text.replace("x", ",").split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        raise ValueError(f"--{name} takes whole numbers separated by ',' or 'x', got {text!r}") \
            from None
    if len(values) not in counts:
        raise ValueError(f"--{name} takes {' or '.join(map(str, counts))} numbers, got {text!r}")
    return values[0] if len(values) == 1 else values


def parse_size(text: str, name: str = "input") -> tuple[int, int]:
    """``"3x3"`` or ``"3"`` (square) -> ``(H, W)``."""
    value = parse_numbers(text, name)
    return (value, value) if isinstance(value, int) else value


def _add_conv2d_options(parser):
    parser.add_argument("--kernel", default="2", metavar="K|KHxKW", help="kernel size (default 2)")
    parser.add_argument("--stride", default="1", metavar="S|SHxSW", help="stride (default 1)")
    parser.add_argument("--padding", default="0", metavar="P",
                        help="zero padding: P (all sides), PH,PW, or TOP,BOTTOM,LEFT,RIGHT")
    parser.add_argument("--dilation", default="1", metavar="D|DHxDW", help="dilation (default 1)")
    parser.add_argument("--in-channels", type=int, default=1, metavar="C")
    parser.add_argument("--out-channels", type=int, default=1, metavar="O")
    parser.add_argument("--groups", type=int, default=1)
    parser.add_argument("--no-bias", action="store_true", help="a layer without bias")


def _conv2d_from_args(args) -> Conv2d:
    return Conv2d(in_channels=args.in_channels, out_channels=args.out_channels,
                  kernel_size=parse_numbers(args.kernel, "kernel"),
                  stride=parse_numbers(args.stride, "stride"),
                  padding=parse_numbers(args.padding, "padding", counts=(1, 2, 4)),
                  dilation=parse_numbers(args.dilation, "dilation"),
                  groups=args.groups, bias=not args.no_bias)


#: layer kind -> (help, add options to a parser, build the layer from parsed args)
LAYER_OPTIONS = {
    "conv2d": ("2-D convolution (cross-correlation)", _add_conv2d_options, _conv2d_from_args),
}


def _conv2d_to_args(layer) -> list[str]:
    def numbers(values, separator):
        return str(values[0]) if len(set(values)) == 1 else separator.join(map(str, values))

    top, bottom, left, right = layer.padding
    padding = numbers(layer.padding, ",") if (top, left) != (bottom, right) else \
        numbers((top, left), ",")
    arguments = []
    if layer.in_channels != 1:
        arguments += ["--in-channels", str(layer.in_channels)]
    if layer.out_channels != 1:
        arguments += ["--out-channels", str(layer.out_channels)]
    arguments += ["--kernel", numbers(layer.kernel_size, "x")]
    if layer.stride != (1, 1):
        arguments += ["--stride", numbers(layer.stride, "x")]
    if layer.padding != (0, 0, 0, 0):
        arguments += ["--padding", padding]
    if layer.dilation != (1, 1):
        arguments += ["--dilation", numbers(layer.dilation, "x")]
    if layer.groups != 1:
        arguments += ["--groups", str(layer.groups)]
    if not layer.bias:
        arguments.append("--no-bias")
    return arguments


#: layer kind -> the options that name a layer on the command line (the inverse of
#: LAYER_OPTIONS' from_args); generated files quote them in their regenerate command.
LAYER_ARGUMENTS = {
    "conv2d": _conv2d_to_args,
}


def layer_arguments(layer) -> list[str]:
    """``[kind, options...]`` that make ``symbackprop COMMAND`` build ``layer`` again."""
    try:
        to_args = LAYER_ARGUMENTS[layer.kind]
    except (AttributeError, KeyError):
        raise TypeError(f"symbackprop has no command-line form for a {type(layer).__name__}") \
            from None
    return [layer.kind, *to_args(layer)]


def add_instance_options(parser):
    """Options naming one instance of a layer: input size and batch."""
    parser.add_argument("--input", default="3x3", metavar="HxW",
                        help="input height x width (default 3x3)")
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="batch size (default 1)")


def add_notation_options(parser):
    """Options for printed notation."""
    parser.add_argument("--index-base", type=int, choices=(0, 1), default=1,
                        help="first index in printouts: 1 like a textbook (default) or 0")


def add_derivation_options(parser):
    """Options of the symbolic derivation shared by every command that prints it."""
    parser.add_argument("--method", choices=("collect", "diff"), default="collect",
                        help="collect coefficients (fast, default) or sympy.diff the loss")
    parser.add_argument("--max-terms", type=int, default=None, metavar="N",
                        help="expand instances up to N products (default: built-in limit)")
    parser.add_argument("--no-padding-terms", action="store_true",
                        help="do not show padding products as 0 w")


def derivation_from_args(args):
    """``derive`` the layer and instance the parsed command line names."""
    from .derivation import derive

    limits = {} if args.max_terms is None else {"max_terms": args.max_terms}
    return derive(layer_from_args(args), parse_size(args.input), args.batch,
                  method=args.method, **limits)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__, commands  # noqa: F401  (registers the commands)

    parser = argparse.ArgumentParser(
        prog="symbackprop",
        description="Derive the backward pass of convolutional-network layers symbolically.")
    parser.add_argument("--version", action="version", version=f"symbackprop {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, function) in _COMMANDS.items():
        command_parser = subparsers.add_parser(name, help=help_text, description=help_text)
        # Arguments before LAYER (check-impl's FILE.py:FUNCTION).
        getattr(function, "command_options", lambda p: None)(command_parser)
        layers = command_parser.add_subparsers(dest="layer", required=True, metavar="LAYER")
        for kind, (layer_help, add_options, _) in LAYER_OPTIONS.items():
            layer_parser = layers.add_parser(kind, help=layer_help)
            add_options(layer_parser)
            getattr(function, "options", lambda p: None)(layer_parser)
            layer_parser.set_defaults(run=function)
    return parser


def layer_from_args(args):
    """The layer the parsed command line names."""
    return LAYER_OPTIONS[args.layer][2](args)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:  # a rule broken by the user's request
        print(f"symbackprop {args.command}: error: {error}", file=sys.stderr)
        return 2
    except TypeError as error:
        print(f"symbackprop {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"symbackprop {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
