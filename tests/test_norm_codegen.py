"""Generated normalisation modules, both styles: against the loop references of
tests/reference_norm.py, finite differences, numerically hard inputs (large offsets,
tiny variances) and, when it is installed, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_norm import (
    batch_norm_layout,
    group_norm_layout,
    instance_norm_layout,
    layer_norm_layout,
    norm_backward_loops,
    norm_forward_loops,
)

from symbackprop import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm
from symbackprop.render.codegen import generate, load

STYLES = ("fast", "reference")

# (id, layer, input shape, layout)
GRID = [
    ("bn1d", BatchNorm1d(3), (4, 3), batch_norm_layout),
    ("bn1d-length", BatchNorm1d(2, eps=1e-3), (3, 2, 5), batch_norm_layout),
    ("bn2d", BatchNorm2d(2), (3, 2, 3, 4), batch_norm_layout),
    ("bn2d-eval", BatchNorm2d(2, training=False), (3, 2, 2, 2), batch_norm_layout),
    ("bn1d-eval-no-affine", BatchNorm1d(3, affine=False, training=False), (2, 3),
     batch_norm_layout),
    ("layernorm-2d", LayerNorm((3, 4)), (2, 5, 3, 4), lambda s: layer_norm_layout(s, (3, 4))),
    ("groupnorm", GroupNorm(2, 4), (2, 4, 2, 3), lambda s: group_norm_layout(s, 2)),
    ("groupnorm-flat", GroupNorm(3, 6, affine=False), (2, 6), lambda s: group_norm_layout(s, 3)),
    ("instancenorm", InstanceNorm2d(2), (2, 2, 3, 3), instance_norm_layout),
    ("instancenorm-affine", InstanceNorm2d(2, affine=True), (2, 2, 2, 3), instance_norm_layout),
]


def arrays(layer, shape, rng, offset=1.0, scale=3.0, dtype=np.float64):
    x = (rng.standard_normal(shape) * scale + offset).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    args = []
    if layer.has_affine:
        args += [rng.standard_normal(layer.parameter_shape).astype(dtype),
                 rng.standard_normal(layer.parameter_shape).astype(dtype)]
    if not layer.uses_batch_statistics:
        args += [rng.standard_normal(layer.parameter_shape).astype(dtype),
                 (rng.random(layer.parameter_shape) + 0.5).astype(dtype)]
    return x, g, args


def loops(layer, layout, x, g, args):
    x, g = x.astype(np.float64), g.astype(np.float64)
    args = [a.astype(np.float64) for a in args]
    gamma, beta = (args[0], args[1]) if layer.has_affine else (None, None)
    running = None if layer.uses_batch_statistics else tuple(args[-2:])
    shape_layout = layout(x.shape)
    z = norm_forward_loops(x, shape_layout, gamma, beta, layer.eps, running)
    dx, dgamma, dbeta = norm_backward_loops(x, shape_layout, g, gamma, layer.eps, running)
    return z, (dx, dgamma, dbeta) if layer.has_affine else (dx,)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name, layer, shape, layout", GRID, ids=[case[0] for case in GRID])
def test_both_styles_are_the_loop_reference(name, layer, shape, layout, style):
    module = load(layer, style=style)
    x, g, args = arrays(layer, shape, np.random.default_rng(7))
    z, grads = loops(layer, layout, x, g, args)
    np.testing.assert_allclose(module.forward(x, *args), z, rtol=1e-12, atol=1e-12)
    got = module.backward(x, *args, g)
    assert len(got) == len(grads)
    for have, want in zip(got, grads):
        assert have.shape == want.shape and have.dtype == np.float64
        np.testing.assert_allclose(have, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, layer, shape, layout",
                         [entry for entry in GRID if entry[0] in ("bn2d", "bn2d-eval",
                                                                  "layernorm-2d", "groupnorm")],
                         ids=["bn2d", "bn2d-eval", "layernorm-2d", "groupnorm"])
def test_finite_differences(name, layer, shape, layout):
    """dL/dx and the parameter gradients of L = sum(g z) by central differences."""
    module = load(layer)
    rng = np.random.default_rng(3)
    x, g, args = arrays(layer, shape, rng)
    grads = module.backward(x, *args, g)
    h = 1e-6

    def loss(x, args):
        return float(np.sum(g * module.forward(x, *args)))

    for position in range(1 + (2 if layer.has_affine else 0)):
        array = x if position == 0 else args[position - 1]
        for index in list(np.ndindex(*array.shape))[:6]:
            plus, minus = array.copy(), array.copy()
            plus[index] += h
            minus[index] -= h
            if position == 0:
                numeric = (loss(plus, args) - loss(minus, args)) / (2 * h)
            else:
                with_plus, with_minus = list(args), list(args)
                with_plus[position - 1], with_minus[position - 1] = plus, minus
                numeric = (loss(x, with_plus) - loss(x, with_minus)) / (2 * h)
            assert abs(grads[position][index] - numeric) < 1e-6 * (1 + abs(numeric))


@given(offset=st.sampled_from([0.0, 1e3, -4e4, 1e6]),
       scale=st.sampled_from([1e-3, 1e-1, 1.0, 50.0]), eps=st.sampled_from([1e-5, 1e-3, 0.5]),
       batch=st.integers(2, 4), length=st.integers(1, 3),
       case=st.sampled_from(["bn1d", "bn2d", "layernorm-2d", "groupnorm"]),
       seed=st.integers(0, 2**16))
def test_hard_inputs_in_float32_and_float64(offset, scale, eps, batch, length, case, seed):
    """Large offsets and tiny spreads: the fast module agrees with the loops (float64 on the
    same values) to a few rounding units of its dtype, measured against the largest term
    the closed form adds (dL/dx subtracts terms of size istd |gamma g| that can cancel to
    almost nothing: for m = 2 it is exactly such a difference), plus the problem's own
    conditioning; nothing is NaN or infinite."""
    name, layer, shape, layout = next(entry for entry in GRID if entry[0] == case)
    layer = layer.replace(eps=eps)
    shape = (batch, *shape[1:])
    if name == "bn1d":
        shape = (batch, shape[1], length)
    rng = np.random.default_rng(seed)
    # The problem's own conditioning: an input's rounding (relative to the offset) over the
    # deviation sqrt(sigma^2 + eps) that divides it; the sums are float64 in both.
    conditioning = (abs(offset) + scale) / np.sqrt(scale**2 + eps)
    for dtype in (np.float64, np.float32):
        tolerance = 16 * np.finfo(dtype).eps + 64 * np.finfo(np.float64).eps * conditioning
        x, g, args = arrays(layer, shape, rng, offset, scale, dtype)
        z, grads = loops(layer, layout, x, g, args)
        module = load(layer)
        have_z = module.forward(x, *args)
        have = module.backward(x, *args, g)
        assert have_z.dtype == dtype and all(a.dtype == dtype for a in have)
        assert np.all(np.isfinite(have_z)) and all(np.all(np.isfinite(a)) for a in have)
        assert np.abs(have_z - z).max() <= tolerance * (1 + np.abs(z).max())
        gamma = np.abs(args[0]).max() if layer.has_affine else 1.0
        variances = [np.var([float(x[i]) for i in group]) for group in layout(x.shape)[0]]
        largest_term = np.abs(g).max() * gamma / np.sqrt(min(variances) + eps)
        assert np.abs(have[0] - grads[0]).max() <= tolerance * (1 + largest_term)
        for a, b in zip(have[1:], grads[1:]):
            assert np.abs(a - b).max() <= tolerance * (1 + np.abs(b).max())


def test_the_reference_style_reads_like_the_graph():
    source = generate(BatchNorm2d(3), style="reference")
    for line in ("xc = xv - mu  # the centred input", "istd = 1 / np.sqrt(var + EPS)",
                 "dvar = -0.5 * istd**3 * distd", "dx = dxc + dmu / m"):
        assert line in source
    fast = generate(BatchNorm2d(3))
    assert "E[x^2] - E[x]^2" in fast and generate(BatchNorm2d(3)) == fast  # deterministic


def test_eval_mode_takes_the_running_statistics():
    module = load(BatchNorm2d(2, training=False))
    assert "forward(x, weight, bias, running_mean, running_var)" in " ".join(
        module.__doc__.split())
    x = np.ones((1, 2, 1, 1))
    z = module.forward(x, np.ones(2), np.zeros(2), np.array([1.0, 0.0]), np.array([1.0, 3.0]))
    np.testing.assert_allclose(z.ravel(), [0.0, 1 / np.sqrt(3 + 1e-5)])
    assert len(module.backward(x, np.ones(2), np.zeros(2), np.zeros(2), np.ones(2), x)) == 3


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.forward(np.ones((2, 3, 2, 2)), np.ones(2), np.ones(2)), ValueError,
     "x must have shape (N, 2, H, W)"),
    (lambda m: m.forward(np.ones((2, 2, 2, 2)), np.ones(3), np.ones(2)), ValueError,
     "weight must have shape (2,)"),
    (lambda m: m.forward(np.ones((2, 2, 2, 2), np.float32), np.ones(2), np.ones(2)), TypeError,
     "weight must have the dtype of x"),
    (lambda m: m.backward(np.ones((2, 2, 2, 2)), np.ones(2), np.ones(2), np.ones((2, 2))),
     ValueError, "grad_out must have 4 dimensions"),
])
def test_bad_arguments_name_the_argument(call, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(load(BatchNorm2d(2)))


def test_nan_and_inf_spread_through_their_group_only():
    module = load(BatchNorm2d(2))
    x = np.random.default_rng(0).standard_normal((2, 2, 2, 2))
    x[0, 0, 0, 0] = np.nan
    with np.errstate(invalid="ignore"):
        z = module.forward(x, np.ones(2), np.zeros(2))
        grads = module.backward(x, np.ones(2), np.zeros(2), np.ones_like(x))
    assert np.isnan(z[:, 0]).all() and np.isfinite(z[:, 1]).all()
    assert np.isnan(grads[0][:, 0]).all() and np.isfinite(grads[0][:, 1]).all()


@pytest.mark.parametrize("name, layer, shape, layout", GRID, ids=[case[0] for case in GRID])
def test_against_pytorch(name, layer, shape, layout):
    torch = pytest.importorskip("torch")
    x, g, args = arrays(layer, shape, np.random.default_rng(5))
    tx = torch.tensor(x, requires_grad=True)
    params = [torch.tensor(a, requires_grad=True) for a in args]
    functional = torch.nn.functional
    if isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        weight, bias = (params[0], params[1]) if layer.affine else (None, None)
        running = (params[-2].detach(), params[-1].detach()) if not layer.training else \
            (None, None)
        z = functional.batch_norm(tx, *running, weight, bias, training=layer.training,
                                  eps=layer.eps)
    elif isinstance(layer, LayerNorm):
        z = functional.layer_norm(tx, layer.normalized_shape, *params, eps=layer.eps)
    elif isinstance(layer, GroupNorm):
        z = functional.group_norm(tx, layer.num_groups, *params, eps=layer.eps)
    else:
        z = functional.instance_norm(tx, None, None, *(params or (None, None)), eps=layer.eps)
    z.backward(torch.tensor(g))
    module = load(layer)
    np.testing.assert_allclose(module.forward(x, *args), z.detach().numpy(), rtol=1e-10,
                               atol=1e-10)
    wanted = [tx.grad] + ([params[0].grad, params[1].grad] if layer.has_affine else [])
    for have, want in zip(module.backward(x, *args, g), wanted):
        np.testing.assert_allclose(have, want.numpy(), rtol=1e-8, atol=1e-10)


def test_a_chain_with_batch_norm_is_the_loop_reference():
    """Linear -> BatchNorm1d -> ReLU as one generated module, against tests/layer_reference.py."""
    import layer_reference

    from symbackprop import Linear, ReLU, Sequential

    chain = Sequential(Linear(3, 2), BatchNorm1d(2), ReLU())
    module = load(chain)
    rng = np.random.default_rng(0)
    params = [layer_reference.random_parameters(layer, rng) for layer in chain.layers]
    flat = [value for part in params for value in part.values()]
    x = rng.standard_normal((4, 3))
    outputs = layer_reference.chain_forward(chain.layers, x, params)
    np.testing.assert_allclose(module.forward(x, *flat), outputs[-1], rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(outputs[-1].shape)
    deltas, grads = layer_reference.chain_backward(chain.layers, x, params, g)
    want = [deltas[0], *(value for part in grads for value in part.values())]
    for have, expected in zip(module.backward(x, *flat, g), want, strict=True):
        np.testing.assert_allclose(have, expected, rtol=1e-10, atol=1e-12)
    assert "delta1 = (gamma / (m sigma)) (m delta2 - sum delta2" in generate(chain)
