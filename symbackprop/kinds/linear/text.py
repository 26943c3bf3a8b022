"""The fully connected layer in the terminal printout."""

from __future__ import annotations

import math

from symbackprop.kinds.linear.spec import Linear
from symbackprop.render.text import TEXT, TextParts, rule_text, shape_text


def forward_header(layer, names, input_shape) -> str:
    x = names["x"]
    text = f"{names['z']} = {names['w']} {x}" + (f" + {names['b']}" if "b" in names else "")
    if len(input_shape) > 2:
        text += f", {x} read as {math.prod(input_shape[1:])} features in row-major order"
    return text


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    x, g, dx = names["x"], names["g"], names["dx"]
    summed = " summed over the batch" if output_shape[0] > 1 else ""
    lines = [f"{dx} = {rule_text(layer, names)}" +
             (f", reshaped to {shape_text(input_shape)}" if len(input_shape) > 2 else ""),
             f"{names['dw']} = {g} {x}^T" + summed]
    if "b" in names:
        lines.append(f"{names['db']} = {g}" + summed)
    return lines


TEXT.register(Linear, TextParts(
    forward_header=forward_header, backward_rules=backward_rules, shows_padding=True))
