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

- ``detail`` (:data:`DETAILS`, ``--detail``): by default an array lists one element of
  each shape of sum (:func:`select_elements`) with how many elements share it, and
  says so; ``full`` lists every element, ``brief`` one.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import sympy
from sympy.printing.latex import LatexPrinter as SympyLatexPrinter
from sympy.printing.latex import greek_letters_set

from symbackprop.core import progress
from symbackprop.core.chain import ChainDerivation
from symbackprop.core.derivation import NOTEBOOK_LATEX, Derivation
from symbackprop.core.indexing import SIZE_LATEX_NAMES, output_size_formula
from symbackprop.core.layers import ResidualSum
from symbackprop.core.naming import (
    factor_sort_key,
    parse_element,
    term_sort_key,
)
from symbackprop.core.operators import chain_names, chain_rule
from symbackprop.core.registry import Registry
from symbackprop.render.latex_names import (
    free_letters,
    has_subscript,
    join_scripts,
    latex_name,
    math_letters,
    name_letters,
    option_name,
    parse_name,
    rename_in_prose,
    rename_index_letters,
)
from symbackprop.render.templating import latex_environment, latex_escape
from symbackprop.render.text import split_sign

__all__ = [
    "LISTING_LIMIT",
    "TERMS_LIMIT",
    "TERMS_HEAD",
    "TERMS_TAIL",
    "MATRIX_LIMIT",
    "LatexCompileError",
    "LatexPrinter",
    "LayerLatexPrinter",
    "LATEX",
    "LatexParts",
    "FormulaLatexPrinter",
    "size_formula_latex",
    "size_extent_latex",
    "latex_name",
    "option_name",
    "to_latex",
    "repr_latex",
    "representative_indices",
    "DETAILS",
    "DEFAULT_DETAIL",
    "ElementClass",
    "ElementSelection",
    "sum_shape",
    "element_classes",
    "select_elements",
    "selection_note",
    "explain_selection",
    "terms_limit",
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
#: Every letter a formula uses for a generic index (batch, channels, positions, offsets):
#: a reader's name never shares one (see :meth:`LatexPrinter.index_letter`).
INDEX_LETTERS = ("n", "c", "o", "ab", "ij", "mk", "l", "q")


class LatexCompileError(RuntimeError):
    """pdflatex is missing, or it could not compile the document."""


# ---------------------------------------------------------------------------
# Names and the printer
# ---------------------------------------------------------------------------

def _subscript(indices, commas: bool = False) -> str:
    if not indices:
        return ""
    if not commas and all(0 <= i < 10 for i in indices):
        return "_{" + "".join(map(str, indices)) + "}"
    return "_{" + ",".join(map(str, indices)) + "}"


def _index_reaches_ten(notation) -> bool:
    """Whether a subscript of two or more indices in this notation can hold a 10 (or more)."""
    for shape in (notation.shapes.values() if notation is not None else ()):
        shape = tuple(shape)
        if len(shape) < 2:
            continue
        positions = 2 if len(shape) < 3 else len(shape) - 2 \
            if notation.spatial_axes is None else notation.spatial_axes
        if positions >= 2 and max(shape[-positions:]) - 1 + notation.index_base >= 10:
            return True
    return False


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
        #: One index of the document can reach 10: every subscript is written with commas
        #: (x_{1,1} ... x_{10,1}), never x_{11} beside x_{10,1}.
        self.index_commas = _index_reaches_ten(notation)
        self._letters = None  # index letter -> the one written (index_letter), once known

    # -- labels --------------------------------------------------------------
    def name(self, array: str) -> str:
        return latex_name(self.notation.name(array))

    def index_letter(self, letter: str) -> str:
        """The letter a formula writes for the generic index ``letter``: itself, or a
        spare one when a reader's name uses it (the input named ``a``: ``a_{pq}``)."""
        if self._letters is None:
            self._letters = free_letters(INDEX_LETTERS, name_letters(
                latex_name(name) for name in self.notation.names.values()))
        return "".join(self._letters.get(char, char) for char in letter)

    def label(self, array: str, index: tuple[int, ...], name: str | None = None,
              free: dict | None = None) -> str:
        """``x_{11}``, ``x^{(2)}_{11}``, ``b^{(2)}``, ``b`` for ``array[index]``.

        ``name`` replaces the array's display name (``\\tilde{x}`` for the padded
        input); ``free`` maps a leading axis to a letter printed instead of its
        number (``{1: "o"}`` gives ``z^{(1,o)}_{11}``).
        """
        shown = self.notation.indices(array, index)
        # positions are subscripts: every axis after the batch and channel axes of a 3-d to
        # 5-d array, or as many as the layer says it has (1-D, 3-D); the last two otherwise
        positions = 2 if len(index) < 3 else len(index) - 2 \
            if self.notation.spatial_axes is None else self.notation.spatial_axes
        if len(index) >= 2:
            leading, spatial = list(shown[:-positions]), shown[-positions:]
        else:
            leading, spatial = list(shown), ()
        if free:
            shape = self.notation.shapes.get(array, ())
            kept = [axis for axis in range(len(index) - len(spatial)) if shape[axis] != 1]
            leading = [free.get(axis, value) for axis, value in zip(kept, leading, strict=True)]
        name = name or self.name(array)
        # a course name's own subscript comes first, then the indices: w_{b,1}, never w_{b1}
        commas = bool(spatial) and (self.index_commas or has_subscript(name))
        return join_scripts(name + _superscript(leading) + _subscript(spatial, commas))

    def generic_label(self, array: str, spatial: str | None = None,
                      name: str | None = None) -> str:
        """``x_{ab}``, ``x^{(n,c)}_{ab}``, ``w^{(o,c)}_{mk}``, ``b^{(o)}``: indices as letters."""
        shape = self.notation.shapes.get(array, ())
        leading_axes = range(len(shape) - 2) if len(shape) >= 2 else range(len(shape))
        letters = _LEADING_LETTERS.get(array, ())
        leading = [self.index_letter(letters[axis]) for axis in leading_axes if shape[axis] != 1]
        if spatial is None:
            spatial = self.index_letter(_SPATIAL_LETTERS.get(array, "")) if len(shape) >= 2 \
                else ""
        sup = "^{(" + ",".join(leading) + ")}" if leading else ""
        return join_scripts((name or self.name(array)) + sup
                            + (f"_{{{spatial}}}" if spatial else ""))

    def map_label(self, array: str, leading: tuple[int, ...] | None = None) -> str:
        """A whole 2-D map: ``x``, ``x^{(n,c)}`` or, given ``leading`` (0-based), ``x^{(1,2)}``."""
        if leading is None:
            return self.generic_label(array, spatial="")
        shown = self.notation.indices(array, tuple(leading) + (0, 0))[:-2]
        return join_scripts(self.name(array) + _superscript(shown))

    # -- SymPy dispatch ------------------------------------------------------
    def _print_Symbol(self, expr, style="plain"):
        parsed = parse_element(expr)
        if parsed is None:
            return super()._print_Symbol(expr, style=style)
        return self.label(*parsed)

    def _print_Mul(self, expr):
        if any(f.is_Pow and f.exp.is_Rational and not f.exp.is_Integer and f.exp < 0
               for f in expr.args):
            return self._print_fraction(expr)
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

    def _print_fraction(self, expr):
        """``\\frac{2 g \\gamma (x - \\mu)}{3 \\sqrt{\\sigma^2 + \\epsilon}}``: a product with a
        root in its denominator, the sums' common rational coefficients pulled out."""
        coefficient, numerator, denominator = sympy.Integer(1), [], []
        for factor in expr.args:
            if factor.is_Pow and factor.exp.is_Rational and factor.exp < 0:
                denominator.append(sympy.Pow(factor.base, -factor.exp))
                continue
            if factor.is_Add:
                content, primitive = factor.as_content_primitive()
                if content.is_Rational and content != 1:
                    if primitive.could_extract_minus_sign():
                        content, primitive = -content, -primitive
                    coefficient, factor = coefficient * content, primitive
            if factor.is_Rational:
                coefficient *= factor
            else:
                numerator.append(factor)
        if numerator:
            numerator = list(sympy.Mul.make_args(sympy.Mul(*numerator)))
        sign = "-" if coefficient < 0 else ""
        coefficient = abs(coefficient)
        top = [self.parenthesize(f, sympy.printing.precedence.PRECEDENCE["Mul"])
               for f in sorted(numerator, key=factor_sort_key)]
        if coefficient.p != 1 or not top:
            top.insert(0, str(coefficient.p))
        bottom = [self._print(f) for f in denominator]
        if coefficient.q != 1:
            bottom.insert(0, str(coefficient.q))
        return rf"{sign}\frac{{{' '.join(top)}}}{{{' '.join(bottom)}}}"

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
        pairs = [("-", self._print(-term)) if term.could_extract_minus_sign()
                 else ("+", self._print(term)) for term in args]
        # a fraction whose sign came out of a sum inside it: "+ -\frac" is "- \frac"
        return [("-" if sign == "+" else "+", body[1:]) if body.startswith(r"-\frac")
                else (sign, body) for sign, body in pairs]


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
    try:  # a course name's own scripts share the index scripts' line (a^{[l-1](2)}_{11})
        course = parse_name(name)
    except ValueError:
        course = None
    if course is not None and (course.superscript or course.subscript):
        letters = re.sub(r"\\[A-Za-z]+|[{}]", "", course.base)
        base = 0.6 if len(letters) <= 1 else 0.55 * len(letters)
        sub = len(course.subscript) + (len(_subscript(spatial, True)) - 2 if spatial else 0)
        sup = len(course.superscript) + (len(_superscript(leading)) - 3 if leading else 0)
        return base + 0.35 * max(sub, sup)
    base = 0.6 if len(name) == 1 or name.lower() in greek_letters_set else 0.55 * len(name)
    sub = len(_subscript(spatial)) - 3 if spatial else 0
    sup = len(_superscript(leading)) - 3 if leading else 0
    return base + 0.35 * max(sub, sup)


def _term_width(printer, term) -> float:
    """Rough width in em of one printed term including its ``+``."""
    factors = sympy.Mul.make_args(term)
    if any(factor.is_Pow and factor.exp.is_Rational and factor.exp < 0 for factor in factors):
        return 1.3 + _printed_width(printer.doprint(term))
    width = 1.3
    for factor in factors:
        width += _symbol_width(printer, factor) if factor.is_Symbol else 0.55 * len(str(factor))
    return width


def _printed_width(text: str) -> float:
    """Rough width in em of printed LaTeX: a ``\\frac`` as wide as the wider of its two
    parts, commands and braces taking no room, sub- and superscripts smaller."""
    start = text.find(r"\frac{")
    if start < 0:
        scripts = "".join(re.findall(r"[_^]\{([^{}]*)\}", text))
        body = re.sub(r"[_^]\{[^{}]*\}", "", text)
        body = re.sub(r"\\(left|right|bigl|bigr)\b", "", body)
        letters = len(re.findall(r"\\[a-zA-Z]+", body))  # \gamma: one letter wide
        body = re.sub(r"\\[a-zA-Z]+|[{} ]", "", body)
        return 0.45 * (len(body) + letters) + 0.25 * len(scripts)
    parts, position = [], start + len(r"\frac")
    for _ in range(2):  # the numerator's and the denominator's braces
        depth, begin = 0, position
        for position in range(begin, len(text)):
            depth += {"{": 1, "}": -1}.get(text[position], 0)
            if depth == 0:
                break
        parts.append(text[begin + 1:position])
        position += 1
    return (_printed_width(text[:start]) + max(map(_printed_width, parts))
            + _printed_width(text[position:]))


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


# ---------------------------------------------------------------------------
# Which elements a printout writes out (--detail)
# ---------------------------------------------------------------------------

#: ``--detail`` of ``symbackprop latex``: how many elements of each array are written out.
DETAILS = {
    "brief": "one element of each array (the one with the most terms) beside the rules",
    "pattern": "one element of each distinct sum shape (corner, edge, interior, stride "
               "phase, ...) with how many elements share it",
    "full": "every element",
}
DEFAULT_DETAIL = "pattern"
#: With ``--detail pattern`` an array of several shapes of at most this many elements, whose
#: sums have at most PATTERN_FULL_TERMS terms together, is listed in full (a worked
#: example's whole map reads better than its shapes).
PATTERN_FULL_LIMIT = 16
PATTERN_FULL_TERMS = 100
#: ... and so is a map (batch, channel and spatial axes) of a single shape with at most this
#: many elements (a 3x3 map).
PATTERN_SMALL = 9
#: ... and at most this many shapes of one array are written out (every number of terms
#: that occurs first, then the others in reading order).
PATTERN_LIMIT = 12
#: Fewer elements leave room for longer sums: with ``--detail pattern`` or ``brief`` a sum
#: is abbreviated past this many terms (so that every channel of a forward sum shows).
PATTERN_TERMS_LIMIT = 40
#: A chain's walk starts on a page of its own when its table and walk have more rows.
WALK_BESIDE_TABLE = 16
#: A layer of a chain writes out at most this many shapes of an array (about a page a
#: layer for LeNet-5), its sums abbreviated past TERMS_LIMIT terms.
CHAIN_PATTERN_LIMIT = 5


def terms_limit(detail: str) -> int:
    """How many terms a written sum may have before it is abbreviated, for ``detail``."""
    return TERMS_LIMIT if detail == "full" else PATTERN_TERMS_LIMIT


@dataclass(frozen=True)
class ElementClass:
    """Elements of an array whose sums have the same shape (:func:`sum_shape`).

    ``index`` is the first of them in reading order (row-major), ``count`` how many
    there are, ``terms`` the number of terms of each sum.
    """

    index: tuple[int, ...]
    count: int
    terms: int


@dataclass(frozen=True)
class ElementSelection:
    """The elements of one array a printout writes out (:func:`select_elements`).

    ``counts[k]`` is how many elements share the shape of ``indices[k]`` (``None``
    when every element is listed); ``shapes`` how many distinct shapes the array has.
    """

    detail: str
    indices: tuple[tuple[int, ...], ...]
    counts: tuple[int, ...] | None
    total: int
    shapes: int
    #: every number of terms that occurs is among the elements written out
    every_count: bool = True

    @property
    def selected(self) -> bool:
        return len(self.indices) < self.total


def _factor_label(symbol, parsed, index, shape, parameters, lows, shapes) -> str:
    array, position = parsed
    if tuple(position) == tuple(index) and tuple(shapes.get(array, ())) == tuple(shape):
        return f"{array}@self"
    if array in parameters:
        return f"{array}@" + ",".join(str(p - low) for p, low in zip(position, lows[array],
                                                                      strict=True))
    return f"{array}@"


def sum_shape(expression, index, shape, parameters=(), shapes=None, _parsed=None) -> tuple:
    """The shape of the sum ``expression`` of element ``index`` of an array of ``shape``.

    Two elements have the same shape when their sums have the same terms up to a shift:
    each parameter element (a kernel tap ``w_{mk}``, a weight) is named by its index
    relative to the smallest index of that parameter in the sum (so the set of kernel
    offsets counts, up to translation, channels included); an element of the same array
    (and shape) at the same index is "itself"; any other activation or gradient element
    is one of the others, whichever it is.  The shape is the multiset of its terms in
    these names, with their coefficients and padding zeros.  Corners, edges, interior,
    each stride phase, each position in a pooling window get different shapes; channels,
    samples and the elements of a batch-norm group that play the same part share one.
    (``_parsed``: a cache of :func:`~symbackprop.core.naming.parse_element` shared by the
    elements of one array.)
    """
    shapes = shapes or {}
    expression = sympy.sympify(expression)
    cache = {} if _parsed is None else _parsed
    parsed = {}
    for symbol in expression.free_symbols:
        element = cache.get(symbol, False)
        if element is False:
            element = cache[symbol] = parse_element(symbol)
        if element is not None:
            parsed[symbol] = element
    lows: dict = {}
    for array, position in parsed.values():
        if array in parameters:
            low = lows.get(array)
            lows[array] = tuple(position) if low is None else tuple(map(min, low, position))
    labels = {symbol: _factor_label(symbol, element, index, shape, parameters, lows, shapes)
              for symbol, element in parsed.items()}
    terms = []
    for term in sympy.Add.make_args(expression):
        factors = sympy.Mul.make_args(term)
        if all(factor.is_Symbol or factor.is_Number for factor in factors):
            # a product of elements and numbers (the common case): no recursion needed
            terms.append(" ".join(sorted(labels[factor] if factor in labels else str(factor)
                                         for factor in factors)))
        else:
            terms.append(_structure(term, labels))
    return tuple(sorted(terms))


def _structure(expr, labels) -> str:
    """``expr`` as text with its element symbols replaced by their labels; the arguments of
    a sum, a product or a tuple (a group's elements, a window) as a multiset, and a tuple
    of plain integers (an output position a function carries) left out."""
    if expr.is_Symbol:
        return labels.get(expr, str(expr))
    if expr.is_Number or not expr.args:
        return str(expr)
    is_tuple = type(expr) is sympy.Tuple
    if is_tuple and all(arg.is_Integer for arg in expr.args):
        return "#"
    children = [_structure(arg, labels) for arg in expr.args]
    if expr.is_Add or expr.is_Mul or is_tuple:
        children.sort()
    return f"{type(expr).__name__}({','.join(children)})"


def element_classes(expressions, shape, parameters=(), shapes=None) -> list[ElementClass]:
    """The elements of an array grouped by :func:`sum_shape`, in reading order of their
    first element; the counts add up to the array's size."""
    classes: dict = {}
    parsed: dict = {}
    for index in np.ndindex(*shape):
        expression = sympy.sympify(expressions[index])
        key = sum_shape(expression, index, shape, parameters, shapes, parsed)
        entry = classes.get(key)
        if entry is None:
            classes[key] = [index, 1, 0 if expression == 0 else
                            len(sympy.Add.make_args(expression))]
        else:
            entry[1] += 1
    return [ElementClass(tuple(index), count, terms)
            for index, count, terms in classes.values()]


def select_elements(expressions, shape, detail: str = DEFAULT_DETAIL, parameters=(),
                    shapes=None, limit: int = PATTERN_LIMIT,
                    list_small: bool = True) -> ElementSelection:
    """The elements of an array of ``shape`` (sums ``expressions``) a printout writes out.

    ``full``: every element.  ``pattern``: every element of a small array of several
    shapes (:data:`PATTERN_FULL_LIMIT` elements, :data:`PATTERN_FULL_TERMS` terms) or of
    at most :data:`PATTERN_SMALL` elements of a map, else the first
    element of each shape (:func:`element_classes`) with how many share it; past
    ``limit`` (:data:`PATTERN_LIMIT`) shapes, one of each number of terms and then the
    first ones in reading order (``list_small=False``: small arrays too, as in a chain).
    ``brief``:
    one element, the first with the most terms.
    """
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {', '.join(DETAILS)}, got {detail!r}")
    shape = tuple(shape)
    total = int(np.prod(shape)) if shape else 1
    everything = [tuple(index) for index in np.ndindex(*shape)]
    if detail == "full":
        return ElementSelection(detail, tuple(everything), None, total, total)
    classes = element_classes(expressions, shape, parameters, shapes)
    small_map = total <= PATTERN_SMALL and len(shape) > 2  # a worked example's 3x3 map
    if detail == "pattern" and list_small and (len(classes) > 1 or small_map) and \
            total <= PATTERN_FULL_LIMIT and \
            sum(group.terms * group.count for group in classes) <= PATTERN_FULL_TERMS:
        return ElementSelection(detail, tuple(everything), None, total, len(classes))
    if detail == "brief":
        widest = max(classes, key=lambda group: group.terms)  # the first of the widest
        return ElementSelection(detail, (widest.index,), (widest.count,), total, len(classes))
    chosen, every_count = classes, True
    if len(classes) > limit:
        # the first shape of each number of terms; past the limit, numbers spread from the
        # fewest terms to the most (the interior's), then other shapes in reading order
        first = {}
        for group in classes:
            first.setdefault(group.terms, group)
        widths = sorted(first)
        if len(widths) > limit:
            every_count = False
            widths = [widths[round(k * (len(widths) - 1) / (limit - 1))] for k in range(limit)] \
                if limit > 1 else widths[-1:]
        picked = [first[width] for width in widths]
        for group in classes:
            if len(picked) >= limit:
                break
            if group not in picked:
                picked.append(group)
        chosen = [group for group in classes if group in picked]
    return ElementSelection(detail, tuple(group.index for group in chosen),
                            tuple(group.count for group in chosen), total, len(classes),
                            every_count)


def selection_note(array, selection, printer) -> str | None:
    """The sentence before a listing that is not every element, saying what was chosen
    (:data:`SELECTION_EXPLAINED` says once per document what a shape of sum is)."""
    if not selection.selected:
        return None
    total = _fmt(selection.total).replace("{,}", ",")
    shown = len(selection.indices)
    head = rf"${printer.name(array)}$: {total} elements"
    shapes = f"{selection.shapes} shape{'s' if selection.shapes != 1 else ''} of sum"
    if selection.detail == "brief":
        return head + f" in {shapes}; written out is the first with the most terms."
    if selection.shapes == 1:
        return head + ", all with one shape of sum; written out is the first."
    text = head + f" in {shapes}; written out is the first element of each shape"
    if shown < selection.shapes:
        rest = selection.total - sum(selection.counts)
        which = "every number of terms that occurs" if selection.every_count else \
            "numbers of terms from the fewest to the most"
        text += (rf" for {shown} of them ({which}); the other "
                 rf"{selection.shapes - shown} shapes hold {rest} elements")
    return text + "."


#: Said once per document, before the first listing that writes out a selection.
SELECTION_EXPLAINED = (
    "Two elements have the same shape of sum when their sums have the same terms, shifted "
    "to other positions, samples or channels; the number on the right of an element written "
    r"out says how many elements share its shape (\texttt{-{}-detail full} lists every "
    r"element, \texttt{-{}-detail brief} one of each array).")


def explain_selection(parts) -> None:
    """Add :data:`SELECTION_EXPLAINED` to the first of the listings ``parts`` (dicts with a
    ``selection`` note, in document order) that has a note."""
    for part in parts:
        if part.get("selection"):
            part["selection"] = SELECTION_EXPLAINED + " " + part["selection"]
            return




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
                       show_padding: bool = True, detail: str = DEFAULT_DETAIL) -> str:
    """The ``symbackprop latex`` command line that writes this document again."""
    from symbackprop.core.command_line import layer_arguments

    # A layer that fixes its channel count takes --input HxW; the others C x H x W (or F);
    # a layer may spell it itself (input_argument: None when its default is the shape)
    sample = input_shape[2:] if hasattr(layer, "in_channels") else input_shape[1:]
    own = getattr(layer, "input_argument", None)
    text = own(input_shape) if own is not None else "x".join(map(str, sample))
    words = ["symbackprop", "latex", *layer_arguments(layer),
             *(["--input", text] if text is not None else [])]
    if input_shape[0] != 1:
        words += ["--batch", str(input_shape[0])]
    if index_base != 1:
        words += ["--index-base", str(index_base)]
    for option, (array, _) in NAME_OPTIONS.items():
        if array in (names or {}):
            words += [f"--{option}-name", names[array]]
    if not show_padding:
        words.append("--no-padding-terms")
    if detail != DEFAULT_DETAIL:
        words += ["--detail", detail]
    return " ".join(f"'{word}'" if any(c in word for c in " {}[]\"\\") else word
                    for word in words)


