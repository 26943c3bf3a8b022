"""The people-facing renderers (text, LaTeX, the page) ask the layer's kind.

A throwaway activation, made of a spec class and a row of ``ACTIVATIONS`` and
registered only through the registries' tables, prints in all three without a change
to ``symbackprop/render``; and no kind is named in the renderers' source.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest
import sympy

import symbackprop as sbp
from symbackprop.core.command_line import COMMAND_LINE
from symbackprop.core.expand import EXPAND
from symbackprop.core.indexing import output_length, output_size_formula
from symbackprop.core.operators import CHAIN_RULES
from symbackprop.core.registry import KINDS
from symbackprop.kinds.activation import rules as activation_rules
from symbackprop.kinds.activation.spec import _Activation
from symbackprop.render.html import HTML, to_html
from symbackprop.render.latex import LATEX, FormulaLatexPrinter, to_latex
from symbackprop.render.text import TEXT, FormulaPrinter, to_text

RENDER = Path(sbp.__file__).parent / "render"


@dataclass(frozen=True)
class Cube(_Activation):
    """``net**3``: an activation no renderer has heard of."""

    kind = "cube"
    title = "Cube"


CUBE_ROW = activation_rules.ActivationRule(
    "cube", "cube",
    value=lambda net: net ** 3,
    derivative=lambda f, net: 3 * net ** 2,
    formula="f(net) = net^3",
    derivative_formula="f'(net) = 3 net^2")


@pytest.fixture
def cube(monkeypatch):
    """The row and the spec class, registered as a new activation's own modules would:
    with the entry every activation shares."""
    monkeypatch.setitem(activation_rules.ACTIVATIONS, "cube", CUBE_ROW)
    for registry in (EXPAND, CHAIN_RULES, TEXT, LATEX, HTML, COMMAND_LINE):
        monkeypatch.setitem(registry.table, Cube, registry.table[sbp.ReLU])
    return sbp.derive(Cube(), (2, 2))


def test_a_new_activation_prints_as_text(cube):
    text = to_text(cube)
    assert "Forward, z = f(x) elementwise, f(net) = net^3:" in text
    assert "z11 = cube(x11)" in text
    assert "dx = g * f'(x) elementwise, f'(net) = 3 net^2" in text
    assert "dL/dx11 = 3 g11 x11^2" in text


def test_a_new_activation_prints_in_latex_from_its_row(cube):
    document = to_latex(cube)
    assert r"Backpropagation through Cube" in document
    assert r"z_{11} &= \operatorname{cube}(x_{11})" in document
    # f and f' are printed from the row's SymPy expressions, not from a table
    assert r"f(\mathit{net}) = \operatorname{cube}(\mathit{net}) = \mathit{net}^{3}" in document
    assert r"f'(\mathit{net}) = 3 \mathit{net}^{2}" in document


def test_a_new_activation_has_a_page(cube):
    page = to_html(cube)
    assert "<h1>Backpropagation through Cube</h1>" in page
    assert r"<mi>cube<\/mi>" in page  # z11 = cube(x11) in the cells' data


def test_an_unregistered_kind_is_refused_by_name(monkeypatch):
    monkeypatch.setitem(activation_rules.ACTIVATIONS, "cube", CUBE_ROW)
    monkeypatch.setitem(EXPAND.table, Cube, EXPAND.table[sbp.ReLU])
    derivation = sbp.derive(Cube(), (2, 2))
    with pytest.raises(TypeError, match="cannot print as text a Cube"):
        to_text(derivation)
    with pytest.raises(TypeError, match="cannot write a LaTeX document of a Cube"):
        to_latex(derivation, command="symbackprop latex cube")


def _code_words(path: Path) -> tuple[set[str], set[str]]:
    """The names of a Python file, and every word of it (names, strings, comments)."""
    names, words = set(), set()
    with open(path, encoding="utf-8") as file:
        for token in tokenize.generate_tokens(io.StringIO(file.read()).readline):
            if token.type == tokenize.NAME:
                names.add(token.string)
            if token.type in (tokenize.NAME, tokenize.STRING, tokenize.COMMENT):
                words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", token.string))
    return names, words


@pytest.mark.parametrize("name", ["text.py", "latex.py", "html.py"])
def test_the_renderers_name_no_kind(name):
    names, words = _code_words(RENDER / name)
    core = ("sequential", "residual")  # a chain and a residual block compose kinds: core
    kinds = {kind for kind in KINDS if kind not in core}
    classes = {layer_type.__name__ for kind, layer_type in KINDS.items() if kind not in core}
    lowered = {word.lower() for word in words}
    assert not kinds & lowered, f"render/{name} names a kind: {sorted(kinds & lowered)}"
    assert not classes & words, f"render/{name} names a layer class: {sorted(classes & words)}"
    assert "isinstance" not in names
    assert "kind" not in names  # no layer.kind ==, no table keyed by kind
    assert "symbackprop.kinds" not in (RENDER / name).read_text()
    assert not (RENDER / "latex_layers.py").exists()


@pytest.mark.parametrize("size,before,after,kernel,stride,dilation", [
    (3, 1, 1, 2, 1, 1), (7, 0, 2, 3, 2, 2), (5, 2, 0, 3, 3, 1), (4, 0, 0, 4, 1, 1)])
def test_the_output_size_formula_is_the_one_the_layers_use(size, before, after, kernel,
                                                           stride, dilation):
    _, general = output_size_formula("h")
    _, numbers = output_size_formula("h", (size, before, after, kernel, stride, dilation))
    expected = output_length(size, kernel, stride, before, after, dilation)
    assert int(numbers.doit()) == expected
    values = dict(zip(sympy.symbols("H top bottom KH sh dh", integer=True),
                      (size, before, after, kernel, stride, dilation)))
    assert int(general.doit().subs(values)) == expected
    assert FormulaPrinter().doprint(general) == \
        "floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1"
    assert FormulaLatexPrinter().doprint(general) == (
        r"\left\lfloor \frac{H + p_{\mathrm{top}} + p_{\mathrm{bottom}} - d_h(K_H - 1) - 1}"
        r"{s_h} \right\rfloor + 1")
