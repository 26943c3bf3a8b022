"""Stages 2-3 for pooling, activations, flatten and fully connected layers.

Truth: the hand-written reference (tests/reference.py), finite differences and
SymPy's own differentiation.
"""

import numpy as np
import pytest
import sympy
from conftest import evaluate
from layer_reference import backward, forward, random_parameters
from reference import maxpool2d_backward, numerical_gradient

import symbackprop as sbp
from symbackprop.core.rules import kron_upsample
from symbackprop.kinds import AvgPool2d, Linear, MaxPool2d
from symbackprop.kinds.activation.rules import ACTIVATIONS, ActivationBase, activation_function
from symbackprop.kinds.pool2d.rules import IsWindowMax, WindowMax, prove_kron
from symbackprop.render.text import TextPrinter, format_derivation


def printed(derivation, expression, index_base=1):
    return TextPrinter(derivation.notation(index_base=index_base)).doprint(expression)


def _values(derivation, rng):
    values = {"x": rng.standard_normal(derivation.input_shape),
              "g": rng.standard_normal(derivation.output_shape)}
    values.update(random_parameters(derivation.layer, rng))
    return values


def test_matches_reference_and_finite_differences(layer_case):
    layer, input_size, batch = layer_case
    d = sbp.derive(layer, input_size, batch)
    rng = np.random.default_rng(3)
    v = _values(d, rng)
    params = {name: v[name] for name in layer.parameter_names}
    np.testing.assert_allclose(evaluate(d.z, v), forward(layer, v["x"], params), atol=1e-12)
    grad_x, param_grads = backward(layer, v["x"], params, v["g"])
    np.testing.assert_allclose(evaluate(d.grad_x, v), grad_x, atol=1e-12)
    for name in layer.parameter_names:
        np.testing.assert_allclose(evaluate(d.grads[name], v), param_grads[name], atol=1e-12)

    names = ["x", *layer.parameter_names]

    def loss(*arrays):
        return float(np.sum(v["g"] * forward(layer, arrays[0], dict(zip(names[1:], arrays[1:])))))

    arrays = [v[name] for name in names]
    for position, name in enumerate(names):
        np.testing.assert_allclose(evaluate(d.grads[name], v),
                                   numerical_gradient(loss, arrays, position), atol=1e-6,
                                   err_msg=name)


def test_collect_equals_sympy_diff(layer_case):
    layer, input_size, batch = layer_case
    fast = sbp.derive(layer, input_size, batch, method="collect")
    truth = sbp.derive(layer, input_size, batch, method="diff")
    assert set(fast.grads) == set(truth.grads) == {"x", *layer.parameter_names}
    for name in truth.grads:
        for a, b in zip(sympy.flatten(fast.grads[name].tolist()),
                        sympy.flatten(truth.grads[name].tolist())):
            assert sympy.expand(a - b) == 0, name


@pytest.mark.parametrize("kind", sorted(ACTIVATIONS))
def test_activation_rule_is_sympy_derivative(kind):
    """The registry's f' (as the notes write it) equals SymPy's diff of f."""
    rule = ACTIVATIONS[kind]
    net = sympy.Symbol("net", real=True)
    constants = [sympy.Rational(1, 5)] * len(rule.constants)
    function = activation_function(kind)
    by_rule = rule.derivative(lambda v: function(v, *constants), net, *constants)
    truth = sympy.diff(rule.value(net, *constants), net)
    # Both sides as plain functions of net, compared away from the kink and at it; a row
    # calling another row (SiLU's sigmoid, GELU's Phi) is written out too.
    def written_out(expression):
        while expression.has(ActivationBase):
            expression = expression.replace(lambda e: isinstance(e, ActivationBase),
                                            lambda e: e.rule.value(*e.args))
        return expression

    plain = written_out(by_rule.replace(lambda e: isinstance(e, function),
                                        lambda e: rule.value(e.args[0], *constants)))
    truth = written_out(truth)
    assert sympy.simplify(sympy.piecewise_fold(plain - truth)) == 0
    for point in (-2, -sympy.Rational(1, 3), sympy.Rational(1, 2), 3):
        assert sympy.simplify(plain.subs(net, point) - truth.subs(net, point)) == 0
    # docs/notation.md: ReLU's derivative at 0 is 0, leaky ReLU's is the slope.
    at_zero = {"relu": 0, "leakyrelu": sympy.Rational(1, 5), "sigmoid": sympy.Rational(1, 4),
               "tanh": 1, "softplus": sympy.Rational(1, 2),  # softplus: s(beta * 0)
               "elu": sympy.Rational(1, 5), "gelu": sympy.Rational(1, 2),  # alpha; Phi(0)
               "gelu_tanh": sympy.Rational(1, 2), "gelu_u": sympy.sqrt(2 / sympy.pi),
               "gelu_du": 0, "normal_cdf": 1 / sympy.sqrt(2 * sympy.pi), "normal_pdf": 0,
               "silu": sympy.Rational(1, 2)}  # silu: s(0)
    assert by_rule.subs(net, 0) == at_zero[kind]
    # and the SymPy function differentiates itself by the rule
    assert sympy.diff(function(net, *constants), net) == by_rule


