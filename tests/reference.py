"""Independent numerical reference for the symbackprop test suite.

Everything here is written directly from ``docs/notation.md`` with plain
NumPy and explicit Python loops.  It is deliberately slow and obvious: it is
the "textbook" truth the package is compared against, so it must not share any
code with ``symbackprop`` (and does not import it).

Conventions (see docs/notation.md):

* ``x`` has shape ``(N, C, H, W)``, ``w`` has shape ``(O, C/groups, KH, KW)``,
  ``b`` has shape ``(O,)`` or is ``None``; ``z`` and ``g`` (= dL/dz) have shape
  ``(N, O, Ho, Wo)``.
* Convolution means cross-correlation::

      z[n,o,i,j] = b[o] + sum_{c,m,k} w[o,c,m,k] * xp[n,c, i*sh + m*dh, j*sw + k*dw]

  with ``xp`` the zero-padded input.
* ``Ho = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1``.

Two independent backward passes are provided for convolution
(:func:`conv2d_backward`, im2col/col2im, and :func:`conv2d_backward_loops`,
the element-wise chain-rule formulas) so that they check each other.

inf and NaN: the loop versions (:func:`conv2d_forward_loops`,
:func:`conv2d_backward_loops`) add exactly the products of the plain sums and
never one with a padding position, so an inf or NaN spreads exactly as in the
sums (``0 * inf`` appears only where the sum has that product).  The im2col
versions multiply padding zeros too: use them for finite inputs only.
"""

import math

import numpy as np

__all__ = [
    "pair",
    "normalize_padding",
    "conv_output_size",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_backward_loops",
    "conv2d_forward_loops",
    "maxpool2d_forward",
    "maxpool2d_backward",
    "avgpool2d_forward",
    "avgpool2d_backward",
    "relu",
    "relu_grad",
    "leaky_relu",
    "leaky_relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "tanh",
    "tanh_grad",
    "linear_forward",
    "linear_backward",
    "numerical_gradient",
]


# ---------------------------------------------------------------------------
# Argument normalisation
# ---------------------------------------------------------------------------

def _as_int(v, what):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {v!r}")
    return int(v)


def pair(v):
    """Turn an int or a pair into a pair of ints.

    Parameters
    ----------
    v : int or sequence of 2 ints
        ``3`` means ``(3, 3)``.

    Returns
    -------
    tuple of int
        ``(vertical, horizontal)``.

    Raises
    ------
    ValueError
        If a sequence does not have exactly two entries.
    """
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return (int(v), int(v))
    v = tuple(v)
    if len(v) != 2:
        raise ValueError(f"expected an int or a pair, got {v!r}")
    return (_as_int(v[0], "value"), _as_int(v[1], "value"))


def normalize_padding(padding):
    """Normalise a padding specification to ``(top, bottom, left, right)``.

    Parameters
    ----------
    padding : int or sequence of 2 or 4 ints
        ``p`` means all four sides equal; ``(ph, pw)`` means ``top = bottom =
        ph`` and ``left = right = pw``; a 4-sequence is taken as
        ``(top, bottom, left, right)``.

    Returns
    -------
    tuple of int
        ``(top, bottom, left, right)``.

    Raises
    ------
    ValueError
        If the sequence length is not 2 or 4, or a value is negative.
    """
    if isinstance(padding, (int, np.integer)) and not isinstance(padding, (bool, np.bool_)):
        p = (int(padding),) * 4
    else:
        seq = tuple(padding)
        if len(seq) == 2:
            ph, pw = (_as_int(seq[0], "padding"), _as_int(seq[1], "padding"))
            p = (ph, ph, pw, pw)
        elif len(seq) == 4:
            p = tuple(_as_int(s, "padding") for s in seq)
        else:
            raise ValueError(f"padding must be an int, a pair or a 4-tuple, got {padding!r}")
    if any(v < 0 for v in p):
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return p


def conv_output_size(size, kernel, stride=1, pad_before=0, pad_after=0, dilation=1):
    """Output length along one spatial axis (docs/notation.md, "Output size").

    Parameters
    ----------
    size : int
        Input length ``H``.
    kernel : int
        Kernel length ``KH``.
    stride, pad_before, pad_after, dilation : int
        ``sh``, ``top``, ``bottom``, ``dh``.

    Returns
    -------
    int
        ``floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1``.
    """
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


