"""The course's exercises that are algebra, not a layer: worked out by SymPy.

:func:`full_convolution_commutes`: the wide ("full") convolution is commutative,
``(x * w)_{ij} = (w * x)_{ij}`` for every ``i, j``, shown element by element: both
sides are expanded as sums of products and compared term by term.  The
cross-correlation the forward pass computes is not: ``x`` correlated with ``w`` and
``w`` correlated with ``x`` differ (one is the other rotated by 180 degrees), and the
'valid' correlation of the small ``w`` with the larger ``x`` does not even exist.

Indices are 1-based, as in the course: with ``x`` of size ``H x W`` and ``w`` of size
``K_H x K_W``,

    (x * w)_{ij}    = sum_{a,b} x_{ab} w_{i-a+1, j-b+1}      (full: i = 1 .. H + K_H - 1)
    (w * x)_{ij}    = sum_{m,k} w_{mk} x_{i-m+1, j-k+1}
    corr(x, w)_{ij} = sum_{m,k} x_{i+m-1, j+k-1} w_{mk}      (valid: i = 1 .. H - K_H + 1)

each sum over the indices that stay inside both arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from symbackprop.core.command_line import parse_numbers

__all__ = ["Commutativity", "full_convolution_commutes", "EXERCISE_LIMIT"]

#: Largest side of ``x`` or ``w`` the exercise expands (its printout lists every element).
EXERCISE_LIMIT = 6


def _symbols(name: str, height: int, width: int) -> sympy.Matrix:
    """``x_11 ... x_HW`` as a matrix of symbols (1-based names, sides below 10)."""
    return sympy.Matrix(height, width,
                        lambda i, j: sympy.Symbol(f"{name}_{i + 1}{j + 1}", real=True))


def full_convolution(first: sympy.Matrix, second: sympy.Matrix) -> list:
    """``(first * second)_{ij} = sum_{a,b} first_{ab} second_{i-a, j-b}`` (0-based), 'full':
    each element as its list of ``(first factor, second factor)`` products, in the order
    of the sum (SymPy's ``Add`` would reorder them)."""
    rows, columns = first.rows + second.rows - 1, first.cols + second.cols - 1
    return [[[(first[a, b], second[i - a, j - b])
              for a in range(first.rows) for b in range(first.cols)
              if 0 <= i - a < second.rows and 0 <= j - b < second.cols]
             for j in range(columns)] for i in range(rows)]


def full_correlation(first: sympy.Matrix, second: sympy.Matrix) -> list:
    """``corr(first, second)_{ij} = sum_{m,k} first_{i+m, j+k} second_{mk}`` over every
    shift at which the two overlap ('full' correlation), as :func:`full_convolution`'s
    lists of products."""
    rows, columns = first.rows + second.rows - 1, first.cols + second.cols - 1
    return [[[(first[i - second.rows + 1 + m, j - second.cols + 1 + k], second[m, k])
              for m in range(second.rows) for k in range(second.cols)
              if 0 <= i - second.rows + 1 + m < first.rows
              and 0 <= j - second.cols + 1 + k < first.cols]
             for j in range(columns)] for i in range(rows)]


def as_sums(products: list) -> sympy.Matrix:
    """The lists of products as a matrix of SymPy sums."""
    return sympy.Matrix([[sympy.Add(*[a * b for a, b in element]) for element in row]
                         for row in products])


@dataclass(frozen=True)
class Commutativity:
    """The exercise worked out: both full convolutions, compared term by term.

    Attributes
    ----------
    x, w : the symbol matrices (``x_{11}``, ``w_{11}``, ...).
    x_w, w_x : ``x * w`` and ``w * x`` ('full' convolution), element by element, each
        element its list of products ``(factor of the first, factor of the second)``.
    equal : every element of ``x_w`` minus the one of ``w_x`` expands to 0.
    same_terms : every element of both has the same products, once each.
    corr_xw, corr_wx : the 'full' cross-correlations of ``x`` with ``w`` and of ``w``
        with ``x``, as lists of products.
    corr_differs : ``(i, j)`` (0-based) of the first element where they differ
        (``None`` if they never do: a 1x1 kernel).
    corr_rotated : ``corr_wx`` is ``corr_xw`` rotated by 180 degrees, element by element.
    valid_shape : the shape of the 'valid' ``corr(x, w)``; ``corr(w, x)`` 'valid' has
        no element unless ``w`` is at least as large as ``x``.
    """

    x: sympy.Matrix
    w: sympy.Matrix
    x_w: list
    w_x: list
    equal: bool
    same_terms: bool
    corr_xw: list
    corr_wx: list
    corr_differs: tuple | None
    corr_rotated: bool
    valid_shape: tuple


def full_convolution_commutes(input_size=(3, 3), kernel_size=(2, 2)) -> Commutativity:
    """Work the exercise out on an ``x`` of ``input_size`` and a ``w`` of ``kernel_size``.

    ``input_size`` and ``kernel_size``: ``(H, W)``, an int for a square, or the
    command line's ``"3x3"`` / ``"2"``.

    Raises
    ------
    ValueError
        Naming ``--input`` or ``--kernel`` for a size below 1 or above
        :data:`EXERCISE_LIMIT`.
    """
    sizes = []
    for option, value in (("input", input_size), ("kernel", kernel_size)):
        if isinstance(value, str):
            value = parse_numbers(value, option, counts=(1, 2))
        if isinstance(value, int):
            value = (value, value)
        value = tuple(int(v) for v in value)
        if len(value) != 2 or not all(1 <= v <= EXERCISE_LIMIT for v in value):
            raise ValueError(f"--{option}: each side must be 1 to {EXERCISE_LIMIT} (the "
                             f"printout lists every element), got {'x'.join(map(str, value))}")
        sizes.append(value)
    (height, width), (kh, kw) = sizes
    x, w = _symbols("x", height, width), _symbols("w", kh, kw)
    x_w, w_x = full_convolution(x, w), full_convolution(w, x)
    left, right = as_sums(x_w), as_sums(w_x)
    equal = all(sympy.expand(a - b) == 0 for a, b in zip(left, right))
    same_terms = all(sorted(map(str, sympy.Add.make_args(a))) ==
                     sorted(map(str, sympy.Add.make_args(b))) for a, b in zip(left, right))
    corr_xw, corr_wx = full_correlation(x, w), full_correlation(w, x)
    forward, backward = as_sums(corr_xw), as_sums(corr_wx)
    differs = next(((i, j) for i in range(forward.rows) for j in range(forward.cols)
                    if sympy.expand(forward[i, j] - backward[i, j]) != 0), None)
    rotated = all(sympy.expand(backward[i, j] - forward[forward.rows - 1 - i,
                                                        forward.cols - 1 - j]) == 0
                  for i in range(forward.rows) for j in range(forward.cols))
    return Commutativity(x, w, x_w, w_x, equal, same_terms, corr_xw, corr_wx, differs,
                         rotated, (height - kh + 1, width - kw + 1))
