"""The array-API target: one generated module on NumPy, array_api_strict, PyTorch and JAX.

``generate(layer, target="array-api")`` writes the module against the namespace of its
inputs.  Truth: the hand-written references (tests/reference.py through
tests/layer_reference.py, and the loop references for inf and NaN) and finite
differences; the NumPy module of the same layer is a second, independently written
implementation it must agree with.  array_api_strict runs with the 2023.12 standard,
so a function or a Python number where the standard has none fails there.  PyTorch and
JAX are optional: their tests skip without them.
"""

from __future__ import annotations

import ast
import sys

import layer_reference
import numpy as np
import pytest
from conftest import CHAIN_GRID, CONV_GRID, LAYER_GRID
from reference import conv2d_backward_loops, conv2d_forward_loops

import symbackprop as sbp
from symbackprop.cli import main
from symbackprop.core.layers import Sequential, layer_from_spec
from symbackprop.render import codegen_array_api
from symbackprop.render.codegen import generate, load, module_filename

array_api_strict = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")

# inf - inf and 0 * inf warn as NumPy always does; the values are what is tested.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")

TARGET = "array-api"


@pytest.fixture(scope="module", autouse=True)
def strict_2023_12():
    """array_api_strict as the 2023.12 standard: what the modules promise to need."""
    array_api_strict.set_array_api_strict_flags(api_version="2023.12")
    yield
    array_api_strict.reset_array_api_strict_flags()


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


#: name -> (NumPy array -> that library's array); PyTorch only where it is installed.
LIBRARIES = {
    "numpy": lambda array: array,
    "strict": lambda array: array_api_strict.asarray(array),
}
if _torch() is not None:
    LIBRARIES["torch"] = lambda array: _torch().from_numpy(np.ascontiguousarray(array))


def to_numpy(array):
    return np.asarray(array)


def case_id(case):
    return case[0]


# The kinds, a few parameter combinations each: the conv2d grid (stride, padding,
# dilation, groups, channels, no bias), pooling, activations, flatten and linear.
CONV_CASES = [case for case in CONV_GRID
              if case[0] in ("worked-example", "stride3-uneven-pad", "asymmetric-padding",
                             "dilation-stride", "groups", "depthwise-no-bias", "1x1")]
LAYER_CASES = [(name, {"layer": "conv2d", **kwargs}, size, batch)
               for name, kwargs, size, batch in CONV_CASES] + [
    case for case in LAYER_GRID if case[0] not in ("maxpool-gaps", "avgpool-tiled-odd")]
#: The cases where inf and NaN meet padding, window rules or a matrix product.
NONFINITE_CASES = [case for case in LAYER_CASES if case[0] in (
    "worked-example", "stride3-uneven-pad", "depthwise-no-bias", "maxpool-overlap-odd",
    "maxpool-pad-channels", "avgpool-pad-include", "avgpool-pad-exclude", "relu", "softplus",
    "linear")]


