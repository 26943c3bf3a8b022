"""The normalisations in the LaTeX document: the computational graph of batch norm (mean,
centred input, variance, inverse deviation, normalised input, scale and shift), each
group's statistics written out, every output and gradient element, the closed forms with
how they were proven, and the backward walk through the graph node by node."""

from __future__ import annotations

import numpy as np

from symbackprop.core.operators import CHAIN_RULES
from symbackprop.core.rules import proofs_for
from symbackprop.kinds.normalization.rules import (
    GroupMean,
    GroupVariance,
    NormalizationBackward,
    group_statistics,
    one_gamma_per_group,
)
from symbackprop.kinds.normalization.spec import NORMALIZATION_TYPES
from symbackprop.render.latex import (
    DEFAULT_DETAIL,
    LATEX,
    LatexParts,
    LayerLatexPrinter,
    _derivative,
    _listing,
    _shape,
    explain_selection,
    terms_limit,
)
from symbackprop.render.latex_names import fill_names
from symbackprop.render.templating import latex_escape

__all__ = ["document", "GRAPH_FORWARD", "GRAPH_BACKWARD"]

#: Groups whose statistics the document writes out before it says "and so on".
GROUPS_SHOWN = 4


def _group_label(printer, expr) -> str:
    base = printer.notation.index_base
    indices = [str(int(i) + base) for i in expr.args[1]]
    return "{" + ("".join(indices) if all(len(i) == 1 for i in indices)
                  else ",".join(indices)) + "}"


def _mean_latex(printer, expr, exp=None) -> str:
    text = r"\mu_" + _group_label(printer, expr)
    return text if exp is None else rf"{text}^{{{exp}}}"


def _variance_latex(printer, expr, exp=None) -> str:
    text = r"\sigma^{2}_" + _group_label(printer, expr)
    return text if exp is None else rf"\left({text}\right)^{{{exp}}}"


LayerLatexPrinter.print_function(GroupMean, _mean_latex)
LayerLatexPrinter.print_function(GroupVariance, _variance_latex)


def _backward_latex(printer, expr, exp=None) -> str:
    g, x = (printer._print(arg) for arg in expr.args)
    return (rf"\frac{{\gamma}}{{m\sigma}}\Bigl(m\, {g} - \textstyle\sum {g} - \hat{{{x}}} "
            rf"\sum {g}\, \hat{{{x}}}\Bigr),\ \hat{{{x}}} = \frac{{{x} - \mu}}{{\sigma}}")


LayerLatexPrinter.print_function(NormalizationBackward, _backward_latex)


def chain_rule(layer, names):
    """The error term through the normalisation: the closed form with ``g`` and ``x``."""
    return NormalizationBackward(names["g"], names["x"])


for _layer_type in NORMALIZATION_TYPES:
    CHAIN_RULES.register(_layer_type, chain_rule)

#: The forward graph of one group of m values: node, its formula, what it is (``@x``,
#: ``@g``, ``@z``, ``@L``: the reader's names, :func:`~symbackprop.render.latex_names.fill_names`).
GRAPH_FORWARD = (
    (r"\mu", r"\frac{1}{m}\sum_{i=1}^{m} @x_i", "the mean"),
    (r"@x_{c,i}", r"@x_i - \mu", "the centred input"),
    (r"\sigma^2", r"\frac{1}{m}\sum_{i=1}^{m} @x_{c,i}^2", "the biased variance (divided by $m$)"),
    (r"r", r"\left(\sigma^2 + \epsilon\right)^{-1/2}", "the inverse deviation"),
    (r"\hat{@x}_i", r"@x_{c,i}\, r", "the normalised input"),
    (r"@z_i", r"\gamma\, \hat{@x}_i + \beta", r"scale and shift"),
)

