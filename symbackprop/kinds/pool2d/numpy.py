"""The NumPy code of max and average pooling: the window-offset plan, read off the derivation.

:func:`read_pool_plan` reads, from the derived windows (the arguments of ``max(...)``
or the terms of the mean), which padded rows and columns each window offset
``(m, k)`` meets: a :class:`PoolPlan`; :func:`check_pool_plan` proves that the plan
rebuilds every ``z`` and every ``dL/dx`` of the derivation, window order (the tie
rule) and divisors included.  Both kinds register themselves in
:data:`symbackprop.render.codegen.NUMPY`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import sympy

from symbackprop.core.derivation import Derivation, derive
from symbackprop.core.indexing import output_size_in
from symbackprop.core.naming import element_symbol, parse_element
from symbackprop.kinds.pool2d.rules import IsWindowMax, WindowMax, tiles_input
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d
from symbackprop.render.codegen import (
    NUMPY,
    NumpyKind,
    PlanError,
    common_context,
    numpy_code,
    offset_slices,
    record_meeting,
)

__all__ = [
    "PoolPlan",
    "WindowOffsetSlice",
    "representative_pool_instance",
    "read_pool_plan",
    "check_pool_plan",
    "pool_plan",
    "output_size_expression",
]


def _minimal_pool_length(kernel: int, stride: int, before: int, after: int) -> int:
    """Smallest input length with two windows that hold no padding (to read a slice off).

    Window ``i`` spans rows ``i*stride - before`` to ``i*stride - before + kernel - 1``;
    the first without padding is ``i0 = ceil(before / stride)``, and window ``i0 + 1``
    is inside too (and exists: its end bounds the output size) from the length
    ``(i0 + 1)*stride - before + kernel`` on.  Closed form, whatever the sizes.
    """
    first_inside = -(-before // stride)
    return max(1, (first_inside + 1) * stride - before + kernel)


def representative_pool_instance(layer) -> tuple[int, int]:
    """``(H, W)`` of the one-channel instance :func:`pool_plan` derives.

    The smallest input with two windows along each axis that hold no padding, plus
    the padded windows around them.
    """
    top, bottom, left, right = layer.padding
    return (_minimal_pool_length(layer.kernel_size[0], layer.stride[0], top, bottom),
            _minimal_pool_length(layer.kernel_size[1], layer.stride[1], left, right))


def _pool_instance(layer, max_terms) -> tuple:
    return layer, layer.input_shape(representative_pool_instance(layer))


@dataclass(frozen=True)
class WindowOffsetSlice:
    """The strided slice of the padded input that window offset ``(m, k)`` meets.

    Window ``(i, j)`` holds padded row ``first_row + row_step*i`` and padded column
    ``first_col + col_step*j`` at its offset ``(m, k)``.
    """

    window_offset: tuple[int, int]
    first_row: int
    row_step: int
    first_col: int
    col_step: int


@dataclass(frozen=True)
class PoolPlan:
    """What the pooling templates need, read off a
    :class:`~symbackprop.core.derivation.Derivation`."""

    layer: object
    derivation: Derivation
    offsets: tuple[WindowOffsetSlice, ...]

    @property
    def steps(self) -> tuple[int, int]:
        steps = {(offset.row_step, offset.col_step) for offset in self.offsets}
        if len(steps) != 1:
            raise PlanError(f"window offsets step through the input differently: {sorted(steps)}")
        return steps.pop()


def _derived_windows(derivation) -> dict:
    """``{(n, c, i, j): [input element indices in row-major order]}`` from the derived ``z``."""
    windows = {}
    for index in np.ndindex(*derivation.output_shape):
        element = derivation.z[index]
        if isinstance(element, WindowMax):
            symbols = list(element.args[0])
        else:
            symbols = [term.as_coeff_Mul()[1] for term in sympy.Add.make_args(element)]
        windows[index] = sorted(parse_element(symbol)[1] for symbol in symbols)
    return windows


def read_pool_plan(derivation: Derivation) -> PoolPlan:
    """Read every window offset's slice off the windows that contain no padding.

    In such a window the ``KH*KW`` elements, in row-major order, are the offsets
    ``(m, k)``; the padded rows and columns of one offset over the windows must lie
    on one strided slice.
    """
    layer = derivation.layer
    top, _, left, _ = layer.padding
    kernel_h, kernel_w = layer.kernel_size
    rows, cols = defaultdict(dict), defaultdict(dict)
    for (_, _, i, j), elements in _derived_windows(derivation).items():
        if len(elements) != kernel_h * kernel_w:
            continue  # a window with padding: checked below, not read
        for position, (_, _, row, col) in enumerate(elements):
            record_meeting(rows, cols, "window", divmod(position, kernel_w), (i, j),
                           (row + top, col + left))
    offsets = offset_slices(rows, cols, itertools.product(range(kernel_h), range(kernel_w)),
                            "window", WindowOffsetSlice)
    return PoolPlan(layer=layer, derivation=derivation, offsets=offsets)


def check_pool_plan(plan: PoolPlan) -> None:
    """Raise :class:`~symbackprop.render.codegen.PlanError` unless the plan rebuilds the derivation.

    From the slices alone it writes every window (real elements in row-major
    order, which decides ties), every ``z`` (the first maximum, or the sum over
    the divisor) and every ``dL/dx``, and compares them with SymPy's.
    """
    derivation = plan.derivation
    layer = derivation.layer
    batch, channels, height, width = derivation.input_shape
    top, _, left, _ = layer.padding
    expected_grad = defaultdict(Counter)
    for n, c, i, j in np.ndindex(*derivation.output_shape):
        window = []
        for offset in plan.offsets:
            row = offset.first_row + offset.row_step * i - top
            col = offset.first_col + offset.col_step * j - left
            if 0 <= row < height and 0 <= col < width:
                window.append(element_symbol("x", (n, c, row, col)))
        g = element_symbol("g", (n, c, i, j))
        index = sympy.Tuple(n, c, i, j)
        if isinstance(layer, MaxPool2d):
            z = WindowMax(sympy.Tuple(*window), index)
            for position, element in enumerate(window):
                expected_grad[element][g * IsWindowMax(position, sympy.Tuple(*window), index)] += 1
        else:
            divisor = len(plan.offsets) if layer.count_include_pad else len(window)
            z = sympy.Add(*window) / divisor
            for element in window:
                expected_grad[element][g / divisor] += 1
        if derivation.z[n, c, i, j] != z:
            raise PlanError(f"the window-offset slices do not reproduce z{[n, c, i, j]} = "
                            f"{derivation.z[n, c, i, j]}, they give {z}")
    for index in np.ndindex(*derivation.input_shape):
        terms = Counter(term for term in sympy.Add.make_args(derivation.grad_x[index]) if term != 0)
        if terms != expected_grad.get(element_symbol("x", index), Counter()):
            raise PlanError(f"the window-offset slices do not reproduce dL/dx{list(index)} = "
                            f"{derivation.grad_x[index]}")


@functools.lru_cache(maxsize=128)  # a chain and its layer module share one derivation
def pool_plan(layer) -> PoolPlan:
    """Derive :func:`representative_pool_instance`, read the plan off it, and check it."""
    size = representative_pool_instance(layer)
    derivation = derive(layer, size, 1, max_terms=math.inf)  # the smallest instance
    plan = read_pool_plan(derivation)
    check_pool_plan(plan)
    return plan


#: The names of one axis in the generated code: size, its letter, padding before and
#: after, window size, stride.
_AXES = (("height", "H", "TOP", "BOTTOM", "KH", "SH"), ("width", "W", "LEFT", "RIGHT", "KW", "SW"))


def output_size_expression(size, before, after, kernel, stride):
    """``floor((H + top + bottom - K) / s) + 1``, the number of windows along an axis, for
    the code and the docstring: the core's
    :func:`~symbackprop.core.indexing.output_size_formula` without dilation, in the
    module's names (unevaluated: it prints as written)."""
    return output_size_in((size, before, after, kernel, stride), dilated=False)


