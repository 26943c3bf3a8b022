"""Chains of layers: every boundary's error term from the next, against the
reference chain and finite differences of the whole network."""

import numpy as np
import pytest
import sympy
from conftest import evaluate
from layer_reference import chain_backward, chain_forward, random_parameters
from reference import numerical_gradient

import symbackprop as sbp
from symbackprop.core.chain import ChainDerivation
from symbackprop.core.layers import Sequential
from symbackprop.core.naming import parse_element
from symbackprop.kinds import Conv2d, Linear, MaxPool2d, ReLU
from symbackprop.render.text import format_derivation


def _run(derivation, values):
    """Evaluate the chain's derivation numerically, forward then backward."""
    values = dict(values)
    for step in derivation.steps:
        values[step.names["z"]] = evaluate(step.z, values)
    grads = {}
    for step in reversed(derivation.steps):
        values[step.names["grad_x"]] = evaluate(step.delta_in, values)
        for name, gradient in step.param_grads.items():
            grads[name] = evaluate(gradient, values)
    return values, grads


def test_chain_matches_reference_and_finite_differences(chain_case):
    chain, input_size, batch = chain_case
    d = sbp.derive(chain, input_size, batch)
    assert isinstance(d, ChainDerivation) and 3 <= len(d.steps) <= 6
    rng = np.random.default_rng(5)
    params = [random_parameters(layer, rng) for layer in chain.layers]
    x = rng.standard_normal(d.input_shape)
    g = rng.standard_normal(d.output_shape)
    values = {"a0": x, f"delta{len(chain)}": g}
    for number, layer_params in enumerate(params, 1):
        values.update({f"{name}{number}": value for name, value in layer_params.items()})
    values, grads = _run(d, values)

    outputs = chain_forward(chain.layers, x, params)
    deltas, param_grads = chain_backward(chain.layers, x, params, g)
    for number in range(len(chain) + 1):
        np.testing.assert_allclose(values[f"a{number}"], outputs[number], atol=1e-12)
        np.testing.assert_allclose(values[f"delta{number}"], deltas[number], atol=1e-12)
    for number, layer_grads in enumerate(param_grads, 1):
        for name, expected in layer_grads.items():
            np.testing.assert_allclose(grads[f"{name}{number}"], expected, atol=1e-12)

    # Finite differences of L = sum(g * network(x, params)), for x and every parameter.
    names = ["x"] + [f"{n}{number}" for number, p in enumerate(params, 1) for n in p]
    arrays = [x] + [value for p in params for value in p.values()]

    def loss(*arrays):
        rebuilt, position = [], 1
        for layer_params in params:
            rebuilt.append(dict(zip(layer_params, arrays[position:position + len(layer_params)])))
            position += len(layer_params)
        return float(np.sum(g * chain_forward(chain.layers, arrays[0], rebuilt)[-1]))

    for position, name in enumerate(names):
        symbolic = values["delta0"] if name == "x" else grads[name]
        np.testing.assert_allclose(symbolic, numerical_gradient(loss, arrays, position),
                                   atol=1e-6, err_msg=name)


def test_each_error_term_is_written_with_the_next_one(chain_case):
    """delta_{l-1} depends only on delta_l, a_{l-1} and layer l's parameters."""
    chain, input_size, batch = chain_case
    d = sbp.derive(chain, input_size, batch)
    for step in d.steps:
        allowed = {f"delta{step.number}", f"a{step.number - 1}", *step.params}
        arrays = {parse_element(s)[0] for e in sympy.flatten(step.delta_in.tolist())
                  for s in sympy.sympify(e).free_symbols}
        assert arrays <= allowed, (step.number, arrays)
        assert f"delta{step.number}" in arrays or step.layer.kind == "maxpool2d"
        for name, gradient in step.param_grads.items():
            used = {parse_element(s)[0] for e in sympy.flatten(gradient.tolist())
                    for s in sympy.sympify(e).free_symbols}
            assert used <= {f"delta{step.number}", f"a{step.number - 1}"}, name
    assert list(d.deltas) == [f"delta{n}" for n in range(len(chain))]
    assert list(d.params) == list(chain.parameter_names)
    assert d.grad_x is d.steps[0].delta_in and d.g is d.steps[-1].delta_out


