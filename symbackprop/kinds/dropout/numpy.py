"""The NumPy code of dropout: one product forward, the same one back."""

from __future__ import annotations

from symbackprop.kinds.dropout.spec import Dropout
from symbackprop.render.codegen import NUMPY, NumpyKind, common_context


def _dropout_context(layer, style: str, strategy: str | None) -> dict:
    scale = layer.scale
    # the mask is an argument of forward and backward, but no gradient comes back for it
    return dict(common_context(layer), parameters_signature="mask", gradients_signature="grad_x,",
                template="dropout/dropout.py.j2",  # both styles: the code is the rule
                exports=["forward", "backward"], p=repr(float(layer.p)),
                scale=repr(float(scale)),
                scale_text=str(scale.numerator) if scale.denominator == 1
                else f"{scale.numerator}/{scale.denominator}")


NUMPY.register(Dropout, NumpyKind(context=_dropout_context))
