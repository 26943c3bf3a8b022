"""Elementwise activations, one row each in :data:`rules.ACTIVATIONS`: spec classes,
expansion ``a = f(net)``, ``f'`` as the course notes write it, and their parts in each
stage (each read off the row)."""

# Importing each part registers it with its stage.
import symbackprop.kinds.activation.array_api  # noqa: F401  (--target array-api)
from symbackprop.kinds.activation import check, cli, expand, html, latex, numpy, rules, text  # noqa: F401
from symbackprop.kinds.activation.spec import (
    ELU,
    GELU,
    LeakyReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softplus", "ELU", "GELU", "SiLU"]
