"""The losses in the terminal printout: the loss written out, the rule, the proof."""

from __future__ import annotations

from symbackprop.kinds.loss.expand import WrittenQuotient
from symbackprop.kinds.loss.rules import cross_entropy_statement, mse_statement
from symbackprop.kinds.loss.spec import REDUCTIONS, CrossEntropyLoss, MSELoss
from symbackprop.kinds.softmax.functions import WrittenLogSumExp, WrittenNegativeLogSoftmax
from symbackprop.kinds.softmax.text import proof_lines
from symbackprop.render.text import TEXT, TextParts, TextPrinter

__all__ = ["targets_text"]


def _quotient_text(printer, expr) -> str:
    numerator, denominator = (printer._print(arg) for arg in expr.args)
    if not expr.args[1].is_Atom:
        denominator = f"({denominator})"
    return f"({numerator}) / {denominator}"


def _negative_log_softmax_text(printer, expr) -> str:
    """``log(exp(x11) + exp(x12) + exp(x13)) - x12``."""
    total = " + ".join(f"exp({printer._print(value)})" for value in expr.row)
    return f"log({total}) - {printer._print(expr.row[expr.position])}"


def _log_sum_exp_text(printer, expr) -> str:
    return "log(" + " + ".join(f"exp({printer._print(value)})" for value in expr.row) + ")"


TextPrinter.print_function(WrittenQuotient, _quotient_text)
TextPrinter.print_function(WrittenLogSumExp, _log_sum_exp_text)
TextPrinter.print_function(WrittenNegativeLogSoftmax, _negative_log_softmax_text)


def targets_text(layer, input_shape) -> str:
    """``y = (0, 1, 2)`` and which are ignored, in PyTorch's 0-based classes."""
    targets = layer.targets(input_shape)
    shown = ", ".join("ignored" if t == layer.ignore_index else str(t) for t in targets)
    chosen = "" if layer.target is not None else " (n mod C; --classes chooses others)"
    return f"class targets y = ({shown}){chosen}, PyTorch's 0-based classes"


def forward_header(layer, names, input_shape) -> str:
    x, z = names["x"], names["z"]
    if isinstance(layer, MSELoss):
        reduced = {"mean": "their mean over all elements", "sum": "their sum",
                   "none": "one per element"}[layer.reduction]
        return f"{z} = ({x} - y)^2, {reduced}; y the targets"
    smoothing = f", label smoothing eps = {layer.label_smoothing:g}" \
        if layer.label_smoothing else ""
    weights = ", class weights c" if layer.weighted else ""
    return (f"{z} = -log p[y] per sample with p = softmax({x}) over the classes (dim 1), "
            f"{REDUCTIONS[layer.reduction]}{smoothing}{weights}; "
            f"{targets_text(layer, input_shape)}")


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    own = dict(dx=names["dx"], g=names["g"], x=names["x"])
    if isinstance(layer, MSELoss):
        return [mse_statement(layer, **own)]
    lines = [cross_entropy_statement(layer, **own).replace(" w", " c")]
    if layer.reduction == "mean":
        counted = sum(1 for t in layer.targets(input_shape) if t != layer.ignore_index)
        lines.append(f"(count = {counted}: the samples whose target is not ignore_index = "
                     f"{layer.ignore_index}" + ("; weighted, the sum of their class weights "
                                                "c_y" if layer.weighted else "") + ")")
    lines.append("(SymPy's derivative of log p_j by x_k is [j = k] - p_k, p = softmax(x))")
    return lines


PARTS = TextParts(forward_header=forward_header, backward_rules=backward_rules,
                  proof_lines=proof_lines, shows_padding=True)
for _layer_type in (CrossEntropyLoss, MSELoss):
    TEXT.register(_layer_type, PARTS)