def test_collect_equals_sympy_diff_for_a_chain():
    chain = Sequential(Conv2d(1, 2, kernel_size=2), ReLU(), MaxPool2d(2, stride=1),
                       Linear(4, 2))
    fast = sbp.derive(chain, (4, 3), method="collect")
    truth = sbp.derive(chain, (4, 3), method="diff")
    for name in truth.grads:
        for a, b in zip(sympy.flatten(fast.grads[name].tolist()),
                        sympy.flatten(truth.grads[name].tolist()), strict=True):
            assert sympy.expand(a - b) == 0, name
    for step_fast, step_truth in zip(fast.steps, truth.steps, strict=True):
        assert step_fast.delta_in == step_truth.delta_in


def test_chain_printout_walks_through_the_error_terms():
    chain = Sequential(Conv2d(1, 2, kernel_size=2), ReLU(), MaxPool2d(2), Linear(8, 2))
    text = format_derivation(sbp.derive(chain, (5, 5)))
    expected = [
        "Sequential, 4 layers: Conv2d 1->2, kernel 2x2, stride 1, padding 0 -> ReLU -> "
        "MaxPool2d 2x2, stride 2, padding 0 -> Linear 8->2",
        "   1  Conv2d 1->2, kernel 2x2, stride 1, padding 0   a1: 1 x 2 x 4 x 4   "
        "w1: 2 x 1 x 2 x 2   b1: 2",
        "Backward, one layer boundary at a time (delta4 = dL/da4 is given):",
        "    delta3 = w4^T delta4, reshaped to 1 x 2 x 2 x 2",
        "    dL/dw4 = delta4 a3^T",
        "    delta2 = upsample(delta3): the whole delta3_ij goes to the element that won window ij",
        "    delta1 = delta2 * f'(a1) elementwise, f'(net) = [net > 0]: 1 if net > 0 else 0 "
        "(0 at 0)",
        "    together with layer 3: delta1 = upsample(delta3) * f'(a1)   (the notes' "
        "delta^(l-1) = upsample(delta^l) * f'(net^(l-1)))",
        "    delta0[n,c] = sum_o correlate(pad(dilate(delta1[n,o], stride 1x1), (1, 1, 1, 1)), "
        "rot180(w1[o,c])), o over c's group (a transposed convolution)",
        "    a1[1,1,1] = a0_11 w1[1,1,1] + a0_12 w1[1,1,2] + a0_21 w1[1,2,1] + a0_22 w1[1,2,2] "
        "+ b1_1",
        "    a2[2,4,4] = relu(a1[2,4,4])",
        "    a3[1,1,2] = max(a2[1,1,3], a2[1,1,4], a2[1,2,3], a2[1,2,4])",
        "    a4_1 = a3[1,1,1] w4_11 + a3[1,1,2] w4_12 + a3[1,2,1] w4_13 + a3[1,2,2] w4_14 + "
        "a3[2,1,1] w4_15 + a3[2,1,2] w4_16 + a3[2,2,1] w4_17 + a3[2,2,2] w4_18 + b4_1",
        "    delta3[1,1,1] = delta4_1 w4_11 + delta4_2 w4_21",
        "    delta2[1,2,2] = delta3[1,1,1] [a2[1,2,2] = argmax a3[1,1,1]]",
        "    delta1[1,1,1] = delta2[1,1,1] [a1[1,1,1] > 0]",
        "    delta0_11 = delta1[1,1,1] w1[1,1,1] + delta1[2,1,1] w1[2,1,1]",
        "    dL/db1_2 = delta1[2,1,1] + delta1[2,1,2]",
    ]
    for line in expected:
        assert line in text, line
    # forward in forward order, backward from the last layer to the first
    forward = text[text.index("Forward, element by element"):]
    assert forward.index("  layer 1, Conv2d") < forward.index("  layer 4, Linear")
    backward = text[text.index("Backward, element by element"):]
    assert backward.index("layer 4, Linear") < backward.index("layer 1, Conv2d")


def test_chain_size_limit_counts_every_layer():
    chain = Sequential(Conv2d(kernel_size=2), ReLU(), MaxPool2d(2))
    count = chain.term_count((1, 1, 5, 5))
    sbp.derive(chain, (5, 5), max_terms=count)
    with pytest.raises(sbp.SizeLimitError):
        sbp.derive(chain, (5, 5), max_terms=count - 1)
    with pytest.raises(ValueError, match="method"):
        sbp.derive(chain, (5, 5), method="guess")
