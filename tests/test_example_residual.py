"""examples/train_residual.py: a residual CNN with batch norm and softmax cross-entropy,
made only of generated modules, reaches its stated accuracy (run as a user runs it)."""

import json
import subprocess
import sys

from conftest import REPO

from symbackprop.catalog import CATALOG, RESIDUAL_LOSS, RESIDUAL_NETWORK
from symbackprop.render.codegen import generate, module_filename

EXAMPLE = REPO / "examples" / "train_residual.py"


def run(*args):
    return subprocess.run([sys.executable, str(EXAMPLE), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def test_the_defaults_reach_the_stated_accuracy():
    result = run()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("synthetic digits: 4800 to train, 1200 to test")
    assert "loss crossentropyloss_mean" in lines[0]
    assert len([line for line in lines if line.startswith("epoch")]) == 6
    assert "reached the stated 95%" in lines[-1]


def test_a_short_run_reports_falling_short():
    result = run("--epochs", "1", "--limit", "320", "--target", "0.99")
    assert result.returncode == 1 and "BELOW the stated 99%" in result.stdout


def test_the_network_and_loss_are_the_committed_generated_modules():
    for layer in (RESIDUAL_NETWORK, RESIDUAL_LOSS):
        assert any(entry.layer == layer for entry in CATALOG)
        path = REPO / "generated" / module_filename(layer)
        assert path.read_text(encoding="utf-8") == generate(layer)
    kinds = {layer.kind for layer in RESIDUAL_NETWORK.layers}
    assert {"batchnorm2d", "conv2d", "relu", "maxpool2d", "linear"} <= kinds
    assert '"layer": "residual"' in json.dumps(RESIDUAL_NETWORK.spec())
