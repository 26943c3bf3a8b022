"""Stage 4, general rules: the closed forms the course notes teach, proven.

Input: a :class:`~symbackprop.core.derivation.Derivation`.  Output:
:class:`RuleProof` records saying whether each closed form of the layer's kind
(built from whole-array operations: dilate, pad, rotate, correlate, kron) equals the
element-wise sums that SymPy derived.  Each kind registers its proofs in
:data:`PROOFS` (``kinds/<kind>/rules.py``); :func:`proofs_for` asks it.

The array helpers here work on NumPy arrays of numbers or of SymPy expressions
(``dtype=object``), so the same code is proven symbolically and used numerically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.naming import to_grid
from symbackprop.core.registry import Registry

__all__ = [
    "dilate",
    "pad2d",
    "rot180",
    "correlate2d",
    "array_sum",
    "kron_upsample",
    "RuleProof",
    "mismatched_elements",
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

    Arrays of SymPy expressions are added in one ``sympy.Add`` per element: adding
    them one at a time would re-flatten a growing sum at every step.
    """
    if not any(a.dtype == object for a in arrays):
        return np.sum(arrays, axis=0)
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = sympy.Add(*[a[index] for a in arrays])
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

    ``holds`` is True only when every element of the closed form expands to the
    same polynomial as the element-wise derivation (``checked`` elements).
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


def mismatched_elements(closed_form: np.ndarray, gradient, rule: str) -> tuple:
    """Indices (0-based) where ``closed_form`` and the derived ``gradient`` differ.

    Each element of the closed form is expanded and compared with the derived sum as
    a polynomial; an empty tuple means the closed form is proven on this instance.
    ``rule`` names it on the progress display (``"the dL/dx rule"``).
    """
    truth = to_grid(gradient)
    elements = progress.track(np.ndindex(*truth.shape), f"proving {rule}", truth.size,
                              unit="elements")
    return tuple(index for index in elements
                 if sympy.expand(sympy.sympify(closed_form[index]) - truth[index]) != 0)


#: The closed forms of each kind: layer type -> ``function(derivation) -> (RuleProof, ...)``
#: or ``None`` (the kind has closed forms but this instance is too large to prove them).
PROOFS = Registry("prove the closed forms of")


#: Instances with more products than this are not re-proven by the printouts: proving
#: expands every gradient element once more, which grows faster than the derivation.
PROOF_TERMS = 20_000


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
