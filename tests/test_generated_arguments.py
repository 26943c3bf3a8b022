"""Generated modules of every kind: the dtypes they take, an empty batch, fresh arrays.

The argument check says "float32 or float64" and must mean it (float16 was accepted);
a batch of 0 works for every kind, strategy and chain (Flatten's forward failed);
no gradient is a view of an argument (Flatten's backward returned one of grad_out).
"""

from __future__ import annotations

import layer_reference
import numpy as np
import pytest
from conftest import CHAIN_GRID, CONV_GRID, LAYER_GRID

from symbackprop.core.layers import Sequential, layer_from_spec
from symbackprop.kinds import Conv2d
from symbackprop.kinds.conv2d.numpy import STRATEGIES, choose_strategy
from symbackprop.render.codegen import load


def every_module():
    """``(id, layer, module, input size)`` for every grid layer, strategy and chain."""
    cases = []
    for name, kwargs, size, _ in CONV_GRID:
        layer = Conv2d(**kwargs)
        for strategy in STRATEGIES:
            if strategy != "pointwise" or choose_strategy(layer) == "pointwise":
                cases.append(pytest.param(layer, strategy, size, id=f"{name}-{strategy}"))
    cases += [pytest.param(layer_from_spec(spec), None, size, id=name)
              for name, spec, size, _ in LAYER_GRID]
    cases += [pytest.param(Sequential.from_spec(specs), None, size, id=name)
              for name, specs, size, _ in CHAIN_GRID]
    return cases


def arguments(layer, size, batch, dtype=np.float64, seed=0):
    """``(x, [parameters...], grad_out)`` of ``dtype`` (grad_out from the reference)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(layer.input_shape(size, max(batch, 1)))
    parts = getattr(layer, "layers", (layer,))
    params = [layer_reference.random_parameters(part, rng) for part in parts]
    output = layer_reference.chain_forward(parts, x, params)[-1]
    flat = [value for part in params for value in part.values()]
    grad_out = rng.standard_normal(output.shape)
    x, grad_out = x[:batch], grad_out[:batch]
    return x.astype(dtype), [value.astype(dtype) for value in flat], grad_out.astype(dtype)


@pytest.mark.parametrize("layer, strategy, size", every_module())
def test_batch_of_zero(layer, strategy, size):
    module = load(layer, strategy=strategy)
    x, params, grad_out = arguments(layer, size, 0)
    z = module.forward(x, *params)
    assert z.shape == grad_out.shape and z.dtype == x.dtype
    grads = module.backward(x, *params, grad_out)
    assert grads[0].shape == x.shape
    for got, param in zip(grads[1:], params, strict=True):
        assert got.shape == param.shape
        np.testing.assert_array_equal(got, 0)  # an empty sum
    if hasattr(module, "_forward_exact"):  # the inf/NaN path too
        np.testing.assert_array_equal(module._forward_exact(x, *params), z)
        for got, want in zip(module._backward_exact(x, *params, grad_out), grads, strict=True):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, np.int32, np.complex128, bool])
@pytest.mark.parametrize("layer, strategy, size", every_module())
def test_only_float32_and_float64_are_taken(layer, strategy, size, dtype):
    if np.dtype(dtype) == np.float64:
        pytest.skip("longdouble is float64 on this machine")
    module = load(layer, strategy=strategy)
    x, params, grad_out = arguments(layer, size, 2)
    calls = [("x", lambda: module.forward(x.astype(dtype), *params)),
             ("grad_out", lambda: module.backward(x, *params, grad_out.astype(dtype)))]
    if params:
        calls.append(("w", lambda: module.forward(x, params[0].astype(dtype), *params[1:])))
    for name, call in calls:
        with pytest.raises(TypeError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith(name) and np.dtype(dtype).name in message, message
        if name == "x":
            assert "float32 or float64" in message


@pytest.mark.parametrize("layer, strategy, size", every_module())
def test_results_are_new_arrays(layer, strategy, size):
    module = load(layer, strategy=strategy)
    x, params, grad_out = arguments(layer, size, 2, dtype=np.float32)
    for got in module.backward(x, *params, grad_out):
        assert got.dtype == np.float32
        for argument in (x, *params, grad_out):
            assert not np.shares_memory(got, argument)


def test_flatten_backward_can_be_changed_in_place():
    module = load(layer_from_spec({"layer": "flatten"}))
    grad_out = np.arange(12.0).reshape(2, 6)
    (grad_x,) = module.backward(np.zeros((2, 1, 2, 3)), grad_out)
    grad_x[...] = -1
    np.testing.assert_array_equal(grad_out, np.arange(12.0).reshape(2, 6))
    assert module.forward(np.zeros((0, 3, 2, 2))).shape == (0, 12)
