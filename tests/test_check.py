r"""Checking hand-derived formulas (stage: (derivation, formula) -> FormulaCheck).

The right formulas here are docs/notation.md's (dL/dw = sum g xp[i*s+m, j*s+n], dL/dx the
full correlation with the rotated kernel, dL/db = sum g, the worked example); the
wrong ones make the mistakes course notes make.  The verdicts and the differences
(terms missing and extra) are written out by hand.
"""

import pytest

from symbackprop import Conv2d, FormulaError, check_formula
from symbackprop.cli import main

K2 = Conv2d(kernel_size=2)
ISSUE_RIGHT = (r"\frac{\partial E}{\partial w_{1,2}} = \delta_{1,1} a_{1,2} + \delta_{1,2} a_{1,3}"
               r" + \delta_{2,1} a_{2,2} + \delta_{2,2} a_{2,3}")
ISSUE_SUM = r"\frac{\partial E}{\partial w_{i,j}} = \sum_m \sum_n \delta_{m,n} a_{i+m,j+n}"


@pytest.mark.parametrize("layer, size, base, text, checked", [
    (K2, (3, 3), 1, ISSUE_RIGHT, 1),
    (K2, (3, 3), 0, ISSUE_SUM, 4),
    (K2, (3, 3), 1, r"\frac{\partial E}{\partial w_{i,j}} = \sum_m \sum_n \delta_{m,n} "
                    r"a_{i+m-1,j+n-1}", 4),
    (K2, (3, 3), 1, r"\frac{\partial E}{\partial w_{ij}} = \sum_{m=1}^{2}\sum_{n=1}^{2} "
                    r"\delta_{mn} a_{i+m-1,j+n-1}", 4),
    # full correlation with the rotated kernel, 0-based, plain text
    (K2, (3, 3), 0, "dL/dx[i,j] = sum(g[i-m,j-n]*w[m,n], m, n)", 9),
    (K2, (4, 3), 0, "dL/dx[i,j] = sum(g[i-m,j-n]*w[m,n], (m, 0, 1), (n, 0, 1))", 12),
    (K2, (3, 3), 0, "dL/dx[i,j] = sum(g[i+m-1,j+n-1]*w[1-m,1-n], m, n)", 9),  # rot180(w)
    (K2, (3, 3), 1, r"\frac{\partial E}{\partial b} = \sum_{i,j} \delta_{i,j}", 1),
    (K2, (3, 3), 1, r"dw_b = \sum_i\sum_j \frac{\partial E}{\partial z_{i,j}}", 1),
    # the worked example (3x3 input, 2x2 kernel, padding 1), as symbackprop derive prints it
    (Conv2d(kernel_size=2, padding=1), (3, 3), 1,
     "dL/dx11 = g11 w22 + g12 w21 + g21 w12 + g22 w11", 1),
    (Conv2d(kernel_size=2, padding=1), (3, 3), 1,
     "dL/dx22 = g22 w22 + g23 w21 + g32 w12 + g33 w11", 1),
    # stride 2 reads x at i*s + m; with padding 1 the unlimited sum skips the padding
    (Conv2d(kernel_size=3, stride=2), (6, 6), 0,
     "dL/dw[i,j] = sum(g[m,n]*x[2m+i, 2n+j], m, n)", 9),
    (Conv2d(kernel_size=3, stride=2, padding=1), (6, 5), 0,
     "dL/dw[i,j] = sum(g[m,n]*x[2m+i-1, 2n+j-1], m, n)", 9),
    (Conv2d(kernel_size=3, stride=2, padding=1), (6, 5), 0,
     "dL/dx[a,c] = sum(g[i,j]*w[a+1-2i, c+1-2j], i, j)", 30),
    # channels and batch: every index shown, or the full form with size-1 ones
    (Conv2d(in_channels=2, out_channels=3, kernel_size=2), (3, 3), 0,
     "dL/dx[c,i,j] = sum(g[o,i-m,j-n]*w[o,c,m,n], o, m, n)", 18),
    (Conv2d(in_channels=2, out_channels=3, kernel_size=2), (3, 3), 0,
     "dL/dw[o,c,i,j] = sum(g[o,m,n]*x[c,i+m,j+n], m, n)", 24),
    (Conv2d(in_channels=2, out_channels=3, kernel_size=2), (3, 3), 1,
     "dL/db[o] = sum(g[o,i,j], i, j)", 3),
    (K2, (3, 3), 1, "dL/dw[1,1,i,j] = sum(g[1,1,m,n]*x[1,1,i+m-1,j+n-1], m, n)", 4),
    (K2, (3, 3), 1, "dL/db = sum(g[1,1,i,j], i, j)", 1),
    # unicode pasted from a PDF, fractions, a product of sums
    (K2, (3, 3), 0, "∂L/∂x_{ij} = Σ_m Σ_n δ_{i-m,j-n} · w_{mn}", 9),
    (K2, (3, 3), 1, r"dL/db = \frac{1}{2}\sum_{i,j} 2 g_{i,j}", 1),
])
def test_right_formulas_are_correct(layer, size, base, text, checked):
    result = check_formula(layer, size, text, index_base=base)
    assert result.ok, result.report()
    assert result.checked == checked
    assert result.report().startswith("correct: ")
    assert f"{checked} elements" in result.report() or checked == 1


