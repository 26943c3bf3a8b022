"""Hand-written conv2d backward passes, as a student writes them: one right, the rest wrong.

Each function follows the module convention ``backward(x, w, b, grad_z, stride,
padding) -> (grad_x, grad_w, grad_b)`` for a convolution with groups 1, dilation
1, a square kernel and equal padding on all sides, written in the closed form the
course notes teach (dilate g by the stride, pad, correlate with the kernel rotated
by 180 degrees).  Every wrong one makes exactly one classic mistake, marked
``# MISTAKE``; tests/test_check_impl.py checks that ``check_impl`` names it.
"""

import numpy as np


def correlate(a, k):
    """Valid 2-D cross-correlation: out[i, j] = sum_{m,n} k[m, n] a[i+m, j+n]."""
    out = np.zeros((a.shape[0] - k.shape[0] + 1, a.shape[1] - k.shape[1] + 1))
    for m in range(k.shape[0]):
        for n in range(k.shape[1]):
            out += k[m, n] * a[m:m + out.shape[0], n:n + out.shape[1]]
    return out


def dilate(g, s):
    """Put s-1 zeros between the rows and the columns of g."""
    out = np.zeros(((g.shape[0] - 1) * s + 1, (g.shape[1] - 1) * s + 1))
    out[::s, ::s] = g
    return out


def place(grad_x, n, c, region):
    """Add region to grad_x[n, c] from the top left; rows never read stay 0."""
    rows, cols = min(region.shape[0], grad_x.shape[2]), min(region.shape[1], grad_x.shape[3])
    grad_x[n, c, :rows, :cols] += region[:rows, :cols]


def grad_w_correct(x, w, grad_z, stride, padding):
    kernel = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    grad_w = np.zeros_like(w)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = dilate(grad_z[n, o], stride)
            for c in range(w.shape[1]):
                read = xp[n, c, :gd.shape[0] + kernel - 1, :gd.shape[1] + kernel - 1]
                grad_w[o, c] += correlate(read, gd)
    return grad_w


def grad_x_correct(x, w, grad_z, stride, padding):
    kernel = w.shape[2]
    grad_x = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = dilate(grad_z[n, o], stride)
            for c in range(w.shape[1]):
                full = correlate(np.pad(gd, kernel - 1), np.rot90(w[o, c], 2))
                place(grad_x, n, c, full[padding:, padding:])
    return grad_x


def backward(x, w, b, grad_z, stride=1, padding=0):
    """Right."""
    return (grad_x_correct(x, w, grad_z, stride, padding),
            grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.sum(axis=(0, 2, 3)))


def backward_kernel_not_rotated(x, w, b, grad_z, stride=1, padding=0):
    kernel = w.shape[2]
    grad_x = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = dilate(grad_z[n, o], stride)
            for c in range(w.shape[1]):
                full = correlate(np.pad(gd, kernel - 1), w[o, c])  # MISTAKE: not rot180
                place(grad_x, n, c, full[padding:, padding:])
    return (grad_x, grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.sum(axis=(0, 2, 3)))


def backward_stride_not_undone(x, w, b, grad_z, stride=1, padding=0):
    kernel = w.shape[2]
    grad_x = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = grad_z[n, o]  # MISTAKE: no zeros inserted between rows/columns
            for c in range(w.shape[1]):
                full = correlate(np.pad(gd, kernel - 1), np.rot90(w[o, c], 2))
                place(grad_x, n, c, full[padding:, padding:])
    return (grad_x, grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.sum(axis=(0, 2, 3)))


def backward_stride_not_undone_in_grad_w(x, w, b, grad_z, stride=1, padding=0):
    kernel = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    grad_w = np.zeros_like(w)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = grad_z[n, o]  # MISTAKE: g used as the kernel without its stride zeros
            for c in range(w.shape[1]):
                read = xp[n, c, :gd.shape[0] + kernel - 1, :gd.shape[1] + kernel - 1]
                grad_w[o, c] += correlate(read, gd)
    return (grad_x_correct(x, w, grad_z, stride, padding), grad_w,
            grad_z.sum(axis=(0, 2, 3)))


def backward_padding_off_by_one(x, w, b, grad_z, stride=1, padding=0):
    kernel = w.shape[2]
    grad_x = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = dilate(grad_z[n, o], stride)
            for c in range(w.shape[1]):
                # MISTAKE: pads g by K - p, one more than K - 1 - p, then reads from the corner
                full = correlate(np.pad(gd, kernel - padding), np.rot90(w[o, c], 2))
                place(grad_x, n, c, full)
    return (grad_x, grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.sum(axis=(0, 2, 3)))


