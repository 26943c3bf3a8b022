"""The losses in the LaTeX document: the loss written out with its denominators, the
rule ``softmax - onehot`` (or ``2 (x - y) / n``) and its verdict."""

from __future__ import annotations

from symbackprop.core.rules import proofs_for
from symbackprop.kinds.loss.expand import WrittenQuotient
from symbackprop.kinds.loss.spec import CrossEntropyLoss, MSELoss
from symbackprop.kinds.softmax.functions import WrittenLogSumExp
from symbackprop.kinds.softmax.latex import exp_sum_latex, proof_latex
from symbackprop.render.latex import LATEX, LatexParts, LayerLatexPrinter


def _quotient_latex(printer, expr, exp=None) -> str:
    numerator, denominator = (printer._print(arg) for arg in expr.args)
    return rf"\frac{{{numerator}}}{{{denominator}}}"


def _log_sum_exp_latex(printer, expr, exp=None) -> str:
    return rf"\log\bigl({exp_sum_latex(printer, expr)}\bigr)"


LayerLatexPrinter.print_function(WrittenQuotient, _quotient_latex)
LayerLatexPrinter.print_function(WrittenLogSumExp, _log_sum_exp_latex)


def _divisor(layer) -> str:
    if layer.reduction != "mean":
        return ""
    return r"\sum_{i\ \mathrm{counted}} c_{y_i}" if getattr(layer, "weighted", False) \
        else r"\mathrm{count}"


def cross_entropy_rule(layer, names) -> str:
    x, g, loss = names["x"], names["g"], names["L"]
    dx = rf"\frac{{\partial {loss}}}{{\partial {x}}}"
    divisor = _divisor(layer)
    over = (lambda text: rf"\frac{{{text}}}{{{divisor}}}") if divisor else (lambda text: text)
    g = rf"{g}_i" if layer.reduction == "none" else g
    if layer.weighted or layer.label_smoothing:
        inner = g + r"\, (p_i \textstyle\sum_c a_{ic} - a_i)"
    else:
        inner = g + r"\, (p_i - \operatorname{onehot}(y_i))"
    return rf"{dx}_{{i}} = {over(inner)}"


def _cross_entropy_general(layer, names, base: int = 1) -> dict:
    x, z = names["x"], names["z"]
    eps = layer.label_smoothing
    per_sample = r"\ell_i = -\log p_{i y_i}" if not (eps or layer.weighted) else \
        r"\ell_i = -\sum_c a_{ic} \log p_{ic},\ a_{ic} = (1-\varepsilon)\, c_{y_i} [c = y_i] " \
        r"+ \varepsilon\, c_c / C"
    reduced = {"mean": rf"{z} = \frac{{1}}{{{_divisor(layer)}}} \sum_i \ell_i",
               "sum": rf"{z} = \sum_i \ell_i", "none": rf"{z}_i = \ell_i"}[layer.reduction]
    return {"forward": rf"p_i = \operatorname{{softmax}}({x}_i),\quad {per_sample},\quad "
                       rf"{reduced}",
            "backward": cross_entropy_rule(layer, names)}


def _mse_general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    n = r"\frac{1}{n}" if layer.reduction == "mean" else ""
    dn = "/ n" if layer.reduction == "mean" else ""
    forward = rf"{z} = {n}\sum ({x} - y)^2" if layer.reduction != "none" else \
        rf"{z} = ({x} - y)^2"
    return {"forward": forward,
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}}} = 2\, {g}\, ({x} - y) {dn}"}


def _closed_form(derivation, printer) -> dict | None:
    proofs = proofs_for(derivation)
    if not proofs:
        return None
    (rule,) = proofs
    layer = derivation.layer
    names = {key: printer.name(key) for key in "xzgL"}
    general = _cross_entropy_general if isinstance(layer, CrossEntropyLoss) else _mse_general
    return {"formula": general(layer, names)["backward"], "holds": rule.holds,
            "checked": rule.checked, "tail": False,
            "intro": f"The rule, {proof_latex(rule)}, against the sums below:"}


def _cross_entropy_notes(layer) -> list[str]:
    targets = ("$y = (" + ", ".join("\\text{ignored}" if t == layer.ignore_index else str(t)
                                    for t in layer.target) + ")$") if layer.target else \
        "sample $n$ has class $n \\bmod C$ (\\texttt{--classes} chooses others)"
    notes = ["$p = \\operatorname{softmax}(x)$ over the classes; every backward pass of a "
             "classifier starts from $p - \\operatorname{onehot}(y)$. The class targets "
             f"(PyTorch's 0-based classes): {targets}."]
    if layer.reduction == "mean":
        notes.append("The mean divides by the number of counted samples, those whose target "
                     "is not the ignore index" + (" (weighted: by the sum of their class "
                                                   "weights $c_{y_i}$, as PyTorch)"
                                                   if layer.weighted else "")
                     + "; an ignored sample contributes nothing and gets gradient 0.")
    return notes


LATEX.register(CrossEntropyLoss, LatexParts(
    title="Backpropagation through the cross-entropy loss", general=_cross_entropy_general,
    chain_words="the cross-entropy loss", notes=_cross_entropy_notes,
    closed_form=_closed_form, shows_padding=True,
    constant_meanings={"y": "the one-hot targets", "c": "the class weights"}))
LATEX.register(MSELoss, LatexParts(
    title="Backpropagation through the mean squared error", general=_mse_general,
    chain_words="the mean squared error", closed_form=_closed_form, shows_padding=True,
    constant_meanings={"y": "the targets"}))
