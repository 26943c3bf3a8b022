"""Generated modules for pooling, activations, flatten, linear and chains.

Truth from outside the generator: the hand-written reference (tests/reference.py,
through layer_reference.py), SymPy's derivation (the module's own statements run
on arrays of symbols, or the derivation evaluated numerically) and finite
differences.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import sympy
from conftest import CHAIN_GRID, LAYER_GRID, REPO, evaluate
from hypothesis import given
from hypothesis import strategies as st
from layer_reference import (
    backward,
    chain_backward,
    chain_forward,
    forward,
    random_parameters,
)
from reference import numerical_gradient
from ruff_check import ruff_problems

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.core.layers import Sequential, layer_from_spec
from symbackprop.core.naming import module_name
from symbackprop.kinds import (
    AvgPool2d,
    Conv1d,
    Conv2d,
    Conv3d,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
)
from symbackprop.kinds.pool2d.numpy import (
    check_pool_plan,
    pool_plan,
    read_pool_plan,
    representative_pool_instance,
)
from symbackprop.render.codegen import PlanError, generate, load, module_filename

DTYPES = [np.float32, np.float64]
LAYER_IDS = [case[0] for case in LAYER_GRID]
CHAIN_IDS = [case[0] for case in CHAIN_GRID]


def grid_layer(case):
    _, spec, input_size, batch = case
    layer = layer_from_spec(spec)
    return layer, layer.input_shape(input_size, batch)


def chain_of(case):
    _, specs, input_size, batch = case
    chain = Sequential.from_spec(specs)
    return chain, chain.input_shape(input_size, batch)


def tolerance(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


# -- single layers: numbers -----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", LAYER_GRID, ids=LAYER_IDS)
def test_layer_module_matches_reference(case, dtype):
    layer, shape = grid_layer(case)
    module = load(layer)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    if layer.kind == "maxpool2d":  # many ties: the first maximum must win
        x = rng.integers(0, 3, size=shape).astype(dtype)
    params = {name: value.astype(dtype) for name, value in random_parameters(layer, rng).items()}
    z = module.forward(x, *params.values())
    want_z = forward(layer, x, params)
    assert z.dtype == dtype and z.shape == want_z.shape
    np.testing.assert_allclose(z, want_z, **tolerance(dtype))
    grad_out = rng.standard_normal(z.shape).astype(dtype)
    grads = module.backward(x, *params.values(), grad_out)
    want_x, want_params = backward(layer, x, params, grad_out)
    assert isinstance(grads, tuple) and len(grads) == 1 + len(params)
    for got, want in zip(grads, [want_x, *want_params.values()], strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **tolerance(dtype))


@pytest.mark.parametrize("case", LAYER_GRID, ids=LAYER_IDS)
def test_layer_module_equals_the_derivation(case):
    """The module on numbers equals SymPy's derived z and gradients evaluated on them;
    for linear layers, flatten and average pooling its own statements run on symbols
    give the derived expressions exactly."""
    layer, shape = grid_layer(case)
    _, _, input_size, batch = case
    derivation = sbp.derive(layer, input_size, batch)
    module = load(layer)
    rng = np.random.default_rng(2)
    values = {"x": rng.standard_normal(shape), "g": rng.standard_normal(derivation.output_shape)}
    values.update(random_parameters(layer, rng))
    params = [values[name] for name in layer.parameter_names]
    np.testing.assert_allclose(module.forward(values["x"], *params), evaluate(derivation.z, values),
                               atol=1e-12)
    for got, want in zip(module.backward(values["x"], *params, values["g"]),
                         derivation.grads.values(), strict=True):
        np.testing.assert_allclose(got, evaluate(want, values), atol=1e-12)
    if layer.kind in ("linear", "flatten", "avgpool2d"):
        symbols = [symbolic(derivation.x), *(symbolic(p) for p in derivation.params.values())]
        assert_same(module._forward(*symbols), derivation.z)
        for got, want in zip(module._backward(*symbols, symbolic(derivation.g)),
                             derivation.grads.values(), strict=True):
            assert_same(got, want)


def symbolic(array):
    grid = np.empty(array.shape, dtype=object)
    grid.reshape(-1)[:] = sympy.flatten(array.tolist())
    return grid


def assert_same(got, want):
    assert got.shape == want.shape
    for value, expected in zip(np.asarray(got).flat, sympy.flatten(want.tolist()), strict=True):
        assert sympy.expand(value - expected) == 0, (value, expected)


@pytest.mark.parametrize("layer, shape", [
    (MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 6)),
    (AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (1, 2, 6, 7)),
    (AvgPool2d(2, stride=3, padding=1), (1, 1, 7, 8)),
    (LeakyReLU(0.2), (3, 4)),
    (Sigmoid(), (2, 3, 2)),
    (Linear(12, 3), (2, 3, 2, 2)),
], ids=str)
def test_layer_finite_differences(layer, shape):
    module = load(layer)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    params = list(random_parameters(layer, rng).values())
    grad_out = rng.standard_normal(module.forward(x, *params).shape)

    def loss(*arrays):
        return float(np.sum(grad_out * module.forward(*arrays)))

    arrays = [x, *params]
    for position, got in enumerate(module.backward(x, *params, grad_out)):
        np.testing.assert_allclose(got, numerical_gradient(loss, arrays, position), atol=1e-6)


def test_activations_at_zero_follow_the_notes():
    x = np.array([-1.0, 0.0, 2.0], dtype=np.float32)
    ones = np.ones_like(x)
    assert load(ReLU()).backward(x, ones)[0].tolist() == [0, 0, 1]
    assert load(LeakyReLU(0.25)).backward(x, ones)[0].tolist() == [0.25, 0.25, 1]
    big = np.array([-1000.0, 1000.0])
    assert load(Sigmoid()).forward(big).tolist() == [0.0, 1.0]  # no overflow warning
    assert load(Tanh()).backward(np.zeros(2), np.ones(2))[0].tolist() == [1, 1]


def test_avgpool_tiled_backward_is_the_kron_form():
    module = load(AvgPool2d(2))
    grad_out = np.arange(4.0).reshape(1, 1, 2, 2)
    (grad_x,) = module.backward(np.zeros((1, 1, 5, 4)), grad_out)
    expected = np.zeros((5, 4))
    expected[:4] = np.kron(grad_out[0, 0], np.ones((2, 2))) / 4
    np.testing.assert_array_equal(grad_x[0, 0], expected)


# -- the pooling plan -----------------------------------------------------------------

@pytest.mark.parametrize("case", [case for case in LAYER_GRID if "pool" in case[0]],
                         ids=lambda case: case[0])
def test_pool_plan_follows_spec(case):
    """Read off SymPy's windows: offset (m, k) of window (i, j) is xp[.., i*sh + m, j*sw + k]."""
    layer, _ = grid_layer(case)
    plan = pool_plan(layer)
    kernel_h, kernel_w = layer.kernel_size
    assert [offset.window_offset for offset in plan.offsets] == \
        [(m, k) for m in range(kernel_h) for k in range(kernel_w)]
    for offset in plan.offsets:
        m, k = offset.window_offset
        assert (offset.first_row, offset.row_step, offset.first_col, offset.col_step) == \
            (m, layer.stride[0], k, layer.stride[1])
    height, width = representative_pool_instance(layer)
    assert min(layer.output_size((height, width))) >= 2


