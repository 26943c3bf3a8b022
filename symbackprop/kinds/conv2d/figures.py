"""The convolution's figures: which cells of which grid a sum reads, as data.

Course notes draw three pictures of a convolution; each is a :class:`Figure`, a grid of
:class:`Cell` objects placed by the layer's geometry (stride, padding, dilation, the
same index arithmetic the code generator uses) and drawn by the LaTeX template with
TikZ.  The tests hold every highlighted cell against the derivation's own sums, so a
picture can never show a term SymPy did not find.

- :func:`receptive_field`: the zero-padded input, the padding greyed, the cells one
  output reads highlighted with the kernel element that multiplies each;
- :func:`scatter`: one upstream-gradient element added, times each kernel element,
  into a table shaped like the padded input; what lands on the padding is stripped;
- :func:`full_correlation`: the stride-dilated, padded upstream gradient (the zeros
  the dilation inserts and the padding marked), with the rotated kernel over the
  window one input gradient element sums.

Every figure is of sample 0 and of the first channel of each map (the first output
channel and the first input channel of its group).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from symbackprop.core.indexing import dilated_length, grad_input_padding

__all__ = ["Cell", "Figure", "receptive_field", "scatter", "full_correlation", "figures",
           "FIGURE_LIMIT", "MatrixFigure", "matrix_figure", "unrolled_figures",
           "MATRIX_FIGURE_LIMIT"]

#: Largest grid drawn (rows and columns): a bigger one would not fit the page's width.
FIGURE_LIMIT = 13


@dataclass(frozen=True)
class Cell:
    """One cell of a figure's grid.

    ``kind`` is what the cell holds: ``"input"`` (an element of an array),
    ``"padding"`` (a zero of the padding), ``"inserted"`` (a zero the stride
    dilation inserts); ``read`` whether the highlighted sum uses it; ``weight``
    the kernel element that multiplies it there (LaTeX), if any, and ``kernel`` that
    element's index; ``element`` the cell's own index in its array.
    """

    row: int
    col: int
    text: str
    kind: str
    read: bool = False
    weight: str = ""
    element: tuple = ()
    kernel: tuple = ()


@dataclass(frozen=True)
class Figure:
    """A grid of cells with its caption (LaTeX), what it shows, and its size."""

    name: str
    caption: str
    rows: int
    cols: int
    cells: tuple

    @property
    def step(self) -> float:
        """Side of a cell in centimetres: 1, or less so that the grid fits 12.5 cm."""
        return min(1.0, round(12.5 / self.cols, 2))


def _fits(rows: int, cols: int) -> bool:
    return rows <= FIGURE_LIMIT and cols <= FIGURE_LIMIT


def _kernel(printer, position) -> dict:
    """The weight fields of a cell multiplied by kernel element ``(m, k)`` (or none)."""
    if position is None:
        return {}
    index = (0, 0, *position)
    return {"weight": printer.label("w", index), "kernel": index}


def _window_on_padded_input(derivation, printer, position, label) -> tuple | None:
    """``(rows, cols, cells)`` of the padded input with the window of output ``position``
    marked: the cells ``z[0, 0, i, j]`` reads, and equally those ``g[0, 0, i, j]`` is
    scattered back into.  ``label(index)`` writes an input cell; None if it is too large."""
    layer = derivation.layer
    _, _, height, width = derivation.input_shape
    top, bottom, left, right = layer.padding
    rows, cols = top + height + bottom, left + width + right
    if not _fits(rows, cols):
        return None
    (sh, sw), (dh, dw), (kh, kw) = layer.stride, layer.dilation, layer.kernel_size
    i, j = position
    window = {(sh * i + dh * m, sw * j + dw * k): (m, k) for m in range(kh) for k in range(kw)}
    cells = []
    for r in range(rows):
        for c in range(cols):
            index = (0, 0, r - top, c - left)
            inside = 0 <= index[2] < height and 0 <= index[3] < width
            kernel = window.get((r, c))
            cells.append(Cell(
                row=r, col=c, kind="input" if inside else "padding",
                text=label(index) if inside else "", read=kernel is not None,
                **_kernel(printer, kernel), element=index if inside else ()))
    return rows, cols, tuple(cells)


def receptive_field(derivation, printer, output: tuple[int, int]) -> Figure | None:
    """The padded input with the window of output ``z[0, 0, i, j]`` highlighted."""
    grid = _window_on_padded_input(derivation, printer, output,
                                   lambda index: printer.label("x", index))
    if grid is None:
        return None
    rows, cols, cells = grid
    cells = tuple(cell if cell.kind == "input" else replace(cell, text="0") for cell in cells)
    z = printer.label("z", (0, 0, *output))
    return Figure(
        name="receptive_field", rows=rows, cols=cols, cells=cells,
        caption=rf"The cells ${z}$ reads: each highlighted input is multiplied by the kernel "
                rf"element under it and the products are added. Grey cells are the padding "
                rf"(zeros).")


def scatter(derivation, printer, upstream: tuple[int, int]) -> Figure | None:
    """Where ``g[0, 0, i, j]`` times each kernel element is added in the padded table."""
    grid = _window_on_padded_input(derivation, printer, upstream,
                                   lambda index: rf"\partial {printer.label('x', index)}")
    if grid is None:
        return None
    rows, cols, cells = grid
    i, j = upstream
    g = printer.label("g", (0, 0, i, j))
    return Figure(
        name="scatter", rows=rows, cols=cols, cells=cells,
        caption=rf"The backward pass as a scatter: ${g}$ times each kernel element is added "
                rf"into the cell that kernel element met in the forward pass (a table shaped "
                rf"like the padded input, $\partial x$ standing for $\partial "
                rf"{printer.name('L')}/\partial {printer.name('x')}$). What lands on the "
                rf"padding (grey) is stripped at the end: the padding is not an input.")


def full_correlation(derivation, printer, element: tuple[int, int]) -> Figure | None:
    """``pad(dil(g))`` with the rotated kernel over the window of ``dL/dx[0, 0, a, b]``."""
    layer = derivation.layer
    _, _, height, width = derivation.input_shape
    _, _, out_h, out_w = derivation.output_shape
    top, bottom, left, right = layer.padding
    (sh, sw), (dh, dw), (kh, kw) = layer.stride, layer.dilation, layer.kernel_size
    # pad_P(dil(g)) exactly as the rule of the document pads it; a negative P crops,
    # which this picture does not draw
    before_h, after_h = grad_input_padding(height, kh, sh, top, bottom, dh)
    before_w, after_w = grad_input_padding(width, kw, sw, left, right, dw)
    if min(before_h, after_h, before_w, after_w) < 0:
        return None
    rows = before_h + dilated_length(out_h, sh) + after_h
    cols = before_w + dilated_length(out_w, sw) + after_w
    if not _fits(rows, cols):
        return None
    a, b = element
    # the window of dL/dx[a, b], the kernel turned half a turn over it
    window = {(a + dh * m, b + dw * k): (kh - 1 - m, kw - 1 - k)
              for m in range(kh) for k in range(kw)}
    cells = []
    for r in range(rows):
        for c in range(cols):
            u, v = r - before_h, c - before_w  # position in dil(g)
            in_dilated = 0 <= u < dilated_length(out_h, sh) and 0 <= v < dilated_length(out_w, sw)
            on_g = in_dilated and u % sh == 0 and v % sw == 0
            kernel = window.get((r, c))
            index = (0, 0, u // sh, v // sw)
            cells.append(Cell(
                row=r, col=c, kind="input" if on_g else "inserted" if in_dilated else "padding",
                text=printer.label("g", index) if on_g else "0", read=kernel is not None,
                **_kernel(printer, kernel),
                element=index if on_g else ()))
    dx = rf"\partial {printer.name('L')}/\partial {printer.label('x', (0, 0, a, b))}"
    g = printer.name("g")
    dilation = (rf"$\operatorname{{dil}}$ puts $s - 1$ zeros (dotted) between the elements "
                rf"of ${g}$" if (sh, sw) != (1, 1) else
                rf"at stride 1 $\operatorname{{dil}}$ inserts no zeros into ${g}$")
    return Figure(
        name="full_correlation", rows=rows, cols=cols, cells=tuple(cells),
        caption=rf"The same sums as a full correlation: {dilation}, "
                rf"$\operatorname{{pad}}$ adds the kernel's reach around it (grey), and the "
                rf"kernel turned half a turn slides over it; under it here, the window of "
                rf"${dx}$.")


def figures(derivation, printer) -> list[Figure]:
    """The figures of a document, each for the first element of its array (a corner,
    where the padding shows); those too large for the page are left out."""
    shown = [receptive_field(derivation, printer, (0, 0)), scatter(derivation, printer, (0, 0)),
             full_correlation(derivation, printer, (0, 0))]
    return [figure for figure in shown if figure is not None]


# ---------------------------------------------------------------------------
# The unrolled matrix C as a picture: z = C x and dL/dx = C^T g
# ---------------------------------------------------------------------------

#: Most rows or columns of a drawn matrix: past it the entries are too small to read.
MATRIX_FIGURE_LIMIT = 36
#: Widest matrix picture, in centimetres (the text is 16.6 cm wide); a wider one is shrunk.
MATRIX_FIGURE_WIDTH = 15.5


@dataclass(frozen=True)
class MatrixFigure:
    """A matrix as a grid: ``entries`` the nonzero cells ``(row, col, LaTeX, weight
    index)``, every other cell a zero (drawn blank, dotted); ``row_labels`` the vector the
    product gives, ``col_labels`` the vector it multiplies, one LaTeX label each."""

    name: str
    caption: str
    rows: int
    cols: int
    entries: tuple
    row_labels: tuple
    col_labels: tuple
    step: float
    shrink: bool
    font: str = r"\tiny"

    @property
    def drawing(self) -> dict:
        """Cell centres in cm (rows downwards): the entries, the labels and the frame."""
        step = self.step
        return {
            "entries": [(round((c + 0.5) * step, 3), round(-(r + 0.5) * step, 3), text)
                        for r, c, text, _ in self.entries],
            "row_labels": [(round(-(r + 0.5) * step, 3), text)
                           for r, text in enumerate(self.row_labels)],
            "col_labels": [(round((c + 0.5) * step, 3), text)
                           for c, text in enumerate(self.col_labels)],
            "width": round(self.cols * step, 3), "height": round(-self.rows * step, 3),
        }


def _label_width(text: str) -> float:
    """A rough width in cm of a LaTeX label at \\tiny: its glyphs, commands left out."""
    glyphs = re.sub(r"\\[a-zA-Z]+|[{}^_ ]", "", text)
    return 0.1 * len(glyphs) + 0.08


def matrix_figure(name, caption, shape, entries, row_labels, col_labels) -> MatrixFigure | None:
    """A :class:`MatrixFigure` of ``shape`` with ``entries`` ``{(row, col): (LaTeX, weight
    index)}``, or None past :data:`MATRIX_FIGURE_LIMIT` rows or columns."""
    rows, cols = shape
    if rows > MATRIX_FIGURE_LIMIT or cols > MATRIX_FIGURE_LIMIT:
        return None
    widest = max([_label_width(text) for text, _ in entries.values()] + [0.3])
    # a few columns are drawn large, with \scriptsize labels (1.4 times \tiny's width)
    large = 1.4 * widest <= min(0.7, 13 / cols)
    step = round(min(0.7, 13 / cols) if large else max(0.42, widest), 2)
    label_room = max(_label_width(text) for text in row_labels) * (1.4 if large else 1) + 0.2
    return MatrixFigure(
        name=name, caption=caption, rows=rows, cols=cols,
        entries=tuple((r, c, text, weight) for (r, c), (text, weight) in sorted(entries.items())),
        row_labels=tuple(row_labels), col_labels=tuple(col_labels), step=step,
        shrink=cols * step + label_room > MATRIX_FIGURE_WIDTH,
        font=r"\scriptsize" if large else r"\tiny")


def _conv_matrix_entries(derivation, printer) -> dict:
    """``{(row, col): (LaTeX, weight index)}`` of ``C``: row ``r`` is the flattened output,
    column ``c`` the flattened input, and the entry the kernel element that multiplies
    input ``c`` in output ``r``, placed by the layer's geometry (stride, padding, dilation,
    groups) as the receptive field is; in any number of spatial axes (the padding given
    as (begin, end) per axis)."""
    layer = derivation.layer
    input_shape, output_shape = tuple(derivation.input_shape), tuple(derivation.output_shape)
    sizes, begins = input_shape[2:], layer.padding[::2]
    cg = layer.group_in_channels
    og = output_shape[1] // layer.groups
    entries = {}
    for row, (n, o, *out) in enumerate(np.ndindex(*output_shape)):
        group = o // og
        for c_local, *offset in np.ndindex(cg, *layer.kernel_size):
            position = tuple(i * s + m * d - p for i, m, s, d, p in zip(
                out, offset, layer.stride, layer.dilation, begins))
            if all(0 <= at < size for at, size in zip(position, sizes)):
                column = int(np.ravel_multi_index((n, group * cg + c_local, *position),
                                                  input_shape))
                weight = (o, c_local, *offset)
                entries[(row, column)] = (printer.label("w", weight), weight)
    return entries


def unrolled_figures(derivation, printer) -> list[MatrixFigure]:
    """``C`` of ``z = C x`` and ``C^T`` of ``dL/dx = C^T g``, for a small layer (else [])."""
    input_shape, output_shape = tuple(derivation.input_shape), tuple(derivation.output_shape)
    rows, cols = int(np.prod(output_shape)), int(np.prod(input_shape))
    entries = _conv_matrix_entries(derivation, printer)
    z_labels = [printer.label("z", index) for index in np.ndindex(*output_shape)]
    x_labels = [printer.label("x", index) for index in np.ndindex(*input_shape)]
    g_labels = [printer.label("g", index) for index in np.ndindex(*output_shape)]
    z, x, g = printer.name("z"), printer.name("x"), printer.name("g")
    loss = printer.name("L")
    forward = matrix_figure(
        "matrix_c",
        rf"$\mathbf{{{z}}} = C\,\mathbf{{{x}}}$: row $r$ of $C$ is output ${z}_r$, column $c$ "
        rf"input ${x}_c$, and the entry is the kernel element that multiplies ${x}_c$ in "
        rf"${z}_r$ ($\partial {z}_r/\partial {x}_c$); blank cells are zeros. Each row holds "
        rf"one window of the kernel; stepping to the next output shifts it by the stride.",
        (rows, cols), entries, z_labels, x_labels)
    backward = matrix_figure(
        "matrix_ct",
        rf"$\partial {loss}/\partial \mathbf{{{x}}} = C^{{\top}} \mathbf{{{g}}}$: the same "
        rf"entries mirrored, row $c$ is $\partial {loss}/\partial {x}_c$ and column $r$ the "
        rf"upstream element ${g}_r$. Row $c$ collects the kernel elements that met ${x}_c$ in "
        rf"the forward pass: the sum of Section~\ref{{sec:backward}}.",
        (cols, rows), {(c, r): value for (r, c), value in entries.items()},
        x_labels, g_labels)
    return [figure for figure in (forward, backward) if figure is not None]
