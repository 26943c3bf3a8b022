"""The LaTeX stage: printer strings, document structure, escaping, notation,
large-layer selection, the matrix view, the CLI, and (slow) pdflatex compiles."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sympy
from conftest import CONV_GRID
from reference import conv2d_forward

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.core.naming import element_symbol
from symbackprop.kinds.conv2d.latex import unrolled_matrix
from symbackprop.render import latex
from symbackprop.render.latex import (
    LatexCompileError,
    LatexPrinter,
    compile_pdf,
    equation_rows,
    latex_name,
    representative_indices,
    to_latex,
    write_document,
)


@pytest.fixture(scope="module")
def worked():
    """docs/notation.md's worked example: 3x3 input, 2x2 kernel, padding 1."""
    return sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3))


@pytest.fixture(scope="module")
def worked_document(worked):
    return to_latex(worked)


def grid_case(name):
    _, kwargs, size, batch = next(case for case in CONV_GRID if case[0] == name)
    return sbp.Conv2d(**kwargs), size, batch


# -- names and the printer ---------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("x", "x"), ("delta", r"\delta"), ("Delta", r"\Delta"), ("δ", r"\delta"),
    ("λ", r"\lambda"), ("net", r"\mathit{net}"), ("a1", r"\mathit{a1}"),
    ("a_1", "a_{1}"), ("x^{l}", "x^{l}"), ("50%", r"\text{50\%}"),
])
def test_latex_name(name, expected):
    assert latex_name(name) == expected


@pytest.mark.parametrize("bad", ["", "a b", "é", "a\nb", "\\x\x00"])
def test_latex_name_refuses_what_pdflatex_cannot_set(bad):
    with pytest.raises(ValueError, match="names"):
        latex_name(bad)


def test_labels_single_channel(worked):
    printer = LatexPrinter(worked.notation())
    assert printer.doprint(element_symbol("x", (0, 0, 1, 2))) == "x_{23}"
    assert printer.doprint(element_symbol("w", (0, 0, 1, 0))) == "w_{21}"
    assert printer.doprint(element_symbol("b", (0,))) == "b"
    zero_based = LatexPrinter(worked.notation(index_base=0))
    assert zero_based.doprint(element_symbol("x", (0, 0, 1, 2))) == "x_{12}"


def test_two_digit_indices_get_commas():
    derivation = sbp.derive(sbp.Conv2d(kernel_size=1, bias=False), (12, 3))
    printer = LatexPrinter(derivation.notation())
    assert printer.doprint(element_symbol("x", (0, 0, 9, 1))) == "x_{10,2}"
    # one index of the document reaches 10: every subscript of it has commas
    assert printer.doprint(element_symbol("x", (0, 0, 8, 1))) == "x_{9,2}"
    assert printer.doprint(element_symbol("w", (0, 0, 0, 0))) == "w_{1,1}"
    small = LatexPrinter(sbp.derive(sbp.Conv2d(kernel_size=1, bias=False), (9, 3)).notation())
    assert small.doprint(element_symbol("x", (0, 0, 8, 1))) == "x_{92}"
    python = LatexPrinter(sbp.derive(sbp.Conv2d(kernel_size=1, bias=False),
                                     (10, 3)).notation(index_base=0))
    assert python.doprint(element_symbol("x", (0, 0, 9, 1))) == "x_{91}"  # 0..9


def test_labels_with_channels_and_batch():
    derivation = sbp.derive(sbp.Conv2d(in_channels=2, out_channels=3, kernel_size=1), (2, 2), 2)
    printer = LatexPrinter(derivation.notation())
    assert printer.doprint(element_symbol("x", (1, 0, 0, 1))) == "x^{(2,1)}_{12}"
    assert printer.doprint(element_symbol("w", (2, 1, 0, 0))) == "w^{(3,2)}_{11}"
    assert printer.doprint(element_symbol("b", (2,))) == "b^{(3)}"
    assert printer.doprint(element_symbol("z", (0, 2, 1, 1))) == "z^{(1,3)}_{22}"
    assert printer.label("z", (0, 2, 1, 1), free={1: "o"}) == "z^{(1,o)}_{22}"
    assert printer.generic_label("x") == "x^{(n,c)}_{ab}"
    assert printer.generic_label("w") == "w^{(o,c)}_{mk}"
    # Only the dimensions that vary are printed: one sample, several channels.
    single = sbp.derive(sbp.Conv2d(in_channels=2, out_channels=1, kernel_size=1), (2, 2))
    printer = LatexPrinter(single.notation())
    assert printer.doprint(element_symbol("x", (0, 1, 0, 0))) == "x^{(2)}_{11}"
    assert printer.doprint(element_symbol("z", (0, 0, 0, 0))) == "z_{11}"
    assert printer.doprint(element_symbol("w", (0, 1, 0, 0))) == "w^{(2)}_{11}"
    assert printer.generic_label("w") == "w^{(c)}_{mk}"


