"""What the commands share: their registry, the layer kinds' options, the instance.

:func:`command` registers a command (:mod:`symbackprop.cli.commands` holds them); each
layer kind's own options come from its :class:`~symbackprop.core.command_line.CommandLineKind`
(``kinds/<kind>/cli.py``), read through :data:`LAYER_OPTIONS`; the options every command
of a kind shares (``--input``, ``--batch``, notation, derivation) are here.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Mapping
from dataclasses import dataclass

from symbackprop.core.command_line import (
    COMMAND_LINE,
    INPUT_FORMS,
    CommandLineKind,
    parse_numbers,
)
from symbackprop.core.layers import Sequential
from symbackprop.core.registry import KINDS

__all__ = ["command", "COMMANDS", "LAYER_OPTIONS", "LayerKind", "layer_kind",
           "add_instance_options", "add_notation_options", "add_derivation_options",
           "derivation_from_args", "layer_from_args", "input_size_from_args"]

COMMANDS = {}


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
        COMMANDS[name] = (help, function)
        return function
    return decorate


class _LayerOptions(Mapping):
    """Kind name -> its :class:`~symbackprop.core.command_line.CommandLineKind`: every kind
    registered by name (:data:`~symbackprop.core.registry.KINDS`) that has a command
    line, in the order of registration.  A view: a kind registered later is in it."""

    def __getitem__(self, name: str) -> CommandLineKind:
        layer_type = KINDS[name]
        if layer_type not in COMMAND_LINE.table:
            raise KeyError(name)
        return COMMAND_LINE.table[layer_type]

    def __iter__(self):
        return (name for name, layer_type in KINDS.items() if layer_type in COMMAND_LINE.table)

    def __len__(self) -> int:
        return sum(1 for _ in self)


#: layer kind name -> its :class:`~symbackprop.core.command_line.CommandLineKind`: help,
#: ``add_options(parser)``, ``build(args)``, ``default_input``, ...
LAYER_OPTIONS = _LayerOptions()


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
    """The :class:`LayerKind` of ``name``: its entry, and the layer its default options build."""
    entry = LAYER_OPTIONS[name]
    if KINDS[name] is Sequential:  # a chain may hold a layer of any other kind
        kinds = [layer_kind(other) for other in LAYER_OPTIONS if KINDS[other] is not Sequential]
        return LayerKind(name, tuple(dict.fromkeys(p for k in kinds for p in k.parameter_names)),
                         any(k.padding_products for k in kinds), entry.input_form)
    probe = argparse.ArgumentParser(add_help=False)
    entry.add_options(probe)
    layer = entry.build(probe.parse_args([]))
    return LayerKind(name, tuple(layer.parameter_names), entry.padding_products,
                     entry.input_form)


def add_instance_options(parser, kind: LayerKind | None = None):
    """Options naming one instance of a layer: input size and batch."""
    if kind is None:
        form, default = "HxW|CxHxW|F", "default 3x3"
    else:
        entry = LAYER_OPTIONS[kind.name]
        form = kind.input
        default = entry.default_input_help if entry.default_input is None \
            else f"default {entry.default_input}"
    parser.add_argument("--input", default=None, metavar=form,
                        help=f"size of one input sample: {INPUT_FORMS[form]} ({default})")
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


def layer_from_args(args):
    """The layer the parsed command line names."""
    return LAYER_OPTIONS[args.layer].build(args)


def input_size_from_args(args, layer):
    """The ``input_size`` the command line names for ``layer``: an int or a tuple."""
    text = args.input if args.input is not None else LAYER_OPTIONS[args.layer].default_input
    if text is None:
        # A kind without a default input decides it (a linear layer's in_features); a
        # chain's first layer must be such a kind when neither --input nor the spec says.
        if isinstance(layer, Sequential) and COMMAND_LINE[layer.layers[0]].default_input \
                is not None:
            raise ValueError('--input: give the input size (HxW or CxHxW), or an "input" entry '
                             'in the spec: {"input": [C, H, W], "layers": [...]}')
        return None
    return parse_numbers(text, "input", counts=(1, 2, 3, 4))


