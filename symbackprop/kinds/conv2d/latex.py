"""The 2-D convolution's LaTeX document: its sections (the layer and its output size,
the forward expansion, every gradient element with the outputs it feeds, the closed-form
rules with this layer's numbers, the unrolled matrix, the cost), its notebook summary
and its step in a chain's walk.  ``templates/conv2d/derivation.tex.j2`` places them on
the shared skeleton ``templates/latex_base.tex.j2``.
"""

from __future__ import annotations

import numpy as np
import sympy

import symbackprop.kinds.conv2d.rules as conv_rules
from symbackprop.core import progress, rules
from symbackprop.core.derivation import term_count
from symbackprop.core.indexing import dilated_length, unread_length
from symbackprop.core.naming import element_symbol, flat, to_grid
from symbackprop.core.operators import CHAIN_RULES, TransposedConvolution
from symbackprop.kinds.conv2d.figures import MATRIX_FIGURE_LIMIT, figures, unrolled_figures
from symbackprop.kinds.conv2d.spec import Conv2d
from symbackprop.render.latex import (
    _LEADING_LETTERS,
    _SPATIAL_LETTERS,
    DEFAULT_DETAIL,
    LATEX,
    LISTING_LIMIT,
    MATRIX_LIMIT,
    RULE_MATRIX_LIMIT,
    TERMS_HEAD,
    TERMS_TAIL,
    LatexParts,
    LatexPrinter,
    _abbreviate,
    _block,
    _fmt,
    _list,
    _matrix,
    _outputs_text,
    _terms_per_line,
    count_tag,
    equation_rows,
    explain_selection,
    latex_name,
    select_elements,
    selection_note,
    size_extent_latex,
    size_formula_latex,
    terms_limit,
)
from symbackprop.render.templating import latex_escape

__all__ = ["unrolled_matrix", "document", "repr_latex"]


# ---------------------------------------------------------------------------
# The unrolled matrix
# ---------------------------------------------------------------------------

def unrolled_matrix(derivation) -> sympy.Matrix:
    """``C`` with ``z = C x (+ b)``: rows are flattened ``z``, columns flattened ``x``.

    ``C[r, c] = dz_r/dx_c``, a kernel element or 0.
    """
    outputs = flat(derivation.z)  # the bias does not depend on x: it drops out
    inputs = flat(derivation.x)
    return sympy.Matrix(len(outputs), len(inputs),
                        lambda r, c: sympy.diff(outputs[r], inputs[c]))


def _feeds(derivation) -> tuple[dict, dict]:
    """``x element -> outputs it feeds`` and ``w element -> (outputs, on padding)``."""
    fed = {}
    weight_uses = {}
    products_grid = derivation.forward.z_products
    for index in np.ndindex(*products_grid.shape):
        for factors in products_grid[index]:
            if len(factors) != 2:
                continue
            source, weight = factors
            real, padding = weight_uses.get(weight, (0, 0))
            if source == 0:
                weight_uses[weight] = (real, padding + 1)
            else:
                weight_uses[weight] = (real + 1, padding)
                fed.setdefault(source, []).append(index)
    return fed, weight_uses