def test_forward_and_gradients_print_in_textbook_order(worked):
    printer = LatexPrinter(worked.notation())
    assert printer.doprint(worked.z_written[0, 0, 0, 0]) == \
        "0 w_{11} + 0 w_{12} + 0 w_{21} + x_{11} w_{22} + b"
    assert printer.doprint(worked.z_written[0, 0, 3, 3]) == \
        "x_{33} w_{11} + 0 w_{12} + 0 w_{21} + 0 w_{22} + b"
    assert printer.doprint(worked.z[0, 0, 0, 0]) == "x_{11} w_{22} + b"
    # docs/notation.md: dL/dx11 and dL/dx22 of the worked example.
    assert printer.doprint(worked.grad_x[0, 0, 0, 0]) == \
        "g_{11} w_{22} + g_{12} w_{21} + g_{21} w_{12} + g_{22} w_{11}"
    assert printer.doprint(worked.grad_x[0, 0, 1, 1]) == \
        "g_{22} w_{22} + g_{23} w_{21} + g_{32} w_{12} + g_{33} w_{11}"
    grey = LatexPrinter(worked.notation(), padding_command=r"\pad")
    assert grey.doprint(worked.z_written[0, 0, 0, 1]) == \
        r"\pad{0 w_{11}} + \pad{0 w_{12}} + x_{11} w_{21} + x_{12} w_{22} + b"


def test_printer_signs_numbers_and_names(worked):
    printer = LatexPrinter(worked.notation(names={"g": "delta", "x": "a"}))
    g, x, w = worked.g[0, 0, 0, 0], worked.x[0, 0, 0, 0], worked.w[0, 0, 0, 0]
    assert printer.doprint(g * w) == r"\delta_{11} w_{11}"
    assert printer.doprint(-2 * x * w) == "-2 a_{11} w_{11}"
    assert printer.doprint(g - x) == r"\delta_{11} - a_{11}"
    assert printer.doprint(sympy.Rational(1, 2) * x) == r"\frac{1}{2} a_{11}"
    assert printer.terms(sympy.Integer(0)) == []


def test_equation_rows_break_and_align():
    terms = [("+", f"t_{i}") for i in range(1, 6)]
    text, columns = equation_rows("z", terms, 2)
    assert text == "z &= t_1 &&+ t_2 \\\\\n &+ t_3 &&+ t_4 \\\\\n &+ t_5"
    assert columns == 2
    text, columns = equation_rows("z", terms, 2, tag="feeds", join_lone_last=True)
    assert text == "z &= t_1 &&+ t_2 \\\\\n &+ t_3 &&+ t_4 &&+ t_5 \\tag*{feeds}"
    assert columns == 3
    assert equation_rows("y", [], 4) == ("y &= 0", 1)


# -- the document --------------------------------------------------------------

def test_document_sections_in_order(worked_document):
    titles = re.findall(r"\\section\{([^}]*)\}", worked_document)
    assert titles == ["The layer", "Forward pass", "Backward pass, element by element",
                      "The general rules", "The matrix view", "Cost", "A worked example in numbers"]
    assert worked_document.startswith("%% Generated by symbackprop")
    assert r"\begin{document}" in worked_document
    assert worked_document.rstrip().endswith(r"\end{document}")


