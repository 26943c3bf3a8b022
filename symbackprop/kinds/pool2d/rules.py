"""Pooling's rules: max pooling's window maximum and routing indicator, and average
pooling's Kronecker form (proven when its windows tile the input).

:class:`WindowMax` is the largest element of one pooling window; its derivative
with respect to an element is :class:`IsWindowMax`, the indicator
``[x_ab = argmax z_ij]``: 1 when ``x_ab`` is the first maximum of the window in
row-major order, else 0.  They are SymPy functions so that max pooling routes the
gradient honestly, ties included (SymPy's own ``Max`` would differentiate to
``Heaviside`` terms that split a tie in halves).  Each evaluates itself when its
arguments are numbers and has an ``_imp_`` for ``sympy.lambdify``.
"""

from __future__ import annotations

import sympy

from symbackprop.core.indexing import unread_length
from symbackprop.core.rules import (
    PROOFS,
    RuleProof,
    collector_paused,
    kron_upsample,
    mismatched_elements,
    polynomial_grid,
)
from symbackprop.kinds.pool2d.spec import AvgPool2d

__all__ = ["WindowMax", "IsWindowMax", "first_argmax", "KRON_STATEMENT", "tiles_input",
           "prove_kron"]


def first_argmax(values) -> int:
    """Position of the first largest value (ties go to the first, row-major)."""
    best = 0
    for position, value in enumerate(values):
        if value > values[best]:
            best = position
    return best


class WindowMax(sympy.Function):
    """``WindowMax(window, index)``: the largest element of one pooling window.

    ``window`` is a ``Tuple`` of the window's input elements in row-major order
    (padding left out: it never wins); ``index`` is the ``Tuple`` of the output
    element ``(n, c, i, j)`` it computes, kept for printing.  Its derivative with
    respect to a window element is :class:`IsWindowMax`.
    """

    nargs = 2

    @classmethod
    def eval(cls, window, index):
        if all(value.is_Number for value in window):
            return window[first_argmax(window)]
        return None

    def _eval_derivative(self, symbol):
        window, index = self.args
        return sympy.Add(*[IsWindowMax(sympy.Integer(position), window, index)
                           for position, element in enumerate(window) if element == symbol])

    def _eval_is_real(self):
        return all(value.is_real for value in self.args[0]) or None

    _imp_ = staticmethod(lambda window, index: max(window))


class IsWindowMax(sympy.Function):
    """``IsWindowMax(position, window, index)``: the max-pooling routing indicator.

    1 when ``window[position]`` is the first maximum of ``window`` in row-major
    order (so a tie goes to the first), else 0.  Printed ``[x_ab = argmax z_ij]``.
    """

    nargs = 3

    @classmethod
    def eval(cls, position, window, index):
        if all(value.is_Number for value in window):
            return sympy.Integer(int(first_argmax(window) == int(position)))
        return None

    def _eval_derivative(self, symbol):
        return sympy.Integer(0)  # piecewise constant: 0 wherever it is differentiable

    @property
    def candidate(self):
        """The window element this indicator is about."""
        position, window, _ = self.args
        return window[int(position)]

    _imp_ = staticmethod(
        lambda position, window, index: float(first_argmax(window) == int(position)))


# -- average pooling with windows that tile the input: the Kronecker form ----------

KRON_STATEMENT = "dL/dx = kron(g, ones(KH, KW)) / (KH*KW)"


def tiles_input(layer) -> bool:
    """Whether pooling windows sit side by side: stride = kernel and no padding."""
    return layer.stride == layer.kernel_size and not any(layer.padding)


@collector_paused()
def prove_kron(derivation) -> RuleProof:
    """Prove :data:`KRON_STATEMENT` against the element-wise ``dL/dx`` of average pooling."""
    layer = derivation.layer
    if not tiles_input(layer):
        raise ValueError(f"{layer.describe()}: the Kronecker form needs windows that tile the "
                         f"input (stride = kernel_size, no padding)")
    height, width = derivation.input_shape[2:]
    closed = kron_upsample(polynomial_grid(derivation.g), layer.kernel_size, (height, width))
    mismatches = mismatched_elements(closed, derivation.grads["x"], "the kron rule")
    unread = tuple(unread_length(size, kernel, kernel, 0, 0)
                   for size, kernel in zip((height, width), layer.kernel_size))
    return RuleProof(name="grad_x", statement=KRON_STATEMENT, holds=not mismatches,
                     checked=closed.size, stride=layer.stride, dilation=(1, 1),
                     padding=layer.padding, grad_padding=(0, 0, 0, 0), unread=unread,
                     mismatches=mismatches)


def _average_pooling_proofs(derivation) -> tuple:
    """The Kronecker form, when the windows tile the input; else no closed form."""
    return (prove_kron(derivation),) if tiles_input(derivation.layer) else ()


PROOFS.register(AvgPool2d, _average_pooling_proofs)