def _layer_section(derivation, printer) -> dict:
    layer = derivation.layer
    name = printer.name
    batch, channels, height, width = derivation.input_shape
    _, out_channels, out_h, out_w = derivation.output_shape
    top, bottom, left, right = layer.padding
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation

    def shape(values):
        return r" \times ".join(map(str, values))

    arrays = [
        (printer.map_label("x"), shape(derivation.input_shape), r"$N \times C \times H \times W$",
         "input"),
        (printer.map_label("w"), shape(layer.weight_shape),
         r"$O \times \frac{C}{\text{groups}} \times K_H \times K_W$", "kernel (weights)"),
    ]
    if layer.bias:
        arrays.append((printer.map_label("b"), str(out_channels), "$O$",
                       "bias, one per output channel"))
    arrays.append((printer.map_label("z"), shape(derivation.output_shape),
                   r"$N \times O \times H_o \times W_o$", "output"))
    arrays.append((printer.map_label("g"), shape(derivation.output_shape),
                   r"$N \times O \times H_o \times W_o$",
                   rf"upstream gradient $\partial {name('L')} / \partial {name('z')}$"))

    # How indices read: one row per array of the notation table.
    base = printer.notation.index_base
    base_sentence = (rf"Indices start at {base}"
                     + (r" as in the textbook (\texttt{-{}-index-base 0} gives Python's)."
                        if base == 1 else r" as in Python (the default 1 gives the textbook's)."))
    notation_rows = []
    for array, spatial_words, leading_words in (
            ("x", ("row", "column"), ("sample", "channel")),
            ("w", ("row", "column"), ("output channel", "input channel")),
            ("z", ("row", "column"), ("sample", "output channel"))):
        shape_ = printer.notation.shapes[array]
        # the letters the formulas use, never a letter of the reader's names
        letters = [printer.index_letter(letter) for letter in _LEADING_LETTERS[array]]
        spatial = printer.index_letter(_SPATIAL_LETTERS[array])
        words = [f"{leading_words[axis]} ${letters[axis]}$" for axis in range(2)
                 if shape_[axis] != 1]
        words += [f"{spatial_words[0]} ${spatial[0]}$", f"{spatial_words[1]} ${spatial[1]}$"]
        label = printer.generic_label(array)
        if array == "z":
            label += r",\ " + printer.generic_label("g")
        what = {"x": "input", "w": "kernel", "z": "output"}[array]
        notation_rows.append((label, f"{_list(words)} of the {what}"))
    if derivation.layer.bias:
        notation_rows.append((printer.generic_label("b"),
                              f"bias of output channel ${printer.index_letter('o')}$"
                              if out_channels > 1 else "the bias"))
    superscript_sentence = None
    if any(r"^{(" in label for label, _ in notation_rows):
        superscript_sentence = (
            "A batch or channel index is written only when that dimension has more than one "
            "value, as a superscript in parentheses; row and column are the subscript.")

    size_rows = []
    unread = []
    for axis, size, pads, kernel, s_name, stride, dilation, result, what in (
            ("h", height, (top, bottom), kh, "s_h", sh, dh, out_h, "row"),
            ("w", width, (left, right), kw, "s_w", sw, dw, out_w, "column")):
        size_rows.append(size_formula_latex(axis, (size, *pads, kernel, stride, dilation),
                                            result))
        count = unread_length(size, kernel, stride, *pads, dilation)
        if count:
            extent = size + pads[0] + pads[1]
            span = extent - dilated_length(kernel, dilation)
            input_lines = [r - pads[0] + base for r in range(extent - count, extent)
                           if 0 <= r - pads[0] < size]
            lines = f"the last {count} {what}s" if count > 1 else f"the last {what}"
            unread.append({
                "numbers": rf"${size_extent_latex(axis, (size, *pads, kernel, stride, dilation))} "
                           rf"= {span}$ is not a multiple of ${s_name} = {stride}$",
                "lines": lines, "plural": count > 1,
                "inputs": (f"{what}{'s' if len(input_lines) > 1 else ''} "
                           + _list(map(str, input_lines), "and")) if input_lines else None,
            })
    unread_note = None
    if unread:
        clauses = _list([part["numbers"] for part in unread])
        lines = _list([part["lines"] for part in unread])
        plural = len(unread) > 1 or unread[0]["plural"]
        unread_note = (f"Because {clauses}, {lines} of the padded input "
                       f"{'are' if plural else 'is'} never read by the forward pass")
        inputs = [part["inputs"] for part in unread if part["inputs"]]
        if inputs:
            unread_note += (rf", so every input element in {_list(inputs, 'or')} has gradient "
                            r"exactly $0$ (forgetting this is a classic bug in hand-written "
                            r"backward passes).")
        else:
            unread_note += "; only padding lies there, so no input element is affected."
    textbook = None
    if layer.dilation == (1, 1) and (top, bottom, sh, kh, height) == (left, right, sw, kw, width) \
            and top == bottom:
        numbers = rf"({width} - {kw} + 2\cdot{left})/{sw}"
        if (width - kw + 2 * left) % sw == 0:
            textbook = (rf"This is the textbook's $W_2 = (W_1 - F + 2P)/S + 1 = {numbers} + 1 "
                        rf"= {out_w}$.")
        else:
            textbook = (rf"This is the textbook's $W_2 = (W_1 - F + 2P)/S + 1$, with the division "
                        rf"rounded down because it is not exact here: "
                        rf"$\lfloor {numbers} \rfloor + 1 = {out_w}$.")
    return {
        "description": latex_escape(layer.describe()).replace("->", r"$\to$"),
        "arrays": arrays,
        "base_sentence": base_sentence,
        "notation_rows": notation_rows,
        "superscript_sentence": superscript_sentence,
        "size_rows": size_rows,
        "unread_note": unread_note,
        "textbook_size": textbook,
        "numbers": {"N": batch, "C": channels, "O": out_channels},
    }


