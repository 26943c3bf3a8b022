"""Expand softmax and log-softmax: every output element with its denominator written out.

``z[..., j, ...] = exp(x[..., j, ...]) / sum_k exp(x[..., k, ...])`` along ``dim``; the
evaluated outputs are the functions of :mod:`~symbackprop.kinds.softmax.functions`
(whose derivatives SymPy uses), the written ones spell out ``exp`` and the sum.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.expand import EXPAND, Forward, elementwise_forward
from symbackprop.core.naming import symbol_grid
from symbackprop.kinds.softmax.functions import (
    LogSoftmaxOutput,
    SoftmaxOutput,
    WrittenLogSoftmax,
    WrittenSoftmax,
)
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax

__all__ = ["softmax_rows", "along_axis"]


def softmax_rows(x: np.ndarray, axis: int) -> np.ndarray:
    """For every element of ``x``, the ``Tuple`` of the elements along ``axis`` through it."""
    rows = np.empty(x.shape, dtype=object)
    moved = np.moveaxis(x, axis, -1)
    for index in np.ndindex(*moved.shape[:-1]):
        row = sympy.Tuple(*moved[index])
        for position in range(moved.shape[-1]):
            full = list(index)
            full.insert(axis, position)
            rows[tuple(full)] = row
    return rows


def along_axis(layer, input_shape, function, written_function) -> Forward:
    """``z[index] = function(row through index, index, axis)`` for every element."""
    axis = layer.axis(len(input_shape))
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", input_shape)
    rows = softmax_rows(x, axis)
    z = np.empty(x.shape, dtype=object)
    written = np.empty(x.shape, dtype=object)
    for index in progress.track(np.ndindex(*x.shape), "expanding z", x.size, unit="outputs"):
        arguments = (rows[index], sympy.Tuple(*index), sympy.Integer(axis))
        z[index] = function(*arguments)
        written[index] = written_function(*arguments)
    return elementwise_forward(x, {}, g, z, written)


@EXPAND.register(Softmax)
def _softmax(layer, input_shape) -> Forward:
    return along_axis(layer, input_shape, SoftmaxOutput, WrittenSoftmax)


@EXPAND.register(LogSoftmax)
def _log_softmax(layer, input_shape) -> Forward:
    return along_axis(layer, input_shape, LogSoftmaxOutput, WrittenLogSoftmax)
