"""Render stage (HTML): a derivation -> one self-contained interactive page.

Input: a :class:`~symbackprop.core.derivation.Derivation` or a
:class:`~symbackprop.core.chain.ChainDerivation`.  Output: the text of one HTML file
that works offline (inline CSS and JavaScript, no network at view time): every
array of the derivation as a grid of cells (4-D arrays as a grid of 2-D maps,
one per batch sample and channel; the zero padding around ``x`` where the layer
pads), a formula bar, and a step-through of the layer's closed-form backward rule.
Click a cell (or focus it and press Enter or Space; hovering previews) and its
formula appears as typeset mathematics (MathML, which browsers render natively)
while every cell of that formula lights up.

Python computes everything the page shows: the formulas are printed by the
LaTeX printers of :mod:`~symbackprop.render.latex` and :mod:`~symbackprop.render.latex_layers`
(the notation of the LaTeX document) and converted to MathML by ``latex2mathml``;
the terms of a formula are the free symbols of the derived expression, read back
with :func:`~symbackprop.core.naming.parse_element`; the step-through frames come from
:mod:`~symbackprop.core.rules` (``dilate``, ``pad2d``, ``rot180``, ``grad_padding``).
The page's script only shows and hides.

Page contract (stable; tests and other tools may rely on it)
------------------------------------------------------------
- Every layer is one ``<section class="layer" data-layer="L">`` (``L`` = 1 for a
  single layer; a chain has one per layer, in forward order).  Cells, formulas
  and highlights belong to their section.
- Every element of an array is one ``<button class="cell">`` carrying
  ``data-array`` -- ``x``, the parameters (``w``, ``b``, a kind's own parameter
  names), an input read but not differentiated (a keep-mask ``m``),
  ``z``, ``g``, ``grad_x``, ``grad_w``, ``grad_b`` (``grad_`` + the
  parameter's name) for a single layer; in a chain the chain's names: ``a0``,
  ``w1``, ``b1``, ``a1``, ``delta1`` and the derived ``delta0``, ``grad_w1``,
  ``grad_b1`` -- and ``data-index``, the element's full 0-based index,
  comma-separated (``0,0,1,1``).  It has an ``aria-label`` naming the element.
- A padding position around ``x`` is a ``<span class="cell pad">`` with
  ``data-array`` of the input and ``data-pad``, its 0-based index into the
  padded input (``0,0,0,0`` is the top-left padding corner); it has no
  ``data-index`` and is never a term.
- Clicking a cell gives it the class ``selected`` and gives exactly the cells of
  its formula's terms (the free symbols of the derived expression) the class
  ``term``; nothing else on the page has either class.  Padding positions the
  formula reads, and the kernel elements multiplied with them, get ``padread``.
  Selecting an input cell (``x``, a parameter, ``g``) has no terms: the derived
  cells whose formulas use it get ``use``.
- ``#formula-L`` (``L`` the section) shows the selected cell's formula.
"""

from __future__ import annotations

import functools
import html as html_text
import json
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import sympy

from symbackprop.core.layers import ResidualSum
from symbackprop.core.naming import element_symbol, parse_element
from symbackprop.core.registry import Registry
from symbackprop.render.latex import (
    LATEX,
    NAME_OPTIONS,
    TERMS_LIMIT,
    LayerLatexPrinter,
    _abbreviate,
    _subscript,
    latex_name,
    walk_formula,
)
from symbackprop.render.latex_names import has_subscript, join_scripts
from symbackprop.render.text import step_title

__all__ = ["to_html", "write_page", "mathml", "PAGE_CONTRACT_ARRAYS", "PAGE_MAX_TERMS",
           "check_page_size", "HTML", "HtmlParts", "Step", "StepGrid", "general_formulas",
           "step_grid", "first_map", "flat_map", "flat_position", "slice_rows", "map_label",
           "plain_label", "STEP_GRID_LIMIT"]

