"""Max and average pooling on the command line: their options, and the options of a layer."""

from __future__ import annotations

import argparse

from symbackprop.core.command_line import (
    COMMAND_LINE,
    CommandLineKind,
    numbers_argument,
    padding_argument,
    parse_numbers,
)
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d


def add_pool_options(parser, average: bool = False) -> None:
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


def pool_from_args(layer_type):
    """``build(args)`` of ``layer_type``: the window's options, and average pooling's
    ``count_include_pad``."""
    def build(args):
        options = dict(kernel_size=parse_numbers(args.kernel, "kernel"),
                       stride=None if args.stride is None else parse_numbers(args.stride, "stride"),
                       padding=parse_numbers(args.padding, "padding", counts=(1, 2, 4)))
        if layer_type is AvgPool2d:
            options["count_include_pad"] = args.count_include_pad
        return layer_type(**options)
    return build


def pool_arguments(layer) -> list[str]:
    arguments = ["--kernel", numbers_argument(layer.kernel_size, "x")]
    if layer.stride != layer.kernel_size:
        arguments += ["--stride", numbers_argument(layer.stride, "x")]
    if any(layer.padding):
        arguments += ["--padding", padding_argument(layer.padding)]
    if not getattr(layer, "count_include_pad", True):
        arguments.append("--no-count-include-pad")
    return arguments


COMMAND_LINE.register(MaxPool2d, CommandLineKind(
    help="max pooling: each window's gradient goes to its maximum",
    add_options=add_pool_options, build=pool_from_args(MaxPool2d), arguments=pool_arguments,
    default_input="4x4"))
COMMAND_LINE.register(AvgPool2d, CommandLineKind(
    help="average pooling: each window's gradient is shared equally",
    add_options=lambda parser: add_pool_options(parser, average=True),
    build=pool_from_args(AvgPool2d), arguments=pool_arguments, default_input="4x4",
    padding_products=True))
