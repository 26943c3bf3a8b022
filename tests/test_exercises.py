"""The course's exercise: the full convolution commutes, checked with SymPy here (never
with the package's own sums) and in its printouts."""

import itertools

import pytest
import sympy

from symbackprop.cli import main
from symbackprop.core.exercises import full_convolution_commutes


def _full_convolution(first, second):
    """Written independently: each product lands at the sum of its positions (0-based)."""
    rows, columns = first.rows + second.rows - 1, first.cols + second.cols - 1
    out = sympy.zeros(rows, columns)
    for a, b, m, k in itertools.product(range(first.rows), range(first.cols),
                                        range(second.rows), range(second.cols)):
        out[a + m, b + k] += first[a, b] * second[m, k]
    return out


@pytest.mark.parametrize("input_size, kernel", [((3, 3), (2, 2)), ((2, 4), (3, 1)),
                                                ((1, 1), (2, 2))])
def test_the_exercise_matches_sympys_own_full_convolution(input_size, kernel):
    result = full_convolution_commutes(input_size, kernel)
    assert result.equal and result.same_terms
    reference = _full_convolution(result.x, result.w)
    swapped = _full_convolution(result.w, result.x)
    assert sympy.expand(reference - swapped) == sympy.zeros(*reference.shape)
    for i, j in itertools.product(range(reference.rows), range(reference.cols)):
        for products in (result.x_w[i][j], result.w_x[i][j]):
            assert sympy.expand(sum(a * b for a, b in products) - reference[i, j]) == 0
        # x * w lists x first, w * x lists w first: the same products in both
        assert all(str(a).startswith("x") for a, _ in result.x_w[i][j])
        assert all(str(a).startswith("w") for a, _ in result.w_x[i][j])


def test_the_correlation_is_not_commutative():
    result = full_convolution_commutes((3, 3), (2, 2))
    x, w = result.x, result.w
    # corr(x, w)_11 (full, 1-based) reads x_11 under w's last element
    assert result.corr_differs == (0, 0)
    assert sympy.Add(*[a * b for a, b in result.corr_xw[0][0]]) == x[0, 0] * w[1, 1]
    assert sympy.Add(*[a * b for a, b in result.corr_wx[0][0]]) == w[0, 0] * x[2, 2]
    assert result.corr_rotated
    assert result.valid_shape == (2, 2)


def test_text_and_document(capsys, tmp_path):
    assert main(["exercise", "full-convolution-commutes", "--input", "3x3", "--kernel",
                 "2"]) == 0
    text = capsys.readouterr().out
    assert "(x * w)_22 = x11 w22 + x12 w21 + x21 w12 + x22 w11" in text
    assert "(w * x)_22 = w11 x22 + w12 x21 + w21 x12 + w22 x11" in text
    assert "Verified by SymPy" in text and "corr(w, x)_11 = w11 x33" in text
    assert main(["exercise", "full-convolution-commutes", "-o", str(tmp_path / "e.tex")]) == 0
    document = (tmp_path / "e.tex").read_text()
    assert r"(x * w)_{22} &= x_{11}\, w_{22} + x_{12}\, w_{21}" in document
    assert r"\textbf{Verified:}" in document and "NOT verified" not in document
    assert document.count("{") == document.count("}")


@pytest.mark.parametrize("arguments, message", [
    (["--input", "7x3"], "--input: each side must be 1 to 6"),
    (["--kernel", "0"], "--kernel: each side must be 1 to 6"),
    (["--pdf"], "--pdf needs -o FILE.tex"),
])
def test_bad_requests_are_one_line(capsys, arguments, message):
    assert main(["exercise", "full-convolution-commutes", *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


def test_every_option_of_the_exercise_says_what_it_does_and_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["exercise", "--help"])
    text = capsys.readouterr().out.split("\noptions:\n", 1)[1]
    for option in ("--input", "--kernel", "--output", "--pdf"):
        entry = text.split(option, 1)[1].split("\n  -", 1)[0]
        assert "default" in entry, option
