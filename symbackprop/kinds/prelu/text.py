"""PReLU in the terminal printout."""

from __future__ import annotations

from symbackprop.kinds.prelu.spec import PReLU
from symbackprop.render.text import TEXT, TextParts


def _which(layer) -> str:
    return "one slope w for every element" if layer.num_parameters == 1 else \
        "w_c the slope of channel c"


def forward_header(layer, names, input_shape) -> str:
    return (f"{names['z']} = {names['x']} if {names['x']} > 0 else {names['w']} {names['x']}, "
            f"{_which(layer)} (learned)")


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    x, g = names["x"], names["g"]
    over = "every element" if layer.num_parameters == 1 else \
        "the batch and every position of channel c"
    w = names["w"]
    return [f"{names['dx']} = {g} if {x} > 0 else {w} {g} ({w} at {x} = 0, as PyTorch)",
            f"{names['dw']} = sum of {g} {x} where {x} <= 0, over {over}"]


TEXT.register(PReLU, TextParts(forward_header=forward_header, backward_rules=backward_rules))
