"""The transposed convolution's closed forms and its relations to the convolution, proven.

Closed forms (``P = (d*(K-1) - p_begin, d*(K-1) - p_end + output_padding)`` per axis,
a negative pad crops; ``o`` and ``c`` run over one group):

- ``z[n,o] = b[o] + sum_c correlate(pad(dilate(x[n,c], s), P), flip(w[c,o]), dilation d)``:
  dilate-pad-correlate, the convolution's ``dL/dx`` rule with ``x`` in the place of ``g``;
- ``dL/dx[n,c] = sum_o correlate(pad(g[n,o], p), w[c,o], stride s, dilation d)[:L]``: a
  plain convolution of ``g`` with the same weight, no flip, no channel swap;
- ``dL/dw[c,o] = sum_n correlate(pad(g[n,o], p), dilate(x[n,c], s), stride d)[:K]``;
- ``dL/db[o] = sum of g[n,o] over n and every position``.

Relations to ``conv = Conv{n}d(out_channels, in_channels, kernel_size, stride, padding,
dilation, groups)`` (found by name in the kind registry), whose input has this layer's
output shape and whose weight ``(C, O/groups, *K)`` is this layer's weight:

1. this layer's ``z`` (less its bias) is ``conv``'s ``dL/dx`` with ``conv``'s upstream
   gradient set to this layer's input;
2. this layer's ``dL/dx`` is ``conv``'s ``z`` with ``conv``'s input set to this layer's
   upstream gradient;
3. ``output_padding`` adds exactly the positions ``conv``'s stride never reads: the
   outputs agree with those of the layer without it, ``conv``'s unread tail is
   ``output_padding mod s`` long, and an output position in it holds its bias alone.

Each is proven on the instance element by element, on exact polynomials
(:class:`~symbackprop.core.rules.Polynomial`), as the 2-D convolution's rules are.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from symbackprop.core.derivation import derive_instance
from symbackprop.core.indexing import unread_length
from symbackprop.core.naming import element_symbol, parse_element
from symbackprop.core.registry import KINDS
from symbackprop.core.rules import (
    PROOFS,
    Polynomial,
    RuleProof,
    _grid,
    array_sum,
    axis_sum,
    collector_paused,
    mismatched_elements,
    polynomial_grid,
    polynomial_terms,
    same_polynomial,
)
from symbackprop.kinds.conv_transpose.spec import LAYER_TYPES

__all__ = ["dilate_nd", "pad_nd", "flip_nd", "correlate_nd", "closed_form_forward",
           "closed_form_gradients", "forward_padding", "convolution_of", "prove_rules",
           "STATEMENTS", "RELATIONS"]


# -- N-dimensional array helpers (the last ``len(stride)`` axes are positions) ----------

def dilate_nd(array: np.ndarray, stride) -> np.ndarray:
    """Insert ``s-1`` zeros between the elements of each of the last ``len(stride)`` axes."""
    dims = len(stride)
    lead, sizes = array.shape[:-dims], array.shape[-dims:]
    out = np.zeros(lead + tuple((size - 1) * s + 1 for size, s in zip(sizes, stride)),
                   dtype=array.dtype)
    out[(Ellipsis, *(slice(None, None, s) for s in stride))] = array
    return out


def pad_nd(array: np.ndarray, pairs) -> np.ndarray:
    """Zero-pad the last ``len(pairs)`` axes by ``(begin, end)`` each; negative crops."""
    dims = len(pairs)
    grow = [(0, 0)] * (array.ndim - dims) + [(max(b, 0), max(e, 0)) for b, e in pairs]
    padded = np.pad(array, grow, mode="constant", constant_values=0)
    sizes = padded.shape[-dims:]
    return padded[(Ellipsis, *(slice(max(-b, 0), size - max(-e, 0))
                               for (b, e), size in zip(pairs, sizes)))]


def flip_nd(kernel: np.ndarray, dims: int) -> np.ndarray:
    """Reverse the last ``dims`` axes (the 2-D ``rot180``)."""
    return kernel[(Ellipsis, *(slice(None, None, -1),) * dims)]


def correlate_nd(array: np.ndarray, kernel: np.ndarray, stride=None, dilation=None):
    """Valid cross-correlation of two arrays of the same rank ``D``.

    ``out[i] = sum_k kernel[k] * array[i*s + k*d]`` (``i``, ``k`` index tuples).
    """
    dims = kernel.ndim
    stride = stride or (1,) * dims
    dilation = dilation or (1,) * dims
    out_sizes = [(size - (d * (k - 1) + 1)) // s + 1 for size, k, s, d in
                 zip(array.shape, kernel.shape, stride, dilation)]
    return array_sum([kernel[offset] * array[tuple(
        slice(k * d, k * d + s * (out - 1) + 1, s)
        for k, d, s, out in zip(offset, dilation, stride, out_sizes))]
        for offset in np.ndindex(*kernel.shape)])


def _crop(array: np.ndarray, sizes) -> np.ndarray:
    return array[(Ellipsis, *(slice(0, size) for size in sizes))]


def forward_padding(layer) -> tuple[tuple[int, int], ...]:
    """``(d*(K-1) - p_begin, d*(K-1) - p_end + output_padding)`` per axis (negative crops)."""
    return tuple((d * (k - 1) - begin, d * (k - 1) - end + extra) for k, d, begin, end, extra in
                 zip(layer.kernel_size, layer.dilation, layer.pad_begin, layer.pad_end,
                     layer.output_padding))


def _dtype(*arrays):
    return object if any(a.dtype == object for a in arrays) else np.result_type(*arrays)


def closed_form_forward(layer, x, w, b=None) -> np.ndarray:
    """``z`` by dilate-pad-correlate (see the module docstring); any dtype."""
    batch, channels = x.shape[:2]
    cg, og = layer.group_in_channels, layer.group_out_channels
    spread = pad_nd(dilate_nd(x, layer.stride), forward_padding(layer))
    flipped = flip_nd(w, layer.dims)
    out_sizes = layer.output_size(x.shape[2:])
    z = np.zeros((batch, layer.out_channels, *out_sizes), dtype=_dtype(x, w))
    for n in range(batch):
        for o in range(layer.out_channels):
            group, o_local = divmod(o, og)
            z[n, o] = array_sum([
                correlate_nd(spread[n, c], flipped[c, o_local], dilation=layer.dilation)
                for c in range(group * cg, (group + 1) * cg)])
            if b is not None:
                z[n, o] = z[n, o] + b[o]
    return z


def closed_form_gradients(layer, x, w, g) -> dict:
    """``{"x": dL/dx, "w": dL/dw, "b": dL/db}`` by the closed forms; any dtype."""
    batch, channels = x.shape[:2]
    sizes = x.shape[2:]
    cg, og = layer.group_in_channels, layer.group_out_channels
    dtype = _dtype(x, w, g)
    padded_g = pad_nd(g, tuple(zip(layer.pad_begin, layer.pad_end)))
    grad_x = np.zeros(x.shape, dtype=dtype)
    for n in range(batch):
        for c in range(channels):
            group = c // cg
            grad_x[n, c] = _crop(array_sum([  # a convolution of g with the same weight
                correlate_nd(padded_g[n, group * og + o_local], w[c, o_local],
                             stride=layer.stride, dilation=layer.dilation)
                for o_local in range(og)]), sizes)
    spread_x = dilate_nd(x, layer.stride)
    grad_w = np.zeros(w.shape, dtype=dtype)
    for c in range(channels):
        group = c // cg
        for o_local in range(og):
            grad_w[c, o_local] = _crop(array_sum([
                correlate_nd(padded_g[n, group * og + o_local], spread_x[n, c],
                             stride=layer.dilation)
                for n in range(batch)]), layer.kernel_size)
    grads = {"x": grad_x, "w": grad_w}
    if layer.bias:
        grads["b"] = axis_sum(g, (0, *range(2, g.ndim)))
    return grads


STATEMENTS = {
    "forward": "z[n,o] = b[o] + sum_c correlate(pad(dilate(x[n,c], s), P), flip(w[c,o]), "
               "dilation d)",
    "grad_x": "dL/dx[n,c] = sum_o correlate(pad(g[n,o], p), w[c,o], stride s, dilation d)"
              "[:L]: a convolution of g, no flip",
    "grad_w": "dL/dw[c,o] = sum_n correlate(pad(g[n,o], p), dilate(x[n,c], s), stride d)[:K]",
    "grad_b": "dL/db[o] = sum of g[n,o] over n and every position",
}

#: The relations to the convolution, in words (the printouts add this layer's numbers).
RELATIONS = {
    "conv_backward": "z (less b) = dL/dx of the convolution, whose upstream gradient is x",
    "conv_forward": "dL/dx = z of the convolution, whose input is g",
    "output_padding": "output_padding adds exactly the positions the convolution's stride "
                      "never reads",
}


def convolution_of(layer):
    """``(Conv{n}d(...), None)``, or ``(None, reason)`` when no such kind is registered."""
    name = f"conv{layer.dims}d"
    conv_type = KINDS.get(name)
    if conv_type is None:
        return None, f"no layer kind {name!r} is registered"
    try:
        return conv_type(**layer.convolution_arguments()), None
    except (TypeError, ValueError) as error:
        return None, f"{name} does not take this layer's arguments: {error}"


def _renamed(expression, renames: dict, shapes: dict) -> Polynomial | None:
    """``expression`` (a sum of products) with arrays renamed: ``{"g": "x"}``.

    A renamed element whose index is outside ``shapes[new name]`` is 0 (a zero-extended
    array), and so is every product holding it.  None if it is not a polynomial.
    """
    terms = polynomial_terms(expression)
    if terms is None:
        return None
    out = {}
    for monomial, coefficient in terms.items():
        renamed, vanished = [], False
        for symbol, exponent in monomial:
            parsed = parse_element(symbol)
            if parsed is not None and parsed[0] in renames:
                array, index = renames[parsed[0]], parsed[1]
                if any(i >= size for i, size in zip(index, shapes[array])):
                    vanished = True
                    break
                symbol = element_symbol(array, index)
            renamed.append((symbol, exponent))
        if not vanished:
            key = frozenset(renamed)
            out[key] = out.get(key, 0) + coefficient
    return Polynomial({m: c for m, c in out.items() if c})


def _proof(layer, name, statement, holds, checked, mismatches=(), note=""):
    return RuleProof(name=name, statement=statement + note, holds=holds, checked=checked,
                     stride=layer.stride, dilation=layer.dilation, padding=layer.padding,
                     grad_padding=forward_padding(layer), unread=(), mismatches=mismatches)


def _conv_relations(derivation) -> list:
    """The proofs of relations 1 and 2 (see the module docstring)."""
    layer = derivation.layer
    conv, reason = convolution_of(layer)
    if conv is None:
        return [_proof(layer, name, RELATIONS[name], False, 0, note=f" (not proven: {reason})")
                for name in ("conv_backward", "conv_forward")]
    conv_input = derivation.output_shape
    conv_derivation = derive_instance(conv, conv_input, tuple(conv.output_shape_for(conv_input)))
    shapes = {"x": derivation.input_shape, "g": derivation.output_shape}
    described = f" ({conv.describe()})"

    z, conv_grad_x = _grid(derivation.z), _grid(conv_derivation.grads["x"])
    bias = _grid(derivation.b) if derivation.b is not None else None
    mismatches = []
    for index in np.ndindex(*z.shape):
        relation = _renamed(conv_grad_x[index], {"g": "x"}, shapes)
        if bias is not None:
            relation = relation + bias[index[1]]
        if not same_polynomial(relation, z[index]):
            mismatches.append(index)
    proofs = [_proof(layer, "conv_backward", RELATIONS["conv_backward"], not mismatches,
                     z.size, tuple(mismatches), described)]

    grad_x, conv_z = _grid(derivation.grads["x"]), _grid(conv_derivation.z)
    mismatches = [index for index in np.ndindex(*grad_x.shape)
                  if not same_polynomial(_renamed(conv_z[index], {"x": "g"}, shapes),
                                         grad_x[index])]
    proofs.append(_proof(layer, "conv_forward", RELATIONS["conv_forward"], not mismatches,
                         grad_x.size, tuple(mismatches), described))
    return proofs


def unread_tail(layer, output_sizes) -> tuple[int, ...]:
    """Per axis, the positions at the end of the convolution's padded input its stride
    never reads (``(Lo + p_begin + p_end - d*(K-1) - 1) mod s``)."""
    return tuple(unread_length(size, k, s, begin, end, d) for size, k, s, begin, end, d in
                 zip(output_sizes, layer.kernel_size, layer.stride, layer.pad_begin,
                     layer.pad_end, layer.dilation))


def _output_padding_relation(derivation) -> RuleProof:
    """Relation 3 (see the module docstring), element by element."""
    layer = derivation.layer
    out_sizes = derivation.output_shape[2:]
    unread = unread_tail(layer, out_sizes)
    sizes_hold = all(r == extra % s for r, extra, s in
                     zip(unread, layer.output_padding, layer.stride))
    z = _grid(derivation.z)
    mismatches = []
    checked = 0
    plain = layer.replace(output_padding=0)
    try:
        plain_shape = plain.output_shape_for(derivation.input_shape)
    except ValueError:  # without output_padding the padding would crop everything
        plain_shape = None
    if any(layer.output_padding) and plain_shape is not None:
        plain_derivation = derive_instance(plain, derivation.input_shape, plain_shape)
        plain_z = _grid(plain_derivation.z)
        for index in np.ndindex(*plain_z.shape):  # the positions both layers have
            checked += 1
            if not same_polynomial(Polynomial.of(plain_z[index]), z[index]):
                mismatches.append(index)
    bias = _grid(derivation.b) if derivation.b is not None else None
    for index in np.ndindex(*z.shape):  # the unread tail: no contribution lands there
        positions = index[2:]
        if any(j >= size + end - r for j, size, end, r in
               zip(positions, out_sizes, layer.pad_end, unread)):
            checked += 1
            alone = bias[index[1]] if bias is not None else 0
            if not same_polynomial(Polynomial.of(z[index]), alone):
                mismatches.append(index)
    proof = _proof(layer, "output_padding", RELATIONS["output_padding"],
                   sizes_hold and not mismatches, checked, tuple(mismatches))
    return dataclasses.replace(proof, unread=unread)


@collector_paused()
def prove_rules(derivation) -> tuple[RuleProof, ...]:
    """Prove the closed forms and the relations to the convolution on ``derivation``."""
    layer = derivation.layer
    x, w, g = (polynomial_grid(derivation.x), polynomial_grid(derivation.w),
               polynomial_grid(derivation.g))
    b = polynomial_grid(derivation.b) if derivation.b is not None else None
    closed = {"forward": (closed_form_forward(layer, x, w, b), derivation.z)}
    for name, form in closed_form_gradients(layer, x, w, g).items():
        closed[f"grad_{name}"] = (form, derivation.grads[name])
    proofs = []
    for name, (form, truth) in closed.items():
        mismatches = mismatched_elements(form, truth, f"the {name} rule")
        proofs.append(_proof(layer, name, STATEMENTS[name], not mismatches, form.size,
                             mismatches))
    proofs += _conv_relations(derivation)
    proofs.append(_output_padding_relation(derivation))
    return tuple(proofs)


for _layer_type in LAYER_TYPES:
    PROOFS.register(_layer_type, prove_rules)
