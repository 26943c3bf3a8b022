"""Nearest-neighbour upsampling, ``Upsample(scale_factor, mode="nearest")``: spec,
derivation and its proven block sum, both generated styles, chains, LaTeX, the page,
check-impl's mistakes, and the command line; against tests/reference_pool_nd.py's loops."""

from __future__ import annotations

import numpy as np
import pytest
import reference_pool_nd as ref
from conftest import evaluate
from hypothesis import given
from hypothesis import strategies as st

import symbackprop as sbp
from symbackprop.check.impl import NumericGradients, check_impl
from symbackprop.cli import main
from symbackprop.core.rules import proofs_for
from symbackprop.kinds import Upsample
from symbackprop.render.codegen import load


def test_spec():
    layer = Upsample((2, 3))
    assert layer.output_shape((3, 2, 2), 4) == (4, 3, 4, 6)
    assert layer.describe() == "Upsample 2x3 (nearest)"
    assert Upsample(2).describe() == "Upsample x2 (nearest)"
    assert sbp.layer_from_spec(layer.spec()) == layer
    assert Upsample().spec() == {"layer": "upsample2d"}


@pytest.mark.parametrize("build, message", [
    (lambda: Upsample(1.5), "fractional factors are not supported"),
    (lambda: Upsample(0), "scale_factor must be >= 1"),
    (lambda: Upsample(2, mode="bilinear"), "mode must be 'nearest'"),
])
def test_invalid(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("scale", [2, (1, 3), (3, 2)])
def test_derivation_matches_the_loops_and_the_block_sum_is_proven(scale):
    layer = Upsample(scale)
    derivation = sbp.derive(layer, (2, 2, 3), 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(derivation.input_shape)
    g = rng.standard_normal(derivation.output_shape)
    np.testing.assert_allclose(evaluate(derivation.z, {"x": x}),
                               ref.upsample_nearest_forward(x, layer.scale_factor))
    np.testing.assert_allclose(NumericGradients(derivation)({"x": x, "g": g})["x"],
                               ref.upsample_nearest_backward(x, g, layer.scale_factor))
    (proof,) = proofs_for(derivation)
    assert proof.holds and proof.checked == x.size
    by_diff = sbp.derive(layer, (1, 2, 3), method="diff")
    assert by_diff.grad_x == sbp.derive(layer, (1, 2, 3)).grad_x


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
       st.sampled_from(["fast", "reference"]), st.integers(0, 2**16))
def test_generated_modules_match_the_loops(sh, sw, height, width, style, seed):
    module = load(Upsample((sh, sw)), style=style)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, height, width))
    z = module.forward(x)
    np.testing.assert_array_equal(z, ref.upsample_nearest_forward(x, (sh, sw)))
    g = rng.standard_normal(z.shape)
    np.testing.assert_allclose(module.backward(x, g)[0],
                               ref.upsample_nearest_backward(x, g, (sh, sw)), atol=1e-12)
    assert module.forward(x.astype(np.float32)).dtype == np.float32


def test_finite_differences():
    module = load(Upsample((2, 3)))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 1, 2, 2))
    g = rng.standard_normal((1, 1, 4, 6))
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = 1e-6
        numeric[index] = (np.sum(g * module.forward(x + step)) -
                          np.sum(g * module.forward(x - step))) / 2e-6
    np.testing.assert_allclose(module.backward(x, g)[0], numeric, atol=1e-6)


@pytest.mark.parametrize("style", ["fast", "reference"])
def test_in_a_chain(style):
    chain = sbp.layer_from_spec([{"layer": "maxpool2d", "kernel_size": 2},
                                 {"layer": "upsample2d", "scale_factor": 2}, {"layer": "relu"}])
    module = load(chain, style=style)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 1, 4, 6))
    pooled = ref.maxpool_forward(x, 2)
    z = np.maximum(ref.upsample_nearest_forward(pooled, (2, 2)), 0)
    np.testing.assert_allclose(module.forward(x), z)
    g = rng.standard_normal(z.shape)
    delta = ref.upsample_nearest_backward(pooled, g * (z > 0), (2, 2))
    np.testing.assert_allclose(module.backward(x, g)[0], ref.maxpool_backward(x, delta, 2))


@pytest.mark.parametrize("function, mistake", [
    ("backward", None),
    ("backward_picks_one", "one element of the block taken instead of the sum"),
    ("backward_averages", "block averaged instead of summed"),
])
def test_check_impl(function, mistake):
    import student_upsample

    result = check_impl(Upsample((2, 3)), getattr(student_upsample, function))
    assert result.ok == (mistake is None)
    if mistake:
        assert result.mistakes["x"].name == mistake


def test_command_line(tmp_path, capsys):
    assert main(["derive", "upsample2d", "--scale-factor", "2x3", "--input", "1x2"]) == 0
    out = capsys.readouterr().out
    assert "dL/dx11 = g11 + g12 + g13 + g21 + g22 + g23" in out
    assert "closed form dL/dx_ab = sum of g over the sh x sw block of x_ab: verified" in out
    for style in ("fast", "reference"):
        assert main(["generate", "upsample2d", "--style", style, "-o", str(tmp_path)]) == 0
    assert main(["latex", "upsample2d", "-o", str(tmp_path / "up.tex")]) == 0
    tex = (tmp_path / "up.tex").read_text()
    assert r"z_{ij} = x_{\lceil i/2 \rceil,\, \lceil j/2 \rceil}" in tex
    assert main(["html", "upsample2d", "-o", str(tmp_path / "up.html")]) == 0
    assert main(["derive", "upsample2d", "--scale-factor", "1.5"]) == 2
    assert "--scale-factor" in capsys.readouterr().err
