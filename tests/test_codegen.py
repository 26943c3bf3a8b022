"""Tests of the NumPy code generator (symbackprop.render.codegen) and the modules it writes.

Truth comes from outside the generator: SymPy's derivation (the generated
statements, run on arrays of SymPy symbols, must give exactly the derived sums),
the independent im2col reference in tests/reference.py, and finite differences.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy
from conftest import CONV_GRID, REPO
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import conv2d_backward, conv2d_forward, numerical_gradient
from ruff_check import ruff_problems

import symbackprop as sbp
from symbackprop import Conv2d
from symbackprop.cli import build_parser, layer_from_args, main
from symbackprop.core.command_line import layer_arguments
from symbackprop.core.naming import element_symbol, module_name
from symbackprop.kinds.conv2d.numpy import (
    STRATEGIES,
    Conv2dPlan,
    check_conv2d_plan,
    choose_strategy,
    conv2d_plan,
    read_conv2d_plan,
    representative_instance,
)
from symbackprop.render.codegen import (
    PlanError,
    generate,
    load,
    module_filename,
    regenerate_command,
    write_module,
)

GRID_IDS = [case[0] for case in CONV_GRID]
DTYPES = [np.float32, np.float64]


def grid_layer(case):
    _, kwargs, input_size, batch = case
    return Conv2d(**kwargs), input_size, batch


def random_arrays(layer, input_size, batch, dtype, seed=0):
    """``x``, the parameters and an upstream gradient, all of ``dtype``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, layer.in_channels, *input_size)).astype(dtype)
    params = [rng.standard_normal(layer.weight_shape).astype(dtype)]
    if layer.bias:
        params.append(rng.standard_normal(layer.out_channels).astype(dtype))
    grad_out = rng.standard_normal(layer.output_shape(input_size, batch)).astype(dtype)
    return x, params, grad_out


def reference(layer, x, params, grad_out):
    """``(z, grads)`` of tests/reference.py (im2col), in float64."""
    w, b = params[0], (params[1] if layer.bias else None)
    options = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups)
    z = conv2d_forward(x, w, b, **options)
    grad_x, grad_w, grad_b = conv2d_backward(x, w, b, grad_out, **options)
    return z, (grad_x, grad_w, grad_b) if layer.bias else (grad_x, grad_w)


def assert_matches_reference(layer, input_size, batch, dtype, seed=0):
    module = load(layer)
    x, params, grad_out = random_arrays(layer, input_size, batch, dtype, seed)
    z = module.forward(x, *params)
    grads = module.backward(x, *params, grad_out)
    want_z, want_grads = reference(layer, x, params, grad_out)
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10,
                                                                             atol=1e-10)
    assert z.dtype == dtype and z.shape == want_z.shape
    np.testing.assert_allclose(z, want_z, **tolerance)
    assert len(grads) == len(want_grads) == 1 + len(params)
    for name, got, want in zip("xwb"[:len(grads)], grads, want_grads, strict=True):
        assert got.dtype == dtype, name
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, err_msg=f"dL/d{name}", **tolerance)


# -- the plan: read off the derivation ------------------------------------------------

@pytest.mark.parametrize("case", CONV_GRID, ids=GRID_IDS)
def test_plan_read_off_derivation_follows_spec(case):
    """Each offset's slice, read off SymPy's sums, is docs/notation.md's xp[.., i*sh + m*dh, ..]."""
    layer, _, _ = grid_layer(case)
    instance, size = representative_instance(layer)
    plan = read_conv2d_plan(sbp.derive(instance, size, 1), layer)
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    offsets = [offset.kernel_offset for offset in plan.offsets]
    assert offsets == [(m, k) for m in range(layer.kernel_size[0])
                       for k in range(layer.kernel_size[1])]
    for offset in plan.offsets:
        m, k = offset.kernel_offset
        assert (offset.first_row, offset.row_step) == (m * dh, sh)
        assert (offset.first_col, offset.col_step) == (k * dw, sw)
    check_conv2d_plan(plan)


def test_plan_needs_two_positions_per_offset():
    """An instance on which an offset meets one column only cannot fix its slice."""
    derivation = sbp.derive(Conv2d(kernel_size=2, stride=3, padding=1), (7, 5))
    with pytest.raises(PlanError, match="does not fix a slice"):
        read_conv2d_plan(derivation)


