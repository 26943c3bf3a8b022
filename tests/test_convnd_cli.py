"""Conv1d, Conv3d and the padding words on the command line, in this process
(``test_cli.run``), and in chains."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from reference_convnd import conv_backward_loops, conv_forward_loops
from test_cli import run

from symbackprop import Conv1d, Conv2d, Conv3d, ReLU, Sequential
from symbackprop.core.command_line import COMMAND_LINE, layer_arguments
from symbackprop.render.codegen import load


def test_derive_conv1d_prints_padding_products_and_proves_the_rules():
    result = run("derive", "conv1d", "--kernel", "3", "--padding", "1", "--stride", "2",
                 "--input", "5")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Conv1d 1->1, kernel 3, stride 2, padding 1" in out
    assert "x: 1 x 1 x 5 (N x C x L)" in out and "1 x 1 x 3 (N x O x Lo)" in out
    assert "Lo = floor((L + begin + end - d*(K-1) - 1) / s) + 1 = " \
           "floor((5 + 1 + 1 - 1*(3-1) - 1) / 2) + 1 = 3" in out
    assert "  z1 = 0 w1 + x1 w2 + x2 w3 + b" in out
    assert "  dL/dx2 = g1 w3 + g2 w1" in out
    assert "  dL/dw1 = g2 x2 + g3 x4" in out
    assert "FAILS" not in out and out.count("verified on") == 3


def test_derive_conv3d_same_padding_puts_the_odd_extra_at_the_end():
    result = run("derive", "conv3d", "--padding", "same", "--input", "2x3x3")
    assert result.returncode == 0, result.stderr
    assert "Conv3d 1->1, kernel 2x2x2, stride 1, padding (0, 1, 0, 1, 0, 1)" in result.stdout
    assert "1 x 1 x 2 x 3 x 3 (N x O x Do x Ho x Wo)" in result.stdout
    assert "  z[2,3,3] = x[2,3,3] w[1,1,1] + 0 w[1,1,2]" in result.stdout
    assert "FAILS" not in result.stdout


@pytest.mark.parametrize("kind, extra", [("conv1d", []), ("conv2d", []), ("conv3d", [])])
def test_padding_same_and_valid_on_the_command_line(kind, extra):
    same = run("derive", kind, "--kernel", "3", "--padding", "same", "--input", "3", *extra)
    assert same.returncode == 0, same.stderr
    assert "padding 1" in same.stdout
    valid = run("derive", kind, "--kernel", "2", "--padding", "valid", "--input", "3", *extra)
    assert valid.returncode == 0, valid.stderr
    assert "padding 0" in valid.stdout


@pytest.mark.parametrize("args, message", [
    (["conv1d", "--padding", "same", "--stride", "2"], "padding='same' needs stride 1"),
    (["conv2d", "--padding", "same", "--stride", "2"], "padding='same' needs stride 1"),
    (["conv3d", "--padding", "full"], "--padding takes whole numbers"),
    (["conv3d", "--kernel", "2x2"], "--kernel takes 1 or 3 numbers"),
    (["conv1d", "--padding", "1,2,3"], "--padding takes 1 or 2 numbers"),
    (["conv1d", "--kernel", "4", "--input", "2"], "input_size: the padded input L 2+0+0"),
    (["conv3d", "--in-channels", "3", "--groups", "2"], "groups must divide in_channels"),
    (["conv3d", "--input", "2x3x3x3", "--in-channels", "1"], "in_channels = 1"),
])
def test_bad_requests_get_one_line_and_status_2(args, message):
    result = run("derive", *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("layer", [
    Conv1d(3, 4, 5, stride=2, padding=(1, 2), dilation=2, groups=1, bias=False),
    Conv1d(padding="same"), Conv3d(2, 4, (1, 2, 3), padding=(0, 1, 1, 1, 2, 0), groups=2),
    Conv3d(1, 1, 3, stride=(1, 2, 2), padding=(0, 1, 1)),
    Conv2d(1, 1, 3, padding="same"), Conv2d(1, 1, 2, padding=(0, 1, 1, 0)),
])
def test_command_line_arguments_build_the_layer_again(layer):
    entry = COMMAND_LINE[layer]
    parser = argparse.ArgumentParser()
    entry.add_options(parser)
    words = layer_arguments(layer)
    assert words[0] == layer.kind
    assert entry.build(parser.parse_args(words[1:])) == layer


def test_generate_writes_both_styles(tmp_path):
    for style in ("fast", "reference"):
        result = run("generate", "conv3d", "--out-channels", "2", "--kernel", "2",
                     "--padding", "1", "--style", style, "-o", str(tmp_path))
        assert result.returncode == 0, result.stderr
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["conv3d_in1_out2_k2_s1_p1.py", "conv3d_in1_out2_k2_s1_p1_reference.py"]


def test_latex_and_html_of_a_small_1d_instance(tmp_path):
    tex = tmp_path / "conv.tex"
    result = run("latex", "conv1d", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "--input", "5", "-o", str(tex))
    assert result.returncode == 0, result.stderr
    text = tex.read_text()
    assert r"\section{The matrix view $z = C x$}" in text
    assert text.count(r"\textbf{Verified:}") == 4  # three closed forms and C^T g
    page = tmp_path / "conv.html"
    result = run("html", "conv3d", "--padding", "1", "--input", "2", "-o", str(page))
    assert result.returncode == 0, result.stderr
    assert "Backpropagation through a 3-D convolution" in page.read_text()


@pytest.mark.parametrize("style", ["fast", "reference"])
def test_a_chain_of_1d_convolutions(style):
    layers = (Conv1d(1, 2, 2, padding=1), ReLU(), Conv1d(2, 1, 2, stride=2))
    module = load(Sequential(*layers), style=style)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 6))
    w1, w3 = rng.standard_normal((2, 1, 2)), rng.standard_normal((1, 2, 2))
    b1, b3 = rng.standard_normal(2), rng.standard_normal(1)
    assert module.output_shapes((2, 1, 6))[-1] == (2, 1, 3)
    a1 = conv_forward_loops(x, w1, b1, (1,), ((1, 1),), (1,))
    a2 = np.maximum(a1, 0)
    z = conv_forward_loops(a2, w3, b3, (2,), ((0, 0),), (1,))
    np.testing.assert_allclose(module.forward(x, w1, b1, w3, b3), z, atol=1e-12)
    g = rng.standard_normal(z.shape)
    delta2, gw3, gb3 = conv_backward_loops(a2, w3, b3, g, (2,), ((0, 0),), (1,))
    delta0, gw1, gb1 = conv_backward_loops(x, w1, b1, delta2 * (a1 > 0), (1,), ((1, 1),), (1,))
    for got, want in zip(module.backward(x, w1, b1, w3, b3, g), (delta0, gw1, gb1, gw3, gb3),
                         strict=True):
        np.testing.assert_allclose(got, want, atol=1e-12)
    with pytest.raises(ValueError, match=r"takes inputs shaped \(N, C, L\)"):
        load(Sequential(Conv2d(1, 1, 2), Conv1d(1, 1, 2)))


def test_the_benchmark_runs_and_records_its_ratios(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_convnd.py"
    spec = importlib.util.spec_from_file_location("bench_convnd", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    target = tmp_path / "convnd.json"
    assert bench.main(["--shapes", "tiny", "--dtypes", "float64", "--rounds", "1",
                       "--blas-settings", "machine", "--json", str(target)]) == 0
    (row,) = json.loads(target.read_text())["rows"]
    assert row["shape"] == "tiny" and row["backward_vs_gemm"] > 0
    assert "bwd/GEMM" in capsys.readouterr().out
