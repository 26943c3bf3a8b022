"""check-impl for softmax and log-softmax: ``backward(x, grad_out) -> grad_x`` (or
``(grad_x,)``), and the named mistakes, each computed from the inputs:

- softmax: the Jacobian taken as diagonal, ``g * s (1 - s)`` (as if each output depended
  on its own input only, the sigmoid's rule);
- log-softmax: the ``sum(g)`` term missing, ``g - softmax(x)`` (the cross-entropy
  gradient's shape, right only when ``g`` sums to 1) or ``g`` alone.

The formula checker needs nothing more: the output ``a^{l}`` is the layer's ``z``.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.check.formula_check import FORMULAS, FormulaParts
from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake
from symbackprop.core.naming import to_grid
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax

__all__ = ["SOFTMAX_MISTAKES", "LOG_SOFTMAX_MISTAKES", "softmax_along"]


def softmax_along(x: np.ndarray, axis: int) -> np.ndarray:
    """``softmax(x)`` along ``axis``, the maximum subtracted first."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _axis(case) -> int:
    return case.derivation.layer.axis(case.inputs["x"].ndim)


def _diagonal(case):
    s = softmax_along(case.inputs["x"], _axis(case))
    yield case.inputs["g"] * s * (1 - s)


def _without_sum(case):
    g = case.inputs["g"]
    yield g - softmax_along(case.inputs["x"], _axis(case))
    yield g


SOFTMAX_MISTAKES = (
    Mistake("the softmax Jacobian taken as diagonal", "x",
            "every softmax output depends on every input along the axis: dL/dx = s * (g - "
            "sum(g * s)); this one is g * s * (1 - s), the diagonal of the Jacobian only",
            _diagonal, fit=False),
)
LOG_SOFTMAX_MISTAKES = (
    Mistake("log-softmax gradient missing the sum(g) term", "x",
            "dL/dx = g - softmax(x) * sum(g), the sum along the axis; this one left sum(g) "
            "out (g - softmax(x), right only when g sums to 1, or g alone)", _without_sum,
            fit=False),
)


def _sizes(layer) -> list:
    """Sizes (without the batch) with the layer's axis in them: ``C`` and ``C x L``."""
    rank = layer.dim + 1 if layer.dim >= 0 else -layer.dim
    extra = max(rank - 1, 1)
    sizes = [(4,) + (3,) * (extra - 1), (3,) + (2,) * (extra - 1), (5,) + (2,) * extra]
    return [size for size in sizes if len(size) <= 3]


def _probabilities(derivation):
    """``p``: the softmax of the input (a log-softmax's output is ``log p``)."""
    z = to_grid(derivation.z)
    if isinstance(derivation.layer, LogSoftmax):
        return np.vectorize(sympy.exp, otypes=[object])(z)
    return z


for _layer_type, _mistakes in ((Softmax, SOFTMAX_MISTAKES), (LogSoftmax, LOG_SOFTMAX_MISTAKES)):
    IMPLEMENTATIONS.register(_layer_type, Implementation(
        convention="backward(x, grad_out) -> grad_x or (grad_x,)", mistakes=_mistakes,
        sizes=_sizes, keywords=lambda layer: {"dim": layer.dim}))
    FORMULAS.register(_layer_type, FormulaParts(
        words=_layer_type.title.lower(),
        meanings={"z": f"the {_layer_type.title.lower()} output"},
        # p, the probabilities, as the notes write dL/dx = p (g - sum g p)
        quantities={"p": _probabilities}))
