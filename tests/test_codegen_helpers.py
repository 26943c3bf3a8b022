"""A generated module carries only the functions it calls.

For every kind, both styles, every conv2d strategy and chains: each function defined
at module level is reachable from ``__all__`` or module-level code, and each function
defined inside another (a chain's ``_layer_<l>()``) is named outside its own body.
"""

from __future__ import annotations

import ast

import pytest
from conftest import CHAIN_GRID, CONV_GRID, LAYER_GRID

from symbackprop import Conv2d
from symbackprop.core.layers import Sequential, layer_from_spec
from symbackprop.kinds.conv2d.numpy import STRATEGIES, choose_strategy
from symbackprop.render.codegen import generate


def _names(node) -> set[str]:
    return {item.id for item in ast.walk(node) if isinstance(item, ast.Name)}


def unreachable_functions(source: str) -> list[str]:
    """Functions of ``source`` that nothing public reaches, and nested ones never named."""
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    roots = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and \
                [getattr(target, "id", None) for target in node.targets] == ["__all__"]:
            roots |= {element.value for element in node.value.elts}
        elif not isinstance(node, ast.FunctionDef):
            roots |= _names(node)
    reached, pending = set(), [name for name in roots if name in functions]
    while pending:
        name = pending.pop()
        if name not in reached:
            reached.add(name)
            pending += [called for called in _names(functions[name]) if called in functions]
    unused = sorted(set(functions) - reached)
    for outer in functions.values():
        for inner in ast.walk(outer):
            if isinstance(inner, ast.FunctionDef) and inner is not outer:
                inside = {id(node) for node in ast.walk(inner)}
                named = {node.id for node in ast.walk(outer)
                         if isinstance(node, ast.Name) and id(node) not in inside}
                if inner.name not in named:
                    unused.append(f"{outer.name}.{inner.name}")
    return unused


def test_the_check_finds_an_unused_helper():
    source = "__all__ = ['f']\n\ndef f():\n    return g()\n\ndef g():\n    return 1\n\n" \
             "def h():\n    return g()\n"
    assert unreachable_functions(source) == ["h"]


def _conv_cases():
    cases = []
    for case in CONV_GRID:
        layer = Conv2d(**case[1])
        for strategy in STRATEGIES:
            if strategy != "pointwise" or choose_strategy(layer) == "pointwise":
                cases.append(pytest.param(layer, strategy, id=f"{case[0]}-{strategy}"))
    return cases


@pytest.mark.parametrize("layer, strategy", _conv_cases())
def test_a_conv2d_module_carries_only_what_its_strategy_calls(layer, strategy):
    assert unreachable_functions(generate(layer, strategy=strategy)) == []


@pytest.mark.parametrize("style", ["fast", "reference"])
@pytest.mark.parametrize("layer", [layer_from_spec(case[1]) for case in LAYER_GRID] +
                         [Conv2d(**case[1]) for case in CONV_GRID],
                         ids=[case[0] for case in LAYER_GRID] + [case[0] for case in CONV_GRID])
def test_every_module_carries_only_what_it_calls(layer, style):
    assert unreachable_functions(generate(layer, style=style)) == []


@pytest.mark.parametrize("style", ["fast", "reference"])
@pytest.mark.parametrize("case", CHAIN_GRID, ids=[case[0] for case in CHAIN_GRID])
def test_a_chain_carries_only_what_it_calls(case, style):
    assert unreachable_functions(generate(Sequential.from_spec(case[1]), style=style)) == []
