"""check-impl for the normalisations in training mode with gamma and beta.

``backward(x, weight, bias, grad_out) -> (grad_x, grad_weight, grad_bias)``, the arrays as
PyTorch lays them out.  The known mistakes, each computed from the truth's own
quantities by walking the computational graph with one piece changed
(:func:`graph_backward`): gamma left out of the input gradient, the mean and variance
treated as constants, the gradient through the mean dropped, the gradient through the
variance dropped, the unbiased variance (divided by ``m - 1``) used to normalise, and
spatial batch norm's statistics taken per sample and channel instead of per channel.
"""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.check.formula_check import FORMULAS, FormulaMistake, FormulaParts
from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake, course_convention
from symbackprop.core.naming import to_grid
from symbackprop.kinds.normalization.expand import broadcast_statistics
from symbackprop.kinds.normalization.rules import EPS, group_statistics
from symbackprop.kinds.normalization.spec import (
    NORMALIZATION_TYPES,
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
)

__all__ = ["graph_backward", "NORMALIZATION_MISTAKES"]


def graph_backward(layer, x, g, gamma, *, variance_divisor=None, through_mean=True,
                   through_variance=True, scale=True, statistics_layer=None):
    """``(dx, dgamma, dbeta)`` by the graph (mean, centred, variance, inverse deviation,
    normalised, scale and shift), with the pieces a mistake changes switchable:

    ``variance_divisor(m)`` the variance's divisor (``m - 1``: unbiased), ``through_mean``
    and ``through_variance`` whether the gradient flows back through them, ``scale``
    whether gamma multiplies the input gradient, ``statistics_layer`` a layer whose groups
    replace this one's.
    """
    grouping = statistics_layer or layer
    view, axes = grouping.statistics_view(x.shape)
    m = int(np.prod([view[axis] for axis in axes]))
    divisor = m if variance_divisor is None else variance_divisor(m)
    pshape = layer.parameter_view(x.shape)
    gamma_b = gamma.reshape(pshape)
    xv = x.reshape(view)
    mu = xv.mean(axis=axes, keepdims=True)
    xc = xv - mu
    var = (xc * xc).sum(axis=axes, keepdims=True) / divisor
    istd = 1 / np.sqrt(var + layer.eps)
    xhat = xc * istd
    over = tuple(axis for axis, size in enumerate(pshape) if size == 1)
    dbeta = g.sum(axis=over).reshape(gamma.shape)
    dgamma = (g * xhat.reshape(x.shape)).sum(axis=over).reshape(gamma.shape)
    dxhat = (g * gamma_b if scale else g).reshape(view)
    dxc = dxhat * istd
    if through_variance:
        distd = (dxhat * xc).sum(axis=axes, keepdims=True)
        dvar = -0.5 * istd ** 3 * distd
        dxc = dxc + (2 / divisor) * xc * dvar
    dx = dxc
    if through_mean:
        dx = dxc - dxc.sum(axis=axes, keepdims=True) / m
    return dx.reshape(x.shape), dgamma, dbeta


def _mistake(name, gradient, explanation, **changes):
    def candidates(case):
        layer = case.derivation.layer
        options = dict(changes)
        if options.pop("per_sample", False):
            if not hasattr(layer, "training") or len(case.inputs["x"].shape) < 3:
                return
            options["statistics_layer"] = InstanceNorm2d(layer.num_features, eps=layer.eps)
        inputs = case.inputs
        dx, dgamma, _ = graph_backward(layer, inputs["x"], inputs["g"], inputs["weight"],
                                       **options)
        yield {"x": dx, "weight": dgamma}[gradient]
    return Mistake(name, gradient, explanation, candidates, fit=False)


#: Known mistakes of hand-written normalisation backward passes.
NORMALIZATION_MISTAKES = (
    _mistake("gamma missing from the input gradient", "x",
             "dL/dxhat = gamma g: the scale multiplies the input gradient, "
             "dL/dx = (gamma / (m sigma)) (m g - sum g - xhat sum(g xhat)); this one left "
             "gamma out", scale=False),
    _mistake("mean and variance treated as constants", "x",
             "mu and sigma^2 are computed from x, so the gradient flows through both; this "
             "one is gamma g / sigma, the evaluation-mode gradient", through_mean=False,
             through_variance=False),
    _mistake("the gradient through the mean dropped", "x",
             "x feeds the centred input and the mean: dL/dx = dL/dxc + (1/m) dL/dmu; this one "
             "left out the path through mu (the '- sum g' term)", through_mean=False),
    _mistake("the gradient through the variance dropped", "x",
             "x_c feeds xhat and sigma^2: dL/dxc = dL/dxhat / sigma + (2/m) x_c dL/dsigma^2; "
             "this one left out the path through the variance (the '- xhat sum(g xhat)' term)",
             through_variance=False),
    _mistake("the unbiased variance used to normalise", "x",
             "batch norm normalises with the biased variance, (1/m) sum (x - mu)^2; this one "
             "divided by m - 1 (the unbiased estimate PyTorch keeps only for running_var)",
             variance_divisor=lambda m: m - 1),
    _mistake("the unbiased variance used to normalise", "weight",
             "xhat uses the biased variance (divided by m), so dL/dgamma = sum g xhat with "
             "that xhat; this one divided by m - 1", variance_divisor=lambda m: m - 1),
    _mistake("spatial batch norm reduced over the wrong axes", "x",
             "batch norm takes one mean and variance per channel, over the batch and every "
             "spatial position (axes 0, 2, 3); this one took them per sample and channel "
             "(axes 2, 3: instance norm)", per_sample=True),
    _mistake("spatial batch norm reduced over the wrong axes", "weight",
             "xhat of batch norm uses per-channel statistics over (N, H, W); this dL/dgamma "
             "used per-(sample, channel) statistics", per_sample=True),
)

