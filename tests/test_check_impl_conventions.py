"""check-impl --convention: backward passes as three courses write them (tests/student_courses.py)
are judged right or wrong like the plain convention, in the course's own names."""

import pytest
import student_courses as student
from conftest import REPO

from symbackprop import AvgPool2d, Conv2d, ImplementationError, Linear, MaxPool2d, ReLU, check_impl
from symbackprop.cli import main

FILE = REPO / "tests" / "student_courses.py"


def run(capsys, function, *arguments):
    status = main(["check-impl", f"{FILE}:{function}", *arguments])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


CONV = ["conv2d", "--kernel", "3", "--stride", "2", "--padding", "1", "--in-channels", "2",
        "--out-channels", "3"]
LINEAR = ["linear", "--in-features", "4", "--out-features", "3"]


@pytest.mark.parametrize("function, arguments, convention, names", [
    ("conv_backward_naive", CONV, "cs231n", "(dx, dw, db)"),
    ("conv_backward", CONV, "dlai", "(dA_prev, dW, db)"),
    ("Conv2D", CONV[:-4] + ["--in-channels", "2", "--out-channels", "2"], "class",
     "(grad_x, grad_w, grad_b)"),
    ("max_pool_backward_naive", ["maxpool2d", "--kernel", "2"], "cs231n", "(dx)"),
    ("pool_backward", ["avgpool2d", "--kernel", "3", "--stride", "2"], "dlai", "(dA_prev)"),
    ("relu_backward", ["relu"], "cs231n", "(dx)"),
    ("relu_backward", ["relu"], "dlai", "(dZ)"),
    ("affine_backward", LINEAR, "cs231n", "(dx, dw, db)"),
    ("linear_backward", LINEAR, "dlai", "(dA_prev, dW, db)"),
    ("Dense", LINEAR, "class", "(grad_x, grad_w, grad_b)"),
])
def test_right_implementations_are_correct_in_their_convention(capsys, function, arguments,
                                                                convention, names):
    status, out, err = run(capsys, function, *arguments, "--convention", convention)
    assert status == 0, out + err
    assert out.startswith(f"correct: {FILE}:{function} {names} agrees")


def test_the_course_classic_mistakes_are_named(capsys):
    cases = [
        ("conv_mistake_backward_naive", ["conv2d", "--kernel", "3"], "cs231n",
         "db: wrong for 3 of 3", "bias not summed over the batch"),
        ("conv_flipped_backward", ["conv2d", "--kernel", "3"], "dlai",
         "dA_prev: wrong for 3 of 3", "kernel not rotated"),
        ("affine_mistake_backward", ["linear"], "cs231n", "db: wrong", "bias not summed"),
        ("linear_averaged_backward", ["linear"], "dlai", "dW: wrong",
         "grad_w divided by the batch size"),
        ("Conv2DNoBiasSum", ["conv2d", "--kernel", "3"], "class", "grad_b: wrong",
         "bias not summed over the batch"),
    ]
    for function, arguments, convention, heading, mistake in cases:
        status, out, err = run(capsys, function, *arguments, "--convention", convention)
        assert status == 1, out + err
        assert heading in out and f"likely mistake: {mistake}" in out, out
        assert f"called in the {convention} convention" in out


def test_the_course_max_pooling_that_shares_ties_is_found_wrong_on_ties(capsys):
    # deeplearning.ai's create_mask_from_window marks every maximum of a window: with equal
    # maxima each gets the whole gradient, where the derivative sends it to the first only.
    status, out, _ = run(capsys, "pool_backward", "maxpool2d", "--stride", "1",
                         "--convention", "dlai")
    assert status == 1
    assert "returns a wrong dA_prev when windows hold equal maxima (ties)" in out


