"""Pooling's rules in any number of spatial axes: max pooling's window maximum and
routing indicator, average pooling's divisor, and the closed forms proven element by
element: max pooling routes each window's ``g`` to its first maximum, average pooling
gives each element of a window ``g / D`` (``D`` PyTorch's divisor, ``ceil_mode``
windows clipped), and, when 2-D windows tile the input, the Kronecker form.

:class:`WindowMax` is the largest element of one pooling window; its derivative
with respect to an element is :class:`IsWindowMax`, the indicator
``[x_ab = argmax z_ij]``: 1 when ``x_ab`` is the first maximum of the window in
row-major order, else 0.  They are SymPy functions so that max pooling routes the
gradient honestly, ties included (SymPy's own ``Max`` would differentiate to
``Heaviside`` terms that split a tie in halves).  Each evaluates itself when its
arguments are numbers and has an ``_imp_`` for ``sympy.lambdify``.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import sympy

from symbackprop.core.indexing import unread_length
from symbackprop.core.naming import element_symbol, parse_element
from symbackprop.core.rules import (
    PROOFS,
    RuleProof,
    collector_paused,
    kron_upsample,
    mismatched_elements,
    polynomial_grid,
)
from symbackprop.kinds.pool2d.spec import AVG_POOLS, POOLS, window_positions

__all__ = ["WindowMax", "IsWindowMax", "first_argmax", "KRON_STATEMENT", "tiles_input",
           "prove_kron", "PADDING", "OUTSIDE", "window", "divisor", "clipped_divisor",
           "ROUTING_STATEMENT", "SHARE_STATEMENT", "prove_routing", "prove_share"]

#: What a window position holds: an input element, padding (inside the padded input:
#: average pooling's ``count_include_pad`` counts it), or past the padded input (only
#: a ``ceil_mode`` window reaches there; nothing counts it).
PADDING, OUTSIDE = "padding", "outside"


def window(layer, input_shape, index, x) -> list:
    """The window of output ``index = (n, c, i, j, ...)`` in row-major order: the element
    ``x[...]`` of each position, or :data:`PADDING` / :data:`OUTSIDE`."""
    n, c, *out = index
    spatial = input_shape[2:]
    per_axis = []
    for axis, i in enumerate(out):
        kernel, stride, before, _, dilation = layer.axis_values(axis)
        per_axis.append(window_positions(i, kernel, stride, before, dilation))
    result = []
    for position in itertools.product(*per_axis):
        if all(0 <= p < size for p, size in zip(position, spatial)):
            result.append(x[(n, c, *position)])
        elif all(-layer.padding[2 * a] <= p < size + layer.padding[2 * a + 1]
                 for a, (p, size) in enumerate(zip(position, spatial))):
            result.append(PADDING)
        else:
            result.append(OUTSIDE)
    return result


def divisor(layer, entries) -> int:
    """Average pooling's divisor of one window (its :func:`window` entries): the
    positions inside the padded input with ``count_include_pad`` (a ``ceil_mode`` window
    loses those past it), else the input elements only."""
    if layer.count_include_pad:
        return sum(1 for entry in entries if not isinstance(entry, str) or entry == PADDING)
    return sum(1 for entry in entries if not isinstance(entry, str))


def clipped_divisor(layer, spatial, out_index) -> int:
    """PyTorch's divisor of window ``out_index`` (its spatial indices), written as PyTorch
    computes it: along each axis the window ``[start, start + k)``, ``start = i*s - b``,
    clipped to ``[-b, L + e)`` (``count_include_pad``) or to ``[0, L)``; the product of
    the clipped lengths.  Independent of :func:`window` (the proof compares the two)."""
    lengths = []
    for axis, (i, size) in enumerate(zip(out_index, spatial)):
        kernel, stride, before, after, _ = layer.axis_values(axis)
        start = i * stride - before
        low, high = (-before, size + after) if layer.count_include_pad else (0, size)
        lengths.append(min(start + kernel, high) - max(start, low))
    return math.prod(lengths)


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
    """Whether 2-D pooling windows sit side by side: stride = kernel, no padding, no
    dilation and no ``ceil_mode`` (whose last window may be clipped)."""
    return layer.spatial_dims == 2 and layer.stride == layer.kernel_size and \
        not any(layer.padding) and not layer.new_options


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
    proofs = (prove_share(derivation),)
    return proofs + ((prove_kron(derivation),) if tiles_input(derivation.layer) else ())


# -- every pooling: the element-wise closed forms --------------------------------------

ROUTING_STATEMENT = "dL/dx_a = sum over windows w of g_w [x_a = argmax z_w]"
SHARE_STATEMENT = "dL/dx_a = sum over windows w holding x_a of g_w / D_w"


def _proof(layer, statement, checked, mismatches) -> RuleProof:
    dims = layer.spatial_dims
    return RuleProof(name="grad_x", statement=statement, holds=not mismatches, checked=checked,
                     stride=layer.stride, dilation=layer.dilation, padding=layer.padding,
                     grad_padding=(0,) * (2 * dims), unread=(0,) * dims,
                     mismatches=tuple(mismatches))


@collector_paused()
def prove_routing(derivation) -> RuleProof:
    """Prove :data:`ROUTING_STATEMENT`: every ``dL/dx`` element is the sum, over the windows
    holding it, of ``g * IsWindowMax`` (the derivation's own ``z`` says who can win)."""
    layer, shape = derivation.layer, tuple(derivation.input_shape)
    expected = {index: Counter() for index in np.ndindex(*shape)}
    for index in np.ndindex(*derivation.output_shape):
        maximum = derivation.z[index]
        elements = list(maximum.args[0]) if isinstance(maximum, WindowMax) else [maximum]
        g = element_symbol("g", index)
        for position, element in enumerate(elements):
            routed = g * IsWindowMax(sympy.Integer(position), sympy.Tuple(*elements),
                                     sympy.Tuple(*index))
            expected[parse_index(element)][routed] += 1
    mismatches = [index for index in np.ndindex(*shape) if _terms(derivation, index)
                  != expected[index]]
    return _proof(layer, ROUTING_STATEMENT, int(np.prod(shape)), mismatches)


@collector_paused()
def prove_share(derivation) -> RuleProof:
    """Prove :data:`SHARE_STATEMENT` with ``D_w`` from :func:`clipped_divisor`: every
    element of a window receives ``g / D``, summed over the windows holding it."""
    layer, shape = derivation.layer, tuple(derivation.input_shape)
    x = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        x[index] = index
    expected = {index: Counter() for index in np.ndindex(*shape)}
    for index in np.ndindex(*derivation.output_shape):
        share = element_symbol("g", index) / clipped_divisor(layer, shape[2:], index[2:])
        for entry in window(layer, shape, index, x):
            if not isinstance(entry, str):
                expected[entry][share] += 1
    mismatches = [index for index in np.ndindex(*shape) if _terms(derivation, index)
                  != expected[index]]
    return _proof(layer, SHARE_STATEMENT, int(np.prod(shape)), mismatches)


def parse_index(symbol) -> tuple:
    """The index of an element symbol ``x[0,0,1,2]``."""
    return parse_element(symbol)[1]


def _terms(derivation, index) -> Counter:
    """The derived ``dL/dx[index]`` as a multiset of its terms (zeros left out)."""
    return Counter(term for term in sympy.Add.make_args(sympy.expand(derivation.grad_x[index]))
                   if term != 0)


def _max_pooling_proofs(derivation) -> tuple:
    return (prove_routing(derivation),)


for _kind in POOLS:
    if _kind in AVG_POOLS:
        PROOFS.register(_kind, _average_pooling_proofs)
    else:
        PROOFS.register(_kind, _max_pooling_proofs)
