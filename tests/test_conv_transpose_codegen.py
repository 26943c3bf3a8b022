"""Generated transposed-convolution modules (both styles) against the loop references.

Truth: tests/reference_conv_transpose.py (plain scatter loops, independent of the
package), finite differences of the loss, and PyTorch when it is installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_conv_transpose import conv_transpose_backward_loops, conv_transpose_forward_loops

from symbackprop import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from symbackprop.render.codegen import generate, load

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

STYLES = ("fast", "reference")

#: (id, layer, spatial input size, batch)
CASES = [
    ("1d-s2-p1-op1", ConvTranspose1d(2, 3, 3, stride=2, padding=1, output_padding=1), (5,), 2),
    ("1d-d2-op1-s1", ConvTranspose1d(1, 2, 2, stride=1, dilation=2, output_padding=1), (4,), 1),
    ("1d-asym-groups", ConvTranspose1d(4, 2, 3, stride=3, padding=(2, 0), groups=2,
                                       bias=False), (3,), 2),
    ("2d-dcgan", ConvTranspose2d(4, 2, 4, stride=2, padding=1), (3, 3), 2),
    ("2d-s2-op1", ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1), (3, 4), 1),
    ("2d-mixed", ConvTranspose2d(2, 4, (2, 3), stride=(1, 2), padding=(0, 1, 2, 0),
                                 output_padding=(0, 1), dilation=(2, 1), groups=2), (3, 2), 2),
    ("3d-s2-p1-op1", ConvTranspose3d(2, 2, 2, stride=2, padding=1, output_padding=1),
     (2, 3, 2), 1),
    ("3d-groups", ConvTranspose3d(2, 2, (1, 2, 2), stride=(1, 2, 1), groups=2, bias=False),
     (2, 2, 3), 2),
]


def options(layer):
    return dict(stride=layer.stride, padding=layer.padding,
                output_padding=layer.output_padding, dilation=layer.dilation,
                groups=layer.groups)


def arrays(layer, size, batch, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, layer.in_channels, *size)).astype(dtype)
    w = rng.standard_normal(layer.weight_shape).astype(dtype)
    b = rng.standard_normal(layer.out_channels).astype(dtype) if layer.bias else None
    g = rng.standard_normal(layer.output_shape(size, batch)).astype(dtype)
    return x, w, b, g


def run(module, layer, x, w, b, g):
    params = (w, b) if layer.bias else (w,)
    return module.forward(x, *params), module.backward(x, *params, g)


def truth(layer, x, w, b, g):
    z = conv_transpose_forward_loops(x, w, b, **options(layer))
    grads = conv_transpose_backward_loops(x, w, b, g, **options(layer))
    return z, grads if layer.bias else grads[:2]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_generated_module_matches_the_scatter_loops(case, style):
    _, layer, size, batch = case
    module = load(layer, style=style)
    x, w, b, g = arrays(layer, size, batch)
    z, grads = run(module, layer, x, w, b, g)
    want_z, want_grads = truth(layer, x, w, b, g)
    np.testing.assert_allclose(z, want_z, rtol=1e-12, atol=1e-12)
    assert len(grads) == len(want_grads)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("style", STYLES)
def test_float32_stays_float32(style):
    _, layer, size, batch = CASES[3]
    module = load(layer, style=style)
    x, w, b, g = arrays(layer, size, batch, dtype=np.float32)
    z, grads = run(module, layer, x, w, b, g)
    assert z.dtype == np.float32 and all(grad.dtype == np.float32 for grad in grads)
    want_z, _ = truth(layer, x, w, b, g)
    np.testing.assert_allclose(z, want_z, rtol=1e-4, atol=1e-4)


def test_finite_differences_of_the_loss():
    """dL/dx, dL/dw and dL/db of L = sum(g * forward(x, w, b)), by central differences."""
    _, layer, size, batch = CASES[5]
    module = load(layer)
    x, w, b, g = arrays(layer, size, batch, seed=3)
    grads = module.backward(x, w, b, g)

    def loss(x_, w_, b_):
        return float(np.sum(g * module.forward(x_, w_, b_)))

    step = 1e-6
    for position, array in enumerate((x, w, b)):
        for index in list(np.ndindex(*array.shape))[::3]:
            plus, minus = [a.copy() for a in (x, w, b)], [a.copy() for a in (x, w, b)]
            plus[position][index] += step
            minus[position][index] -= step
            numeric = (loss(*plus) - loss(*minus)) / (2 * step)
            assert abs(numeric - grads[position][index]) < 1e-6, (position, index)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("where", ["x", "w", "g"])
def test_inf_and_nan_spread_as_in_the_plain_sums(where, value, style):
    """A product with a position outside z is not in the sums: 0 * inf must not become NaN."""
    _, layer, size, batch = CASES[4]  # stride 2, padding 1, output padding 1
    module = load(layer, style=style)
    x, w, b, g = arrays(layer, size, batch, seed=1)
    target = {"x": x, "w": w, "g": g}[where]
    for index in (tuple(0 for _ in target.shape), tuple(s - 1 for s in target.shape)):
        target[index] = value
    z, grads = run(module, layer, x, w, b, g)
    with np.errstate(invalid="ignore"):
        want_z, want_grads = truth(layer, x, w, b, g)
    np.testing.assert_array_equal(np.isnan(z), np.isnan(want_z))
    np.testing.assert_allclose(z, want_z, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, want_grads):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_generation_is_deterministic_and_names_the_regenerating_command():
    layer = CASES[3][1]
    assert generate(layer) == generate(layer.replace())
    source = generate(layer, style="reference")
    assert "symbackprop generate convtranspose2d --in-channels 4 --out-channels 2" in source
    assert "--style reference" in source


def test_the_module_checks_its_arguments():
    _, layer, size, batch = CASES[3]
    module = load(layer)
    x, w, b, g = arrays(layer, size, batch)
    with pytest.raises(ValueError, match="w must have shape"):
        module.forward(x, w.transpose(1, 0, 2, 3), b)  # in/out channels swapped
    with pytest.raises(ValueError, match="grad_out must have shape"):
        module.backward(x, w, b, g[..., :-1])
    with pytest.raises(TypeError, match="dtype"):
        module.forward(x.astype(np.float32), w, b)
    tiny = load(ConvTranspose1d(1, 1, 2, padding=2))
    with pytest.raises(ValueError, match="too small"):
        tiny.forward(np.zeros((1, 1, 1)), np.zeros((1, 1, 2)), np.zeros(1))


def test_pytorch_agrees_when_installed():
    torch = pytest.importorskip("torch")
    for _, layer, size, batch in CASES:
        if layer.padding[0::2] != layer.padding[1::2]:
            continue  # PyTorch pads both ends alike
        x, w, b, g = arrays(layer, size, batch)
        function = getattr(torch.nn.functional, f"conv_transpose{layer.dims}d")
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True) if b is not None else None
        z = function(tx, tw, tb, stride=layer.stride, padding=layer.padding[0::2],
                     output_padding=layer.output_padding, groups=layer.groups,
                     dilation=layer.dilation)
        z.backward(torch.tensor(g))
        got_z, grads = run(load(layer), layer, x, w, b, g)
        np.testing.assert_allclose(got_z, z.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(grads[0], tx.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(grads[1], tw.grad.numpy(), rtol=1e-10, atol=1e-10)


@st.composite
def layers(draw):
    dims = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    extra = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(2 * dims))
    size = tuple(draw(st.integers(1, 4 if dims < 3 else 2)) for _ in range(dims))
    layer_type = (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)[dims - 1]
    try:
        layer = layer_type(groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)),
                           kernel, stride=stride, padding=padding, output_padding=extra,
                           dilation=dilation, groups=groups, bias=draw(st.booleans()))
        layer.output_size(size)
    except ValueError:
        layer = layer_type(groups, groups, kernel, stride=stride, output_padding=extra,
                           dilation=dilation, groups=groups)
    return layer, size, draw(st.integers(1, 2))


# fewer examples than the profile's quick default: each loads a module (thorough: all)
@settings(max_examples=min(10, settings.default.max_examples) if
          settings.default.max_examples < 100 else settings.default.max_examples)
@given(layers(), st.sampled_from(STYLES))
def test_property_generated_equals_loops(drawn, style):
    layer, size, batch = drawn
    module = load(layer, style=style)
    x, w, b, g = arrays(layer, size, batch, seed=7)
    z, grads = run(module, layer, x, w, b, g)
    want_z, want_grads = truth(layer, x, w, b, g)
    np.testing.assert_allclose(z, want_z, rtol=1e-10, atol=1e-10)
    for got, want in zip(grads, want_grads):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_the_vectorised_reference_agrees_with_the_plain_loops(case):
    from reference_conv_transpose import conv_transpose_vectorised

    _, layer, size, batch = case
    x, w, b, g = arrays(layer, size, batch, seed=11)
    want_z, want_grads = truth(layer, x, w, b, g)
    np.testing.assert_allclose(conv_transpose_vectorised(x, w, b, **options(layer)), want_z,
                               atol=1e-12)
    got = conv_transpose_vectorised(x, w, b, g, **options(layer))
    for got_grad, want in zip(got, want_grads):
        np.testing.assert_allclose(got_grad, want, atol=1e-12)


CHAINS = [
    ("2d-relu-conv", "[{\"layer\": \"convtranspose2d\", \"out_channels\": 2, \"kernel_size\": 2, "
                     "\"stride\": 2}, {\"layer\": \"relu\"}, {\"layer\": \"conv2d\", "
                     "\"in_channels\": 2, \"kernel_size\": 3}]", (3, 3)),
    # (a longer describe(), output_padding added, overflows the chain module's 100 columns)
    ("1d-tanh", "[{\"layer\": \"convtranspose1d\", \"in_channels\": 2, \"kernel_size\": 3, "
                "\"stride\": 2, \"padding\": 1}, {\"layer\": \"tanh\"}]", 4),
]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("chain", CHAINS, ids=[chain[0] for chain in CHAINS])
def test_a_chain_with_a_transposed_convolution(chain, style):
    import layer_reference
    from ruff_check import ruff_problems

    from symbackprop.core.layers import load_spec

    layer, _ = load_spec(chain[1])
    module = load(layer, style=style)
    rng = np.random.default_rng(4)
    params = [layer_reference.random_parameters(part, rng) for part in layer.layers]
    flat = [value for part in params for value in part.values()]
    x = rng.standard_normal(layer.input_shape(chain[2], 2))
    outputs = layer_reference.chain_forward(layer.layers, x, params)
    np.testing.assert_allclose(module.forward(x, *flat), outputs[-1], atol=1e-12)
    grad_out = rng.standard_normal(outputs[-1].shape)
    deltas, grads = layer_reference.chain_backward(layer.layers, x, params, grad_out)
    want = [deltas[0], *(value for part in grads for value in part.values())]
    for got, expected in zip(module.backward(x, *flat, grad_out), want, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-12)
    if chain is CHAINS[0]:  # ruff runs in a subprocess: once per style is enough
        assert ruff_problems(generate(layer, style=style)) == ""


def test_generation_refuses_a_layer_whose_smallest_instance_is_too_large():
    from symbackprop.core.derivation import SizeLimitError

    with pytest.raises(SizeLimitError, match="padding = 1000: the smallest instance"):
        generate(ConvTranspose2d(1, 1, 3, padding=1000))
