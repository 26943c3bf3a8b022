"""The NumPy code of the losses: the closed form, proven on a small derivation before the
module is written; the targets (and class weights) are arguments of the module."""

from __future__ import annotations

from symbackprop.core.derivation import derive
from symbackprop.core.rules import PROOFS
from symbackprop.kinds.loss.spec import CrossEntropyLoss, MSELoss
from symbackprop.render.codegen import NUMPY, NumpyKind, PlanError, common_context


def _proven(layer, instance, input_size, batch) -> str:
    """Derive ``instance``, prove its rule, and say so for the module's docstring."""
    derivation = derive(instance, input_size, batch)
    for proof in PROOFS[instance](derivation):
        if not proof.holds:
            raise PlanError(f"{proof.statement} does not hold on {derivation.input_shape}")
    shape = "x".join(map(str, derivation.input_shape))
    return (f"symbackprop derived this loss on a {shape} input and proved the rule for dL/dx "
            f"equal to every derived element before writing the code.")


def _cross_entropy_context(layer, style: str, strategy: str | None) -> dict:
    # three samples, the second ignored: the count, the ignore index and the weights all show
    instance = layer.replace(target=(1, layer.ignore_index, 2))
    arguments = "target, weight" if layer.weighted else "target"
    return dict(
        common_context(layer),
        parameters_signature=arguments,
        gradients_signature="grad_x,",
        template="loss/crossentropyloss.py.j2",  # both styles: the vectorised code is the rule
        exports=["forward", "backward"],
        reduction=layer.reduction, ignore_index=layer.ignore_index,
        label_smoothing=repr(layer.label_smoothing), weighted=layer.weighted,
        smoothed=bool(layer.label_smoothing),
        derived_words=_proven(layer, instance, 3, 3),
    )


def _mse_context(layer, style: str, strategy: str | None) -> dict:
    return dict(
        common_context(layer),
        parameters_signature="target",
        gradients_signature="grad_x,",
        template="loss/mseloss.py.j2",
        exports=["forward", "backward"],
        reduction=layer.reduction,
        derived_words=_proven(layer, layer, 3, 2),
    )


def _not_in_a_chain(number, layer, rank, channels):
    raise ValueError(f"layer {number}: {layer.describe()} takes targets, which a generated "
                     f"chain module does not pass; generate the loss as a module of its own "
                     f"and call it on the chain's output")


NUMPY.register(CrossEntropyLoss, NumpyKind(context=_cross_entropy_context,
                                           chain_shape=_not_in_a_chain))
NUMPY.register(MSELoss, NumpyKind(context=_mse_context, chain_shape=_not_in_a_chain))
