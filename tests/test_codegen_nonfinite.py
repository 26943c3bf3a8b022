"""inf and NaN in generated modules spread exactly as in the plain sums of the derivation.

A product with a padding position, or with an output position beyond ``Ho x Wo``
that a strategy's grid adds, is not in the sums: ``0 * inf`` must not turn into a
NaN the sum does not have.  Truth: the loop references of tests/reference.py, which
add exactly the sums' products (conv2d_forward_loops, conv2d_backward_loops), and
SymPy's derivation (the exact path's own statements on symbols).
"""

from __future__ import annotations

import layer_reference
import numpy as np
import pytest
import sympy
from conftest import CHAIN_GRID, CONV_GRID, LAYER_GRID
from reference import conv2d_backward_loops, conv2d_forward_loops

import symbackprop as sbp
from symbackprop import Conv2d
from symbackprop.core.layers import Sequential, layer_from_spec
from symbackprop.kinds.conv2d.numpy import STRATEGIES, choose_strategy
from symbackprop.render.codegen import load

# inf - inf and 0 * inf warn as NumPy always does; the values are what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

VALUES = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}
#: Both styles of generated code keep the plain sums' inf and NaN.
STYLES = ("fast", "reference")


def grid_strategies():
    pairs = []
    for case in CONV_GRID:
        layer = Conv2d(**case[1])
        for strategy in STRATEGIES:
            if strategy != "pointwise" or choose_strategy(layer) == "pointwise":
                pairs.append(pytest.param(case, strategy, id=f"{case[0]}-{strategy}"))
    return pairs


def placements(shape):
    """Indices of an array of ``shape``: both corners, next to each edge, the centre.

    For x these are next to the padding (first and last rows and columns) and inside.
    """
    *lead, height, width = shape
    first, last = tuple(0 for _ in lead), tuple(size - 1 for size in lead)
    spots = {
        first + (0, 0), last + (height - 1, width - 1), first + (0, width // 2),
        last + (height // 2, width - 1), last + (height - 1, 0), first + (height // 2, 0),
        last + (height // 2, width // 2),
    }
    return sorted(spots)


def arrays(layer, input_size, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, layer.in_channels, *input_size))
    w = rng.standard_normal(layer.weight_shape)
    b = rng.standard_normal(layer.out_channels) if layer.bias else None
    grad_out = rng.standard_normal(layer.output_shape(input_size, batch))
    return dict(x=x, w=w, b=b, grad_out=grad_out)


def loop_reference(layer, x, w, b, grad_out):
    options = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups)
    z = conv2d_forward_loops(x, w, b, **options)
    grad_x, grad_w, grad_b = conv2d_backward_loops(x, w, b, grad_out, **options)
    return z, (grad_x, grad_w, grad_b) if layer.bias else (grad_x, grad_w)


def run(module, layer, x, w, b, grad_out):
    params = (w, b) if layer.bias else (w,)
    return module.forward(x, *params), module.backward(x, *params, grad_out)


def assert_same(got, want, what, tolerance=1e-10):
    """Equal, with NaN and inf in exactly the same places (same sign of inf)."""
    assert got.shape == want.shape, what
    assert np.array_equal(np.isnan(got), np.isnan(want)), (
        f"{what}: NaN at {np.argwhere(np.isnan(got)).tolist()}, "
        f"want {np.argwhere(np.isnan(want)).tolist()}")
    assert np.array_equal(np.isposinf(got), np.isposinf(want)), f"{what}: +inf differs"
    assert np.array_equal(np.isneginf(got), np.isneginf(want)), f"{what}: -inf differs"
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=tolerance, atol=tolerance,
                               err_msg=what)


def test_the_reported_example():
    """Issue 11: inf at x[0,0,0,0], kernel 3, w and g ones; 8 of 9 came back NaN."""
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    x[0, 0, 0, 0] = np.inf
    want = np.array([[np.inf, 63, 72], [99, 108, 117], [144, 153, 162]])
    _, reference_grad_w, _ = conv2d_backward_loops(x, np.ones((1, 1, 3, 3)), np.ones(1),
                                                   np.ones((1, 1, 3, 3)))
    np.testing.assert_array_equal(reference_grad_w[0, 0], want)  # the reference agrees
    for strategy in ("im2col", "transposed"):
        module = load(Conv2d(kernel_size=3), strategy=strategy)
        grads = module.backward(x, np.ones((1, 1, 3, 3)), np.ones(1), np.ones((1, 1, 3, 3)))
        np.testing.assert_array_equal(grads[1][0, 0], want, err_msg=strategy)


