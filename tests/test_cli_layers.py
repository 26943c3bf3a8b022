"""``symbackprop derive`` for pooling, activations, flatten, linear and chains, called in
this process through ``cli.main`` (``test_cli.run``; test_cli.py and test_cli_robust.py
run the program as a real process)."""

import json

import pytest
from test_cli import run


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
    (["maxpool2d", "--padding", "2"], "padding must be at most half the window"),
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


def test_a_new_activation_row_gets_its_options_with_no_cli_edit(monkeypatch, capsys):
    """An activation made of a spec class and a row only (as softplus would be): the
    command line offers one option per constant, with its default, builds the layer
    from them and spells it back; nothing in cli/ or kinds/activation/cli.py changes."""
    from dataclasses import dataclass

    import sympy

    from symbackprop.cli import build_parser, layer_from_args, main
    from symbackprop.core.command_line import COMMAND_LINE, layer_arguments
    from symbackprop.core.expand import EXPAND
    from symbackprop.core.operators import CHAIN_RULES
    from symbackprop.core.registry import KINDS
    from symbackprop.kinds.activation import cli as activation_cli
    from symbackprop.kinds.activation.rules import ACTIVATIONS, ActivationRule, activation_function
    from symbackprop.kinds.activation.spec import ReLU, _Activation
    from symbackprop.render.text import TEXT

    @dataclass(frozen=True)
    class Softish(_Activation):
        beta: float = 1.0
        threshold: float = 20.0

        kind = "softish"
        title = "Softish"

        @property
        def constants(self) -> tuple:
            return (self.beta, self.threshold)

    row = ActivationRule(
        "softish", "softish",
        value=lambda net, beta, threshold: sympy.log(1 + sympy.exp(beta * net)) / beta,
        derivative=lambda f, net, beta, threshold: 1 / (1 + sympy.exp(-beta * net)),
        formula="f(net) = log(1 + exp(beta net)) / beta",
        derivative_formula="f'(net) = 1 / (1 + exp(-beta net))", constants=("beta", "threshold"))
    monkeypatch.setitem(ACTIVATIONS, "softish", row)
    monkeypatch.setitem(KINDS, "softish", Softish)
    # What the registration loops of kinds/activation do for every ACTIVATION_TYPES entry.
    monkeypatch.setitem(COMMAND_LINE.table, Softish,
                        activation_cli.activation_command_line(Softish))
    monkeypatch.setitem(EXPAND.table, Softish, EXPAND.table[ReLU])
    monkeypatch.setitem(TEXT.table, Softish, TEXT.table[ReLU])  # derive prints through it
    monkeypatch.setitem(CHAIN_RULES.table, Softish, CHAIN_RULES.table[ReLU])  # and its rule
    activation_function.cache_clear()
    try:
        with pytest.raises(SystemExit):
            main(["derive", "softish", "--help"])
        shown = " ".join(capsys.readouterr().out.split())
        assert "softish: Softish activation, f(net) = log(1 + exp(beta net)) / beta" in shown
        assert "--beta BETA" in shown and "(default 1.0)" in shown
        assert "--threshold THRESHOLD" in shown and "(default 20.0)" in shown

        args = build_parser().parse_args(["derive", "softish", "--beta", "2", "--input", "1x2"])
        layer = layer_from_args(args)
        assert layer == Softish(beta=2.0, threshold=20.0)
        assert layer_arguments(layer) == ["softish", "--beta", "2.0", "--threshold", "20.0"]
        again = build_parser().parse_args(["derive", *layer_arguments(layer)])
        assert layer_from_args(again) == layer

        assert main(["derive", "softish", "--beta", "2", "--input", "1x2"]) == 0
        out = capsys.readouterr().out
        assert "Softish" in out and "softish(x12" in out, out
    finally:
        activation_function.cache_clear()


def _every_grid_layer():
    from conftest import CHAIN_GRID, CONV_GRID, LAYER_GRID

    from symbackprop.core.layers import Sequential, layer_from_spec
    from symbackprop.kinds import Conv2d

    return ([pytest.param(Conv2d(**kwargs), id=name) for name, kwargs, _, _ in CONV_GRID]
            + [pytest.param(layer_from_spec(spec), id=name) for name, spec, _, _ in LAYER_GRID]
            + [pytest.param(Sequential.from_spec(specs), id=name)
               for name, specs, _, _ in CHAIN_GRID])


@pytest.mark.parametrize("layer", _every_grid_layer())
def test_each_kinds_arguments_build_the_same_layer_again(layer):
    """A kind's ``arguments`` (the regenerate command of generated files) is the inverse of
    its ``build``: parsed by the program, they give the layer back, for every command."""
    from symbackprop.cli import build_parser, layer_from_args
    from symbackprop.core.command_line import layer_arguments

    parser = build_parser()
    for command in ("derive", "generate", "latex"):
        assert layer_from_args(parser.parse_args([command, *layer_arguments(layer)])) == layer