#: ``data-array`` values of a single layer's page (besides a kind's own parameters).
PAGE_CONTRACT_ARRAYS = ("x", "w", "b", "z", "g", "grad_x", "grad_w", "grad_b")

#: The page's heading for a chain (a layer's is its LaTeX document's title).
CHAIN_TITLE = "Backpropagation through a chain of layers"

#: Largest instance the page draws: products in the forward expansion.  Every one is
#: typeset, about 1 ms and 600 bytes each (with its gradient terms): 20,000 products
#: make a page of some 12 MB in about half a minute.
PAGE_MAX_TERMS = 20_000

#: Largest 2-D map the step-through draws in full (rows or columns).
STEP_GRID_LIMIT = 16


# ---------------------------------------------------------------------------
# LaTeX -> MathML
# ---------------------------------------------------------------------------

# Commands the LaTeX document defines for itself, or that latex2mathml lacks.
_LATEX_FIXES = ((r"\arg\max", r"\operatorname{argmax}\,"), (r"\corr", r"\operatorname{corr}"),
                # latex2mathml's fixed-size fences are spaced like relations in Chromium
                (r"\bigl(", "("), (r"\bigr)", ")"), (r"\Bigl(", "("), (r"\Bigr)", ")"))
_ENTITY = re.compile(r"&#x([0-9A-Fa-f]+);")
_KEEP_ESCAPED = {"<", ">", "&", '"'}
_OPERATOR_NAME = re.compile(r"<mo>([A-Za-z]{2,})</mo>")
_LONE_ROW = re.compile(r"<mrow>(<m[ion]>[^<]*</m[ion]>)</mrow>")


@functools.lru_cache(maxsize=4096)
def mathml(latex: str, display: bool = False) -> str:
    """``latex`` (math mode) as a ``<math>`` element for an HTML page.

    Numeric character references become the characters (a smaller page);
    ``<``, ``>``, ``&`` and quotes stay escaped.
    """
    from latex2mathml.converter import convert

    for old, new in _LATEX_FIXES:
        latex = latex.replace(old, new)
    text = convert(join_scripts(latex))  # a^{[l-1]} + ^{(2)}: one superscript
    text = text.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "")
    text = text.replace(' display="inline"', ' display="block"' if display else "")

    def character(match):
        char = chr(int(match.group(1), 16))
        return match.group(0) if char in _KEEP_ESCAPED else char

    # \operatorname{corr} comes out as an operator <mo>, spaced like a relation; set
    # the names upright and tight against their parentheses, as LaTeX does.
    text = _OPERATOR_NAME.sub(r"<mi>\1</mi>", text)
    # A row of one token is that token (MathML Core): a smaller page.
    text = _LONE_ROW.sub(r"\1", text)
    return _ENTITY.sub(character, text)


# ---------------------------------------------------------------------------
# The page's data: cells, formulas, maps, steps
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One element on the page (or one padding position around the input)."""

    id: int
    array: str
    index: tuple[int, ...]
    label: str  # MathML shown in the cell
    aria: str
    pad: bool = False


@dataclass(frozen=True)
class ArrayMap:
    """One 2-D map of an array: its heading and rows of cells."""

    heading: str  # MathML, or "" when the array is one map
    rows: tuple


@dataclass(frozen=True)
class ArrayPanel:
    """An array as the page draws it."""

    key: str  # data-array
    title: str  # MathML heading
    caption: str  # plain words
    role: str  # "input", "param", "output", "upstream", "grad"
    maps: tuple
    columns: int  # maps per row of the map grid


@dataclass(frozen=True)
class StepGrid:
    """A small matrix of the step-through, drawn once and shown by several steps."""

    id: str
    heading: str  # MathML
    rows: tuple  # of tuples of (MathML text, css class)


@dataclass(frozen=True)
class Step:
    """One frame of the step-through: words, a formula, grids and marked positions."""

    title: str
    math: str = ""  # MathML
    grids: tuple = ()  # StepGrid ids shown
    marks: dict = field(default_factory=dict)  # grid id -> [(row, col), ...]
    cell: int | None = None  # a page cell whose formula the frame shows


@dataclass(frozen=True)
class Section:
    """One layer's part of the page: its formulas, array panels and step-through."""

    number: int
    title: str
    description: str
    general: tuple  # MathML formulas: forward, backward
    forward: tuple  # ArrayPanels
    backward: tuple
    steps: tuple
    step_grids: tuple


