"""The command line against careless or hostile input (issue 11): numbers, closed
pipes, spec files, output files.  Called in-process through ``cli.main``; a real
subprocess only where the process itself matters (a closed pipe, a FIFO)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO

from symbackprop.cli import NUMBER_LIMIT, main

HUGE = "1" * 5000  # past Python's 4300-digit integer-conversion limit


def error_of(capsys, argv) -> str:
    """Run ``argv``; assert exit 2 with a clear message (no traceback); return stderr."""
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and "sys.set_int_max_str_digits" not in error
    return error


# -- numbers (item 12) --------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_terms_must_be_at_least_one(capsys, value):
    error = error_of(capsys, ["derive", "conv2d", "--max-terms", value])
    assert f"--max-terms must be a whole number >= 1, got {value}" in error


@pytest.mark.parametrize("value", ["1e20", "100000000000000000000", HUGE])
def test_max_terms_refuses_what_is_not_a_bounded_whole_number(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["derive", "conv2d", "--max-terms", value])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "argument --max-terms:" in error
    assert "whole number" in error
    assert "sys.set_int_max_str_digits" not in error
    assert len(error) < 2000  # the 5000 digits are not echoed back


@pytest.mark.parametrize("option", ["--kernel", "--stride", "--padding", "--dilation", "--input"])
def test_a_5000_digit_layer_number_names_the_option_and_the_bound(capsys, option):
    error = error_of(capsys, ["derive", "conv2d", option, HUGE])
    assert f"{option}: " in error
    assert f"at most {NUMBER_LIMIT:,}" in error
    assert len(error) < 300


@pytest.mark.parametrize("option", ["--batch", "--in-channels", "--out-channels", "--groups"])
def test_a_5000_digit_count_names_the_option_and_the_bound(capsys, option):
    with pytest.raises(SystemExit):
        main(["derive", "conv2d", option, HUGE])
    error = capsys.readouterr().err
    assert f"argument {option}: " in error and f"at most {NUMBER_LIMIT:,}" in error
    assert len(error) < 2000


def test_a_5000_digit_number_in_a_spec_names_the_bound(capsys):
    spec = '[{"layer": "conv2d", "kernel_size": ' + HUGE + "}]"
    error = error_of(capsys, ["derive", "sequential", "--spec", spec])
    assert "kernel_size" in error or "too large" in error
    assert f"at most {NUMBER_LIMIT:,}" in error
    assert len(error) < 300


def test_numbers_within_the_bound_still_work(capsys):
    assert main(["derive", "conv2d", "--kernel", "2", "--max-terms", str(NUMBER_LIMIT)]) == 0
    assert "z11" in capsys.readouterr().out


# -- a closed standard output (item 12) ---------------------------------------------

def run_into_closed_pipe(*args):
    """Run ``symbackprop ARGS`` with stdout a pipe whose reader is already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([sys.executable, "-m", "symbackprop", *args], cwd=REPO,
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [
    ["derive", "conv2d", "--input", "8x8"],
    ["latex", "conv2d"],
    ["generate", "relu", "--print"],
    ["check", "conv2d", "--kernel", "2", "--input", "3x3",
     "dL/db = sum(g[i,j], i, j)"],
])
def test_a_closed_pipe_ends_quietly(args):
    result = run_into_closed_pipe(*args)
    assert result.stderr == ""
    assert result.returncode == 141  # as a process ended by SIGPIPE


def test_help_into_a_closed_pipe_is_quiet():
    assert run_into_closed_pipe("derive", "conv2d", "--help").stderr == ""


def test_piping_into_head_prints_nothing_on_stderr():
    result = subprocess.run("symbackprop derive conv2d --input 8x8 | head -1", shell=True,
                            cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ,
                                 "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"})
    assert result.stdout.startswith("Conv2d 1->1, kernel 2x2")
    assert result.stderr == ""


# -- spec files (items 10, 11, 12) --------------------------------------------------

def test_a_spec_linked_to_dev_zero_is_refused_without_reading_it(tmp_path, capsys):
    link = tmp_path / "net.json"
    link.symlink_to("/dev/zero")
    error = error_of(capsys, ["derive", "sequential", "--spec", str(link)])
    assert f"--spec: {str(link)!r} is a device" in error
    assert "regular JSON file" in error


