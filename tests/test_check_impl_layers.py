"""check-impl for activations, flatten and the fully connected layer (issue 14): the
right backward passes of tests/student_layers.py pass, each wrong one is found and its
named mistake recognised; the truth is SymPy's derivation evaluated at the same numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import student_layers as student

from symbackprop import Flatten, Linear, check_impl
from symbackprop.kinds import LeakyReLU, ReLU, Sigmoid, Tanh
from symbackprop.kinds.activation.check import input_with_zeros

STUDENT_FILE = str(Path(student.__file__))


@pytest.mark.parametrize("layer, function", [
    (ReLU(), student.relu_backward),
    (LeakyReLU(0.2), student.leaky_relu_backward),
    (Sigmoid(), student.sigmoid_backward),
    (Tanh(), student.tanh_backward),
    (Flatten(), student.flatten_backward),
    (Linear(3, 2), student.linear_backward),
    (Linear(3, 3), student.linear_backward),
    (Linear(4, 2, bias=False), student.linear_backward),
])
def test_right_backward_passes_agree(layer, function):
    result = check_impl(layer, function)
    assert result.ok, result.report()
    assert result.mistakes == {}
    assert result.report().startswith("correct:")


@pytest.mark.parametrize("layer, function, gradient, mistake", [
    (ReLU(), student.relu_backward_at_zero, "x",
     "f'(0) taken from the right (x >= 0 instead of x > 0)"),
    (LeakyReLU(0.2), student.leaky_relu_backward_at_zero, "x",
     "f'(0) taken from the right (x >= 0 instead of x > 0)"),
    (Sigmoid(), student.sigmoid_backward_at_output, "x",
     "f' evaluated at the output instead of the input"),
    (Tanh(), student.tanh_backward_at_output, "x",
     "f' evaluated at the output instead of the input"),
    (Sigmoid(), student.sigmoid_backward_output_formula_on_input, "x",
     "f' written with the output but applied to the input"),
    (Tanh(), student.tanh_backward_output_formula_on_input, "x",
     "f' written with the output but applied to the input"),
    (Linear(3, 3), student.linear_backward_w_not_transposed, "x", "W instead of W^T"),
    (Linear(3, 2), student.linear_backward_grad_w_not_transposed, "w",
     "grad_w not transposed"),
    (Linear(3, 3), student.linear_backward_grad_w_not_transposed, "w",
     "grad_w not transposed"),
    (Linear(3, 2), student.linear_backward_bias_one_sample, "b",
     "bias not summed over the batch"),
    (Linear(3, 2), student.linear_backward_bias_mean, "b", "bias not summed over the batch"),
])
def test_each_named_mistake_is_recognised(layer, function, gradient, mistake):
    result = check_impl(layer, function)
    assert not result.ok
    assert result.wrong_gradients == (gradient,)
    assert {name: m.name for name, m in result.mistakes.items()} == {gradient: mistake}
    assert f"likely mistake: {mistake}" in result.report()


def test_a_wrong_pass_without_a_known_mistake_is_wrong_unnamed():
    result = check_impl(Flatten(), student.flatten_backward_column_major)
    assert not result.ok and result.wrong_gradients == ("x",) and result.mistakes == {}
    assert "likely mistake" not in result.report()


def test_relu_inputs_hold_zeros_where_the_derivative_has_its_corner():
    # without exact zeros, x >= 0 and x > 0 would agree on every input
    x = input_with_zeros(np.random.default_rng(0), (2, 3, 4))
    assert 1 <= (x == 0).sum() < x.size and np.unique(x[x != 0]).size == (x != 0).sum()
    case_inputs = [case.inputs["x"] for case in check_impl(ReLU(), student.relu_backward).cases]
    assert all((x == 0).any() for x in case_inputs)


def test_the_mistakes_are_those_of_the_kind_not_another():
    # a correct ReLU is not flagged because f'(f(x)) equals f'(x) for ReLU; the sigmoid's
    # mistakes are not named for a pass that is wrong in another way
    result = check_impl(Sigmoid(), lambda x, g: 2 * g)
    assert not result.ok and result.mistakes == {}


@pytest.mark.parametrize("function, kind, options, status", [
    ("relu_backward", "relu", [], 0),
    ("relu_backward_at_zero", "relu", [], 1),
    ("linear_backward", "linear", ["--in-features", "3", "--out-features", "2"], 0),
    ("linear_backward_bias_mean", "linear", ["--in-features", "3", "--out-features", "2"], 1),
    ("flatten_backward", "flatten", [], 0),
])
def test_command_line(function, kind, options, status):
    done = subprocess.run([sys.executable, "-m", "symbackprop", "check-impl",
                           f"{STUDENT_FILE}:{function}", kind, *options],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == status, done.stdout + done.stderr
    assert done.stdout.startswith("correct:" if status == 0 else "wrong:")