def test_batch_formula():
    layer = Conv2d(kernel_size=2)
    text = "dL/dw[i,j] = sum(g[s,m,n]*x[s,i+m,j+n], s, m, n)"
    assert check_formula(layer, (3, 3), text, batch=2, index_base=0).ok
    wrong = check_formula(layer, (3, 3), "dL/dw[i,j] = sum(g[1,m,n]*x[1,i+m,j+n], m, n)",
                          batch=2, index_base=0)
    assert not wrong.ok and len(wrong.wrong) == 4  # only one sample of the batch


def test_one_wrong_term_in_the_persons_notation():
    text = ISSUE_RIGHT.replace(r"a_{2,3}", r"a_{3,3}")
    result = check_formula(K2, (3, 3), text)
    assert not result.ok and result.checked == 1
    (wrong,) = result.wrong
    assert wrong.index == (0, 0, 0, 1)
    assert result.report().splitlines() == [
        r"wrong: \frac{\partial E}{\partial w_{1,2}} differs from SymPy's derivation",
        "  Conv2d 1->1, kernel 2x2, stride 1, padding 0; input 3x3; indices start at 1",
        "",
        r"\frac{\partial E}{\partial w_{1,2}}",
        r"  expected: \delta_{1,1} a_{1,2} + \delta_{1,2} a_{1,3} + \delta_{2,1} a_{2,2} + "
        r"\delta_{2,2} a_{2,3}",
        r"  given:    \delta_{1,1} a_{1,2} + \delta_{1,2} a_{1,3} + \delta_{2,1} a_{2,2} + "
        r"\delta_{2,2} a_{3,3}",
        r"  missing:  \delta_{2,2} a_{2,3}",
        r"  extra:    \delta_{2,2} a_{3,3}",
    ]


def test_kernel_not_rotated_formula_plain_text():
    # cross-correlation where the full correlation with the rotated kernel belongs
    result = check_formula(K2, (3, 3), "dL/dx[i,j] = sum(g[i+m,j+n]*w[m,n], m, n)",
                           index_base=0)
    assert not result.ok
    assert result.checked == 9 and len(result.wrong) == 9
    first = result.wrong[0]
    printer = result.printer
    assert first.label == "dL/dx[0,0]"
    assert printer.doprint(first.expected) == "g[0,0]*w[0,0]"
    assert printer.doprint(first.given) == \
        "g[0,0]*w[0,0] + g[0,1]*w[0,1] + g[1,0]*w[1,0] + g[1,1]*w[1,1]"
    assert first.missing == 0
    assert printer.doprint(first.extra) == "g[0,1]*w[0,1] + g[1,0]*w[1,0] + g[1,1]*w[1,1]"
    report = result.report(show=2)
    assert "and 7 more wrong elements: dL/dx[0,2], dL/dx[1,0]" in report
    assert report.count("expected:") == 2


