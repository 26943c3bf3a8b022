"""LaTeX documents for pooling, activations, flatten, linear layers and chains."""

import re
import shutil

import pytest
from conftest import CHAIN_GRID, LAYER_GRID

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.core.layers import Sequential, layer_from_spec
from symbackprop.kinds import AvgPool2d, Conv2d, LeakyReLU, Linear, MaxPool2d, ReLU, Sigmoid
from symbackprop.render.latex import (
    LayerLatexPrinter,
    compile_pdf,
    repr_latex,
    to_latex,
    write_document,
)


def test_max_pooling_document_shows_the_routing():
    text = to_latex(sbp.derive(MaxPool2d(2, stride=1), (3, 3)))
    assert r"z_{ij} = \max_{1 \le m \le 2,\, 1 \le k \le 2} \tilde{x}_{i + m - 1,\, j + k - 1}" \
        in text
    assert r"z_{12} &= \max(x_{12}, x_{13}, x_{22}, x_{23})" in text
    assert (r"\frac{\partial L}{\partial x_{12}} &= g_{11} [x_{12} = \arg\max z_{11}] &&+ "
            r"g_{12} [x_{12} = \arg\max z_{12}]") in text
    assert "ties go to the first" in text and "padding never wins" in text
    assert "Windows overlap" in text


def test_average_pooling_document_shows_the_share_and_the_kron_form():
    tiled = to_latex(sbp.derive(AvgPool2d(2), (4, 4)))
    assert r"\frac{\partial L}{\partial x} = \frac{1}{4}\, g \otimes \mathbf{1}_{2\times2}" \
        in tiled
    # stated in the rules section, after the sums it was proven against
    assert r"\textbf{Verified:} SymPy expanded the rule for all 16 input elements" in tiled
    assert tiled.index(r"\otimes \mathbf{1}_{2\times2}") > tiled.index(r"\section{The rule}")
    # every element has the same share: one written out, for all 16
    assert r"\frac{\partial L}{\partial x_{11}} &= \frac{1}{4} g_{11} \tag*{\small 16 elements}" \
        in tiled
    excluded = to_latex(sbp.derive(AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                                   (4, 4)))
    assert "D_{ij}" in excluded and "left out of the divisor" in excluded
    assert r"\otimes \mathbf{1}_{3" not in excluded  # only the general form, and why not
    assert "Not here: the stride 2x2 is not the window 3x3 and the input is padded" in excluded


def test_activation_and_linear_documents():
    relu = to_latex(sbp.derive(ReLU(), (2, 2)))
    assert r"f'(\mathit{net}) = [\mathit{net} > 0]" in relu
    assert r"\frac{\partial L}{\partial x_{11}} &= g_{11} [x_{11} > 0]" in relu
    sigmoid = to_latex(sbp.derive(Sigmoid(), (1, 2)))
    assert r"z_{11} &= \sigma(x_{11})" in sigmoid
    leaky = to_latex(sbp.derive(LeakyReLU(0.2), (1, 2)))
    assert r"\alpha = 0.2" in leaky
    linear = to_latex(sbp.derive(Linear(3, 2)))
    assert r"\frac{\partial L}{\partial x} = {w}^{T} g" in linear
    assert r"z_{1} &= x_{1} w_{11} &&+ x_{2} w_{12} &&+ x_{3} w_{13} &&+ b_{1}" in linear


def test_chain_document_walks_back_through_the_error_terms():
    chain = Sequential(Conv2d(1, 2, kernel_size=2), ReLU(), MaxPool2d(2), Linear(8, 2))
    text = to_latex(sbp.derive(chain, (5, 5)))
    for line in [r"\delta^{[3]} = \bigl(w^{[4]}\bigr)^{T} \delta^{[4]}",
                 r"\delta^{[2]} = \operatorname{upsample}\bigl(\delta^{[3]}\bigr)",
                 r"\delta^{[1]} = \delta^{[2]} \odot f'\bigl(a^{[1]}\bigr)",
                 r"\delta^{[1]} = \operatorname{upsample}\bigl(\delta^{[3]}\bigr) \odot "
                 r"f'\bigl(a^{[1]}\bigr)",
                 r"\delta^{[0]}_{c} = \sum_o \operatorname{corr}",
                 r"\delta^{[2](1)}_{12} &= \delta^{[3](1)}_{11} [a^{[2](1)}_{12} = \arg\max "
                 r"a^{[3](1)}_{11}]"]:
        assert line in text, line
    sections = re.findall(r"\\section\{([^}]*)\}", text)
    assert sections[:2] == ["The chain", "Backward, one layer boundary at a time"]
    assert len(sections) == 2 + 4 + 1  # the chain, the walk, each layer, the worked example
    assert sections[-1] == "A worked example in numbers"
    walk = text[text.index("one layer boundary at a time"):text.index("Layer 1: Conv2d")]
    assert walk.index("\n4 & ") < walk.index("\n1 & ")  # one table row a layer, last first


def test_printer_labels_chain_arrays_with_the_layer_number():
    chain = sbp.derive(Sequential(Linear(2, 2), Sigmoid()), 2)
    printer = LayerLatexPrinter(chain.notation())
    assert printer.label("a1", (0, 1)) == "a^{[1]}_{2}"
    assert printer.name("delta2") == r"\delta^{[2]}"
    assert printer.doprint(chain.steps[1].z[0, 0]) == r"\sigma(a^{[1]}_{1})"


def test_repr_latex_for_layers_and_chains():
    assert r"\arg\max" in repr_latex(sbp.derive(MaxPool2d(2), (2, 2)))
    chain = sbp.derive(Sequential(ReLU(), MaxPool2d(2)), (2, 2))
    assert r"\delta^{[1]} &= \operatorname{upsample}" in chain._repr_latex_()


def test_cli_latex_for_a_chain(tmp_path, capsys):
    target = tmp_path / "chain.tex"
    spec = '[{"layer": "conv2d", "kernel": 2}, {"layer": "tanh"}, {"layer": "linear", ' \
           '"in_features": 4, "out_features": 1}]'
    assert main(["latex", "sequential", "--spec", spec, "--input", "3x3", "-o",
                 str(target)]) == 0
    text = target.read_text()
    assert text.startswith("%% Generated by symbackprop")
    assert "symbackprop latex sequential --spec" in text.splitlines()[1]
    assert r"1 - \tanh^{2}(\mathit{net})" in text or r"1 - \tanh^2(\mathit{net})" in text
    capsys.readouterr()


needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                    reason="pdflatex is not installed")
COMPILED = [("layer", LAYER_GRID[1]), ("layer", LAYER_GRID[8]), ("layer", LAYER_GRID[12]),
            ("layer", LAYER_GRID[17]), ("chain", CHAIN_GRID[3]), ("chain", CHAIN_GRID[4])]


@pytest.mark.slow
@needs_pdflatex
@pytest.mark.parametrize("kind, case", COMPILED, ids=[case[0] for _, case in COMPILED])
def test_documents_compile_without_errors_or_overfull_lines(kind, case, tmp_path):
    name, spec, size, batch = case
    layer = layer_from_spec(spec) if kind == "layer" else Sequential.from_spec(spec)
    tex = write_document(to_latex(sbp.derive(layer, size, batch)), tmp_path / f"{name}.tex")
    pdf = compile_pdf(tex, log=tex.with_suffix(".log"))
    assert pdf.read_bytes().startswith(b"%PDF")
    log = tex.with_suffix(".log").read_text(errors="replace")
    assert not re.search(r"^! ", log, flags=re.M)
    assert "Overfull \\hbox" not in log
