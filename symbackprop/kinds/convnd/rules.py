"""The 1-D and 3-D convolutions' closed forms, as code, and their proof on an instance.

Written once for any number of spatial axes (``a`` runs over them):

- ``dL/dx[n,c] = sum_o correlate(pad(dilate(g[n,o], s), P), flip(w[o,c]), dilation d)``:
  ``g`` dilated by the stride (``s-1`` zeros between neighbours on every axis), padded
  by ``P_a = (d*(K-1) - begin, d*(K-1) - end + r)`` per axis (``r`` the positions no
  window reads; a negative pad crops), correlated with the kernel flipped along every
  spatial axis; ``o`` runs over the output channels of ``c``'s group.
- ``dL/dw[o,c] = sum_n correlate(pad(x[n,c], p), dilate(g[n,o], s), stride d)``: the
  padded input correlated with the stride-dilated ``g`` as the kernel.
- ``dL/db[o] = sum of g[n,o,...]`` over the batch and every position.

The same functions run on NumPy numbers and, in the proof, on exact polynomials of
the element symbols (:class:`~symbackprop.core.rules.Polynomial`), so what is proven
is what the numeric tests use.
"""

from __future__ import annotations

import itertools

import numpy as np

from symbackprop.core.indexing import grad_input_padding, unread_length
from symbackprop.core.rules import (
    PROOFS,
    RuleProof,
    array_sum,
    axis_sum,
    collector_paused,
    mismatched_elements,
    polynomial_grid,
)
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d

__all__ = ["closed_form_gradients", "grad_padding", "unread", "prove_rules", "STATEMENTS",
           "dilate_nd", "pad_nd", "flip_nd", "correlate_nd"]


def dilate_nd(array: np.ndarray, stride) -> np.ndarray:
    """Insert ``s-1`` zeros between neighbours along each of the last ``len(stride)`` axes.

    An axis of ``n`` elements becomes ``(n-1)*s + 1``: this undoes the forward stride.
    """
    axes = len(stride)
    sizes = array.shape[-axes:]
    out = np.zeros(array.shape[:-axes] + tuple((n - 1) * s + 1 for n, s in zip(sizes, stride)),
                   dtype=array.dtype)
    out[(Ellipsis, *(slice(None, None, s) for s in stride))] = array
    return out


def pad_nd(array: np.ndarray, pairs) -> np.ndarray:
    """Zero-pad the last ``len(pairs)`` axes by ``(begin, end)`` each; negative crops."""
    lead = array.ndim - len(pairs)
    grow = [(0, 0)] * lead + [(max(before, 0), max(after, 0)) for before, after in pairs]
    padded = np.pad(array, grow, mode="constant", constant_values=0)
    crop = tuple(slice(max(-before, 0), size - max(-after, 0)) for (before, after), size
                 in zip(pairs, padded.shape[lead:]))
    return padded[(Ellipsis, *crop)]


def flip_nd(kernel: np.ndarray, axes: int) -> np.ndarray:
    """The kernel flipped along its last ``axes`` axes (rot180 in 2-D)."""
    return kernel[(Ellipsis, *(slice(None, None, -1),) * axes)]


def correlate_nd(array: np.ndarray, kernel: np.ndarray, stride=None, dilation=None):
    """Valid cross-correlation of two arrays with the same number of axes.

    ``out[i...] = sum_{m...} kernel[m...] * array[i*s + m*d ...]``, one ``i``, ``m``,
    ``s`` and ``d`` per axis.
    """
    axes = kernel.ndim
    stride = stride or (1,) * axes
    dilation = dilation or (1,) * axes
    out_sizes = [(size - (d * (k - 1) + 1)) // s + 1 for size, k, s, d
                 in zip(array.shape, kernel.shape, stride, dilation)]
    return array_sum([
        kernel[offset] * array[tuple(slice(m * d, m * d + s * (n - 1) + 1, s) for m, d, s, n
                                     in zip(offset, dilation, stride, out_sizes))]
        for offset in itertools.product(*(range(k) for k in kernel.shape))])