def _outputs_text(printer, outputs) -> str:
    """``feeds z_{11}, z_{12}``; with several output channels ``z^{(o)}_{11}, ... (o = 1, 2)``."""
    channels = list(dict.fromkeys(index[1] for index in outputs))
    positions = list(dict.fromkeys((index[0], 0, index[2], index[3]) for index in outputs))
    suffix = ""
    if len(channels) > 1 and len(outputs) == len(channels) * len(positions):
        base = printer.notation.index_base
        letter = printer.index_letter("o")  # never the letter of a name (the output o)
        labels = [printer.label("z", index, free={1: letter}) for index in positions]
        numbers = [str(o + base) for o in channels]
        if len(numbers) > 4 and channels == list(range(channels[0], channels[-1] + 1)):
            numbers = [numbers[0], r"\dots", numbers[-1]]
        suffix = rf",\ {letter} = {', '.join(numbers)}"
    else:
        labels = [printer.label("z", index) for index in outputs]
    count = ""
    if len(labels) > FEEDS_SHOWN:
        labels = labels[:FEEDS_SHOWN - 2] + [r"\dots", labels[-1]]
        count = f" ({len(outputs)} outputs)"
    return rf"feeds ${', '.join(labels)}{suffix}${count}"


#: A chain's arrays: ``a2``, ``delta2``, ``w2``, ``b2`` (layer 2's), and the option that
#: renames each (``--input-name`` names the activations, ``--grad-name`` the error terms).
_CHAIN_ROLES = {"a": "x", "delta": "g", "w": "w", "b": "b"}
#: A chain's arrays: ``a2``, ``delta2``, ``w2``, ``b2`` (layer 2's).
_CHAIN_ARRAY = re.compile(r"(a|delta|w|b)(\d+)")


