"""Max and average pooling (1-D, 2-D, 3-D) in the terminal printout: the window's rule
in words, the output size (PyTorch's, ceil_mode and dilation included), and how
:class:`~symbackprop.kinds.pool2d.rules.WindowMax` and
:class:`~symbackprop.kinds.pool2d.rules.IsWindowMax` print themselves."""

from __future__ import annotations

from symbackprop.core.indexing import unread_length
from symbackprop.core.naming import element_symbol
from symbackprop.kinds.pool2d.rules import (
    ROUTING_STATEMENT,
    SHARE_STATEMENT,
    IsWindowMax,
    WindowMax,
    tiles_input,
)
from symbackprop.kinds.pool2d.spec import MAX_POOLS, POOLS, pooled_length
from symbackprop.render.latex_names import free_letters, name_letters
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

#: The names of one axis in the size lines: output, input, padding before and after,
#: window, stride, dilation; and what one step along it is called.
_AXES = {
    1: (("Lo", "L", "left", "right", "K", "s", "d", "position"),),
    2: (("Ho", "H", "top", "bottom", "KH", "sh", "dh", "row"),
        ("Wo", "W", "left", "right", "KW", "sw", "dw", "column")),
    3: (("Do", "D", "front", "back", "KD", "sd", "dd", "slice"),
        ("Ho", "H", "top", "bottom", "KH", "sh", "dh", "row"),
        ("Wo", "W", "left", "right", "KW", "sw", "dw", "column")),
}


