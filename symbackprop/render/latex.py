"""Render stage (LaTeX): a :class:`~symbackprop.core.derivation.Derivation` -> a document.

Input: a derivation (and, for section 4, the :mod:`~symbackprop.core.rules` proofs of
it).  Output: the text of a standalone LaTeX document a teacher can hand out:

1. the layer, its shapes and the output-size formula with this layer's numbers;
2. the forward expansion, every ``z_{ij}`` in aligned rows (padding products shown
   as a grey ``0 w_{..}`` unless switched off);
3. every gradient element as an explicit sum, with the outputs each element feeds;
4. the closed-form rules (dilate, pad, rotate, correlate; the sum for the bias)
   with this layer's numbers, each stated as verified only if it was;
5. for small layers the unrolled matrix ``C`` with ``z = C x`` and
   ``dL/dx = C^T g``;
6. the cost: multiply-adds and memory.

SymPy expressions become LaTeX only through :class:`LatexPrinter`; Python computes
every equation and number, and ``templates/derivation.tex.j2`` places them.

Size limits (the document stays readable):

- :data:`LISTING_LIMIT`: an array with more elements than this lists a
  representative selection (corners, edge middles, centre of each map; first and
  last of each batch/channel index) instead of every element, and says so.
- :data:`TERMS_LIMIT`: a sum with more terms shows its first
  :data:`TERMS_HEAD` and last :data:`TERMS_TAIL` terms around ``\\cdots`` and
  states how many there are.
- :data:`MATRIX_LIMIT`: the unrolled matrix ``C`` is printed only when it has at
  most this many rows and columns.
- :data:`~symbackprop.core.rules.PROOF_TERMS`: larger instances quote the rules of section 4 without
  re-proving them, and say so.
- Instances too large to expand at all are refused by
  :func:`~symbackprop.core.derivation.derive` (``SizeLimitError``).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy
from sympy.printing.latex import LatexPrinter as SympyLatexPrinter
from sympy.printing.latex import greek_letters_set, translate

from symbackprop.core import progress, rules
from symbackprop.core.chain import ChainDerivation
from symbackprop.core.derivation import NOTEBOOK_LATEX, Derivation, term_count
from symbackprop.core.indexing import dilated_length, unread_length
from symbackprop.core.naming import (
    element_symbol,
    factor_sort_key,
    flat,
    parse_element,
    term_sort_key,
    to_grid,
)
from symbackprop.kinds.conv2d import rules as conv_rules
from symbackprop.render.templating import latex_environment, latex_escape

__all__ = [
    "LISTING_LIMIT",
    "TERMS_LIMIT",
    "TERMS_HEAD",
    "TERMS_TAIL",
    "MATRIX_LIMIT",
    "LatexCompileError",
    "LatexPrinter",
    "latex_name",
    "option_name",
    "to_latex",
    "repr_latex",
    "unrolled_matrix",
    "representative_indices",
    "write_document",
    "replace_file",
    "check_output_name",
    "compile_pdf",
    "COMPILER_SUFFIXES",
]

#: Arrays with more elements than this list a representative selection.
LISTING_LIMIT = 36
#: Sums with more terms than this are shown abbreviated ...
TERMS_LIMIT = 24
#: ... as their first TERMS_HEAD terms, ``\cdots``, and their last TERMS_TAIL terms.
TERMS_HEAD = 8
TERMS_TAIL = 2
#: The unrolled matrix C is printed when it has at most this many rows and columns.
MATRIX_LIMIT = 16
#: Matrices illustrating the rules (the padded, dilated g; the padded x) up to this size.
RULE_MATRIX_LIMIT = 10
#: Outputs named in a "feeds" note before it abbreviates.
FEEDS_SHOWN = 6
#: Width (in em of the 11pt text font) available to the terms of one equation line.
LINE_BUDGET_EM = 34.0

# Letters of the generic indices of each array (leading dimensions, then spatial).
_LEADING_LETTERS = {"x": ("n", "c"), "z": ("n", "o"), "g": ("n", "o"), "w": ("o", "c"),
                    "b": ("o",)}
_SPATIAL_LETTERS = {"x": "ab", "z": "ij", "g": "ij", "w": "mk"}


class LatexCompileError(RuntimeError):
    """pdflatex is missing, or it could not compile the document."""


# ---------------------------------------------------------------------------
# Names and the printer
# ---------------------------------------------------------------------------

def latex_name(name: str) -> str:
    """A display name in math mode: ``delta -> \\delta``, ``net -> \\mathit{net}``.

    Greek letter names (or the Greek letters themselves) become the letter, one
    Latin letter stays as it is, other identifiers are set as one italic word and
    any other printable ASCII text is escaped and set upright.

    Raises
    ------
    ValueError
        For an empty name, one with spaces or control characters, or other
        non-ASCII characters that pdflatex could not typeset.
    """
    name = str(name)
    if len(name) == 1 and unicodedata.name(name, "").startswith("GREEK "):
        # "GREEK SMALL LETTER DELTA" -> \delta, "GREEK CAPITAL LETTER DELTA" -> \Delta
        words = unicodedata.name(name).split()
        letter = {"lamda": "lambda"}.get(words[-1].lower(), words[-1].lower())
        if letter in greek_letters_set:
            return translate(letter.capitalize() if words[1] == "CAPITAL" else letter)
    if not name or not all(33 <= ord(char) < 127 for char in name):
        raise ValueError(
            f"names: {name!r} is not a usable name: use letters, digits and ASCII symbols "
            f"without spaces, or a Greek letter or its name (delta, Delta)")
    if re.fullmatch(r"[A-Za-z]+", name) and name.lower() in greek_letters_set:
        return translate(name)
    if re.fullmatch(r"[A-Za-z]", name):
        return name
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
        return rf"\mathit{{{name}}}"
    return rf"\text{{{latex_escape(name)}}}"


def option_name(name: str, option: str) -> str:
    """A ``--NAME-name`` value as the document and its regenerate command use it.

    A Greek letter becomes its ASCII name (``α -> alpha``, ``Δ -> Delta``: the same
    letter in the document, and a command line pdflatex can print); every other
    name must be one :func:`latex_name` accepts.

    Raises
    ------
    ValueError
        Naming ``option`` (``--input-name``) and what it accepts.
    """
    name = str(name)
    if len(name) == 1 and unicodedata.name(name, "").startswith("GREEK "):
        words = unicodedata.name(name).split()
        letter = {"lamda": "lambda"}.get(words[-1].lower(), words[-1].lower())
        if letter in greek_letters_set:
            name = letter.capitalize() if words[1] == "CAPITAL" else letter
    try:
        latex_name(name)
    except ValueError:
        raise ValueError(
            f"{option}: {name!r} cannot be typeset: use letters, digits and ASCII symbols "
            f"without spaces (a, net, x'), or a Greek letter or its name (delta, Delta, "
            f"\u03b4)") from None
    return name


def _subscript(indices) -> str:
    if not indices:
        return ""
    if all(0 <= i < 10 for i in indices):
        return "_{" + "".join(map(str, indices)) + "}"
    return "_{" + ",".join(map(str, indices)) + "}"


def _superscript(indices) -> str:
    return "^{(" + ",".join(map(str, indices)) + ")}" if indices else ""


class LatexPrinter(SympyLatexPrinter):
    """SymPy's LaTeX printer with textbook labels and textbook order.

    An element symbol ``x[0,1,2,0]`` prints through the derivation's
    :class:`~symbackprop.core.naming.Notation`: spatial indices as a subscript
    (``x_{31}``, or ``x_{10,2}`` when an index has two digits) and the batch or
    channel indices that vary as a superscript in parentheses (``x^{(2)}_{31}``,
    ``w^{(2,1)}_{11}``); a size-1 batch or channel dimension is not printed.
    Terms of a sum are ordered by upstream-gradient index, then kernel offset;
    factors as ``g x w b``.  A product with a zero factor (a padding position) is
    wrapped in ``padding_command`` when one is given.
    """

    def __init__(self, notation, padding_command: str | None = None, settings=None):
        super().__init__(settings or {})
        self.notation = notation
        self.padding_command = padding_command

    # -- labels --------------------------------------------------------------
    def name(self, array: str) -> str:
        return latex_name(self.notation.name(array))

    def label(self, array: str, index: tuple[int, ...], name: str | None = None,
              free: dict | None = None) -> str:
        """``x_{11}``, ``x^{(2)}_{11}``, ``b^{(2)}``, ``b`` for ``array[index]``.

        ``name`` replaces the array's display name (``\\tilde{x}`` for the padded
        input); ``free`` maps a leading axis to a letter printed instead of its
        number (``{1: "o"}`` gives ``z^{(1,o)}_{11}``).
        """
        shown = self.notation.indices(array, index)
        if len(index) >= 2:
            leading, spatial = list(shown[:-2]), shown[-2:]
        else:
            leading, spatial = list(shown), ()
        if free:
            shape = self.notation.shapes.get(array, ())
            kept = [axis for axis in range(len(index) - len(spatial)) if shape[axis] != 1]
            leading = [free.get(axis, value) for axis, value in zip(kept, leading, strict=True)]
        return (name or self.name(array)) + _superscript(leading) + _subscript(spatial)

    def generic_label(self, array: str, spatial: str | None = None,
                      name: str | None = None) -> str:
        """``x_{ab}``, ``x^{(n,c)}_{ab}``, ``w^{(o,c)}_{mk}``, ``b^{(o)}``: indices as letters."""
        shape = self.notation.shapes.get(array, ())
        leading_axes = range(len(shape) - 2) if len(shape) >= 2 else range(len(shape))
        letters = _LEADING_LETTERS.get(array, ())
        leading = [letters[axis] for axis in leading_axes if shape[axis] != 1]
        if spatial is None:
            spatial = _SPATIAL_LETTERS.get(array, "") if len(shape) >= 2 else ""
        sup = "^{(" + ",".join(leading) + ")}" if leading else ""
        return (name or self.name(array)) + sup + (f"_{{{spatial}}}" if spatial else "")

    def map_label(self, array: str, leading: tuple[int, ...] | None = None) -> str:
        """A whole 2-D map: ``x``, ``x^{(n,c)}`` or, given ``leading`` (0-based), ``x^{(1,2)}``."""
        if leading is None:
            return self.generic_label(array, spatial="")
        shown = self.notation.indices(array, tuple(leading) + (0, 0))[:-2]
        return self.name(array) + _superscript(shown)

    # -- SymPy dispatch ------------------------------------------------------
    def _print_Symbol(self, expr, style="plain"):
        parsed = parse_element(expr)
        if parsed is None:
            return super()._print_Symbol(expr, style=style)
        return self.label(*parsed)

    def _print_Mul(self, expr):
        factors = sorted(expr.args, key=factor_sort_key)
        sign = ""
        if factors and factors[0].is_Number and factors[0].is_negative:
            sign, factors = "-", [-factors[0], *factors[1:]]
            if factors[0] == 1:
                factors = factors[1:]
        parts = [self._print(factor) if factor.is_Number else
                 self.parenthesize(factor, sympy.printing.precedence.PRECEDENCE["Mul"])
                 for factor in factors]
        text = sign + " ".join(parts)
        if self.padding_command and any(f.is_zero for f in factors):
            return rf"{self.padding_command}{{{text}}}"
        return text

    def _print_Add(self, expr, order=None):
        text = ""
        for position, (sign, body) in enumerate(self.terms(expr)):
            if position == 0:
                text += ("-" if sign == "-" else "") + body
            else:
                text += f" {sign} {body}"
        return text

    def terms(self, expr) -> list[tuple[str, str]]:
        """The terms of a sum in textbook order as ``(sign, body)`` pairs."""
        expr = sympy.sympify(expr)
        if expr.is_Add:
            args = sorted(expr.args, key=term_sort_key)
        elif expr == 0:
            return []
        else:
            args = [expr]
        return [("-", self._print(-term)) if term.could_extract_minus_sign()
                else ("+", self._print(term)) for term in args]


# ---------------------------------------------------------------------------
# Layout helpers: equation rows for alignat*, widths, selections, matrices
# ---------------------------------------------------------------------------

def _symbol_width(printer, symbol) -> float:
    """Rough width in em of a printed element label."""
    parsed = parse_element(symbol)
    if parsed is None:
        return 0.6 * len(str(symbol))
    array, index = parsed
    shown = printer.notation.indices(array, index)
    leading, spatial = (shown[:-2], shown[-2:]) if len(index) >= 2 else (shown, ())
    name = printer.notation.name(array)
    base = 0.6 if len(name) == 1 or name.lower() in greek_letters_set else 0.55 * len(name)
    sub = len(_subscript(spatial)) - 3 if spatial else 0
    sup = len(_superscript(leading)) - 3 if leading else 0
    return base + 0.35 * max(sub, sup)


def _term_width(printer, term) -> float:
    """Rough width in em of one printed term including its ``+``."""
    width = 1.3
    for factor in sympy.Mul.make_args(term):
        width += _symbol_width(printer, factor) if factor.is_Symbol else 0.55 * len(str(factor))
    return width


def _terms_per_line(printer, expressions, lhs_width: float, prefer_multiple: int = 1,
                    cap: int = 12) -> int:
    widest = max((_term_width(printer, term) for expr in expressions
                  for term in sympy.Add.make_args(sympy.sympify(expr))), default=2.0)
    count = int((LINE_BUDGET_EM - lhs_width) // widest)
    count = max(1, min(cap, count))
    if prefer_multiple > 1 and count >= prefer_multiple:
        count -= count % prefer_multiple
    return count


def _abbreviate(terms: list, limit: int = TERMS_LIMIT) -> tuple[list, bool]:
    if len(terms) <= limit:
        return terms, False
    return terms[:TERMS_HEAD] + [("+", r"\cdots")] + terms[-TERMS_TAIL:], True


def equation_rows(lhs: str, terms: list[tuple[str, str]], per_line: int,
                  tag: str | None = None, join_lone_last: bool = False) -> tuple[str, int]:
    """One equation for ``alignat*``: ``lhs &= t1 &&+ t2 ...``, broken every ``per_line``.

    Continuation lines start with the sign under the ``=``, so terms in the same
    position line up in columns across every equation of the block.  With
    ``join_lone_last`` a last term left alone on its line (the bias) joins the line
    above.  Returns the rows and the number of ``alignat`` columns they use.
    """
    if not terms:
        terms = [("+", "0")]
    chunks = [terms[start:start + per_line] for start in range(0, len(terms), per_line)]
    if join_lone_last and len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2:] = [chunks[-2] + chunks[-1]]
    rows = []
    for number, chunk in enumerate(chunks):
        cells = []
        for position, (sign, body) in enumerate(chunk):
            if number == 0 and position == 0:
                cells.append("= " + ("-" if sign == "-" else "") + body)
            else:
                cells.append(f"{sign} {body}")
        rows.append((lhs if number == 0 else "") + " &" + " &&".join(cells))
    if tag:
        rows[-1] += rf" \tag*{{{tag}}}"
    return " \\\\\n".join(rows), max(len(chunk) for chunk in chunks)


def representative_indices(shape: tuple[int, ...], spatial_axes: int = 2,
                           limit: int = LISTING_LIMIT) -> tuple[list[tuple[int, ...]], bool]:
    """Indices to list for an array of ``shape``, and whether it is a selection.

    At most ``limit`` elements: all of them.  More: in each of the last
    ``spatial_axes`` axes the first, middle and last position (corners, middles
    of the edges and the centre of every map) and in each leading (batch or
    channel) axis the first and last value.
    """
    total = int(np.prod(shape)) if shape else 1
    if total <= limit:
        return list(np.ndindex(*shape)), False
    spatial_from = max(len(shape) - spatial_axes, 0)
    choices = []
    for axis, size in enumerate(shape):
        if axis >= spatial_from:
            values = sorted({0, (size - 1) // 2, size - 1})
        else:
            values = sorted({0, size - 1})
        choices.append(values)
    return [tuple(index) for index in itertools.product(*choices)], True




def _matrix(printer, grid, zero: str = r"\zero") -> str:
    """A 2-D grid of symbols and zeros as ``bmatrix`` (zeros printed as ``zero``)."""
    rows = []
    for row in grid:
        rows.append(" & ".join(zero if (cell == 0) else printer.doprint(cell) for cell in row))
    return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"


def _list(items, conjunction: str = "and") -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def _typewriter(text: str) -> str:
    """Escape ``text`` for ``\\texttt``, on one line, keeping ``--`` two dashes."""
    return latex_escape(" ".join(str(text).split())).replace("-", "-{}")


def _fmt(number: int) -> str:
    """``1234567 -> 1{,}234{,}567`` for math mode."""
    return f"{number:,}".replace(",", "{,}")


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


# ---------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Block:
    """Equations typeset in one ``alignat*`` environment."""

    columns: int
    equations: tuple[str, ...]
    #: Rows carry superscripts (channel indices): typeset with more space between them.
    spacious: bool = False


def _block(equations: list[tuple[str, int]]) -> _Block:
    texts = tuple(text for text, _ in equations)
    return _Block(columns=max(columns for _, columns in equations), equations=texts,
                  spacious=any("^{(" in text for text in texts))


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


#: ``--NAME-name`` option of ``symbackprop latex`` -> (array it renames, help).
NAME_OPTIONS = {
    "input": ("x", "the input x, e.g. a"),
    "output": ("z", "the output z, e.g. net"),
    "weight": ("w", "the kernel w, e.g. k or theta"),
    "bias": ("b", "the bias b"),
    "grad": ("g", "the upstream gradient g = dL/dz, e.g. delta"),
    "loss": ("L", "the loss L, e.g. E or J"),
}


def regenerate_command(layer, input_shape, index_base: int = 1, names: dict | None = None,
                       show_padding: bool = True) -> str:
    """The ``symbackprop latex`` command line that writes this document again."""
    from symbackprop.core.command_line import layer_arguments

    # A layer that fixes its channel count takes --input HxW; the others C x H x W (or F).
    sample = input_shape[2:] if hasattr(layer, "in_channels") else input_shape[1:]
    words = ["symbackprop", "latex", *layer_arguments(layer),
             "--input", "x".join(map(str, sample))]
    if input_shape[0] != 1:
        words += ["--batch", str(input_shape[0])]
    if index_base != 1:
        words += ["--index-base", str(index_base)]
    for option, (array, _) in NAME_OPTIONS.items():
        if array in (names or {}):
            words += [f"--{option}-name", names[array]]
    if not show_padding:
        words.append("--no-padding-terms")
    return " ".join(f"'{word}'" if any(c in word for c in " {}[]\"\\") else word
                    for word in words)


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
        letters = _LEADING_LETTERS[array]
        spatial = _SPATIAL_LETTERS[array]
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
                              "bias of output channel $o$" if out_channels > 1 else "the bias"))
    superscript_sentence = None
    if any(r"^{(" in label for label, _ in notation_rows):
        superscript_sentence = (
            "A batch or channel index is written only when that dimension has more than one "
            "value, as a superscript in parentheses; row and column are the subscript.")

    size_rows = []
    unread = []
    for out_name, size_name, size, pads, pad_names, kernel, k_name, stride, s_name, dilation, \
            d_name, result, what in (
            ("H_o", "H", height, (top, bottom), (r"p_{\mathrm{top}}", r"p_{\mathrm{bottom}}"),
             kh, "K_H", sh, "s_h", dh, "d_h", out_h, "row"),
            ("W_o", "W", width, (left, right), (r"p_{\mathrm{left}}", r"p_{\mathrm{right}}"),
             kw, "K_W", sw, "s_w", dw, "d_w", out_w, "column")):
        size_rows.append(
            rf"{out_name} &= \left\lfloor \frac{{{size_name} + {pad_names[0]} + {pad_names[1]} "
            rf"- {d_name}({k_name} - 1) - 1}}{{{s_name}}} \right\rfloor + 1"
            rf" = \left\lfloor \frac{{{size} + {pads[0]} + {pads[1]} "
            rf"- {dilation}\cdot({kernel} - 1) - 1}}{{{stride}}} \right\rfloor + 1 = {result}")
        count = unread_length(size, kernel, stride, *pads, dilation)
        if count:
            extent = size + pads[0] + pads[1]
            span = extent - dilated_length(kernel, dilation)
            input_lines = [r - pads[0] + base for r in range(extent - count, extent)
                           if 0 <= r - pads[0] < size]
            lines = f"the last {count} {what}s" if count > 1 else f"the last {what}"
            unread.append({
                "numbers": rf"${size} + {pads[0]} + {pads[1]} - {dilation}\cdot({kernel}-1) - 1 "
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


def _forward_section(derivation, printer, show_padding) -> dict:
    layer = derivation.layer
    name = printer.name
    base = printer.notation.index_base
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    top, bottom, left, right = layer.padding
    cg = layer.group_in_channels

    # The general formula with this layer's numbers, in the reader's index base.
    i, j, m, k = sympy.symbols("i j m k", integer=True)
    row = sympy.expand((i - base) * sh + (m - base) * dh + base)
    col = sympy.expand((j - base) * sw + (k - base) * dw + base)
    index_text = f"{sympy.latex(row, order='lex')}, {sympy.latex(col, order='lex')}"
    xp = r"\tilde{" + name("x") + "}"
    sums = []
    if cg > 1:
        sums.append(rf"\sum_{{c={base}}}^{{{cg - 1 + base}}}")
    sums.append(rf"\sum_{{m={base}}}^{{{kh - 1 + base}}} \sum_{{k={base}}}^{{{kw - 1 + base}}}")
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
    indices, selected = representative_indices(derivation.output_shape)
    expressions = [shown_expressions[index] for index in indices]
    lhs_width = 2.5 if printer.generic_label("z").find("^") < 0 else 3.5
    per_line = _terms_per_line(printer, expressions, lhs_width,
                               prefer_multiple=kw if cg == 1 else kw * kh)
    equations = []
    abbreviated = False
    for index, expr in zip(indices, expressions, strict=True):
        terms, cut = _abbreviate(printer.terms(expr))
        abbreviated |= cut
        tag = rf"\small {len(sympy.Add.make_args(expr))} terms" if cut else None
        equations.append(equation_rows(printer.label("z", index), terms, per_line, tag,
                                       join_lone_last=layer.bias))
    return {
        "general": general,
        "padded_note": padded,
        "block": _block(equations),
        "selection": _selection_note("z", derivation.output_shape, len(indices), printer)
        if selected else None,
        "abbreviated": abbreviated,
        "padding_shown": show_padding and any(layer.padding),
    }


def _selection_note(array, shape, shown, printer) -> str:
    total = int(np.prod(shape))
    return (rf"${printer.name(array)}$ has {_fmt(total).replace('{,}', ',')} elements, more than "
            rf"the {LISTING_LIMIT} this page lists in full: shown are {shown} representative "
            rf"ones, the corners, the middle of each edge and the centre of each map"
            + (", for the first and last of each batch and channel index" if len(shape) > 2 and
               any(s > 1 for s in shape[:-2]) else "")
            + ". Every other element follows the same pattern (and the rules of the next "
              "sections hold for all of them).")


def _outputs_text(printer, outputs) -> str:
    """``feeds z_{11}, z_{12}``; with several output channels ``z^{(o)}_{11}, ... (o = 1, 2)``."""
    channels = list(dict.fromkeys(index[1] for index in outputs))
    positions = list(dict.fromkeys((index[0], 0, index[2], index[3]) for index in outputs))
    suffix = ""
    if len(channels) > 1 and len(outputs) == len(channels) * len(positions):
        base = printer.notation.index_base
        labels = [printer.label("z", index, free={1: "o"}) for index in positions]
        numbers = [str(o + base) for o in channels]
        if len(numbers) > 4 and channels == list(range(channels[0], channels[-1] + 1)):
            numbers = [numbers[0], r"\dots", numbers[-1]]
        suffix = rf",\ o = {', '.join(numbers)}"
    else:
        labels = [printer.label("z", index) for index in outputs]
    count = ""
    if len(labels) > FEEDS_SHOWN:
        labels = labels[:FEEDS_SHOWN - 2] + [r"\dots", labels[-1]]
        count = f" ({len(outputs)} outputs)"
    return rf"feeds ${', '.join(labels)}{suffix}${count}"


def _backward_section(derivation, printer) -> list[dict]:
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
        indices, selected = representative_indices(shape, spatial_axes=2 if len(shape) > 1 else 0)
        expressions = [grads[index] for index in indices]
        lhs = [rf"\frac{{\partial {loss}}}{{\partial {printer.label(array, index)}}}"
               for index in indices]
        lhs_width = 3.0 if "^" not in lhs[0] else 4.0
        per_line = _terms_per_line(printer, expressions, lhs_width)
        equations = []
        abbreviated = False
        unread = []
        for index, left, expr in zip(indices, lhs, expressions, strict=True):
            symbol = element_symbol(array, index)
            all_terms = printer.terms(expr)
            terms, cut = _abbreviate(all_terms)
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
            equations.append(equation_rows(left, terms, per_line, r"\small " + tag))
        sections.append({
            "array": array,
            "title": title,
            "label": printer.generic_label(array),
            "block": _block(equations),
            "selection": _selection_note(array, shape, len(indices), printer)
            if selected else None,
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
    over = ",".join([letter for axis, letter in ((0, "n"), (1, "o")) if z_map[axis] != 1]
                    + ["i", "j"])
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
        over = ",".join(([] if batch == 1 else ["n"]) + ["i", "j"])
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


def to_latex(derivation, index_base: int = 1, names: dict | None = None,
             show_padding: bool = True, *, command: str | None = None) -> str:
    """The derivation as a standalone LaTeX document (a string).

    Parameters
    ----------
    derivation : :class:`~symbackprop.core.derivation.Derivation`
    index_base : int
        1 (default) prints textbook indices ``x_{11}``; 0 prints Python's.
    names : dict, optional
        Display names following the reader's course, e.g.
        ``{"x": "a", "g": "delta", "L": "E"}`` (keys ``x w b z g L``).
    show_padding : bool
        Show products with a padding position as ``0 w_{..}`` in the forward pass.
    command : str, optional
        The command line named in the document's footer; by default the
        ``symbackprop latex`` command that regenerates this document.
    """
    from symbackprop._version import __version__
    if derivation.layer.kind != "conv2d":  # pooling, activations, linear, chains
        from symbackprop.render.latex_layers import chain_to_latex, layer_to_latex

        write = chain_to_latex if hasattr(derivation, "steps") else layer_to_latex
        return write(derivation, index_base=index_base, names=names,
                     show_padding=show_padding, command=command)
    names = dict(names or {})
    command = command or regenerate_command(derivation.layer, derivation.input_shape,
                                            index_base, names, show_padding)
    for key, value in names.items():
        if key not in ("x", "w", "b", "z", "g", "L"):
            raise ValueError(f"names: unknown array {key!r}; use x, w, b, z, g or L")
        latex_name(value)  # validates
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LatexPrinter(notation, padding_command=r"\pad" if show_padding else None)
    proofs = rules.proofs_for(derivation)
    plain = LatexPrinter(notation)
    context = {
        "layer": _layer_section(derivation, plain),
        "forward": _forward_section(derivation, printer, show_padding),
        "backward_intro": _backward_intro(derivation, plain),
        "backward": _backward_section(derivation, plain),
        "rules": _rules_section(derivation, plain, proofs),
        "matrix": _matrix_section(derivation, plain),
        "cost": _cost_section(derivation, plain),
        "names": {key: plain.name(key) for key in ("x", "w", "b", "z", "g", "L")},
        "limits": {"listing": LISTING_LIMIT, "terms": TERMS_LIMIT, "head": TERMS_HEAD,
                   "tail": TERMS_TAIL, "matrix": MATRIX_LIMIT},
        "command": _typewriter(command),
        "command_comment": " ".join(command.split()),
        "version": latex_escape(__version__),
        "has_bias": derivation.layer.bias,
    }
    return latex_environment().get_template("derivation.tex.j2").render(**context)


def repr_latex(derivation, index_base: int = 1, names: dict | None = None) -> str:
    """A short math-mode summary for notebooks: the layer and a few equations."""
    if derivation.layer.kind != "conv2d":
        from symbackprop.render.latex_layers import layer_repr_latex

        return layer_repr_latex(derivation, index_base=index_base, names=names)
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


# ---------------------------------------------------------------------------
# Files and the compiler
# ---------------------------------------------------------------------------

#: Temporary files symbackprop leaves next to a file while it writes it are named
#: ``.<name>.symbackprop-<random>.tmp``; one older than this (a killed run's) is
#: removed by the next write of the same file.
STALE_SECONDS = 3600
#: Private compile folders in the system's temporary folder start with this; a
#: killed run's folder older than a day is removed by the next compile.
COMPILE_FOLDER_PREFIX = "symbackprop-latex-"

#: Suffixes of the files pdflatex (and the tools around it) writes next to a
#: document: an output of ``symbackprop latex`` may not end in one of them.
COMPILER_SUFFIXES = (".pdf", ".log", ".aux", ".out", ".toc", ".lof", ".lot", ".fls",
                     ".fdb_latexmk", ".synctex", ".synctex.gz", ".dvi", ".xdv", ".bbl", ".blg",
                     ".idx", ".ind", ".ilg", ".nav", ".snm", ".vrb")


def _temporary_name_prefix(target: Path) -> str:
    return f".{target.name}.symbackprop-"


def _remove_stale_temporaries(target: Path) -> None:
    """Remove what a killed run left while writing ``target`` (older than an hour)."""
    import time

    prefix = _temporary_name_prefix(target)
    now = time.time()
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
            try:
                if entry.is_file(follow_symlinks=False) and \
                        now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
                    os.unlink(entry.path)
            except OSError:  # another run removed it first, or it is not ours to remove
                pass


def replace_file(target, write) -> Path:
    """Create ``target`` atomically: ``write(stream)`` fills a temporary file beside it
    (``.<name>.symbackprop-<random>.tmp``, mode 0644), which then replaces ``target``.

    Either the whole new file is in ``target`` or ``target`` is as it was; the
    temporary file is removed on any failure, and stale ones of a killed run are
    removed first.  The folder is created if missing (as ``generate -o DIR`` does).
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"cannot write {target.name}: {str(folder)!r} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise type(error)(f"cannot create the folder {str(folder)!r} for {target.name}: "
                          f"{error.strerror or error}") from None
    _remove_stale_temporaries(target)
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=_temporary_name_prefix(target),
                                             suffix=".tmp")
    except OSError as error:
        raise type(error)(f"cannot write {target.name} into {str(folder)!r}: "
                          f"{error.strerror or error}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(temporary, 0o644)  # like the generated modules; mkstemp makes it 0600
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return target


def write_document(text: str, path) -> Path:
    """Write ``text`` to ``path`` atomically, mode 0644 (see :func:`replace_file`)."""
    return replace_file(path, lambda stream: stream.write(text.encode("utf-8")))


def check_output_name(path, pdf: bool = False) -> Path:
    """Refuse a document name that a compiler file could overwrite, before any work.

    ``path`` may not end in one of :data:`COMPILER_SUFFIXES` (``d.log`` would be
    replaced by pdflatex's log); with ``pdf``, it must end in ``.tex`` so that the
    PDF's name differs from it.  Its folder must be a folder, or creatable.

    Raises
    ------
    ValueError
        Naming ``-o`` and the rule.
    """
    path = Path(path)
    lowered = path.name.lower()
    suffix = next((suffix for suffix in COMPILER_SUFFIXES if lowered.endswith(suffix)), None)
    if suffix == ".pdf":
        raise ValueError(f"-o names the .tex file, got {str(path)!r}: use -o "
                         f"{path.with_suffix('.tex')} --pdf to get {path.name} next to it")
    if suffix is not None:
        raise ValueError(f"-o {str(path)!r}: {suffix} is the suffix of a file pdflatex writes; "
                         f"name the document FILE.tex")
    if pdf and path.suffix.lower() != ".tex":
        raise ValueError(f"-o {str(path)!r}: with --pdf the document must end in .tex "
                         f"(the PDF is named after it: FILE.tex -> FILE.pdf)")
    if path.is_dir():
        raise ValueError(f"-o {str(path)!r} is a folder: name the document, -o "
                         f"{path / 'derivation.tex'}")
    if pdf and path.with_suffix(".pdf").is_dir():
        raise ValueError(f"-o {str(path)!r}: its PDF would be {str(path.with_suffix('.pdf'))!r}, "
                         f"which is a folder")
    folder = path.parent if str(path.parent) else Path(".")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"-o {str(path)!r}: {str(existing)!r} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"-o {str(path)!r}: cannot write into the folder {str(existing)!r} "
                         f"(permission denied)")
    return path


