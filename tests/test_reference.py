"""Tests of the independent numerical reference (tests/reference.py).

The reference is the truth for the rest of the suite, so it is checked here
against docs/notation.md's worked examples, against itself (two independent conv
backward implementations) and against finite differences.
"""

import pathlib
import sys
import zlib

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from reference import (  # noqa: E402
    avgpool2d_backward,
    avgpool2d_forward,
    conv2d_backward,
    conv2d_backward_loops,
    conv2d_forward,
    conv_output_size,
    leaky_relu,
    leaky_relu_grad,
    linear_backward,
    linear_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    normalize_padding,
    numerical_gradient,
    pair,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    tanh,
    tanh_grad,
)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------
# Argument helpers and output size
# ---------------------------------------------------------------------------

def test_pair_and_padding():
    assert pair(3) == (3, 3)
    assert pair((2, 5)) == (2, 5)
    assert normalize_padding(1) == (1, 1, 1, 1)
    assert normalize_padding((1, 2)) == (1, 1, 2, 2)
    assert normalize_padding((0, 1, 2, 3)) == (0, 1, 2, 3)
    with pytest.raises(ValueError):
        normalize_padding((1, 2, 3))
    with pytest.raises(ValueError):
        normalize_padding(-1)
    with pytest.raises(ValueError):
        pair((1, 2, 3))


def test_output_size_example_from_notes():
    # width 5, filter 3, padding 0, stride 2 -> 2
    assert conv_output_size(5, 3, stride=2) == 2
    z = conv2d_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), None, stride=2)
    assert z.shape == (1, 1, 2, 2)
    # textbook (W1 - F + 2P)/S + 1 with exact division
    assert conv_output_size(7, 3, 2, 1, 1) == (7 - 3 + 2) // 2 + 1 == 4
    # dilation: effective kernel dh*(KH-1)+1
    assert conv_output_size(7, 3, 1, 0, 0, dilation=2) == 3
    z = conv2d_forward(np.ones((1, 1, 7, 8)), np.ones((1, 1, 3, 2)), None,
                       stride=(2, 3), padding=(0, 1, 2, 0), dilation=(2, 1))
    assert z.shape == (1, 1, conv_output_size(7, 3, 2, 0, 1, 2),
                       conv_output_size(8, 2, 3, 2, 0, 1))
    assert z.shape == (1, 1, 2, 3)


# ---------------------------------------------------------------------------
# docs/notation.md's worked example: 3x3 input, 2x2 kernel, padding 1 -> 4x4
# ---------------------------------------------------------------------------

def _worked_example():
    r = rng(1)
    x = r.standard_normal((1, 1, 3, 3))
    w = r.standard_normal((1, 1, 2, 2))
    g = r.standard_normal((1, 1, 4, 4))
    X = lambda a, b: x[0, 0, a - 1, b - 1]   # 1-based like the notes
    Wk = lambda a, b: w[0, 0, a - 1, b - 1]
    G = lambda a, b: g[0, 0, a - 1, b - 1]
    return x, w, g, X, Wk, G


def test_worked_example_forward():
    x, w, g, X, Wk, G = _worked_example()
    z = conv2d_forward(x, w, None, padding=1)
    assert z.shape == (1, 1, 4, 4)
    Z = lambda a, b: z[0, 0, a - 1, b - 1]
    assert Z(1, 1) == pytest.approx(X(1, 1) * Wk(2, 2), abs=1e-14)
    assert Z(1, 2) == pytest.approx(X(1, 1) * Wk(2, 1) + X(1, 2) * Wk(2, 2), abs=1e-14)
    assert Z(2, 2) == pytest.approx(
        X(1, 1) * Wk(1, 1) + X(1, 2) * Wk(1, 2) + X(2, 1) * Wk(2, 1) + X(2, 2) * Wk(2, 2),
        abs=1e-14)
    assert Z(4, 4) == pytest.approx(X(3, 3) * Wk(1, 1), abs=1e-14)
    # bias is added everywhere
    zb = conv2d_forward(x, w, np.array([0.75]), padding=1)
    np.testing.assert_allclose(zb - z, 0.75, atol=1e-14)


