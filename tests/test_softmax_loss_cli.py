"""Softmax, LogSoftmax, CrossEntropyLoss and MSELoss from the command line (in process),
check and check-impl with their named mistakes, and softmax inside a chain."""

from __future__ import annotations

import numpy as np
import pytest
import reference_softmax_loss as ref

import symbackprop as sbp
from symbackprop.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as stop:
        status = stop.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_derive_softmax_shows_the_denominators_and_the_proofs(capsys):
    status, out, _ = run(capsys, "derive", "softmax", "--batch", "2")
    assert status == 0
    assert "z11 = exp(x11) / (exp(x11) + exp(x12) + exp(x13))" in out
    assert "dL/dx11 = g11 z11 (1 - z11) - g12 z11 z12 - g13 z11 z13" in out
    assert "proven on 9 pairs (j, k), symbolically" in out
    assert "dL/dx = z * (g - sum(g * z))" in out and "not diagonal" in out


def test_derive_log_softmax(capsys):
    status, out, _ = run(capsys, "derive", "logsoftmax", "--input", "2x2", "--dim", "-1")
    assert status == 0
    assert "z11 = x11 - log(exp(x11) + exp(x12))" in out
    assert "dL/dx11 = g11 (1 - p11) - g12 p11" in out
    assert out.count("symbolically") == 2


def test_derive_cross_entropy_with_an_ignored_sample(capsys):
    status, out, _ = run(capsys, "derive", "crossentropyloss", "--batch", "3",
                         "--classes", "1,-100,2")
    assert status == 0
    assert "z = (log(exp(x11) + exp(x12) + exp(x13)) - x12 + " \
           "log(exp(x31) + exp(x32) + exp(x33)) - x33) / 2" in out
    assert "dL/dx12 = -g (1 - p12)/2" in out and "dL/dx11 = g p11/2" in out
    assert "dL/dx21 = 0" in out and "count = 2" in out
    assert "dL/dx = g (softmax(x) - onehot(y)) / count, 0 for an ignored sample: proven " \
           "on 9 elements, symbolically" in out


def test_derive_mse(capsys):
    status, out, _ = run(capsys, "derive", "mseloss", "--input", "2", "--reduction", "sum")
    assert status == 0
    assert "z = (x1 - y1)^2 + (x2 - y2)^2" in out and "dL/dx = 2 g (x - y)" in out


@pytest.mark.parametrize("argv, message", [
    (["derive", "softmax", "--dim", "3"], "dim = 3 is not an axis of a 2-axis input"),
    (["derive", "softmax", "--dim", "x"], "--dim"),
    (["derive", "crossentropyloss", "--classes", "0,1"], "target: 2 classes given for 1"),
    (["derive", "crossentropyloss", "--classes", "5"], "target: class 5 is not in [0, 2]"),
    (["derive", "crossentropyloss", "--label-smoothing", "1.5"], "label_smoothing must be"),
    (["derive", "crossentropyloss", "--input", "1x2x3x4"], "input"),
    (["generate", "sequential", "--spec", '[{"layer": "linear", "in_features": 3, '
      '"out_features": 2}, {"layer": "crossentropyloss"}]', "--print"],
     "takes targets, which a generated chain module does not pass"),
])
def test_bad_requests_are_one_line_errors(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, name", [
    (["softmax"], "softmax_dim1.py"), (["logsoftmax", "--dim", "-1"], "logsoftmax_dimm1.py"),
    (["crossentropyloss", "--weighted", "--label-smoothing", "0.1", "--reduction", "sum"],
     "crossentropyloss_sum_ls0p1_weighted.py"),
    (["mseloss", "--reduction", "none"], "mseloss_none.py")])
def test_generate_writes_the_module(capsys, tmp_path, argv, name):
    status, out, _ = run(capsys, "generate", *argv, "-o", str(tmp_path))
    assert status == 0 and (tmp_path / name).is_file()
    source = " ".join((tmp_path / name).read_text().split())
    assert "symbackprop generate " + argv[0] in source
    assert "proved the rule for dL/dx" in source


def test_latex_and_html(capsys, tmp_path):
    status, out, _ = run(capsys, "latex", "crossentropyloss", "--batch", "2",
                         "--label-smoothing", "0.1")
    assert status == 0 and r"\operatorname{onehot}" not in out.split("Written out")[0][-10:]
    assert r"a_{ic}" in out and "symbolically" in out
    status, out, _ = run(capsys, "latex", "softmax")
    assert status == 0 and r"\frac{e^{x_{1}}}{e^{x_{1}} + e^{x_{2}} + e^{x_{3}}}" in out
    for kind in ("softmax", "logsoftmax", "crossentropyloss", "mseloss"):
        status, _, _ = run(capsys, "html", kind, "--batch", "2", "-o",
                           str(tmp_path / f"{kind}.html"))
        assert status == 0 and (tmp_path / f"{kind}.html").stat().st_size > 1000


