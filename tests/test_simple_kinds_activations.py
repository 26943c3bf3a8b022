"""ELU, GELU (both forms) and SiLU, rows of the activation table: derived, generated in
both styles, printed and checked, against the hand-written references of
tests/reference_activations_more.py, finite differences and SymPy's own diff."""

from __future__ import annotations

import math

import numpy as np
import pytest
import reference_activations_more as ref
import sympy
from conftest import evaluate
from hypothesis import given
from hypothesis import strategies as st
from ruff_check import ruff_problems_in_files

import symbackprop as sbp
from symbackprop import ELU, GELU, Dropout, Linear, PReLU, Sequential, SiLU, check_impl
from symbackprop.cli import main
from symbackprop.core.naming import module_name
from symbackprop.render.codegen import write_module

#: (layer, reference f, reference f') for every new activation.
CASES = [
    (ELU(), ref.elu, ref.elu_grad),
    (ELU(alpha=0.5), lambda x: ref.elu(x, 0.5), lambda x: ref.elu_grad(x, 0.5)),
    (GELU(), ref.gelu, ref.gelu_grad),
    (GELU(approximate="tanh"), ref.gelu_tanh, ref.gelu_tanh_grad),
    (SiLU(), ref.silu, ref.silu_grad),
]
IDS = ["elu", "elu-alpha0.5", "gelu", "gelu-tanh", "silu"]
STYLES = ("fast", "reference")

# exp overflowing to inf (float32 GELU's phi at |x| = 30, whose value is then 0) and NaN
# inputs warn as NumPy always does; the values are what is tested here.
pytestmark = [pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]


