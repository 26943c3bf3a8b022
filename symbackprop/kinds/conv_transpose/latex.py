"""The transposed convolutions in the LaTeX document: the scatter rule, the sums, the
closed forms and the relations to the convolution with their verdicts, and the matrix
view (``z = C x`` for the convolution, ``y = C^T x`` for this layer: the same ``C``)."""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.derivation import derive_instance
from symbackprop.core.naming import flat
from symbackprop.core.rules import _grid, proofs_for
from symbackprop.kinds.conv2d.figures import MATRIX_FIGURE_LIMIT
from symbackprop.kinds.conv_transpose.figures import figures
from symbackprop.kinds.conv_transpose.rules import convolution_of
from symbackprop.kinds.conv_transpose.spec import AXIS_NAMES, LAYER_TYPES
from symbackprop.render.latex import (
    DEFAULT_DETAIL,
    LATEX,
    MATRIX_LIMIT,
    LatexParts,
    LayerLatexPrinter,
    _layer_document,
    _matrix,
)
from symbackprop.render.latex_names import fill_names
from symbackprop.render.templating import latex_escape

__all__ = ["general", "size_rows", "matrix_view", "document"]


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss, w = names["x"], names["z"], names["g"], names["L"], names["w"]
    b = names.get("b")
    j = r"i s - p + k d"
    bias = f"{b}_{{o}} + " if b else ""
    backward = (rf"\frac{{\partial {loss}}}{{\partial {x}_{{c,i}}}} = \sum_{{o,k}} "
                rf"{g}_{{o,{j}}}\, {w}_{{c,o,k}},\qquad "
                rf"\frac{{\partial {loss}}}{{\partial {w}_{{c,o,k}}}} = \sum_{{n,i}} "
                rf"{x}_{{c,i}}\, {g}_{{o,{j}}}")
    if b:
        backward += (rf",\qquad \frac{{\partial {loss}}}{{\partial {b}_{{o}}}} = "
                     rf"\sum_{{n,j}} {g}_{{o,j}}")
    forward = (rf"{z}_{{o,j}} = {bias}\sum_{{c,\,i,\,k\,:\ {j} = j}} "
               rf"{x}_{{c,i}}\, {w}_{{c,o,k}}")
    return {"forward": forward,
            "backward": backward}


def notes(layer, names) -> list[str]:
    x, w, g, loss = names["x"], names["w"], names["g"], names["L"]
    return [rf"Each input element ${x}_{{c,i}}$ scatters ${x}_{{c,i}} {w}_{{c,o,k}}$ onto output "
            rf"position $j = i s - p + k d$ (per axis: stride $s$, padding $p$ at the "
            rf"beginning, dilation $d$) of every output channel $o$ of its group; what lands "
            rf"outside the output is cropped. The backward pass reads ${g}$ at the same "
            rf"positions: $\partial {loss}/\partial {x}$ is a plain (strided) convolution of "
            rf"${g}$ with the same weight, no flip and no channel swap."]


def size_rows(layer, input_shape, output_shape) -> list[str]:
    """The rule once, then each axis with this layer's numbers."""
    rows = [r"L_o &= (L-1)\,s - p_{\mathrm{begin}} - p_{\mathrm{end}} + d\,(K-1) + "
            r"\mathit{output\_padding} + 1 \quad\text{per axis:}"]
    for axis, name in enumerate(AXIS_NAMES[layer.dims]):
        letter = "L" if layer.dims == 1 else name[0].upper()
        size, s, begin, end, d, k, extra = (
            input_shape[2 + axis], layer.stride[axis], layer.pad_begin[axis],
            layer.pad_end[axis], layer.dilation[axis], layer.kernel_size[axis],
            layer.output_padding[axis])
        rows.append(rf"{letter}_o &= ({size}-1)\cdot{s} - {begin} - {end} + {d}\cdot({k}-1) + "
                    rf"{extra} + 1 = {output_shape[2 + axis]}")
    return rows


def _unrolled(outputs, inputs) -> sympy.Matrix:
    """``M[r, c] = d outputs_r / d inputs_c``: a weight element or 0."""
    return sympy.Matrix(len(outputs), len(inputs),
                        lambda r, c: sympy.diff(outputs[r], inputs[c]))


def _column(printer, symbols) -> str:
    return r"\begin{bmatrix}" + r" \\ ".join(printer.doprint(s) for s in symbols) + \
        r"\end{bmatrix}"


def matrix_view(derivation, printer) -> dict:
    """``C`` (the convolution's matrix) and ``y = C^T x``, for a small instance.

    ``C^T`` is read off this layer's derivation (``dz_r/dx_c``); when the convolution
    kind is registered, its own unrolled matrix is derived and compared entry by entry.
    """
    layer = derivation.layer
    z, x = flat(derivation.z), flat(derivation.x)
    rows, cols = len(x), len(z)  # C maps the transposed output back to its input
    view = {"rows": rows, "cols": cols, "shown": rows <= MATRIX_LIMIT and cols <= MATRIX_LIMIT}
    if not view["shown"]:
        return view
    transposed = _unrolled(z, x)  # C^T: z = C^T x + b
    matrix = transposed.T
    cells = np.array(matrix.tolist(), dtype=object)
    view["matrix"] = _matrix(printer, cells)
    wide = cols > 10  # sixteen columns of w_{..} fit the line only small and tight
    view["size"], view["colsep"] = (r"\scriptsize", "2pt") if wide else (r"\small", "5pt")
    view["z"] = _column(printer, [sympy.Symbol(f"z[{','.join(map(str, i))}]", real=True)
                                  for i in np.ndindex(*derivation.output_shape)])
    view["x"] = _column(printer, x)
    view["nonzero"] = sum(1 for value in matrix if value != 0)
    conv, reason = convolution_of(layer)
    if conv is None:
        view["same"], view["reason"] = None, latex_escape(reason)
        return view
    conv_input = derivation.output_shape
    conv_derivation = derive_instance(conv, conv_input, tuple(conv.output_shape_for(conv_input)))
    conv_z = _grid(conv_derivation.z)  # longer than x when output_padding >= stride: crop
    conv_z = conv_z[tuple(slice(0, size) for size in derivation.input_shape)]
    conv_matrix = _unrolled(list(conv_z.reshape(-1)), flat(conv_derivation.x))
    same = conv_matrix.shape == matrix.shape and \
        all(sympy.expand(a - b) == 0 for a, b in zip(conv_matrix, matrix))
    view.update(same=same, conv=latex_escape(conv.describe()).replace("->", r"$\to$"))
    return view


