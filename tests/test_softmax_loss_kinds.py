"""Softmax, LogSoftmax, CrossEntropyLoss and MSELoss: the derivation, its proofs and the
generated modules, against the loop references of tests/reference_softmax_loss.py (which
never imports symbackprop), finite differences and SymPy's own differentiation of the
explicit exp/log forms."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import reference_softmax_loss as ref
import sympy
from hypothesis import assume, given
from hypothesis import strategies as st

import symbackprop as sbp
from symbackprop.core.naming import flat
from symbackprop.core.rules import proofs_for
from symbackprop.kinds.softmax.functions import explicit

STYLES = ("fast", "reference")
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _values(derivation, rng, x_value=None, extra=None):
    """Numbers for every symbol of the derivation (x, g and the constants)."""
    values = {}
    arrays = [derivation.x, derivation.g, *derivation.constants.values()]
    for array in arrays:
        for symbol in flat(array):
            if isinstance(symbol, sympy.Symbol):
                values[symbol] = rng.uniform(0.5, 2.0)
    if x_value is not None:
        for symbol, value in zip(flat(derivation.x), np.ravel(x_value)):
            values[symbol] = float(value)
    values.update(extra or {})
    return values


def _evaluate(array, values) -> np.ndarray:
    symbols = sorted(values, key=str)
    function = sympy.lambdify(symbols, flat(array), "numpy")  # one function for every element
    out = function(*[values[s] for s in symbols])
    return np.array([float(value) for value in out]).reshape(array.shape)


def _array(derivation, array, values) -> np.ndarray:
    return np.array([values[s] for s in flat(array)]).reshape(array.shape)


# -- the derivation, evaluated, against the loop references ------------------------------
@pytest.mark.parametrize("layer, size, batch", [
    (sbp.Softmax(1), 3, 2), (sbp.Softmax(-1), (2, 3), 1), (sbp.Softmax(0), 2, 3),
    (sbp.LogSoftmax(1), 4, 2), (sbp.LogSoftmax(2), (2, 3), 1)])
def test_softmax_derivation_matches_the_loops(layer, size, batch):
    rng = np.random.default_rng(1)
    derivation = sbp.derive(layer, size, batch)
    values = _values(derivation, rng)
    x, g = _array(derivation, derivation.x, values), _array(derivation, derivation.g, values)
    forward, backward = (ref.softmax, ref.softmax_backward) if isinstance(layer, sbp.Softmax) \
        else (ref.log_softmax, ref.log_softmax_backward)
    np.testing.assert_allclose(_evaluate(derivation.z, values), forward(x, layer.dim),
                               rtol=1e-12)
    np.testing.assert_allclose(_evaluate(derivation.grad_x, values),
                               backward(x, g, layer.dim), rtol=1e-10, atol=1e-14)


CROSS_ENTROPY_CASES = [
    (sbp.CrossEntropyLoss(), 3, 2),
    (sbp.CrossEntropyLoss(reduction="sum", target=(2, 0, 1)), 3, 3),
    (sbp.CrossEntropyLoss(reduction="none", target=(1, -100)), 3, 2),
    (sbp.CrossEntropyLoss(target=(1, -100, 0)), 2, 3),
    (sbp.CrossEntropyLoss(label_smoothing=0.1), 3, 2),
    (sbp.CrossEntropyLoss(weighted=True, target=(2, 1, -100)), 3, 3),
    (sbp.CrossEntropyLoss(weighted=True, label_smoothing=0.25, ignore_index=0,
                          target=(0, 1, 2, 1)), 3, 4),
    (sbp.CrossEntropyLoss(target=(0, 2, 1, 1)), (3, 2), 2),
]


@pytest.mark.parametrize("layer, size, batch", CROSS_ENTROPY_CASES)
def test_cross_entropy_derivation_matches_the_loops(layer, size, batch):
    rng = np.random.default_rng(2)
    derivation = sbp.derive(layer, size, batch)
    values = _values(derivation, rng)
    x = _array(derivation, derivation.x, values)
    g = _array(derivation, derivation.g, values)
    target = np.array(layer.targets(x.shape)).reshape((x.shape[0], *x.shape[2:]))
    weight = _array(derivation, derivation.constants["c"], values) if layer.weighted else None
    options = dict(weight=weight, reduction=layer.reduction, ignore_index=layer.ignore_index,
                   label_smoothing=layer.label_smoothing)
    loss = ref.cross_entropy(x, target, **options)
    upstream = g.reshape(target.shape) if layer.reduction == "none" else g[0]
    np.testing.assert_allclose(_evaluate(derivation.z, values).reshape(np.shape(loss)), loss,
                               rtol=1e-12)
    np.testing.assert_allclose(_evaluate(derivation.grad_x, values),
                               ref.cross_entropy_backward(x, target, grad_out=upstream,
                                                          **options), rtol=1e-10, atol=1e-14)
    # the targets are constants: one-hot numbers in the derivation, never differentiated
    assert set(derivation.grads) == {"x"}
    onehot = np.array(flat(derivation.constants["y"]), dtype=float).reshape(x.shape)
    assert onehot.sum() == sum(1 for t in target.ravel() if t != layer.ignore_index)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_derivation_matches_the_loops(reduction):
    layer = sbp.MSELoss(reduction)
    derivation = sbp.derive(layer, 3, 2)
    values = _values(derivation, np.random.default_rng(3))
    x, y = (_array(derivation, a, values) for a in (derivation.x, derivation.constants["y"]))
    g = _array(derivation, derivation.g, values)
    upstream = g if reduction == "none" else g[0]
    np.testing.assert_allclose(_evaluate(derivation.z, values).reshape(
        np.shape(ref.mse(x, y, reduction))), ref.mse(x, y, reduction), rtol=1e-12)
    np.testing.assert_allclose(_evaluate(derivation.grad_x, values),
                               ref.mse_backward(x, y, reduction, upstream), rtol=1e-12)


# -- SymPy's own differentiation: the diff method, and the explicit exp/log forms --------
@pytest.mark.parametrize("layer, size, batch", [
    (sbp.Softmax(1), 3, 1), (sbp.LogSoftmax(1), 3, 1),
    (sbp.CrossEntropyLoss(label_smoothing=0.2, weighted=True, target=(1, -100)), 3, 2),
    (sbp.MSELoss(), 2, 2)])
def test_diff_equals_collect_and_the_explicit_forms(layer, size, batch):
    collect = sbp.derive(layer, size, batch)
    diff = sbp.derive(layer, size, batch, method="diff")
    for a, b in zip(flat(collect.grad_x), flat(diff.grad_x)):
        assert sympy.expand(a - b) == 0
    # differentiate the explicit exp/log forward (no function of ours), compare numerically
    values = _values(collect, np.random.default_rng(4))
    loss = sympy.Add(*[g * explicit(z) for g, z in zip(flat(collect.g), flat(collect.z))])
    for symbol, derived in zip(flat(collect.x), flat(collect.grad_x)):
        truth = sympy.diff(loss, symbol)
        assert not truth.atoms(sympy.Function) - truth.atoms(sympy.exp, sympy.log)
        assert abs(float(truth.evalf(30, subs=values)) -
                   float(explicit(derived).evalf(30, subs=values))) < 1e-12


@pytest.mark.parametrize("layer, size, batch", [
    (sbp.Softmax(1), 3, 2), (sbp.LogSoftmax(-1), (2, 3), 1), *CROSS_ENTROPY_CASES[:7],
    (sbp.MSELoss("none"), 2, 2)])
def test_every_closed_form_is_proven_symbolically(layer, size, batch):
    proofs = proofs_for(sbp.derive(layer, size, batch))
    assert proofs and all(proof.holds for proof in proofs)
    assert all(proof.how.startswith("symbolically") for proof in proofs)


def test_a_diagonal_softmax_rule_is_not_proven():
    from symbackprop.core.naming import to_grid
    from symbackprop.kinds.softmax.rules import prove_elements

    derivation = sbp.derive(sbp.Softmax(1), 3, 1)
    z, g = to_grid(derivation.z), to_grid(derivation.g)
    proof = prove_elements("grad_x", "diagonal", z * (1 - z) * g, derivation.grad_x)
    assert not proof.holds and len(proof.mismatches) == 3


def test_the_stated_derivative_falls_back_to_numbers():
    import random

    from symbackprop.kinds.softmax.rules import numeric_words, same_value

    x = sympy.Symbol("x", real=True)
    # the same number written two ways that expand/cancel do not match: numeric proof
    holds, how = same_value(sympy.sin(x) ** 2 + sympy.cos(x) ** 2, sympy.Integer(1), [x],
                            random.Random(0))
    assert holds and how == numeric_words()
    holds, _ = same_value(sympy.sin(x) ** 2 + sympy.cos(x), sympy.Integer(1), [x],
                          random.Random(0))
    assert not holds


# -- generated modules against the loops, finite differences, hard inputs ----------------
def _finite_difference(function, x, direction, step=1e-6):
    return (function(x + step * direction) - function(x - step * direction)) / (2 * step)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("layer, shape", [
    (sbp.Softmax(1), (4, 5)), (sbp.Softmax(-1), (2, 3, 4)), (sbp.Softmax(0), (3, 2)),
    (sbp.LogSoftmax(1), (2, 3, 2, 2)), (sbp.LogSoftmax(-2), (2, 4, 3))])
def test_generated_softmax(layer, shape, style):
    module = sbp.load(layer, style=style)
    rng = np.random.default_rng(5)
    x, g = rng.standard_normal(shape), rng.standard_normal(shape)
    forward, backward = (ref.softmax, ref.softmax_backward) if isinstance(layer, sbp.Softmax) \
        else (ref.log_softmax, ref.log_softmax_backward)
    np.testing.assert_allclose(module.forward(x), forward(x, layer.dim), rtol=1e-12,
                               atol=1e-15)
    (grad,) = module.backward(x, g)
    np.testing.assert_allclose(grad, backward(x, g, layer.dim), rtol=1e-10, atol=1e-14)
    direction = rng.standard_normal(shape)
    slope = _finite_difference(lambda v: np.sum(g * module.forward(v)), x, direction)
    assert abs(slope - np.sum(grad * direction)) < 1e-7
    assert module.forward(x.astype(np.float32)).dtype == np.float32


def _ce_arguments(layer, rng, shape):
    batch, classes, *rest = shape
    target = rng.integers(0, classes, size=(batch, *rest))
    target.flat[0] = layer.ignore_index if batch * np.prod(rest, dtype=int) > 1 else 0
    weight = rng.uniform(0.2, 2.0, classes) if layer.weighted else None
    return target, weight


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("layer", [
    sbp.CrossEntropyLoss(), sbp.CrossEntropyLoss(reduction="sum"),
    sbp.CrossEntropyLoss(reduction="none"), sbp.CrossEntropyLoss(label_smoothing=0.1),
    sbp.CrossEntropyLoss(weighted=True), sbp.CrossEntropyLoss(weighted=True, label_smoothing=0.3,
                                                              reduction="none", ignore_index=1)])
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2, 2)])
def test_generated_cross_entropy(layer, shape, style):
    module = sbp.load(layer, style=style)
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape) * 3
    target, weight = _ce_arguments(layer, rng, shape)
    extra = (weight,) if layer.weighted else ()
    options = dict(weight=weight, reduction=layer.reduction, ignore_index=layer.ignore_index,
                   label_smoothing=layer.label_smoothing)
    loss = module.forward(x, target, *extra)
    np.testing.assert_allclose(loss, ref.cross_entropy(x, target, **options), rtol=1e-12)
    upstream = rng.standard_normal(target.shape) if layer.reduction == "none" else 0.7
    (grad,) = module.backward(x, target, *extra, upstream)
    np.testing.assert_allclose(grad, ref.cross_entropy_backward(x, target, grad_out=upstream,
                                                                **options), rtol=1e-10,
                               atol=1e-15)
    direction = rng.standard_normal(shape)
    slope = _finite_difference(
        lambda v: np.sum(upstream * module.forward(v, target, *extra)), x, direction)
    assert abs(slope - np.sum(grad * direction)) < 1e-7
    assert np.shape(loss) == (target.shape if layer.reduction == "none" else ())


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_generated_mse(reduction, style):
    module = sbp.load(sbp.MSELoss(reduction), style=style)
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((3, 2, 2)), rng.standard_normal((3, 2, 2))
    upstream = rng.standard_normal(x.shape) if reduction == "none" else 1.5
    np.testing.assert_allclose(module.forward(x, y), ref.mse(x, y, reduction), rtol=1e-12)
    np.testing.assert_allclose(module.backward(x, y, upstream)[0],
                               ref.mse_backward(x, y, reduction, upstream), rtol=1e-12)


def test_large_and_equal_logits():
    softmax, log_softmax = sbp.load(sbp.Softmax(1)), sbp.load(sbp.LogSoftmax(1))
    x = np.array([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0], [-1000.0, -1000.0, -999.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # no log(0), no 0/0
        z = softmax.forward(x)
        log_z = log_softmax.forward(x)
        loss = sbp.load(sbp.CrossEntropyLoss()).forward(x, np.array([2, 0, 2]))
    np.testing.assert_allclose(z[1], [1 / 3] * 3)
    np.testing.assert_allclose(log_z[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(loss, (2000.0 + np.log(3) + np.log1p(2 * np.exp(-1.0))) / 3)
    assert np.all(np.isfinite(softmax.backward(x, np.ones_like(x))[0]))


def test_nonfinite_and_all_ignored():
    softmax = sbp.load(sbp.Softmax(1))
    with np.errstate(invalid="ignore"):  # inf - inf: NaN, as exp(inf) / (exp(inf) + 1) is
        z = softmax.forward(np.array([[np.nan, 0.0], [np.inf, 0.0], [1.0, 2.0]]))
    assert np.isnan(z[0]).all() and np.isnan(z[1]).all() and np.isfinite(z[2]).all()
    # -inf logits: probability 0 (log-probability -inf), the others as without them
    x = np.array([[-np.inf, 0.0, 1.0]])
    np.testing.assert_allclose(softmax.forward(x)[0], [0.0, *ref.softmax(x[:, 1:], 1)[0]])
    assert sbp.load(sbp.LogSoftmax(1)).forward(x)[0, 0] == -np.inf
    assert np.isfinite(softmax.backward(x, np.ones_like(x))[0]).all()
    module = sbp.load(sbp.CrossEntropyLoss())
    x = np.array([[np.nan, 1.0], [1.0, 2.0]])
    # an ignored sample reads nothing, as PyTorch's nll_loss
    assert np.isfinite(module.forward(x, np.array([-100, 1])))
    assert np.all(module.backward(x, np.array([-100, 1]))[0][0] == 0)
    assert np.isnan(module.forward(x[1:], np.array([-100])))  # 0 / 0, as PyTorch


@pytest.mark.parametrize("call, message", [
    (lambda m: m.forward(np.ones((2, 3)), np.array([0, 3])), "classes in"),
    (lambda m: m.forward(np.ones((2, 3)), np.array([0.0, 1.0])), "integer array"),
    (lambda m: m.forward(np.ones((2, 3)), np.array([0, 1, 2])), "shape"),
    (lambda m: m.backward(np.ones((2, 3)), np.array([0, 1]), np.ones(2)), "one number"),
])
def test_cross_entropy_module_checks_its_arguments(call, message):
    with pytest.raises((TypeError, ValueError), match=message):
        call(sbp.load(sbp.CrossEntropyLoss()))


# -- property tests ----------------------------------------------------------------------
@given(rank=st.integers(2, 4), data=st.data())
def test_property_softmax_modules(rank, data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    dim = data.draw(st.integers(-rank, rank - 1))
    log = data.draw(st.booleans())
    scale = data.draw(st.sampled_from([1.0, 30.0, 1000.0]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape) * scale
    if data.draw(st.booleans()):
        x[...] = 7.0  # equal logits
    g = rng.standard_normal(shape)
    layer = sbp.LogSoftmax(dim) if log else sbp.Softmax(dim)
    module = sbp.load(layer)
    forward, backward = (ref.log_softmax, ref.log_softmax_backward) if log \
        else (ref.softmax, ref.softmax_backward)
    np.testing.assert_allclose(module.forward(x), forward(x, dim), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(module.backward(x, g)[0], backward(x, g, dim), rtol=1e-8,
                               atol=1e-10)


@given(data=st.data())
def test_property_cross_entropy_modules(data):
    batch, classes = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    rest = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2)))
    layer = sbp.CrossEntropyLoss(
        reduction=data.draw(st.sampled_from(["mean", "sum", "none"])),
        ignore_index=data.draw(st.sampled_from([-100, 0, 1])),
        label_smoothing=data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
        weighted=data.draw(st.booleans()))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    shape = (batch, classes, *rest)
    x = rng.standard_normal(shape) * data.draw(st.sampled_from([1.0, 1000.0]))
    target = rng.integers(0, classes, size=(batch, *rest))
    if data.draw(st.booleans()):
        target.flat[0] = layer.ignore_index
    counted = target != layer.ignore_index
    assume(layer.reduction != "mean" or counted.any())
    weight = rng.uniform(0.1, 3.0, classes) if layer.weighted else None
    extra = (weight,) if layer.weighted else ()
    options = dict(weight=weight, reduction=layer.reduction, ignore_index=layer.ignore_index,
                   label_smoothing=layer.label_smoothing)
    module = sbp.load(layer)
    expected = ref.cross_entropy(x, target, **options)
    np.testing.assert_allclose(module.forward(x, target, *extra), expected, rtol=1e-9,
                               atol=1e-9)
    upstream = rng.standard_normal(target.shape) if layer.reduction == "none" else 1.3
    np.testing.assert_allclose(module.backward(x, target, *extra, upstream)[0],
                               ref.cross_entropy_backward(x, target, grad_out=upstream,
                                                          **options), rtol=1e-8, atol=1e-12)


@given(data=st.data())
def test_property_cross_entropy_derivations_are_proven(data):
    batch, classes = data.draw(st.integers(1, 2)), data.draw(st.integers(2, 3))
    targets = tuple(data.draw(st.lists(st.sampled_from([*range(classes), -100]),
                                       min_size=batch, max_size=batch)))
    layer = sbp.CrossEntropyLoss(
        reduction=data.draw(st.sampled_from(["mean", "sum", "none"])),
        label_smoothing=data.draw(st.sampled_from([0.0, 0.2])),
        weighted=data.draw(st.booleans()), target=targets)
    proofs = proofs_for(sbp.derive(layer, classes, batch))
    assert all(proof.holds for proof in proofs)


# -- PyTorch, when installed -------------------------------------------------------------
@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
@pytest.mark.parametrize("kwargs", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                    dict(label_smoothing=0.1), dict(weighted=True),
                                    dict(weighted=True, label_smoothing=0.2, ignore_index=1)])
def test_cross_entropy_against_pytorch(kwargs):  # pragma: no cover - needs torch
    import torch

    layer = sbp.CrossEntropyLoss(**kwargs)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 4, 2))
    target, weight = _ce_arguments(layer, rng, x.shape)
    extra = (weight,) if layer.weighted else ()
    module = sbp.load(layer)
    xt = torch.tensor(x, requires_grad=True)
    loss = torch.nn.CrossEntropyLoss(
        weight=None if weight is None else torch.tensor(weight), reduction=layer.reduction,
        ignore_index=layer.ignore_index, label_smoothing=layer.label_smoothing)(
            xt, torch.tensor(target))
    upstream = torch.ones_like(loss)
    loss.backward(upstream)
    np.testing.assert_allclose(module.forward(x, target, *extra), loss.detach().numpy(),
                               rtol=1e-10)
    np.testing.assert_allclose(module.backward(x, target, *extra, upstream.numpy())[0],
                               xt.grad.numpy(), rtol=1e-9, atol=1e-12)


# -- the committed catalog files of the losses -------------------------------------------
@pytest.mark.parametrize("name", ["crossentropyloss_mean.py", "crossentropyloss_mean_ls0p1.py",
                                  "mseloss_mean.py"])
def test_committed_loss_modules_match_the_loops(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "generated" / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 3, 2))
    if name.startswith("mse"):
        y = rng.standard_normal(x.shape)
        np.testing.assert_allclose(module.forward(x, y), ref.mse(x, y), rtol=1e-12)
        np.testing.assert_allclose(module.backward(x, y, 0.5)[0],
                                   ref.mse_backward(x, y, grad_out=0.5), rtol=1e-12)
        return
    target = rng.integers(0, 3, size=(4, 2))
    target[1, 0] = -100
    smoothing = 0.1 if "ls0p1" in name else 0.0
    np.testing.assert_allclose(module.forward(x, target),
                               ref.cross_entropy(x, target, label_smoothing=smoothing),
                               rtol=1e-12)
    np.testing.assert_allclose(module.backward(x, target, 0.5)[0],
                               ref.cross_entropy_backward(x, target, label_smoothing=smoothing,
                                                          grad_out=0.5), rtol=1e-10)
