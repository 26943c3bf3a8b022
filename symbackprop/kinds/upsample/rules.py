"""Upsampling's closed form: ``dL/dx = blocksum(g)``, every element the sum of ``g`` over
the ``sh x sw`` block it was copied to, proven element by element; and the chain
operator :class:`BlockSum` that states it in a chain's backward rule."""

from __future__ import annotations

import numpy as np
import sympy

from symbackprop.core.naming import element_symbol
from symbackprop.core.operators import CHAIN_RULES, ChainOperator
from symbackprop.core.rules import PROOFS, RuleProof, collector_paused
from symbackprop.kinds.upsample.spec import Upsample

__all__ = ["BlockSum", "BLOCK_SUM_STATEMENT", "prove_block_sum"]

BLOCK_SUM_STATEMENT = "dL/dx_ab = sum of g over the sh x sw block of x_ab"


class BlockSum(ChainOperator):
    """``blocksum(g)``: ``g`` summed over each ``sh x sw`` block (sum pooling), the error
    an upsampling layer hands back."""

    nargs = 1


@collector_paused()
def prove_block_sum(derivation) -> RuleProof:
    """Prove :data:`BLOCK_SUM_STATEMENT` against the element-wise ``dL/dx``."""
    layer = derivation.layer
    sh, sw = layer.scale_factor
    shape = tuple(derivation.input_shape)
    mismatches = []
    for n, c, a, b in np.ndindex(*shape):
        block = sympy.Add(*(element_symbol("g", (n, c, a * sh + p, b * sw + q))
                            for p in range(sh) for q in range(sw)))
        if sympy.expand(derivation.grad_x[n, c, a, b] - block) != 0:
            mismatches.append((n, c, a, b))
    return RuleProof(name="grad_x", statement=BLOCK_SUM_STATEMENT, holds=not mismatches,
                     checked=int(np.prod(shape)), stride=layer.scale_factor, dilation=(1, 1),
                     padding=(0, 0, 0, 0), grad_padding=(0, 0, 0, 0), unread=(0, 0),
                     mismatches=tuple(mismatches))


PROOFS.register(Upsample, lambda derivation: (prove_block_sum(derivation),))


# A chain's step delta^{l-1} from delta^l, written once: the text printout, the LaTeX
# walk and a chain module's comments print this expression.
CHAIN_RULES.register(Upsample, lambda layer, names: BlockSum(names["g"]))