#: How a relation or a closed form reads in the document; ``@x`` (``@w @g @z @b @L``) is
#: the reader's name of that array (:func:`~symbackprop.render.latex_names.fill_names`).
_RULES = {
    "forward": r"@z_{o} = @b_{o} + \sum_{c} \operatorname{corr}\bigl(\operatorname{pad}_P"
               r"(\operatorname{dil}_s @x_{c}),\ \operatorname{flip}(@w_{c,o}),\ "
               r"\text{dilation } d\bigr)",
    "grad_x": r"\frac{\partial @L}{\partial @x_{c}} = \Bigl[\sum_{o} \operatorname{corr}\bigl("
              r"\operatorname{pad}_p(@g_{o}),\ @w_{c,o},\ \text{stride } s,\ \text{dilation } d"
              r"\bigr)\Bigr]_{:L}",
    "grad_w": r"\frac{\partial @L}{\partial @w_{c,o}} = \Bigl[\sum_{n} \operatorname{corr}\bigl("
              r"\operatorname{pad}_p(@g_{n,o}),\ \operatorname{dil}_s(@x_{n,c}),\ \text{stride }"
              r" d\bigr)\Bigr]_{:K}",
    "grad_b": r"\frac{\partial @L}{\partial @b_{o}} = \sum_{n,j} @g_{n,o,j}",
}
_RELATIONS = {
    "conv_backward": r"Its forward pass is the convolution's backward pass: $@z - @b = "
                     r"\partial L_{\mathrm{conv}}/\partial x_{\mathrm{conv}}$ with the "
                     r"convolution's upstream gradient set to this layer's input $@x$.",
    "conv_forward": r"Its backward pass is the convolution's forward pass: $\partial @L/"
                    r"\partial @x = z_{\mathrm{conv}}$ with the convolution's input set to "
                    r"this layer's upstream gradient $@g$.",
    "output_padding": r"\texttt{output\_padding} adds exactly the positions the "
                      r"convolution's stride never reads: the outputs agree with those of the "
                      r"layer without it, and every output in the convolution's unread tail "
                      r"holds its bias alone.",
}


def _verdict(proof) -> dict:
    return {"holds": proof.holds, "checked": proof.checked,
            "mismatches": len(proof.mismatches),
            "reason": latex_escape(proof.statement.split("(not proven: ")[-1].rstrip(")"))
            if "(not proven: " in proof.statement else ""}


def document(derivation, index_base: int = 1, names: dict | None = None,
             show_padding: bool = True, detail: str = DEFAULT_DETAIL) -> tuple[str, dict]:
    """The layer document of ``layers.tex.j2`` plus the rules, the relations and the matrix."""
    _, context = _layer_document(derivation, index_base, names, show_padding, detail)
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LayerLatexPrinter(notation, vector_bias=False)
    names = {array: printer.name(array) for array in ("x", "w", "g", "z", "b", "L")}
    proofs = proofs_for(derivation)
    by_name = {proof.name: proof for proof in proofs or ()}
    layer = derivation.layer
    conv, reason = convolution_of(layer)
    context["has_bias"] = layer.bias
    context["transposed"] = {
        "rules": [(fill_names(_RULES[name], names), _verdict(by_name[name]))
                  for name in _RULES if name in by_name],
        "relations": [(fill_names(_RELATIONS[name], names), _verdict(by_name[name]))
                      for name in _RELATIONS if name in by_name],
        "proven": proofs is not None,
        "padding": ", ".join(f"({b}, {e})" for b, e in
                             (by_name["forward"].grad_padding if "forward" in by_name else ())),
        "conv": latex_escape(conv.describe()).replace("->", r"$\to$") if conv is not None
        else latex_escape(f"Conv{layer.dims}d ({reason})"),
        "unread": ", ".join(map(str, by_name["output_padding"].unread))
        if "output_padding" in by_name and any(by_name["output_padding"].unread) else "",
        "matrix": matrix_view(derivation, printer),
        "figures": figures(derivation, printer),
        "matrix_limit": MATRIX_FIGURE_LIMIT,
    }
    return "conv_transpose/derivation.tex.j2", context


for _layer_type in LAYER_TYPES:
    LATEX.register(_layer_type, LatexParts(
        title=lambda layer: f"Backpropagation through a {layer.dims}-D transposed convolution",
        general=general, notes=notes, notes_take_names=True, size_rows=size_rows,
        chain_words="a transposed convolution", document=document))
