r"""``check`` on chain-rule steps, several equations and the names students use (issue 14,
part 3).

An intermediate partial is evaluated from the derivation: ``\partial E/\partial net_{ij}``
of the layer output is the upstream gradient, ``\partial net_{ij}/\partial a_{ab}`` the
derivative of the output element by the input element (the kernel element that links
them for a convolution, f'(net) for an activation).  Each equation of an ``align`` and
each ``=`` of a chain of equalities is judged on its own.
"""

import pytest

from symbackprop import Conv2d, FormulaChecks, Linear, Sigmoid, check_formula
from symbackprop.cli import main

K2 = Conv2d(kernel_size=2)


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("layer, text", [
    (K2, r"\frac{\partial E}{\partial a^{l-1}_{11}} = \frac{\partial E}{\partial net_{11}} "
         r"\frac{\partial net_{11}}{\partial a^{l-1}_{11}}"),
    (K2, r"\frac{\partial E}{\partial a^{l-1}_{1,2}} = \sum_{i,j} \frac{\partial E}"
         r"{\partial net^{l}_{ij}} \frac{\partial net^{l}_{ij}}{\partial a^{l-1}_{1,2}}"),
    (K2, r"\frac{\partial E_d}{\partial W^{(l)}_{11}} = \sum_{i,j} \delta^{(l)}_{ij} "
         r"\frac{\partial z^{(l)}_{ij}}{\partial W^{(l)}_{11}}"),
    (K2, r"\frac{\partial{E_d}}{\partial w_b} = \sum_{i,j} \frac{\partial{E_d}}"
         r"{\partial o_{ij}}"),
    (K2, r"\frac{\mathrm{d} J}{\mathrm{d} K} = \mathrm{corr}(x, dz)"),
    (K2, r"\delta^{[l-1]} = \mathrm{conv2}(\delta^{[l]}, W^{[l]}, 'full')"),
    (K2, r"\frac{\partial L}{\partial a^{l}_{11}} = \frac{\partial L}{\partial z^{l+1}_{11}} "
         r"\frac{\partial z^{l+1}_{11}}{\partial a^{l}_{11}}"),
    (K2, "dW = corr(x, dout)"),
    (K2, 'dx = conv2(dout, w, "full")'),
    (Conv2d(2, 1, kernel_size=2),
     r"\frac{\partial L}{\partial a^{(1)}_{11}} = \frac{\partial L}{\partial z_{11}} "
     r"\frac{\partial z_{11}}{\partial a^{(1)}_{11}}"),
    (Linear(3, 2), "dA_prev = W^T dz"),
    (Linear(3, 2), r"\frac{\partial J}{\partial b} = \delta"),
    (Sigmoid(), r"\frac{\partial E}{\partial net_{11}} = \frac{\partial E}{\partial o_{11}} "
                r"\frac{\partial o_{11}}{\partial net_{11}}"),
])
def test_chain_rule_steps_and_names_that_are_right(text, layer):
    size = None if isinstance(layer, Linear) else (3, 3) if isinstance(layer, Conv2d) else (2, 2)
    result = check_formula(layer, size, text)
    assert result.ok, result.report()


def test_a_wrong_local_derivative_is_wrong():
    text = (r"\frac{\partial E}{\partial a_{1,2}} = \frac{\partial E}{\partial net_{11}} "
            r"\frac{\partial net_{11}}{\partial a_{1,1}}")
    result = check_formula(K2, (3, 3), text)
    assert not result.ok
    (wrong,) = result.wrong
    assert str(wrong.given) == "g[0,0,0,0]*w[0,0,0,0]"


def test_equalities_in_a_row_are_judged_one_by_one(capsys):
    text = (r"\frac{\partial E}{\partial net_{11}} = \frac{\partial E}{\partial o_{11}} "
            r"\frac{\partial o_{11}}{\partial net_{11}} = \delta_{11} net_{11} (1 - net_{11})")
    result = check_formula(Sigmoid(), (2, 2), text)
    assert isinstance(result, FormulaChecks)
    assert [check.ok for check in result.checks] == [True, False]
    status, out, _ = _run(capsys, "check", "sigmoid", "--input", "2", text)
    assert status == 1
    assert out.startswith("wrong: 1 of 2 equations agree with SymPy's derivation")
    assert "equation 2: " in out and "f' written with the output" in out


