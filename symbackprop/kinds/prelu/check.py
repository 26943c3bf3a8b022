"""check-impl for PReLU: ``backward(x, weight, grad_z) -> (grad_x, grad_weight)``, with
some inputs exactly 0 (where PyTorch takes the slope branch: ``x > 0`` is strict).

The known mistakes, each computed from the truth: the slope's gradient not summed over the
batch and the positions (one sample's share, a mean, an unreduced array, summed over one of
the two only); the slope's gradient summed over every element instead of those where
``x <= 0``; ``dL/dx`` taken from the right at 0 (``x >= 0`` instead of ``x > 0``).
"""

from __future__ import annotations

import numpy as np

from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake
from symbackprop.kinds.prelu.spec import PReLU


def input_with_zeros(rng: np.random.Generator, shape) -> np.ndarray:
    """Random normal numbers with about one element in six exactly 0 (at least one)."""
    x = rng.standard_normal(shape)
    zeros = rng.choice(x.size, max(1, x.size // 6), replace=False)
    x.flat[zeros] = 0.0
    return x


def _scaled(case) -> np.ndarray:
    """``g x`` where the slope was applied (``x <= 0``), 0 elsewhere: the terms of dL/dw."""
    x, g = case.inputs["x"], case.inputs["g"]
    return np.where(x > 0, 0.0, x * g)


def _other_axes(array) -> tuple:
    return tuple(axis for axis in range(array.ndim) if axis != 1)


def _not_summed(case):
    scaled = _scaled(case)
    per_channel = case.derivation.layer.num_parameters > 1
    spatial = tuple(range(2, scaled.ndim))
    yield scaled                                             # not reduced at all
    yield scaled[0].sum(axis=tuple(range(1, scaled.ndim - 1))) if per_channel \
        else scaled[0].sum()                                 # sample 0 only
    yield scaled.sum(axis=0)                                 # over the batch only
    if spatial:
        yield scaled.sum(axis=spatial)                       # over the positions only
    mean = scaled.mean(axis=_other_axes(scaled)) if per_channel else scaled.mean()
    yield np.atleast_1d(mean)                                # a mean, not a sum


def _every_element(case):
    x, g = case.inputs["x"], case.inputs["g"]
    terms = x * g
    per_channel = case.derivation.layer.num_parameters > 1
    yield np.atleast_1d(terms.sum(axis=_other_axes(terms)) if per_channel else terms.sum())


def _from_the_right(case):
    x = case.inputs["x"]
    if (x == 0).any():
        yield case.truth_with(x=np.where(x == 0, np.finfo(float).tiny, x))["x"]


#: Known mistakes of hand-written PReLU backward passes; the first that matches is named.
PRELU_MISTAKES = (
    Mistake("slope gradient not summed over the batch and positions", "w",
            "one slope serves every sample and position of its channel, so dL/dw_c is the sum "
            "of g x over all of them where x <= 0; this one kept one sample, one axis, or a "
            "mean", _not_summed, fit=False),
    Mistake("slope gradient summed over every element, not only where x <= 0", "w",
            "the slope only scales the inputs that are not positive, so only they add g x to "
            "dL/dw; this one added g x for the positive ones too", _every_element, fit=False),
    Mistake("dL/dx at 0 taken from the right (x >= 0 instead of x > 0)", "x",
            "at x = 0 PReLU takes the slope branch (z = w x), so dL/dx = w g there; this one "
            "used g, the value for x > 0", _from_the_right),
)


def _sizes(layer) -> list:
    channels = layer.num_parameters if layer.num_parameters > 1 else 2
    return [(channels, 3, 4), (channels, 4, 3), (channels,)]


IMPLEMENTATIONS.register(PReLU, Implementation(
    convention="backward(x, weight, grad_z) -> (grad_x, grad_weight)",
    arguments=("x", "w", "g"), gradients=("x", "w"), mistakes=PRELU_MISTAKES, sizes=_sizes,
    make_input=input_with_zeros, input_words=" (some elements exactly 0)"))
