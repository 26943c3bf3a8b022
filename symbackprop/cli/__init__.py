"""The ``symbackprop`` command line: ``symbackprop COMMAND LAYER [options]``.

Each command (``derive``, ...) is registered with :func:`command`
(:mod:`symbackprop.cli.commands`); each layer kind registers its own options in
:data:`~symbackprop.core.command_line.COMMAND_LINE` (``kinds/<kind>/cli.py``), and the
program builds one parser per command and kind from that table without naming a kind
(:data:`LAYER_OPTIONS`).  A command offers, per kind, only the options that mean
something for it (:class:`LayerKind`).  Every ``ValueError`` a
layer or a stage raises becomes one line on stderr and exit status 2.  While a
command runs with standard error on a terminal, long stages show a progress bar
there (:mod:`symbackprop.core.progress`).
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys

import symbackprop.kinds  # noqa: F401  (registers every kind: the parsers list them)
from symbackprop.cli.options import (
    COMMANDS,
    LAYER_OPTIONS,
    LayerKind,
    command,
    input_size_from_args,
    layer_from_args,
    layer_kind,
)
from symbackprop.core.command_line import (
    NUMBER_LIMIT,
    parse_numbers,
    parse_size,
    parse_whole_number,
    whole_number,
)

__all__ = ["main", "command", "LAYER_OPTIONS", "NUMBER_LIMIT", "parse_numbers", "parse_size",
           "parse_whole_number", "input_size_from_args", "layer_from_args", "LayerKind",
           "layer_kind", "build_parser"]


EPILOG = """\
start with:
  symbackprop derive conv2d --kernel 2 --padding 1 --input 3x3
  symbackprop COMMAND --help          the layer kinds a command takes
  symbackprop COMMAND LAYER --help    the options of that layer kind, with their defaults
the tutorial: examples/tutorial.ipynb"""


def build_parser(only: tuple | None = None) -> argparse.ArgumentParser:
    """The program's parser: every command, and under each every layer kind with its options.

    ``only=(command, kind)``: the parser one command line needs, the same for it: the
    other commands are listed without their layer kinds, and of this command's kinds only
    ``kind`` gets its options (``None``: none does, for ``COMMAND --help``).  Building all
    of them, about 40 kinds under 7 commands, takes a quarter of a second per call.
    """
    from symbackprop._version import __version__
    from symbackprop.cli import commands  # noqa: F401  (registers the commands)

    parser = argparse.ArgumentParser(
        prog="symbackprop",
        description="Derive the backward pass of convolutional-network layers symbolically.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"symbackprop {__version__}",
                        help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, function) in COMMANDS.items():
        command_parser = subparsers.add_parser(name, help=help_text, description=help_text)
        if only is not None and name != only[0]:
            continue  # not the command asked for: listed, never parsed
        command_parser.register("type", int, _argparse_whole_number)
        if hasattr(function, "standalone_options"):
            # A command that takes no layer (an exercise): its own arguments only.
            function.standalone_options(command_parser)
            command_parser.set_defaults(run=_with_progress(function))
            continue
        # Arguments before LAYER (check-impl's FILE.py:FUNCTION).
        getattr(function, "command_options", lambda p: None)(command_parser)
        layers = command_parser.add_subparsers(dest="layer", required=True, metavar="LAYER",
                                               parser_class=_LayerParser)
        listed = getattr(function, "kinds", LAYER_OPTIONS)
        for kind, entry in LAYER_OPTIONS.items():
            # A kind the command does not take is left out of its listing (argparse lists
            # only sub-parsers given a help), but still parsed: the command then refuses
            # it in one line that says why and what to use instead.
            shown = {"help": entry.help} if kind in listed else {}
            layer_parser = layers.add_parser(kind, **shown,
                                             description=f"{help_text}; {kind}: {entry.help}")
            if only is not None and kind != only[1]:
                continue  # not the kind asked for: listed, never parsed
            # Every ``type=int`` option reads a bounded whole number with a clear message.
            layer_parser.register("type", int, _argparse_whole_number)
            entry.add_options(layer_parser)
            getattr(function, "options", lambda p, k: None)(layer_parser, layer_kind(kind))
            layer_parser.set_defaults(run=_with_progress(function))
    return parser


def _asked_for(argv) -> tuple | None:
    """``(command, kind)`` a command line names (kind ``None`` if it names none), or
    ``None`` when its first word is no command (the whole parser then says why)."""
    words = list(argv)
    if not words or words[0] not in COMMANDS:
        return None
    return words[0], next((word for word in words[1:] if word in LAYER_OPTIONS), None)


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


def _argparse_whole_number(text: str) -> int:
    """``type=int`` of every option: a bounded whole number (see :data:`NUMBER_LIMIT`);
    argparse puts "argument --batch: " before the message."""
    try:
        return whole_number(text)
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
        parser = build_parser(_asked_for(sys.argv[1:] if argv is None else argv))
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
