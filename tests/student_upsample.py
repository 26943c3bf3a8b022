"""Hand-written nearest-upsampling backward passes, as a student writes them (wrong ones
marked ``# MISTAKE``); ``backward(x, grad_out, scale_factor) -> grad_x``."""

import numpy as np


def _scale(scale_factor):
    return tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2


def backward(x, grad_out, scale_factor=2):
    """Right: the sum of g over each block."""
    sh, sw = _scale(scale_factor)
    grad = np.zeros_like(x)
    for a in range(x.shape[2]):
        for b in range(x.shape[3]):
            grad[:, :, a, b] = grad_out[:, :, a * sh:(a + 1) * sh, b * sw:(b + 1) * sw].sum(
                axis=(2, 3))
    return grad


def backward_picks_one(x, grad_out, scale_factor=2):
    sh, sw = _scale(scale_factor)
    return grad_out[:, :, ::sh, ::sw].copy()  # MISTAKE: one element, not the sum


def backward_averages(x, grad_out, scale_factor=2):
    sh, sw = _scale(scale_factor)
    return backward(x, grad_out, scale_factor) / (sh * sw)  # MISTAKE: averaged