@pytest.mark.parametrize("case", CONV_GRID, ids=GRID_IDS)
def test_representative_instance_meets_every_offset_twice(case):
    layer, _, _ = grid_layer(case)
    instance, (height, width) = representative_instance(layer)
    top, bottom, left, right = layer.padding
    out_height, out_width = layer.output_size((height, width))
    for m in range(layer.kernel_size[0]):
        rows = [i * layer.stride[0] + m * layer.dilation[0] - top for i in range(out_height)]
        assert sum(0 <= row < height for row in rows) >= 2
    for k in range(layer.kernel_size[1]):
        cols = [j * layer.stride[1] + k * layer.dilation[1] - left for j in range(out_width)]
        assert sum(0 <= col < width for col in cols) >= 2
    assert dataclasses.replace(instance, in_channels=1, out_channels=1, groups=1) == \
        dataclasses.replace(layer, in_channels=1, out_channels=1, groups=1)


def test_wide_layer_is_derived_with_fewer_channels():
    layer = Conv2d(64, 128, kernel_size=3, padding=1, groups=4)
    instance, _ = representative_instance(layer)
    assert (instance.in_channels, instance.out_channels, instance.groups) == (4, 4, 2)
    plan = conv2d_plan(layer)
    assert plan.layer == layer and plan.derivation.layer == instance


def test_plan_check_fails_for_a_wrong_slice():
    layer = Conv2d(kernel_size=2, stride=2, padding=1)
    plan = conv2d_plan(layer)
    first = plan.offsets[0]
    for wrong in (dataclasses.replace(first, first_row=first.first_row + 1),
                  dataclasses.replace(first, col_step=first.col_step + 1)):
        broken = Conv2dPlan(layer=plan.layer, derivation=plan.derivation,
                            offsets=(wrong, *plan.offsets[1:]))
        with pytest.raises(PlanError, match="do not reproduce"):
            check_conv2d_plan(broken)


def test_plan_reading_fails_for_sums_that_are_not_a_slice():
    derivation = sbp.derive(Conv2d(kernel_size=2), (3, 3))
    grad_w = derivation.grads["w"]
    # move one term of dL/dw[0,0,0,0] to another input position
    x = element_symbol
    tampered = grad_w.tolist()
    tampered[0][0][0][0] = tampered[0][0][0][0].subs(x("x", (0, 0, 1, 1)), x("x", (0, 0, 2, 0)))
    grads = dict(derivation.grads, w=sympy.ImmutableDenseNDimArray(tampered))
    with pytest.raises(PlanError, match=r"kernel offset \(0, 0\) meets padded rows 1 and 2"):
        read_conv2d_plan(dataclasses.replace(derivation, grads=grads))


# -- the generated statements reproduce the symbolic expressions -----------------------

def symbolic(array):
    return np.array(array.tolist(), dtype=object)


def assert_symbolically_equal(got, want, what):
    want_flat = sympy.flatten(want.tolist())
    assert got.shape == want.shape, what
    for index, (value, expected) in enumerate(zip(got.flat, want_flat, strict=True)):
        assert sympy.expand(value - expected) == 0, f"{what} element {index}: {value} != {expected}"


@pytest.mark.parametrize("case", CONV_GRID, ids=GRID_IDS)
def test_generated_statements_reproduce_the_derivation(case):
    """Run the module's own statements on SymPy symbols: exactly SymPy's z and gradients."""
    layer, input_size, batch = grid_layer(case)
    derivation = sbp.derive(layer, input_size, batch)
    module = load(layer)
    arrays = [symbolic(derivation.x), *(symbolic(p) for p in derivation.params.values())]
    assert_symbolically_equal(module._forward(*arrays), derivation.z, "z")
    grads = module._backward(*arrays, symbolic(derivation.g))
    assert len(grads) == len(derivation.grads)
    for got, (name, want) in zip(grads, derivation.grads.items(), strict=True):
        assert_symbolically_equal(got, want, f"dL/d{name}")


def test_generated_statements_reproduce_sympy_diff():
    """The same against ``sympy.diff`` of L = sum(g*z), the truth itself."""
    layer = Conv2d(in_channels=2, out_channels=2, kernel_size=(2, 3), stride=(2, 1),
                   padding=(1, 0, 2, 1), dilation=(1, 2), groups=2)
    derivation = sbp.derive(layer, (4, 4), 1, method="diff")
    module = load(layer)
    arrays = [symbolic(derivation.x), *(symbolic(p) for p in derivation.params.values())]
    for got, want in zip(module._backward(*arrays, symbolic(derivation.g)),
                         derivation.grads.values(), strict=True):
        assert_symbolically_equal(got, want, "gradient")