@pytest.mark.parametrize("backward", [conv2d_backward, conv2d_backward_loops])
def test_worked_example_backward(backward):
    x, w, g, X, Wk, G = _worked_example()
    gx, gw, gb = backward(x, w, None, g, padding=1)
    assert gb is None
    expected11 = G(1, 1) * Wk(2, 2) + G(1, 2) * Wk(2, 1) + G(2, 1) * Wk(1, 2) + G(2, 2) * Wk(1, 1)
    expected22 = G(2, 2) * Wk(2, 2) + G(2, 3) * Wk(2, 1) + G(3, 2) * Wk(1, 2) + G(3, 3) * Wk(1, 1)
    assert gx[0, 0, 0, 0] == pytest.approx(expected11, abs=1e-13)
    assert gx[0, 0, 1, 1] == pytest.approx(expected22, abs=1e-13)
    # and numerically, through the forward
    L = lambda x_: np.sum(g * conv2d_forward(x_, w, None, padding=1))
    num = numerical_gradient(L, [x], 0)
    assert num[0, 0, 0, 0] == pytest.approx(expected11, abs=1e-7)
    assert num[0, 0, 1, 1] == pytest.approx(expected22, abs=1e-7)
    np.testing.assert_allclose(gx, num, atol=1e-7)


def test_forward_matches_direct_formula_and_true_convolution():
    """Forward vs a one-line-per-term evaluation, and vs scipy if present."""
    r = rng(2)
    x = r.standard_normal((2, 4, 6, 7))
    w = r.standard_normal((6, 2, 3, 2))
    b = r.standard_normal(6)
    sh, sw, dh, dw, top, bottom, left, right = 2, 1, 1, 2, 1, 0, 2, 1
    z = conv2d_forward(x, w, b, stride=(sh, sw), padding=(top, bottom, left, right),
                       dilation=(dh, dw), groups=2)
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    N, O, Ho, Wo = z.shape
    for n in range(N):
        for o in range(O):
            c0 = (o // 3) * 2
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, c0:c0 + 2, i * sh:i * sh + 3 * dh:dh, j * sw:j * sw + 2 * dw:dw]
                    assert z[n, o, i, j] == pytest.approx(b[o] + np.sum(patch * w[o]), abs=1e-12)

    signal = pytest.importorskip("scipy.signal")
    a = r.standard_normal((5, 6))
    k = r.standard_normal((2, 3))
    zc = conv2d_forward(a[None, None], k[None, None], None)[0, 0]
    np.testing.assert_allclose(zc, signal.correlate2d(a, k, mode="valid"), atol=1e-12)
    # true (full) convolution = correlation with the 180-degree rotated kernel
    # and full padding; its shape is (ma+mb-1) x (na+nb-1).
    zf = conv2d_forward(a[None, None], k[::-1, ::-1][None, None].copy(), None,
                        padding=(1, 1, 2, 2))[0, 0]
    assert zf.shape == (5 + 2 - 1, 6 + 3 - 1)
    np.testing.assert_allclose(zf, signal.convolve2d(a, k, mode="full"), atol=1e-12)


# ---------------------------------------------------------------------------
# Convolution backward: two references vs each other vs finite differences
# ---------------------------------------------------------------------------

