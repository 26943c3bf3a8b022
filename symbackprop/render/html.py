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
  names), ``z``, ``g``, ``grad_x``, ``grad_w``, ``grad_b`` (``grad_`` + the
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

import numpy as np
import sympy

from symbackprop.core import rules
from symbackprop.core.indexing import unread_length
from symbackprop.core.naming import element_symbol, parse_element, to_grid
from symbackprop.kinds.conv2d import rules as conv_rules
from symbackprop.kinds.pool2d import rules as pool_rules
from symbackprop.render.latex import NAME_OPTIONS, TERMS_LIMIT, _abbreviate, _subscript, latex_name
from symbackprop.render.latex_layers import (
    _TITLES,
    ACTIVATION_LATEX,
    LayerLatexPrinter,
    _chain_rule,
    _general,
)

__all__ = ["to_html", "write_page", "mathml", "PAGE_CONTRACT_ARRAYS", "PAGE_MAX_TERMS",
           "check_page_size"]

#: ``data-array`` values of a single layer's page (besides a kind's own parameters).
PAGE_CONTRACT_ARRAYS = ("x", "w", "b", "z", "g", "grad_x", "grad_w", "grad_b")

#: The page's heading per layer kind.
PAGE_TITLES = {**_TITLES, "conv2d": "Backpropagation through a convolution",
               "sequential": "Backpropagation through a chain of layers"}

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
    text = convert(latex)
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


def _single_view(derivation) -> LayerView:
    own = {"x": "x", "z": "z", "g": "g", "grad_x": "grad_x"}
    for name in derivation.params:
        own[name] = name
        own[f"grad_{name}"] = f"grad_{name}"
    return LayerView(number=1, layer=derivation.layer, input_shape=derivation.input_shape,
                     output_shape=derivation.output_shape, names=own, x=derivation.x,
                     params=dict(derivation.params), g=derivation.g, z=derivation.z,
                     z_written=derivation.z_written, grads=dict(derivation.grads))


def _chain_view(step) -> LayerView:
    names = dict(step.names)
    params = {}
    grads = {"x": step.delta_in}
    for own in step.derivation.params:
        chain_name = names[own]
        params[own] = step.params[chain_name]
        names[f"grad_{own}"] = f"grad_{chain_name}"
        grads[own] = step.param_grads[chain_name]
    return LayerView(number=step.number, layer=step.layer, input_shape=step.input_shape,
                     output_shape=step.output_shape, names=names, x=step.input, params=params,
                     g=step.delta_out, z=step.z, z_written=step.z_written, grads=grads)


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
                             vector_bias=view.layer.kind == "linear", padding_command=padding)


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
        return printer.name(array) + _subscript(shown[-2:])
    return printer.label(array, index)


def _plain_label(printer, array: str, index: tuple) -> str:
    """The plain-text label of an element (``x22``, ``x[1,2,1,1]``) for words and aria."""
    return printer.notation.label(element_symbol(array, index))


def _map_label(printer, array: str, leading: tuple) -> str:
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
                    plain = _plain_label(printer, symbol_name, index)
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
            heading = mathml(_map_label(printer, symbol_name, leading))
        maps.append(ArrayMap(heading=heading, rows=tuple(rows)))
    columns = shape[1] if len(shape) == 4 else 1
    return ArrayPanel(key=key, title=mathml(title), caption=caption, role=role,
                      maps=tuple(maps), columns=columns)


#: Kinds whose forward formulas are written with their padding products (``0 w``).
WRITTEN_KINDS = ("conv2d", "avgpool2d", "linear")


#: kind -> the layer's zero padding (top, bottom, left, right), drawn around its input.
def _padding_of(layer) -> tuple:
    return tuple(layer.padding) if layer.kind in PADDED_READS else (0, 0, 0, 0)


