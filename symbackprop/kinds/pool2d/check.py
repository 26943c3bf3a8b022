"""check-impl for max and average pooling (1-D, 2-D, 3-D): the call convention, the inputs
and the known mistakes of pooling backward passes.

Input: an :class:`~symbackprop.check.impl.ImplCase` of a max or average pooling
layer (the person's output and the truth, the derivation evaluated numerically).
Output: the arrays a known-wrong backward pass would have returned on that case,
each computed from the truth:

- the derivation's terms are ``g[n,c,i,j] * [x_ab = argmax z_ij]`` (max) and
  ``g[n,c,i,j] / divisor`` (average), one per (element, window) pair; a wrong
  tie rule is the same terms with the indicator evaluated by another rule
  (:func:`last_maximum`, :func:`tied_maxima_share`, ...); a pass that does not
  divide keeps the terms without their coefficient; a pass that overwrites where
  windows overlap keeps, for each element, only the term of the last window
  written;
- a wrong divisor or a padding taken as zeros is the truth of a changed layer
  (``count_include_pad`` the other way; no padding, on the zero-padded input),
  derived and evaluated at the same numbers;
- a dropped ``ceil_mode`` window is the truth with the ``g`` of the windows only
  ``ceil_mode`` adds set to 0; a ``ceil_mode`` window divided by the whole window is
  the truth with each ``g`` scaled by ``D / (k1*k2*...)``; dilation ignored in max
  pooling is the truth of the same layer with dilation 1 (contiguous windows starting
  where the dilated ones start), its extra windows given ``g = 0``.

It also makes the inputs: distinct values for max pooling, so that every window
has one maximum, and an input with deliberate ties (:func:`tied_input`) on which
the first maximum in row-major order, the last one and an equal split all differ.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import sympy

from symbackprop.check.formula_check import FORMULAS, FormulaParts
from symbackprop.check.impl import (
    IMPLEMENTATIONS,
    Implementation,
    Mistake,
    NumericGradients,
    TermValues,
    course_convention,
    first_maximum,
    input_sizes,
    numeric_truth,
)
from symbackprop.kinds.pool2d.rules import IsWindowMax, clipped_divisor
from symbackprop.kinds.pool2d.spec import (
    MAX_POOLS,
    POOLS,
    AvgPool2d,
    MaxPool2d,
    MaxPoolNd,
    pooled_length,
)

__all__ = ["MAX_POOL_MISTAKES", "AVG_POOL_MISTAKES", "distinct_input", "tied_input",
           "last_maximum", "tied_maxima_share", "every_tied_maximum", "every_element",
           "overwritten", "POOLING_CHANNELS"]

#: Channels of the inputs a pooling backward pass runs on (pooling never mixes them).
POOLING_CHANNELS = 2


# -- inputs ------------------------------------------------------------------------------
def distinct_input(rng: np.random.Generator, shape) -> np.ndarray:
    """Random values in (-3, 1), all different (gaps of at least ``2 / size``, exact in
    float32 too); mostly negative, so that windows of negative numbers meet the padding
    (where a padding taken as zeros would win the maximum)."""
    size = int(np.prod(shape))
    ranks = rng.permutation(size) + rng.uniform(0.25, 0.75, size)
    return (ranks * (4 / size) - 3).reshape(shape)


def tied_input(rng: np.random.Generator, shape, truth: NumericGradients, g: np.ndarray,
               attempts: int = 50) -> np.ndarray | None:
    """Small whole numbers (-1, 0, 1), so that windows hold equal maxima.

    Drawn until sending each window's gradient to its first maximum, to its last,
    and sharing it among the tied maxima give three different ``dL/dx``; ``None``
    if the windows are too small for ties (a 1x1 window).
    """
    for _ in range(attempts):
        x = rng.integers(-1, 2, size=shape).astype(float)
        values = {"x": x, "g": g}
        first = truth(values)["x"]
        if not np.allclose(first, truth(values, last_maximum)["x"]) and \
                not np.allclose(first, truth(values, tied_maxima_share)["x"]):
            return x
    return None


# -- other rules for the indicator [x_ab = argmax z_ij] ----------------------------------
def _rows(candidates):
    return np.arange(len(candidates))


def last_maximum(windows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """1 for the *last* maximum of the window in row-major order."""
    last = windows.shape[1] - 1 - np.argmax(windows[:, ::-1], axis=1)
    return (last == candidates).astype(float)


def every_tied_maximum(windows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """1 for every element equal to the window's maximum (the mask ``x == max``)."""
    return (windows[_rows(candidates), candidates] == windows.max(axis=1)).astype(float)


