r"""Checking hand-derived pooling formulas (stage: (derivation, formula) -> FormulaCheck).

The right formulas are docs/notation.md's: average pooling shares g equally among the
window (``kron(g, ones) / P^2`` for windows side by side, shares added where they
overlap, the divisor with or without the padding as the layer says); max pooling
sends g to the first maximum, written with the indicator ``[x_ab = argmax z_ij]``
that ``symbackprop derive`` prints.  The wrong ones make the mistakes course notes
make.  The verdicts and differences are written out by hand.
"""

import subprocess
import sys

import pytest
from conftest import REPO

from symbackprop import AvgPool2d, FormulaError, MaxPool2d, check_formula
from symbackprop.check.formula import Indicator, parse_formula, products

AVG = AvgPool2d(2)                                      # windows side by side
AVG_OVERLAPPING = AvgPool2d(2, stride=1)
AVG_PADDED = AvgPool2d(2, stride=1, padding=1)          # padding counts in the divisor
AVG_PADDED_COUNT = AvgPool2d(2, stride=1, padding=1, count_include_pad=False)
MAX = MaxPool2d(2)
MAX_OVERLAPPING = MaxPool2d(2, stride=1)
MAX_PADDED = MaxPool2d(3, stride=2, padding=1)

MAX_SUM = "dL/dx[i,j] = sum(g[m,n] [x[i,j] = argmax z[m,n]], m, n)"


@pytest.mark.parametrize("layer, size, base, text, checked", [
    # windows side by side: each element gets a quarter of its window's g
    (AVG, (4, 4), 1, "dL/dx[1,1] = g[1,1]/4", 1),
    (AVG, (4, 4), 1, "dL/dx34 = g22/4", 1),
    (AVG, (4, 4), 1, r"\frac{\partial E}{\partial a_{3,4}} = \frac{1}{4}\delta_{2,2}", 1),
    (AVG, (4, 4), 0, r"dL/dx[3,3] = 0.25 \cdot g[1,1]", 1),
    # the stride leaves row and column 5 unread: their gradient is 0
    (AVG, (5, 5), 1, "dL/dx55 = 0", 1),
    (AVG, (5, 5), 1, "dL/dx[5,2] = 0", 1),
    # overlapping windows add their shares: the sum form with free indices
    (AVG_OVERLAPPING, (3, 3), 0, "dL/dx[i,j] = sum(g[i-m,j-n], (m,0,1), (n,0,1))/4", 9),
    (AVG_OVERLAPPING, (3, 4), 1,
     r"\frac{\partial L}{\partial x_{i,j}} = \sum_{m=0}^{1}\sum_{n=0}^{1} \frac{1}{4} "
     r"\delta_{i-m,j-n}", 12),
    (AVG_OVERLAPPING, (3, 3), 1, "dL/dx22 = (g11 + g12 + g21 + g22)/4", 1),
    # with padding 1 element i is in windows i and i+1; the divisor is the whole window...
    (AVG_PADDED, (3, 3), 0, "dL/dx[i,j] = sum(g[i+m,j+n], (m,0,1), (n,0,1))/4", 9),
    # ... or only the input elements it holds (the corner window holds one)
    (AVG_PADDED_COUNT, (3, 3), 1, "dL/dx11 = g11 + g12/2 + g21/2 + g22/4", 1),
    (AVG_PADDED_COUNT, (3, 3), 1, "dL/dx22 = (g22 + g23 + g32 + g33)/4", 1),
    # max pooling: g goes to the first maximum, written as derive prints it
    (MAX_OVERLAPPING, (3, 3), 1,
     "dL/dx12 = g11 [x12 = argmax z11] + g12 [x12 = argmax z12]", 1),
    (MAX_OVERLAPPING, (3, 3), 1,
     r"\frac{\partial E}{\partial a_{12}} = \delta_{11} [a_{12} = \arg\max z_{11}] + "
     r"\delta_{12} [a_{12} = \operatorname{argmax} z_{12}]", 1),
    (MAX_OVERLAPPING, (3, 3), 1, MAX_SUM, 9),
    (MAX_OVERLAPPING, (3, 4), 0, MAX_SUM, 12),
    (MAX_PADDED, (5, 4), 1, MAX_SUM, 20),
    (MAX, (5, 5), 1, MAX_SUM, 25),  # row and column 5 unread: no window, no term
    (MAX, (4, 4), 1, r"\frac{\partial L}{\partial x_{ij}} = \sum_{m,n} \delta_{mn} "
                     r"[x_{ij} = \arg\max z_{mn}]", 16),
    (MAX, (4, 4), 1, "dL/dx[3,2] = [x[3,2] = argmax z[2,1]] g[2,1]", 1),
    (MAX_PADDED, (5, 4), 1, "dL/dx[1,1] = g[1,1] [x[1,1] = argmax z[1,1]]", 1),
    # channels and batch
    (MAX, (2, 4, 4), 1, "dL/dx[c,i,j] = sum(g[c,m,n] [x[c,i,j] = argmax z[c,m,n]], m, n)",
     32),
    (AVG, (2, 4, 4), 1, "dL/dx[2,3,4] = g[2,2,2]/4", 1),
])
def test_right_pooling_formulas_are_correct(layer, size, base, text, checked):
    result = check_formula(layer, size, text, index_base=base)
    assert result.ok, result.report()
    assert result.checked == checked
    assert result.report().startswith("correct: ")


