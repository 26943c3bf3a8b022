"""``symbackprop derive`` for pooling, activations, flatten, linear and chains,
run as a user runs it (a real subprocess)."""

import json
import subprocess
import sys

import pytest
from conftest import REPO


def run(*args):
    return subprocess.run([sys.executable, "-m", "symbackprop", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, lines", [
    (["maxpool2d", "--kernel", "2", "--stride", "1", "--input", "3x3"],
     ["MaxPool2d 2x2, stride 1, padding 0", "  z11 = max(x11, x12, x21, x22)",
      "  dL/dx12 = g11 [x12 = argmax z11] + g12 [x12 = argmax z12]"]),
    (["avgpool2d", "--padding", "1", "--no-count-include-pad", "--input", "3x3"],
     ["AvgPool2d 2x2, stride 2, padding 1, padding left out of the divisor",
      "  z11 = x11", "  z22 = (x22 + x23 + x32 + x33)/4", "  dL/dx12 = g12/2"]),
    (["avgpool2d"],  # default 4x4 input, windows tile it: the kron form, proven
     ["dL/dx = kron(g, ones(2, 2)) / 4 (verified on 16 elements)", "  dL/dx34 = g22/4"]),
    (["leakyrelu", "--slope", "0.2", "--input", "1x2"],
     ["  dL/dx12 = g12 (1 if x12 > 0 else 0.2)"]),
    (["linear", "--in-features", "2", "--out-features", "1", "--no-bias"],
     ["Linear 2->1, no bias", "  z1 = x1 w1 + x2 w2", "  dL/dx2 = g1 w2"]),
    (["flatten", "--index-base", "0"], ["  z7 = x[1,1,1]", "  dL/dx[1,1,1] = g7"]),
])
def test_derive_layers(args, lines):
    result = run("derive", *args)
    assert result.returncode == 0, result.stderr
    for line in lines:
        assert line in result.stdout, line


def test_derive_sequential_from_a_file(tmp_path):
    spec = {"input": [1, 6, 6], "layers": [
        {"layer": "conv2d", "out_channels": 2, "kernel": 3}, {"layer": "relu"},
        {"layer": "maxpool2d", "kernel_size": 2}, {"layer": "flatten"},
        {"layer": "linear", "in_features": 8, "out_features": 3}]}
    path = tmp_path / "net.json"
    path.write_text(json.dumps(spec))
    result = run("derive", "sequential", "--spec", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Sequential, 5 layers: Conv2d 1->2, kernel 3x3")
    assert "      input" in out and "a0: 1 x 1 x 6 x 6" in out
    assert "    delta4 = w5^T delta5" in out
    assert "together with layer 3: delta1 = upsample(delta3) * f'(a1)" in out
    # --input overrides the spec's input
    bigger = run("derive", "sequential", "--spec", str(path), "--input", "8x8")
    assert bigger.returncode == 2 and "layer 5: Linear 8->3 takes in_features = 8" in bigger.stderr


@pytest.mark.parametrize("args, message", [
    (["maxpool2d", "--padding", "2"], "padding must be smaller than kernel_size"),
    (["sequential", "--spec", '[{"layer": "relu"},]'], "the spec is not valid JSON"),
    (["sequential", "--spec", '[{"layer": "conv2d"}]'], "--input: give the input size"),
    (["sequential", "--spec", "missing.json"], "No such file"),
    (["linear", "--in-features", "3", "--input", "2x2"], "in_features = 3"),
])
def test_bad_requests_get_one_line(args, message):
    result = run("derive", *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_check_a_formula_for_the_new_layers():
    linear = run("check", "linear", "dL/dx[f] = sum(g[o]*w[o,f], o)")
    assert linear.returncode == 0, linear.stdout + linear.stderr
    assert "Linear 3->2; input 3 features" in linear.stdout
    wrong = run("check", "maxpool2d", "dL/dx[i,j] = g[i,j]")
    assert wrong.returncode == 1 and "[x[1,1] = argmax z[1,1]]" in wrong.stdout


def test_commands_that_take_one_conv_layer_refuse_the_rest_in_one_line(tmp_path):
    source = tmp_path / "impl.py"
    source.write_text("def backward(x, grad_out):\n    return (grad_out,)\n")
    # check-impl takes every kind with an entry (activations since issue 14: the identity
    # is wrong for ReLU); a layer without one is refused (tests/test_check_kinds.py)
    impl = run("check-impl", f"{source}:backward", "relu")
    assert impl.returncode == 1 and impl.stdout.startswith("wrong:"), impl.stderr
    chain = run("check", "sequential", "--spec", '[{"layer": "relu"}]', "--input", "2x2",
                "dL/dx[i,j] = g[i,j]")
    assert chain.returncode == 2 and "check each layer of a chain on its own" in chain.stderr
