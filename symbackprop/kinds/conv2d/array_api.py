"""The array-API code of a 2-D convolution: the NumPy module's checked plan, computed
offset by offset with functions of the array API standard and no in-place write.

The plan (:func:`~symbackprop.kinds.conv2d.numpy.conv2d_plan`: every kernel offset's
strided slice of the padded input, read off the derived ``dL/dw`` sums and checked to
rebuild ``z`` and every gradient term by term) is the NumPy module's; this module only
hands its numbers to ``templates/conv2d/conv2d_array_api.py.j2``.
"""

from __future__ import annotations

from symbackprop.kinds.conv2d.numpy import _groups_text, conv2d_plan, output_size_code
from symbackprop.kinds.conv2d.spec import Conv2d
from symbackprop.render.codegen_array_api import (
    ARRAY_API,
    ArrayApiKind,
    array_api_common_context,
)


def _context(layer: Conv2d) -> dict:
    plan = conv2d_plan(layer)
    row_step, col_step = plan.steps
    instance = plan.derivation.layer
    derived_layer = "this layer" if instance == layer else (
        f"a narrower version of this layer ({_groups_text(instance)} instead of "
        f"{_groups_text(layer)}; the index rules do not depend on the channel counts)")
    return dict(
        array_api_common_context(layer),
        template="conv2d/conv2d_array_api.py.j2",
        **dict(zip(("output_size_code", "output_size_text"), output_size_code(layer))),
        exports=["forward", "backward", "output_size"],
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        groups=layer.groups,
        weight_shape=str(layer.weight_shape),
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        bias=layer.bias,
        row_step=row_step,
        col_step=col_step,
        offsets=[(*offset.kernel_offset, offset.first_row, offset.first_col)
                 for offset in plan.offsets],
        instance_shape="x".join(map(str, plan.derivation.input_shape)),
        derived_layer=derived_layer,
    )


ARRAY_API.register(Conv2d, ArrayApiKind(context=_context))