@dataclass(frozen=True)
class LayerView:
    """One layer as a page section draws it, in the names of its section.

    ``names`` maps the layer's own array names (``x``, ``z``, ``g``, ``grad_x``,
    ``w``, ``grad_w``, ...) to the section's (``a0``, ``a1``, ``delta1``,
    ``delta0``, ``w1``, ``grad_w1``, ... in a chain).
    """

    number: int
    layer: object
    input_shape: tuple
    output_shape: tuple
    names: dict
    x: sympy.Array
    params: dict  # own name -> symbols in the section's names
    g: sympy.Array
    z: sympy.Array
    z_written: sympy.Array
    grads: dict  # own name ("x", "w", "b") -> derived expressions
    #: more given arrays the section's formulas read, as ``(name, symbols, caption,
    #: "forward" or "backward")``: a residual sum's skip input, the identity paths' error
    #: terms a residual block's first layer adds
    extras: tuple = ()
    #: inputs the layer reads but nobody differentiates by (a loss's targets), own name ->
    #: symbols; drawn as given arrays
    constants: dict = field(default_factory=dict)


def _single_view(derivation) -> LayerView:
    own = {"x": "x", "z": "z", "g": "g", "grad_x": "grad_x"}
    for name in derivation.params:
        own[name] = name
        own[f"grad_{name}"] = f"grad_{name}"
    constants = dict(getattr(derivation, "constants", {}))
    own.update({name: name for name in constants})
    return LayerView(number=1, layer=derivation.layer, input_shape=derivation.input_shape,
                     output_shape=derivation.output_shape, names=own, x=derivation.x,
                     params=dict(derivation.params), g=derivation.g, z=derivation.z,
                     z_written=derivation.z_written, grads=dict(derivation.grads),
                     constants=constants)


def _chain_view(step) -> LayerView:
    names = dict(step.names)
    params = {}
    grads = {"x": step.delta_in}
    for own in (step.derivation.params if step.derivation is not None else ()):
        chain_name = names[own]
        params[own] = step.params[chain_name]
        names[f"grad_{own}"] = f"grad_{chain_name}"
        grads[own] = step.param_grads[chain_name]
    extras = []
    if step.is_sum:
        extras.append((step.names["skip"], step.skip, "the block's input (the skip path)",
                       "forward"))
    for path in step.identity_paths:
        name = parse_element(path[(0,) * path.rank()])[0]
        extras.append((name, path, "the identity path's error term (given)", "backward"))
    return LayerView(number=step.number, layer=step.layer, input_shape=step.input_shape,
                     output_shape=step.output_shape, names=names, x=step.input, params=params,
                     g=step.delta_out, z=step.z, z_written=step.z_written, grads=grads,
                     extras=tuple(extras))


class _Builder:
    """Collects the cells and formulas of a page, section by section."""

    def __init__(self, show_padding: bool):
        self.show_padding = show_padding
        self.cells: list[Cell] = []
        #: cell id -> [formula MathML, note, term ids, padread ids, use ids]
        self.info: list[list] = []

    def new_cell(self, array, index, label, aria, pad=False) -> Cell:
        cell = Cell(id=len(self.cells), array=array, index=tuple(int(i) for i in index),
                    label=label, aria=aria, pad=pad)
        self.cells.append(cell)
        self.info.append(["", "", [], [], []])
        return cell


def _printer(notation, view: LayerView, show_padding: bool) -> LayerLatexPrinter:
    # \textcolor, not \color: latex2mathml's \color greys everything after it.
    padding = r"\textcolor{gray}" if show_padding else None
    return LayerLatexPrinter(notation, window_output=view.names["z"],
                             vector_bias=LATEX[view.layer].vector_bias, padding_command=padding)


