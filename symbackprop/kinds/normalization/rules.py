"""The normalisations' statistics as SymPy functions, their closed forms, and the proof.

:class:`GroupMean` and :class:`GroupVariance` are the mean ``mu`` and the biased
variance ``sigma^2`` of one group of elements (a channel over the batch for batch
norm, a sample for layer norm).  They stay unevaluated in the derivation, so every
output reads ``z = gamma (x - mu) / sqrt(sigma^2 + eps) + beta`` with ``mu`` and
``sigma^2`` named, and the gradients come out in the same words.  Their derivatives
are not typed in: :func:`variance_derivative` has SymPy differentiate the written-out
definition ``(1/m) sum_j (x_j - (1/m) sum_k x_k)^2`` and checks that the result is
the textbook's ``2 (x_i - mu) / m`` before that form is used.

The closed forms (one expression per array, :func:`closed_form_gradients`) run on
NumPy arrays of numbers or of SymPy expressions, so the numbers the generated code's
tests compare and the formulas proven here are the same code:

    xhat = (x - mu) / sigma,  sigma = sqrt(sigma^2 + eps),  dxhat = gamma g,
    dL/dx     = (1 / (m sigma)) (m dxhat - sum dxhat - xhat sum(dxhat xhat)),
    dL/dgamma = sum g xhat,  dL/dbeta = sum g,

the sums over each group (for ``dL/dx``) or over everything but gamma's own axes.
Where gamma is one number per group (batch and instance norm) the first is the
one-line ``(gamma / (m sigma)) (m g - sum g - xhat sum(g xhat))``.  In evaluation
mode ``dL/dx = gamma g / sqrt(running_var + eps)``.

The proof (:func:`prove_rules`) compares each closed-form element with the derived
one: symbolically where that is fast (``mu`` written out as its sum, ``sigma^2 + eps``
as ``s^2``, the difference expanded to 0), else numerically at random exact rational
points, evaluated to 50 significant digits.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import sympy

from symbackprop.core.operators import ChainOperator
from symbackprop.core.rules import PROOFS, axis_sum
from symbackprop.kinds.normalization.spec import EPS, NORMALIZATION_TYPES

__all__ = ["NormalizationBackward", "GroupMean", "GroupVariance", "EPS", "variance_derivative",
           "closed_form_gradients", "group_statistics", "NormProof", "prove_rules", "STATEMENTS",
           "statements", "one_gamma_per_group",
           "SYMBOLIC_LIMIT"]




def _numeric_variance(elements):
    """The biased variance of numbers (or NumPy arrays), two-pass."""
    mean = sum(elements) / len(elements)
    return sum((element - mean) ** 2 for element in elements) / len(elements)


def _mean_value(elements):
    return sympy.Add(*elements) / len(elements)


class GroupMean(sympy.Function):
    """``GroupMean(elements, label)``: ``mu = (1/m) sum`` of the ``m`` elements.

    ``label`` (a ``Tuple`` of whole numbers, 0-based) names the group for printing:
    ``mu1`` for channel 1.  It evaluates itself when every element is a number.
    """

    nargs = 2

    @classmethod
    def eval(cls, elements, label):
        if all(element.is_Number for element in elements):
            return _mean_value(elements)
        return None

    def _eval_derivative(self, symbol):
        elements = self.args[0]
        return sympy.Rational(sum(1 for element in elements if element == symbol),
                              len(elements))

    def _eval_is_real(self):
        return all(element.is_real for element in self.args[0]) or None

    _imp_ = staticmethod(lambda elements, label: sum(elements) / len(elements))

    @property
    def definition(self):
        """``(1/m) sum x``, written out."""
        return _mean_value(self.args[0])


@functools.lru_cache(maxsize=None)
def variance_derivative(m: int) -> sympy.Rational:
    """``2/m``: the factor of ``d sigma^2 / d x_i = (2/m) (x_i - mu)``, proven for ``m``.

    SymPy differentiates the biased variance of ``m`` symbols, written out with the mean
    as its sum, by the first symbol; the result must equal ``(2/m) (t_0 - mean)``.
    (Any other symbol gives the same by symmetry.)  The check runs once per ``m``.
    """
    t = sympy.symbols(f"t0:{m}", real=True)
    mean = _mean_value(t)
    variance = sympy.Add(*[(ti - mean) ** 2 for ti in t]) / m
    derivative = sympy.diff(variance, t[0])
    factor = sympy.Rational(2, m)
    if sympy.expand(derivative - factor * (t[0] - mean)) != 0:
        raise AssertionError(f"d sigma^2/dx is not 2 (x - mu) / m for m = {m}")
    return factor


class GroupVariance(sympy.Function):
    """``GroupVariance(elements, label)``: the biased variance ``sigma^2 = (1/m) sum
    (x - mu)^2`` of the elements, ``mu`` their :class:`GroupMean`.

    Its derivative by an element ``x_i`` is ``(2/m) (x_i - mu)``, which
    :func:`variance_derivative` has SymPy prove from the written-out definition.
    """

    nargs = 2

    @classmethod
    def eval(cls, elements, label):
        if all(element.is_Number for element in elements):
            mean = _mean_value(elements)
            return sympy.Add(*[(element - mean) ** 2 for element in elements]) / len(elements)
        return None

    @property
    def mean(self) -> GroupMean:
        return GroupMean(*self.args)

    def _eval_derivative(self, symbol):
        elements = self.args[0]
        count = sum(1 for element in elements if element == symbol)
        if not count:
            return sympy.Integer(0)
        return count * variance_derivative(len(elements)) * (symbol - self.mean)

    def _eval_is_nonnegative(self):
        return True if all(element.is_real for element in self.args[0]) else None

    def _eval_is_real(self):
        return self._eval_is_nonnegative()

    _imp_ = staticmethod(lambda elements, label: _numeric_variance(elements))

    @property
    def definition(self):
        """``(1/m) sum (x - mu)^2``, with ``mu`` written out."""
        elements = self.args[0]
        mean = _mean_value(elements)
        return sympy.Add(*[(element - mean) ** 2 for element in elements]) / len(elements)


def group_statistics(layer, x: np.ndarray):
    """``(means, variances)``: one :class:`GroupMean` and :class:`GroupVariance` per group
    of the symbol grid ``x``, as arrays of the statistics view without its reduced axes.

    The label of a group is its index among the kept axes (a channel for batch norm).
    """
    view, axes = layer.statistics_view(x.shape)
    kept = [axis for axis in range(len(view)) if axis not in axes]
    rows = np.transpose(x.reshape(view), kept + list(axes)).reshape(
        [view[axis] for axis in kept] + [-1])
    means = np.empty(rows.shape[:-1], dtype=object)
    variances = np.empty(rows.shape[:-1], dtype=object)
    for index in np.ndindex(*means.shape):
        elements = sympy.Tuple(*rows[index])
        label = sympy.Tuple(*[sympy.Integer(i) for i in _label(layer, index)])
        means[index] = GroupMean(elements, label)
        variances[index] = GroupVariance(elements, label)
    return means, variances


def _label(layer, index) -> tuple:
    """A group's printed index: batch norm's channel (the batch axis reduced away)."""
    return tuple(index)


class NormalizationBackward(ChainOperator):
    """``norm-backward(g, x)``: a chain's error term sent back through a normalisation,
    ``(gamma / (m sigma)) (m g - sum g - xhat sum(g xhat))`` with ``xhat`` of the input
    ``x`` (the printers spell it out)."""

    nargs = 2


# -- the closed forms -----------------------------------------------------------------

def one_gamma_per_group(layer) -> bool:
    """Whether gamma is one number across each group (batch and instance norm), so that
    it factors out of ``dL/dx``."""
    return layer.gamma_shared_by_group


#: The closed forms as the printouts state them.
STATEMENTS = {
    "grad_x": "dL/dx = (gamma / (m sigma)) (m g - sum g - xhat sum(g xhat))",
    "grad_x_elementwise": "dL/dx = (1 / (m sigma)) (m dxhat - sum dxhat - xhat sum(dxhat xhat)),"
                          " dxhat = gamma g",
    "grad_x_eval": "dL/dx = gamma g / sqrt(running_var + eps)",
    "grad_weight": "dL/dgamma = sum g xhat",
    "grad_bias": "dL/dbeta = sum g",
}


def statements(layer) -> dict:
    """The statements of ``layer``'s closed forms, by gradient name."""
    if not layer.uses_batch_statistics:
        found = {"x": STATEMENTS["grad_x_eval"]}
    elif not layer.has_affine:
        found = {"x": STATEMENTS["grad_x"].replace("gamma / ", "1 / ")}
    elif one_gamma_per_group(layer):
        found = {"x": STATEMENTS["grad_x"]}
    else:
        found = {"x": STATEMENTS["grad_x_elementwise"]}
    if layer.has_affine:
        found.update(weight=STATEMENTS["grad_weight"], bias=STATEMENTS["grad_bias"])
    return found