def test_maxpool_ties_go_to_the_first_maximum():
    """x = [[1, 3], [3, 2]]: both 3s tie; the whole g goes to x12, the first in row-major."""
    d = sbp.derive(MaxPool2d(2), (2, 2))
    v = {"x": np.array([[[[1.0, 3.0], [3.0, 2.0]]]]), "g": np.array([[[[5.0]]]])}
    np.testing.assert_array_equal(evaluate(d.grad_x, v), [[[[0.0, 5.0], [0.0, 0.0]]]])
    # the same by substitution, exactly
    values = {d.x[0, 0, 0, 0]: 1, d.x[0, 0, 0, 1]: 3, d.x[0, 0, 1, 0]: 3, d.x[0, 0, 1, 1]: 2,
              d.g[0, 0, 0, 0]: 5}
    assert [d.grad_x[0, 0, i, j].xreplace(values) for i in range(2) for j in range(2)] == \
        [0, 5, 0, 0]
    assert d.z[0, 0, 0, 0].xreplace(values) == 3


def test_maxpool_ties_overlapping_windows_match_reference():
    rng = np.random.default_rng(0)
    layer = MaxPool2d(3, stride=1, padding=1)
    d = sbp.derive(layer, (4, 5))
    x = rng.integers(0, 3, size=d.input_shape).astype(float)  # many ties
    g = rng.standard_normal(d.output_shape)
    expected = maxpool2d_backward(x, g, 3, 1, 1)
    np.testing.assert_allclose(evaluate(d.grad_x, {"x": x, "g": g}), expected, atol=1e-12)


def test_maxpool_padding_never_wins():
    d = sbp.derive(MaxPool2d(2, padding=1), (2, 2))
    x = -np.arange(1.0, 5.0).reshape(1, 1, 2, 2)  # all negative: a padded 0 would win
    g = np.ones(d.output_shape)
    np.testing.assert_array_equal(evaluate(d.z, {"x": x, "g": g}), [[[[-1, -2], [-3, -4]]]])
    np.testing.assert_array_equal(evaluate(d.grad_x, {"x": x, "g": g}), np.ones((1, 1, 2, 2)))


def test_window_max_functions():
    a, b = sympy.symbols("a b", real=True)
    window = sympy.Tuple(a, b)
    index = sympy.Tuple(0, 0, 0, 0)
    assert sympy.diff(WindowMax(window, index), b) == IsWindowMax(1, window, index)
    assert sympy.diff(WindowMax(window, index), sympy.Symbol("c")) == 0
    assert WindowMax(sympy.Tuple(2, 7, 7), index) == 7
    assert IsWindowMax(1, sympy.Tuple(2, 7, 7), index) == 1
    assert IsWindowMax(2, sympy.Tuple(2, 7, 7), index) == 0


def test_avgpool_kron_form_is_proven():
    d = sbp.derive(AvgPool2d(2), (5, 4), batch=2)
    proof = prove_kron(d)
    assert proof.holds and proof.checked == 40 and proof.unread == (1, 0)
    g = np.arange(4.0).reshape(1, 1, 2, 2)
    np.testing.assert_array_equal(kron_upsample(g, (2, 2), (5, 4))[0, 0], np.array(
        [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3], [0, 0, 0, 0]]) / 4)
    with pytest.raises(ValueError, match="tile"):
        prove_kron(sbp.derive(AvgPool2d(2, stride=1), (3, 3)))


def test_maxpool_printout():
    d = sbp.derive(MaxPool2d(2, stride=1), (3, 3))
    text = format_derivation(d)
    assert "Ho = floor((H + top + bottom - KH) / sh) + 1 = floor((3 + 0 + 0 - 2) / 1) + 1 = 2" \
        in text
    assert "  z12 = max(x12, x13, x22, x23)" in text
    assert "  dL/dx22 = g11 [x22 = argmax z11] + g12 [x22 = argmax z12] + " \
           "g21 [x22 = argmax z21] + g22 [x22 = argmax z22]" in text
    assert "ties go to the first" in text
    assert printed(d, d.grad_x[0, 0, 0, 0], index_base=0) == "g00 [x00 = argmax z00]"


