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

from symbackprop import Conv2d
from symbackprop.catalog import CATALOG, INDEX_NAME, REGENERATE_COMMAND, catalog_files, main
from symbackprop.render.codegen import module_filename

FOLDER = REPO / "generated"
MODULES = [module_filename(entry.layer) for entry in CATALOG]
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
    layers = [entry.layer for entry in CONV_ENTRIES]
    assert len(layers) >= 10
    kinds = {
        "SPEC.md worked example": lambda layer: layer == Conv2d(kernel_size=2, padding=1),
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
    for entry, name in zip(CATALOG, MODULES, strict=True):
        assert f"| [`{name}`]({name}) | {entry.layer.describe()} | {entry.use} |" in index


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


@pytest.mark.parametrize("entry", CONV_ENTRIES,
                         ids=[module_filename(entry.layer) for entry in CONV_ENTRIES])
def test_committed_module_matches_reference(entry):
    """Import the committed file itself and compare it with the im2col reference."""
    from reference import conv2d_backward, conv2d_forward

    layer = entry.layer
    module = _import(module_filename(layer))
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
