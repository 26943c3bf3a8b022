"""The array-API code of the fully connected layer: the NumPy module's checked matrix
forms, written with ``xp.matmul`` (``templates/linear/linear_array_api.py.j2``)."""

from __future__ import annotations

from symbackprop.kinds.linear.numpy import _linear_context
from symbackprop.kinds.linear.spec import Linear
from symbackprop.render.codegen_array_api import (
    ARRAY_API,
    ArrayApiKind,
    array_api_common_context,
)


def _context(layer: Linear) -> dict:
    # the derivation and its check are the NumPy module's
    return dict(_linear_context(layer, "fast", None), **array_api_common_context(layer),
                template="linear/linear_array_api.py.j2")


ARRAY_API.register(Linear, ArrayApiKind(context=_context))
