"""A chain's backward rule is written once per kind, as one SymPy expression
(``symbackprop.core.operators.CHAIN_RULES``), and the text printout, the LaTeX document
and a chain module's comments all print that expression: swap a kind's expression for
another and all three outputs change with it."""

from __future__ import annotations

import pytest

import symbackprop as sbp
from symbackprop.core.layers import Sequential
from symbackprop.core.operators import (
    CHAIN_RULES,
    Reshape,
    Upsample,
    chain_names,
    chain_rule,
)
from symbackprop.kinds import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from symbackprop.render.codegen import _generate_cached, generate
from symbackprop.render.latex import to_latex
from symbackprop.render.text import to_text

#: (chain, input size, the layer whose rule is swapped): each kind after an activation,
#: so that the text's "together with" line prints its rule too.
CHAINS = {
    "conv2d": (lambda: Sequential(Conv2d(1, 1, kernel_size=2), ReLU(), Conv2d(1, 1, 2)),
               (4, 4), 3),
    "maxpool2d": (lambda: Sequential(Conv2d(1, 1, kernel_size=2), ReLU(), MaxPool2d(2)),
                  (5, 5), 3),
    "avgpool2d": (lambda: Sequential(Conv2d(1, 1, kernel_size=2), ReLU(), AvgPool2d(2)),
                  (5, 5), 3),
    "flatten": (lambda: Sequential(Conv2d(1, 1, kernel_size=2), ReLU(), Flatten()),
                (3, 3), 3),
    "linear": (lambda: Sequential(Linear(3, 2), ReLU(), Linear(2, 2)), (1, 3), 3),
    "activation": (lambda: Sequential(Linear(3, 2), Tanh(), Linear(2, 2)), (1, 3), 2),
}


def _swapped(layer, names):
    """An expression no kind builds: ``upsample(reshape(g, x))``."""
    return Upsample(Reshape(names["g"], names["x"]))


def _outputs(chain, size):
    derivation = sbp.derive(chain, size)
    _generate_cached.cache_clear()  # the module is generated again, not read from the cache
    try:
        return to_text(derivation), to_latex(derivation), generate(chain)
    finally:
        _generate_cached.cache_clear()


@pytest.mark.parametrize("kind", CHAINS)
def test_the_three_printers_print_the_expression_the_kind_registered(kind, monkeypatch):
    make, size, number = CHAINS[kind]
    chain = make()
    layer = chain.layers[number - 1]
    text = {"latex": rf"\delta^{{[{number - 1}]}} = \operatorname{{upsample}}\bigl("
                     rf"\operatorname{{reshape}}\bigl(\delta^{{[{number}]}}\bigr)\bigr)",
            "module": f"delta{number - 1} = upsample(delta{number} reshaped to the shape of "
                      f"a{number - 1})"}
    if number == 3:  # the activation of layer 2 joins layer 3's rule
        text["text"] = "together with layer 3: delta1 = upsample(reshape(delta3)) * f'(a1)"
    else:  # the activation itself: its rule applied to what layer 3 hands back
        text["text"] = "together with layer 3: delta1 = upsample(reshape(w3^T delta3))"

    before = dict(zip(("text", "latex", "module"), _outputs(chain, size)))
    for output, line in text.items():
        assert line not in before[output], (output, line)

    monkeypatch.setitem(CHAIN_RULES.table, type(layer), _swapped)
    after = dict(zip(("text", "latex", "module"), _outputs(chain, size)))
    for output, line in text.items():
        assert line in after[output], (output, line, after[output])


@pytest.mark.parametrize("kind", CHAINS)
def test_every_kind_of_a_chain_registers_its_rule(kind):
    make, size, number = CHAINS[kind]
    layer = make().layers[number - 1]
    assert type(layer) in CHAIN_RULES.table
    expression = chain_rule(layer, chain_names("g", "x", "w"))
    assert expression.free_symbols <= set(chain_names("g", "x", "w").values())
    assert "g" in {symbol.name for symbol in expression.free_symbols}


@pytest.mark.parametrize("layer", [Conv2d(kernel_size=2, padding=1), MaxPool2d(3, stride=2),
                                   AvgPool2d(2)], ids=["conv2d", "maxpool2d", "avgpool2d"])
def test_a_module_prints_the_core_output_size_formula(layer, monkeypatch):
    """The output size of a generated module is the core's formula in the module's names:
    change the core's formula and the module's code and docstring change with it."""
    import sympy

    from symbackprop.core import indexing

    original = indexing.output_size_formula

    def changed(axis, values=None, dilated=True):
        out, formula = original(axis, values, dilated)
        return out, sympy.Add(*formula.args, sympy.Symbol("sh", integer=True), evaluate=False)

    size = "(height + TOP + BOTTOM - "
    _generate_cached.cache_clear()
    assert size in generate(layer) and "// SH + 1 + SH" not in generate(layer)
    monkeypatch.setattr(indexing, "output_size_formula", changed)
    _generate_cached.cache_clear()
    try:
        source = generate(layer)
    finally:
        _generate_cached.cache_clear()
    assert "out_height = " + size in source and "// SH + 1 + SH\n" in source
    assert "Wo = (W + " in source and f"+ 1 + {layer.stride[1]}\n" in source
