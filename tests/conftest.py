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

    from symbackprop.core.naming import parse_element

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


# Pooling, activation, flatten and fully connected layers, each as
# (id, JSON-style spec, input_size, batch): overlapping and gapped windows, odd
# sizes, padding in both average-pooling modes, several channels.
LAYER_GRID = [
    ("maxpool-tiled", {"layer": "maxpool2d", "kernel_size": 2}, (4, 4), 1),
    ("maxpool-overlap-odd", {"layer": "maxpool2d", "kernel_size": 3, "stride": 1}, (4, 5), 1),
    ("maxpool-gaps", {"layer": "maxpool2d", "kernel_size": 2, "stride": 3}, (5, 7), 1),
    ("maxpool-pad-channels", {"layer": "maxpool2d", "kernel_size": 3, "stride": 2,
                              "padding": 1}, (2, 5, 5), 2),
    ("maxpool-rect", {"layer": "maxpool2d", "kernel_size": [2, 3], "stride": [1, 2]}, (3, 5), 1),
    ("avgpool-tiled-odd", {"layer": "avgpool2d", "kernel_size": 2}, (5, 5), 1),
    ("avgpool-overlap", {"layer": "avgpool2d", "kernel_size": 3, "stride": 2}, (5, 6), 1),
    ("avgpool-pad-include", {"layer": "avgpool2d", "kernel_size": 3, "stride": 2,
                             "padding": 1}, (4, 5), 1),
    ("avgpool-pad-exclude", {"layer": "avgpool2d", "kernel_size": 3, "stride": 2, "padding": 1,
                             "count_include_pad": False}, (2, 4, 5), 2),
    ("avgpool-gaps-pad-exclude", {"layer": "avgpool2d", "kernel_size": 2, "stride": 3,
                                  "padding": 1, "count_include_pad": False}, (5, 5), 1),
    ("relu", {"layer": "relu"}, (2, 3, 3), 1),
    ("leakyrelu", {"layer": "leakyrelu", "negative_slope": 0.2}, (3, 3), 2),
    ("sigmoid", {"layer": "sigmoid"}, (2, 3), 1),
    ("tanh-features", {"layer": "tanh"}, (5,), 2),
    ("softplus", {"layer": "softplus", "beta": 2.0, "threshold": 1.5}, (2, 3), 2),
    ("flatten", {"layer": "flatten"}, (2, 2, 3), 2),
    ("linear", {"layer": "linear", "in_features": 5, "out_features": 3}, None, 2),
    ("linear-no-bias", {"layer": "linear", "in_features": 4, "out_features": 2, "bias": False},
     4, 1),
    ("linear-feature-maps", {"layer": "linear", "in_features": 8, "out_features": 2},
     (2, 2, 2), 1),
]

# Chains of 3-6 layers as (id, [layer specs], input_size, batch).
CHAIN_GRID = [
    ("conv-relu-pool-linear", [
        {"layer": "conv2d", "out_channels": 2, "kernel_size": 3},
        {"layer": "relu"},
        {"layer": "maxpool2d", "kernel_size": 2},
        {"layer": "linear", "in_features": 8, "out_features": 3},
    ], (6, 6), 1),
    ("conv-relu-pool-flatten-linear-batch", [
        {"layer": "conv2d", "out_channels": 2, "kernel_size": 2},
        {"layer": "relu"},
        {"layer": "maxpool2d", "kernel_size": 2},
        {"layer": "flatten"},
        {"layer": "linear", "in_features": 8, "out_features": 2},
    ], (5, 5), 2),
    ("mlp", [
        {"layer": "linear", "in_features": 4, "out_features": 3},
        {"layer": "sigmoid"},
        {"layer": "linear", "in_features": 3, "out_features": 2},
    ], 4, 2),
    ("six-layers", [
        {"layer": "conv2d", "out_channels": 2, "kernel_size": 2, "padding": 1},
        {"layer": "leakyrelu", "negative_slope": 0.1},
        {"layer": "avgpool2d", "kernel_size": 3, "stride": 2, "padding": 1,
         "count_include_pad": False},
        {"layer": "conv2d", "in_channels": 2, "out_channels": 1, "kernel_size": 2},
        {"layer": "tanh"},
        {"layer": "linear", "in_features": 4, "out_features": 2},
    ], (5, 5), 1),
    ("overlapping-pool-chain", [
        {"layer": "conv2d", "kernel_size": 2},
        {"layer": "relu"},
        {"layer": "maxpool2d", "kernel_size": 3, "stride": 1, "padding": 1},
        {"layer": "sigmoid"},
        {"layer": "flatten"},
        {"layer": "linear", "in_features": 9, "out_features": 1, "bias": False},
    ], (4, 4), 1),
]


@pytest.fixture(params=LAYER_GRID, ids=[case[0] for case in LAYER_GRID])
def layer_case(request):
    """One entry of LAYER_GRID as ``(layer, input_size, batch)``."""
    from symbackprop.core.layers import layer_from_spec

    _, spec, input_size, batch = request.param
    return layer_from_spec(spec), input_size, batch


@pytest.fixture(params=CHAIN_GRID, ids=[case[0] for case in CHAIN_GRID])
def chain_case(request):
    """One entry of CHAIN_GRID as ``(Sequential, input_size, batch)``."""
    from symbackprop.core.layers import Sequential

    _, specs, input_size, batch = request.param
    return Sequential.from_spec(specs), input_size, batch