def test_pool_plan_check_fails_for_a_wrong_slice():
    import dataclasses

    plan = pool_plan(MaxPool2d(2, stride=1))
    first_row, first_col = plan.offsets[1].first
    wrong = dataclasses.replace(plan.offsets[1], first=(first_row, first_col + 1))
    with pytest.raises(PlanError, match="do not reproduce"):
        check_pool_plan(dataclasses.replace(plan, offsets=(plan.offsets[0], wrong,
                                                           *plan.offsets[2:])))
    # Reading needs two windows free of padding along each axis.
    with pytest.raises(PlanError, match="does not fix a slice"):
        read_pool_plan(sbp.derive(MaxPool2d(2), (2, 4)))


_SAMPLES = [-30.0, -2.5, -0.5, -1e-3, 0.0, 1e-3, 0.5, 2.5, 30.0]


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.2), Sigmoid(), Tanh()],
                         ids=lambda layer: layer.kind)
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_code_printed_from_the_row_equals_sympy(layer, dtype):
    """f and f' of the module (printed from the row) against SymPy's own numbers: f at the
    samples and f' as SymPy differentiates f, at 0 the value the notes fix (the row's)."""
    from symbackprop.kinds.activation.rules import ACTIVATIONS

    rule = ACTIVATIONS[layer.kind]
    net = sympy.Symbol("net", real=True)
    constants = [sympy.Float(c) for c in layer.constants]
    f = rule.value(net, *constants)
    module = load(layer)
    x = np.array(_SAMPLES, dtype=dtype)
    z = module.forward(x)
    (grad,) = module.backward(x, np.ones_like(x))
    assert z.dtype == dtype and grad.dtype == dtype
    want = [float(f.subs(net, sample)) for sample in _SAMPLES]
    want_derivative = [float(sympy.diff(f, net).subs(net, sample)) if sample != 0 else
                       float(rule.derivative(lambda v: rule.value(v, *constants),
                                             sympy.Integer(0), *constants))
                       for sample in _SAMPLES]
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(z, want, **tol)
    np.testing.assert_allclose(grad, want_derivative, **tol)
    with np.errstate(over="raise", invalid="raise"):  # no overflow: the sigmoid's exp(-x)
        module.forward(np.array([-1e4, 1e4], dtype=dtype))
    with np.errstate(invalid="ignore"):
        assert np.isnan(module.forward(np.array([np.nan], dtype=dtype))).all()  # as f(NaN)


