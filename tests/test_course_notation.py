"""Course notation in the printouts: layer superscripts, subscripted names, decorations
on the base letter, index letters that avoid the names, refused names in one line."""

import re

import pytest

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.render.latex import to_latex
from symbackprop.render.latex_names import join_scripts, latex_name


def _balanced(text: str) -> bool:
    depth = 0
    for match in re.finditer(r"\\.|[{}]", text):
        depth += {"{": 1, "}": -1}.get(match.group(0), 0)
        if depth < 0:
            return False
    return depth == 0


def _no_double_scripts(text: str) -> bool:
    """No ``^{..}^`` or ``_{..}_`` (LaTeX's "Double superscript") outside comments."""
    body = "\n".join(line for line in text.splitlines() if not line.startswith("%"))
    return re.search(r"\^\{[^{}]*\}\^|_\{[^{}]*\}_", body) is None


@pytest.fixture(scope="module")
def channels():
    return sbp.derive(sbp.Conv2d(in_channels=2, out_channels=2, kernel_size=2), (3, 3), 1)


@pytest.mark.parametrize("name, label", [
    ("a^{l-1}", "a^{l-1,(1)}_{11}"),
    ("a^{[l-1]}", "a^{[l-1](1)}_{11}"),
    ("a^{(l-1)}", "a^{(l-1)(1)}_{11}"),
    ("a^l", "a^{l,(1)}_{11}"),
])
def test_every_spelling_of_a_layer_superscript(channels, name, label):
    document = to_latex(channels, names={"x": name, "z": "z^{[l]}"})
    assert label in document
    assert "z^{[l](1)}_{11}" in document
    assert _balanced(document) and _no_double_scripts(document)


def test_a_subscripted_bias_and_decorations(channels):
    document = to_latex(channels, names={"b": "w_b", "x": "a^{[2]}"})
    assert "w_{b}^{(1)}" in document and "w_{b}^{(o)}" in document
    # the padded input: the tilde on the base letter, the layer's superscript after it
    assert r"\tilde{a}^{[2](c)}" in document
    assert r"\tilde{a^{" not in document
    linear = to_latex(sbp.derive(sbp.Linear(2, 2), 2, 1), names={"b": "w_b"})
    assert "w_{b,1}" in linear and "w_{b1}" not in linear
    assert _balanced(linear) and _no_double_scripts(linear)


@pytest.mark.parametrize("latex, joined", [
    (r"a^{[l-1]}^{(n,c)}_{ab}", r"a^{[l-1](n,c)}_{ab}"),
    (r"w_{b}_{o}", r"w_{b,o}"),
    (r"\tilde{a^{[2]}}_{2 i + m - 2}", r"\tilde{a}^{[2]}_{2 i + m - 2}"),
    (r"\sum_{c=1}^{2} w^{(o,c)}_{mk} x_{11}", r"\sum_{c=1}^{2} w^{(o,c)}_{mk} x_{11}"),
])
def test_join_scripts(latex, joined):
    assert join_scripts(latex) == joined


@pytest.mark.parametrize("name, rule", [
    ("a^{l-1", "unbalanced braces"),
    ("", "is empty"),
    (r"\foo", r"\foo, a LaTeX command symbackprop does not know"),
    ("a^{}", "empty superscript"),
    ("a^{1}^{2}", "two superscripts"),
])
def test_bad_names_are_refused_with_the_option_and_the_rule(capsys, name, rule):
    assert main(["latex", "conv2d", "--input-name", name]) == 2
    error = capsys.readouterr().err
    assert f"--input-name: {name!r} cannot be typeset" in error and rule in error
    assert error.count("\n") == 1


@pytest.mark.parametrize("name, latex", [("net", r"\mathit{net}"), ("delta", r"\delta"),
                                         ("w_b", "w_{b}"), ("z^{[l]}", "z^{[l]}"),
                                         (r"\hat{x}", r"\hat{x}")])
def test_latex_names(name, latex):
    assert latex_name(name) == latex


def test_index_letters_avoid_the_names(channels):
    document = to_latex(channels, names={"x": "a", "w": "k"})
    body = document.split(r"\begin{document}")[1]
    assert "a^{(c)}_{ab}" not in body and "k^{(o,c)}_{mk}" not in body
    assert re.search(r"a\^\{\(c\)\}_\{(?![ab])[a-z](?![ab])[a-z]\}", body)
    assert "k^{(o,c)}_{st}" in body


def test_pooling_prose_follows_renaming(capsys):
    assert main(["latex", "maxpool2d", "--input", "4x4", "--input-name", "a",
                 "--output-name", "o", "--grad-name", "delta"]) == 0
    document = capsys.readouterr().out
    notes = document.split(r"\arg\max")[2]  # the note after the general formula
    assert r"\delta_{ij}" in document and "$g_{ij}$" not in document
    assert "[x_{" not in document and "z_{ij}]" not in document
    assert "a_{ab}" not in document and r"\arg\max o_{ij}" in document
    assert notes
    assert main(["latex", "avgpool2d", "--input", "4x4", "--grad-name", "delta"]) == 0
    assert "share of its $\\delta_{ij}$" in capsys.readouterr().out


