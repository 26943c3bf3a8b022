"""Activation specs: elementwise ``a = f(net)``, one small class per function.

The functions and their derivatives are the rows of :mod:`symbackprop.kinds.activation.rules`.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from symbackprop.core.layers import SpecMixin, batched, check_batch, sample_shape
from symbackprop.core.naming import MODULE_NAMES, number_token
from symbackprop.core.registry import register_kind
from symbackprop.kinds.activation.rules import ACTIVATIONS


@dataclass(frozen=True)
class _Activation(SpecMixin):
    """Elementwise ``a = f(net)``; ``kind`` names its row of ``rules.ACTIVATIONS``.

    A subclass's dataclass fields are the function's constants besides ``net``, in the
    order of the row's ``constants`` (leaky ReLU's slope): finite numbers, and positive
    where the class lists them in ``positive``.
    """

    parameter_names = ()
    title = ""
    positive = ()  # fields that must be > 0
    #: Fields that choose a variant rather than hold a number, field -> its values, the
    #: default first (GELU's ``approximate``: ``("none", "tanh")``).  A value other than
    #: the default selects the row ``<kind>_<value>`` (see :attr:`row`).
    choices = {}

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in self.choices:
                allowed = self.choices[field.name]
                if not isinstance(value, str) or value not in allowed:
                    raise ValueError(f"{field.name} must be one of "
                                     f"{', '.join(map(repr, allowed))}, got {value!r}")
                continue
            if not isinstance(value, numbers.Real) or isinstance(value, bool) \
                    or not math.isfinite(value):
                raise ValueError(f"{field.name} must be a finite number, got {value!r}")
            if field.name in self.positive and value <= 0:
                raise ValueError(f"{field.name} must be > 0, got {value!r}")

    @property
    def parameter_shapes(self) -> dict:
        return {}

    @property
    def number_fields(self) -> tuple:
        """The dataclass fields that hold the row's constants (not the :attr:`choices`)."""
        return tuple(field for field in dataclasses.fields(self)
                     if field.name not in self.choices)

    @property
    def constants(self) -> tuple:
        """Numbers the function takes besides ``net`` (the leaky slope), as the row names them."""
        return tuple(getattr(self, field.name) for field in self.number_fields)

    @property
    def row(self) -> str:
        """The key of this layer's row of ``rules.ACTIVATIONS``: ``kind``, or
        ``kind_value`` for each choice field not at its default (``gelu_tanh``)."""
        return "_".join([self.kind, *(getattr(self, name) for name, allowed
                                      in self.choices.items()
                                      if getattr(self, name) != allowed[0])])

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """``(N, C, H, W)`` from an int, ``(H, W)`` or ``(C, H, W)``; ``(N, F)`` from ``(F,)``."""
        return (check_batch(batch), *sample_shape(input_size, allow_features=True))

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        """The input's shape: the function applies to every element."""
        return batched(input_shape, self)

    def term_count(self, input_shape) -> int:
        return math.prod(batched(input_shape, self))

    def describe(self) -> str:
        """``ReLU``; ``LeakyReLU, negative slope 0.01``; ``GELU, approximate tanh``: the
        title, every constant and every choice not at its default."""
        words = [self.title]
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name in self.choices:
                if value != self.choices[field.name][0]:
                    words.append(f"{field.name.replace('_', ' ')} {value}")
            else:
                words.append(f"{field.name.replace('_', ' ')} {value:g}")
        return ", ".join(words)


@register_kind
@dataclass(frozen=True)
class ReLU(_Activation):
    """``max(net, 0)``; its derivative is 1 where ``net > 0``, else 0 (0 at 0)."""

    kind = "relu"
    title = "ReLU"


@register_kind
@dataclass(frozen=True)
class LeakyReLU(_Activation):
    """``net`` where ``net > 0``, else ``negative_slope * net`` (slope alpha at 0)."""

    negative_slope: float = 0.01

    kind = "leakyrelu"
    short_name = "lrelu"  # in a chain's module name
    spec_aliases = {"slope": "negative_slope"}  # the command line's option name
    title = "LeakyReLU"


@register_kind
@dataclass(frozen=True)
class Sigmoid(_Activation):
    """The logistic function ``1 / (1 + exp(-net))``; derivative ``s (1 - s)``."""

    kind = "sigmoid"
    title = "Sigmoid"


@register_kind
@dataclass(frozen=True)
class Tanh(_Activation):
    """``tanh(net)``; derivative ``1 - tanh(net)^2``."""

    kind = "tanh"
    title = "Tanh"


@register_kind
@dataclass(frozen=True)
class Softplus(_Activation):
    """``log(1 + exp(beta net)) / beta``, and ``net`` itself where ``beta net > threshold``
    (as PyTorch's ``Softplus(beta, threshold)``, which keeps large inputs exact)."""

    beta: float = 1.0
    threshold: float = 20.0

    kind = "softplus"
    title = "Softplus"
    positive = ("beta",)


@register_kind
@dataclass(frozen=True)
class ELU(_Activation):
    """``net`` where ``net > 0``, else ``alpha (exp(net) - 1)``; derivative ``alpha exp(net)``
    there (``alpha`` at 0, as PyTorch's ``ELU(alpha)``)."""

    alpha: float = 1.0

    kind = "elu"
    title = "ELU"


@register_kind
@dataclass(frozen=True)
class GELU(_Activation):
    """``net Phi(net)`` with the standard normal distribution function ``Phi`` (erf), or
    with ``approximate="tanh"`` PyTorch's tanh approximation of it (a row of its own)."""

    approximate: str = "none"

    kind = "gelu"
    title = "GELU"
    choices = {"approximate": ("none", "tanh")}


@register_kind
@dataclass(frozen=True)
class SiLU(_Activation):
    """``net s(net)`` with the logistic sigmoid ``s`` (swish); derivative
    ``s (1 + net (1 - s))``."""

    kind = "silu"
    title = "SiLU"


#: Every activation layer type, in the order the stages register them.
ACTIVATION_TYPES = (ReLU, LeakyReLU, Sigmoid, Tanh, Softplus, ELU, GELU, SiLU)


def activation_module_name(layer) -> str:
    """``relu``, ``leakyrelu_a0p01``, ``gelu_tanh``: the row and each constant by the first
    letter of the name its row gives it (``alpha``)."""
    names = ACTIVATIONS[layer.row].constants
    return "".join([layer.row, *(f"_{name[0]}{number_token(value)}"
                                 for name, value in zip(names, layer.constants))])


for _layer_type in ACTIVATION_TYPES:
    MODULE_NAMES.register(_layer_type, activation_module_name)