def _sum_latex(printer, expression) -> str:
    terms, cut = _abbreviate(printer.terms(expression), TERMS_LIMIT)
    if not terms:
        return "0"
    text = ("-" if terms[0][0] == "-" else "") + terms[0][1]
    text += "".join(f" {sign} {body}" for sign, body in terms[1:])
    if cut:
        text += rf"\quad\text{{({len(sympy.Add.make_args(expression))} terms)}}"
    return text


def _count(expression) -> str:
    """``"4 terms"`` of a sum, ``"1 term"``, ``"0"``; for a max or f(x) the elements read."""
    expression = sympy.sympify(expression)
    if expression == 0:
        return "0"
    if expression.is_Add or expression.is_Mul or expression.is_Symbol:
        count = len(sympy.Add.make_args(expression))
        return f"{count} term{'s' if count != 1 else ''}"
    read = len(expression.free_symbols)
    return f"reads {read} element{'s' if read != 1 else ''}"


def _cell_label(printer, array: str, index: tuple) -> str:
    """What a cell shows: the name and the row/column subscript (the map heading has
    the batch and channel), or the whole label for vectors and matrices."""
    if len(index) >= 3:
        shown = printer.notation.indices(array, index)
        name = printer.name(array)
        return name + _subscript(shown[-2:], commas=has_subscript(name))
    return printer.label(array, index)


def plain_label(printer, array: str, index: tuple) -> str:
    """The plain-text label of an element (``x22``, ``x[1,2,1,1]``) for words and aria."""
    return printer.notation.label(element_symbol(array, index))


def map_label(printer, array: str, leading: tuple) -> str:
    """``x^{(1,2)}``, or a chain's ``a^{[1](1,2)}`` (one superscript, as its labels)."""
    return printer.map_label(array, tuple(leading)).replace("]}^{(", "](")


def _map_keys(shape) -> list:
    """The leading indices of each 2-D map of an array (one map for rank <= 2)."""
    return list(np.ndindex(*shape[:-2])) if len(shape) >= 3 else [()]


def _panel(builder, printer, key, symbol_name, shape, title, caption, role, cells_by_key,
           padding=(0, 0, 0, 0), pad_value="0") -> ArrayPanel:
    """Cells of one array; ``symbol_name`` names its elements in formulas (``x`` for
    the cells of ``grad_x``); ``padding`` draws positions holding ``pad_value`` (LaTeX)
    around each map."""
    top, bottom, left, right = padding
    maps = []
    for leading in _map_keys(shape):
        if len(shape) >= 3:
            height, width = shape[-2:]
        elif len(shape) == 2:
            height, width = shape
        else:
            height, width = 1, (shape[0] if shape else 1)
        rows = []
        for r in range(-top, height + bottom):
            row = []
            for c in range(-left, width + right):
                if 0 <= r < height and 0 <= c < width:
                    if len(shape) >= 2:
                        index = (*leading, r, c)
                    else:
                        index = (c,) if shape else ()
                    label = mathml(_cell_label(printer, symbol_name, index))
                    plain = plain_label(printer, symbol_name, index)
                    aria = (f"dL/d{plain}" if role == "grad" else plain)
                    cell = builder.new_cell(key, index, label, aria)
                else:
                    index = (*leading, r + top, c + left)
                    cell = builder.new_cell(key, index, mathml(pad_value), "padding", pad=True)
                cells_by_key[(key, cell.index, cell.pad)] = cell
                row.append(cell)
            rows.append(tuple(row))
        heading = ""
        if len(shape) >= 3 and int(np.prod(shape[:-2])) > 1:
            heading = mathml(map_label(printer, symbol_name, leading))
        maps.append(ArrayMap(heading=heading, rows=tuple(rows)))
    columns = shape[1] if len(shape) == 4 else 1
    return ArrayPanel(key=key, title=mathml(title), caption=caption, role=role,
                      maps=tuple(maps), columns=columns)


