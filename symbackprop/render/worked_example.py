"""Render stage (LaTeX): the worked numeric example of a printout.

Input: a :class:`~symbackprop.core.derivation.Derivation` (or a
:class:`~symbackprop.core.chain.ChainDerivation`).  Output: a frozen
:class:`WorkedExample` whose matrices and equations are LaTeX text, placed by
``templates/worked_example.tex.j2``.

The numbers come from the derivation itself: small integers are chosen for the input,
the parameters and the upstream gradient (a fixed pseudo-random pattern, so the same
request gives the same document), substituted into the derivation's SymPy expressions
of the forward output and of every gradient element, and evaluated, through the kind's
own functions (a window's maximum, the sigmoid, the batch statistics) as the
derivation holds them.  Nothing is computed a second way: what is printed is the
derivation at these numbers.  Exact results (integers, and fractions with a short
decimal expansion such as ``1.25``) are printed exactly, others rounded to
:data:`DECIMALS` decimals, and the page says which.

A kind may ask for more through :attr:`~symbackprop.render.latex.LatexParts.worked_example`
(a :class:`WorkedHints`): all inputs different (max pooling: no window has a tie),
input elements marked in the printed ``x`` (each window's maximum), values for its
constants (a dropout mask of 0 and 1), and a sentence saying what the marks mean.

Size limits: the example is shown when every printed matrix is at most
:data:`MAP_LIMIT` x :data:`MAP_LIMIT` and all arrays together hold at most
:data:`VALUE_LIMIT` numbers; otherwise the page says it is omitted and names a command
that shows it on a smaller input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy

from symbackprop.core.layers import output_shape_of
from symbackprop.core.naming import factor_sort_key, term_sort_key
from symbackprop.render.latex import (
    LATEX,
    LINE_BUDGET_EM,
    WORKED_EXAMPLE,
    LayerLatexPrinter,
    _terms_per_line,
    _typewriter,
    chain_notation,
    equation_rows,
    regenerate_command,
)

__all__ = ["WorkedHints", "WorkedExample", "PrintedArray", "Arithmetic", "worked_example",
           "worked_context", "worked_text", "example_values", "MAP_LIMIT", "VECTOR_LIMIT",
           "VALUE_LIMIT", "DECIMALS", "ARITHMETIC_TERMS"]

#: Largest printed matrix (rows and columns).
MAP_LIMIT = 6
#: Longest printed row of a vector or of a matrix of at most 3 rows (a fully connected
#: layer's input and weight).
VECTOR_LIMIT = 12
#: Largest number of values printed in all (inputs, parameters, outputs, gradients).
VALUE_LIMIT = 400
#: Decimals of a rounded number.
DECIMALS = 3
#: An element's arithmetic is written out when its sum has at most this many terms.
ARITHMETIC_TERMS = 12
#: Width (em) of a "with f(x_{11}) = f(3) = 0.953" line under a written-out element.
WHERE_EM = 28.0
#: A written-out element of up to this many lines (a fraction counts 2.5) is kept on one page.
KEPT_LINES = 24
#: Patterns of integers a chain tries until no pooling window has a tied maximum.
CHAIN_ATTEMPTS = 40
#: Width (em) a line of matrices side by side may take.
LINE_EM = 36.0

#: The values each kind of array draws from (no zero: a ReLU's kink, a product that hides
#: what it multiplies): inputs a little wider than weights and upstream gradients.
_INPUT_VALUES = (-3, -2, -1, 1, 2, 3)
_WEIGHT_VALUES = (-2, -1, 1, 2)
_CONSTANT_VALUES = (1, 2)
#: Seeds of the pattern, per role: a fixed pattern, the same document every time.
_SEEDS = {"x": 23, "w": 11, "b": 30, "g": 41, "constant": 41}


@dataclass(frozen=True)
class WorkedHints:
    """What a kind asks of its worked example (``LatexParts.worked_example``).

    Attributes
    ----------
    distinct_input : bool
        Give every input element a different integer (max pooling: no window has a tie).
    marks : ``(derivation, values) -> {array: set of indices}``, optional
        Elements to mark in the printed arrays (``values`` maps each symbol to its
        number): each pooling window's maximum.
    note : str
        A sentence about the marks, ``{x}`` standing for the input's name.
    constant_values : dict
        Constant name -> the integers its elements draw from (a dropout mask: 0, 1).
    ties : ``(derivation, values) -> int``, optional
        How many windows have a tied maximum at these numbers.
    """

    distinct_input: bool = False
    marks: Callable | None = None
    note: str = ""
    constant_values: dict = field(default_factory=dict)
    #: ``(derivation, values) -> int``: windows whose maximum is tied (in a chain the
    #: layer's input is computed, so other integers are tried until there are none)
    ties: Callable | None = None


@dataclass(frozen=True)
class PrintedArray:
    """One array in numbers: a heading and display lines, each one or more matrices."""

    title: str
    lines: tuple[str, ...]
    rounded: bool
    #: each matrix with its label, and its rough width in em
    items: tuple = ()
    #: the same for the terminal: ``x =`` and the rows of each map
    plain: tuple[str, ...] = ()


@dataclass(frozen=True)
class Arithmetic:
    """One element's sum, then its numbers, then its value: ``alignat*`` rows."""

    columns: int
    rows: str
    #: ``\\sigma(x_{11}) = \\sigma(1) = 0.731``: the functions the sum reads, at the numbers.
    where: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkedExample:
    """The worked example of one document, as LaTeX.

    ``shown`` False: only ``omitted`` (the sentence saying why, and the command that
    shows it on a smaller input) is set.
    """

    shown: bool
    intro: str = ""
    notes: tuple[str, ...] = ()
    given: tuple[PrintedArray, ...] = ()
    forward: tuple[PrintedArray, ...] = ()
    backward: tuple[PrintedArray, ...] = ()
    #: ``align*`` bodies: one element's sum with the numbers put in, per array.
    arithmetic: tuple[Arithmetic, ...] = ()
    omitted: str = ""
    #: why it is left out, and the ``symbackprop latex`` command of a smaller input
    reason: str = ""
    smaller: str = ""


