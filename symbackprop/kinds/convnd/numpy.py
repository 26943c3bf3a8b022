"""The NumPy code of the 1-D and 3-D convolutions: the plan read off the derivation.

1. :func:`representative_instance` picks a small input on which every kernel offset
   reads at least two real positions along every axis (and, for wide layers, fewer
   channels); generate refuses it up front when it is larger than ``max_terms``;
2. :func:`~symbackprop.core.derivation.derive` expands and differentiates it;
3. :func:`read_plan` reads off the derived sums ``dL/dw[o,c,m...] = sum g[n,o,i...] *
   x[n,c,r...]`` which padded positions ``r_a + begin_a = first_a + step_a*i_a`` each
   kernel offset touches along each axis;
4. :func:`check_plan` proves that the plan rebuilds ``z``, ``dL/dx``, ``dL/dw`` and
   ``dL/db`` of the derivation term by term;
5. :func:`convnd_context` hands the table and the layer's numbers to
   ``templates/convnd/convnd.py.j2`` (fast: im2col and matrix products) or
   ``convnd_reference.py.j2`` (the printed rules line by line).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import sympy

from symbackprop.core.derivation import Derivation, derive, term_count
from symbackprop.core.indexing import output_size_in
from symbackprop.core.naming import element_symbol, flat, parse_element
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d
from symbackprop.render.codegen import (
    NUMPY,
    NumpyKind,
    PlanError,
    common_context,
    fit_line,
    numpy_code,
    size_limit_error,
)

__all__ = ["representative_instance", "read_plan", "check_plan", "convnd_plan",
           "convnd_context", "ConvNdPlan", "DERIVATION_BUDGET"]

#: Largest expansion (products) derived with the layer's own channels; wider layers
#: are derived with at most 2 groups of 2 input and 2 output channels (the index
#: rules do not depend on the channel count).
DERIVATION_BUDGET = 4000
#: The fast module's blocks of samples hold about this many bytes of columns.
CHUNK_BYTES = 32 * 2**20


def _minimal_length(kernel: int, stride: int, before: int, after: int, dilation: int) -> int:
    """Smallest input length on which every kernel offset reads at least two real
    positions (two points fix a slice's start and step; the check then uses every term).

    Offset ``m`` of output ``i`` reads position ``i*stride + m*dilation - before``; its
    first real one is that of ``i0 = max(0, ceil((before - m*dilation) / stride))``,
    and ``i0 + 1`` is real and has an output exactly when the length is at least both
    ``(i0 + 1)*stride + m*dilation - before + 1`` and
    ``(i0 + 1)*stride + dilation*(kernel - 1) + 1 - before - after``.
    """
    span = dilation * (kernel - 1)
    length = 1
    for m in range(kernel):
        first_output = max(0, -((m * dilation - before) // stride))
        second_start = (first_output + 1) * stride
        length = max(length, second_start + m * dilation - before + 1,
                     second_start + span + 1 - before - after)
    return length


def _narrower(layer):
    """At most 2 groups of at most 2 input and 2 output channels each."""
    groups = min(layer.groups, 2)
    return layer.replace(in_channels=groups * min(layer.group_in_channels, 2),
                         out_channels=groups * min(layer.group_out_channels, 2),
                         groups=groups)


def representative_instance(layer, max_terms=math.inf):
    """``(layer to derive, sizes)``: the small instance :func:`generate` derives (batch 1)."""
    narrow = _narrower(layer)
    at_least = 2 ** layer.spatial_axes * narrow.out_channels * narrow.group_in_channels * \
        math.prod(layer.kernel_size)
    if at_least > max_terms:  # two outputs along each axis, whatever the input
        raise size_limit_error(layer, None, at_least, max_terms)
    sizes = tuple(_minimal_length(kernel, stride, before, after, dilation)
                  for kernel, stride, (before, after), dilation
                  in zip(layer.kernel_size, layer.stride, layer.padding_pairs, layer.dilation))
    instance = layer if term_count(layer, layer.input_shape(sizes)) <= DERIVATION_BUDGET \
        else narrow
    return instance, sizes


def _instance(layer, max_terms) -> tuple:
    instance, sizes = representative_instance(layer, max_terms)
    return instance, instance.input_shape(sizes)


@dataclass(frozen=True)
class ConvNdPlan:
    """What the templates need, read off a :class:`Derivation`.

    ``offsets`` holds ``(kernel offset, first, step)`` per kernel offset (row-major):
    along axis ``a`` offset ``m`` pairs output ``i`` with padded position
    ``first[a] + step[a]*i``.
    """

    layer: object
    derivation: Derivation
    offsets: tuple

    @property
    def steps(self) -> tuple[int, ...]:
        steps = {step for _, _, step in self.offsets}
        if len(steps) != 1:
            raise PlanError(f"kernel offsets step through the input differently: {sorted(steps)}")
        return steps.pop()


def _factors(term) -> dict:
    """``{array: index}`` of a product of element symbols, e.g. ``g[..]*x[..]``."""
    found = {}
    for factor in sympy.Mul.make_args(term):
        parsed = parse_element(factor)
        if parsed is None or parsed[0] in found:
            raise PlanError(f"term {term} is not a product of distinct array elements")
        found[parsed[0]] = parsed[1]
    return found


def read_plan(derivation: Derivation, layer=None) -> ConvNdPlan:
    """Read every kernel offset's slice, per axis, off the derived ``dL/dw`` sums."""
    derived = derivation.layer
    axes = derived.spatial_axes
    begins = derived.padding[::2]
    meetings = defaultdict(lambda: [dict() for _ in range(axes)])  # offset -> per axis {i: r}
    for weight, gradient in zip(flat(derivation.w), flat(derivation.grad_w), strict=True):
        offset = parse_element(weight)[1][2:]
        for term in sympy.Add.make_args(gradient):
            if term == 0:
                continue
            factors = _factors(term)
            outputs, positions = factors["g"][2:], factors["x"][2:]
            for axis, (i, r) in enumerate(zip(outputs, positions)):
                seen = meetings[offset][axis].setdefault(i, r + begins[axis])
                if seen != r + begins[axis]:
                    raise PlanError(f"kernel offset {offset} meets padded positions {seen} and "
                                    f"{r + begins[axis]} from output {i} along axis {axis}")
    expected = list(itertools.product(*(range(k) for k in derived.kernel_size)))
    if set(meetings) != set(expected):
        raise PlanError(f"the derived dL/dw names kernel offsets {sorted(meetings)}, "
                        f"expected {expected}")
    offsets = []
    for offset in expected:
        lines = [fit_line(meetings[offset][axis], f"padded positions of kernel offset {offset} "
                          f"along axis {axis}") for axis in range(axes)]
        offsets.append((offset, tuple(first for first, _ in lines),
                        tuple(step for _, step in lines)))
    return ConvNdPlan(layer=layer or derived, derivation=derivation, offsets=tuple(offsets))


def check_plan(plan: ConvNdPlan) -> None:
    """Raise :class:`PlanError` unless the plan rebuilds the derivation term by term:
    every product of ``z``, ``dL/dx``, ``dL/dw`` and ``dL/db``, written from the slices
    alone, compared as multisets with SymPy's sums."""
    derivation = plan.derivation
    layer = derivation.layer
    batch, _, *sizes = derivation.input_shape
    out_shape = derivation.output_shape
    begins = layer.padding[::2]
    group_in, group_out = layer.group_in_channels, layer.group_out_channels
    expected = {name: defaultdict(Counter) for name in ("z", *derivation.grads)}
    for index in np.ndindex(*out_shape):
        n, o, *out = index
        g = element_symbol("g", index)
        if layer.bias:
            bias = element_symbol("b", (o,))
            expected["z"][index][frozenset((bias,))] += 1
            expected["b"][(o,)][frozenset((g,))] += 1
        for offset, first, step in plan.offsets:
            position = tuple(f + s * i - p for f, s, i, p in zip(first, step, out, begins))
            if not all(0 <= at < size for at, size in zip(position, sizes)):
                continue  # a padding position: the product is 0
            for c in range(group_in):
                channel = (o // group_out) * group_in + c
                x = element_symbol("x", (n, channel, *position))
                w = element_symbol("w", (o, c, *offset))
                expected["z"][index][frozenset((x, w))] += 1
                expected["w"][(o, c, *offset)][frozenset((g, x))] += 1
                expected["x"][(n, channel, *position)][frozenset((g, w))] += 1
    derived = {"z": derivation.z, **derivation.grads}
    for name, array in derived.items():
        for index in np.ndindex(*array.shape):
            terms = Counter(frozenset(sympy.Mul.make_args(term))
                            for term in sympy.Add.make_args(array[index]) if term != 0)
            if terms != expected[name].get(index, Counter()):
                label = "z" if name == "z" else f"dL/d{name}"
                raise PlanError(f"the kernel-offset slices do not reproduce {label}{list(index)} "
                                f"= {array[index]}")


@functools.lru_cache(maxsize=128)
def convnd_plan(layer) -> ConvNdPlan:
    """Derive :func:`representative_instance`, read the plan off it, and check it."""
    instance_layer, sizes = representative_instance(layer)
    derivation = derive(instance_layer, sizes, 1, max_terms=math.inf)
    plan = read_plan(derivation, layer)
    check_plan(plan)
    return plan


def output_size_code() -> str:
    """The output length of one axis in the module's names, as the printouts write it."""
    names = ("size", "before", "after", "kernel", "stride", "dilation")
    return numpy_code(output_size_in(tuple(sympy.Symbol(name, integer=True) for name in names)),
                      as_written=True)


def convnd_context(layer, style: str = "fast") -> dict:
    """The values ``templates/convnd/`` place for ``layer``."""
    plan = convnd_plan(layer)
    if plan.steps != layer.stride or any(
            first != tuple(m * d + 0 for m, d in zip(offset, layer.dilation))
            for offset, first, _ in plan.offsets):
        raise PlanError(f"the slices read off the derivation are not offset*dilation, step "
                        f"stride: {plan.offsets}")
    axes = layer.spatial_axes
    instance = plan.derivation.layer
    derived_layer = "this layer" if instance == layer else \
        f"a {instance.in_channels} -> {instance.out_channels} channel version of this layer " \
        f"(the index rules do not depend on the channel count)"
    names = layer.axis_names
    return dict(
        common_context(layer),
        template="convnd/convnd.py.j2" if style == "fast" else "convnd/convnd_reference.py.j2",
        exports=["forward", "backward", "output_size"],
        layer_name=type(layer).__name__,
        axes=axes,
        axis_names=names,
        sizes_text=", ".join(names),
        axis_quoted=", ".join(f'"{name}"' for name in names),
        out_sizes_text=", ".join(f"{name}o" for name in names),
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        groups=layer.groups,
        group_in_channels=layer.group_in_channels,
        group_out_channels=layer.group_out_channels,
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        dilation=layer.dilation,
        padding=layer.padding_pairs,
        bias=layer.bias,
        weight_shape=str(layer.weight_shape),
        offsets=[(offset, first) for offset, first, _ in plan.offsets],
        output_size_code=output_size_code(),
        instance_shape="x".join(map(str, plan.derivation.input_shape)),
        derived_layer=derived_layer,
        chunk_bytes=CHUNK_BYTES,
        out_letters="ijk"[:axes] if axes > 1 else "i",
        kernel_letters="mpq"[:axes] if axes > 1 else "m",
    )


def _context(layer, style: str, strategy: str | None) -> dict:
    return convnd_context(layer, style)


def _chain_shape(number: int, layer, rank: int, channels) -> tuple:
    """A chain module's ``output_shapes`` lines for this layer, and the rank and channels
    after it."""
    where = f"layer {number} ({layer.describe()})"
    axes = ", ".join(("N", "C", *layer.axis_names))
    if rank != 2 + layer.spatial_axes:
        raise ValueError(f"{where} takes inputs shaped ({axes}), but the layer before it "
                         f"gives {rank}-dimensional ones")
    if channels is not None and channels != layer.in_channels:
        raise ValueError(f"{where} takes in_channels = {layer.in_channels} channels, "
                         f"but the layer before it gives {channels}")
    lines = [] if channels is not None else [
        f"_expect_channels(shape, {layer.in_channels}, {number})"]
    lines += [f"shape = (shape[0], {layer.out_channels}, *_output_size_{number}(*shape[2:]))",
              f"_expect_nonempty(input_shape, shape, {number})"]
    return lines, 2 + layer.spatial_axes, layer.out_channels


def _input_shape(layer):
    return ("N", layer.in_channels, *layer.axis_names)


for _layer_type in (Conv1d, Conv3d):
    NUMPY.register(_layer_type, NumpyKind(
        context=_context,
        instance=_instance,
        backward_rule=("; dL/dw{number}{bias}", ", dL/db{number}"),
        input_shape=_input_shape,
        chain_shape=_chain_shape,
    ))
