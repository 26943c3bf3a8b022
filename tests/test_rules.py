"""Stage 4: the closed forms the notes teach, proven against the element-wise sums."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from reference import conv2d_backward

import symbackprop as sbp
from symbackprop.core import rules
from symbackprop.kinds.conv2d import rules as conv_rules


def test_closed_forms_proven_on_grid(conv_case):
    layer, input_size, batch = conv_case
    proofs = sbp.prove_rules(sbp.derive(layer, input_size, batch))
    assert [p.name for p in proofs] == ["grad_x", "grad_w"] + (["grad_b"] if layer.bias else [])
    for proof in proofs:
        assert proof.holds, (proof.name, proof.mismatches)
        assert proof.checked > 0


def test_proof_catches_an_unrotated_kernel(monkeypatch):
    monkeypatch.setattr(conv_rules, "rot180", lambda kernel: kernel)
    derivation = sbp.derive(sbp.Conv2d(kernel_size=2, stride=2), (5, 5))
    proofs = {p.name: p for p in sbp.prove_rules(derivation)}
    assert not proofs["grad_x"].holds and proofs["grad_x"].mismatches
    assert proofs["grad_w"].holds


def test_padding_off_by_one_is_caught(monkeypatch):
    real = conv_rules.grad_padding
    monkeypatch.setattr(conv_rules, "grad_padding",
                        lambda layer, size: tuple(p + s for p, s in zip(real(layer, size),
                                                                         (1, -1, 1, -1))))
    derivation = sbp.derive(sbp.Conv2d(kernel_size=2, padding=1), (3, 3))
    assert not {p.name: p for p in sbp.prove_rules(derivation)}["grad_x"].holds


def test_rule_numbers_for_uneven_stride():
    derivation = sbp.derive(sbp.Conv2d(kernel_size=3, stride=2), (6, 7))
    proof = sbp.prove_rules(derivation)[0]
    assert proof.unread == (1, 0)
    assert proof.grad_padding == (2, 3, 2, 2)


def test_array_helpers():
    a = np.arange(4).reshape(2, 2)
    np.testing.assert_array_equal(rules.dilate(a, (2, 3)),
                                  [[0, 0, 0, 1], [0, 0, 0, 0], [2, 0, 0, 3]])
    np.testing.assert_array_equal(rules.rot180(a), [[3, 2], [1, 0]])
    np.testing.assert_array_equal(rules.pad2d(a, (1, -1, 0, 1)), [[0, 0, 0], [0, 1, 0]])
    image = np.arange(16.0).reshape(4, 4)
    kernel = np.array([[1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_array_equal(rules.correlate2d(image, kernel, stride=(2, 2)),
                                  [[-5.0, -5.0], [-5.0, -5.0]])


@st.composite
def conv_instances(draw):
    groups = draw(st.integers(1, 2))
    layer = sbp.Conv2d(
        in_channels=groups * draw(st.integers(1, 2)), out_channels=groups * draw(st.integers(1, 2)),
        kernel_size=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=tuple(draw(st.integers(0, 3)) for _ in range(4)),
        dilation=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        groups=groups, bias=draw(st.booleans()))
    extent = [d * (k - 1) + 1 for d, k in zip(layer.dilation, layer.kernel_size)]
    smallest = (max(1, extent[0] - sum(layer.padding[:2])),
                max(1, extent[1] - sum(layer.padding[2:])))
    height = draw(st.integers(smallest[0], smallest[0] + 6))
    width = draw(st.integers(smallest[1], smallest[1] + 6))
    return layer, (height, width), draw(st.integers(1, 2))


@given(conv_instances(), st.integers(0, 2**32 - 1))
def test_closed_forms_numerically_match_reference(instance, seed):
    """The same closed-form code, run on numbers, matches the im2col reference."""
    layer, (height, width), batch = instance
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, layer.in_channels, height, width))
    w = rng.standard_normal(layer.weight_shape)
    b = rng.standard_normal(layer.out_channels) if layer.bias else None
    g = rng.standard_normal(layer.output_shape((height, width), batch))
    closed = conv_rules.closed_form_gradients(layer, x, w, g)
    grad_x, grad_w, grad_b = conv2d_backward(
        x, w, b, g, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
        groups=layer.groups)
    np.testing.assert_allclose(closed["x"], grad_x, atol=1e-10)
    np.testing.assert_allclose(closed["w"], grad_w, atol=1e-10)
    if layer.bias:
        np.testing.assert_allclose(closed["b"], grad_b, atol=1e-10)
