"""check-impl for max and average pooling: the call convention, the inputs and the known
mistakes of pooling backward passes.

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
  derived and evaluated at the same numbers.

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
    first_maximum,
    leaves_unread,
    numeric_truth,
)
from symbackprop.core.rules import pad2d
from symbackprop.kinds.pool2d.rules import IsWindowMax
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d

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


def _changed_layer_truth(case, layer, x, size):
    """The true ``dL/dx`` of ``layer`` on an input of ``size`` (H, W) at ``x`` and ``g``."""
    batch, channels = case.derivation.input_shape[:2]
    truth = numeric_truth(layer, (channels, *tuple(size)), batch)
    return truth({"x": x, "g": case.inputs["g"]})["x"]


def _padded(case):
    """``(x zero-padded, padding, the same layer without padding)`` or None without padding."""
    layer = case.derivation.layer
    if not any(layer.padding):
        return None
    xp = pad2d(case.inputs["x"], layer.padding)
    return xp, layer.padding, dataclasses.replace(layer, padding=0)


def _interior(array, padding, size):
    top, _, left, _ = padding
    return array[..., top:top + size[0], left:left + size[1]]


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
    yield pad2d(case.results["x"].expected, padding)
    if unpadded.kind == "maxpool2d" or unpadded.count_include_pad:
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


IMPLEMENTATIONS.register(MaxPool2d, Implementation(
    convention=_CONVENTION, mistakes=MAX_POOL_MISTAKES, input_size=_with_channels,
    make_input=distinct_input, input_words=" (distinct values)", ties=_windows_hold_ties,
    tied_input=tied_input, indicator=IsWindowMax, show_channels=True, notes=_overlap_note,
    unread=leaves_unread))
IMPLEMENTATIONS.register(AvgPool2d, Implementation(
    convention=_CONVENTION, mistakes=AVG_POOL_MISTAKES, input_size=_with_channels,
    show_channels=True, notes=_overlap_note, unread=leaves_unread))


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


FORMULAS.register(MaxPool2d, FormulaParts(words="max pooling", argmax=_argmax,
                                          parameters=_rule_parameters))
FORMULAS.register(AvgPool2d, FormulaParts(words="average pooling",
                                          parameters=_rule_parameters))