# -- arguments --------------------------------------------------------------------------

@pytest.mark.parametrize("layer, args, error, words", [
    (MaxPool2d(2), [np.ones((1, 4, 4))], ValueError, "x must have 4 dimensions"),
    (MaxPool2d(3), [np.ones((1, 1, 2, 5))], ValueError, "too small for this layer"),
    (AvgPool2d(2), [np.ones((1, 1, 4, 4), dtype=int)], TypeError, "floating-point"),
    (Linear(4, 2), [np.ones((2, 5)), np.ones((2, 4)), np.ones(2)], ValueError,
     "x must have shape (N, 4)"),
    (Linear(4, 2), [np.ones((2, 4)), np.ones((2, 4), np.float32), np.ones(2)], TypeError,
     "w must have the dtype of x"),
    (Linear(4, 2), [np.ones((2, 1, 3, 3)), np.ones((2, 4)), np.ones(2)], ValueError,
     "4 features per sample"),
], ids=["rank", "too-small", "dtype", "features", "param-dtype", "maps"])
def test_bad_arguments_are_named(layer, args, error, words):
    with pytest.raises(error) as info:
        load(layer).forward(*args)
    assert words in str(info.value)


def test_bad_grad_out_is_named():
    with pytest.raises(ValueError, match=r"grad_out must have shape \(1, 1, 2, 2\), the shape "
                                         r"of z = forward\(x\)"):
        load(MaxPool2d(2)).backward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 3)))
    with pytest.raises(ValueError, match="grad_out must have shape"):
        load(ReLU()).backward(np.ones((2, 3)), np.ones((3, 2)))


def test_pooling_loops_only_over_window_offsets():
    for layer in (MaxPool2d(3, stride=2), AvgPool2d(2, padding=1, count_include_pad=False)):
        tree = ast.parse(generate(layer))
        loops = [ast.unparse(node.iter) for node in ast.walk(tree)
                 if isinstance(node, (ast.For, ast.comprehension))]
        assert {loop for loop in loops if "WINDOW_OFFSETS" not in loop} <= \
            {"enumerate(shape)", "shape", "slices"}


# -- chains -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", CHAIN_GRID, ids=CHAIN_IDS)
def test_chain_module_matches_reference(case, dtype):
    chain, shape = chain_of(case)
    module = load(chain)
    rng = np.random.default_rng(4)
    params = [{name: value.astype(dtype) for name, value in random_parameters(layer, rng).items()}
              for layer in chain.layers]
    flat = [value for layer_params in params for value in layer_params.values()]
    x = rng.standard_normal(shape).astype(dtype)
    outputs = chain_forward(chain.layers, x, params)
    assert module.output_shapes(x.shape) == [output.shape for output in outputs]
    z = module.forward(x, *flat)
    assert z.dtype == dtype
    np.testing.assert_allclose(z, outputs[-1], **tolerance(dtype))
    grad_out = rng.standard_normal(z.shape).astype(dtype)
    deltas, param_grads = chain_backward(chain.layers, x, params, grad_out)
    want = [deltas[0], *(value for grads in param_grads for value in grads.values())]
    got = module.backward(x, *flat, grad_out)
    assert len(got) == len(want) == 1 + len(chain.parameter_names)
    for value, expected in zip(got, want, strict=True):
        assert value.dtype == dtype and value.shape == expected.shape
        np.testing.assert_allclose(value, expected, **tolerance(dtype))


