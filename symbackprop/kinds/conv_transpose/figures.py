"""The transposed convolution's figures, as data: its forward pass as a scatter, and
its matrix ``C^T``.

- :func:`scatter`: one input element times each kernel element, added into the output at
  ``i s - p + k d``; a table that reaches past the output on both sides, what lands
  there (the padding) cropped, and the ``output_padding`` positions marked;
- :func:`matrix`: ``z = C^T x``, the entries placed where the scatter puts them.

Both read the scatter plan the expansion uses
(:func:`~symbackprop.kinds.conv_transpose.expand.contributions` and the same index
arithmetic); the tests hold every cell against the derivation's sums.  Drawn for sample 0,
input channel 0 and output channel 0, in 1-D (a row) and 2-D.
"""

from __future__ import annotations

import itertools

import numpy as np

from symbackprop.kinds.conv2d.figures import FIGURE_LIMIT, Cell, Figure, matrix_figure
from symbackprop.kinds.conv_transpose.expand import contributions

__all__ = ["scatter", "matrix", "figures"]


def scatter(derivation, printer, source: tuple | None = None) -> Figure | None:
    """Where ``x[0, 0, i, j] * w[0, 0, m, k]`` lands: the output of channel 0, widened by
    the cropped padding; None for 3-D or a table too large for the page."""
    layer = derivation.layer
    if layer.dims > 2:
        return None
    sizes = tuple(derivation.input_shape[2:])
    out_sizes = tuple(derivation.output_shape[2:])
    source = source or (0,) * layer.dims
    # the full scatter along each axis: positions -p_begin .. (L-1)s + d(K-1) - p_begin,
    # and the output [0, Lo) with its output_padding positions at the end
    low = [-begin for begin in layer.pad_begin]
    high = [max((size - 1) * s + d * (k - 1) - begin, out - 1) for size, s, d, k, begin, out in
            zip(sizes, layer.stride, layer.dilation, layer.kernel_size, layer.pad_begin,
                out_sizes)]
    if layer.dims == 1:
        low, high = [0, *low], [0, *high]
    spans = [h - lo + 1 for lo, h in zip(low, high)]
    if max(spans) > FIGURE_LIMIT:
        return None
    landing = {}
    for offset in np.ndindex(*layer.kernel_size):
        target = tuple(i * s - p + k * d for i, s, p, k, d in zip(
            source, layer.stride, layer.pad_begin, offset, layer.dilation))
        landing[target] = offset
    extra_from = [out - extra for out, extra in zip(out_sizes, layer.output_padding)]
    cells = []
    for r, c in itertools.product(range(spans[0]), range(spans[1])):
        position = (low[0] + r, low[1] + c) if layer.dims == 2 else (low[1] + c,)
        inside = all(0 <= p < out for p, out in zip(position, out_sizes))
        extra = inside and any(p >= start for p, start in zip(position, extra_from))
        offset = landing.get(position)
        index = (0, 0, *position)
        weight = {} if offset is None else {"weight": printer.label("w", (0, 0, *offset)),
                                            "kernel": (0, 0, *offset)}
        cells.append(Cell(
            row=r, col=c, kind="extra" if extra else "input" if inside else "padding",
            text=printer.label("z", index) if inside else "", read=offset is not None,
            element=index if inside else (), **weight))
    x = printer.label("x", (0, 0, *source))
    table = "output map" if layer.dims == 2 else "output"
    marked = (r" Dashed cells are the positions \texttt{output\_padding} adds at the end of "
              r"the output: kept instead of cropped, or past the scatter's reach (the bias "
              r"alone lands there)." if any(layer.output_padding) else "")
    return Figure(
        name="transposed_scatter", rows=spans[0], cols=spans[1], cells=tuple(cells),
        caption=rf"The forward pass as a scatter: ${x}$ times each kernel element is added "
                rf"into the output at $i s - p + k d$ (the table is the {table} of the first "
                rf"channel, widened to where the scatter reaches). What lands outside the "
                rf"output (grey) is cropped: that is the padding.{marked} Every input element "
                rf"does the same, shifted by the stride.")


def matrix(derivation, printer):
    """``C^T`` of ``z = C^T x``, read off the scatter plan; None when too large."""
    input_shape = tuple(derivation.input_shape)
    output_shape = tuple(derivation.output_shape)
    entries = {}
    for output, landed in contributions(derivation.layer, input_shape).items():
        row = int(np.ravel_multi_index(output, output_shape))
        for source, weight in landed:
            entries[(row, int(np.ravel_multi_index(source, input_shape)))] = \
                (printer.label("w", weight), weight)
    z, x = printer.name("z"), printer.name("x")
    return matrix_figure(
        "matrix_transposed",
        rf"$\mathbf{{{z}}} = C^{{\top}} \mathbf{{{x}}}$"
        + (rf" $+\, \mathbf{{{printer.name('b')}}}$" if derivation.layer.bias else "")
        + rf": row $r$ is output ${z}_r$, column $c$ input ${x}_c$, and the entry the kernel "
          rf"element that carries ${x}_c$ into ${z}_r$; blank cells are zeros. Column $c$ is "
          rf"the scatter of ${x}_c$; read as rows of $C$, the same entries are the "
          rf"convolution this layer is the transpose of.",
        (int(np.prod(output_shape)), int(np.prod(input_shape))), entries,
        [printer.label("z", index) for index in np.ndindex(*output_shape)],
        [printer.label("x", index) for index in np.ndindex(*input_shape)])


def figures(derivation, printer) -> dict:
    """The document's figures by name, None for one too large for the page."""
    return {"transposed_scatter": scatter(derivation, printer),
            "matrix_transposed": matrix(derivation, printer)}