def _sqrt(values):
    if values.dtype == object:
        return np.vectorize(sympy.sqrt, otypes=[object])(values)
    return np.sqrt(values)


def statistics(layer, x, constants=None, mean=None, variance=None):
    """``(view_shape, axes, m, mu, sigma)`` broadcastable against ``x`` reshaped to the
    statistics view; ``sigma = sqrt(sigma^2 + eps)``.  ``mean``/``variance`` (arrays of
    the view with the reduced axes of length 1) replace the batch statistics: the symbolic
    proof passes the derivation's own :class:`GroupMean` and :class:`GroupVariance`."""
    view, axes = layer.statistics_view(x.shape)
    m = int(np.prod([view[axis] for axis in axes]))
    xv = x.reshape(view)
    eps = EPS if x.dtype == object else layer.eps
    if not layer.uses_batch_statistics:
        shape = layer.parameter_view(x.shape)
        mu = np.asarray(constants["running_mean"]).reshape(shape)
        var = np.asarray(constants["running_var"]).reshape(shape)
        return x.shape, (), m, mu, _sqrt(var + eps)
    if mean is None:
        mean = axis_sum(xv, axes) * sympy.Rational(1, m) if x.dtype == object \
            else xv.mean(axis=axes)
        mean = np.expand_dims(mean, axes)
    if variance is None:
        centred = xv - mean
        variance = axis_sum(centred * centred, axes) * sympy.Rational(1, m) \
            if x.dtype == object else (centred * centred).mean(axis=axes)
        variance = np.expand_dims(variance, axes)
    return view, axes, m, mean, _sqrt(variance + eps)