def test_chain_module_finite_differences():
    chain, shape = chain_of(CHAIN_GRID[3])  # six layers
    module = load(chain)
    rng = np.random.default_rng(5)
    params = [value for layer in chain.layers for value in random_parameters(layer, rng).values()]
    x = rng.standard_normal(shape)
    grad_out = rng.standard_normal(module.forward(x, *params).shape)

    def loss(*arrays):
        return float(np.sum(grad_out * module.forward(*arrays)))

    arrays = [x, *params]
    for position, got in enumerate(module.backward(x, *params, grad_out)):
        np.testing.assert_allclose(got, numerical_gradient(loss, arrays, position), atol=1e-6)


def test_chain_arguments_and_shapes_are_checked():
    chain = Sequential(Conv2d(1, 2, kernel_size=3), ReLU(), MaxPool2d(2), Linear(8, 3))
    module = load(chain)
    params = [np.ones(shape) for shape in chain.parameter_shapes.values()]
    with pytest.raises(ValueError, match=r"layer 4 \(Linear 8->3\) takes 8 features per sample"):
        module.forward(np.ones((1, 1, 8, 8)), *params)
    with pytest.raises(ValueError, match=r"too small for this chain: layer 3 \(MaxPool2d 2x2"):
        module.forward(np.ones((1, 1, 3, 3)), *params)
    with pytest.raises(ValueError, match=r"w4 must have shape \(3, 8\)"):
        module.forward(np.ones((1, 1, 6, 6)), *params[:2], np.ones((8, 3)), params[3])
    with pytest.raises(ValueError, match=r"x must have shape \(N, 1, H, W\)"):
        module.forward(np.ones((1, 2, 6, 6)), *params)
    with pytest.raises(ValueError, match=r"grad_out must have shape \(1, 3\)"):
        module.backward(np.ones((1, 1, 6, 6)), *params, np.ones((1, 4)))
    assert module.output_shapes((5, 1, 6, 6))[-1] == (5, 3)


def test_chain_generation_refuses_layers_that_cannot_follow():
    with pytest.raises(ValueError, match=r"layer 3 \(MaxPool2d 2x2.*takes \(N, C, H, W\)"):
        generate(Sequential(Conv2d(kernel_size=2), Flatten(), MaxPool2d(2)))
    with pytest.raises(ValueError, match="takes in_channels = 3 channels, but the layer before"):
        generate(Sequential(Conv2d(1, 2, kernel_size=2), ReLU(), Conv2d(3, 1, kernel_size=2)))


def test_chain_docstring_walks_through_the_error_terms():
    chain = Sequential(Conv2d(1, 2, kernel_size=3), ReLU(), MaxPool2d(2), Flatten(), Linear(8, 3))
    doc = load(chain).__doc__
    assert doc.startswith("Sequential: Conv2d 1->2, kernel 3x3")
    for line in ["    delta4 = w5^T delta5 (delta5 @ w5); dL/dw5 = delta5^T a4, dL/db5 = sum of "
                 "delta5",
                 "    delta2 = upsample(delta3): each window's delta to its first maximum",
                 "    delta1 = delta2 * f'(a1)",
                 "    delta1 = upsample(delta3) * f'(a1)   (layers 2 and 3)",
                 "    w5: (3, 8)"]:
        assert line in doc, line


def _spec_from_docstring(doc):
    command = doc.split("Regenerate with\n\n", 1)[1].split("\n\n", 1)[0]
    assert command.lstrip().startswith("symbackprop generate sequential --spec '[")
    return json.loads(command.split("--spec '", 1)[1].rsplit("'", 1)[0])


