"""The NumPy code of Flatten: one reshape forward, one back."""

from __future__ import annotations

from symbackprop.kinds.flatten.spec import Flatten
from symbackprop.render.codegen import NUMPY, NumpyKind, common_context


def _flatten_context(layer, style: str, strategy: str | None) -> dict:
    # both styles: the code is the rule
    return dict(common_context(layer), template="flatten/flatten.py.j2",
                exports=["forward", "backward"])


def _chain_shape(number: int, layer, rank: int, channels) -> tuple:
    return ["shape = (shape[0], int(np.prod(shape[1:])))"], 2, None


NUMPY.register(Flatten, NumpyKind(
    context=_flatten_context,
    chain_shape=_chain_shape,
))