# ---------------------------------------------------------------------------
# The numbers
# ---------------------------------------------------------------------------

def _pattern(count: int, choices, seed: int) -> list[int]:
    """``count`` integers drawn from ``choices`` by a fixed integer hash of ``(seed,
    position)`` (the same numbers on every machine and Python version)."""
    drawn = []
    for position in range(count):
        mixed = (seed * 0x9E3779B1 + position * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
        mixed ^= mixed >> 15
        mixed = (mixed * 0x2C1B3C6D) & 0xFFFFFFFF
        mixed ^= mixed >> 12
        mixed = (mixed * 0x297A2D39) & 0xFFFFFFFF
        mixed ^= mixed >> 15
        drawn.append(choices[mixed % len(choices)])
    return drawn


def _distinct(count: int, seed: int) -> list[int]:
    """``count`` different integers around 0, in a fixed shuffled order."""
    values = list(range(-(count // 2), count - count // 2))
    keys = _pattern(count, range(2 ** 15), seed)
    return [value for _, value in sorted(zip(keys, values, strict=True))]


def _assign(values: dict, array, numbers) -> None:
    for symbol, number in zip(np.array(array, dtype=object).ravel(), numbers, strict=True):
        if isinstance(symbol, sympy.Symbol):
            values[symbol] = sympy.Integer(number)


def example_values(inputs, params: dict, g, constants: dict | None = None,
                   hints: WorkedHints | None = None, attempt: int = 0) -> dict:
    """Symbol -> the integer the worked example gives it.

    ``inputs``, ``g`` and each array of ``params`` and ``constants`` are symbol arrays;
    elements that are already numbers (a loss's one-hot targets) keep their value.
    ``attempt`` > 0 draws other integers (a chain whose pooling would tie).
    """
    hints = hints or WorkedHints()
    seeds = {role: seed + 1000 * attempt for role, seed in _SEEDS.items()}
    values: dict = {}
    size = int(np.prod(inputs.shape))
    _assign(values, inputs, _distinct(size, seeds["x"]) if hints.distinct_input
            else _pattern(size, _INPUT_VALUES, seeds["x"]))
    for position, (name, array) in enumerate(params.items()):
        count = int(np.prod(array.shape))
        seed = seeds["b"] if name.startswith("b") else seeds["w"] + 7 * position
        _assign(values, array, _pattern(count, _WEIGHT_VALUES, seed))
    _assign(values, g, _pattern(int(np.prod(g.shape)), _WEIGHT_VALUES, seeds["g"]))
    for name, array in (constants or {}).items():
        choices = hints.constant_values.get(name, _CONSTANT_VALUES)
        _assign(values, array, _pattern(int(np.prod(array.shape)), choices,
                                        seeds["constant"]))
    return values


def _evaluate(expr, values: dict, symbols: dict):
    """``expr`` at the numbers: an exact SymPy Rational when it is one, else a Float.

    Raises ``ValueError`` when a symbol is left without a number.
    """
    result = sympy.sympify(expr).xreplace(values)
    if symbols:
        result = result.xreplace(symbols)
    if result.is_Rational:
        return result
    number = sympy.N(result, 15)
    if not number.is_Number:
        raise ValueError(f"no number for {sorted(map(str, number.free_symbols))}")
    return number


def _evaluate_array(array, values, symbols) -> np.ndarray:
    out = np.empty(tuple(array.shape), dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = _evaluate(array[index], values, symbols)
    return out


# ---------------------------------------------------------------------------
# Printing numbers
# ---------------------------------------------------------------------------

def _exact_decimals(number) -> int | None:
    """Decimals a Rational needs (``5/4 -> 2``), or None when it has no short expansion."""
    if not number.is_Rational:
        return None
    q = int(number.q)
    for decimals in range(DECIMALS + 1):
        if (10 ** decimals) % q == 0:
            return decimals
    return None


def _format(number, decimals: int) -> str:
    text = f"{float(number):.{decimals}f}" if decimals else str(int(number))
    if decimals and float(text) == 0:
        text = text.lstrip("-")  # -0.000 is 0.000
    return text


def _style(numbers) -> tuple[int, bool]:
    """Decimals an array is printed with, and whether that rounds."""
    needed = [_exact_decimals(number) for number in numbers]
    if all(decimals is not None for decimals in needed):
        return max(needed, default=0), False
    return DECIMALS, True


def _matrix(texts, marked=None) -> str:
    """A 2-D grid of printed numbers, right-aligned (decimal points line up)."""
    columns = len(texts[0])
    body = r" \\ ".join(
        " & ".join(rf"\workedmark{{{cell}}}" if marked is not None and marked[r][c] else cell
                   for c, cell in enumerate(row))
        for r, row in enumerate(texts))
    return rf"\left[\begin{{array}}{{@{{}}{'r' * columns}@{{}}}}{body}\end{{array}}\right]"


def _matrix_axes(notation, shape) -> int:
    """How many trailing axes form one printed matrix: a map's rows and columns (one
    axis for a vector and for a 1-D layer's positions)."""
    if len(shape) <= 1:
        return len(shape)
    if len(shape) >= 3 and notation.spatial_axes == 1:
        return 1
    return 2


def _map_label(printer, array: str, leading: tuple, axes: int) -> str:
    shape = printer.notation.shapes.get(array, ())
    shown = printer.notation.indices(array, tuple(leading) + (0,) * axes)
    shown = shown[:len(shown) - axes] if axes else shown
    if len(shape) < 3 and axes:
        shown = ()  # a vector's or a matrix's only map
    # a 3-D layer's maps are depth slices: the depth is a subscript, x^{(2)}_{1,\cdot,\cdot}
    spatial = (printer.notation.spatial_axes or 2) if len(shape) >= 3 else 0
    sliced = max(spatial - axes, 0)
    channels, depth = shown[:len(shown) - sliced], shown[len(shown) - sliced:]
    label = printer.name(array) + (f"^{{({','.join(map(str, channels))})}}" if channels else "")
    if depth:
        label += "_{" + ",".join([*map(str, depth), *[r"\cdot"] * axes]) + "}"
    return label.replace("]}^{(", "](")  # a^{[2]}^{(1)} -> a^{[2](1)}


def _width(texts) -> float:
    """Rough width (em) of a printed matrix."""
    columns = len(texts[0])
    widest = [max(len(row[c]) for row in texts) for c in range(columns)]
    return sum(0.5 * w + 1.0 for w in widest) + 1.0


def _printed_array(printer, array: str, numbers: np.ndarray, label, title: str,
                   marks=frozenset(), plain_prefix: str = "") -> PrintedArray:
    """An array's maps as matrices, several side by side on a line when they fit (and as
    plain text for the terminal, ``plain_prefix`` before its name: ``dL/d``)."""
    decimals, rounded = _style(list(numbers.ravel()))
    shape = numbers.shape
    axes = _matrix_axes(printer.notation, shape)
    if axes == 0:
        numbers, shape, axes = numbers.reshape(1), (1,), 1
    leading_shape = shape[:len(shape) - axes]
    items, plain = [], []
    for leading in np.ndindex(*leading_shape):
        block = numbers[leading]
        grid = block.reshape(1, -1) if axes == 1 else block
        texts = [[_format(value, decimals) for value in row] for row in grid]
        marked = None
        if marks:
            flat = [leading + ((c,) if axes == 1 else (r, c))
                    for r in range(len(grid)) for c in range(len(grid[0]))]
            marked = [[flat[r * len(grid[0]) + c] in marks for c in range(len(grid[0]))]
                      for r in range(len(grid))]
        lhs = label(_map_label(printer, array, leading, axes))
        items.append((rf"{lhs} = {_matrix(texts, marked)}",
                      _width(texts) + 0.45 * len(lhs) / 2 + 1.5))
        plain.extend(_plain_map(plain_prefix + _plain_label(printer, array, leading, axes),
                                texts, marked))
    return PrintedArray(title=title, lines=_pack(items), rounded=rounded, items=tuple(items),
                        plain=tuple(plain))


def _plain_label(printer, array: str, leading: tuple, axes: int) -> str:
    """``x``, ``x[2,:,:]`` (channel 2 of a two-channel input): a map in the terminal."""
    shape = printer.notation.shapes.get(array, ())
    shown = printer.notation.indices(array, tuple(leading) + (0,) * axes)
    shown = shown[:len(shown) - axes] if axes and len(shape) >= 3 else ()
    name = printer.notation.name(array)
    return name + (f"[{','.join(map(str, shown))}{',:' * axes}]" if shown else "")


def _plain_map(label: str, texts, marked) -> list[str]:
    """``label =`` and the rows, columns right-aligned; a marked number in brackets."""
    cells = [[f"[{cell}]" if marked is not None and marked[r][c] else f" {cell} "
              for c, cell in enumerate(row)] for r, row in enumerate(texts)]
    widths = [max(len(row[c]) for row in cells) for c in range(len(cells[0]))]
    return [f"{label} ="] + [("  " + "".join(cell.rjust(width + 1) for cell, width
                                            in zip(row, widths, strict=True))).rstrip()
                             for row in cells]


def _pack(items) -> tuple[str, ...]:
    """Display lines of ``(text, width)`` matrices, side by side while they fit."""
    lines, current, used = [], [], 0.0
    for text, width in items:
        if current and used + width > LINE_EM:
            lines.append(r", \qquad ".join(current))
            current, used = [], 0.0
        current.append(text)
        used += width
    if current:
        lines.append(r", \qquad ".join(current))
    return tuple(lines)


def _together(title: str, parts) -> PrintedArray:
    """Several arrays under one heading, their matrices packed into shared lines."""
    items = tuple(item for part in parts for item in part.items)
    return PrintedArray(title=title, lines=_pack(items),
                        rounded=any(part.rounded for part in parts), items=items,
                        plain=tuple(line for part in parts for line in part.plain))


def _number_text(number) -> str:
    """A number inside a written-out product: ``2``, ``(-1)``, ``0.731``."""
    decimals = _exact_decimals(number)
    text = _format(number, DECIMALS if decimals is None else decimals)
    return f"({text})" if text.startswith("-") else text


def _arithmetic(printer, lhs: str, expr, values: dict, symbols: dict,
                value_text: str) -> Arithmetic:
    """``lhs = g_{11} w_{22} + ...``, under it the same sum with the numbers put in
    (``= 1 \\cdot 2 + (-1) \\cdot 3 + ...``, each product under its symbols; a factor
    that is not an element, a sigmoid or a window's maximum, evaluated), then the value."""
    terms = sorted(sympy.Add.make_args(sympy.sympify(expr)), key=term_sort_key)
    pieces = []
    for term in terms:
        factors = sorted(sympy.Mul.make_args(term), key=factor_sort_key)
        sign = "+"
        if factors and factors[0].is_Number and factors[0].is_negative:
            sign, factors = "-", [-factors[0], *factors[1:]]
        if factors and factors[0] == 1 and len(factors) > 1:
            factors = factors[1:]
        numbers = [_number_text(_evaluate(factor, values, symbols)) for factor in factors]
        if len(numbers) == 1 and len(terms) == 1:  # a lone number: -2, not (-2)
            numbers = [numbers[0].removeprefix("(").removesuffix(")")]
        pieces.append((sign, r" \cdot ".join(numbers)))
    symbolic = printer.terms(expr)
    # as many terms on a line as the document's own sums hold, and as the numbers allow
    widest = max(0.5 * len(body.replace(r"\cdot", ".").replace(" ", "")) + 1.3
                 for _, body in pieces)
    per_line = max(1, min(len(pieces), _terms_per_line(printer, [expr], 4.0),
                          int((LINE_BUDGET_EM - 4.0) // widest)))
    top, columns = equation_rows(lhs, symbolic, per_line)
    numbers, _ = equation_rows("", pieces, per_line)
    rows = [top, numbers]
    if len(pieces) > 1 or pieces[0][1] != value_text:
        rows.append(f"&= {value_text}")
    where = _where(printer, expr, values, symbols)
    rows += [(r"&\text{with } " if number == 0 else r"&\phantom{\text{with }}") + item
             for number, item in enumerate(where)]
    # a block that fits on a page never breaks across pages (\\* in amsmath): it is read as
    # a whole; a taller one (batch norm's fractions) may
    text = " \\\\\n".join(rows)
    lines = sum(2.5 if r"\frac" in row else 1.0 for row in text.split(" \\\\\n"))
    if lines <= KEPT_LINES:
        text = text.replace(" \\\\\n", " \\\\*\n")
    return Arithmetic(columns=columns, rows=text, where=where)


class _NumberPrinter:
    """Prints an expression with its elements' numbers in their places
    (``\\sigma(-1)``, ``\\max(3, -2, 5, 1)``), through the document's printer."""

    def __init__(self, printer, values: dict):
        self.printer, self.values = printer, values

    def doprint(self, expr) -> str:
        placeholders = {}
        for symbol in sorted(expr.free_symbols, key=str):
            if symbol in self.values:
                placeholders[symbol] = sympy.Symbol(f"worked{len(placeholders)}")
        texts = {placeholder: _format(self.values[symbol], _exact_decimals(
                     self.values[symbol]) if _exact_decimals(self.values[symbol]) is not None
                     else DECIMALS)
                 for symbol, placeholder in placeholders.items()}
        printer = type(self.printer)(self.printer.notation,
                                     window_output=self.printer.window_output,
                                     vector_bias=self.printer.vector_bias)
        original = printer._print_Symbol

        def print_symbol(symbol, style="plain"):
            return texts[symbol] if symbol in texts else original(symbol, style=style)

        printer._print_Symbol = print_symbol
        return printer.doprint(expr.xreplace(placeholders))


def _where(printer, expr, values: dict, symbols: dict) -> tuple[str, ...]:
    """The values of the functions inside ``expr`` that read elements (a sigmoid, a
    window's maximum, a batch mean), each as ``f(x_{11}) = f(1) = 0.731``."""
    numbers = _NumberPrinter(printer, values)
    found = []
    functions = [atom for atom in sympy.sympify(expr).atoms(sympy.Function)
                 if not isinstance(atom, sympy.Piecewise)
                 and any(symbol in values for symbol in atom.free_symbols)]
    for function in sorted(functions, key=sympy.default_sort_key):
        written = printer.doprint(function)
        with_numbers = numbers.doprint(function)
        value = _evaluate(function, values, symbols)
        decimals = _exact_decimals(value)
        text = _format(value, DECIMALS if decimals is None else decimals)
        line = f"{written} = " + ("" if with_numbers == written else f"{with_numbers} = ") + text
        if _text_width(line) > WHERE_EM:  # a long window: its numbers are in the sum above
            line = f"{written} = {text}"
        if _text_width(line) <= WHERE_EM and line not in found:
            found.append(line)
    return tuple(found)


def _text_width(latex: str) -> float:
    """Rough width (em) of a line of math: its visible characters."""
    visible = re.sub(r"\\[A-Za-z]+|[{}^_ ]", "", latex)
    return 0.5 * len(visible) + 0.3 * latex.count(",")


def _chosen_element(expressions, evaluated) -> tuple | None:
    """The element whose sum is the longest that still fits :data:`ARITHMETIC_TERMS`
    (among equals the first in row-major order whose value is not 0): the most to check
    by hand."""
    best, best_key = None, (0, False)
    for index in np.ndindex(*expressions.shape):
        count = len(sympy.Add.make_args(sympy.sympify(expressions[index])))
        key = (count, evaluated[index] != 0)  # among equals, one that is not 0
        if count <= ARITHMETIC_TERMS and key > best_key:
            best, best_key = index, key
    return best


# ---------------------------------------------------------------------------
# The example of one layer, of a chain
# ---------------------------------------------------------------------------

def _too_large(notation, arrays: dict) -> str | None:
    """Why these arrays are too large to print, or None."""
    total = sum(int(np.prod(shape)) for shape in arrays.values())
    if total > VALUE_LIMIT:
        return f"it would print {total} numbers (this page prints up to {VALUE_LIMIT})"
    for shape in arrays.values():
        axes = _matrix_axes(notation, shape)
        sizes = shape[len(shape) - axes:]
        if len(sizes) == 1 or sizes[0] <= 3:  # a few rows of numbers: up to VECTOR_LIMIT long
            if sizes[-1] > VECTOR_LIMIT:
                return (f"it has rows of {sizes[-1]} numbers, more than the {VECTOR_LIMIT} "
                        f"this page prints")
        elif any(size > MAP_LIMIT for size in sizes):
            return (f"its maps are {' x '.join(map(str, sizes))}, larger than the "
                    f"{MAP_LIMIT} x {MAP_LIMIT} this page prints")
    return None


def _smaller_command(derivation, index_base, names, show_padding, command) -> str | None:
    """A command that shows the example: the same layer on a smaller input, batch 1."""
    shape = tuple(derivation.input_shape)
    layer = derivation.layer
    notation = derivation.notation(index_base=index_base, names=names)
    leading = 2 if hasattr(layer, "in_channels") or len(shape) > 2 else 1
    for side in range(MAP_LIMIT, 0, -1):
        candidate = (1, *shape[1:leading], *(min(size, side) for size in shape[leading:]))
        try:
            output = output_shape_of(layer, candidate)
        except (ValueError, TypeError):
            continue
        parameters = {name: tuple(array.shape) for name, array in derivation.params.items()}
        arrays = {"x": candidate, "z": output, "g": output, "dx": candidate, **parameters,
                  **{f"d{name}": shape for name, shape in parameters.items()}}
        if _too_large(notation, arrays) is None and candidate != shape:
            return regenerate_command(layer, candidate, index_base, dict(names or {}),
                                      show_padding) + command
    return None


def _omitted(reason: str, smaller: str | None) -> WorkedExample:
    text = f"A worked example in numbers is left out here: {reason}."
    if smaller:
        text += rf" On a smaller input, \texttt{{{_typewriter(smaller)}}} prints one."
    return WorkedExample(shown=False, omitted=text, reason=reason, smaller=smaller or "")


def worked_example(derivation, index_base: int = 1, names: dict | None = None,
                   show_padding: bool = True, hints: WorkedHints | None = None,
                   command_suffix: str = "") -> WorkedExample:
    """The worked example of ``derivation`` (one layer, or a chain), as LaTeX.

    ``hints`` is the kind's :class:`WorkedHints`; ``command_suffix`` is appended to the
    command a too-large instance's sentence suggests.
    """
    if hasattr(derivation, "steps"):
        return _chain_example(derivation, index_base, names)
    hints = hints or WorkedHints()
    notation = derivation.notation(index_base=index_base, names=names)
    parts = LATEX[derivation.layer]
    printer = LayerLatexPrinter(notation, vector_bias=parts.vector_bias)
    shapes = {"x": tuple(derivation.input_shape), "z": tuple(derivation.output_shape),
              "g": tuple(derivation.output_shape)}
    shapes.update({name: tuple(array.shape) for name, array in derivation.params.items()})
    shapes.update({f"d{name}": tuple(derivation.grads[name].shape)
                   for name in derivation.grads})
    reason = _too_large(notation, shapes)
    if reason is not None:
        return _omitted(reason, _smaller_command(derivation, index_base, names,
                                                  show_padding, command_suffix))
    values = example_values(derivation.x, derivation.params, derivation.g,
                            derivation.constants, hints)
    symbols = dict(getattr(derivation.layer, "symbol_values", {}))
    try:
        z = _evaluate_array(derivation.z, values, symbols)
        grads = {name: _evaluate_array(derivation.grads[name], values, symbols)
                 for name in ("x", *derivation.params)}
    except (ValueError, TypeError, ZeroDivisionError) as error:
        return _omitted(f"its expressions could not be evaluated at numbers ({error})", None)
    numbers = {"x": _numbers(derivation.x, values)}
    numbers.update({name: _numbers(array, values) for name, array in derivation.params.items()})
    constants = {name: _numbers(array, values) for name, array in derivation.constants.items()}
    numbers["g"] = _numbers(derivation.g, values)
    marks = hints.marks(derivation, values) if hints.marks else {}
    loss = printer.name("L")

    def same(label):
        return label

    def partial(label):
        return rf"\partial {loss}/\partial {label}"

    given = [_printed_array(printer, "x", numbers["x"], same, "", marks.get("x", frozenset()))]
    given += [_printed_array(printer, name, numbers[name], same, "")
              for name in derivation.params]
    given += [_printed_array(printer, name, array, same, "")
              for name, array in constants.items()]
    given.append(_printed_array(printer, "g", numbers["g"], same, ""))
    given = [_together(_given_title(printer, derivation, parts), given)]
    forward = [_printed_array(printer, "z", z, same, "")]
    backward = [_together("", [
        _printed_array(printer, name, grads[name], partial, "",
                       plain_prefix=f"d{notation.name('L')}/d")
        for name in grads])]
    arithmetic = []
    for expressions, evaluated, lhs in (
            [(derivation.z, z, lambda index: printer.label("z", index))]
            + [(derivation.grads[name], grads[name],
                lambda index, name=name: rf"\frac{{\partial {loss}}}{{\partial "
                                         rf"{printer.label(name, index)}}}")
               for name in grads]):
        index = _chosen_element(expressions, evaluated)
        if index is None:
            continue
        decimals, _ = _style(list(evaluated.ravel()))
        arithmetic.append(_arithmetic(printer, lhs(index), expressions[index], values, symbols,
                                      _format(evaluated[index], decimals)))
    rounded = any(part.rounded for part in (*given, *forward, *backward))
    intro = _intro(printer, hints, rounded, bool(derivation.params))
    notes = []
    if hints.note and marks:
        notes.append(hints.note.replace("{x}", f"${printer.name('x')}$"))
    return WorkedExample(shown=True, intro=intro, notes=tuple(notes), given=tuple(given),
                         forward=tuple(forward), backward=tuple(backward),
                         arithmetic=tuple(arithmetic))


def _given_title(printer, derivation, parts) -> str:
    """``The input x, the weight w and the bias b, and the upstream gradient g = dL/dz``."""
    def named(name, what):
        return f"{what} ${printer.name(name)}$"

    things = [named("x", "the input")]
    things += [named(name, "the bias" if name.startswith("b") else "the weight")
               for name in derivation.params]
    things += [named(name, parts.constant_meanings.get(name, "the constant"))
               + " (given, not differentiated)" for name in derivation.constants]
    gradient = (f"the upstream gradient ${printer.name('g')} = \\partial {printer.name('L')}"
                f"/\\partial {printer.name('z')}$")
    text = ", ".join(things) + " and " + gradient
    return text[0].upper() + text[1:]


def _numbers(array, values) -> np.ndarray:
    out = np.empty(tuple(array.shape), dtype=object)
    for index in np.ndindex(*out.shape):
        element = array[index]
        out[index] = values.get(element, element)
    return out


def _intro(printer, hints, rounded: bool, parameters: bool) -> str:
    x, g = printer.name("x"), printer.name("g")
    text = (f"To check a computation by hand: small integers for ${x}$"
            + (", the parameters" if parameters else "")
            + f" and ${g}$, put into the sums above; every number below is the derivation's "
              f"expression at these integers.")
    if rounded:
        text += (f" Results that are not whole numbers (or short decimals) are rounded to "
                 f"{DECIMALS} decimals.")
    return text


def _chain_example(chain, index_base, names) -> WorkedExample:
    """A chain: the activations forward and the error terms backward, boundary by
    boundary (the delta walk in numbers), and each layer's parameter gradients."""
    notation = chain_notation(chain, index_base, names)
    printer = LayerLatexPrinter(notation)
    steps = chain.steps
    shapes = {"a0": tuple(steps[0].input_shape)}
    for step in steps:
        shapes[f"a{step.number}"] = tuple(step.output_shape)
        shapes[f"delta{step.number}"] = tuple(step.output_shape)
        shapes.update({name: tuple(array.shape) for name, array in step.params.items()})
        shapes.update({f"d{name}": tuple(array.shape) for name, array in step.params.items()})
    shapes["delta0"] = shapes["a0"]
    reason = _too_large(notation, shapes)
    if reason is not None:
        return _omitted(reason + "; a smaller \\texttt{-{}-input} shows it", None)
    params = {name: array for step in steps for name, array in step.params.items()}
    symbols = {}
    for step in steps:
        symbols.update(getattr(step.layer, "symbol_values", {}) or {})
    try:
        for attempt in range(CHAIN_ATTEMPTS):
            values, activations = _chain_forward(chain, params, symbols, attempt)
            ties = sum(_step_ties(step, values) for step in steps)
            if not ties:
                break
        else:  # every attempt tied somewhere: the first integers, and the rule for ties
            values, activations = _chain_forward(chain, params, symbols, 0)
        deltas = {len(steps): _numbers(steps[-1].delta_out, values)}
        param_grads = {}
        for step in reversed(steps):
            incoming = _evaluate_array(step.delta_in, values, symbols)
            deltas[step.number - 1] = incoming
            if step.number > 1:
                for index in np.ndindex(*incoming.shape):
                    values[steps[step.number - 2].delta_out[index]] = incoming[index]
            for name, gradient in step.param_grads.items():
                param_grads[name] = _evaluate_array(gradient, values, symbols)
    except (ValueError, TypeError, ZeroDivisionError) as error:
        return _omitted(f"its expressions could not be evaluated at numbers ({error})", None)
    loss = printer.name("L")

    def same(label):
        return label

    marks = {}
    for step in steps:
        hints = None if step.is_sum else LATEX[step.layer].worked_example
        if hints is not None and hints.marks is not None:
            own = _own_values(step, values)
            marks[f"a{step.number - 1}"] = hints.marks(step.derivation, own)["x"]
    last = f"delta{len(steps)}"
    given = [_printed_array(printer, "a0", activations[0], same, "", marks.get("a0", frozenset()))]
    given += [_printed_array(printer, name, _numbers(params[name], values), same, "")
              for name in params]
    given.append(_printed_array(printer, last, deltas[len(steps)], same, ""))
    given = [_together(f"The input ${printer.name('a0')}$, the parameters and the given error "
                       f"term ${printer.name(last)}$", given)]
    forward = [_together("The activations, layer by layer", [
        _printed_array(printer, f"a{number}", activations[number], same, "",
                       marks.get(f"a{number}", frozenset()))
        for number in range(1, len(steps) + 1)])]
    walk, gradients = [], []
    for number in range(len(steps) - 1, -1, -1):
        step = steps[number]
        walk.append(_printed_array(printer, f"delta{number}", deltas[number], same, ""))
        for name in step.param_grads:
            gradients.append(_printed_array(
                printer, name, param_grads[name],
                lambda label: rf"\partial {loss}/\partial {label}", "",
                plain_prefix=f"d{notation.name('L')}/d"))
    backward = [_together("The error terms, layer boundary by layer boundary", walk)]
    if gradients:
        backward.append(_together("The parameter gradients", gradients))
    rounded = any(part.rounded for part in (*given, *forward, *backward))
    text = ("To check the walk by hand: small integers for the input, the parameters and the "
            f"last error term ${printer.name(last)}$, put into each layer's sums; forward "
            "layer by layer, then backward boundary by boundary.")
    if rounded:
        text += (f" Results that are not whole numbers (or short decimals) are rounded to "
                 f"{DECIMALS} decimals.")
    notes = []
    if marks:
        boxed = _join([f"layer {int(name[1:]) + 1}'s in ${printer.name(name)}$"
                       for name in marks])
        notes.append(f"The boxed entries are the maxima of each pooling window ({boxed})"
                     + ("; no window has a tie." if not ties else
                                   "; where a window has a tie, its gradient goes to its "
                                   "first maximum (row by row)."))
    return WorkedExample(shown=True, intro=text, notes=tuple(notes), given=tuple(given),
                         forward=tuple(forward), backward=tuple(backward))


def _join(items) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _chain_forward(chain, params, symbols, attempt: int):
    """The chain's integers (``attempt``: which pattern) and every activation."""
    steps = chain.steps
    values = example_values(steps[0].input, params, steps[-1].delta_out, attempt=attempt)
    activations = {0: _numbers(steps[0].input, values)}
    for step in steps:
        out = _evaluate_array(step.z, values, symbols)
        activations[step.number] = out
        for index in np.ndindex(*out.shape):
            values[step.output[index]] = out[index]
    return values, activations


def _own_values(step, values) -> dict:
    """A chain step's numbers in its own derivation's symbols (its input is ``x``)."""
    own = step.derivation
    return {own.x[index]: values[step.input[index]] for index in np.ndindex(*own.input_shape)}


def _step_ties(step, values) -> int:
    hints = None if step.is_sum else LATEX[step.layer].worked_example
    if hints is None or hints.ties is None:
        return 0
    return hints.ties(step.derivation, _own_values(step, values))


def worked_context(derivation, index_base: int = 1, names: dict | None = None,
                   show_padding: bool = True) -> WorkedExample:
    """The document's worked example, with the hints the layer's kind registered."""
    hints = None if hasattr(derivation, "steps") else LATEX[derivation.layer].worked_example
    return worked_example(derivation, index_base, names, show_padding, hints)


def worked_text(derivation, index_base: int = 1, names: dict | None = None) -> str:
    """The worked example for the terminal (``derive --worked-example``): the integers,
    the output and every gradient, as right-aligned rows of numbers."""
    example = worked_context(derivation, index_base, names)
    if not example.shown:
        text = f"The worked example is left out: {example.reason.replace('this page', 'it')}."
        if example.smaller:
            command = example.smaller.replace(" latex ", " derive ", 1)
            text += f" On a smaller input: {command} --worked-example"
        return text
    lines = ["Worked example: small integers for the input"
             + (", the parameters" if not hasattr(derivation, "steps") and derivation.params
                else "")
             + " and the upstream gradient; every number below is the derivation at them."]
    if any(part.rounded for part in (*example.given, *example.forward, *example.backward)):
        lines.append(f"Numbers that are not whole (or short decimals) are rounded to "
                     f"{DECIMALS} decimals.")
    if any("[" in line for part in example.given + example.forward for line in part.plain
           if not line.endswith("=")):
        lines.append("[n] marks a pooling window's maximum (no window has a tie).")
    for heading, parts in (("Given", example.given), ("Forward", example.forward),
                           ("Backward", example.backward)):
        lines += ["", f"{heading}:"]
        for part in parts:
            lines += ["  " + line for line in part.plain]
    return "\n".join(lines)


# The documents of render.latex end with the worked example (it cannot import this module).
WORKED_EXAMPLE["build"] = worked_context