def arguments(layer, shape, dtype, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if ties:  # whole numbers: max-pooling windows with several maxima
        x = np.round(x)
    params = layer_reference.random_parameters(layer, rng)
    grad_out = rng.standard_normal(layer_reference.forward(layer, x, params).shape)
    cast = {key: value.astype(dtype) for key, value in params.items()}
    return x.astype(dtype), cast, grad_out.astype(dtype)


def tolerance(dtype):
    return dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", LAYER_CASES, ids=case_id)
def test_every_kind_on_every_library_as_the_references(case, dtype):
    """forward and backward on NumPy, array_api_strict and PyTorch arrays: that library's
    arrays back, of the dtype of x, equal to the NumPy module and to the hand-written
    reference."""
    _, spec, input_size, batch = case
    layer = layer_from_spec(spec)
    module, numpy_module = load(layer, target=TARGET), load(layer)
    ties = layer.kind == "maxpool2d"
    x, params, grad_out = arguments(layer, layer.input_shape(input_size, batch + 1), dtype,
                                    ties=ties)
    want_z = numpy_module.forward(x, *params.values())
    want_grads = numpy_module.backward(x, *params.values(), grad_out)
    # the hand-written reference, in float64
    x64, params64 = x.astype(np.float64), {k: v.astype(np.float64) for k, v in params.items()}
    np.testing.assert_allclose(want_z, layer_reference.forward(layer, x64, params64),
                               **tolerance(dtype))
    ref_x, ref_params = layer_reference.backward(layer, x64, params64,
                                                 grad_out.astype(np.float64))
    for got, want in zip(want_grads, [ref_x, *ref_params.values()], strict=True):
        np.testing.assert_allclose(got, want, **tolerance(dtype))
    for library, convert in LIBRARIES.items():
        z = module.forward(convert(x), *map(convert, params.values()))
        grads = module.backward(convert(x), *map(convert, params.values()), convert(grad_out))
        for result in (z, *grads):
            assert type(result) is type(convert(x)), library
            assert to_numpy(result).dtype == dtype, library
        np.testing.assert_allclose(to_numpy(z), want_z, **tolerance(dtype), err_msg=library)
        assert len(grads) == len(want_grads)
        for got, want in zip(grads, want_grads):
            np.testing.assert_allclose(to_numpy(got), want, **tolerance(dtype),
                                       err_msg=library)


@pytest.mark.parametrize("case", CHAIN_GRID, ids=case_id)
def test_chains_on_every_library_as_the_references(case):
    _, specs, input_size, batch = case
    chain = Sequential.from_spec(specs)
    module = load(chain, target=TARGET)
    rng = np.random.default_rng(1)
    params = [layer_reference.random_parameters(layer, rng) for layer in chain.layers]
    flat = [value for layer_params in params for value in layer_params.values()]
    x = rng.standard_normal(chain.input_shape(input_size, batch))
    outputs = layer_reference.chain_forward(chain.layers, x, params)
    grad_out = rng.standard_normal(outputs[-1].shape)
    deltas, grads = layer_reference.chain_backward(chain.layers, x, params, grad_out)
    want = [deltas[0], *(value for layer_grads in grads for value in layer_grads.values())]
    for library, convert in LIBRARIES.items():
        got = module.forward(convert(x), *map(convert, flat))
        np.testing.assert_allclose(to_numpy(got), outputs[-1], rtol=1e-9, atol=1e-9,
                                   err_msg=library)
        got = module.backward(convert(x), *map(convert, flat), convert(grad_out))
        for number, (value, expected) in enumerate(zip(got, want, strict=True)):
            np.testing.assert_allclose(to_numpy(value), expected, rtol=1e-9, atol=1e-9,
                                       err_msg=f"{library}, gradient {number}")


def test_max_pooling_routes_ties_to_the_first_maximum():
    """All-equal windows: g goes to the first element of each window in row-major order."""
    layer = sbp.MaxPool2d(kernel_size=2, stride=1, padding=1)
    module = load(layer, target=TARGET)
    x = array_api_strict.ones((1, 1, 3, 3), dtype=array_api_strict.float64)
    grad_out = array_api_strict.ones((1, 1, 4, 4), dtype=array_api_strict.float64)
    (grad_x,) = module.backward(x, grad_out)
    want = layer_reference.backward(layer, np.ones((1, 1, 3, 3)), {}, np.ones((1, 1, 4, 4)))[0]
    np.testing.assert_array_equal(to_numpy(grad_x), want)
    # x[0, 0] wins the 4 windows that hold it; x[0, 2] and x[2, 0] the 2 edge windows where
    # they come first (the padding never wins)
    np.testing.assert_array_equal(to_numpy(grad_x)[0, 0], [[4, 2, 2], [2, 1, 1], [2, 1, 1]])


def test_finite_differences_on_strict_arrays():
    """dL/dx, dL/dw, dL/db of L = sum(g * z) against central differences of forward."""
    layer = sbp.Conv2d(in_channels=4, out_channels=2, kernel_size=(2, 3), stride=2,
                       padding=(1, 0, 2, 1), dilation=(1, 2), groups=2)
    module = load(layer, target=TARGET)
    xp = array_api_strict
    rng = np.random.default_rng(5)
    values = dict(x=rng.standard_normal((2, 4, 5, 6)), w=rng.standard_normal(layer.weight_shape),
                  b=rng.standard_normal(2))
    g = rng.standard_normal(layer.output_shape((5, 6), 2))

    def loss(arrays):
        z = module.forward(*(xp.asarray(arrays[name]) for name in "xwb"))
        return float(np.sum(to_numpy(z) * g))

    grads = module.backward(*(xp.asarray(values[name]) for name in "xwb"), xp.asarray(g))
    step = 1e-6
    for name, grad in zip("xwb", grads):
        for index in list(np.ndindex(values[name].shape))[::3]:
            plus = {key: value.copy() for key, value in values.items()}
            minus = {key: value.copy() for key, value in values.items()}
            plus[name][index] += step
            minus[name][index] -= step
            numeric = (loss(plus) - loss(minus)) / (2 * step)
            assert abs(numeric - to_numpy(grad)[index]) < 1e-6, (name, index)


# -- inf and NaN --------------------------------------------------------------------------

VALUES = {"inf": np.inf, "-inf": -np.inf, "nan": np.nan}


def assert_same(got, want, what, tolerance=1e-10):
    """Equal, with NaN and inf in exactly the same places (same sign of inf)."""
    got = to_numpy(got)
    assert got.shape == want.shape, what
    assert np.array_equal(np.isnan(got), np.isnan(want)), (
        f"{what}: NaN at {np.argwhere(np.isnan(got)).tolist()}, "
        f"want {np.argwhere(np.isnan(want)).tolist()}")
    assert np.array_equal(np.isposinf(got), np.isposinf(want)), f"{what}: +inf differs"
    assert np.array_equal(np.isneginf(got), np.isneginf(want)), f"{what}: -inf differs"
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=tolerance, atol=tolerance,
                               err_msg=what)