def test_document_reproduces_the_worked_example(worked_document):
    # the sections before the worked example in numbers (it writes some elements out again)
    doc = worked_document.split(r"\section{A worked example in numbers}")[0]
    # Output size with this layer's numbers.
    assert r"\left\lfloor \frac{3 + 1 + 1 - 1\cdot(2 - 1) - 1}{1} \right\rfloor + 1 = 4" in doc
    # Forward rows, padding products in grey, aligned in columns.
    assert (r"z_{11} &= \pad{0 w_{11}} &&+ \pad{0 w_{12}} &&+ \pad{0 w_{21}} "
            r"&&+ x_{11} w_{22} &&+ b") in doc
    assert r"z_{22} &= x_{11} w_{11} &&+ x_{12} w_{12} &&+ x_{21} w_{21} &&+ x_{22} w_{22} &&+ b" \
        in doc
    assert len(re.findall(r"^z_\{\d\d\} &=", doc, flags=re.M)) == 16
    # Gradients, with the outputs each input feeds.
    assert (r"\frac{\partial L}{\partial x_{11}} &= g_{11} w_{22} &&+ g_{12} w_{21} "
            r"&&+ g_{21} w_{12} &&+ g_{22} w_{11} \tag*{\small feeds $z_{11}, z_{12}, z_{21}, "
            r"z_{22}$}") in doc
    assert len(re.findall(r"\\partial x_\{\d\d\}\} &=", doc)) == 9
    assert len(re.findall(r"\\partial w_\{\d\d\}\} &=", doc)) == 4
    assert r"\tag*{\small in 16 outputs, 7 on padding}" in doc
    assert r"\frac{\partial L}{\partial b} &= g_{11}" in doc


def test_rules_section_quotes_the_numbers_and_verifies(worked_document):
    doc = worked_document
    assert r"s = (1, 1),\quad P = (0, 0, 0, 0),\quad d = (1, 1)" in doc
    assert r"\operatorname{rot}_{180}(w) = \begin{bmatrix}w_{22} & w_{21} \\ w_{12} & w_{11}" \
        r"\end{bmatrix}" in doc
    assert doc.count(r"\textbf{Verified:}") == 4  # grad_x, grad_w, grad_b, C^T g
    assert "NOT verified" not in doc
    assert "all 9 elements" in doc and "all 4 elements" in doc


def test_rules_statement_only_when_the_proof_holds(worked, monkeypatch):
    from symbackprop.core.rules import PROOFS
    from symbackprop.kinds.conv2d.rules import prove_rules as real

    def broken(derivation):
        proofs = real(derivation)
        return tuple(p if p.name != "grad_w" else
                     type(p)(**{**p.__dict__, "holds": False, "mismatches": ((0, 0, 1, 1),)})
                     for p in proofs)

    monkeypatch.setitem(PROOFS.table, sbp.Conv2d, broken)
    doc = to_latex(worked)
    assert doc.count(r"\textbf{Verified:}") == 3
    assert r"\textbf{NOT verified:}" in doc and "(the first at $w_{22}$)" in doc


def test_stride_remainder_is_explained():
    layer, size, batch = grid_case("stride2-uneven")  # 6x6 input, kernel 3, stride 2
    doc = to_latex(sbp.derive(layer, size, batch), detail="full")
    assert "every input element in row 6 or column 6 has gradient exactly $0$" in doc
    assert r"\frac{\partial L}{\partial x_{66}} &= 0 \tag*{\small never read}" in doc
    assert r"rounded down" in doc
    assert r"P = (2, 3, 2, 3)" in doc


def test_document_is_deterministic(worked, worked_document):
    assert to_latex(worked) == worked_document


def test_padding_terms_switch_off(worked):
    doc = to_latex(worked, show_padding=False)
    assert r"\pad{" not in doc.split(r"\begin{document}")[1]
    assert r"z_{11} &= x_{11} w_{22} &&+ b" in doc


def test_index_base_and_names(worked):
    doc = to_latex(worked, index_base=0, names={"x": "a", "g": "delta", "L": "E",
                                                "w": "theta"})
    assert r"\frac{\partial E}{\partial a_{00}} &= \delta_{00} \theta_{11}" in doc
    assert "Indices start at 0" in doc
    assert r"\tilde{a}_{11} = a_{00}" in doc
    assert "--index-base 0 --input-name a --weight-name theta --grad-name delta --loss-name E" \
        in doc.splitlines()[1]
    assert "x_{" not in doc.split(r"\begin{document}")[1]


