"""Elementwise activations, one row each in :data:`rules.ACTIVATIONS`: spec classes,
expansion ``a = f(net)`` and ``f'`` as the course notes write it."""

import symbackprop.kinds.activation.html  # noqa: F401  (it registers itself)
import symbackprop.kinds.activation.latex  # noqa: F401  (it registers itself)
import symbackprop.kinds.activation.text  # noqa: F401  (it registers itself)
from symbackprop.kinds.activation import cli, expand, rules  # noqa: F401  (they register themselves)

from symbackprop.kinds.activation import check  # noqa: F401  # isort: skip  (it registers itself)
from symbackprop.kinds.activation.spec import LeakyReLU, ReLU, Sigmoid, Tanh

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh"]