def _forward_section(derivation, printer, show_padding, detail=DEFAULT_DETAIL) -> dict:
    layer = derivation.layer
    name = printer.name
    base = printer.notation.index_base
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    top, bottom, left, right = layer.padding
    cg = layer.group_in_channels

    # The general formula with this layer's numbers, in the reader's index base.
    letter = printer.index_letter
    i, j, m, k = sympy.symbols(" ".join(letter("ijmk")), integer=True)
    row = sympy.expand((i - base) * sh + (m - base) * dh + base)
    col = sympy.expand((j - base) * sw + (k - base) * dw + base)
    index_text = f"{sympy.latex(row, order='lex')}, {sympy.latex(col, order='lex')}"
    xp = r"\tilde{" + name("x") + "}"
    sums = []
    if cg > 1:
        sums.append(rf"\sum_{{{letter('c')}={base}}}^{{{cg - 1 + base}}}")
    sums.append(rf"\sum_{{{m}={base}}}^{{{kh - 1 + base}}} \sum_{{{k}={base}}}^{{{kw - 1 + base}}}")
    general = (rf"{printer.generic_label('z')} = "
               + (rf"{printer.generic_label('b')} + " if layer.bias else "")
               + " ".join(sums)
               + rf" {printer.generic_label('w')} \, "
               + printer.generic_label("x", index_text, name=xp))
    if any(layer.padding):
        padded = (rf"where ${xp}$ is ${name('x')}$ with {top} zero row{'s' if top != 1 else ''} "
                  rf"added above, {bottom} below, {left} zero column{'s' if left != 1 else ''} "
                  rf"on the left and {right} on the right (so "
                  rf"${printer.label('x', (0, 0, top, left), name=xp)} = "
                  rf"{printer.label('x', (0, 0, 0, 0))}$).")
    else:
        padded = rf"where ${xp} = {name('x')}$, as this layer has no padding."
    if layer.groups > 1:
        padded += (rf" With {layer.groups} groups, $c$ runs over the {cg} input channels of "
                   rf"output channel $o$'s group only.")

    shown_expressions = derivation.z_written if show_padding else derivation.z
    selection = select_elements(shown_expressions, derivation.output_shape, detail,
                                tuple(derivation.params), printer.notation.shapes)
    indices = selection.indices
    expressions = [shown_expressions[index] for index in indices]
    lhs_width = 2.5 if printer.generic_label("z").find("^") < 0 else 3.5
    per_line = _terms_per_line(printer, expressions, lhs_width,
                               prefer_multiple=kw if cg == 1 else kw * kh)
    equations = []
    abbreviated = False
    for row, (index, expr) in enumerate(zip(indices, expressions, strict=True)):
        terms, cut = _abbreviate(printer.terms(expr), terms_limit(detail))
        abbreviated |= cut
        tags = [count_tag(selection.counts[row])] if selection.counts else []
        if cut:
            tags.append(f"{len(sympy.Add.make_args(expr))} terms")
        tag = r"\small " + "; ".join(tags) if tags else None
        equations.append(equation_rows(printer.label("z", index), terms, per_line, tag,
                                       join_lone_last=layer.bias))
    return {
        "general": general,
        "padded_note": padded,
        "block": _block(equations),
        "selection": selection_note("z", selection, printer),
        "abbreviated": abbreviated,
        "padding_shown": show_padding and any(layer.padding),
    }


def _backward_section(derivation, printer, detail=DEFAULT_DETAIL) -> list[dict]:
    name = printer.name
    loss = name("L")
    fed, weight_uses = _feeds(derivation)
    sections = []
    arrays = [("x", derivation.x, "input")] + [
        (key, derivation.params[key], {"w": "kernel", "b": "bias"}[key])
        for key in derivation.params]
    # Three steps, the kernel's alone several seconds on a large layer: shown from the start.
    for array, symbols, title in progress.track(arrays, "typesetting the gradients",
                                                unit="arrays", delay=0):
        grads = derivation.grads[array]
        shape = tuple(symbols.shape)
        selection = select_elements(grads, shape, detail, tuple(derivation.params),
                                    printer.notation.shapes)
        indices = selection.indices
        expressions = [grads[index] for index in indices]
        lhs = [rf"\frac{{\partial {loss}}}{{\partial {printer.label(array, index)}}}"
               for index in indices]
        lhs_width = 3.0 if "^" not in lhs[0] else 4.0
        per_line = _terms_per_line(printer, expressions, lhs_width)
        equations = []
        abbreviated = False
        unread = []
        for row, (index, left, expr) in enumerate(zip(indices, lhs, expressions, strict=True)):
            symbol = element_symbol(array, index)
            all_terms = printer.terms(expr)
            terms, cut = _abbreviate(all_terms, terms_limit(detail))
            abbreviated |= cut
            count = len(all_terms)
            if array == "x":
                outputs = fed.get(symbol, [])
                tag = _outputs_text(printer, outputs) if outputs else "never read"
                if not outputs:
                    unread.append(printer.label(array, index))
            elif array == "w":
                real, padding = weight_uses.get(symbol, (0, 0))
                tag = f"in {real + padding} outputs"
                if padding:
                    tag += f", {padding} on padding"
            else:
                tag = f"in {count} outputs"
            if cut:
                tag += f"; {count} terms"
            if selection.counts:
                tag = count_tag(selection.counts[row]) + "; " + tag
            equations.append(equation_rows(left, terms, per_line, r"\small " + tag))
        sections.append({
            "array": array,
            "title": title,
            "label": printer.generic_label(array),
            "block": _block(equations),
            "selection": selection_note(array, selection, printer),
            "abbreviated": abbreviated,
            "unread": unread,
        })
    return sections