def tied_maxima_share(windows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """``1/k`` for each of the ``k`` elements equal to the window's maximum."""
    is_max = windows == windows.max(axis=1, keepdims=True)
    return is_max[_rows(candidates), candidates] / is_max.sum(axis=1)


def every_element(windows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """1 for every element of the window."""
    return np.ones(len(candidates))


def overwritten(terms: TermValues, *, last: bool = True, routed_only: bool = False) \
        -> np.ndarray:
    """The gradient when each window *assigns* its share instead of adding it.

    Each element keeps the share of one window only: the last in row-major order
    (a loop over the windows), or with ``last=False`` the first (a loop over the
    kernel offsets writing strided slices).  ``routed_only``: only windows that send
    it something write (max pooling assigning at the argmax alone); otherwise every
    window holding the element writes, zeros included (a whole window assigned).
    """
    keep = terms.upstream >= 0
    if routed_only:
        keep &= terms.weights != 0
    outs, order, values = terms.outs[keep], terms.upstream[keep], terms.values[keep]
    sort = np.lexsort((order if last else -order, outs))
    outs, values = outs[sort], values[sort]
    written = np.append(outs[1:] != outs[:-1], True) if len(outs) else np.zeros(0, bool)
    result = np.zeros(int(np.prod(terms.shape, dtype=int)))
    result[outs[written]] = values[written]
    return result.reshape(terms.shape)


# -- candidates --------------------------------------------------------------------------
def _terms(case, indicator=first_maximum) -> TermValues:
    return case.truth.terms(case.inputs, "x", indicator)


def _with_rule(indicator):
    def candidates(case):
        yield _terms(case, indicator).total()
    return candidates


def _not_divided(case):
    terms = _terms(case, every_element)
    yield terms.total(terms.products * terms.weights)  # every coefficient 1: no divisor


def _overwritten(case):
    if not case.derivation.layer.overlapping:
        return
    terms = _terms(case)
    for last in (True, False):
        for routed_only in (True, False):
            yield overwritten(terms, last=last, routed_only=routed_only)


def _changed_layer_truth(case, layer, x, size, g=None):
    """The true ``dL/dx`` of ``layer`` on an input of ``size`` (spatial) at ``x`` and ``g``."""
    batch, channels = case.derivation.input_shape[:2]
    truth = numeric_truth(layer, (channels, *tuple(size)), batch)
    return truth({"x": x, "g": case.inputs["g"] if g is None else g})["x"]


def _floor_windows(layer, size) -> tuple:
    """The number of windows along each axis without ``ceil_mode``."""
    return tuple(pooled_length(length, *_axis(layer, axis), False)
                 for axis, length in enumerate(size))


def _axis(layer, axis) -> tuple:
    kernel, stride, before, after, dilation = layer.axis_values(axis)
    return kernel, stride, before, after, dilation


def _ceil_window_dropped(case):
    """The gradient without the windows only ``ceil_mode`` adds: their ``g`` set to 0."""
    layer = case.derivation.layer
    if not layer.ceil_mode:
        return
    kept = _floor_windows(layer, case.input_size)
    g = case.inputs["g"]
    if kept == g.shape[2:]:
        return
    dropped = np.zeros_like(g)
    index = (Ellipsis, *(slice(0, count) for count in kept))
    dropped[index] = g[index]
    yield case.truth_with(g=dropped)["x"]


def _ceil_window_whole_divisor(case):
    """Average pooling whose clipped ``ceil_mode`` windows divide by the whole window:
    the truth with each ``g`` scaled by ``D / (k1*k2*...)``."""
    layer = case.derivation.layer
    if not (layer.ceil_mode and layer.count_include_pad):
        return
    g = case.inputs["g"]
    whole = int(np.prod(layer.kernel_size))
    scale = np.ones(g.shape[2:])
    for index in np.ndindex(*g.shape[2:]):
        scale[index] = clipped_divisor(layer, case.input_size, index) / whole
    if np.all(scale == 1):
        return
    yield case.truth_with(g=g * scale)["x"]


def _dilation_ignored(case):
    """Max pooling reading contiguous windows that start where the dilated ones start:
    the same layer with dilation 1, its extra windows given ``g = 0``."""
    layer = case.derivation.layer
    if all(d == 1 for d in layer.dilation):
        return
    plain = dataclasses.replace(layer, dilation=1)
    try:
        counts = plain.output_size(case.input_size)
    except ValueError:
        return
    g = case.inputs["g"]
    if any(count < have for count, have in zip(counts, g.shape[2:])):
        return
    wider = np.zeros((*g.shape[:2], *counts))
    wider[(Ellipsis, *(slice(0, have) for have in g.shape[2:]))] = g
    yield _changed_layer_truth(case, plain, case.inputs["x"], case.input_size, wider)


def pad_spatial(array: np.ndarray, padding) -> np.ndarray:
    """Zero-pad the spatial (last) axes by ``(before, after)`` per axis, flattened."""
    dims = len(padding) // 2
    widths = [(0, 0)] * (array.ndim - dims) + \
        [(padding[2 * axis], padding[2 * axis + 1]) for axis in range(dims)]
    return np.pad(array, widths, mode="constant", constant_values=0)


def _padded(case):
    """``(x zero-padded, padding, the same layer without padding)`` or None without padding."""
    layer = case.derivation.layer
    if not any(layer.padding):
        return None
    xp = pad_spatial(case.inputs["x"], layer.padding)
    try:
        return xp, layer.padding, dataclasses.replace(layer, padding=0)
    except ValueError:
        return None


def _interior(array, padding, size):
    return array[(Ellipsis, *(slice(padding[2 * axis], padding[2 * axis] + length)
                              for axis, length in enumerate(size)))]


def _zero_padding(case):
    padded = _padded(case)
    if padded is not None:
        xp, padding, unpadded = padded
        full = _changed_layer_truth(case, unpadded, xp, xp.shape[2:])
        yield _interior(full, padding, case.input_size)


def _padding_not_removed(case):
    padded = _padded(case)
    if padded is None:
        return
    xp, padding, unpadded = padded
    yield pad_spatial(case.results["x"].expected, padding)
    if isinstance(unpadded, MaxPoolNd) or unpadded.count_include_pad:
        yield _changed_layer_truth(case, unpadded, xp, xp.shape[2:])  # the padding's share kept


def _divisor_confused(case):
    layer = case.derivation.layer
    if any(layer.padding):
        other = dataclasses.replace(layer, count_include_pad=not layer.count_include_pad)
        yield _changed_layer_truth(case, other, case.inputs["x"], case.input_size)


_OVERWRITTEN = Mistake(
    "overlapping windows overwritten instead of added", "x",
    "where windows overlap an element receives a share from each window holding it, and "
    "the shares add up (grad_x[...] += ...); this one assigned (grad_x[...] = ...), so the "
    "last window written replaced the others", _overwritten)

_CEIL_DROPPED = Mistake(
    "ceil_mode window dropped", "x",
    "with ceil_mode=True the number of windows is rounded up (PyTorch): a last window runs "
    "past the input and its g goes to the input elements it holds; this one left the windows "
    "ceil_mode adds out (it pooled as with ceil_mode=False), so their elements got nothing "
    "from them", _ceil_window_dropped)

_NOT_REMOVED = Mistake(
    "padding not removed", "x",
    "this is the gradient of the padded input; dL/dx is its interior, without the padding "
    "rows and columns", _padding_not_removed, fit=False)

#: Known mistakes of hand-written max pooling backward passes; the first that matches is named.
MAX_POOL_MISTAKES = (
    Mistake("gradient copied to every element of the window", "x",
            "max pooling sends a window's whole g to the position of its maximum and nothing "
            "to the rest; this one added g to every element of the window, like average "
            "pooling without the divisor", _with_rule(every_element)),
    Mistake("gradient copied to every tied maximum", "x",
            "ties go to the first maximum of the window in row-major order (like numpy.argmax "
            "and PyTorch); this one sent the whole g to every element equal to the maximum "
            "(a mask x == max)", _with_rule(every_tied_maximum)),
    Mistake("gradient split equally among tied maxima", "x",
            "ties go to the first maximum of the window in row-major order, which gets the "
            "whole g; this one gave each of k tied maxima g/k", _with_rule(tied_maxima_share)),
    Mistake("gradient sent to the last maximum instead of the first", "x",
            "ties go to the first maximum of the window in row-major order (numpy.argmax "
            "returns the first); this one sent g to the last (a comparison >= instead of >)",
            _with_rule(last_maximum)),
    _OVERWRITTEN,
    Mistake("dilation ignored in max pooling", "x",
            "a dilated window reads every d-th element (positions s*i - p + d*m); this one "
            "searched the maximum among contiguous elements from the same start, as with "
            "dilation=1", _dilation_ignored),
    _CEIL_DROPPED,
    Mistake("padding taken as zeros", "x",
            "padding never wins the maximum (max pooling pads with -inf); this one padded "
            "with zeros, so a window whose input elements are all negative sent its gradient "
            "to a padding zero, where it was lost", _zero_padding),
    _NOT_REMOVED,
)

#: Known mistakes of hand-written average pooling backward passes.
AVG_POOL_MISTAKES = (
    Mistake("gradient not divided", "x",
            "each element of a window receives g divided by the window's divisor (its area, "
            "or the input elements it holds); this one copied g undivided", _not_divided),
    Mistake("padding counted wrongly in the divisor", "x",
            "with count_include_pad=True every window divides by its whole area KH*KW, "
            "padded zeros included; with False only by the input elements it holds; this "
            "one used the other divisor for the windows that overlap the padding",
            _divisor_confused),
    Mistake("ceil_mode window divided by the whole window", "x",
            "with count_include_pad=True a window divides by its positions inside the padded "
            "input (PyTorch): a last ceil_mode window that runs past it divides by fewer than "
            "k1*k2*...; this one divided every window by the whole window size",
            _ceil_window_whole_divisor),
    _CEIL_DROPPED,
    _OVERWRITTEN,
    _NOT_REMOVED,
)


# -- what check-impl needs of pooling ---------------------------------------------------
_CONVENTION = "backward(x, grad_out) -> grad_x or (grad_x,)"


def _with_channels(layer, size) -> tuple:
    return (POOLING_CHANNELS, *size)


def _overlap_note(layer) -> tuple:
    if layer.overlapping:
        return ()
    return ("the windows of this layer do not overlap, so adding the shares of overlapping "
            "windows is not tested; check it with a stride smaller than the window as well",)


def _windows_hold_ties(layer) -> bool:
    return max(layer.kernel_size) > 1


# -- the courses' conventions: windows without padding, NCHW (cs231n), NHWC (dlai) -------------
def _plain_windows(layer, course: str, square: bool) -> None:
    reasons = [why for broken, why in (
        (any(layer.padding), f"no padding (this layer has {layer.padding})"),
        (square and layer.kernel_size[0] != layer.kernel_size[1],
         f"a square f x f window (this layer has {layer.kernel_size})"),
        (layer.stride[0] != layer.stride[1], f"one stride (this layer has {layer.stride})"),
        (layer.ceil_mode, "no ceil_mode"),
        (set(getattr(layer, "dilation", (1,))) != {1}, "no dilation"))
        if broken]
    if reasons:
        raise ValueError(f"convention (--convention): {course} pooling has "
                         f"{' and '.join(reasons)}; check this layer in the plain or class "
                         f"convention")


def _cs231n_max(layer) -> dict:
    _plain_windows(layer, "cs231n", square=False)
    height, width = layer.kernel_size
    return course_convention(
        "cs231n", signature="max_pool_forward_naive(x, pool_param) -> (out, cache), "
        "max_pool_backward_naive(dout, cache) -> dx",
        forward_call=("x", {"pool_height": height, "pool_width": width,
                            "stride": layer.stride[0]}),
        returns=("x",), names={"x": "dx"})


def _dlai(mode: str):
    def convention(layer) -> dict:
        _plain_windows(layer, "deeplearning.ai", square=True)
        channels_last = {"axes": [0, 2, 3, 1]}
        return course_convention(
            "dlai", signature=f"pool_forward(A_prev, hparameters, mode={mode!r}) -> (A, cache), "
            f"pool_backward(dA, cache, mode={mode!r}) -> dA_prev, A_prev (m, n_H, n_W, n_C)",
            forward_call=("x", {"f": layer.kernel_size[0], "stride": layer.stride[0]}),
            returns=("x",), names={"x": "dA_prev"}, keywords={"mode": mode},
            layouts={"x": channels_last, "g": channels_last})
    return convention


def leaves_unread(layer, input_size) -> bool:
    """Whether the forward pass never reads the last positions of this input along some
    axis: one less gives the same number of windows."""
    own = tuple(layer.output_size(tuple(input_size)))
    for axis in range(len(input_size)):
        smaller = list(input_size)
        smaller[axis] -= 1
        try:
            if tuple(layer.output_size(tuple(smaller))) == own:
                return True
        except ValueError:
            continue
    return False


def _axis_sizes(layer, axis: int, largest: int = 48) -> tuple:
    """(smallest length with 2 windows, the next length with one more window, a length in
    between (unread positions, or a window only ceil_mode adds) or None) along ``axis``."""
    kernel, stride, before, after, dilation = _axis(layer, axis)
    outputs = {}
    for length in range(1, largest + 1):
        if length + before + after >= dilation * (kernel - 1) + 1:
            outputs[length] = pooled_length(length, kernel, stride, before, after, dilation,
                                            layer.ceil_mode)
    steps = [n for n, out in outputs.items() if out >= 2 and outputs.get(n - 1) != out]
    if len(steps) < 2:
        raise ValueError(f"no input of up to {largest} gives this layer an output of 2 or more")
    between = [n for n in range(steps[0] + 1, steps[1]) if outputs.get(n) == outputs[steps[0]]]
    return steps[0], steps[1], (between[-1] if between else None)


def pool_input_sizes(layer) -> list[tuple]:
    """Input sizes to run a backward function on: the 2-D kinds' rule for a plain 2-D
    layer; otherwise, per axis, the smallest sizes with two windows, and one in between."""
    if not layer.new_options:
        return input_sizes(layer)
    axes = [_axis_sizes(layer, axis) for axis in range(layer.spatial_dims)]
    sizes = [tuple(first if axis % 2 == 0 else second
                   for axis, (first, second, _) in enumerate(axes)),
             tuple(second if axis % 2 == 0 else first
                   for axis, (first, second, _) in enumerate(axes))]
    if any(between for _, _, between in axes):
        sizes.append(tuple(between or second for _, second, between in axes))
    return list(dict.fromkeys(sizes))


#: the courses teach 2-D pooling only
_COURSES = {MaxPool2d: {"cs231n": _cs231n_max, "dlai": _dlai("max")},
            AvgPool2d: {"dlai": _dlai("average")}}
for _kind in POOLS:
    if _kind in MAX_POOLS:
        IMPLEMENTATIONS.register(_kind, Implementation(
            convention=_CONVENTION, mistakes=MAX_POOL_MISTAKES, input_size=_with_channels,
            sizes=pool_input_sizes, make_input=distinct_input, input_words=" (distinct values)",
            ties=_windows_hold_ties, tied_input=tied_input, indicator=IsWindowMax,
            show_channels=True, notes=_overlap_note, unread=leaves_unread,
            conventions=_COURSES.get(_kind, {})))
    else:
        IMPLEMENTATIONS.register(_kind, Implementation(
            convention=_CONVENTION, mistakes=AVG_POOL_MISTAKES, input_size=_with_channels,
            sizes=pool_input_sizes, show_channels=True, notes=_overlap_note,
            unread=leaves_unread, conventions=_COURSES.get(_kind, {})))


# -- what the formula checker needs of max pooling ---------------------------------------
def _argmax(element, output) -> sympy.Expr:
    """``[x_ab = argmax z_ij]`` for the input element ``x_ab`` and ``z_ij``'s value
    ``WindowMax(window, index)``: the derivation's own indicator, 0 outside the window."""
    window, output_index = output.args
    if element not in window:
        return sympy.Integer(0)
    return IsWindowMax(sympy.Integer(list(window).index(element)), window, output_index)


def _rule_parameters(layer, input_shape) -> dict:
    """``s`` the stride (``up_s``, ``dil_s``), ``p`` the padding, ``K`` the window: the
    letters a matrix-level pooling rule leaves implicit."""
    return {"s": layer.stride, "p": layer.padding, "K": layer.kernel_size}


#: What each index of a pooling array means, per number of spatial axes (for messages).
_SPATIAL_WORDS = {1: ("position",), 2: ("row", "column"), 3: ("depth", "row", "column")}


def _axes(dims: int) -> dict:
    return {array: ("sample", "channel", *_SPATIAL_WORDS[dims]) for array in ("x", "g", "z")}


for _kind in POOLS:
    if _kind in MAX_POOLS:
        FORMULAS.register(_kind, FormulaParts(words="max pooling", argmax=_argmax,
                                              routes_upsample=True,
                                              axes=_axes(_kind.spatial_dims),
                                              parameters=_rule_parameters))
    else:
        # the 2-D kind's messages use the default axis names
        FORMULAS.register(_kind, FormulaParts(
            words="average pooling", parameters=_rule_parameters,
            axes=_axes(_kind.spatial_dims) if _kind.spatial_dims != 2 else {}))