# -- numbers: the im2col reference and finite differences ------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", CONV_GRID, ids=GRID_IDS)
def test_grid_matches_reference(case, dtype):
    layer, input_size, batch = grid_layer(case)
    assert_matches_reference(layer, input_size, batch, dtype)


# -- every strategy: the same truth, on the whole grid ------------------------------

def grid_strategies():
    """``(case, strategy)`` for every grid layer and every strategy that applies to it."""
    pairs = []
    for case in CONV_GRID:
        layer = Conv2d(**case[1])
        for strategy in STRATEGIES:
            if strategy != "pointwise" or choose_strategy(layer) == "pointwise":
                pairs.append(pytest.param(case, strategy, id=f"{case[0]}-{strategy}"))
    return pairs


def with_small_blocks(module, monkeypatch):
    """Make the module walk the grid in blocks of 7 positions (many blocks, a partial last)."""
    if hasattr(module, "MIN_CHUNK"):
        monkeypatch.setattr(module, "MIN_CHUNK", 7)
        monkeypatch.setattr(module, "CHUNK_BYTES", 1)
    return module


@pytest.mark.parametrize("case, strategy", grid_strategies())
def test_every_strategy_reproduces_the_derivation(case, strategy, monkeypatch):
    """Each strategy's statements, in one block and in many, give exactly SymPy's sums."""
    layer, input_size, batch = grid_layer(case)
    derivation = sbp.derive(layer, input_size, batch)
    module = load(layer, strategy=strategy)
    assert module.STRATEGY == strategy
    arrays = [symbolic(derivation.x), *(symbolic(p) for p in derivation.params.values())]
    for blocks in ("one", "many"):
        if blocks == "many":
            with_small_blocks(module, monkeypatch)
        assert_symbolically_equal(module._forward(*arrays), derivation.z, f"z ({blocks})")
        grads = module._backward(*arrays, symbolic(derivation.g))
        for got, (name, want) in zip(grads, derivation.grads.items(), strict=True):
            assert_symbolically_equal(got, want, f"dL/d{name} ({blocks} blocks)")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case, strategy", grid_strategies())
def test_every_strategy_matches_reference(case, strategy, dtype, monkeypatch):
    layer, input_size, batch = grid_layer(case)
    module = with_small_blocks(load(layer, strategy=strategy), monkeypatch)
    x, params, grad_out = random_arrays(layer, input_size, batch + 1, dtype, seed=5)
    want_z, want_grads = reference(layer, x, params, grad_out)
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10,
                                                                             atol=1e-10)
    z = module.forward(x, *params)
    assert z.dtype == dtype
    np.testing.assert_allclose(z, want_z, **tolerance)
    grads = module.backward(x, *params, grad_out)
    for name, got, want in zip("xwb"[:len(grads)], grads, want_grads, strict=True):
        assert got.dtype == dtype and got.shape == want.shape, name
        np.testing.assert_allclose(got, want, err_msg=f"dL/d{name}", **tolerance)


@pytest.mark.parametrize("layer, strategy", [
    (Conv2d(64, 64, kernel_size=1), "pointwise"),
    (Conv2d(64, 64, kernel_size=1, groups=4, bias=False), "pointwise"),
    (Conv2d(64, 64, kernel_size=1, stride=2), "transposed"),
    (Conv2d(64, 64, kernel_size=1, padding=1), "transposed"),
    (Conv2d(3, 16, kernel_size=3, padding=1), "im2col"),
    (Conv2d(1, 8, kernel_size=5), "im2col"),
    (Conv2d(8, 16, kernel_size=3), "im2col"),
    (Conv2d(9, 16, kernel_size=3), "transposed"),
    (Conv2d(64, 64, kernel_size=3, padding=1), "transposed"),
    (Conv2d(128, 128, kernel_size=3, stride=2, padding=1), "transposed"),
    (Conv2d(32, 32, kernel_size=3, padding=1, groups=32), "transposed"),
])
def test_strategy_follows_the_shape_class(layer, strategy):
    assert choose_strategy(layer) == strategy
    module = load(layer)
    assert module.STRATEGY == strategy
    assert f"Strategy: {strategy}" in module.__doc__ or f"strategy {strategy}" in module.__doc__
    assert STRATEGIES[strategy].split(":")[0] in " ".join(module.__doc__.split())