def _backward_intro(derivation, printer) -> dict:
    name = printer.name
    loss, g = name("L"), name("g")
    z_generic, x_generic = printer.generic_label("z"), printer.generic_label("x")
    w_generic = printer.generic_label("w")
    z_map = printer.notation.shapes["z"]
    over = ",".join(printer.index_letter(letter) for axis, letter in ((0, "n"), (1, "o"), (2, "i"),
                                                                     (3, "j"))
                    if axis >= 2 or z_map[axis] != 1)
    chain_x = (rf"\frac{{\partial {loss}}}{{\partial {x_generic}}} = \sum_{{{over}}} "
               rf"\frac{{\partial {loss}}}{{\partial {z_generic}}}\,"
               rf"\frac{{\partial {z_generic}}}{{\partial {x_generic}}} = \sum_{{{over}}} "
               rf"{printer.generic_label('g')}\,"
               rf"\frac{{\partial {z_generic}}}{{\partial {x_generic}}}")
    chain_w = (rf"\frac{{\partial {loss}}}{{\partial {w_generic}}} = \sum_{{{over}}} "
               rf"{printer.generic_label('g')}\,"
               rf"\frac{{\partial {z_generic}}}{{\partial {w_generic}}}")
    return {"chain_x": chain_x, "chain_w": chain_w, "method": derivation.method,
            "loss_sum": rf"{loss} = \sum {g}\,{name('z')}"}


