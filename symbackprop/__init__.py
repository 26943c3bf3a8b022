"""symbackprop: derive the backward pass of neural-network layers symbolically.

Pipeline: ``layer spec -> expand -> differentiate -> closed-form rules -> render``, and
the checker on top.  The layer classes come from :mod:`symbackprop.kinds`, one package
per kind; this module only gathers the public names.
"""

from symbackprop import kinds
from symbackprop._version import __version__
from symbackprop.check.formula import FormulaError
from symbackprop.check.formula_check import FormulaCheck, FormulaChecks, check_formula
from symbackprop.check.impl import ImplCheck, ImplementationError, check_impl
from symbackprop.core.chain import ChainDerivation
from symbackprop.core.derivation import DEFAULT_MAX_TERMS, Derivation, SizeLimitError, derive
from symbackprop.core.layers import Residual, Sequential, layer_from_spec
from symbackprop.core.rules import RuleProof
from symbackprop.kinds import *  # noqa: F403  (every kind's layer class: kinds.__all__)
from symbackprop.kinds.conv2d.rules import closed_form_gradients, prove_rules
from symbackprop.render.codegen import generate, load
from symbackprop.render.html import to_html
from symbackprop.render.latex import to_latex
from symbackprop.render.worked_example import worked_context as _worked  # noqa: F401 (to_latex)

__all__ = [*kinds.__all__, "Sequential", "Residual", "layer_from_spec",
           "derive", "Derivation", "ChainDerivation", "SizeLimitError", "DEFAULT_MAX_TERMS",
           "prove_rules", "RuleProof", "closed_form_gradients", "generate", "load",
           "to_latex", "to_html", "check_formula", "check_impl", "FormulaCheck",
           "FormulaChecks", "ImplCheck", "FormulaError", "ImplementationError", "__version__"]