def corners(shape):
    """First and last element, and one in the middle (next to padding, and inside)."""
    size = int(np.prod(shape))
    return sorted({np.unravel_index(flat, shape) for flat in (0, size // 2, size - 1)})


@pytest.mark.parametrize("case", CONV_CASES[:3], ids=case_id)
def test_conv2d_spreads_inf_and_nan_as_the_loop_sums(case):
    """A product with padding is not in the sums: no 0 * inf NaN, against the loops."""
    _, kwargs, input_size, batch = case
    layer = sbp.Conv2d(**kwargs)
    module = load(layer, target=TARGET)
    options = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups)
    x, params, grad_out = arguments(layer, layer.input_shape(input_size, batch), np.float64)
    clean = dict(x=x, grad_out=grad_out, **params)
    xp = array_api_strict
    for where in ("x", "w", "grad_out"):
        for index in corners(clean[where].shape):
            for name, value in VALUES.items():
                values = {key: array.copy() for key, array in clean.items()}
                values[where][index] = value
                b = values.get("b")
                label = f"{name} at {where}{list(index)}"
                own = [xp.asarray(values[key]) for key in ("x", *params)]
                assert_same(module.forward(*own),
                            conv2d_forward_loops(values["x"], values["w"], b, **options),
                            f"z, {label}")
                got = module.backward(*own, xp.asarray(values["grad_out"]))
                want = conv2d_backward_loops(values["x"], values["w"], b, values["grad_out"],
                                             **options)
                for gradient, value_got, value_want in zip("xwb", got, want):
                    assert_same(value_got, value_want, f"dL/d{gradient}, {label}")


@pytest.mark.parametrize("case", NONFINITE_CASES, ids=case_id)
def test_every_kind_spreads_inf_and_nan_as_the_numpy_module(case):
    """inf, -inf and NaN in x, every parameter and grad_out, and x all inf, -inf and NaN:
    the same places as the NumPy module, which tests/test_codegen_nonfinite.py holds to
    the plain sums (and the max-pooling rules: the first NaN wins, a window of -inf sends
    g to its first element of x, padding never)."""
    _, spec, input_size, batch = case
    layer = layer_from_spec(spec)
    module, numpy_module = load(layer, target=TARGET), load(layer)
    x, params, grad_out = arguments(layer, layer.input_shape(input_size, batch + 1), np.float64)
    clean = dict(x=x, grad_out=grad_out, **params)
    xp = array_api_strict

    def compare(values, label):
        own = [values[key] for key in ("x", *params)]
        assert_same(module.forward(*map(xp.asarray, own)), numpy_module.forward(*own),
                    f"z, {label}")
        got = module.backward(*map(xp.asarray, own), xp.asarray(values["grad_out"]))
        want = numpy_module.backward(*own, values["grad_out"])
        for gradient, value_got, value_want in zip(["x", *params], got, want, strict=True):
            assert_same(value_got, value_want, f"dL/d{gradient}, {label}")

    for where, array in clean.items():
        for index in corners(array.shape):
            for name, value in VALUES.items():
                values = {key: item.copy() for key, item in clean.items()}
                values[where][index] = value
                compare(values, f"{name} at {where}{list(index)}")
    for name, value in VALUES.items():
        compare(dict(clean, x=np.full_like(x, value)), f"x all {name}")


# -- the module's source ------------------------------------------------------------------

SOURCE_LAYERS = [layer_from_spec(spec) for _, spec, _, _ in LAYER_CASES] + [
    Sequential.from_spec(specs) for _, specs, _, _ in CHAIN_GRID]


@pytest.mark.parametrize("layer", SOURCE_LAYERS, ids=lambda layer: module_filename(layer))
def test_source_needs_only_array_api_compat_and_the_standard(layer):
    """Imports: array_api_compat and the standard library, never NumPy; every ``xp.name``
    is a name of the standard (2023.12); no array is written into (JAX can run it)."""
    source = generate(layer, target=TARGET)
    tree = ast.parse(source)
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in (node.names if isinstance(node, ast.Import) else [node])
                } | {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
    imported.discard(None)
    assert "array_api_compat" in imported
    assert all(name == "array_api_compat" or name in sys.stdlib_module_names
               for name in imported), imported
    assert "numpy" not in source and "np." not in source
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "xp"}
    assert used <= codegen_array_api.STANDARD_NAMES, used - codegen_array_api.STANDARD_NAMES
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AugAssign) else []
        assert not any(isinstance(target, ast.Subscript) for target in targets), \
            ast.unparse(node)