class LayerLatexPrinter(LatexPrinter):
    """:class:`~symbackprop.render.latex.LatexPrinter` for the functions of the new layers and
    the arrays of chains.

    An indicator ``Piecewise`` as ``[x_{11} > 0]``; a chain's ``a2[0,0,1,1]`` as
    ``a^{[2]}_{22}`` and ``delta2`` as ``\\delta^{[2]}``.  A kind's own SymPy functions
    print themselves (``_latex``): ``\\max(x_{11}, ...)``, ``\\sigma(x_{11})``.
    """

    def __init__(self, notation, window_output: str = "z", vector_bias: bool = False,
                 **options):
        super().__init__(notation, **options)
        #: The array the layer writes: a kind's own function may name it (max pooling's
        #: ``[x_{22} = \\arg\\max z_{11}]``).
        self.window_output = window_output
        #: A fully connected layer's bias is a vector: ``b_{1}``, not a channel's ``b^{(1)}``.
        self.vector_bias = vector_bias

    @classmethod
    def print_function(cls, function_class, method) -> None:
        """Teach the printer a kind's own SymPy function: ``method(printer, expr, exp=None)``
        becomes ``_print_<function_class name>`` (``exp``: the power of ``f^2(x)``)."""
        setattr(cls, f"_print_{function_class.__name__}", method)

    def name(self, array: str) -> str:
        match = _CHAIN_ARRAY.fullmatch(array)
        if match is None:
            return super().name(array)
        stem = r"\delta" if match.group(1) == "delta" else match.group(1)
        own = self.notation.names.get(_CHAIN_ROLES[match.group(1)])
        if own is not None:
            # the course's letter (and subscript) with the chain's layer superscript: the
            # input named a^{[l-1]} reads a^{[2]} in layer 3, the bias w_b reads w_{b}^{[2]}
            course = parse_name(own)
            stem = course.base + (f"_{{{course.subscript}}}" if course.subscript else "")
        return f"{stem}^{{[{match.group(2)}]}}"

    def label(self, array, index, name=None, free=None):
        stem = _CHAIN_ARRAY.fullmatch(array)
        is_bias = array == "b" or (stem is not None and stem.group(1) == "b")
        if self.vector_bias and is_bias and len(index) == 1:
            shown = self.notation.indices(array, index)
            return (name or self.name(array)) + (f"_{{{shown[0]}}}" if shown else "")
        text = super().label(array, index, name=name, free=free)
        # a^{[2]}^{(1,2)}_{11} -> a^{[2](1,2)}_{11}: one superscript
        return text.replace("]}^{(", "](")

    def _print_Pow(self, expr):
        """``\\frac{1}{1 + e^{-x}}``: a reciprocal as a fraction."""
        if expr.exp.is_Integer and expr.exp < 0:
            return rf"\frac{{1}}{{{self._print(expr.base ** -expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_Function(self, expr, exp=None):
        """``\\sin(x)``, ``\\sin^{2}(x)``: a function's argument in plain parentheses."""
        name = self._hprint_Function(expr.func.__name__)
        power = "" if exp is None else f"^{{{exp}}}"
        return rf"{name}{power}({', '.join(self._print(arg) for arg in expr.args)})"

    # -- a chain's backward rule (symbackprop.core.operators) -------------------
    def _print_ArrayName(self, expr):
        """``\\delta^{[3]}``, ``w^{[4]}``: a whole array of a chain."""
        return self.name(expr.name)

    def _print_Upsample(self, expr):
        return rf"\operatorname{{upsample}}\bigl({self._print(expr.args[0])}\bigr)"

    def _print_Reshape(self, expr):
        # the layer table states the shape; the walk names the operation
        return rf"\operatorname{{reshape}}\bigl({self._print(expr.args[0])}\bigr)"

    def _print_Transposed(self, expr):
        return rf"\bigl({self._print(expr.args[0])}\bigr)^{{T}}"

    def _print_MatrixProduct(self, expr):
        return " ".join(self._print(arg) for arg in expr.args)

    def _print_ElementwiseProduct(self, expr):
        return r" \odot ".join(self._print(arg) for arg in expr.args)

    def _print_ActivationDerivative(self, expr):
        return rf"f'\bigl({self._print(expr.args[0])}\bigr)"

    def _print_TransposedConvolution(self, expr):
        """``\\sum_o corr(pad(dil_s g_o), rot180 w_{o,c})``, for input channel ``c``
        (``\\operatorname``: a notebook's MathJax or KaTeX knows no ``\\corr``)."""
        g, w = (self._print(arg) for arg in expr.args)
        return (rf"\sum_o \operatorname{{corr}}\bigl(\operatorname{{pad}}(\operatorname{{dil}}_s "
                rf"{g}_{{o}}),\ \operatorname{{rot}}_{{180}}\, {w}_{{o,c}}\bigr)")

    def _print_Piecewise(self, expr):
        pieces = expr.args
        if len(pieces) == 2 and pieces[0].expr == 1 and pieces[1].expr == 0 \
                and pieces[1].cond == sympy.true:
            return rf"[{self._print(pieces[0].cond)}]"
        rows = [rf"{self._print(piece.expr)} & "
                + (r"\text{otherwise}" if piece.cond == sympy.true else self._print(piece.cond))
                for piece in pieces]
        return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"


