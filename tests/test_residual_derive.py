"""Residual blocks, y = x + block(x): specs, the derivation's two gradient paths against
the hand-written reference (tests/reference_residual.py), finite differences of the
whole chain and SymPy's own differentiation of the whole chain."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy
from conftest import evaluate
from hypothesis import given
from hypothesis import strategies as st
from reference import numerical_gradient
from reference_residual import backward, backward_identity_forgotten, forward
from test_cli import run

import symbackprop as sbp
from symbackprop.core.layers import Residual, ResidualSum, Sequential, layer_from_spec, load_spec
from symbackprop.core.naming import element_symbol, flat, parse_element
from symbackprop.kinds import Conv2d, Linear, ReLU, Sigmoid, Tanh
from symbackprop.render.text import to_text

# (id, symbackprop layer, the same network for the reference, input size, batch)
CASES = [
    ("resnet-basic-block", Sequential(Residual(Sequential(
        Conv2d(2, 2, kernel_size=2, padding=(0, 1, 0, 1)), ReLU(),
        Conv2d(2, 2, kernel_size=3, padding=1))), ReLU()),
     [("residual", [("conv", 1, (0, 1, 0, 1)), ("relu",), ("conv", 1, 1)]), ("relu",)],
     (2, 2, 3), 1),
    ("mlp-block-batch", Sequential(Linear(3, 3), Residual([Linear(3, 3), Tanh()]),
                                   Linear(3, 2)),
     [("linear",), ("residual", [("linear",), ("tanh",)]), ("linear",)], 3, 2),
    ("one-layer-block", Residual(Linear(2, 2)), [("residual", [("linear",)])], 2, 2),
    ("nested-blocks", Sequential(Residual([Residual([Linear(2, 2), Sigmoid()]), Linear(2, 2)]),
                                 Tanh()),
     [("residual", [("residual", [("linear",), ("sigmoid",)]), ("linear",)]), ("tanh",)], 2, 1),
    ("two-blocks-same-input", Sequential(Residual(Residual(Linear(2, 2)))),
     [("residual", [("residual", [("linear",)])])], 2, 1),
]


@pytest.fixture(params=CASES, ids=[case[0] for case in CASES])
def case(request):
    return request.param[1:]


def nested_params(network, values, number=0):
    """The reference's nested parameter lists from the chain's numbered arrays (``w1``);
    returns ``(params, last number)``: a layer counts one, a block its layers and its sum."""
    params = []
    for layer in network:
        if layer[0] == "residual":
            inner, number = nested_params(layer[1], values, number)
            params.append(inner)
            number += 1  # the residual sum
            continue
        number += 1
        params.append({name: values[f"{name}{number}"] for name in ("w", "b")
                       if f"{name}{number}" in values})
    return params, number


def evaluate_chain(derivation, values):
    """Forward then backward through the derivation's steps, numerically."""
    values = dict(values)
    for step in derivation.steps:
        values[step.names["z"]] = evaluate(step.z, values)
    grads = {}
    for step in reversed(derivation.steps):
        values[step.names["grad_x"]] = evaluate(step.delta_in, values)
        for name, gradient in step.param_grads.items():
            grads[name] = evaluate(gradient, values)
    return values, grads


def random_values(derivation, rng):
    values = {"a0": rng.standard_normal(derivation.input_shape),
              f"delta{len(derivation.steps)}": rng.standard_normal(derivation.output_shape)}
    values.update({name: rng.standard_normal(array.shape)
                   for name, array in derivation.params.items()})
    return values


def flat_grads(grads):
    for item in grads:
        if isinstance(item, list):
            yield from flat_grads(item)
        else:
            yield item