# ---------------------------------------------------------------------------
# What a kind supplies
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class HtmlParts:
    """What the page asks of a layer kind (``kinds/<kind>/html.py`` fills it); its
    title, general formulas and whether its forward formulas show padding products
    come from the kind's :class:`~symbackprop.render.latex.LatexParts`.

    Attributes
    ----------
    steps : ``(view, printer, loss, cells) -> (steps, grids)``
        The step-through of the layer's backward pass: :class:`Step` frames and the
        :class:`StepGrid` matrices they show (:func:`step_grid`).  ``cells`` maps
        ``(array, index, is_padding)`` to the page's cells.
    reads : ``(layer, output_index) -> iterable of (padded input index, weight index)``,
        optional: the positions of the zero-padded input an output element reads, for
        a kind that pads (``weight index`` is ``None`` when no weight multiplies it).
    pad_value : str
        What a padding position holds in LaTeX (max pooling's ``-\\infty``).
    general : ``(view, printer, loss) -> (forward, backward)``, optional
        The general formulas in LaTeX when the page states them differently from the
        document; by default :class:`~symbackprop.render.latex.LatexParts`.general.
    """

    steps: Callable
    reads: Callable | None = None
    pad_value: str = "0"
    general: Callable | None = None


#: layer type -> :class:`HtmlParts`.
HTML = Registry("draw an interactive page of")


def _padding_of(layer) -> tuple:
    """The layer's zero padding (top, bottom, left, right), drawn around its input."""
    return tuple(layer.padding) if HTML[layer].reads is not None else (0, 0, 0, 0)