def test_check_formula_of_softmax(capsys):
    right = r"\frac{\partial E}{\partial a^{l-1}_{i}} = a^{l}_{i} (\delta^{l}_{i} - " \
            r"\sum_j \delta^{l}_{j} a^{l}_{j})"
    status, out, _ = run(capsys, "check", "softmax", right)
    assert status == 0 and out.startswith("correct")
    diagonal = r"\frac{\partial E}{\partial a^{l-1}_{i}} = \delta^{l}_{i} a^{l}_{i} (1 - a^{l}_{i})"
    status, out, _ = run(capsys, "check", "softmax", diagonal)
    assert status == 1 and "3 of 3 elements" in out


# -- check-impl --------------------------------------------------------------------------
def _softmax(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def softmax_right(x, grad_out, dim=1):
    s = _softmax(x, dim)
    return s * (grad_out - (grad_out * s).sum(axis=dim, keepdims=True))


def softmax_diagonal(x, grad_out, dim=1):
    s = _softmax(x, dim)
    return grad_out * s * (1 - s)


def log_softmax_without_sum(x, grad_out, dim=1):
    return grad_out - _softmax(x, dim)


def _ce_parts(x, target, weight, ignore_index):
    p = _softmax(x, 1)
    counted = target != ignore_index
    safe = np.where(counted, target, 0)
    onehot = np.zeros_like(x)
    np.put_along_axis(onehot, np.expand_dims(safe, 1), 1.0, axis=1)
    onehot *= np.expand_dims(counted, 1)
    w = np.ones(x.shape[1]) if weight is None else weight
    return p, onehot, counted, w[safe] * counted


def ce_right(x, target, weight, grad_out, ignore_index=-100):
    p, onehot, _, w_y = _ce_parts(x, target, weight, ignore_index)
    return (p - onehot) * np.expand_dims(w_y, 1) * grad_out / w_y.sum()


def ce_divided_by_everyone(x, target, weight, grad_out, ignore_index=-100):
    p, onehot, counted, w_y = _ce_parts(x, target, weight, ignore_index)
    return (p - onehot) * np.expand_dims(w_y, 1) * grad_out / counted.size


def ce_onehot_only(x, target, weight, grad_out, ignore_index=-100):
    _, onehot, counted, _ = _ce_parts(x, target, weight, ignore_index)
    return -onehot * grad_out / counted.sum()


def mse_half(x, y, grad_out):
    return (x - y) * grad_out / x.size


@pytest.mark.parametrize("layer, function, mistake", [
    (sbp.Softmax(1), softmax_right, None),
    (sbp.Softmax(-1), softmax_diagonal, "the softmax Jacobian taken as diagonal"),
    (sbp.LogSoftmax(1), log_softmax_without_sum, "log-softmax gradient missing the sum(g) term"),
    (sbp.CrossEntropyLoss(), ce_right, None),
    (sbp.CrossEntropyLoss(weighted=True), ce_right, None),
    (sbp.CrossEntropyLoss(), ce_divided_by_everyone,
     "the mean not divided by the number of counted samples"),
    (sbp.CrossEntropyLoss(), ce_onehot_only, "the one-hot subtracted without the softmax"),
    (sbp.MSELoss(), mse_half, "the factor 2 missing"),
])
def test_check_impl_names_the_mistake(layer, function, mistake):
    # one size keeps the test quick (the default sizes run on the command line);
    # 3 x 2: samples with positions, the second one's target ignored for a loss
    loss = isinstance(layer, (sbp.CrossEntropyLoss, sbp.MSELoss))
    result = sbp.check_impl(layer, function, sizes=[(3, 2) if loss else (3,)])
    assert result.ok is (mistake is None)
    if mistake is not None:
        assert result.mistakes["x"].name == mistake
        assert mistake in result.report()


# -- softmax in a chain ------------------------------------------------------------------
def test_softmax_in_a_chain():
    chain = sbp.Sequential(sbp.Linear(3, 4), sbp.Softmax(1))
    derivation = sbp.derive(chain, None, 2)
    assert len(derivation.steps) == 2
    from symbackprop.render.text import to_text

    text = to_text(derivation)
    assert "delta1 = a2 * (delta2 - sum(delta2 * a2))" in text
    module = sbp.load(chain)
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3)), rng.standard_normal(4)
    g = rng.standard_normal((5, 4))
    net = x @ w.T + b
    np.testing.assert_allclose(module.forward(x, w, b), ref.softmax(net, 1), rtol=1e-12)
    delta1 = ref.softmax_backward(net, g, 1)
    grad_x, grad_w, grad_b = module.backward(x, w, b, g)
    np.testing.assert_allclose(grad_x, delta1 @ w, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad_w, delta1.T @ x, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(grad_b, delta1.sum(axis=0), rtol=1e-10, atol=1e-14)
