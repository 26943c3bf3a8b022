"""examples/train_digits.py: a small CNN made only of generated code reaches its
stated accuracy (run as a user runs it, in a subprocess)."""

import importlib.util
import subprocess
import sys

import pytest
from conftest import REPO

from symbackprop.catalog import CATALOG, DIGITS_NETWORK
from symbackprop.render.codegen import generate, module_filename

EXAMPLE = REPO / "examples" / "train_digits.py"


def run(*args):
    return subprocess.run([sys.executable, str(EXAMPLE), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_synthetic_digits_reach_the_stated_accuracy():
    # A shorter run than the default 15 epochs on 4800 images (8 s): if 6 epochs on 3200
    # of them reach the stated accuracy (96.4% with seed 0), the default run does too.
    result = run("--synthetic", "--epochs", "6", "--limit", "3200")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("synthetic digits: 3200 to train, 1200 to test")
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 6 and all("test accuracy" in line and "[####" in line
                                    for line in epochs)
    assert "reached the stated 95%" in lines[-1]


def test_a_short_run_learns_and_reports_falling_short():
    result = run("--synthetic", "--epochs", "2", "--limit", "400", "--target", "0.99")
    assert result.returncode == 1
    assert "BELOW the stated 99%" in result.stdout


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                    reason="scikit-learn (the optional extra) is not installed")
def test_scikit_learn_digits_reach_the_stated_accuracy():
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("scikit-learn digits: 1437 to train, 360 to test")
    assert "reached the stated 95%" in result.stdout.splitlines()[-1]


def test_the_network_is_the_committed_generated_module():
    assert any(entry.layer == DIGITS_NETWORK for entry in CATALOG)
    path = REPO / "generated" / module_filename(DIGITS_NETWORK)
    assert path.read_text(encoding="utf-8") == generate(DIGITS_NETWORK)
