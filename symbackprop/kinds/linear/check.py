"""check-impl for the fully connected layer ``z = x w^T + b`` (rows are samples).

``backward(x, w, b, grad_z) -> (grad_x, grad_w, grad_b)`` with ``x`` of shape
``(N, in_features)``, ``w`` of ``(out_features, in_features)``, ``b`` of
``(out_features,)`` (``None`` without bias).  The known mistakes, each computed from the
truth: ``W`` where ``W^T`` belongs in ``grad_x`` (the true gradient of the transposed
weights, for a square layer, where the shapes cannot tell), ``grad_w`` not transposed
(``x^T g`` instead of ``g^T x``), the bias gradient not summed over the batch.
"""

from __future__ import annotations

from symbackprop.check.formula_check import FORMULAS, FormulaParts
from symbackprop.check.impl import (
    IMPLEMENTATIONS,
    Implementation,
    Mistake,
    bias_not_summed,
    course_convention,
)
from symbackprop.kinds.linear.spec import Linear

__all__ = ["LINEAR_MISTAKES"]


def _untransposed_weights(case):
    w = case.inputs.get("w")
    if w is not None and w.shape[0] == w.shape[1]:
        yield case.truth_with(w=w.T)["x"]


def _grad_w_transposed(case):
    if "w" in case.results:
        yield case.results["w"].expected.T


def _weights_averaged(case):
    if "w" in case.results:
        yield case.results["w"].expected / case.batch


#: Known mistakes of hand-written fully connected backward passes.
LINEAR_MISTAKES = (
    Mistake("W instead of W^T", "x",
            "dL/dx = W^T delta (grad_x = grad_z @ w for rows of samples); this one used W "
            "where its transpose belongs (grad_z @ w.T)", _untransposed_weights),
    Mistake("grad_w not transposed", "w",
            "dL/dW = delta x^T, laid out like w as (out_features, in_features): grad_z.T @ x; "
            "this one is x.T @ grad_z, (in_features, out_features)", _grad_w_transposed),
    Mistake("grad_w divided by the batch size", "w",
            "dL/dW = delta x^T sums over the samples; this one divided by their number m, as "
            "for a cost averaged over the batch, although grad_z (dZ) already carries that "
            "1/m: the average is taken twice", _weights_averaged),
    Mistake("bias not summed over the batch", "b",
            "dL/db[o] is the sum of grad_z[n, o] over every sample n; this one used one "
            "sample, the batch mean, or one row per sample", bias_not_summed),
)


def _sizes(layer) -> list:
    return [(layer.in_features,)]


def _features(layer, size) -> int:
    return size[0]


def _with_bias(layer, course: str) -> None:
    if not layer.bias:
        raise ValueError(f"convention (--convention): a {course} dense layer has a bias; "
                         f"check a layer without one in the plain or class convention")


def _cs231n(layer) -> dict:
    _with_bias(layer, "cs231n")
    return course_convention(
        "cs231n", signature="affine_forward(x, w, b) -> (out, cache), affine_backward(dout, "
        "cache) -> (dx, dw, db), w of shape (D, M)", forward_call=("x", "w", "b"),
        returns=("x", "w", "b"), names={"x": "dx", "w": "dw", "b": "db"},
        layouts={"w": {"axes": [1, 0]}})


def _dlai(layer) -> dict:
    _with_bias(layer, "deeplearning.ai")
    samples_in_columns = {"axes": [1, 0]}
    return course_convention(
        "dlai", signature="linear_forward(A, W, b) -> (Z, cache), linear_backward(dZ, cache) "
        "-> (dA_prev, dW, db), A of shape (n_prev, m): one column per sample, b of (n, 1)",
        forward_call=("x", "w", "b"), returns=("x", "w", "b"),
        names={"x": "dA_prev", "w": "dW", "b": "db"},
        layouts={"x": samples_in_columns, "g": samples_in_columns, "b": {"shape": [-1, 1]}})


IMPLEMENTATIONS.register(Linear, Implementation(
    convention="backward(x, w, b, grad_z) -> (grad_x, grad_w, grad_b)",
    arguments=("x", "w", "b", "g"), gradients=("x", "w", "b"), mistakes=LINEAR_MISTAKES,
    sizes=_sizes, input_size=_features, conventions={"cs231n": _cs231n, "dlai": _dlai}))


# -- what the formula checker needs: the arrays in a fully connected layer's words ----------
_OUTPUT_AXES = ("sample", "output feature")
FORMULAS.register(Linear, FormulaParts(
    words="the fully connected layer", meanings={"w": "the weight matrix"},
    axes={"x": ("sample", "feature"), "g": _OUTPUT_AXES, "z": _OUTPUT_AXES,
          "w": ("output feature", "input feature"), "b": ("output feature",)}))