def step_rule(step, g: str | None = None) -> sympy.Expr:
    """The expression of a chain step's ``delta^{l-1}`` (its kind's
    :func:`~symbackprop.core.operators.chain_rule`), ``g`` replacing its error term."""
    names = chain_names(step.names["g"], step.names["x"], step.names.get("w"))
    if g is not None:
        names["g"] = g
    return chain_rule(step.layer, names)


def print_chain_rule(step, printer, rule=None) -> str:
    """``\\delta^{[l-1]} = ...``: a chain step's rule (by default its kind's) printed."""
    rule = step_rule(step) if rule is None else rule
    index = f"_{{{rule.result_index}}}" if getattr(rule, "result_index", None) else ""
    return f"{printer.name(step.names['grad_x'])}{index} = {printer.doprint(rule)}"


# ---------------------------------------------------------------------------
# What a kind supplies
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LatexParts:
    """What the LaTeX document asks of a layer kind (``kinds/<kind>/latex.py`` fills it).

    Attributes
    ----------
    title : str or ``(layer) -> str``
        The document's heading, ``Backpropagation through max pooling``.
    general : ``(layer, names, index_base) -> {"forward": ..., "backward": ...}``, optional
        The kind's general formulas in the reader's names (``names`` maps ``x z g L``
        and, when the layer has them, ``w b`` to LaTeX); ``None`` when the kind's own
        document states them (a chain's section then shows none).
    chain_rule : ``(step, printer) -> str``
        ``\\delta^{[l-1]}`` from ``\\delta^{[l]}`` for a chain's walk: by default the
        expression the kind registered in
        :data:`~symbackprop.core.operators.CHAIN_RULES`, printed.
    chain_words : str or ``(layer, printer) -> str``
        What that step is, in words.
    notes : ``(layer) -> [str]``
        Paragraphs after the general formulas (ties, overlaps, divisors).
    size_rows : ``(layer, input_shape, output_shape) -> [str]``, optional
        ``alignat`` rows of the output size (:func:`size_formula_latex`).
    closed_form : ``(derivation, printer) -> dict``, optional
        A proven closed form the document states with its verdict (average pooling's
        Kronecker form): ``formula``, ``holds``, ``checked``, ``tail``, and optionally
        ``intro``, the sentence before it (by default the Kronecker form's).
    shows_padding : bool
        The forward pass lists padding products (``0 w_{11}``) unless switched off.
    vector_bias : bool
        The bias is a vector (``b_{1}``), not one per channel (``b^{(1)}``).
    elementwise : bool
        An activation: in a chain followed by an upsampling layer, the walk shows the
        notes' combined ``\\delta^{[l-1]} = \\operatorname{upsample}(\\delta^{[l]}) \\odot f'``.
    upsamples : bool
        The layer's backward is an upsample (pooling).
    document : ``(derivation, index_base, names, show_padding) -> (template, context)``,
        optional: a kind with its own sections (the convolution's rules, matrix and cost);
        by default the layer document of ``templates/layers.tex.j2``.
    repr_latex : ``(derivation, index_base, names) -> str``, optional
        The notebook summary, by default the first output and input gradient.
    sections : ``(derivation, printer) -> [{"title": str, "body": str}]``, optional
        Sections of LaTeX the layer document places after the backward pass (the
        N-dimensional convolutions' proven closed forms and matrix view).
    constant_meanings : dict
        What each of the derivation's constants (inputs nobody differentiates by) is.
    """

    title: object
    general: Callable | None
    chain_rule: Callable = print_chain_rule
    chain_words: object = ""
    notes: Callable = field(default=lambda layer: [])
    size_rows: Callable | None = None
    closed_form: Callable | None = None
    shows_padding: bool = False
    vector_bias: bool = False
    elementwise: bool = False
    upsamples: bool = False
    document: Callable | None = None
    repr_latex: Callable | None = None
    sections: Callable | None = None
    #: what each of the derivation's constants is, for the table of arrays (a loss's
    #: ``{"y": "the one-hot targets"}``); by default "given"
    constant_meanings: dict = field(default_factory=dict)
    #: ``notes`` is ``(layer, names) -> [...]``: its prose writes the reader's names (the
    #: same ``names`` as ``general`` gets) instead of ``x``, ``z``, ``g``
    notes_take_names: bool = False
    #: what the worked example in numbers asks of the kind (all inputs different, the
    #: elements to mark): a :class:`~symbackprop.render.worked_example.WorkedHints`
    worked_example: object = None
    #: how a chain writes the kind's parameters, ``{"weight": r"\gamma", "bias": r"\beta"}``
    #: (with the layer superscript: ``\gamma^{[2]}``); by default their names
    parameter_symbols: dict = field(default_factory=dict)


