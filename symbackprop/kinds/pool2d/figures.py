"""Pooling's figure: the upsample, where each upstream-gradient element goes, as data.

Course notes draw the pooling backward pass as an *upsample*: the small map ``g`` on the
left, the input's shape on the right, each window outlined, and in each cell what it
receives.  Max pooling sends a window's whole ``g_ij`` to one cell, the window's first
maximum; average pooling gives every position of the window the same share ``g_ij / D``
(``D`` PyTorch's divisor), overlapping windows adding up.

:func:`upsample` builds the figure from the same window geometry the code generator
and the expansion use (:func:`~symbackprop.kinds.pool2d.rules.window`,
:func:`~symbackprop.kinds.pool2d.rules.divisor`); the tests hold every share drawn
against the derivation's own sums.  Drawn for sample 0 and channel 0 of 1-D (a row) and
2-D pooling.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from symbackprop.kinds.pool2d.rules import OUTSIDE, PADDING, divisor, window
from symbackprop.kinds.pool2d.spec import window_positions

__all__ = ["Share", "PoolCell", "Outline", "UpsampleFigure", "upsample", "FIGURE_WIDTH",
           "WINDOW_COLOURS"]

#: Widest figure drawn, in centimetres (the text is 16.6 cm wide).
FIGURE_WIDTH = 16.0
#: A window's colour by the parity of its output index: neighbouring windows differ.
WINDOW_COLOURS = ("blue!75!black", "red!75!black", "green!45!black", "orange!85!black")
#: The smallest scale a figure too wide for the page is drawn at (else it is left out).
SMALLEST_SCALE = 0.7
#: Most windows one cell of the figure lists; past it only the first 2 x 2 windows are drawn.
SHARES_PER_CELL = 2


@dataclass(frozen=True)
class Share:
    """One upstream-gradient element reaching a cell: ``g[output]`` (LaTeX ``label``),
    divided by ``divisor`` (average pooling) or whole when the cell wins the window
    (max pooling: ``divisor`` None)."""

    output: tuple
    label: str
    colour: str
    divisor: int | None = None
    #: whether the cell writes the divisor (not when every window has the same one,
    #: which the caption states once)
    written: bool = True

    @property
    def text(self) -> str:
        """LaTeX of the share: ``g_{11}/4``, or ``g_{11}``."""
        body = f"{self.label}/{self.divisor}" if self.written and self.divisor not in (None, 1) \
            else self.label
        return rf"\textcolor{{{self.colour}}}{{{body}}}"


@dataclass(frozen=True)
class PoolCell:
    """A cell of the input-shaped grid: ``kind`` ``"input"``, ``"padding"`` or
    ``"outside"`` (past the padded input, reached only by a ``ceil_mode`` window);
    ``element`` its index in ``x`` (inputs only), ``shares`` what it receives."""

    row: int
    col: int
    kind: str
    text: str
    element: tuple = ()
    shares: tuple = ()

    @property
    def lines(self) -> list[str]:
        """The shares two to a line, joined by ``+`` (max pooling: by commas)."""
        if not self.shares:
            return []
        joiner = "+" if self.shares[0].divisor is not None else ",\\,"
        texts = [share.text for share in self.shares]
        return [joiner.join(texts[start:start + 2]) for start in range(0, len(texts), 2)]


@dataclass(frozen=True)
class Outline:
    """A window's outline on the grid: rows ``top..bottom`` and columns ``left..right``
    (inclusive, grid coordinates), drawn ``inset`` cm inside so overlaps stay visible."""

    top: int
    left: int
    bottom: int
    right: int
    colour: str
    inset: float


@dataclass(frozen=True)
class UpsampleFigure:
    """The upsample picture: the ``g`` grid (``g_cells``, ``(row, col, text)``), the
    input-shaped grid (``cells``), the window outlines, sizes in cm and the caption."""

    name: str
    caption: str
    rows: int
    cols: int
    cells: tuple
    outlines: tuple
    g_rows: int
    g_cols: int
    g_cells: tuple
    g_label: str
    x_label: str
    cell_width: float
    cell_height: float
    g_step: float
    all_windows: bool
    beside: bool = True
    scale: float = 1.0

    def drawing(self) -> dict:
        """Where TikZ puts everything, in cm (y downwards negative): the ``g`` grid on the
        left, centred in height, an arrow, the input-shaped grid on the right."""
        width, height, step = self.cell_width, self.cell_height, self.g_step
        if self.beside:
            offset = self.g_cols * step + 2.2  # the input grid starts right of g and the arrow
            g_left, g_top = 0.0, (self.rows * height - self.g_rows * step) / 2
            middle = -(self.rows * height) / 2
            arrow = ((self.g_cols * step + 0.3, middle), (offset - 0.3, middle))
        else:  # g centred above the input grid, the arrow pointing down
            span = max(self.cols * width, self.g_cols * step)
            offset, g_left = (span - self.cols * width) / 2, (span - self.g_cols * step) / 2
            g_top = -(self.g_rows * step + 1.9)
            arrow = ((span / 2, -g_top - self.g_rows * step - 0.1), (span / 2, 0.75))
        return {
            "g_nodes": [(round(g_left + (c + 0.5) * step, 3),
                         round(-g_top - (r + 0.5) * step, 3), text)
                        for r, c, text in self.g_cells],
            "x_nodes": [(round(offset + (cell.col + 0.5) * width, 3),
                         round(-(cell.row + 0.5) * height, 3), cell) for cell in self.cells],
            "boxes": [(round(offset + box.left * width + box.inset, 3),
                       round(-box.top * height - box.inset, 3),
                       round(offset + (box.right + 1) * width - box.inset, 3),
                       round(-(box.bottom + 1) * height + box.inset, 3), box.colour)
                      for box in self.outlines],
            "arrow": tuple(round(value, 3) for point in arrow for value in point),
            "g_label": (round(g_left + self.g_cols * step / 2, 3), round(-g_top + 0.05, 3)),
            "x_label": (round(offset + self.cols * width / 2, 3), 0.05),
        }


def _colour(output) -> str:
    """Checkerboard of colours over the output grid, so that neighbours differ."""
    spatial = output[2:]
    parity = (spatial[0] % 2) * 2 + (spatial[1] % 2 if len(spatial) > 1 else 0)
    return WINDOW_COLOURS[parity]


def _windows_to_draw(layer, input_shape, output_shape, positions) -> tuple[list, bool]:
    """The outputs whose windows are drawn: all of them, or, when some cell would list
    more than :data:`SHARES_PER_CELL` windows, the first two along each axis."""
    outputs = [(0, 0, *spatial) for spatial in np.ndindex(*output_shape[2:])]
    reach = {}
    for output in outputs:
        for position in positions(output):
            reach[position] = reach.get(position, 0) + 1
    if max(reach.values(), default=0) <= SHARES_PER_CELL:
        return outputs, True
    first = [output for output in outputs if max(output[2:]) < 2]
    return first, len(first) == len(outputs)


def upsample(derivation, printer, is_max: bool) -> UpsampleFigure | None:
    """The upsample figure of a 1-D or 2-D pooling, or None (3-D, or too wide)."""
    layer = derivation.layer
    if layer.spatial_dims > 2:
        return None
    input_shape = tuple(derivation.input_shape)
    output_shape = tuple(derivation.output_shape)
    spatial = input_shape[2:]
    dims = layer.spatial_dims
    # The positions of an input vector, padding and beyond: the window's own arithmetic.
    position_grid = np.empty(input_shape[:2] + spatial, dtype=object)
    for index in np.ndindex(*position_grid.shape):
        position_grid[index] = index[2:]

    def entries(output):
        """The window's positions with what each holds (an input index, PADDING, OUTSIDE)."""
        per_axis = []
        for axis, i in enumerate(output[2:]):
            kernel, stride, before, _, dilation = layer.axis_values(axis)
            per_axis.append(window_positions(i, kernel, stride, before, dilation))
        held = window(layer, input_shape, output, position_grid)
        return list(zip(itertools.product(*per_axis), held, strict=True))

    def positions(output):
        return [position for position, entry in entries(output)
                if not (is_max and isinstance(entry, str))]

    drawn, every = _windows_to_draw(layer, input_shape, output_shape, positions)
    # The grid spans the padded input and any position a ceil_mode window reaches past it.
    low = [-layer.padding[2 * axis] for axis in range(dims)]
    high = [spatial[axis] + layer.padding[2 * axis + 1] - 1 for axis in range(dims)]
    for output in drawn:
        for position, _ in entries(output):
            low = [min(a, p) for a, p in zip(low, position)]
            high = [max(a, p) for a, p in zip(high, position)]
    if dims == 1:
        low, high = [0, *low], [0, *high]
    rows, cols = high[0] - low[0] + 1, high[1] - low[1] + 1

    divisors = {None if is_max else divisor(layer, [entry for _, entry in entries(output)])
                for output in drawn}
    common = divisors.pop() if len(divisors) == 1 else None
    received = {}
    outlines = []
    for number, output in enumerate(drawn):
        held = entries(output)
        colour = _colour(output)
        share_divisor = None if is_max else divisor(layer, [entry for _, entry in held])
        share = Share(output=output, label=printer.label("g", output), colour=colour,
                      divisor=share_divisor, written=common is None)
        for position, entry in held:
            if is_max and isinstance(entry, str):
                continue  # padding never wins a maximum
            if entry == OUTSIDE or (entry == PADDING and not layer.count_include_pad):
                continue  # not counted in the divisor: nothing lands there
            received.setdefault(position, []).append(share)
        corners = [position for position, _ in held]
        first, last = (corners[0], corners[-1]) if dims == 2 else \
            ((0, corners[0][0]), (0, corners[-1][0]))
        outlines.append(Outline(top=first[0] - low[0], left=first[1] - low[1],
                                bottom=last[0] - low[0], right=last[1] - low[1],
                                colour=colour, inset=0.04 + 0.09 * (number % 2)))

    cells = []
    for r, c in itertools.product(range(rows), range(cols)):
        position = (low[0] + r, low[1] + c)
        spatial_position = position if dims == 2 else position[1:]
        inside = all(0 <= p < size for p, size in zip(spatial_position, spatial))
        padded = all(-layer.padding[2 * a] <= p < size + layer.padding[2 * a + 1]
                     for a, (p, size) in enumerate(zip(spatial_position, spatial)))
        element = (0, 0, *spatial_position) if inside else ()
        cells.append(PoolCell(
            row=r, col=c, kind="input" if inside else "padding" if padded else "outside",
            text=printer.label("x", element) if inside else "",
            element=element, shares=tuple(received.get(spatial_position, ()))))

    widest = max((len(cell.shares) for cell in cells), default=0)
    per_line = min(widest, 2)
    if is_max or common is not None:
        cell_width = 1.1 if per_line <= 1 else 1.7
    else:
        cell_width = 1.3 if per_line <= 1 else 2.3
    lines = -(-widest // 2)
    cell_height = 0.75 + 0.38 * lines
    g_rows, g_cols = (output_shape[2], output_shape[3]) if dims == 2 else (1, output_shape[2])
    g_step = 0.85
    g_cells = tuple(
        (r, c, rf"\textcolor{{{_colour(output)}}}{{{printer.label('g', output)}}}"
         if output in drawn else printer.label("g", output))
        for output in [(0, 0, *spatial) for spatial in np.ndindex(*output_shape[2:])]
        for r, c in [(output[2], output[3]) if dims == 2 else (0, output[2])])
    # g beside the input grid when both fit the width, else above it (a 1-D row always)
    beside = dims == 2 and g_cols * g_step + 2.2 + cols * cell_width <= FIGURE_WIDTH
    # a figure somewhat too wide is drawn smaller, text included; a much wider one not
    scale = min(1.0, FIGURE_WIDTH / max(cols * cell_width, g_cols * g_step))
    if scale < SMALLEST_SCALE or rows > 12:
        return None
    return UpsampleFigure(
        name="upsample", caption=_caption(derivation, printer, is_max, every, common)
        + (r" Dotted cells lie past the padded input, where a ceil\_mode window reaches: "
           r"nothing is there to read or to receive."
           if any(cell.kind == "outside" for cell in cells) else ""),
        beside=beside, scale=round(scale, 2),
        rows=rows, cols=cols, cells=tuple(cells), outlines=tuple(outlines),
        g_rows=g_rows, g_cols=g_cols, g_cells=g_cells,
        g_label=rf"upstream gradient ${printer.name('g')}$",
        x_label=rf"$\partial {printer.name('L')}/\partial {printer.name('x')}$, shaped like "
                rf"the input ${printer.name('x')}$",
        cell_width=cell_width, cell_height=round(cell_height, 2), g_step=g_step,
        all_windows=every)


def _caption(derivation, printer, is_max: bool, every: bool, common) -> str:
    layer = derivation.layer
    g, x, z = printer.name("g"), printer.name("x"), printer.name("z")
    some = "" if every else (r" Only the first two windows along each axis are drawn (the "
                             r"others overlap too many cells to read); the rest repeat the "
                             r"pattern.")
    if is_max:
        return (rf"The upsample of max pooling: each window (outlined in the colour of its "
                rf"${g}$ element) sends its whole ${g}_{{\dots}}$ to one cell, the window's "
                rf"first maximum. A cell lists the elements of ${g}$ it can receive: it "
                rf"receives one when it is that window's $\arg\max$ (the indicator "
                rf"$[{x} = \arg\max {z}]$ of the sums), so of each window exactly one cell "
                rf"does and the others receive $0$."
                + (r" Padding (grey) never wins." if any(layer.padding) else "") + some)
    if layer.count_include_pad and any(layer.padding):
        divisor_words = (r" The padding (grey) counts in the divisor: its shares are "
                         r"dropped, as the padding is not an input.")
    elif any(layer.padding):
        divisor_words = r" The padding (grey) is not counted: the divisor is the inputs held."
    else:
        divisor_words = ""
    share = (rf"${g}_{{\dots}}/{common}$, the window's element divided by the window's "
             rf"{common} positions (a cell lists the elements of ${g}$ it receives a share of)"
             if common is not None else rf"${g}_{{\dots}}/D$, the window's element divided "
                                        rf"by the window's divisor $D$")
    return (rf"The upsample of average pooling: every position of a window (outlined in the "
            rf"colour of its ${g}$ element) receives the same share of it, {share}; where "
            rf"windows overlap, the shares add up.{divisor_words}{some}")