# (N, C, H, W, O, KH, KW, stride, padding, dilation, groups)
CONV_CASES = [
    (1, 1, 5, 5, 1, 3, 3, 2, 0, 1, 1),                # notes example, 5->2
    (2, 2, 6, 6, 3, 2, 2, 3, 0, 1, 1),                # rows 2,5 never read
    (1, 2, 7, 6, 2, 3, 2, (2, 3), (1, 0, 2, 1), 1, 1),  # asymmetric pad, rect kernel
    (2, 2, 7, 7, 2, 3, 3, 1, (0, 2, 1, 0), 2, 1),     # dilation 2
    (1, 4, 6, 5, 4, 2, 3, (1, 2), 1, (2, 1), 2),      # groups 2, mixed dilation
    (2, 4, 8, 7, 2, 3, 1, 3, (1, 0), 1, 2),           # groups 2, stride 3, uneven
    (1, 3, 5, 6, 2, 1, 1, 2, 0, 1, 1),                # 1x1 kernel, stride 2
    (1, 2, 9, 8, 2, 2, 3, (3, 2), (0, 0, 1, 0), (2, 2), 1),  # stride & dilation uneven
    (1, 1, 4, 4, 1, 4, 4, 1, 0, 1, 1),                # kernel = input -> 1x1 output
]