#: The backward walk, node by node: each node's gradient from the nodes it feeds.
GRAPH_BACKWARD = (
    (r"\frac{\partial @L}{\partial \beta}", r"\sum_i @g_i", r"$\beta$ is added to every $@z_i$"),
    (r"\frac{\partial @L}{\partial \gamma}", r"\sum_i @g_i\, \hat{@x}_i",
     r"$\gamma$ multiplies every $\hat{@x}_i$"),
    (r"\frac{\partial @L}{\partial \hat{@x}_i}", r"@g_i\, \gamma",
     r"$@z_i = \gamma \hat{@x}_i + \beta$"),
    (r"\frac{\partial @L}{\partial r}",
     r"\sum_i \frac{\partial @L}{\partial \hat{@x}_i}\, @x_{c,i}",
     r"$r$ scales every $\hat{@x}_i$ of the group"),
    (r"\frac{\partial @L}{\partial \sigma^2}",
     r"-\frac{1}{2}\, r^{3}\, \frac{\partial @L}{\partial r}",
     r"$r = (\sigma^2 + \epsilon)^{-1/2}$"),
    (r"\frac{\partial @L}{\partial @x_{c,i}}",
     r"\frac{\partial @L}{\partial \hat{@x}_i}\, r + \frac{2}{m}\, @x_{c,i}\, "
     r"\frac{\partial @L}{\partial \sigma^2}",
     r"$@x_{c,i}$ feeds $\hat{@x}_i$ and $\sigma^2$: two paths add"),
    (r"\frac{\partial @L}{\partial \mu}", r"-\sum_i \frac{\partial @L}{\partial @x_{c,i}}",
     r"$@x_{c,i} = @x_i - \mu$"),
    (r"\frac{\partial @L}{\partial @x_i}",
     r"\frac{\partial @L}{\partial @x_{c,i}} + \frac{1}{m}\, \frac{\partial @L}{\partial \mu}",
     r"$@x_i$ feeds $@x_{c,i}$ and $\mu$: two paths add"),
)

_TITLES = {"batchnorm1d": "batch normalisation", "batchnorm2d": "spatial batch normalisation",
           "layernorm": "layer normalisation", "groupnorm": "group normalisation",
           "instancenorm2d": "instance normalisation"}


def closed_forms(layer) -> list[tuple[str, str]]:
    """``(gradient, formula)`` rows of the closed forms in LaTeX."""
    if not layer.uses_batch_statistics:
        scale = r"\gamma\, " if layer.has_affine else ""
        rows = [(r"\frac{\partial @L}{\partial @x}",
                 scale + r"\frac{@g}{\sqrt{\sigma^2_{\mathrm{run}} + \epsilon}}")]
    elif one_gamma_per_group(layer) or not layer.has_affine:
        scale = r"\gamma" if layer.has_affine else "1"
        rows = [(r"\frac{\partial @L}{\partial @x_i}",
                 rf"\frac{{{scale}}}{{m\,\sigma}}\Bigl(m\, @g_i - \sum_j @g_j - \hat{{@x}}_i "
                 r"\sum_j @g_j \hat{@x}_j\Bigr)")]
    else:
        rows = [(r"\frac{\partial @L}{\partial @x_i}",
                 r"\frac{1}{m\,\sigma}\Bigl(m\, \hat{@g}_i - \sum_j \hat{@g}_j - \hat{@x}_i "
                 r"\sum_j \hat{@g}_j \hat{@x}_j\Bigr),\quad \hat{@g}_i = \gamma_i\, @g_i")]
    if layer.has_affine:
        rows += [(r"\frac{\partial @L}{\partial \gamma}", r"\sum @g\, \hat{@x}"),
                 (r"\frac{\partial @L}{\partial \beta}", r"\sum @g")]
    return rows


def _statistics_rows(derivation, printer) -> tuple[list, int]:
    layer = derivation.layer
    x = np.array(derivation.x.tolist(), dtype=object).reshape(derivation.input_shape)
    means, variances = group_statistics(layer, x)
    rows = []
    for mean, variance in list(zip(means.flat, variances.flat))[:GROUPS_SHOWN]:
        elements = [printer.doprint(element) for element in mean.args[0]]
        m = len(elements)
        mu = printer.doprint(mean)
        rows.append(rf"{mu} &= \tfrac{{1}}{{{m}}}" + _wrapped(elements, 8))
        squares = [rf"({e} - {mu})^2" for e in elements]
        rows.append(rf"{printer.doprint(variance)} &= \tfrac{{1}}{{{m}}}" + _wrapped(squares, 4))
    return rows, means.size


def _wrapped(terms: list, per_line: int) -> str:
    """``\\bigl(t_1 + ... + t_n\\bigr)``, broken into ``align`` lines of ``per_line`` terms
    (a group's variance has a square per element: one line would run off the page)."""
    lines = [" + ".join(terms[start:start + per_line])
             for start in range(0, len(terms), per_line)]
    return r"\bigl(" + r" \\ &\qquad + ".join(lines) + r"\bigr)"


def _number_latex(value: float) -> str:
    """``1e-05 -> 10^{-5}``, ``0.001 -> 10^{-3}``, ``2.5e-06 -> 2.5\\cdot 10^{-6}``, ``0.5``."""
    text = f"{value:.6g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = f"10^{{{int(exponent)}}}"
    return power if mantissa == "1" else rf"{mantissa}\cdot {power}"


