"""Expand a normalisation: ``z = gamma (x - mu) / sqrt(sigma^2 + eps) + beta`` for every
element, ``mu`` and ``sigma^2`` its group's :class:`~.rules.GroupMean` and
:class:`~.rules.GroupVariance` (written out where the printouts define them).

In evaluation mode the mean and variance are the given running statistics, symbols of
``Forward.constants``: read, never differentiated by.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.expand import EXPAND, Forward, elementwise_forward
from symbackprop.core.naming import symbol_grid, to_array
from symbackprop.kinds.normalization.rules import EPS, group_statistics
from symbackprop.kinds.normalization.spec import NORMALIZATION_TYPES


def broadcast_statistics(layer, x: np.ndarray, constants: dict | None = None):
    """``(mu, sigma^2)`` as object arrays of ``x``'s shape: each element's own group's."""
    if not layer.uses_batch_statistics:
        shape = layer.parameter_view(x.shape)
        return tuple(np.broadcast_to(constants[name].reshape(shape), x.shape)
                     for name in ("running_mean", "running_var"))
    view, axes = layer.statistics_view(x.shape)
    means, variances = group_statistics(layer, x)
    return tuple(np.broadcast_to(np.expand_dims(array, axes), view).reshape(x.shape)
                 for array in (means, variances))


def _normalization(layer, input_shape) -> Forward:
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", input_shape)
    params, constants = {}, {}
    for name in layer.constant_names:
        constants[name] = symbol_grid(name, layer.parameter_shape)
    mean, variance = broadcast_statistics(layer, x, constants)
    pview = layer.parameter_view(input_shape)
    if layer.has_affine:
        gamma = symbol_grid("weight", layer.parameter_shape)  # printed gamma
        beta = symbol_grid("bias", layer.parameter_shape)  # printed beta
        params = {"weight": to_array(gamma), "bias": to_array(beta)}
        gamma = np.broadcast_to(gamma.reshape(pview), input_shape)
        beta = np.broadcast_to(beta.reshape(pview), input_shape)
    z = np.empty(input_shape, dtype=object)
    for index in np.ndindex(*input_shape):
        # xhat = (x - mu) / sqrt(sigma^2 + eps); z = gamma xhat + beta
        xhat = (x[index] - mean[index]) / sympy.sqrt(variance[index] + EPS)
        z[index] = gamma[index] * xhat + beta[index] if layer.has_affine else xhat
    forward = elementwise_forward(x, params, g, z)
    return Forward(x=forward.x, params=params, z=forward.z, z_products=forward.z_products,
                   g=forward.g, constants={name: to_array(array)
                                           for name, array in constants.items()})


for _layer_type in NORMALIZATION_TYPES:
    EXPAND.register(_layer_type, _normalization)