def inputs(shape, seed=0):
    """Normal numbers, some exactly 0, a few large ones (|x| up to 30)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    x.flat[:: 5] = 0.0
    if x.size > 3:
        x.flat[1], x.flat[3] = 30.0, -30.0
    return x


@pytest.mark.parametrize("layer, f, df", CASES, ids=IDS)
def test_derivation_equals_the_reference(layer, f, df):
    d = sbp.derive(layer, (2, 3), batch=2)
    x = inputs(d.input_shape)
    g = np.random.default_rng(1).standard_normal(d.output_shape)
    np.testing.assert_allclose(evaluate(d.z, {"x": x}), f(x), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(evaluate(d.grad_x, {"x": x, "g": g}), g * df(x),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layer", [case[0] for case in CASES], ids=IDS)
def test_collect_equals_sympy_diff(layer):
    fast, truth = sbp.derive(layer, (2, 2)), sbp.derive(layer, (2, 2), method="diff")
    for a, b in zip(sympy.flatten(fast.grad_x.tolist()), sympy.flatten(truth.grad_x.tolist())):
        assert a == b or sympy.simplify(a - b) == 0


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layer, f, df", CASES, ids=IDS)
def test_generated_module_equals_the_reference(layer, f, df, dtype, style):
    module = sbp.load(layer, style=style)
    x = inputs((2, 3, 4, 5)).astype(dtype)
    g = np.random.default_rng(2).standard_normal(x.shape).astype(dtype)
    z, (grad_x,) = module.forward(x), module.backward(x, g)
    assert z.dtype == grad_x.dtype == dtype and z.shape == x.shape
    tolerance = dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(z, f(x.astype(float)), **tolerance)
    np.testing.assert_allclose(grad_x, g * df(x.astype(float)), **tolerance)


@pytest.mark.parametrize("layer", [case[0] for case in CASES], ids=IDS)
def test_finite_differences(layer):
    module = sbp.load(layer)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # away from ELU's corner at 0
    g = rng.standard_normal(x.shape)
    step = 1e-6
    numeric = np.empty_like(x)
    for index in np.ndindex(*x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        numeric[index] = np.sum(g * (module.forward(up) - module.forward(down))) / (2 * step)
    np.testing.assert_allclose(module.backward(x, g)[0], numeric, rtol=1e-6, atol=1e-7)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       alpha=st.floats(0.01, 5.0), approximate=st.sampled_from(["none", "tanh"]),
       seed=st.integers(0, 2**16))
def test_random_shapes_and_constants(shape, alpha, approximate, seed):
    x = inputs(tuple(shape), seed)
    g = np.random.default_rng(seed + 1).standard_normal(x.shape)
    for layer, f, df in ((ELU(alpha), lambda v: ref.elu(v, alpha),
                          lambda v: ref.elu_grad(v, alpha)),
                         (GELU(approximate), *((ref.gelu, ref.gelu_grad) if approximate == "none"
                                               else (ref.gelu_tanh, ref.gelu_tanh_grad))),
                         (SiLU(), ref.silu, ref.silu_grad)):
        module = sbp.load(layer)
        np.testing.assert_allclose(module.forward(x), f(x), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(module.backward(x, g)[0], g * df(x), rtol=1e-12, atol=1e-13)


def test_the_erf_helper_is_math_erf():
    """GELU's erf (NumPy has none) is Python's math.erf on every element: no error beyond it."""
    erf = sbp.load(GELU())._erf
    values = np.concatenate([np.linspace(-7, 7, 2001), [0.0, -0.0, 1e-300, -1e-12, 5.9, 6.1,
                                                        40.0, np.inf, -np.inf]])
    np.testing.assert_array_equal(erf(values), [math.erf(v) for v in values])
    assert np.isnan(erf(np.array([np.nan])))[0]
    assert erf(np.zeros((0, 3))).shape == (0, 3)
    assert erf(np.float32([0.5])).dtype == np.float32


@pytest.mark.parametrize("layer, f, df", CASES, ids=IDS)
def test_nan_stays_where_it_is(layer, f, df):
    module = sbp.load(layer)
    x = inputs((2, 5))
    x[0, 2] = np.nan
    g = np.ones_like(x)
    z, (grad_x,) = module.forward(x), module.backward(x, g)
    assert np.isnan(z[0, 2]) and np.isnan(grad_x[0, 2])
    assert np.isfinite(np.delete(z, 2, axis=1)).all()
    assert np.isfinite(np.delete(grad_x, 2, axis=1)).all()


def test_bad_constants_name_the_parameter_and_the_rule():
    with pytest.raises(ValueError, match="approximate must be one of 'none', 'tanh', got 'erf'"):
        GELU("erf")
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        ELU(alpha=math.inf)


def test_generated_sources_are_ruff_clean(tmp_path):
    """Every new kind (ELU, GELU, SiLU, Dropout, PReLU), both styles, in one ruff run."""
    layers = [case[0] for case in CASES] + [Dropout(0.1), PReLU(), PReLU(3)]
    paths = [write_module(layer, tmp_path, style=style) for layer in layers
             for style in STYLES]
    assert ruff_problems_in_files(paths) == ""


def test_printouts_show_whole_numbers_as_whole_numbers():
    d = sbp.derive(ELU(), (1, 2))
    # the equations (the document's last line quotes the command, --alpha 1.0)
    text = sbp.to_latex(d).split(r"\begin{document}")[1].split("Generated by")[0]
    assert "1.0" not in text and r"\operatorname{elu}" in text
    latex = sbp.to_latex(sbp.derive(GELU(), (1, 1)))
    assert r"\Phi" in latex and r"\varphi" in latex  # each called function defined
    assert "0.044715" in sbp.to_latex(sbp.derive(GELU("tanh"), (1, 1)))


def test_module_names_and_specs():
    assert [module_name(layer) for layer in (ELU(), ELU(0.5), GELU(), GELU("tanh"), SiLU())] \
        == ["elu_a1p0", "elu_a0p5", "gelu", "gelu_tanh", "silu"]
    assert sbp.layer_from_spec({"layer": "gelu", "approximate": "tanh"}) == GELU("tanh")
    assert GELU("tanh").spec() == {"layer": "gelu", "approximate": "tanh"}
    assert GELU("tanh").describe() == "GELU, approximate tanh"


def test_in_a_chain():
    chain = Sequential(Linear(3, 4), GELU(), Linear(4, 3), SiLU(), ELU(0.5), GELU("tanh"))
    module = sbp.load(chain)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3))
    w1, b1, w3, b3 = (rng.standard_normal(shape) for shape in ((4, 3), (4,), (3, 4), (3,)))
    g = rng.standard_normal((2, 3))
    a1 = x @ w1.T + b1
    a2 = ref.gelu(a1)
    a3 = a2 @ w3.T + b3
    a4, a5 = ref.silu(a3), ref.elu(ref.silu(a3), 0.5)
    np.testing.assert_allclose(module.forward(x, w1, b1, w3, b3), ref.gelu_tanh(a5), rtol=1e-12)
    delta5 = g * ref.gelu_tanh_grad(a5)
    delta3 = delta5 * ref.elu_grad(a4, 0.5) * ref.silu_grad(a3)
    delta1 = (delta3 @ w3) * ref.gelu_grad(a1)
    grads = module.backward(x, w1, b1, w3, b3, g)
    np.testing.assert_allclose(grads[0], delta1 @ w1, rtol=1e-10)
    np.testing.assert_allclose(grads[3], delta3.T @ a2, rtol=1e-10)
    d = sbp.derive(chain, 3)
    assert "gelu" in str(d.steps[1].z[0, 0])


# -- the command line, in process ------------------------------------------------------------

def test_cli_derive_generate_latex_html(tmp_path, capsys):
    assert main(["derive", "gelu", "--approximate", "tanh", "--input", "1x2"]) == 0
    out = capsys.readouterr().out
    assert "GELU, approximate tanh" in out and "tanh(u(x11))" in out
    assert main(["derive", "elu", "--alpha", "0.5", "--input", "1x1"]) == 0
    assert "0.5 exp(x11)" in capsys.readouterr().out
    assert main(["generate", "silu", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "silu.py").exists()
    assert main(["generate", "gelu", "--approximate", "tanh", "--style", "reference",
                 "-o", str(tmp_path)]) == 0
    assert (tmp_path / "gelu_tanh_reference.py").exists()
    assert main(["latex", "gelu", "--input", "2x2", "-o", str(tmp_path / "g.tex")]) == 0
    assert r"\Phi" in (tmp_path / "g.tex").read_text()
    assert main(["html", "silu", "--input", "2x2", "-o", str(tmp_path / "s.html")]) == 0
    assert 'data-array="grad_x"' in (tmp_path / "s.html").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["derive", "gelu", "--approximate", "erf"])
    assert stop.value.code == 2 and "--approximate" in capsys.readouterr().err


def _elu_right(x, grad_out, alpha=1.0):
    return grad_out * np.where(x > 0, 1.0, alpha * np.exp(x))


def _elu_from_the_right(x, grad_out, alpha=1.0):
    return grad_out * np.where(x >= 0, 1.0, alpha * np.exp(x))


def _silu_at_output(x, grad_out):
    a = x / (1 + np.exp(-x))
    s = 1 / (1 + np.exp(-a))
    return grad_out * s * (1 + a * (1 - s))


def test_check_impl():
    sizes = [(2, 3, 4)]
    assert check_impl(ELU(0.5), _elu_right, sizes=sizes).ok
    result = check_impl(ELU(0.5), _elu_from_the_right, sizes=sizes)
    assert not result.ok and "from the right" in result.mistakes["x"].name
    result = check_impl(SiLU(), _silu_at_output, sizes=sizes)
    assert not result.ok and "at the output" in result.mistakes["x"].name


def test_pytorch_agrees_when_installed():
    torch = pytest.importorskip("torch")
    x = torch.tensor(inputs((3, 4)), dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 4, dtype=torch.float64)
    for layer, module in ((ELU(0.5), torch.nn.ELU(0.5)), (GELU(), torch.nn.GELU()),
                          (GELU("tanh"), torch.nn.GELU("tanh")), (SiLU(), torch.nn.SiLU())):
        (grad,) = torch.autograd.grad(module(x), x, g)
        ours = sbp.load(layer)
        np.testing.assert_allclose(ours.forward(x.detach().numpy()), module(x).detach().numpy(),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours.backward(x.detach().numpy(), g.numpy())[0], grad.numpy(),
                                   rtol=1e-12, atol=1e-14)
