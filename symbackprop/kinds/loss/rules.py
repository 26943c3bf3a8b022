"""The losses' closed forms, proven against every derived element.

- cross-entropy: ``dL/dx = g (softmax(x) - onehot(y)) / count`` (``mean``; ``sum``
  without the division, ``none`` with each sample's ``g``); with label smoothing the
  one-hot becomes ``q = (1 - eps) onehot(y) + eps / C``; with class weights ``w``,
  ``dL/dx = g (softmax(x) sum_c a_c - a) / sum w_y`` with ``a = (1 - eps) w_y onehot(y) +
  eps w / C`` (``sum_c a_c = w_y`` without smoothing: ``g w_y (softmax(x) - onehot(y))
  / sum w_y``); ignored samples get 0.
- MSE: ``dL/dx = 2 g (x - y) / n`` (``mean``, ``n`` the number of elements).
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from symbackprop.core.naming import to_grid
from symbackprop.core.rules import PROOFS
from symbackprop.kinds.loss.expand import class_coefficients
from symbackprop.kinds.loss.spec import CrossEntropyLoss, MSELoss
from symbackprop.kinds.softmax.expand import softmax_rows
from symbackprop.kinds.softmax.functions import Probability
from symbackprop.kinds.softmax.rules import prove_elements

__all__ = ["cross_entropy_statement", "mse_statement", "closed_form_cross_entropy",
           "closed_form_mse"]


def cross_entropy_statement(layer, dx: str = "dL/dx", g: str = "g", x: str = "x") -> str:
    """The closed form of ``layer``'s input gradient, in words (in the reader's names)."""
    divided = {"mean": " / count" if not layer.weighted else " / sum w_y",
               "sum": "", "none": ""}[layer.reduction]
    g = f"{g}_i" if layer.reduction == "none" else g
    ignored = ", 0 for an ignored sample" if layer.ignore_index in (layer.target or ()) else ""
    if layer.weighted and layer.label_smoothing:
        return (f"{dx} = {g} (softmax({x}) sum_c a_c - a){divided}, a = (1 - eps) w_y "
                f"onehot(y) + eps w / C{ignored}")
    if layer.weighted:
        return f"{dx} = {g} w_y (softmax({x}) - onehot(y)){divided}{ignored}"
    if layer.label_smoothing:
        return (f"{dx} = {g} (softmax({x}) - q){divided}, q = (1 - eps) onehot(y) + eps / C"
                f"{ignored}")
    return f"{dx} = {g} (softmax({x}) - onehot(y)){divided}{ignored}"


def mse_statement(layer, dx: str = "dL/dx", g: str = "g", x: str = "x") -> str:
    return {"mean": f"{dx} = 2 {g} ({x} - y) / n, n the number of elements",
            "sum": f"{dx} = 2 {g} ({x} - y)",
            "none": f"{dx} = 2 {g}_i ({x} - y)"}[layer.reduction]


def closed_form_cross_entropy(layer, x, g, weights=None) -> np.ndarray:
    """The closed form on object arrays: ``x`` the logit symbols, ``g`` the loss's
    upstream gradient, ``weights`` the class weight symbols (``None``: unweighted)."""
    batch, classes, *rest = x.shape
    weights = [sympy.Integer(1)] * classes if weights is None else list(weights)
    rows = softmax_rows(x, 1)
    targets = layer.targets(x.shape)
    counted = sympy.Add(*[weights[t] for t in targets if t != layer.ignore_index])
    out = np.empty(x.shape, dtype=object)
    out[...] = sympy.Integer(0)
    for target, position in zip(targets, np.ndindex(batch, *rest)):
        if target == layer.ignore_index:
            continue
        upstream = g[position] if layer.reduction == "none" else g[0]
        divisor = counted if layer.reduction == "mean" else 1
        a = class_coefficients(layer, target, classes, weights)
        total = sympy.Add(*a)
        for c in range(classes):
            index = (position[0], c, *position[1:])
            p = Probability(rows[index], sympy.Tuple(*index), sympy.Integer(1))
            out[index] = upstream * (p * total - a[c]) / divisor
    return out


def closed_form_mse(layer, x, y, g) -> np.ndarray:
    n = math.prod(x.shape) if layer.reduction == "mean" else 1
    upstream = g if layer.reduction == "none" else g[0]
    return 2 * upstream * (x - y) / n


def _prove_cross_entropy(derivation):
    layer = derivation.layer
    weights = to_grid(derivation.constants["c"]) if layer.weighted else None
    closed = closed_form_cross_entropy(layer, to_grid(derivation.x), to_grid(derivation.g),
                                       weights)
    return (prove_elements("grad_x", cross_entropy_statement(layer), closed,
                           derivation.grads["x"]),)


def _prove_mse(derivation):
    layer = derivation.layer
    closed = closed_form_mse(layer, to_grid(derivation.x), to_grid(derivation.constants["y"]),
                             to_grid(derivation.g))
    return (prove_elements("grad_x", mse_statement(layer), closed, derivation.grads["x"]),)


PROOFS.register(CrossEntropyLoss, _prove_cross_entropy)
PROOFS.register(MSELoss, _prove_mse)
