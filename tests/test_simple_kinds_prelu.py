"""PReLU with a learned slope: derived (the slope's gradient a sum over the batch and the
positions of its channel), generated in both styles, in a chain, printed and checked,
against the loops of tests/reference_activations_more.py and finite differences."""

from __future__ import annotations

import layer_reference
import numpy as np
import pytest
import reference_activations_more as ref
import sympy
from conftest import evaluate
from hypothesis import given
from hypothesis import strategies as st

import symbackprop as sbp
from symbackprop import Conv2d, Flatten, Linear, PReLU, Sequential, check_impl
from symbackprop.cli import main
from symbackprop.core.naming import module_name

STYLES = ("fast", "reference")


def arrays(shape, slopes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x.flat[::4] = 0.0  # the corner: PyTorch's slope branch
    return x, rng.standard_normal(slopes), rng.standard_normal(shape)


@pytest.mark.parametrize("layer, size, batch", [
    (PReLU(), (2, 2), 2), (PReLU(3), (3, 1, 2), 2), (PReLU(4), (4,), 2), (PReLU(), (3,), 2),
], ids=["one-slope-maps", "per-channel-maps", "per-feature", "one-slope-features"])
def test_derivation_equals_the_reference_and_diff(layer, size, batch):
    d = sbp.derive(layer, size, batch)
    x, w, g = arrays(d.input_shape, layer.num_parameters)
    values = {"x": x, "w": w, "g": g}
    np.testing.assert_allclose(evaluate(d.z, values), ref.prelu(x, w), rtol=1e-14)
    grad_x, grad_w = ref.prelu_backward(x, w, g)
    np.testing.assert_allclose(evaluate(d.grad_x, values), grad_x, rtol=1e-14)
    np.testing.assert_allclose(evaluate(d.grads["w"], values), grad_w, rtol=1e-12)
    truth = sbp.derive(layer, size, batch, method="diff")
    for name in ("x", "w"):
        for a, b in zip(sympy.flatten(d.grads[name].tolist()),
                        sympy.flatten(truth.grads[name].tolist())):
            assert a == b or sympy.simplify(a - b) == 0


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer, shape", [(PReLU(), (2, 3, 4, 5)), (PReLU(3), (2, 3, 4, 5)),
                                          (PReLU(4), (5, 4)), (PReLU(2), (2, 2, 7))],
                         ids=["one", "channels", "features", "rank3"])
def test_generated_module_equals_the_reference(layer, shape, dtype, style):
    module = sbp.load(layer, style=style)
    x, w, g = (a.astype(dtype) for a in arrays(shape, layer.num_parameters))
    z = module.forward(x, w)
    grad_x, grad_w = module.backward(x, w, g)
    assert z.dtype == grad_x.dtype == grad_w.dtype == dtype and grad_w.shape == w.shape
    want_x, want_w = ref.prelu_backward(x, w, g)
    tolerance = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(z, ref.prelu(x, w), **tolerance)
    np.testing.assert_allclose(grad_x, want_x, **tolerance)
    np.testing.assert_allclose(grad_w, want_w, **tolerance)


@pytest.mark.parametrize("layer", [PReLU(), PReLU(3)], ids=["one", "channels"])
def test_finite_differences(layer):
    module = sbp.load(layer)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2, 2))
    x[np.abs(x) < 1e-3] = 0.5
    w, g = rng.standard_normal(layer.num_parameters), rng.standard_normal(x.shape)

    def numeric(array, function):
        out, step = np.empty_like(array), 1e-6
        for index in np.ndindex(*array.shape):
            up, down = array.copy(), array.copy()
            up[index] += step
            down[index] -= step
            out[index] = np.sum(g * (function(up) - function(down))) / (2 * step)
        return out

    grad_x, grad_w = module.backward(x, w, g)
    np.testing.assert_allclose(grad_x, numeric(x, lambda v: module.forward(v, w)), rtol=1e-6)
    np.testing.assert_allclose(grad_w, numeric(w, lambda v: module.forward(x, v)), rtol=1e-6)


@given(channels=st.integers(1, 4), spatial=st.lists(st.integers(1, 3), max_size=2),
       batch=st.integers(0, 3), shared=st.booleans(), seed=st.integers(0, 2**16))
def test_random_shapes(channels, spatial, batch, shared, seed):
    layer = PReLU(1 if shared else channels)
    x, w, g = arrays((batch, channels, *spatial), layer.num_parameters, seed)
    module = sbp.load(layer)
    grad_x, grad_w = module.backward(x, w, g)
    want_x, want_w = ref.prelu_backward(x, w, g)
    np.testing.assert_allclose(module.forward(x, w), ref.prelu(x, w), rtol=1e-13)
    np.testing.assert_allclose(grad_x, want_x, rtol=1e-13)
    np.testing.assert_allclose(grad_w, want_w, rtol=1e-12, atol=1e-12)


def test_rules_and_messages():
    with pytest.raises(ValueError, match="num_parameters must be a whole number >= 1"):
        PReLU(0)
    with pytest.raises(ValueError, match="init must be a finite number"):
        PReLU(init=float("inf"))
    with pytest.raises(ValueError, match=r"takes num_parameters = 3 channels \(axis 1"):
        sbp.derive(PReLU(3), (2, 3, 3))
    module = sbp.load(PReLU(3))
    with pytest.raises(ValueError, match="x must have shape"):
        module.forward(np.ones((1, 2, 2)), np.ones(3))
    with pytest.raises(ValueError, match="weight must have shape"):
        module.forward(np.ones((1, 3, 2)), np.ones(2))
    np.testing.assert_array_equal(module.initial_weight(), [0.25, 0.25, 0.25])


