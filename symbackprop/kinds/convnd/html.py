"""The 1-D and 3-D convolutions on the interactive page: every element of x, w, z and the
gradients is a cell whose formula and terms the page shows, and a step-through of the
backward pass written once for any number of spatial axes (the forward window of each
output; zero insertion, padding, the flip and the sliding correlation for dL/dx; the
padded input against the dilated g for dL/dw; the sum for dL/db).

The step grids are 2-D (:func:`~symbackprop.render.html.flat_map`): a 1-D map is one row,
a 3-D volume its depth slices stacked top to bottom, drawn apart.  The padding is written into the
formulas (``0 w``) rather than drawn around the page's input panels, which the page
draws in 2-D only; the step grids show it.
"""

from __future__ import annotations

import math

import numpy as np

from symbackprop.core.naming import to_grid
from symbackprop.kinds.convnd.rules import dilate_nd, flip_nd, grad_padding, pad_nd, unread
from symbackprop.kinds.convnd.spec import Conv1d, Conv3d
from symbackprop.render.html import (
    HTML,
    STEP_GRID_LIMIT,
    HtmlParts,
    Step,
    flat_map,
    flat_position,
    map_label,
    mathml,
    plain_label,
    slice_rows,
    step_grid,
)


def positions(shape):
    """Every spatial position of ``shape``, row-major."""
    return list(np.ndindex(*shape))


