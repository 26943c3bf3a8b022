r"""``check`` on activation layers in the notation students write (issue 14, part 1).

The verdicts follow by hand from f'(net) of each activation: ReLU's [net > 0] (0 at 0),
the sigmoid's s (1 - s), tanh's 1 - tanh^2, softplus's sigmoid (below its threshold),
leaky ReLU's 1 or the slope.  Each notation family is tried right and wrong; a wrong
one names the classic mistake where there is one.
"""

import pytest

from symbackprop import FormulaError, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh, check_formula
from symbackprop.cli import main


def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# -- derive relu's own lines are checkable ------------------------------------------------
def test_relu_accepts_the_lines_derive_prints(capsys):
    main(["derive", "relu", "--input", "2"])
    printed, _ = capsys.readouterr()
    lines = [line.strip() for line in printed.splitlines() if line.strip().startswith("dL/dx")]
    assert "dL/dx = g * f'(x) elementwise, f'(net) = [net > 0]: 1 if net > 0 else 0 (0 at 0)" \
        in lines
    element_lines = [line for line in lines if "elementwise" not in line]
    assert element_lines[0] == "dL/dx11 = g11 [x11 > 0]"
    for line in element_lines + lines[:1] + ["dL/dx = g * f'(x)", "dL/dx = g [x > 0]"]:
        status, out, err = _run(capsys, "check", "relu", "--input", "2", line)
        assert status == 0 and out.startswith("correct: "), (line, out, err)


@pytest.mark.parametrize("layer, right", [
    (ReLU(), r"\frac{\partial E}{\partial net_{ij}} = \delta_{ij} f'(net_{ij})"),
    (ReLU(), r"\frac{\partial E}{\partial z_{ij}} = \delta_{ij} \mathbb{1}(z_{ij} > 0)"),
    (ReLU(), r"\frac{\partial E}{\partial x_{ij}} = \delta_{ij} \mathbb{1}[x_{ij}>0]"),
    (ReLU(), r"\frac{\partial E}{\partial x} = \delta \odot [x > 0]"),
    (ReLU(), r"\frac{\partial E}{\partial x_{ij}} = \frac{\partial \max(0, x_{ij})}"
             r"{\partial x_{ij}} \delta_{ij}"),
    (ReLU(), r"dL/dx = g \circ \operatorname{relu}'(x)"),
    (Sigmoid(), r"\frac{\partial E}{\partial x_{ij}} = \delta_{ij} \sigma(x_{ij})"
                r"(1-\sigma(x_{ij}))"),
    (Sigmoid(), "dL/dx = g * sigmoid(x) * (1 - sigmoid(x))"),
    (Sigmoid(), "dL/dx = g * o * (1 - o)"),
    (Sigmoid(), r"\frac{\partial E}{\partial net} = \delta \odot \frac{e^{-net}}"
                r"{(1 + e^{-net})^2}"),
    (Tanh(), r"\frac{\partial E}{\partial net} = \delta \odot (1-\tanh^2(net))"),
    (Tanh(), r"\frac{\partial E}{\partial x} = \delta \odot (1 - y^2)"),
    (Softplus(), r"\frac{\partial E}{\partial x} = g \circ \frac{\exp(x)}{1 + e^{x}}"),
    (LeakyReLU(), "dL/dx = g * f'(x)"),
])
def test_activation_notation_that_is_right(layer, right):
    result = check_formula(layer, (2, 2), right)
    assert result.ok, result.report()
    assert result.checked >= 1


@pytest.mark.parametrize("layer, wrong, mistake", [
    (ReLU(), "dL/dx = g [x >= 0]", "the derivative at the corner"),
    (ReLU(), "dL/dx11 = g11 [x11 >= 0]", "the derivative at the corner"),
    (ReLU(), r"\frac{\partial E}{\partial x} = \delta \odot \max(0, x)", ""),
    (Sigmoid(), "dL/dx = g * x * (1 - x)", "f' written with the output but applied to the input"),
    (Sigmoid(), "dL/dx = g * f'(o)", "f' evaluated at the output instead of the input"),
    (Tanh(), r"\frac{\partial E}{\partial x} = \delta \odot (1 - x^2)",
     "f' written with the output but applied to the input"),
    (Tanh(), r"\frac{\partial E}{\partial x} = \delta \odot (1 - \tanh(x))", ""),
])
def test_activation_notation_that_is_wrong(layer, wrong, mistake):
    result = check_formula(layer, (2, 2), wrong)
    assert not result.ok
    report = result.report()
    assert report.startswith("wrong: ")
    if mistake:
        assert f"mistake: {mistake}" in report
    # the verdict says how it was decided, and where the two differ
    assert "(numerically, at 8 random points)" in report or "(symbolically)" in report


def test_numeric_verdict_shows_a_point(capsys):
    status, out, _ = _run(capsys, "check", "sigmoid", "--input", "2", "dL/dx = g * x * (1 - x)")
    assert status == 1
    assert "(numerically, at 8 random points)" in out
    assert "  at g11 = " in out and ": expected " in out


def test_relu_corner_is_shown_at_zero(capsys):
    status, out, _ = _run(capsys, "check", "relu", "--input", "2", "dL/dx = g [x >= 0]")
    assert status == 1 and "x11 = 0: expected 0, given " in out


@pytest.mark.parametrize("text, message", [
    ("dL/dx = g ^ g", "an exponent is a number"),
    ("dL/dx = g (x+g)^{1000}", "exponents here are whole numbers"),
    ("dL/dx = g 2^{2^{2^{2^{2^{2}}}}}", "exponents here are whole numbers"),
    (r"dL/dx = g \max(x)", "max takes two arguments"),
    (r"dL/dx = \sigma(x)", "never uses the upstream gradient"),
    ("dL/dx = __import__('os')", "unexpected character"),
    (r"\begin{align*}\end{align*}", "the formula is empty"),
    ("dL/dx = g " + "(" * 3000 + "x" + ")" * 3000, "nested more than"),
    ("dL/dx = g " + " + g" * 1200 + r" \sigma(x)", "too many terms in a row"),
], ids=["power of g", "large power", "tower", "max of one", "no gradient", "python",
        "empty align", "deep brackets", "long sum"])
def test_hostile_activation_formulas_are_refused_cleanly(capsys, text, message):
    with pytest.raises(FormulaError) as caught:
        check_formula(ReLU(), (2, 2), text)
    assert message in caught.value.message
    status, out, err = _run(capsys, "check", "relu", "--input", "2", text)
    assert status == 2 and not out and message in err and "Traceback" not in err


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "leakyrelu", "softplus"])
def test_the_lines_derive_prints_for_other_activations_are_checkable(capsys, kind):
    main(["derive", kind, "--input", "2"])
    printed, _ = capsys.readouterr()
    lines = [line.strip() for line in printed.splitlines() if line.strip().startswith("dL/dx")]
    general, first = lines[0], lines[1]
    # the general line with its definition of f' (prose around a number like alpha is not
    # read), and an element line, conditionals "1 if x11 > 0 else 0.01" included
    checked = [general, first] if kind in ("sigmoid", "tanh") else [first]
    for line in checked:
        status, out, err = _run(capsys, "check", kind, "--input", "2", line)
        assert status == 0 and out.startswith("correct: "), (line, out, err)