#: layer type -> :class:`LatexParts`.
LATEX = Registry("write a LaTeX document of")

#: ``"build"``: ``(derivation, index_base, names, show_padding) -> WorkedExample``, the
#: worked example in numbers that ends every document.
#: :mod:`~symbackprop.render.worked_example` registers it when imported (it builds on this
#: module, so this module does not import it back).
WORKED_EXAMPLE: dict = {}


def _sum_words(step, printer) -> str:
    """What a residual sum does, for the walk."""
    first = step.fork + 1
    block = f"layer {first}" if first == step.number - 1 else \
        f"layers {first}--{step.number - 1}"
    return (f"the residual sum ${printer.name(step.names['z'])} = "
            f"{printer.name(step.names['skip'])} + {printer.name(step.names['x'])}$ "
            f"($x + \\mathrm{{block}}(x)$, the block: {block}): its error term goes on "
            f"unchanged to the block's output, and along the identity path to the block's "
            f"input ${printer.name(step.names['skip'])}$, where it is added to what the block "
            f"hands back")


def walk_formula(step, printer) -> str:
    """A chain step's line of the walk: its kind's rule; for a residual block's first
    layer, the block's path and the identity path, braced, and their sum."""
    parts = LATEX[step.layer]
    formula = parts.chain_rule(step, printer)
    if not step.identity_paths:
        return formula
    left, rule = formula.split(" = ", 1)
    # a rule stated for one slice (a convolution's channel c) adds that slice of each path
    index = getattr(step_rule(step), "result_index", None)
    paths = " + ".join(printer.name(f"delta{number}") + (f"_{{{index}}}" if index else "")
                       for number in _identity_numbers(step))
    return (rf"{left} = \underbrace{{{rule}}}_{{\text{{through the block (layer "
            rf"{step.number})}}}} + \underbrace{{{paths}}}_{{\text{{the identity path}}}}")