def _section(builder, view: LayerView, printer, loss: str, title: str) -> Section:
    layer = view.layer
    names = view.names
    cells = {}
    padding = _padding_of(layer)
    pad_value = HTML[layer].pad_value

    def title_of(own):
        return printer.name(names[own])

    def grad_title(own):
        return rf"\frac{{\partial {loss}}}{{\partial {printer.name(names[own])}}}"

    param_words = {"w": "weights", "b": "bias"}
    forward = [_panel(builder, printer, names["x"], names["x"], view.input_shape,
                      title_of("x"), "input" + (", with its padding" if any(padding)
                                                else ""), "input", cells, padding, pad_value)]
    for own, symbols in view.params.items():
        forward.append(_panel(builder, printer, names[own], names[own], symbols.shape,
                              title_of(own), param_words.get(own, own), "param", cells))
    extras = {side: [_panel(builder, printer, name, name, symbols.shape, printer.name(name),
                            caption, "input" if side == "forward" else "upstream", cells)
                     for name, symbols, caption, extra_side in view.extras
                     if extra_side == side] for side in ("forward", "backward")}
    forward += extras["forward"]
    for own, symbols in view.constants.items():  # a keep-mask, a loss's targets, statistics
        shown = names.get(own, own)
        forward.append(_panel(builder, printer, shown, shown, symbols.shape,
                              printer.name(shown), f"{own.replace('_', ' ')} (given, a "
                              f"constant)", "input", cells))
    forward.append(_panel(builder, printer, names["z"], names["z"], view.output_shape,
                          title_of("z"), "output", "output", cells))
    backward = [_panel(builder, printer, names["g"], names["g"], view.output_shape,
                       title_of("g"), f"upstream gradient d{printer.notation.name('L')}/"
                                      f"d{printer.notation.name(names['z'])} (given)",
                       "upstream", cells)]
    backward += extras["backward"]
    backward.append(_panel(builder, printer, names["grad_x"], names["x"], view.input_shape,
                           grad_title("x"), "gradient of the input", "grad", cells))
    for own, symbols in view.params.items():
        backward.append(_panel(builder, printer, names[f"grad_{own}"], names[own],
                               symbols.shape, grad_title(own),
                               f"gradient of the {param_words.get(own, own)}", "grad", cells))

    def cell_of(symbol):
        parsed = parse_element(symbol)
        if parsed is None:
            return None
        found = cells.get((parsed[0], parsed[1], False))
        if found is None:
            raise ValueError(f"html: the formula term {symbol} has no cell on the page")
        return found

    def record(cell, lhs, expression, note, shown=None):
        """The formula ``lhs = shown`` of a derived cell; its terms are the free symbols
        of ``expression`` (the derived sum; ``shown`` may also write padding products)."""
        info = builder.info[cell.id]
        shown = expression if shown is None else shown
        info[0] = mathml(f"{lhs} = {_sum_latex(printer, shown)}", display=True)
        info[1] = note
        terms = sorted({cell_of(s).id for s in sympy.sympify(expression).free_symbols
                        if parse_element(s) is not None})
        info[2] = terms
        for term in terms:
            builder.info[term][4].append(cell.id)

    # Derived cells: z and the gradients.
    # As the LaTeX document writes them: padding products (0 w) kept where they occur.
    shows_padding = LATEX[layer].shows_padding
    shown_z = view.z_written if builder.show_padding and shows_padding else view.z
    reads = HTML[layer].reads
    for index in np.ndindex(*view.output_shape):
        cell = cells[(names["z"], index, False)]
        record(cell, printer.label(names["z"], index), view.z[index],
               f"forward: {_count(view.z[index])}", shown=shown_z[index])
        if reads is not None and any(padding):
            top, left = padding[0], padding[2]
            height, width = view.input_shape[2:]
            padread = []
            for position, weight in reads(layer, index):
                r, c = position[2] - top, position[3] - left
                padded_cell = cells.get((names["x"], position, True))
                if padded_cell is None:
                    continue  # past the padded input: a window that runs past it reads nothing
                if not (0 <= r < height and 0 <= c < width):
                    padread.append(padded_cell.id)
                    if weight is not None:
                        padread.append(cells[(names["w"], weight, False)].id)
            builder.info[cell.id][3] = sorted(set(padread))
            if padread:
                builder.info[cell.id][1] += "; reads padding (dashed)"
    for own in ("x", *view.params):
        symbols = view.x if own == "x" else view.params[own]
        for index in np.ndindex(*symbols.shape):
            cell = cells[(names[f"grad_{own}"], index, False)]
            expression = view.grads[own][index]
            lhs = rf"\frac{{\partial {loss}}}{{\partial {printer.doprint(symbols[index])}}}"
            note = f"backward: {_count(expression)}"
            if expression == 0 and own == "x":
                note += " (never read by the forward pass)"
            record(cell, lhs, expression, note)
    # Input cells: their own label, and the derived cells that use them.
    for cell in builder.cells[min(c.id for c in cells.values()):]:
        info = builder.info[cell.id]
        if info[0]:
            continue
        if cell.pad:
            info[0] = mathml(rf"\tilde{{{printer.name(names['x'])}}} = {pad_value}",
                             display=True)
            info[1] = "padding: the forward pass may read it; it has no gradient"
            continue
        symbol = element_symbol(cell.array, cell.index)
        uses = len(info[4])
        info[0] = mathml(printer.doprint(symbol), display=True)
        info[1] = (f"{'given' if cell.array == names['g'] else 'input'}: used by {uses} "
                   f"formula{'s' if uses != 1 else ''} of this layer (marked)")
    general = general_formulas(view, printer, loss)
    steps, grids = HTML[layer].steps(view, printer, loss, cells)
    return Section(number=view.number, title=title, description=layer.describe(),
                   general=general, forward=tuple(forward), backward=tuple(backward),
                   steps=tuple(steps), step_grids=tuple(grids))


