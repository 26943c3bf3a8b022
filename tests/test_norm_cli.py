"""The normalisations from the command line, in process: derive, generate, latex, html and
check-impl with its named mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from symbackprop.cli import main

STUDENT = Path(__file__).with_name("student_norm.py")


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_derive_prints_the_statistics_the_elements_and_the_proven_rule(capsys):
    code, out, _ = run(capsys, "derive", "batchnorm1d", "--batch", "3")
    assert code == 0
    assert "mu1      = (x11 + x21 + x31)/3" in out
    assert "sigma1^2 = ((x11 - mu1)^2 + (x21 - mu1)^2 + (x31 - mu1)^2)/3" in out
    assert "z11 = beta1 + gamma1 (x11 - mu1) / sqrt(sigma1^2 + eps)" in out
    assert "dL/dx = (gamma / (m sigma)) (m g - sum g - xhat sum(g xhat))" in out
    assert "(proven symbolically on 6 elements)" in out
    assert "dL/dbeta1 = g11 + g21 + g31" in out
    assert "dx     = dxc + dmu / m" in out  # the backward walk, node by node


def test_a_normalisation_without_gamma_brackets_the_centred_input(capsys):
    code, out, _ = run(capsys, "derive", "instancenorm2d", "--num-features", "1", "--input",
                       "1x3")
    assert code == 0 and "z11 = (x11 - mu11) / sqrt(sigma11^2 + eps)" in out


def test_derive_in_evaluation_mode_reads_the_running_statistics(capsys):
    code, out, _ = run(capsys, "derive", "batchnorm2d", "--eval", "--input", "1x2")
    assert code == 0
    assert "running_mean1" in out and "not differentiated" in out
    assert "dL/dx = gamma g / sqrt(running_var + eps)" in out


@pytest.mark.parametrize("argv, message", [
    (["derive", "batchnorm2d", "--num-features", "0"], "num_features must be"),
    (["derive", "groupnorm", "--num-groups", "3"], "divisible by num_groups"),
    (["derive", "layernorm", "--normalized-shape", "2x0"], "normalized_shape"),
    (["derive", "batchnorm2d", "--input", "3x2x2"], "C = num_features = 2"),
    (["derive", "batchnorm2d", "--eps", "-1"], "eps must be a finite number > 0"),
])
def test_bad_options_are_one_line_errors(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_generate_latex_and_html(capsys, tmp_path):
    code, out, _ = run(capsys, "generate", "groupnorm", "--num-groups", "2", "--num-channels",
                       "4", "--output", str(tmp_path))
    assert code == 0 and (tmp_path / "groupnorm_g2_c4.py").exists()
    tex = tmp_path / "bn.tex"
    code, _, _ = run(capsys, "latex", "batchnorm1d", "--batch", "3", "-o", str(tex))
    text = tex.read_text()
    assert code == 0 and r"\section{The computational graph}" in text
    assert "The backward walk, node by node" in text and "symbolically" in text
    page = tmp_path / "ln.html"
    code, _, _ = run(capsys, "html", "layernorm", "--normalized-shape", "3", "--batch", "2",
                     "-o", str(page))
    assert code == 0 and "inverse deviation" in page.read_text()


def test_printouts_of_evaluation_mode_and_their_regenerate_commands(capsys, tmp_path):
    page = tmp_path / "eval.html"
    assert run(capsys, "html", "batchnorm2d", "--eval", "--input", "1x2", "-o", str(page))[0] == 0
    assert "running mean (given, a constant)" in page.read_text()
    tex = tmp_path / "bn.tex"
    assert run(capsys, "latex", "batchnorm1d", "--batch", "2", "-o", str(tex))[0] == 0
    # (N, C): no --input, which would add a length axis
    assert "%%   symbackprop latex batchnorm1d --num-features 2 --batch 2\n" in tex.read_text()


@pytest.mark.parametrize("function, mistake", [
    ("right", None),
    ("per_sample", "spatial batch norm reduced over the wrong axes"),
])
def test_check_impl_names_the_mistake(capsys, function, mistake):
    code, out, _ = run(capsys, "check-impl", f"{STUDENT}:{function}", "batchnorm2d")
    assert code == (0 if mistake is None else 1), out
    if mistake is not None:
        assert f"likely mistake: {mistake}" in out


@pytest.mark.parametrize("function, changes", [
    ("no_gamma", dict(scale=False)),
    ("constants", dict(through_mean=False, through_variance=False)),
    ("unbiased", dict(variance_divisor=lambda m: m - 1)),
])
def test_each_mistake_is_the_graph_with_one_piece_changed(function, changes):
    """The mistakes check-impl names are what the student functions compute (no child
    process: the functions are called here)."""
    import importlib.util

    import numpy as np

    from symbackprop import BatchNorm2d
    from symbackprop.kinds.normalization.check import graph_backward

    spec = importlib.util.spec_from_file_location("student_norm", STUDENT)
    student = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(student)
    rng = np.random.default_rng(2)
    x, g = rng.standard_normal((3, 2, 2, 3)), rng.standard_normal((3, 2, 2, 3))
    weight, bias = rng.standard_normal(2), rng.standard_normal(2)
    layer = BatchNorm2d(2)
    right = graph_backward(layer, x, g, weight)
    np.testing.assert_allclose(student.right(x, weight, bias, g)[0], right[0], atol=1e-12)
    wrong = graph_backward(layer, x, g, weight, **changes)
    np.testing.assert_allclose(getattr(student, function)(x, weight, bias, g)[0], wrong[0],
                               atol=1e-12)
    assert not np.allclose(wrong[0], right[0])
