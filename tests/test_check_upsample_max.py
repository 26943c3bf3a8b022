"""``upsample`` in a max pooling rule routes each error to its window's maximum.

The course notes write max pooling's backward as ``\\delta^{l-1} = \\operatorname{upsample}
(\\delta^{l}) \\odot f'(z^{l-1})``, meaning each error goes to the argmax of its window,
and symbackprop's own printout writes ``\\operatorname{upsample}_{\\max}(g)``; for mean
pooling the notes' ``upsample`` copies each error into its whole block and they divide by
the window size.  The verdicts are the derivation's (SymPy's sums with the argmax
indicators), not this file's.
"""

from __future__ import annotations

import json

import pytest

from symbackprop.cli import main

CHAIN = json.dumps({"input": [1, 4, 4], "layers": [
    {"layer": "conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 1},
    {"layer": "relu"}, {"layer": "maxpool2d", "kernel_size": 2}]})


def _check(capsys, *args):
    status = main(["check", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("kind, text, right", [
    ("maxpool2d", r"\frac{\partial L}{\partial x} = \mathrm{upsample}(g)", True),
    ("maxpool2d", r"\frac{\partial L}{\partial x} = \operatorname{upsample}_{\max}(g)", True),
    # the mean pooling's rule on a max pooling layer: every element gets a quarter
    ("maxpool2d", r"\frac{\partial L}{\partial x} = \mathrm{upsample}(g) / 4", False),
    ("maxpool2d", r"\frac{\partial L}{\partial x} = \mathrm{kron}(g, \mathbf{1}_{2\times 2})",
     False),
    ("avgpool2d", r"\frac{\partial L}{\partial x} = \mathrm{upsample}(g) / 4", True),
    ("avgpool2d", r"\frac{\partial L}{\partial x} = \mathrm{upsample}(g)", False),
])
def test_one_pooling_layer(capsys, kind, text, right):
    status, out, err = _check(capsys, kind, "--input", "4x4", text)
    assert (status, out.split(":")[0]) == ((0, "correct") if right else (1, "wrong")), \
        (out, err)


def test_upsample_max_belongs_to_max_pooling(capsys):
    status, out, err = _check(capsys, "avgpool2d", "--input", "4x4",
                              r"\frac{\partial L}{\partial x} = \operatorname{upsample}_{\max}(g)")
    assert status == 2 and "upsample_{max} routes each error to its window's maximum" in err
    assert "Traceback" not in err + out


def test_the_course_recurrence_through_max_pooling(capsys):
    rule = r"\delta^{l-1} = \mathrm{upsample}(\delta^{l}) \odot f'(z^{l-1})"
    status, out, err = _check(capsys, "sequential", "--spec", CHAIN, "--layer", "2", rule)
    assert status == 0 and out.startswith("correct: all 16 elements"), (out, err)
    status, out, err = _check(capsys, "sequential", "--spec", CHAIN, "--layer", "2",
                              r"\delta^{l-1} = \mathrm{upsample}(\delta^{l})")
    assert status == 1 and "mistake: the f' factor forgotten" in out, (out, err)
