"""The matrix pictures (``C`` and ``C^T`` of a convolution, ``C^T`` of a transposed
convolution) place exactly the derivation's partial derivatives, and the transposed
convolution's scatter figure highlights exactly the terms of its output sums."""

import numpy as np
import pytest
import sympy

from symbackprop import (
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    derive,
    to_latex,
)
from symbackprop.kinds.conv2d.figures import MATRIX_FIGURE_LIMIT, unrolled_figures
from symbackprop.kinds.conv_transpose.figures import matrix, scatter
from symbackprop.render.latex import LatexPrinter, LayerLatexPrinter

CONVOLUTIONS = [
    (Conv2d(kernel_size=2, padding=1), (3, 3)),
    (Conv2d(kernel_size=3, stride=2, padding=(0, 1, 1, 0)), (5, 4)),
    (Conv2d(kernel_size=2, dilation=2, stride=1, padding=1), (3, 3)),
    (Conv2d(4, 2, kernel_size=(1, 2), groups=2), (2, 2)),
    (Conv1d(kernel_size=3, stride=2, padding=1), (7,)),
    (Conv1d(2, 2, kernel_size=2, dilation=2, padding=(0, 1)), (4,)),
    (Conv3d(kernel_size=2, padding=(0, 0, 1, 0, 0, 1)), (2, 2, 2)),
]
TRANSPOSED = [
    (ConvTranspose2d(kernel_size=3, stride=2, padding=1, output_padding=1), (2, 2)),
    (ConvTranspose2d(2, 2, kernel_size=2, stride=(1, 2), dilation=(2, 1), groups=2,
                     bias=False), (2, 2)),
    (ConvTranspose1d(kernel_size=3, stride=2, padding=(1, 0)), (3,)),
]


def placed(figure, derivation):
    """The figure's entries as ``{(row, col): weight symbol}``."""
    return {(r, c): derivation.w[weight] for r, c, _, weight in figure.entries}


def nonzero(rows, cols, derivative):
    return {(r, c): value for r in range(rows) for c in range(cols)
            if (value := derivative(r, c)) != 0}


@pytest.mark.parametrize("layer, size", CONVOLUTIONS)
def test_c_holds_the_derivatives_of_z_and_its_transpose_those_of_the_input_gradient(
        layer, size):
    derivation = derive(layer, size)
    forward, backward = unrolled_figures(derivation, LatexPrinter(derivation.notation()))
    z = [derivation.z[i] for i in np.ndindex(*derivation.output_shape)]
    x = [derivation.x[i] for i in np.ndindex(*derivation.input_shape)]
    g = [derivation.g[i] for i in np.ndindex(*derivation.output_shape)]
    dx = [derivation.grad_x[i] for i in np.ndindex(*derivation.input_shape)]
    assert (forward.rows, forward.cols) == (len(z), len(x))
    assert placed(forward, derivation) == \
        nonzero(len(z), len(x), lambda r, c: sympy.diff(z[r], x[c]))
    # C^T read off the input gradient's sums: the coefficient of g_r in dL/dx_c
    assert placed(backward, derivation) == \
        nonzero(len(x), len(z), lambda c, r: sympy.diff(dx[c], g[r]))
    assert len(forward.row_labels) == forward.rows and len(forward.col_labels) == forward.cols


def test_large_matrices_are_not_drawn_and_the_document_says_why():
    derivation = derive(Conv2d(kernel_size=1), (6, 7))  # 42 columns
    assert unrolled_figures(derivation, LatexPrinter(derivation.notation())) == []
    text = to_latex(derivation)
    assert "not drawn as a grid" in text and f"up to {MATRIX_FIGURE_LIMIT} rows" in text
    small = to_latex(derive(Conv2d(kernel_size=2, padding=1), (3, 3)))
    assert r"\label{fig:matrix_c}" in small and r"\label{fig:matrix_ct}" in small
    row = to_latex(derive(Conv1d(kernel_size=3, stride=2, padding=1), (7,)))
    assert r"\label{fig:matrix_c}" in row and r"\label{fig:matrix_ct}" in row
    long = to_latex(derive(Conv1d(kernel_size=3), (40,)))
    assert "too many to draw readably" in long and "fig:matrix_c" not in long


@pytest.mark.parametrize("layer, size", TRANSPOSED)
def test_the_transposed_matrix_holds_the_derivatives_of_its_outputs(layer, size):
    derivation = derive(layer, size)
    figure = matrix(derivation, LayerLatexPrinter(derivation.notation()))
    z = [derivation.z[i] for i in np.ndindex(*derivation.output_shape)]
    x = [derivation.x[i] for i in np.ndindex(*derivation.input_shape)]
    assert placed(figure, derivation) == \
        nonzero(len(z), len(x), lambda r, c: sympy.diff(z[r], x[c]))


@pytest.mark.parametrize("layer, size", TRANSPOSED)
def test_the_scatter_highlights_where_one_input_element_lands(layer, size):
    derivation = derive(layer, size)
    printer = LayerLatexPrinter(derivation.notation())
    last = tuple(s - 1 for s in size)
    for source in [(0,) * len(size), last]:
        figure = scatter(derivation, printer, source)
        x = derivation.x[(0, 0, *source)]
        shown = {(cell.element, derivation.w[cell.kernel] * x)
                 for cell in figure.cells if cell.read and cell.kind in ("input", "extra")}
        truth = {(index, term) for index in np.ndindex(1, 1, *derivation.output_shape[2:])
                 for term in sympy.Add.make_args(sympy.expand(derivation.z[index]))
                 if term.has(x)}
        assert shown == truth
        cropped = [cell for cell in figure.cells if cell.read and cell.kind == "padding"]
        assert len(cropped) + len(shown) == int(np.prod(layer.kernel_size))
    # output_padding positions are marked where the output has them
    extra = [cell.element for cell in figure.cells if cell.kind == "extra"]
    spatial = derivation.output_shape[2:]
    assert {index for index in extra} == {
        (0, 0, *p) for p in np.ndindex(*spatial)
        if any(q >= size_ - op for q, size_, op in zip(p, spatial, layer.output_padding))}


def test_the_transposed_document_places_both_figures():
    text = to_latex(derive(ConvTranspose2d(kernel_size=3, stride=2, padding=1,
                                           output_padding=1), (2, 2)))
    assert r"\label{fig:transposed_scatter}" in text
    assert r"\label{fig:matrix_transposed}" in text
    assert text.index("fig:transposed_scatter") < text.index(r"\section{Backward pass}")
