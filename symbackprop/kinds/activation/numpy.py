"""The NumPy code of an activation, printed from its row of :data:`rules.ACTIVATIONS`.

``f`` and ``f'`` are the row's SymPy expressions, printed by
:class:`~symbackprop.render.codegen.GeneratedCodePrinter`: the formula is written
once, in the row, and the code cannot drift from it.  ``f'`` is printed as the notes
write it, in terms of ``a = f(x)`` where the row does (the sigmoid's ``a (1 - a)``).
Every activation type registers the same entry: nothing here names one.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from symbackprop.kinds.activation.rules import ACTIVATIONS, ActivationBase
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES
from symbackprop.render.codegen import (
    NUMPY,
    NumpyKind,
    common_context,
    helpers_used,
    numpy_code,
)

__all__ = ["ActivationCode", "activation_code"]


@dataclass(frozen=True)
class ActivationCode:
    """NumPy expressions of ``f(x)`` and ``f'(x)``; ``f'`` may read ``a = f(x)``.

    ``constants`` are ``(module constant name, value, the rule's name)``; ``helpers`` the
    functions NumPy lacks that the code calls (``erf``), which the module defines.
    """

    value: str
    derivative: str
    constants: tuple
    derivative_uses_value: bool
    helpers: tuple = ()
    value_locals: tuple = ()  # (name, code) computed before f, e.g. ("sigmoid", "...")
    derivative_locals: tuple = ()  # the same before f' (and a = f(x) when f' reads it)


def _called_functions(*expressions) -> list:
    """The row functions ``expressions`` call (SiLU's ``sigmoid``, GELU's ``Phi``), in the
    order their names sort."""
    found = set()
    for expression in expressions:
        found |= {part.func for part in sympy.sympify(expression).atoms(ActivationBase)}
    return sorted(found, key=lambda function: function.__name__)


def activation_code(layer, printer=numpy_code) -> ActivationCode:
    """Print ``f`` and ``f'`` of ``layer``'s row with its constants as module names;
    ``printer(expression, arrays)`` prints (NumPy's by default, the array-API target
    passes its own).

    A row function the formulas call (SiLU's ``sigmoid``) is computed once into a local
    variable of its name (``sigmoid = ...``), which the formulas then read.
    """
    rule = ACTIVATIONS[layer.row]
    x, a = sympy.Symbol("x", real=True), sympy.Symbol("a", real=True)
    names = [name.upper() for name in rule.constants]
    constants = [sympy.Symbol(name, real=True) for name in names]
    value = rule.value(x, *constants)

    def f(argument):  # f(net) is a = f(x), read once by the code
        return a if argument == x else rule.value(argument, *constants)

    derivative = rule.derivative(f, x, *constants)
    called = _called_functions(value, derivative)
    local = {function: sympy.Symbol(function.__name__, real=True) for function in called}
    arrays = ("x", "a", *(symbol.name for symbol in local.values()))

    def code(expression) -> str:
        return printer(sympy.sympify(expression).replace(
            lambda part: part.func in local and part.args == (x,),
            lambda part: local[part.func]), arrays)

    def locals_of(*expressions) -> tuple:
        return tuple((local[function].name, code(function.rule.value(x)))
                     for function in _called_functions(*expressions))

    uses_value = a in sympy.sympify(derivative).free_symbols
    return ActivationCode(
        value=code(value),
        derivative=code(derivative),
        constants=tuple((name, repr(float(number)), rule_name) for name, number, rule_name in
                        zip(names, layer.constants, rule.constants)),
        derivative_uses_value=uses_value,
        helpers=tuple(helpers_used(*(function.rule.value(x) for function in called),
                                   value, derivative)),
        value_locals=locals_of(value),
        derivative_locals=locals_of(*((value, derivative) if uses_value else (derivative,))),
    )


def _activation_context(layer, style: str, strategy: str | None) -> dict:
    rule, code = ACTIVATIONS[layer.row], activation_code(layer)
    return dict(
        common_context(layer),
        template="activation/activation.py.j2",  # both styles: the code is the rule
        exports=["forward", "backward"],
        formula=rule.formula,
        derivative_formula=rule.derivative_formula,
        constants=list(code.constants),
        value=code.value,
        derivative=code.derivative,
        uses_value=code.derivative_uses_value,
        helpers=list(code.helpers),
        value_locals=list(code.value_locals),
        derivative_locals=list(code.derivative_locals),
    )


#: The one entry every activation shares (a new row's type registers it too).
ACTIVATION_NUMPY = NumpyKind(
    context=_activation_context,

    elementwise=True,
)

for _layer_type in ACTIVATION_TYPES:
    NUMPY.register(_layer_type, ACTIVATION_NUMPY)