def test_layers_a_course_cannot_express_are_refused_with_the_rule(capsys):
    cases = [
        ("conv_backward", ["conv2d", "--kernel", "2x3"], "dlai",
         "a deeplearning.ai convolution has a square f x f kernel (this layer has (2, 3))"),
        ("conv_backward_naive", ["conv2d", "--padding", "0,1,0,1"], "cs231n",
         "one pad for all four sides"),
        ("conv_backward_naive", ["conv2d", "--no-bias"], "cs231n", "a bias"),
        ("pool_backward", ["avgpool2d", "--kernel", "3", "--padding", "1"], "dlai",
         "deeplearning.ai pooling has no padding"),
        ("pool_backward", ["avgpool2d"], "cs231n",
         "cs231n has no avgpool2d layer check-impl knows; for avgpool2d it takes plain, dlai, "
         "class"),
    ]
    for function, arguments, convention, message in cases:
        status, _, err = run(capsys, function, *arguments, "--convention", convention)
        assert status == 2 and message in err, err


def test_functions_that_do_not_fit_the_convention_say_so(capsys, tmp_path):
    status, _, err = run(capsys, "relu_backward", "conv2d", "--convention", "cs231n")
    assert status == 2
    assert "relu_forward does not take 4 arguments: the cs231n convention calls " \
           "conv_forward_naive(x, w, b, conv_param)" in err
    lonely = tmp_path / "lonely.py"
    lonely.write_text("def conv_backward_naive(dout, cache):\n    return dout\n")
    assert main(["check-impl", f"{lonely}:conv_backward_naive", "conv2d", "--convention",
                 "cs231n"]) == 2
    err = capsys.readouterr().err
    assert "needs its forward function, to get the cache: none of conv_forward_naive" in err
    status, _, err = run(capsys, "Dense", "conv2d", "--convention", "class")
    assert status == 2 and "cannot tell what Dense's argument 'in_features' is" in err
    # the dlai functions called as cs231n: the course's call is said with what they raised
    status, _, err = run(capsys, "conv_backward", "conv2d", "--convention", "cs231n")
    assert status == 2 and "raised ValueError" in err
    assert "in the cs231n convention it is called as conv_forward_naive(x, w, b, " in err


def test_python_callables_in_a_convention():
    right = check_impl(Conv2d(2, 3, kernel_size=3, stride=2, padding=1), student.conv_backward,
                       convention="dlai")
    assert right.ok and right.gradients == ("x", "w", "b")
    assert check_impl(MaxPool2d(2), student.max_pool_backward_naive, convention="cs231n").ok
    assert check_impl(AvgPool2d(2), student.pool_backward, convention="dlai").ok
    assert check_impl(ReLU(), student.relu_backward, convention="dlai").ok
    assert check_impl(Linear(3, 2), student.Dense, convention="class").ok
    wrong = check_impl(Linear(3, 2), student.affine_mistake_backward, convention="cs231n")
    assert wrong.wrong_gradients == ("b",) and "db: wrong" in wrong.report()
    with pytest.raises(ImplementationError, match="needs its forward function"):
        check_impl(Linear(3, 2), student.relu, convention="cs231n")
    with pytest.raises(ValueError, match="convention .--convention. must be one of plain"):
        check_impl(Linear(3, 2), student.Dense, convention="pytorch")


def test_cs231n_batch_norm(capsys):
    norm = ["batchnorm1d", "--num-features", "3", "--convention", "cs231n"]
    for function in ("batchnorm_backward", "batchnorm_backward_alt"):
        status = main(["check-impl", f"{REPO / 'tests' / 'student_cs231n_norm.py'}:{function}",
                       *norm])
        out = capsys.readouterr().out
        assert status == 0 and "(dx, dgamma, dbeta) agrees" in out, out
    status = main(["check-impl", f"{REPO / 'tests' / 'student_cs231n_norm.py'}:"
                   "batchnorm_constants_backward", *norm])
    out = capsys.readouterr().out
    assert status == 1 and "likely mistake: mean and variance treated as constants" in out, out