def test_strategy_argument_is_checked():
    with pytest.raises(ValueError, match="strategy must be one of pointwise, im2col, transposed"):
        generate(Conv2d(kernel_size=3), "direct")
    with pytest.raises(ValueError, match="'pointwise' needs a 1x1 kernel"):
        generate(Conv2d(kernel_size=3), "pointwise")
    with pytest.raises(ValueError, match="loaded in memory"):
        load(Conv2d(kernel_size=3), "somewhere", strategy="im2col")
    forced = load(Conv2d(kernel_size=3), strategy="im2col")
    assert "measured choice for this layer is transposed" in " ".join(forced.__doc__.split())


def test_any_batch_and_input_size():
    layer = Conv2d(in_channels=3, out_channels=4, kernel_size=3, stride=2, padding=(1, 0, 2, 1))
    for batch, size in [(1, (3, 3)), (5, (8, 7)), (2, (13, 4)), (3, (2, 16))]:
        assert_matches_reference(layer, size, batch, np.float64, seed=batch)


@pytest.mark.parametrize("case", [CONV_GRID[i] for i in (0, 2, 4, 7, 9, 10)],
                         ids=[GRID_IDS[i] for i in (0, 2, 4, 7, 9, 10)])
def test_finite_differences(case):
    layer, input_size, batch = grid_layer(case)
    module = load(layer)
    x, params, grad_out = random_arrays(layer, input_size, batch, np.float64, seed=3)

    def loss(*arrays):
        return float(np.sum(module.forward(*arrays) * grad_out))

    arrays = [x, *params]
    grads = module.backward(x, *params, grad_out)
    for index, grad in enumerate(grads):
        numeric = numerical_gradient(loss, arrays, index)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-7)


def test_unread_rows_get_zero_gradient():
    """Stride 2 over a 6-row input with a 3x3 kernel never reads the last row or column."""
    layer = Conv2d(kernel_size=3, stride=2, bias=False)
    module = load(layer)
    x = np.ones((1, 1, 6, 6))
    grad_x, _ = module.backward(x, np.ones(layer.weight_shape), np.ones((1, 1, 2, 2)))
    assert np.all(grad_x[:, :, 5, :] == 0) and np.all(grad_x[:, :, :, 5] == 0)
    assert np.all(grad_x[:, :, :5, :5] > 0)


def test_adjoint_dot_product():
    """<C x, g> = <x, C^T g>: backward's dL/dx is the transpose of the forward map."""
    layer = Conv2d(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 3),
                   padding=(2, 0, 1, 3), dilation=(2, 1), groups=2, bias=False)
    module = load(layer)
    x, (w,), grad_out = random_arrays(layer, (9, 10), 2, np.float64, seed=7)
    grad_x, _ = module.backward(x, w, grad_out)
    assert np.isclose(np.sum(module.forward(x, w) * grad_out), np.sum(x * grad_x), rtol=1e-12)