def test_derivation_matches_reference_and_finite_differences(case):
    layer, network, input_size, batch = case
    d = sbp.derive(layer, input_size, batch)
    values = random_values(d, np.random.default_rng(3))
    values, grads = evaluate_chain(d, values)
    params, _ = nested_params(network, values)
    x, g = values["a0"], values[f"delta{len(d.steps)}"]
    np.testing.assert_allclose(values[f"a{len(d.steps)}"], forward(network, params, x),
                               atol=1e-12)
    grad_x, param_grads = backward(network, params, x, g)
    np.testing.assert_allclose(values["delta0"], grad_x, atol=1e-12)
    expected = [value for item in flat_grads(param_grads) for value in item.values()]
    assert len(expected) == len(grads)
    for got, want in zip([grads[name] for name in d.params], expected, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-12)
    # the mistake differs: the identity path is visible in dL/dx
    assert not np.allclose(values["delta0"], backward_identity_forgotten(network, params, x, g))

    names = ["a0", *d.params]

    def loss(*arrays):
        rebuilt = dict(zip(names, arrays))
        return float(np.sum(g * forward(network, nested_params(network, rebuilt)[0],
                                        rebuilt["a0"])))

    arrays = [values[name] for name in names]
    # the input and the first and last parameter arrays (the reference checked them all)
    for position, name in enumerate(names):
        if name not in ("a0", names[1], names[-1]):
            continue
        symbolic = values["delta0"] if name == "a0" else grads[name]
        np.testing.assert_allclose(symbolic, numerical_gradient(loss, arrays, position),
                                   atol=1e-6, err_msg=name)


def test_the_fork_adds_the_block_path_and_the_identity_path():
    d = sbp.derive(Sequential(Residual([Linear(2, 2), Tanh()]), ReLU()), 2)
    first, _, total, _ = d.steps
    assert total.is_sum and total.fork == 0 and total.names["skip"] == "a0"
    assert [step.is_sum for step in d.steps] == [False, False, True, False]
    # the sum hands delta3 on unchanged to the block's output ...
    assert total.delta_in == total.delta_out
    # ... and to the block's input, where the two paths add
    assert len(first.identity_paths) == 1 and first.identity_paths[0] == total.delta_out
    own = first.derivation.grads["x"]
    assert first.block_path.shape == own.shape
    for index in np.ndindex(*first.input_shape):
        identity = element_symbol("delta3", index)
        assert first.delta_in[index] == first.block_path[index] + identity
        assert identity not in first.block_path[index].free_symbols
    assert d.grad_x is first.delta_in and d.deltas["delta0"] is first.delta_in
    assert list(d.params) == ["w1", "b1"]


def _compose_forward(d):
    """Every ``a_l`` of the derivation as one expression of ``a0`` and the parameters."""
    exprs = {}
    for index in np.ndindex(*d.input_shape):
        exprs[element_symbol("a0", index)] = element_symbol("a0", index)
    for step in d.steps:
        for index in np.ndindex(*step.output_shape):
            exprs[step.output[index]] = step.z[index].xreplace(exprs)
    return exprs


def _compose_backward(d, forward_exprs):
    """``delta0`` as one expression of ``delta_L``, ``a0`` and the parameters."""
    exprs = dict(forward_exprs)
    for step in reversed(d.steps):
        for index in np.ndindex(*step.input_shape):
            symbol = element_symbol(step.names["grad_x"], index)
            exprs[symbol] = step.delta_in[index].xreplace(exprs)
    return [exprs[element_symbol("delta0", index)] for index in np.ndindex(*d.input_shape)]


@pytest.mark.parametrize("layer, input_size", [
    (Sequential(Residual([Linear(2, 2), ReLU(), Linear(2, 2)]), ReLU()), 2),
    (Sequential(Residual([Conv2d(kernel_size=2, padding=(0, 1, 0, 1)), ReLU()]), ReLU()),
     (2, 2)),
    (Sequential(Residual([Residual(Linear(2, 2)), ReLU()]), Linear(2, 1)), 2),
], ids=["mlp-block", "conv-block", "nested"])
def test_two_paths_equal_sympy_diff_of_the_whole_chain(layer, input_size):
    """The walk's delta0 (block path + identity path, one boundary at a time) equals
    sympy.diff of L = sum(delta_L * network(a0)) with respect to a0, the network
    composed into one expression; compared exactly at random rational points (ReLU's
    derivative is a Piecewise), for both methods."""
    for method in ("collect", "diff"):
        d = sbp.derive(layer, input_size, method=method)
        forward_exprs = _compose_forward(d)
        last = len(d.steps)
        loss = sympy.Add(*[g * forward_exprs[a] for g, a in zip(
            flat(d.steps[-1].delta_out), flat(d.steps[-1].output))])
        truth = [sympy.diff(loss, symbol) for symbol in flat(d.x)]
        walked = _compose_backward(d, forward_exprs)
        symbols = sorted(set().union(*(e.free_symbols for e in truth + walked)), key=str)
        assert {parse_element(s)[0] for s in symbols} <= {"a0", f"delta{last}", *d.params}
        rng = np.random.default_rng(7)
        for _ in range(4):
            point = {s: sympy.Rational(int(rng.integers(-9, 10)), int(rng.integers(1, 5)))
                     for s in symbols}
            for want, got in zip(truth, walked, strict=True):
                assert sympy.simplify(want.xreplace(point) - got.xreplace(point)) == 0