def test_regenerate_commands_reproduce_the_files(tmp_path, capsys):
    chain = Sequential(Conv2d(1, 4, kernel_size=3, stride=2, padding=1, bias=False), LeakyReLU(0.1),
                       AvgPool2d(3, stride=1, padding=1, count_include_pad=False), Flatten(),
                       Linear(16, 2))
    doc = load(chain).__doc__
    assert Sequential.from_spec(_spec_from_docstring(doc)) == chain
    command = doc.split("Regenerate with\n\n", 1)[1].split("\n\n", 1)[0]
    result = subprocess.run(["bash", "-c", command.replace("symbackprop", f"{sys.executable} -m "
                             f"symbackprop", 1) + f" -o {tmp_path}"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / module_filename(chain)).read_text() == generate(chain)
    for layer in (MaxPool2d(3, stride=2, padding=(1, 0)), AvgPool2d(2, count_include_pad=False),
                  LeakyReLU(0.2), Linear(5, 2, bias=False), Flatten()):
        words = load(layer).__doc__.split("Regenerate with\n\n", 1)[1].split("\n\n")[0].split()
        assert main([*words[1:], "-o", str(tmp_path)]) == 0
        assert (tmp_path / module_filename(layer)).read_text() == generate(layer)
    capsys.readouterr()


@pytest.mark.parametrize("layer", [
    MaxPool2d((2, 3), stride=(1, 2), padding=(1, 0, 0, 1)),
    AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
    LeakyReLU(0.05), Sigmoid(), Flatten(), Linear(7, 3, bias=False),
    Sequential.from_spec(CHAIN_GRID[3][1]), Sequential.from_spec(CHAIN_GRID[2][1]),
    Sequential(ReLU(), MaxPool2d(2), Tanh()),
], ids=lambda layer: module_name(layer))
def test_generated_source_is_ruff_clean(layer):
    assert ruff_problems(generate(layer)) == ""


def test_generation_is_deterministic_across_processes():
    spec = json.dumps(CHAIN_GRID[0][1])
    code = ("import sys; from symbackprop import generate; from symbackprop.core.layers import "
            f"Sequential; sys.stdout.write(generate(Sequential.from_spec({spec})))")
    outputs = set()
    for seed in ("1", "2"):
        environment = dict(os.environ, PYTHONHASHSEED=seed)
        outputs.add(subprocess.run([sys.executable, "-c", code], cwd=REPO, env=environment,
                                   capture_output=True, text=True, check=True).stdout)
    assert outputs == {generate(Sequential.from_spec(CHAIN_GRID[0][1]))}


def test_module_names_tell_layers_apart():
    layers = [MaxPool2d(2), MaxPool2d(2, stride=1), AvgPool2d(2), AvgPool2d(2, padding=1),
              AvgPool2d(2, padding=1, count_include_pad=False), LeakyReLU(0.1), LeakyReLU(0.2),
              Linear(3, 2), Linear(3, 2, bias=False), Sequential(ReLU(), Tanh()),
              Sequential(Tanh(), ReLU()), Sequential(Linear(3, 2)), Sequential(Linear(3, 1))]
    names = [module_name(layer) for layer in layers]
    assert len(set(names)) == len(names)
    assert all(name.isidentifier() for name in names)
    assert names[0] == "maxpool2d_k2_s2_p0" and names[5] == "leakyrelu_a0p1"


def test_write_and_import_from_folder(tmp_path):
    chain = Sequential.from_spec(CHAIN_GRID[2][1])
    module = load(chain, folder=tmp_path)
    spec = importlib.util.spec_from_file_location("again", tmp_path / module_filename(chain))
    again = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(again)
    x = np.ones((2, 4))
    params = [np.full(shape, 0.5) for shape in chain.parameter_shapes.values()]
    np.testing.assert_array_equal(module.forward(x, *params), again.forward(x, *params))


# -- the committed catalog: pooling, activations, linear and chains -------------------------

def _catalog_entries():
    from symbackprop.catalog import CATALOG

    # the convolutions' modules are checked against their own loop references; the losses
    # take targets: tests/test_softmax_loss_kinds.py runs their committed files; a layer
    # reading inputs besides x and its parameters (a dropout mask) has its own test
    return [entry for entry in CATALOG if not isinstance(
        entry.layer, (Conv1d, Conv2d, Conv3d, sbp.CrossEntropyLoss, sbp.MSELoss))
        and not getattr(entry.layer, "constant_names", ())]


def _sample_input(layer, rng):
    """An input the layer or chain accepts (chains ending in Linear fix the size)."""
    if isinstance(layer, Sequential):
        first = layer.layers[0]
        if isinstance(first, Linear):
            return rng.standard_normal((3, first.in_features)).astype(np.float32)
        for size in range(4, 40):
            try:
                layer.output_shape((size, size))
            except ValueError:
                continue
            return rng.standard_normal(layer.input_shape((size, size), 3)).astype(np.float32)
    if isinstance(layer, Linear):
        return rng.standard_normal((3, layer.in_features)).astype(np.float32)
    if getattr(layer, "spatial_dims", 2) != 2:  # 1-D and 3-D pooling
        spatial = {1: (7,), 3: (5, 7, 6)}[layer.spatial_dims]
        return rng.standard_normal((3, 2, *spatial)).astype(np.float32)
    if hasattr(layer, "in_channels"):  # a layer that fixes its channels (any number of axes)
        return rng.standard_normal(layer.input_shape(4, 3)).astype(np.float32)
    for size in (None, (2, 7, 6), (7, 6)):  # the layer's own default first (normalisations)
        try:
            return rng.standard_normal(layer.input_shape(size, 3)).astype(np.float32)
        except (ValueError, TypeError):
            continue
    return rng.standard_normal((3, 2, 7, 6)).astype(np.float32)


@pytest.mark.parametrize("entry", _catalog_entries(),
                         ids=lambda entry: module_filename(entry.layer))
def test_committed_catalog_module_matches_reference(entry):
    """Import the committed file itself and compare it with the reference chain."""
    path = REPO / "generated" / module_filename(entry.layer)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    layers = entry.layer.layers if isinstance(entry.layer, Sequential) else (entry.layer,)
    rng = np.random.default_rng(7)
    x = _sample_input(entry.layer, rng)
    params = [{name: value.astype(np.float32) for name, value in
               random_parameters(layer, rng).items()} for layer in layers]
    flat = [value for layer_params in params for value in layer_params.values()]
    z = module.forward(x, *flat)
    outputs = chain_forward(layers, x, params)
    np.testing.assert_allclose(z, outputs[-1], rtol=1e-3, atol=1e-4)
    grad_out = rng.standard_normal(z.shape).astype(np.float32)
    deltas, param_grads = chain_backward(layers, x, params, grad_out)
    want = [deltas[0], *(value for grads in param_grads for value in grads.values())]
    # float32 rounding grows with the values of deep chains; a gradient that is 0 in exact
    # arithmetic (a bias before batch norm) is float32 noise on the scale of the others
    scale = max(float(np.abs(expected).max()) for expected in want)
    for got, expected in zip(module.backward(x, *flat, grad_out), want, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-3,
                                   atol=1e-5 * max(np.abs(expected).max(), 1e-2 * scale))


# -- random pooling layers (HYPOTHESIS_PROFILE=thorough runs many more) ----------------------

@st.composite
def pooling_cases(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    # PyTorch's rule: padding at most half the window
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    average = draw(st.booleans())
    layer = AvgPool2d(kernel, stride, padding, count_include_pad=draw(st.booleans())) \
        if average else MaxPool2d(kernel, stride, padding)
    height = draw(st.integers(max(kernel[0] - 2 * padding[0], 1), 9))
    width = draw(st.integers(max(kernel[1] - 2 * padding[1], 1), 9))
    return layer, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), height, width)


