"""Checking hand-written pooling backward functions (stage: (layer, function) -> ImplCheck).

The functions are in tests/student_pool.py: right ones, and one per classic
mistake.  The oracle (the derivation evaluated numerically, the max-pooling
indicator evaluated on the input) is itself checked against the independent loops
of tests/reference.py and against SymPy evaluating the derivation at the numbers.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import student_pool as student
import sympy
from conftest import REPO
from reference import avgpool2d_backward, maxpool2d_backward

from symbackprop import AvgPool2d, ImplementationError, MaxPool2d, check_impl, derive
from symbackprop.check.impl import NumericGradients, input_sizes
from symbackprop.cli import main
from symbackprop.kinds.pool2d.check import (
    distinct_input,
    every_tied_maximum,
    last_maximum,
    overwritten,
    tied_input,
    tied_maxima_share,
)

STUDENT_FILE = str(Path(student.__file__))
SIDE_BY_SIDE = MaxPool2d(2)
OVERLAPPING = MaxPool2d(2, stride=1)
PADDED = MaxPool2d(3, stride=2, padding=1)
AVG_PADDED = AvgPool2d(3, stride=2, padding=1)
AVG_PADDED_COUNT = AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
AVG_OVERLAPPING = AvgPool2d(2, stride=1)

# (layer, input size): windows side by side, overlapping, with gaps (stride > window),
# strides that leave rows unread, padding, rectangular windows
POOL_GRID = [
    (MaxPool2d(2), (4, 6)), (MaxPool2d(2), (5, 5)), (MaxPool2d(2, stride=1), (4, 3)),
    (MaxPool2d(3, stride=2, padding=1), (6, 5)), (MaxPool2d((2, 3), stride=(1, 2)), (4, 7)),
    (MaxPool2d(2, stride=3), (7, 8)), (MaxPool2d((3, 5), stride=1, padding=(1, 2)), (3, 4)),
]


def _case_id(value):
    return value.describe() if hasattr(value, "describe") else "x".join(map(str, value))


def _values(derivation, rng, ties=False):
    x = rng.integers(-1, 2, derivation.input_shape).astype(float) if ties \
        else rng.standard_normal(derivation.input_shape)
    return {"x": x, "g": rng.standard_normal(derivation.output_shape)}


def _symmetric(padding):
    top, bottom, left, right = padding
    assert top == bottom and left == right
    return (top, left)


@pytest.mark.parametrize("layer, size", POOL_GRID, ids=_case_id)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_numeric_max_pool_truth_matches_the_reference(layer, size, ties):
    derivation = derive(layer, (2, *size), 2)
    values = _values(derivation, np.random.default_rng(3), ties)
    got = NumericGradients(derivation)(values)["x"]
    expected = maxpool2d_backward(values["x"], values["g"], layer.kernel_size, layer.stride,
                                  _symmetric(layer.padding))
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("layer, size", POOL_GRID, ids=_case_id)
def test_numeric_avg_pool_truth_matches_the_reference(layer, size, count_include_pad):
    layer = AvgPool2d(layer.kernel_size, layer.stride, layer.padding,
                      count_include_pad=count_include_pad)
    derivation = derive(layer, (2, *size), 2)
    values = _values(derivation, np.random.default_rng(4))
    got = NumericGradients(derivation)(values)["x"]
    expected = avgpool2d_backward(values["x"], values["g"], layer.kernel_size, layer.stride,
                                  _symmetric(layer.padding), count_include_pad)
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_numeric_indicator_agrees_with_sympy_on_ties():
    # the same derivation evaluated by SymPy itself: IsWindowMax(...) with numbers in it
    derivation = derive(PADDED, (4, 5), 1)
    values = _values(derivation, np.random.default_rng(5), ties=True)
    numbers = {symbol: value for name in ("x", "g") for symbol, value in zip(
        sympy.flatten(getattr(derivation, name).tolist()), values[name].ravel())}
    by_sympy = np.array([float(element.xreplace(numbers)) for element in
                         sympy.flatten(derivation.grad_x.tolist())])
    got = NumericGradients(derivation)(values)["x"]
    np.testing.assert_allclose(got.ravel(), by_sympy, atol=1e-12)


def test_indicator_rules():
    windows = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, 1.0, 2.0, 3.0]])
    for candidate, last, every, share in [
        ([2, 3, 3], [1, 1, 1], [1, 1, 1], [0.5, 0.25, 1]),
        ([1, 0, 0], [0, 0, 0], [1, 1, 0], [0.5, 0.25, 0]),
    ]:
        candidates = np.array(candidate)
        np.testing.assert_array_equal(last_maximum(windows, candidates), last)
        np.testing.assert_array_equal(every_tied_maximum(windows, candidates), every)
        np.testing.assert_array_equal(tied_maxima_share(windows, candidates), share)


def test_overwriting_keeps_one_window_per_element():
    # 1x3 input, windows of 2 with stride 1: x[1] is in both windows
    derivation = derive(AvgPool2d((1, 2), stride=1), (1, 3))
    terms = NumericGradients(derivation).terms({"x": np.zeros((1, 1, 1, 3)),
                                                "g": np.array([[[[4.0, 8.0]]]])}, "x")
    np.testing.assert_allclose(terms.total().ravel(), [2, 6, 4])
    np.testing.assert_allclose(overwritten(terms).ravel(), [2, 4, 4])             # last wins
    np.testing.assert_allclose(overwritten(terms, last=False).ravel(), [2, 2, 4])  # first wins


def test_inputs_distinct_and_tied():
    rng = np.random.default_rng(0)
    x = distinct_input(rng, (2, 2, 5, 5))
    assert len(np.unique(x.astype(np.float32))) == x.size and (x < 0).mean() > 0.6
    derivation = derive(SIDE_BY_SIDE, (2, 4, 4), 2)
    truth = NumericGradients(derivation)
    g = rng.standard_normal(derivation.output_shape)
    tied = tied_input(rng, derivation.input_shape, truth, g)
    assert set(np.unique(tied)) <= {-1.0, 0.0, 1.0}
    first = truth({"x": tied, "g": g})["x"]
    assert not np.allclose(first, truth({"x": tied, "g": g}, last_maximum)["x"])
    one_by_one = derive(MaxPool2d(1), (2, 3, 3), 2)
    assert tied_input(rng, one_by_one.input_shape, NumericGradients(one_by_one),
                      rng.standard_normal(one_by_one.output_shape)) is None


def test_sizes_cover_uneven_strides_and_every_case_runs():
    sizes = input_sizes(PADDED)
    assert any(PADDED.output_size(size) == PADDED.output_size((size[0] - 1, size[1]))
               for size in sizes)  # a size the stride leaves a row of unread
    result = check_impl(PADDED, student.max_backward)
    assert [case.input_size for case in result.cases if not case.ties] == sizes
    (tied,) = [case for case in result.cases if case.ties]
    assert tied.derivation.input_shape[:2] == (2, 2)  # batch 2, 2 channels
    assert all(case.batch == 2 for case in result.cases)
    # no input with ties for average pooling, nor for a 1x1 window
    assert not any(case.ties for case in check_impl(AVG_PADDED, student.avg_backward).cases)
    assert not any(case.ties for case in check_impl(MaxPool2d(1), student.max_backward).cases)


@pytest.mark.parametrize("layer, function", [
    (SIDE_BY_SIDE, student.max_backward), (SIDE_BY_SIDE, student.max_backward_tuple),
    (PADDED, student.max_backward), (PADDED, student.max_backward_switches),
    (OVERLAPPING, student.max_backward_switches), (MaxPool2d(2, stride=3), student.max_backward),
    (AVG_PADDED, student.avg_backward), (AVG_PADDED_COUNT, student.avg_backward),
    (AVG_OVERLAPPING, student.avg_backward), (AvgPool2d(2), student.avg_backward_kron),
], ids=lambda value: getattr(value, "__name__", None) or value.describe())
def test_right_implementations_are_correct(layer, function):
    result = check_impl(layer, function)
    assert result.ok, result.report()
    assert result.wrong_gradients == () and result.mistakes == {}
    report = result.report()
    assert report.startswith(f"correct: {Path(STUDENT_FILE).name}:{function.__name__} (grad_x)")
    if layer.kind == "maxpool2d":
        assert result.ties_ok is True
        assert "ties: where a window holds equal maxima, it sends the window's gradient to " \
               "the first of them in row-major order, as it should" in " ".join(report.split())
    else:
        assert result.ties_ok is None and "ties" not in report


@pytest.mark.parametrize("function, layer, mistake, ties_only", [
    (student.max_backward_copy_to_window, SIDE_BY_SIDE,
     "gradient copied to every element of the window", False),
    (student.max_backward_copy_to_window, PADDED,
     "gradient copied to every element of the window", False),
    (student.max_backward_mask, SIDE_BY_SIDE, "gradient copied to every tied maximum", True),
    (student.max_backward_mask, OVERLAPPING, "gradient copied to every tied maximum", True),
    (student.max_backward_split_ties, SIDE_BY_SIDE,
     "gradient split equally among tied maxima", True),
    (student.max_backward_split_ties, PADDED, "gradient split equally among tied maxima", True),
    (student.max_backward_last_maximum, SIDE_BY_SIDE,
     "gradient sent to the last maximum instead of the first", True),
    (student.max_backward_last_maximum, OVERLAPPING,
     "gradient sent to the last maximum instead of the first", True),
    (student.max_backward_overwrite, OVERLAPPING,
     "overlapping windows overwritten instead of added", False),
    (student.max_backward_overwrite, PADDED,
     "overlapping windows overwritten instead of added", False),
    (student.max_backward_zero_padding, PADDED, "padding taken as zeros", False),
    (student.max_backward_padding_not_removed, PADDED, "padding not removed", False),
    (student.avg_backward_not_divided, AVG_PADDED, "gradient not divided", False),
    (student.avg_backward_not_divided, AVG_PADDED_COUNT, "gradient not divided", False),
    (student.avg_backward_not_divided, AvgPool2d(2), "gradient not divided", False),
    (student.avg_backward_count_divisor, AVG_PADDED, "padding counted wrongly in the divisor",
     False),
    (student.avg_backward_area_divisor, AVG_PADDED_COUNT,
     "padding counted wrongly in the divisor", False),
    (student.avg_backward_overwrite, AVG_OVERLAPPING,
     "overlapping windows overwritten instead of added", False),
    (student.avg_backward_overwrite, AVG_PADDED_COUNT,
     "overlapping windows overwritten instead of added", False),
    (student.avg_backward_overwrite_by_offset, AVG_OVERLAPPING,
     "overlapping windows overwritten instead of added", False),
], ids=lambda value: getattr(value, "__name__", None))
def test_each_known_mistake_is_named(function, layer, mistake, ties_only):
    result = check_impl(layer, function)
    assert not result.ok
    assert result.wrong_gradients == ("x",)
    assert result.mistakes["x"].name == mistake
    report = result.report()
    assert f"likely mistake: {mistake}" in report and report.count("likely mistake") == 1
    if ties_only:
        assert result.ties_ok is False
        assert all(case.ok for case in result.cases if not case.ties)
        assert "returns a wrong grad_x when windows hold equal maxima (ties)" in report
        assert "grad_x: right on every input with distinct values, wrong on the input with " \
               "ties" in report
        assert " with ties: " in report  # the element map is the one of the input with ties
    else:
        assert not all(case.ok for case in result.cases if not case.ties)


def test_mistakes_that_need_overlap_or_padding_go_unnoticed_without_them():
    # overwriting is harmless when windows do not overlap: the report says it was not tested
    result = check_impl(SIDE_BY_SIDE, student.max_backward_overwrite)
    assert result.ok
    assert "the windows of this layer do not overlap" in result.report()
    assert "do not overlap" not in check_impl(OVERLAPPING, student.max_backward).report()
    # both divisors agree without padding
    assert check_impl(AVG_OVERLAPPING, student.avg_backward_count_divisor).ok


def test_report_of_a_mistake_with_ties():
    result = check_impl(SIDE_BY_SIDE, student.max_backward_last_maximum)
    lines = result.report().splitlines()
    tied = [case for case in result.cases if case.ties][0]
    size = f"{tied.input_size[0]}x{tied.input_size[1]}"
    assert f"  input {size}  grad_x WRONG  (ties: equal maxima in windows)" in lines
    assert sum(line.endswith("grad_x ok") or "grad_x ok  (" in line for line in lines) == 4
    wrong = tied.results["x"].wrong
    assert f"  on input {size} with ties: {int(wrong.sum())} of {wrong.size} elements wrong " \
           f"(indices 0-based)" in lines


def test_wrong_shape_gets_no_name_but_its_shape():
    result = check_impl(AvgPool2d(2), student.avg_backward_kron_uncropped)
    assert result.wrong_gradients == ("x",) and result.mistakes == {}
    assert "it has shape (2, 2, 4, 4), expected (2, 2, 5, 5)" in result.report()


def test_functions_that_raise_or_return_the_wrong_thing():
    # It raises where the stride leaves rows unread, and is still judged on the other sizes.
    result = check_impl(SIDE_BY_SIDE, student.max_backward_raises)
    assert result.raised_cases and result.returned_cases and not result.ok
    message = result.report()
    assert "raised ValueError: cannot reshape" in message and "student_pool.py" in message
    assert "(the stride leaves rows/columns unread)" in message
    with pytest.raises(ImplementationError) as caught:
        check_impl(SIDE_BY_SIDE, student.max_backward_returns_pair)
    assert "returned a tuple of 2 on input" in str(caught.value)
    assert "expected grad_x alone or the 1-tuple (grad_x,)" in str(caught.value)


def test_float32_implementations_pass():
    def backward(x, grad_out, kernel_size, stride, padding):
        x32, g32 = x.astype(np.float32), grad_out.astype(np.float32)
        return student.max_backward_switches(x32, g32, kernel_size, stride, padding)

    result = check_impl(PADDED, backward)
    assert result.ok, result.report()


def test_layer_keywords_are_passed_by_name():
    # the function runs in a child process: what it received comes back as its verdict
    def backward(x, grad_out, kernel_size, stride, padding, count_include_pad):
        seen = (kernel_size, stride, padding, count_include_pad)
        if seen != (3, 2, 1, False):
            raise AssertionError(f"received {seen}")
        return student.avg_backward(x, grad_out, kernel_size, stride, padding,
                                    count_include_pad)

    assert check_impl(AVG_PADDED_COUNT, backward).ok
    with pytest.raises(ImplementationError, match=r"received \(3, 2, 1, True\)"):
        check_impl(AVG_PADDED, backward)


# -- the command line --------------------------------------------------------------------------
def test_check_impl_command_exit_codes_for_pooling(capsys):
    arguments = ["maxpool2d", "--kernel", "3", "--stride", "2", "--padding", "1"]
    assert main(["check-impl", f"{STUDENT_FILE}:max_backward", *arguments]) == 0
    assert capsys.readouterr().out.startswith("correct: ")
    assert main(["check-impl", f"{STUDENT_FILE}:max_backward_split_ties", *arguments]) == 1
    assert "likely mistake: gradient split equally among tied maxima" in capsys.readouterr().out
    assert main(["check-impl", f"{STUDENT_FILE}:max_backward_returns_pair", *arguments]) == 2
    out, err = capsys.readouterr()
    assert not out and err.startswith("symbackprop check-impl: error: ")
    average = ["avgpool2d", "--kernel", "3", "--stride", "2", "--padding", "1",
               "--no-count-include-pad"]
    assert main(["check-impl", f"{STUDENT_FILE}:avg_backward", *average]) == 0
    assert main(["check-impl", f"{STUDENT_FILE}:avg_backward_area_divisor", *average]) == 1
    assert "likely mistake: padding counted wrongly in the divisor" in capsys.readouterr().out


def _run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", "check-impl", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("function, layer, status, text", [
    ("max_backward", ["maxpool2d"], 0, "correct: "),
    ("max_backward_last_maximum", ["maxpool2d"], 1,
     "likely mistake: gradient sent to the last maximum instead of the first"),
    ("avg_backward_overwrite", ["avgpool2d", "--stride", "1"], 1,
     "likely mistake: overlapping windows overwritten instead of added"),
    ("max_backward_raises", ["maxpool2d"], 1, "raised ValueError"),
    ("avg_backward", ["avgpool2d", "--padding", "2"], 2,
     "padding must be at most half the window"),
])
def test_command_line_subprocess(function, layer, status, text):
    run = _run(f"{STUDENT_FILE}:{function}", *layer)
    assert run.returncode == status, run.stdout + run.stderr
    assert text in (run.stdout if status < 2 else run.stderr)
    assert "Traceback" not in run.stderr
    if status == 2:
        assert not run.stdout and len(run.stderr.strip().splitlines()) == 1
