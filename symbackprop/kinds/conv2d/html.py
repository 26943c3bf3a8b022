"""The 2-D convolution on the interactive page: the positions each output reads, and the
step-through of its backward pass (zero insertion, padding, rotation, the sliding
correlation for dL/dx; the padded input against the dilated g for dL/dw; the sum for
dL/db)."""

from __future__ import annotations

import numpy as np

from symbackprop.core import rules
from symbackprop.core.indexing import unread_length
from symbackprop.core.naming import to_grid
from symbackprop.kinds.conv2d.rules import grad_padding
from symbackprop.kinds.conv2d.spec import Conv2d
from symbackprop.render.html import (
    HTML,
    STEP_GRID_LIMIT,
    HtmlParts,
    Step,
    first_map,
    map_label,
    mathml,
    plain_label,
    step_grid,
)


def reads(layer, output_index):
    """``(padded input index, kernel index)`` of every product of ``z[output_index]``."""
    n, o, i, j = output_index
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    cg = layer.group_in_channels
    group = o // layer.group_out_channels
    for c in range(cg):
        for m in range(kh):
            for k in range(kw):
                yield (n, group * cg + c, i * sh + m * dh, j * sw + k * dw), (o, c, m, k)


def general(view, printer, loss) -> tuple[str, str]:
    """``z = corr(pad_p(x), w) + b`` and ``dL/dx = corr(pad_P(dil_s(g)), rot180(w))``."""
    names = view.names
    x, z, g, w = (printer.name(names[key]) for key in ("x", "z", "g", "w"))
    forward = rf"{z} = \operatorname{{corr}}\bigl(\operatorname{{pad}}_p({x}),\ {w}\bigr)" \
        + (f" + {printer.name(names['b'])}" if "b" in view.params else "")
    backward = (rf"\frac{{\partial {loss}}}{{\partial {x}}} = \operatorname{{corr}}\Bigl("
                rf"\operatorname{{pad}}_P\bigl(\operatorname{{dil}}_s({g})\bigr),\ "
                rf"\operatorname{{rot}}_{{180}}({w})\Bigr)")
    return forward, backward


