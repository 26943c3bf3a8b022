"""Softmax and log-softmax in the LaTeX document, and how their SymPy functions print:
``z_{12}``, ``p_{12}``, ``\\log p_{12}``, and the forward with its denominator written out,
``\\frac{e^{x_{12}}}{e^{x_{11}} + e^{x_{12}} + e^{x_{13}}}``."""

from __future__ import annotations

from symbackprop.core.naming import parse_element
from symbackprop.core.rules import proofs_for
from symbackprop.kinds.softmax.functions import (
    LogSoftmaxOutput,
    Probability,
    SoftmaxOutput,
    WrittenLogSoftmax,
    WrittenNegativeLogSoftmax,
    WrittenSoftmax,
)
from symbackprop.kinds.softmax.spec import LogSoftmax, Softmax
from symbackprop.render.latex import LATEX, LatexParts, LayerLatexPrinter

__all__ = ["probability_latex", "exp_sum_latex", "proof_latex", "closed_form"]


def _power(text: str, exp) -> str:
    return text if exp is None else rf"{text}^{{{exp}}}"


def _output_latex(printer, expr, exp=None) -> str:
    return _power(printer.label(printer.window_output, expr.index), exp)


def probability_latex(printer, expr, exp=None) -> str:
    """``p_{12}``, indexed as the input it is computed from."""
    parsed = parse_element(expr.row[0])
    return _power(printer.label(parsed[0] if parsed else "x", expr.index, name="p"), exp)


def _log_latex(printer, expr, exp=None) -> str:
    return _power(rf"\log {probability_latex(printer, expr)}", exp)


def exp_sum_latex(printer, expr) -> str:
    return " + ".join(f"e^{{{printer._print(value)}}}" for value in expr.row)


def _written_softmax_latex(printer, expr, exp=None) -> str:
    return rf"\frac{{e^{{{printer._print(expr.row[expr.position])}}}}}" \
           rf"{{{exp_sum_latex(printer, expr)}}}"


def _written_log_softmax_latex(printer, expr, exp=None) -> str:
    return rf"{printer._print(expr.row[expr.position])} - " \
           rf"\log\bigl({exp_sum_latex(printer, expr)}\bigr)"


def _written_negative_latex(printer, expr, exp=None) -> str:
    return rf"\log\bigl({exp_sum_latex(printer, expr)}\bigr) - " \
           rf"{printer._print(expr.row[expr.position])}"


LayerLatexPrinter.print_function(SoftmaxOutput, _output_latex)
LayerLatexPrinter.print_function(Probability, probability_latex)
LayerLatexPrinter.print_function(LogSoftmaxOutput, _log_latex)
LayerLatexPrinter.print_function(WrittenSoftmax, _written_softmax_latex)
LayerLatexPrinter.print_function(WrittenLogSoftmax, _written_log_softmax_latex)
LayerLatexPrinter.print_function(WrittenNegativeLogSoftmax, _written_negative_latex)


def general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    dx = rf"\frac{{\partial {loss}}}{{\partial {x}}}"
    if isinstance(layer, Softmax):
        return {"forward": rf"{z}_j = \frac{{e^{{{x}_j}}}}{{\sum_k e^{{{x}_k}}}}"
                           rf"\quad\text{{along dim {layer.dim}}}",
                "backward": rf"\frac{{\partial {z}_j}}{{\partial {x}_k}} = "
                            rf"{z}_j\,([j = k] - {z}_k),\qquad "
                            rf"{dx} = {z} \odot \Bigl({g} - \sum_j {g}_j {z}_j\Bigr)"}
    return {"forward": rf"{z}_j = {x}_j - \log \sum_k e^{{{x}_k}}"
                       rf"\quad\text{{along dim {layer.dim}}}",
            "backward": rf"\frac{{\partial {z}_j}}{{\partial {x}_k}} = [j = k] - p_k,\qquad "
                        rf"{dx} = {g} - p \sum_j {g}_j,\quad p = \operatorname{{softmax}}({x})"}


def proof_latex(proof) -> str:
    """How a proof went, in words for the document."""
    if not proof.holds:
        return f"fails on {len(proof.mismatches)} of {proof.checked}"
    what = "pairs $(j, k)$" if proof.name == "derivative" else "elements"
    how = "symbolically" if proof.how.startswith("symbolically") else \
        "numerically at random points with 50 significant digits"
    return f"proven on all {proof.checked} {what}, {how}"


def closed_form(derivation, printer) -> dict | None:
    """The rule for dL/dx, with its verdict (the notes' form, not the diagonal one)."""
    proofs = proofs_for(derivation)
    if not proofs:
        return None
    derivative, rule = proofs
    x, z, g, loss = (printer.name(key) for key in "xzgL")
    dx = rf"\frac{{\partial {loss}}}{{\partial {x}}}"
    formula = rf"{dx} = {z} \odot \Bigl({g} - \sum_j {g}_j {z}_j\Bigr)" \
        if isinstance(derivation.layer, Softmax) else \
        rf"{dx} = {g} - \operatorname{{softmax}}({x}) \sum_j {g}_j"
    intro = (f"The stated derivative $\\partial {z}_j / \\partial {x}_k$ is "
             f"{proof_latex(derivative)}, against the derivative of its explicit form. "
             f"The rule, {proof_latex(rule)}, against the sums below:")
    return {"formula": formula, "holds": derivative.holds and rule.holds,
            "checked": rule.checked, "tail": False, "intro": intro}


def _notes(layer, names) -> list[str]:
    x, z, g = names["x"], names["z"], names["g"]
    if isinstance(layer, Softmax):
        return [f"Every output depends on every input along the axis: the Jacobian "
                f"$\\operatorname{{diag}}({z}) - {z} {z}^{{T}}$ is not diagonal, so the gradient "
                f"is not ${g} \\odot {z} \\odot (1 - {z})$. SymPy differentiates with the "
                f"stated $\\partial {z}_j / \\partial {x}_k$, which is proven equal to the "
                f"derivative of $e^{{{x}_j}} / \\sum_k e^{{{x}_k}}$."]
    return [f"The sum $\\sum_j {g}_j$ is what a log-softmax gradient most often misses: "
            f"every output ${z}_j$ depends on every input through "
            f"$\\log\\sum_k e^{{{x}_k}}$."]


for _layer_type in (Softmax, LogSoftmax):
    LATEX.register(_layer_type, LatexParts(
        title=lambda layer: f"Backpropagation through {layer.title.lower()}",
        general=general, chain_words=lambda layer, printer: f"{layer.title.lower()} along "
                                                            f"dim {layer.dim}",
        notes=_notes, notes_take_names=True, closed_form=closed_form, shows_padding=True))