def test_derive_text_takes_the_same_names(capsys):
    assert main(["derive", "conv2d", "--input-name", "a", "--grad-name", "delta",
                 "--bias-name", "w_b"]) == 0
    text = capsys.readouterr().out
    assert "dL/da22 = delta11 w22 + delta12 w21 + delta21 w12 + delta22 w11" in text
    assert "z11 = a11 w11 + a12 w12 + a21 w21 + a22 w22 + w_b" in text
    assert main(["derive", "maxpool2d", "--input", "4x4", "--input-name", "a^{[l-1]}"]) == 0
    text = capsys.readouterr().out
    assert "z11 = max(a^{[l-1]}[1,1], a^{[l-1]}[1,2]" in text
    assert main(["derive", "relu", "--input-name", "a^{"]) == 2
    assert "--input-name: 'a^{' cannot be typeset" in capsys.readouterr().err


def test_a_chain_writes_the_course_letters_with_its_layer_superscripts(capsys):
    spec = ('{"input": [1, 4, 4], "layers": [{"layer": "conv2d", "kernel_size": 3}, '
            '{"layer": "relu"}, {"layer": "flatten"}, '
            '{"layer": "linear", "in_features": 4, "out_features": 2}]}')
    assert main(["latex", "sequential", "--spec", spec, "--input-name", "h", "--grad-name",
                 "g", "--bias-name", "w_b", "--loss-name", "E"]) == 0
    document = capsys.readouterr().out
    assert r"$h^{[l-1]}$ into $h^{[l]}$" in document and r"g^{[l]} = \partial E" in document
    assert "h^{[0]}_{11}" in document and "w_{b}^{[4]}" in document
    assert r"\delta^{[" not in document and "a^{[" not in document
    assert _balanced(document) and _no_double_scripts(document)


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("pdflatex") is None
                    or __import__("shutil").which("pdftotext") is None,
                    reason="pdflatex and pdftotext are not installed (bash dev.sh test "
                           "installs them)")
@pytest.mark.parametrize("height", [22.8, 23.4, 24.0, 24.6, 25.2])
def test_the_footer_never_stands_alone_on_a_page(tmp_path, height):
    """A body that ends near the foot of a page: the footer stays with its last line."""
    import subprocess

    from symbackprop.render.latex import compile_pdf, write_document
    from symbackprop.render.templating import latex_environment

    template = latex_environment().from_string(
        '((* extends "latex_base.tex.j2" *))((* block body *))'
        r"\noindent\rule{1pt}{(((height)))cm}\par LASTLINE((* endblock *))")
    text = template.render(height=height, version="0", command="symbackprop latex x",
                           command_comment="symbackprop latex x")
    pdf = compile_pdf(write_document(text, tmp_path / "d.tex"))
    pages = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    last = [page for page in pages if page.strip()][-1]
    assert "Generated by" in last and "LASTLINE" in last, pages


def test_every_kinds_general_formula_avoids_the_names(capsys):
    assert main(["latex", "upsample2d", "--input-name", "a"]) == 0
    document = capsys.readouterr().out
    assert "a_{ab}" not in document and re.search(r"\\partial a_\{(?![ab])[a-z](?![ab])[a-z]\}",
                                                   document)
    assert main(["latex", "convtranspose1d", "--weight-name", "k"]) == 0
    document = capsys.readouterr().out
    assert "k_{c,o,k}" not in document and r"k_{c,o,t}" in document


def test_an_output_named_o_keeps_the_channel_letter_apart():
    derivation = sbp.derive(sbp.Conv2d(in_channels=2, out_channels=2, kernel_size=2), (3, 3))
    document = to_latex(derivation, names={"z": "o"})
    assert "o^{(o)}" not in document and "o^{(p)}_{ij}" in document


@pytest.mark.slow
@pytest.mark.skipif(__import__("shutil").which("pdflatex") is None
                    or __import__("shutil").which("pdftotext") is None,
                    reason="pdflatex and pdftotext are not installed (bash dev.sh test "
                           "installs them)")
@pytest.mark.parametrize("height", [22.4, 22.6, 22.8])
def test_the_footer_stays_with_a_last_display(tmp_path, height):
    """A body that ends with a display near the foot of a page (the worked example's last
    element): the footer stays with it (TeX may break after a display)."""
    import subprocess

    from symbackprop.render.latex import compile_pdf, write_document
    from symbackprop.render.templating import latex_environment

    template = latex_environment().from_string(
        '((* extends "latex_base.tex.j2" *))((* block body *))'
        r"\noindent\rule{1pt}{(((height)))cm}\par LASTLINE"
        "\n\\begin{alignat*}{1}\nz &= 1 \\\\*\n&= 2\n\\end{alignat*}\n((* endblock *))")
    text = template.render(height=height, version="0", command="symbackprop latex x",
                           command_comment="symbackprop latex x")
    pdf = compile_pdf(write_document(text, tmp_path / "d.tex"))
    pages = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout.split("\f")
    last = [page for page in pages if page.strip()][-1]
    assert "Generated by" in last and "=2" in last.replace(" ", ""), pages


def test_a_chain_writes_batch_norms_parameters_as_gamma_and_beta(capsys):
    spec = ('{"input": [3], "layers": [{"layer": "linear", "in_features": 3, "out_features": 2},'
            ' {"layer": "batchnorm1d", "num_features": 2}]}')
    assert main(["latex", "sequential", "--batch", "2", "--spec", spec]) == 0
    document = capsys.readouterr().out
    worked = document.split(r"\section{A worked example in numbers}")[1]
    assert r"\gamma^{[2]}" in worked and r"\beta^{[2]}" in worked
    assert r"\gamma^{[2]}" in document.split(r"\section{A worked example in numbers}")[0]
    assert "weight2" not in document and "bias2" not in document