def _identity_numbers(step) -> list[int]:
    """The numbers ``l`` of the residual sums whose ``delta^{[l]}`` reach this step's input."""
    return [int(parse_element(path[(0,) * path.rank()])[0][len("delta"):])
            for path in step.identity_paths]


# A residual sum (core: a chain's part, not a kind) in a chain's document.
LATEX.register(ResidualSum, LatexParts(title="a residual sum", general=None))


def _value(entry, *args):
    return entry(*args) if callable(entry) else entry


class FormulaLatexPrinter(SympyLatexPrinter):
    """An unevaluated formula in LaTeX in the order it was written:
    ``\\left\\lfloor \\frac{H + p_{\\mathrm{top}} + ... - 1}{s_h} \\right\\rfloor + 1``."""

    def __init__(self):
        super().__init__({"symbol_names": {sympy.Symbol(name, integer=True): latex
                                            for name, latex in SIZE_LATEX_NAMES.items()}})

    def _print_Add(self, expr, order=None):
        text = ""
        for position, term in enumerate(expr.args):
            negative, body = split_sign(term)
            printed = self._print(body)
            if position == 0:
                text += ("-" if negative else "") + printed
            else:
                text += (" - " if negative else " + ") + printed
        return text

    def _print_Mul(self, expr):
        numerator = [f for f in expr.args if not (f.is_Pow and f.exp == -1)]
        divisors = [f.base for f in expr.args if f.is_Pow and f.exp == -1]
        negative = bool(numerator) and numerator[0] == -1
        if negative:
            numerator = numerator[1:]
        text = ""
        for position, factor in enumerate(numerator):
            printed = f"({self._print(factor)})" if factor.is_Add and len(numerator) > 1 \
                else self._print(factor)
            if position:  # numbers are joined by a dot, letters by nothing: 1\cdot(2 - 1)
                text += r"\cdot" if numerator[position - 1].is_Number else ""
            text += printed
        text = ("-" if negative else "") + text
        for divisor in divisors:
            text = rf"\frac{{{text}}}{{{self._print(divisor)}}}"
        return text

    def _print_floor(self, expr, exp=None):
        return rf"\left\lfloor {self._print(expr.args[0])} \right\rfloor"


def size_extent_latex(axis: str, values, dilated: bool = True) -> str:
    """The numerator of :func:`size_formula_latex` with numbers, ``3 + 1 + 1 - 1\\cdot(2 - 1)
    - 1``: the padded extent the windows step through."""
    _, formula = output_size_formula(axis, values, dilated=dilated)
    quotient = formula.args[0].args[0]  # floor(extent / stride) + 1
    extent = next(f for f in quotient.args if not (f.is_Pow and f.exp == -1))
    return FormulaLatexPrinter().doprint(extent)


def size_formula_latex(axis: str, values, result, dilated: bool = True) -> str:
    """The ``alignat`` row ``H_o &= \\left\\lfloor \\frac{H + ...}{s_h} \\right\\rfloor + 1
    = ... = 4`` of :func:`~symbackprop.core.indexing.output_size_formula`."""
    printer = FormulaLatexPrinter()
    out, general = output_size_formula(axis, dilated=dilated)
    _, numbers = output_size_formula(axis, values, dilated=dilated)
    if int(numbers.doit()) != result:
        raise AssertionError(f"the output-size formula gives {numbers.doit()}, the layer {result}")
    return f"{SIZE_LATEX_NAMES[str(out)]} &= {printer.doprint(general)} = " \
           f"{printer.doprint(numbers)} = {result}"


# ---------------------------------------------------------------------------
# The documents: one layer, a chain
# ---------------------------------------------------------------------------

def _layer_equations(printer, lhs_labels, expressions, counts=None,
                     limit: int = TERMS_LIMIT) -> tuple:
    """An ``alignat`` block of ``lhs = expression`` rows; sums abbreviated past the limit.

    ``counts`` (one per row, of a pattern selection) is how many elements share the
    row's shape of sum, written on its right.
    """
    lhs_width = max(0.45 * len(re.sub(r"\\[a-z]+|[{}^_ ]", "", lhs)) for lhs in lhs_labels)
    per_line = _terms_per_line(printer, expressions, lhs_width)
    rows, abbreviated = [], False
    for row, (lhs, expression) in enumerate(zip(lhs_labels, expressions, strict=True)):
        terms, cut = _abbreviate(printer.terms(expression), limit)
        abbreviated |= cut
        tags = [count_tag(counts[row])] if counts is not None else []
        if cut:
            tags.append(f"{len(sympy.Add.make_args(expression))} terms")
        tag = r"\small " + "; ".join(tags) if tags else None
        rows.append(equation_rows(lhs, terms, per_line, tag, join_lone_last=True))
    return _block(rows), abbreviated


def count_tag(count: int) -> str:
    """The tag of a pattern row: how many elements share its shape of sum."""
    return f"{_fmt(count).replace('{,}', ',')} element{'s' if count != 1 else ''}"


def _listing(printer, array_name, shape, expressions, lhs, detail: str = DEFAULT_DETAIL,
             parameters=(), limit: int = PATTERN_LIMIT, terms: int | None = None,
             list_small: bool = True):
    """The rows for an array (:func:`select_elements` picks them) and a note saying which.

    ``parameters``: the names of the arrays that are learned parameters (a kernel tap
    keeps its offset in the shape of a sum, an activation element does not).
    """
    selection = select_elements(expressions, shape, detail, parameters,
                                printer.notation.shapes, limit, list_small)
    block, abbreviated = _layer_equations(printer, [lhs(index) for index in selection.indices],
                                          [expressions[index] for index in selection.indices],
                                          selection.counts,
                                          terms_limit(detail) if terms is None else terms)
    return {"block": block, "selection": selection_note(array_name, selection, printer),
            "abbreviated": abbreviated}


def _shape(shape) -> str:
    return r"\times".join(map(str, shape))


def _derivative(printer, loss, symbol) -> str:
    return rf"\frac{{\partial {loss}}}{{\partial {printer.doprint(symbol)}}}"