# ---------------------------------------------------------------------------
# Convolution helpers
# ---------------------------------------------------------------------------

def _conv_setup(x, w, b, stride, padding, dilation, groups):
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError("x must be (N, C, H, W) and w must be (O, C/groups, KH, KW)")
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    groups = _as_int(groups, "groups")
    if groups < 1 or C % groups or O % groups:
        raise ValueError(f"groups={groups} must divide C={C} and O={O}")
    if Cg != C // groups:
        raise ValueError(f"w.shape[1]={Cg} must equal C/groups={C // groups}")
    if b is not None:
        b = np.asarray(b, dtype=np.float64)
        if b.shape != (O,):
            raise ValueError(f"b must have shape ({O},), got {b.shape}")
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    if min(sh, sw, dh, dw) < 1:
        raise ValueError("stride and dilation must be >= 1")
    top, bottom, left, right = normalize_padding(padding)
    Ho = conv_output_size(H, KH, sh, top, bottom, dh)
    Wo = conv_output_size(W, KW, sw, left, right, dw)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"empty output: Ho={Ho}, Wo={Wo}")
    return dict(x=x, w=w, b=b, N=N, C=C, H=H, W=W, O=O, Cg=Cg, Og=O // groups,
                KH=KH, KW=KW, sh=sh, sw=sw, dh=dh, dw=dw, top=top, bottom=bottom,
                left=left, right=right, Ho=Ho, Wo=Wo, groups=groups)


def _pad(x, top, bottom, left, right):
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + top + bottom, W + left + right), dtype=np.float64)
    xp[:, :, top:top + H, left:left + W] = x
    return xp


def _im2col(xp, s):
    """Column matrix of shape (C*KH*KW, N*Ho*Wo); row index (c, m, k)."""
    N, C = xp.shape[:2]
    KH, KW, Ho, Wo = s["KH"], s["KW"], s["Ho"], s["Wo"]
    cols = np.zeros((C, KH, KW, N, Ho, Wo), dtype=np.float64)
    for i in range(Ho):
        for j in range(Wo):
            for m in range(KH):
                for k in range(KW):
                    r = i * s["sh"] + m * s["dh"]
                    q = j * s["sw"] + k * s["dw"]
                    # all (n, c) at once: cols[c, m, k, n, i, j] = xp[n, c, r, q]
                    cols[:, m, k, :, i, j] = xp[:, :, r, q].T
    return cols.reshape(C * KH * KW, N * Ho * Wo)


def _col2im(cols, xp_shape, s):
    """Scatter-add a column matrix back into a padded-input-shaped array."""
    N, C = xp_shape[:2]
    KH, KW, Ho, Wo = s["KH"], s["KW"], s["Ho"], s["Wo"]
    cols = cols.reshape(C, KH, KW, N, Ho, Wo)
    out = np.zeros(xp_shape, dtype=np.float64)
    for i in range(Ho):
        for j in range(Wo):
            for m in range(KH):
                for k in range(KW):
                    r = i * s["sh"] + m * s["dh"]
                    q = j * s["sw"] + k * s["dw"]
                    out[:, :, r, q] += cols[:, m, k, :, i, j].T
    return out


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------