def test_batch_formula_for_max_pooling():
    text = "dL/dx[s,c,i,j] = sum(g[s,c,m,n] [x[s,c,i,j] = argmax z[s,c,m,n]], m, n)"
    result = check_formula(MAX, (2, 4, 4), text, batch=2, index_base=0)
    assert result.ok and result.checked == 64
    one_sample = "dL/dx[s,c,i,j] = sum(g[0,c,m,n] [x[s,c,i,j] = argmax z[s,c,m,n]], m, n)"
    wrong = check_formula(MAX, (2, 4, 4), one_sample, batch=2, index_base=0)
    assert len(wrong.wrong) == 32  # sample 1 read sample 0's g
    assert {result.index[0] for result in wrong.wrong} == {1}


def test_average_divisor_wrong():
    result = check_formula(AVG, (4, 4), "dL/dx[1,1] = g[1,1]/2")
    (wrong,) = result.wrong
    assert result.report().splitlines()[3:] == [
        "dL/dx[1,1]",
        "  expected: 1/4 g[1,1]",
        "  given:    1/2 g[1,1]",
        "  extra:    1/4 g[1,1]",
    ]
    nine = check_formula(AvgPool2d(3, stride=2), (5, 5), r"dL/dx33 = (g11 + g12 + g21 + g22)/4")
    (wrong,) = nine.wrong
    assert nine.printer.doprint(wrong.expected) == "1/9 g11 + 1/9 g12 + 1/9 g21 + 1/9 g22"
    assert nine.printer.doprint(wrong.extra) == \
        "5/36 g11 + 5/36 g12 + 5/36 g21 + 5/36 g22"


def test_count_include_pad_confused_in_a_formula():
    # the corner window of a 2x2 pool with padding 1 holds x11 alone
    counted = check_formula(AvgPool2d(2, padding=1), (3, 3), "dL/dx11 = g11")
    (wrong,) = counted.wrong
    assert counted.printer.doprint(wrong.expected) == "1/4 g11"
    assert counted.printer.doprint(wrong.extra) == "3/4 g11"
    left_out = check_formula(AvgPool2d(2, padding=1, count_include_pad=False), (3, 3),
                             "dL/dx11 = g11/4")
    (wrong,) = left_out.wrong
    assert left_out.printer.doprint(wrong.missing) == "3/4 g11"
    assert "padding left out of the divisor" in left_out.report()
    # the same sum form: right when the padding counts, wrong at the border when it does not
    text = "dL/dx[i,j] = sum(g[i+m,j+n], (m,0,1), (n,0,1))/4"
    assert check_formula(AVG_PADDED, (3, 3), text, index_base=0).ok
    border = check_formula(AVG_PADDED_COUNT, (3, 3), text, index_base=0)
    assert [r.index[2:] for r in border.wrong] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]  # all but the centre


def test_average_windows_read_the_wrong_way():
    # g[i+m] where g[i-m] belongs (no padding): the window offsets run the wrong way
    result = check_formula(AVG_OVERLAPPING, (3, 3),
                           "dL/dx[i,j] = sum(g[i+m,j+n], (m,0,1), (n,0,1))/4", index_base=0)
    assert len(result.wrong) == 9
    first = result.wrong[0]
    assert result.printer.doprint(first.expected) == "1/4 g[0,0]"
    assert result.printer.doprint(first.extra) == "1/4 g[0,1] + 1/4 g[1,0] + 1/4 g[1,1]"
    assert result.notes == ("g[0,2] and any other element outside g were taken as 0 "
                            "(zero padding)",)


def test_max_pool_gradient_copied_to_the_window():
    # every element of the window gets g: what average pooling without the divisor does
    result = check_formula(MAX_OVERLAPPING, (3, 3),
                           "dL/dx[i,j] = sum(g[m,n], (m,i-1,i), (n,j-1,j))")
    assert len(result.wrong) == 9
    lines = result.report(show=1).splitlines()
    assert lines[3:8] == [
        "dL/dx[1,1]",
        "  expected: g[1,1] [x[1,1] = argmax z[1,1]]",
        "  given:    g[1,1]",
        "  missing:  g[1,1] [x[1,1] = argmax z[1,1]]",
        "  extra:    g[1,1]",
    ]


