"""Flatten in the terminal printout."""

from __future__ import annotations

from symbackprop.kinds.flatten.spec import Flatten
from symbackprop.render.text import TEXT, TextParts, shape_text

TEXT.register(Flatten, TextParts(
    forward_header=lambda layer, names, input_shape:
        f"{names['z']} = {names['x']} flattened in row-major order "
        f"(feature f = (c*H + h)*W + w)",
    backward_rules=lambda layer, names, input_shape, output_shape:
        [f"{names['dx']} = {names['g']} reshaped to {shape_text(input_shape)}"],
))
