"""The 2-D convolution in the terminal printout: its rule in words and its output size."""

from __future__ import annotations

from symbackprop.core.indexing import dilated_length, unread_length
from symbackprop.kinds.conv2d.rules import grad_padding
from symbackprop.kinds.conv2d.spec import Conv2d
from symbackprop.render.text import TEXT, TextParts, size_formula_line


def forward_header(layer, names, input_shape) -> str:
    return f"{names['z']} = {names['x']} (cross-correlated with) {names['w']}" + \
        (f" + {names['b']}" if "b" in names else "")


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    x, g, dx = names["x"], names["g"], names["dx"]
    stride = "x".join(map(str, layer.stride))
    dilation = "" if layer.dilation == (1, 1) else \
        f", dilation {'x'.join(map(str, layer.dilation))}"
    lines = [f"{dx}[n,c] = sum_o correlate(pad(dilate({g}[n,o], stride {stride}), "
             f"{grad_padding(layer, input_shape[2:])}), rot180({names['w']}[o,c]){dilation}), "
             f"o over c's group (a transposed convolution)",
             f"{names['dw']}[o,c] = sum_n correlate(pad({x}[n,c], {layer.padding}), "
             f"dilate({g}[n,o], stride {stride}))"]
    if "b" in names:
        lines.append(f"{names['db']}[o] = sum of {g}[n,o,i,j] over n, i, j")
    return lines


def size_lines(layer, input_shape, output_shape) -> list[str]:
    """The output-size formula per axis with this layer's numbers, and the rows no
    window reads when the stride does not divide the padded extent."""
    top, bottom, left, right = layer.padding
    lines = []
    for axis, pads, what in ((0, (top, bottom), "row"), (1, (left, right), "column")):
        size, kernel = input_shape[2 + axis], layer.kernel_size[axis]
        stride, dilation = layer.stride[axis], layer.dilation[axis]
        lines.append(size_formula_line("hw"[axis], (size, *pads, kernel, stride, dilation),
                                       output_shape[2 + axis]))
        unread = unread_length(size, kernel, stride, *pads, dilation)
        if unread:
            extent = size + pads[0] + pads[1]
            which = f"last padded {what} is" if unread == 1 else f"last {unread} padded {what}s are"
            lines.append(
                f"   ({extent} - {dilated_length(kernel, dilation)}) is not a multiple of "
                f"{stride}: the {which} never read, so the gradient there is 0")
    return lines


def rule_lines(proofs, loss: str = "L") -> list[str]:
    """The closed forms with this layer's numbers and whether each was proven."""
    lines = []
    for proof in proofs:
        plural = "s" if proof.checked != 1 else ""
        verdict = (f"verified on {proof.checked} element{plural}" if proof.holds else
                   f"FAILS on {len(proof.mismatches)} of {proof.checked} elements")
        (sh, sw), (dh, dw) = proof.stride, proof.dilation
        if proof.name == "grad_x":
            top, bottom, left, right = proof.grad_padding
            lines += [f"  d{loss}/dx: insert {sh - 1} zero row(s) and {sw - 1} zero column(s) "
                      f"between the elements of g (undo stride {sh}x{sw}),",
                      f"     pad it by top {top}, bottom {bottom}, left {left}, right {right} "
                      f"(negative crops), correlate with w rotated by 180 degrees",
                      f"     (dilation {dh}x{dw}), channels swapped, summed over output channels"
                      f": {verdict}"]
        elif proof.name == "grad_w":
            lines += [f"  d{loss}/dw: correlate the padded input with g dilated by the stride "
                      f"({sh}x{sw}) as the kernel, step {dh}x{dw}: {verdict}"]
        else:
            lines += [f"  d{loss}/db: sum of g over the batch and all positions: {verdict}"]
    return lines


def proof_lines(rules, proofs, loss) -> tuple[list[str], list[str]]:
    """A single convolution lists its elements first and its proven closed forms after."""
    if not proofs:
        return [], []
    return [], ["", "Closed forms, checked element by element against the sums above:",
                *rule_lines(proofs, loss)]


TEXT.register(Conv2d, TextParts(
    forward_header=forward_header,
    backward_rules=backward_rules,
    size_lines=size_lines,
    shows_padding=True,
    padding_note=" (0 marks a padding position)",
    output_axes="N x O x Ho x Wo",
    proof_lines=proof_lines,
))
