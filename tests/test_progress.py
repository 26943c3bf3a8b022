"""Progress bars on standard error: shown while a command works with stderr on a terminal,
absent otherwise, and never on standard output."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.core import progress

TESTS = Path(__file__).resolve().parent
LONG_DERIVE = ["derive", "conv2d", "--kernel", "3", "--padding", "1", "--input", "16x16"]


def run(capsys, argv, terminal: bool, monkeypatch):
    """``symbackprop ARGV`` in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_a_long_derive_shows_its_stages_on_a_terminal_and_nothing_elsewhere(capsys, monkeypatch):
    # A stage's bar appears once the stage has run for DELAY seconds (and tqdm redraws it
    # at most every 0.1 s): with 0, every stage of this short "long" derive shows at once.
    monkeypatch.setattr(progress, "DELAY", 0)
    status, quiet_out, quiet_err = run(capsys, LONG_DERIVE, False, monkeypatch)
    assert status == 0 and quiet_err == ""
    status, out, err = run(capsys, LONG_DERIVE, True, monkeypatch)
    assert status == 0
    assert out == quiet_out  # the bars change nothing on stdout
    assert "printing" in err and "/256 " in err and "%|" in err  # tqdm's bar, 256 outputs
    assert not progress.enabled()  # on only while the command ran


def test_every_stage_of_a_derive_reports(capsys, monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0)
    _, out, err = run(capsys, ["derive", "conv2d", "--padding", "1"], True, monkeypatch)
    for stage in ("expanding z", "differentiating", "summing the gradients",
                  "proving the dL/dx rule", "writing z out", "printing"):
        assert stage in err, stage
    assert "expanding z" not in out
    _, _, err = run(capsys, ["derive", "conv2d", "--method", "diff"], True, monkeypatch)
    assert "differentiating (sympy.diff)" in err
    _, _, err = run(capsys, ["derive", "avgpool2d"], True, monkeypatch)
    assert "proving the kron rule" in err


def test_quick_work_prints_no_bar_even_on_a_terminal(capsys, monkeypatch):
    status, out, err = run(capsys, ["derive", "conv2d", "--padding", "1"], True, monkeypatch)
    assert status == 0 and "dL/dw22" in out and err == ""


@pytest.mark.parametrize("argv, stage", [
    (["check", "conv2d", "--input", "4x4", "dL/dx[i,j] = sum(g[i-m,j-n]*w[m,n], m, n)"],
     "checking"),
    (["check-impl", f"{TESTS / 'student_conv.py'}:backward", "conv2d", "--kernel", "2"],
     "preparing the inputs and the truth"),
])
def test_checks_report_on_a_terminal_only(capsys, monkeypatch, argv, stage):
    monkeypatch.setattr(progress, "DELAY", 0)
    status, quiet_out, quiet_err = run(capsys, argv, False, monkeypatch)
    assert quiet_err == ""
    again, out, err = run(capsys, argv, True, monkeypatch)
    assert (again, out) == (status, quiet_out) and stage in err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_pdf_compilation_reports_at_once(capsys, monkeypatch, tmp_path):
    argv = ["latex", "conv2d", "--pdf", "-o", str(tmp_path / "handout.tex")]
    status, out, err = run(capsys, argv, True, monkeypatch)  # the real DELAY
    assert status == 0 and "pdflatex" in err and (tmp_path / "handout.pdf").is_file()
    assert "typesetting the gradients" in err
    assert "pdflatex" not in out


def test_library_calls_never_show_a_bar(capsys, monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    derivation = sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3))
    assert derivation.grad_w.shape == (1, 1, 2, 2)
    assert capsys.readouterr().err == ""


def test_track_gives_the_iterable_back_when_off_and_the_same_items_when_on(capsys):
    items = iter(range(5))
    assert progress.track(items, "counting") is items
    with progress.enable():
        assert list(progress.track(range(5), "counting", delay=0)) == [0, 1, 2, 3, 4]
    assert "counting" in capsys.readouterr().err
    assert not progress.enabled()


def test_a_chain_says_which_layer_it_derives(capsys, monkeypatch):
    monkeypatch.setattr(progress, "DELAY", 0)
    argv = ["derive", "sequential", "--spec", '[{"layer": "conv2d"}, {"layer": "relu"}]',
            "--input", "3x3"]
    status, quiet_out, quiet_err = run(capsys, argv, False, monkeypatch)
    assert status == 0 and quiet_err == ""
    status, out, err = run(capsys, argv, True, monkeypatch)
    assert out == quiet_out and "deriving the layers" in err and "/2 " in err
