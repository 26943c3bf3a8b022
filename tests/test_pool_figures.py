"""Pooling's upsample figure lists in each cell exactly the upstream elements the
derivation's sums route there, and the pooling document states the rules and the
continuation through the activation before it."""

from collections import Counter

import numpy as np
import pytest
import sympy

from symbackprop import (
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    derive,
    to_latex,
)
from symbackprop.kinds.pool2d.figures import upsample
from symbackprop.kinds.pool2d.rules import IsWindowMax
from symbackprop.render.latex import LayerLatexPrinter

MAX = [
    (MaxPool2d(kernel_size=2), (4, 4)),
    (MaxPool2d(kernel_size=3, stride=2, padding=1), (5, 5)),
    (MaxPool2d(kernel_size=2, stride=1), (4, 4)),   # overlapping: the first windows only
    (MaxPool1d(kernel_size=3, stride=2, padding=1), (8,)),
]
MEAN = [
    (AvgPool2d(kernel_size=2), (4, 4)),
    (AvgPool2d(kernel_size=3, stride=1, padding=1), (4, 4)),
    (AvgPool2d(kernel_size=3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
     (5, 5)),
    (AvgPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True), (6, 6)),
    (AvgPool1d(kernel_size=2, stride=1), (5,)),
]


def figure_of(layer, size, is_max):
    derivation = derive(layer, size)
    figure = upsample(derivation, LayerLatexPrinter(derivation.notation()), is_max)
    assert figure is not None
    return derivation, figure


def routed(derivation, index):
    """The derivation's dL/dx[index] read as ``{g element: coefficient}``, each term's
    indicator checked to be about this very element (max pooling)."""
    received = Counter()
    for term in sympy.Add.make_args(sympy.expand(derivation.grad_x[index])):
        if term == 0:
            continue
        (g,) = [s for s in term.free_symbols if s.name.startswith("g")]
        indicators = [f for f in sympy.Mul.make_args(term) if isinstance(f, IsWindowMax)]
        if indicators:
            (indicator,) = indicators
            assert indicator.candidate == derivation.x[index]
            received[g] += 1
        else:
            received[g] += term / g
    return received


def drawn(figure, derivation):
    """Per input element, the figure's shares as ``{g element: coefficient}``."""
    shown = {}
    for cell in figure.cells:
        if cell.kind != "input":
            continue
        counter = Counter()
        for share in cell.shares:
            g = derivation.g[share.output]
            counter[g] += 1 if share.divisor is None else sympy.Rational(1, share.divisor)
        shown[cell.element] = counter
    return shown


def windows_drawn(figure):
    return {share.output for cell in figure.cells for share in cell.shares}


@pytest.mark.parametrize("layer, size", MAX + MEAN)
def test_every_cell_lists_the_terms_of_its_sum(layer, size):
    is_max = (layer, size) in MAX
    derivation, figure = figure_of(layer, size, is_max)
    outputs = windows_drawn(figure)
    shown = drawn(figure, derivation)
    assert set(shown) == set(np.ndindex(1, 1, *size))
    for index, counter in shown.items():
        truth = routed(derivation, index)
        # the sum's terms from the windows drawn (all of them when the figure says so)
        kept = Counter({g: c for g, c in truth.items() if _index_of(derivation, g) in outputs})
        assert counter == kept, index
        if figure.all_windows:
            assert counter == truth
    if not figure.all_windows:
        assert all(max(output[2:]) < 2 for output in outputs)


def _index_of(derivation, g):
    return next(o for o in np.ndindex(*derivation.output_shape) if derivation.g[o] == g)


@pytest.mark.parametrize("layer, size", MEAN)
def test_a_mean_window_s_share_fills_its_divisor(layer, size):
    """Every window spreads its element over as many cells as the divisor the sums
    divide by: padding cells count (grey) only when count_include_pad does."""
    derivation, figure = figure_of(layer, size, False)
    for output in windows_drawn(figure):
        g = derivation.g[output]
        coefficients = {routed(derivation, index)[g] for index in np.ndindex(1, 1, *size)} - {0}
        (coefficient,) = coefficients
        holding = [cell for cell in figure.cells
                   if any(share.output == output for share in cell.shares)]
        assert len(holding) == 1 / coefficient
        if not layer.count_include_pad:
            assert all(cell.kind == "input" for cell in holding)


@pytest.mark.parametrize("layer, size", MAX)
def test_max_pooling_sends_nothing_to_the_padding(layer, size):
    _, figure = figure_of(layer, size, True)
    assert all(not cell.shares for cell in figure.cells if cell.kind != "input")
    assert any(cell.kind == "padding" for cell in figure.cells) == any(layer.padding)


def test_the_documents_state_the_rules_and_the_activation_step():
    text = to_latex(derive(MaxPool2d(kernel_size=2), (4, 4)))
    assert r"\label{fig:upsample}" in text and r"\section{The rule}" in text
    assert r"\textbf{Verified:} SymPy expanded the rule for all 16" in text
    assert r"\operatorname{upsample}\bigl(\delta^{[l]}\bigr) \odot f'" in text
    assert r"\label{fig:activation}" in text
    assert r"g_{11} [x_{11} = \arg\max z_{11}]\bigr)\, f'(\mathit{net}_{11})" in text \
        or r"g_{11} [x_{11} = \arg\max z_{11}]\, f'(\mathit{net}_{11})" in text
    tiled = to_latex(derive(AvgPool2d(kernel_size=2), (4, 4)))
    assert r"\frac{1}{4}\, g \otimes \mathbf{1}_{2\times2}" in tiled
    assert tiled.count(r"\textbf{Verified:}") == 2  # the share and the Kronecker form
    overlapping = to_latex(derive(AvgPool2d(kernel_size=3, stride=1, padding=1), (4, 4)))
    assert "Not here: the stride 1x1 is not the window 3x3 and the input is padded" in overlapping
    # no figure for 3-D pooling, and then no reference to one
    cube = to_latex(derive(AvgPool3d(kernel_size=2), (2, 2, 2)))
    assert "fig:upsample" not in cube and r"\section{The rule}" in cube
    assert "drawn for 1-D and 2-D pooling only" in cube
    large = to_latex(derive(MaxPool2d(kernel_size=2), (14, 14)))
    assert "fig:upsample" not in large and "too large for a readable figure" in large
