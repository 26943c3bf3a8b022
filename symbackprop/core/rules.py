"""Stage 4, general rules: the closed forms the course notes teach, proven.

Input: a :class:`~symbackprop.core.derivation.Derivation`.  Output:
:class:`RuleProof` records saying whether each closed form of the layer's kind
(built from whole-array operations: dilate, pad, rotate, correlate, kron) equals the
element-wise sums that SymPy derived.  Each kind registers its proofs in
:data:`PROOFS` (``kinds/<kind>/rules.py``); :func:`proofs_for` asks it.

The array helpers here work on NumPy arrays of numbers, of SymPy expressions or of
exact :class:`Polynomial` values (``dtype=object``), so the same code is proven
symbolically and used numerically.  A proof evaluates the closed form on polynomials
of the element symbols and compares each element with the derived sum as a
dictionary of terms (:func:`same_polynomial`): time linear in the number of products,
where expanding each difference with SymPy grew faster than the derivation.
"""

from __future__ import annotations

import contextlib
import gc
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.derivation import DEFAULT_MAX_TERMS
from symbackprop.core.naming import to_grid
from symbackprop.core.registry import Registry

__all__ = [
    "dilate",
    "pad2d",
    "rot180",
    "correlate2d",
    "array_sum",
    "add_all",
    "axis_sum",
    "kron_upsample",
    "RuleProof",
    "polynomial_terms",
    "Polynomial",
    "polynomial_grid",
    "same_polynomial",
    "mismatched_elements",
    "collector_paused",
    "PROOFS",
    "proofs_for",
    "PROOF_TERMS",
]


