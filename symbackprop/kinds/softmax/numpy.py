"""The NumPy code of softmax and log-softmax: the closed form, proven on a small derivation
before the module is written."""

from __future__ import annotations

from symbackprop.core.derivation import derive
from symbackprop.core.rules import PROOFS
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax
from symbackprop.render.codegen import NUMPY, NumpyKind, PlanError, common_context


def _proven_instance(layer):
    """The layer along the class axis of a ``2 x 3`` input, derived and its rule proven (the
    rule does not depend on the axis or the sizes)."""
    derivation = derive(layer.replace(dim=1 if layer.dim >= 0 else -1), 3, 2)
    for proof in PROOFS[layer](derivation):
        if not proof.holds:
            raise PlanError(f"{proof.statement} does not hold on {derivation.input_shape}")
    return derivation


def _softmax_context(layer, style: str, strategy: str | None) -> dict:
    derivation = _proven_instance(layer)
    shape = "x".join(map(str, derivation.input_shape))
    min_rank = layer.dim + 1 if layer.dim >= 0 else -layer.dim
    return dict(
        common_context(layer),
        template="softmax/softmax.py.j2",  # both styles: the vectorised code is the rule
        exports=["forward", "backward"],
        dim=layer.dim,
        log=isinstance(layer, LogSoftmax),
        what="log-softmax" if isinstance(layer, LogSoftmax) else "softmax",
        min_rank=max(min_rank, 1),
        derived_words=f"symbackprop derived this layer on a {shape} input (along the classes) "
                      f"and proved the rule for dL/dx equal to every derived element before "
                      f"writing the code.",
    )


SOFTMAX_NUMPY = NumpyKind(context=_softmax_context,
                          backward_rule=(", the sum along the layer's dim", ""))
for _layer_type in (Softmax, LogSoftmax):
    NUMPY.register(_layer_type, SOFTMAX_NUMPY)
