"""Shared test configuration: hypothesis profiles and the grid of layers.

``HYPOTHESIS_PROFILE=thorough`` (or ``--hypothesis-profile=thorough``) runs the
long property tests; the default ``quick`` profile keeps the suite short.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py

settings.register_profile("quick", max_examples=15, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

REPO = Path(__file__).resolve().parent.parent

# (id, Conv2d keyword arguments, input (H, W), batch).  Defined once; used by the
# symbolic, closed-form and generated-code tests.  It covers stride 1-3, asymmetric
# padding, dilation, groups, rectangular kernels and strides that do not divide the
# padded input evenly.
CONV_GRID = [
    ("worked-example", dict(kernel_size=2, padding=1), (3, 3), 1),
    ("valid-3x3", dict(kernel_size=3), (5, 5), 1),
    ("stride2-uneven", dict(kernel_size=3, stride=2), (6, 6), 1),
    ("stride3-uneven-pad", dict(kernel_size=2, stride=3, padding=1), (7, 5), 1),
    ("asymmetric-padding", dict(kernel_size=(2, 3), padding=(0, 1, 2, 1)), (4, 3), 1),
    ("rect-kernel-rect-stride", dict(kernel_size=(3, 1), stride=(1, 2)), (5, 4), 1),
    ("dilation2", dict(kernel_size=2, dilation=2, padding=1), (5, 4), 1),
    ("dilation-stride", dict(kernel_size=2, dilation=(2, 3), stride=2), (6, 7), 1),
    ("channels", dict(in_channels=2, out_channels=3, kernel_size=2), (3, 3), 2),
    ("groups", dict(in_channels=4, out_channels=2, groups=2, kernel_size=2, stride=2),
     (5, 4), 1),
    ("depthwise-no-bias", dict(in_channels=2, out_channels=2, groups=2, kernel_size=3,
                               padding=1, bias=False), (3, 4), 1),
    ("1x1", dict(in_channels=3, out_channels=2, kernel_size=1), (2, 3), 1),
]


@pytest.fixture(params=CONV_GRID, ids=[case[0] for case in CONV_GRID])
def conv_case(request):
    """One grid entry as ``(Conv2d, input_size, batch)``."""
    from symbackprop import Conv2d

    _, kwargs, input_size, batch = request.param
    return Conv2d(**kwargs), input_size, batch


def evaluate(expressions, values: dict):
    """Evaluate a SymPy array of element-symbol expressions numerically.

    ``values`` maps array names (``"x"``, ``"w"``, ``"b"``, ``"g"``) to NumPy arrays;
    each symbol ``x[n,c,i,j]`` takes ``values["x"][n, c, i, j]``.
    """
    import numpy as np
    import sympy

    from symbackprop.naming import parse_element

    flat = sympy.flatten(expressions.tolist()) if hasattr(expressions, "tolist") \
        else [expressions]
    symbols = sorted(set().union(*(sympy.sympify(e).free_symbols for e in flat)), key=str)
    arguments = []
    for symbol in symbols:
        array, index = parse_element(symbol)
        arguments.append(values[array][index])
    function = sympy.lambdify(symbols, flat, modules="numpy")
    result = np.array(function(*arguments), dtype=float)
    return result.reshape(expressions.shape if hasattr(expressions, "shape") else ())
