"""Max and average pooling on the command line."""

from __future__ import annotations

from symbackprop.core.command_line import COMMAND_LINE, numbers_argument, padding_argument
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d


def pool_arguments(layer) -> list[str]:
    arguments = ["--kernel", numbers_argument(layer.kernel_size, "x")]
    if layer.stride != layer.kernel_size:
        arguments += ["--stride", numbers_argument(layer.stride, "x")]
    if any(layer.padding):
        arguments += ["--padding", padding_argument(layer.padding)]
    if not getattr(layer, "count_include_pad", True):
        arguments.append("--no-count-include-pad")
    return arguments


COMMAND_LINE.register(MaxPool2d, pool_arguments)
COMMAND_LINE.register(AvgPool2d, pool_arguments)
