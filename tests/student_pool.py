"""Hand-written pooling backward passes, as a student writes them: right ones and wrong ones.

Each function follows the module convention for a layer without parameters,
``backward(x, grad_out, kernel_size, stride, padding) -> grad_x`` (or the 1-tuple
``(grad_x,)``; average pooling also takes ``count_include_pad``), for a square
window and equal padding on all sides, written with the loops over the windows a
course teaches.  Every wrong one makes exactly one classic mistake, marked
``# MISTAKE``; tests/test_check_impl_pool.py checks that ``check_impl`` names it.
"""

import numpy as np


def windows(x, kernel_size, stride, padding):
    """Yield ``(n, c, i, j, rows, cols)``: each window as slices of x, clipped to x.

    Padding never belongs to x: the slices hold the window's input elements only.
    """
    stride = kernel_size if stride is None else stride
    batch, channels, height, width = x.shape
    out_h = (height + 2 * padding - kernel_size) // stride + 1
    out_w = (width + 2 * padding - kernel_size) // stride + 1
    for n in range(batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    top, left = i * stride - padding, j * stride - padding
                    rows = slice(max(top, 0), min(top + kernel_size, height))
                    cols = slice(max(left, 0), min(left + kernel_size, width))
                    yield n, c, i, j, rows, cols


# -- max pooling ---------------------------------------------------------------------------
def max_backward(x, grad_out, kernel_size=2, stride=None, padding=0):
    """Right: the whole gradient to the first maximum (numpy.argmax), shares added."""
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        window = x[n, c, rows, cols]
        r, q = np.unravel_index(np.argmax(window), window.shape)
        grad_x[n, c, rows.start + r, cols.start + q] += grad_out[n, c, i, j]
    return grad_x


def max_backward_tuple(x, grad_out, kernel_size=2, stride=None, padding=0):
    """Right, returning the 1-tuple of the module convention."""
    return (max_backward(x, grad_out, kernel_size, stride, padding),)


def max_backward_switches(x, grad_out, kernel_size=2, stride=None, padding=0):
    """Right, vectorised differently: the forward pass records where each maximum was
    (the "switches"), padding as -inf; the backward pass adds g there."""
    stride = kernel_size if stride is None else stride
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=-np.inf)
    grad_xp = np.zeros_like(xp)
    batch, channels, out_h, out_w = grad_out.shape
    for i in range(out_h):
        for j in range(out_w):
            window = xp[:, :, i * stride:i * stride + kernel_size,
                        j * stride:j * stride + kernel_size].reshape(batch, channels, -1)
            switch = np.argmax(window, axis=2)
            rows, cols = np.divmod(switch, kernel_size)
            for n in range(batch):
                for c in range(channels):
                    grad_xp[n, c, i * stride + rows[n, c], j * stride + cols[n, c]] += \
                        grad_out[n, c, i, j]
    return grad_xp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]


def max_backward_copy_to_window(x, grad_out, kernel_size=2, stride=None, padding=0):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        grad_x[n, c, rows, cols] += grad_out[n, c, i, j]  # MISTAKE: to every element
    return grad_x


def max_backward_mask(x, grad_out, kernel_size=2, stride=None, padding=0):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        window = x[n, c, rows, cols]
        mask = window == window.max()  # MISTAKE: every tied maximum gets g
        grad_x[n, c, rows, cols] += mask * grad_out[n, c, i, j]
    return grad_x


def max_backward_split_ties(x, grad_out, kernel_size=2, stride=None, padding=0):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        window = x[n, c, rows, cols]
        mask = window == window.max()
        grad_x[n, c, rows, cols] += mask / mask.sum() * grad_out[n, c, i, j]  # MISTAKE: g/k
    return grad_x


def max_backward_last_maximum(x, grad_out, kernel_size=2, stride=None, padding=0):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        window = x[n, c, rows, cols]
        best = None
        for r in range(window.shape[0]):
            for q in range(window.shape[1]):
                if best is None or window[r, q] >= window[best]:  # MISTAKE: >= keeps the last
                    best = (r, q)
        grad_x[n, c, rows.start + best[0], cols.start + best[1]] += grad_out[n, c, i, j]
    return grad_x


def max_backward_overwrite(x, grad_out, kernel_size=2, stride=None, padding=0):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        window = x[n, c, rows, cols]
        r, q = np.unravel_index(np.argmax(window), window.shape)
        grad_x[n, c, rows.start + r, cols.start + q] = grad_out[n, c, i, j]  # MISTAKE: = not +=
    return grad_x


