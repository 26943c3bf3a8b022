"""check-impl and check of residual blocks: a correct backward function, the identity path
forgotten (named), against the chain's derivation evaluated at numbers."""

from __future__ import annotations

import numpy as np
from reference_residual import backward, backward_identity_forgotten
from test_cli import run

import symbackprop as sbp
from symbackprop.check.impl import ChainNumericGradients
from symbackprop.core.layers import Residual, Sequential
from symbackprop.kinds import Conv2d, Linear, ReLU, Tanh

BLOCK = [("conv", 1, 1), ("relu",), ("conv", 1, 1)]
LAYER = Residual([Conv2d(1, 1, kernel_size=3, padding=1), ReLU(),
                  Conv2d(1, 1, kernel_size=3, padding=1)])


def _params(w1, b1, w3, b3):
    return [[{"w": w1, "b": b1}, {}, {"w": w3, "b": b3}]]


def right(x, w1, b1, w3, b3, grad_out):
    grad_x, grads = backward([("residual", BLOCK)], _params(w1, b1, w3, b3), x, grad_out)
    (first, _, third), = grads
    return grad_x, first["w"], first["b"], third["w"], third["b"]


def identity_forgotten(x, w1, b1, w3, b3, grad_out):
    _, *grads = right(x, w1, b1, w3, b3, grad_out)
    return (backward_identity_forgotten([("residual", BLOCK)], _params(w1, b1, w3, b3), x,
                                        grad_out), *grads)


def test_a_right_backward_is_correct():
    result = sbp.check_impl(LAYER, right)
    assert result.ok, result.report()
    assert result.gradients == ("x", "w1", "b1", "w3", "b3")


def test_the_identity_path_forgotten_is_named():
    result = sbp.check_impl(LAYER, identity_forgotten)
    assert not result.ok and result.wrong_gradients == ("x",)
    assert result.mistakes["x"].name == "the identity path forgotten"
    assert "likely mistake: the identity path forgotten" in result.report()


def test_the_chain_truth_matches_the_reference():
    """The numbers check-impl judges by, for a chain with a block inside."""
    chain = Sequential(Linear(3, 3), Residual([Linear(3, 3), Tanh()]), ReLU())
    truth = ChainNumericGradients(sbp.derive(chain, 3, 2))
    rng = np.random.default_rng(4)
    values = {"x": rng.standard_normal((2, 3)), "g": rng.standard_normal((2, 3)),
              **{name: rng.standard_normal(shape)
                 for name, shape in chain.parameter_shapes.items()}}
    got = truth(values)
    network = [("linear",), ("residual", [("linear",), ("tanh",)]), ("relu",)]
    params = [{"w": values["w1"], "b": values["b1"]},
              [{"w": values["w2"], "b": values["b2"]}, {}], {}]
    grad_x, grads = backward(network, params, values["x"], values["g"])
    np.testing.assert_allclose(got["x"], grad_x, atol=1e-12)
    np.testing.assert_allclose(got["w1"], grads[0]["w"], atol=1e-12)
    np.testing.assert_allclose(got["w2"], grads[1][0]["w"], atol=1e-12)
    np.testing.assert_allclose(got["b2"], grads[1][0]["b"], atol=1e-12)


STUDENT = '''import numpy as np

def backward(x, w1, b1, grad_out):
    d = grad_out * (1 - np.tanh(x @ w1.T + b1) ** 2)
    return grad_out + d @ w1, d.T @ x, d.sum(axis=0)

def backward_block_only(x, w1, b1, grad_out):
    d = grad_out * (1 - np.tanh(x @ w1.T + b1) ** 2)
    return d @ w1, d.T @ x, d.sum(axis=0)
'''
SPEC = '[{"layer": "linear", "in_features": 3, "out_features": 3}, {"layer": "tanh"}]'


def test_check_impl_on_the_command_line(tmp_path):
    path = tmp_path / "student_residual.py"
    path.write_text(STUDENT)
    result = run("check-impl", f"{path}:backward", "residual", "--spec", SPEC)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run("check-impl", f"{path}:backward_block_only", "residual", "--spec", SPEC)
    assert result.returncode == 1
    assert "likely mistake: the identity path forgotten" in result.stdout


def test_check_a_formula_names_the_missing_identity_path():
    spec = '[{"layer": "residual", "block": ' + SPEC + "}]"
    formula = r"\frac{\partial L}{\partial a^{[0]}_{1}} = \delta^{[1]}_1 w^{[1]}_{11} + " \
              r"\delta^{[1]}_2 w^{[1]}_{21} + \delta^{[1]}_3 w^{[1]}_{31}"
    result = run("check", "sequential", "--spec", spec, "--input", "3", formula)
    assert result.returncode == 1
    assert r"missing:  \delta^{[3]}_1" in result.stdout
    assert r"note: the identity path is missing: a^{[0]} is a residual block's input" \
        in result.stdout
    assert r"its error term is the block's path plus \delta^{[3]}" in result.stdout
    result = run("check", "sequential", "--spec", spec, "--input", "3",
                 formula + r" + \delta^{[3]}_1")
    assert result.returncode == 0, result.stdout
