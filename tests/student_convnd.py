"""Hand-written Conv1d/Conv3d backward passes, as a student writes them: one right, the
rest with one classic mistake each (marked ``# MISTAKE``).

Convention ``backward(x, w, b, grad_z, stride, padding, dilation) -> (grad_x, grad_w,
grad_b)`` with groups 1; the sums are the loops of tests/reference_convnd.py, and each
mistake changes what goes into them.  tests/test_convnd_check.py checks that
``check_impl`` names each mistake.
"""

import numpy as np
from reference_convnd import conv_backward_loops


def _per_axis(value, axes):
    return (value,) * axes if np.ndim(value) == 0 else tuple(value)


def _pairs(padding, axes):
    if np.ndim(padding) == 0:
        return ((padding, padding),) * axes
    flat = tuple(padding)
    if len(flat) == axes:
        return tuple((p, p) for p in flat)
    return tuple(zip(flat[::2], flat[1::2]))


def _flip(w):
    return w[(slice(None), slice(None), *(slice(None, None, -1),) * (w.ndim - 2))]


def _grads(x, w, b, grad_z, stride, padding, dilation):
    axes = x.ndim - 2
    return conv_backward_loops(x, w, b, grad_z, _per_axis(stride, axes), _pairs(padding, axes),
                               _per_axis(dilation, axes))


def backward(x, w, b, grad_z, stride, padding, dilation):
    return _grads(x, w, b, grad_z, stride, padding, dilation)


def backward_kernel_not_flipped(x, w, b, grad_z, stride, padding, dilation):
    grad_x, grad_w, grad_b = _grads(x, w, b, grad_z, stride, padding, dilation)
    grad_x = _grads(x, _flip(w), b, grad_z, stride, padding, dilation)[0]  # MISTAKE
    return grad_x, grad_w, grad_b


def backward_channels_not_swapped(x, w, b, grad_z, stride, padding, dilation):
    grad_x, grad_w, grad_b = _grads(x, w, b, grad_z, stride, padding, dilation)
    grad_x = _grads(x, w.swapaxes(0, 1), b, grad_z, stride, padding, dilation)[0]  # MISTAKE
    return grad_x, grad_w, grad_b


def backward_grad_w_flipped(x, w, b, grad_z, stride, padding, dilation):
    grad_x, grad_w, grad_b = _grads(x, w, b, grad_z, stride, padding, dilation)
    return grad_x, _flip(grad_w), grad_b  # MISTAKE


def backward_grad_w_channels_exchanged(x, w, b, grad_z, stride, padding, dilation):
    grad_x, grad_w, grad_b = _grads(x, w, b, grad_z, stride, padding, dilation)
    return grad_x, grad_w.swapaxes(0, 1), grad_b  # MISTAKE


def backward_bias_first_sample(x, w, b, grad_z, stride, padding, dilation):
    grad_x, grad_w, _ = _grads(x, w, b, grad_z, stride, padding, dilation)
    return grad_x, grad_w, grad_z[0].sum(axis=tuple(range(1, grad_z.ndim - 1)))  # MISTAKE


def backward_padding_not_removed(x, w, b, grad_z, stride, padding, dilation):
    axes = x.ndim - 2
    pairs = _pairs(padding, axes)
    xp = np.pad(x, ((0, 0), (0, 0), *pairs))
    grad_xp, grad_w, grad_b = _grads(xp, w, b, grad_z, stride, 0, dilation)
    return grad_xp, grad_w, grad_b  # MISTAKE: the padded input's gradient


def backward_stride_dilation_forgotten(x, w, b, grad_z, stride, padding, dilation):
    """The textbook closed form, with g never dilated by the stride."""
    axes = x.ndim - 2
    grad_x, grad_w, grad_b = _grads(x, w, b, grad_z, stride, padding, dilation)
    pairs = _pairs(padding, axes)
    dilation = _per_axis(dilation, axes)
    reach = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
    xp_sizes = [before + n + after for (before, after), n in zip(pairs, x.shape[2:])]
    pads = [(r, size - length) for r, size, length in zip(reach, xp_sizes, grad_z.shape[2:])]
    g = np.zeros(grad_z.shape[:2] + tuple(n + before + max(after, 0)
                                          for n, (before, after) in zip(grad_z.shape[2:], pads)))
    g[(slice(None), slice(None), *(slice(before, before + n)
                                  for (before, _), n in zip(pads, grad_z.shape[2:])))] = grad_z
    # MISTAKE: g is padded but not dilated; correlate with the flipped kernel
    flipped = _flip(w)
    grad_xp = np.zeros((x.shape[0], x.shape[1], *xp_sizes))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for index in np.ndindex(*xp_sizes):
                total = 0.0
                for o in range(w.shape[0]):
                    for offset in np.ndindex(*w.shape[2:]):
                        at = tuple(i + d * m for i, d, m in zip(index, dilation, offset))
                        if all(a < s for a, s in zip(at, g.shape[2:])):
                            total += g[(n, o, *at)] * flipped[(o, c, *offset)]
                grad_xp[(n, c, *index)] = total
    inside = tuple(slice(before, before + n) for (before, _), n in zip(pairs, x.shape[2:]))
    return grad_xp[(slice(None), slice(None), *inside)], grad_w, grad_b
