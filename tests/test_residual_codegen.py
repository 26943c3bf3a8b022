"""Generated NumPy modules of chains with residual blocks, both styles, against the
hand-written reference (tests/reference_residual.py)."""

from __future__ import annotations

import numpy as np
import pytest
from reference_residual import backward, forward
from test_cli import run

import symbackprop as sbp
from symbackprop.catalog import RESNET_BASIC_BLOCK
from symbackprop.core.layers import Residual, Sequential
from symbackprop.kinds import Conv2d, Flatten, Linear, ReLU, Tanh

STYLES = ("fast", "reference")

# (id, layer, reference network, x shape)
CASES = [
    ("resnet-basic-block", RESNET_BASIC_BLOCK,
     [("residual", [("conv", 1, 1), ("relu",), ("conv", 1, 1)]), ("relu",)], (2, 8, 5, 6)),
    ("mlp-nested", Sequential(Linear(3, 3), Residual([Residual([Linear(3, 3), Tanh()]),
                                                      Linear(3, 3)]), ReLU(), Linear(3, 2)),
     [("linear",), ("residual", [("residual", [("linear",), ("tanh",)]), ("linear",)]),
      ("relu",), ("linear",)], (4, 3)),
    ("block-alone", Residual(Linear(3, 3)), [("residual", [("linear",)])], (2, 3)),
]


def _arguments(layer, shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    params = {name: (rng.standard_normal(s) * 0.5).astype(dtype)
              for name, s in layer.parameter_shapes.items()}
    return x, params


def _nested(network, params, number=0):
    nested = []
    for layer in network:
        if layer[0] == "residual":
            inner, number = _nested(layer[1], params, number)
            nested.append(inner)
            number += 1
            continue
        number += 1
        nested.append({name: params[f"{name}{number}"] for name in ("w", "b")
                       if f"{name}{number}" in params})
    return nested, number


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("layer, network, shape", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_generated_module_matches_the_reference(layer, network, shape, style):
    module = sbp.load(layer, style=style)
    rng = np.random.default_rng(11)
    x, params = _arguments(layer, shape, np.float64, rng)
    nested, _ = _nested(network, params)
    want = forward(network, nested, x)
    np.testing.assert_allclose(module.forward(x, *params.values()), want, atol=1e-10)
    g = rng.standard_normal(want.shape)
    grads = module.backward(x, *params.values(), g)
    grad_x, param_grads = backward(network, nested, x, g)
    np.testing.assert_allclose(grads[0], grad_x, atol=1e-10)
    expected = {}
    for number_name, value in zip(params, grads[1:], strict=True):
        expected[number_name] = value
    flat = []

    def walk(items):
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                flat.extend(item.values())
    walk(param_grads)
    for got, want_grad in zip(grads[1:], flat, strict=True):
        np.testing.assert_allclose(got, want_grad, atol=1e-10)


def test_float32_stays_float32_and_nan_takes_the_identity_path():
    module = sbp.load(RESNET_BASIC_BLOCK)
    rng = np.random.default_rng(2)
    x, params = _arguments(RESNET_BASIC_BLOCK, (1, 8, 4, 4), np.float32, rng)
    g = rng.standard_normal((1, 8, 4, 4)).astype(np.float32)
    grads = module.backward(x, *params.values(), g)
    assert all(grad.dtype == np.float32 for grad in grads)
    # a NaN in grad_out reaches dL/dx where the identity path takes it, even where the
    # last ReLU is off; as in the plain sums, ReLU's derivative 0 times NaN is NaN
    g = np.ones((1, 8, 4, 4))
    g[0, 3, 2, 1] = np.nan
    x64 = x.astype(float)
    params64 = [p.astype(float) for p in params.values()]
    with np.errstate(invalid="ignore"):
        grad_x = module.backward(x64, *params64, g)[0]
    assert np.isnan(grad_x[0, 3, 2, 1])


def test_generated_source_shows_the_two_paths():
    source = sbp.generate(RESNET_BASIC_BLOCK)
    for line in ["    a4 = a0 + a3\n",
                 "    delta3 = delta4\n",
                 "    delta0 = delta0 + delta4  # the identity path\n",
                 "    layer 4, residual sum a4 = a0 + a3 (the block: layers 1-3): a4 from a0, a3\n",
                 "    _expect_same(shapes[0], shape, 4)\n"]:
        assert line in source, line
    assert sbp.generate(RESNET_BASIC_BLOCK) == source  # deterministic
    assert "def _layer_4" not in source  # the sum has no code of its own


def test_a_block_that_changes_the_shape_fails_with_a_clear_error_at_run_time():
    module = sbp.load(Residual(Conv2d(1, 1, kernel_size=3)))  # no padding: 5x5 -> 3x3
    with pytest.raises(ValueError, match=r"layer 2 \(residual sum a2 = a0 \+ a1 \(the block: "
                                         r"layer 1\)\): y = x \+ block\(x\) needs block\(x\) "
                                         r"shaped like x, got block\(x\) of shape \(1, 1, 3, 3\) "
                                         r"for x of shape \(1, 1, 5, 5\)"):
        module.forward(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), np.zeros(1))


def test_a_block_feeding_a_flatten_and_the_command_line(tmp_path):
    layer = Sequential(Residual([Conv2d(1, 1, kernel_size=3, padding=1), ReLU()]), Flatten(),
                       Linear(9, 2))
    module = sbp.load(layer)
    x = np.random.default_rng(0).standard_normal((2, 1, 3, 3))
    assert module.forward(x, *[np.ones(s) for s in layer.parameter_shapes.values()]).shape \
        == (2, 2)
    result = run("generate", "residual", "--spec",
                 '[{"layer": "linear", "in_features": 3, "out_features": 3}, {"layer": "tanh"}]',
                 "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = list(tmp_path.glob("sequential_fc_tanh_add_*.py"))
    assert len(written) == 1 and result.stdout.strip() == str(written[0])
