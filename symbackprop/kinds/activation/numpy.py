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

from symbackprop.kinds.activation.rules import ACTIVATIONS
from symbackprop.kinds.activation.spec import ACTIVATION_TYPES
from symbackprop.render.codegen import NUMPY, NumpyKind, common_context, numpy_code

__all__ = ["ActivationCode", "activation_code"]


@dataclass(frozen=True)
class ActivationCode:
    """NumPy expressions of ``f(x)`` and ``f'(x)``; ``f'`` may read ``a = f(x)``.

    ``constants`` are ``(module constant name, value, the rule's name)``.
    """

    value: str
    derivative: str
    constants: tuple
    derivative_uses_value: bool


def activation_code(layer, code=numpy_code) -> ActivationCode:
    """Print ``f`` and ``f'`` of ``layer``'s row with its constants as module names.

    ``code(expression, arrays)`` prints (the NumPy printer by default; the array-API
    target passes its own).
    """
    rule = ACTIVATIONS[layer.kind]
    x, a = sympy.Symbol("x", real=True), sympy.Symbol("a", real=True)
    names = [name.upper() for name in rule.constants]
    constants = [sympy.Symbol(name, real=True) for name in names]
    value = rule.value(x, *constants)

    def f(argument):  # f(net) is a = f(x), read once by the code
        return a if argument == x else rule.value(argument, *constants)

    derivative = rule.derivative(f, x, *constants)
    return ActivationCode(
        value=code(value, ("x", "a")),
        derivative=code(derivative, ("x", "a")),
        constants=tuple((name, repr(float(number)), rule_name) for name, number, rule_name in
                        zip(names, layer.constants, rule.constants)),
        derivative_uses_value=a in sympy.sympify(derivative).free_symbols,
    )


def _activation_context(layer, style: str, strategy: str | None) -> dict:
    rule, code = ACTIVATIONS[layer.kind], activation_code(layer)
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
    )


#: The one entry every activation shares (a new row's type registers it too).
ACTIVATION_NUMPY = NumpyKind(
    context=_activation_context,

    elementwise=True,
)

for _layer_type in ACTIVATION_TYPES:
    NUMPY.register(_layer_type, ACTIVATION_NUMPY)