def test_stride_ignored_formula():
    layer = Conv2d(kernel_size=3, stride=2)
    result = check_formula(layer, (6, 6), "dL/dw[i,j] = sum(g[m,n]*x[m+i, n+j], m, n)",
                           index_base=0)
    assert not result.ok and len(result.wrong) == 9
    first = result.wrong[0]
    # x printed as written, "x[m+i, n+j]" with a space after the comma
    assert result.printer.doprint(first.missing) == \
        "g[0,1]*x[0, 2] + g[1,0]*x[2, 0] + g[1,1]*x[2, 2]"
    assert result.printer.doprint(first.extra) == \
        "g[0,1]*x[0, 1] + g[1,0]*x[1, 0] + g[1,1]*x[1, 1]"


@pytest.mark.parametrize("layer, text, wrong, missing, extra", [
    # padding ignored: x read at i+m instead of i+m-1 (padding 1)
    (Conv2d(kernel_size=2, padding=1), "dL/dw[i,j] = sum(g[m,n]*x[i+m,j+n], m, n)", 4,
     "g[1,1]*x[0,0] + g[1,2]*x[0,1]", "g[0,0]*x[0,0] + g[0,1]*x[0,1]"),
    # channels not swapped: w[c,o] where w[o,c] belongs
    (Conv2d(in_channels=2, out_channels=2, kernel_size=2),
     "dL/dx[c,i,j] = sum(g[o,i-m,j-n]*w[c,o,m,n], o, m, n)", 18,
     "g[1,0,0]*w[1,0,0,0]", "g[1,0,0]*w[0,1,0,0]"),
    # the full correlation (g padded by K-1 = 1) with the kernel not rotated
    (K2, "dL/dx[i,j] = sum(g[i+m-1,j+n-1]*w[m,n], m, n)", 9,
     "g[0,0]*w[0,0]", "g[0,0]*w[1,1]"),
])
def test_wrong_formulas_of_each_kind(layer, text, wrong, missing, extra):
    result = check_formula(layer, (3, 3), text, index_base=0)
    assert len(result.wrong) == wrong and result.checked == wrong
    first = result.wrong[0]
    assert result.printer.doprint(first.missing).startswith(missing)
    assert result.printer.doprint(first.extra).startswith(extra)
    assert first.given + first.missing - first.extra - first.expected == 0


def test_bias_missing_a_term_and_wrong_coefficient():
    result = check_formula(K2, (3, 3), r"\frac{\partial E}{\partial b} = \delta_{1,1} + "
                                       r"\delta_{1,2} + 2\delta_{2,1}")
    (wrong,) = result.wrong
    assert result.printer.doprint(wrong.missing) == r"\delta_{2,2}"
    assert result.printer.doprint(wrong.extra) == r"\delta_{2,1}"
    quarter = check_formula(K2, (3, 3), r"db = \frac{1}{4}\sum_{i,j} \delta_{i,j}")
    assert quarter.printer.doprint(quarter.wrong[0].missing).startswith(
        r"\frac{3}{4} \delta_{1,1} + \frac{3}{4} \delta_{1,2}")


def test_index_base_slip_gets_a_note():
    result = check_formula(K2, (3, 3), ISSUE_SUM)  # a 0-based formula read 1-based
    assert not result.ok
    assert result.notes == ("with indices starting at 0 (--index-base 0) this formula is correct",)


def test_limited_sum_outside_an_array_is_zero_padding_with_a_note():
    text = r"\frac{\partial E}{\partial x_{i,j}} = \sum_{m=0}^{1}\sum_{n=0}^{1} " \
           r"\delta_{i-m,j-n} w_{m,n}"
    result = check_formula(K2, (3, 3), text, index_base=0)
    assert result.ok
    assert result.notes == (r"\delta_{0,-1} and any other element outside \delta were taken as "
                            r"0 (zero padding)",)
    assert result.report().endswith(result.notes[0])


