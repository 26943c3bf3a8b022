"""Residual blocks in the LaTeX document and on the interactive page: the walk shows the
fork (the block's path and the identity path, braced) and the sum of the two."""

from __future__ import annotations

from test_cli import run
from test_html import expected_terms, index_of, parse

import symbackprop as sbp
from symbackprop.core.layers import Residual, Sequential
from symbackprop.kinds import Conv2d, Linear, ReLU, Tanh

MLP = Sequential(Residual([Linear(2, 2), Tanh()]), ReLU())


def test_latex_walk_shows_the_fork_and_the_sum():
    text = sbp.to_latex(sbp.derive(MLP, 2))
    assert (r"\delta^{[0]} = \underbrace{\bigl(w^{[1]}\bigr)^{T} \delta^{[1]}}_{\text{through "
            r"the block (layer 1)}} + \underbrace{\delta^{[3]}}_{\text{the identity path}}"
            in text)
    assert r"\delta^{[2]} = \delta^{[3]}" in text  # the sum hands delta3 to the block
    assert "3 & residual sum $a^{[0]} + a^{[2]}$ (the block: layers 1--2)" in text
    assert "its input $a^{[0]}$ also feeds the residual sum, so its error term adds the two " \
           "paths" in text
    assert r"a^{[3]} = a^{[0]} + a^{[2]}" in text
    assert r"\delta^{[0]} \mathrel{+}= \delta^{[3]}" in text


def test_latex_of_a_convolution_block_adds_the_channel_slice():
    layer = Residual([Conv2d(2, 2, kernel_size=3, padding=1), ReLU()])
    text = sbp.to_latex(sbp.derive(layer, (2, 3, 3)))
    assert r"+ \underbrace{\delta^{[3]}_{c}}_{\text{the identity path}}" in text
    # and the notebook summary walks the same way
    assert r"\underbrace{\delta^{[3]}_{c}}" in sbp.derive(layer, (2, 3, 3))._repr_latex_()


def test_latex_on_the_command_line(tmp_path):
    """(The document compiles: checked by hand with --pdf; the suite's LaTeX tests compile
    chains' documents.)"""
    path = tmp_path / "residual.tex"
    result = run("latex", "residual", "--spec",
                 '[{"layer": "linear", "in_features": 2, "out_features": 2}, {"layer": "tanh"}]',
                 "-o", str(path))
    assert result.returncode == 0, result.stderr
    text = path.read_text()
    assert r"\underbrace{\delta^{[3]}}_{\text{the identity path}}" in text
    assert "symbackprop latex sequential --spec" in text  # regenerates it as the chain


def test_html_page_draws_both_paths():
    d = sbp.derive(MLP, 2)
    page = parse(sbp.to_html(d))
    by_section = {}
    for cell in page.cells:
        by_section.setdefault(cell["section"], set()).add(cell["data-array"])
    # the sum's section draws the skip input a0 next to the block's output a2
    assert {"a0", "a2", "a3", "delta3", "delta2"} <= by_section[3]
    # the block's first layer draws the identity path's delta3 it adds
    assert {"delta3", "delta1", "delta0"} <= by_section[1]
    # every formula's terms light up exactly the cells of its free symbols
    cells = {(c["section"], c["data-array"], index_of(c["data-index"])): int(c["data-cell"])
             for c in page.cells}
    by_id = {int(c["data-cell"]): c for c in page.cells}
    step = d.steps[0]
    for index in [(0, 0), (0, 1)]:
        cell = cells[(1, "delta0", index)]
        terms = {(by_id[t]["data-array"], index_of(by_id[t]["data-index"]))
                 for t in page.data["cells"][cell][2]}
        assert terms == expected_terms(step.delta_in[index])
        assert ("delta3", index) in terms


def test_html_cli(tmp_path):
    path = tmp_path / "page.html"
    result = run("html", "residual", "--spec",
                 '[{"layer": "linear", "in_features": 2, "out_features": 2}]', "-o", str(path))
    assert result.returncode == 0, result.stderr
    assert "the identity path" in path.read_text()
