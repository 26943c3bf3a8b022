"""check-impl for the losses.

Cross-entropy: ``backward(x, target, weight, grad_out) -> grad_x`` (or ``(grad_x,)``):
``weight`` is None unless the layer is ``weighted``; ``grad_out`` is shaped like the loss
(``(1,)`` for ``mean`` and ``sum``).  The targets of every case ignore one sample (the
second), so that the number of counted samples is not the batch.  The named mistakes:

- the mean not divided by the number of counted samples (not divided at all, divided by
  every sample including the ignored ones, or, weighted, by the count instead of the sum
  of the targets' weights);
- the one-hot subtracted without the softmax (``-onehot(y) / count``);
- (label smoothing) the smoothing left out of the gradient (``p - onehot(y)``).

MSE: ``backward(x, y, grad_out) -> grad_x``; mistakes: the mean not divided by the number
of elements, the factor 2 missing.
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from symbackprop.check.formula_check import FORMULAS, FormulaMistake, FormulaParts
from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake
from symbackprop.core.naming import to_grid
from symbackprop.kinds.loss.spec import CrossEntropyLoss, MSELoss
from symbackprop.kinds.softmax.check import softmax_along
from symbackprop.kinds.softmax.expand import softmax_rows
from symbackprop.kinds.softmax.functions import Probability

__all__ = ["CROSS_ENTROPY_MISTAKES", "MSE_MISTAKES"]


def _with_targets(layer, size, batch):
    """The layer with varied classes, the second sample (or position) ignored."""
    classes, *rest = size
    count = batch * math.prod(rest)
    targets = [(2 * n + 1) % classes for n in range(count)]
    if count >= 2:
        targets[1] = layer.ignore_index
    return layer.replace(target=tuple(targets))


def _cross_entropy_constants(derivation, rng) -> dict:
    layer, shape = derivation.layer, derivation.input_shape
    target = np.array(layer.targets(shape)).reshape((shape[0], *shape[2:]))
    constants = {"target": target}
    if layer.weighted:
        constants["c"] = rng.uniform(0.5, 2.0, shape[1])
    return constants


def _parts(case):
    """``(layer, p, q, counted, w_y, g)``: softmax, the smoothed weighted target a, which
    samples count, their weights, the upstream gradient broadcast over the classes."""
    layer = case.derivation.layer
    x, target = case.inputs["x"], case.inputs["target"]
    classes = x.shape[1]
    counted = target != layer.ignore_index
    safe = np.where(counted, target, 0)
    w = case.inputs["c"] if layer.weighted else np.ones(classes)
    along = (1, classes) + (1,) * (x.ndim - 2)
    onehot = (np.arange(classes).reshape(along) == np.expand_dims(safe, 1)) & \
        np.expand_dims(counted, 1)
    w_y = np.where(counted, w[safe], 0.0)
    eps = layer.label_smoothing
    a = (1 - eps) * np.expand_dims(w_y, 1) * onehot + \
        eps * w.reshape(along) / classes * np.expand_dims(counted, 1)
    g = case.inputs["g"]
    g = np.expand_dims(g, 1) if layer.reduction == "none" else g.reshape(())
    return layer, softmax_along(x, 1), a, onehot, counted, w_y, g


def _not_divided(case):
    layer, *_ , counted, w_y, _ = _parts(case)
    if layer.reduction != "mean":
        return
    truth = case.truth_with()["x"]
    total = w_y.sum()
    yield truth * total                          # not divided at all (the sum)
    yield truth * total / counted.size           # divided by every sample, ignored included
    yield truth * total / counted.shape[0]       # divided by the batch N
    if layer.weighted:
        yield truth * total / counted.sum()      # by the count, not the sum of the weights


def _onehot_only(case):
    layer, p, a, onehot, counted, w_y, g = _parts(case)
    divisor = w_y.sum() if layer.reduction == "mean" else 1.0
    yield -g * a / divisor
    yield -g * onehot / divisor


def _smoothing_left_out(case):
    layer, p, a, onehot, counted, w_y, g = _parts(case)
    if not layer.label_smoothing:
        return
    divisor = w_y.sum() if layer.reduction == "mean" else 1.0
    yield g * np.expand_dims(w_y, 1) * (p * np.expand_dims(counted, 1) - onehot) / divisor


CROSS_ENTROPY_MISTAKES = (
    Mistake("the mean not divided by the number of counted samples", "x",
            "reduction mean divides by the samples whose target is not ignore_index (weighted: "
            "the sum of their class weights); this one did not divide, divided by every "
            "sample (the batch, or every position) including the ignored ones, or "
            "(weighted) by their count", _not_divided,
            fit=False),
    Mistake("the one-hot subtracted without the softmax", "x",
            "dL/dx = (softmax(x) - onehot(y)) / count; this one is -onehot(y) / count: the "
            "softmax term, from the log-sum-exp, is missing", _onehot_only, fit=False),
    Mistake("the label smoothing left out of the gradient", "x",
            "with label smoothing eps the target is (1 - eps) onehot(y) + eps / C, in the "
            "gradient too: softmax(x) - q; this one used onehot(y)", _smoothing_left_out,
            fit=False),
)


def _mse_not_divided(case):
    if case.derivation.layer.reduction == "mean":
        yield case.truth_with()["x"] * case.inputs["x"].size


def _mse_half(case):
    yield case.truth_with()["x"] / 2


MSE_MISTAKES = (
    Mistake("the mean not divided by the number of elements", "x",
            "reduction mean divides the sum of squares, and so the gradient, by n, every "
            "element of x; this one did not", _mse_not_divided, fit=False),
    Mistake("the factor 2 missing", "x",
            "d (x - y)^2 / dx = 2 (x - y); this one is (x - y)", _mse_half, fit=False),
)


def _sizes(layer) -> list:
    return [(3,), (4,), (3, 2)]


IMPLEMENTATIONS.register(CrossEntropyLoss, Implementation(
    convention="backward(x, target, weight, grad_out) -> grad_x or (grad_x,); weight is None "
               "unless weighted",
    arguments=("x", "target", "c", "g"), mistakes=CROSS_ENTROPY_MISTAKES, sizes=_sizes,
    truth_layer=_with_targets, constants=_cross_entropy_constants,
    input_words=" (the second sample's target is ignore_index)",
    keywords=lambda layer: {"reduction": layer.reduction, "ignore_index": layer.ignore_index,
                            "label_smoothing": layer.label_smoothing}))
IMPLEMENTATIONS.register(MSELoss, Implementation(
    convention="backward(x, y, grad_out) -> grad_x or (grad_x,)",
    arguments=("x", "y", "g"), mistakes=MSE_MISTAKES, sizes=_sizes,
    constants=lambda derivation, rng: {"y": rng.standard_normal(derivation.input_shape)},
    keywords=lambda layer: {"reduction": layer.reduction}))
def _probabilities(derivation):
    """``p = softmax(x)`` over the classes (axis 1), as the derivation writes it."""
    x = to_grid(derivation.x)
    rows = softmax_rows(x, 1)
    p = np.empty(x.shape, dtype=object)
    for index in np.ndindex(*x.shape):
        p[index] = Probability(rows[index], sympy.Tuple(*index), sympy.Integer(1))
    return p


def _counted(derivation):
    """``N``: the samples the mean divides by (the weights of their classes if weighted;
    an ignored target is not counted)."""
    onehot = to_grid(derivation.constants["y"])
    if "c" in derivation.constants:
        shape = [1] * onehot.ndim
        shape[1] = -1
        onehot = onehot * to_grid(derivation.constants["c"]).reshape(shape)
    return sympy.Add(*onehot.flat)


def _upstream(derivation):
    """The upstream gradient as it multiplies every element (the reduced loss's one)."""
    g = to_grid(derivation.g)
    return g.flat[0] if g.size == 1 else 1


def _scaled(factor):
    def candidates(derivation):
        yield to_grid(derivation.grads["x"]) * factor(derivation)
    return candidates


def _softmax_left_out(derivation):
    p, y = _probabilities(derivation), to_grid(derivation.constants["y"])
    count, upstream = _counted(derivation), _upstream(derivation)
    for divisor in (count, 1):
        yield -y / p / divisor * upstream
        yield -y / divisor * upstream


_CROSS_ENTROPY_FORMULAS = FormulaParts(
    words="cross-entropy", implicit_upstream=True,
    quantities={"p": _probabilities, "y": "y", "N": _counted, "c": "c"},
    meanings={"y": "the one-hot targets"},
    mistakes=(
        FormulaMistake("not divided by N", "the mean reduction divides the loss, and so its "
                       "gradient, by the number N of counted samples", "x",
                       _scaled(_counted)),
        FormulaMistake("the softmax left out", "the loss is taken of p = softmax(x): the "
                       "gradient by the logits x goes through the softmax, -y/p times its "
                       "Jacobian, which gives p - y (divided by N)", "x",
                       _softmax_left_out),
    ))


def _elements(derivation):
    """``n``: the elements the mean divides by."""
    return math.prod(derivation.input_shape)


_MSE_FORMULAS = FormulaParts(
    words="mean squared error", implicit_upstream=True,
    quantities={"y": "y", "n": _elements, "N": _elements},
    meanings={"y": "the targets"},
    mistakes=(
        FormulaMistake("not divided by n", "the mean reduction divides by the number n of "
                       "elements", "x", _scaled(_elements)),
        FormulaMistake("the factor 2 missing", "the derivative of (x - y)^2 is 2 (x - y)",
                       "x", _scaled(lambda derivation: sympy.Rational(1, 2))),
    ))

FORMULAS.register(CrossEntropyLoss, _CROSS_ENTROPY_FORMULAS)
FORMULAS.register(MSELoss, _MSE_FORMULAS)
