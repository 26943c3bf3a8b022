"""Stages 2-3: the element-wise expansion and its gradients.

Truth: SymPy's own differentiation of L = sum(g*z), the hand-written reference in
tests/reference.py, and finite differences.
"""

import numpy as np
import pytest
import sympy
from conftest import evaluate
from hypothesis import given
from hypothesis import strategies as st
from reference import conv2d_backward, conv2d_forward, numerical_gradient

import symbackprop as sbp
from symbackprop.core import expand as expand_stage
from symbackprop.core.algebra import product
from symbackprop.core.naming import element_symbol, parse_element
from symbackprop.render.text import TextPrinter


def printed(derivation, expression, index_base=1):
    return TextPrinter(derivation.notation(index_base=index_base)).doprint(expression)


@pytest.fixture(scope="module")
def worked():
    return sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3))


def test_worked_example_forward(worked):
    """docs/notation.md: 3x3 input, 2x2 kernel, padding 1 -> 4x4, padding terms shown as 0."""
    assert worked.z.shape == (1, 1, 4, 4)
    z = worked.z_written
    assert printed(worked, z[0, 0, 0, 0]) == "0 w11 + 0 w12 + 0 w21 + x11 w22 + b"
    assert printed(worked, z[0, 0, 0, 1]) == "0 w11 + 0 w12 + x11 w21 + x12 w22 + b"
    assert printed(worked, z[0, 0, 1, 1]) == "x11 w11 + x12 w12 + x21 w21 + x22 w22 + b"
    assert printed(worked, z[0, 0, 3, 3]) == "x33 w11 + 0 w12 + 0 w21 + 0 w22 + b"
    # The evaluated sum drops the padding products.
    x, w, b = worked.x, worked.w, worked.b
    assert worked.z[0, 0, 0, 0] == x[0, 0, 0, 0] * w[0, 0, 1, 1] + b[0]


def test_worked_example_gradients(worked):
    assert printed(worked, worked.grad_x[0, 0, 0, 0]) == "g11 w22 + g12 w21 + g21 w12 + g22 w11"
    assert printed(worked, worked.grad_x[0, 0, 1, 1]) == "g22 w22 + g23 w21 + g32 w12 + g33 w11"
    assert printed(worked, worked.grad_x[0, 0, 1, 1], index_base=0) == \
        "g11 w11 + g12 w10 + g21 w01 + g22 w00"
    g = worked.g
    assert worked.grad_b[0] == sum(g[0, 0, i, j] for i in range(4) for j in range(4))
    assert worked.grad_w.shape == (1, 1, 2, 2)


def test_api_shapes_without_bias():
    d = sbp.derive(sbp.Conv2d(2, 3, kernel_size=(1, 2), bias=False), (2, 3), batch=2)
    assert d.b is None and d.grad_b is None
    assert d.x.shape == (2, 2, 2, 3) and d.w.shape == (3, 2, 1, 2)
    assert d.g.shape == d.z.shape == (2, 3, 2, 2)
    assert d.grad_x.shape == d.x.shape and d.grad_w.shape == d.w.shape


def test_collect_equals_sympy_diff(conv_case):
    """The fast product-rule pass gives exactly what sympy.diff of L gives."""
    layer, input_size, batch = conv_case
    fast = sbp.derive(layer, input_size, batch, method="collect")
    truth = sbp.derive(layer, input_size, batch, method="diff")
    assert set(fast.grads) == set(truth.grads)
    for name in truth.grads:
        for a, b in zip(sympy.flatten(fast.grads[name].tolist()),
                        sympy.flatten(truth.grads[name].tolist()), strict=True):
            assert sympy.expand(a - b) == 0, name


def _random_values(derivation, rng):
    values = {"x": rng.standard_normal(derivation.input_shape),
              "w": rng.standard_normal(derivation.w.shape),
              "g": rng.standard_normal(derivation.output_shape)}
    values["b"] = rng.standard_normal(derivation.b.shape) if derivation.b is not None else None
    return values


def test_matches_reference_and_finite_differences(conv_case):
    layer, input_size, batch = conv_case
    d = sbp.derive(layer, input_size, batch)
    rng = np.random.default_rng(0)
    v = _random_values(d, rng)
    conv = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                groups=layer.groups)
    z = evaluate(d.z, v)
    np.testing.assert_allclose(z, conv2d_forward(v["x"], v["w"], v["b"], **conv), atol=1e-12)
    grad_x, grad_w, grad_b = conv2d_backward(v["x"], v["w"], v["b"], v["g"], **conv)
    np.testing.assert_allclose(evaluate(d.grad_x, v), grad_x, atol=1e-12)
    np.testing.assert_allclose(evaluate(d.grad_w, v), grad_w, atol=1e-12)
    if layer.bias:
        np.testing.assert_allclose(evaluate(d.grad_b, v), grad_b, atol=1e-12)

    def loss(x, w, b):
        return float(np.sum(v["g"] * conv2d_forward(x, w, b, **conv)))

    arrays = [v["x"], v["w"], v["b"]]
    np.testing.assert_allclose(evaluate(d.grad_x, v), numerical_gradient(loss, arrays, 0),
                               atol=1e-6)
    np.testing.assert_allclose(evaluate(d.grad_w, v), numerical_gradient(loss, arrays, 1),
                               atol=1e-6)


def test_unread_rows_have_exactly_zero_gradient():
    """Stride 2 over 6 rows with a 3-row kernel never reads row 6 (1-based)."""
    d = sbp.derive(sbp.Conv2d(kernel_size=3, stride=2), (6, 6))
    for i in range(6):
        assert d.grad_x[0, 0, 5, i] == 0
        assert d.grad_x[0, 0, i, 5] == 0
    assert d.grad_x[0, 0, 4, 4] != 0


