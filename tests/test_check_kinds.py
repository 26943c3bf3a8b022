"""The checker asks the kinds (issue 10): nothing in symbackprop/check/ names a kind, and a
kind the checker has never seen is checked through its rows and registry entries alone."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sympy

import symbackprop
from symbackprop import FormulaError, check_formula, check_impl
from symbackprop.check.formula_check import FORMULAS
from symbackprop.check.impl import IMPLEMENTATIONS, conventions
from symbackprop.core.expand import EXPAND
from symbackprop.core.registry import KINDS
from symbackprop.kinds import Conv2d, Linear, MaxPool2d, Sigmoid
from symbackprop.kinds.activation.rules import ACTIVATIONS, ActivationRule, activation_function
from symbackprop.kinds.activation.spec import _Activation

CHECK = Path(symbackprop.__file__).parent / "check"
# a chain and a residual block are core: they compose kinds without naming one
KIND_NAMES = {name for name in KINDS if name not in ("sequential", "residual")}
KIND_CLASSES = {layer_type.__name__ for layer_type in KINDS.values()} - {"Sequential",
                                                                         "Residual"}


# -- a throwaway activation: a spec class and a row, nothing in check/ changed ----------------
@dataclass(frozen=True)
class Exponential(_Activation):
    """``exp(net)``: its own derivative, written with the output as ``a^{l}``."""

    kind = "exponential_throwaway"
    title = "Exponential"



def _sources():
    files = sorted(CHECK.glob("*.py"))
    assert len(files) >= 5  # formula, formula_check, impl, impl_process, impl_runner
    return [(path, path.read_text()) for path in files]


def _classes_defined_in_check() -> set:
    return {node.name for _, text in _sources() for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.ClassDef)}


def kind_mentions(text: str, name: str = "<text>") -> list:
    """Every place ``text`` names a kind: a layer class or kind name as a word, an import
    of ``symbackprop.kinds``, a string that is a kind's name, ``layer.kind == ...``."""
    # a class of check/ may share a name with a layer class (formula.Linear, an index
    # expression): it is not the layer
    classes = KIND_CLASSES - _classes_defined_in_check()
    found = []
    word = re.compile(r"\b(" + "|".join(sorted(classes | {
        kind for kind in KIND_NAMES if any(ch.isdigit() for ch in kind)})) + r")\b")
    found += [f"{name}: the word {match.group()}" for match in word.finditer(text)]
    for node in ast.walk(ast.parse(text)):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) \
                else [alias.name for alias in node.names]
            found += [f"{where} imports {m}" for m in modules
                      if m.startswith("symbackprop.kinds")]
        elif isinstance(node, ast.Constant) and node.value in KIND_NAMES:
            found.append(f"{where} spells the kind {node.value!r}")
        elif isinstance(node, ast.Name) and node.id in classes:
            found.append(f"{where} names {node.id}")
    return found


def test_check_names_no_kind():
    found = [mention for path, text in _sources() for mention in kind_mentions(text, path.name)]
    assert found == []


@pytest.mark.parametrize("bad", [
    'if layer.kind == "maxpool2d":\n    pass\n',
    "from symbackprop.kinds.pool2d.rules import IsWindowMax\n",
    "import symbackprop.kinds\n",
    "ok = isinstance(layer, Conv2d)\n",
    "WORDS = {'sigmoid': 's'}\n",
])
def test_the_check_catches_a_kind_name(bad):
    # the check above is not vacuous: each way the modules named kinds before issue 10
    assert kind_mentions(bad)


def test_check_impl_takes_the_registered_kinds(monkeypatch):
    from symbackprop.cli.commands import check_impl_command

    assert check_impl_command.kinds == list(conventions()) == [
        layer_type.kind for layer_type in IMPLEMENTATIONS.types()]
    assert {"conv2d", "maxpool2d", "avgpool2d"} <= set(conventions())
    with pytest.raises(TypeError, match="check-impl checks backward functions of conv2d, "
                                        "maxpool2d, avgpool2d"):
        check_impl(Exponential(), lambda x, g: x)
    monkeypatch.delitem(IMPLEMENTATIONS.table, MaxPool2d)
    with pytest.raises(TypeError, match="for a MaxPool2d compare with"):
        check_impl(MaxPool2d(2), lambda x, g: x)