def _conv2d_reads(layer, output_index):
    """``(padded input index, kernel index)`` of every product of ``z[output_index]``."""
    n, o, i, j = output_index
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    cg = layer.group_in_channels
    group = o // layer.group_out_channels
    for c in range(cg):
        for m in range(kh):
            for k in range(kw):
                yield (n, group * cg + c, i * sh + m * dh, j * sw + k * dw), (o, c, m, k)


def _pool_reads(layer, output_index):
    n, c, i, j = output_index
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    for m in range(kh):
        for k in range(kw):
            yield (n, c, i * sh + m, j * sw + k), None


#: kind -> the positions of the padded input an output element reads (kinds that pad).
PADDED_READS = {"conv2d": _conv2d_reads, "maxpool2d": _pool_reads, "avgpool2d": _pool_reads}

#: What a padding position holds, where it is not a zero: max pooling's padding never
#: wins a window.
PAD_VALUES = {"maxpool2d": r"-\infty"}


def _section(builder, view: LayerView, printer, loss: str, title: str) -> Section:
    layer = view.layer
    names = view.names
    cells = {}
    padding = _padding_of(layer)
    pad_value = PAD_VALUES.get(layer.kind, "0")

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
    forward.append(_panel(builder, printer, names["z"], names["z"], view.output_shape,
                          title_of("z"), "output", "output", cells))
    backward = [_panel(builder, printer, names["g"], names["g"], view.output_shape,
                       title_of("g"), f"upstream gradient d{printer.notation.name('L')}/"
                                      f"d{printer.notation.name(names['z'])} (given)",
                       "upstream", cells)]
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
    shown_z = view.z_written if builder.show_padding and layer.kind in WRITTEN_KINDS else view.z
    reads = PADDED_READS.get(layer.kind)
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
                if not (0 <= r < height and 0 <= c < width):
                    padread.append(cells[(names["x"], position, True)].id)
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
    general = _general_formulas(view, printer, loss)
    builder_steps = STEP_BUILDERS.get(layer.kind, _no_steps)
    steps, grids = builder_steps(view, printer, loss, cells)
    return Section(number=view.number, title=title, description=layer.describe(),
                   general=general, forward=tuple(forward), backward=tuple(backward),
                   steps=tuple(steps), step_grids=tuple(grids))


def _general_formulas(view, printer, loss) -> tuple:
    names = view.names
    reader = {"x": printer.name(names["x"]), "z": printer.name(names["z"]),
              "g": printer.name(names["g"]), "L": loss}
    for own in view.params:
        reader[own] = printer.name(names[own])
    layer = view.layer
    if layer.kind == "conv2d":
        x, z, g, w = reader["x"], reader["z"], reader["g"], reader["w"]
        forward = rf"{z} = \operatorname{{corr}}\bigl(\operatorname{{pad}}_p({x}),\ {w}\bigr)" \
            + (f" + {reader['b']}" if "b" in reader else "")
        backward = (rf"\frac{{\partial {loss}}}{{\partial {x}}} = \operatorname{{corr}}\Bigl("
                    rf"\operatorname{{pad}}_P\bigl(\operatorname{{dil}}_s({g})\bigr),\ "
                    rf"\operatorname{{rot}}_{{180}}({w})\Bigr)")
        return (mathml(forward, display=True), mathml(backward, display=True))
    formulas = _general(layer.kind, layer, reader, printer.notation.index_base)
    backward = formulas["backward"]
    if layer.kind in ACTIVATION_LATEX and getattr(layer, "constants", ()):
        backward += rf",\quad \alpha = {layer.constants[0]:g}"
    return (mathml(formulas["forward"], display=True), mathml(backward, display=True))


# ---------------------------------------------------------------------------
# Step-through builders, one per layer kind
# ---------------------------------------------------------------------------

def _grid(printer, grid_id, heading, values, marks_zero="zero", pad_mask=None,
          pad_value="0") -> StepGrid:
    """A step grid from a 2-D array of symbols and numbers; ``pad_mask`` marks padding
    positions (shown as ``pad_value``), zeros elsewhere get the class ``marks_zero``."""
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
        rows.append(tuple(row))
    return StepGrid(id=grid_id, heading=mathml(heading), rows=tuple(rows))