def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation (the deep-learning "convolution"), im2col style.

    ``z[n,o,i,j] = b[o] + sum_{c,m,k} w[o,c,m,k] * xp[n,c,i*sh+m*dh,j*sw+k*dw]``
    where ``c`` runs over the input channels of ``o``'s group.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input.
    w : ndarray, shape (O, C/groups, KH, KW)
        Kernel.
    b : ndarray, shape (O,), or None
        Bias.
    stride : int or pair
        ``(sh, sw)``.
    padding : int, pair or 4-tuple
        Zero padding, see :func:`normalize_padding`.
    dilation : int or pair
        ``(dh, dw)``; 1 is an ordinary convolution.
    groups : int
        Number of channel groups; must divide ``C`` and ``O``.

    Returns
    -------
    z : ndarray, shape (N, O, Ho, Wo), float64
    """
    s = _conv_setup(x, w, b, stride, padding, dilation, groups)
    xp = _pad(s["x"], s["top"], s["bottom"], s["left"], s["right"])
    N, O, Ho, Wo, Cg, Og = s["N"], s["O"], s["Ho"], s["Wo"], s["Cg"], s["Og"]
    z = np.zeros((N, O, Ho, Wo), dtype=np.float64)
    for gi in range(s["groups"]):
        cols = _im2col(xp[:, gi * Cg:(gi + 1) * Cg], s)            # (Cg*KH*KW, N*Ho*Wo)
        wmat = s["w"][gi * Og:(gi + 1) * Og].reshape(Og, -1)          # (Og, Cg*KH*KW)
        zg = (wmat @ cols).reshape(Og, N, Ho, Wo)
        z[:, gi * Og:(gi + 1) * Og] = zg.transpose(1, 0, 2, 3)
    if s["b"] is not None:
        z += s["b"][None, :, None, None]
    return z


def conv2d_backward(x, w, b, grad_z, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of a 2-D convolution via im2col / col2im.

    For each group: ``grad_w = G @ cols.T`` and ``grad_cols = W.T @ G``
    (``G`` is ``grad_z`` as an ``(Og, N*Ho*Wo)`` matrix), then ``grad_cols``
    is scatter-added into the padded input shape and cropped.  Padded-input
    positions that the forward never reads receive exactly 0.

    Parameters
    ----------
    x, w, b, stride, padding, dilation, groups
        As in :func:`conv2d_forward`.
    grad_z : ndarray, shape (N, O, Ho, Wo)
        Upstream gradient ``dL/dz``.

    Returns
    -------
    grad_x : ndarray, shape (N, C, H, W)
    grad_w : ndarray, shape (O, C/groups, KH, KW)
    grad_b : ndarray, shape (O,), or None
        ``None`` when ``b`` is ``None``.
    """
    s = _conv_setup(x, w, b, stride, padding, dilation, groups)
    N, O, Ho, Wo, Cg, Og = s["N"], s["O"], s["Ho"], s["Wo"], s["Cg"], s["Og"]
    g = np.asarray(grad_z, dtype=np.float64)
    if g.shape != (N, O, Ho, Wo):
        raise ValueError(f"grad_z must have shape {(N, O, Ho, Wo)}, got {g.shape}")
    xp = _pad(s["x"], s["top"], s["bottom"], s["left"], s["right"])
    grad_xp = np.zeros_like(xp)
    grad_w = np.zeros_like(s["w"])
    for gi in range(s["groups"]):
        osl = slice(gi * Og, (gi + 1) * Og)
        csl = slice(gi * Cg, (gi + 1) * Cg)
        cols = _im2col(xp[:, csl], s)                                   # (Cg*KH*KW, N*Ho*Wo)
        wmat = s["w"][osl].reshape(Og, -1)                              # (Og, Cg*KH*KW)
        gmat = g[:, osl].transpose(1, 0, 2, 3).reshape(Og, N * Ho * Wo)  # (Og, N*Ho*Wo)
        grad_w[osl] = (gmat @ cols.T).reshape(Og, Cg, s["KH"], s["KW"])
        grad_cols = wmat.T @ gmat
        grad_xp[:, csl] = _col2im(grad_cols, xp[:, csl].shape, s)
    grad_x = grad_xp[:, :, s["top"]:s["top"] + s["H"], s["left"]:s["left"] + s["W"]].copy()
    grad_b = g.sum(axis=(0, 2, 3)) if s["b"] is not None else None
    return grad_x, grad_w, grad_b


