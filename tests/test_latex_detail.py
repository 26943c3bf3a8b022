"""Which elements a printout writes out (``--detail``), and the compact chain document.

The shapes of sum are checked against the derivation itself: an independent grouping of
the element sums (their kernel offsets up to translation), the numbers of terms SymPy
derived, and ``sympy.diff`` for the fully connected layer's matrix form.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest
import sympy

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.core.naming import element_symbol, parse_element
from symbackprop.core.rules import proofs_for
from symbackprop.kinds.linear import rules as linear_rules
from symbackprop.render.latex import (
    DETAILS,
    compile_pdf,
    element_classes,
    select_elements,
    to_latex,
)

#: The lecturer's multi-channel stride-2 convolution of the issue.
STRIDE2 = sbp.Conv2d(2, 2, kernel_size=3, stride=2, padding=1)
#: The small conv-relu-pool-flatten-linear chain on 8x8 inputs of the issue.
CHAIN_SPEC = ('{"input": [1, 8, 8], "layers": [{"layer": "conv2d", "in_channels": 1, '
              '"out_channels": 2, "kernel_size": 3}, {"layer": "relu"}, {"layer": "maxpool2d", '
              '"kernel_size": 2}, {"layer": "flatten"}, {"layer": "linear", "in_features": 18, '
              '"out_features": 3}]}')


@pytest.fixture(scope="module")
def stride2():
    return sbp.derive(STRIDE2, (5, 5))


def _rows(part: str) -> list[str]:
    """The equations of the first ``alignat*`` listing in ``part``, one string each."""
    block = part.split(r"\begin{alignat*}")[1].split(r"\end{alignat*}")[0]
    return [row for row in re.split(r"(?m)^(?=\\frac\{\\partial L\})", block)
            if row.startswith(r"\frac")]


def _terms(expression) -> int:
    expression = sympy.sympify(expression)
    return 0 if expression == 0 else len(sympy.Add.make_args(expression))


def _offsets_up_to_translation(expression) -> frozenset:
    """The kernel taps ``(o, c, m, k)`` of a ``dL/dx`` sum, shifted to start at 0: written
    here from the sum's factors, independently of the package's grouping."""
    taps = [parse_element(factor)[1] for term in sympy.Add.make_args(expression)
            for factor in sympy.Mul.make_args(term)
            if parse_element(factor) and parse_element(factor)[0] == "w"]
    low = np.min(np.array(taps), axis=0)
    return frozenset(tuple(int(v) for v in np.array(tap) - low) for tap in taps)


def test_stride2_shapes_are_the_kernel_offset_patterns_of_the_derivation(stride2):
    grad_x = stride2.grad_x
    classes = element_classes(grad_x, stride2.input_shape, tuple(stride2.params),
                              stride2.notation().shapes)
    # the counts partition the array
    assert sum(group.count for group in classes) == int(np.prod(stride2.input_shape)) == 50
    # the same grouping, done here from the kernel taps of each sum
    groups = Counter(_offsets_up_to_translation(grad_x[index])
                     for index in np.ndindex(*stride2.input_shape))
    assert sorted(group.count for group in classes) == sorted(groups.values())
    # each class's first element has the terms and the taps of its class
    for group in classes:
        assert group.terms == _terms(grad_x[group.index])
        assert groups[_offsets_up_to_translation(grad_x[group.index])] == group.count
    # every number of terms stride 2 produces (1 and 2 taps a row, times 2 channels) shows
    shown = {_terms(grad_x[group.index]) for group in classes}
    assert shown == {_terms(grad_x[index]) for index in np.ndindex(*stride2.input_shape)}
    assert shown == {2, 4, 8}
    assert [group.count for group in classes] == [18, 12, 12, 8]  # "9 elements" a channel


def test_the_stride2_document_shows_every_shape_with_its_count(stride2):
    doc = to_latex(stride2)
    x_part = doc.split(r"\subsection*{Input $x$}")[1].split(r"\subsection*{Kernel")[0]
    rows = _rows(x_part)
    counts = [int(re.search(r"\\tag\*\{\\small (\d+) elements?", row).group(1)) for row in rows]
    assert counts == [18, 12, 12, 8]
    assert "$x$: 50 elements in 4 shapes of sum" in x_part
    # terms written out: the 2-, 4- and 8-term sums (both output channels in each)
    assert sorted(row.split(r"\tag")[0].count("g^{(") for row in rows) == [2, 4, 4, 8]
    # every input channel appears in the written-out forward sums (none cut off)
    forward = doc.split(r"\section{Forward pass}")[1].split(r"\section{Backward")[0]
    assert r"\cdots" not in forward
    assert "x^{(1)}" in forward and "x^{(2)}" in forward
    assert "o = 1, 2" in x_part  # the outputs of both channels an element feeds


@pytest.mark.parametrize("detail", ["brief", "full"])
def test_brief_writes_the_widest_element_and_full_every_element(stride2, detail):
    doc = to_latex(stride2, detail=detail)
    x_part = doc.split(r"\subsection*{Input $x$}")[1].split(r"\subsection*{Kernel")[0]
    w_part = doc.split(r"\subsection*{Kernel $w$}")[1].split(r"\subsection*{Bias")[0]
    x_rows, w_rows = _rows(x_part), _rows(w_part)
    if detail == "full":
        assert (len(x_rows), len(w_rows)) == (50, 36)
        assert "shapes of sum" not in doc
    else:
        assert (len(x_rows), len(w_rows)) == (1, 1)
        widest = max(_terms(e) for e in sympy.flatten(stride2.grad_x.tolist()))
        (index,) = select_elements(stride2.grad_x, stride2.input_shape, "brief").indices
        assert _terms(stride2.grad_x[index]) == widest == 8
        assert "written out is the first with the most terms" in x_part
    assert ("--detail" in doc) == (detail != "pattern")  # the regenerate command says it


def test_batch_norm_writes_one_element_of_each_array():
    derivation = sbp.derive(sbp.BatchNorm2d(2), (2, 2), batch=2)
    doc = to_latex(derivation)
    backward = doc.split(r"\subsection*{Input $x$}")[1]
    assert len(re.findall(r"^\\frac\{\\partial L\}\{\\partial x", backward, flags=re.M)) == 1
    assert r"\small 16 elements" in backward
    assert "all with one shape of sum" in backward
    # and every element of the whole group really has the same number of terms
    assert len({_terms(e) for e in sympy.flatten(derivation.grad_x.tolist())}) == 1


def test_max_pooling_tells_the_window_positions_apart():
    derivation = sbp.derive(sbp.MaxPool2d(2), (4, 4))
    classes = element_classes(derivation.grad_x, derivation.input_shape, (),
                              derivation.notation().shapes)
    assert [group.index[2:] for group in classes] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [group.count for group in classes] == [4, 4, 4, 4]


def test_the_matrix_form_of_a_fully_connected_layer_is_proven():
    layer = sbp.Linear(3, 2)
    derivation = sbp.derive(layer, 3, batch=2)
    proofs = proofs_for(derivation)
    assert [(p.name, p.holds, p.checked) for p in proofs] == [
        ("grad_x", True, 6), ("grad_w", True, 6), ("grad_b", True, 2)]
    # the matrix forms equal sympy.diff of L = sum g z, z written here by hand
    x = lambda n, f: element_symbol("x", (n, f))  # noqa: E731
    w = lambda o, f: element_symbol("w", (o, f))  # noqa: E731
    g = lambda n, o: element_symbol("g", (n, o))  # noqa: E731
    loss = sum(g(n, o) * (sum(w(o, f) * x(n, f) for f in range(3)) + element_symbol("b", (o,)))
               for n in range(2) for o in range(2))
    forms = linear_rules.matrix_forms(derivation)
    for (o, f) in np.ndindex(2, 3):
        assert sympy.expand(forms["grad_w"][o, f] - sympy.diff(loss, w(o, f))) == 0
    for (n, f) in np.ndindex(2, 3):
        assert sympy.expand(forms["grad_x"][n, f] - sympy.diff(loss, x(n, f))) == 0
    # a wrong form (x not transposed: x g^T summed the other way) is refused
    wrong = {**forms, "grad_w": forms["grad_w"][:, ::-1]}
    original = linear_rules.matrix_forms
    try:
        linear_rules.matrix_forms = lambda derivation: wrong
        assert not dict((p.name, p.holds) for p in linear_rules.prove_matrix_form(
            derivation))["grad_w"]
    finally:
        linear_rules.matrix_forms = original
    doc = to_latex(derivation)
    assert r"\frac{\partial L}{\partial w} = \sum_n g_n\, {x_n}^{T}" in doc
    assert r"\textbf{Verified:} equal to the sums below on all 14 elements" in doc


def test_cli_detail_option(capsys, tmp_path):
    with pytest.raises(SystemExit) as done:
        main(["latex", "conv2d", "--help"])
    assert done.value.code == 0
    assert "(default pattern)" in " ".join(capsys.readouterr().out.split())
    with pytest.raises(SystemExit) as done:
        main(["latex", "conv2d", "--detail", "some"])
    assert done.value.code == 2
    assert "--detail: invalid choice" in capsys.readouterr().err
    assert main(["latex", "relu", "--input", "6x6", "--detail", "full"]) == 0
    out = capsys.readouterr().out
    sums = out.split(r"\section{A worked example in numbers}")[0]
    assert len(re.findall(r"^z_\{", sums, flags=re.M)) == 36
    assert "--detail full" in out.splitlines()[1]
    assert set(DETAILS) == {"brief", "pattern", "full"}


@pytest.fixture(scope="module")
def chain_document() -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["latex", "sequential", "--spec", CHAIN_SPEC]) == 0
    return out.getvalue()


def test_the_chain_writes_one_element_of_each_shape(chain_document):
    doc = chain_document
    linear = doc.split(r"\section{Layer 5")[1]
    # the fully connected layer: the matrix form, verified, and one element per gradient
    assert r"\frac{\partial L}{\partial w^{[5]}} = \delta^{[5]}\, {a^{[4]}}^{T}" in linear
    assert r"\textbf{Verified:}" in linear
    assert len(re.findall(r"^\\frac\{\\partial L\}\{\\partial w\^\{\[5\]\}", linear,
                          flags=re.M)) == 1
    assert r"\small 54 elements" in linear
    # the walk: one table row a layer
    walk = doc.split(r"\section{Backward, one layer boundary")[1].split(r"\section{Layer 1")[0]
    assert len(re.findall(r"^\d & ", walk, flags=re.M)) == 5
    assert doc.count("Two elements have the same shape of sum") == 1


needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None or
                                    shutil.which("pdfinfo") is None,
                                    reason="pdflatex or pdfinfo is not installed")


@pytest.mark.slow
@needs_pdflatex
def test_the_chain_document_is_short(chain_document, tmp_path):
    tex = tmp_path / "chain.tex"
    tex.write_text(chain_document)
    pdf = compile_pdf(tex)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, flags=re.M).group(1))
    assert 1 <= pages <= 5  # 12 pages before (one equation a weight gradient)
