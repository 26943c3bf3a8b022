"""The NumPy code of a 2-D convolution: its plan, read off the derivation, and strategies.

1. :func:`representative_instance` picks a small input (every kernel offset reads
   at least two real rows and columns, in closed form) and, for wide layers, fewer
   channels; the code generator refuses it up front when it is larger than
   ``max_terms`` (a huge kernel, stride, padding or dilation);
2. :func:`~symbackprop.core.derivation.derive` expands and differentiates it;
3. :func:`read_conv2d_plan` reads, from the derived sums ``dL/dw[o,c,m,k] =
   sum g[n,o,i,j] * x[n,c,r,q]``, which padded rows ``r + top = first_row + step*i``
   and columns each kernel offset ``(m, k)`` touches: a :class:`Conv2dPlan`;
4. :func:`check_conv2d_plan` proves that the plan rebuilds ``z``, ``dL/dx``,
   ``dL/dw`` and ``dL/db`` of the derivation term by term (cheap on a small instance);
5. :func:`choose_strategy` picks how the module computes (see :data:`STRATEGIES`)
   from the layer's shape class, and :func:`conv2d_context` hands the plan's numbers
   to ``templates/conv2d/conv2d.py.j2``.

The kind registers itself in :data:`symbackprop.render.codegen.NUMPY`.
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
from symbackprop.kinds.conv2d.spec import Conv2d
from symbackprop.render.codegen import (
    NUMPY,
    NumpyKind,
    PlanError,
    common_context,
    fit_line,
    numpy_code,
    offset_slices,
    record_meeting,
    size_limit_error,
)

__all__ = [
    "representative_instance",
    "read_conv2d_plan",
    "check_conv2d_plan",
    "conv2d_context",
    "conv2d_plan",
    "choose_strategy",
    "forward_reads_x",
    "conv2d_phases",
    "STRATEGIES",
    "Conv2dPlan",
    "KernelOffsetSlice",
    "DERIVATION_BUDGET",
    "output_size_expression",
]

#: Largest forward expansion (products ``w*x``) the code generator derives with the
#: layer's own channel counts; a wider layer is derived with at most 2 groups of at
#: most 2 input and 2 output channels each (the index rules do not depend on it).
DERIVATION_BUDGET = 5_000

#: The ways a generated conv2d module can compute, and when :func:`choose_strategy`
#: picks each (measured with ``benchmarks/bench_conv2d.py``; see the README).
STRATEGIES = {
    "pointwise": (
        "Chosen for every 1x1 kernel with stride 1 and no padding: nothing needs "
        "gathering, so any copy of x or grad_out would only cost time."),
    "im2col": (
        "Chosen because each group has at most half as many input as output channels "
        "(C_GROUP <= O_GROUP / 2): gathering x (KH*KW*C_GROUP rows) and scattering back "
        "moves less memory than gathering grad_out (KH*KW*O_GROUP rows) would."),
    "transposed": (
        "Chosen because each group has more than half as many input as output channels "
        "(C_GROUP > O_GROUP / 2): gathering grad_out once serves both products, and dL/dx "
        "is written in place instead of being added up offset by offset, which measured "
        "faster than the im2col scatter for such layers."),
}

#: Block size of the gathered buffer (bytes, about an L2 cache) and its least length
#: (grid positions); measured on the benchmark shapes.
CHUNK_BYTES = 2 * 2**20
MIN_CHUNK = 512

# -- stage 1: the instance to derive ---------------------------------------------

def _minimal_length(kernel: int, stride: int, before: int, after: int, dilation: int) -> int:
    """Smallest input length on which every kernel offset reads at least two real rows.

    Two rows per offset are what it takes to read a slice's start and step off the
    derived sums; the check of the plan then uses every term.  Offset ``m`` of output
    ``i`` reads row ``i*stride + m*dilation - before``; its first real row is that of
    ``i0 = max(0, ceil((before - m*dilation) / stride))``, and the row of ``i0 + 1`` is
    real and has an output exactly when the length is at least both
    ``(i0 + 1)*stride + m*dilation - before + 1`` and
    ``(i0 + 1)*stride + dilation*(kernel - 1) + 1 - before - after``.  One step per
    offset, whatever the stride, padding or dilation.
    """
    span = dilation * (kernel - 1)
    length = 1
    for m in range(kernel):
        first_output = max(0, -((m * dilation - before) // stride))
        second_start = (first_output + 1) * stride
        length = max(length, second_start + m * dilation - before + 1,
                     second_start + span + 1 - before - after)
    return length


def _narrower(layer: Conv2d) -> Conv2d:
    """At most 2 groups of at most 2 input and 2 output channels each."""
    groups = min(layer.groups, 2)
    return layer.replace(in_channels=groups * min(layer.group_in_channels, 2),
                         out_channels=groups * min(layer.group_out_channels, 2),
                         groups=groups)


def representative_instance(layer: Conv2d, max_terms=math.inf) -> tuple[Conv2d, tuple[int, int]]:
    """``(layer to derive, (H, W))``: the small instance :func:`generate` derives.

    The input is the smallest on which every kernel offset reads at least two rows
    and two columns of ``x`` (batch 1).  The channels are the layer's own unless
    that expansion would exceed :data:`DERIVATION_BUDGET` products; then at most 2
    groups of at most 2 input and 2 output channels each.

    Raises
    ------
    SizeLimitError
        When even that instance costs more than ``max_terms`` (see :func:`instance_cost`);
        a kernel too large for the limit is refused before the input size is computed.
    """
    narrow = _narrower(layer)
    at_least = 4 * narrow.out_channels * narrow.group_in_channels * math.prod(layer.kernel_size)
    if at_least > max_terms:  # two outputs along each axis, whatever the input
        raise size_limit_error(layer, None, at_least, max_terms)
    top, bottom, left, right = layer.padding
    size = (_minimal_length(layer.kernel_size[0], layer.stride[0], top, bottom, layer.dilation[0]),
            _minimal_length(layer.kernel_size[1], layer.stride[1], left, right, layer.dilation[1]))
    instance = layer if term_count(layer, layer.input_shape(size)) <= DERIVATION_BUDGET else narrow
    return instance, size


def _conv2d_instance(layer: Conv2d, max_terms) -> tuple:
    instance, size = representative_instance(layer, max_terms)
    return instance, instance.input_shape(size)


# -- stage 2: the plan, read off the derivation ------------------------------------

@dataclass(frozen=True)
class KernelOffsetSlice:
    """The one strided slice of the padded input that kernel offset ``(m, k)`` meets.

    Output position ``(i, j)`` meets padded row ``first_row + row_step*i`` and padded
    column ``first_col + col_step*j``: forward reads it, backward writes into it.
    """

    kernel_offset: tuple[int, int]
    first_row: int
    row_step: int
    first_col: int
    col_step: int


@dataclass(frozen=True)
class Conv2dPlan:
    """What the conv2d template needs, read off a :class:`Derivation`.

    Attributes
    ----------
    layer : the layer the code is for.
    derivation : the derivation of :func:`representative_instance` it was read off.
    offsets : one :class:`KernelOffsetSlice` per kernel offset, ``(m, k)`` row-major.
    """

    layer: Conv2d
    derivation: Derivation
    offsets: tuple[KernelOffsetSlice, ...]

    @property
    def steps(self) -> tuple[int, int]:
        """``(row_step, col_step)``, the same for every offset (the stride)."""
        steps = {(offset.row_step, offset.col_step) for offset in self.offsets}
        if len(steps) != 1:
            raise PlanError(f"kernel offsets step through the input differently: {sorted(steps)}")
        return steps.pop()

    @property
    def offset_spacing(self) -> tuple[int, int]:
        """``(a, b)`` with ``first_row = a*m`` and ``first_col = b*k`` (the dilation)."""
        spacing = []
        for axis in (0, 1):
            starts = {offset.kernel_offset[axis]: (offset.first_row, offset.first_col)[axis]
                      for offset in self.offsets}
            if len(starts) == 1:
                spacing.append(self.layer.dilation[axis])  # one offset: any spacing fits
                continue
            spacing.append(fit_line(starts, f"first padded index along axis {axis}",
                                     through_origin=True)[1])
        return tuple(spacing)


def _factors(term) -> dict:
    """``{array: index}`` of a product of element symbols, e.g. ``g[..]*x[..]``."""
    found = {}
    for factor in sympy.Mul.make_args(term):
        parsed = parse_element(factor)
        if parsed is None or parsed[0] in found:
            raise PlanError(f"term {term} is not a product of distinct array elements")
        found[parsed[0]] = parsed[1]
    return found


def read_conv2d_plan(derivation: Derivation, layer: Conv2d | None = None) -> Conv2dPlan:
    """Read every kernel offset's slice off the derived ``dL/dw`` sums.

    Each term ``g[n,o,i,j] * x[n,c,r,q]`` of ``dL/dw[o,c,m,k]`` says that offset
    ``(m, k)`` pairs output position ``(i, j)`` with padded position
    ``(r + top, q + left)``; the pairs of one offset must lie on one strided slice.

    Parameters
    ----------
    derivation : a derivation of a :class:`Conv2d`.
    layer : the layer the code is for, if not ``derivation.layer`` (the derivation
        may have fewer channels).
    """
    derived = derivation.layer
    top, _, left, _ = derived.padding
    rows, cols = defaultdict(dict), defaultdict(dict)
    for weight, gradient in zip(flat(derivation.w), flat(derivation.grad_w), strict=True):
        _, (_, _, m, k) = parse_element(weight)
        for term in sympy.Add.make_args(gradient):
            if term == 0:
                continue
            factors = _factors(term)
            _, _, i, j = factors["g"]
            _, _, r, q = factors["x"]
            record_meeting(rows, cols, "kernel", (m, k), (i, j), (r + top, q + left))
    expected = set(itertools.product(range(derived.kernel_size[0]), range(derived.kernel_size[1])))
    if set(rows) != expected:
        raise PlanError(f"the derived dL/dw names kernel offsets {sorted(rows)}, "
                        f"expected {sorted(expected)}")
    offsets = offset_slices(rows, cols, sorted(expected), "kernel", KernelOffsetSlice)
    return Conv2dPlan(layer=layer or derived, derivation=derivation, offsets=offsets)


def check_conv2d_plan(plan: Conv2dPlan) -> None:
    """Raise :class:`PlanError` unless the plan rebuilds the derivation term by term.

    From the slices alone (and the grouping of channels) it writes every product of
    ``z``, ``dL/dx``, ``dL/dw`` and ``dL/db`` on the derived instance and compares
    the multisets of products with SymPy's sums.
    """
    derivation = plan.derivation
    layer = derivation.layer
    batch, _, height, width = derivation.input_shape
    _, out_channels, out_height, out_width = derivation.output_shape
    top, _, left, _ = layer.padding
    group_in, group_out = layer.group_in_channels, layer.group_out_channels
    expected = {name: defaultdict(Counter) for name in ("z", *derivation.grads)}
    for n, o, i, j in itertools.product(range(batch), range(out_channels), range(out_height),
                                        range(out_width)):
        g = element_symbol("g", (n, o, i, j))
        if layer.bias:
            bias = element_symbol("b", (o,))
            expected["z"][(n, o, i, j)][frozenset((bias,))] += 1
            expected["b"][(o,)][frozenset((g,))] += 1
        for offset in plan.offsets:
            m, k = offset.kernel_offset
            row = offset.first_row + offset.row_step * i - top
            col = offset.first_col + offset.col_step * j - left
            if not (0 <= row < height and 0 <= col < width):
                continue  # a padding position: the product is 0
            for c in range(group_in):
                channel = (o // group_out) * group_in + c
                x = element_symbol("x", (n, channel, row, col))
                w = element_symbol("w", (o, c, m, k))
                expected["z"][(n, o, i, j)][frozenset((x, w))] += 1
                expected["w"][(o, c, m, k)][frozenset((g, x))] += 1
                expected["x"][(n, channel, row, col)][frozenset((g, w))] += 1
    derived = {"z": derivation.z, **derivation.grads}
    for name, array in derived.items():
        for index in np.ndindex(*array.shape):
            terms = Counter(frozenset(sympy.Mul.make_args(term))
                            for term in sympy.Add.make_args(array[index]) if term != 0)
            if terms != expected[name].get(index, Counter()):
                label = "z" if name == "z" else f"dL/d{name}"
                raise PlanError(f"the kernel-offset slices do not reproduce {label}{list(index)} "
                                f"= {array[index]}")


@functools.lru_cache(maxsize=128)  # a chain and its layer module share one derivation
def conv2d_plan(layer: Conv2d) -> Conv2dPlan:
    """Derive :func:`representative_instance`, read the plan off it, and check it."""
    instance_layer, size = representative_instance(layer)
    # No size limit here: the instance is the smallest that shows every offset, and
    # generate and load checked its size up front (check_generation_size).
    derivation = derive(instance_layer, size, 1, max_terms=math.inf)
    plan = read_conv2d_plan(derivation, layer)
    check_conv2d_plan(plan)
    return plan


# -- stage 3: the strategy and the source ------------------------------------------

def choose_strategy(layer: Conv2d) -> str:
    """The :data:`STRATEGIES` entry a generated module uses for ``layer``.

    ``"pointwise"`` for a 1x1 kernel with stride 1 and no padding; otherwise
    ``"im2col"`` when each group has at most half as many input as output channels,
    else ``"transposed"``.  Every strategy computes the same sums (the tests run each
    on the whole layer grid); this only picks the fastest measured one.
    """
    if layer.kernel_size == (1, 1) and layer.stride == (1, 1) and not any(layer.padding):
        return "pointwise"
    if 2 * layer.group_in_channels <= layer.group_out_channels:
        return "im2col"
    return "transposed"


def forward_reads_x(layer: Conv2d) -> bool:
    """Whether forward gathers its im2col blocks straight from x (strides above 1).

    With a stride above 1, splitting x into its padded phases first is a strided copy of
    all of x that the blocks then copy again; gathering each offset's box straight from x
    into a zeroed buffer copies once (measured faster on the benchmark's C and F).  With
    stride 1 the phase grid is x itself or one padded copy, and many kernel offsets make
    the per-offset boxes' bookkeeping cost more than that copy (A, D).
    """
    return layer.stride != (1, 1)


def conv2d_phases(plan: Conv2dPlan) -> list[tuple[tuple[int, int], list[tuple[int, ...]]]]:
    """The plan's kernel offsets grouped by the phase of the padded input they read.

    Offset ``(m, k)`` with slice start ``(first_row, first_col)`` and steps
    ``(sh, sw)`` reads phase ``(first_row % sh, first_col % sw)`` (the padded rows
    ``a + sh*t``, columns ``b + sw*u``) at rows ``t = i + first_row // sh`` and columns
    ``u = j + first_col // sw``.  Returns ``[((a, b), [(m, k, ra, rb), ...]), ...]``,
    phases and offsets in row-major order.
    """
    row_step, col_step = plan.steps
    phases = defaultdict(list)
    for offset in plan.offsets:
        m, k = offset.kernel_offset
        phase = (offset.first_row % row_step, offset.first_col % col_step)
        phases[phase].append((m, k, offset.first_row // row_step, offset.first_col // col_step))
    return sorted(phases.items())

def _affine(*terms: tuple[int, str]) -> str:
    """``(2, "i"), (1, "m") -> "2*i + m"``, zero coefficients left out."""
    parts = [name if coefficient == 1 else f"{coefficient}*{name}"
             for coefficient, name in terms if coefficient]
    return " + ".join(parts) or "0"


def _groups_text(layer: Conv2d) -> str:
    """``"2 groups of 4 -> 4 channels"`` or ``"16 -> 32 channels"``."""
    channels = f"{layer.group_in_channels} -> {layer.group_out_channels} channels"
    return f"{layer.groups} groups of {channels}" if layer.groups > 1 else channels


def conv2d_context(plan: Conv2dPlan, strategy: str | None = None) -> dict:
    """The values ``templates/conv2d/conv2d.py.j2`` places, for a checked :class:`Conv2dPlan`."""
    layer = plan.layer
    strategy = _check_strategy(layer, strategy)
    phases = conv2d_phases(plan)
    instance = plan.derivation.layer
    row_step, col_step = plan.steps
    row_spacing, col_spacing = plan.offset_spacing
    group = "o" if layer.group_out_channels == 1 else f"(o // {layer.group_out_channels})"
    group_formula = _affine((layer.group_in_channels, group), (1, "c"))
    derived_layer = "this layer"
    if instance != layer:
        derived_layer = (
            f"a narrower version of this layer ({_groups_text(instance)} instead of "
            f"{_groups_text(layer)}; the index rules do not depend on the channel counts)")
    context = dict(
        common_context(layer),
        template="conv2d/conv2d.py.j2",
        **dict(zip(("output_size_code", "output_size_text"), output_size_code(layer))),
        exports=["forward", "backward", "output_size"],
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        groups=layer.groups,
        group_in_channels=layer.group_in_channels,
        group_out_channels=layer.group_out_channels,
        weight_shape=str(layer.weight_shape),
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        dilation=layer.dilation,
        bias=layer.bias,
        channel_index="c" if layer.groups == 1 else "c'",
        group_channel_formula=group_formula,
        row_index=_affine((row_step, "i"), (row_spacing, "m")),
        col_index=_affine((col_step, "j"), (col_spacing, "k")),
        row_step=row_step,
        row_slice=_affine((1, "first_row"), (row_step, "i")),
        col_slice=_affine((1, "first_col"), (col_step, "j")),
        col_step=col_step,
        offsets=[(*offset.kernel_offset, offset.first_row, offset.first_col)
                 for offset in plan.offsets],
        instance_shape="x".join(map(str, plan.derivation.input_shape)),
        derived_layer=derived_layer,
        strategy=strategy,
        reason=STRATEGIES[strategy] if strategy == choose_strategy(layer) else
        f"Chosen by request (the measured choice for this layer is {choose_strategy(layer)}).",
        phases=[phase for phase, _ in phases],
        offset_reads=sorted((m, k, index, ra, rb) for index, (_, members) in enumerate(phases)
                            for m, k, ra, rb in members),
        row_reach=max(ra for _, members in phases for _, _, ra, _ in members),
        col_reach=max(rb for _, members in phases for _, _, _, rb in members),
        chunk_bytes=CHUNK_BYTES,
        min_chunk=MIN_CHUNK,
        forward_from_x=forward_reads_x(layer),
    )
    return context


#: The names of one axis in the generated code: size, its letter, padding before and
#: after, kernel, stride, dilation.
_AXES = (("height", "H", "TOP", "BOTTOM", "KH", "SH", "DH"),
         ("width", "W", "LEFT", "RIGHT", "KW", "SW", "DW"))


def output_size_expression(size, before, after, kernel, stride, dilation):
    """``floor((H + top + bottom - d*(K - 1) - 1) / s) + 1``, the output length, for the
    code and the docstring: the core's :func:`~symbackprop.core.indexing.output_size_formula`
    in the module's names (unevaluated: it prints as written)."""
    return output_size_in((size, before, after, kernel, stride, dilation))


def output_size_code(layer: Conv2d) -> tuple[list[str], list[str]]:
    """``(code, text)``: each axis's output length in the module's names, and with the
    layer's numbers (``H`` and ``W`` free), both printed from :func:`output_size_expression`."""
    code, text = [], []
    for axis, (size, letter, before, after, kernel, stride, dilation) in enumerate(_AXES):
        names = (size, before, after, kernel, stride, dilation)
        expression = output_size_expression(*(sympy.Symbol(name, integer=True) for name in names))
        values = (letter, layer.padding[2 * axis], layer.padding[2 * axis + 1],
                  layer.kernel_size[axis], layer.stride[axis], layer.dilation[axis])
        code.append(numpy_code(expression, as_written=True))
        text.append(numpy_code(expression, as_written=True,
                               names={name: str(value) for name, value in zip(names, values)}))
    return code, text


def _check_strategy(layer: Conv2d, strategy: str | None) -> str:
    if strategy is None:
        return choose_strategy(layer)
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy == "pointwise" and choose_strategy(layer) != "pointwise":
        raise ValueError("strategy 'pointwise' needs a 1x1 kernel, stride 1 and no padding")
    return strategy


def _context(layer: Conv2d, style: str, strategy: str | None) -> dict:
    context = conv2d_context(conv2d_plan(layer), strategy)
    if style == "reference":
        context["template"] = "conv2d/conv2d_reference.py.j2"
    return context


def _chain_shape(number: int, layer: Conv2d, rank: int, channels) -> tuple:
    where = f"layer {number} ({layer.describe()})"
    if rank != 4:
        raise ValueError(f"{where} takes (N, C, H, W) feature maps, but the layer before "
                         f"it gives (N, F); put it before the Flatten/Linear layers")
    if channels is not None and channels != layer.in_channels:
        raise ValueError(f"{where} takes in_channels = {layer.in_channels} channels, "
                         f"but the layer before it gives {channels}")
    lines = [] if channels is not None else [
        f"_expect_channels(shape, {layer.in_channels}, {number})"]
    lines += [f"shape = (shape[0], {layer.out_channels}, "
              f"*_output_size_{number}(shape[2], shape[3]))",
              f"_expect_nonempty(input_shape, shape, {number})"]
    return lines, 4, layer.out_channels


NUMPY.register(Conv2d, NumpyKind(
    context=_context,
    strategies=STRATEGIES,
    instance=_conv2d_instance,
    backward_rule=("; dL/dw{number}{bias}", ", dL/db{number}"),
    chain_shape=_chain_shape,
    input_shape=lambda layer: ("N", layer.in_channels, "H", "W"),
))
