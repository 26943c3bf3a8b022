"""Activations as data: one row per function, ``f`` and ``f'`` as SymPy expressions.

The differentiate stage never names a layer; it differentiates what the expand
stage wrote.  The SymPy functions made here carry their own derivative in the form
the course notes write it, so that differentiating ``L = sum(g*z)`` gives
``g s (1 - s)`` for a sigmoid rather than an equivalent tangle of exponentials.

:data:`ACTIVATIONS` holds one :class:`ActivationRule` per activation: ``f`` and
``f'`` as SymPy expressions and as words.  Adding an activation is one row.  A formula
may call another row by its SymPy function (SiLU's ``sigmoid``, GELU's ``Phi``); the
rows in :data:`PARTS` are such named parts and no layer.
:func:`activation_function` makes the SymPy function of a row.

Each function evaluates itself when its arguments are numbers, and has a
``_imp_`` so that ``sympy.lambdify`` can evaluate it numerically.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import sympy

__all__ = [
    "ActivationRule",
    "ACTIVATIONS",
    "ActivationBase",
    "activation_function",
]


@dataclass(frozen=True)
class ActivationRule:
    """One activation ``a = f(net)`` and its derivative.

    Attributes
    ----------
    kind : the layer kind (``"relu"``).
    function_name : how the function prints (``relu(x11)``).
    value : ``value(net, *constants)`` -> ``f(net)`` as a plain SymPy expression.
    derivative : ``derivative(f, net, *constants)`` -> ``f'(net)`` as the notes
        write it; ``f`` applies the activation itself, so the sigmoid's is
        ``f(net) * (1 - f(net))``.  The tests prove it equals ``diff(value)``.
    formula, derivative_formula : the same in words, for printouts.
    constants : names of the numbers the function takes besides ``net``.
    latex_name : how the function prints in LaTeX (``\\sigma``); by default SymPy's
        spelling of ``function_name`` (``\\tanh``, ``\\operatorname{relu}``).
    text_name : how it prints in the terminal when not as ``function_name`` (``u'``).
    """

    kind: str
    function_name: str
    value: Callable
    derivative: Callable
    formula: str
    derivative_formula: str
    constants: tuple = field(default=())
    latex_name: str = ""
    text_name: str = ""


def _step(net):
    return sympy.Piecewise((1, net > 0), (0, True))


def _called(kind: str):
    """``net -> f(net)`` with the SymPy function of row ``kind``: a formula that calls
    another row (SiLU's sigmoid, GELU's Phi) prints it by name, ``x11 sigmoid(x11)``.
    The function is made when first called, after the table below exists."""
    return lambda net: activation_function(kind)(net)


_sigmoid, _normal_cdf, _normal_pdf = _called("sigmoid"), _called("normal_cdf"), \
    _called("normal_pdf")
_gelu_u, _gelu_du = _called("gelu_u"), _called("gelu_du")

#: The cubic coefficient of GELU's tanh approximation (PyTorch's and the GELU paper's).
GELU_TANH_COEFFICIENT = sympy.Float("0.044715")

#: Rows that are no layer: named parts of the layers' formulas, so that the sums stay
#: short (``Phi(x11) + x11 phi(x11)``) and the generated code computes each part once.
PARTS = (
    ActivationRule(
        "normal_cdf", "Phi",
        value=lambda net: (1 + sympy.erf(net / sympy.sqrt(2))) / 2,
        derivative=lambda f, net: _normal_pdf(net),
        formula="Phi(net) = (1 + erf(net / sqrt(2))) / 2, the standard normal distribution",
        derivative_formula="Phi'(net) = phi(net)", latex_name=r"\Phi"),
    ActivationRule(
        "normal_pdf", "phi",
        value=lambda net: sympy.exp(-net ** 2 / 2) / sympy.sqrt(2 * sympy.pi),
        derivative=lambda f, net: -net * f(net),
        formula="phi(net) = exp(-net^2 / 2) / sqrt(2 pi), the standard normal density",
        derivative_formula="phi'(net) = -net phi(net)", latex_name=r"\varphi"),
    ActivationRule(
        "gelu_u", "u",
        value=lambda net: sympy.sqrt(2 / sympy.pi) * (net + GELU_TANH_COEFFICIENT * net ** 3),
        derivative=lambda f, net: _gelu_du(net),
        formula="u(net) = sqrt(2 / pi) (net + 0.044715 net^3)",
        derivative_formula="u'(net) = sqrt(2 / pi) (1 + 3 * 0.044715 net^2)", latex_name="u"),
    ActivationRule(
        "gelu_du", "du",
        value=lambda net: sympy.sqrt(2 / sympy.pi) * (1 + 3 * GELU_TANH_COEFFICIENT * net ** 2),
        derivative=lambda f, net: sympy.sqrt(2 / sympy.pi) * 6 * GELU_TANH_COEFFICIENT * net,
        formula="u'(net) = sqrt(2 / pi) (1 + 3 * 0.044715 net^2)",
        derivative_formula="u''(net) = sqrt(2 / pi) 6 * 0.044715 net",
        latex_name="u'", text_name="u'"),
)


#: The activations, by layer kind.  ``f'`` at 0 follows the notes: ReLU's is 0,
#: leaky ReLU's is the slope.
ACTIVATIONS = {rule.kind: rule for rule in (
    ActivationRule(
        "relu", "relu",
        value=lambda net: sympy.Piecewise((net, net > 0), (0, True)),
        derivative=lambda f, net: _step(net),
        formula="f(net) = max(net, 0)",
        derivative_formula="f'(net) = [net > 0]: 1 if net > 0 else 0 (0 at 0)"),
    ActivationRule(
        "leakyrelu", "leaky_relu",
        value=lambda net, slope: sympy.Piecewise((net, net > 0), (slope * net, True)),
        derivative=lambda f, net, slope: sympy.Piecewise((1, net > 0), (slope, True)),
        formula="f(net) = net if net > 0 else alpha net",
        derivative_formula="f'(net) = 1 if net > 0 else alpha (alpha at 0)",
        constants=("alpha",), latex_name=r"\operatorname{lrelu}"),
    ActivationRule(
        "sigmoid", "sigmoid",
        value=lambda net: 1 / (1 + sympy.exp(-net)),
        derivative=lambda f, net: f(net) * (1 - f(net)),
        formula="f(net) = s(net) = 1 / (1 + exp(-net))",
        derivative_formula="f'(net) = s(net) (1 - s(net))", latex_name=r"\sigma"),
    ActivationRule(
        "tanh", "tanh",
        value=lambda net: sympy.tanh(net),
        derivative=lambda f, net: 1 - f(net) ** 2,
        formula="f(net) = tanh(net)",
        derivative_formula="f'(net) = 1 - tanh(net)^2"),
    ActivationRule(
        "softplus", "softplus",
        value=lambda net, beta, threshold: sympy.Piecewise(
            (net, beta * net > threshold), (sympy.log(1 + sympy.exp(beta * net)) / beta, True)),
        derivative=lambda f, net, beta, threshold: sympy.Piecewise(
            (1, beta * net > threshold), (1 / (1 + sympy.exp(-beta * net)), True)),
        formula="f(net) = log(1 + exp(beta net)) / beta, or net where beta net > threshold",
        derivative_formula="f'(net) = 1 / (1 + exp(-beta net)), or 1 where beta net > threshold",
        constants=("beta", "threshold")),
    ActivationRule(
        "elu", "elu",
        value=lambda net, alpha: sympy.Piecewise((net, net > 0),
                                                 (alpha * (sympy.exp(net) - 1), True)),
        derivative=lambda f, net, alpha: sympy.Piecewise((1, net > 0),
                                                         (alpha * sympy.exp(net), True)),
        formula="f(net) = net if net > 0 else alpha (exp(net) - 1)",
        derivative_formula="f'(net) = 1 if net > 0 else alpha exp(net) (alpha at 0)",
        constants=("alpha",), latex_name=r"\operatorname{elu}"),
    # GELU is x times the standard normal distribution function Phi; its approximate="tanh"
    # variant is a row of its own (the spec class picks the row by its choice field).
    ActivationRule(
        "gelu", "gelu",
        value=lambda net: net * _normal_cdf(net),
        derivative=lambda f, net: _normal_cdf(net) + net * _normal_pdf(net),
        formula="f(net) = net Phi(net), Phi(net) = (1 + erf(net / sqrt(2))) / 2",
        derivative_formula="f'(net) = Phi(net) + net phi(net), phi = exp(-net^2/2) / sqrt(2 pi)",
        latex_name=r"\operatorname{gelu}"),
    ActivationRule(
        "gelu_tanh", "gelu",
        value=lambda net: net * (1 + sympy.tanh(_gelu_u(net))) / 2,
        derivative=lambda f, net: (1 + sympy.tanh(_gelu_u(net))) / 2
        + net * (1 - sympy.tanh(_gelu_u(net)) ** 2) * _gelu_du(net) / 2,
        formula="f(net) = net (1 + tanh(u)) / 2, u = sqrt(2/pi) (net + 0.044715 net^3)",
        derivative_formula="f'(net) = (1 + tanh(u)) / 2 + net (1 - tanh(u)^2) u'(net) / 2",
        latex_name=r"\operatorname{gelu}"),
    ActivationRule(
        "silu", "silu",
        value=lambda net: net * _sigmoid(net),
        derivative=lambda f, net: _sigmoid(net) * (1 + net * (1 - _sigmoid(net))),
        formula="f(net) = net s(net), s(net) = 1 / (1 + exp(-net))",
        derivative_formula="f'(net) = s(net) (1 + net (1 - s(net)))",
        latex_name=r"\operatorname{silu}"),
    *PARTS,
)}


class ActivationBase(sympy.Function):
    """Base of the SymPy function of an :class:`ActivationRule` (printers dispatch on
    ``_print_ActivationBase``: SymPy honours a base class ending in ``Base``).

    ``f(net, *constants)``: evaluates for a number, differentiates by the rule.
    """

    rule: ActivationRule = None

    @classmethod
    def eval(cls, net, *constants):
        if net.is_Number:
            return cls.rule.value(net, *constants)
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sympy.ArgumentIndexError(self, argindex)
        net, *constants = self.args
        return self.rule.derivative(lambda value: self.func(value, *constants), net, *constants)

    def _eval_is_real(self):
        return self.args[0].is_real


@functools.lru_cache(maxsize=None)
def activation_function(kind: str) -> type:
    """The SymPy function class of ``ACTIVATIONS[kind]`` (one class per kind)."""
    rule = ACTIVATIONS[kind]
    net = sympy.Dummy("net", real=True)
    constants = [sympy.Dummy(name, real=True) for name in rule.constants]
    numeric = sympy.lambdify([net, *constants], rule.value(net, *constants), modules="numpy")
    return type(rule.function_name, (ActivationBase,), {
        "rule": rule, "nargs": 1 + len(rule.constants),
        "_imp_": staticmethod(numeric),
        "__doc__": f"{rule.formula}; {rule.derivative_formula}.",
    })