def backward_padding_off_by_one_in_grad_w(x, w, b, grad_z, stride=1, padding=0):
    # MISTAKE: the input is padded by padding + 1 for the kernel gradient
    return (grad_x_correct(x, w, grad_z, stride, padding),
            grad_w_correct(x, w, grad_z, stride, padding + 1),
            grad_z.sum(axis=(0, 2, 3)))


def backward_bias_first_sample(x, w, b, grad_z, stride=1, padding=0):
    return (grad_x_correct(x, w, grad_z, stride, padding),
            grad_w_correct(x, w, grad_z, stride, padding),
            grad_z[0].sum(axis=(1, 2)))  # MISTAKE: only the first sample of the batch


def backward_bias_batch_mean(x, w, b, grad_z, stride=1, padding=0):
    return (grad_x_correct(x, w, grad_z, stride, padding),
            grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.mean(axis=0).sum(axis=(1, 2)))  # MISTAKE: mean over the batch


def backward_channels_not_swapped(x, w, b, grad_z, stride=1, padding=0):
    kernel = w.shape[2]
    grad_x = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = dilate(grad_z[n, o], stride)
            for c in range(w.shape[1]):
                full = correlate(np.pad(gd, kernel - 1), np.rot90(w[c, o], 2))  # MISTAKE: w[c, o]
                place(grad_x, n, c, full[padding:, padding:])
    return (grad_x, grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.sum(axis=(0, 2, 3)))


def backward_grad_w_channels_swapped(x, w, b, grad_z, stride=1, padding=0):
    grad_w = grad_w_correct(x, w, grad_z, stride, padding)
    return (grad_x_correct(x, w, grad_z, stride, padding),
            grad_w.transpose(1, 0, 2, 3),  # MISTAKE: stored as [c, o]
            grad_z.sum(axis=(0, 2, 3)))


def backward_grad_w_rotated(x, w, b, grad_z, stride=1, padding=0):
    grad_w = grad_w_correct(x, w, grad_z, stride, padding)
    return (grad_x_correct(x, w, grad_z, stride, padding),
            np.rot90(grad_w, 2, axes=(2, 3)),  # MISTAKE: the kernel gradient rotated by 180
            grad_z.sum(axis=(0, 2, 3)))


def backward_bias_last_sample(x, w, b, grad_z, stride=1, padding=0):
    grad_b = np.zeros(w.shape[0])
    for n in range(x.shape[0]):
        grad_b = grad_z[n].sum(axis=(1, 2))  # MISTAKE: = instead of +=, the last sample wins
    return (grad_x_correct(x, w, grad_z, stride, padding),
            grad_w_correct(x, w, grad_z, stride, padding), grad_b)


def backward_bias_per_sample(x, w, b, grad_z, stride=1, padding=0):
    return (grad_x_correct(x, w, grad_z, stride, padding),
            grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.sum(axis=(2, 3)))  # MISTAKE: one row per sample, not summed over the batch


def backward_padding_not_cropped(x, w, b, grad_z, stride=1, padding=0):
    kernel = w.shape[2]
    grad_xp = None
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = dilate(grad_z[n, o], stride)
            for c in range(w.shape[1]):
                full = correlate(np.pad(gd, kernel - 1), np.rot90(w[o, c], 2))
                if grad_xp is None:
                    grad_xp = np.zeros(x.shape[:2] + full.shape)
                grad_xp[n, c] += full
    # MISTAKE: returns the gradient of the padded input, padding rows included
    return (grad_xp, grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.sum(axis=(0, 2, 3)))


def backward_assumes_even_stride(x, w, b, grad_z, stride=1, padding=0):
    kernel, height, width = w.shape[2], x.shape[2], x.shape[3]
    grad_x = np.zeros_like(x)
    for n in range(x.shape[0]):
        for o in range(w.shape[0]):
            gd = dilate(grad_z[n, o], stride)
            for c in range(w.shape[1]):
                full = correlate(np.pad(gd, kernel - 1), np.rot90(w[o, c], 2))
                # MISTAKE: assumes full covers every row of x (fails if the stride leaves some)
                grad_x[n, c] += full[padding:padding + height, padding:padding + width]
    return (grad_x, grad_w_correct(x, w, grad_z, stride, padding),
            grad_z.sum(axis=(0, 2, 3)))


def backward_raises(x, w, b, grad_z, stride=1, padding=0):
    grad_x = grad_z.reshape(x.shape)  # MISTAKE: g is smaller than x
    return grad_x, grad_w_correct(x, w, grad_z, stride, padding), grad_z.sum(axis=(0, 2, 3))


def backward_returns_two(x, w, b, grad_z, stride=1, padding=0):
    return grad_x_correct(x, w, grad_z, stride, padding), grad_z.sum(axis=(0, 2, 3))
