"""The 2-D convolution on the command line: its options, and the options of a layer."""

from __future__ import annotations

from symbackprop.core.command_line import (
    COMMAND_LINE,
    CommandLineKind,
    numbers_argument,
    padding_argument,
    parse_numbers,
    parse_padding,
)
from symbackprop.kinds.conv2d.spec import Conv2d


def add_conv2d_options(parser) -> None:
    parser.add_argument("--kernel", default="2", metavar="K|KHxKW",
                        help="kernel size: K (square) or KHxKW (default %(default)s)")
    parser.add_argument("--stride", default="1", metavar="S|SHxSW",
                        help="step of the kernel over the input: S or SHxSW (default %(default)s)")
    parser.add_argument("--padding", default="0", metavar="P",
                        help="zeros around the input: P (all sides), PH,PW, "
                             "TOP,BOTTOM,LEFT,RIGHT, valid (none) or same (stride 1: the "
                             "input's size, an odd extra at the end) (default %(default)s)")
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


def conv2d_from_args(args) -> Conv2d:
    return Conv2d(in_channels=args.in_channels, out_channels=args.out_channels,
                  kernel_size=parse_numbers(args.kernel, "kernel"),
                  stride=parse_numbers(args.stride, "stride"),
                  padding=parse_padding(args.padding, counts=(1, 2, 4)),
                  dilation=parse_numbers(args.dilation, "dilation"),
                  groups=args.groups, bias=not args.no_bias)


def conv2d_arguments(layer: Conv2d) -> list[str]:
    arguments = []
    if layer.in_channels != 1:
        arguments += ["--in-channels", str(layer.in_channels)]
    if layer.out_channels != 1:
        arguments += ["--out-channels", str(layer.out_channels)]
    arguments += ["--kernel", numbers_argument(layer.kernel_size, "x")]
    if layer.stride != (1, 1):
        arguments += ["--stride", numbers_argument(layer.stride, "x")]
    if layer.padding != (0, 0, 0, 0):
        arguments += ["--padding", padding_argument(layer.padding)]
    if layer.dilation != (1, 1):
        arguments += ["--dilation", numbers_argument(layer.dilation, "x")]
    if layer.groups != 1:
        arguments += ["--groups", str(layer.groups)]
    if not layer.bias:
        arguments.append("--no-bias")
    return arguments


COMMAND_LINE.register(Conv2d, CommandLineKind(
    help="2-D convolution (cross-correlation)", add_options=add_conv2d_options,
    build=conv2d_from_args, arguments=conv2d_arguments, default_input="3x3", input_form="HxW",
    padding_products=True))
