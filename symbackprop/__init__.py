"""symbackprop: derive the backward pass of convolutional networks symbolically.

Pipeline: ``layer spec -> expand -> differentiate -> closed-form rules -> render``.
"""

from .chain import ChainDerivation
from .check import FormulaCheck, check_formula
from .check_impl import ImplCheck, ImplementationError, check_impl
from .codegen import generate, load
from .derivation import DEFAULT_MAX_TERMS, Derivation, SizeLimitError, derive
from .formula import FormulaError
from .html import to_html
from .latex import to_latex
from .layers import (
    AvgPool2d,
    Conv2d,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    layer_from_spec,
)
from .rules import RuleProof, closed_form_gradients, prove_rules

__all__ = ["Conv2d", "derive", "Derivation", "SizeLimitError", "DEFAULT_MAX_TERMS",
           "prove_rules", "RuleProof", "closed_form_gradients", "generate", "load",
           "to_latex", "to_html", "check_formula", "check_impl", "FormulaCheck", "ImplCheck",
           "FormulaError", "ImplementationError",
           "MaxPool2d", "AvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Flatten", "Linear",
           "Sequential", "layer_from_spec", "ChainDerivation"]
__version__ = "0.1.0"