def closed_form_gradients(layer, x, g, weight=None, constants=None, mean=None,
                          variance=None) -> dict:
    """``{"x": dL/dx, "weight": dL/dgamma, "bias": dL/dbeta}`` by the closed forms.

    ``x`` and ``g`` are NumPy arrays of the input's shape, ``weight`` of gamma's (None
    without an affine part), ``constants`` the running statistics in evaluation mode;
    numbers or SymPy expressions (``dtype=object``).
    """
    view, axes, m, mu, sigma = statistics(layer, x, constants, mean, variance)
    pview = layer.parameter_view(x.shape)
    gamma = 1 if weight is None else np.asarray(weight).reshape(pview)
    reduced_for_parameters = tuple(axis for axis, size in enumerate(pview) if size == 1)
    if layer.uses_batch_statistics:
        xhat = ((x.reshape(view) - mu) / sigma).reshape(x.shape)
        dxhat = (g * gamma).reshape(view)
        xhat_view = xhat.reshape(view)
        total = np.expand_dims(_sum(dxhat, axes), axes)
        projected = np.expand_dims(_sum(dxhat * xhat_view, axes), axes)
        grad_x = ((m * dxhat - total - xhat_view * projected) / (m * sigma)).reshape(x.shape)
    else:
        xhat = (x - mu) / sigma
        grad_x = g * gamma / sigma
    grads = {"x": grad_x}
    if weight is not None:
        grads["weight"] = _sum(g * xhat, reduced_for_parameters).reshape(layer.parameter_shape)
        grads["bias"] = _sum(g, reduced_for_parameters).reshape(layer.parameter_shape)
    return grads


def _sum(array, axes):
    return axis_sum(array, tuple(axes)) if array.dtype == object else array.sum(axis=tuple(axes))


# -- the proof ----------------------------------------------------------------------------

#: Largest instance (elements of x times the group size m) proven symbolically; larger
#: ones are proven numerically.  BatchNorm2d(2) on a batch of 2 of 2x2 (16 x 8 = 128)
#: takes 4 s symbolically, BatchNorm1d(2) on a batch of 3 (6 x 3 = 18) 0.15 s.
SYMBOLIC_LIMIT = 64

