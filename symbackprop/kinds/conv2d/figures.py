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

from dataclasses import dataclass, replace

from symbackprop.core.indexing import dilated_length, grad_input_padding

__all__ = ["Cell", "Figure", "receptive_field", "scatter", "full_correlation", "figures",
           "FIGURE_LIMIT"]

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
