r"""``check sequential`` with a rule across the chain's layers: the recurrences students
copy from Ng's course (``\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]} \odot g'(z^{[l]})``) and
from the CNN notes (``\delta^{l-1} = \delta^{l} \star \mathrm{rot180}(W^{l}) \odot
f'(z^{l-1})``), right ones judged correct and wrong ones wrong with the mistake named.

The truth the checker uses (the chain's derivation, composed) is itself compared here with
SymPy's own differentiation of the chain written out by hand (``sympy.diff``).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import sympy

from symbackprop import AvgPool2d, Conv2d, Linear, ReLU, Sequential, Sigmoid, check_formula
from symbackprop.check.formula import FormulaError
from symbackprop.cli import main
from symbackprop.core.derivation import derive
from symbackprop.core.naming import to_grid

NG = [{"layer": "linear", "in_features": 2, "out_features": 2}, {"layer": "sigmoid"},
      {"layer": "linear", "in_features": 2, "out_features": 1}]
NG_CHAIN = Sequential(Linear(2, 2), Sigmoid(), Linear(2, 1))
DEEP = [{"layer": "linear", "in_features": 2, "out_features": 2}, {"layer": "sigmoid"},
        {"layer": "linear", "in_features": 2, "out_features": 2}, {"layer": "sigmoid"},
        {"layer": "linear", "in_features": 2, "out_features": 1}]
CNN = {"input": [1, 3, 3], "layers": [{"layer": "conv2d", "kernel_size": 2}, {"layer": "relu"},
                                      {"layer": "conv2d", "kernel_size": 2}]}
LEADING = {"input": [1, 3, 3], "layers": [{"layer": "relu"},
                                          {"layer": "conv2d", "kernel_size": 2}]}
POOL = {"input": [1, 3, 3], "layers": [{"layer": "conv2d", "kernel_size": 2}, {"layer": "relu"},
                                       {"layer": "avgpool2d", "kernel_size": 2}]}


def _run(capsys, spec, text, *options):
    status = main(["check", "sequential", "--spec", json.dumps(spec), *options, text])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


# -- fully connected chains (Ng) ---------------------------------------------------------
@pytest.mark.parametrize("text", [
    r"\delta^{[1]} = W^{[2]T}\delta^{[2]} \odot g'(z^{[1]})",
    r"dZ^{[1]} = W^{[2]T} dZ^{[2]} * g^{[1]\prime}(Z^{[1]})",
    r"\delta^{[1]} = (W^{[2]})^T \delta^{[2]} \odot \sigma'(z^{[1]})",
    r"\delta^{[1]} = W^{[2]T}\delta^{[2]} \odot a^{[1]}(1-a^{[1]})",
    r"\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]} \odot g'(z^{[l]})",
    r"\frac{\partial L}{\partial z^{[1]}} = W^{[2]T} \frac{\partial L}{\partial z^{[2]}} "
    r"\odot \sigma(z^{[1]})(1-\sigma(z^{[1]}))",
    # the chain's own numbering (every layer counts): delta^{[1]} = dL/da^{[1]}
    r"\delta^{[1]} = W^{[3]T} \delta^{[3]} \odot f'(a^{[1]})",
], ids=["Ng", "dZ", "(W)^T sigma'", "a(1-a)", "with l", "partials", "chain numbering"])
def test_right_recurrences_of_a_fully_connected_chain(capsys, text):
    status, out, err = _run(capsys, NG, text)
    assert status == 0 and out.startswith("correct: "), (out, err)


def test_the_numbering_and_position_used_are_said(capsys):
    _, out, _ = _run(capsys, NG, r"\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]} \odot g'(z^{[l]})")
    assert "note: checked at l = 1, in the course numbering" in out
    assert "l = 1: layers 1-2 of the chain (Linear 2->2, Sigmoid)" in out
    _, out, _ = _run(capsys, NG, r"\delta^{[1]} = W^{[3]T} \delta^{[3]} \odot f'(a^{[1]})")
    assert "in the chain's numbering" in out


@pytest.mark.parametrize("spec, text, mistake", [
    (NG, r"\delta^{[1]} = W^{[2]T}\delta^{[2]}", "the f' factor forgotten"),
    (NG, r"\delta^{[1]} = W^{[2]}\delta^{[2]} \odot g'(z^{[1]})", "W instead of W^T"),
    (NG, r"\delta^{[1]} = W^{[2]T}\delta^{[2]} \odot \sigma'(a^{[1]})",
     "f' evaluated at the output instead of the input"),
    (NG, r"\delta^{[1]} = W^{[2]T}\delta^{[2]} \odot z^{[1]}(1-z^{[1]})",
     "f' written with the output but applied to the input"),
    (DEEP, r"\delta^{[1]} = W^{[2]T}\delta^{[2]} \odot \sigma'(z^{[2]})",
     "f' at the wrong layer's z"),
    # a weight gradient from the next layer's error term, in the chain's numbering: the
    # sigmoid between them forgotten
    (NG, r"\frac{\partial L}{\partial W^{[1]}_{i,j}} = \delta^{[2]}_i a^{[0]}_j",
     "the f' factor forgotten"),
], ids=["f' forgotten", "W not transposed", "a for z", "z(1-z)", "wrong layer's z",
        "weights from a later error term"])
def test_wrong_recurrences_of_a_fully_connected_chain(capsys, spec, text, mistake):
    status, out, err = _run(capsys, spec, text)
    assert status == 1 and out.startswith("wrong: "), (out, err)
    assert f"mistake: {mistake}" in out


def test_a_recurrence_with_l_is_checked_at_every_layer_it_fits_or_at_the_one_asked(capsys):
    text = r"\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]} \odot \sigma'(z^{[l]})"
    status, out, _ = _run(capsys, DEEP, text)
    assert status == 0 and out.startswith("correct: 2 of 2 equations agree")
    assert "equation 1: l = 1: " in out and "equation 2: l = 2: " in out
    status, out, _ = _run(capsys, DEEP, text, "--layer", "2")
    assert status == 0 and "checked at l = 2" in out and "equation" not in out
    # W^T delta alone is right where no activation is between (l = 0: the input), wrong
    # at the hidden layers, with the mistake named there
    status, out, _ = _run(capsys, DEEP, r"\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]}")
    assert status == 1 and out.startswith("wrong: 1 of 3 equations agree")
    assert out.count("mistake: the f' factor forgotten") == 2


@pytest.mark.parametrize("text, options, message", [
    (r"\delta^{[3]} = W^{[4]T}\delta^{[4]} \odot g'(z^{[3]})", (),
     "W^{[4]}: the chain has layers 1 to 3 (a^{[0]} is its input); in the course numbering"
     " (a layer and the activation after it are one layer) the chain's 3 layers are layers "
     "1 to 2"),
    (r"\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]} \odot g'(z^{[l]})", ("--layer", "5"),
     "at l = 5 (--layer): "),
    (r"\delta^{[l]} = W^{[2]T}\delta^{[l+1]}", (), "mixes layer numbers and l"),
    (r"\delta^{[1]} = W^{[2]T}\delta^{[2]}", ("--layer", "1"), "this rule writes no l"),
    (r"\delta^{[2]} = W^{[2]T}\delta^{[1]}", (),
     "is the error term at or before the left side's"),
])
def test_rules_at_layers_the_chain_does_not_have_are_refused(capsys, text, options, message):
    status, out, err = _run(capsys, NG, text, *options)
    assert status == 2 and not out and message in err, err


def test_a_layer_out_of_range_names_the_number_and_the_length():
    with pytest.raises(FormulaError) as caught:
        check_formula(NG_CHAIN, None, r"\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]} \odot "
                                      r"g'(z^{[l]})", at_layer=4)
    assert "l = 4" in caught.value.message and "layers 1 to 2" in caught.value.message
    assert "3 layers" in caught.value.message


def test_the_python_api_takes_the_layer_and_the_numbering():
    text = r"\delta^{[1]} = W^{[2]T}\delta^{[2]} \odot a^{[1]}(1-a^{[1]})"
    assert check_formula(NG_CHAIN, None, text).ok
    assert check_formula(NG_CHAIN, None, text, numbering="course").ok
    with pytest.raises(FormulaError, match="layer 2 has no weights"):
        check_formula(NG_CHAIN, None, text, numbering="chain")
    with pytest.raises(FormulaError, match="--layer and --numbering are for a chain"):
        check_formula(Linear(2, 2), None, r"\delta^{l-1} = W^{lT}\delta^{l}", at_layer=1)


# -- convolution chains (the CNN notes) ----------------------------------------------------
@pytest.mark.parametrize("spec, text", [
    (CNN, r"\delta^{l-1} = \delta^{l} \star \mathrm{rot180}(W^{l}) \odot f'(z^{l-1})"),
    (CNN, r"\delta^{l-1} = \mathrm{conv2}(\delta^{l}, W^{l}, 'full') \odot f'(z^{l-1})"),
    (CNN, r"\delta^{l-1} = \delta^{l} * W^{l} \odot f'(z^{l-1})"),
    (CNN, r"\delta^{[1]} = \operatorname{corr}(\operatorname{pad}_P(\delta^{[2]}), "
          r"\operatorname{rot}_{180}(W^{[2]})) \odot [z^{[1]} > 0]"),
    (LEADING, r"\delta^{l-1} = \delta^{l} \star \mathrm{rot180}(W^{l}) \odot f'(z^{l-1})"),
    (POOL, r"\delta^{l-1} = \mathrm{kron}(\delta^{l}, \mathbf{1}_{2\times 2}) / 4 \odot "
           r"f'(z^{l-1})"),
], ids=["star rot180", "conv2 full", "conv", "printout", "activation first", "mean pooling"])
def test_right_recurrences_of_a_convolution_chain(capsys, spec, text):
    status, out, err = _run(capsys, spec, text)
    assert status == 0 and out.startswith("correct: "), (out, err)


@pytest.mark.parametrize("spec, text, mistake", [
    (CNN, r"\delta^{l-1} = \delta^{l} \star W^{l} \odot f'(z^{l-1})", "kernel not rotated"),
    (CNN, r"\delta^{l-1} = \delta^{l} \star \mathrm{rot180}(W^{l})", "the f' factor forgotten"),
    (POOL, r"\delta^{l-1} = \mathrm{upsample}(\delta^{l}) \odot f'(z^{l-1})",
     "off by a factor: every element is 4 times the right one"),
], ids=["not rotated", "f' forgotten", "mean pooling not divided"])
def test_wrong_recurrences_of_a_convolution_chain(capsys, spec, text, mistake):
    status, out, err = _run(capsys, spec, text, "--show", "0")
    assert status == 1 and f"mistake: {mistake}" in out, (out, err)


def test_convolution_as_star_is_judged_as_check_conv2d_judges_it(capsys):
    """``*`` is the mathematical convolution, which flips the kernel: ``delta * rot180(W)``
    is the correlation with W as it is, not the input's gradient (that is the full
    correlation with the rotated kernel); the verdict, the mistake and the hint are those
    of the one-layer check of the same rule."""
    status, out, _ = _run(capsys, CNN, r"\delta^{l-1} = \delta^{l} * \mathrm{rot180}(W^{l}) "
                                       r"\odot f'(z^{l-1})", "--show", "0")
    chain_mistake = next(line for line in out.splitlines() if line.startswith("mistake:"))
    assert status == 1
    main(["check", "conv2d", "--kernel", "2", "--input", "3x3", "--show", "0",
          r"\delta^{l-1} = \delta^{l} * \mathrm{rot180}(W^{l})"])
    single, _ = capsys.readouterr()
    assert single.startswith("wrong: ")
    assert chain_mistake in single.splitlines()
    assert "rotated twice" in chain_mistake and r"write that * as \star" in chain_mistake


# -- the truth: the chain's derivation equals sympy.diff of the chain written by hand ------
def _points(symbols, seed):
    generator = random.Random(seed)
    return {symbol: sympy.Float(generator.uniform(0.3, 1.5) * generator.choice((1, -1)))
            for symbol in symbols}


def test_the_expected_error_term_of_a_fully_connected_chain_is_sympys():
    derivation = derive(NG_CHAIN, None)
    z1 = to_grid(derivation.steps[0].output).reshape(-1)      # Ng's z^{[1]}
    w3 = to_grid(derivation.params["w3"])
    b3 = to_grid(derivation.params["b3"]).reshape(-1)
    delta3 = to_grid(derivation.steps[2].delta_out).reshape(-1)  # dL/dz^{[2]}
    a1 = [1 / (1 + sympy.exp(-z)) for z in z1]
    z2 = [sum(w3[i, j] * a1[j] for j in range(2)) + b3[i] for i in range(1)]
    loss = sum(d * z for d, z in zip(delta3, z2, strict=True))
    result = check_formula(NG_CHAIN, None, r"\delta^{[1]} = W^{[2]T}\delta^{[2]}")
    assert not result.ok and len(result.wrong) == 2
    for number, wrong in enumerate(result.wrong):
        truth = sympy.diff(loss, z1[number])
        point = _points(truth.free_symbols | wrong.expected.free_symbols, number)
        assert abs(float(truth.xreplace(point)) - float(wrong.expected.xreplace(point))) < 1e-9


def test_the_expected_error_term_of_a_convolution_chain_is_sympys():
    chain = Sequential(Conv2d(kernel_size=2), ReLU(), Conv2d(kernel_size=2))
    derivation = derive(chain, (4, 3))
    z1 = to_grid(derivation.steps[0].output)[0, 0]             # 3 x 2
    w3 = to_grid(derivation.params["w3"])[0, 0]                # 2 x 2
    b3 = to_grid(derivation.params["b3"])[0]
    delta3 = to_grid(derivation.steps[2].delta_out)[0, 0]      # 2 x 1
    a1 = np.vectorize(lambda z: sympy.Max(0, z), otypes=[object])(z1)
    loss = sum(delta3[i, j] * (sum(a1[i + m, j + n] * w3[m, n] for m in range(2)
                                   for n in range(2)) + b3)
               for i in range(2) for j in range(1))
    result = check_formula(chain, (4, 3), r"\delta^{l-1} = \delta^{l} \star W^{l} \odot "
                                          r"f'(z^{l-1})")
    assert not result.ok and result.checked == 6 and result.wrong
    for wrong in result.wrong:
        index = next(i for i in np.ndindex(3, 2)
                     if wrong.label == rf"\delta^{{l-1}}_{{{i[0] + 1},{i[1] + 1}}}")
        truth = sympy.diff(loss, z1[index])
        point = _points(truth.free_symbols | wrong.expected.free_symbols, sum(index))
        expected = float(truth.xreplace(point).subs(sympy.Heaviside(0), 0))
        assert abs(expected - float(wrong.expected.xreplace(point))) < 1e-9


def test_a_chain_with_average_pooling_takes_the_pooling_factor_from_the_chain():
    chain = Sequential(Conv2d(kernel_size=2), ReLU(), AvgPool2d(2))
    result = check_formula(chain, (5, 5), r"\delta^{l-1} = \mathrm{upsample}(\delta^{l}) / 4 "
                                          r"\odot f'(z^{l-1})")
    assert result.ok and result.checked == 16


# -- a layer's own names in a chain (batch norm, cross-entropy, PReLU, softmax) -----------
BATCHNORM = {"input": [3], "layers": [
    {"layer": "linear", "in_features": 3, "out_features": 2},
    {"layer": "batchnorm1d", "num_features": 2}]}
BN_RELU = {"input": [2], "layers": [
    {"layer": "linear", "in_features": 2, "out_features": 2},
    {"layer": "batchnorm1d", "num_features": 2}, {"layer": "relu"},
    {"layer": "linear", "in_features": 2, "out_features": 1}]}
CROSS_ENTROPY = {"input": [3], "layers": [
    {"layer": "linear", "in_features": 3, "out_features": 3},
    {"layer": "crossentropyloss", "target": [2]}]}
SOFTMAX = {"input": [3], "layers": [
    {"layer": "linear", "in_features": 3, "out_features": 3}, {"layer": "softmax"}]}
PRELU = {"input": [3], "layers": [
    {"layer": "linear", "in_features": 3, "out_features": 2}, {"layer": "prelu"}]}
BN_INPUT_GRADIENT = (r"\frac{\partial L}{\partial a^{[1]}_{ij}} = \frac{\gamma^{[2]}_j}{m "
                     r"\sqrt{\sigma^{2[2]}_j+\epsilon}} \left(m \delta^{[2]}_{ij} - \sum_k "
                     r"\delta^{[2]}_{kj} - \hat{x}^{[2]}_{ij} \sum_k \delta^{[2]}_{kj} "
                     r"\hat{x}^{[2]}_{kj}\right)")


@pytest.mark.parametrize("spec, text, batch", [
    (BATCHNORM, BN_INPUT_GRADIENT, "3"),
    (BATCHNORM, r"\frac{\partial L}{\partial \gamma^{[2]}_j} = \sum_i \delta^{[2]}_{ij} "
                r"\hat{x}^{[2]}_{ij}", "3"),
    (BATCHNORM, r"\frac{\partial L}{\partial \beta^{[2]}_j} = \sum_i \delta^{[2]}_{ij}", "3"),
    (BN_RELU, r"\frac{\partial L}{\partial \gamma^{[2]}_j} = \sum_i \delta^{[3]}_{ij} "
              r"[a^{[2]}_{ij} > 0] \hat{x}^{[2]}_{ij}", "2"),
    (CROSS_ENTROPY, r"\frac{\partial L}{\partial a^{[1]}_{nc}} = \frac{p^{[2]}_{nc} - "
                    r"y^{[2]}_{nc}}{N^{[2]}}", "1"),
    (SOFTMAX, r"\frac{\partial L}{\partial a^{[1]}_i} = p^{[2]}_i (\delta^{[2]}_i - \sum_j "
              r"\delta^{[2]}_j p^{[2]}_j)", "1"),
    (PRELU, r"\frac{\partial L}{\partial a^{[1]}_{j}} = \delta^{[2]}_j [a^{[1]}_j > 0] + "
            r"w^{[2]} \delta^{[2]}_j [a^{[1]}_j \le 0]", "1"),
], ids=["batch norm dx", "gamma", "beta", "gamma through relu", "cross-entropy", "softmax",
        "prelu"])
def test_a_chain_reads_each_layers_own_names(capsys, spec, text, batch):
    status, out, err = _run(capsys, spec, text, "--batch", batch)
    assert status == 0 and out.startswith("correct: "), (out, err)


@pytest.mark.parametrize("spec, text, batch, mistake", [
    (BATCHNORM, BN_INPUT_GRADIENT.replace(r"- \sum_k \delta^{[2]}_{kj} ", ""), "3",
     "the mean's path dropped"),
    (CROSS_ENTROPY, r"\frac{\partial L}{\partial a^{[1]}_{nc}} = -y^{[2]}_{nc} / p^{[2]}_{nc}",
     "1", "the softmax left out"),
], ids=["batch norm", "cross-entropy"])
def test_a_chain_names_each_layers_own_mistakes(capsys, spec, text, batch, mistake):
    status, out, err = _run(capsys, spec, text, "--batch", batch, "--show", "0")
    assert status == 1 and f"mistake: {mistake}" in out, (out, err)


def test_a_layers_own_name_at_a_layer_without_it_is_refused(capsys):
    status, out, err = _run(capsys, BATCHNORM, r"\frac{\partial L}{\partial a^{[1]}_{ij}} = "
                                              r"\delta^{[2]}_{ij} \gamma^{[1]}_j", "--batch", "3")
    assert status == 2 and not out
    assert r"\gamma^{[1]}: layer 1 (layer 1 of the chain (Linear 3->2)) has no gamma" in err
