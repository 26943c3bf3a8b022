"""check-impl for dropout: ``backward(x, mask, grad_out) -> grad_x`` (or ``(grad_x,)``),
the keep-mask of 0s and 1s given as the forward pass drew it.

The known mistakes, each computed from the truth: the ``1 / (1 - p)`` scale forgotten in
backward (``g * m``), and a fresh mask drawn in backward instead of the forward pass's.
"""

from __future__ import annotations

import numpy as np

from symbackprop.check.formula_check import FORMULAS, FormulaParts
from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake
from symbackprop.kinds.dropout.spec import Dropout

#: Input sizes a dropout backward pass runs on: feature maps and a feature vector.
SIZES = ((2, 3, 4), (1, 4, 3), (6,))


def keep_mask(rng: np.random.Generator, layer, shape) -> np.ndarray:
    """0s and 1s, each element kept with probability ``1 - p`` (at least one of each)."""
    mask = (rng.random(shape) >= layer.p).astype(float)
    if mask.size > 1:
        mask.flat[0], mask.flat[-1] = 0.0, 1.0
    return mask


def _no_scale(case):
    yield case.inputs["g"] * case.inputs["m"]


def _fresh_mask(case):
    """A mask other than the forward pass's: any gradient that is ``g / (1 - p)`` where the
    given mask drops an element, or 0 where it keeps one (seen on some element)."""
    g, m = case.inputs["g"], case.inputs["m"]
    expected = case.results["x"].expected if "x" in case.results else None
    given = case.results["x"].given if "x" in case.results else None
    if expected is None or given is None or np.shape(given) != g.shape:
        return
    scale = float(case.derivation.layer.scale)
    # each element is either g * scale or 0: the pattern of a (different) 0/1 mask
    other = np.where(np.isclose(given, g * scale), 1.0, 0.0)
    if (other != m).any() and np.allclose(given, g * other * scale):
        yield given


#: Known mistakes of hand-written dropout backward passes.
DROPOUT_MISTAKES = (
    Mistake("1/(1 - p) scale forgotten in backward", "x",
            "inverted dropout scales the kept elements by 1/(1 - p) in the forward pass, so "
            "dL/dx = g m / (1 - p) with the same scale; this one returned g m", _no_scale),
    Mistake("a fresh mask drawn in backward", "x",
            "the backward pass must use the mask the forward pass drew (an input of the layer); "
            "this one kept and dropped other elements, as a newly drawn mask does", _fresh_mask),
)


IMPLEMENTATIONS.register(Dropout, Implementation(
    convention="backward(x, mask, grad_out) -> grad_x or (grad_x,)",
    arguments=("x", "m", "g"), mistakes=DROPOUT_MISTAKES, sizes=lambda layer: list(SIZES),
    make_constants=lambda rng, layer, shapes: {"m": keep_mask(rng, layer, shapes["m"])},
    input_words=" with a random keep-mask"))


# -- what the formula checker needs: the keep-mask's names ------------------------------------
FORMULAS.register(Dropout, FormulaParts(
    words="dropout", names={"m": "m", "mask": "m"}, meanings={"m": "the keep-mask"}))