def _no_steps(view, printer, loss, cells):
    return [], []


def _first_map(array):
    """The first 2-D map of a 4-D NumPy array."""
    return array[(0,) * (array.ndim - 2)]


def _conv2d_steps(view, printer, loss, cells):
    """Zero insertion, padding, kernel rotation, the sliding correlation (dL/dx); then
    the padded input correlated with the dilated g (dL/dw); the sum for dL/db."""
    layer = view.layer
    prefix = f"s{view.number}"
    names = view.names
    g, w, x = to_grid(view.g), to_grid(view.params["w"]), to_grid(view.x)
    _, _, height, width = view.input_shape
    _, _, out_h, out_w = view.output_shape
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    padding = conv_rules.grad_padding(layer, (height, width))
    first = (0, 0)
    several = view.output_shape[:2] != (1, 1) or view.input_shape[:2] != (1, 1)
    g_name, w_name, x_name = (printer.name(names[key]) for key in ("g", "w", "x"))
    g_map = _map_label(printer, names["g"], first) if several else g_name
    w_map = _map_label(printer, names["w"], first) if several else w_name
    dilated = rules.dilate(g, layer.stride)
    padded = rules.pad2d(dilated, padding)
    dilated_map, padded_map = _first_map(dilated), _first_map(padded)
    if max(padded_map.shape) > STEP_GRID_LIMIT:
        return [Step(title=f"The padded map is {padded_map.shape[0]} x {padded_map.shape[1]}, "
                           f"larger than this page draws; the formula is the rule.")], []
    # Inserted zeros and padding zeros are told apart in the grids.
    inserted = np.zeros(dilated_map.shape, dtype=bool)
    inserted[:, :] = True
    inserted[::sh, ::sw] = False
    top, bottom, left, right = padding
    grids = [
        _grid(printer, f"{prefix}-g", g_map, _first_map(g)),
        _grid(printer, f"{prefix}-dil", rf"\operatorname{{dil}}_s({g_map})", dilated_map,
              marks_zero="inserted"),
    ]
    padded_kinds = rules.pad2d(np.where(inserted, 2, 1), padding)  # 0 pad, 1 value, 2 inserted
    grids.append(_grid(printer, f"{prefix}-pad",
                       rf"\operatorname{{pad}}_P\bigl(\operatorname{{dil}}_s({g_map})\bigr)",
                       padded_map, marks_zero="inserted", pad_mask=padded_kinds == 0))
    kernel = _first_map(w)
    grids.append(_grid(printer, f"{prefix}-w", w_map, kernel))
    grids.append(_grid(printer, f"{prefix}-rot", rf"\operatorname{{rot}}_{{180}}({w_map})",
                       rules.rot180(kernel)))
    steps = [Step(title="Input gradient: start from the upstream gradient"
                        + (" (the first map)." if several else "."), grids=(f"{prefix}-g",))]
    if (sh, sw) == (1, 1):
        words = "Undo the stride: the stride is 1, so nothing is inserted."
    else:
        words = (f"Undo the stride: insert s - 1 zeros between rows ({sh - 1}) and between "
                 f"columns ({sw - 1}).")
    steps.append(Step(title=words, math=mathml(
        rf"s = ({sh}, {sw}):\quad {out_h} \times {out_w} \to "
        rf"{dilated_map.shape[0]} \times {dilated_map.shape[1]}", display=True),
        grids=(f"{prefix}-g", f"{prefix}-dil"),
        marks={f"{prefix}-dil": [(r, c) for r, c in zip(*np.nonzero(inserted))]}))
    # P as the LaTeX document states it: r_h, r_w are the rows and columns the
    # forward pass never reads (the stride's remainder).
    p_top, p_bottom, p_left, p_right = layer.padding
    r_h = unread_length(height, kh, sh, p_top, p_bottom, dh)
    r_w = unread_length(width, kw, sw, p_left, p_right, dw)
    pad_rows = [
        rf"P_{{\text{{top}}}} = d_h(K_H - 1) - p_{{\text{{top}}}} = "
        rf"{dh}\cdot({kh} - 1) - {p_top} = {top}",
        rf"P_{{\text{{bottom}}}} = d_h(K_H - 1) - p_{{\text{{bottom}}}} + r_h = "
        rf"{dh}\cdot({kh} - 1) - {p_bottom} + {r_h} = {bottom}",
        rf"P_{{\text{{left}}}} = d_w(K_W - 1) - p_{{\text{{left}}}} = "
        rf"{dw}\cdot({kw} - 1) - {p_left} = {left}",
        rf"P_{{\text{{right}}}} = d_w(K_W - 1) - p_{{\text{{right}}}} + r_w = "
        rf"{dw}\cdot({kw} - 1) - {p_right} + {r_w} = {right}",
    ]
    steps.append(Step(title="Pad with P zeros on each side (a negative P crops); r_h, r_w are "
                            "the rows and columns the forward pass never read.",
                      math="<br>".join(mathml(row, display=True) for row in pad_rows),
                      grids=(f"{prefix}-dil", f"{prefix}-pad"),
                      marks={f"{prefix}-pad": [(r, c) for r, c in
                                               zip(*np.nonzero(padded_kinds == 0))]}))
    steps.append(Step(title="Rotate the kernel by 180 degrees (flip rows and columns).",
                      math=mathml(rf"\operatorname{{rot}}_{{180}}({w_map})", display=True),
                      grids=(f"{prefix}-w", f"{prefix}-rot")))
    # The sliding correlation, one input position per click.
    for a in range(height):
        for b in range(width):
            window = [(a + m * dh, b + k * dw) for m in range(kh) for k in range(kw)]
            index = (0, 0, a, b)
            label = _plain_label(printer, names["x"], index)
            steps.append(Step(
                title=f"Slide: the rotated kernel over the padded map gives dL/d{label} "
                      f"(step {a * width + b + 1} of {height * width}"
                      + ("; every output channel adds its own" if view.output_shape[1] > 1
                         else "") + ").",
                grids=(f"{prefix}-pad", f"{prefix}-rot"),
                marks={f"{prefix}-pad": window,
                       f"{prefix}-rot": [(m, k) for m in range(kh) for k in range(kw)]},
                cell=cells[(names["grad_x"], index, False)].id))
    # dL/dw: the padded input correlated with the stride-dilated g.
    xp = _first_map(rules.pad2d(x, layer.padding))
    x_pad = rules.pad2d(np.ones(view.input_shape[2:], dtype=int), layer.padding) == 0
    x_map = _map_label(printer, names["x"], first) if several else x_name
    if max(xp.shape) <= STEP_GRID_LIMIT:
        grids.append(_grid(printer, f"{prefix}-xp", rf"\operatorname{{pad}}_p({x_map})", xp,
                           pad_mask=x_pad))
        steps.append(Step(
            title="Kernel gradient: pad the input, and use the stride-dilated gradient as "
                  "the kernel.",
            math=mathml(rf"\frac{{\partial {loss}}}{{\partial {w_map}}} = "
                        rf"\operatorname{{corr}}\bigl(\operatorname{{pad}}_p({x_map}),\ "
                        rf"\operatorname{{dil}}_s({g_map})\bigr)", display=True),
            grids=(f"{prefix}-xp", f"{prefix}-dil")))
        for m in range(kh):
            for k in range(kw):
                window = [(m * dh + r, k * dw + c) for r in range(dilated_map.shape[0])
                          for c in range(dilated_map.shape[1])]
                steps.append(Step(
                    title=f"Slide: dL/d{_plain_label(printer, names['w'], (0, 0, m, k))}: the "
                          f"dilated gradient over the padded input.",
                    grids=(f"{prefix}-xp", f"{prefix}-dil"),
                    marks={f"{prefix}-xp": window},
                    cell=cells[(names["grad_w"], (0, 0, m, k), False)].id))
    if "b" in view.params:
        steps.append(Step(title="Bias gradient: the sum of the upstream gradient.",
                          grids=(f"{prefix}-g",),
                          marks={f"{prefix}-g": [(r, c) for r in range(out_h)
                                                 for c in range(out_w)]},
                          cell=cells[(names["grad_b"], (0,), False)].id))
    return steps, grids