def conv2d_forward_loops(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D cross-correlation from the plain sum, padding products left out.

    ``z[n,o,i,j] = b[o] + sum w[o,c,m,k] * x[n,c,i*sh+m*dh-top,j*sw+k*dw-left]`` over
    the ``(c, m, k)`` whose row and column fall inside ``x``.  Arguments and result as
    in :func:`conv2d_forward`.
    """
    s = _conv_setup(x, w, b, stride, padding, dilation, groups)
    x, w = s["x"], s["w"]
    N, H, W, O = s["N"], s["H"], s["W"], s["O"]
    Cg, Og, KH, KW, Ho, Wo = s["Cg"], s["Og"], s["KH"], s["KW"], s["Ho"], s["Wo"]
    z = np.zeros((N, O, Ho, Wo), dtype=np.float64)
    for n in range(N):
        for o in range(O):
            gi = o // Og
            for i in range(Ho):
                for j in range(Wo):
                    acc = 0.0 if s["b"] is None else s["b"][o]
                    for cl in range(Cg):
                        for m in range(KH):
                            r = i * s["sh"] + m * s["dh"] - s["top"]
                            if r < 0 or r >= H:
                                continue        # a padding row: no product
                            for k in range(KW):
                                q = j * s["sw"] + k * s["dw"] - s["left"]
                                if q < 0 or q >= W:
                                    continue
                                acc += w[o, cl, m, k] * x[n, gi * Cg + cl, r, q]
                    z[n, o, i, j] = acc
    return z


def conv2d_backward_loops(x, w, b, grad_z, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of a 2-D convolution from the element-wise chain rule.

    Direct nested loops over the formulas of docs/notation.md, independent of
    :func:`conv2d_backward`::

        dL/dx[n,c,a,b] = sum over (o,i,j,m,k) with i*sh + m*dh - top = a
                         and j*sw + k*dw - left = b of g[n,o,i,j] * w[o,c,m,k]
        dL/dw[o,c,m,k] = sum_{n,i,j} g[n,o,i,j] * xp[n,c,i*sh+m*dh,j*sw+k*dw]
        dL/db[o]       = sum_{n,i,j} g[n,o,i,j]

    ``dL/dx`` is computed as a gather: for each input element and each
    ``(o, m, k)`` the output position ``i = (a + top - m*dh) / sh`` is solved
    for and used only when it is an integer in ``[0, Ho)``.  No padded array
    is built.

    Parameters
    ----------
    x, w, b, grad_z, stride, padding, dilation, groups
        As in :func:`conv2d_backward`.

    Returns
    -------
    grad_x, grad_w, grad_b
        As in :func:`conv2d_backward`.
    """
    s = _conv_setup(x, w, b, stride, padding, dilation, groups)
    x, w = s["x"], s["w"]
    N, C, H, W, O = s["N"], s["C"], s["H"], s["W"], s["O"]
    Cg, Og, KH, KW, Ho, Wo = s["Cg"], s["Og"], s["KH"], s["KW"], s["Ho"], s["Wo"]
    sh, sw, dh, dw, top, left = s["sh"], s["sw"], s["dh"], s["dw"], s["top"], s["left"]
    g = np.asarray(grad_z, dtype=np.float64)
    if g.shape != (N, O, Ho, Wo):
        raise ValueError(f"grad_z must have shape {(N, O, Ho, Wo)}, got {g.shape}")

    grad_x = np.zeros((N, C, H, W), dtype=np.float64)
    for n in range(N):
        for c in range(C):
            gi, cl = divmod(c, Cg)          # group of c and its index inside w
            for a in range(H):
                for bb in range(W):
                    acc = 0.0
                    for o in range(gi * Og, (gi + 1) * Og):
                        for m in range(KH):
                            num_i = a + top - m * dh
                            if num_i < 0 or num_i % sh:
                                continue
                            i = num_i // sh
                            if i >= Ho:
                                continue
                            for k in range(KW):
                                num_j = bb + left - k * dw
                                if num_j < 0 or num_j % sw:
                                    continue
                                j = num_j // sw
                                if j >= Wo:
                                    continue
                                acc += g[n, o, i, j] * w[o, cl, m, k]
                    grad_x[n, c, a, bb] = acc

    grad_w = np.zeros_like(w)
    for o in range(O):
        gi = o // Og
        for cl in range(Cg):
            c = gi * Cg + cl
            for m in range(KH):
                for k in range(KW):
                    acc = 0.0
                    for n in range(N):
                        for i in range(Ho):
                            r = i * sh + m * dh - top
                            if r < 0 or r >= H:
                                continue        # padding row: xp is 0 there
                            for j in range(Wo):
                                q = j * sw + k * dw - left
                                if q < 0 or q >= W:
                                    continue
                                acc += g[n, o, i, j] * x[n, c, r, q]
                    grad_w[o, cl, m, k] = acc

    grad_b = None
    if s["b"] is not None:
        grad_b = np.zeros(O, dtype=np.float64)
        for o in range(O):
            acc = 0.0
            for n in range(N):
                for i in range(Ho):
                    for j in range(Wo):
                        acc += g[n, o, i, j]
            grad_b[o] = acc
    return grad_x, grad_w, grad_b


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

def _pool_setup(x, kernel_size, stride, padding):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError("x must be (N, C, H, W)")
    kh, kw = pair(kernel_size)
    sh, sw = pair(kernel_size if stride is None else stride)
    ph, pw = pair(padding)
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError("kernel and stride must be >= 1, padding >= 0")
    if ph >= kh or pw >= kw:
        # p >= k would create windows made only of padding.
        raise ValueError(f"padding {(ph, pw)} must be smaller than the kernel {(kh, kw)}")
    N, C, H, W = x.shape
    Ho = (H + 2 * ph - kh) // sh + 1
    Wo = (W + 2 * pw - kw) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"empty output: Ho={Ho}, Wo={Wo}")
    return x, (N, C, H, W), (kh, kw), (sh, sw), (ph, pw), (Ho, Wo)