def steps(view, printer, loss, cells):
    """Zero insertion, padding, kernel rotation, the sliding correlation (dL/dx); then
    the padded input correlated with the dilated g (dL/dw); the sum for dL/db."""
    layer = view.layer
    prefix = f"s{view.number}"
    names = view.names
    g, w, x = to_grid(view.g), to_grid(view.params["w"]), to_grid(view.x)
    _, _, height, width = view.input_shape
    _, _, out_h, out_w = view.output_shape
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    padding = grad_padding(layer, (height, width))
    first = (0, 0)
    several = view.output_shape[:2] != (1, 1) or view.input_shape[:2] != (1, 1)
    g_name, w_name, x_name = (printer.name(names[key]) for key in ("g", "w", "x"))
    g_map = map_label(printer, names["g"], first) if several else g_name
    w_map = map_label(printer, names["w"], first) if several else w_name
    dilated = rules.dilate(g, layer.stride)
    padded = rules.pad2d(dilated, padding)
    dilated_map, padded_map = first_map(dilated), first_map(padded)
    if max(padded_map.shape) > STEP_GRID_LIMIT:
        return [Step(title=f"The padded map is {padded_map.shape[0]} x {padded_map.shape[1]}, "
                           f"larger than this page draws; the formula is the rule.")], []
    # Inserted zeros and padding zeros are told apart in the grids.
    inserted = np.zeros(dilated_map.shape, dtype=bool)
    inserted[:, :] = True
    inserted[::sh, ::sw] = False
    top, bottom, left, right = padding
    grids = [
        step_grid(printer, f"{prefix}-g", g_map, first_map(g)),
        step_grid(printer, f"{prefix}-dil", rf"\operatorname{{dil}}_s({g_map})", dilated_map,
              marks_zero="inserted"),
    ]
    padded_kinds = rules.pad2d(np.where(inserted, 2, 1), padding)  # 0 pad, 1 value, 2 inserted
    grids.append(step_grid(printer, f"{prefix}-pad",
                       rf"\operatorname{{pad}}_P\bigl(\operatorname{{dil}}_s({g_map})\bigr)",
                       padded_map, marks_zero="inserted", pad_mask=padded_kinds == 0))
    kernel = first_map(w)
    grids.append(step_grid(printer, f"{prefix}-w", w_map, kernel))
    grids.append(step_grid(printer, f"{prefix}-rot", rf"\operatorname{{rot}}_{{180}}({w_map})",
                       rules.rot180(kernel)))
    steps = [Step(title="Input gradient: start from the upstream gradient"
                        + (" (the first map)." if several else "."), grids=(f"{prefix}-g",))]
    if (sh, sw) == (1, 1):
        words = "Undo the stride: the stride is 1, so nothing is inserted."
    else:
        words = (f"Undo the stride: insert s - 1 zeros between rows ({sh - 1}) and between "
                 f"columns ({sw - 1}).")
    steps.append(Step(title=words, math=mathml(
        rf"s = ({sh}, {sw}):\quad {out_h} \times {out_w} \to "
        rf"{dilated_map.shape[0]} \times {dilated_map.shape[1]}", display=True),
        grids=(f"{prefix}-g", f"{prefix}-dil"),
        marks={f"{prefix}-dil": [(r, c) for r, c in zip(*np.nonzero(inserted))]}))
    # P as the LaTeX document states it: r_h, r_w are the rows and columns the
    # forward pass never reads (the stride's remainder).
    p_top, p_bottom, p_left, p_right = layer.padding
    r_h = unread_length(height, kh, sh, p_top, p_bottom, dh)
    r_w = unread_length(width, kw, sw, p_left, p_right, dw)
    pad_rows = [
        rf"P_{{\text{{top}}}} = d_h(K_H - 1) - p_{{\text{{top}}}} = "
        rf"{dh}\cdot({kh} - 1) - {p_top} = {top}",
        rf"P_{{\text{{bottom}}}} = d_h(K_H - 1) - p_{{\text{{bottom}}}} + r_h = "
        rf"{dh}\cdot({kh} - 1) - {p_bottom} + {r_h} = {bottom}",
        rf"P_{{\text{{left}}}} = d_w(K_W - 1) - p_{{\text{{left}}}} = "
        rf"{dw}\cdot({kw} - 1) - {p_left} = {left}",
        rf"P_{{\text{{right}}}} = d_w(K_W - 1) - p_{{\text{{right}}}} + r_w = "
        rf"{dw}\cdot({kw} - 1) - {p_right} + {r_w} = {right}",
    ]
    steps.append(Step(title="Pad with P zeros on each side (a negative P crops); r_h, r_w are "
                            "the rows and columns the forward pass never read.",
                      math="<br>".join(mathml(row, display=True) for row in pad_rows),
                      grids=(f"{prefix}-dil", f"{prefix}-pad"),
                      marks={f"{prefix}-pad": [(r, c) for r, c in
                                               zip(*np.nonzero(padded_kinds == 0))]}))
    steps.append(Step(title="Rotate the kernel by 180 degrees (flip rows and columns).",
                      math=mathml(rf"\operatorname{{rot}}_{{180}}({w_map})", display=True),
                      grids=(f"{prefix}-w", f"{prefix}-rot")))
    # The sliding correlation, one input position per click.
    for a in range(height):
        for b in range(width):
            window = [(a + m * dh, b + k * dw) for m in range(kh) for k in range(kw)]
            index = (0, 0, a, b)
            label = plain_label(printer, names["x"], index)
            steps.append(Step(
                title=f"Slide: the rotated kernel over the padded map gives dL/d{label} "
                      f"(step {a * width + b + 1} of {height * width}"
                      + ("; every output channel adds its own" if view.output_shape[1] > 1
                         else "") + ").",
                grids=(f"{prefix}-pad", f"{prefix}-rot"),
                marks={f"{prefix}-pad": window,
                       f"{prefix}-rot": [(m, k) for m in range(kh) for k in range(kw)]},
                cell=cells[(names["grad_x"], index, False)].id))
    # dL/dw: the padded input correlated with the stride-dilated g.
    xp = first_map(rules.pad2d(x, layer.padding))
    x_pad = rules.pad2d(np.ones(view.input_shape[2:], dtype=int), layer.padding) == 0
    x_map = map_label(printer, names["x"], first) if several else x_name
    if max(xp.shape) <= STEP_GRID_LIMIT:
        grids.append(step_grid(printer, f"{prefix}-xp", rf"\operatorname{{pad}}_p({x_map})", xp,
                           pad_mask=x_pad))
        steps.append(Step(
            title="Kernel gradient: pad the input, and use the stride-dilated gradient as "
                  "the kernel.",
            math=mathml(rf"\frac{{\partial {loss}}}{{\partial {w_map}}} = "
                        rf"\operatorname{{corr}}\bigl(\operatorname{{pad}}_p({x_map}),\ "
                        rf"\operatorname{{dil}}_s({g_map})\bigr)", display=True),
            grids=(f"{prefix}-xp", f"{prefix}-dil")))
        for m in range(kh):
            for k in range(kw):
                window = [(m * dh + r, k * dw + c) for r in range(dilated_map.shape[0])
                          for c in range(dilated_map.shape[1])]
                steps.append(Step(
                    title=f"Slide: dL/d{plain_label(printer, names['w'], (0, 0, m, k))}: the "
                          f"dilated gradient over the padded input.",
                    grids=(f"{prefix}-xp", f"{prefix}-dil"),
                    marks={f"{prefix}-xp": window},
                    cell=cells[(names["grad_w"], (0, 0, m, k), False)].id))
    if "b" in view.params:
        steps.append(Step(title="Bias gradient: the sum of the upstream gradient.",
                          grids=(f"{prefix}-g",),
                          marks={f"{prefix}-g": [(r, c) for r in range(out_h)
                                                 for c in range(out_w)]},
                          cell=cells[(names["grad_b"], (0,), False)].id))
    return steps, grids


HTML.register(Conv2d, HtmlParts(steps=steps, reads=reads, general=general))