def test_an_align_environment_is_judged_line_by_line(capsys):
    text = "\n".join([
        r"\begin{align*}",
        r"\frac{\partial E_d}{\partial w_{11}} &= \sum_{i,j} \delta_{ij} a_{ij} \\",
        r"\frac{\mathrm{d} E}{\mathrm{d} a^{l-1}} &= \mathrm{conv2}(\delta^{l}, W^{l}, "
        r"\text{full}) \\",
        r"\delta^{l-1} &= \delta^{l} \star W^{l}",
        r"\end{align*}"])
    result = check_formula(K2, (3, 3), text)
    assert [check.ok for check in result.checks] == [True, True, False]
    assert result.checks[2].mistake.startswith("kernel not rotated")
    status, out, _ = _run(capsys, "check", "conv2d", "--input", "3", "--kernel", "2", text)
    assert status == 1 and out.startswith("wrong: 2 of 3 equations agree")
    assert out.count("\nequation ") == 3


def test_a_whole_align_of_right_lines_is_correct(capsys):
    text = (r"\frac{\partial L}{\partial x} = \operatorname{corr}(\operatorname{pad}_P(g), "
            r"\operatorname{rot}_{180}(w)) \\ \frac{\partial L}{\partial w} = "
            r"\operatorname{corr}(x, g) \\ \frac{\partial L}{\partial b} = \sum_{i,j} g_{ij}")
    status, out, _ = _run(capsys, "check", "conv2d", "--input", "3", "--kernel", "2", text)
    assert status == 0 and out.startswith("correct: 3 of 3 equations agree")


# -- a rule about one layer of a chain ----------------------------------------------------------
CHAIN_SPEC = ('[{"layer": "linear", "in_features": 2, "out_features": 2}, {"layer": "sigmoid"}, '
              '{"layer": "linear", "in_features": 2, "out_features": 1}]')
CONV_SPEC = ('[{"layer": "conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 2}, '
             '{"layer": "relu"}, {"layer": "avgpool2d", "kernel_size": 2}]')


@pytest.mark.parametrize("spec, size, text", [
    (CHAIN_SPEC, (), r"\delta^{[2]} = W^{[3]T} \delta^{[3]}"),
    (CHAIN_SPEC, (), r"\delta^{[1]} = \delta^{[2]} \odot f'(a^{[1]})"),
    (CHAIN_SPEC, (), r"\delta^{[1]} = \delta^{[2]} \odot a^{[2]} \odot (1 - a^{[2]})"),
    (CHAIN_SPEC, (), r"\frac{\partial L}{\partial W^{[3]}} = \delta^{[3]} a^{[2]T}"),
    (CONV_SPEC, ("--input", "5"), r"\delta^{[0]} = \mathrm{conv2}(\delta^{[1]}, W^{[1]}, "
                                  r"'full')"),
    (CONV_SPEC, ("--input", "5"), r"\delta^{[1]} = \delta^{[2]} \odot [a^{[1]} > 0]"),
    (CONV_SPEC, ("--input", "5"), r"\delta^{[2]} = \mathrm{kron}(\delta^{[3]}, "
                                  r"\mathbf{1}_{2\times 2}) / 4"),
], ids=["linear", "sigmoid f'", "sigmoid output", "weights", "conv", "relu", "mean pooling"])
def test_chain_rules_about_one_layer_are_right(capsys, spec, size, text):
    status, out, err = _run(capsys, "check", "sequential", "--spec", spec, *size, text)
    assert status == 0 and out.startswith("correct: "), (out, err)
    assert "note: checked on layer " in out


@pytest.mark.parametrize("text, mistake", [
    (r"\delta^{[1]} = \delta^{[2]} \odot a^{[1]} \odot (1 - a^{[1]})",
     "f' written with the output but applied to the input"),
    (r"\delta^{[2]} = W^{[3]} \delta^{[3]}", "W instead of W^T"),
    (r"\frac{\partial L}{\partial W^{[1]}} = a^{[0]} \delta^{[1]T}", "the gradient transposed"),
])
def test_chain_rules_about_one_layer_that_are_wrong(capsys, text, mistake):
    status, out, _ = _run(capsys, "check", "sequential", "--spec", CHAIN_SPEC, text)
    assert status == 1 and f"mistake: {mistake}" in out


def test_a_chain_rule_spanning_two_layers_is_checked_across_them(capsys):
    # (tests/test_check_cross_layer.py has the rules across layers in every notation)
    text = r"\delta^{[1]} = W^{[3]T} \delta^{[3]} \odot f'(a^{[1]})"
    status, out, err = _run(capsys, "check", "sequential", "--spec", CHAIN_SPEC, text)
    assert status == 0 and out.startswith("correct: "), (out, err)
    assert "the chain's numbering" in out
