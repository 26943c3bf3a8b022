"""The ``symbackprop`` command line: ``symbackprop COMMAND LAYER [options]``.

Each command (``derive``, ...) is registered with :func:`command`; each layer kind
(``conv2d``, ...) with :data:`LAYER_OPTIONS`.  A command offers, per kind, only the
options that mean something for it (:class:`LayerKind`).  Every ``ValueError`` a
layer or a stage raises becomes one line on stderr and exit status 2.  While a
command runs with standard error on a terminal, long stages show a progress bar
there (:mod:`symbackprop.core.progress`).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import signal
import sys
from dataclasses import dataclass

from symbackprop.core.layers import NUMBER_LIMIT, Sequential, load_spec
from symbackprop.kinds import (
    AvgPool2d,
    Conv2d,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
)

__all__ = ["main", "command", "LAYER_OPTIONS", "NUMBER_LIMIT", "parse_numbers", "parse_size",
           "parse_whole_number", "input_size_from_args", "LayerKind",
           "layer_kind"]

_COMMANDS = {}


def command(name: str, help: str):
    """Register ``function(args) -> int`` as ``symbackprop NAME``.

    The function's ``options`` attribute, if set, is called as
    ``options(parser, kind)`` with each layer sub-parser of the command and its
    :class:`LayerKind`, to add the command's options that mean something for that
    kind; ``command_options``, if set, adds arguments that come before ``LAYER``;
    ``kinds``, if set, lists the layer kinds the command takes (default: all); the
    others are not listed, and the command refuses them.
    """
    def decorate(function):
        _COMMANDS[name] = (help, function)
        return function
    return decorate


# NUMBER_LIMIT (from layers, shared with the spec reader): the largest whole number any
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


def _whole_number(text: str) -> int:
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
        value = _whole_number(text)
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


def parse_size(text: str | None, name: str = "input") -> tuple[int, int]:
    """``"3x3"`` or ``"3"`` (square) -> ``(H, W)``; ``None`` (not given) -> ``(3, 3)``."""
    if text is None:
        return (3, 3)
    value = parse_numbers(text, name)
    return (value, value) if isinstance(value, int) else value


def _add_conv2d_options(parser):
    parser.add_argument("--kernel", default="2", metavar="K|KHxKW",
                        help="kernel size: K (square) or KHxKW (default %(default)s)")
    parser.add_argument("--stride", default="1", metavar="S|SHxSW",
                        help="step of the kernel over the input: S or SHxSW (default %(default)s)")
    parser.add_argument("--padding", default="0", metavar="P",
                        help="zeros around the input: P (all sides), PH,PW, or "
                             "TOP,BOTTOM,LEFT,RIGHT (default %(default)s)")
    parser.add_argument("--dilation", default="1", metavar="D|DHxDW",
                        help="spacing between kernel elements, 1 = adjacent: D or DHxDW "
                             "(default %(default)s)")
    parser.add_argument("--in-channels", type=int, default=1, metavar="C",
                        help="channels of the input x (default %(default)s)")
    parser.add_argument("--out-channels", type=int, default=1, metavar="O",
                        help="channels of the output z, one kernel each (default %(default)s)")
    parser.add_argument("--groups", type=int, default=1, metavar="G",
                        help="split the channels into G groups: each output channel sees only "
                             "the C/G input channels of its group; G divides C and O "
                             "(default %(default)s)")
    parser.add_argument("--no-bias", action="store_true",
                        help="a layer without bias b (default: with bias)")


def _conv2d_from_args(args) -> Conv2d:
    return Conv2d(in_channels=args.in_channels, out_channels=args.out_channels,
                  kernel_size=parse_numbers(args.kernel, "kernel"),
                  stride=parse_numbers(args.stride, "stride"),
                  padding=parse_numbers(args.padding, "padding", counts=(1, 2, 4)),
                  dilation=parse_numbers(args.dilation, "dilation"),
                  groups=args.groups, bias=not args.no_bias)


def _add_pool_options(parser, average=False):
    parser.add_argument("--kernel", default="2", metavar="K|KHxKW",
                        help="window size: K (square) or KHxKW (default %(default)s)")
    parser.add_argument("--stride", default=None, metavar="S|SHxSW",
                        help="step of the window: S or SHxSW (default: the window size, "
                             "windows side by side)")
    parser.add_argument("--padding", default="0", metavar="P",
                        help="padding around the input: P (all sides), PH,PW, or "
                             "TOP,BOTTOM,LEFT,RIGHT; each side smaller than the window "
                             "(default %(default)s)" + ("" if average else
                                                        "; padding never wins a maximum"))
    if average:
        parser.add_argument("--count-include-pad", action=argparse.BooleanOptionalAction,
                            default=True,
                            help="divide each window's sum by the whole window, padded zeros "
                                 "included, or (--no-count-include-pad) only by the input "
                                 "elements it holds (default: %(default)s, the whole window)")


def _pool_from_args(layer_type):
    def build(args):
        options = dict(kernel_size=parse_numbers(args.kernel, "kernel"),
                       stride=None if args.stride is None else parse_numbers(args.stride, "stride"),
                       padding=parse_numbers(args.padding, "padding", counts=(1, 2, 4)))
        if layer_type is AvgPool2d:
            options["count_include_pad"] = args.count_include_pad
        return layer_type(**options)
    return build


def _add_leaky_options(parser):
    parser.add_argument("--negative-slope", "--slope", type=float, default=0.01, metavar="ALPHA",
                        dest="negative_slope",
                        help="slope alpha for net <= 0 (default %(default)s)")


def _add_linear_options(parser):
    parser.add_argument("--in-features", type=int, default=3, metavar="F",
                        help="inputs per sample (default %(default)s)")
    parser.add_argument("--out-features", type=int, default=2, metavar="O",
                        help="outputs per sample (default %(default)s)")
    parser.add_argument("--no-bias", action="store_true",
                        help="a layer without bias b (default: with bias)")


def _add_sequential_options(parser):
    parser.add_argument("--spec", required=True, metavar="FILE|JSON",
                        help='the layers as JSON, a file or the text itself: [{"layer": "conv2d", '
                             '"out_channels": 2, "kernel_size": 3}, {"layer": "relu"}, ...], or '
                             '{"input": [C, H, W], "layers": [...]} (required, no default)')


def _sequential_from_args(args):
    layer, input_size = load_spec(args.spec)
    if not isinstance(layer, Sequential):
        layer = Sequential(layer)
    if getattr(args, "input", 1) is None and input_size is not None:  # the spec's input: default
        args.input = "x".join(map(str, input_size)) if isinstance(input_size, tuple) \
            else str(input_size)
    return layer


def _no_options(parser):
    pass


#: layer kind -> (help, add options to a parser, build the layer from parsed args)
LAYER_OPTIONS = {
    "conv2d": ("2-D convolution (cross-correlation)", _add_conv2d_options, _conv2d_from_args),
    "maxpool2d": ("max pooling: each window's gradient goes to its maximum",
                  _add_pool_options, _pool_from_args(MaxPool2d)),
    "avgpool2d": ("average pooling: each window's gradient is shared equally",
                  lambda parser: _add_pool_options(parser, average=True),
                  _pool_from_args(AvgPool2d)),
    "relu": ("ReLU activation, max(net, 0)", _no_options, lambda args: ReLU()),
    "leakyrelu": ("leaky ReLU activation, slope alpha for net <= 0", _add_leaky_options,
                  lambda args: LeakyReLU(args.negative_slope)),
    "sigmoid": ("logistic sigmoid activation", _no_options, lambda args: Sigmoid()),
    "tanh": ("tanh activation", _no_options, lambda args: Tanh()),
    "flatten": ("(N, C, H, W) -> (N, C*H*W), row-major", _no_options, lambda args: Flatten()),
    "linear": ("fully connected layer z = w x + b", _add_linear_options,
               lambda args: Linear(args.in_features, args.out_features, bias=not args.no_bias)),
    "sequential": ("a chain of layers from a JSON spec (--spec)", _add_sequential_options,
                   _sequential_from_args),
}

#: ``--input`` when it is not given, per layer kind; ``None``: the layer decides
#: (a Linear layer's in_features, a spec's "input").
DEFAULT_INPUT = {"conv2d": "3x3", "maxpool2d": "4x4", "avgpool2d": "4x4", "flatten": "2x2x2"}


@dataclass(frozen=True)
class LayerKind:
    """What the options of one layer kind can refer to, read off a layer of that kind.

    ``parameter_names``: the arrays it learns (``("w", "b")``, or ``()`` for pooling
    and activations), which ``latex`` can rename; ``padding_products``: whether its
    printouts write padding positions into the sums (``0 w``), which
    ``--no-padding-terms`` hides; ``input``: the ``--input`` forms it takes.
    """

    name: str
    parameter_names: tuple[str, ...]
    padding_products: bool
    input: str


@functools.cache
def layer_kind(name: str) -> LayerKind:
    """The :class:`LayerKind` of ``name``, from the layer its default options build."""
    if name == "sequential":  # a chain may hold a layer of any other kind
        kinds = [layer_kind(other) for other in LAYER_OPTIONS if other != "sequential"]
        return LayerKind(name, tuple(dict.fromkeys(p for k in kinds for p in k.parameter_names)),
                         any(k.padding_products for k in kinds), "HxW|CxHxW|F")
    _, add_options, from_args = LAYER_OPTIONS[name]
    probe = argparse.ArgumentParser(add_help=False)
    add_options(probe)
    layer = from_args(probe.parse_args([]))
    form = "F" if hasattr(layer, "in_features") else \
        "HxW" if hasattr(layer, "in_channels") else "HxW|CxHxW"
    return LayerKind(name, tuple(layer.parameter_names), _writes_padding_products(layer), form)


def _writes_padding_products(layer) -> bool:
    """Whether a padded instance of ``layer`` keeps its padding positions in the written sums.

    A convolution writes ``0 w``, average pooling counts the padded zeros; max pooling
    leaves padding out of every window (it never wins), so there is nothing to hide.
    """
    if not hasattr(layer, "padding"):
        return False
    from symbackprop.core.expand import expand

    forward = expand(layer.replace(padding=1), (1, getattr(layer, "in_channels", 1), 1, 1))
    return forward.z_written != forward.z


def add_instance_options(parser, kind: LayerKind | None = None):
    """Options naming one instance of a layer: input size and batch."""
    name = kind.name if kind is not None else None
    default = {"linear": "default: --in-features",
               "sequential": 'default: the spec\'s "input"'}.get(
        name, f"default {DEFAULT_INPUT.get(name, '3x3')}")
    forms = {"HxW": "HxW, the channels are --in-channels",
             "HxW|CxHxW": "HxW (one channel) or CxHxW",
             "F": "F features",
             "HxW|CxHxW|F": "HxW, CxHxW or F features, as the first layer takes it"}
    form = kind.input if kind is not None else "HxW|CxHxW|F"
    parser.add_argument("--input", default=None, metavar=form,
                        help=f"size of one input sample: {forms[form]} ({default})")
    parser.add_argument("--batch", type=int, default=1, metavar="N",
                        help="samples in the batch, N (default %(default)s)")


def add_notation_options(parser, kind: LayerKind | None = None):
    """Options for printed notation."""
    parser.add_argument("--index-base", type=int, choices=(0, 1), default=1,
                        help="first index in printouts: 1 like a textbook, or 0 like Python "
                             "(default %(default)s)")


def add_derivation_options(parser, kind: LayerKind | None = None):
    """Options of the symbolic derivation shared by every command that prints it.

    ``--no-padding-terms`` only for a ``kind`` with padding products to hide.
    """
    from symbackprop.core.derivation import DEFAULT_MAX_TERMS

    parser.add_argument("--method", choices=("collect", "diff"), default="collect",
                        help="how SymPy gets the gradients: collect each product's coefficients "
                             "(fast) or sympy.diff the loss (slow, the plain truth) "
                             "(default %(default)s)")
    parser.add_argument("--max-terms", type=int, default=None, metavar="N",
                        help="refuse instances whose expansion has more than N products "
                             f"(default: {DEFAULT_MAX_TERMS:,})")
    if kind is None or kind.padding_products:
        parser.add_argument("--no-padding-terms", action="store_true",
                            help="leave padding positions out of the written sums (default: "
                                 "shown, as 0 w for a convolution, 0 for average pooling)")
    else:  # nothing to hide; the commands read the setting all the same
        parser.set_defaults(no_padding_terms=False)


def derivation_from_args(args):
    """``derive`` the layer and instance the parsed command line names."""
    from symbackprop.core.derivation import derive

    limits = {} if args.max_terms is None else {"max_terms": args.max_terms}
    layer = layer_from_args(args)
    return derive(layer, input_size_from_args(args, layer), args.batch,
                  method=args.method, **limits)


EPILOG = """\
start with:
  symbackprop derive conv2d --kernel 2 --padding 1 --input 3x3
  symbackprop COMMAND --help          the layer kinds a command takes
  symbackprop COMMAND LAYER --help    the options of that layer kind, with their defaults
