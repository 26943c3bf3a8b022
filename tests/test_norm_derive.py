"""Normalisations, symbolically: the expansion in terms of the group mean and biased
variance, the gradient elements against the loop references, SymPy's own differentiation
against the collect method, and the closed forms' proof (symbolic and numeric)."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest
import sympy
from reference_norm import (
    batch_norm_layout,
    group_norm_layout,
    instance_norm_layout,
    layer_norm_layout,
    norm_backward_loops,
    norm_forward_loops,
)

from symbackprop import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm, derive
from symbackprop.core.rules import proofs_for
from symbackprop.kinds.normalization import rules
from symbackprop.kinds.normalization.rules import EPS, GroupMean, GroupVariance

# (id, layer, input_size, batch, layout of tests/reference_norm.py)
CASES = [
    ("bn1d", BatchNorm1d(2), None, 3, batch_norm_layout),
    ("bn1d-length", BatchNorm1d(1, eps=0.1), 2, 2, batch_norm_layout),
    ("bn2d", BatchNorm2d(2), (1, 2), 2, batch_norm_layout),
    ("bn1d-no-affine", BatchNorm1d(2, affine=False), None, 2, batch_norm_layout),
    ("bn2d-eval", BatchNorm2d(2, training=False), (1, 2), 2, batch_norm_layout),
    ("layernorm", LayerNorm(3), None, 2, lambda s: layer_norm_layout(s, (3,))),
    ("layernorm-2d", LayerNorm((1, 2)), (2, 1, 2), 1, lambda s: layer_norm_layout(s, (1, 2))),
    ("groupnorm", GroupNorm(2, 4), (1, 1), 1, lambda s: group_norm_layout(s, 2)),
    ("instancenorm", InstanceNorm2d(2), (1, 2), 2, instance_norm_layout),
    ("instancenorm-affine", InstanceNorm2d(1, affine=True), (2, 2), 1, instance_norm_layout),
]
IDS = [case[0] for case in CASES]


@functools.lru_cache(maxsize=None)
def derived(layer, input_size, batch, method="collect"):
    """One derivation per instance for the whole module (derive is deterministic)."""
    return derive(layer, input_size, batch, method=method)


def point(derivation, rng):
    """Random numbers for every array of the derivation, by name."""
    values = {"x": rng.standard_normal(derivation.input_shape) * 2 + 0.5,
              "g": rng.standard_normal(derivation.input_shape)}
    for name, array in derivation.params.items():
        values[name] = rng.standard_normal(array.shape)
    for name, array in derivation.constants.items():
        values[name] = rng.random(array.shape) + (0.5 if name == "running_var" else -0.5)
    return values


def substitute(expressions, derivation, values):
    """Evaluate a SymPy array at ``values`` (element symbols by array name)."""
    arrays = {"x": derivation.x, "g": derivation.g, **derivation.params, **derivation.constants}
    replace = {EPS: sympy.Float(derivation.layer.eps, 30)}
    for name, symbols in arrays.items():
        for symbol, value in zip(sympy.flatten(symbols.tolist()), np.ravel(values[name])):
            replace[symbol] = sympy.Float(float(value), 30)
    flat = [float(sympy.sympify(e).xreplace(replace).evalf(25))
            for e in sympy.flatten(expressions.tolist())]
    return np.array(flat).reshape(expressions.shape)


@pytest.mark.parametrize("name, layer, input_size, batch, layout", CASES, ids=IDS)
def test_the_derivation_is_the_loop_reference(name, layer, input_size, batch, layout):
    d = derived(layer, input_size, batch)
    values = point(d, np.random.default_rng(len(name)))
    gamma, beta = values.get("weight"), values.get("bias")
    running = None if layer.uses_batch_statistics else (values["running_mean"],
                                                       values["running_var"])
    shape_layout = layout(d.input_shape)
    z = norm_forward_loops(values["x"], shape_layout, gamma, beta, layer.eps, running)
    dx, dgamma, dbeta = norm_backward_loops(values["x"], shape_layout, values["g"], gamma,
                                            layer.eps, running)
    np.testing.assert_allclose(substitute(d.z, d, values), z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(substitute(d.grads["x"], d, values), dx, rtol=1e-10, atol=1e-12)
    if layer.has_affine:
        np.testing.assert_allclose(substitute(d.grads["weight"], d, values), dgamma, rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(substitute(d.grads["bias"], d, values), dbeta, rtol=1e-12)
    assert set(d.grads) == {"x", *layer.parameter_names}  # running statistics: no gradient


DIFF_CASES = [case for case in CASES if case[0] in ("bn1d", "bn2d", "layernorm-2d", "groupnorm")]
PROOF_CASES = [case for case in CASES if case[0] not in ("bn1d-length", "instancenorm")]


@pytest.mark.parametrize("name, layer, input_size, batch, layout", DIFF_CASES,
                         ids=[case[0] for case in DIFF_CASES])
def test_sympy_diff_gives_the_collected_gradients(name, layer, input_size, batch, layout):
    collected = derived(layer, input_size, batch)
    plain = derived(layer, input_size, batch, "diff")
    values = point(collected, np.random.default_rng(1))
    for key in collected.grads:
        np.testing.assert_allclose(substitute(plain.grads[key], plain, values),
                                   substitute(collected.grads[key], collected, values),
                                   rtol=1e-15, atol=1e-15)


def test_the_small_batch_norm_derives_and_proves_fast():
    start = time.perf_counter()
    d = derive(BatchNorm1d(2), None, 3)
    proofs = proofs_for(d)
    assert time.perf_counter() - start < 3
    assert [(p.name, p.holds, p.how) for p in proofs] == [
        ("grad_x", True, "symbolically"), ("grad_weight", True, "symbolically"),
        ("grad_bias", True, "symbolically")]
    assert proofs[0].statement == \
        "dL/dx = (gamma / (m sigma)) (m g - sum g - xhat sum(g xhat))"


def test_the_forward_is_written_with_the_group_statistics():
    d = derive(BatchNorm1d(2), None, 3)
    z = d.z[1, 0]
    (mean,) = z.atoms(GroupMean)
    (variance,) = z.atoms(GroupVariance)
    x = d.x
    assert mean.args[0] == sympy.Tuple(x[0, 0], x[1, 0], x[2, 0])  # channel 1 over the batch
    assert sympy.expand(mean.definition - (x[0, 0] + x[1, 0] + x[2, 0]) / 3) == 0
    assert variance.mean == mean


@pytest.mark.parametrize("m", [1, 2, 5])
def test_the_variance_derivative_is_proven_from_the_definition(m):
    assert rules.variance_derivative(m) == sympy.Rational(2, m)


@pytest.mark.parametrize("name, layer, input_size, batch, layout", PROOF_CASES,
                         ids=[case[0] for case in PROOF_CASES])
def test_every_closed_form_holds_symbolically_or_numerically(name, layer, input_size, batch,
                                                             layout, monkeypatch):
    d = derived(layer, input_size, batch)
    proofs = proofs_for(d)
    assert proofs and all(p.holds for p in proofs), proofs
    if name in ("bn1d", "bn2d-eval", "groupnorm", "layernorm-2d"):
        monkeypatch.setattr(rules, "SYMBOLIC_LIMIT", 0)  # the numeric path, same instance
        numeric = rules.prove_rules(d)
        assert all(p.holds and p.how == "numerically" for p in numeric)


def test_a_wrong_closed_form_fails_both_proofs(monkeypatch):
    """The proof is not vacuous: dropping the gradient through the mean is caught."""
    d = derive(BatchNorm1d(1), None, 3)
    truth = d.grads["x"][0, 0]
    (variance,) = truth.atoms(GroupVariance)
    wrong = d.g[0, 0] * d.params["weight"][0] / sympy.sqrt(variance + EPS)  # mean, var constant
    symbols = sorted(truth.free_symbols - {EPS}, key=sympy.default_sort_key)
    assert not rules._symbolic_difference_is_zero(wrong - truth)
    assert not rules._numeric_difference_is_zero([(wrong, truth)], symbols, d.layer)
    assert rules._numeric_difference_is_zero([(truth, truth)], symbols, d.layer)


@pytest.mark.parametrize("make, message", [
    (lambda: BatchNorm1d(0), "num_features must be a whole number >= 1"),
    (lambda: BatchNorm2d(2, eps=0), "eps must be a finite number > 0"),
    (lambda: BatchNorm2d(2, training="yes"), "training must be True or False"),
    (lambda: GroupNorm(3, 4), "num_channels must be divisible by num_groups"),
    (lambda: LayerNorm((2, 0)), "normalized_shape must be"),
    (lambda: InstanceNorm2d(2, affine=1), "affine must be True or False"),
    (lambda: BatchNorm2d(2).input_shape((3, 2, 2)), "C = num_features = 2"),
    (lambda: BatchNorm1d(2).output_shape_for((2, 3)), "C = num_features = 2"),
    (lambda: LayerNorm((2, 3)).output_shape_for((2, 3, 2)), "whose last axes"),
    (lambda: GroupNorm(2, 4).output_shape_for((2, 4, 3)), "(N, C) or (N, C, H, W)"),
])
def test_bad_layers_and_inputs_name_the_rule(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_specs_round_trip_and_module_names():
    from symbackprop import layer_from_spec
    from symbackprop.core.naming import module_name

    for layer in (BatchNorm1d(3, eps=1e-3), BatchNorm2d(4, affine=False, training=False),
                  LayerNorm((2, 3)), LayerNorm(4), GroupNorm(2, 6), InstanceNorm2d(3, affine=True)):
        assert layer_from_spec(layer.spec()) == layer
    assert LayerNorm(4).spec() == {"layer": "layernorm", "normalized_shape": [4]}
    assert module_name(BatchNorm2d(64)) == "batchnorm2d_c64"
    assert module_name(BatchNorm2d(2, training=False)) == "batchnorm2d_c2_eval"
    assert module_name(GroupNorm(32, 64)) == "groupnorm_g32_c64"
    assert module_name(LayerNorm((2, 3), elementwise_affine=False)) == "layernorm_2x3_noaffine"
    assert module_name(InstanceNorm2d(3, affine=True)) == "instancenorm2d_c3_affine"
