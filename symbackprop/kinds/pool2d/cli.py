"""Max and average pooling (1-D, 2-D, 3-D) on the command line: their options, and the
options of a layer."""

from __future__ import annotations

import argparse

from symbackprop.core.command_line import (
    COMMAND_LINE,
    CommandLineKind,
    numbers_argument,
    padding_argument,
    parse_numbers,
)
from symbackprop.kinds.pool2d.spec import AXIS_LETTERS, MAX_POOLS, POOLS, AvgPoolNd

#: The ``--input`` form of each number of spatial axes.
INPUT_FORM = {1: "CxL|L", 2: "HxW|CxHxW", 3: "CxDxHxW|DxHxW"}
#: The default ``--input`` of each number of spatial axes.
DEFAULT_INPUT = {1: "6", 2: "4x4", 3: "4x4x4"}


def _per_axis(dims: int, letter: str) -> str:
    """``K|KHxKW`` (2-D), ``K`` (1-D), ``K|KDxKHxKW`` (3-D): an option's form."""
    if dims == 1:
        return letter
    return f"{letter}|" + "x".join(f"{letter}{axis}" for axis in AXIS_LETTERS[dims])


def add_pool_options(parser, average: bool = False, dims: int = 2) -> None:
    shape = {1: "", 2: " (square)", 3: " (cube)"}[dims]
    each = "" if dims == 1 else f" or {_per_axis(dims, 'K').split('|')[1]}"
    parser.add_argument("--kernel", default="2", metavar=_per_axis(dims, "K"),
                        help=f"window size: K{shape}{each} (default %(default)s)")
    parser.add_argument("--stride", default=None, metavar=_per_axis(dims, "S"),
                        help=f"step of the window: {_per_axis(dims, 'S').replace('|', ' or ')} "
                             f"(default: the window size, windows side by side)")
    forms = {1: "P (both ends) or BEFORE,AFTER",
             2: "P (all sides), PH,PW, or TOP,BOTTOM,LEFT,RIGHT",
             3: "P (all sides), PD,PH,PW, or (before, after) per axis: six numbers"}[dims]
    parser.add_argument("--padding", default="0", metavar="P",
                        help=f"padding around the input: {forms}; each side at most half "
                             f"the window, K // 2 (PyTorch's rule) (default %(default)s)"
                             + ("" if average else "; padding never wins a maximum"))
    if not average:
        parser.add_argument("--dilation", default="1", metavar=_per_axis(dims, "D"),
                            help="a window reads every D-th element (default %(default)s)")
    parser.add_argument("--ceil-mode", action=argparse.BooleanOptionalAction, default=False,
                        help="round the number of windows up, as PyTorch's ceil_mode: a last "
                             "window may run past the input (it must start inside the input "
                             "or the left padding) (default: %(default)s, rounded down)")
    if average:
        parser.add_argument("--count-include-pad", action=argparse.BooleanOptionalAction,
                            default=True,
                            help="divide each window's sum by its positions inside the padded "
                                 "input, padded zeros included (a ceil_mode window clipped at "
                                 "the end), or (--no-count-include-pad) only by the input "
                                 "elements it holds (default: %(default)s, padded zeros "
                                 "included)")


def pool_from_args(layer_type):
    """``build(args)`` of ``layer_type``: the window's options, max pooling's dilation
    and average pooling's ``count_include_pad``."""
    dims = layer_type.spatial_dims
    axis_counts = (1,) if dims == 1 else (1, dims)

    def build(args):
        options = dict(kernel_size=parse_numbers(args.kernel, "kernel", counts=axis_counts),
                       stride=None if args.stride is None else
                       parse_numbers(args.stride, "stride", counts=axis_counts),
                       padding=parse_numbers(args.padding, "padding",
                                             counts=tuple(sorted({1, dims, 2 * dims}))),
                       ceil_mode=args.ceil_mode)
        if issubclass(layer_type, AvgPoolNd):
            options["count_include_pad"] = args.count_include_pad
        else:
            options["dilation"] = parse_numbers(args.dilation, "dilation", counts=axis_counts)
        return layer_type(**options)
    return build


def _padding_argument(padding) -> str:
    if len(padding) == 4:
        return padding_argument(padding)
    if len(set(padding)) == 1:
        return str(padding[0])
    if all(padding[i] == padding[i + 1] for i in range(0, len(padding), 2)):
        return numbers_argument(padding[::2])
    return numbers_argument(padding)


def pool_arguments(layer) -> list[str]:
    arguments = ["--kernel", numbers_argument(layer.kernel_size, "x")]
    if layer.stride != layer.kernel_size:
        arguments += ["--stride", numbers_argument(layer.stride, "x")]
    if any(layer.padding):
        arguments += ["--padding", _padding_argument(layer.padding)]
    if any(d != 1 for d in layer.dilation):
        arguments += ["--dilation", numbers_argument(layer.dilation, "x")]
    if layer.ceil_mode:
        arguments.append("--ceil-mode")
    if not getattr(layer, "count_include_pad", True):
        arguments.append("--no-count-include-pad")
    return arguments


_DIMENSIONS = {1: "1-D ", 2: "", 3: "3-D "}

for _kind in POOLS:
    if _kind in MAX_POOLS:
        COMMAND_LINE.register(_kind, CommandLineKind(
            help=f"{_DIMENSIONS[_kind.spatial_dims]}max pooling: each window's gradient goes to "
                 f"its maximum",
            add_options=lambda parser, dims=_kind.spatial_dims: add_pool_options(parser, dims=dims),
            build=pool_from_args(_kind), arguments=pool_arguments,
            default_input=DEFAULT_INPUT[_kind.spatial_dims],
            input_form=INPUT_FORM[_kind.spatial_dims]))
    else:
        COMMAND_LINE.register(_kind, CommandLineKind(
            help=f"{_DIMENSIONS[_kind.spatial_dims]}average pooling: each window's gradient is "
                 f"shared equally",
            add_options=lambda parser, dims=_kind.spatial_dims: add_pool_options(
                parser, average=True, dims=dims),
            build=pool_from_args(_kind), arguments=pool_arguments,
            default_input=DEFAULT_INPUT[_kind.spatial_dims],
            input_form=INPUT_FORM[_kind.spatial_dims], padding_products=True))