def general_formulas(view, printer, loss) -> tuple:
    """The kind's general forward and backward formulas as MathML, in the section's names."""
    own = HTML[view.layer].general
    if own is not None:
        forward, backward = own(view, printer, loss)
    else:
        names = view.names
        reader = {"x": printer.name(names["x"]), "z": printer.name(names["z"]),
                  "g": printer.name(names["g"]), "L": loss}
        for name in view.params:
            reader[name] = printer.name(names[name])
        formulas = LATEX[view.layer].general(view.layer, reader, printer.notation.index_base)
        forward, backward = formulas["forward"], formulas["backward"]
    identity = [printer.name(name) for name, _, _, side in view.extras if side == "backward"]
    if identity:  # a residual block's first layer: its input's error term adds the paths
        backward += rf",\quad \text{{plus the identity path }} {' + '.join(identity)}"
    return (mathml(forward, display=True), mathml(backward, display=True))


# ---------------------------------------------------------------------------
# Pieces of the step-throughs the kinds build
# ---------------------------------------------------------------------------

def step_grid(printer, grid_id, heading, values, marks_zero="zero", pad_mask=None,
          pad_value="0", slice_rows: int = 0) -> StepGrid:
    """A step grid from a 2-D array of symbols and numbers; ``pad_mask`` marks padding
    positions (shown as ``pad_value``), zeros elsewhere get the class ``marks_zero``.
    ``slice_rows`` > 0: every ``slice_rows`` rows begin a new slice of a volume (class
    ``slice``, drawn apart; see :func:`flat_map`)."""
    rows = []
    for r in range(values.shape[0]):
        row = []
        for c in range(values.shape[1]):
            value = values[r, c]
            if pad_mask is not None and pad_mask[r, c]:
                row.append((mathml(pad_value), "pad"))
            elif value == 0 and not getattr(value, "free_symbols", None):
                row.append((mathml("0"), marks_zero))
            else:
                row.append((mathml(printer.doprint(value)), ""))
        if slice_rows and r and r % slice_rows == 0:
            row = [(text, f"{style} slice".strip()) for text, style in row]
        rows.append(tuple(row))
    return StepGrid(id=grid_id, heading=mathml(heading), rows=tuple(rows))


def flat_map(volume: np.ndarray) -> np.ndarray:
    """A spatial map of any number of axes as a step grid's 2-D array: a 1-D map is one
    row; every axis but the last is stacked into rows (a 3-D volume's depth slices top
    to bottom, row ``d * H + h``); a 2-D map stays as it is."""
    return volume.reshape(-1, volume.shape[-1]) if volume.ndim > 1 else volume.reshape(1, -1)


def flat_position(position, shape) -> tuple[int, int]:
    """``(row, column)`` in :func:`flat_map`'s grid of the spatial ``position`` of a map
    shaped ``shape``."""
    row = int(np.ravel_multi_index(tuple(position[:-1]), shape[:-1])) if len(shape) > 1 else 0
    return row, int(position[-1])


def slice_rows(shape) -> int:
    """Rows of one slice in :func:`flat_map`'s grid of a map shaped ``shape`` (0: one
    slice, nothing to draw apart)."""
    return shape[-2] if len(shape) > 2 else 0


def first_map(array):
    """The first 2-D map of a 4-D NumPy array."""
    return array[(0,) * (array.ndim - 2)]


# ---------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------

def _check_names(names: dict) -> dict:
    names = dict(names or {})
    allowed = [key for key, _ in NAME_OPTIONS.values()]
    for key, value in names.items():
        if key not in allowed:
            raise ValueError(f"names: unknown array {key!r}; use {', '.join(allowed)}")
        latex_name(value)  # validates
    return names


@functools.lru_cache(maxsize=None)
def _environment():
    import jinja2

    from symbackprop.render.templating import template_dir

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())),
                              undefined=jinja2.StrictUndefined, autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


