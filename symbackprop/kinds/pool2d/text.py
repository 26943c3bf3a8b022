"""Max and average pooling in the terminal printout: the window's rule in words, the
output size, and how :class:`~symbackprop.kinds.pool2d.rules.WindowMax` and
:class:`~symbackprop.kinds.pool2d.rules.IsWindowMax` print themselves."""

from __future__ import annotations

from symbackprop.core.indexing import unread_length
from symbackprop.core.naming import element_symbol
from symbackprop.kinds.pool2d.rules import IsWindowMax, WindowMax, tiles_input
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d
from symbackprop.render.text import (
    TEXT,
    TextParts,
    TextPrinter,
    rule_text,
    size_formula_line,
)


def _window_max_text(printer, expr) -> str:
    """``max(x11, x12, x21, x22)``."""
    return "max(" + ", ".join(printer._print(element) for element in expr.args[0]) + ")"


def _is_window_max_text(printer, expr) -> str:
    """``[x22 = argmax z11]``: 1 when x22 is the first maximum of z11's window."""
    output = element_symbol(printer.window_output, tuple(int(i) for i in expr.args[2]))
    return f"[{printer._print(expr.candidate)} = argmax {printer._print(output)}]"


# The text printer learns the pooling functions from here: it names no kind.
TextPrinter.print_function(WindowMax, _window_max_text)
TextPrinter.print_function(IsWindowMax, _is_window_max_text)


def size_lines(layer, input_shape, output_shape) -> list[str]:
    """``Ho = floor((H + top + bottom - KH) / sh) + 1 = ...``, and which rows no window reads."""
    top, bottom, left, right = layer.padding
    lines = []
    for axis, pads, what in ((0, (top, bottom), "row"), (1, (left, right), "column")):
        size, result = input_shape[2 + axis], output_shape[2 + axis]
        kernel, stride = layer.kernel_size[axis], layer.stride[axis]
        lines.append(size_formula_line("hw"[axis], (size, *pads, kernel, stride, 1), result,
                                       dilated=False))
        if stride < kernel and result > 1:
            lines.append(f"   stride {stride} < window {kernel}: neighbouring windows share "
                         f"{kernel - stride} {what}(s), whose gradient shares add up")
        elif stride > kernel and result > 1:
            lines.append(f"   stride {stride} > window {kernel}: {stride - kernel} {what}(s) "
                         f"between windows are never read, so the gradient there is 0")
        unread = unread_length(size, kernel, stride, *pads)
        if unread:
            lines.append(f"   the last {unread} padded {what}(s) are past the last window: never "
                         f"read, so the gradient there is 0")
    return lines


def max_forward(layer, names, input_shape) -> str:
    kernel_h, kernel_w = layer.kernel_size
    return f"{names['z']} = the largest element of each {kernel_h}x{kernel_w} window of " \
           f"{names['x']} (padding never wins)"


def average_forward(layer, names, input_shape) -> str:
    kernel_h, kernel_w = layer.kernel_size
    divisor = (f"divided by KH*KW = {kernel_h * kernel_w}" +
               (" (padded zeros count, shown as 0)" if any(layer.padding) else "")
               if layer.count_include_pad else
               "divided by the number of input elements in the window (padding left out)")
    return f"{names['z']} = the mean of each {kernel_h}x{kernel_w} window of {names['x']}, " \
           f"{divisor}"


def max_backward(layer, names, input_shape, output_shape) -> list[str]:
    x, z, g, dx = names["x"], names["z"], names["g"], names["dx"]
    return [f"{dx} = {rule_text(layer, names)}: the whole {g}_ij goes to the element that won "
            f"window ij",
            f"[{x}_ab = argmax {z}_ij] is 1 when {x}_ab is the first maximum of {z}_ij's "
            f"window in row-major order",
            "   (ties go to the first; padding never wins), else 0; overlapping windows add"]


def average_backward(layer, names, input_shape, output_shape) -> list[str]:
    g, dx = names["g"], names["dx"]
    kernel_h, kernel_w = layer.kernel_size
    share = f"{g}_ij / {kernel_h * kernel_w}" if layer.count_include_pad or \
        not any(layer.padding) else f"{g}_ij / (input elements in the window)"
    lines = [f"{dx} = {rule_text(layer, names)}: every input element of a window receives an "
             f"equal share {share}; overlapping windows add"]
    if tiles_input(layer):
        tail = unread_length(input_shape[2], kernel_h, kernel_h, 0, 0) or \
            unread_length(input_shape[3], kernel_w, kernel_w, 0, 0)
        lines.append(f"windows tile the input: {dx} = kron({g}, ones({kernel_h}, "
                     f"{kernel_w})) / {kernel_h * kernel_w}"
                     + (", then zeros past the last window" if tail else ""))
    return lines


def average_proofs(rules, proofs, loss):
    """The proven Kronecker form says so on its own line."""
    for proof in proofs:
        verdict = f"verified on {proof.checked} elements" if proof.holds else \
            f"FAILS on {len(proof.mismatches)} of {proof.checked} elements"
        rules = [rule + f" ({verdict})" if "kron(" in rule else rule for rule in rules]
    return rules, []


TEXT.register(MaxPool2d, TextParts(
    forward_header=max_forward, backward_rules=max_backward, size_lines=size_lines,
    output_axes="N x C x Ho x Wo"))
TEXT.register(AvgPool2d, TextParts(
    forward_header=average_forward, backward_rules=average_backward, size_lines=size_lines,
    shows_padding=True, output_axes="N x C x Ho x Wo", proof_lines=average_proofs))
