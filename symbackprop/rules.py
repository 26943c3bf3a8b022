"""Stage 4, general rules: the closed forms the course notes teach, as code.

Input: a :class:`~symbackprop.derivation.Derivation`.  Output: the closed-form
gradients (built from whole-array operations: dilate, pad, rotate, correlate) and
:class:`RuleProof` records saying whether each equals the element-wise sums that
SymPy derived.

The array helpers work on NumPy arrays of numbers or of SymPy expressions
(``dtype=object``), so the same code is proven symbolically and used numerically.

- ``dL/dx[n,c] = sum_o correlate(pad(dilate(g[n,o], s), P), rot180(w[o,c]), dilation=d)``
  with ``P`` from :func:`~symbackprop.indexing.grad_input_padding` (a negative pad
  crops) and ``o`` running over the output channels of ``c``'s group (channel swap).
- ``dL/dw[o,c] = sum_n correlate(xp[n,c], dilate(g[n,o], s), stride=d)``: the padded
  input correlated with the stride-dilated ``g`` used as the kernel.
- ``dL/db[o] = sum_{n,i,j} g[n,o,i,j]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from . import progress
from .indexing import grad_input_padding, unread_length
from .naming import to_grid

__all__ = [
    "dilate",
    "pad2d",
    "rot180",
    "correlate2d",
    "closed_form_gradients",
    "RuleProof",
    "prove_rules",
    "tiles_input",
    "kron_upsample",
    "prove_kron",
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


def closed_form_gradients(layer, x, w, g) -> dict:
    """``{"x": dL/dx, "w": dL/dw, "b": dL/db}`` of a convolution by the closed forms.

    ``x``, ``w``, ``g`` are NumPy arrays shaped ``(N, C, H, W)``,
    ``(O, C/groups, KH, KW)`` and ``(N, O, Ho, Wo)``, of numbers or SymPy symbols.
    """
    batch, channels, height, width = x.shape
    cg, og = layer.group_in_channels, layer.group_out_channels
    padding = grad_padding(layer, (height, width))
    dilated_g = pad2d(dilate(g, layer.stride), padding)
    flipped = rot180(w)
    dtype = object if object in (x.dtype, w.dtype, g.dtype) else np.result_type(x, w, g)

    grad_x = np.zeros(x.shape, dtype=dtype)
    for n in range(batch):
        for c in range(channels):
            group, c_local = divmod(c, cg)
            grad_x[n, c] = array_sum([  # channel swap: o runs over c's group, c fixed
                correlate2d(dilated_g[n, o], flipped[o, c_local], dilation=layer.dilation)
                for o in range(group * og, (group + 1) * og)])

    xp = pad2d(x, layer.padding)
    stride_dilated_g = dilate(g, layer.stride)
    kernel_h, kernel_w = layer.kernel_size
    grad_w = np.zeros(w.shape, dtype=dtype)
    for o in range(layer.out_channels):
        group = o // og
        for c_local in range(cg):
            # Rows past the last one read (stride remainder) fall outside [:KH].
            grad_w[o, c_local] = array_sum([
                correlate2d(xp[n, group * cg + c_local], stride_dilated_g[n, o],
                            stride=layer.dilation)[:kernel_h, :kernel_w]
                for n in range(batch)])
    grads = {"x": grad_x, "w": grad_w}
    if layer.bias:
        grads["b"] = g.sum(axis=(0, 2, 3))
    return grads


def grad_padding(layer, input_size) -> tuple[int, int, int, int]:
    """Padding ``(top, bottom, left, right)`` of the stride-dilated ``g`` for dL/dx."""
    height, width = input_size
    top, bottom, left, right = layer.padding
    rows = grad_input_padding(height, layer.kernel_size[0], layer.stride[0], top, bottom,
                              layer.dilation[0])
    cols = grad_input_padding(width, layer.kernel_size[1], layer.stride[1], left, right,
                              layer.dilation[1])
    return (*rows, *cols)


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


STATEMENTS = {
    "grad_x": "dL/dx[n,c] = sum_o correlate(pad(dilate(g[n,o], s), P), rot180(w[o,c]), "
              "dilation d), o over the output channels of c's group",
    "grad_w": "dL/dw[o,c] = sum_n correlate(pad(x[n,c], p), dilate(g[n,o], s), stride d)",
    "grad_b": "dL/db[o] = sum_{n,i,j} g[n,o,i,j]",
}


def prove_rules(derivation) -> tuple[RuleProof, ...]:
    """Prove each closed form equal to the element-wise gradients of ``derivation``."""
    layer = derivation.layer
    closed = closed_form_gradients(layer, to_grid(derivation.x), to_grid(derivation.w),
                                   to_grid(derivation.g))
    height, width = derivation.input_shape[2:]
    top, bottom, left, right = layer.padding
    unread = (
        unread_length(height, layer.kernel_size[0], layer.stride[0], top, bottom,
                      layer.dilation[0]),
        unread_length(width, layer.kernel_size[1], layer.stride[1], left, right,
                      layer.dilation[1]),
    )
    proofs = []
    for name, closed_form in closed.items():
        truth = to_grid(derivation.grads[name])
        elements = progress.track(np.ndindex(*truth.shape), f"proving the dL/d{name} rule",
                                  truth.size, unit="elements")
        mismatches = tuple(
            index for index in elements
            if sympy.expand(sympy.sympify(closed_form[index]) - truth[index]) != 0
        )
        proofs.append(RuleProof(
            name=f"grad_{name}", statement=STATEMENTS[f"grad_{name}"], holds=not mismatches,
            checked=truth.size, stride=layer.stride, dilation=layer.dilation,
            padding=layer.padding, grad_padding=grad_padding(layer, (height, width)),
            unread=unread, mismatches=mismatches))
    return tuple(proofs)


# ---------------------------------------------------------------------------
# Average pooling with windows that tile the input: the Kronecker-product form
# ---------------------------------------------------------------------------

KRON_STATEMENT = "dL/dx = kron(g, ones(KH, KW)) / (KH*KW)"


def tiles_input(layer) -> bool:
    """Whether pooling windows sit side by side: stride = kernel and no padding."""
    return layer.stride == layer.kernel_size and not any(layer.padding)


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


#: Instances with more products than this are not re-proven by the printouts: proving
#: expands every gradient element once more, which grows faster than the derivation.
PROOF_TERMS = 20_000


def proofs_for(derivation, max_terms: int | None = None):
    """The closed-form proofs a printout shows for ``derivation``.

    A convolution's :func:`prove_rules` (``None`` when the instance has more than
    ``max_terms``, default :data:`PROOF_TERMS`, products: the rules are then quoted,
    not proven); average pooling with tiling windows, :func:`prove_kron`; other
    layers, no closed form: ``()``.
    """
    layer = derivation.layer
    if layer.kind == "conv2d":
        limit = PROOF_TERMS if max_terms is None else max_terms
        count = layer.term_count(tuple(derivation.input_shape))
        return prove_rules(derivation) if count <= limit else None
    if layer.kind == "avgpool2d" and tiles_input(layer):
        return (prove_kron(derivation),)
    return ()


def prove_kron(derivation) -> RuleProof:
    """Prove :data:`KRON_STATEMENT` against the element-wise ``dL/dx`` of average pooling."""
    layer = derivation.layer
    if not tiles_input(layer):
        raise ValueError(f"{layer.describe()}: the Kronecker form needs windows that tile the "
                         f"input (stride = kernel_size, no padding)")
    height, width = derivation.input_shape[2:]
    closed = kron_upsample(to_grid(derivation.g), layer.kernel_size, (height, width))
    truth = to_grid(derivation.grads["x"])
    mismatches = tuple(index for index in progress.track(np.ndindex(*truth.shape),
                                                         "proving the kron rule", truth.size,
                                                         unit="elements")
                       if sympy.expand(sympy.sympify(closed[index]) - truth[index]) != 0)
    unread = tuple(unread_length(size, kernel, kernel, 0, 0)
                   for size, kernel in zip((height, width), layer.kernel_size))
    return RuleProof(name="grad_x", statement=KRON_STATEMENT, holds=not mismatches,
                     checked=truth.size, stride=layer.stride, dilation=(1, 1),
                     padding=layer.padding, grad_padding=(0, 0, 0, 0), unread=unread,
                     mismatches=mismatches)