#: Random points of a numeric proof, and the digits each is evaluated to.
NUMERIC_POINTS, DIGITS = 3, 50


@dataclass(frozen=True)
class NormProof:
    """One closed form of a normalisation and whether it equals the derivation.

    ``how`` says how it was proven: ``"symbolically"`` or ``"numerically"``.
    """

    name: str  # "grad_x", "grad_weight", "grad_bias"
    statement: str
    holds: bool
    checked: int
    how: str
    mismatches: tuple = ()


def _grid(array) -> np.ndarray:
    return np.array(array.tolist(), dtype=object).reshape(array.shape)


def _symbolic_difference_is_zero(difference) -> bool:
    """``difference`` is 0 once each mean is its sum and ``sigma^2 + eps = s^2``."""
    replacements = {}
    for variance in difference.atoms(GroupVariance):
        s = sympy.Symbol(f"s_{len(replacements)}", positive=True)
        replacements[variance] = s ** 2 - EPS
    powered = difference.xreplace(replacements)
    powered = powered.xreplace({mean: mean.definition for mean in powered.atoms(GroupMean)})
    numerator, _ = sympy.fraction(sympy.together(powered))
    return sympy.expand(numerator) == 0


def _numeric_difference_is_zero(pairs, symbols, layer, seed: int = 0) -> bool:
    """Every ``(closed, derived)`` pair agrees to 40 digits at random rational points."""
    chooser = random.Random(seed)
    for _ in range(NUMERIC_POINTS):
        point = {symbol: sympy.Rational(chooser.randint(-999, 999), chooser.randint(1, 97))
                 for symbol in symbols}
        point[EPS] = sympy.Rational(str(layer.eps))
        for closed, derived in pairs:
            a = sympy.sympify(closed).xreplace(point).evalf(DIGITS)
            b = sympy.sympify(derived).xreplace(point).evalf(DIGITS)
            if abs(a - b) > sympy.Float(10, DIGITS) ** (10 - DIGITS) * (1 + abs(b)):
                return False
    return True


def prove_rules(derivation) -> tuple:
    """Prove each closed form of ``derivation``'s layer against its gradient elements."""
    layer = derivation.layer
    x = _grid(derivation.x)
    g = _grid(derivation.g)
    weight = _grid(derivation.params["weight"]) if "weight" in derivation.params else None
    constants = {name: _grid(array) for name, array in derivation.constants.items()}
    mean = variance = None
    if layer.uses_batch_statistics:
        view, axes = layer.statistics_view(derivation.input_shape)
        means, variances = group_statistics(layer, x)
        mean, variance = np.expand_dims(means, axes), np.expand_dims(variances, axes)
    closed = closed_form_gradients(layer, x, g, weight, constants, mean, variance)
    symbolic = x.size * layer.group_size(derivation.input_shape) <= SYMBOLIC_LIMIT
    symbols = sorted(set().union(*[array.free_symbols for array in
                                   (derivation.x, derivation.g, *derivation.params.values(),
                                    *derivation.constants.values())]) - {EPS},
                     key=sympy.default_sort_key)
    proofs = []
    for name, statement in statements(layer).items():
        truth = _grid(derivation.grads[name])
        form = closed[name]
        if symbolic:
            mismatches = tuple(index for index in np.ndindex(*truth.shape)
                               if not _symbolic_difference_is_zero(form[index] - truth[index]))
        else:
            pairs = [(form[index], truth[index]) for index in np.ndindex(*truth.shape)]
            mismatches = () if _numeric_difference_is_zero(pairs, symbols, layer) else \
                tuple(index for index in np.ndindex(*truth.shape)
                      if not _numeric_difference_is_zero([(form[index], truth[index])],
                                                         symbols, layer))
        proofs.append(NormProof(name=f"grad_{name}", statement=statement,
                                holds=not mismatches, checked=truth.size,
                                how="symbolically" if symbolic else "numerically",
                                mismatches=mismatches))
    return tuple(proofs)


for _layer_type in NORMALIZATION_TYPES:
    PROOFS.register(_layer_type, prove_rules)