def _size_line(layer, axis, size, result) -> list[str]:
    """PyTorch's output size with dilation and ceil_mode, its numbers and its value."""
    out, name, before_name, after_name, kernel_name, stride_name, dilation_name, what = \
        _AXES[layer.spatial_dims][axis]
    kernel, stride, before, after, dilation = layer.axis_values(axis)
    rounding = "ceil" if layer.ceil_mode else "floor"
    general = f"{rounding}(({name} + {before_name} + {after_name} - " \
              f"{dilation_name}*({kernel_name}-1) - 1) / {stride_name}) + 1"
    numbers = f"{rounding}(({size} + {before} + {after} - {dilation}*({kernel}-1) - 1) / " \
              f"{stride}) + 1"
    rounded = pooled_length(size, kernel, stride, before, after, dilation, False)
    if layer.ceil_mode:
        span = size + before + after - dilation * (kernel - 1) - 1
        rounded = -(-span // stride) + 1
    lines = [f"{out} = {general} = {numbers} = {rounded}"]
    if rounded != result:
        lines.append(f"   ceil_mode: window {rounded} would start at {(rounded - 1) * stride} >= "
                     f"{name} + {before_name} = {size + before}, in the right padding: dropped "
                     f"(PyTorch's rule), so {out} = {result}")
    elif layer.ceil_mode and result != pooled_length(size, kernel, stride, before, after,
                                                     dilation, False):
        reach = (result - 1) * stride + dilation * (kernel - 1) + 1
        past = reach - (size + before + after)
        lines.append(f"   ceil_mode: the last window starts inside and runs {past} {what}(s) past "
                     f"the padded input, which it does not read")
    return lines


def size_lines(layer, input_shape, output_shape) -> list[str]:
    """``Ho = floor((H + top + bottom - KH) / sh) + 1 = ...``, and which rows no window reads."""
    lines = []
    for axis, names in enumerate(_AXES[layer.spatial_dims]):
        what = names[-1]
        size, result = input_shape[2 + axis], output_shape[2 + axis]
        kernel, stride, before, after, dilation = layer.axis_values(axis)
        extent = layer.extent[axis]
        if layer.new_options:
            lines += _size_line(layer, axis, size, result)
        else:
            lines.append(size_formula_line("hw"[axis], (size, before, after, kernel, stride, 1),
                                           result, dilated=False))
        if dilation > 1:
            lines.append(f"   dilation {dilation}: a window reads every {ordinal(dilation)} "
                         f"{what}, {kernel} of them spanning {extent}")
        if stride < extent and result > 1:
            lines.append(f"   stride {stride} < window {extent}: neighbouring windows share "
                         f"{extent - stride} {what}(s), whose gradient shares add up"
                         if dilation == 1 else
                         f"   stride {stride} < window span {extent}: neighbouring windows may "
                         f"share {what}s, whose gradient shares add up")
        elif stride > extent and result > 1:
            lines.append(f"   stride {stride} > window {extent}: {stride - extent} {what}(s) "
                         f"between windows are never read, so the gradient there is 0")
        if layer.new_options:
            unread = max(0, size + before + after - ((result - 1) * stride + extent))
        else:
            unread = unread_length(size, kernel, stride, before, after)
        if unread:
            lines.append(f"   the last {unread} padded {what}(s) are past the last window: never "
                         f"read, so the gradient there is 0")
    return lines


def ordinal(number: int) -> str:
    """``2 -> "2nd"``, ``3 -> "3rd"``, ``4 -> "4th"``, ``11 -> "11th"``."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(
        number % 10, "th")
    return f"{number}{suffix}"


def _window_words(layer) -> str:
    window = "x".join(map(str, layer.kernel_size)) + ("-wide" if layer.spatial_dims == 1 else "")
    if any(d != 1 for d in layer.dilation):
        dilations = sorted(set(layer.dilation))
        every = ordinal(dilations[0]) if len(dilations) == 1 else \
            "x".join(map(str, layer.dilation)) + "-th"
        window += f" window (dilation {'x'.join(map(str, layer.dilation))}: every {every} " \
                  f"element)"
        return window
    return window + " window"


def max_forward(layer, names, input_shape) -> str:
    return f"{names['z']} = the largest element of each {_window_words(layer)} of " \
           f"{names['x']} (padding never wins)"


def _kernel_product(layer) -> str:
    """``KH*KW = 4``, ``K = 3``, ``KD*KH*KW = 8``."""
    names = [axis[4] for axis in _AXES[layer.spatial_dims]]
    size = 1
    for kernel in layer.kernel_size:
        size *= kernel
    return f"{'*'.join(names)} = {size}"


def average_forward(layer, names, input_shape) -> str:
    if layer.count_include_pad and layer.ceil_mode:
        divisor = (f"divided by its positions inside the padded input: {_kernel_product(layer)}"
                   + (", padded zeros included (shown as 0)" if any(layer.padding) else "")
                   + ", fewer for a ceil_mode window past it")
    elif layer.count_include_pad:
        divisor = f"divided by {_kernel_product(layer)}" + \
            (" (padded zeros count, shown as 0)" if any(layer.padding) else "")
    else:
        divisor = "divided by the number of input elements in the window (padding left out)"
    return f"{names['z']} = the mean of each {_window_words(layer)} of {names['x']}, " \
           f"{divisor}"


def _window_index(layer) -> str:
    return {1: "i", 2: "ij", 3: "ijk"}[layer.spatial_dims]


def max_backward(layer, names, input_shape, output_shape) -> list[str]:
    x, z, g, dx = names["x"], names["z"], names["g"], names["dx"]
    w = _window_index(layer)
    a = {1: "a", 2: "ab", 3: "abc"}[layer.spatial_dims]
    # an input named a reads a_pq, not a_ab
    spare = free_letters((w, a), name_letters((x, z, g)))
    w, a = ("".join(spare.get(char, char) for char in text) for text in (w, a))
    return [f"{dx} = {rule_text(layer, names)}: the whole {g}_{w} goes to the element that won "
            f"window {w}",
            f"[{x}_{a} = argmax {z}_{w}] is 1 when {x}_{a} is the first maximum of {z}_{w}'s "
            f"window in row-major order",
            "   (ties go to the first; padding never wins), else 0; overlapping windows add"]


def average_backward(layer, names, input_shape, output_shape) -> list[str]:
    g, dx = names["g"], names["dx"]
    w = _window_index(layer)
    size = 1
    for kernel in layer.kernel_size:
        size *= kernel
    if layer.count_include_pad and layer.ceil_mode:
        share = f"{g}_{w} / D_{w}, D_{w} = its positions inside the padded input ({size}, " \
                f"fewer for a ceil_mode window past it)"
    elif layer.count_include_pad or not any(layer.padding) and not layer.ceil_mode:
        share = f"{g}_{w} / {size}"
    else:
        share = f"{g}_{w} / (input elements in the window)"
    lines = [f"{dx} = {rule_text(layer, names)}: every input element of a window receives an "
             f"equal share {share}; overlapping windows add"]
    if tiles_input(layer):
        kernel_h, kernel_w = layer.kernel_size
        tail = unread_length(input_shape[2], kernel_h, kernel_h, 0, 0) or \
            unread_length(input_shape[3], kernel_w, kernel_w, 0, 0)
        lines.append(f"windows tile the input: {dx} = kron({g}, ones({kernel_h}, "
                     f"{kernel_w})) / {kernel_h * kernel_w}"
                     + (", then zeros past the last window" if tail else ""))
    return lines


def _verdict(proof) -> str:
    return f"verified on {proof.checked} elements" if proof.holds else \
        f"FAILS on {len(proof.mismatches)} of {proof.checked} elements"


def pooling_proofs(rules, proofs, loss):
    """Each proven closed form says so: the Kronecker form on its own line, the
    element-wise rule (routing to the argmax, or the equal share) on a closing line."""
    closing = []
    for proof in proofs:
        if proof.statement in (ROUTING_STATEMENT, SHARE_STATEMENT):
            closing += ["", f"closed form {proof.statement}: {_verdict(proof)}"]
        else:
            rules = [rule + f" ({_verdict(proof)})" if "kron(" in rule else rule
                     for rule in rules]
    return rules, closing


_OUTPUT_AXES = {1: "N x C x Lo", 2: "N x C x Ho x Wo", 3: "N x C x Do x Ho x Wo"}

for _kind in POOLS:
    if _kind in MAX_POOLS:
        TEXT.register(_kind, TextParts(
            forward_header=max_forward, backward_rules=max_backward, size_lines=size_lines,
            output_axes=_OUTPUT_AXES[_kind.spatial_dims], proof_lines=pooling_proofs))
    else:
        TEXT.register(_kind, TextParts(
            forward_header=average_forward, backward_rules=average_backward, size_lines=size_lines,
            shows_padding=True, output_axes=_OUTPUT_AXES[_kind.spatial_dims],
            proof_lines=pooling_proofs))