def grad_padding(layer, sizes) -> tuple[tuple[int, int], ...]:
    """Padding ``(begin, end)`` per axis of the stride-dilated ``g`` for dL/dx."""
    return tuple(grad_input_padding(size, kernel, step, before, after, spread)
                 for size, kernel, step, (before, after), spread
                 in zip(sizes, layer.kernel_size, layer.stride, layer.padding_pairs,
                        layer.dilation))


def unread(layer, sizes) -> tuple[int, ...]:
    """Positions at the end of each padded axis that no window reads (their gradient is 0)."""
    return tuple(unread_length(size, kernel, step, before, after, spread)
                 for size, kernel, step, (before, after), spread
                 in zip(sizes, layer.kernel_size, layer.stride, layer.padding_pairs,
                        layer.dilation))


def closed_form_gradients(layer, x, w, g) -> dict:
    """``{"x": dL/dx, "w": dL/dw, "b": dL/db}`` of ``layer`` by the closed forms.

    ``x``, ``w``, ``g`` are NumPy arrays shaped ``(N, C, *sizes)``, ``(O, C/groups, *K)``
    and ``(N, O, *output sizes)``, of numbers or exact polynomials.
    """
    batch, channels, *sizes = x.shape
    axes = layer.spatial_axes
    cg, og = layer.group_in_channels, layer.group_out_channels
    dilated_g = pad_nd(dilate_nd(g, layer.stride), grad_padding(layer, sizes))
    flipped = flip_nd(w, axes)
    dtype = object if object in (x.dtype, w.dtype, g.dtype) else np.result_type(x, w, g)

    grad_x = np.zeros(x.shape, dtype=dtype)
    for n in range(batch):
        for c in range(channels):
            group, c_local = divmod(c, cg)
            grad_x[n, c] = array_sum([  # channel swap: o runs over c's group, c fixed
                correlate_nd(dilated_g[n, o], flipped[o, c_local], dilation=layer.dilation)
                for o in range(group * og, (group + 1) * og)])

    xp = pad_nd(x, layer.padding_pairs)
    stride_dilated_g = dilate_nd(g, layer.stride)
    kernel_window = tuple(slice(0, k) for k in layer.kernel_size)
    grad_w = np.zeros(w.shape, dtype=dtype)
    for o in range(layer.out_channels):
        group = o // og
        for c_local in range(cg):
            # positions past the last one read (a stride remainder) fall outside [:K]
            grad_w[o, c_local] = array_sum([
                correlate_nd(xp[n, group * cg + c_local], stride_dilated_g[n, o],
                             stride=layer.dilation)[kernel_window]
                for n in range(batch)])
    grads = {"x": grad_x, "w": grad_w}
    if layer.bias:
        grads["b"] = axis_sum(g, (0, *range(2, 2 + axes)))
    return grads


STATEMENTS = {
    "grad_x": "dL/dx[n,c] = sum_o correlate(pad(dilate(g[n,o], s), P), flip(w[o,c]), "
              "dilation d), o over the output channels of c's group",
    "grad_w": "dL/dw[o,c] = sum_n correlate(pad(x[n,c], p), dilate(g[n,o], s), stride d)",
    "grad_b": "dL/db[o] = sum of g[n,o,...] over n and every position",
}


@collector_paused()
def prove_rules(derivation) -> tuple[RuleProof, ...]:
    """Prove each closed form equal to the element-wise gradients of ``derivation``."""
    layer = derivation.layer
    closed = closed_form_gradients(layer, polynomial_grid(derivation.x),
                                   polynomial_grid(derivation.w), polynomial_grid(derivation.g))
    sizes = derivation.input_shape[2:]
    flat_grad_padding = tuple(v for pair in grad_padding(layer, sizes) for v in pair)
    proofs = []
    for name, closed_form in closed.items():
        mismatches = mismatched_elements(closed_form, derivation.grads[name],
                                         f"the dL/d{name} rule")
        proofs.append(RuleProof(
            name=f"grad_{name}", statement=STATEMENTS[f"grad_{name}"], holds=not mismatches,
            checked=closed_form.size, stride=layer.stride, dilation=layer.dilation,
            padding=layer.padding, grad_padding=flat_grad_padding,
            unread=unread(layer, sizes), mismatches=mismatches))
    return tuple(proofs)


for _layer_type in (Conv1d, Conv3d):
    PROOFS.register(_layer_type, prove_rules)