@given(pooling_cases(), st.integers(0, 2**16))
def test_random_pooling_layers_match_reference(case, seed):
    layer, shape = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape).astype(np.float64)  # ties on purpose
    module = load(layer)
    z = module.forward(x)
    np.testing.assert_allclose(z, forward(layer, x, {}), atol=1e-12)
    grad_out = rng.standard_normal(z.shape)
    np.testing.assert_allclose(module.backward(x, grad_out)[0],
                               backward(layer, x, {}, grad_out)[0], atol=1e-12)


def float_constant_layers():
    """Every grid layer with a float parameter, as ``(layer, field name)``."""
    import dataclasses

    found = []
    for _, spec, _, _ in LAYER_GRID:
        layer = layer_from_spec(spec)
        for field in dataclasses.fields(layer):
            if isinstance(getattr(layer, field.name), float):
                found.append((layer, field.name))
    return found


def test_distinct_float_constants_give_distinct_module_names():
    """Issue 11: 0.1 and 0.10000000001 wrote the same file; neighbours must not either."""
    pairs = float_constant_layers()
    assert {layer.kind for layer, _ in pairs} >= {"leakyrelu"}
    for layer, field in pairs:
        values = [0.1, 0.10000000001, float(np.nextafter(0.1, 1)), 1e-5, 1.0000001e-5, 0.3,
                  1 / 3, 2.0, 1e-300]
        variants = [layer.replace(**{field: value}) for value in values]
        names = [module_name(variant) for variant in variants]
        assert len(set(names)) == len(names), names
        assert all(name.isidentifier() for name in names)
        chains = [module_name(Sequential(variant, ReLU())) for variant in variants]
        assert len(set(chains)) == len(chains)
    assert module_name(LeakyReLU(0.01)) == "leakyrelu_a0p01"


def test_cli_writes_two_files_for_two_slopes(tmp_path, capsys):
    for slope in ("0.1", "0.10000000001"):
        assert main(["generate", "leakyrelu", "--negative-slope", slope, "-o",
                     str(tmp_path)]) == 0
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["leakyrelu_a0p1.py", "leakyrelu_a0p10000000001.py"]
    assert "ALPHA = 0.10000000001" in (tmp_path / files[1]).read_text()
