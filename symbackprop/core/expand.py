"""Stage 2, expand: layer spec -> every output element as a SymPy expression.

Input: a layer and the shape of its input.  Output: a :class:`Forward` holding
the symbol arrays (``x``, the parameters, the upstream gradient ``g``), the
evaluated outputs ``z`` and, for printing, ``z_written``: the same sums as a
textbook writes them by hand, padding terms kept as ``0 w``.

Each kind registers its expansion in :data:`EXPAND` (``kinds/<kind>/expand.py``);
this stage never names a particular layer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import sympy

from symbackprop.core import progress
from symbackprop.core.naming import to_array
from symbackprop.core.registry import Registry

__all__ = ["Forward", "expand", "EXPAND", "written_sums", "elementwise_forward"]


@dataclass(frozen=True)
class Forward:
    """The forward pass of one layer instance, element by element."""

    x: sympy.Array
    params: dict  # name -> sympy.Array (parameters in call order), e.g. {"w": ..., "b": ...}
    z: sympy.Array
    #: For printing: each output's products as factor tuples, in the order the
    #: formula writes them, with padding kept as ``(0, w)``; a bias is ``(b,)``.
    z_products: np.ndarray
    g: sympy.Array
    #: Inputs the layer reads but nobody differentiates by, name -> sympy.Array: a
    #: dropout keep-mask, a loss's one-hot targets, evaluation-mode running statistics.
    #: The gradients are taken with respect to ``x`` and ``params`` only.
    constants: dict = field(default_factory=dict)

    @functools.cached_property  # frozen: cached in the instance __dict__, computed once
    def z_written(self) -> sympy.Array:
        """``z`` as a textbook writes it: unevaluated sums, padding products as ``0*w``."""
        return to_array(written_sums(self.z_products))


def written_sums(products_grid: np.ndarray) -> np.ndarray:
    """Unevaluated sums of unevaluated products (so ``0*w`` stays visible)."""
    written = np.empty(products_grid.shape, dtype=object)
    for index in progress.track(np.ndindex(*products_grid.shape), "writing z out",
                                products_grid.size, unit="outputs"):
        written[index] = sympy.Add(
            *[sympy.Mul(*factors, evaluate=False) if len(factors) > 1 else factors[0]
              for factors in products_grid[index]], evaluate=False)
    return written

#: The expansion of each layer kind: layer type -> ``function(layer, input_shape) -> Forward``.
EXPAND = Registry("expand")


def expand(layer, input_shape: tuple[int, ...]) -> Forward:
    """Expand ``layer`` on an input of ``input_shape`` (``(N, C, H, W)`` or ``(N, F)``)."""
    return EXPAND[layer](layer, input_shape)


def elementwise_forward(x, params, g, z, written=None) -> Forward:
    """A :class:`Forward` whose outputs are single expressions (no products to show)."""
    shown = z if written is None else written
    products_grid = np.empty(g.shape, dtype=object)
    for index in np.ndindex(*g.shape):
        products_grid[index] = ((shown[index],),)
    return Forward(x=to_array(x), params=params, g=to_array(g), z=to_array(z),
                   z_products=products_grid)
