"""The 2-D convolution on the command line."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, numbers_argument, padding_argument
from symbackprop.kinds.conv2d.spec import Conv2d


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


COMMAND_LINE.register(Conv2d, conv2d_arguments)
