"""Every activation in the LaTeX document, from its row of
:data:`~symbackprop.kinds.activation.rules.ACTIVATIONS`: ``f`` and ``f'`` printed from
the row's SymPy expressions, its constants, and how its SymPy function prints
(``\\sigma(x_{11})``)."""

from __future__ import annotations

import sympy

from symbackprop.core.operators import CHAIN_RULES, ActivationDerivative, ElementwiseProduct
from symbackprop.kinds.activation.rules import ACTIVATIONS, ActivationBase, activation_function
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES
from symbackprop.render.latex import LATEX, LatexParts, LayerLatexPrinter

#: The argument of ``f`` in the general formulas, as the notes write it.
NET = sympy.Symbol("net", real=True)


def _function_latex(printer, expr, exp=None) -> str:
    """``\\operatorname{relu}(x_{11})``, ``\\tanh^{2}(x_{11})``: the row's ``latex_name``."""
    name = expr.rule.latex_name or printer._hprint_Function(expr.func.__name__)
    power = "" if exp is None else f"^{{{exp}}}"
    return rf"{name}{power}({printer._print(expr.args[0])})"


# Every activation's function derives from ActivationBase: the LaTeX printer learns it
# from here and names no activation.
LayerLatexPrinter.print_function(ActivationBase, _function_latex)


def formulas(layer, standalone_derivative: bool = False) -> tuple[str, str]:
    """``f(net)`` and ``f'(net)`` in LaTeX, printed from the layer's row.

    A row function a formula calls (SiLU's ``sigma``) is defined after the first formula
    that calls it; with ``standalone_derivative`` ``f'`` defines every one it calls (a
    chain's walk states ``f'`` alone)."""
    rule = ACTIVATIONS[layer.row]
    constants = [sympy.Symbol(name, real=True) for name in rule.constants]
    function = activation_function(layer.row)
    value = rule.value(NET, *constants)
    derivative = rule.derivative(lambda argument: function(argument, *constants), NET,
                                 *constants)
    printer = LayerLatexPrinter(None, settings={"symbol_names": {NET: r"\mathit{net}"}})
    # The function's own name first where it is not the formula itself:
    # \sigma(net) = \frac{1}{1 + e^{-net}} says what the \sigma of the equations is.
    named, shown = printer.doprint(function(NET, *constants)), printer.doprint(value)
    shown = shown if named == shown else f"{named} = {shown}"
    # The row functions each formula calls (SiLU's \sigma, GELU's \Phi), each defined once.
    defined = {function}
    shown_derivative = printer.doprint(derivative)
    formulas = []
    for expression, text in ((value, shown), (derivative, shown_derivative)):
        if standalone_derivative and expression is derivative:
            defined = {function}
        for called in sorted({part.func for part in sympy.sympify(expression).atoms(
                ActivationBase)} - defined, key=lambda called: called.__name__):
            defined.add(called)
            text += rf",\quad {printer.doprint(called(NET))} = " \
                    rf"{printer.doprint(called.rule.value(NET))}"
        formulas.append(text)
    return formulas[0], formulas[1]


def _constants(layer) -> str:
    rule = ACTIVATIONS[layer.row]
    return "".join(rf",\quad {sympy.latex(sympy.Symbol(name))} = {value:g}"
                   for name, value in zip(rule.constants, layer.constants))


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    value, derivative = formulas(layer)
    dx = rf"\frac{{\partial {loss}}}{{\partial {x}}}"
    return {"forward": rf"{z} = f({x}),\quad f(\mathit{{net}}) = {value}",
            "backward": rf"{dx} = {g} \odot f'({x}),\quad f'(\mathit{{net}}) = {derivative}"
                        + _constants(layer)}


# A chain's step delta^{l-1} from delta^l, written once: the text printout, the LaTeX
# walk and a chain module's comments print this expression (core/operators.py).
def chain_rule(layer, names):
    """``g * f'(x)`` elementwise."""
    return ElementwiseProduct(names["g"], ActivationDerivative(names["x"]))


#: One entry for every activation: everything it says comes from the layer's row.
PARTS = LatexParts(
    title=lambda layer: f"Backpropagation through {layer.title}",
    general=general,
    chain_words=lambda layer, printer:
        f"an activation, $f'(\\mathit{{net}}) = {formulas(layer, True)[1]}$",
    elementwise=True)

for _layer_type in ACTIVATION_TYPES:
    LATEX.register(_layer_type, PARTS)
    CHAIN_RULES.register(_layer_type, chain_rule)
