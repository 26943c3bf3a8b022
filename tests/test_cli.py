"""The ``symbackprop`` command line: called in this process through ``cli.main`` (fast),
and once as a user runs it, a real subprocess."""

import contextlib
import io
import subprocess
import sys
from dataclasses import dataclass

import pytest
from conftest import REPO

from symbackprop.cli import main


@dataclass(frozen=True)
class Run:
    """What a run of ``symbackprop`` reports, as :class:`subprocess.CompletedProcess` does."""

    returncode: int
    stdout: str
    stderr: str


def run(*args) -> Run:
    """``symbackprop ARGS`` in this process: ``main`` with standard output and error caught
    (a usage error or ``--help`` exits through argparse: its code is the status)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as stop:
            status = stop.code
    return Run(status, out.getvalue(), err.getvalue())


def run_process(*args) -> subprocess.CompletedProcess:
    """``symbackprop ARGS`` as a user runs it: ``python -m symbackprop`` in a new process."""
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_derive_worked_example():
    """The one real process of this file: the program as installed, start to end."""
    result = run_process("derive", "conv2d", "--kernel", "2", "--padding", "1", "--input", "3x3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Ho = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1" in out
    assert "= floor((3 + 1 + 1 - 1*(2-1) - 1) / 1) + 1 = 4" in out
    assert "z11 = 0 w11 + 0 w12 + 0 w21 + x11 w22 + b" in out
    assert "z22 = x11 w11 + x12 w12 + x21 w21 + x22 w22 + b" in out
    assert "z44 = x33 w11 + 0 w12 + 0 w21 + 0 w22 + b" in out
    assert "dL/dx11 = g11 w22 + g12 w21 + g21 w12 + g22 w11" in out
    assert "dL/dx22 = g22 w22 + g23 w21 + g32 w12 + g33 w11" in out
    assert "dL/db = g11 + g12" in out
    assert "FAILS" not in out and out.count("verified on") == 3


def test_derive_flags():
    result = run("derive", "conv2d", "--kernel", "2x1", "--stride", "2", "--padding", "0,1,1,0",
                 "--dilation", "1", "--in-channels", "2", "--out-channels", "2", "--groups", "2",
                 "--no-bias", "--batch", "2", "--input", "3x4", "--index-base", "0",
                 "--no-padding-terms")
    assert result.returncode == 0, result.stderr
    assert "Conv2d 2->2, kernel 2x1, stride 2, padding (0, 1, 1, 0), groups 2, no bias" \
        in result.stdout
    assert "z[0,0,0,0] = " in result.stdout and "dL/db" not in result.stdout
    assert "0-based" in result.stdout
    assert " 0 w" not in result.stdout


def test_method_diff_prints_the_same_sums():
    collect = run("derive", "conv2d", "--stride", "2", "--input", "4x5")
    diff = run("derive", "conv2d", "--stride", "2", "--input", "4x5", "--method", "diff")
    strip = [line for line in collect.stdout.splitlines() if "(collect)" not in line]
    assert strip == [line for line in diff.stdout.splitlines() if "(diff)" not in line]


@pytest.mark.parametrize("args, message", [
    (["--kernel", "5", "--input", "3x3"], "input_size: the padded input height"),
    (["--groups", "2", "--in-channels", "3"], "groups must divide in_channels"),
    (["--stride", "0"], "stride must be >= 1"),
    (["--padding", "1,2,3"], "--padding takes 1 or 2 or 4 numbers"),
    (["--kernel", "2x"], "--kernel takes whole numbers"),
    (["--input", "300x300", "--in-channels", "3"], "over the limit of 100,000"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = run("derive", "conv2d", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_layer_is_usage_error():
    result = run("derive", "conv9d")
    assert result.returncode == 2 and "invalid choice" in result.stderr