def test_the_same_request_gives_the_same_bytes():
    layer = sbp.Conv2d(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding=1,
                       groups=2)
    chain = Sequential.from_spec(CHAIN_GRID[1][1])
    first = [generate(layer, target=TARGET), generate(chain, target=TARGET)]
    codegen_array_api._generate_cached.cache_clear()
    assert [generate(layer, target=TARGET), generate(chain, target=TARGET)] == first


def test_numpy_stays_the_default_target():
    layer = sbp.Conv2d(kernel_size=3, padding=1)
    assert generate(layer) == generate(layer, target="numpy")
    assert "import numpy as np" in generate(layer)
    assert module_filename(layer) == "conv2d_in1_out1_k3_s1_p1.py"
    assert module_filename(layer, target=TARGET) == "conv2d_in1_out1_k3_s1_p1_array_api.py"


def test_cli_writes_the_module_with_the_target_in_its_name_and_command(tmp_path, capsys):
    assert main(["generate", "conv2d", "--kernel", "3", "--stride", "2", "--target", TARGET,
                 "-o", str(tmp_path)]) == 0
    path = tmp_path / "conv2d_in1_out1_k3_s2_p0_array_api.py"
    assert capsys.readouterr().out.strip() == str(path)
    source = path.read_text()
    assert "symbackprop generate conv2d --kernel 3 --stride 2 --target array-api" in source
    assert main(["generate", "relu", "--target", TARGET, "--print"]) == 0
    assert "xp.maximum(x, xp.full_like(x, 0))" in capsys.readouterr().out
    module = load(sbp.Conv2d(kernel_size=3, stride=2), folder=tmp_path, target=TARGET)
    x = np.ones((1, 1, 5, 5))
    np.testing.assert_allclose(module.forward(x, np.ones((1, 1, 3, 3)), np.zeros(1)),
                               np.full((1, 1, 2, 2), 9.0))


def test_the_numpy_choices_are_refused_for_the_array_api_target(capsys):
    assert main(["generate", "conv2d", "--kernel", "3", "--style", "reference",
                 "--target", TARGET, "--print"]) == 2
    assert "--style" in capsys.readouterr().err
    with pytest.raises(ValueError, match="strategy"):
        generate(sbp.Conv2d(kernel_size=3), strategy="im2col", target=TARGET)
    with pytest.raises(ValueError, match="target .* must be one of numpy, array-api"):
        generate(sbp.Conv2d(kernel_size=3), target="cupy")


def test_a_kind_without_array_api_code_names_the_kinds_that_have_it(capsys):
    layer = sbp.Conv1d(kernel_size=3)
    with pytest.raises(TypeError, match=r"has no array-API code; .* conv2d, maxpool2d"):
        generate(layer, target=TARGET)
    chain = Sequential([sbp.Conv2d(kernel_size=2), sbp.ReLU()])
    assert "array_api_compat" in generate(chain, target=TARGET)
    assert main(["generate", "conv1d", "--kernel", "3", "--target", TARGET, "--print"]) == 2
    assert "has no array-API code" in capsys.readouterr().err


def test_arguments_are_checked_with_clear_errors():
    module = load(sbp.Linear(3, 2), target=TARGET)
    xp = array_api_strict
    x, w, b = (xp.ones(shape, dtype=xp.float64) for shape in ((4, 3), (2, 3), (2,)))
    with pytest.raises(TypeError, match="x must be an array"):
        module.forward([[1.0, 2.0, 3.0]], w, b)
    with pytest.raises(TypeError, match="arrays of one library"):
        module.forward(np.ones((4, 3)), w, b)
    with pytest.raises(TypeError, match="w must have the dtype of x"):
        module.forward(x, xp.ones((2, 3), dtype=xp.float32), b)
    with pytest.raises(ValueError, match=r"w must have shape \(2, 3\)"):
        module.forward(x, xp.ones((3, 3), dtype=xp.float64), b)
    with pytest.raises(TypeError, match="floating-point"):
        module.forward(xp.ones((4, 3), dtype=xp.int64), w, b)
    conv = load(sbp.Conv2d(kernel_size=3), target=TARGET)
    with pytest.raises(ValueError, match="too small for this layer"):
        conv.forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), np.ones(1))