def test_user_strings_are_escaped(worked):
    doc = to_latex(worked, names={"x": "in1%"}, command="make & run #1 {x}\n% rm")
    body = doc.split(r"\begin{document}")[1]
    assert r"\text{in1\%}_{11}" in body
    assert r"\texttt{make \& run \#1 \{x\} \% rm}" in body
    # The command in the header comment stays on the comment line.
    assert doc.splitlines()[1] == "%%   make & run #1 {x} % rm"
    with pytest.raises(ValueError, match="unknown array 'q'"):
        to_latex(worked, names={"q": "a"})
    with pytest.raises(ValueError, match="names"):
        to_latex(worked, names={"x": "a b"})


def test_channels_read_with_superscripts():
    layer, size, batch = grid_case("channels")  # 2 -> 3 channels, batch 2
    doc = to_latex(sbp.derive(layer, size, batch))
    assert r"z^{(1,1)}_{11} &= x^{(1,1)}_{11} w^{(1,1)}_{11}" in doc
    assert r"feeds $z^{(1,o)}_{11},\ o = 1, 2, 3$" in doc
    assert "sample $n$, output channel $o$, row $i$ and column $j$ of the output" in doc
    # No four-level subscripts anywhere.
    assert not re.search(r"_\{\d,\d,\d,\d\}", doc)


# -- large layers ----------------------------------------------------------------

def test_representative_indices():
    small, selected = representative_indices((1, 1, 6, 6))
    assert len(small) == 36 and not selected
    chosen, selected = representative_indices((1, 1, 10, 7))
    assert selected
    assert chosen == [(0, 0, r, c) for r in (0, 4, 9) for c in (0, 3, 6)]
    chosen, _ = representative_indices((3, 5, 4, 4))
    assert {(n, c) for n, c, _, _ in chosen} == {(0, 0), (0, 4), (2, 0), (2, 4)}
    assert len(chosen) == 4 * 9


def test_large_layer_lists_a_selection_and_says_so():
    derivation = sbp.derive(sbp.Conv2d(kernel_size=3, padding=1), (10, 10))
    doc = to_latex(derivation)
    # corners, edge middles and the interior: each shape of sum once, with its count
    assert "$z$: 100 elements in 9 shapes of sum" in doc
    forward = doc.split(r"\section{Forward pass}")[1].split(r"\section{Backward")[0]
    listed = re.findall(r"^(z_\{[\d,]+\}) &=", forward, flags=re.M)
    assert listed == ["z_{1,1}", "z_{1,2}", "z_{1,10}", "z_{2,1}", "z_{2,2}", "z_{2,10}",
                      "z_{10,1}", "z_{10,2}", "z_{10,10}"]
    counts = [int(count) for count in re.findall(r"\\small (\d+) elements?", forward)]
    assert counts == [1, 8, 1, 8, 64, 8, 1, 8, 1]
    # dL/dw11 has 81 terms: shown abbreviated, with its count.
    assert r"\cdots" in doc and "81 terms" in doc
    assert "too large to print usefully" in doc  # C is 100 x 100


def test_impossible_and_huge_sizes_are_refused(capsys):
    assert main(["latex", "conv2d", "--kernel", "5", "--input", "3x3"]) == 2
    assert "smaller than the dilated kernel" in capsys.readouterr().err
    assert main(["latex", "conv2d", "--kernel", "3", "--input", "200x200"]) == 2
    assert "over the limit" in capsys.readouterr().err


# -- the matrix view -------------------------------------------------------------

@pytest.mark.parametrize("name", ["worked-example", "stride2-uneven", "dilation2", "groups",
                                  "channels", "depthwise-no-bias"])