@pytest.mark.parametrize("text, missing, extra", [
    # a window left out
    ("dL/dx12 = g11 [x12 = argmax z11]", "g12 [x12 = argmax z12]", None),
    # a window that does not hold x13: its indicator is 0
    ("dL/dx13 = g11 [x13 = argmax z11]", "g12 [x13 = argmax z12]", None),
    # the indicator of another element
    ("dL/dx12 = g11 [x11 = argmax z11] + g12 [x12 = argmax z12]", "g11 [x12 = argmax z11]",
     "g11 [x11 = argmax z11]"),
    # the indicator left out
    ("dL/dx12 = g11 + g12", "g11 [x12 = argmax z11] + g12 [x12 = argmax z12]", "g11 + g12"),
])
def test_wrong_max_pool_formulas(text, missing, extra):
    result = check_formula(MAX_OVERLAPPING, (3, 3), text)
    (wrong,) = result.wrong
    printer = result.printer
    assert printer.doprint(wrong.missing) == missing
    assert (printer.doprint(wrong.extra) if wrong.extra != 0 else None) == extra


def test_latex_indicator_printed_back_in_latex():
    result = check_formula(MAX_OVERLAPPING, (3, 3),
                           r"\frac{\partial E}{\partial a_{12}} = \delta_{11} "
                           r"[a_{12} = \arg\max z_{11}]")
    assert r"  missing:  \delta_{12} [a_{12} = \arg\max z_{12}]" in result.report()


def test_indicator_parsed():
    (term,) = products(parse_formula(r"dL/dx11 = g11 [x11 = \arg\max z11]").rhs)
    indicator = term.elements[1]
    assert isinstance(indicator, Indicator)
    assert (indicator.candidate.array, indicator.output.array) == ("x", "z")


@pytest.mark.parametrize("layer, text, message", [
    (AVG, "dL/dx11 = g11 [x11 = argmax z11]",
     "the indicator [x_ab = argmax z_ij] belongs to max pooling; AvgPool2d 2x2"),
    (MAX, "dL/dx11 = g11 [x11 = max z11]",
     "expected argmax in the indicator [x_ab = argmax z_ij], found 'max'"),
    (MAX, "dL/dx11 = g11 [x11 == argmax z11]", "expected argmax in the indicator"),
    (MAX, "dL/dx11 = g11 [w11 = argmax z11]",
     "the indicator [x_ab = argmax z_ij] names an element of the input x"),
    (MAX, "dL/dx11 = g11 [x11 = argmax g11]",
     "names an element of the layer output z after argmax"),
    (MAX, "dL/dx11 = g11 [x11 = argmax z11", "']' closing the indicator"),
    (MAX, "dL/dx11 = g11 [x11 = argmax z33]", "z33 does not exist: the row index of z runs "
                                              "from 1 to 2"),
    (MAX, "dL/dx11 = g11 [x55 = argmax z11]", "x55 does not exist"),
    (MAX, "dL/dx11 = g11 [x11 = argmax z[1,1,1]]", "z takes 2 indices here"),
    (MAX, "dL/dx[i,j] = g[i,j] [x[i,j] = argmax z[m,n]]", "index m is not on the left side"),
    (MAX, "dL/dz11 = g11", "dL/dz is the upstream gradient"),
    (MAX, "dL/dw11 = g11", "this layer has no gradient for the kernel"),
])
def test_unusable_pooling_formulas(layer, text, message):
    with pytest.raises(FormulaError) as caught:
        check_formula(layer, (4, 4), text)
    assert message in str(caught.value)
    assert "^" in str(caught.value).splitlines()[-1]


# -- the command line ------------------------------------------------------------------------
def _check(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", "check", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, status, text", [
    (["avgpool2d", "--input", "4x4", r"\frac{\partial E}{\partial a_{3,4}} = "
                                     r"\frac{1}{4}\delta_{2,2}"], 0, "correct: "),
    (["avgpool2d", "--input", "4x4", "dL/dx[1,1] = g[1,1]/2"], 1,
     "  extra:    1/4 g[1,1]"),
    (["maxpool2d", "--stride", "1", "--input", "3x3", MAX_SUM], 0,
     "correct: all 9 elements of dL/dx agree"),
    (["maxpool2d", "--stride", "1", "--input", "3x3", "dL/dx12 = g11 + g12"], 1,
     "  missing:  g11 [x12 = argmax z11] + g12 [x12 = argmax z12]"),
    (["maxpool2d", "--input", "4x4", "dL/dx11 = g11 [x11 = max z11]"], 2,
     "expected argmax in the indicator"),
    (["avgpool2d", "--input", "4x4", "dL/dx11 = g11 [x11 = argmax z11]"], 2,
     "belongs to max pooling"),
])
def test_check_command_for_pooling(args, status, text):
    run = _check(*args)
    assert run.returncode == status, run.stdout + run.stderr
    assert text in (run.stdout if status < 2 else run.stderr)
    assert "Traceback" not in run.stderr
    if status == 2:
        assert not run.stdout and run.stderr.startswith("symbackprop check: error: ")