def test_only_a_registered_kind_reads_the_argmax_indicator(monkeypatch):
    text = "dL/dx11 = [x11 = argmax z11] g11"
    assert check_formula(MaxPool2d(2), (2, 2), text).ok
    # every kind that reads it (max pooling in 1, 2 and 3 dimensions) unregistered
    for kind in [kind for kind, parts in FORMULAS.table.items() if parts.argmax is not None]:
        monkeypatch.delitem(FORMULAS.table, kind)
    with pytest.raises(FormulaError, match=r"belongs to no layer; MaxPool2d"):
        check_formula(MaxPool2d(2), (2, 2), text)


@pytest.fixture
def exponential(monkeypatch):
    monkeypatch.setitem(ACTIVATIONS, Exponential.kind, ActivationRule(
        Exponential.kind, "expo", value=lambda net: sympy.exp(net),
        derivative=lambda f, net: f(net), formula="f(net) = exp(net)",
        derivative_formula="f'(net) = exp(net)"))
    monkeypatch.setitem(EXPAND.table, Exponential, EXPAND.table[Sigmoid])
    monkeypatch.setitem(KINDS, Exponential.kind, Exponential)
    yield Exponential()
    activation_function.cache_clear()  # the class made from the throwaway row


def test_a_throwaway_activation_is_checked(exponential):
    right = (r"\frac{\partial E}{\partial a^{l-1}_{ij}} = \delta^{l}_{ij} a^{l}_{ij}")
    result = check_formula(exponential, (1, 2, 2), right)
    assert result.ok and result.checked == 4
    # f'(net) evaluated at the input instead of the output: a^{l-1} where a^{l} belongs
    wrong = check_formula(exponential, (1, 2, 2), right.replace("a^{l}", "a^{l-1}"))
    assert not wrong.ok and len(wrong.wrong) == 4
    assert "expo(" in wrong.report()  # the expected terms printed with the row's function
    # the derivative of another row (the sigmoid's) is wrong for this one
    sigmoid_rule = right + r" (1 - a^{l}_{ij})"
    assert not check_formula(exponential, (1, 2, 2), sigmoid_rule).ok


# -- the arrays in the kind's own words --------------------------------------------------------
@pytest.mark.parametrize("layer, size, text, message", [
    (Linear(3, 2), None, "dL/dw[1,2,3] = g[1]",
     "w takes 2 indices here (output feature, input feature: 2 x 3), but is written with 3"),
    (Linear(3, 2), None, "dL/dx[4] = g[1]", "the feature index of x runs from 1 to 3"),
    (Linear(3, 2), None, "dL/dw[3,1] = g[3]*x[1]",
     "the output feature index of w runs from 1 to 2"),
    # a kind without words of its own keeps the generic ones
    (Conv2d(kernel_size=2), (3, 3), "dL/dw[1,2,3] = g[1]",
     "w takes 2 indices here (kernel row, kernel column: 2 x 2) (or all 4, output channel, "
     "input channel, kernel row, kernel column: 1 x 1 x 2 x 2)"),
    (MaxPool2d(2), (2, 2), "dL/dw11 = g11", "this layer has no gradient for the kernel"),
])
def test_arrays_are_named_in_the_kinds_words(layer, size, text, message):
    with pytest.raises(FormulaError) as error:
        check_formula(layer, size, text)
    assert message in str(error.value)


def test_a_kind_without_its_own_words_gets_the_generic_ones(monkeypatch):
    monkeypatch.delitem(FORMULAS.table, Linear)
    with pytest.raises(FormulaError, match="the channel index of x runs from 1 to 3"):
        check_formula(Linear(3, 2), None, "dL/dx[4] = g[1]")


def test_a_throwaway_activation_is_checked_by_check_impl(exponential, monkeypatch):
    # the activations' entry is one for every row (registered for each ACTIVATION_TYPES
    # member): a new row gets check-impl and its mistakes from f and f' alone
    monkeypatch.setitem(IMPLEMENTATIONS.table, Exponential, IMPLEMENTATIONS.table[Sigmoid])
    assert check_impl(exponential, lambda x, g: g * np.exp(x)).ok
    at_output = check_impl(exponential, lambda x, g: g * np.exp(np.exp(x)))
    assert not at_output.ok
    assert at_output.mistakes["x"].name == "f' evaluated at the output instead of the input"