def test_a_spec_folder_is_refused(tmp_path, capsys):
    error = error_of(capsys, ["derive", "sequential", "--spec", str(tmp_path)])
    assert f"{str(tmp_path)!r} is a folder" in error


def test_a_missing_spec_file_is_named(tmp_path, capsys):
    missing = tmp_path / "missing.json"
    error = error_of(capsys, ["derive", "sequential", "--spec", str(missing)])
    assert f"cannot read spec file {str(missing)!r}" in error


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_spec_is_refused_at_once(tmp_path):
    fifo = tmp_path / "net.json"
    os.mkfifo(fifo)  # nobody ever writes to it: reading it would wait forever
    result = subprocess.run([sys.executable, "-m", "symbackprop", "derive", "sequential",
                             "--spec", str(fifo)], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert f"--spec: {str(fifo)!r} is a FIFO (named pipe)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_spec_file_over_the_size_bound_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("symbackprop.core.layers.SPEC_MAX_BYTES", 100)
    path = tmp_path / "net.json"
    path.write_text('[{"layer": "relu"}' + " " * 200 + "]")
    error = error_of(capsys, ["derive", "sequential", "--spec", str(path)])
    assert f"spec file {str(path)!r} is larger than 100 bytes" in error


def test_the_spec_size_bound_is_a_mebibyte(tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_text('[{"layer": "relu"}' + " " * (1 << 20) + "]")
    error = error_of(capsys, ["derive", "sequential", "--spec", str(path)])
    assert "larger than 1,048,576 bytes" in error


def test_a_spec_file_that_is_not_utf8_is_named(tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_bytes(b'[{"layer": "relu"}]\xff')
    error = error_of(capsys, ["derive", "sequential", "--spec", str(path)])
    assert f"spec file {str(path)!r} is not UTF-8 text: byte 0xff at offset 19" in error


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_refused_with_exit_2(tmp_path, capsys, depth):
    path = tmp_path / "net.json"
    path.write_text("[" * depth + "]" * depth)
    error = error_of(capsys, ["derive", "sequential", "--spec", str(path)])
    assert f"nests brackets {depth} deep" in error and "at most 32" in error
    inline = error_of(capsys, ["derive", "sequential", "--spec", "[" * depth + "]" * depth])
    assert f"--spec: the spec nests brackets {depth} deep" in inline


def test_brackets_inside_strings_do_not_count_as_nesting(capsys):
    spec = '[{"layer": "relu", "note": "' + "[" * 100 + '"}]'
    error = error_of(capsys, ["derive", "sequential", "--spec", spec])
    assert "takes no parameters" in error or "'note'" in error
    assert "nests brackets" not in error


def test_a_readable_spec_file_still_works(tmp_path, capsys):
    path = tmp_path / "net.json"
    path.write_text('{"input": [1, 4, 4], "layers": [{"layer": "conv2d", "kernel_size": 2}, '
                    '{"layer": "relu"}]}')
    assert main(["derive", "sequential", "--spec", str(path)]) == 0
    assert "delta" in capsys.readouterr().out


def test_a_long_spec_that_is_not_a_layer_is_quoted_short(capsys):
    spec = '{"kernel": [' + ", ".join(["12345"] * 20000) + "]}"
    error = error_of(capsys, ["derive", "sequential", "--spec", spec])
    assert 'a layer spec is a dict with a "layer" key' in error
    assert len(error) < 400


def test_an_unhashable_layer_kind_is_a_clear_error(capsys):
    error = error_of(capsys, ["derive", "sequential", "--spec", '[{"layer": ["conv2d"]}]'])
    assert "unknown layer ['conv2d']" in error


def test_a_spec_with_too_many_layers_is_refused_before_deriving(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("derived a spec over the layer limit")
    monkeypatch.setattr("symbackprop.core.chain.derive_instance", refuse)
    path = tmp_path / "net.json"
    path.write_text('{"input": [1, 1, 1], "layers": [' + ", ".join(['{"layer": "relu"}'] * 1001)
                    + "]}")
    error = error_of(capsys, ["derive", "sequential", "--spec", str(path)])
    assert "names 1,001 layers, more than the 1,000 a spec may have" in error