def _layer_document(derivation, index_base: int = 1, names: dict | None = None,
                    show_padding: bool = True, detail: str = DEFAULT_DETAIL) -> tuple[str, dict]:
    """One layer as ``templates/layers.tex.j2``: its kind supplies the formulas."""
    layer = derivation.layer
    parts = LATEX[layer]
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LayerLatexPrinter(notation, vector_bias=parts.vector_bias)
    loss = printer.name("L")
    reader = {key: printer.name(key) for key in ("x", "z", "g", "L", "w", "b")}
    if "b" not in derivation.params:
        reader.pop("b")
    general, notes = _general_and_notes(parts, layer, reader, index_base, printer)
    arrays = [(printer.name("x"), _shape(derivation.input_shape), "the input")]
    arrays += [(printer.name(name), _shape(array.shape),
                "the weight" if name == "w" else "the bias")
               for name, array in derivation.params.items()]
    arrays += [(printer.name(name), _shape(array.shape),
                parts.constant_meanings.get(name, "given") + ", not differentiated")
               for name, array in getattr(derivation, "constants", {}).items()]
    arrays.append((rf"{printer.name('z')},\ {printer.name('g')}", _shape(derivation.output_shape),
                   rf"the output and the upstream gradient $\partial {loss}/\partial "
                   rf"{printer.name('z')}$"))
    written = derivation.z_written if show_padding else derivation.z
    parameters = tuple(derivation.params)
    forward = _listing(printer, "z", derivation.output_shape, written,
                       lambda index: printer.label("z", index), detail, parameters)
    backward = []
    for name in ("x", *derivation.params):
        symbols = derivation.x if name == "x" else derivation.params[name]
        part = _listing(printer, name, symbols.shape, derivation.grads[name],
                        lambda index, symbols=symbols: _derivative(printer, loss, symbols[index]),
                        detail, parameters)
        part["title"] = {"x": "Input", "w": "Weight", "b": "Bias"}[name] + \
            f" ${printer.name(name)}$"
        backward.append(part)
    explain_selection([forward, *backward])
    context = {
        "title": _value(parts.title, layer),
        "description": latex_escape(layer.describe()).replace("->", r"$\to$"),
        "arrays": arrays,
        "sizes": parts.size_rows(layer, derivation.input_shape, derivation.output_shape)
        if parts.size_rows else [],
        "general": general,
        "notes": notes,
        "forward": forward,
        "backward": backward,
        "kron": parts.closed_form(derivation, printer) if parts.closed_form else None,
        "sections": parts.sections(derivation, printer) if parts.sections else [],
        "loss_sum": rf"{loss} = \sum {printer.name('g')} \, {printer.name('z')}",
        "method": derivation.method,
        "limits": {"listing": LISTING_LIMIT, "terms": terms_limit(detail)},
        "chain": None,
    }
    return "layers.tex.j2", context


def _general_and_notes(parts, layer, reader, index_base, printer) -> tuple:
    """A kind's general formulas and notes in the reader's names, their index letters
    never a letter of those names (the input named ``a``: ``a_{pr}``, not ``a_{ab}``).

    The kind writes them with placeholder names (commands, which have no index letters);
    the letters that collide are renamed to spares the formulas do not use, then the
    placeholders become the reader's names.
    """
    placeholders = {key: rf"\SBPNAME{'ABCDEFG'[number]}" for number, key in enumerate(reader)}
    general = parts.general(layer, placeholders, index_base)
    notes = parts.notes(layer, placeholders) if parts.notes_take_names else parts.notes(layer)
    taken = name_letters(latex_name(name) for name in printer.notation.names.values())
    written = set().union(*(math_letters(text) for text in (general or {}).values()))
    mapping = free_letters(INDEX_LETTERS, taken & set("".join(INDEX_LETTERS)), avoid=written)

    def named(text: str) -> str:
        for key, placeholder in placeholders.items():
            text = text.replace(placeholder, reader[key])
        return text

    if general:
        general = {part: named(rename_index_letters(text, mapping))
                   for part, text in general.items()}
    notes = [named(rename_in_prose(note, mapping)) for note in notes]
    return general, notes


def chain_notation(chain, index_base: int = 1, names: dict | None = None):
    """The chain's notation, each kind's own parameter symbols with their layer number
    (:attr:`LatexParts.parameter_symbols`: batch norm's ``weight2`` is ``\\gamma^{[2]}``)."""
    shown = dict(names or {})
    for step in chain.steps:
        symbols = {} if step.is_sum else LATEX[step.layer].parameter_symbols
        for array, symbol in symbols.items():
            if array in step.names:
                shown.setdefault(step.names[array], f"{symbol}^{{[{step.number}]}}")
    return chain.notation(index_base=index_base, names=shown)


def _chain_document(chain, index_base: int = 1, names: dict | None = None,
                    show_padding: bool = True, detail: str = DEFAULT_DETAIL) -> tuple[str, dict]:
    """A chain as ``templates/layers.tex.j2``: each layer's kind supplies its step."""
    notation = chain_notation(chain, index_base, names)
    plain = LayerLatexPrinter(notation)
    loss = plain.name("L")
    steps = chain.steps
    table = [("", "input", plain.name("a0"), _shape(chain.activation_shapes[0]), "")]
    walk = []
    for step in steps:
        parameters = ", ".join(f"${plain.name(name)}$: ${_shape(array.shape)}$"
                               for name, array in step.params.items())
        table.append((str(step.number), _step_description(step, plain),
                      plain.name(step.names["z"]), _shape(step.output_shape), parameters))
    for step in reversed(steps):
        parts = LATEX[step.layer]
        words = _sum_words(step, plain) if step.is_sum else \
            _value(parts.chain_words, step.layer, plain)
        if step.identity_paths:
            words += (f"; its input ${plain.name(step.names['x'])}$ also feeds the residual "
                      f"sum, so its error term adds the two paths")
        row = {"formula": walk_formula(step, plain), "layer": step.number,
               "words": words, "combined": None}
        following = steps[step.number] if step.number < len(steps) else None
        if parts.elementwise and following is not None and not following.is_sum \
                and LATEX[following.layer].upsamples:
            # the notes' delta^{l-1} = upsample(delta^l) * f'(net^{l-1}): the
            # activation's rule applied to what the layer after it hands back
            row["combined"] = print_chain_rule(step, plain, step_rule(
                step, g=step_rule(following)))
        walk.append(row)
    sections = []
    for step in steps:
        parts = LATEX[step.layer]
        printer = LayerLatexPrinter(notation, window_output=step.names["z"],
                                    vector_bias=parts.vector_bias)
        shown = step.z_written if show_padding and parts.shows_padding else step.z
        # a chain's layer keeps to about a page: fewer shapes, the usual sum length
        compact = {"detail": detail, "parameters": tuple(step.params),
                   "limit": CHAIN_PATTERN_LIMIT, "terms": TERMS_LIMIT, "list_small": False}
        forward = _listing(printer, step.names["z"], step.output_shape, shown,
                           lambda index, step=step, printer=printer:
                           printer.doprint(step.output[index]), **compact)
        backward = [_listing(printer, step.names["grad_x"], step.input_shape, step.delta_in,
                             lambda index, step=step, printer=printer: printer.label(
                                 step.names["grad_x"], index), **compact)]
        for name, gradient in step.param_grads.items():
            backward.append(_listing(
                printer, name, gradient.shape, gradient,
                lambda index, name=name, step=step, printer=printer:
                _derivative(printer, loss, step.params[name][index]), **compact))
        reader = {"x": plain.name(step.names["x"]), "z": plain.name(step.names["z"]),
                  "g": plain.name(step.names["g"]), "L": loss}
        for own in ("w", "b"):
            if own in step.names:
                reader[own] = plain.name(step.names[own])
        general = parts.general(step.layer, reader, index_base) if parts.general else None
        if general and step.identity_paths:
            paths = " + ".join(plain.name(f"delta{number}")
                               for number in _identity_numbers(step))
            general = {**general, "backward": general["backward"] + (
                rf"\\ {plain.name(step.names['grad_x'])} = (\text{{the above}}) + {paths}"
                rf"\quad\text{{(the identity path: "
                rf"${plain.name(step.names['x'])}$ also feeds the residual sum)}}")}
        if step.is_sum:
            general = {"forward": rf"{reader['z']} = {plain.name(step.names['skip'])} + "
                                  rf"{reader['x']}",
                       "backward": rf"{plain.name(step.names['grad_x'])} = {reader['g']}, "
                                   rf"\qquad {plain.name(step.names['grad_skip'])} "
                                   rf"\mathrel{{+}}= {reader['g']}"}
        sections.append({"number": step.number,
                         "description": _step_description(step, plain),
                         "general": general, "forward": forward, "backward": backward,
                         "verdict": _step_verdict(step, plain, loss)})
    explain_selection([part for section in sections
                       for part in (section["forward"], *section["backward"])])
    context = {
        "title": "Backpropagation through a chain of layers",
        "description": latex_escape(chain.layer.describe()).replace("->", r"$\to$"),
        "chain": {"table": table, "walk": walk, "sections": sections,
                  # the walk under a long layer table would run onto a second page
                  "walk_new_page": len(steps) + len(walk) + sum(
                      1 for row in walk if row["combined"]) > WALK_BESIDE_TABLE,
                  "last": plain.name(f"delta{len(steps)}"),
                  "output": plain.name(f"a{len(steps)}"),
                  # the reader's letters of the activations and error terms, for the prose
                  "a": plain.name("a0")[:-len("^{[0]}")],
                  "delta": plain.name("delta0")[:-len("^{[0]}")], "loss": loss},
        "loss_sum": rf"{loss} = \sum {plain.name(f'delta{len(steps)}')} \, "
                    rf"{plain.name(f'a{len(steps)}')}",
        "method": chain.method,
        "limits": {"listing": LISTING_LIMIT, "terms": TERMS_LIMIT},
    }
    return "layers.tex.j2", context