the tutorial: examples/tutorial.ipynb"""


def build_parser() -> argparse.ArgumentParser:
    from symbackprop._version import __version__
    from symbackprop.cli import commands  # noqa: F401  (registers the commands)

    parser = argparse.ArgumentParser(
        prog="symbackprop",
        description="Derive the backward pass of convolutional-network layers symbolically.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"symbackprop {__version__}",
                        help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, function) in _COMMANDS.items():
        command_parser = subparsers.add_parser(name, help=help_text, description=help_text)
        command_parser.register("type", int, _argparse_whole_number)
        # Arguments before LAYER (check-impl's FILE.py:FUNCTION).
        getattr(function, "command_options", lambda p: None)(command_parser)
        layers = command_parser.add_subparsers(dest="layer", required=True, metavar="LAYER",
                                               parser_class=_LayerParser)
        listed = getattr(function, "kinds", LAYER_OPTIONS)
        for kind, (layer_help, add_options, _) in LAYER_OPTIONS.items():
            # A kind the command does not take is left out of its listing (argparse lists
            # only sub-parsers given a help), but still parsed: the command then refuses
            # it in one line that says why and what to use instead.
            shown = {"help": layer_help} if kind in listed else {}
            layer_parser = layers.add_parser(kind, **shown,
                                             description=f"{help_text}; {kind}: {layer_help}")
            # Every ``type=int`` option reads a bounded whole number with a clear message.
            layer_parser.register("type", int, _argparse_whole_number)
            add_options(layer_parser)
            getattr(function, "options", lambda p, k: None)(layer_parser, layer_kind(kind))
            layer_parser.set_defaults(run=_with_progress(function))
    return parser


class _LayerParser(argparse.ArgumentParser):
    """The parser of one command and layer kind: an option it does not take is its error.

    (argparse otherwise hands unknown options up to the top-level parser, whose error
    shows ``symbackprop COMMAND ...`` instead of the options this kind does take.)
    """

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)} (the options of "
                       f"{self.prog} are listed above and by --help)")
        return namespace, extras


def _with_progress(function):
    """``function(args)`` with progress bars on standard error, when that is a terminal."""
    from symbackprop.core import progress

    @functools.wraps(function)
    def run(args):
        with progress.enable(sys.stderr.isatty()):
            return function(args)
    return run


def layer_from_args(args):
    """The layer the parsed command line names."""
    return LAYER_OPTIONS[args.layer][2](args)


def input_size_from_args(args, layer):
    """The ``input_size`` the command line names for ``layer``: an int or a tuple."""
    text = args.input if args.input is not None else DEFAULT_INPUT.get(
        args.layer, None if args.layer in ("linear", "sequential") else "3x3")
    if text is None:
        if isinstance(layer, Sequential) and not isinstance(layer.layers[0], Linear):
            raise ValueError('--input: give the input size (HxW or CxHxW), or an "input" entry '
                             'in the spec: {"input": [C, H, W], "layers": [...]}')
        return None
    return parse_numbers(text, "input", counts=(1, 2, 3))


def _argparse_whole_number(text: str) -> int:
    """``type=int`` of every option: a bounded whole number (see :data:`NUMBER_LIMIT`);
    argparse puts "argument --batch: " before the message."""
    try:
        return _whole_number(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _check_limits(args) -> None:
    """Option values every command shares, checked before any work starts."""
    max_terms = getattr(args, "max_terms", None)
    if max_terms is not None and max_terms < 1:
        raise ValueError(f"--max-terms must be a whole number >= 1, got {max_terms}")


def _stdout_closed() -> int:
    """The reader of standard output went away (``| head``): stop quietly.

    The standard recipe: point stdout at ``/dev/null`` so that the interpreter's
    final flush does not raise again, and exit as a process ended by SIGPIPE does.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    return 128 + getattr(signal, "SIGPIPE", 13)


def main(argv=None) -> int:
    """Run ``symbackprop`` with ``argv``; return the exit status.

    0 success, 1 a negative answer (``check``: wrong), 2 a request that breaks a rule
    (one line on stderr naming the option), 141 when standard output was closed early
    (``symbackprop derive ... | head``: nothing is printed on stderr).
    """
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit:  # --help, --version or a usage error: printed, flush it here
            sys.stdout.flush()
            raise
        try:
            _check_limits(args)
            status = args.run(args)
            sys.stdout.flush()  # a closed pipe shows here, inside the handler
            return status
        except BrokenPipeError:
            raise
        except (ValueError, TypeError, OSError) as error:  # the request broke a rule, or a file
            print(f"symbackprop {args.command}: error: {error}", file=sys.stderr)
            return 2
    except BrokenPipeError:
        return _stdout_closed()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
