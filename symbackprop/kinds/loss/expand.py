"""Expand the losses: the loss (or each sample's loss) as one expression of every input.

Cross-entropy, per counted sample ``i`` with class ``y_i`` (the layer's ``targets``):
``l_i = -sum_c a_ic log p_ic``, ``a_ic = (1 - eps) w_{y_i} [c = y_i] + eps w_c / C``,
``log p`` the :class:`~symbackprop.kinds.softmax.functions.LogSoftmaxOutput` of the
sample's row of logits; the written form spells out ``log(sum exp(x)) - x_y``.  MSE:
``(x - y)^2`` with the targets ``y`` as symbols.  The targets (one-hot ``y`` for
cross-entropy, ``y`` for MSE) and the class weights ``c`` are ``Forward.constants``:
read, never differentiated by.
"""

from __future__ import annotations

import math

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.expand import EXPAND, Forward
from symbackprop.core.naming import symbol_grid, to_array
from symbackprop.kinds.loss.spec import CrossEntropyLoss, MSELoss
from symbackprop.kinds.softmax.expand import softmax_rows
from symbackprop.kinds.softmax.functions import (
    LogSoftmaxOutput,
    WrittenLogSumExp,
    WrittenNegativeLogSoftmax,
)

__all__ = ["WrittenQuotient", "smoothing_fraction", "class_coefficients"]


class WrittenQuotient(sympy.Function):
    """Printed only: ``(numerator) / (denominator)``, a mean as a person writes it."""

    nargs = 2


def smoothing_fraction(layer) -> sympy.Rational:
    """``label_smoothing`` as the exact fraction of its decimal text (0.1 -> 1/10)."""
    return sympy.Rational(repr(layer.label_smoothing))


def class_coefficients(layer, target: int, classes: int, weights) -> list:
    """``a_c`` of one sample: ``(1 - eps) w_y [c = y] + eps w_c / C`` for every class ``c``."""
    eps = smoothing_fraction(layer)
    return [(1 - eps) * weights[target] * (1 if c == target else 0) + eps * weights[c] / classes
            for c in range(classes)]


def _written_sample(read, total):
    """One sample's loss as a person writes it: ``log(sum exp(x)) - x_y``; smoothed,
    ``A log(sum exp(x)) - sum_c a_c x_c`` (one log per sample, ``A = sum_c a_c``)."""
    if len(read) == 1:
        coefficient, arguments = read[0]
        term = WrittenNegativeLogSoftmax(*arguments)
        return term if coefficient == 1 else sympy.Mul(coefficient, term, evaluate=False)
    log_sum = WrittenLogSumExp(*read[0][1])
    row = read[0][1][0]
    parts = [log_sum if total == 1 else sympy.Mul(total, log_sum, evaluate=False)]
    for coefficient, arguments in read:
        value = row[int(arguments[1][1])]
        parts.append(sympy.Mul(*sympy.Mul.make_args(-coefficient), value, evaluate=False))
    return sympy.Add(*parts, evaluate=False)


def _reduce(layer, per_sample: np.ndarray, written: np.ndarray, counted_weight):
    """The loss and its written form: ``mean``/``sum`` of the samples, or each of them."""
    if layer.reduction == "none":
        return per_sample, written
    total = sympy.Add(*per_sample.flat)
    shown = sympy.Add(*[term for term in written.flat if term != 0], evaluate=False) \
        if any(term != 0 for term in written.flat) else sympy.Integer(0)
    if layer.reduction == "mean":
        total = total / counted_weight
        shown = WrittenQuotient(shown, counted_weight) if counted_weight != 1 else shown
    return np.array([total], dtype=object), np.array([shown], dtype=object)


def _forward(x, g, z, written, constants) -> Forward:
    products = np.empty(g.shape, dtype=object)
    for index in np.ndindex(*g.shape):
        products[index] = ((written[index],),)
    return Forward(x=to_array(x), params={}, g=to_array(g), z=to_array(z),
                   z_products=products, constants=constants)


@EXPAND.register(CrossEntropyLoss)
def _cross_entropy(layer, input_shape) -> Forward:
    batch, classes, *rest = input_shape
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", layer.output_shape_for(input_shape))
    weights = symbol_grid("c", (classes,)) if layer.weighted else [sympy.Integer(1)] * classes
    rows = softmax_rows(x, 1)
    targets = layer.targets(input_shape)
    onehot = np.zeros(input_shape, dtype=object)
    onehot[...] = sympy.Integer(0)
    per_sample = np.empty((batch, *rest), dtype=object)
    written = np.empty((batch, *rest), dtype=object)
    counted = []
    positions = list(np.ndindex(batch, *rest))
    for target, position in progress.track(zip(targets, positions), "expanding the loss",
                                           len(positions), unit="samples"):
        if target == layer.ignore_index:  # contributes nothing, is not counted
            per_sample[position] = written[position] = sympy.Integer(0)
            continue
        counted.append(weights[target])
        onehot[(position[0], target, *position[1:])] = sympy.Integer(1)
        terms, read = [], []
        coefficients = class_coefficients(layer, target, classes, weights)
        for c, coefficient in enumerate(coefficients):
            if coefficient == 0:
                continue
            arguments = (rows[(position[0], c, *position[1:])],
                         sympy.Tuple(position[0], c, *position[1:]), sympy.Integer(1))
            terms.append(-coefficient * LogSoftmaxOutput(*arguments))
            read.append((coefficient, arguments))
        per_sample[position] = sympy.Add(*terms)
        written[position] = _written_sample(read, sympy.Add(*coefficients))
    counted_weight = sympy.Add(*counted) if counted else sympy.Integer(0)
    z, shown = _reduce(layer, per_sample, written, counted_weight)
    constants = {"y": to_array(onehot)}
    if layer.weighted:
        constants["c"] = to_array(np.array(weights, dtype=object))
    return _forward(x, g, z, shown, constants)


@EXPAND.register(MSELoss)
def _mse(layer, input_shape) -> Forward:
    x = symbol_grid("x", input_shape)
    y = symbol_grid("y", input_shape)
    g = symbol_grid("g", layer.output_shape_for(input_shape))
    squares = np.empty(input_shape, dtype=object)
    written = np.empty(input_shape, dtype=object)
    for index in np.ndindex(*input_shape):
        squares[index] = (x[index] - y[index]) ** 2
        written[index] = sympy.Pow(sympy.Add(x[index], -y[index], evaluate=False), 2,
                                   evaluate=False)
    z, shown = _reduce(layer, squares, written, sympy.Integer(math.prod(input_shape)))
    return _forward(x, g, z, shown, {"y": to_array(y)})
