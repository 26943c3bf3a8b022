"""The array-API code of max and average pooling: the NumPy modules' checked window-offset
plan, computed offset by offset with functions of the array API standard and no in-place
write.

The plan (:func:`~symbackprop.kinds.pool2d.numpy.pool_plan`: every window offset's
strided slice of the padded input, read off the derived windows and checked to rebuild
every window in row-major order, z and dL/dx) is the NumPy modules'; this module only
hands its numbers to ``templates/pool2d/<kind>_array_api.py.j2``.
"""

from __future__ import annotations

from symbackprop.kinds.pool2d.numpy import output_size_code, pool_plan
from symbackprop.kinds.pool2d.rules import tiles_input
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d
from symbackprop.render.codegen_array_api import (
    ARRAY_API,
    ArrayApiKind,
    array_api_common_context,
)


def _context(layer) -> dict:
    plan = pool_plan(layer)
    row_step, col_step = plan.steps
    return dict(
        array_api_common_context(layer),
        template=f"pool2d/{layer.kind}_array_api.py.j2",
        exports=["forward", "backward", "output_size"],
        **dict(zip(("output_size_code", "output_size_text"), output_size_code(layer))),
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        count_include_pad=getattr(layer, "count_include_pad", True),
        tiles=tiles_input(layer),
        row_step=row_step,
        col_step=col_step,
        offsets=[(*offset.window_offset, offset.first_row, offset.first_col)
                 for offset in plan.offsets],
        instance_shape="x".join(map(str, plan.derivation.input_shape)),
    )


for _layer_type in (MaxPool2d, AvgPool2d):
    ARRAY_API.register(_layer_type, ArrayApiKind(context=_context))