def _window(i, j, k, s, p, H, W):
    """Real (non-padding) positions of window (i, j) in row-major order."""
    (kh, kw), (sh, sw), (ph, pw) = k, s, p
    out = []
    for m in range(kh):
        r = i * sh + m - ph
        for q_ in range(kw):
            q = j * sw + q_ - pw
            if 0 <= r < H and 0 <= q < W:
                out.append((r, q))
    return out


def _maxpool_argmax(x, kernel_size, stride, padding):
    x, (N, C, H, W), k, s, p, (Ho, Wo) = _pool_setup(x, kernel_size, stride, padding)
    out = np.empty((N, C, Ho, Wo), dtype=np.float64)
    arg = np.empty((N, C, Ho, Wo, 2), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    best = None
                    for (r, q) in _window(i, j, k, s, p, H, W):
                        v = x[n, c, r, q]
                        # strict: the first max wins; a NaN wins (the first one) and stays
                        if best is None or v > best or (np.isnan(v) and not np.isnan(best)):
                            best, arg[n, c, i, j] = v, (r, q)
                    out[n, c, i, j] = best
    return x, out, arg


def maxpool2d_forward(x, kernel_size, stride=None, padding=0):
    """2-D max pooling.

    Padding is implicit ``-inf``: a padded position never wins.  A NaN in a window
    propagates: the window's maximum is its first NaN (as ``np.max``/``np.argmax``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : int or pair
    stride : int, pair or None
        Defaults to ``kernel_size``.
    padding : int or pair
        Symmetric; must be smaller than the kernel in each direction.

    Returns
    -------
    out : ndarray, shape (N, C, Ho, Wo)
        ``Ho = floor((H + 2*ph - kh) / sh) + 1``.
    """
    return _maxpool_argmax(x, kernel_size, stride, padding)[1]


def maxpool2d_backward(x, grad_out, kernel_size, stride=None, padding=0):
    """Gradient of :func:`maxpool2d_forward` with respect to ``x``.

    The whole gradient of a window goes to the first maximum of the window in
    row-major order; overlapping windows add their contributions.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    grad_out : ndarray, shape (N, C, Ho, Wo)
    kernel_size, stride, padding
        As in :func:`maxpool2d_forward`.

    Returns
    -------
    grad_x : ndarray, shape (N, C, H, W)
    """
    x, out, arg = _maxpool_argmax(x, kernel_size, stride, padding)
    g = np.asarray(grad_out, dtype=np.float64)
    if g.shape != out.shape:
        raise ValueError(f"grad_out must have shape {out.shape}, got {g.shape}")
    N, C, Ho, Wo = out.shape
    grad_x = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    r, q = arg[n, c, i, j]
                    grad_x[n, c, r, q] += g[n, c, i, j]
    return grad_x


def _avg_divisor(window, k, count_include_pad):
    return k[0] * k[1] if count_include_pad else len(window)


def avgpool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """2-D average (mean) pooling.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : int or pair
    stride : int, pair or None
        Defaults to ``kernel_size``.
    padding : int or pair
        Symmetric zero padding; must be smaller than the kernel.
    count_include_pad : bool
        If True the divisor is ``kh*kw`` (padded zeros count); if False it is
        the number of non-padding elements in the window.

    Returns
    -------
    out : ndarray, shape (N, C, Ho, Wo)
    """
    x, (N, C, H, W), k, s, p, (Ho, Wo) = _pool_setup(x, kernel_size, stride, padding)
    out = np.zeros((N, C, Ho, Wo), dtype=np.float64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = _window(i, j, k, s, p, H, W)
                    total = 0.0
                    for (r, q) in win:
                        total += x[n, c, r, q]
                    out[n, c, i, j] = total / _avg_divisor(win, k, count_include_pad)
    return out


def avgpool2d_backward(x, grad_out, kernel_size, stride=None, padding=0,
                       count_include_pad=True):
    """Gradient of :func:`avgpool2d_forward` with respect to ``x``.

    Every real element of a window receives ``g / divisor``; overlapping
    windows add.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Only its shape is used.
    grad_out : ndarray, shape (N, C, Ho, Wo)
    kernel_size, stride, padding, count_include_pad
        As in :func:`avgpool2d_forward`.

    Returns
    -------
    grad_x : ndarray, shape (N, C, H, W)
    """
    x, (N, C, H, W), k, s, p, (Ho, Wo) = _pool_setup(x, kernel_size, stride, padding)
    g = np.asarray(grad_out, dtype=np.float64)
    if g.shape != (N, C, Ho, Wo):
        raise ValueError(f"grad_out must have shape {(N, C, Ho, Wo)}, got {g.shape}")
    grad_x = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = _window(i, j, k, s, p, H, W)
                    share = g[n, c, i, j] / _avg_divisor(win, k, count_include_pad)
                    for (r, q) in win:
                        grad_x[n, c, r, q] += share
    return grad_x


# ---------------------------------------------------------------------------
# Activations (elementwise; *_grad is the derivative with respect to net)
# ---------------------------------------------------------------------------

def relu(net):
    """ReLU ``max(net, 0)``.

    Parameters
    ----------
    net : array_like

    Returns
    -------
    ndarray
    """
    net = np.asarray(net, dtype=np.float64)
    return np.where(net <= 0, 0.0, net)  # NaN is not <= 0: it propagates


def relu_grad(net):
    """Derivative of ReLU: 1 where ``net > 0`` else 0 (0 at 0).

    Parameters
    ----------
    net : array_like

    Returns
    -------
    ndarray
    """
    net = np.asarray(net, dtype=np.float64)
    return np.where(net > 0, 1.0, 0.0)


def leaky_relu(net, slope=0.01):
    """Leaky ReLU: ``net`` where ``net > 0`` else ``slope * net``.

    Parameters
    ----------
    net : array_like
    slope : float
        The negative-side slope alpha.

    Returns
    -------
    ndarray
    """
    net = np.asarray(net, dtype=np.float64)
    return np.where(net > 0, net, slope * net)


def leaky_relu_grad(net, slope=0.01):
    """Derivative of leaky ReLU: 1 where ``net > 0`` else ``slope`` (``slope`` at 0).

    Parameters
    ----------
    net : array_like
    slope : float

    Returns
    -------
    ndarray
    """
    net = np.asarray(net, dtype=np.float64)
    return np.where(net > 0, 1.0, float(slope))


def sigmoid(net):
    """Logistic sigmoid ``1 / (1 + exp(-net))`` (computed without overflow).

    Parameters
    ----------
    net : array_like

    Returns
    -------
    ndarray
    """
    net = np.asarray(net, dtype=np.float64)
    e = np.exp(-np.abs(net))
    return np.where(net >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_grad(net):
    """Derivative of the sigmoid, ``s * (1 - s)`` with ``s = sigmoid(net)``.

    Parameters
    ----------
    net : array_like

    Returns
    -------
    ndarray
    """
    s = sigmoid(net)
    return s * (1.0 - s)


def tanh(net):
    """Hyperbolic tangent.

    Parameters
    ----------
    net : array_like

    Returns
    -------
    ndarray
    """
    return np.tanh(np.asarray(net, dtype=np.float64))


def tanh_grad(net):
    """Derivative of tanh, ``1 - tanh(net)**2``.

    Parameters
    ----------
    net : array_like

    Returns
    -------
    ndarray
    """
    t = tanh(net)
    return 1.0 - t * t


def softplus(net, beta=1.0, threshold=20.0):
    """Softplus as PyTorch defines it, element by element with a loop.

    ``log(1 + exp(beta * net)) / beta``, and ``net`` itself where ``beta * net >
    threshold`` (there the two agree to rounding and the exponential would overflow).
    """
    net = np.asarray(net, dtype=float)
    out = np.empty_like(net)
    for index in np.ndindex(*net.shape):
        value = net[index]
        if beta * value > threshold:
            out[index] = value
        else:
            out[index] = math.log1p(math.exp(beta * value)) / beta
    return out


def softplus_grad(net, beta=1.0, threshold=20.0):
    """Derivative of :func:`softplus`: the logistic function of ``beta * net``, or 1
    where the linear branch applies."""
    net = np.asarray(net, dtype=float)
    out = np.empty_like(net)
    for index in np.ndindex(*net.shape):
        value = net[index]
        out[index] = 1.0 if beta * value > threshold else 1.0 / (1.0 + math.exp(-beta * value))
    return out


# ---------------------------------------------------------------------------
# Fully connected
# ---------------------------------------------------------------------------

def linear_forward(a, W, b=None):
    """Fully connected layer ``z[n, o] = sum_i W[o, i] * a[n, i] + b[o]``.

    Parameters
    ----------
    a : ndarray, shape (N, in)
    W : ndarray, shape (out, in)
    b : ndarray, shape (out,), or None

    Returns
    -------
    z : ndarray, shape (N, out)
    """
    a = np.asarray(a, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    N, nin = a.shape
    nout = W.shape[0]
    if W.shape != (nout, nin):
        raise ValueError(f"W must have shape (out, {nin}), got {W.shape}")
    z = np.zeros((N, nout), dtype=np.float64)
    for n in range(N):
        for o in range(nout):
            acc = 0.0 if b is None else float(b[o])
            for i in range(nin):
                acc += W[o, i] * a[n, i]
            z[n, o] = acc
    return z


def linear_backward(a, W, b, grad_z):
    """Gradients of :func:`linear_forward`.

    ``grad_a = grad_z @ W`` (``delta_a = W^T delta`` per sample),
    ``grad_W = grad_z^T @ a`` (``delta a^T`` summed over samples),
    ``grad_b = sum_n grad_z[n]``.

    Parameters
    ----------
    a : ndarray, shape (N, in)
    W : ndarray, shape (out, in)
    b : ndarray, shape (out,), or None
    grad_z : ndarray, shape (N, out)

    Returns
    -------
    grad_a : ndarray, shape (N, in)
    grad_W : ndarray, shape (out, in)
    grad_b : ndarray, shape (out,), or None
    """
    a = np.asarray(a, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    g = np.asarray(grad_z, dtype=np.float64)
    N, nin = a.shape
    nout = W.shape[0]
    if g.shape != (N, nout):
        raise ValueError(f"grad_z must have shape {(N, nout)}, got {g.shape}")
    grad_a = np.zeros_like(a)
    grad_W = np.zeros_like(W)
    for n in range(N):
        for o in range(nout):
            for i in range(nin):
                grad_a[n, i] += W[o, i] * g[n, o]
                grad_W[o, i] += g[n, o] * a[n, i]
    grad_b = None if b is None else g.sum(axis=0)
    return grad_a, grad_W, grad_b


# ---------------------------------------------------------------------------
# Finite differences
# ---------------------------------------------------------------------------

def numerical_gradient(f, arrays, index, eps=1e-6):
    """Central finite-difference gradient of a scalar function.

    Parameters
    ----------
    f : callable
        ``f(*arrays)`` returns a scalar.
    arrays : sequence of array_like
        Arguments of ``f``; they are copied to float64 and never modified.
    index : int
        Which argument to differentiate with respect to.
    eps : float
        Step; each element is evaluated at ``+eps`` and ``-eps``.

    Returns
    -------
    ndarray
        Same shape as ``arrays[index]``:
        ``(f(.., x + eps e_k, ..) - f(.., x - eps e_k, ..)) / (2 eps)``.
    """
    args = [None if a is None else np.array(a, dtype=np.float64) for a in arrays]
    target = args[index]
    grad = np.zeros_like(target)
    flat = target.reshape(-1)        # view: edits are seen through `target`
    gflat = grad.reshape(-1)
    for e in range(flat.size):
        old = flat[e]
        flat[e] = old + eps
        fp = float(f(*args))
        flat[e] = old - eps
        fm = float(f(*args))
        flat[e] = old
        gflat[e] = (fp - fm) / (2.0 * eps)
    return grad