@st.composite
def conv_instances(draw):
    """A random layer (kernel 1-5, stride 1-3, padding 0-3 per side, dilation 1-3, groups,
    channels, bias), an input size that fits it, a batch and a dtype."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, 3)) for _ in range(4))
    groups = draw(st.integers(1, 3))
    layer = Conv2d(in_channels=groups * draw(st.integers(1, 3)),
                   out_channels=groups * draw(st.integers(1, 3)), kernel_size=kernel,
                   stride=stride, padding=padding, dilation=dilation, groups=groups,
                   bias=draw(st.booleans()))
    size = []
    for axis, (before, after) in enumerate((padding[:2], padding[2:])):
        smallest = max(1, dilation[axis] * (kernel[axis] - 1) + 1 - before - after)
        size.append(draw(st.integers(smallest, smallest + 7)))
    return layer, tuple(size), draw(st.integers(1, 3)), draw(st.sampled_from(DTYPES))


@given(conv_instances())
def test_random_layers_match_reference(instance):
    layer, input_size, batch, dtype = instance
    assert_matches_reference(layer, input_size, batch, dtype)


@settings(max_examples=5)
@given(conv_instances())
def test_random_layers_finite_differences(instance):
    layer, input_size, _, _ = instance
    module = load(layer)
    x, params, grad_out = random_arrays(layer, input_size, 1, np.float64, seed=11)

    def loss(*arrays):
        return float(np.sum(module.forward(*arrays) * grad_out))

    arrays = [x, *params]
    for index, grad in enumerate(module.backward(x, *params, grad_out)):
        np.testing.assert_allclose(grad, numerical_gradient(loss, arrays, index),
                                   rtol=1e-6, atol=1e-7)


@settings(max_examples=5)
@given(conv_instances())
def test_random_layers_statements_reproduce_the_derivation(instance):
    layer, input_size, _, _ = instance
    derivation = sbp.derive(layer, input_size, 1)
    module = load(layer)
    arrays = [symbolic(derivation.x), *(symbolic(p) for p in derivation.params.values())]
    assert_symbolically_equal(module._forward(*arrays), derivation.z, "z")
    for got, want in zip(module._backward(*arrays, symbolic(derivation.g)),
                         derivation.grads.values(), strict=True):
        assert_symbolically_equal(got, want, "gradient")


@settings(max_examples=10)
@given(conv_instances(), st.sampled_from(["im2col", "transposed"]), st.integers(1, 40))
def test_random_layers_every_strategy_and_block_size(instance, strategy, block):
    layer, input_size, batch, _ = instance
    module = load(layer, strategy=strategy)
    saved = module.MIN_CHUNK, module.CHUNK_BYTES
    module.MIN_CHUNK, module.CHUNK_BYTES = block, 1
    try:
        x, params, grad_out = random_arrays(layer, input_size, batch, np.float64, seed=block)
        want_z, want_grads = reference(layer, x, params, grad_out)
        np.testing.assert_allclose(module.forward(x, *params), want_z, rtol=1e-10, atol=1e-10)
        for got, want in zip(module.backward(x, *params, grad_out), want_grads, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    finally:
        module.MIN_CHUNK, module.CHUNK_BYTES = saved


# -- argument checks ---------------------------------------------------------------

@pytest.fixture(scope="module")
def grouped():
    """A module for Conv2d 4->6, kernel 3x2, stride 2, padding 1, groups 2, and good arrays."""
    layer = Conv2d(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=2, padding=1,
                   groups=2)
    x, params, grad_out = random_arrays(layer, (5, 6), 2, np.float64)
    return load(layer), x, params, grad_out


@pytest.mark.parametrize("change, error, words", [
    (dict(x=np.zeros((4, 5, 6))), ValueError, ["x", "(N, 4, H, W)", "(4, 5, 6)"]),
    (dict(x=np.zeros((2, 3, 5, 6))), ValueError, ["x", "(N, 4, H, W)", "(2, 3, 5, 6)"]),
    (dict(x=np.zeros((2, 4, 5, 6), dtype=np.int64)), TypeError, ["x", "floating", "int64"]),
    (dict(x=np.zeros((2, 4, 0, 6))), ValueError, ["x", "(2, 4, 0, 6)"]),
    (dict(x=np.zeros((2, 4, 5, 6), dtype=np.float32)), TypeError, ["w", "float32", "float64"]),
    (dict(w=np.zeros((6, 4, 3, 2))), ValueError, ["w", "(6, 2, 3, 2)", "(6, 4, 3, 2)"]),
    (dict(w=np.zeros((6, 2, 2, 3))), ValueError, ["w", "(6, 2, 3, 2)", "(6, 2, 2, 3)"]),
    (dict(b=np.zeros((5,))), ValueError, ["b", "(6,)", "(5,)"]),
    (dict(b=np.zeros((6,), dtype=np.float32)), TypeError, ["b", "float64", "float32"]),
])
def test_bad_arguments_are_named(grouped, change, error, words):
    module, x, (w, b), grad_out = grouped
    arguments = dict(x=x, w=w, b=b, **{})
    arguments.update(change)
    for call in (lambda: module.forward(**arguments),
                 lambda: module.backward(**arguments, grad_out=grad_out)):
        with pytest.raises(error) as caught:
            call()
        for word in words:
            assert word in str(caught.value)


def test_input_too_small_is_named():
    module = load(Conv2d(kernel_size=(3, 2), dilation=2, padding=(0, 0, 1, 0)))
    with pytest.raises(ValueError, match=r"x of shape \(1, 1, 4, 1\) is too small.*4x2.*5x3"):
        module.forward(np.zeros((1, 1, 4, 1)), np.zeros((1, 1, 3, 2)), np.zeros(1))


@pytest.mark.parametrize("grad_out, error, words", [
    (np.zeros((2, 6, 3, 3)), ValueError, ["grad_out", "(2, 6, 3, 4)", "(2, 6, 3, 3)"]),
    (np.zeros((1, 6, 3, 4)), ValueError, ["grad_out", "(2, 6, 3, 4)", "(1, 6, 3, 4)"]),
    (np.zeros((2, 6, 12)), ValueError, ["grad_out", "4 dimensions", "(2, 6, 12)"]),
    (np.zeros((2, 6, 3, 4), dtype=np.float32), TypeError, ["grad_out", "float64"]),
    (np.zeros((2, 6, 3, 4), dtype=bool), TypeError, ["grad_out", "floating", "bool"]),
])
def test_bad_grad_out_is_named(grouped, grad_out, error, words):
    module, x, params, _ = grouped
    with pytest.raises(error) as caught:
        module.backward(x, *params, grad_out)
    for word in words:
        assert word in str(caught.value)


def test_without_bias_the_signature_has_no_b():
    module = load(Conv2d(kernel_size=2, bias=False))
    assert list(inspect.signature(module.forward).parameters) == ["x", "w"]
    assert list(inspect.signature(module.backward).parameters) == ["x", "w", "grad_out"]
    grads = module.backward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))
    assert len(grads) == 2
    with_bias = load(Conv2d(kernel_size=2))
    assert list(inspect.signature(with_bias.backward).parameters) == ["x", "w", "b", "grad_out"]


# -- the source: vectorised, documented, deterministic, lint-clean --------------------------

#: What a generated module's Python loops may run over: kernel offsets, phases of the
#: padded input, blocks of grid positions, and the argument check's axes -- never
#: samples, channels or single positions (the finiteness check loops over its few arguments).
ALLOWED_LOOPS = {
    "KERNEL_OFFSETS", "OFFSET_READS", "PHASES", "enumerate(PHASES)", "range(len(PHASES))",
    "enumerate(reads)", "reads", "enumerate(shifts)", "members", "enumerate(members)", "meets",
    "enumerate(meets)", "range(0, length, chunk)", "range(0, positions, chunk)",
    "range(0, n, samples)", "range(0, out_height, block_rows)", "enumerate(shape)", "shape",
    "boxes", "arrays", "range(0, rows, block_rows)", "enumerate(phase_reads)",
    "zip(reads, grad_w_phases, strict=True)",
}


@pytest.mark.parametrize("strategy", ["im2col", "transposed", "pointwise"])
def test_loops_run_over_offsets_phases_and_blocks_only(strategy):
    layer = Conv2d(in_channels=4, out_channels=4, kernel_size=1 if strategy == "pointwise" else 3,
                   groups=2)
    tree = ast.parse(generate(layer, strategy=strategy))
    loops = [node for node in ast.walk(tree) if isinstance(node, (ast.For, ast.While,
                                                                 ast.comprehension))]
    iterated = {ast.unparse(loop.iter) for loop in loops}
    assert iterated <= ALLOWED_LOOPS
    assert {"enumerate(shape)", "shape"} <= iterated  # the argument check
    if strategy != "pointwise":
        assert "range(0, n, samples)" in iterated  # forward's blocks


def test_products_are_matmul_and_only_numpy_is_imported():
    source = generate(Conv2d(kernel_size=3))
    assert "einsum" not in source and "@" in source
    imports = [node for node in ast.walk(ast.parse(source))
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [alias.name for node in imports for alias in node.names] == ["numpy"]


def test_kernel_offset_table_is_baked_from_the_plan():
    layer = Conv2d(kernel_size=(2, 3), stride=(3, 2), dilation=(2, 1), padding=(1, 0, 0, 2))
    module = load(layer)
    # docs/notation.md: offset (m, k) reads xp[.., i*sh + m*dh, j*sw + k*dw]
    assert module.KERNEL_OFFSETS == tuple((m, k, 2 * m, k) for m in range(2) for k in range(3))
    # ... which is row i + (2*m) // 3 of the row phase (2*m) % 3, column j + k // 2 of
    # the column phase k % 2
    phases = {(2 * m % 3, k % 2) for m in range(2) for k in range(3)}
    assert module.PHASES == tuple(sorted(phases))
    assert module.OFFSET_READS == tuple(
        (m, k, module.PHASES.index((2 * m % 3, k % 2)), 2 * m // 3, k // 2)
        for m in range(2) for k in range(3))
    assert (module.ROW_STEP, module.COL_STEP) == (3, 2)
    assert (module.TOP, module.BOTTOM, module.LEFT, module.RIGHT) == (1, 0, 0, 2)


def test_docstring_names_layer_formulas_and_command():
    layer = Conv2d(in_channels=4, out_channels=2, kernel_size=3, stride=2, padding=1,
                   dilation=2, groups=2)
    doc = load(layer).__doc__
    assert doc.startswith(layer.describe())
    assert "do not edit" in doc
    assert "symbackprop generate conv2d --in-channels 4 --out-channels 2 --kernel 3" in doc
    assert "z[n, o, i, j]     = b[o] + sum_{c,m,k} w[o, c, m, k] * xp[n, c', 2*i + 2*m, " \
           "2*j + 2*k]" in doc
    assert "c' = 2*(o // 1) + c" not in doc and "c' = 2*o + c" in doc
    assert "dL/db[o]          = sum_{n,i,j} g[n, o, i, j]" in doc


def _command_from_docstring(doc):
    lines = doc.split("Regenerate with\n\n", 1)[1].split("\n\n", 1)[0]
    return lines.replace("\\\n", " ").split()


def test_regenerate_command_in_docstring_reproduces_the_file(tmp_path, capsys):
    layer = Conv2d(in_channels=6, out_channels=3, kernel_size=(3, 1), stride=(1, 2),
                   padding=(0, 1, 2, 1), dilation=(2, 3), groups=3, bias=False)
    source = generate(layer)
    words = _command_from_docstring(load(layer).__doc__)
    assert words[:2] == ["symbackprop", "generate"] and words == regenerate_command(layer)
    assert main([*words[1:], "-o", str(tmp_path)]) == 0
    path = tmp_path / module_filename(layer)
    assert capsys.readouterr().out.strip() == str(path)
    assert path.read_text() == source


def test_generation_is_deterministic_across_processes():
    layer = Conv2d(in_channels=4, out_channels=4, kernel_size=(2, 3), padding=(0, 1, 1, 0),
                   groups=2)
    code = ("import sys; from symbackprop import Conv2d, generate; "
            f"sys.stdout.write(generate({layer!r}))")
    outputs = set()
    for seed in ("1", "2"):
        environment = dict(os.environ, PYTHONHASHSEED=seed)
        outputs.add(subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment,
                                   capture_output=True, text=True, check=True).stdout)
    assert outputs == {generate(layer)}


@pytest.mark.parametrize("layer", [
    Conv2d(),
    Conv2d(in_channels=128, out_channels=128, kernel_size=(3, 2), stride=(1, 2),
           padding=(0, 1, 2, 1), dilation=(2, 3), groups=128, bias=False),
    Conv2d(in_channels=6, out_channels=9, kernel_size=5, stride=3, padding=(3, 2), groups=3),
], ids=["default", "everything", "grouped"])
def test_generated_source_is_ruff_clean(layer):
    assert ruff_problems(generate(layer)) == ""


# -- naming, files, loading, command line -------------------------------------------

@st.composite
def layers(draw):
    groups = draw(st.integers(1, 3))
    return Conv2d(in_channels=groups * draw(st.integers(1, 3)),
                  out_channels=groups * draw(st.integers(1, 3)),
                  kernel_size=(draw(st.integers(1, 5)), draw(st.integers(1, 5))),
                  stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                  padding=tuple(draw(st.integers(0, 3)) for _ in range(4)),
                  dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                  groups=groups, bias=draw(st.booleans()))


@settings(max_examples=200)
@given(layers(), layers())
def test_module_names_tell_layers_apart(first, second):
    assert (module_name(first) == module_name(second)) == (first == second)
    assert module_name(first).isidentifier()


@settings(max_examples=100)
@given(layers())
def test_command_line_round_trip(layer):
    arguments = build_parser().parse_args(["generate", *layer_arguments(layer)])
    assert layer_from_args(arguments) == layer


def test_write_module_and_load_from_folder(tmp_path):
    layer = Conv2d(in_channels=2, out_channels=2, kernel_size=2, groups=2)
    path = write_module(layer, tmp_path / "new" / "folder")
    assert path == tmp_path / "new" / "folder" / f"{module_name(layer)}.py"
    assert path.read_text() == generate(layer)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary left
    module = load(layer, tmp_path / "elsewhere")
    assert module.__file__ == str(tmp_path / "elsewhere" / path.name)
    assert inspect.getsource(module.forward).startswith("def forward(x, w, b):")


def test_load_in_memory_is_cached_and_inspectable():
    layer = Conv2d(kernel_size=3, stride=2)
    module = load(layer)
    assert load(layer) is module
    assert module.__name__ == module_name(layer)
    assert inspect.getsource(module._backward).startswith("def _backward(x, w, b, grad_out):")
    with pytest.raises(ValueError) as caught:
        module.forward(np.zeros((1, 2, 5, 5)), np.zeros((1, 1, 3, 3)), np.zeros(1))
    frames = [str(entry.path) for entry in caught.traceback]
    assert any(module_name(layer) in name for name in frames)


def test_unwritable_folder_is_a_clear_error_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    layer = Conv2d(kernel_size=2)
    for folder in (blocker, blocker / "below"):
        with pytest.raises(OSError, match="a-file"):
            write_module(layer, folder)
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    layer = Conv2d(kernel_size=2)
    target = tmp_path / module_filename(layer)
    target.write_text("old contents")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="No space"):
        write_module(layer, tmp_path)
    assert target.read_text() == "old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_cli_generate_prints_the_path(tmp_path, capsys):
    arguments = ["generate", "conv2d", "--kernel", "3", "--stride", "2", "--padding", "1"]
    assert main([*arguments, "-o", str(tmp_path)]) == 0
    layer = Conv2d(kernel_size=3, stride=2, padding=1)
    path = tmp_path / "conv2d_in1_out1_k3_s2_p1.py"
    assert capsys.readouterr().out == f"{path}\n"
    assert path.read_text() == generate(layer)
    assert main([*arguments, "--print"]) == 0
    assert capsys.readouterr().out == generate(layer)


def test_cli_generate_default_folder_and_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "conv2d", "--kernel", "2"]) == 0
    written = os.path.join("generated", "conv2d_in1_out1_k2_s1_p0.py")
    assert capsys.readouterr().out == f"{written}\n"
    assert (tmp_path / "generated" / "conv2d_in1_out1_k2_s1_p0.py").is_file()
    (tmp_path / "file").write_text("")
    assert main(["generate", "conv2d", "-o", "file"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("symbackprop generate: error:") and "'file' is not a folder" in error
    assert main(["generate", "conv2d", "--kernel", "5", "--groups", "2"]) == 2
    assert "groups must divide" in capsys.readouterr().err


def test_cli_runs_as_a_new_user_would(tmp_path):
    """``python -m symbackprop generate ...`` in a fresh process, then import the file."""
    result = subprocess.run(
        [sys.executable, "-m", "symbackprop", "generate", "conv2d", "--kernel", "3", "--stride",
         "2", "--padding", "1", "-o", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    spec = importlib.util.spec_from_file_location("fresh", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    z = module.forward(np.ones((2, 1, 5, 5), np.float32), np.ones((1, 1, 3, 3), np.float32),
                       np.zeros(1, np.float32))
    assert z.dtype == np.float32 and z.shape == (2, 1, 3, 3)
    assert z[0, 0, 1, 1] == 9 and z[0, 0, 0, 0] == 4  # a corner meets 4 real inputs


def test_generate_refuses_unknown_layers():
    with pytest.raises(TypeError, match="cannot generate code for a str"):
        generate("conv")


def test_top_level_api():
    layer = Conv2d(kernel_size=2, padding=1)
    assert sbp.generate(layer) == generate(layer)
    assert sbp.load(layer) is load(layer)


def test_benchmark_script_runs(capsys):
    spec = importlib.util.spec_from_file_location("bench_codegen",
                                                  REPO / "benchmarks" / "bench_codegen.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick"]) == 0
    rows = capsys.readouterr().out.splitlines()[3:]
    assert len(rows) == len(bench.QUICK_SHAPES)
    assert all(float(row.split()[-1]) > 0 for row in rows)


def test_conv2d_benchmark_harness_runs(tmp_path, capsys):
    """A smoke run of benchmarks/bench_conv2d.py: one small shape, one round, its JSON."""
    import json

    spec = importlib.util.spec_from_file_location("bench_conv2d",
                                                  REPO / "benchmarks" / "bench_conv2d.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    target = tmp_path / "conv2d.json"
    assert bench.main(["--shapes", "A", "--dtypes", "float32", "--rounds", "1", "--quick",
                       "--json", str(target)]) == 0
    result = json.loads(target.read_text())
    (row,) = result["rows"]
    assert row["shape"] == "A" and row["strategy"] == "im2col"
    assert row["backward"] > 0 and row["gemm_backward"] > 0 and row["rounds"] == 1
    assert "load_average_before" in result["machine"]
    assert "backward_vs_gemm" in capsys.readouterr().out.replace("bwd/GEMM", "backward_vs_gemm")
