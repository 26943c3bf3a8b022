"""Max and average pooling on the interactive page: the positions each window reads and
the step-through of the upsample, window by window, written once for 1, 2 and 3 spatial
axes (dilation and ceil_mode included).

The step grids are 2-D (:func:`~symbackprop.render.html.flat_map`): a 1-D map is one row,
a 3-D volume its depth slices stacked top to bottom, drawn apart; a 2-D map as it is.  A 1-D or 3-D
page also walks through the forward windows (each output's cell and the elements it
reads) and, element by element, the windows each input element's gradient collects
from; a 2-D page keeps its frames (the upsample, window by window).
"""

from __future__ import annotations

import math

import numpy as np

from symbackprop.core.naming import to_grid
from symbackprop.kinds.pool2d.rules import clipped_divisor, tiles_input
from symbackprop.kinds.pool2d.spec import MAX_POOLS, POOLS
from symbackprop.render.html import (
    HTML,
    STEP_GRID_LIMIT,
    HtmlParts,
    Step,
    flat_map,
    flat_position,
    general_formulas,
    map_label,
    mathml,
    plain_label,
    slice_rows,
    step_grid,
)


def reads(layer, output_index):
    n, c, i, j = output_index
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    for m in range(kh):
        for k in range(kw):
            yield (n, c, i * sh + dh * m, j * sw + dw * k), None


def _window(layer, place, padded_shape) -> list:
    """The positions of the padded input the window of output ``place`` reads (a window
    that runs past the padded input under ceil_mode reads nothing there)."""
    offsets = np.ndindex(*layer.kernel_size)
    spots = [tuple(i * s + d * m for i, s, d, m in zip(place, layer.stride, layer.dilation,
                                                        offset)) for offset in offsets]
    return [spot for spot in spots if all(a < n for a, n in zip(spot, padded_shape))]