def _rules_section(derivation, printer, proofs: tuple | None) -> dict:
    """Section 4; ``proofs`` from :func:`~symbackprop.core.rules.prove_rules`, or ``None``
    when the instance is too large to prove while writing the document."""
    layer = derivation.layer
    name = printer.name
    loss = name("L")
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    top, bottom, left, right = layer.padding
    _, _, out_h, out_w = derivation.output_shape
    _, _, height, width = derivation.input_shape
    by_name = {proof.name: proof for proof in proofs} if proofs is not None else None
    present = ["grad_x", "grad_w"] + (["grad_b"] if layer.bias else [])
    g_map, w_map, x_map = printer.map_label("g"), printer.map_label("w"), printer.map_label("x")
    z_shape = printer.notation.shapes["z"]
    sum_o = r"\sum_{o} " if z_shape[1] != 1 else ""
    sum_n = r"\sum_{n} " if z_shape[0] != 1 else ""
    grid_g, grid_w, grid_x = to_grid(derivation.g), to_grid(derivation.w), to_grid(derivation.x)
    result = {}

    # dL/dx -----------------------------------------------------------------
    if "grad_x" in present:
        grad_padding = conv_rules.grad_padding(layer, (height, width))
        p_top, p_bottom, p_left, p_right = grad_padding
        r_h = unread_length(height, kh, sh, top, bottom, dh)
        r_w = unread_length(width, kw, sw, left, right, dw)
        dilated_h, dilated_w = (out_h - 1) * sh + 1, (out_w - 1) * sw + 1
        steps = []
        if (sh, sw) == (1, 1):
            steps.append(rf"Undo the stride: the stride is $1$, so ${g_map}$ stays as it is "
                         rf"(${out_h} \times {out_w}$).")
        else:
            steps.append(
                rf"Undo the stride: insert $s_h - 1 = {sh - 1}$ zero row{'s' if sh != 2 else ''} "
                rf"between the rows of ${g_map}$ and $s_w - 1 = {sw - 1}$ zero "
                rf"column{'s' if sw != 2 else ''} between its columns: the "
                rf"${out_h} \times {out_w}$ map becomes ${dilated_h} \times {dilated_w}$.")
        pad_rows = [
            rf"P_{{\mathrm{{top}}}} &= d_h(K_H - 1) - p_{{\mathrm{{top}}}} = "
            rf"{dh}\cdot({kh} - 1) - {top} = {p_top}",
            rf"P_{{\mathrm{{bottom}}}} &= d_h(K_H - 1) - p_{{\mathrm{{bottom}}}} + r_h = "
            rf"{dh}\cdot({kh} - 1) - {bottom} + {r_h} = {p_bottom}",
            rf"P_{{\mathrm{{left}}}} &= d_w(K_W - 1) - p_{{\mathrm{{left}}}} = "
            rf"{dw}\cdot({kw} - 1) - {left} = {p_left}",
            rf"P_{{\mathrm{{right}}}} &= d_w(K_W - 1) - p_{{\mathrm{{right}}}} + r_w = "
            rf"{dw}\cdot({kw} - 1) - {right} + {r_w} = {p_right}",
        ]
        pad_text = (r"Pad the result with zeros (a negative number crops instead), where "
                    r"$r_h, r_w$ are the rows and columns the forward pass never read "
                    rf"(here ${r_h}$ and ${r_w}$):")
        padded = rules.pad2d(rules.dilate(grid_g, layer.stride), grad_padding)
        padded_map = padded[0, 0]
        g_matrix = None
        if max(padded_map.shape) <= RULE_MATRIX_LIMIT:
            g_matrix = (rf"\operatorname{{pad}}_P\bigl(\operatorname{{dil}}_s("
                        rf"{printer.map_label('g', (0, 0))})\bigr) = "
                        + _matrix(printer, padded_map))
        rotate = r"Rotate each kernel map by $180^\circ$ (flip rows and columns)"
        if layer.in_channels > 1 or layer.out_channels > 1:
            rotate += (r" and swap the roles of its channels: the gradient of input channel "
                       rf"$c$ collects the kernels ${w_map}$ of every output channel $o$ "
                       r"that reads it")
        rotate += ":"
        w_first = grid_w[0, 0]
        rot_matrix = None
        if max(w_first.shape) <= 6:
            w_label = printer.map_label("w", (0, 0))
            rot_matrix = (rf"{w_label} = {_matrix(printer, w_first)}",
                          rf"\operatorname{{rot}}_{{180}}({w_label}) = "
                          rf"{_matrix(printer, rules.rot180(w_first))}")
        correlate = (r"Cross-correlate the padded map with the rotated kernel"
                     + (rf", its taps spread by the dilation $d = ({dh}, {dw})$"
                        if (dh, dw) != (1, 1) else "")
                     + (r", and sum over output channels" if sum_o else "")
                     + rf": the result is ${height} \times {width}$, the size of "
                       rf"${printer.map_label('x')}$.")
        formula = (rf"\frac{{\partial {loss}}}{{\partial {x_map}}} = {sum_o}"
                   rf"\operatorname{{corr}}_{{d}}\Bigl(\operatorname{{pad}}_P\bigl("
                   rf"\operatorname{{dil}}_s({g_map})\bigr),\ "
                   rf"\operatorname{{rot}}_{{180}}({w_map})\Bigr)")
        numbers = (rf"s = ({sh}, {sw}),\quad P = ({p_top}, {p_bottom}, {p_left}, {p_right}),"
                   rf"\quad d = ({dh}, {dw})")
        if layer.groups > 1:
            if layer.group_out_channels == 1:
                numbers += r",\quad o \text{ the one output channel of } c\text{'s group}"
            else:
                numbers += (rf",\quad o \text{{ over the {layer.group_out_channels} output "
                            rf"channels of }} c\text{{'s group}}")
        result["grad_x"] = {
            "steps": steps, "pad_rows": pad_rows, "pad_text": pad_text, "g_matrix": g_matrix,
            "first_map": "For the first map:" if z_shape[:2] != (1, 1) else "Here:",
            "rotate": rotate, "rot_matrix": rot_matrix, "correlate": correlate,
            "rot_side_by_side": kw <= 3,
            "formula": formula, "numbers": numbers,
            "verdict": _verdict(by_name, "grad_x", printer, derivation),
        }

    # dL/dw -----------------------------------------------------------------
    if "grad_w" in present:
        extent_h, extent_w = height + top + bottom, width + left + right
        dilated_h, dilated_w = (out_h - 1) * sh + 1, (out_w - 1) * sw + 1
        rows = (extent_h - dilated_h) // dh + 1
        cols = (extent_w - dilated_w) // dw + 1
        formula = (rf"\frac{{\partial {loss}}}{{\partial {w_map}}} = {sum_n}"
                   rf"\operatorname{{corr}}_{{\text{{step }} d}}\bigl("
                   rf"\operatorname{{pad}}_p({x_map}),\ \operatorname{{dil}}_s({g_map})\bigr)")
        text = (rf"The padded input (${extent_h} \times {extent_w}$) is cross-correlated with "
                rf"the stride-dilated upstream gradient (${dilated_h} \times {dilated_w}$) used "
                rf"as the kernel"
                + (rf", moving in steps of the dilation $d = ({dh}, {dw})$" if (dh, dw) != (1, 1)
                   else "")
                + (r"; the sum runs over the samples of the batch" if sum_n else "")
                + rf". That gives ${rows} \times {cols}$ values")
        if (rows, cols) != (kh, kw):
            text += (rf", of which the first ${kh} \times {kw}$ are the kernel gradient (the "
                     r"rest pair the kernel with the rows and columns the forward never read)")
        else:
            text += rf", one for each kernel element (${kh} \times {kw}$)"
        text += "."
        if layer.groups > 1:
            text += (rf" With {layer.groups} groups, channel $c$ of ${x_map}$ here means the "
                     rf"$c$-th input channel of output channel $o$'s group.")
        x_matrix = None
        if derivation.input_shape[:2] == (1, 1) and z_shape[:2] == (1, 1) and \
                max(extent_h, extent_w) <= RULE_MATRIX_LIMIT:
            x_matrix = (rf"\operatorname{{pad}}_p({x_map}) = "
                        rf"{_matrix(printer, rules.pad2d(grid_x, layer.padding)[0, 0])}",
                        rf"\operatorname{{dil}}_s({g_map}) = "
                        rf"{_matrix(printer, rules.dilate(grid_g, layer.stride)[0, 0])}")
        result["grad_w"] = {
            "formula": formula,
            "numbers": rf"p = ({top}, {bottom}, {left}, {right}),\quad s = ({sh}, {sw}),"
                       rf"\quad d = ({dh}, {dw})",
            "text": text, "x_matrix": x_matrix,
            "side_by_side": max(extent_w, dilated_w) <= 6,
            "verdict": _verdict(by_name, "grad_w", printer, derivation),
        }

    # dL/db -----------------------------------------------------------------
    if "grad_b" in present:
        batch = derivation.input_shape[0]
        over = ",".join(printer.index_letter(letter)
                        for letter in ([] if batch == 1 else ["n"]) + ["i", "j"])
        formula = (rf"\frac{{\partial {loss}}}{{\partial {printer.generic_label('b')}}} = "
                   rf"\sum_{{{over}}} {printer.generic_label('g')}")
        count = batch * out_h * out_w
        if batch > 1:
            terms = rf"N H_o W_o = {batch} \cdot {out_h} \cdot {out_w} = {count}"
        else:
            terms = rf"H_o W_o = {out_h} \cdot {out_w} = {count}"
        text = (r"Every output of channel $o$ adds the bias once, so its gradient is the sum of "
                r"the upstream gradient over " + ("the batch and " if batch > 1 else "")
                + rf"all positions: ${terms}$ terms.")
        if derivation.output_shape[1] == 1:
            text = text.replace("of channel $o$ ", "")
        result["grad_b"] = {"formula": formula, "text": text,
                            "verdict": _verdict(by_name, "grad_b", printer, derivation)}
    return result