def _step_verdict(step, printer, loss) -> dict | None:
    """Whether the closed forms of a chain step's kind (its matrix form, its rules) equal
    the derived sums: ``{"holds", "checked", "what"}``, or ``None`` when it has none."""
    from symbackprop.core.rules import proofs_for

    if step.is_sum or step.derivation is None:
        return None
    proofs = proofs_for(step.derivation)
    if not proofs:
        return None
    arrays = {"x": step.names["x"], **{own: step.names[own]
                                      for own in step.layer.parameter_names}}
    what = [rf"$\partial {loss}/\partial {printer.name(arrays[array])}$"
            for array in dict.fromkeys(proof.name.removeprefix("grad_") for proof in proofs)
            if array in arrays]
    return {"holds": all(proof.holds for proof in proofs),
            "checked": sum(proof.checked for proof in proofs), "what": _list(what)}


def _step_description(step, printer) -> str:
    """A chain step in the document's words: the layer, or the residual sum."""
    if step.is_sum:
        first = step.fork + 1
        block = f"layer {first}" if first == step.number - 1 else \
            f"layers {first}--{step.number - 1}"
        return (f"residual sum ${printer.name(step.names['skip'])} + "
                f"{printer.name(step.names['x'])}$ (the block: {block})")
    return latex_escape(step.layer.describe()).replace("->", r"$\to$")


def to_latex(derivation, index_base: int = 1, names: dict | None = None,
             show_padding: bool = True, *, command: str | None = None,
             detail: str = DEFAULT_DETAIL, worked_example: bool = True,
             language: str = "en") -> str:
    """The derivation (one layer of any kind, or a chain) as a standalone LaTeX document.

    Parameters
    ----------
    derivation : :class:`~symbackprop.core.derivation.Derivation` or
        :class:`~symbackprop.core.chain.ChainDerivation`
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
    detail : str
        Which elements are written out (:data:`DETAILS`): ``brief``, ``pattern``
        (default: one of each shape of sum, :func:`select_elements`) or ``full``.
    worked_example : bool
        End with a worked example in numbers (:mod:`~symbackprop.render.worked_example`);
        ``False`` leaves it out (``--no-worked-example``).
    language : str
        ``"en"`` (default) or ``"zh"``: the prose in Chinese, translated from the
        finished English document by :mod:`symbackprop.render.languages` (math
        untouched; the document then needs xelatex and the ctex package).
    """
    from symbackprop._version import __version__
    from symbackprop.render.languages import check_language, translate_document

    if detail not in DETAILS:
        raise ValueError(f"detail: must be one of {', '.join(DETAILS)}, got {detail!r}")
    check_language(language)
    if not command:
        command = regenerate_command(derivation.layer, derivation.input_shape,
                                     index_base, dict(names or {}), show_padding, detail)
        if not worked_example:
            command += " --no-worked-example"
        if language != "en":
            command += f" --lang {language}"
    if hasattr(derivation, "steps"):
        write = _chain_document
    else:
        write = LATEX[derivation.layer].document or _layer_document
    template, context = write(derivation, index_base, names, show_padding, detail)
    context.update(command=_typewriter(command), command_comment=" ".join(command.split()),
                   version=latex_escape(__version__),
                   worked=WORKED_EXAMPLE["build"](derivation, index_base, names, show_padding)
                   if worked_example else None)
    # every kind's formulas meet the reader's names here: one superscript and one
    # subscript per symbol (a^{[l-1]} + ^{(n,c)}), decorations on the base letter
    document = join_scripts(latex_environment().get_template(template).render(**context))
    return translate_document(document, language)


def repr_latex(derivation, index_base: int = 1, names: dict | None = None) -> str:
    """A short math-mode summary for notebooks: the layer and a few equations."""
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LayerLatexPrinter(notation)
    if hasattr(derivation, "steps"):
        rows = [rf"&\text{{{latex_escape(derivation.layer.describe())}}}".replace(
            "->", r"}\to\text{")]
        rows += [walk_formula(step, printer).replace(" = ", " &= ", 1)
                 for step in reversed(derivation.steps)]
        return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"
    own = LATEX[derivation.layer].repr_latex
    if own is not None:
        return join_scripts(own(derivation, index_base=index_base, names=names))
    loss = printer.name("L")
    first_out = (0,) * len(derivation.output_shape)
    first_in = (0,) * len(derivation.input_shape)
    rows = [rf"&\text{{{latex_escape(derivation.layer.describe())}}}".replace(
                "->", r"}\to\text{"),
            rf"{printer.label('z', first_out)} &= {printer.doprint(derivation.z[first_out])}",
            rf"{_derivative(printer, loss, derivation.x[first_in])} &= "
            rf"{printer.doprint(derivation.grad_x[first_in])}"]
    return join_scripts("$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$")


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
