"""Conv1d and Conv3d, and padding in every form: specs, the derivation against the loop
references of tests/reference_convnd.py, SymPy's own diff, the proven closed forms,
the generated modules (both styles) and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from conftest import evaluate
from hypothesis import given
from hypothesis import strategies as st
from reference_convnd import (
    conv_backward_loops,
    conv_forward_loops,
    output_sizes,
    same_padding,
)

from symbackprop import Conv1d, Conv2d, Conv3d
from symbackprop.core.derivation import derive
from symbackprop.core.indexing import padding_pairs
from symbackprop.core.layers import layer_from_spec
from symbackprop.core.naming import module_name
from symbackprop.core.registry import KINDS
from symbackprop.core.rules import proofs_for
from symbackprop.render.codegen import load

STYLES = ("fast", "reference")

# (id, layer, spatial input size, batch): strides that do not divide the padded input,
# asymmetric and "same" padding, dilation, groups, no bias, odd kernels.
GRID = [
    ("1d-worked", Conv1d(1, 1, 3, padding=1), (5,), 1),
    ("1d-stride2-uneven", Conv1d(1, 2, 3, stride=2), (8,), 1),
    ("1d-asym-dilated", Conv1d(2, 2, 2, padding=(0, 2), dilation=2), (5,), 2),
    ("1d-same-even", Conv1d(1, 1, 4, padding="same"), (5,), 1),
    ("1d-groups-nobias", Conv1d(4, 2, 2, stride=3, padding=1, groups=2, bias=False), (7,), 1),
    ("3d-pad1", Conv3d(1, 1, 2, padding=1), (1, 2, 2), 1),
    ("3d-stride-mixed", Conv3d(2, 1, (2, 1, 3), stride=(1, 2, 2), padding=(0, 1, 1, 0, 1, 2)),
     (2, 3, 4), 1),
    ("3d-same-dilated", Conv3d(1, 1, 2, padding="same", dilation=(1, 2, 1)), (2, 3, 3), 1),
    ("3d-groups", Conv3d(2, 2, 2, groups=2, stride=2), (3, 3, 3), 2),
]
IDS = [case[0] for case in GRID]


def numbers(layer, sizes, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, layer.in_channels, *sizes))
    w = rng.standard_normal(layer.weight_shape)
    b = rng.standard_normal(layer.out_channels) if layer.bias else None
    g = rng.standard_normal(layer.output_shape(sizes, batch))
    return x, w, b, g


def loops(layer, x, w, b, g):
    options = (layer.stride, layer.padding_pairs, layer.dilation, layer.groups)
    return conv_forward_loops(x, w, b, *options), conv_backward_loops(x, w, b, g, *options)


# -- padding in every form ---------------------------------------------------------

def test_padding_forms():
    one = dict(kernel_size=(3,), dilation=(1,), stride=(1,))
    assert padding_pairs(2, 1, **one) == ((2, 2),)
    assert padding_pairs((2,), 1, **one) == ((2, 2),)
    assert padding_pairs((0, 2), 1, **one) == ((0, 2),)
    assert padding_pairs("valid", 1, **one) == ((0, 0),)
    assert padding_pairs("same", 1, **one) == ((1, 1),)
    three = dict(kernel_size=(2, 3, 4), dilation=(1, 2, 1), stride=(1, 1, 1))
    assert padding_pairs((1, 2, 3), 3, **three) == ((1, 1), (2, 2), (3, 3))
    assert padding_pairs((0, 1, 2, 3, 4, 5), 3, **three) == ((0, 1), (2, 3), (4, 5))
    assert padding_pairs([[0, 1], [2, 3], [4, 5]], 3, **three) == ((0, 1), (2, 3), (4, 5))
    # "same": d*(K-1) in all, the odd extra one at the end (PyTorch)
    assert padding_pairs("same", 3, **three) == ((0, 1), (2, 2), (1, 2))
    assert padding_pairs("same", 3, **three) == same_padding((2, 3, 4), (1, 2, 1))
    two = dict(kernel_size=(2, 2), dilation=(1, 1), stride=(1, 1))
    assert padding_pairs((1, 2), 2, **two) == ((1, 1), (2, 2))
    assert padding_pairs((1, 2, 3, 4), 2, **two) == ((1, 2), (3, 4))


@pytest.mark.parametrize("value, message", [
    ("same", "padding='same' needs stride 1 along every axis"),
    ("full", "'valid' or 'same'"),
    ((1, 2, 3), "padding must be an int, 2 ints"),
    (-1, "padding must be >= 0 on every side"),
    (1.5, "padding must be"),
])
def test_padding_errors_name_the_rule(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        padding_pairs(value, 1, (3,), (1,), (2,) if value == "same" else (1,))


def test_conv2d_takes_every_padding_form():
    assert Conv2d(kernel_size=3, padding="same").padding == (1, 1, 1, 1)
    assert Conv2d(kernel_size=(2, 4), padding="same").padding == (0, 1, 1, 2)
    assert Conv2d(kernel_size=3, padding="valid").padding == (0, 0, 0, 0)
    assert Conv2d(padding=((1, 2), (0, 1))).padding == (1, 2, 0, 1)
    layer = Conv2d(kernel_size=2, padding="same")
    assert layer_from_spec(layer.spec()) == layer
    with pytest.raises(ValueError, match="stride 1 along every axis"):
        Conv2d(kernel_size=3, stride=2, padding="same")


def test_same_keeps_the_size():
    for layer, sizes in [(Conv1d(1, 1, 4, padding="same", dilation=3), (7,)),
                         (Conv3d(1, 1, (1, 2, 5), padding="same"), (3, 4, 5))]:
        assert layer.output_size(sizes) == sizes


# -- specs ------------------------------------------------------------------------

def test_specs_shapes_names_and_round_trip():
    layer = Conv1d(16, 32, 5, padding=2)
    assert layer.weight_shape == (32, 16, 5)
    assert layer.input_shape(100, 4) == (4, 16, 100)
    assert layer.input_shape((16, 100)) == (1, 16, 100)
    assert layer.output_shape_for((4, 16, 100)) == (4, 32, 100)
    assert layer.describe() == "Conv1d 16->32, kernel 5, stride 1, padding 2"
    assert module_name(layer) == "conv1d_in16_out32_k5_s1_p2"
    video = Conv3d(3, 8, 3, stride=(1, 2, 2), padding=(0, 0, 1, 1, 1, 2), bias=False)
    assert video.weight_shape == (8, 3, 3, 3, 3)
    assert video.output_shape((4, 9, 9), 2) == (2, 8, 2, 5, 5)
    assert module_name(video) == "conv3d_in3_out8_k3_s1x2x2_p0_0_1_1_1_2_nobias"
    for layer in (Conv1d(2, 4, 3, stride=2, padding=(0, 1), dilation=2, groups=2), video,
                  Conv3d(padding="same"), Conv1d()):
        assert layer_from_spec(layer.spec()) == layer
    assert Conv1d().spec() == {"layer": "conv1d"}
    assert KINDS["conv1d"] is Conv1d and KINDS["conv3d"] is Conv3d


@pytest.mark.parametrize("make, message", [
    (lambda: Conv1d(3, 2, 2, groups=2), "groups must divide in_channels"),
    (lambda: Conv1d(1, 1, 0), "kernel_size must be >= 1"),
    (lambda: Conv3d(1, 1, (2, 2)), "kernel_size must be an int or 3 ints"),
    (lambda: Conv3d(1, 1, 3, stride=2, padding="same"), "stride 1 along every axis"),
    (lambda: Conv1d(bias=1), "bias must be True or False"),
    (lambda: Conv1d(1, 1, 5).output_shape(3), "padded input L 3\\+0\\+0 = 3 is smaller"),
    (lambda: Conv3d().output_shape_for((1, 1, 4, 4)), "takes inputs shaped \\(N, C, D, H, W\\)"),
    (lambda: Conv1d(2, 1).input_shape((3, 5)), "in_channels = 2"),
])
def test_spec_errors_name_the_parameter(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- the derivation ------------------------------------------------------------------

@pytest.mark.parametrize("layer, sizes, batch", [case[1:] for case in GRID], ids=IDS)
def test_derivation_matches_the_loops_and_the_closed_forms_hold(layer, sizes, batch):
    derivation = derive(layer, sizes, batch)
    x, w, b, g = numbers(layer, sizes, batch)
    values = {"x": x, "w": w, "g": g, **({"b": b} if layer.bias else {})}
    z, (grad_x, grad_w, grad_b) = loops(layer, x, w, b, g)
    np.testing.assert_allclose(evaluate(derivation.z, values), z, atol=1e-12)
    np.testing.assert_allclose(evaluate(derivation.grad_x, values), grad_x, atol=1e-12)
    np.testing.assert_allclose(evaluate(derivation.grad_w, values), grad_w, atol=1e-12)
    if layer.bias:
        np.testing.assert_allclose(evaluate(derivation.grad_b, values), grad_b, atol=1e-12)
    proofs = proofs_for(derivation)
    assert [proof.name for proof in proofs] == ["grad_x", "grad_w"] + \
        (["grad_b"] if layer.bias else [])
    assert all(proof.holds for proof in proofs)


@pytest.mark.parametrize("layer, sizes", [
    (Conv1d(1, 2, 2, stride=2, padding=(1, 0)), (5,)),
    (Conv3d(1, 1, 2, padding=(0, 1, 1, 0, 0, 0), stride=(1, 1, 2)), (2, 2, 3)),
])
def test_sympy_diff_agrees_with_collect(layer, sizes):
    collect, diff = derive(layer, sizes), derive(layer, sizes, method="diff")
    for name in collect.grads:
        for a, b in zip(sympy.flatten(collect.grads[name].tolist()),
                        sympy.flatten(diff.grads[name].tolist()), strict=True):
            assert sympy.expand(a - b) == 0


def test_a_wrong_closed_form_is_caught(monkeypatch):
    """The proof is not vacuous: a kernel that is not flipped fails it."""
    from symbackprop.kinds.convnd import rules

    derivation = derive(Conv1d(1, 1, 3, padding=1), (4,))
    monkeypatch.setattr(rules, "flip_nd", lambda kernel, axes: kernel)
    proofs = {proof.name: proof for proof in rules.prove_rules(derivation)}
    assert not proofs["grad_x"].holds and proofs["grad_w"].holds


# -- generated code -----------------------------------------------------------------

@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("layer, sizes, batch", [case[1:] for case in GRID], ids=IDS)
def test_generated_code_matches_the_loops(layer, sizes, batch, style):
    module = load(layer, style=style)
    x, w, b, g = numbers(layer, sizes, batch, seed=1)
    params = (w, b) if layer.bias else (w,)
    z, grads = loops(layer, x, w, b, g)
    np.testing.assert_allclose(module.forward(x, *params), z, atol=1e-12)
    got = module.backward(x, *params, g)
    for mine, want in zip(got, grads[:len(got)], strict=True):
        np.testing.assert_allclose(mine, want, atol=1e-12)
    assert module.output_size(*sizes) == tuple(output_sizes(
        sizes, layer.kernel_size, layer.stride, layer.dilation, layer.padding_pairs))
    x32 = [a.astype(np.float32) for a in (x, *params, g)]
    assert all(a.dtype == np.float32 for a in module.backward(*x32))


@pytest.mark.parametrize("style", STYLES)
def test_generated_gradients_match_finite_differences(style):
    layer = Conv3d(2, 2, 2, stride=(2, 1, 1), padding=(1, 0, 0, 1, 1, 1), dilation=(1, 1, 2))
    module = load(layer, style=style)
    x, w, b, g = numbers(layer, (3, 3, 4), 1, seed=2)
    grad_x, grad_w, grad_b = module.backward(x, w, b, g)
    step = 1e-6
    for array, grad in ((x, grad_x), (w, grad_w), (b, grad_b)):
        for index in list(np.ndindex(*array.shape))[::5]:
            saved = array[index]
            array[index] = saved + step
            up = np.sum(module.forward(x, w, b) * g)
            array[index] = saved - step
            down = np.sum(module.forward(x, w, b) * g)
            array[index] = saved
            assert abs((up - down) / (2 * step) - grad[index]) < 1e-6


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_inf_and_nan_spread_as_in_the_sums(style, value):
    """A product with padding is not in the sums: 0 * inf must not become NaN."""
    for layer, sizes in [(Conv1d(1, 2, 3, padding=2, stride=2), (5,)),
                         (Conv3d(1, 1, 2, padding=1), (2, 2, 3))]:
        module = load(layer, style=style)
        for where in ("x", "w", "g"):
            x, w, b, g = numbers(layer, sizes, 1, seed=3)
            arrays = {"x": x, "w": w, "g": g}
            arrays[where][(0,) * arrays[where].ndim] = value
            want_z, want = loops(layer, x, w, b, g)
            with np.errstate(invalid="ignore"):
                np.testing.assert_array_equal(np.isnan(module.forward(x, w, b)),
                                              np.isnan(want_z))
                got = module.backward(x, w, b, g)
            for mine, truth in zip(got, want, strict=True):
                np.testing.assert_array_equal(np.isnan(mine), np.isnan(truth))
                np.testing.assert_array_equal(np.isinf(mine), np.isinf(truth))


def test_generated_module_checks_its_arguments():
    module = load(Conv1d(2, 1, 3))
    w, b = np.zeros((1, 2, 3)), np.zeros(1)
    with pytest.raises(ValueError, match="too small for this layer"):
        module.forward(np.zeros((1, 2, 2)), w, b)
    with pytest.raises(ValueError, match=r"x must have 3 dimensions, shape \(N, 2, L\)"):
        module.forward(np.zeros((1, 2, 2, 2)), w, b)
    with pytest.raises(TypeError, match="dtype of x"):
        module.forward(np.zeros((1, 2, 5)), w.astype(np.float32), b)


@given(axes=st.sampled_from([1, 3]), data=st.data())
def test_property_generated_code_matches_the_loops(axes, data):
    """Random strides, paddings (every form), dilations and groups, both styles."""
    groups = data.draw(st.sampled_from([1, 2]))
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(axes))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(axes))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(axes))
    form = data.draw(st.sampled_from(["int", "axis", "pairs", "same", "valid"]))
    if form == "same":
        stride = (1,) * axes
    padding = {"int": data.draw(st.integers(0, 2)),
               "axis": tuple(data.draw(st.integers(0, 2)) for _ in range(axes)),
               "pairs": tuple(data.draw(st.integers(0, 2)) for _ in range(2 * axes)),
               "same": "same", "valid": "valid"}[form]
    layer_type = Conv1d if axes == 1 else Conv3d
    layer = layer_type(2 * groups, 2 * groups, kernel, stride, padding,
                       dilation, groups, data.draw(st.booleans()))
    sizes = tuple(d * (k - 1) + 1 + data.draw(st.integers(0, 3 if axes == 1 else 1))
                  for k, d in zip(kernel, dilation, strict=True))
    style = data.draw(st.sampled_from(STYLES))
    module = load(layer, style=style)
    x, w, b, g = numbers(layer, sizes, 1, seed=4)
    params = (w, b) if layer.bias else (w,)
    z, grads = loops(layer, x, w, b, g)
    np.testing.assert_allclose(module.forward(x, *params), z, atol=1e-11)
    for mine, want in zip(module.backward(x, *params, g), grads, strict=False):
        np.testing.assert_allclose(mine, want, atol=1e-11)


def _catalog_files():
    from symbackprop.catalog import CATALOG

    return [(entry.layer, name) for entry in CATALOG if isinstance(entry.layer, (Conv1d, Conv3d))
            for _, name in entry.files()]


@pytest.mark.parametrize("layer, name", _catalog_files(), ids=lambda value: str(value)[:40])
def test_committed_catalog_modules_match_the_loops(layer, name):
    """The files in generated/ themselves, imported, against the loop references."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "generated" / name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # the smallest input that fits (the loops are slow for wide layers), one more if narrow
    more = 1 if layer.in_channels * layer.out_channels <= 1024 else 0
    sizes = tuple(max(1, d * (k - 1) + 1 - before - after) + more for k, d, (before, after)
                  in zip(layer.kernel_size, layer.dilation, layer.padding_pairs, strict=True))
    x, w, b, g = numbers(layer, sizes, 1, seed=6)
    z, grads = loops(layer, x, w, b, g)
    np.testing.assert_allclose(module.forward(x, w, b), z, atol=1e-10)
    for got, want in zip(module.backward(x, w, b, g), grads, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-10)
