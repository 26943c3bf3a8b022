"""check-impl of a whole chain: a student's backward through conv, ReLU, max pooling,
flatten and a fully connected layer (tests/student_chain.py), judged gradient by gradient."""

import json

import student_chain as student
from conftest import REPO

from symbackprop import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential, check_impl
from symbackprop.cli import main

FILE = REPO / "tests" / "student_chain.py"
LAYERS = [{"layer": "conv2d", "out_channels": 2, "kernel_size": 3, "padding": 1},
          {"layer": "relu"}, {"layer": "maxpool2d", "kernel_size": 2}, {"layer": "flatten"},
          {"layer": "linear", "in_features": 8, "out_features": 3}]
CHAIN = Sequential(Conv2d(1, 2, kernel_size=3, padding=1), ReLU(), MaxPool2d(2), Flatten(),
                   Linear(8, 3))


def test_a_right_chain_backward_is_correct_and_a_wrong_one_names_its_layers(capsys):
    spec = json.dumps({"input": [1, 4, 4], "layers": LAYERS})
    assert main(["check-impl", f"{FILE}:backward", "sequential", "--spec", spec]) == 0
    out = capsys.readouterr().out
    assert "(grad_x, grad_w1, grad_b1, grad_w5, grad_b5) agrees" in out
    assert main(["check-impl", f"{FILE}:backward_relu_forgotten", "sequential",
                 "--spec", spec]) == 1
    out = capsys.readouterr().out
    assert "returns a wrong grad_x and grad_w1 and grad_b1" in out  # layer 1, not layer 5
    assert "grad_w5 ok" in out and "grad_b5 ok" in out


def test_python_api_and_input_sizes():
    assert check_impl(CHAIN, student.backward, sizes=[(1, 4, 4)]).ok
    wrong = check_impl(CHAIN, student.backward_relu_forgotten, sizes=[(1, 4, 4)])
    assert wrong.wrong_gradients == ("x", "w1", "b1")


def test_a_chain_whose_first_layer_sizes_do_not_fit_asks_for_the_input(capsys):
    spec = json.dumps(LAYERS)  # no "input": the first layer's sizes do not fit Linear(8)
    assert main(["check-impl", f"{FILE}:backward", "sequential", "--spec", spec]) == 2
    err = capsys.readouterr().err
    assert "give the input size (--input" in err and "Traceback" not in err
    assert main(["check-impl", f"{FILE}:backward", "sequential", "--spec", spec,
                 "--input", "1x4x4"]) == 0
