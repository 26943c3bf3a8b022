"""check-impl of a residual block ``y = x + block(x)``: core, like a chain, so its block
may hold layers of any kind.

``backward(x, *params, grad_out) -> (grad_x, *grad_params)``, the parameters of the
block's layers in order and numbered by their layer as in a chain (``w1, b1, w3, b3`` for
``conv, relu, conv``).  The truth is the chain's derivation evaluated at numbers
(:class:`~symbackprop.check.impl.ChainNumericGradients`); the sizes, the inputs and what
the block's first layer takes come from that layer's kind.  The known mistake: the
identity path forgotten, ``grad_x`` the block's ``dL/dx`` alone (``dL/dx = grad_out +
the block's dL/dx``).
"""

from __future__ import annotations

from symbackprop.check.impl import IMPLEMENTATIONS, Implementation, Mistake
from symbackprop.core.layers import Residual

__all__ = ["RESIDUAL_MISTAKES"]


def _identity_forgotten(case):
    # the identity path brings grad_out itself to x: without it, the block's path alone
    yield case.results["x"].expected - case.inputs["g"]


#: Known mistakes of hand-written residual backward passes.
RESIDUAL_MISTAKES = (
    Mistake("the identity path forgotten", "x",
            "y = x + block(x), so dL/dx = grad_out + (the block's dL/dx): the gradient "
            "reaches x along two paths, which add; this one returned the block's dL/dx "
            "alone, without grad_out", _identity_forgotten),
)


def _first(layer):
    """The block's first layer and its check-impl entry (what the block takes)."""
    first = layer.layers[0]
    return first, IMPLEMENTATIONS[first]


def _sizes(layer) -> list:
    first, entry = _first(layer)
    return entry.sizes(first)


def _input_size(layer, size):
    first, entry = _first(layer)
    return entry.input_size(first, size)


def _make_input(rng, shape):
    return rng.standard_normal(shape)


def _signature(layer) -> tuple:
    parameters = tuple(layer.parameter_names)
    return ("x", *parameters, "g"), ("x", *parameters)


IMPLEMENTATIONS.register(Residual, Implementation(
    convention="backward(x, *params, grad_out) -> (grad_x, *grad_params), the block's "
               "parameters numbered by their layer (w1, b1, w3, b3, ...)",
    mistakes=RESIDUAL_MISTAKES, sizes=_sizes, input_size=_input_size,
    make_input=_make_input, keywords=lambda layer: {}, signature=_signature))