@pytest.mark.parametrize("where", ["x", "w", "grad_out"])
@pytest.mark.parametrize("case, strategy", grid_strategies())
def test_every_strategy_spreads_inf_and_nan_as_the_plain_sum(case, strategy, where):
    _, kwargs, input_size, batch = case
    layer = Conv2d(**kwargs)
    module = load(layer, strategy=strategy)
    clean = arrays(layer, input_size, batch + 1)
    for index in placements(clean[where].shape):
        for name, value in VALUES.items():
            values = {key: None if array is None else array.copy()
                      for key, array in clean.items()}
            values[where][index] = value
            z, grads = run(module, layer, **values)
            want_z, want_grads = loop_reference(layer, **values)
            label = f"{name} at {where}{list(index)}"
            assert_same(z, want_z, f"z, {label}")
            for gradient, got, want in zip("xwb", grads, want_grads):
                assert_same(got, want, f"dL/d{gradient}, {label}")


@pytest.mark.parametrize("case, strategy", grid_strategies())
def test_inf_in_the_bias_and_everywhere(case, strategy):
    """An inf bias, and x, w and g full of infinities of both signs (so inf - inf sums)."""
    _, kwargs, input_size, batch = case
    layer = Conv2d(**kwargs)
    module = load(layer, strategy=strategy)
    values = arrays(layer, input_size, batch, seed=3)
    if layer.bias:
        values["b"][0] = np.inf
    z, grads = run(module, layer, **values)
    want_z, want_grads = loop_reference(layer, **values)
    assert_same(z, want_z, "z, inf bias")
    rng = np.random.default_rng(4)
    for key in ("x", "w", "grad_out"):
        values[key] = np.where(rng.random(values[key].shape) < 0.3,
                               rng.choice([np.inf, -np.inf, np.nan], values[key].shape),
                               values[key])
    z, grads = run(module, layer, **values)
    want_z, want_grads = loop_reference(layer, **values)
    assert_same(z, want_z, "z, scattered inf and NaN")
    for gradient, got, want in zip("xwb", grads, want_grads):
        assert_same(got, want, f"dL/d{gradient}, scattered inf and NaN")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_keeps_its_dtype_on_the_exact_path(dtype):
    layer = Conv2d(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1)
    values = {key: value.astype(dtype) for key, value in arrays(layer, (5, 6), 2).items()}
    values["x"][0, 0, 0, 0] = np.inf
    z, grads = run(load(layer), layer, **values)
    assert z.dtype == dtype and all(grad.dtype == dtype for grad in grads)
    _, want_grads = loop_reference(layer, **values)
    assert_same(grads[1].astype(np.float64), want_grads[1].astype(np.float64), "dL/dw",
                tolerance=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("case, strategy", grid_strategies())
def test_finite_input_takes_the_fast_path(case, strategy, monkeypatch):
    """Finite arguments never pay for the exact path (even when a sum overflows, it is
    only slower, never wrong)."""
    _, kwargs, input_size, batch = case
    layer = Conv2d(**kwargs)
    module = load(layer, strategy=strategy)
    if strategy == "pointwise":
        assert not hasattr(module, "_backward_exact")  # no structural products at all
        return

    def refuse(*arguments):
        raise AssertionError("the exact path ran on finite input")

    monkeypatch.setattr(module, "_forward_exact", refuse)
    monkeypatch.setattr(module, "_backward_exact", refuse)
    values = arrays(layer, input_size, batch)
    run(module, layer, **values)


def test_an_overflowing_sum_is_still_right():
    """Finite values whose sum overflows go the exact way: the same numbers, no warning."""
    layer = Conv2d(kernel_size=3, padding=1)
    module = load(layer, strategy="im2col")
    values = arrays(layer, (4, 4), 1)
    values["x"][:] = 1e308  # its sum overflows; w and g small, so no sum of products does
    values["w"] *= 1e-10
    values["grad_out"] *= 1e-10
    with np.errstate(all="raise"):
        assert not module._finite(values["x"])
    z, grads = run(module, layer, **values)
    want_z, want_grads = loop_reference(layer, **values)
    assert np.isfinite(want_z).all() and all(np.isfinite(want).all() for want in want_grads)
    assert_same(z, want_z, "z")
    for gradient, got, want in zip("xwb", grads, want_grads):
        assert_same(got, want, f"dL/d{gradient}")


def symbolic(array):
    return np.array(array.tolist(), dtype=object)


@pytest.mark.parametrize("case", CONV_GRID, ids=[case[0] for case in CONV_GRID])
def test_exact_path_statements_reproduce_the_derivation(case):
    """The exact path run on SymPy symbols gives exactly the derived sums."""
    _, kwargs, input_size, batch = case
    layer = Conv2d(**kwargs)
    module = load(layer)
    if not hasattr(module, "_forward_exact"):
        pytest.skip("pointwise: no exact path")
    derivation = sbp.derive(layer, input_size, batch)
    arguments = [symbolic(derivation.x), *(symbolic(p) for p in derivation.params.values())]
    for got, want in [(module._forward_exact(*arguments), derivation.z),
                      *zip(module._backward_exact(*arguments, symbolic(derivation.g)),
                           derivation.grads.values())]:
        assert got.shape == want.shape
        for value, expected in zip(got.flat, sympy.flatten(want.tolist()), strict=True):
            assert sympy.expand(value - expected) == 0


# -- every other kind, and chains ------------------------------------------------------

def flat_placements(shape):
    """For feature maps :func:`placements`; else the first, middle and last element."""
    if len(shape) >= 3:
        return placements(shape)
    size = int(np.prod(shape))
    return sorted({np.unravel_index(flat, shape) for flat in (0, size // 2, size - 1)})


def layer_arrays(layer, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    params = layer_reference.random_parameters(layer, rng)
    grad_out = rng.standard_normal(layer_reference.forward(layer, x, params).shape)
    return x, params, grad_out


def assert_layer_as_reference(module, layer, x, params, grad_out, label):
    z = module.forward(x, *params.values())
    assert_same(z, layer_reference.forward(layer, x, params), f"z, {label}")
    want_x, want_params = layer_reference.backward(layer, x, params, grad_out)
    grads = module.backward(x, *params.values(), grad_out)
    for name, got, want in zip(["x", *params], grads, [want_x, *want_params.values()],
                               strict=True):
        assert_same(got, want, f"dL/d{name}, {label}")


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", LAYER_GRID, ids=[case[0] for case in LAYER_GRID])
def test_every_kind_spreads_inf_and_nan_as_the_plain_sum(case, style):
    """inf, -inf and NaN at corners, next to the padding and inside, in x, each parameter
    and grad_out; and x all inf, all -inf (a max-pooling window of -inf only: its first
    element wins, not the padding) and all NaN."""
    _, spec, input_size, batch = case
    layer = layer_from_spec(spec)
    module = load(layer, style=style)
    x, params, grad_out = layer_arrays(layer, layer.input_shape(input_size, batch + 1))
    clean = dict(x=x, grad_out=grad_out, **params)
    for where, array in clean.items():
        for index in flat_placements(array.shape):
            for name, value in VALUES.items():
                values = {key: item.copy() for key, item in clean.items()}
                values[where][index] = value
                assert_layer_as_reference(
                    module, layer, values["x"], {key: values[key] for key in params},
                    values["grad_out"], f"{name} at {where}{list(index)}")
    for name, value in VALUES.items():
        assert_layer_as_reference(module, layer, np.full_like(x, value), params, grad_out,
                                  f"x all {name}")


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CHAIN_GRID, ids=[case[0] for case in CHAIN_GRID])
def test_chains_spread_inf_and_nan_as_the_plain_sums(case, style, monkeypatch):
    """A chain's layers keep the plain sums' inf and NaN, against loop references."""
    monkeypatch.setattr(layer_reference, "conv2d_forward", conv2d_forward_loops)
    monkeypatch.setattr(layer_reference, "conv2d_backward", conv2d_backward_loops)
    _, specs, input_size, batch = case
    chain = Sequential.from_spec(specs)
    module = load(chain, style=style)
    rng = np.random.default_rng(2)
    params = [layer_reference.random_parameters(layer, rng) for layer in chain.layers]
    flat = [value for layer_params in params for value in layer_params.values()]
    x = rng.standard_normal(chain.input_shape(input_size, batch))
    outputs = layer_reference.chain_forward(chain.layers, x, params)
    grad_out = rng.standard_normal(outputs[-1].shape)
    arguments = [x, *flat, grad_out]  # argument 0 is x, the last grad_out
    spots = [(position, index) for position, array in enumerate(arguments)
             for index in flat_placements(array.shape)]
    for position, index in spots:
        for name, value in VALUES.items():
            values = [array.copy() for array in arguments]
            values[position][index] = value
            label = f"{name} at argument {position} {list(index)}"
            new_x, new_flat, new_grad = values[0], values[1:-1], values[-1]
            layered, start = [], 0
            for layer_params in params:
                layered.append(dict(zip(layer_params, new_flat[start:start + len(layer_params)])))
                start += len(layer_params)
            want_outputs = layer_reference.chain_forward(chain.layers, new_x, layered)
            assert_same(module.forward(new_x, *new_flat), want_outputs[-1], f"output, {label}")
            deltas, grads = layer_reference.chain_backward(chain.layers, new_x, layered,
                                                           new_grad)
            want = [deltas[0], *(value for layer_grads in grads for value in
                                 layer_grads.values())]
            for number, (got, expected) in enumerate(zip(module.backward(new_x, *new_flat,
                                                                         new_grad), want,
                                                         strict=True)):
                assert_same(got, expected, f"gradient {number}, {label}")