def _verdict(proofs: dict | None, name: str, printer, derivation) -> dict:
    """``holds`` True (proven), False (disproven) or None (not proven here)."""
    if proofs is None or name not in proofs:
        count = term_count(derivation.layer, derivation.input_shape)
        return {"holds": None,
                "text": rf"this instance has {_fmt(count)} products, more than the "
                        rf"{_fmt(rules.PROOF_TERMS)} up to which symbackprop proves the closed "
                        r"forms while writing a document, so this rule is quoted, not re-proven, "
                        r"here. Write a smaller instance to see it verified."}
    proof = proofs[name]
    array = name.removeprefix("grad_")
    if proof.holds:
        if proof.checked == 1:
            text = (r"SymPy expanded this closed form and it is exactly the "
                    r"element-wise sum of Section~\ref{sec:backward}.")
        else:
            text = (rf"SymPy expanded all {proof.checked} elements of this closed "
                    rf"form and each is exactly the element-wise sum of "
                    r"Section~\ref{sec:backward}.")
        return {"holds": True, "text": text}
    first = proof.mismatches[0] if proof.mismatches else None
    where = rf" (the first at ${printer.label(array, first)}$)" if first is not None else ""
    return {"holds": False,
            "text": rf"This closed form differs from the element-wise sums at "
                    rf"{len(proof.mismatches)} of {proof.checked} elements{where}; the sums of "
                    rf"Section~\ref{{sec:backward}} are the truth."}