_CONVENTION = "backward(x, weight, bias, grad_out) -> (grad_x, grad_weight, grad_bias)"


def _usable(layer) -> None:
    if not layer.has_affine or not layer.uses_batch_statistics:
        raise ValueError(f"check-impl checks normalisations in training mode with gamma and "
                         f"beta (backward(x, weight, bias, grad_out)); {layer.describe()} "
                         f"is not one: drop --no-affine/--eval")


def _sizes(layer) -> list:
    """The sample shapes tried (channels included): two of each rank the layer takes."""
    _usable(layer)
    # small: every gradient element of a group reads all m values of it (m^2 terms)
    if isinstance(layer, BatchNorm1d):
        return [(layer.num_features,), (layer.num_features, 2)]
    if isinstance(layer, BatchNorm2d):
        return [(layer.num_features, 1, 2), (layer.num_features, 2, 2)]
    if isinstance(layer, InstanceNorm2d):
        return [(layer.num_features, 1, 3), (layer.num_features, 2, 2)]
    if isinstance(layer, GroupNorm):
        return [(layer.num_channels,), (layer.num_channels, 1, 2)]
    return [layer.normalized_shape, (2, *layer.normalized_shape)]


def _input_size(layer, size):
    if isinstance(layer, BatchNorm1d):
        return None if len(size) == 1 else size[1]
    if isinstance(layer, GroupNorm) and len(size) == 1:
        return None
    return tuple(size)


def _cs231n(layer) -> dict:
    """Stanford CS231n's batch, layer and group norm (assignment 2): the forward takes gamma,
    beta and a parameter dictionary and returns ``(out, cache)``; the backward returns
    ``(dx, dgamma, dbeta)``; spatial group norm's gamma is shaped ``(1, C, 1, 1)``."""
    if not (layer.training and layer.parameter_names):
        raise ValueError("convention (--convention): CS231n's normalisations are the "
                         "training-mode layers with gamma and beta")
    eps = float(layer.eps)
    names = {"x": "dx", "weight": "dgamma", "bias": "dbeta"}
    if isinstance(layer, BatchNorm1d):
        call, param = "batchnorm_forward(x, gamma, beta, bn_param)", {"mode": "train", "eps": eps}
    elif isinstance(layer, BatchNorm2d):
        call = "spatial_batchnorm_forward(x, gamma, beta, bn_param)"
        param = {"mode": "train", "eps": eps}
    elif isinstance(layer, LayerNorm) and len(layer.normalized_shape) == 1:
        call, param = "layernorm_forward(x, gamma, beta, ln_param)", {"eps": eps}
    elif isinstance(layer, GroupNorm):
        per_channel = {"shape": [1, -1, 1, 1]}
        return course_convention(
            "cs231n", signature="spatial_groupnorm_forward(x, gamma, beta, G, gn_param) -> "
            "(out, cache), spatial_groupnorm_backward(dout, cache) -> (dx, dgamma, dbeta), "
            "gamma and beta of shape (1, C, 1, 1)",
            forward_call=("x", "weight", "bias", layer.num_groups, {"eps": eps}),
            returns=("x", "weight", "bias"), names=names,
            layouts={"weight": per_channel, "bias": per_channel})
    else:
        raise ValueError(f"convention (--convention): CS231n has no {layer.kind} layer")
    backward = call.split("(")[0].replace("forward", "backward")
    return course_convention(
        "cs231n", signature=f"{call} -> (out, cache), {backward}(dout, cache) -> "
        f"(dx, dgamma, dbeta)", forward_call=("x", "weight", "bias", param),
        returns=("x", "weight", "bias"), names=names,
        input_rank=2 if isinstance(layer, BatchNorm1d) else None)


_ENTRY = Implementation(
    convention=_CONVENTION, arguments=("x", "weight", "bias", "g"),
    gradients=("x", "weight", "bias"), mistakes=NORMALIZATION_MISTAKES, sizes=_sizes,
    input_size=_input_size, show_channels=True, conventions={"cs231n": _cs231n})

def _statistics(derivation):
    """``(mu, sigma^2)`` per group (batch norm: per channel), as the derivation has them."""
    layer = derivation.layer
    if not layer.uses_batch_statistics:
        return (to_grid(derivation.constants["running_mean"]),
                to_grid(derivation.constants["running_var"]))
    return group_statistics(layer, to_grid(derivation.x))


