"""Elementwise activations, one row each in :data:`rules.ACTIVATIONS`: spec classes,
expansion ``a = f(net)`` and ``f'`` as the course notes write it."""

from symbackprop.kinds.activation import cli, expand, rules  # noqa: F401  (they register themselves)
from symbackprop.kinds.activation.spec import LeakyReLU, ReLU, Sigmoid, Softplus, Tanh

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softplus"]
