"""The 2-D convolution's closed forms, as code, and their proof on an instance.

- ``dL/dx[n,c] = sum_o correlate(pad(dilate(g[n,o], s), P), rot180(w[o,c]), dilation=d)``
  with ``P`` from :func:`~symbackprop.core.indexing.grad_input_padding` (a negative pad
  crops) and ``o`` running over the output channels of ``c``'s group (channel swap).
- ``dL/dw[o,c] = sum_n correlate(xp[n,c], dilate(g[n,o], s), stride=d)``: the padded
  input correlated with the stride-dilated ``g`` used as the kernel.
- ``dL/db[o] = sum_{n,i,j} g[n,o,i,j]``.

The same functions run on NumPy numbers, on SymPy symbols and, in the proof, on exact
polynomials of those symbols (:class:`~symbackprop.core.rules.Polynomial`), so what is
proven here is what the numeric checks use.
"""

from __future__ import annotations

import numpy as np

from symbackprop.core.indexing import grad_input_padding, unread_length
from symbackprop.core.rules import (
    PROOFS,
    RuleProof,
    array_sum,
    axis_sum,
    collector_paused,
    correlate2d,
    dilate,
    mismatched_elements,
    pad2d,
    polynomial_grid,
    rot180,
)
from symbackprop.kinds.conv2d.spec import Conv2d

__all__ = ["closed_form_gradients", "grad_padding", "prove_rules", "STATEMENTS"]


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
        grads["b"] = axis_sum(g, (0, 2, 3))
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


STATEMENTS = {
    "grad_x": "dL/dx[n,c] = sum_o correlate(pad(dilate(g[n,o], s), P), rot180(w[o,c]), "
              "dilation d), o over the output channels of c's group",
    "grad_w": "dL/dw[o,c] = sum_n correlate(pad(x[n,c], p), dilate(g[n,o], s), stride d)",
    "grad_b": "dL/db[o] = sum_{n,i,j} g[n,o,i,j]",
}


@collector_paused()
def prove_rules(derivation) -> tuple[RuleProof, ...]:
    """Prove each closed form equal to the element-wise gradients of ``derivation``."""
    layer = derivation.layer
    # Evaluated on exact polynomials rather than SymPy symbols: the same arithmetic,
    # in time linear in the number of products (see core.rules.Polynomial).
    closed = closed_form_gradients(layer, polynomial_grid(derivation.x),
                                   polynomial_grid(derivation.w), polynomial_grid(derivation.g))
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
        mismatches = mismatched_elements(closed_form, derivation.grads[name],
                                         f"the dL/d{name} rule")
        proofs.append(RuleProof(
            name=f"grad_{name}", statement=STATEMENTS[f"grad_{name}"], holds=not mismatches,
            checked=closed_form.size, stride=layer.stride, dilation=layer.dilation,
            padding=layer.padding, grad_padding=grad_padding(layer, (height, width)),
            unread=unread, mismatches=mismatches))
    return tuple(proofs)


PROOFS.register(Conv2d, prove_rules)
