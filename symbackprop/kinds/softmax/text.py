"""Softmax and log-softmax in the terminal printout, and how their SymPy functions print:
``z12`` (a softmax output), ``p12`` (a probability inside another layer), the forward
with its denominator written out."""

from __future__ import annotations

from symbackprop.core.naming import element_symbol, parse_element
from symbackprop.kinds.softmax.functions import (
    LogSoftmaxOutput,
    Probability,
    SoftmaxOutput,
    WrittenLogSoftmax,
    WrittenSoftmax,
)
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax
from symbackprop.render.text import TEXT, TextParts, TextPrinter

__all__ = ["probability_label", "proof_text", "proof_lines"]


def _output_text(printer, expr) -> str:
    """``z12``: the layer's output element (in a chain, ``a2_12``)."""
    return printer._print(element_symbol(printer.window_output, expr.index))


def probability_label(notation, expr) -> tuple[str, tuple]:
    """``("p", (1, 2))``: the probability's name and the indices the reader sees, dropped
    as the input's are (a batch of one reads ``p2`` like ``x2``)."""
    parsed = parse_element(expr.row[0])
    array = parsed[0] if parsed else "x"
    return "p", notation.indices(array, expr.index) if notation else \
        tuple(i + 1 for i in expr.index)


def _probability_text(printer, expr) -> str:
    name, indices = probability_label(printer.notation, expr)
    if len(indices) <= 2 and all(0 <= i < 10 for i in indices):
        return name + "".join(map(str, indices))
    return f"{name}[{','.join(map(str, indices))}]"


def _log_softmax_text(printer, expr) -> str:
    return f"log({_probability_text(printer, expr)})"


def _exp_sum_text(printer, expr) -> str:
    return " + ".join(f"exp({printer._print(value)})" for value in expr.row)


def _written_softmax_text(printer, expr) -> str:
    """``exp(x12) / (exp(x11) + exp(x12) + exp(x13))``."""
    return f"exp({printer._print(expr.row[expr.position])}) / ({_exp_sum_text(printer, expr)})"


def _written_log_softmax_text(printer, expr) -> str:
    """``x12 - log(exp(x11) + exp(x12) + exp(x13))``."""
    return f"{printer._print(expr.row[expr.position])} - log({_exp_sum_text(printer, expr)})"


TextPrinter.print_function(SoftmaxOutput, _output_text)
TextPrinter.print_function(Probability, _probability_text)
TextPrinter.print_function(LogSoftmaxOutput, _log_softmax_text)
TextPrinter.print_function(WrittenSoftmax, _written_softmax_text)
TextPrinter.print_function(WrittenLogSoftmax, _written_log_softmax_text)


def _dim_words(layer, input_shape) -> str:
    axis = layer.axis(len(input_shape))
    return f"along dim {layer.dim}" + (f" (axis {axis})" if axis != layer.dim else "") + \
        f", {input_shape[axis]} elements"


def forward_header(layer, names, input_shape) -> str:
    x, z = names["x"], names["z"]
    if isinstance(layer, Softmax):
        return f"{z} = softmax({x}) {_dim_words(layer, input_shape)}, " \
               f"{z}_j = exp({x}_j) / sum_k exp({x}_k)"
    return f"{z} = log softmax({x}) {_dim_words(layer, input_shape)}, " \
           f"{z}_j = {x}_j - log(sum_k exp({x}_k))"


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    x, z, g, dx = names["x"], names["z"], names["g"], names["dx"]
    if isinstance(layer, Softmax):
        return [f"{dx} = {z} * ({g} - sum({g} * {z})), the sum along dim {layer.dim}: "
                f"the Jacobian diag({z}) - {z} {z}^T times {g}, not diagonal",
                f"(SymPy's derivative of {z}_j by {x}_k is {z}_j ([j = k] - {z}_k))"]
    return [f"{dx} = {g} - p * sum({g}), p = softmax({x}) = exp({z}), the sum along dim "
            f"{layer.dim}",
            f"(SymPy's derivative of {z}_j by {x}_k is [j = k] - p_k)"]


def proof_text(proof, loss: str = "L") -> str:
    """One proof: its statement, on how many elements, and how."""
    statement = proof.statement.replace("dL/", f"d{loss}/")
    plural = "s" if proof.checked != 1 else ""
    what = "pairs (j, k)" if proof.name == "derivative" else f"element{plural}"
    if proof.holds:
        return f"{statement}: proven on {proof.checked} {what}, {proof.how}"
    return f"{statement}: FAILS on {len(proof.mismatches)} of {proof.checked} {what}"


def proof_lines(rules, proofs, loss) -> tuple[list[str], list[str]]:
    """The rule first, the gradient elements, then what was proven and how."""
    if not proofs:
        return rules, []
    return rules, ["", "Proven against the elements above:",
                   *(f"  {proof_text(proof, loss)}" for proof in proofs)]


# shows_padding: the forward prints its written form, the denominator spelled out
PARTS = TextParts(forward_header=forward_header, backward_rules=backward_rules,
                  proof_lines=proof_lines, shows_padding=True)
for _layer_type in (Softmax, LogSoftmax):
    TEXT.register(_layer_type, PARTS)
