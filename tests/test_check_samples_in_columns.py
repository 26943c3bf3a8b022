"""Ng's layout: a batch with one sample per column (``dZ`` of shape (features, samples)).

``W^{T} dZ`` and ``dZ A^{T}`` only fit together when each sample is a column; the checker
then reads the rule that way (and says so) instead of calling the shapes wrong.  The
verdicts are the derivation's (SymPy's sums), not this file's.
"""

from __future__ import annotations

import json

import pytest

from symbackprop.cli import main

NG = json.dumps([{"layer": "linear", "in_features": 2, "out_features": 3}, {"layer": "relu"},
                 {"layer": "linear", "in_features": 3, "out_features": 3},
                 {"layer": "sigmoid"}, {"layer": "linear", "in_features": 3, "out_features": 1}])
COLUMNS_NOTE = "read with each sample a column"


def _check(capsys, *args):
    status = main(["check", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("text, right", [
    (r"\frac{\partial L}{\partial x} = W^T g", True),    # Ng: dA_prev = W^T dZ
    (r"\frac{\partial L}{\partial x} = g W", True),      # one sample per row
    (r"\frac{\partial L}{\partial W} = g x^T", True),    # Ng: dW = dZ A_prev^T
    (r"\frac{\partial L}{\partial W} = g^T x", True),    # one sample per row
    (r"\frac{\partial L}{\partial x} = W g", False),     # W not transposed
])
def test_a_fully_connected_layer_in_either_layout(capsys, text, right):
    status, out, err = _check(capsys, "linear", "--in-features", "3", "--out-features", "2",
                              "--batch", "4", text)
    assert status == (0 if right else 1), (out, err)
    assert out.startswith("correct: " if right else "wrong: "), out
    if right:
        assert (COLUMNS_NOTE in out) == ("W^T g" in text or "g x^T" in text), out


def test_ngs_recurrence_on_a_batch(capsys):
    status, out, err = _check(capsys, "sequential", "--batch", "4", "--spec", NG,
                              r"\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]} \odot g'(z^{[l]})")
    assert status == 0 and out.startswith("correct: 2 of 2 equations agree"), (out, err)
    assert COLUMNS_NOTE in out
    status, out, err = _check(capsys, "sequential", "--batch", "4", "--spec", NG, "--layer",
                              "2", r"dZ^{[l]} = W^{[l+1]T} dZ^{[l+1]}")
    assert status == 1 and "mistake: the f' factor forgotten" in out, (out, err)