# -- JAX, when installed: no array is written into ----------------------------------------

#: Run in a process of its own: JAX starts threads, and the check-impl tests fork.
#: jit only: eager JAX compiles every operation on its own (seconds for one module here).
JAX_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np
import symbackprop as sbp
from symbackprop.render.codegen import load

layer = sbp.Conv2d(in_channels=2, out_channels=2, kernel_size=3, stride=2, padding=1, groups=2)
module, numpy_module = load(layer, target="array-api"), load(layer)
rng = np.random.default_rng(3)
x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
w = rng.standard_normal(layer.weight_shape).astype(np.float32)
b = rng.standard_normal(2).astype(np.float32)
grad_out = rng.standard_normal(numpy_module.forward(x, w, b).shape).astype(np.float32)
want = numpy_module.backward(x, w, b, grad_out)
got = jax.jit(module.backward)(*map(jnp.asarray, (x, w, b, grad_out)))
for value, expected in zip(got, want, strict=True):
    assert isinstance(value, jax.Array)
    np.testing.assert_allclose(np.asarray(value), expected, rtol=2e-4, atol=2e-4)
print("ok")
"""


def test_jax_arrays_and_jit():
    import importlib.util
    import subprocess

    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed (optional)")
    result = subprocess.run([sys.executable, "-c", JAX_SCRIPT], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]

def test_modules_are_ruff_clean(tmp_path):
    """The project's lint and format rules, as for the NumPy modules (softplus's long f'
    line aside, as in its NumPy module)."""
    from ruff_check import ruff_problems_in_files

    paths = []
    for layer in SOURCE_LAYERS:
        if layer.kind != "softplus":
            paths.append(tmp_path / module_filename(layer, target=TARGET))
            paths[-1].write_text(generate(layer, target=TARGET), encoding="utf-8")
    assert ruff_problems_in_files(paths) == ""


def test_committed_catalog_modules_run_on_strict_arrays():
    """generated/*_array_api.py themselves, imported, on array_api_strict arrays against
    the committed NumPy module of the same layer."""
    import importlib.util

    from conftest import REPO

    from symbackprop.catalog import CATALOG

    entries = [entry for entry in CATALOG if TARGET in entry.targets]
    assert len(entries) >= 3
    for entry in entries:
        modules = {}
        for choice, name in entry.files():
            if choice in ("fast", TARGET):
                spec = importlib.util.spec_from_file_location(name[:-3], REPO / "generated" / name)
                modules[choice] = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(modules[choice])
        layer, rng = entry.layer, np.random.default_rng(2)
        x = rng.standard_normal(layer.input_shape((8, 8), 2)).astype(np.float32)
        params = [rng.standard_normal(shape).astype(np.float32)
                  for shape in layer.parameter_shapes.values()]
        z = modules["fast"].forward(x, *params)
        grad_out = rng.standard_normal(z.shape).astype(np.float32)
        want = modules["fast"].backward(x, *params, grad_out)
        got = modules[TARGET].backward(*map(array_api_strict.asarray, (x, *params, grad_out)))
        for value, expected in zip(got, want, strict=True):
            np.testing.assert_allclose(to_numpy(value), expected, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("layer, shape", [
    (sbp.Conv2d(2, 4, kernel_size=3, stride=2, padding=1, groups=2), (0, 2, 5, 5)),
    (sbp.MaxPool2d(3, stride=2, padding=1), (0, 2, 5, 5)),
    (sbp.Linear(4, 3), (0, 4)),
], ids=["conv2d", "maxpool2d", "linear"])
def test_an_empty_batch(layer, shape):
    module, xp = load(layer, target=TARGET), array_api_strict
    x = xp.zeros(shape, dtype=xp.float64)
    params = [xp.ones(size, dtype=xp.float64) for size in layer.parameter_shapes.values()]
    z = module.forward(x, *params)
    assert z.shape[0] == 0
    grads = module.backward(x, *params, xp.zeros(z.shape, dtype=xp.float64))
    assert grads[0].shape == shape
    for grad, size in zip(grads[1:], layer.parameter_shapes.values()):
        np.testing.assert_array_equal(to_numpy(grad), np.zeros(size))
