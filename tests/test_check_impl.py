"""Checking hand-written backward functions (stage: (layer, function) -> ImplCheck).

The functions are in tests/student_conv.py: one right, and one per classic
mistake.  The oracle (the derivation evaluated numerically) is itself checked
against the independent im2col reference of tests/reference.py.
"""

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import student_conv as student
import sympy
from reference import conv2d_backward

from symbackprop import Conv2d, ImplementationError, check_impl, derive
from symbackprop.check.impl import NumericGradients, input_sizes, leaves_unread, load_function
from symbackprop.cli import main
from symbackprop.core.indexing import unread_length
from symbackprop.core.naming import symbol_array

STUDENT_FILE = str(Path(student.__file__))
STRIDED = Conv2d(kernel_size=3, stride=2, padding=1)
SQUARE_CHANNELS = Conv2d(in_channels=2, out_channels=2, kernel_size=2, stride=2)
MORE_OUT_CHANNELS = Conv2d(in_channels=2, out_channels=3, kernel_size=2)


def test_numeric_truth_matches_the_reference(conv_case):
    layer, size, batch = conv_case
    derivation = derive(layer, size, batch)
    rng = np.random.default_rng(1)
    values = {"x": rng.standard_normal(derivation.input_shape),
              "w": rng.standard_normal(layer.weight_shape),
              "g": rng.standard_normal(derivation.output_shape)}
    if layer.bias:
        values["b"] = rng.standard_normal(layer.bias_shape)
    got = NumericGradients(derivation)(values)
    grad_x, grad_w, grad_b = conv2d_backward(
        values["x"], values["w"], values.get("b"), values["g"], stride=layer.stride,
        padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
    np.testing.assert_allclose(got["x"], grad_x, atol=1e-12)
    np.testing.assert_allclose(got["w"], grad_w, atol=1e-12)
    if layer.bias:
        np.testing.assert_allclose(got["b"], grad_b, atol=1e-12)


def test_numeric_truth_evaluates_terms_that_are_not_products():
    # what a pooling layer's derivation may hold: Max, Piecewise, powers, fractions
    x, g = symbol_array("x", (1, 1, 1, 2)), symbol_array("g", (1, 1, 1, 1))
    x0, x1, g0 = x[0, 0, 0, 0], x[0, 0, 0, 1], g[0, 0, 0, 0]
    grad = sympy.Array([[[[sympy.Piecewise((g0, x0 >= x1), (0, True)) + x0 ** 2 / 4,
                           g0 * sympy.Max(x0, x1) - 3 * g0]]]])
    derivation = SimpleNamespace(x=x, g=g, params={}, grads={"x": grad})
    got = NumericGradients(derivation)({"x": np.array([[[[2.0, 1.0]]]]),
                                        "g": np.array([[[[5.0]]]])})["x"]
    np.testing.assert_allclose(got, [[[[5.0 + 1.0, 10.0 - 15.0]]]])


def test_sizes_cover_even_and_uneven_strides():
    sizes = input_sizes(STRIDED)
    unread = [(unread_length(h, 3, 2, 1, 1), unread_length(w, 3, 2, 1, 1)) for h, w in sizes]
    assert (0, 0) in unread                      # the stride divides evenly
    assert any(u[0] and u[1] for u in unread)    # and leaves rows and columns unread
    assert any(h != w for h, w in sizes)         # rectangular
    for h, w in sizes:
        assert min(STRIDED.output_size((h, w))) >= 2
    assert all(unread_length(h, 2, 1, 0, 0) == 0 for h, _ in input_sizes(Conv2d(kernel_size=2)))
    # stride 3, padding 1: two rows unread, one of them a row of x, not padding
    sizes = input_sizes(Conv2d(kernel_size=2, stride=3, padding=1))
    assert max(unread_length(h, 2, 3, 1, 1) for h, _ in sizes) == 2


@pytest.mark.parametrize("layer", [
    STRIDED, Conv2d(kernel_size=2), SQUARE_CHANNELS, MORE_OUT_CHANNELS,
    Conv2d(kernel_size=3, stride=3, padding=2), Conv2d(kernel_size=2, bias=False),
], ids=["stride2-pad1", "k2", "2->2-stride2", "2->3", "stride3-pad2", "no-bias"])
def test_right_implementation_is_correct(layer):
    result = check_impl(layer, student.backward)
    assert result.ok, result.report()
    assert result.wrong_gradients == () and result.mistakes == {}
    assert len(result.cases) >= 3 and all(case.batch == 2 for case in result.cases)
    assert result.report().startswith("correct: ")


def test_convention_without_layer_keywords():
    def backward(x, w, b, grad_z):  # stride and padding fixed, as in a homework
        return student.backward(x, w, b, grad_z, 2, 1)

    assert check_impl(STRIDED, backward).ok
    assert not check_impl(Conv2d(kernel_size=3), backward).ok


@pytest.mark.parametrize("function, layer, gradient, mistake", [
    (student.backward_kernel_not_rotated, STRIDED, "x", "kernel not rotated"),
    (student.backward_kernel_not_rotated, MORE_OUT_CHANNELS, "x", "kernel not rotated"),
    (student.backward_stride_not_undone, STRIDED, "x", "stride not undone"),
    (student.backward_stride_not_undone_in_grad_w, STRIDED, "w", "stride not undone"),
    (student.backward_padding_off_by_one, STRIDED, "x", "padding off by one"),
    (student.backward_padding_off_by_one_in_grad_w, STRIDED, "w", "padding off by one"),
    (student.backward_padding_off_by_one_in_grad_w, Conv2d(kernel_size=2), "w",
     "padding off by one"),
    (student.backward_bias_first_sample, STRIDED, "b", "bias not summed over the batch"),
    (student.backward_bias_batch_mean, STRIDED, "b", "bias not summed over the batch"),
    (student.backward_channels_not_swapped, SQUARE_CHANNELS, "x", "channels not swapped"),
    (student.backward_grad_w_channels_swapped, MORE_OUT_CHANNELS, "w",
     "input and output channels exchanged"),
    (student.backward_grad_w_rotated, STRIDED, "w", "kernel gradient rotated by 180 degrees"),
    (student.backward_bias_last_sample, STRIDED, "b", "bias not summed over the batch"),
    (student.backward_bias_per_sample, STRIDED, "b", "bias not summed over the batch"),
], ids=lambda value: getattr(value, "__name__", None))
def test_each_known_mistake_is_named(function, layer, gradient, mistake):
    result = check_impl(layer, function)
    assert not result.ok
    assert result.wrong_gradients == (gradient,)
    assert result.mistakes[gradient].name == mistake
    report = result.report()
    assert f"returns a wrong grad_{gradient}" in report
    assert f"likely mistake: {mistake}" in report
    assert report.count("likely mistake") == 1


def test_two_mistakes_at_once_on_the_kernel():
    def backward(x, w, b, grad_z, stride=1, padding=0):
        swapped = w.transpose(1, 0, 2, 3)  # w[c, o], and not rotated either
        grad_x, _, _ = student.backward_kernel_not_rotated(x, swapped, b, grad_z, stride,
                                                           padding)
        return (grad_x, student.grad_w_correct(x, w, grad_z, stride, padding),
                grad_z.sum(axis=(0, 2, 3)))

    result = check_impl(SQUARE_CHANNELS, backward)
    assert result.mistakes["x"].name == "kernel not rotated and channels not swapped"


def test_element_map_shows_where():
    result = check_impl(STRIDED, student.backward_kernel_not_rotated)
    case = result.cases[0]
    wrong = case.results["x"].wrong
    report = result.report()
    header = "grad_x[0, 0, :, :] (sample 0, channel 0): X wrong, . right"
    assert header in report
    lines = report.splitlines()
    start = lines.index("  " + header) + 2
    rows = [line.split()[1:] for line in lines[start:start + wrong.shape[2]]]
    assert rows == [["X" if bad else "." for bad in row] for row in wrong[0, 0]]
    assert f"{int(wrong.sum())} of {wrong.size} elements wrong" in report
    assert "largest difference at grad_x[" in report


def test_wrong_shape_is_reported():
    result = check_impl(STRIDED, student.backward_padding_not_cropped)
    assert result.wrong_gradients == ("x",)
    assert result.mistakes["x"].name == "padding not removed"
    case = result.cases[0]
    expected = case.results["x"].expected.shape
    assert f"it has shape {case.results['x'].given.shape}, expected {expected}" in result.report()


def test_unrelated_wrong_values_get_no_name():
    def backward(x, w, b, grad_z, stride=1, padding=0):
        grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
        grad_x[..., 0, 0] += 1.0  # wrong in one corner only
        return grad_x, grad_w, grad_b

    result = check_impl(STRIDED, backward)
    assert result.wrong_gradients == ("x",) and result.mistakes == {}
    assert "likely mistake" not in result.report()
    assert all(int(case.results["x"].wrong.sum()) == 2 for case in result.cases)  # 2 samples


def test_functions_that_raise_or_return_the_wrong_thing():
    with pytest.raises(ImplementationError) as caught:
        check_impl(STRIDED, student.backward_raises)
    message = str(caught.value)
    assert "raised ValueError" in message and "student_conv.py" in message
    assert "grad_x = grad_z.reshape(x.shape)" in message and "on input" in message
    # It raises only where the stride leaves rows unread: the other sizes are still judged.
    result = check_impl(Conv2d(kernel_size=3, stride=2), student.backward_assumes_even_stride)
    assert not result.ok and result.raised_cases and result.returned_cases
    assert all(case.ok for case in result.returned_cases)
    assert all(leaves_unread(case.derivation.layer, case.input_size)
               for case in result.raised_cases)
    message = result.report()
    raised = len(result.raised_cases)
    assert f"raises an exception on {raised} of {len(result.cases)} input sizes" in \
        message.splitlines()[0]
    assert "raised ValueError" in message and "the stride leaves rows/columns unread" in message
    assert "grad_x[n, c] += full[padding:padding + height" in message
    assert "grad_x ok" in message  # the verdicts on the sizes it did return from
    with pytest.raises(ImplementationError, match=r"expected the tuple \(grad_x, grad_w, grad_b\)"):
        check_impl(STRIDED, student.backward_returns_two)


def test_loading(tmp_path):
    assert load_function(f"{STUDENT_FILE}:backward").__name__ == "backward"
    cases = {
        "missing.py:backward": "no such file",
        f"{STUDENT_FILE}:nothere": "has no function 'nothere' (it defines backward",
        "backward": "expected FILE.py:FUNCTION",
    }
    broken = tmp_path / "broken.py"
    broken.write_text("def backward(x, w, b, grad_z)\n    return x\n")
    cases[f"{broken}:backward"] = "SyntaxError on line 1"
    raising = tmp_path / "raising.py"
    raising.write_text("import numpy as np\nvalue = np.zeros(2) + undefined_name\n")
    cases[f"{raising}:backward"] = "importing it raised NameError"
    for spec, message in cases.items():
        with pytest.raises(ImplementationError) as caught:
            load_function(spec)
        assert message in str(caught.value), spec


# -- the command line --------------------------------------------------------------------------
def test_check_impl_command_exit_codes(capsys):
    arguments = ["conv2d", "--kernel", "3", "--stride", "2", "--padding", "1"]
    assert main(["check-impl", f"{STUDENT_FILE}:backward", *arguments]) == 0
    assert capsys.readouterr().out.startswith("correct: ")
    assert main(["check-impl", f"{STUDENT_FILE}:backward_stride_not_undone", *arguments]) == 1
    assert "likely mistake: stride not undone" in capsys.readouterr().out
    assert main(["check-impl", f"{STUDENT_FILE}:backward_raises", *arguments]) == 2
    out, err = capsys.readouterr()
    assert not out and err.startswith("symbackprop check-impl: error: ")
    assert main(["check-impl", "nothere.py:backward", *arguments]) == 2
    assert "no such file" in capsys.readouterr().err


def test_issue_command_line(tmp_path):
    shutil.copy(STUDENT_FILE, tmp_path / "my_conv.py")
    repository = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        [sys.executable, "-m", "symbackprop", "check-impl",
         "my_conv.py:backward_kernel_not_rotated", "conv2d", "--kernel", "3", "--stride", "2",
         "--padding", "1"],
        cwd=tmp_path, capture_output=True, text=True,
        env={"PYTHONPATH": str(repository), "PATH": ""}, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "likely mistake: kernel not rotated" in run.stdout
    assert "Traceback" not in run.stderr
