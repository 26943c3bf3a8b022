"""The fast proof: polynomials compared as canonical term dictionaries must agree with
``sympy.expand`` (the proof it replaces), and still reject a wrong closed form."""

import gc
from fractions import Fraction

import numpy as np
import pytest
import sympy
from conftest import CONV_GRID
from hypothesis import given, settings
from hypothesis import strategies as st

import symbackprop as sbp
from symbackprop.core import rules
from symbackprop.core.naming import to_grid
from symbackprop.kinds.conv2d import rules as conv_rules

X, Y, Z, W = sympy.symbols("x y z w", real=True)


def expand_says_equal(closed, derived) -> bool:
    """The comparison the proof used before: expand the difference."""
    closed = closed.as_expr() if isinstance(closed, rules.Polynomial) else sympy.sympify(closed)
    return sympy.expand(closed - derived) == 0


def grid_layer(name):
    (_, kwargs, size, batch), = [case for case in CONV_GRID if case[0] == name]
    return sbp.Conv2d(**kwargs), size, batch


def perturbations(expression, other_symbol):
    """Ways to make a closed-form element wrong: a term dropped, a term added, one
    coefficient changed, the sign of one term flipped."""
    terms = sympy.Add.make_args(expression)
    first, rest = terms[0], terms[1:]
    return {
        "term dropped": sympy.Add(*rest),
        "term added": expression + other_symbol * first,
        "coefficient": expression + first,  # 2*first
        "sign": sympy.Add(-first, *rest),
    }


@pytest.mark.parametrize("name", [case[0] for case in CONV_GRID])
def test_fast_comparison_agrees_with_expand_on_the_grid(name):
    layer, size, batch = grid_layer(name)
    derivation = sbp.derive(layer, size, batch)
    on_symbols = conv_rules.closed_form_gradients(
        layer, to_grid(derivation.x), to_grid(derivation.w), to_grid(derivation.g))
    on_polynomials = conv_rules.closed_form_gradients(
        layer, rules.polynomial_grid(derivation.x), rules.polynomial_grid(derivation.w),
        rules.polynomial_grid(derivation.g))
    stranger = sympy.Symbol("stranger", real=True)
    for key, truth_array in derivation.grads.items():
        truth = to_grid(truth_array)
        for index in np.ndindex(*truth.shape):
            for closed in (on_symbols[key][index], on_polynomials[key][index]):
                assert rules.same_polynomial(closed, truth[index]) is True
                assert expand_says_equal(closed, truth[index])
            if truth[index] == 0:
                continue
            for how, wrong in perturbations(truth[index], stranger).items():
                assert rules.same_polynomial(wrong, truth[index]) is False, (key, index, how)
                assert not expand_says_equal(wrong, truth[index]), (key, index, how)
                wrong_polynomial = rules.Polynomial.of(wrong)
                assert rules.same_polynomial(wrong_polynomial, truth[index]) is False


def test_hand_made_closed_form_differing_by_a_term_a_coefficient_a_sign():
    g = sympy.symbols("g0:4", real=True)
    w = sympy.symbols("w0:2", real=True)
    truth = np.array([g[0] * w[0] + g[1] * w[1], g[2] * w[0] + g[3] * w[1],
                      g[0] / 4 + g[1] / 4, sympy.Integer(0), g[2] * w[1]], dtype=object)
    closed = np.array([
        w[1] * g[1] + w[0] * g[0],              # right: order does not matter
        g[2] * w[0],                            # one term missing
        sympy.Rational(1, 3) * g[0] + g[1] / 4,  # one coefficient wrong
        g[3] * w[0] - w[0] * g[3],              # zero, written as a cancelling pair
        -g[2] * w[1],                           # sign
    ], dtype=object)
    derived = sbp.core.naming.to_array(truth)
    assert rules.mismatched_elements(closed, derived, "a rule") == ((1,), (2,), (4,))
    for index in range(truth.size):
        assert rules.same_polynomial(closed[index], truth[index]) == \
            expand_says_equal(closed[index], truth[index])
        as_polynomial = rules.Polynomial.of(closed[index])
        assert rules.same_polynomial(as_polynomial, truth[index]) == \
            expand_says_equal(closed[index], truth[index])


def test_an_element_that_is_not_written_as_a_sum_of_products_falls_back_to_expand():
    assert rules.polynomial_terms(W * (X + Y)) is None
    assert rules.same_polynomial(W * (X + Y), W * X + Y * W)
    assert not rules.same_polynomial(W * (X + Y), W * X)
    assert rules.polynomial_terms(sympy.sin(X)) is None
    assert rules.same_polynomial(sympy.sin(X) * 2, sympy.sin(X) + sympy.sin(X))
    assert rules.polynomial_terms(sympy.Float(0.5) * X) is None  # floats: expand decides
    assert rules.same_polynomial(rules.Polynomial.of(X * Y), X * (Y + 0 * Z))


def test_polynomial_terms_is_canonical():
    assert rules.polynomial_terms(X * Y + Y * X) == {frozenset({(X, 1), (Y, 1)}): 2}
    assert rules.polynomial_terms(sympy.Mul(X, X, evaluate=False)) == \
        rules.polynomial_terms(X**2) == {frozenset({(X, 2)}): 1}
    assert rules.polynomial_terms(sympy.Add(X, -X, evaluate=False)) == {}
    assert rules.polynomial_terms(0) == {}
    assert rules.polynomial_terms(X / 3) == {frozenset({(X, 1)}): Fraction(1, 3)}
    # same name, different assumptions: different symbols, as for sympy.expand
    assert not rules.same_polynomial(sympy.Symbol("x"), X)


