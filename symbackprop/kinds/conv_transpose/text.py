"""The transposed convolutions in the terminal printout: the scatter rule, the output size,
the closed forms and the relations to the convolution, with this instance's numbers."""

from __future__ import annotations

from symbackprop.kinds.conv_transpose.spec import AXIS_NAMES, LAYER_TYPES
from symbackprop.render.text import TEXT, TextParts

__all__ = ["size_lines", "numbers", "scatter_rule"]


def numbers(values) -> str:
    """``(2, 2) -> "2"``, ``(2, 1) -> "2x1"``."""
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _index(dims: int, letter: str) -> str:
    return letter if dims == 1 else "(" + ",".join(f"{letter}{a}" for a in "123"[:dims]) + ")"


def scatter_rule(layer, names) -> str:
    """``z[n,o, i*s - p + k*d] += x[n,c,i] w[c,o,k]`` in the reader's names."""
    return (f"{names['z']}[n,o, i*s - p_begin + k*d] += {names['x']}[n,c,i] "
            f"{names['w']}[c,o,k]")


def forward_header(layer, names, input_shape) -> str:
    bias = f"{names['b']}[o] + " if "b" in names else ""
    return (f"{names['z']}[n,o,j] = {bias}the contributions that land on j; each input element "
            f"scatters, {scatter_rule(layer, names)} (stride {numbers(layer.stride)}, padding "
            f"{numbers(layer.padding)}, dilation {numbers(layer.dilation)})")


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    x, g, w, dx = names["x"], names["g"], names["w"], names["dx"]
    lines = [f"{dx}[n,c,i] = sum_(o,k) {g}[n,o, i*s - p_begin + k*d] {w}[c,o,k]: "
             f"a convolution of {g} with the same {w} (stride {numbers(layer.stride)}, "
             f"no flip)",
             f"{names['dw']}[c,o,k] = sum_(n,i) {x}[n,c,i] {g}[n,o, i*s - p_begin + k*d]"]
    if "b" in names:
        lines.append(f"{names['db']}[o] = sum of {g}[n,o,...] over n and every position")
    return lines


def size_lines(layer, input_shape, output_shape) -> list[str]:
    """``Lo = (L-1)*s - p_begin - p_end + d*(K-1) + output_padding + 1`` per axis."""
    lines = []
    for axis, name in enumerate(AXIS_NAMES[layer.dims]):
        letter = "L" if layer.dims == 1 else name[0].upper()
        size, kernel = input_shape[2 + axis], layer.kernel_size[axis]
        stride, dilation = layer.stride[axis], layer.dilation[axis]
        begin, end = layer.pad_begin[axis], layer.pad_end[axis]
        extra = layer.output_padding[axis]
        lines.append(
            f"{letter}o = ({letter}-1)*s - p_begin - p_end + d*(K-1) + output_padding + 1 = "
            f"({size}-1)*{stride} - {begin} - {end} + {dilation}*({kernel}-1) + {extra} + 1 = "
            f"{output_shape[2 + axis]}")
    return lines


def _verdict(proof) -> str:
    if proof.checked == 0:
        return "not proven" if not proof.holds else \
            "nothing to check here (no output_padding, no unread position)"
    plural = "s" if proof.checked != 1 else ""
    return (f"verified on {proof.checked} element{plural}" if proof.holds else
            f"FAILS on {len(proof.mismatches)} of {proof.checked} elements")


def rule_lines(proofs, loss: str = "L") -> list[str]:
    """The closed forms and relations with this layer's numbers, each with its verdict."""
    lines = []
    by_name = {proof.name: proof for proof in proofs}
    if "forward" in by_name:
        proof = by_name["forward"]
        pads = ", ".join(f"{b},{e}" for b, e in proof.grad_padding)
        lines += [f"  z: insert {numbers(tuple(s - 1 for s in proof.stride))} zero(s) (stride - 1) "
                  f"between the elements of x, pad by ({pads}) (begin,end per axis; negative "
                  f"crops),",
                  f"     correlate with w flipped (dilation {numbers(proof.dilation)}), summed "
                  f"over the input channels: {_verdict(proof)}"]
    if "grad_x" in by_name:
        lines += [f"  d{loss}/dx: pad g by p, correlate with w as it is, stride "
                  f"{numbers(by_name['grad_x'].stride)} (a convolution of g, no flip, no "
                  f"channel swap): {_verdict(by_name['grad_x'])}"]
    if "grad_w" in by_name:
        lines += [f"  d{loss}/dw: correlate the padded g with x dilated by the stride as the "
                  f"kernel, step {numbers(by_name['grad_w'].dilation)}: "
                  f"{_verdict(by_name['grad_w'])}"]
    if "grad_b" in by_name:
        lines += [f"  d{loss}/db: sum of g over the batch and every position: "
                  f"{_verdict(by_name['grad_b'])}"]
    relations = [by_name[name] for name in ("conv_backward", "conv_forward", "output_padding")
                 if name in by_name]
    if relations:
        lines += ["", "The convolution it is the transpose of, proven on this instance:"]
        for proof in relations:
            unproven = proof.checked == 0 and not proof.holds  # the statement says why
            lines.append(f"  {proof.statement}" + ("" if unproven else f": {_verdict(proof)}"))
            if proof.name == "output_padding":
                lines.append(f"     (the convolution leaves the last {numbers(proof.unread)} "
                             f"position(s) of its padded input unread = output_padding mod "
                             f"stride)")
    return lines


def proof_lines(rules, proofs, loss) -> tuple[list[str], list[str]]:
    """The elements first, the proven closed forms and relations after."""
    if not proofs:
        return rules, []
    return rules, ["", "Closed forms, checked element by element against the sums above:",
                   *rule_lines(proofs, loss)]


for _layer_type in LAYER_TYPES:
    TEXT.register(_layer_type, TextParts(
        forward_header=forward_header, backward_rules=backward_rules, size_lines=size_lines,
        output_axes="N x O x Ho x Wo", proof_lines=proof_lines))
