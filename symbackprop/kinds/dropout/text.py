"""Dropout in the terminal printout."""

from __future__ import annotations

from symbackprop.kinds.dropout.spec import Dropout
from symbackprop.render.text import TEXT, TextParts


def _scale(layer) -> str:
    scale = layer.scale
    return str(scale.numerator) if scale.denominator == 1 else \
        f"{scale.numerator}/{scale.denominator}"


def forward_header(layer, names, input_shape) -> str:
    return (f"{names['z']} = {names['x']} * m / (1 - p) elementwise, m the keep-mask (1 keeps, "
            f"0 drops; given, not differentiated), p = {layer.p:g}, 1/(1 - p) = {_scale(layer)}")


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    return [f"{names['dx']} = {names['g']} * m / (1 - p) elementwise: the same mask and the "
            f"same scale {_scale(layer)} as the forward pass"]


TEXT.register(Dropout, TextParts(forward_header=forward_header, backward_rules=backward_rules))
