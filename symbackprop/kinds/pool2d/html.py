"""Max and average pooling on the interactive page: the positions each window reads and
the step-through of the upsample, window by window (2-D; dilation and ceil_mode
included).  A 1-D or 3-D layer's page shows its arrays and formulas without the
step-through, whose grids are 2-D maps."""

from __future__ import annotations

import numpy as np

from symbackprop.core import rules
from symbackprop.core.naming import to_grid
from symbackprop.kinds.pool2d.rules import clipped_divisor, tiles_input
from symbackprop.kinds.pool2d.spec import MAX_POOLS, POOLS
from symbackprop.render.html import (
    HTML,
    STEP_GRID_LIMIT,
    HtmlParts,
    Step,
    first_map,
    general_formulas,
    map_label,
    mathml,
    step_grid,
)


def reads(layer, output_index):
    n, c, i, j = output_index
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    for m in range(kh):
        for k in range(kw):
            yield (n, c, i * sh + dh * m, j * sw + dw * k), None


def _steps(view, printer, loss, cells, maximum: bool):
    """The upsample: window by window, where each g_ij goes (routing or equal share)."""
    layer = view.layer
    prefix = f"s{view.number}"
    names = view.names
    x, g = to_grid(view.x), to_grid(view.g)
    _, _, out_h, out_w = view.output_shape
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    top, _, left, _ = layer.padding
    xp = first_map(rules.pad2d(x, layer.padding))
    if max(xp.shape) > STEP_GRID_LIMIT:
        return [], []
    mask = rules.pad2d(np.ones(view.input_shape[2:], dtype=int), layer.padding) == 0
    several = view.input_shape[:2] != (1, 1)
    x_map = map_label(printer, names["x"], (0, 0)) if several else printer.name(names["x"])
    g_map = map_label(printer, names["g"], (0, 0)) if several else printer.name(names["g"])
    grids = [step_grid(printer, f"{prefix}-g", g_map, first_map(g)),
             step_grid(printer, f"{prefix}-x", x_map, xp, pad_mask=mask,
                   pad_value=HTML[layer].pad_value)]
    rule = ("the whole of it goes to the window's first maximum" if maximum
            else "every element of the window gets an equal share")
    steps = [Step(title=f"Upsample: each upstream gradient goes back to its window; {rule}.",
                  math=general_formulas(view, printer, loss)[1],
                  grids=(f"{prefix}-g", f"{prefix}-x"))]
    for i in range(out_h):
        for j in range(out_w):
            (dh, dw) = layer.dilation
            window = [(i * sh + dh * m, j * sw + dw * k) for m in range(kh) for k in range(kw)
                      if i * sh + dh * m < xp.shape[0] and j * sw + dw * k < xp.shape[1]]
            g_label = printer.label(names["g"], (0, 0, i, j))
            if maximum:
                math = rf"{g_label}\ \to\ \arg\max {printer.label(names['z'], (0, 0, i, j))}"
            else:
                divisor = clipped_divisor(layer, view.input_shape[2:], (i, j))
                math = rf"\frac{{{g_label}}}{{{divisor}}}\ \to\ \text{{each element}}"
            steps.append(Step(title=f"Window {i * out_w + j + 1} of {out_h * out_w}.",
                              math=mathml(math, display=True),
                              grids=(f"{prefix}-g", f"{prefix}-x"),
                              marks={f"{prefix}-g": [(i, j)], f"{prefix}-x": window}))
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


def no_steps(view, printer, loss, cells):
    """A 1-D or 3-D layer: no step-through (its grids would be 2-D maps of the last axes)."""
    return [], []


for _kind in POOLS:
    if _kind in MAX_POOLS:
        HTML.register(_kind, HtmlParts(steps=max_steps if _kind.spatial_dims == 2 else no_steps,
                                       reads=reads if _kind.spatial_dims == 2 else None,
                                       pad_value=r"-\infty"))
    else:
        HTML.register(_kind, HtmlParts(steps=average_steps if _kind.spatial_dims == 2 else no_steps,
                                       reads=reads if _kind.spatial_dims == 2 else None))
