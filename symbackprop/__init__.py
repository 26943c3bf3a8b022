"""symbackprop: derive the backward pass of convolutional layers symbolically.

Pipeline: ``layer spec -> expand -> differentiate -> closed-form rules -> render``.
"""

from .codegen import generate, load
from .derivation import DEFAULT_MAX_TERMS, Derivation, SizeLimitError, derive
from .latex import to_latex
from .layers import Conv2d
from .rules import RuleProof, closed_form_gradients, prove_rules

__all__ = ["Conv2d", "derive", "Derivation", "SizeLimitError", "DEFAULT_MAX_TERMS",
           "prove_rules", "RuleProof", "closed_form_gradients", "generate", "load",
           "to_latex"]
__version__ = "0.1.0"
