"""check (formulas with 1 or 3 spatial indices) and check-impl (the named mistakes) for
Conv1d and Conv3d; the students' passes are in tests/student_convnd.py."""

from __future__ import annotations

import pytest
import student_convnd as student
from test_cli import run

from symbackprop import Conv1d, Conv3d
from symbackprop.check.impl import check_impl

STRIDED_1D = Conv1d(2, 2, 3, stride=2, padding=1)
PADDED_3D = Conv3d(2, 2, 2, padding=(1, 0, 0, 1, 1, 1))
STRIDED_3D = Conv3d(1, 2, 2, stride=(1, 2, 1))


@pytest.mark.parametrize("layer", [STRIDED_1D, Conv1d(1, 3, 2, dilation=2, padding="same"),
                                   PADDED_3D, STRIDED_3D])
def test_right_implementation_is_correct(layer):
    result = check_impl(layer, student.backward)
    assert result.ok, result.report()
    assert len(result.cases) >= 3


@pytest.mark.parametrize("function, layer, gradient, mistake", [
    (student.backward_kernel_not_flipped, STRIDED_1D, "x", "kernel not flipped"),
    (student.backward_kernel_not_flipped, PADDED_3D, "x", "kernel not flipped"),
    (student.backward_channels_not_swapped, STRIDED_1D, "x", "channels not swapped"),
    (student.backward_stride_dilation_forgotten, STRIDED_1D, "x", "stride dilation forgotten"),
    (student.backward_padding_not_removed, PADDED_3D, "x", "padding not removed"),
    (student.backward_grad_w_flipped, STRIDED_3D, "w", "kernel gradient flipped"),
    (student.backward_grad_w_channels_exchanged, STRIDED_1D, "w",
     "input and output channels exchanged"),
    (student.backward_bias_first_sample, PADDED_3D, "b", "bias not summed over the batch"),
], ids=lambda value: getattr(value, "__name__", None))
def test_each_known_mistake_is_named(function, layer, gradient, mistake):
    result = check_impl(layer, function)
    assert not result.ok
    assert result.wrong_gradients == (gradient,)
    assert result.mistakes[gradient].name == mistake, result.report()
    assert f"likely mistake: {mistake}" in result.report()


def test_check_impl_on_the_command_line(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("import sys\nsys.path.insert(0, %r)\nfrom student_convnd import *\n"
                    % str(__import__("pathlib").Path(__file__).parent))
    bad = run("check-impl", f"{path}:backward_kernel_not_flipped", "conv1d", "--kernel", "3",
              "--stride", "2")
    assert bad.returncode == 1 and "likely mistake: kernel not flipped" in bad.stdout


@pytest.mark.parametrize("args, formula, verdict", [
    (["conv1d", "--kernel", "3", "--input", "6"], "dL/dx[i] = sum(g[i-m+1]*w[m], m)", 0),
    (["conv1d", "--kernel", "3", "--input", "6"], "dL/dx[i] = sum(g[i+m-1]*w[m], m)", 1),
    (["conv1d", "--kernel", "2", "--stride", "2", "--input", "7", "--index-base", "0"],
     "dL/dw[m] = sum(g[i]*x[2*i+m], i)", 0),
    (["conv3d", "--input", "3"],
     "dL/dw[m,p,q] = sum(g[i,j,k]*x[i+m-1,j+p-1,k+q-1], i, j, k)", 0),
    (["conv3d", "--input", "3"],
     "dL/dx[a,b,c] = sum(g[a-m+1,b-p+1,c-q+1]*w[m,p,q], m, p, q)", 0),
])
def test_check_formulas_with_one_and_three_spatial_indices(args, formula, verdict):
    result = run("check", *args, formula)
    assert result.returncode == verdict, result.stdout + result.stderr
    size = "6" if "6" in args else ("7" if "7" in args else "3x3x3")
    assert f"; input {size};" in result.stdout
