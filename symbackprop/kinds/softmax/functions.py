"""The SymPy functions of softmax and log-softmax, one element at a time.

``softmax(x)[j] = exp(x[j]) / sum_k exp(x[k])`` along one axis.  Written with
``sympy.exp`` the derivative SymPy finds is a tangle of ``exp(x11)*exp(x12)/(...)**2``
terms; written with these functions it is the form the notes write, ``s_j ([j=k] -
s_k)``, and the gradient of a softmax layer reads ``g11 z11 (1 - z11) - g12 z11 z12 -
...``.  :func:`explicit` rewrites any expression of them with ``exp`` and ``log``: the
rules (``kinds/softmax/rules.py``) prove, symbolically, that the derivative each
function states is the derivative of its explicit form.

Every function takes ``(row, index, axis)``: ``row`` the ``Tuple`` of the input
elements along the softmax axis, ``index`` the ``Tuple`` of the full index of the
element it computes (so printers can label it) and ``axis`` the softmax axis; the
element's position in ``row`` is ``index[axis]``.

- :class:`SoftmaxOutput` is the layer's own output, printed as the output's label
  (``z12``, in a chain ``a2_12``);
- :class:`Probability` is the same number inside another layer (log-softmax, the
  cross-entropy loss), printed ``p12``;
- :class:`LogSoftmaxOutput` is ``log(softmax(x)[j])``, differentiated to ``[j=k] - p_k``;
- :class:`WrittenSoftmax` and :class:`WrittenLogSoftmax` are only printed: the forward
  pass with its denominator written out, ``exp(x12) / (exp(x11) + exp(x12) + exp(x13))``.

Each evaluates numerically through ``_imp_`` (``sympy.lambdify``), subtracting the
row's maximum first, so large logits never overflow.
"""

from __future__ import annotations

import math

import sympy
from sympy.printing.precedence import PRECEDENCE

__all__ = ["SoftmaxFunction", "SoftmaxOutput", "Probability", "LogSoftmaxOutput",
           "WrittenSoftmax", "WrittenLogSoftmax", "WrittenNegativeLogSoftmax", "WrittenLogSumExp",
           "explicit",
           "softmax_numbers",
           "log_softmax_numbers"]


def softmax_numbers(row) -> list[float]:
    """``softmax(row)`` of plain numbers, the maximum subtracted first."""
    values = [float(value) for value in row]
    top = max(values)
    if math.isinf(top) or math.isnan(top):
        return [math.nan] * len(values) if math.isnan(top) else \
            [float(value == top) / sum(v == top for v in values) for value in values]
    exps = [math.exp(value - top) for value in values]
    total = math.fsum(exps)
    return [value / total for value in exps]


def log_softmax_numbers(row) -> list[float]:
    """``log(softmax(row))`` of plain numbers by log-sum-exp (no overflow, no log(0))."""
    values = [float(value) for value in row]
    top = max(values)
    total = top + math.log(math.fsum(math.exp(value - top) for value in values))
    return [value - total for value in values]


class SoftmaxFunction(sympy.Function):
    """What the functions of this module share: ``(row, index, axis)`` and the position."""

    nargs = 3

    @property
    def row(self):
        return self.args[0]

    @property
    def index(self) -> tuple[int, ...]:
        return tuple(int(i) for i in self.args[1])

    @property
    def axis(self) -> int:
        return int(self.args[2])

    @property
    def position(self) -> int:
        """The element's position along the softmax axis: ``index[axis]``."""
        return self.index[self.axis]

    def at(self, position: int, cls=None):
        """The function of the same row at another ``position`` (its own index)."""
        index = list(self.index)
        index[self.axis] = position
        return (cls or self.func)(self.row, sympy.Tuple(*index), self.args[2])

    def exp_sum(self):
        """``exp(x1) + exp(x2) + ...``, the softmax denominator, evaluated."""
        return sympy.Add(*[sympy.exp(value) for value in self.row])

    def _eval_is_real(self):
        return all(value.is_real for value in self.row) or None


class _SoftmaxValue(SoftmaxFunction):
    """``exp(x_j) / sum_k exp(x_k)``; its derivative by ``x_k`` is ``s_j ([j=k] - s_k)``."""

    @classmethod
    def eval(cls, row, index, axis):
        if all(value.is_Number for value in row):
            position = int(index[int(axis)])
            return sympy.exp(row[position]) / sympy.Add(*[sympy.exp(v) for v in row])
        return None

    def _eval_derivative(self, symbol):
        terms = []
        for position, value in enumerate(self.row):
            if value == symbol:
                same = 1 if position == self.position else 0
                terms.append(self * (same - self.at(position)))
        return sympy.Add(*terms)

    def explicit(self):
        return sympy.exp(self.row[self.position]) / self.exp_sum()

    _imp_ = staticmethod(lambda row, index, axis: softmax_numbers(row)[index[axis]])


class SoftmaxOutput(_SoftmaxValue):
    """A softmax layer's output element ``z_j = softmax(x)_j``, printed as ``z_j``."""


class Probability(_SoftmaxValue):
    """``p_j = softmax(x)_j`` inside log-softmax or a loss, printed ``p_j``."""


class LogSoftmaxOutput(SoftmaxFunction):
    """``log softmax(x)_j = x_j - log(sum_k exp(x_k))``; by ``x_k``: ``[j=k] - p_k``."""

    @classmethod
    def eval(cls, row, index, axis):
        if all(value.is_Number for value in row):
            position = int(index[int(axis)])
            return row[position] - sympy.log(sympy.Add(*[sympy.exp(v) for v in row]))
        return None

    def _eval_derivative(self, symbol):
        terms = []
        for position, value in enumerate(self.row):
            if value == symbol:
                same = 1 if position == self.position else 0
                terms.append(same - self.at(position, Probability))
        return sympy.Add(*terms)

    def explicit(self):
        return self.row[self.position] - sympy.log(self.exp_sum())

    _imp_ = staticmethod(lambda row, index, axis: log_softmax_numbers(row)[index[axis]])


class WrittenSoftmax(SoftmaxFunction):
    """Printed only: ``exp(x12) / (exp(x11) + exp(x12) + exp(x13))``."""

    precedence = PRECEDENCE["Mul"]


class WrittenLogSoftmax(SoftmaxFunction):
    """Printed only: ``x12 - log(exp(x11) + exp(x12) + exp(x13))`` (bracketed in a product)."""

    precedence = PRECEDENCE["Add"]


def explicit(expression):
    """``expression`` with every function of this module written with ``exp`` and ``log``."""
    expression = sympy.sympify(expression)
    replacements = {function: function.explicit() for function in
                    expression.atoms(_SoftmaxValue, LogSoftmaxOutput)}
    return expression.xreplace(replacements)


class WrittenNegativeLogSoftmax(SoftmaxFunction):
    """Printed only: ``log(exp(x11) + exp(x12) + exp(x13)) - x12``, ``-log softmax(x)_j``
    (a cross-entropy term; bracketed in a product)."""

    precedence = PRECEDENCE["Add"]


class WrittenLogSumExp(SoftmaxFunction):
    """Printed only: ``log(exp(x11) + exp(x12) + exp(x13))``, a smoothed loss's one log."""
