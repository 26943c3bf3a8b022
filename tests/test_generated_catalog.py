"""The committed catalog in generated/: fresh, complete, importable, correct, lint-clean.

When a test here fails because a file differs, regenerate the catalog with
``python -m symbackprop.catalog`` (and review the diff before committing it).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from conftest import REPO
from ruff_check import ruff_problems_in_files

from symbackprop import Conv1d, Conv2d, Conv3d, MaxPool2d
from symbackprop.catalog import CATALOG, INDEX_NAME, REGENERATE_COMMAND, catalog_files, main
from symbackprop.core.layers import Sequential

FOLDER = REPO / "generated"
MODULES = [name for entry in CATALOG for _, name in entry.files()]
NAMES = sorted([*MODULES, INDEX_NAME])  # what the catalog writes, known without generating


@pytest.fixture(scope="module")
def files():
    """What the generator writes today, name -> text (generated once, not at import)."""
    return catalog_files()
CONV_ENTRIES = [entry for entry in CATALOG if isinstance(entry.layer, Conv2d)]


def test_catalog_names_are_what_it_writes(files):
    assert sorted(files) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_file_is_what_the_generator_writes_today(name, files):
    path = FOLDER / name
    assert path.is_file(), f"{path} is missing; run {REGENERATE_COMMAND}"
    assert path.read_text(encoding="utf-8") == files[name], \
        f"{path} differs from what the generator writes today; run {REGENERATE_COMMAND}"


def test_catalog_covers_the_useful_layers():
    assert len(set(entry.layer for entry in CATALOG)) == len(CATALOG)
    assert len(set(MODULES)) == len(MODULES)
    both = [entry.layer for entry in CATALOG if "reference" in entry.styles]
    assert Conv2d(kernel_size=2, padding=1) in both  # the worked example, in both styles
    assert any(isinstance(layer, Conv2d) and layer.stride == (2, 2) for layer in both)
    assert any(isinstance(layer, MaxPool2d) for layer in both)
    assert any(isinstance(layer, Sequential) for layer in both)
    layers = [entry.layer for entry in CONV_ENTRIES]
    assert len(layers) >= 10
    kinds = {
        "worked example": lambda layer: layer == Conv2d(kernel_size=2, padding=1),
        "3x3 same": lambda layer: layer.kernel_size == (3, 3) and layer.padding == (1,) * 4 and
        layer.stride == (1, 1) and layer.groups == 1,
        "3x3 stride 2": lambda layer: layer.kernel_size == (3, 3) and layer.stride == (2, 2),
        "1x1": lambda layer: layer.kernel_size == (1, 1),
        "5x5": lambda layer: layer.kernel_size == (5, 5),
        "dilated": lambda layer: layer.dilation != (1, 1),
        "depthwise": lambda layer: layer.groups == layer.in_channels == layer.out_channels > 1,
        "grouped": lambda layer: 1 < layer.groups < layer.in_channels,
        "asymmetric padding": lambda layer: layer.padding[0] != layer.padding[1],
        "rectangular kernel": lambda layer: layer.kernel_size[0] != layer.kernel_size[1],
        "no bias": lambda layer: not layer.bias,
    }
    missing = [kind for kind, test in kinds.items() if not any(map(test, layers))]
    assert missing == []


def test_index_lists_every_module():
    index = (FOLDER / INDEX_NAME).read_text(encoding="utf-8")
    assert REGENERATE_COMMAND in index
    for entry in CATALOG:
        for style, name in entry.files():
            use = entry.use if style == "fast" else \
                "array-api target" if style == "array-api" else "reference style"
            assert f"| [`{name}`]({name}) | {entry.layer.describe()} | {use}" in index


def test_check_command_reports_stale_files(tmp_path, capsys, files):
    assert main(["--output", str(FOLDER), "--check"]) == 0
    assert main(["--output", str(tmp_path), "--check"]) == 1
    assert len(capsys.readouterr().out.splitlines()) == len(files)
    assert main(["--output", str(tmp_path)]) == 0
    assert main(["--output", str(tmp_path), "--check"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(files)


def _import(name):
    spec = importlib.util.spec_from_file_location(name[:-3], FOLDER / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONV_FILES = [(entry.layer, name) for entry in CONV_ENTRIES for _, name in entry.files()]


@pytest.mark.parametrize("layer, name", CONV_FILES, ids=[name for _, name in CONV_FILES])
def test_committed_module_matches_reference(layer, name):
    """Import the committed file itself and compare it with the im2col reference."""
    from reference import conv2d_backward, conv2d_forward

    module = _import(name)
    rng = np.random.default_rng(0)
    in_channels = layer.in_channels
    extent = [layer.dilation[a] * (layer.kernel_size[a] - 1) + 1 for a in (0, 1)]
    size = (max(extent[0], 4) + 1, max(extent[1], 4) + 2)
    x = rng.standard_normal((2, in_channels, *size)).astype(np.float32)
    w = rng.standard_normal(layer.weight_shape).astype(np.float32)
    b = rng.standard_normal(layer.out_channels).astype(np.float32) if layer.bias else None
    params = (w, b) if layer.bias else (w,)
    options = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups)
    want_z = conv2d_forward(x, w, b, **options)
    grad_out = rng.standard_normal(want_z.shape).astype(np.float32)
    want = conv2d_backward(x, w, b, grad_out, **options)[: 1 + len(params)]
    z = module.forward(x, *params)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, want_z, rtol=1e-3, atol=1e-3)
    for got, expected in zip(module.backward(x, *params, grad_out), want, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


def test_committed_modules_are_ruff_clean():
    assert ruff_problems_in_files(FOLDER / name for name in MODULES) == ""


OTHER_REFERENCE_FILES = [(entry.layer, name) for entry in CATALOG
                         if not isinstance(entry.layer, (Conv1d, Conv2d, Conv3d))
                         for style, name in entry.files() if style == "reference"]


@pytest.mark.parametrize("layer, name", OTHER_REFERENCE_FILES,
                         ids=[name for _, name in OTHER_REFERENCE_FILES])
def test_committed_reference_modules_match_the_loops(layer, name):
    """The committed reference-style pooling and chain modules against tests/layer_reference.py."""
    import layer_reference

    module = _import(name)
    rng = np.random.default_rng(5)
    layers = layer.layers if isinstance(layer, Sequential) else (layer,)
    params = [layer_reference.random_parameters(part, rng) for part in layers]
    flat = [value for part in params for value in part.values()]
    size = (7, 6)[:getattr(layer, "spatial_dims", 2)]
    if getattr(layer, "spatial_dims", 2) == 3:  # a volume: depth, height, width
        size = (5, 7, 6)
    x = rng.standard_normal(layer.input_shape(8, 3) if isinstance(layer, Sequential)
                            else layer.input_shape(size, 2))
    outputs = layer_reference.chain_forward(layers, x, params)
    np.testing.assert_allclose(module.forward(x, *flat), outputs[-1], rtol=1e-10, atol=1e-12)
    grad_out = rng.standard_normal(outputs[-1].shape)
    deltas, grads = layer_reference.chain_backward(layers, x, params, grad_out)
    want = [deltas[0], *(value for part in grads for value in part.values())]
    for got, expected in zip(module.backward(x, *flat, grad_out), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