def _matrix_section(derivation, printer) -> dict:
    name = printer.name
    rows = int(np.prod(derivation.output_shape))
    cols = int(np.prod(derivation.input_shape))
    general = {
        "forward": rf"\mathbf{{{name('z')}}} = C\,\mathbf{{{name('x')}}}"
                   + (rf" + \mathbf{{{name('b')}}}" if derivation.layer.bias else ""),
        "backward": rf"\frac{{\partial {name('L')}}}{{\partial \mathbf{{{name('x')}}}}} = "
                    rf"C^{{\top}} \mathbf{{{name('g')}}}",
    }
    if rows > MATRIX_LIMIT or cols > MATRIX_LIMIT:
        return {**general, "shown": False, "rows": rows, "cols": cols}
    matrix = unrolled_matrix(derivation)
    g_vector = sympy.Matrix(flat(derivation.g))
    grad_vector = sympy.Matrix(flat(derivation.grad_x))
    verified = all(sympy.expand(value) == 0 for value in (matrix.T * g_vector - grad_vector))
    cells = np.empty(matrix.shape, dtype=object)
    for r in range(rows):
        for c in range(cols):
            cells[r, c] = matrix[r, c]
    z_column = r"\begin{bmatrix}" + r" \\ ".join(
        printer.doprint(symbol) for symbol in flat(sympy.Array(
            [element_symbol("z", index) for index in np.ndindex(*derivation.output_shape)]))) \
        + r"\end{bmatrix}"
    x_column = r"\begin{bmatrix}" + r" \\ ".join(
        printer.doprint(symbol) for symbol in flat(derivation.x)) + r"\end{bmatrix}"
    equation = f"{z_column} = {_matrix(printer, cells)} {x_column}"
    if derivation.layer.bias:
        b_column = r"\begin{bmatrix}" + r" \\ ".join(
            printer.label("b", (index[1],)) for index in np.ndindex(*derivation.output_shape)) \
            + r"\end{bmatrix}"
        equation += f" + {b_column}"
    nonzero = sum(1 for value in matrix if value != 0)
    first_row = printer.doprint(sympy.Add(*[matrix[r, 0] * g for r, g in
                                            enumerate(flat(derivation.g))]))
    return {**general, "shown": True, "rows": rows, "cols": cols, "equation": equation,
            "small": cols > 10, "nonzero": nonzero, "verified": verified,
            "first_grad": rf"\frac{{\partial {name('L')}}}{{\partial "
                          rf"{printer.doprint(flat(derivation.x)[0])}}} = "
                          rf"(C^{{\top}}\mathbf{{{name('g')}}})_{{{printer.notation.index_base}}}"
                          rf" = {first_row}"}


def _cost_section(derivation, printer) -> dict:
    layer = derivation.layer
    batch, channels, height, width = derivation.input_shape
    _, out_channels, out_h, out_w = derivation.output_shape
    kh, kw = layer.kernel_size
    cg = layer.group_in_channels
    per_sample = out_h * out_w * kh * kw * cg * out_channels
    padding_products = sum(1 for index in np.ndindex(*derivation.forward.z_products.shape)
                           for factors in derivation.forward.z_products[index]
                           if len(factors) == 2 and factors[0] == 0)

    def products(array) -> int:
        return sum(len(sympy.Add.make_args(expr)) for expr in flat(array) if expr != 0)

    loss, x_name, w_name = printer.name("L"), printer.name("x"), printer.name("w")
    times = r" \cdot "
    factors = f"{out_h}{times}{out_w}{times}{kh}{times}{kw}{times}{cg}{times}{out_channels}"
    group_fraction = r"\tfrac{C}{\mathrm{groups}}"
    rows = [(r"Forward multiply-adds per sample", rf"$H_o W_o K_H K_W {group_fraction} O$",
             rf"${factors} = {_fmt(per_sample)}$")]
    if batch > 1:
        rows.append((rf"\quad for the batch of $N = {batch}$", r"$\times N$",
                     rf"${_fmt(per_sample * batch)}$"))
    rows += [
        (r"\quad of them with a padding zero", "", rf"${_fmt(padding_products)}$"),
        (rf"Backward $\partial {loss}/\partial {x_name}$, multiply-adds", "as forward",
         rf"${_fmt(per_sample * batch)}$"),
        (rf"Backward $\partial {loss}/\partial {w_name}$, multiply-adds", "as forward",
         rf"${_fmt(per_sample * batch)}$"),
    ]
    if layer.bias:
        rows.append((rf"Backward $\partial {loss}/\partial {printer.name('b')}$, additions",
                     r"$N O H_o W_o$", rf"${_fmt(batch * out_channels * out_h * out_w)}$"))
    rows += [
        (rf"Output ${printer.name('z')}$ per sample, values", r"$O H_o W_o$",
         rf"${out_channels}{times}{out_h}{times}{out_w} = {_fmt(out_channels * out_h * out_w)}$"),
        (rf"Input ${x_name}$ kept for the backward pass", r"$C H W$ per sample",
         rf"${channels}{times}{height}{times}{width} = {_fmt(channels * height * width)}$"),
        (r"Parameters", rf"$O {group_fraction} K_H K_W" + (" + O$" if layer.bias else "$"),
         rf"${_fmt(out_channels * cg * kh * kw + (out_channels if layer.bias else 0))}$"),
    ]
    sums = {"x": products(derivation.grad_x), "w": products(derivation.grad_w)}
    return {"rows": rows, "sums": sums, "padding": padding_products,
            "dense": per_sample * batch}


