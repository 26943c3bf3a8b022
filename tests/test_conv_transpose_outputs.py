"""Transposed convolutions in the LaTeX document, the interactive page, check (a formula)
and check-impl (a backward function, its classic mistakes named), run in-process."""

from __future__ import annotations

import re
import shutil
import textwrap

import pytest

from symbackprop import ConvTranspose2d, derive
from symbackprop.cli import main
from symbackprop.render.latex import to_latex

STUDENT = textwrap.dedent('''
    import numpy as np

    def _grads(x, w, g, stride, padding, output_padding, flip=False, stride_one=False,
               forget=False, swap=False):
        s = 1 if stride_one else stride
        if swap:
            w = w.transpose(1, 0, 2)
        if flip:
            w = w[..., ::-1]
        grad_x, grad_w = np.zeros_like(x), np.zeros_like(w)
        end = g.shape[2] - (output_padding if forget else 0)
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                for i in range(x.shape[2]):
                    for o in range(w.shape[1]):
                        for k in range(w.shape[2]):
                            j = i * s - padding + k
                            if 0 <= j < end:
                                grad_x[n, c, i] += g[n, o, j] * w[c, o, k]
                                grad_w[c, o, k] += x[n, c, i] * g[n, o, j]
        if flip:
            grad_w = grad_w[..., ::-1]
        if swap:
            grad_w = grad_w.transpose(1, 0, 2)
        return grad_x, grad_w, g.sum(axis=(0, 2))

    def right(x, w, b, g, stride, padding, output_padding):
        return _grads(x, w, g, stride, padding, output_padding)

    def flipped(x, w, b, g, stride, padding, output_padding):
        return _grads(x, w, g, stride, padding, output_padding, flip=True)

    def stride_one(x, w, b, g, stride, padding, output_padding):
        return _grads(x, w, g, stride, padding, output_padding, stride_one=True)

    def forgot(x, w, b, g, stride, padding, output_padding):
        return _grads(x, w, g, stride, padding, output_padding, forget=True)

    def swapped(x, w, b, g, stride, padding, output_padding):
        return _grads(x, w, g, stride, padding, output_padding, swap=True)
''')

LAYER = ["convtranspose1d", "--in-channels", "2", "--out-channels", "2", "--kernel", "3",
         "--stride", "2", "--padding", "1", "--output-padding", "1"]


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    path = tmp_path_factory.mktemp("student") / "student_convt.py"
    path.write_text(STUDENT)
    return path


@pytest.mark.parametrize("function, verdict", [
    ("right", "correct:"),
    ("flipped", "likely mistake: kernel flipped"),
    ("stride_one", "likely mistake: stride not applied"),
    ("forgot", "likely mistake: output_padding forgotten"),
    ("swapped", "likely mistake: weight not transposed"),
])
def test_check_impl_names_the_classic_mistakes(student, capsys, function, verdict):
    status = main(["check-impl", f"{student}:{function}", *LAYER])
    out = capsys.readouterr().out
    assert verdict in out
    assert status == (0 if function == "right" else 1)


def test_check_accepts_the_right_formula_and_rejects_a_flipped_kernel(capsys):
    layer = ["convtranspose1d", "--input", "3", "--stride", "2", "--kernel", "3",
             "--padding", "1"]
    # one channel in and out: the indices derive shows (the position alone), or all of them
    assert main(["check", *layer, "dL/dx[i] = sum_{k} g[2*i + k - 3] * w[k]"]) == 0
    assert main(["check", *layer, "dL/dx[n,c,i] = sum_{o,k} g[n, o, 2*i + k - 3] * w[c,o,k]"]) \
        == 0
    assert main(["check", *layer, "dL/dx[i] = sum_{k} g[2*i + k - 3] * w[4-k]"]) == 1
    assert "correct: all 3 elements of dL/dx agree" in capsys.readouterr().out


def test_latex_states_the_relations_and_the_matrix():
    text = to_latex(derive(ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1),
                           (2, 2)))
    assert r"\section{The convolution it is the transpose of}" in text
    assert r"\section{The matrix view}" in text
    assert r"C = {\scriptsize \begin{bmatrix}" in text
    assert "Verified:} the unrolled matrix of Conv2d" in text
    assert "NOT verified" not in text
    assert text.count(r"\textbf{Verified} on all") == 7


def test_latex_and_html_from_the_command_line(tmp_path, capsys):
    for dims, size in ((1, "4"), (3, "2x2x2")):
        tex, page = tmp_path / f"t{dims}.tex", tmp_path / f"t{dims}.html"
        base = [f"convtranspose{dims}d", "--stride", "2", "--input", size]
        assert main(["latex", *base, "--output", str(tex)]) == 0
        assert main(["html", *base, "--output", str(page)]) == 0
        assert "Backpropagation through a" in tex.read_text()
        assert "transposed convolution" in page.read_text()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_a_document_compiles_without_errors_or_overfull_lines(tmp_path):
    layer, size = ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1), (2, 2)
    from symbackprop.render.latex import compile_pdf, write_document

    tex = write_document(to_latex(derive(layer, size)), tmp_path / "doc.tex")
    compile_pdf(tex, log=tex.with_suffix(".log"))
    log = tex.with_suffix(".log").read_text(errors="replace")
    assert not re.search(r"^! ", log, flags=re.M)
    assert "Overfull \\hbox" not in log
