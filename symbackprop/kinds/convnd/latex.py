"""The 1-D and 3-D convolutions in the LaTeX document: their general formulas, output
sizes, the closed forms proven on the instance and, for small one-channel instances,
the matrix view ``z = C x`` with ``dL/dx = C^T g`` checked element by element."""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.naming import flat
from symbackprop.core.operators import CHAIN_RULES, TransposedConvolution
from symbackprop.core.rules import PROOF_TERMS, proofs_for
from symbackprop.kinds.conv2d.figures import MATRIX_FIGURE_LIMIT, unrolled_figures
from symbackprop.kinds.convnd.rules import grad_padding
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d
from symbackprop.render.latex import (
    DEFAULT_DETAIL,
    LATEX,
    LatexParts,
    LayerLatexPrinter,
    _layer_document,
    size_formula_latex,
)

#: Largest instance (outputs and inputs) whose matrix C the document prints.
MATRIX_SIZE = 12
_AXIS_LETTERS = {1: "l", 3: "dhw"}


def _index(stride, dilation, out, offset, base):
    """``s(i-1) + d(m-1) + 1`` with the numbers, as SymPy writes it."""
    return sympy.latex(sympy.expand((out - base) * stride + (offset - base) * dilation + base),
                       order="lex")


def general(layer, names, base: int = 1) -> dict:
    x, z, g, w, loss = names["x"], names["z"], names["g"], names["w"], names["L"]
    axes = layer.spatial_axes
    outs = sympy.symbols("i j k" if axes == 3 else "i", integer=True)
    offsets = sympy.symbols("m p q" if axes == 3 else "m", integer=True)
    outs, offsets = (outs if axes == 3 else (outs,)), (offsets if axes == 3 else (offsets,))
    positions = ",".join(_index(s, d, i, m, base) for s, d, i, m
                         in zip(layer.stride, layer.dilation, outs, offsets))
    out_text, offset_text = ",".join(map(str, outs)), ",".join(map(str, offsets))
    bias = f"{names['b']}_{{o}} + " if "b" in names else ""
    target = "a" if axes == 1 else r"\mathbf{a}"
    forward = (rf"{z}_{{n,o,{out_text}}} = {bias}\sum_{{c}} \sum_{{{offset_text}}} "
               rf"{w}_{{o,c,{offset_text}}}\, \tilde{{{x}}}_{{n,c,{positions}}}")
    backward = (rf"\frac{{\partial {loss}}}{{\partial {w}_{{o,c,{offset_text}}}}} = "
                rf"\sum_{{n}} \sum_{{{out_text}}} {g}_{{n,o,{out_text}}}\, "
                rf"\tilde{{{x}}}_{{n,c,{positions}}}, \qquad "
                rf"\frac{{\partial {loss}}}{{\partial \tilde{{{x}}}_{{n,c,{target}}}}} = "
                rf"\sum_{{o}} \sum_{{{out_text},{offset_text}:\ ({positions}) = {target}}} "
                rf"{g}_{{n,o,{out_text}}}\, {w}_{{o,c,{offset_text}}}")
    return {"forward": forward, "backward": backward}


def notes(layer) -> list[str]:
    axes = layer.spatial_axes
    pads = ", ".join(f"({before}, {after})" for before, after in layer.padding_pairs)
    text = [rf"$\tilde{{x}}$ is $x$ with zero padding (begin, end) = {pads} "
            + ("along its axis" if axes == 1 else "along the depth, height and width axes")
            + "; a product with a padding zero is written $0\\,w$ and adds nothing."]
    if layer.groups > 1:
        text.append(rf"Output channel $o$ sees only the {layer.group_in_channels} input "
                    rf"channels of its group ($c$ is the $c$-th channel of group "
                    rf"$\lfloor o / {layer.group_out_channels} \rfloor$).")
    return text


def size_rows(layer, input_shape, output_shape) -> list[str]:
    return [size_formula_latex(letter, (input_shape[2 + axis], *layer.padding_pairs[axis],
                                        layer.kernel_size[axis], layer.stride[axis],
                                        layer.dilation[axis]), output_shape[2 + axis])
            for axis, letter in enumerate(_AXIS_LETTERS[layer.spatial_axes])]