def test_unrolled_matrix_transpose_gives_the_input_gradient(name):
    layer, size, batch = grid_case(name)
    derivation = sbp.derive(layer, size, batch, method="diff")
    matrix = unrolled_matrix(derivation)
    flat = lambda array: sympy.Matrix(sympy.flatten(array.tolist()))  # noqa: E731
    assert matrix.shape == (len(flat(derivation.z)), len(flat(derivation.x)))
    difference = matrix.T * flat(derivation.g) - flat(derivation.grad_x)
    assert all(sympy.expand(value) == 0 for value in difference)

    # C x (+ b) is the reference forward pass, numerically.
    rng = np.random.default_rng(0)
    w = rng.standard_normal(layer.weight_shape)
    b = rng.standard_normal(layer.out_channels) if layer.bias else None
    x = rng.standard_normal(derivation.input_shape)
    values = dict(zip(sympy.flatten(derivation.w.tolist()), w.ravel(), strict=True))
    numeric = np.array(matrix.subs(values).tolist(), dtype=float)
    expected = conv2d_forward(x, w, b, stride=layer.stride, padding=layer.padding,
                              dilation=layer.dilation, groups=layer.groups)
    if b is not None:
        expected = expected - b[None, :, None, None]
    np.testing.assert_allclose(numeric @ x.ravel(), expected.ravel(), atol=1e-12)


def test_matrix_section_of_the_worked_example(worked_document):
    doc = worked_document
    assert "Here $C$ has 16 rows (outputs) and 9 columns (inputs), 36 of its entries nonzero" \
        in doc
    assert (r"\frac{\partial L}{\partial x_{11}} = (C^{\top}\mathbf{g})_{1} = "
            r"g_{11} w_{22} + g_{12} w_{21} + g_{21} w_{12} + g_{22} w_{11}") in doc


def test_cost_numbers():
    derivation = sbp.derive(sbp.Conv2d(in_channels=2, out_channels=4, kernel_size=3), (5, 5))
    doc = to_latex(derivation)
    # Ho*Wo*KH*KW*C*O = 3*3*3*3*2*4 = 648; output 4*3*3 = 36; parameters 4*2*3*3 + 4 = 76.
    assert r"3 \cdot 3 \cdot 3 \cdot 3 \cdot 2 \cdot 4 = 648" in doc
    assert r"4 \cdot 3 \cdot 3 = 36" in doc
    assert "& $76$" in doc


# -- notebook display -------------------------------------------------------------

def test_repr_latex_is_a_short_math_summary(worked):
    text = worked._repr_latex_()
    assert text.startswith("$$\\begin{aligned}") and text.endswith("\\end{aligned}$$")
    assert r"z_{11} &= 0 w_{11} + 0 w_{12} + 0 w_{21} + x_{11} w_{22} + b" in text
    assert r"z_{22} &= x_{11} w_{11} + x_{12} w_{12} + x_{21} w_{21} + x_{22} w_{22} + b" in text
    assert (r"\frac{\partial L}{\partial x_{11}} &= g_{11} w_{22} + g_{12} w_{21} + g_{21} w_{12} "
            r"+ g_{22} w_{11}") in text
    assert r"\cdots" in text  # dL/dw11 has 9 terms: abbreviated
    assert r"x: 3\times3 \;\to\; z: 4\times4" in text
    assert text.count(r"\\") <= 8
    for unsupported_by_mathjax in (r"\pad", r"\tag", r"\section", "$$$"):
        assert unsupported_by_mathjax not in text


# -- the command line ---------------------------------------------------------------

def test_cli_writes_to_stdout_by_default(capsys, worked_document):
    assert main(["latex", "conv2d", "--kernel", "2", "--padding", "1", "--input", "3x3"]) == 0
    assert capsys.readouterr().out == worked_document


def test_cli_writes_a_file_and_refuses_a_pdf_name(tmp_path, capsys):
    target = tmp_path / "d.tex"
    assert main(["latex", "conv2d", "--padding", "1", "-o", str(target),
                 "--grad-name", "delta"]) == 0
    assert r"\delta_{11}" in target.read_text()
    assert f"wrote {target}" in capsys.readouterr().out
    assert main(["latex", "conv2d", "-o", str(tmp_path / "d.pdf")]) == 2
    assert "-o names the .tex file" in capsys.readouterr().err
    assert not (tmp_path / "d.pdf").exists()