def _pool_steps(view, printer, loss, cells):
    """The upsample: window by window, where each g_ij goes (routing or equal share)."""
    layer = view.layer
    prefix = f"s{view.number}"
    names = view.names
    x, g = to_grid(view.x), to_grid(view.g)
    _, _, out_h, out_w = view.output_shape
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    top, _, left, _ = layer.padding
    xp = _first_map(rules.pad2d(x, layer.padding))
    if max(xp.shape) > STEP_GRID_LIMIT:
        return [], []
    mask = rules.pad2d(np.ones(view.input_shape[2:], dtype=int), layer.padding) == 0
    several = view.input_shape[:2] != (1, 1)
    x_map = _map_label(printer, names["x"], (0, 0)) if several else printer.name(names["x"])
    g_map = _map_label(printer, names["g"], (0, 0)) if several else printer.name(names["g"])
    grids = [_grid(printer, f"{prefix}-g", g_map, _first_map(g)),
             _grid(printer, f"{prefix}-x", x_map, xp, pad_mask=mask,
                   pad_value=PAD_VALUES.get(layer.kind, "0"))]
    maximum = layer.kind == "maxpool2d"
    rule = ("the whole of it goes to the window's first maximum" if maximum
            else "every element of the window gets an equal share")
    steps = [Step(title=f"Upsample: each upstream gradient goes back to its window; {rule}.",
                  math=_general_formulas(view, printer, loss)[1],
                  grids=(f"{prefix}-g", f"{prefix}-x"))]
    for i in range(out_h):
        for j in range(out_w):
            window = [(i * sh + m, j * sw + k) for m in range(kh) for k in range(kw)]
            g_label = printer.label(names["g"], (0, 0, i, j))
            if maximum:
                math = rf"{g_label}\ \to\ \arg\max {printer.label(names['z'], (0, 0, i, j))}"
            else:
                divisor = kh * kw if layer.count_include_pad else sum(
                    1 for r, c in window if not mask[r, c])
                math = rf"\frac{{{g_label}}}{{{divisor}}}\ \to\ \text{{each element}}"
            steps.append(Step(title=f"Window {i * out_w + j + 1} of {out_h * out_w}.",
                              math=mathml(math, display=True),
                              grids=(f"{prefix}-g", f"{prefix}-x"),
                              marks={f"{prefix}-g": [(i, j)], f"{prefix}-x": window}))
    x_name, g_name = printer.name(names["x"]), printer.name(names["g"])
    if maximum:
        steps.append(Step(
            title="A tie goes to the first maximum in row-major order, and padding never "
                  "wins; an element in several windows adds what each sends it.",
            math=_general_formulas(view, printer, loss)[1],
            grids=(f"{prefix}-g", f"{prefix}-x")))
    elif pool_rules.tiles_input(layer):
        # The windows tile the input: the upsample is a Kronecker product (proven in
        # symbackprop.core.rules.prove_kron), as the LaTeX document states it.
        steps.append(Step(
            title="The windows tile the input: all of them at once are a Kronecker product"
                  + (", zero-filled past the last window." if view.input_shape[2] % kh
                     or view.input_shape[3] % kw else "."),
            math=mathml(rf"\frac{{\partial {loss}}}{{\partial {x_name}}} = \frac{{1}}"
                        rf"{{{kh * kw}}}\, {g_name} \otimes \mathbf{{1}}_{{{kh}\times{kw}}}",
                        display=True),
            grids=(f"{prefix}-g", f"{prefix}-x")))
    return steps, grids