def test_maxpool_gaps_printout():
    text = format_derivation(sbp.derive(MaxPool2d(2, stride=3), (5, 5)))
    assert "1 row(s) between windows are never read, so the gradient there is 0" in text
    assert "  dL/dx13 = 0" in text


def test_avgpool_printouts():
    included = format_derivation(sbp.derive(AvgPool2d(2, padding=1), (3, 3)))
    assert "divided by KH*KW = 4 (padded zeros count, shown as 0)" in included
    assert "  z11 = (0 + 0 + 0 + x11)/4" in included
    assert "  z22 = (x22 + x23 + x32 + x33)/4" in included
    assert "  dL/dx11 = g11/4" in included
    excluded = format_derivation(sbp.derive(
        AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (4, 4)))
    assert "  z11 = (x11 + x12 + x21 + x22)/4" in excluded
    assert "  z12 = (x12 + x13 + x14 + x22 + x23 + x24)/6" in excluded
    assert "  dL/dx22 = g11/4 + g12/6 + g21/6 + g22/9" in excluded
    tiled = format_derivation(sbp.derive(AvgPool2d(2), (4, 4)), proofs=(
        prove_kron(sbp.derive(AvgPool2d(2), (4, 4))),))
    assert "windows tile the input: dL/dx = kron(g, ones(2, 2)) / 4 (verified on 16 elements)" \
        in tiled


@pytest.mark.parametrize("spec, lines", [
    ({"layer": "relu"}, ["  z11 = relu(x11)", "  dL/dx11 = g11 [x11 > 0]",
                         "f'(net) = [net > 0]: 1 if net > 0 else 0 (0 at 0)"]),
    ({"layer": "leakyrelu", "negative_slope": 0.1},
     ["  z11 = leaky_relu(x11)", "  dL/dx11 = g11 (1 if x11 > 0 else 0.1)", "alpha = 0.1"]),
    ({"layer": "sigmoid"}, ["  z11 = sigmoid(x11)",
                            "  dL/dx11 = g11 sigmoid(x11) (1 - sigmoid(x11))"]),
    ({"layer": "tanh"}, ["  z11 = tanh(x11)", "  dL/dx11 = g11 (1 - tanh(x11)^2)",
                         "dL/dx = g * f'(x) elementwise, f'(net) = 1 - tanh(net)^2"]),
])
def test_activation_printouts(spec, lines):
    from symbackprop.core.layers import layer_from_spec

    text = format_derivation(sbp.derive(layer_from_spec(spec), (2, 2)))
    for line in lines:
        assert line in text


def test_linear_and_flatten_printouts():
    text = format_derivation(sbp.derive(Linear(3, 2)))
    for line in ["  z1 = x1 w11 + x2 w12 + x3 w13 + b1", "  dL/dx1 = g1 w11 + g2 w21",
                 "  dL/dw23 = g2 x3", "  dL/db2 = g2", "  dL/dx = w^T g", "  dL/dw = g x^T"]:
        assert line in text
    flat = format_derivation(sbp.derive(sbp.Flatten(), (2, 1, 2)))
    assert "  z3 = x[2,1,1]" in flat and "  dL/dx[2,1,1] = g3" in flat


def test_linear_reads_feature_maps_row_major():
    d = sbp.derive(Linear(4, 1, bias=False), (1, 2, 2))
    assert d.input_shape == (1, 1, 2, 2)
    assert printed(d, d.z[0, 0]) == "x11 w1 + x12 w2 + x21 w3 + x22 w4"
    assert printed(d, d.grad_x[0, 0, 1, 0]) == "g1 w3"


def test_size_limit_and_errors():
    with pytest.raises(sbp.SizeLimitError, match="limit of 10"):
        sbp.derive(MaxPool2d(2), (4, 4), max_terms=10)
    with pytest.raises(ValueError, match="in_features = 3"):
        sbp.derive(Linear(3, 2), 4)
    with pytest.raises(ValueError, match="smaller than the 3-wide window"):
        sbp.derive(MaxPool2d(3), (2, 5))
    with pytest.raises(ValueError, match="input_size"):
        sbp.derive(sbp.ReLU(), (1, 2, 3, 4))
