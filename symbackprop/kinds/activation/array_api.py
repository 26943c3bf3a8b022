"""The array-API code of an activation, printed from its row of :data:`rules.ACTIVATIONS`.

``f`` and ``f'`` are the row's SymPy expressions, printed by
:class:`~symbackprop.render.codegen_array_api.ArrayApiPrinter` exactly as the NumPy
module prints them with its printer: nothing here names an activation, and a new row
gets array-API code with no line added.
"""

from __future__ import annotations

from symbackprop.kinds.activation.numpy import activation_code
from symbackprop.kinds.activation.rules import ACTIVATIONS
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES
from symbackprop.render.codegen_array_api import (
    ARRAY_API,
    ArrayApiKind,
    array_api_code,
    array_api_common_context,
)


def _activation_context(layer) -> dict:
    rule, code = ACTIVATIONS[layer.row], activation_code(layer, array_api_code)
    if code.helpers:  # a function the standard lacks (erf): the NumPy module brings its own
        raise ValueError(f"--target array-api: {layer.describe()} computes "
                         f"{', '.join(code.helpers)}, which the array API standard does not "
                         f"have; generate it with --target numpy")
    return dict(
        array_api_common_context(layer),
        template="activation/activation_array_api.py.j2",
        exports=["forward", "backward"],
        formula=rule.formula,
        derivative_formula=rule.derivative_formula,
        constants=list(code.constants),
        value=code.value,
        derivative=code.derivative,
        uses_value=code.derivative_uses_value,
        value_locals=code.value_locals,
        derivative_locals=code.derivative_locals,
    )


#: The one entry every activation shares (a new row's type registers it too).
ACTIVATION_ARRAY_API = ArrayApiKind(context=_activation_context)

for _layer_type in ACTIVATION_TYPES:
    ARRAY_API.register(_layer_type, ACTIVATION_ARRAY_API)
