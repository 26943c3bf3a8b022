"""The fully connected layer's closed forms, the matrix form of its backward pass, proven
element by element against the derived sums: per sample, ``dL/dx = W^T g``, and over the
batch ``dL/dW = sum_n g_n x_n^T`` and ``dL/db = sum_n g_n`` (rows of ``x`` and ``g`` are
the samples, so these are ``g W``, ``g^T x`` and the column sums of ``g``)."""

from __future__ import annotations

from symbackprop.core.naming import symbol_grid
from symbackprop.core.rules import PROOFS, RuleProof, collector_paused, mismatched_elements
from symbackprop.kinds.linear.spec import Linear

__all__ = ["STATEMENTS", "matrix_forms", "prove_matrix_form"]

#: What each proof states, in the order the document lists them.
STATEMENTS = {"grad_x": "dL/dx = W^T g (each sample)",
              "grad_w": "dL/dW = sum over the samples of g x^T",
              "grad_b": "dL/db = sum over the samples of g"}


def matrix_forms(derivation) -> dict:
    """The matrix forms as object arrays of SymPy sums, shaped like the gradients."""
    x = symbol_grid("x", tuple(derivation.x.shape))
    w = symbol_grid("w", tuple(derivation.params["w"].shape))
    g = symbol_grid("g", tuple(derivation.g.shape))
    outputs, features = w.shape  # x may come unflattened: (N, C, H, W) with C H W = F
    rows_x, rows_g = x.reshape(-1, features), g.reshape(-1, outputs)
    forms = {"grad_x": rows_g.dot(w).reshape(x.shape),  # each row: (W^T g_n)^T
             "grad_w": rows_g.T.dot(rows_x)}            # sum_n g_n x_n^T
    if "b" in derivation.params:
        forms["grad_b"] = rows_g.sum(axis=0)
    return forms


@collector_paused()
def prove_matrix_form(derivation) -> tuple[RuleProof, ...]:
    """Prove each of :data:`STATEMENTS` against the element-wise gradients."""
    proofs = []
    for name, closed in matrix_forms(derivation).items():
        array = name.removeprefix("grad_")
        mismatches = mismatched_elements(closed, derivation.grads[array], f"the d{array} rule")
        proofs.append(RuleProof(name=name, statement=STATEMENTS[name], holds=not mismatches,
                                checked=int(closed.size), stride=(1, 1), dilation=(1, 1),
                                padding=(0, 0, 0, 0), grad_padding=(0, 0, 0, 0), unread=(0, 0),
                                mismatches=mismatches))
    return tuple(proofs)


PROOFS.register(Linear, prove_matrix_form)
