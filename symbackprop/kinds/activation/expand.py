"""Expand an activation: ``a = f(net)`` for every element, ``f`` from its row.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.expand import EXPAND, Forward, elementwise_forward
from symbackprop.core.naming import symbol_grid
from symbackprop.kinds.activation.rules import activation_function
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES


def exact_number(value) -> sympy.Number:
    """``2.0 -> 2``, ``0.01 -> 0.01``: a whole number as a SymPy integer, so that the sums
    read ``2 x11 > 20`` and ``exp(x11)`` rather than ``2.0 x11 > 20.0`` and ``1.0 exp(x11)``."""
    value = float(value)
    return sympy.Integer(int(value)) if value.is_integer() else sympy.Float(value)


def _activation(layer, input_shape) -> Forward:
    function = activation_function(layer.row)
    constants = [exact_number(value) for value in layer.constants]
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", input_shape)
    z = np.empty(g.shape, dtype=object)
    for index in np.ndindex(*g.shape):
        z[index] = function(x[index], *constants)  # a = f(net), elementwise
    return elementwise_forward(x, {}, g, z)


for _layer_type in ACTIVATION_TYPES:
    EXPAND.register(_layer_type, _activation)