def _activation_steps(view, printer, loss, cells):
    """Element-wise: the local derivative f'(x), then the product with g."""
    names = view.names
    layer = view.layer
    x, g, dx = (printer.name(names[key]) for key in ("x", "g", "x"))
    value, derivative = ACTIVATION_LATEX[layer.kind]
    first = (0,) * len(view.input_shape)
    steps = [
        Step(title="Forward: the activation works on each element alone.",
             math=mathml(rf"f(\mathit{{net}}) = {value}", display=True),
             cell=cells[(names["z"], first, False)].id),
        Step(title="Its local derivative, at each input element:",
             math=mathml(rf"f'(\mathit{{net}}) = {derivative}", display=True)),
        Step(title="Backward: multiply element by element with the upstream gradient.",
             math=mathml(rf"\frac{{\partial {loss}}}{{\partial {dx}}} = {g} \odot f'({x})",
                         display=True),
             cell=cells[(names["grad_x"], first, False)].id),
    ]
    return steps, []


def _flatten_steps(view, printer, loss, cells):
    names = view.names
    steps = [Step(title="Forward: the maps are read row by row into one vector.",
                  math=_general_formulas(view, printer, loss)[0]),
             Step(title="Backward: the gradient takes the shape of the maps again.",
                  math=_general_formulas(view, printer, loss)[1],
                  cell=cells[(names["grad_x"], (0,) * len(view.input_shape), False)].id)]
    return steps, []