def output_size_code(layer) -> tuple[list[str], list[str]]:
    """``(code, text)``: each axis's output length in the module's names, and with the
    layer's numbers (``H`` and ``W`` free), both printed from :func:`output_size_expression`."""
    code, text = [], []
    for axis, (size, letter, before, after, kernel, stride) in enumerate(_AXES):
        names = (size, before, after, kernel, stride)
        expression = output_size_expression(*(sympy.Symbol(name, integer=True) for name in names))
        values = (letter, layer.padding[2 * axis], layer.padding[2 * axis + 1],
                  layer.kernel_size[axis], layer.stride[axis])
        code.append(numpy_code(expression, as_written=True))
        text.append(numpy_code(expression, as_written=True,
                               names={name: str(value) for name, value in zip(names, values)}))
    return code, text


def _pool_context(layer, style: str, strategy: str | None) -> dict:
    plan = pool_plan(layer)
    row_step, col_step = plan.steps
    return dict(
        common_context(layer),
        template=f"pool2d/{layer.kind}{'' if style == 'fast' else '_' + style}.py.j2",
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


def _chain_shape(number: int, layer, rank: int, channels) -> tuple:
    if rank != 4:
        raise ValueError(f"layer {number} ({layer.describe()}) takes (N, C, H, W) feature maps, "
                         f"but the layer before it gives (N, F); put it before the "
                         f"Flatten/Linear layers")
    return [f"shape = (shape[0], shape[1], *_output_size_{number}(shape[2], shape[3]))",
            f"_expect_nonempty(input_shape, shape, {number})"], 4, channels


def _pool_kind(words: str) -> NumpyKind:
    return NumpyKind(context=_pool_context, instance=_pool_instance,
                     backward_rule=(words, ""), chain_shape=_chain_shape,
                     input_shape=lambda layer: ("N", "C", "H", "W"), upsamples=True)


NUMPY.register(MaxPool2d, _pool_kind(
    ": each window's delta to its first maximum"))
NUMPY.register(AvgPool2d, _pool_kind(
    ": an equal share to every element of a window"))