def dilate(array: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """Insert ``s-1`` zeros between rows (and columns) of the last two axes.

    An ``(H, W)`` array becomes ``((H-1)*sh + 1, (W-1)*sw + 1)``; this undoes the
    stride of the forward pass.
    """
    sh, sw = stride
    height, width = array.shape[-2:]
    out = np.zeros(array.shape[:-2] + ((height - 1) * sh + 1, (width - 1) * sw + 1),
                   dtype=array.dtype)
    out[..., ::sh, ::sw] = array
    return out


def pad2d(array: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    """Zero-pad the last two axes by ``(top, bottom, left, right)``; negative crops."""
    top, bottom, left, right = padding
    grow = [(0, 0)] * (array.ndim - 2) + [(max(top, 0), max(bottom, 0)),
                                          (max(left, 0), max(right, 0))]
    padded = np.pad(array, grow, mode="constant", constant_values=0)
    height, width = padded.shape[-2:]
    return padded[..., max(-top, 0):height - max(-bottom, 0),
                  max(-left, 0):width - max(-right, 0)]


def rot180(kernel: np.ndarray) -> np.ndarray:
    """Rotate the last two axes by 180 degrees (flip both spatial axes)."""
    return kernel[..., ::-1, ::-1]


def correlate2d(array: np.ndarray, kernel: np.ndarray, stride=(1, 1), dilation=(1, 1)):
    """Valid cross-correlation of two 2-D arrays.

    ``out[i, j] = sum_{m,k} kernel[m, k] * array[i*sh + m*dh, j*sw + k*dw]``.
    """
    (sh, sw), (dh, dw) = stride, dilation
    kernel_h, kernel_w = kernel.shape
    out_h = (array.shape[0] - (dh * (kernel_h - 1) + 1)) // sh + 1
    out_w = (array.shape[1] - (dw * (kernel_w - 1) + 1)) // sw + 1
    return array_sum([kernel[m, k] * array[m * dh:m * dh + sh * (out_h - 1) + 1:sh,
                                           k * dw:k * dw + sw * (out_w - 1) + 1:sw]
                      for m in range(kernel_h) for k in range(kernel_w)])


def array_sum(arrays: list) -> np.ndarray:
    """Element-wise sum of equally shaped arrays.

    Arrays of symbolic elements are added in one :func:`add_all` per element:
    adding them one at a time would re-flatten a growing SymPy sum at every step.
    """
    if not any(a.dtype == object for a in arrays):
        return np.sum(arrays, axis=0)
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = add_all([a[index] for a in arrays])
    return out


def add_all(values: list):
    """The sum of ``values`` in one step: a :class:`Polynomial` if any value is one,
    else one ``sympy.Add``."""
    if any(isinstance(value, Polynomial) for value in values):
        return Polynomial.add_all(values)
    return sympy.Add(*values)


def axis_sum(array: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """Sum of ``array`` over the axes ``axis``, in one :func:`add_all` per element.

    ``np.sum`` on an object array adds one element at a time, and each SymPy
    addition re-flattens the growing sum: quadratic in the number of terms.
    """
    if array.dtype != object:
        return array.sum(axis=axis)
    axis = [a % array.ndim for a in axis]
    kept = [a for a in range(array.ndim) if a not in axis]
    rows = np.transpose(array, kept + axis).reshape(
        [array.shape[a] for a in kept] + [-1])
    out = np.empty(rows.shape[:-1], dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = add_all(list(rows[index]))
    return out


def kron_upsample(g: np.ndarray, kernel_size, input_size) -> np.ndarray:
    """``kron(g, ones(KH, KW)) / (KH*KW)`` on the last two axes, zero-filled to ``input_size``.

    The gradient of average pooling whose windows tile the input: every element
    of a window gets an equal share of its ``g``.  Rows and columns past the last
    window (when the stride does not divide the input) are never read and get 0.
    """
    kernel_h, kernel_w = kernel_size
    height, width = input_size
    ones = np.ones((kernel_h, kernel_w), dtype=g.dtype)
    out = np.zeros(g.shape[:-2] + (height, width), dtype=g.dtype)
    for index in np.ndindex(*g.shape[:-2]):
        block = np.kron(g[index], ones)
        out[index][:block.shape[0], :block.shape[1]] = block / (kernel_h * kernel_w)
    return out


@dataclass(frozen=True)
class RuleProof:
    """One closed-form rule, this layer's numbers, and whether it was proven.

    ``holds`` is True only when every element of the closed form is the same
    polynomial as the element-wise derivation (``checked`` elements).
    """

    name: str  # "grad_x", "grad_w" or "grad_b"
    statement: str
    holds: bool
    checked: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int, int, int]
    grad_padding: tuple[int, int, int, int]
    unread: tuple[int, int]
    mismatches: tuple = ()  # indices (0-based) of elements that differ


def _monomial_factor(factor):
    """``(coefficient, {symbol: exponent})`` of one factor of a product, or None.

    A factor is a rational number, a commuting symbol or such a symbol to a
    positive whole power; anything else (a sum, a float, a function) is None.
    """
    if factor.is_Symbol:
        return (1, {factor: 1}) if factor.is_commutative else None
    if factor.is_Rational:  # Integer or Rational: exact
        return (int(factor.p) if factor.q == 1 else Fraction(int(factor.p), int(factor.q))), {}
    if factor.is_Pow:
        base, exponent = factor.args
        if (base.is_Symbol and base.is_commutative and exponent.is_Integer
                and exponent > 0):
            return 1, {base: int(exponent)}
    return None


def _term(product):
    """``(coefficient, monomial)`` of one product, or None if it is not one.

    The monomial is a frozenset of ``(symbol, exponent)`` pairs, so the order the
    factors are written in does not matter and ``x*x`` is the same as ``x**2``.
    """
    factors = product.args if product.is_Mul else (product,)
    coefficient, powers = 1, {}
    for factor in factors:
        parts = _monomial_factor(factor)
        if parts is None:
            return None
        coefficient *= parts[0]
        for symbol, exponent in parts[1].items():
            powers[symbol] = powers.get(symbol, 0) + exponent
    return coefficient, frozenset(powers.items())


def polynomial_terms(expression) -> dict | None:
    """``expression`` as ``{monomial: coefficient}``, or None if it is not written so.

    Derived gradients and the closed forms are sums of products of distinct
    symbols with rational coefficients (``g*w``, ``g/4``, ``0`` from padding).  For
    such an expression this dictionary is the canonical form of the polynomial:
    like terms are added, zero coefficients dropped, factor order forgotten.  Two
    expressions of this form are equal polynomials exactly when their
    dictionaries are equal, so comparing them proves what ``sympy.expand(a - b) ==
    0`` proves, in time linear in the number of terms.  An expression with a
    nested sum (not expanded), a float or any function gives None.
    """
    if not isinstance(expression, sympy.Basic):
        expression = sympy.sympify(expression)
    terms = {}
    for product in expression.args if expression.is_Add else (expression,):
        term = _term(product)
        if term is None:
            return None
        coefficient, monomial = term
        total = terms.get(monomial, 0) + coefficient
        if total:
            terms[monomial] = total
        else:
            terms.pop(monomial, None)
    return terms


class Polynomial:
    """An exact polynomial with rational coefficients, for proving closed forms fast.

    ``terms`` maps a monomial (frozenset of ``(symbol, exponent)`` pairs, as in
    :func:`polynomial_terms`) to its nonzero coefficient (``int`` or ``Fraction``).
    The closed forms are evaluated on arrays of these (:func:`polynomial_grid`)
    instead of SymPy symbols: adding and multiplying merge dictionaries, so
    building a closed form costs time linear in its number of products, where
    SymPy re-sorts every ``Mul`` and ``Add`` it builds.  The arithmetic is exact,
    so an element equals the derived gradient exactly when its ``terms`` equal
    ``polynomial_terms`` of the derived sum.  NumPy object arrays of these mix
    with the integer zeros of padding and dilation.
    """

    __slots__ = ("terms",)

    def __init__(self, terms: dict):
        self.terms = terms

    @classmethod
    def of(cls, expression) -> Polynomial:
        """The polynomial ``expression`` (a SymPy sum of products) is."""
        terms = polynomial_terms(expression)
        if terms is None:
            raise ValueError(f"{expression} is not a sum of products of symbols with "
                             f"rational coefficients")
        return cls(terms)

    @staticmethod
    def _terms_of(value):
        """``value``'s terms, or None for a type this class does not combine with."""
        if isinstance(value, Polynomial):
            return value.terms
        if isinstance(value, (int, Fraction, np.integer)) and not isinstance(value, bool):
            return {frozenset(): int(value) if isinstance(value, np.integer) else value} \
                if value else {}
        if isinstance(value, sympy.Basic):
            return polynomial_terms(value)
        return None

    @classmethod
    def add_all(cls, values) -> Polynomial:
        """The sum of ``values`` (polynomials, whole numbers, fractions) in one pass."""
        total = {}
        for value in values:
            terms = cls._terms_of(value)
            if terms is None:
                raise TypeError(f"cannot add {type(value).__name__} to a Polynomial")
            for monomial, coefficient in terms.items():
                coefficient += total.get(monomial, 0)
                if coefficient:
                    total[monomial] = coefficient
                else:
                    total.pop(monomial, None)
        return cls(total)

    def __add__(self, other):
        if self._terms_of(other) is None:
            return NotImplemented  # an ndarray: NumPy adds element by element
        return Polynomial.add_all((self, other))

    __radd__ = __add__

    def __neg__(self) -> Polynomial:
        return Polynomial({monomial: -c for monomial, c in self.terms.items()})

    def __sub__(self, other):
        if self._terms_of(other) is None:
            return NotImplemented
        return self + (-Polynomial(self._terms_of(other)))

    def __rsub__(self, other):
        if self._terms_of(other) is None:
            return NotImplemented
        return Polynomial(self._terms_of(other)) + (-self)

    def __mul__(self, other):
        other_terms = self._terms_of(other)
        if other_terms is None:
            return NotImplemented
        product = {}
        for monomial, coefficient in self.terms.items():
            for other_monomial, other_coefficient in other_terms.items():
                if other_monomial and monomial:
                    powers = dict(monomial)
                    for symbol, exponent in other_monomial:
                        powers[symbol] = powers.get(symbol, 0) + exponent
                    merged = frozenset(powers.items())
                else:  # a constant factor: the other monomial as it is
                    merged = monomial or other_monomial
                total = product.get(merged, 0) + coefficient * other_coefficient
                if total:
                    product[merged] = total
                else:
                    product.pop(merged, None)
        return Polynomial(product)

    __rmul__ = __mul__

    def __truediv__(self, other):
        terms = self._terms_of(other)
        if terms is None:
            return NotImplemented
        if set(terms) != {frozenset()}:
            raise TypeError("a Polynomial divides only by a nonzero number")
        return self * Polynomial({frozenset(): 1 / Fraction(terms[frozenset()])})

    def __eq__(self, other):
        terms = self._terms_of(other)
        return NotImplemented if terms is None else self.terms == terms

    __hash__ = None  # compared by value, like the dictionary it holds

    def as_expr(self) -> sympy.Expr:
        """This polynomial as a SymPy expression."""
        return sympy.Add(*[sympy.Rational(coefficient.numerator, coefficient.denominator)
                           * sympy.Mul(*[symbol ** exponent for symbol, exponent in monomial])
                           for monomial, coefficient in self.terms.items()])

    def __repr__(self) -> str:
        return f"Polynomial({self.as_expr()})"


def _grid(array) -> np.ndarray:
    """:func:`~symbackprop.core.naming.to_grid`, in time linear in the elements.

    An immutable SymPy ``Array`` is a ``Basic`` whose ``args`` are its elements in
    row-major order and its shape; ``tolist`` would look every element up by index,
    which costs more than the whole proof on a 64x64 input.
    """
    if isinstance(array, sympy.ImmutableDenseNDimArray):
        elements, shape = array.args
        grid = np.empty(len(elements), dtype=object)
        grid[:] = list(elements)
        return grid.reshape(tuple(int(size) for size in shape))
    return to_grid(array)


def polynomial_grid(array) -> np.ndarray:
    """A SymPy ``Array`` of symbols (or sums of products) as an object array of
    :class:`Polynomial`, the arrays the closed forms are proven on."""
    grid = _grid(array)
    out = np.empty(grid.shape, dtype=object)
    for index, element in np.ndenumerate(grid):
        out[index] = Polynomial.of(element)
    return out


def same_polynomial(closed, derived) -> bool:
    """Whether ``closed`` and ``derived`` are the same polynomial in their symbols.

    ``closed`` is a :class:`Polynomial` or a SymPy expression.  Compared as
    :func:`polynomial_terms` when both are sums of products; otherwise (an element
    that is not such a polynomial) by ``sympy.expand`` of the difference.
    """
    closed_terms = closed.terms if isinstance(closed, Polynomial) else polynomial_terms(closed)
    derived_terms = polynomial_terms(derived) if closed_terms is not None else None
    if derived_terms is None:
        closed = closed.as_expr() if isinstance(closed, Polynomial) else sympy.sympify(closed)
        return sympy.expand(closed - derived) == 0
    return closed_terms == derived_terms


@contextlib.contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector for the duration of a proof.

    A proof allocates a few small dictionaries per product while the derivation
    keeps millions of SymPy objects alive; every full collection walks all of them,
    which made a 64x64 proof ten times slower than its arithmetic (measured: 10.6 s
    against 1.2 s).  The proof's own objects hold no cycles; the collector is
    restored, as it was, when the block ends (also on an error).  Usable as a
    decorator.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def mismatched_elements(closed_form: np.ndarray, gradient, rule: str) -> tuple:
    """Indices (0-based) where ``closed_form`` and the derived ``gradient`` differ.

    Each element of the closed form is compared with the derived sum as a
    polynomial (:func:`same_polynomial`); an empty tuple means the closed form is
    proven on this instance.  ``rule`` names it on the progress display (``"the dL/dx
    rule"``).
    """
    truth = _grid(gradient)
    if closed_form.shape != truth.shape:
        raise ValueError(f"{rule}: the closed form has shape {closed_form.shape}, the "
                         f"derived gradient {truth.shape}")
    elements = progress.track(np.ndindex(*truth.shape), f"proving {rule}", truth.size,
                              unit="elements")
    return tuple(index for index in elements
                 if not same_polynomial(closed_form[index], truth[index]))


#: The closed forms of each kind: layer type -> ``function(derivation) -> (RuleProof, ...)``
#: or ``None`` (the kind has closed forms but this instance is too large to prove them).
PROOFS = Registry("prove the closed forms of")


#: Instances with more products than this are not re-proven by the printouts.  The
#: proof is linear in the products and takes a fraction of the derivation's time
#: (measured, 3x3 kernel, padding 1: 64x64, 36,864 products, 1.1 s against 4.3 s to
#: derive; 105x105, 99,225 products, 3.7 s against 14.6 s), so every instance
#: ``derive`` accepts by default is proven; one derived with a larger ``max_terms``
#: has its rules quoted.
PROOF_TERMS = DEFAULT_MAX_TERMS


def proofs_for(derivation, max_terms: int | None = None):
    """The closed-form proofs a printout shows for ``derivation``.

    The kind's registered proofs (:data:`PROOFS`), or ``None`` when the instance has
    more than ``max_terms`` (default :data:`PROOF_TERMS`) products: the rules are then
    quoted, not proven.  A kind without closed forms gives ``()``.
    """
    layer = derivation.layer
    prove = PROOFS.get(layer)
    if prove is None:
        return ()
    limit = PROOF_TERMS if max_terms is None else max_terms
    if layer.term_count(tuple(derivation.input_shape)) > limit:
        return None
    return prove(derivation)