def _script_json(data) -> str:
    """JSON for a ``<script type="application/json">``: no ``</`` can end the element."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).replace("</", "<\\/")


def check_page_size(layer, input_shape) -> None:
    """Refuse (``ValueError``) an instance with more than :data:`PAGE_MAX_TERMS` products."""
    products = layer.term_count(tuple(input_shape))
    if products > PAGE_MAX_TERMS:
        raise ValueError(
            f"input_size/batch: this instance has {products:,} products in z, over the "
            f"{PAGE_MAX_TERMS:,} an interactive page draws (each is a cell's typeset "
            f"term); the page of a smaller input, batch or channel count shows the same "
            f"rules")


def to_html(derivation, index_base: int = 1, names: dict | None = None,
            show_padding: bool = True, *, command: str | None = None) -> str:
    """The derivation as one self-contained interactive HTML page (a string).

    Parameters are those of :func:`~symbackprop.render.latex.to_latex`: ``index_base``
    1 (default, the textbook's) or 0; ``names`` following the reader's course
    (``{"x": "a", "g": "delta"}``, keys ``x w b z g L``); ``show_padding`` keeps
    padding products as a grey ``0 w`` in the forward formulas.  The page
    contract is in this module's docstring.
    """
    from symbackprop._version import __version__
    from symbackprop.render.latex import regenerate_command

    names = _check_names(names)
    check_page_size(derivation.layer, derivation.input_shape)
    notation = derivation.notation(index_base=index_base, names=names)
    builder = _Builder(show_padding)
    chain = hasattr(derivation, "steps")
    plain = LayerLatexPrinter(notation)
    loss = plain.name("L")
    sections = []
    walk = []
    if chain:
        for step in derivation.steps:
            view = _chain_view(step)
            printer = _printer(notation, view, show_padding)
            sections.append(_section(builder, view, printer, loss,
                                     f"Layer {step.number}: {step_title(step)}"))
        walk = [mathml(walk_formula(step, plain), display=True)
                for step in reversed(derivation.steps)]
    else:
        view = _single_view(derivation)
        printer = _printer(notation, view, show_padding)
        sections.append(_section(builder, view, printer, loss,
                                 "Every element, forward and backward"))
    command = command or regenerate_command(derivation.layer, derivation.input_shape,
                                            index_base, names, show_padding)
    command = command.replace("symbackprop latex", "symbackprop html", 1)
    data = {
        "cells": builder.info,
        "steps": {str(section.number): [
            {"title": step.title, "math": step.math, "grids": list(step.grids),
             "marks": {key: [list(map(int, mark)) for mark in value]
                       for key, value in step.marks.items()},
             "cell": step.cell} for step in section.steps] for section in sections},
    }
    template = _environment().get_template("page.html.j2")
    return template.render(
        heading=CHAIN_TITLE if chain else _title(LATEX[derivation.layer].title,
                                                 derivation.layer),
        title=derivation.layer.describe(), sections=sections, walk=walk, chain=chain,
        data=_script_json(data), command=command, version=__version__,
        base=index_base, escape=html_text.escape)


def _title(title, layer) -> str:
    return title(layer) if callable(title) else title


def write_page(text: str, path):
    """Write the page atomically (the LaTeX writer's temporary file + rename)."""
    from symbackprop.render.latex import write_document

    return write_document(text, path)


# -- a residual sum (core: a chain's part, not a kind) ------------------------------


def _sum_general(view, printer, loss):
    names = view.names
    name = printer.name
    return (rf"{name(names['z'])} = {name(names['skip'])} + {name(names['x'])}",
            rf"{name(names['grad_x'])} = {name(names['g'])},\qquad "
            rf"{name(names['grad_skip'])} \mathrel{{+}}= {name(names['g'])}")


def _sum_steps(view, printer, loss, cells):
    forward, backward = (mathml(text, display=True) for text in _sum_general(view, printer,
                                                                             loss))
    names = view.names
    first = (0,) * len(view.input_shape)
    return [Step(title="Forward: the block's input is added to its output, element by "
                       "element (x + block(x)).", math=forward,
                 cell=cells[(names["z"], first, False)].id),
            Step(title="Backward: the error term goes on unchanged to the block's output, "
                       "and along the identity path to the block's input, where the block's "
                       "first layer adds it to what the block hands back.", math=backward,
                 cell=cells[(names["grad_x"], first, False)].id)], []


HTML.register(ResidualSum, HtmlParts(steps=_sum_steps, general=_sum_general))