def test_polynomial_arithmetic_mixes_with_numpy_zeros():
    x, y = rules.Polynomial.of(X), rules.Polynomial.of(Y)
    grid = np.array([x, y], dtype=object)
    padded = rules.pad2d(grid.reshape(1, 2), (1, 0, 0, 1))  # integer zeros around
    assert padded.shape == (2, 3) and padded[0, 0] == 0
    assert (x * 0) == 0 and (0 * x) == 0 and (x + 0) == x and (0 + x) == x
    assert ((x + y) * (x - y)).as_expr() == X**2 - Y**2
    assert (x / 4).terms == {frozenset({(X, 1)}): Fraction(1, 4)}
    assert (np.int64(2) * x).terms == {frozenset({(X, 1)}): 2}
    assert rules.array_sum([grid, grid])[0] == 2 * x
    with pytest.raises(TypeError, match="divides only by a nonzero number"):
        x / y
    with pytest.raises(ValueError, match="not a sum of products"):
        rules.Polynomial.of(sympy.sin(X))


def test_axis_sum_matches_numpy_and_builds_one_sum():
    numbers = np.arange(24).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(rules.axis_sum(numbers, (0, 2, 3)),
                                  numbers.sum(axis=(0, 2, 3)))
    symbols = np.array(sympy.symbols("s0:24"), dtype=object).reshape(2, 3, 2, 2)
    summed = rules.axis_sum(symbols, (0, 2, 3))
    assert summed.shape == (3,)
    for channel in range(3):
        assert summed[channel] == sympy.Add(*symbols[:, channel].flat)


# -- random polynomials: the fast comparison and sympy.expand always agree ----------

SYMBOLS = (X, Y, Z, W)
coefficients = st.sampled_from([1, 1, 1, 2, -1, -3, sympy.Rational(1, 2), sympy.Rational(-2, 3)])


@st.composite
def products(draw):
    factors = draw(st.lists(st.sampled_from(SYMBOLS), min_size=0, max_size=3))
    return draw(coefficients) * sympy.Mul(*factors)


@st.composite
def polynomials(draw):
    """A sum of products, sometimes with a nested (not expanded) sum inside."""
    terms = draw(st.lists(products(), min_size=0, max_size=5))
    if terms and draw(st.booleans()) and draw(st.booleans()):
        terms[0] = terms[0] * (sympy.Add(*draw(st.lists(products(), min_size=1, max_size=3))))
    return sympy.Add(*terms)


@st.composite
def pairs(draw):
    """Two polynomials, often equal: the second is the first rearranged or perturbed."""
    first = draw(polynomials())
    how = draw(st.sampled_from(["other", "same", "split", "perturbed"]))
    if how == "other":
        return first, draw(polynomials())
    terms = list(sympy.Add.make_args(first))
    draw(st.randoms()).shuffle(terms)
    if how == "split" and terms:  # a*t written as t + (a-1)*t, unevaluated
        terms = [terms[0], -terms[0] / 2, terms[0] / 2] + terms[1:]
    if how == "perturbed":
        terms.append(draw(products()))
    return first, sympy.Add(*terms, evaluate=False)


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_fast_comparison_agrees_with_expand_on_random_polynomials(pair):
    first, second = pair
    truth = sympy.expand(first - second) == 0
    assert rules.same_polynomial(first, second) == truth
    if rules.polynomial_terms(first) is not None:
        assert rules.same_polynomial(rules.Polynomial.of(first), second) == truth


@settings(max_examples=200, deadline=None)
@given(st.lists(polynomials().filter(lambda p: rules.polynomial_terms(p) is not None),
                min_size=2, max_size=4), st.integers(1, 5))
def test_polynomial_arithmetic_agrees_with_sympy(values, divisor):
    a, b, *rest = values
    pa, pb = rules.Polynomial.of(a), rules.Polynomial.of(b)
    assert sympy.expand((pa * pb).as_expr() - a * b) == 0
    assert sympy.expand((pa - pb / divisor).as_expr() - (a - b / divisor)) == 0
    total = rules.Polynomial.add_all([rules.Polynomial.of(v) for v in values] + [0])
    assert sympy.expand(total.as_expr() - sympy.Add(*values)) == 0
    assert rules.same_polynomial(total, sympy.Add(a, b, *rest))


# -- the proof itself ---------------------------------------------------------------

def test_wrong_kron_form_is_caught(monkeypatch):
    from symbackprop.kinds.pool2d import rules as pool_rules

    derivation = sbp.derive(sbp.AvgPool2d(kernel_size=2), (4, 4))
    assert pool_rules.prove_kron(derivation).holds
    real = pool_rules.kron_upsample
    monkeypatch.setattr(pool_rules, "kron_upsample",
                        lambda g, kernel, size: real(g, kernel, size) * 2)
    proof = pool_rules.prove_kron(derivation)
    assert not proof.holds and len(proof.mismatches) == 16


def test_the_collector_is_restored_after_a_proof_and_after_an_error():
    derivation = sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3))
    assert gc.isenabled()
    sbp.prove_rules(derivation)
    assert gc.isenabled()
    with pytest.raises(RuntimeError), rules.collector_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with rules.collector_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_every_instance_derive_accepts_by_default_is_proven():
    assert rules.PROOF_TERMS >= sbp.DEFAULT_MAX_TERMS
    derivation = sbp.derive(sbp.Conv2d(kernel_size=3, padding=1), (24, 24))
    proofs = rules.proofs_for(derivation)
    assert proofs and all(proof.holds for proof in proofs)
    assert rules.proofs_for(derivation, max_terms=100) is None  # a small limit still quotes
