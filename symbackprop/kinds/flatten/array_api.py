"""The array-API code of Flatten: one ``xp.reshape`` forward, one back."""

from __future__ import annotations

from symbackprop.kinds.flatten.spec import Flatten
from symbackprop.render.codegen_array_api import (
    ARRAY_API,
    ArrayApiKind,
    array_api_common_context,
)


def _context(layer: Flatten) -> dict:
    return dict(array_api_common_context(layer), template="flatten/flatten_array_api.py.j2",
                exports=["forward", "backward"])


def _chain_shape(number: int, layer: Flatten, rank: int, channels) -> tuple:
    return ["shape = (shape[0], math.prod(shape[1:]))"], 2, None


ARRAY_API.register(Flatten, ArrayApiKind(context=_context, chain_shape=_chain_shape))