def test_collect_equals_diff_step_by_step():
    layer = Sequential(Residual([Conv2d(1, 2, kernel_size=1), ReLU(),
                                 Conv2d(2, 1, kernel_size=1)]), Sigmoid())
    fast = sbp.derive(layer, (2, 2), method="collect")
    truth = sbp.derive(layer, (2, 2), method="diff")
    for a, b in zip(fast.steps, truth.steps, strict=True):
        for x, y in zip(flat(a.delta_in), flat(b.delta_in), strict=True):
            assert sympy.simplify(x - y) == 0


# -- small random blocks: the derivation against the reference ------------------------

_MENU = {"linear": None, "tanh": Tanh, "relu": ReLU, "sigmoid": Sigmoid}


@st.composite
def blocks(draw, features, depth=0):
    """``(layers, network)``: a random block that keeps ``features`` features."""
    layers, network = [], []
    for _ in range(draw(st.integers(1, 2))):
        choice = draw(st.sampled_from(["linear", "tanh", "relu", "sigmoid", "residual"]
                                      if depth < 1 else ["linear", "tanh", "sigmoid"]))
        if choice == "residual":
            inner, inner_network = draw(blocks(features, depth + 1))
            layers.append(Residual(inner))
            network.append(("residual", inner_network))
        elif choice == "linear":
            layers.append(Linear(features, features, bias=draw(st.booleans())))
            network.append(("linear",))
        else:
            layers.append(_MENU[choice]())
            network.append((choice,))
    return layers, network


@given(st.integers(1, 3).flatmap(lambda f: st.tuples(st.just(f), blocks(f))),
       st.integers(1, 2), st.integers(0, 2**16))
def test_random_blocks_match_the_reference(features_block, batch, seed):
    features, (layers, network) = features_block
    layer = Sequential(Residual(layers))
    # a fully connected layer takes its feature count, an activation a 1-tuple
    d = sbp.derive(layer, features if isinstance(layer.layers[0], Linear) else (features,),
                   batch)
    rng = np.random.default_rng(seed)
    values, grads = evaluate_chain(d, random_values(d, rng))
    params, _ = nested_params([("residual", network)], values)
    for item in flat_grads(params):  # a layer without bias: the reference adds nothing
        item.setdefault("b", np.zeros(item["w"].shape[0])) if "w" in item else None
    x, g = values["a0"], values[f"delta{len(d.steps)}"]
    np.testing.assert_allclose(values[f"a{len(d.steps)}"],
                               forward([("residual", network)], params, x), atol=1e-12)
    grad_x, _ = backward([("residual", network)], params, x, g)
    np.testing.assert_allclose(values["delta0"], grad_x, atol=1e-12)
    assert layer_from_spec(json.loads(json.dumps(layer.spec()))) == layer


# -- specs ----------------------------------------------------------------------------


def test_spec_round_trip_and_structure():
    block = Residual(Sequential(Conv2d(8, 8, 3, padding=1), ReLU(), Conv2d(8, 8, 3, padding=1)))
    net = Sequential(block, ReLU())
    assert [type(layer).__name__ for layer in net.layers] == [
        "Conv2d", "ReLU", "Conv2d", "ResidualSum", "ReLU"]
    assert net.layers[3] == ResidualSum(3)
    assert net.grouped() == (block, ReLU())
    assert net.spec() == {"layer": "sequential", "layers": [
        {"layer": "residual", "block": [
            {"layer": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3,
             "padding": 1},
            {"layer": "relu"},
            {"layer": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3,
             "padding": 1}]},
        {"layer": "relu"}]}
    assert layer_from_spec(net.spec()) == net
    assert Sequential(net.layers) == net  # the flat layers build the same chain
    assert net.parameter_names == ("w1", "b1", "w3", "b3")
    assert block.parameter_names == ("w1", "b1", "w3", "b3")
    assert net.describe() == ("Residual(x + Conv2d 8->8, kernel 3x3, stride 1, padding 1 -> "
                              "ReLU -> Conv2d 8->8, kernel 3x3, stride 1, padding 1) -> ReLU")
    assert Residual([Linear(2, 2)]) == Residual(Sequential(Linear(2, 2))) \
        == Residual(Linear(2, 2))
    assert Residual(Linear(2, 2)).spec() == {"layer": "residual", "block": {
        "layer": "linear", "in_features": 2, "out_features": 2}}
    assert block.output_shape_for((2, 8, 5, 5)) == (2, 8, 5, 5)
    spec = '{"layer": "residual", "block": [{"layer": "linear", "in_features": 3, ' \
           '"out_features": 3}], "input": [3]}'
    assert load_spec(spec) == (Residual(Linear(3, 3)), (3,))