def _verdict(proof) -> str:
    if proof is None:
        return (rf"\emph{{Quoted, not re-proven here: the instance has more than "
                rf"{PROOF_TERMS:,} products.}}").replace(",", "{,}")
    if proof.holds:
        where = f"on all {proof.checked} elements" if proof.checked > 1 else "on its element"
        return rf"\textbf{{Verified:}} equal to the sums above {where}."
    return (rf"{{\color{{red}}\textbf{{NOT verified:}} it differs from the sums above on "
            rf"{len(proof.mismatches)} of {proof.checked} elements.}}")


def _closed_forms(derivation, printer) -> dict:
    layer = derivation.layer
    name = printer.name
    x, w, g, loss = name("x"), name("w"), name("g"), name("L")
    proofs = proofs_for(derivation)
    by_name = {proof.name: proof for proof in proofs} if proofs else {}
    stride, dilation = (str(values[0]) if len(values) == 1 else f"({', '.join(map(str, values))})"
                        for values in (layer.stride, layer.dilation))
    pads = ", ".join(f"({before}, {after})" for before, after
                     in grad_padding(layer, derivation.input_shape[2:]))
    along = "" if layer.spatial_axes == 1 else " along every axis"
    rows = [
        (rf"Undo the stride: $\operatorname{{dil}}_s$ puts $s - 1$ zeros between neighbours of "
         rf"${g}${along} ($s = {stride}$). Pad by (begin, end) = {pads} "
         r"(the kernel's reach minus the forward padding, plus the positions no window reads; "
         r"negative crops), flip the kernel along every spatial axis and correlate with "
         rf"dilation $d = {dilation}$, channels swapped (a transposed convolution):",
         rf"\frac{{\partial {loss}}}{{\partial {x}_{{n,c}}}} = \sum_{{o}} "
         rf"\operatorname{{corr}}_d\bigl(\operatorname{{pad}}(\operatorname{{dil}}_s "
         rf"{g}_{{n,o}}),\ \operatorname{{flip}}\, {w}_{{o,c}}\bigr)", by_name.get("grad_x")),
        (r"The weight gradient correlates the padded input with the stride-dilated upstream "
         r"gradient as the kernel, stepping by the dilation $d$:",
         rf"\frac{{\partial {loss}}}{{\partial {w}_{{o,c}}}} = \sum_{{n}} "
         rf"\operatorname{{corr}}_{{\text{{step }} d}}\bigl(\tilde{{{x}}}_{{n,c}},\ "
         rf"\operatorname{{dil}}_s {g}_{{n,o}}\bigr)", by_name.get("grad_w")),
    ]
    if layer.bias:
        rows.append(("The bias gradient sums the upstream gradient:",
                     rf"\frac{{\partial {loss}}}{{\partial {name('b')}_{{o}}}} = "
                     rf"\sum_{{n}} \sum_{{\text{{positions}}}} {g}_{{n,o,\dots}}",
                     by_name.get("grad_b")))
    body = []
    for words, formula, proof in rows:
        body += [words, r"\[", formula, r"\]", _verdict(proof if proofs else None), ""]
    return {"title": "Closed forms, proven on this instance", "body": "\n".join(body)}