def document(derivation, index_base: int = 1, names: dict | None = None,
             show_padding: bool = True, detail: str = DEFAULT_DETAIL):
    layer = derivation.layer
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LayerLatexPrinter(notation)
    loss = printer.name("L")
    names = {array: printer.name(array) for array in ("x", "g", "z", "L")}
    arrays = [(printer.name("x"), _shape(derivation.input_shape), "the input")]
    words = {"weight": r"$\gamma$, PyTorch's \texttt{weight}",
             "bias": r"$\beta$, PyTorch's \texttt{bias}",
             "running_mean": r"the running mean, given (not differentiated)",
             "running_var": r"the running variance, given (not differentiated)"}
    for name, array in {**derivation.params, **derivation.constants}.items():
        arrays.append((printer.name(name), _shape(array.shape), words[name]))
    arrays.append((rf"{printer.name('z')},\ {printer.name('g')}", _shape(derivation.output_shape),
                   rf"the output and the upstream gradient $\partial {loss}/\partial "
                   rf"{printer.name('z')}$"))
    parameters = tuple(derivation.params)
    forward = _listing(printer, "z", derivation.output_shape, derivation.z,
                       lambda index: printer.label("z", index), detail, parameters)
    backward = []
    titles = {"x": "Input", "weight": r"Scale $\gamma$ (\texttt{weight})",
              "bias": r"Shift $\beta$ (\texttt{bias})"}
    for name in ("x", *derivation.params):
        symbols = derivation.x if name == "x" else derivation.params[name]
        part = _listing(printer, name, symbols.shape, derivation.grads[name],
                        lambda index, symbols=symbols: _derivative(printer, loss, symbols[index]),
                        detail, parameters)
        part["title"] = titles[name] + (f" ${printer.name('x')}$" if name == "x" else "")
        backward.append(part)
    explain_selection([forward, *backward])
    statistics, groups = _statistics_rows(derivation, printer) \
        if layer.uses_batch_statistics else ([], 0)
    proofs = proofs_for(derivation)
    verdicts = []
    for proof in proofs or ():
        verdicts.append({"name": proof.name.replace("grad_", ""), "holds": proof.holds,
                         "checked": proof.checked, "how": proof.how})
    context = {
        "title": "Backpropagation through " + _TITLES[layer.kind],
        "description": latex_escape(layer.describe()),
        "arrays": arrays,
        "training": layer.uses_batch_statistics,
        "affine": layer.has_affine,
        "over": latex_escape(layer.over_words(derivation.input_shape)),
        "m": layer.group_size(derivation.input_shape),
        "eps": _number_latex(layer.eps),
        "graph_forward": [tuple(fill_names(text, names) for text in row)
                          for row in GRAPH_FORWARD],
        "graph_backward": [tuple(fill_names(text, names) for text in row)
                           for row in GRAPH_BACKWARD],
        "statistics": statistics,
        "groups": groups,
        "groups_shown": min(groups, GROUPS_SHOWN),
        "forward": forward,
        "backward": backward,
        "closed_forms": [tuple(fill_names(text, names) for text in row)
                         for row in closed_forms(layer)],
        "verdicts": verdicts,
        "proven": proofs is not None,
        "one_gamma": one_gamma_per_group(layer),
        "loss_sum": rf"{loss} = \sum {printer.name('g')} \, {printer.name('z')}",
        "method": derivation.method,
        "limits": {"terms": terms_limit(detail)},
        "names": names,
    }
    return "normalization/derivation.tex.j2", context


def _general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    scale = r"\gamma\, " if layer.has_affine else ""
    shift = r" + \beta" if layer.has_affine else ""
    return {"forward": rf"{z} = {scale}\frac{{{x} - \mu}}{{\sqrt{{\sigma^2 + \epsilon}}}}{shift}",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}}} = "
                        rf"\frac{{{scale or '1'}}}{{m\sigma}}\left(m {g} - \sum {g} - \hat{{{x}}} "
                        rf"\sum {g}\hat{{{x}}}\right)"}


for _layer_type in NORMALIZATION_TYPES:
    LATEX.register(_layer_type, LatexParts(
        title=lambda layer: "Backpropagation through " + _TITLES[layer.kind], general=_general,
        chain_words="a normalisation (the gradient through the batch statistics)",
        document=document, parameter_symbols={"weight": r"\gamma", "bias": r"\beta"}))
