"""Render stage of the course's exercises (:mod:`symbackprop.core.exercises`): text and
a LaTeX document.

The full convolution's commutativity: every element of ``x * w`` and of ``w * x``
written out as its products, the order of each side's sum (first factor from the
first array), the verdict SymPy reached (the difference of each pair of elements
expands to 0), and the counter-example of the cross-correlation.  Symbols become text
only through the printers (SymPy's LaTeX printer, ``str``); Python computes every line
and ``templates/exercises/full_convolution.tex.j2`` places them.
"""

from __future__ import annotations

from sympy.printing.latex import LatexPrinter

from symbackprop.render.latex import _typewriter
from symbackprop.render.latex_names import join_scripts
from symbackprop.render.templating import latex_environment, latex_escape

__all__ = ["commutativity_text", "commutativity_latex", "exercise_command"]

#: Products of one sum written on one line of the document before it continues below.
PRODUCTS_PER_LINE = 5


def exercise_command(result) -> str:
    """The command line that writes this exercise again."""
    height, width = result.x.shape
    kh, kw = result.w.shape
    return (f"symbackprop exercise full-convolution-commutes --input {height}x{width} "
            f"--kernel {kh}x{kw}")


def _plain(symbol) -> str:
    return str(symbol).replace("_", "")  # x_12 -> x12, as the derive text writes it


def _text_sum(products) -> str:
    return " + ".join(f"{_plain(a)} {_plain(b)}" for a, b in products)


def commutativity_text(result) -> str:
    """The exercise as terminal text."""
    rows, columns = len(result.x_w), len(result.x_w[0])
    height, width = result.x.shape
    kh, kw = result.w.shape
    lines = [f"Exercise: the full (wide) convolution commutes; x {height}x{width}, "
             f"w {kh}x{kw}",
             "  (x * w)_ij = sum_ab x_ab w_(i-a+1)(j-b+1)    (w * x)_ij = sum_mk w_mk "
             "x_(i-m+1)(j-k+1)",
             f"  i = 1..{rows}, j = 1..{columns} (full: every shift where x and w overlap)",
             ""]
    for i in range(rows):
        for j in range(columns):
            lines.append(f"  (x * w)_{i + 1}{j + 1} = {_text_sum(result.x_w[i][j])}")
            lines.append(f"  (w * x)_{i + 1}{j + 1} = {_text_sum(result.w_x[i][j])}")
    count = rows * columns
    lines += ["", _verdict_text(result, count), ""]
    lines += _correlation_text(result)
    return "\n".join(lines)


def _verdict_text(result, count: int) -> str:
    if result.equal and result.same_terms:
        return (f"Verified by SymPy: (x * w)_ij - (w * x)_ij expands to 0 for all {count} "
                f"elements, and each pair has the same products (x_ab w_mk with a + m = i + 1, "
                f"b + k = j + 1): the full convolution is commutative.")
    return "NOT verified: SymPy finds (x * w) and (w * x) different."


def _correlation_text(result) -> list[str]:
    lines = ["The cross-correlation (the forward pass) is not commutative (full correlation):"]
    if result.corr_differs is not None:
        i, j = result.corr_differs
        lines.append(f"  corr(x, w)_{i + 1}{j + 1} = {_text_sum(result.corr_xw[i][j])}, but "
                     f"corr(w, x)_{i + 1}{j + 1} = {_text_sum(result.corr_wx[i][j])}")
    if result.corr_rotated:
        lines.append("  (verified by SymPy: corr(w, x) is corr(x, w) rotated by 180 degrees)")
    vh, vw = result.valid_shape
    height, width = result.x.shape
    kh, kw = result.w.shape
    if (kh, kw) != (height, width) and (kh <= height and kw <= width):
        lines.append(f"  'valid': corr(x, w) is {vh}x{vw}, while w is smaller than x, so "
                     f"corr(w, x) 'valid' has no element at all")
    return lines


def _latex_rows(printer, label: str, products) -> list[str]:
    """``label &= a b + ...`` broken every :data:`PRODUCTS_PER_LINE` products."""
    terms = [rf"{printer.doprint(a)}\, {printer.doprint(b)}" for a, b in products]
    chunks = [terms[start:start + PRODUCTS_PER_LINE]
              for start in range(0, len(terms), PRODUCTS_PER_LINE)]
    rows = [f"{label} &= " + " + ".join(chunks[0])]
    rows += ["&\\quad + " + " + ".join(chunk) for chunk in chunks[1:]]
    return rows


def commutativity_latex(result, *, version: str | None = None) -> str:
    """The exercise as a standalone LaTeX document."""
    from symbackprop._version import __version__

    printer = LatexPrinter()
    rows, columns = len(result.x_w), len(result.x_w[0])
    pairs = []
    for i in range(rows):
        for j in range(columns):
            index = f"{i + 1}{j + 1}"
            pairs.append(_latex_rows(printer, rf"(x * w)_{{{index}}}", result.x_w[i][j])
                         + _latex_rows(printer, rf"(w * x)_{{{index}}}", result.w_x[i][j]))
    correlation = None
    if result.corr_differs is not None:
        i, j = result.corr_differs
        index = f"{i + 1}{j + 1}"
        correlation = (_latex_rows(printer, rf"\operatorname{{corr}}(x, w)_{{{index}}}",
                                   result.corr_xw[i][j])
                       + _latex_rows(printer, rf"\operatorname{{corr}}(w, x)_{{{index}}}",
                                     result.corr_wx[i][j]))
    height, width = result.x.shape
    kh, kw = result.w.shape
    command = exercise_command(result) + " -o exercise.tex"
    context = {
        "sizes": {"H": height, "W": width, "KH": kh, "KW": kw, "rows": rows,
                  "columns": columns, "elements": rows * columns},
        "pairs": pairs,
        "verified": result.equal and result.same_terms,
        "correlation": correlation,
        "rotated": result.corr_rotated,
        "valid": {"shape": result.valid_shape,
                  "missing": (kh, kw) != (height, width) and kh <= height and kw <= width},
        "command": _typewriter(command), "command_comment": command,
        "version": latex_escape(version or __version__),
    }
    return join_scripts(latex_environment().get_template(
        "exercises/full_convolution.tex.j2").render(**context))
