"""Pooling in 1, 2 and 3 dimensions with PyTorch's arguments (dilation, ceil_mode,
count_include_pad): spec rules, derivation, closed forms, generated code in both
styles, finite differences, property tests, check-impl's mistakes and the command line.

The oracle is tests/reference_pool_nd.py (hand-written loops, independent of the
package) and, when installed, PyTorch itself.
"""

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
from symbackprop.kinds import (
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)
from symbackprop.render.codegen import generate, load

STUDENT = "tests/student_pool_nd.py"

# (layer, spatial input size): every axis count, dilation, ceil_mode with a window past
# the input and with one dropped, both divisors, asymmetric and per-axis padding
LAYERS = [
    (MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True), (6,)),
    (MaxPool1d(2), (5,)),
    (AvgPool1d(3, 2, 1, ceil_mode=True), (6,)),
    (AvgPool1d(3, 2, 1, ceil_mode=True, count_include_pad=False), (6,)),
    (AvgPool1d(2, 2, ceil_mode=True), (4,)),   # ceil_mode adds no window: (4-2)/2 exact
    (MaxPool2d(3, 2, ceil_mode=True), (6, 5)),  # GoogLeNet's pooling
    (MaxPool2d(2, 1, (1, 0), dilation=(2, 1)), (4, 3)),
    (AvgPool2d(3, 2, 1, ceil_mode=True), (4, 4)),
    (AvgPool2d((2, 3), (2, 1), (0, 1, 1, 0), ceil_mode=True, count_include_pad=False), (5, 4)),
    (MaxPool3d((2, 3, 2), (1, 2, 2), (1, 1, 0), dilation=(2, 1, 2)), (3, 3, 4)),
    (AvgPool3d(2, 2, 1, ceil_mode=True), (3, 2, 4)),
    (AvgPool3d(2), (2, 4, 2)),
]


def _id(value):
    return value.describe() if hasattr(value, "describe") else "x".join(map(str, value))


def _is_max(layer) -> bool:
    return isinstance(layer, (MaxPool1d, MaxPool2d, MaxPool3d))


def reference(layer, x, g):
    """``(z, dL/dx)`` of the hand-written loops."""
    if _is_max(layer):
        args = (layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
        return ref.maxpool_forward(x, *args), ref.maxpool_backward(x, g, *args)
    args = (layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
            layer.count_include_pad)
    return ref.avgpool_forward(x, *args), ref.avgpool_backward(x, g, *args)


def _values(layer, size, rng, channels=2, batch=2):
    shape = layer.input_shape((channels, *size), batch)
    x = rng.standard_normal(shape)
    z = reference(layer, x, np.zeros(layer.output_shape_for(shape)))[0]
    return x, rng.standard_normal(z.shape)


# -- the spec: PyTorch's rules -------------------------------------------------------------
@pytest.mark.parametrize("layer, size, expected", [
    # floor((L + 2p - d(k-1) - 1)/s) + 1, and ceil_mode's ceil
    (MaxPool1d(3, 2), (6,), (2,)), (MaxPool1d(3, 2, ceil_mode=True), (6,), (3,)),
    (MaxPool1d(3, 2, 1, dilation=2), (6,), (2,)),
    (MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True), (6,), (3,)),
    # with ceil_mode the last window must start inside the input or the left padding:
    # L=5, k=2, s=2, p=1: ceil(4/2)+1 = 4 windows, the 4th would start at 6-1 = 5 = L
    (AvgPool1d(2, 2, 1, ceil_mode=True), (5,), (3,)),
    (AvgPool1d(2, 2, 1), (5,), (3,)),
    (MaxPool2d(3, 2, ceil_mode=True), (112, 112), (56, 56)),   # GoogLeNet: 112 -> 56
    (MaxPool2d(3, 2), (112, 112), (55, 55)),
    (AvgPool3d(2, ceil_mode=True), (3, 4, 5), (2, 2, 3)),
])
def test_output_size_is_pytorchs(layer, size, expected):
    assert layer.output_size(size) == expected