def max_backward_zero_padding(x, grad_out, kernel_size=2, stride=None, padding=0):
    stride = kernel_size if stride is None else stride
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))  # MISTAKE: zeros
    grad_xp = np.zeros_like(xp)
    for n, c, i, j, rows, cols in windows(xp, kernel_size, stride, 0):
        window = xp[n, c, rows, cols]
        r, q = np.unravel_index(np.argmax(window), window.shape)
        grad_xp[n, c, rows.start + r, cols.start + q] += grad_out[n, c, i, j]
    return grad_xp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]


def max_backward_padding_not_removed(x, grad_out, kernel_size=2, stride=None, padding=0):
    stride = kernel_size if stride is None else stride
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                constant_values=-np.inf)
    grad_xp = np.zeros_like(xp)
    for n, c, i, j, rows, cols in windows(xp, kernel_size, stride, 0):
        window = xp[n, c, rows, cols]
        r, q = np.unravel_index(np.argmax(window), window.shape)
        grad_xp[n, c, rows.start + r, cols.start + q] += grad_out[n, c, i, j]
    return grad_xp  # MISTAKE: the padded input's gradient, padding rows and columns included


def max_backward_returns_pair(x, grad_out, kernel_size=2, stride=None, padding=0):
    # MISTAKE: a layer without parameters returns grad_x alone or (grad_x,)
    return max_backward(x, grad_out, kernel_size, stride, padding), None


def max_backward_raises(x, grad_out, kernel_size=2, stride=None, padding=0):
    return np.kron(grad_out, np.ones((1, 1, kernel_size, kernel_size))).reshape(x.shape)  # MISTAKE


# -- average pooling -----------------------------------------------------------------------
def avg_backward(x, grad_out, kernel_size=2, stride=None, padding=0, count_include_pad=True):
    """Right: every element of a window gets g / divisor, shares added."""
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        count = (rows.stop - rows.start) * (cols.stop - cols.start)
        divisor = kernel_size * kernel_size if count_include_pad else count
        grad_x[n, c, rows, cols] += grad_out[n, c, i, j] / divisor
    return grad_x


def avg_backward_kron(x, grad_out, kernel_size=2):
    """Right for windows side by side without padding: kron(g, ones(k, k)) / k^2, the
    rows and columns the forward pass never reads left at 0."""
    spread = np.kron(grad_out, np.ones((1, 1, kernel_size, kernel_size))) / kernel_size ** 2
    grad_x = np.zeros_like(x)
    grad_x[:, :, :spread.shape[2], :spread.shape[3]] = spread
    return (grad_x,)


def avg_backward_kron_uncropped(x, grad_out, kernel_size=2):
    # MISTAKE: assumes the window divides the input evenly; the unread rows are missing
    return np.kron(grad_out, np.ones((1, 1, kernel_size, kernel_size))) / kernel_size ** 2


def avg_backward_not_divided(x, grad_out, kernel_size=2, stride=None, padding=0,
                             count_include_pad=True):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        grad_x[n, c, rows, cols] += grad_out[n, c, i, j]  # MISTAKE: no divisor
    return grad_x


def avg_backward_area_divisor(x, grad_out, kernel_size=2, stride=None, padding=0,
                              count_include_pad=True):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        # MISTAKE: always the window's area, whatever count_include_pad says
        grad_x[n, c, rows, cols] += grad_out[n, c, i, j] / kernel_size ** 2
    return grad_x


def avg_backward_count_divisor(x, grad_out, kernel_size=2, stride=None, padding=0,
                               count_include_pad=True):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        count = (rows.stop - rows.start) * (cols.stop - cols.start)
        # MISTAKE: always the input elements of the window, whatever count_include_pad says
        grad_x[n, c, rows, cols] += grad_out[n, c, i, j] / count
    return grad_x


def avg_backward_overwrite(x, grad_out, kernel_size=2, stride=None, padding=0,
                           count_include_pad=True):
    grad_x = np.zeros_like(x)
    for n, c, i, j, rows, cols in windows(x, kernel_size, stride, padding):
        count = (rows.stop - rows.start) * (cols.stop - cols.start)
        divisor = kernel_size * kernel_size if count_include_pad else count
        grad_x[n, c, rows, cols] = grad_out[n, c, i, j] / divisor  # MISTAKE: = not +=
    return grad_x


def avg_backward_overwrite_by_offset(x, grad_out, kernel_size=2, stride=None, padding=0,
                                     count_include_pad=True):
    """Vectorised over the windows, one strided slice per kernel offset (no padding)."""
    stride = kernel_size if stride is None else stride
    grad_x = np.zeros_like(x)
    _, _, out_h, out_w = grad_out.shape
    for m in range(kernel_size):
        for k in range(kernel_size):
            rows = slice(m, m + stride * (out_h - 1) + 1, stride)
            cols = slice(k, k + stride * (out_w - 1) + 1, stride)
            grad_x[:, :, rows, cols] = grad_out / kernel_size ** 2  # MISTAKE: = not +=
    return grad_x
