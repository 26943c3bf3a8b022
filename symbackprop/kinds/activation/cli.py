"""Activations on the command line, every one from its row: one option per constant.

Nothing here names an activation: the options of an activation are the fields of its
spec class (``negative_slope`` -> ``--negative-slope``, its ``spec_aliases`` as aliases,
``--slope``), each explained by the constant's name and the formula of its row in
:data:`~symbackprop.kinds.activation.rules.ACTIVATIONS`.  A new row and spec class get
their options with no edit here.
"""

from __future__ import annotations

import dataclasses

from symbackprop.core.command_line import COMMAND_LINE, CommandLineKind
from symbackprop.kinds.activation.rules import ACTIVATIONS
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES


def option_name(field_name: str) -> str:
    """``negative_slope -> --negative-slope``."""
    return f"--{field_name.replace('_', '-')}"


def activation_options(layer_type):
    """``add_options(parser)`` of ``layer_type``: ``--FIELD VALUE`` for each of its fields
    (the constants of its row, in order)."""
    rule = ACTIVATIONS[layer_type.kind]
    choices = layer_type.choices
    fields = [field for field in dataclasses.fields(layer_type) if field.name not in choices]
    if len(fields) != len(rule.constants):
        raise ValueError(f"{layer_type.__name__} has {len(fields)} number fields but its row "
                         f"{rule.kind!r} {len(rule.constants)} constants")
    aliases = getattr(layer_type, "spec_aliases", {})

    def names_of(field) -> list:
        return [option_name(field.name), *(option_name(alias) for alias, target
                                           in aliases.items() if target == field.name)]

    def add_options(parser) -> None:
        for field, constant in zip(fields, rule.constants):
            parser.add_argument(*names_of(field), type=float, default=field.default,
                                dest=field.name, metavar=constant.upper(),
                                help=f"{constant} in {rule.formula} (default %(default)s)")
        for field in dataclasses.fields(layer_type):
            if field.name in choices:  # each value is a row: say what each computes
                rows = "; ".join(
                    f"{value}: {ACTIVATIONS[layer_type(**{field.name: value}).row].formula}"
                    for value in choices[field.name])
                parser.add_argument(*names_of(field), choices=choices[field.name],
                                    default=field.default, dest=field.name,
                                    help=f"{rows} (default %(default)s)")
    return add_options


def activation_from_args(layer_type):
    """``build(args)`` of ``layer_type``: each field from its option."""
    def build(args):
        return layer_type(**{field.name: getattr(args, field.name)
                             for field in dataclasses.fields(layer_type)})
    return build


def activation_arguments(layer) -> list[str]:
    """``[]`` for ReLU, ``["--negative-slope", "0.01"]`` for leaky ReLU: every number field,
    and each choice not at its default (``["--approximate", "tanh"]``)."""
    arguments = []
    for field in dataclasses.fields(layer):
        value = getattr(layer, field.name)
        if field.name in layer.choices:
            if value != layer.choices[field.name][0]:
                arguments += [option_name(field.name), value]
        else:
            arguments += [option_name(field.name), repr(float(value))]
    return arguments


def activation_command_line(layer_type) -> CommandLineKind:
    """The :class:`CommandLineKind` of an activation, read off its spec class and row."""
    rule = ACTIVATIONS[layer_type.kind]
    return CommandLineKind(help=f"{layer_type.title} activation, {rule.formula}",
                           add_options=activation_options(layer_type),
                           build=activation_from_args(layer_type),
                           arguments=activation_arguments, default_input="3x3")


for _layer_type in ACTIVATION_TYPES:
    COMMAND_LINE.register(_layer_type, activation_command_line(_layer_type))