@pytest.mark.parametrize("layer, text, base, message", [
    (K2, r"\frac{\partial E}{\partial w_{3,3}} = \delta_{1,1}", 1,
     r"\frac{\partial E}{\partial w_{3,3}} does not exist: the kernel row index of w runs "
     "from 1 to 2"),
    (K2, "dL/dw[1,1] = g[1,1]*x[0,1]", 1,
     "x[0,1] does not exist: the row index of x runs from 1 to 3"),
    (K2, "dL/dw[1,1] = g[2,2,1]", 1, "g takes 2 indices here (row, column: 2 x 2) (or all 4,"),
    (Conv2d(in_channels=2, out_channels=3), "dL/dw[i,j] = sum(g[m,n]*x[i+m,j+n], m, n)", 1,
     "w takes 4 indices here (output channel, input channel, kernel row, kernel column: "
     "3 x 2 x 2 x 2)"),
    (Conv2d(bias=False), "dL/db = sum(g[i,j], i, j)", 1, "this layer has no gradient for the bias"),
    (Conv2d(bias=False), "dL/dx[1,1] = g[1,1] w[1,1] + b", 1,
     "b (the bias) is not part of this layer"),
    (K2, "dL/dx[i,j] = sum(g[k,j]*w[m,n], m, n)", 1, "index k is not on the left side"),
    (K2, r"dL/dw_{i,j} = \sum_{m=1}^{K} \delta_{m,1} a_{i+m-1,j}", 1,
     "the limits of the sum over m use K, which is not an index here: write the number"),
    (K2, "dL/dx[i,j] = sum(g[i,j]*w[1,1], i)", 1, "i is an index of the left side"),
    (K2, r"dL/dx[1,1] = \sum_k g_{1,1} w_{1,1}", 1, "the sum over k has no limits and no term"),
    (K2, "dL/dx[1,1] = z[1,1]", 1, "z is the layer output"),
    (K2, "dL/dz[1,1] = g[1,1]", 1, "dL/dz is the upstream gradient"),
    (K2, "dL/dx[i+1,j] = g[i,j]", 1, "indices on the left side must be numbers or single"),
])
def test_unusable_formulas(layer, text, base, message):
    with pytest.raises(FormulaError) as caught:
        check_formula(layer, (3, 3), text, index_base=base)
    assert message in str(caught.value)
    assert "^" in str(caught.value).splitlines()[-1]


# -- the command line ------------------------------------------------------------------------
def _run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_check_command_issue_examples(capsys):
    status, out, _ = _run(capsys, "check", "conv2d", "--kernel", "2", "--input", "3x3",
                          ISSUE_RIGHT)
    assert status == 0 and out.startswith("correct: ")
    status, out, _ = _run(capsys, "check", "conv2d", "--kernel", "2", "--input", "3x3",
                          "--index-base", "0", ISSUE_SUM)
    assert status == 0 and "all 4 elements" in out


def test_check_command_exit_codes(capsys):
    status, out, err = _run(capsys, "check", "conv2d", "--kernel", "2", "--input", "3x3",
                            ISSUE_SUM)
    assert status == 1 and out.startswith("wrong: 4 of 4 elements") and not err
    status, out, err = _run(capsys, "check", "conv2d", "--kernel", "2", "--input", "3x3",
                            "dL/dw[1,1] = g[1,1")
    assert status == 2 and not out
    assert err.startswith("symbackprop check: error: this '[' is never closed")
    assert "Traceback" not in err
    status, _, err = _run(capsys, "check", "conv2d", "--kernel", "2", "--input", "3x3",
                          "dL/dw[3,3] = g[1,1]")
    assert status == 2 and "does not exist" in err
    status, _, err = _run(capsys, "check", "conv2d", "--kernel", "4", "--input", "3x3",
                          "dL/dw[1,1] = g[1,1]")
    assert status == 2 and "smaller than the dilated kernel" in err