def _linear_steps(view, printer, loss, cells):
    names = view.names
    x, g, w = (printer.name(names[key]) for key in ("x", "g", "w"))
    first_x = (0,) * len(view.input_shape)
    steps = [Step(title="Forward: each output is a weighted sum of the inputs.",
                  math=_general_formulas(view, printer, loss)[0],
                  cell=cells[(names["z"], (0,) * len(view.output_shape), False)].id),
             Step(title="Input gradient: the transposed weights times the upstream gradient.",
                  math=mathml(rf"\frac{{\partial {loss}}}{{\partial {x}}} = {{{w}}}^{{T}} {g}",
                              display=True),
                  cell=cells[(names["grad_x"], first_x, False)].id),
             Step(title=f"Weight gradient: the outer product of "
                        f"{printer.notation.name(names['g'])} and "
                        f"{printer.notation.name(names['x'])} (summed over the batch).",
                  math=mathml(rf"\frac{{\partial {loss}}}{{\partial {w}}} = {g}\, {{{x}}}^{{T}}",
                              display=True),
                  cell=cells[(names["grad_w"], (0, 0), False)].id)]
    if "b" in view.params:
        steps.append(Step(title="Bias gradient: the upstream gradient (summed over the batch).",
                          math=mathml(rf"\frac{{\partial {loss}}}{{\partial "
                                      rf"{printer.name(names['b'])}}} = {g}", display=True),
                          cell=cells[(names["grad_b"], (0,), False)].id))
    return steps, []


#: layer kind -> builder of its step-through: ``(view, printer, loss, cells) ->
#: (steps, grids)``.  The only kind-specific code of the page besides PADDED_READS.
STEP_BUILDERS = {
    "conv2d": _conv2d_steps,
    "maxpool2d": _pool_steps,
    "avgpool2d": _pool_steps,
    "relu": _activation_steps,
    "leakyrelu": _activation_steps,
    "sigmoid": _activation_steps,
    "tanh": _activation_steps,
    "flatten": _flatten_steps,
    "linear": _linear_steps,
}


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
                                     f"Layer {step.number}: {step.layer.describe()}"))
        walk = [mathml(_chain_rule(step, plain), display=True)
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
        heading=PAGE_TITLES.get(derivation.layer.kind, "Backpropagation, element by element"),
        title=derivation.layer.describe(), sections=sections, walk=walk, chain=chain,
        data=_script_json(data), command=command, version=__version__,
        base=index_base, escape=html_text.escape)


def write_page(text: str, path):
    """Write the page atomically (the LaTeX writer's temporary file + rename)."""
    from symbackprop.render.latex import write_document

    return write_document(text, path)