def _matrix_view(derivation, printer) -> dict | None:
    """``z = C x`` for a small one-channel instance (3-D: flattened row-major), and
    ``dL/dx = C^T g`` checked."""
    if derivation.input_shape[:2] != (1, 1) or derivation.output_shape[:2] != (1, 1):
        return None
    outputs, inputs = flat(derivation.z), flat(derivation.x)
    if max(len(outputs), len(inputs)) > MATRIX_SIZE:
        return None
    matrix = sympy.Matrix(len(outputs), len(inputs),
                          lambda r, c: sympy.diff(outputs[r], inputs[c]))
    g = sympy.Matrix(flat(derivation.g))
    holds = all(sympy.expand(value) == 0 for value
                in matrix.T * g - sympy.Matrix(flat(derivation.grad_x)))

    def column(values):
        return r"\begin{bmatrix}" + r" \\ ".join(printer.doprint(v) for v in values) + \
            r"\end{bmatrix}"

    cells = r" \\ ".join(" & ".join("0" if value == 0 else printer.doprint(value)
                                    for value in matrix.row(r)) for r in range(matrix.rows))
    z_symbols = [sympy.Symbol(f"z[{','.join(map(str, index))}]", real=True)
                 for index in np.ndindex(*derivation.output_shape)]
    bias = f" + {printer.name('b')}" if derivation.layer.bias else ""
    name = printer.name
    verdict = (rf"\textbf{{Verified:}} $C^{{\top}} {name('g')}$ equals the element-wise "
               rf"$\partial {name('L')}/\partial {name('x')}$ above on all {len(inputs)} "
               r"elements." if holds else
               r"{\color{red}\textbf{NOT verified:} $C^{\top} g$ differs from the sums above.}")
    body = [
        rf"The convolution is a matrix product: row $i$ of $C = \partial {name('z')}/\partial "
        rf"{name('x')}$ holds the kernel where window $i$ reads the input (padding and stride "
        r"decide where), so the backward pass multiplies by the same matrix transposed---the "
        r"transposed convolution." + ("" if derivation.layer.spatial_axes == 1 else
                                       r" Here $z$ and $x$ are flattened in row-major order."),
        r"\[", f"{column(z_symbols)} = \\begin{{bmatrix}}{cells}\\end{{bmatrix}} "
        f"{column(inputs)}{bias}", r"\]",
        r"\[", rf"\frac{{\partial {name('L')}}}{{\partial \mathbf{{{name('x')}}}}} = "
               rf"C^{{\top}} \mathbf{{{name('g')}}}", r"\]", verdict]
    return {"title": r"The matrix view $z = C x$", "body": "\n".join(body)}


def sections(derivation, printer) -> list[dict]:
    found = [_closed_forms(derivation, printer), _matrix_view(derivation, printer)]
    return [section for section in found if section is not None]


# A chain's step delta^{l-1} from delta^l: a transposed convolution, as in 2-D.
def chain_rule(layer, names):
    """``g`` sent back through ``w``: a transposed convolution."""
    return TransposedConvolution(names["g"], names["w"])


def chain_step(step, printer) -> str:
    """``delta^{[l-1]}_c = sum_o corr(pad(dil_s delta^{[l]}_o), flip w_{o,c})``: a chain's
    step back through the layer (flipped along every axis, not rotated in a plane)."""
    g, w = printer.name(step.names["g"]), printer.name(step.names["w"])
    return (rf"{printer.name(step.names['grad_x'])}_{{c}} = \sum_o \corr\bigl("
            rf"\operatorname{{pad}}(\operatorname{{dil}}_s {g}_{{o}}),\ "
            rf"\operatorname{{flip}}\, {w}_{{o,c}}\bigr)")


def document(derivation, index_base: int = 1, names: dict | None = None,
             show_padding: bool = True, detail: str = DEFAULT_DETAIL) -> tuple[str, dict]:
    """The layer document of ``layers.tex.j2`` (with the sections above) through
    ``templates/convnd/derivation.tex.j2``, which adds ``C`` and ``C^T`` drawn as grids."""
    _, context = _layer_document(derivation, index_base, names, show_padding, detail)
    printer = LayerLatexPrinter(derivation.notation(index_base=index_base, names=names))
    context["matrix_figures"] = {
        "shown": {figure.name: figure for figure in unrolled_figures(derivation, printer)},
        "limit": MATRIX_FIGURE_LIMIT,
        "rows": int(np.prod(derivation.output_shape)),
        "cols": int(np.prod(derivation.input_shape))}
    return "convnd/derivation.tex.j2", context


for _layer_type, _what in ((Conv1d, "a 1-D convolution"), (Conv3d, "a 3-D convolution")):
    CHAIN_RULES.register(_layer_type, chain_rule)
    LATEX.register(_layer_type, LatexParts(
        title=f"Backpropagation through {_what}",
        general=general, chain_rule=chain_step,
        chain_words=f"{_what}: a full correlation with the flipped kernel, channels swapped",
        notes=notes, size_rows=size_rows, shows_padding=True, sections=sections,
        document=document))