def document(derivation, index_base: int = 1, names: dict | None = None,
             show_padding: bool = True, detail: str = DEFAULT_DETAIL) -> tuple[str, dict]:
    """The convolution's own document: its template and the context of its sections."""
    names = dict(names or {})
    for key, value in names.items():
        if key not in ("x", "w", "b", "z", "g", "L"):
            raise ValueError(f"names: unknown array {key!r}; use x, w, b, z, g or L")
        latex_name(value)  # validates
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LatexPrinter(notation, padding_command=r"\pad" if show_padding else None)
    proofs = rules.proofs_for(derivation)
    plain = LatexPrinter(notation)
    forward = _forward_section(derivation, printer, show_padding, detail)
    backward = _backward_section(derivation, plain, detail)
    explain_selection([forward, *backward])
    context = {
        "layer": _layer_section(derivation, plain),
        "forward": forward,
        "backward_intro": _backward_intro(derivation, plain),
        "backward": backward,
        "rules": _rules_section(derivation, plain, proofs),
        "matrix": _matrix_section(derivation, plain),
        "cost": _cost_section(derivation, plain),
        "names": {key: plain.name(key) for key in ("x", "w", "b", "z", "g", "L")},
        "limits": {"listing": LISTING_LIMIT, "terms": terms_limit(detail), "head": TERMS_HEAD,
                   "tail": TERMS_TAIL, "matrix": MATRIX_LIMIT},
        "has_bias": derivation.layer.bias,
        "figures": {figure.name: figure for figure in figures(derivation, plain)},
        "matrix_figures": {"shown": {figure.name: figure
                                     for figure in unrolled_figures(derivation, plain)},
                           "limit": MATRIX_FIGURE_LIMIT},
    }
    return "conv2d/derivation.tex.j2", context


def repr_latex(derivation, index_base: int = 1, names: dict | None = None) -> str:
    """A short math-mode summary for notebooks: the layer and a few equations."""
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LatexPrinter(notation)
    name = printer.name
    loss = name("L")
    layer = derivation.layer
    _, _, height, width = derivation.input_shape
    _, _, out_h, out_w = derivation.output_shape
    description = latex_escape(layer.describe()).replace("->", r"$\to$")
    # MathJax's \text does not switch to math with $; keep the arrow outside.
    parts = description.split(r"$\to$")
    header = r"\text{" + parts[0] + "}" + "".join(r"\to\text{" + part + "}" for part in parts[1:])
    if derivation.input_shape[:2] == (1, 1) and derivation.output_shape[:2] == (1, 1):
        shapes = (f"{height}\\times{width}", f"{out_h}\\times{out_w}")
    else:
        shapes = tuple(r"\times".join(map(str, shape))
                       for shape in (derivation.input_shape, derivation.output_shape))
    header += rf";\quad {name('x')}: {shapes[0]} \;\to\; {name('z')}: {shapes[1]}"
    rows = [r"&" + header]

    def short(expr, limit=6):
        terms = printer.terms(expr)
        if len(terms) > limit:
            terms = terms[:limit - 2] + [("+", r"\cdots")] + terms[-1:]
        if not terms:
            return "0"
        text = ("-" if terms[0][0] == "-" else "") + terms[0][1]
        return text + "".join(f" {sign} {body}" for sign, body in terms[1:])

    x_indices = list(np.ndindex(*derivation.input_shape))
    interior = (0, 0, (out_h - 1) // 2, (out_w - 1) // 2)  # the centre of the first map
    for index in dict.fromkeys([(0, 0, 0, 0), interior]):
        rows.append(rf"{printer.label('z', index)} &= {short(derivation.z_written[index])}")
    rows.append(rf"\frac{{\partial {loss}}}{{\partial {printer.label('x', x_indices[0])}}} "
                rf"&= {short(derivation.grad_x[x_indices[0]])}")
    w_index = (0,) * 4
    rows.append(rf"\frac{{\partial {loss}}}{{\partial {printer.label('w', w_index)}}} "
                rf"&= {short(derivation.grad_w[w_index])}")
    if layer.bias:
        rows.append(rf"\frac{{\partial {loss}}}{{\partial {printer.label('b', (0,))}}} "
                    rf"&= {short(derivation.grad_b[0])}")
    return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"


# A chain's step delta^{l-1} from delta^l, written once: the text printout, the LaTeX
# walk and a chain module's comments print this expression (core/operators.py).
def chain_rule(layer, names):
    """``g`` sent back through ``w``: a transposed convolution."""
    return TransposedConvolution(names["g"], names["w"])


CHAIN_RULES.register(Conv2d, chain_rule)


LATEX.register(Conv2d, LatexParts(
    title="Backpropagation through a convolution",
    general=None,
    chain_words="a convolution: a full correlation with the rotated kernel, channels swapped",
    shows_padding=True,
    document=document,
    repr_latex=repr_latex,
))
