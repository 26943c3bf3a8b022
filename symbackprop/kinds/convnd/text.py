"""The 1-D and 3-D convolutions in the terminal printout: their rules in words and their
output sizes."""

from __future__ import annotations

from symbackprop.core.indexing import dilated_length, unread_length
from symbackprop.kinds.convnd.rules import grad_padding
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d
from symbackprop.render.text import TEXT, TextParts, size_formula_line

#: Per number of spatial axes: the axes' letters in the size formula and the words
#: for one position along each.
_AXES = {1: (("l", "position"),),
         3: (("d", "frame"), ("h", "row"), ("w", "column"))}


def _numbers(values) -> str:
    return "x".join(map(str, values))


def forward_header(layer, names, input_shape) -> str:
    return f"{names['z']} = {names['x']} (cross-correlated with) {names['w']}" + \
        (f" + {names['b']}" if "b" in names else "")


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    x, g = names["x"], names["g"]
    stride = _numbers(layer.stride)
    dilation = "" if set(layer.dilation) == {1} else f", dilation {_numbers(layer.dilation)}"
    pads = grad_padding(layer, input_shape[2:])
    lines = [f"{names['dx']}[n,c] = sum_o correlate(pad(dilate({g}[n,o], stride {stride}), "
             f"{pads if len(pads) > 1 else pads[0]}), flip({names['w']}[o,c]){dilation}), "
             f"o over c's group (a transposed convolution)",
             f"{names['dw']}[o,c] = sum_n correlate(pad({x}[n,c], {layer.padding}), "
             f"dilate({g}[n,o], stride {stride}))"]
    if "b" in names:
        where = ", ".join(["n", *"ijk"[:layer.spatial_axes]]) if layer.spatial_axes > 1 \
            else "n, i"
        lines.append(f"{names['db']}[o] = sum of {g}[n,o,...] over {where}")
    return lines


def size_lines(layer, input_shape, output_shape) -> list[str]:
    """The output-size formula per axis with this layer's numbers, and the positions no
    window reads when the stride does not divide the padded extent."""
    lines = []
    for axis, (letter, what) in enumerate(_AXES[layer.spatial_axes]):
        size, kernel = input_shape[2 + axis], layer.kernel_size[axis]
        stride, dilation = layer.stride[axis], layer.dilation[axis]
        pads = layer.padding_pairs[axis]
        lines.append(size_formula_line(letter, (size, *pads, kernel, stride, dilation),
                                       output_shape[2 + axis]))
        missed = unread_length(size, kernel, stride, *pads, dilation)
        if missed:
            extent = size + pads[0] + pads[1]
            which = f"last padded {what} is" if missed == 1 else \
                f"last {missed} padded {what}s are"
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
        stride, dilation = _numbers(proof.stride), _numbers(proof.dilation)
        if proof.name == "grad_x":
            gaps = ", ".join(str(s - 1) for s in proof.stride)
            pairs = list(zip(proof.grad_padding[::2], proof.grad_padding[1::2]))
            pads = ", ".join(f"({before}, {after})" for before, after in pairs)
            axes = "" if len(pairs) == 1 else " per axis"
            lines += [f"  d{loss}/dx: insert {gaps} zero(s){axes} between the elements of g "
                      f"(undo stride {stride}),",
                      f"     pad it by (begin, end) = {pads}{axes} (negative crops), correlate "
                      f"with w flipped along every axis",
                      f"     (dilation {dilation}), channels swapped, summed over output "
                      f"channels: {verdict}"]
        elif proof.name == "grad_w":
            lines += [f"  d{loss}/dw: correlate the padded input with g dilated by the stride "
                      f"({stride}) as the kernel, step {dilation}: {verdict}"]
        else:
            lines += [f"  d{loss}/db: sum of g over the batch and all positions: {verdict}"]
    return lines


def proof_lines(rules, proofs, loss) -> tuple[list[str], list[str]]:
    """The element-wise sums first, the proven closed forms after."""
    if not proofs:
        return [], []
    return [], ["", "Closed forms, checked element by element against the sums above:",
                *rule_lines(proofs, loss)]


TEXT.register(Conv1d, TextParts(
    forward_header=forward_header, backward_rules=backward_rules, size_lines=size_lines,
    shows_padding=True, padding_note=" (0 marks a padding position)",
    output_axes="N x O x Lo", proof_lines=proof_lines))

TEXT.register(Conv3d, TextParts(
    forward_header=forward_header, backward_rules=backward_rules, size_lines=size_lines,
    shows_padding=True, padding_note=" (0 marks a padding position)",
    output_axes="N x O x Do x Ho x Wo", proof_lines=proof_lines))