def _read_mask(H, W, KH, KW, stride, padding, dilation):
    """Which input pixels the forward reads, straight from the index formula."""
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    top, bottom, left, right = normalize_padding(padding)
    Ho = conv_output_size(H, KH, sh, top, bottom, dh)
    Wo = conv_output_size(W, KW, sw, left, right, dw)
    mask = np.zeros((H, W), dtype=bool)
    for i in range(Ho):
        for m in range(KH):
            for j in range(Wo):
                for k in range(KW):
                    a, b = i * sh + m * dh - top, j * sw + k * dw - left
                    if 0 <= a < H and 0 <= b < W:
                        mask[a, b] = True
    return mask


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_backward_references_agree_with_finite_differences(case):
    N, C, H, W, O, KH, KW, stride, padding, dilation, groups = case
    r = rng(zlib.crc32(repr(case).encode()))
    x = r.standard_normal((N, C, H, W))
    w = r.standard_normal((O, C // groups, KH, KW))
    b = r.standard_normal(O)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    z = conv2d_forward(x, w, b, **kw)
    g = r.standard_normal(z.shape)

    gx1, gw1, gb1 = conv2d_backward(x, w, b, g, **kw)
    gx2, gw2, gb2 = conv2d_backward_loops(x, w, b, g, **kw)
    assert gx1.shape == x.shape and gw1.shape == w.shape and gb1.shape == b.shape
    np.testing.assert_allclose(gx1, gx2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw1, gw2, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb1, gb2, rtol=1e-12, atol=1e-12)

    L = lambda x_, w_, b_: np.sum(g * conv2d_forward(x_, w_, b_, **kw))
    for idx, analytic in enumerate((gx1, gw1, gb1)):
        num = numerical_gradient(L, [x, w, b], idx)
        np.testing.assert_allclose(analytic, num, rtol=1e-6, atol=1e-6)

    # pixels the forward never reads get exactly 0 (and the others, generically, not)
    mask = _read_mask(H, W, KH, KW, stride, padding, dilation)
    for gx in (gx1, gx2):
        assert np.all(gx[:, :, ~mask] == 0.0)
        assert np.all(gx[:, :, mask] != 0.0)


def test_never_read_rows_are_exactly_zero_explicit():
    # H = W = 6, kernel 2, stride 3: windows read rows/cols {0,1} and {3,4}
    r = rng(3)
    x = r.standard_normal((1, 1, 6, 6))
    w = r.standard_normal((1, 1, 2, 2))
    g = r.standard_normal((1, 1, 2, 2))
    for backward in (conv2d_backward, conv2d_backward_loops):
        gx, _, _ = backward(x, w, None, g, stride=3)
        assert np.all(gx[0, 0, [2, 5], :] == 0.0)
        assert np.all(gx[0, 0, :, [2, 5]] == 0.0)
        assert np.all(gx[0, 0][np.ix_([0, 1, 3, 4], [0, 1, 3, 4])] != 0.0)
    # width 6, filter 3, stride 2, no padding: Wo = 2 reads columns 0..4 only
    x = r.standard_normal((1, 1, 3, 6))
    w = r.standard_normal((1, 1, 1, 3))
    g = r.standard_normal((1, 1, 3, 2))
    for backward in (conv2d_backward, conv2d_backward_loops):
        gx, _, _ = backward(x, w, None, g, stride=(1, 2))
        assert np.all(gx[0, 0, :, 5] == 0.0)
        assert np.all(gx[0, 0, :, :5] != 0.0)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_adjoint_dot_product(case):
    """<conv(x), g> = <x, conv^T(g)> (bias None) and likewise for w."""
    N, C, H, W, O, KH, KW, stride, padding, dilation, groups = case
    r = rng(7 + len(str(case)))
    x = r.standard_normal((N, C, H, W))
    w = r.standard_normal((O, C // groups, KH, KW))
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    z = conv2d_forward(x, w, None, **kw)
    g = r.standard_normal(z.shape)
    lhs = np.vdot(z, g)
    for backward in (conv2d_backward, conv2d_backward_loops):
        gx, gw, gb = backward(x, w, None, g, **kw)
        assert gb is None
        assert np.vdot(x, gx) == pytest.approx(lhs, rel=1e-12, abs=1e-12)
        assert np.vdot(w, gw) == pytest.approx(lhs, rel=1e-12, abs=1e-12)


def test_conv_input_validation():
    x = np.zeros((1, 3, 4, 4))
    with pytest.raises(ValueError):
        conv2d_forward(x, np.zeros((2, 3, 2, 2)), None, groups=2)   # 3 % 2
    with pytest.raises(ValueError):
        conv2d_forward(x, np.zeros((2, 2, 2, 2)), None)             # C mismatch
    with pytest.raises(ValueError):
        conv2d_forward(x, np.zeros((1, 3, 5, 5)), None)             # empty output
    with pytest.raises(ValueError):
        conv2d_backward(x, np.zeros((1, 3, 2, 2)), None, np.zeros((1, 1, 2, 2)))


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

POOL_CASES = [
    # (H, W, kernel, stride, padding)
    (4, 4, 2, None, 0),          # non-overlapping
    (5, 6, 3, 1, 0),             # overlapping, stride < kernel
    (5, 5, 3, 2, 1),             # overlapping with padding
    (7, 8, 2, 3, 0),             # gapped, stride > kernel (and uneven)
    (6, 7, (3, 2), (2, 1), (1, 1)),  # rectangular
    (5, 5, (2, 3), (3, 2), (1, 0)),  # rect, gapped rows, padding rows only
]


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", POOL_CASES)
def test_avgpool_backward_finite_differences(case, count_include_pad):
    H, W, k, s, p = case
    r = rng(11)
    x = r.standard_normal((2, 2, H, W))
    out = avgpool2d_forward(x, k, s, p, count_include_pad)
    g = r.standard_normal(out.shape)
    gx = avgpool2d_backward(x, g, k, s, p, count_include_pad)
    L = lambda x_: np.sum(g * avgpool2d_forward(x_, k, s, p, count_include_pad))
    np.testing.assert_allclose(gx, numerical_gradient(L, [x], 0), rtol=1e-6, atol=1e-8)


def test_avgpool_forward_and_count_include_pad():
    x = np.ones((1, 1, 4, 4))
    inc = avgpool2d_forward(x, 3, 1, 1, count_include_pad=True)
    exc = avgpool2d_forward(x, 3, 1, 1, count_include_pad=False)
    assert inc.shape == exc.shape == (1, 1, 4, 4)
    assert inc[0, 0, 0, 0] == pytest.approx(4 / 9)   # corner: 4 real of 9
    assert inc[0, 0, 0, 1] == pytest.approx(6 / 9)   # edge: 6 real of 9
    assert inc[0, 0, 1, 1] == pytest.approx(1.0)
    np.testing.assert_allclose(exc, 1.0)
    # non-overlapping mean pooling backward is kron(g, ones(P, P)) / P^2
    g = rng(4).standard_normal((1, 1, 2, 2))
    gx = avgpool2d_backward(x, g, 2)
    np.testing.assert_allclose(gx[0, 0], np.kron(g[0, 0], np.ones((2, 2))) / 4)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(avgpool2d_forward(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    # overlapping: the centre of a 3x3 input is in all four 2x2 stride-1 windows
    gx = avgpool2d_backward(np.zeros((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), 2, 1)
    np.testing.assert_allclose(gx[0, 0], [[.25, .5, .25], [.5, 1., .5], [.25, .5, .25]])


@pytest.mark.parametrize("case", POOL_CASES)
def test_maxpool_backward_finite_differences(case):
    H, W, k, s, p = case
    r = rng(12)
    n = 2 * 2 * H * W
    # distinct values, spaced by 1 >> eps, so no max switches under perturbation;
    # negative too, so padding (-inf) must never win against them.
    x = (r.permutation(n) - n / 2.0).reshape(2, 2, H, W)
    out = maxpool2d_forward(x, k, s, p)
    g = r.standard_normal(out.shape)
    gx = maxpool2d_backward(x, g, k, s, p)
    L = lambda x_: np.sum(g * maxpool2d_forward(x_, k, s, p))
    np.testing.assert_allclose(gx, numerical_gradient(L, [x], 0), rtol=1e-6, atol=1e-8)
    # the total gradient is conserved: each window routes all of g somewhere real
    assert np.sum(gx) == pytest.approx(np.sum(g))


def test_maxpool_forward_values_and_padding_never_wins():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(maxpool2d_forward(x, 2)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(maxpool2d_forward(x, 3, 1)[0, 0], [[10, 11], [14, 15]])
    # all-negative input with padding: padded zeros must not win
    x = -np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    out = maxpool2d_forward(x, 2, 2, 1)     # Ho = floor((3+2-2)/2)+1 = 2
    np.testing.assert_array_equal(out[0, 0], [[-1, -2], [-4, -5]])
    gx = maxpool2d_backward(x, np.ones((1, 1, 2, 2)), 2, 2, 1)
    expected = np.zeros((3, 3))
    expected[0, 0] = expected[0, 1] = expected[1, 0] = expected[1, 1] = 1
    np.testing.assert_array_equal(gx[0, 0], expected)


def test_maxpool_ties_go_to_first_max_row_major():
    x = np.array([[[[1., 3.],
                    [3., 2.]]]])
    gx = maxpool2d_backward(x, np.array([[[[5.]]]]), 2)
    np.testing.assert_array_equal(gx[0, 0], [[0, 5], [0, 0]])
    # all equal: the top-left element gets it all
    gx = maxpool2d_backward(np.full((1, 1, 2, 3), 7.0), np.array([[[[2.]]]]), (2, 3))
    np.testing.assert_array_equal(gx[0, 0], [[2, 0, 0], [0, 0, 0]])
    # tie in the second row only, overlapping stride-1 windows adding up
    x = np.array([[[[0., 0., 0.],
                    [9., 0., 9.],
                    [0., 9., 0.]]]])
    gx = maxpool2d_backward(x, np.ones((1, 1, 2, 2)), 2, 1)
    # windows: (0,0)->(1,0); (0,1)->(1,2); (1,0)->(1,0) first in row-major; (1,1)->(1,2)
    np.testing.assert_array_equal(gx[0, 0], [[0, 0, 0], [2, 0, 2], [0, 0, 0]])


def test_pool_validation():
    with pytest.raises(ValueError):
        maxpool2d_forward(np.zeros((1, 1, 4, 4)), 2, 2, 2)   # padding >= kernel
    with pytest.raises(ValueError):
        avgpool2d_forward(np.zeros((1, 1, 2, 2)), 3)          # empty output


# ---------------------------------------------------------------------------
# Activations and the fully connected layer
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("f, fgrad", [
    (relu, relu_grad),
    (lambda n: leaky_relu(n, 0.1), lambda n: leaky_relu_grad(n, 0.1)),
    (sigmoid, sigmoid_grad),
    (tanh, tanh_grad),
])
def test_activation_grads_finite_differences(f, fgrad):
    r = rng(5)
    net = r.standard_normal((3, 4)) * 2
    net[np.abs(net) < 1e-3] = 0.5         # stay away from the kink
    g = r.standard_normal(net.shape)
    L = lambda n_: np.sum(g * f(n_))
    np.testing.assert_allclose(g * fgrad(net), numerical_gradient(L, [net], 0),
                               rtol=1e-6, atol=1e-8)


def test_activation_values():
    net = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(relu(net), [0, 0, 3])
    np.testing.assert_array_equal(relu_grad(net), [0, 0, 1])          # 0 at 0
    np.testing.assert_allclose(leaky_relu(net, 0.2), [-0.4, 0, 3])
    np.testing.assert_allclose(leaky_relu_grad(net, 0.2), [0.2, 0.2, 1])
    np.testing.assert_allclose(sigmoid(net), 1 / (1 + np.exp(-net)))
    s = 1 / (1 + np.exp(-net))
    np.testing.assert_allclose(sigmoid_grad(net), s * (1 - s))
    np.testing.assert_allclose(tanh_grad(net), 1 - np.tanh(net) ** 2)
    assert sigmoid(np.array([-1000.0]))[0] == 0.0                      # no overflow
    assert sigmoid(np.array([1000.0]))[0] == 1.0


@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_finite_differences(with_bias):
    r = rng(6)
    a = r.standard_normal((3, 5))
    W = r.standard_normal((4, 5))
    b = r.standard_normal(4) if with_bias else None
    z = linear_forward(a, W, b)
    np.testing.assert_allclose(z, a @ W.T + (0 if b is None else b), atol=1e-12)
    g = r.standard_normal(z.shape)
    ga, gW, gb = linear_backward(a, W, b, g)
    L = lambda a_, W_, b_: np.sum(g * linear_forward(a_, W_, b_))
    np.testing.assert_allclose(ga, numerical_gradient(L, [a, W, b], 0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gW, numerical_gradient(L, [a, W, b], 1), rtol=1e-6, atol=1e-8)
    if with_bias:
        np.testing.assert_allclose(gb, numerical_gradient(L, [a, W, b], 2), rtol=1e-6, atol=1e-8)
    else:
        assert gb is None


def test_linear_is_1x1_conv():
    """A fully connected layer is the 1x1-feature-map case of the convolution."""
    r = rng(8)
    a = r.standard_normal((3, 5))
    W = r.standard_normal((4, 5))
    b = r.standard_normal(4)
    g = r.standard_normal((3, 4))
    z = conv2d_forward(a[:, :, None, None], W[:, :, None, None], b)[:, :, 0, 0]
    np.testing.assert_allclose(z, linear_forward(a, W, b), atol=1e-12)
    gx, gw, gb = conv2d_backward(a[:, :, None, None], W[:, :, None, None], b,
                                 g[:, :, None, None])
    ga, gW, gbl = linear_backward(a, W, b, g)
    np.testing.assert_allclose(gx[:, :, 0, 0], ga, atol=1e-12)
    np.testing.assert_allclose(gw[:, :, 0, 0], gW, atol=1e-12)
    np.testing.assert_allclose(gb, gbl, atol=1e-12)


def test_numerical_gradient_simple_and_does_not_mutate():
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    y = np.array([0.5, 2.0])
    f = lambda x_, y_: np.sum(x_ ** 3) + np.sum(y_ ** 2)
    gx = numerical_gradient(f, [x, y], 0)
    np.testing.assert_allclose(gx, 3 * x ** 2, rtol=1e-6)
    np.testing.assert_allclose(numerical_gradient(f, [x, y], 1), 2 * y, rtol=1e-6)
    np.testing.assert_array_equal(x, [[1.0, 2.0], [3.0, -1.0]])