def _group_size(derivation) -> int:
    """``m``: how many elements share one mean and variance."""
    view, axes = derivation.layer.statistics_view(derivation.input_shape)
    return int(np.prod([view[axis] for axis in axes]))


def _normalized(derivation):
    """``xhat = (x - mu) / sqrt(sigma^2 + eps)``, of the input's shape."""
    x = to_grid(derivation.x)
    mean, variance = broadcast_statistics(derivation.layer, x,
                                          {k: to_grid(v) for k, v in
                                           derivation.constants.items()})
    return (x - mean) / np.vectorize(lambda v: sympy.sqrt(v + EPS), otypes=[object])(variance)


def _formula_gradient(derivation, *, scale=True, through_mean=True, through_variance=True,
                      unbiased=False):
    """The input's gradient in the derivation's terms, with the pieces a mistake changes:
    ``gamma istd (g - mean g) - gamma istd^3 (x - mu) sum(g (x - mu)) / d`` (``d = m``;
    ``m - 1`` and the variance scaled to match for the unbiased variance)."""
    layer = derivation.layer
    x, g = to_grid(derivation.x), to_grid(derivation.g)
    mean, variance = broadcast_statistics(layer, x, {k: to_grid(v) for k, v in
                                                     derivation.constants.items()})
    view, axes = layer.statistics_view(x.shape)
    m = _group_size(derivation)
    divisor = m - 1 if unbiased else m
    variance = variance * sympy.Rational(m, divisor)
    istd = np.vectorize(lambda v: 1 / sympy.sqrt(v + EPS), otypes=[object])(variance)
    gamma = 1
    if scale and "weight" in derivation.params:
        gamma = np.broadcast_to(to_grid(derivation.params["weight"]).reshape(
            layer.parameter_view(x.shape)), x.shape)
    centred = x - mean

    def group_mean(array):
        summed = array.reshape(view).sum(axis=axes, keepdims=True) / m
        return np.broadcast_to(summed, view).reshape(x.shape)

    dx = gamma * istd * g
    if through_mean:
        dx = dx - gamma * istd * group_mean(g)
    if through_variance:
        dx = dx - gamma * istd ** 3 * centred * group_mean(g * centred) * m / divisor
    return dx


def _candidates(**changes):
    def candidates(derivation):
        if derivation.layer.uses_batch_statistics:  # running statistics: no such paths
            yield _formula_gradient(derivation, **changes)
    return candidates


_FORMULA_MISTAKES = (
    FormulaMistake("gamma missing", "the input's gradient is scaled by gamma, as the output "
                   "is: dL/dxhat = gamma dL/dy", "x", _candidates(scale=False)),
    FormulaMistake("mean and variance treated as constants",
                   "both depend on every input of the group: the gradient flows back "
                   "through each (the - sum_k g_k and - xhat sum_k g_k xhat_k terms)", "x",
                   _candidates(through_mean=False, through_variance=False)),
    FormulaMistake("the mean's path dropped", "mu depends on every input: its path gives "
                   "the - (1/m) sum_k g_k term", "x", _candidates(through_mean=False)),
    FormulaMistake("the variance's path dropped", "sigma^2 depends on every input: its path "
                   "gives the - xhat (1/m) sum_k g_k xhat_k term", "x",
                   _candidates(through_variance=False)),
    FormulaMistake("the unbiased variance (m - 1)", "training mode normalises with the "
                   "biased batch variance, divided by m, not m - 1", "x",
                   _candidates(unbiased=True)),
)

def _per_group(function):
    """``derivation -> function(sigma^2)`` for each group's variance."""
    return lambda derivation: np.vectorize(function, otypes=[object])(
        _statistics(derivation)[1])


#: A student's names, as ``derive`` prints them: mu, sigma^2 (var) per group and sigma =
#: sqrt(sigma^2 + eps) (istd its inverse), xhat and xc = x - mu per element, gamma and
#: beta the affine parameters, epsilon and m numbers.
_QUANTITIES = {
    "mu": lambda derivation: _statistics(derivation)[0],
    "sigma^2": lambda derivation: _statistics(derivation)[1],
    "var": lambda derivation: _statistics(derivation)[1],
    "sigma": _per_group(lambda variance: sympy.sqrt(variance + EPS)),
    "istd": _per_group(lambda variance: 1 / sympy.sqrt(variance + EPS)),
    "xc": lambda derivation: to_grid(derivation.x) - broadcast_statistics(
        derivation.layer, to_grid(derivation.x),
        {k: to_grid(v) for k, v in derivation.constants.items()})[0],
    "xhat": _normalized, "gamma": "weight", "beta": "bias",
    "epsilon": lambda derivation: EPS, "eps": lambda derivation: EPS,
    "m": _group_size,
}
_FORMULAS = FormulaParts(
    words="a normalisation", quantities=_QUANTITIES, mistakes=_FORMULA_MISTAKES,
    meanings={"weight": "gamma", "bias": "beta"})

for _layer_type in NORMALIZATION_TYPES:
    IMPLEMENTATIONS.register(_layer_type, _ENTRY)
    FORMULAS.register(_layer_type, _FORMULAS)
