"""Dropout with an explicit keep-mask, ``z = x * m / (1 - p)``: derived (the mask a constant,
never differentiated), generated in both styles, printed and checked, against the loops
of tests/reference_activations_more.py and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_activations_more as ref
import sympy
from conftest import evaluate
from hypothesis import given
from hypothesis import strategies as st

import symbackprop as sbp
from symbackprop import Dropout, check_impl
from symbackprop.cli import main
from symbackprop.core.naming import module_name

STYLES = ("fast", "reference")


def arrays(shape, p, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape), (rng.random(shape) >= p).astype(float),
            rng.standard_normal(shape))


@pytest.mark.parametrize("p", [0.0, 0.5, 0.3, 0.9])
def test_derivation_equals_the_reference_and_diff(p):
    layer = Dropout(p)
    d = sbp.derive(layer, (2, 3), batch=2)
    assert set(d.constants) == {"m"} and set(d.grads) == {"x"}  # the mask is not differentiated
    x, m, g = arrays(d.input_shape, p)
    np.testing.assert_allclose(evaluate(d.z, {"x": x, "m": m}), ref.dropout(x, m, p), rtol=1e-14)
    np.testing.assert_allclose(evaluate(d.grad_x, {"g": g, "m": m}),
                               ref.dropout_backward(x, m, p, g), rtol=1e-14)
    truth = sbp.derive(layer, (2, 3), batch=2, method="diff")
    assert all(sympy.expand(a - b) == 0 for a, b in zip(sympy.flatten(d.grad_x.tolist()),
                                                          sympy.flatten(truth.grad_x.tolist())))
    # the closed form g * m / (1 - p), element by element, exactly
    scale = 1 / (1 - sympy.Rational(repr(p)))
    for index in np.ndindex(*d.input_shape):
        assert sympy.expand(d.grad_x[index] - scale * d.g[index] * d.constants["m"][index]) == 0


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_generated_module_equals_the_reference(dtype, style):
    module = sbp.load(Dropout(0.3), style=style)
    x, m, g = (a.astype(dtype) for a in arrays((2, 3, 4, 5), 0.3))
    z, (grad_x,) = module.forward(x, m), module.backward(x, m, g)
    assert z.dtype == grad_x.dtype == dtype
    tolerance = 1e-14 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(z, ref.dropout(x, m, 0.3), rtol=tolerance)
    np.testing.assert_allclose(grad_x, ref.dropout_backward(x, m, 0.3, g), rtol=tolerance)
    # a boolean mask is the same mask
    np.testing.assert_array_equal(module.forward(x, m.astype(bool)), z)


def test_finite_differences():
    module = sbp.load(Dropout(0.25))
    x, m, g = arrays((3, 4), 0.25, seed=1)
    step, numeric = 1e-6, np.empty_like(x)
    for index in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = np.sum(g * (module.forward(up, m) - module.forward(down, m))) / (2 * step)
    np.testing.assert_allclose(module.backward(x, m, g)[0], numeric, rtol=1e-6, atol=1e-8)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       p=st.floats(0.0, 0.99), seed=st.integers(0, 2**16))
def test_random_shapes_and_probabilities(shape, p, seed):
    x, m, g = arrays(tuple(shape), p, seed)
    module = sbp.load(Dropout(p))
    np.testing.assert_allclose(module.forward(x, m), ref.dropout(x, m, p), rtol=1e-13)
    np.testing.assert_allclose(module.backward(x, m, g)[0], ref.dropout_backward(x, m, p, g),
                               rtol=1e-13)


def test_p_is_checked_and_the_rule_named():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1.*1 / \(1 - p\)"):
        Dropout(1.0)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        Dropout(-0.1)
    with pytest.raises(ValueError, match="p must be a finite number"):
        Dropout(math.nan)


def test_arguments_are_checked():
    module = sbp.load(Dropout())
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="mask must have shape"):
        module.forward(x, np.ones((3, 2)))
    with pytest.raises(TypeError, match="mask must have the dtype of x"):
        module.forward(x, np.ones((2, 3), dtype=np.float32))


def test_nan_and_inf_spread_as_the_product():
    module = sbp.load(Dropout())
    x = np.array([[np.nan, np.inf, 1.0, -np.inf]])
    m = np.array([[0.0, 1.0, 0.0, 0.0]])
    with np.errstate(invalid="ignore"):
        z, want = module.forward(x, m), x * m * 2.0  # nan * 0 and inf * 0 are NaN, as x m / (1 - p)
    np.testing.assert_array_equal(z, want)


def test_names_and_specs():
    assert module_name(Dropout(0.3)) == "dropout_p0p3"
    assert sbp.layer_from_spec({"layer": "dropout", "p": 0.2}) == Dropout(0.2)


def test_cli(tmp_path, capsys):
    assert main(["derive", "dropout", "--p", "0.3", "--input", "1x2"]) == 0
    out = capsys.readouterr().out
    assert "z11 = (10/7) x11 m11" in out and "dL/dx11 = (10/7) g11 m11" in out
    assert "m: 1 x 1 x 1 x 2" in out
    assert main(["generate", "dropout", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "dropout_p0p5.py").exists()
    assert main(["latex", "dropout", "--input", "2x2", "-o", str(tmp_path / "d.tex")]) == 0
    assert "not differentiated" in (tmp_path / "d.tex").read_text()
    assert main(["html", "dropout", "--input", "2x2", "-o", str(tmp_path / "d.html")]) == 0
    assert 'data-array="m"' in (tmp_path / "d.html").read_text()
    capsys.readouterr()
    assert main(["derive", "dropout", "--p", "1"]) == 2
    assert "p must be in [0, 1)" in capsys.readouterr().err


def _right(x, mask, grad_out):
    return grad_out * mask / (1 - 0.5)


def _no_scale(x, mask, grad_out):
    return grad_out * mask


def _fresh_mask(x, mask, grad_out):
    fresh = (np.random.default_rng(7).random(x.shape) >= 0.5).astype(float)
    return grad_out * fresh / (1 - 0.5)


def test_check_impl_names_the_mistakes():
    sizes = [(2, 3, 4)]
    assert check_impl(Dropout(), _right, sizes=sizes).ok
    assert check_impl(Dropout(), _no_scale, sizes=sizes).mistakes["x"].name == \
        "1/(1 - p) scale forgotten in backward"
    assert check_impl(Dropout(), _fresh_mask, sizes=sizes).mistakes["x"].name == \
        "a fresh mask drawn in backward"


def test_check_formula_reads_the_mask():
    layer = Dropout(0.3)
    assert sbp.check_formula(layer, (2, 2), "dL/dx[i,j] = 10/7 g[i,j] m[i,j]").ok
    assert sbp.check_formula(layer, (1, 2), r"\frac{\partial L}{\partial x_{1,2}} = "
                                            r"\frac{10}{7} \delta_{1,2} mask_{1,2}").ok
    result = sbp.check_formula(layer, (2, 2), "dL/dx[i,j] = g[i,j] m[i,j]")
    assert not result.ok and result.wrong


def test_committed_catalog_module():
    """generated/dropout_p0p5.py itself, against the loops (float32, a boolean mask)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "generated" / "dropout_p0p5.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x, m, g = (a.astype(np.float32) for a in arrays((3, 2, 4), 0.5, seed=4))
    np.testing.assert_allclose(module.forward(x, m > 0), ref.dropout(x, m, 0.5), rtol=1e-6)
    np.testing.assert_allclose(module.backward(x, m, g)[0], ref.dropout_backward(x, m, 0.5, g),
                               rtol=1e-6)


@given(p=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999]),
       width=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_random_derivations_equal_the_reference(p, width, seed):
    """SymPy's derivation itself (not generated code): exact scale 1/(1 - p) for any p."""
    d = sbp.derive(Dropout(p), (1, width), 2)
    x, m, g = arrays(d.input_shape, p, seed)
    np.testing.assert_allclose(evaluate(d.z, {"x": x, "m": m}), ref.dropout(x, m, p),
                               rtol=1e-13)
    np.testing.assert_allclose(evaluate(d.grad_x, {"g": g, "m": m}),
                               ref.dropout_backward(x, m, p, g), rtol=1e-13)
