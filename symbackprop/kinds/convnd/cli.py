"""The 1-D and 3-D convolutions on the command line: their options, and the options of
a layer."""

from __future__ import annotations

import functools

from symbackprop.core.command_line import (
    COMMAND_LINE,
    CommandLineKind,
    numbers_argument,
    parse_numbers,
    parse_padding,
)
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d


def add_convnd_options(parser, axes: int) -> None:
    per_axis = "K" if axes == 1 else "K or KDxKHxKW"
    shape = "" if axes == 1 else " or one per axis, DxHxW"
    pads = "P (both ends) or BEGIN,END" if axes == 1 else \
        "P (every side), PD,PH,PW, or FRONT,BACK,TOP,BOTTOM,LEFT,RIGHT"
    parser.add_argument("--kernel", default="2", metavar=per_axis,
                        help=f"kernel size: one number for every axis{shape} "
                             f"(default %(default)s)")
    parser.add_argument("--stride", default="1", metavar="S",
                        help=f"step of the kernel over the input{shape} (default %(default)s)")
    parser.add_argument("--padding", default="0", metavar="P",
                        help=f"zeros around the input: {pads}, valid (none) or same (stride 1: "
                             f"the input's size, an odd extra at the end) (default %(default)s)")
    parser.add_argument("--dilation", default="1", metavar="D",
                        help=f"spacing between kernel elements, 1 = adjacent{shape} "
                             f"(default %(default)s)")
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


def convnd_from_args(args, layer_type):
    axes = layer_type.spatial_axes
    counts = tuple(sorted({1, axes}))
    return layer_type(in_channels=args.in_channels, out_channels=args.out_channels,
                      kernel_size=parse_numbers(args.kernel, "kernel", counts=counts),
                      stride=parse_numbers(args.stride, "stride", counts=counts),
                      padding=parse_padding(args.padding, counts=tuple(sorted({1, axes,
                                                                              2 * axes}))),
                      dilation=parse_numbers(args.dilation, "dilation", counts=counts),
                      groups=args.groups, bias=not args.no_bias)


def padding_text(layer) -> str:
    """The shortest ``--padding``: one number, one per axis, or every (begin, end)."""
    pairs = layer.padding_pairs
    if all(before == after for before, after in pairs):
        return numbers_argument([before for before, _ in pairs])
    return ",".join(map(str, layer.padding))


def convnd_arguments(layer) -> list[str]:
    arguments = []
    if layer.in_channels != 1:
        arguments += ["--in-channels", str(layer.in_channels)]
    if layer.out_channels != 1:
        arguments += ["--out-channels", str(layer.out_channels)]
    arguments += ["--kernel", numbers_argument(layer.kernel_size, "x")]
    if set(layer.stride) != {1}:
        arguments += ["--stride", numbers_argument(layer.stride, "x")]
    if set(layer.padding) != {0}:
        arguments += ["--padding", padding_text(layer)]
    if set(layer.dilation) != {1}:
        arguments += ["--dilation", numbers_argument(layer.dilation, "x")]
    if layer.groups != 1:
        arguments += ["--groups", str(layer.groups)]
    if not layer.bias:
        arguments.append("--no-bias")
    return arguments


COMMAND_LINE.register(Conv1d, CommandLineKind(
    help="1-D convolution (cross-correlation) over sequences: audio, text",
    add_options=functools.partial(add_convnd_options, axes=1),
    build=functools.partial(convnd_from_args, layer_type=Conv1d), arguments=convnd_arguments,
    default_input="5", input_form="L|CxL", padding_products=True))

COMMAND_LINE.register(Conv3d, CommandLineKind(
    help="3-D convolution (cross-correlation) over volumes and video",
    add_options=functools.partial(add_convnd_options, axes=3),
    build=functools.partial(convnd_from_args, layer_type=Conv3d), arguments=convnd_arguments,
    default_input="3", input_form="DxHxW|CxDxHxW", padding_products=True))
