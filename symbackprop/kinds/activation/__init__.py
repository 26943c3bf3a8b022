"""Elementwise activations, one row each in :data:`rules.ACTIVATIONS`: spec classes,
expansion ``a = f(net)`` and ``f'`` as the course notes write it."""

import symbackprop.kinds.activation.numpy  # noqa: F401  (the NumPy code generator's part)
from symbackprop.kinds.activation import cli, expand, rules  # noqa: F401  (they register themselves)
from symbackprop.kinds.activation.spec import LeakyReLU, ReLU, Sigmoid, Tanh

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh"]