def steps(view, printer, loss, cells):
    """The forward windows, then dL/dx, dL/dw and dL/db of the first map, for N axes."""
    layer = view.layer
    axes = len(layer.kernel_size)
    prefix = f"s{view.number}"
    names = view.names
    kernel, stride, dilation = layer.kernel_size, layer.stride, layer.dilation
    sizes, out_sizes = view.input_shape[2:], view.output_shape[2:]
    g, w, x = (to_grid(array)[0, 0] for array in (view.g, view.params["w"], view.x))
    dilated = dilate_nd(g, stride)
    pairs = grad_padding(layer, sizes)
    padded = pad_nd(dilated, pairs)
    xp = pad_nd(x, layer.padding_pairs)
    if max(padded.shape + xp.shape) > STEP_GRID_LIMIT or \
            math.prod(padded.shape[:-1]) > 4 * STEP_GRID_LIMIT:
        return [Step(title="The padded maps are larger than this page draws; the formulas "
                           "are the rule.")], []
    several = view.output_shape[:2] != (1, 1) or view.input_shape[:2] != (1, 1)
    first = (0, 0)
    g_map, w_map, x_map = (map_label(printer, names[key], first) if several
                           else printer.name(names[key]) for key in ("g", "w", "x"))
    stacked = " (depth slices stacked top to bottom)" if axes > 1 else ""

    def at(shape, places):
        return [flat_position(place, shape) for place in places]

    inserted = np.ones(dilated.shape, dtype=int) * 2  # 0 pad, 1 value, 2 inserted
    inserted[tuple(slice(None, None, s) for s in stride)] = 1
    padded_kinds = pad_nd(inserted, pairs)
    x_kinds = pad_nd(np.ones(sizes, dtype=int), layer.padding_pairs)
    grids = [
        step_grid(printer, f"{prefix}-xp", rf"\operatorname{{pad}}_p({x_map})", flat_map(xp),
                  pad_mask=flat_map(x_kinds == 0), slice_rows=slice_rows(xp.shape)),
        step_grid(printer, f"{prefix}-w", w_map, flat_map(w), slice_rows=slice_rows(kernel)),
        step_grid(printer, f"{prefix}-g", g_map, flat_map(g), slice_rows=slice_rows(out_sizes)),
        step_grid(printer, f"{prefix}-dil", rf"\operatorname{{dil}}_s({g_map})",
                  flat_map(dilated), marks_zero="inserted",
                  slice_rows=slice_rows(dilated.shape)),
        step_grid(printer, f"{prefix}-pad",
                  rf"\operatorname{{pad}}_P\bigl(\operatorname{{dil}}_s({g_map})\bigr)",
                  flat_map(padded), marks_zero="inserted", pad_mask=flat_map(padded_kinds == 0),
                  slice_rows=slice_rows(padded.shape)),
        step_grid(printer, f"{prefix}-rot", rf"\operatorname{{flip}}({w_map})",
                  flat_map(flip_nd(w, axes)), slice_rows=slice_rows(kernel)),
    ]
    bias = "b" in view.params
    if bias:  # the first output channel's bias, added to every output of its map
        b_name = printer.label(names["b"], (0,)) if several else printer.name(names["b"])
        grids.append(step_grid(printer, f"{prefix}-b", b_name,
                               np.array([[to_grid(view.params["b"])[0]]], dtype=object)))
    kernel_places = positions(kernel)
    out = []
    # Forward: the window of the padded input each output reads.
    for number, place in enumerate(positions(out_sizes)):
        window = [tuple(i * s + m * d for i, s, m, d in zip(place, stride, offset, dilation))
                  for offset in kernel_places]
        index = (0, 0, *place)
        reading = [offset for offset, spot in zip(kernel_places, window)
                   if x_kinds[spot] == 1]  # a kernel element over padding adds 0 w
        out.append(Step(
            title=f"Forward: {plain_label(printer, names['z'], index)} reads this window of "
                  f"the padded input{stacked} (output {number + 1} of {math.prod(out_sizes)}"
                  + ("; every input channel of the group adds its own" if
                     layer.group_in_channels > 1 else "") + ").",
            grids=(f"{prefix}-xp", f"{prefix}-w") + ((f"{prefix}-b",) if bias else ()),
            marks={f"{prefix}-xp": at(xp.shape, window),
                   f"{prefix}-w": at(kernel, reading),
                   **({f"{prefix}-b": [(0, 0)]} if bias else {})},
            cell=cells[(names["z"], index, False)].id))
    out.append(Step(title="Input gradient: start from the upstream gradient"
                          + (" (the first map)." if several else "."), grids=(f"{prefix}-g",)))
    if all(s == 1 for s in stride):
        words = "Undo the stride: the stride is 1, so nothing is inserted."
    else:
        words = ("Undo the stride: insert s - 1 zeros between neighbours along every axis ("
                 + ", ".join(str(s - 1) for s in stride) + ").")
    shape_text = r" \times ".join(map(str, out_sizes))
    dilated_text = r" \times ".join(map(str, dilated.shape))
    out.append(Step(title=words, math=mathml(
        rf"s = ({', '.join(map(str, stride))}):\quad {shape_text} \to {dilated_text}",
        display=True), grids=(f"{prefix}-g", f"{prefix}-dil"),
        marks={f"{prefix}-dil": at(dilated.shape, zip(*np.nonzero(inserted == 2)))}))
    rows = []
    for axis, ((begin, end), k, d, (p_begin, p_end), r) in enumerate(zip(
            pairs, kernel, dilation, layer.padding_pairs, unread(layer, sizes))):
        a = layer.axis_names[axis]
        rows.append(rf"P_{{{a}}} = \bigl(d(K-1) - p_{{\text{{begin}}}},\ d(K-1) - "
                    rf"p_{{\text{{end}}}} + r\bigr) = ({d}\cdot({k}-1) - {p_begin},\ "
                    rf"{d}\cdot({k}-1) - {p_end} + {r}) = ({begin}, {end})")
    out.append(Step(title="Pad with P zeros at both ends of every axis (a negative P crops); "
                          "r counts the positions the forward pass never read.",
                    math="<br>".join(mathml(row, display=True) for row in rows),
                    grids=(f"{prefix}-dil", f"{prefix}-pad"),
                    marks={f"{prefix}-pad": at(padded.shape,
                                               zip(*np.nonzero(padded_kinds == 0)))}))
    out.append(Step(title="Flip the kernel along every axis (rot180 in 2-D).",
                    math=mathml(rf"\operatorname{{flip}}({w_map})", display=True),
                    grids=(f"{prefix}-w", f"{prefix}-rot")))
    places = positions(sizes)
    for number, place in enumerate(places):
        window = [tuple(a + m * d for a, m, d in zip(place, offset, dilation))
                  for offset in kernel_places]
        index = (0, 0, *place)
        # the flipped kernel's elements that meet a value of g (not a zero)
        meeting = [offset for offset, spot in zip(kernel_places, window)
                   if padded_kinds[spot] == 1]
        out.append(Step(
            title=f"Slide: the flipped kernel over the padded map gives "
                  f"dL/d{plain_label(printer, names['x'], index)} (step {number + 1} of "
                  f"{len(places)}" + ("; every output channel adds its own"
                                      if view.output_shape[1] > 1 else "") + ").",
            grids=(f"{prefix}-pad", f"{prefix}-rot"),
            marks={f"{prefix}-pad": at(padded.shape, window),
                   f"{prefix}-rot": at(kernel, meeting)},
            cell=cells[(names["grad_x"], index, False)].id))
    out.append(Step(
        title="Kernel gradient: pad the input, and use the stride-dilated gradient as the "
              "kernel.",
        math=mathml(rf"\frac{{\partial {loss}}}{{\partial {w_map}}} = "
                    rf"\operatorname{{corr}}\bigl(\operatorname{{pad}}_p({x_map}),\ "
                    rf"\operatorname{{dil}}_s({g_map})\bigr)", display=True),
        grids=(f"{prefix}-xp", f"{prefix}-dil")))
    dilated_places = positions(dilated.shape)
    for place in kernel_places:
        window = [tuple(m * d + r for m, d, r in zip(place, dilation, offset))
                  for offset in dilated_places]
        # the products x g whose factors are both values: neither padding nor an
        # inserted zero
        pairs_read = [(spot, offset) for spot, offset in zip(window, dilated_places)
                      if x_kinds[spot] == 1 and inserted[offset] == 1]
        index = (0, 0, *place)
        out.append(Step(
            title=f"Slide: dL/d{plain_label(printer, names['w'], index)}: the dilated "
                  f"gradient over the padded input.",
            grids=(f"{prefix}-xp", f"{prefix}-dil"),
            marks={f"{prefix}-xp": at(xp.shape, [spot for spot, _ in pairs_read]),
                   f"{prefix}-dil": at(dilated.shape, [offset for _, offset in pairs_read])},
            cell=cells[(names["grad_w"], index, False)].id))
    if bias:
        out.append(Step(title="Bias gradient: the sum of the upstream gradient.",
                        grids=(f"{prefix}-g",),
                        marks={f"{prefix}-g": at(out_sizes, positions(out_sizes))},
                        cell=cells[(names["grad_b"], (0,), False)].id))
    return out, grids


for _layer_type in (Conv1d, Conv3d):
    HTML.register(_layer_type, HtmlParts(steps=steps))
