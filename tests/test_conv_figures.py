"""The convolution's figures highlight exactly the terms of the derivation's sums (of the
first channel of each map, which is what they draw)."""

import numpy as np
import pytest
import sympy

from symbackprop import Conv2d, derive
from symbackprop.kinds.conv2d.figures import (
    FIGURE_LIMIT,
    figures,
    full_correlation,
    receptive_field,
    scatter,
)
from symbackprop.render.latex import LatexPrinter

LAYERS = [
    (Conv2d(kernel_size=2, padding=1), (3, 3)),                       # the worked example
    (Conv2d(kernel_size=3, stride=2, padding=(0, 1, 1, 0)), (5, 6)),  # stride, uneven pad
    (Conv2d(kernel_size=2, dilation=2, stride=2, padding=1), (5, 5)),
    (Conv2d(2, 3, kernel_size=(2, 3), stride=(1, 2)), (4, 5)),        # channels, rectangles
]


def setup(layer, size):
    derivation = derive(layer, size)
    return derivation, LatexPrinter(derivation.notation())


def products(cells, derivation, source):
    """The products the highlighted cells stand for: (element of source) * (weight)."""
    return {derivation.w[cell.kernel] * source[cell.element]
            for cell in cells if cell.read and cell.kind == "input"}


def terms(expression, keep=lambda term: True):
    return {term for term in sympy.Add.make_args(sympy.expand(expression)) if keep(term)}


@pytest.mark.parametrize("layer, size", LAYERS)
def test_the_receptive_field_is_the_output_s_sum(layer, size):
    derivation, printer = setup(layer, size)
    for i, j in [(0, 0), (derivation.output_shape[2] - 1, derivation.output_shape[3] - 1)]:
        figure = receptive_field(derivation, printer, (i, j))
        read = [cell for cell in figure.cells if cell.read]
        assert len(read) == layer.kernel_size[0] * layer.kernel_size[1]
        bias = derivation.b[0] if layer.bias else 0
        first_channel = {derivation.x[index] for index in np.ndindex(1, 1, *size)}
        assert products(figure.cells, derivation, derivation.x) == \
            terms(derivation.z[0, 0, i, j] - bias,
                  lambda t, keep=first_channel: t.free_symbols & keep)
        padding = [cell for cell in read if cell.kind == "padding"]
        zeros = [p for p in derivation.forward.z_products[0, 0, i, j] if p[0] == 0]
        assert len(padding) == len(zeros)


@pytest.mark.parametrize("layer, size", LAYERS)
def test_the_scatter_is_where_one_upstream_element_appears(layer, size):
    derivation, printer = setup(layer, size)
    g = derivation.g[0, 0, 0, 0]
    figure = scatter(derivation, printer, (0, 0))
    shown = {(cell.element, derivation.w[cell.kernel] * g)
             for cell in figure.cells if cell.read and cell.kind == "input"}
    truth = {(index, term) for index in np.ndindex(1, 1, *size)
             for term in terms(derivation.grad_x[index], lambda t: t.has(g))}
    assert shown == truth
    stripped = [cell for cell in figure.cells if cell.read and cell.kind == "padding"]
    assert len(stripped) + len(shown) == layer.kernel_size[0] * layer.kernel_size[1]


@pytest.mark.parametrize("layer, size", LAYERS)
def test_the_full_correlation_window_is_the_input_gradient_s_sum(layer, size):
    derivation, printer = setup(layer, size)
    for a, b in [(0, 0), (size[0] - 1, size[1] - 1)]:
        figure = full_correlation(derivation, printer, (a, b))
        first_map = {derivation.g[index]
                     for index in np.ndindex(1, 1, *derivation.output_shape[2:])}
        assert products(figure.cells, derivation, derivation.g) == \
            terms(derivation.grad_x[0, 0, a, b], lambda t, keep=first_map: t.free_symbols & keep)
        kinds = {cell.kind for cell in figure.cells}
        assert kinds <= {"input", "inserted", "padding"}
        if layer.stride != (1, 1):
            assert "inserted" in kinds
        assert sum(cell.read for cell in figure.cells) == \
            layer.kernel_size[0] * layer.kernel_size[1]


def test_large_grids_and_cropped_maps_are_left_out():
    # padding beyond the kernel's reach: the rule crops dil(g) instead of padding it
    derivation, printer = setup(Conv2d(kernel_size=2, padding=2), (3, 3))
    assert [figure.name for figure in figures(derivation, printer)] == \
        ["receptive_field", "scatter"]
    derivation, printer = setup(Conv2d(kernel_size=3, padding=1), (FIGURE_LIMIT, 4))
    assert [figure.name for figure in figures(derivation, printer)] == []
    derivation, printer = setup(Conv2d(kernel_size=2, padding=1), (3, 3))
    assert [figure.name for figure in figures(derivation, printer)] == \
        ["receptive_field", "scatter", "full_correlation"]
