"""Transposed convolutions derived symbolically: the sums, the closed forms, the relations
to the convolution, the layer's rules, and the command line.

Truth: the scatter loops of tests/reference_conv_transpose.py evaluated on numbers, and
SymPy's own differentiation (method="diff").
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_conv_transpose import (
    conv_transpose_backward_loops,
    conv_transpose_forward_loops,
)

from symbackprop import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d, derive
from symbackprop.cli import main
from symbackprop.core.layers import layer_from_spec
from symbackprop.core.naming import flat
from symbackprop.core.registry import KINDS
from symbackprop.core.rules import proofs_for

CASES = [
    ("1d", ConvTranspose1d(1, 2, 3, stride=2, padding=1, output_padding=1), 3, 1),
    ("1d-dilation-op", ConvTranspose1d(2, 2, 2, dilation=2, output_padding=1, groups=2), 3, 2),
    ("2d", ConvTranspose2d(1, 1, 3, stride=2, padding=1, output_padding=1), (2, 2), 1),
    ("2d-groups-asym", ConvTranspose2d(2, 4, (2, 3), stride=(2, 1), padding=(1, 0, 0, 2),
                                       groups=2), (2, 3), 1),
    ("3d", ConvTranspose3d(1, 1, 2, stride=2, padding=(0, 1, 0), output_padding=1),
     (2, 2, 1), 1),
]
IDS = [case[0] for case in CASES]


def evaluate(array, values):
    """A SymPy array of sums of products at the numbers ``values`` (symbol -> number)."""
    return np.array([float(sympy.sympify(e).xreplace(values)) for e in flat(array)]).reshape(
        array.shape)


def numbers(derivation, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"x": derivation.x, "g": derivation.g, **derivation.params}
    numeric = {name: rng.standard_normal(array.shape) for name, array in arrays.items()}
    values = {symbol: value for name, array in arrays.items()
              for symbol, value in zip(flat(array), numeric[name].reshape(-1))}
    return numeric, values


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_derived_sums_evaluate_to_the_scatter_loops(case):
    _, layer, size, batch = case
    derivation = derive(layer, size, batch)
    numeric, values = numbers(derivation)
    options = dict(stride=layer.stride, padding=layer.padding,
                   output_padding=layer.output_padding, dilation=layer.dilation,
                   groups=layer.groups)
    b = numeric.get("b")
    want_z = conv_transpose_forward_loops(numeric["x"], numeric["w"], b, **options)
    np.testing.assert_allclose(evaluate(derivation.z, values), want_z, atol=1e-12)
    grads = conv_transpose_backward_loops(numeric["x"], numeric["w"], b, numeric["g"], **options)
    for name, want in zip(("x", "w", "b"), grads):
        if want is not None:
            np.testing.assert_allclose(evaluate(derivation.grads[name], values), want,
                                       atol=1e-12)


@pytest.mark.parametrize("case", CASES[:3], ids=IDS[:3])
def test_sympy_diff_gives_the_same_sums(case):
    _, layer, size, batch = case
    collected = derive(layer, size, batch)
    differentiated = derive(layer, size, batch, method="diff")
    for name in collected.grads:
        for a, b in zip(flat(collected.grads[name]), flat(differentiated.grads[name])):
            assert sympy.expand(a - b) == 0


def _conv_registered(layer) -> bool:
    return f"conv{layer.dims}d" in KINDS


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_closed_forms_and_relations_hold(case):
    _, layer, size, batch = case
    proofs = {proof.name: proof for proof in proofs_for(derive(layer, size, batch))}
    for name in ("forward", "grad_x", "grad_w", "output_padding"):
        assert proofs[name].holds, name
        assert proofs[name].checked > 0 or not any(layer.output_padding), name
    if not _conv_registered(layer):
        pytest.skip(f"conv{layer.dims}d is not registered (built on another branch): the "
                    f"relations to it cannot be proven here")
    for name in ("conv_backward", "conv_forward"):
        assert proofs[name].holds and proofs[name].checked > 0, name


def test_output_padding_adds_exactly_the_positions_the_stride_never_reads():
    layer = ConvTranspose2d(1, 1, 3, stride=3, padding=0, output_padding=(2, 1))
    proof = {p.name: p for p in proofs_for(derive(layer, (2, 2)))}["output_padding"]
    assert proof.holds and proof.unread == (2, 1)


def test_a_wrong_closed_form_is_caught(monkeypatch):
    from symbackprop.kinds.conv_transpose import rules

    real = rules.closed_form_gradients

    def flipped(layer, x, w, g):
        grads = real(layer, x, w, g)
        grads["w"] = grads["w"][..., ::-1]
        return grads

    monkeypatch.setattr(rules, "closed_form_gradients", flipped)
    proofs = {p.name: p for p in proofs_for(derive(CASES[0][1], 3))}
    assert not proofs["grad_w"].holds and proofs["grad_w"].mismatches


@st.composite
def small_layers(draw):
    dims = draw(st.integers(1, 2))
    groups = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    extra = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    padding = tuple(draw(st.integers(0, 1)) for _ in range(2 * dims))
    size = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    layer_type = (ConvTranspose1d, ConvTranspose2d)[dims - 1]
    layer = layer_type(groups, groups, kernel, stride=stride, padding=padding,
                       output_padding=extra, dilation=dilation, groups=groups)
    try:
        layer.output_size(size)
    except ValueError:
        layer = layer.replace(padding=0)
    return layer, size


# each example derives and proves an instance; the thorough profile runs them all
@settings(max_examples=min(10, settings.default.max_examples) if
          settings.default.max_examples < 100 else settings.default.max_examples)
@given(small_layers())
def test_property_every_proof_holds(drawn):
    layer, size = drawn
    proofs = proofs_for(derive(layer, size))
    skipped = set() if _conv_registered(layer) else {"conv_backward", "conv_forward"}
    assert all(proof.holds for proof in proofs if proof.name not in skipped), \
        [(p.name, p.mismatches) for p in proofs if not p.holds]


# -- the layer's rules -----------------------------------------------------------------

def test_pytorch_arguments_defaults_and_shapes():
    layer = ConvTranspose2d(64, 32, 4, stride=2, padding=1)
    assert layer.weight_shape == (64, 32, 4, 4)
    assert layer.output_shape((16, 16), 8) == (8, 32, 32, 32)
    assert layer.output_padding == (0, 0) and layer.dilation == (1, 1) and layer.bias
    assert ConvTranspose1d(4, 6, 3, groups=2).weight_shape == (4, 3, 3)
    assert ConvTranspose3d(1, 1, 2, padding="valid").padding == (0,) * 6
    assert ConvTranspose2d(1, 1, 2, padding=(1, 2)).padding == (1, 1, 2, 2)
    assert layer_from_spec(layer.spec()) == layer
    assert layer.spec() == {"layer": "convtranspose2d", "in_channels": 64, "out_channels": 32,
                            "kernel_size": 4, "stride": 2, "padding": 1}


@pytest.mark.parametrize("arguments, message", [
    (dict(stride=2, output_padding=2), "output_padding must be smaller than either stride or "
                                       "dilation"),
    (dict(padding="same"), "padding='same' is not supported for transposed convolutions"),
    (dict(padding=(1, 2, 3)), "padding must be an int, 2 ints"),
    (dict(groups=2, in_channels=3), "groups must divide in_channels"),
    (dict(kernel_size=0), "kernel_size must be >= 1"),
    (dict(output_padding=-1), "output_padding must be >= 0"),
])
def test_bad_arguments_name_the_parameter_and_the_rule(arguments, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ConvTranspose2d(**{"in_channels": 2, "out_channels": 2, "kernel_size": 2, **arguments})


def test_padding_that_crops_everything_is_refused():
    with pytest.raises(ValueError, match="padding: cropping"):
        ConvTranspose1d(1, 1, 2, padding=2).output_shape(1)


# -- the command line ---------------------------------------------------------------------

def test_cli_derive_prints_the_scatter_sums_and_the_proofs(capsys):
    assert main(["derive", "convtranspose1d", "--input", "3", "--kernel", "3", "--stride", "2",
                 "--padding", "1", "--output-padding", "1"]) == 0
    out = capsys.readouterr().out
    assert "z2 = x2 w1 + x1 w3 + b" in out
    assert "Lo = (L-1)*s - p_begin - p_end + d*(K-1) + output_padding + 1 = " \
           "(3-1)*2 - 1 - 1 + 1*(3-1) + 1 + 1 = 6" in out
    assert "output_padding adds exactly the positions the convolution's stride never " \
           "reads: verified" in out


def test_cli_derive_2d_shows_the_convolution_relations(capsys):
    assert main(["derive", "convtranspose2d", "--input", "2x2", "--kernel", "3", "--stride", "2",
                 "--padding", "1", "--output-padding", "1"]) == 0
    out = capsys.readouterr().out
    assert "z (less b) = dL/dx of the convolution, whose upstream gradient is x (Conv2d 1->1, " \
           "kernel 3x3, stride 2, padding 1, no bias): verified on 16 elements" in out
    assert "dL/dx = z of the convolution, whose input is g" in out


@pytest.mark.parametrize("arguments, message", [
    (["--padding", "same"], "padding='same' is not supported"),
    (["--stride", "2", "--output-padding", "2"], "output_padding must be smaller"),
    (["--kernel", "2x2"], "--kernel takes 1 numbers"),
])
def test_cli_errors_are_one_line_with_status_2(capsys, arguments, message):
    assert main(["derive", "convtranspose1d", *arguments]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_generate_writes_both_styles(tmp_path, capsys):
    for style in ("fast", "reference"):
        assert main(["generate", "convtranspose3d", "--kernel", "2", "--stride", "2",
                     "--output", str(tmp_path), "--style", style]) == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["convtranspose3d_in1_out1_k2_s2_p0.py",
                     "convtranspose3d_in1_out1_k2_s2_p0_reference.py"]