def _steps(view, printer, loss, cells, maximum: bool):
    """The upsample: window by window, where each upstream gradient goes (routing or equal
    share); on a 1-D or 3-D page also the forward windows and each dL/dx element."""
    layer = view.layer
    axes = layer.spatial_dims
    prefix = f"s{view.number}"
    names = view.names
    sizes, out_sizes = view.input_shape[2:], view.output_shape[2:]
    x, g = to_grid(view.x)[0, 0], to_grid(view.g)[0, 0]
    pairs = list(zip(layer.padding[::2], layer.padding[1::2]))
    xp = np.pad(x, pairs, mode="constant", constant_values=0)
    inside = np.pad(np.ones(sizes, dtype=bool), pairs, mode="constant", constant_values=False)
    if max(xp.shape) > STEP_GRID_LIMIT or math.prod(xp.shape[:-1]) > 4 * STEP_GRID_LIMIT:
        return [], []
    several = view.input_shape[:2] != (1, 1)
    x_map = map_label(printer, names["x"], (0, 0)) if several else printer.name(names["x"])
    g_map = map_label(printer, names["g"], (0, 0)) if several else printer.name(names["g"])
    grids = [step_grid(printer, f"{prefix}-g", g_map, flat_map(g),
                       slice_rows=slice_rows(out_sizes)),
             step_grid(printer, f"{prefix}-x", x_map, flat_map(xp), pad_mask=flat_map(~inside),
                       pad_value=HTML[layer].pad_value, slice_rows=slice_rows(xp.shape))]
    stacked = " (depth slices stacked top to bottom)" if axes == 3 else ""
    out_places = list(np.ndindex(*out_sizes))
    windows = {place: _window(layer, place, xp.shape) for place in out_places}

    def x_marks(spots):
        return [flat_position(spot, xp.shape) for spot in spots]

    def g_marks(places):
        return [flat_position(place, out_sizes) for place in places]

    steps = []
    if axes != 2:
        for number, place in enumerate(out_places, 1):
            index = (0, 0, *place)
            steps.append(Step(
                title=f"Forward: {plain_label(printer, names['z'], index)} is the "
                      f"{'largest' if maximum else 'mean'} of its window{stacked} "
                      f"(output {number} of {len(out_places)}).",
                grids=(f"{prefix}-x",),
                marks={f"{prefix}-x": x_marks(windows[place])},
                cell=cells[(names["z"], index, False)].id))
    rule = ("the whole of it goes to the window's first maximum" if maximum
            else "every element of the window gets an equal share")
    steps.append(Step(title=f"Upsample: each upstream gradient goes back to its window; "
                            f"{rule}.",
                      math=general_formulas(view, printer, loss)[1],
                      grids=(f"{prefix}-g", f"{prefix}-x")))
    for number, place in enumerate(out_places, 1):
        index = (0, 0, *place)
        g_label = printer.label(names["g"], index)
        if maximum:
            math_text = rf"{g_label}\ \to\ \arg\max {printer.label(names['z'], index)}"
        else:
            divisor = clipped_divisor(layer, sizes, place)
            math_text = rf"\frac{{{g_label}}}{{{divisor}}}\ \to\ \text{{each element}}"
        steps.append(Step(title=f"Window {number} of {len(out_places)}.",
                          math=mathml(math_text, display=True),
                          grids=(f"{prefix}-g", f"{prefix}-x"),
                          marks={f"{prefix}-g": g_marks([place]),
                                 f"{prefix}-x": x_marks(windows[place])}))
    if axes != 2:
        # Each input element collects from the windows that read it: their g (and, for
        # the maximum, the window's elements it is compared with).
        for number, place in enumerate(np.ndindex(*sizes), 1):
            spot = tuple(a + before for a, (before, _) in zip(place, pairs))
            holding = [out for out in out_places if spot in windows[out]]
            read = sorted({s for out in holding for s in windows[out] if inside[s]})
            index = (0, 0, *place)
            marks = {f"{prefix}-g": g_marks(holding)}
            marks[f"{prefix}-x"] = x_marks(read if maximum else [spot])
            words = ("what each window it wins sends it" if maximum else
                     "its share of each window that reads it")
            steps.append(Step(
                title=f"Collect: dL/d{plain_label(printer, names['x'], index)} adds {words} "
                      f"(element {number} of {math.prod(sizes)}; "
                      f"{len(holding)} window{'s' if len(holding) != 1 else ''}).",
                grids=(f"{prefix}-g", f"{prefix}-x"), marks=marks,
                cell=cells[(names["grad_x"], index, False)].id))
    x_name, g_name = printer.name(names["x"]), printer.name(names["g"])
    if maximum:
        steps.append(Step(
            title="A tie goes to the first maximum in row-major order, and padding never "
                  "wins; an element in several windows adds what each sends it.",
            math=general_formulas(view, printer, loss)[1],
            grids=(f"{prefix}-g", f"{prefix}-x")))
    elif tiles_input(layer):
        # The windows tile the input: the upsample is a Kronecker product (proven in
        # symbackprop.core.rules.prove_kron), as the LaTeX document states it.
        kh, kw = layer.kernel_size
        steps.append(Step(
            title="The windows tile the input: all of them at once are a Kronecker product"
                  + (", zero-filled past the last window." if view.input_shape[2] % kh
                     or view.input_shape[3] % kw else "."),
            math=mathml(rf"\frac{{\partial {loss}}}{{\partial {x_name}}} = \frac{{1}}"
                        rf"{{{kh * kw}}}\, {g_name} \otimes \mathbf{{1}}_{{{kh}\times{kw}}}",
                        display=True),
            grids=(f"{prefix}-g", f"{prefix}-x")))
    return steps, grids


def max_steps(view, printer, loss, cells):
    return _steps(view, printer, loss, cells, maximum=True)


def average_steps(view, printer, loss, cells):
    return _steps(view, printer, loss, cells, maximum=False)


for _kind in POOLS:
    # the page draws padding around the input panel in 2-D only
    _reads = reads if _kind.spatial_dims == 2 else None
    if _kind in MAX_POOLS:
        HTML.register(_kind, HtmlParts(steps=max_steps, reads=_reads, pad_value=r"-\infty"))
    else:
        HTML.register(_kind, HtmlParts(steps=average_steps, reads=_reads))
