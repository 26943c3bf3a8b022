"""The reference style of generated code (``generate(layer, style="reference")``).

Truth: the hand-written loops of tests/reference.py and tests/layer_reference.py,
finite differences, and (for inf and NaN) the loop references, which add exactly the
products of the plain sums.  The same conftest grids as the fast style.
"""

from __future__ import annotations

import ast

import layer_reference
import numpy as np
import pytest
from conftest import CHAIN_GRID, CONV_GRID, LAYER_GRID
from reference import conv2d_backward_loops, conv2d_forward_loops, numerical_gradient
from test_codegen_nonfinite import (
    VALUES,
    arrays,
    assert_same,
    loop_reference,
    placements,
    run,
)

import symbackprop as sbp
from symbackprop import Conv2d
from symbackprop.cli import main
from symbackprop.core.layers import Sequential, layer_from_spec
from symbackprop.kinds import AvgPool2d, MaxPool2d
from symbackprop.render.codegen import generate, load, module_filename

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

DTYPES = [np.float32, np.float64]


def tolerance(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def code_lines(source: str) -> list[str]:
    """The lines of ``source`` that are code: no docstring, comment or blank line."""
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and \
                isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    return [line for number, line in enumerate(source.splitlines(), 1)
            if number not in docstrings and line.strip() and not line.strip().startswith("#")]


# -- conv2d ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", CONV_GRID, ids=[case[0] for case in CONV_GRID])
def test_conv2d_reference_matches_the_loops(case, dtype):
    _, kwargs, input_size, batch = case
    layer = Conv2d(**kwargs)
    module = load(layer, style="reference")
    values = {key: None if value is None else value.astype(dtype)
              for key, value in arrays(layer, input_size, batch).items()}
    z, grads = run(module, layer, **values)
    want_z, want_grads = loop_reference(layer, **values)
    assert z.dtype == dtype
    np.testing.assert_allclose(z, want_z, **tolerance(dtype))
    assert len(grads) == len(want_grads)
    for got, want in zip(grads, want_grads, strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **tolerance(dtype))


@pytest.mark.parametrize("case", CONV_GRID[::2], ids=[case[0] for case in CONV_GRID[::2]])
def test_conv2d_reference_finite_differences(case):
    _, kwargs, input_size, batch = case
    layer = Conv2d(**kwargs)
    module = load(layer, style="reference")
    values = arrays(layer, input_size, batch, seed=3)
    params = [values["w"], *([values["b"]] if layer.bias else [])]

    def loss(*arguments):
        return float(np.sum(module.forward(*arguments) * values["grad_out"]))

    for index, grad in enumerate(module.backward(values["x"], *params, values["grad_out"])):
        np.testing.assert_allclose(grad, numerical_gradient(loss, [values["x"], *params], index),
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("where", ["x", "w", "grad_out"])
@pytest.mark.parametrize("case", CONV_GRID, ids=[case[0] for case in CONV_GRID])
def test_conv2d_reference_spreads_inf_and_nan_as_the_plain_sum(case, where):
    """The same non-finite grid as the fast strategies: padding and dilation zeros are
    not products of the sums, so 0 * inf never becomes a NaN the sum does not have."""
    _, kwargs, input_size, batch = case
    layer = Conv2d(**kwargs)
    module = load(layer, style="reference")
    clean = arrays(layer, input_size, batch + 1)
    for index in placements(clean[where].shape):
        for name, value in VALUES.items():
            values = {key: None if array is None else array.copy()
                      for key, array in clean.items()}
            values[where][index] = value
            z, grads = run(module, layer, **values)
            want_z, want_grads = loop_reference(layer, **values)
            label = f"{name} at {where}{list(index)}"
            assert_same(z, want_z, f"z, {label}")
            for gradient, got, want in zip("xwb", grads, want_grads):
                assert_same(got, want, f"dL/d{gradient}, {label}")


@pytest.mark.parametrize("case", CONV_GRID, ids=[case[0] for case in CONV_GRID])
def test_conv2d_reference_with_inf_and_nan_everywhere(case):
    """An inf bias, and x, w and g full of infinities of both signs and NaN."""
    _, kwargs, input_size, batch = case
    layer = Conv2d(**kwargs)
    module = load(layer, style="reference")
    values = arrays(layer, input_size, batch, seed=3)
    if layer.bias:
        values["b"][0] = np.inf
    rng = np.random.default_rng(4)
    for key in ("x", "w", "grad_out"):
        values[key] = np.where(rng.random(values[key].shape) < 0.3,
                               rng.choice([np.inf, -np.inf, np.nan], values[key].shape),
                               values[key])
    z, grads = run(module, layer, **values)
    want_z, want_grads = loop_reference(layer, **values)
    assert_same(z, want_z, "z, scattered inf and NaN")
    for gradient, got, want in zip("xwb", grads, want_grads):
        assert_same(got, want, f"dL/d{gradient}, scattered inf and NaN")


def test_conv2d_reference_reads_like_the_rules_and_fits_on_a_screen():
    """The worked example: the LaTeX document's names, each helper a few lines."""
    source = generate(Conv2d(kernel_size=2, padding=1), style="reference")
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for helper in ("dilate", "pad", "rot180", "correlate"):
        assert helper in functions
        assert functions[helper].end_lineno - functions[helper].lineno < 25, helper
    assert "corr(pad(dil(g)), rot180(w))" in source and "corr(pad(x), dil(g))" in source
    assert "sliding_window_view" in source and "np.einsum" in source
    body = "\n".join(code_lines(source))
    assert "KERNEL_OFFSETS" not in body and "STRATEGY" not in body  # no fast machinery
    # the rules and their helpers: about 60 lines; the argument checks every module
    # shares (forward, backward, _check_*) add about 50
    rules = source[source.index("def _forward("):source.index("def _check_input(")]
    assert len(code_lines(rules)) <= 62
    assert len(code_lines(source)) <= 115


def test_reference_module_files_are_told_apart(tmp_path, capsys):
    layer = Conv2d(kernel_size=2, padding=1)
    assert module_filename(layer, "reference") == "conv2d_in1_out1_k2_s1_p1_reference.py"
    assert main(["generate", "conv2d", "--kernel", "2", "--padding", "1", "--style",
                 "reference", "-o", str(tmp_path)]) == 0
    written = tmp_path / "conv2d_in1_out1_k2_s1_p1_reference.py"
    assert capsys.readouterr().out.strip() == str(written)
    assert written.read_text() == generate(layer, style="reference")
    assert load(layer, tmp_path / "again", style="reference").forward is not None
    assert (tmp_path / "again" / written.name).is_file()
    with pytest.raises(ValueError, match="style"):
        generate(layer, style="slow")
    with pytest.raises(ValueError, match="strategy"):
        generate(layer, style="reference", strategy="im2col")


# -- every other kind, and chains -----------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", LAYER_GRID, ids=[case[0] for case in LAYER_GRID])
def test_layer_reference_style_matches_the_loops(case, dtype):
    _, spec, input_size, batch = case
    layer = layer_from_spec(spec)
    shape = layer.input_shape(input_size, batch)
    module = load(layer, style="reference")
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    if isinstance(layer, MaxPool2d):  # many ties: the first maximum must win
        x = rng.integers(0, 3, size=shape).astype(dtype)
    params = {name: value.astype(dtype)
              for name, value in layer_reference.random_parameters(layer, rng).items()}
    z = module.forward(x, *params.values())
    want_z = layer_reference.forward(layer, x, params)
    assert z.dtype == dtype
    np.testing.assert_allclose(z, want_z, **tolerance(dtype))
    grad_out = rng.standard_normal(z.shape).astype(dtype)
    want_x, want_params = layer_reference.backward(layer, x, params, grad_out)
    grads = module.backward(x, *params.values(), grad_out)
    for got, want in zip(grads, [want_x, *want_params.values()], strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, **tolerance(dtype))


@pytest.mark.parametrize("layer, shape", [
    (MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 6)),
    (AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (1, 2, 6, 7)),
    (AvgPool2d(2), (1, 2, 5, 4)),
    (AvgPool2d(2, stride=3, padding=1), (1, 1, 7, 8)),
], ids=str)
def test_pooling_reference_finite_differences(layer, shape):
    module = load(layer, style="reference")
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    grad_out = rng.standard_normal(module.forward(x).shape)
    (got,) = module.backward(x, grad_out)
    np.testing.assert_allclose(
        got, numerical_gradient(lambda a: float(np.sum(grad_out * module.forward(a))), [x], 0),
        rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", CHAIN_GRID, ids=[case[0] for case in CHAIN_GRID])
def test_chain_reference_style_matches_the_loops(case, dtype, monkeypatch):
    monkeypatch.setattr(layer_reference, "conv2d_forward", conv2d_forward_loops)
    monkeypatch.setattr(layer_reference, "conv2d_backward", conv2d_backward_loops)
    _, specs, input_size, batch = case
    chain = Sequential.from_spec(specs)
    module = load(chain, style="reference")
    assert "def correlate" in generate(chain, style="reference") or \
        not any(isinstance(layer, Conv2d) for layer in chain.layers)
    rng = np.random.default_rng(2)
    params = [{name: value.astype(dtype) for name, value in
               layer_reference.random_parameters(layer, rng).items()} for layer in chain.layers]
    flat = [value for layer_params in params for value in layer_params.values()]
    x = rng.standard_normal(chain.input_shape(input_size, batch)).astype(dtype)
    outputs = layer_reference.chain_forward(chain.layers, x, params)
    np.testing.assert_allclose(module.forward(x, *flat), outputs[-1], **tolerance(dtype))
    grad_out = rng.standard_normal(outputs[-1].shape).astype(dtype)
    deltas, grads = layer_reference.chain_backward(chain.layers, x, params, grad_out)
    want = [deltas[0], *(value for layer_grads in grads for value in layer_grads.values())]
    got = module.backward(x, *flat, grad_out)
    for got_one, want_one in zip(got, want, strict=True):
        assert got_one.dtype == dtype
        np.testing.assert_allclose(got_one, want_one, **tolerance(dtype))


def test_top_level_api_takes_the_style():
    layer = Conv2d(kernel_size=2, padding=1)
    assert sbp.load(layer, style="reference") is load(layer, style="reference")
    assert sbp.generate(layer, style="reference") != sbp.generate(layer)


# -- a new activation is one row -----------------------------------------------------

def test_a_throwaway_activation_generates_working_code_in_both_styles(monkeypatch):
    """A spec class and a row, registered the way the activation kind registers its own:
    the code generator prints its f and f' from the row, with no change to render/."""
    import dataclasses

    import sympy

    from symbackprop.core.command_line import COMMAND_LINE
    from symbackprop.core.naming import MODULE_NAMES
    from symbackprop.kinds import ReLU
    from symbackprop.kinds.activation.rules import ACTIVATIONS, ActivationRule
    from symbackprop.kinds.activation.spec import _Activation
    from symbackprop.render.codegen import NUMPY

    @dataclasses.dataclass(frozen=True)
    class Softplus(_Activation):
        beta: float = 1.0
        kind = "softplus_test"
        title = "Softplus (a test row)"

        @property
        def constants(self) -> tuple:
            return (self.beta,)

    rule = ActivationRule(
        "softplus_test", "softplus_test",
        value=lambda net, beta: sympy.log(1 + sympy.exp(beta * net)) / beta,
        derivative=lambda f, net, beta: 1 / (1 + sympy.exp(-beta * net)),
        formula="f(net) = log(1 + exp(beta net)) / beta",
        derivative_formula="f'(net) = 1 / (1 + exp(-beta net))",
        constants=("beta",))
    monkeypatch.setitem(ACTIVATIONS, rule.kind, rule)
    for registry in (NUMPY, MODULE_NAMES, COMMAND_LINE):  # as kinds/activation does per type
        monkeypatch.setitem(registry.table, Softplus, registry.table[ReLU])
    layer = Softplus(beta=2.0)
    net = sympy.Symbol("net", real=True)
    f = rule.value(net, sympy.Float(2.0))
    samples = np.array([-3.0, -0.5, 0.0, 0.25, 2.0])
    want = [float(f.subs(net, value)) for value in samples]
    want_derivative = [float(sympy.diff(f, net).subs(net, value)) for value in samples]
    for style in ("fast", "reference"):
        source = generate(layer, style=style)
        assert "BETA = 2.0" in source and "np.exp(-np.logaddexp(0, -BETA * x))" in source
        module = load(layer, style=style)
        np.testing.assert_allclose(module.forward(samples), want, rtol=1e-12)
        (grad,) = module.backward(samples, np.ones_like(samples))
        np.testing.assert_allclose(grad, want_derivative, rtol=1e-12)
        x32 = samples.astype(np.float32)
        assert module.forward(x32).dtype == np.float32
        assert module.backward(x32, np.ones_like(x32))[0].dtype == np.float32


def test_the_docstring_command_regenerates_the_reference_module(tmp_path, capsys):
    layer = Conv2d(in_channels=4, out_channels=2, kernel_size=(3, 1), stride=(1, 2),
                   padding=(0, 1, 2, 1), dilation=(2, 1), groups=2, bias=False)
    source = generate(layer, style="reference")
    command = source.split("Regenerate with\n\n", 1)[1].split("\n\n", 1)[0]
    words = command.replace("\\\n", " ").split()
    assert words[:2] == ["symbackprop", "generate"] and words[-2:] == ["--style", "reference"]
    assert main([*words[1:], "-o", str(tmp_path)]) == 0
    path = tmp_path / module_filename(layer, "reference")
    assert capsys.readouterr().out.strip() == str(path)
    assert path.read_text() == source
    chain = Sequential.from_spec(CHAIN_GRID[0][1])
    chain_command = generate(chain, style="reference").split("Regenerate with\n\n", 1)[1]
    assert chain_command.split("\n\n", 1)[0].rstrip().endswith("]' --style reference")


def test_the_output_size_is_printed_from_one_expression():
    """The code line and the docstring line of a module come from one SymPy expression;
    its printed code agrees with the hand-written reference at many sizes."""
    import itertools

    from reference import conv_output_size

    from symbackprop.kinds.conv2d.numpy import output_size_expression as conv_expression
    from symbackprop.kinds.pool2d.numpy import output_size_expression as pool_expression
    from symbackprop.render.codegen import numpy_code

    names = ["height", "TOP", "BOTTOM", "KH", "SH", "DH"]
    conv_code = numpy_code(conv_expression(*map(_integer, names)), as_written=True)
    pool_code = numpy_code(pool_expression(*map(_integer, names[:5])), as_written=True)
    for size, top, bottom, kernel, stride, dilation in itertools.product(
            range(1, 9), range(3), range(3), range(1, 4), range(1, 4), range(1, 3)):
        values = dict(height=size, TOP=top, BOTTOM=bottom, KH=kernel, SH=stride, DH=dilation)
        assert eval(conv_code, {}, values) == conv_output_size(  # noqa: S307 - our printout
            size, kernel, stride, top, bottom, dilation)
        assert eval(pool_code, {}, values) == conv_output_size(  # noqa: S307
            size, kernel, stride, top, bottom, 1)
    source = generate(Conv2d(kernel_size=2, padding=1))
    assert f"out_height = {conv_code}" in source
    assert "Ho = (H + 1 + 1 - 1 * (2 - 1) - 1) // 1 + 1" in source
    assert f"out_height = {pool_code}" in generate(MaxPool2d(3, stride=2, padding=1))


def _integer(name):
    import sympy

    return sympy.Symbol(name, integer=True)