@pytest.mark.parametrize("build, message", [
    (lambda: MaxPool1d(3, padding=2), r"padding must be at most half the window .*3 // 2 = 1"),
    # the dilation does not count (PyTorch checks kernel_size // 2 >= padding)
    (lambda: MaxPool1d(2, padding=2, dilation=3), "padding must be at most half the window"),
    (lambda: AvgPool3d(2, padding=(0, 2, 0)), "the height axis"),
    (lambda: MaxPool3d((2, 2)), "kernel_size must be an int or 3 ints"),
    (lambda: MaxPool1d(2, dilation=0), "dilation must be >= 1"),
    (lambda: AvgPool1d(2, ceil_mode=1), "ceil_mode must be True or False"),
    (lambda: AvgPool2d(2, count_include_pad=1), "count_include_pad"),
])
def test_invalid_layers_name_the_rule(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_a_dilated_window_that_reads_only_padding_is_refused():
    # L=2, k=2, d=3, p=1: the window reads positions -1 and 2, both outside x (PyTorch
    # gives -inf there); symbackprop names the window instead
    with pytest.raises(ValueError, match="window 1 along the length reads only padding"):
        MaxPool1d(2, 1, 1, dilation=3).output_size((2,))


def test_specs_round_trip_and_stay_compact():
    layer = MaxPool3d(2, 1, (1, 0, 1), dilation=(1, 2, 1), ceil_mode=True)
    assert sbp.layer_from_spec(layer.spec()) == layer
    assert MaxPool1d(2).spec() == {"layer": "maxpool1d", "kernel_size": 2}
    assert MaxPool2d(2).spec() == {"layer": "maxpool2d", "kernel_size": 2}
    assert AvgPool1d(3, ceil_mode=True).spec() == {"layer": "avgpool1d", "kernel_size": 3,
                                                   "ceil_mode": True}
    assert AvgPool1d(3, 2, (0, 1)).padding == (0, 1)


# -- the derivation and its closed forms -----------------------------------------------
@pytest.mark.parametrize("layer, size", LAYERS, ids=_id)
def test_derivation_matches_the_loops_and_its_closed_forms_hold(layer, size):
    derivation = sbp.derive(layer, (2, *size), 2)
    x, g = _values(layer, size, np.random.default_rng(1))
    z, grad = reference(layer, x, g)
    np.testing.assert_allclose(evaluate(derivation.z, {"x": x}), z, atol=1e-12)
    np.testing.assert_allclose(NumericGradients(derivation)({"x": x, "g": g})["x"], grad,
                               atol=1e-12)
    proofs = proofs_for(derivation)
    assert proofs and all(proof.holds for proof in proofs)


@pytest.mark.parametrize("layer, size", [LAYERS[0], LAYERS[3], LAYERS[7], LAYERS[10]], ids=_id)
def test_sympy_diff_agrees_with_collect(layer, size):
    collect = sbp.derive(layer, size, method="collect")
    by_diff = sbp.derive(layer, size, method="diff")
    assert all(sbp_eq(a, b) for a, b in zip(collect.grad_x.tolist(), by_diff.grad_x.tolist()))


def sbp_eq(a, b) -> bool:
    import sympy

    if isinstance(a, list):
        return all(sbp_eq(p, q) for p, q in zip(a, b))
    return sympy.expand(a - b) == 0


def test_avg_ceil_mode_divisor_is_pytorchs():
    # AvgPool2d(3, 2, 1, ceil_mode=True) on a 4x4 input of ones: the divisors PyTorch
    # uses (count_include_pad=True) are the window clipped to [-1, 5): 9, 6 and 4 at the
    # corner past the padded input; 1/z, measured with torch 2.13:
    layer = AvgPool2d(3, 2, 1, ceil_mode=True)
    z = evaluate(sbp.derive(layer, (4, 4)).z, {"x": np.ones((1, 1, 4, 4))})[0, 0]
    np.testing.assert_allclose(1 / z, [[2.25, 1.5, 3], [1.5, 1, 2], [3, 2, 4]])
    left_out = AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(evaluate(sbp.derive(left_out, (4, 4)).z,
                                        {"x": np.ones((1, 1, 4, 4))}), 1)


# -- generated code ------------------------------------------------------------------------
@pytest.mark.parametrize("style", ["fast", "reference"])
@pytest.mark.parametrize("layer, size", LAYERS, ids=_id)
def test_generated_module_matches_the_loops(layer, size, style):
    module = load(layer, style=style)
    x, g = _values(layer, size, np.random.default_rng(2), channels=3)
    z, grad = reference(layer, x, g)
    np.testing.assert_allclose(module.forward(x), z, atol=1e-12)
    (got,) = module.backward(x, g)
    np.testing.assert_allclose(got, grad, atol=1e-12)
    assert module.output_size(*size) == layer.output_size(size)
    z32 = module.forward(x.astype(np.float32))
    assert z32.dtype == np.float32


@pytest.mark.parametrize("layer, size", [LAYERS[0], LAYERS[5], LAYERS[9], LAYERS[10]], ids=_id)
def test_generated_backward_matches_finite_differences(layer, size):
    module = load(layer)
    rng = np.random.default_rng(3)
    x, g = _values(layer, size, rng, channels=1, batch=1)
    (grad,) = module.backward(x, g)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        numeric[index] = (np.sum(g * module.forward(x + step)) -
                          np.sum(g * module.forward(x - step))) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def test_generated_module_refuses_a_too_small_input():
    module = load(MaxPool1d(2, 1, 1, dilation=3))
    with pytest.raises(ValueError, match="reads only padding"):
        module.forward(np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match="too small"):
        load(AvgPool3d(3)).forward(np.zeros((1, 1, 2, 3, 3)))
    with pytest.raises(ValueError, match="dimensions"):
        load(AvgPool1d(2)).forward(np.zeros((1, 1, 4, 4)))


def test_plain_2d_layers_keep_their_2d_modules():
    # without dilation and ceil_mode a 2-D layer is written by the 2-D templates, as before
    assert "ROW_STEP, COL_STEP" in generate(MaxPool2d(3, 2, 1))
    assert "STEPS = (2, 2)" in generate(MaxPool2d(3, 2, 1, ceil_mode=True))


@st.composite
def pooling_layers(draw):
    dims = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    ceil_mode = draw(st.booleans())
    if draw(st.booleans()):
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
        layer = [MaxPool1d, MaxPool2d, MaxPool3d][dims - 1](kernel, stride, padding,
                                                             dilation, ceil_mode)
    else:
        layer = [AvgPool1d, AvgPool2d, AvgPool3d][dims - 1](
            kernel, stride, padding, ceil_mode, draw(st.booleans()))
    size = tuple(draw(st.integers(e, e + 3)) for e in layer.extent)
    return layer, size


@given(pooling_layers(), st.integers(0, 2**16))
def test_random_layers_generate_what_the_loops_compute(case, seed):
    layer, size = case
    try:
        layer.output_size(size)
    except ValueError:
        return  # a dilated window over only padding: refused, tested above
    module = load(layer, style="fast" if seed % 2 else "reference")
    x, g = _values(layer, size, np.random.default_rng(seed), channels=1, batch=1)
    z, grad = reference(layer, x, g)
    np.testing.assert_allclose(module.forward(x), z, atol=1e-12)
    np.testing.assert_allclose(module.backward(x, g)[0], grad, atol=1e-12)


def test_pytorch_agrees_when_installed():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    rng = np.random.default_rng(5)
    for layer, size in LAYERS[::2]:  # one of each axis count, max and average, ceil_mode
        dims = layer.spatial_dims
        if len(set(layer.padding[0::2])) != len(set(layer.padding)) or \
                layer.padding[0::2] != layer.padding[1::2]:
            continue  # PyTorch pads both ends alike
        x, g = _values(layer, size, rng)
        tensor = torch.tensor(x, requires_grad=True)
        padding = layer.padding[0::2]
        if _is_max(layer):
            pool = getattr(functional, f"max_pool{dims}d")
            out = pool(tensor, layer.kernel_size, layer.stride, padding, layer.dilation,
                       ceil_mode=layer.ceil_mode)
        else:
            pool = getattr(functional, f"avg_pool{dims}d")
            out = pool(tensor, layer.kernel_size, layer.stride, padding,
                       ceil_mode=layer.ceil_mode, count_include_pad=layer.count_include_pad)
        out.backward(torch.tensor(g))
        module = load(layer)
        np.testing.assert_allclose(module.forward(x), out.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(module.backward(x, g)[0], tensor.grad.numpy(), atol=1e-12)


# -- check-impl ----------------------------------------------------------------------------
@pytest.mark.parametrize("function, layer, mistake", [
    ("max_backward", MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True), None),
    ("avg_backward", AvgPool3d(2, 2, 1, ceil_mode=True), None),
    ("max_backward_ceil_dropped", MaxPool1d(3, 2, 1, ceil_mode=True),
     "ceil_mode window dropped"),
    ("max_backward_dilation_ignored", MaxPool1d(2, 1, dilation=2),
     "dilation ignored in max pooling"),
    ("avg_backward_whole_divisor", AvgPool1d(3, 2, ceil_mode=True),
     "ceil_mode window divided by the whole window"),
])
def test_check_impl_names_the_mistake(function, layer, mistake):
    import student_pool_nd

    result = check_impl(layer, getattr(student_pool_nd, function))
    if mistake is None:
        assert result.ok
    else:
        assert not result.ok and result.mistakes["x"].name == mistake


# -- the command line ----------------------------------------------------------------------
def test_derive_prints_the_ceil_mode_size_and_the_proven_routing(capsys):
    assert main(["derive", "maxpool1d", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "--dilation", "2", "--ceil-mode", "--input", "6"]) == 0
    out = capsys.readouterr().out
    assert "Lo = ceil((L + left + right - d*(K-1) - 1) / s) + 1 = " \
           "ceil((6 + 1 + 1 - 2*(3-1) - 1) / 2) + 1 = 3" in out
    assert "z1 = max(x2, x4)" in out and "z3 = max(x4, x6)" in out
    assert "[x_a = argmax z_w]: verified on 6 elements" in out


def test_derive_says_when_ceil_mode_drops_a_window(capsys):
    assert main(["derive", "avgpool1d", "--kernel", "2", "--stride", "2", "--padding", "1",
                 "--ceil-mode", "--input", "5"]) == 0
    out = capsys.readouterr().out
    assert "= 4" in out and "dropped (PyTorch's rule), so Lo = 3" in out
    assert "g_w / D_w: verified on 5 elements" in out


def test_derive_3d_average_shares(capsys):
    assert main(["derive", "avgpool3d", "--input", "2x2x4", "--no-padding-terms"]) == 0
    out = capsys.readouterr().out
    assert "z[1,1,1] = x[1,1,1]/8 + " in out and "dL/dx[2,2,4] = g[1,1,2]/8" in out


def test_generate_writes_loadable_modules_of_both_styles(tmp_path, capsys):
    for style in ("fast", "reference"):
        assert main(["generate", "maxpool3d", "--kernel", "2", "--dilation", "1x2x1",
                     "--ceil-mode", "--style", style, "-o", str(tmp_path)]) == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["maxpool3d_k2_s2_p0_d1x2x1_ceil.py",
                     "maxpool3d_k2_s2_p0_d1x2x1_ceil_reference.py"]


@pytest.mark.parametrize("argv, message", [
    (["derive", "maxpool1d", "--padding", "2"], "padding must be at most half the window"),
    (["derive", "maxpool1d", "--kernel", "2x2"], "--kernel takes 1 numbers"),
    (["derive", "avgpool3d", "--input", "1x1x1"], "smaller than the 2-wide window"),
    (["derive", "maxpool1d", "--kernel", "2", "--padding", "1", "--dilation", "3",
      "--input", "2"], "reads only padding"),
])
def test_command_line_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# -- chains --------------------------------------------------------------------------------
@pytest.mark.parametrize("style", ["fast", "reference"])
@pytest.mark.parametrize("chain, size", [
    ([{"layer": "maxpool1d", "kernel_size": 3, "stride": 2, "ceil_mode": True},
      {"layer": "relu"}, {"layer": "avgpool1d", "kernel_size": 2, "ceil_mode": True}], (2, 9)),
    ([{"layer": "conv2d", "out_channels": 2, "kernel_size": 3},
      {"layer": "maxpool2d", "kernel_size": 3, "stride": 2, "ceil_mode": True},
      {"layer": "flatten"}, {"layer": "linear", "in_features": 18, "out_features": 2}],
     (1, 8, 8)),
])
def test_chains_with_new_pooling_match_the_loops(chain, size, style):
    import layer_reference

    chain = sbp.layer_from_spec(chain)
    module = load(chain, style=style)
    rng = np.random.default_rng(6)
    params = [layer_reference.random_parameters(part, rng) for part in chain.layers]
    flat = [value for part in params for value in part.values()]
    x = rng.standard_normal((2, *size))
    outputs = layer_reference.chain_forward(chain.layers, x, params)
    np.testing.assert_allclose(module.forward(x, *flat), outputs[-1], atol=1e-12)
    grad_out = rng.standard_normal(outputs[-1].shape)
    deltas, grads = layer_reference.chain_backward(chain.layers, x, params, grad_out)
    want = [deltas[0], *(value for part in grads for value in part.values())]
    for got, expected in zip(module.backward(x, *flat, grad_out), want, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-12)


# -- LaTeX and the interactive page ----------------------------------------------------
def test_latex_states_the_ceil_mode_size_and_divisor(tmp_path, capsys):
    path = tmp_path / "avg.tex"
    assert main(["latex", "avgpool2d", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "--ceil-mode", "--input", "4x4", "-o", str(path)]) == 0
    tex = path.read_text()
    assert r"\left\lceil \frac{H + p_{\mathrm{top}} + p_{\mathrm{bottom}} - d_h (K_H - 1) - 1}" \
           in tex
    assert r"\frac{1}{D_{ij}}" in tex and "ceil\\_mode window that runs past" in tex


def test_latex_of_1d_dilated_max_pooling(tmp_path):
    path = tmp_path / "max.tex"
    assert main(["latex", "maxpool1d", "--kernel", "3", "--stride", "2", "--padding", "1",
                 "--dilation", "2", "--input", "6", "-o", str(path)]) == 0
    tex = path.read_text()
    assert "Backpropagation through 1-D max pooling" in tex
    assert r"\tilde{x}_{2 i + 2 m - 3}" in tex and "Dilation 2" in tex


@pytest.mark.parametrize("argv", [
    ["maxpool1d", "--kernel", "3", "--stride", "2", "--padding", "1", "--input", "6"],
    ["avgpool3d", "--input", "2x2x4"],
    ["avgpool2d", "--kernel", "3", "--stride", "2", "--padding", "1", "--ceil-mode",
     "--input", "4x4"],
    ["maxpool2d", "--kernel", "2", "--stride", "1", "--padding", "1", "--dilation", "2",
     "--input", "4x4"],
])
def test_html_pages_are_written(argv, tmp_path):
    path = tmp_path / "page.html"
    assert main(["html", *argv, "-o", str(path)]) == 0
    assert "<math" in path.read_text()


# -- check (a hand-derived formula) -----------------------------------------------------
@pytest.mark.parametrize("argv, status, text", [
    (["avgpool1d", "--kernel", "3", "--stride", "2", "--ceil-mode", "--input", "6",
      "dL/dx5 = g2/3 + g3/2"], 0, "correct"),
    # the ceil_mode window (positions 5 and 6) divides by 2, not by the whole window
    (["avgpool1d", "--kernel", "3", "--stride", "2", "--ceil-mode", "--input", "6",
      "dL/dx5 = g2/3 + g3/3"], 1, "missing:  1/6 g3"),
    (["maxpool1d", "--kernel", "2", "--stride", "1", "--input", "4",
      "dL/dx_a = sum_i g_i [x_a = argmax z_i]"], 0, "correct"),
    (["avgpool3d", "--input", "2x2x2", "dL/dx111 = g111/8"], 0, "correct"),
])
def test_check_formulas_of_new_pooling(argv, status, text, capsys):
    assert main(["check", *argv]) == status
    assert text in capsys.readouterr().out
