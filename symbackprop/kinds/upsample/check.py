"""check-impl for upsampling: ``backward(x, grad_out) -> grad_x``, ``g`` summed over each
block, and its classic mistakes (one element of the block taken instead of the sum; the
block averaged, as average pooling would)."""

from __future__ import annotations

import numpy as np

from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake
from symbackprop.kinds.upsample.spec import Upsample

#: Input sizes ``(C, H, W)`` an upsampling backward pass runs on.
SIZES = ((2, 2, 3), (1, 3, 2))


def _blocks(case) -> np.ndarray:
    """``g`` as ``(N, C, H, sh, W, sw)``: each input element's block."""
    sh, sw = case.derivation.layer.scale_factor
    g = case.inputs["g"]
    n, c, height, width = g.shape
    return g.reshape(n, c, height // sh, sh, width // sw, sw)


def _one_element(case):
    blocks = _blocks(case)
    for p in range(blocks.shape[3]):
        for q in range(blocks.shape[5]):
            yield blocks[:, :, :, p, :, q]


def _averaged(case):
    yield _blocks(case).mean(axis=(3, 5))


MISTAKES = (
    Mistake("one element of the block taken instead of the sum", "x",
            "every element of x is copied into a whole block of z, so its gradient is the sum "
            "of g over that block; this one took a single element of the block "
            "(g[:, :, ::sh, ::sw], the forward's indexing run backwards)", _one_element),
    Mistake("block averaged instead of summed", "x",
            "the copies each pass the whole gradient back, so the block's g add up; this one "
            "divided by the block size, as average pooling's backward does", _averaged),
)

IMPLEMENTATIONS.register(Upsample, Implementation(
    convention="backward(x, grad_out) -> grad_x or (grad_x,)", mistakes=MISTAKES,
    sizes=lambda layer: list(SIZES), show_channels=True))