def test_in_a_chain_against_the_reference():
    chain = Sequential(Conv2d(1, 2, kernel_size=2), PReLU(2), Flatten(), Linear(8, 3), PReLU())
    layers = list(chain.layers)
    rng = np.random.default_rng(8)
    params = [layer_reference.random_parameters(layer, rng) for layer in layers]
    x, g = rng.standard_normal((2, 1, 3, 3)), rng.standard_normal((2, 3))
    flat = [array for layer_params in params for array in layer_params.values()]
    module = sbp.load(chain)
    np.testing.assert_allclose(module.forward(x, *flat),
                               layer_reference.chain_forward(layers, x, params)[-1], rtol=1e-12)
    deltas, grads = layer_reference.chain_backward(layers, x, params, g)
    got = module.backward(x, *flat, g)
    want = [deltas[0], *(grad for layer_grads in grads for grad in layer_grads.values())]
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    d = sbp.derive(chain, (3, 3))
    assert set(d.grads) == {"x", "w1", "b1", "w2", "w4", "b4", "w5"}


def test_names_and_specs():
    assert module_name(PReLU(3, 0.1)) == "prelu_n3_i0p1"
    assert sbp.layer_from_spec({"layer": "prelu", "num_parameters": 3}) == PReLU(3)


def test_cli(tmp_path, capsys):
    assert main(["derive", "prelu", "--num-parameters", "2"]) == 0  # default input 2x3x3
    out = capsys.readouterr().out
    assert "w: 2" in out and "dL/dw1 = " in out
    assert main(["generate", "prelu", "--num-parameters", "3", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "prelu_n3_i0p25.py").exists()
    assert main(["latex", "prelu", "--input", "2x2", "-o", str(tmp_path / "p.tex")]) == 0
    assert main(["html", "prelu", "--input", "2x2", "-o", str(tmp_path / "p.html")]) == 0
    assert 'data-array="grad_w"' in (tmp_path / "p.html").read_text()


def _slopes(x, weight):
    return weight.reshape(1, -1, *([1] * (x.ndim - 2)))


def _right(x, weight, grad_z):
    axes = (0, *range(2, x.ndim))
    return (np.where(x > 0, grad_z, _slopes(x, weight) * grad_z),
            np.where(x > 0, 0, x * grad_z).sum(axis=axes))


def _not_summed_over_the_batch(x, weight, grad_z):
    grad_x, _ = _right(x, weight, grad_z)
    return grad_x, np.where(x > 0, 0, x * grad_z)[0].sum(axis=tuple(range(1, x.ndim - 1)))


def _every_element(x, weight, grad_z):
    grad_x, _ = _right(x, weight, grad_z)
    return grad_x, (x * grad_z).sum(axis=(0, *range(2, x.ndim)))


def _from_the_right(x, weight, grad_z):
    _, grad_w = _right(x, weight, grad_z)
    return np.where(x >= 0, grad_z, _slopes(x, weight) * grad_z), grad_w


def test_check_impl_names_the_mistakes():
    layer, sizes = PReLU(2), [(2, 3, 4)]
    assert check_impl(layer, _right, sizes=sizes).ok
    assert check_impl(layer, _not_summed_over_the_batch, sizes=sizes).mistakes["w"].name == \
        "slope gradient not summed over the batch and positions"
    assert check_impl(layer, _every_element, sizes=sizes).mistakes["w"].name == \
        "slope gradient summed over every element, not only where x <= 0"
    assert check_impl(layer, _from_the_right, sizes=sizes).mistakes["x"].name == \
        "dL/dx at 0 taken from the right (x >= 0 instead of x > 0)"


def test_pytorch_agrees_when_installed():
    torch = pytest.importorskip("torch")
    x, w, g = arrays((2, 3, 4), 3)
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (x, w))
    z = torch.nn.functional.prelu(tx, tw)
    grad_x, grad_w = torch.autograd.grad(z, (tx, tw), torch.tensor(g))
    ours = sbp.load(PReLU(3)).backward(x, w, g)
    np.testing.assert_allclose(ours[0], grad_x.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours[1], grad_w.numpy(), rtol=1e-12)


@given(channels=st.integers(1, 3), width=st.integers(1, 3), shared=st.booleans(),
       seed=st.integers(0, 2**16))
def test_random_derivations_equal_the_reference(channels, width, shared, seed):
    """SymPy's derivation itself (not generated code) on random shapes and slopes."""
    layer = PReLU(1 if shared else channels)
    d = sbp.derive(layer, (channels, 1, width), 2)
    x, w, g = arrays(d.input_shape, layer.num_parameters, seed)
    values = {"x": x, "w": w, "g": g}
    grad_x, grad_w = ref.prelu_backward(x, w, g)
    np.testing.assert_allclose(evaluate(d.grad_x, values), grad_x, rtol=1e-13)
    np.testing.assert_allclose(evaluate(d.grads["w"], values), grad_w, rtol=1e-12, atol=1e-14)