def test_missing_compiler_is_an_error_only_with_pdf(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(latex.shutil, "which", lambda name: None)
    target = tmp_path / "d.tex"
    assert main(["latex", "conv2d", "-o", str(target)]) == 0
    assert main(["latex", "conv2d", "-o", str(target), "--pdf"]) == 1
    error = capsys.readouterr().err
    assert "--pdf needs pdflatex, which is not installed" in error
    assert "texlive-latex-base" in error
    assert target.exists() and not target.with_suffix(".pdf").exists()


def test_write_document_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "d.tex"
    target.write_text("old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(latex.os, "replace", fail)
    with pytest.raises(OSError):
        write_document("new", target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["d.tex"]


# -- compiling (slow) -----------------------------------------------------------

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                    reason="pdflatex is not installed (bash dev.sh test "
                                           "installs it)")

COMPILED = ["worked-example", "stride2-uneven", "dilation2", "groups", "channels",
            "depthwise-no-bias"]


@pytest.mark.slow
@needs_pdflatex
@pytest.mark.parametrize("name", COMPILED)
def test_documents_compile_without_errors_or_overfull_lines(name, tmp_path):
    layer, size, batch = grid_case(name)
    tex = write_document(to_latex(sbp.derive(layer, size, batch)), tmp_path / f"{name}.tex")
    pdf = compile_pdf(tex, log=tex.with_suffix(".log"))
    assert pdf == tmp_path / f"{name}.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    log = tex.with_suffix(".log").read_text(errors="replace")
    assert not re.search(r"^! ", log, flags=re.M)
    assert "Overfull \\hbox" not in log
    assert "undefined references" not in log
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
        assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 3
    # Nothing but the document, its log and the PDF is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{name}.tex", f"{name}.log", f"{name}.pdf"])


@pytest.mark.slow
@needs_pdflatex
def test_compile_failure_is_clear_and_leaves_no_pdf(tmp_path):
    tex = tmp_path / "broken.tex"
    tex.write_text("\\documentclass{article}\\begin{document}\\undefinedmacro\\end{document}\n")
    with pytest.raises(LatexCompileError, match="could not compile .*Undefined control sequence") \
            as error:
        compile_pdf(tex)
    assert not tex.with_suffix(".pdf").exists()
    # The log is kept outside the document's folder (nothing beside it is overwritten).
    kept = Path(re.search(r"\(log: (.*)\)$", str(error.value)).group(1))
    assert kept.parent != tmp_path and "Undefined control sequence" in kept.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["broken.tex"]
    kept.unlink()


@pytest.mark.slow
@needs_pdflatex
def test_notebook_summary_is_valid_latex(tmp_path):
    derivations = [sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3)),
                   sbp.derive(*grid_case("channels"))]
    body = "\n".join(d._repr_latex_() for d in derivations)
    tex = tmp_path / "summary.tex"
    tex.write_text("\\documentclass{article}\\usepackage{amsmath}\\begin{document}\n"
                   f"{body}\n\\end{{document}}\n")
    assert compile_pdf(tex).read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("name", ["asymmetric-padding", "dilation-stride", "depthwise-no-bias",
                                  "channels"])
def test_the_command_in_the_document_regenerates_it(name, capsys):
    layer, size, batch = grid_case(name)
    document = to_latex(sbp.derive(layer, size, batch), names={"g": "delta"})
    command = document.splitlines()[1].removeprefix("%%   ").split()
    assert command[:2] == ["symbackprop", "latex"]
    assert main(command[1:]) == 0
    assert capsys.readouterr().out == document


def test_large_instances_quote_the_rules_without_claiming_a_proof(monkeypatch):
    monkeypatch.setattr("symbackprop.core.rules.PROOF_TERMS", 10)
    calls = []
    from symbackprop.core.rules import PROOFS
    monkeypatch.setitem(PROOFS.table, sbp.Conv2d, lambda d: calls.append(d))
    doc = to_latex(sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3)))
    assert calls == []
    assert r"\textbf{Verified:}" in doc  # only C^T g, checked directly
    assert doc.count(r"\textbf{Verified:}") == 1
    assert doc.count(r"\textbf{Not verified here:}") == 3
    assert "this instance has 64 products, more than the 10" in doc
