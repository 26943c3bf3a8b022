"""Expand nearest-neighbour upsampling: ``z[n, c, i, j] = x[n, c, i // sh, j // sw]``.
"""

from __future__ import annotations

import numpy as np

from symbackprop.core.expand import EXPAND, Forward, elementwise_forward
from symbackprop.core.naming import symbol_grid
from symbackprop.kinds.upsample.spec import Upsample


@EXPAND.register(Upsample)
def _upsample(layer, input_shape) -> Forward:
    x = symbol_grid("x", input_shape)
    g = symbol_grid("g", layer.output_shape_for(input_shape))
    sh, sw = layer.scale_factor
    # every element copied into its sh x sw block
    z = np.repeat(np.repeat(x, sh, axis=2), sw, axis=3)
    return elementwise_forward(x, {}, g, z)