INSTALL_HINT = ("install TeX Live (Debian/Ubuntu: apt-get install texlive-latex-base "
                "texlive-latex-recommended texlive-fonts-recommended lmodern; or run "
                "'bash dev.sh test' once), or leave out --pdf to write only the .tex file")


def _remove_stale_compile_folders() -> None:
    """Remove this user's compile folders (and kept logs) older than a day."""
    import time

    now = time.time()
    try:
        entries = list(os.scandir(tempfile.gettempdir()))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(COMPILE_FOLDER_PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if info.st_uid != os.getuid() or now - info.st_mtime < 86400:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except (OSError, AttributeError):
            pass


def compile_pdf(tex_path, *, compiler: str = "pdflatex", timeout: float = 180,
                log=None) -> Path:
    """Compile ``tex_path`` with pdflatex; the PDF appears next to it atomically.

    pdflatex runs in a private temporary folder (``symbackprop-latex-*`` in the
    system's temporary folder), so none of its files (``.aux``, ``.log``, ...) can
    overwrite a file beside the document and a failed run leaves no half-written
    PDF: only the PDF is moved into place, mode 0644.  ``log``, if given, is where
    to copy the compiler's log.  On failure the log is kept in the temporary
    folder and the error names it.

    Raises
    ------
    LatexCompileError
        When the compiler is missing or reports an error.
    """
    tex_path = Path(tex_path)
    if not tex_path.is_file():
        raise FileNotFoundError(f"compile_pdf: no such file: {tex_path}")
    executable = shutil.which(compiler)
    if executable is None:
        raise LatexCompileError(f"--pdf needs {compiler}, which is not installed: {INSTALL_HINT}")
    target = tex_path.with_suffix(".pdf")
    if target == tex_path:
        raise ValueError(f"compile_pdf: {tex_path} would be replaced by its own PDF")
    environment = dict(os.environ)
    environment.setdefault("SOURCE_DATE_EPOCH", "0")  # reproducible PDF dates
    _remove_stale_compile_folders()
    with tempfile.TemporaryDirectory(prefix=COMPILE_FOLDER_PREFIX) as work:
        source = Path(work) / "document.tex"
        shutil.copyfile(tex_path, source)
        # Run again while LaTeX asks for it (cross-references), at most three times.
        for _ in progress.track(range(3), f"{compiler} (up to 3 runs)", delay=0, unit="runs"):
            try:
                completed = subprocess.run(
                    [executable, "-interaction=nonstopmode", "-halt-on-error",
                     "-no-shell-escape", "-file-line-error", "document.tex"],
                    cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, timeout=timeout, env=environment)
            except subprocess.TimeoutExpired:
                raise LatexCompileError(
                    f"{compiler} did not finish {tex_path} within {timeout:.0f} s (the .tex "
                    f"file is written: compile it yourself, or call "
                    f"symbackprop.render.latex.compile_pdf(path, timeout=SECONDS))") from None
            output = completed.stdout.decode("utf-8", "replace")
            if completed.returncode != 0 or "Rerun to get" not in output:
                break
        produced_log = Path(work) / "document.log"
        produced = Path(work) / "document.pdf"
        if log is not None and produced_log.is_file():
            shutil.copyfile(produced_log, log)
        if completed.returncode != 0 or not produced.is_file():
            kept = "none written"
            if produced_log.is_file():
                # Outside the folder that is about to be removed, never beside the document.
                handle, kept = tempfile.mkstemp(prefix=f"{COMPILE_FOLDER_PREFIX}{tex_path.stem}-",
                                                suffix=".log")
                os.close(handle)
                shutil.copyfile(produced_log, kept)
            # With -file-line-error, errors read "./document.tex:12: Undefined control ...".
            errors = [re.sub(r"^\./document\.tex:", "line ", line)
                      for line in output.splitlines()
                      if re.match(r"(\./document\.tex:\d+: |! )", line)]
            detail = "; ".join(errors[:2]) or f"exit status {completed.returncode}"
            raise LatexCompileError(
                f"{compiler} could not compile {tex_path}: {detail} (log: {kept})")
        with open(produced, "rb") as pdf:
            replace_file(target, lambda stream: shutil.copyfileobj(pdf, stream))
    return target


# A notebook typesets a derivation with its short summary (the core asks this table).
NOTEBOOK_LATEX.register(Derivation, repr_latex)
NOTEBOOK_LATEX.register(ChainDerivation, repr_latex)
