"""Hand-written loop references of the normalisations, independent of symbackprop.

Plain Python loops over NumPy float64 arrays: the statistics of each group are summed
element by element, and the backward pass walks the computational graph node by node
with the chain rule (mean -> centred -> variance -> inverse deviation -> normalised ->
scale and shift), never using the closed form.  A layer is described by plain data:

- ``groups(shape)``: a list of groups, each a list of index tuples of ``x`` sharing one
  mean and one variance;
- ``parameter_index(index)``: the index of gamma/beta that element ``index`` uses.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def _indices(shape):
    return list(itertools.product(*[range(size) for size in shape]))


def batch_norm_layout(shape):
    """Batch norm: a group per channel, over the batch and every axis after the channel."""
    groups = [[index for index in _indices(shape) if index[1] == c] for c in range(shape[1])]
    return groups, lambda index: (index[1],)


def instance_norm_layout(shape):
    groups = [[index for index in _indices(shape) if index[:2] == (n, c)]
              for n in range(shape[0]) for c in range(shape[1])]
    return groups, lambda index: (index[1],)


def group_norm_layout(shape, num_groups):
    per = shape[1] // num_groups
    groups = [[index for index in _indices(shape) if index[0] == n and index[1] // per == k]
              for n in range(shape[0]) for k in range(num_groups)]
    return groups, lambda index: (index[1],)


def layer_norm_layout(shape, normalized_shape):
    lead = len(shape) - len(normalized_shape)
    groups = {}
    for index in _indices(shape):
        groups.setdefault(index[:lead], []).append(index)
    return list(groups.values()), lambda index: tuple(index[lead:])


def norm_forward_loops(x, layout, gamma=None, beta=None, eps=1e-5, running=None):
    """``z`` by loops; ``running = (mean, var)`` arrays indexed like gamma (evaluation)."""
    groups, parameter_index = layout
    z = np.zeros(x.shape)
    for group in groups:
        if running is None:
            m = len(group)
            mu = sum(float(x[i]) for i in group) / m
            var = sum((float(x[i]) - mu) ** 2 for i in group) / m
        for i in group:
            p = parameter_index(i)
            if running is not None:
                mu, var = float(running[0][p]), float(running[1][p])
            xhat = (float(x[i]) - mu) / math.sqrt(var + eps)
            z[i] = xhat if gamma is None else float(gamma[p]) * xhat + float(beta[p])
    return z


def norm_backward_loops(x, layout, g, gamma=None, eps=1e-5, running=None):
    """``(dx, dgamma, dbeta)`` by the chain rule through the graph, node by node.

    Forward nodes per group: mu = sum x / m; xc = x - mu; var = sum xc^2 / m;
    istd = (var + eps)^(-1/2); xhat = xc istd; z = gamma xhat + beta.
    """
    groups, parameter_index = layout
    dx = np.zeros(x.shape)
    pshape = None if gamma is None else np.shape(gamma)
    dgamma = None if gamma is None else np.zeros(pshape)
    dbeta = None if gamma is None else np.zeros(pshape)
    for group in groups:
        m = len(group)
        if running is None:
            mu = sum(float(x[i]) for i in group) / m
            xc = {i: float(x[i]) - mu for i in group}
            var = sum(value * value for value in xc.values()) / m
            istd = (var + eps) ** -0.5
        xhat, dxhat = {}, {}
        for i in group:
            p = parameter_index(i)
            if running is not None:
                mu, var = float(running[0][p]), float(running[1][p])
                xc = {i: float(x[i]) - mu}
                istd = (var + eps) ** -0.5
                xhat[i] = xc[i] * istd
                dx[i] = float(g[i]) * (1.0 if gamma is None else float(gamma[p])) * istd
            else:
                xhat[i] = xc[i] * istd
            scale = 1.0 if gamma is None else float(gamma[p])
            dxhat[i] = float(g[i]) * scale                        # z = gamma xhat + beta
            if gamma is not None:
                dgamma[p] += float(g[i]) * xhat[i]
                dbeta[p] += float(g[i])
        if running is not None:
            continue
        distd = sum(dxhat[i] * xc[i] for i in group)                # xhat = xc istd
        dvar = -0.5 * (var + eps) ** -1.5 * distd                   # istd = (var + eps)^-1/2
        dxc = {i: dxhat[i] * istd + 2.0 / m * xc[i] * dvar for i in group}  # two paths
        dmu = -sum(dxc.values())                                    # xc = x - mu
        for i in group:
            dx[i] = dxc[i] + dmu / m                                # x feeds xc and mu
    return dx, dgamma, dbeta