def test_size_limit_refused_before_expanding(monkeypatch):
    def must_not_run(*args):
        raise AssertionError("expanded an instance over the limit")

    monkeypatch.setitem(expand_stage.EXPAND.table, sbp.Conv2d, must_not_run)
    with pytest.raises(sbp.SizeLimitError, match=r"1,910,412 products.*limit of 100,000"):
        sbp.derive(sbp.Conv2d(3, 1, kernel_size=2), (400, 400))
    with pytest.raises(sbp.SizeLimitError, match="limit of 10"):
        sbp.derive(sbp.Conv2d(kernel_size=2), (4, 4), max_terms=10)


def test_bad_batch_and_method():
    layer = sbp.Conv2d()
    with pytest.raises(ValueError, match="batch"):
        sbp.derive(layer, (3, 3), batch=0)
    with pytest.raises(ValueError, match="method"):
        sbp.derive(layer, (3, 3), method="guess")
    with pytest.raises(ValueError, match="input_size"):
        sbp.derive(layer, (0, 3))


def test_derive_is_deterministic():
    layer = sbp.Conv2d(2, 2, kernel_size=2, stride=2, padding=(0, 1, 1, 0))
    first, second = sbp.derive(layer, (3, 4)), sbp.derive(layer, (3, 4))
    assert str(first.grads) == str(second.grads) and first.z == second.z


names = st.sampled_from(["x", "w", "g", "b"])
indices = st.tuples(st.integers(0, 12), st.integers(0, 12))


@given(st.lists(st.tuples(names, indices), min_size=1, max_size=4))
def test_fast_product_is_sympy_mul(factors):
    symbols = [element_symbol(name, index) for name, index in factors]
    expected = sympy.Mul(*symbols)
    assert product(*symbols) == expected
    assert hash(product(*symbols)) == hash(expected)
    assert product(sympy.Integer(0), *symbols) == 0


def test_element_names_round_trip():
    symbol = element_symbol("x", (0, 2, 10, 3))
    assert symbol.name == "x[0,2,10,3]"
    assert parse_element(symbol) == ("x", (0, 2, 10, 3))
    assert parse_element(sympy.Symbol("y")) is None


# -- the limit of method="diff" (issue 11, item 9) -----------------------------------

def _no_expansion(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("expanded an instance the limit should have refused")
    monkeypatch.setattr(expand_stage, "expand", refuse)


def test_diff_has_its_own_limit_checked_before_expanding(monkeypatch):
    """At the collect limit sympy.diff would run for hours: it is refused up front."""
    from symbackprop.core.derivation import DEFAULT_DIFF_MAX_TERMS

    _no_expansion(monkeypatch)
    layer = sbp.Conv2d(kernel_size=3, padding=1)
    # 2,304 products (far under the collect limit) times 266 symbols: 612,864.
    with pytest.raises(sbp.SizeLimitError, match=r"2,304 products, once per symbol: 612,864 "
                                                 r"terms.*limit of 500,000.*--method collect"):
        sbp.derive(layer, (16, 16), method="diff")
    assert DEFAULT_DIFF_MAX_TERMS == 500_000


def test_diff_limit_counts_products_times_symbols_and_max_terms_raises_it():
    from symbackprop.core.derivation import diff_term_count

    layer = sbp.Conv2d(kernel_size=2)  # 3x3 input: 16 products; 9 + 4 + 1 symbols
    assert diff_term_count(layer, (1, 1, 3, 3)) == 16 * 14
    with pytest.raises(sbp.SizeLimitError, match="--max-terms 224"):
        sbp.derive(layer, (3, 3), method="diff", max_terms=223)
    assert sbp.derive(layer, (3, 3), method="diff", max_terms=224).method == "diff"


def test_diff_limit_of_a_chain_sums_its_layers(monkeypatch):
    from symbackprop.core.derivation import diff_term_count

    chain = sbp.Sequential(sbp.Conv2d(kernel_size=3), sbp.ReLU())
    shapes = chain.shapes((1, 1, 20, 20))
    assert diff_term_count(chain, (1, 1, 20, 20)) == \
        diff_term_count(chain.layers[0], shapes[0]) + diff_term_count(chain.layers[1], shapes[1])
    _no_expansion(monkeypatch)
    with pytest.raises(sbp.SizeLimitError, match="method diff"):
        sbp.derive(chain, (20, 20), method="diff")


def test_the_collect_limit_is_unchanged_by_the_diff_limit(monkeypatch):
    layer = sbp.Conv2d(kernel_size=3, padding=1)
    assert sbp.derive(layer, (16, 16)).method == "collect"  # 612,864 for diff, fine here


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100"])
def test_max_terms_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ValueError, match=r"max_terms \(--max-terms\) must be a whole number >= 1"):
        sbp.derive(sbp.Conv2d(kernel_size=2), (3, 3), max_terms=bad)


def test_cli_diff_limit_is_one_line_with_exit_2(capsys, monkeypatch):
    from symbackprop.cli import main

    _no_expansion(monkeypatch)
    assert main(["derive", "conv2d", "--kernel", "3", "--padding", "1", "--input", "16x16",
                 "--method", "diff"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--max-terms 612864" in error


def test_max_terms_inf_means_no_limit():
    """The code generator derives its own smallest instances with ``max_terms=math.inf``."""
    import math

    assert sbp.derive(sbp.Conv2d(kernel_size=2), (3, 3), max_terms=math.inf).method == "collect"
    assert sbp.derive(sbp.Conv2d(kernel_size=2), (3, 3), method="diff",
                      max_terms=math.inf).method == "diff"
