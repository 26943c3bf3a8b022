"""symbackprop: derive the backward pass of convolutional layers symbolically.

Pipeline: ``layer spec -> expand -> differentiate -> closed-form rules -> render``.
"""

from .codegen import generate, load
from .derivation import DEFAULT_MAX_TERMS, Derivation, SizeLimitError, derive
from .layers import Conv2d

__all__ = ["Conv2d", "derive", "Derivation", "SizeLimitError", "DEFAULT_MAX_TERMS"]
__all__ += ["generate", "load"]
__version__ = "0.1.0"
