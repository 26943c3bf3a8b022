"""The NumPy code of max and average pooling in 1, 2 and 3 dimensions: the
window-offset plan, read off the derivation.

:func:`read_pool_plan` reads, from the derived windows (the arguments of ``max(...)``
or the terms of the mean), which padded position along each axis each window offset
``(m, k, ...)`` meets: a :class:`PoolPlan`; :func:`check_pool_plan` proves that the plan
rebuilds every ``z`` and every ``dL/dx`` of the derivation, window order (the tie
rule) and divisors (``ceil_mode``'s clipped windows) included.  Every kind registers
itself in :data:`symbackprop.render.codegen.NUMPY`.  A 2-D layer without dilation and
``ceil_mode`` is written by the 2-D templates (``pool2d/maxpool2d.py.j2``, ...); every
other layer by the N-dimensional ones (``pool2d/maxpool_nd.py.j2``, ...), from the same
plan.
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
from symbackprop.kinds.pool2d.spec import (
    AXIS_LETTERS,
    AXIS_NAMES,
    MAX_POOLS,
    POOLS,
    pooled_length,
)
from symbackprop.render.codegen import (
    NUMPY,
    NumpyKind,
    PlanError,
    common_context,
    fit_line,
    numpy_code,
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

    Window ``i`` spans positions ``i*stride - before`` to ``i*stride - before + kernel - 1``
    (``kernel`` the dilated extent); the first without padding is ``i0 = ceil(before /
    stride)``, and window ``i0 + 1`` is inside too (and exists: its end bounds the output
    size) from the length ``(i0 + 1)*stride - before + kernel`` on.  Closed form.
    """
    first_inside = -(-before // stride)
    return max(1, (first_inside + 1) * stride - before + kernel)


def _instance_length(layer, axis: int) -> int:
    """:func:`_minimal_pool_length`; with ``ceil_mode`` the next length (within a stride)
    whose last window is one that only ``ceil_mode`` adds, so the plan is checked on it."""
    kernel, stride, before, after, dilation = layer.axis_values(axis)
    length = _minimal_pool_length(layer.extent[axis], stride, before, after)
    if layer.ceil_mode:
        for candidate in range(length, length + min(stride, 64)):  # a few: stride may be huge
            if pooled_length(candidate, kernel, stride, before, after, dilation, True) > \
                    pooled_length(candidate, kernel, stride, before, after, dilation, False):
                return candidate
    return length


def representative_pool_instance(layer) -> tuple[int, ...]:
    """The spatial sizes of the one-channel instance :func:`pool_plan` derives.

    The smallest input with two windows along each axis that hold no padding, plus
    the padded windows around them (and a ``ceil_mode`` window when there is one).
    """
    return tuple(_instance_length(layer, axis) for axis in range(layer.spatial_dims))


def _pool_instance(layer, max_terms) -> tuple:
    return layer, layer.input_shape(representative_pool_instance(layer))


@dataclass(frozen=True)
class WindowOffsetSlice:
    """The strided slice of the padded input that window offset ``(m, k, ...)`` meets.

    Window ``(i, j, ...)`` holds padded position ``first[a] + step[a]*i_a`` along each
    axis ``a`` at its offset.
    """

    window_offset: tuple[int, ...]
    first: tuple[int, ...]
    step: tuple[int, ...]

    # A 2-D plan's names: rows first_row + row_step*i, columns first_col + col_step*j.
    @property
    def first_row(self) -> int:
        return self.first[0]

    @property
    def row_step(self) -> int:
        return self.step[0]

    @property
    def first_col(self) -> int:
        return self.first[1]

    @property
    def col_step(self) -> int:
        return self.step[1]


@dataclass(frozen=True)
class PoolPlan:
    """What the pooling templates need, read off a
    :class:`~symbackprop.core.derivation.Derivation`."""

    layer: object
    derivation: Derivation
    offsets: tuple[WindowOffsetSlice, ...]

    @property
    def steps(self) -> tuple[int, ...]:
        steps = {offset.step for offset in self.offsets}
        if len(steps) != 1:
            raise PlanError(f"window offsets step through the input differently: {sorted(steps)}")
        return steps.pop()


def _derived_windows(derivation) -> dict:
    """``{output index: [input element indices in row-major order]}`` from the derived ``z``."""
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

    In such a window the ``k1*k2*...`` elements, in row-major order, are the offsets;
    the padded positions of one offset over the windows must lie on one strided slice
    along each axis.
    """
    layer = derivation.layer
    dims = layer.spatial_dims
    befores = layer.padding[::2]
    offsets = list(itertools.product(*(range(k) for k in layer.kernel_size)))
    meetings = [defaultdict(dict) for _ in range(dims)]
    for index, elements in _derived_windows(derivation).items():
        if len(elements) != len(offsets):
            continue  # a window with padding: checked below, not read
        for offset, element in zip(offsets, elements):
            for axis in range(dims):
                padded = element[2 + axis] + befores[axis]
                seen = meetings[axis][offset].setdefault(index[2 + axis], padded)
                if seen != padded:
                    raise PlanError(f"window offset {offset} meets padded positions {seen} and "
                                    f"{padded} along the {AXIS_NAMES[dims][axis]} from window "
                                    f"{index[2 + axis]}")
    slices = []
    for offset in offsets:
        lines = [fit_line(meetings[axis][offset], f"padded {AXIS_NAMES[dims][axis]} positions "
                          f"of window offset {offset}") for axis in range(dims)]
        slices.append(WindowOffsetSlice(offset, tuple(first for first, _ in lines),
                                        tuple(step for _, step in lines)))
    return PoolPlan(layer=layer, derivation=derivation, offsets=tuple(slices))


def check_pool_plan(plan: PoolPlan) -> None:
    """Raise :class:`~symbackprop.render.codegen.PlanError` unless the plan rebuilds the derivation.

    From the slices alone it writes every window (input elements in row-major order,
    which decides ties), every ``z`` (the first maximum, or the sum over the divisor:
    the window's positions inside the padded input, or its input elements) and every
    ``dL/dx``, and compares them with SymPy's.
    """
    derivation = plan.derivation
    layer = derivation.layer
    spatial = derivation.input_shape[2:]
    befores, afters = layer.padding[::2], layer.padding[1::2]
    expected_grad = defaultdict(Counter)
    for index in np.ndindex(*derivation.output_shape):
        n, c, *out = index
        window, counted = [], 0
        for offset in plan.offsets:
            position = [offset.first[a] + offset.step[a] * out[a] - befores[a]
                        for a in range(len(out))]
            if all(0 <= p < size for p, size in zip(position, spatial)):
                window.append(element_symbol("x", (n, c, *position)))
            if all(-b <= p < size + e for p, size, b, e in zip(position, spatial, befores,
                                                               afters)):
                counted += 1
        g = element_symbol("g", index)
        output = sympy.Tuple(*index)
        if isinstance(layer, MAX_POOLS):
            z = WindowMax(sympy.Tuple(*window), output)
            for position, element in enumerate(window):
                expected_grad[element][g * IsWindowMax(position, sympy.Tuple(*window), output)] \
                    += 1
        else:
            divisor = counted if layer.count_include_pad else len(window)
            z = sympy.Add(*window) / divisor
            for element in window:
                expected_grad[element][g / divisor] += 1
        if derivation.z[index] != z:
            raise PlanError(f"the window-offset slices do not reproduce z{list(index)} = "
                            f"{derivation.z[index]}, they give {z}")
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
    if layer.new_options:
        return _nd_context(layer, style)
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


def size_text(layer, axis: int) -> str:
    """The number of windows along ``axis`` as the N-dimensional module's docstring says
    it, with the layer's numbers (the input size free): PyTorch's formula."""
    kernel, stride, before, after, dilation = layer.axis_values(axis)
    size = AXIS_LETTERS[layer.spatial_dims][axis]
    inner = f"({size} + {before} + {after} - {dilation}*({kernel} - 1) - 1) / {stride}"
    if not layer.ceil_mode:
        return f"floor({inner}) + 1"
    return f"ceil({inner}) + 1,\n         less 1 when that last window would start at or past " \
           f"{size} + {before}, in the right padding"


def _nd_context(layer, style: str) -> dict:
    plan = pool_plan(layer)
    dims = layer.spatial_dims
    letters = AXIS_LETTERS[dims]
    return dict(
        common_context(layer),
        template=f"pool2d/{'max' if isinstance(layer, MAX_POOLS) else 'avg'}pool_nd"
                 f"{'' if style == 'fast' else '_' + style}.py.j2",
        exports=["forward", "backward", "output_size"],
        dims=dims,
        letters=letters,
        sizes=[name for name in AXIS_NAMES[dims]],
        axis_names=AXIS_NAMES[dims],
        size_text=[size_text(layer, axis) for axis in range(dims)],
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        dilation=layer.dilation,
        padding=tuple(tuple(layer.padding[2 * a:2 * a + 2]) for a in range(dims)),
        window_words="x".join(map(str, layer.kernel_size)) + ("-wide" if dims == 1 else ""),
        ceil_mode=layer.ceil_mode,
        count_include_pad=getattr(layer, "count_include_pad", True),
        overlapping=layer.overlapping,
        gaps=any(s > e for s, e in zip(layer.stride, layer.extent)),
        steps=plan.steps,
        offsets=[(offset.window_offset, offset.first) for offset in plan.offsets],
        instance_shape="x".join(map(str, plan.derivation.input_shape)),
    )


def _chain_shape(number: int, layer, rank: int, channels) -> tuple:
    dims = layer.spatial_dims
    if rank != dims + 2:
        axes = ", ".join(("N", "C", *AXIS_LETTERS[dims]))
        gives = "(N, F)" if rank == 2 else f"rank-{rank} arrays"
        raise ValueError(f"layer {number} ({layer.describe()}) takes ({axes}) feature maps, "
                         f"but the layer before it gives {gives}" +
                         ("; put it before the Flatten/Linear layers" if rank == 2 else ""))
    sizes = ", ".join(f"shape[{2 + axis}]" for axis in range(dims))
    return [f"shape = (shape[0], shape[1], *_output_size_{number}({sizes}))",
            f"_expect_nonempty(input_shape, shape, {number})"], dims + 2, channels


def _pool_kind(words: str) -> NumpyKind:
    return NumpyKind(context=_pool_context, instance=_pool_instance,
                     backward_rule=(words, ""), chain_shape=_chain_shape,
                     input_shape=lambda layer: ("N", "C", *AXIS_LETTERS[layer.spatial_dims]),
                     upsamples=True)


for _kind in POOLS:
    if _kind in MAX_POOLS:
        NUMPY.register(_kind, _pool_kind(": each window's delta to its first maximum"))
    else:
        NUMPY.register(_kind, _pool_kind(": an equal share to every element of a window"))