@pytest.mark.parametrize("make, message", [
    (lambda: Residual(Conv2d(8, 4, 3, padding=1)).output_shape_for((1, 8, 5, 5)),
     r"residual block \(layer 1\): y = x \+ block\(x\) adds block\(x\) to x element by "
     r"element, so the block's output shape must equal its input shape; the block maps x "
     r"of shape \(1, 8, 5, 5\) to block\(x\) of shape \(1, 4, 5, 5\)"),
    (lambda: Sequential(ReLU(), Residual([Conv2d(1, 1, 2), ReLU()])).shapes((1, 1, 4, 4)),
     r"residual block \(layers 2-3\): .* x of shape \(1, 1, 4, 4\) to block\(x\) of shape "
     r"\(1, 1, 3, 3\)"),
    (lambda: Residual([]), "block: a residual block needs at least one layer"),
    (lambda: Residual("relu"), "block: a residual's block is a layer or a Sequential"),
    (lambda: Residual(ResidualSum(1)), "block: a residual's block is a layer"),
    (lambda: Sequential(ResidualSum(1)), "does not close a block of whole layers"),
    (lambda: Sequential(Linear(2, 2), ResidualSum(2)), "starts before the chain"),
    (lambda: ResidualSum(0), "span"),
    (lambda: layer_from_spec({"layer": "residual"}), 'a residual spec is {"layer": "residual"'),
    (lambda: layer_from_spec({"layer": "residual", "block": [], "x": 1}), "got keys"),
    (lambda: layer_from_spec({"layer": "residual", "block": [{"layer": "pool"}]}),
     "block layer 1: unknown layer 'pool'"),
    (lambda: layer_from_spec({"layer": "residual", "block": {"layer": "linear"}}),
     "block: linear needs in_features"),
])
def test_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- the printout and the command line ------------------------------------------------


def test_printout_shows_the_two_paths_and_their_sum():
    text = to_text(sbp.derive(Sequential(Residual([Linear(2, 2), Tanh()]), ReLU()), 2))
    for line in [
        "   3  residual sum a3 = a0 + a2 (x + block(x), the block: layers 1-2)",
        "    delta2 = delta3   (to the block's output: da3/da2 = 1)",
        "    the block's path, through layer 1:",
        "      delta0 = w1^T delta1",
        "    the identity path: a0 also goes straight to the residual sum a3 "
        "(d(x + block(x))/dx = 1 + d block(x)/dx), so the two paths add:",
        "    delta0 = w1^T delta1 + delta3",
        "    a3_1 = a0_1 + a2_1",
        "    delta0 = (through layer 1, the block's path) + delta3 (the identity path):",
        "    delta0_1 = delta1_1 w1_11 + delta1_2 w1_21 + delta3_1",
    ]:
        assert line in text, line


def test_cli_residual_and_sequential_with_a_block(tmp_path):
    block = [{"layer": "conv2d", "kernel_size": 3, "padding": 1}, {"layer": "relu"}]
    result = run("derive", "residual", "--spec", json.dumps(block), "--input", "3x3")
    assert result.returncode == 0, result.stderr
    assert "delta0 = transposed-conv(delta1, w1) + delta3" in result.stdout
    path = tmp_path / "net.json"
    path.write_text(json.dumps({"input": [1, 3, 3], "layers": [
        {"layer": "residual", "block": block}, {"layer": "relu"}]}))
    result = run("derive", "sequential", "--spec", str(path), "--index-base", "0")
    assert result.returncode == 0, result.stderr
    assert "residual sum a3 = a0 + a2" in result.stdout
    assert "delta0_00 = " in result.stdout and "+ delta3_00\n" in result.stdout


def test_cli_refuses_a_block_that_changes_the_shape():
    result = run("derive", "residual", "--spec",
                 '[{"layer": "linear", "in_features": 2, "out_features": 3}]')
    assert result.returncode == 2
    assert "block's output shape must equal its input shape" in result.stderr
    assert "Traceback" not in result.stderr
