"""check-impl of a chain (:class:`~symbackprop.core.layers.Sequential`): core, like the
chain itself, so its layers may be of any kind.

``backward(x, w1, b1, ..., grad_out) -> (grad_x, grad_w1, grad_b1, ...)``, the parameters
numbered by their layer as a generated chain module takes them.  The truth is the chain's
derivation evaluated step by step (:class:`~symbackprop.check.impl.ChainNumericGradients`);
the sizes tried are those of the first layer's kind that the whole chain accepts (or
``--input``).  A wrong gradient is reported by name (``grad_w4``), which says in which layer
the mistake is.
"""

from __future__ import annotations

from symbackprop.check.impl import IMPLEMENTATIONS, Implementation
from symbackprop.core.layers import Sequential, input_shape_of

__all__ = []


def _sizes(layer) -> list:
    first = layer.layers[0]
    entry = IMPLEMENTATIONS.get(first)
    candidates = [entry.input_size(first, size) for size in entry.sizes(first)] if entry else []
    fitting = []
    for size in candidates:
        try:
            layer.shapes(input_shape_of(layer, size, 1))
        except (ValueError, TypeError):
            continue
        fitting.append(tuple(size))
    if not fitting:
        raise ValueError(f"input_size: none of the sizes check-impl tries for the chain's first "
                         f"layer ({first.describe()}) fits the whole chain; give the input "
                         f"size (--input, or the spec's \"input\")")
    return fitting


def _signature(layer) -> tuple:
    parameters = tuple(layer.parameter_names)
    return ("x", *parameters, "g"), ("x", *parameters)


IMPLEMENTATIONS.register(Sequential, Implementation(
    convention="backward(x, w1, b1, ..., grad_out) -> (grad_x, grad_w1, grad_b1, ...), the "
               "parameters numbered by their layer, as a generated chain module takes them",
    sizes=_sizes, input_size=lambda layer, size: size, keywords=lambda layer: {},
    signature=_signature))
