"""Inverted dropout with an explicit keep-mask: ``z = x * m / (1 - p)``, the mask an input
that is read but never differentiated (a :class:`~symbackprop.core.expand.Forward`
constant), so the derivation and the generated code are deterministic."""

# Importing each part registers it with its stage.
from symbackprop.kinds.dropout import check, cli, expand, html, latex, numpy, text  # noqa: F401
from symbackprop.kinds.dropout.spec import Dropout

__all__ = ["Dropout"]
