"""The normalisations in the terminal printout: the mean and variance of each group
written out, then every output in terms of them, the closed forms with their proof,
and the computational graph's backward walk node by node."""

from __future__ import annotations

import re

import numpy as np

from symbackprop.core.naming import plain_subscript
from symbackprop.kinds.normalization.rules import (
    GroupMean,
    GroupVariance,
    NormalizationBackward,
    group_statistics,
    one_gamma_per_group,
    statements,
)
from symbackprop.kinds.normalization.spec import NORMALIZATION_TYPES
from symbackprop.render.text import TEXT, TextParts, TextPrinter


def _label(printer, expr) -> str:
    base = printer.notation.index_base if printer.notation is not None else 1
    return plain_subscript(tuple(int(i) + base for i in expr.args[1]))


def _mean_text(printer, expr) -> str:
    """``mu1``: the mean of group 1."""
    return "mu" + _label(printer, expr)


def _variance_text(printer, expr) -> str:
    """``sigma1^2``: the biased variance of group 1."""
    return "sigma" + _label(printer, expr) + "^2"


def _backward_text(printer, expr) -> str:
    """The closed form with the chain's names: ``delta1 = (gamma / (m sigma)) (...)``."""
    g, x = (printer._print(arg) for arg in expr.args)
    return f"(gamma / (m sigma)) (m {g} - sum {g} - xhat sum({g} xhat)), xhat of {x}"


TextPrinter.print_function(NormalizationBackward, _backward_text)
TextPrinter.print_function(GroupMean, _mean_text)
TextPrinter.print_function(GroupVariance, _variance_text)


def _words(layer, names, input_shape) -> dict:
    return dict(x=names["x"], z=names["z"], g=names["g"], over=layer.over_words(input_shape),
                m=layer.group_size(input_shape), eps=f"{layer.eps:g}")


def forward_header(layer, names, input_shape) -> str:
    w = _words(layer, names, input_shape)
    scale = " + beta, gamma = weight and beta = bias" if layer.has_affine else ""
    if not layer.uses_batch_statistics:
        return (f"evaluation mode, {w['z']} = {'gamma ' if layer.has_affine else ''}"
                f"({w['x']} - running_mean) / sqrt(running_var + eps){scale} per channel, "
                f"eps = {w['eps']}; the running statistics are given, not differentiated")
    return (f"{w['z']} = {'gamma ' if layer.has_affine else ''}({w['x']} - mu) / "
            f"sqrt(sigma^2 + eps){scale}; mu and sigma^2 are the mean and the biased variance "
            f"(divided by m, not m - 1) of {w['over']}: m = {w['m']} values each, "
            f"eps = {w['eps']}")


def definition_lines(derivation, printer) -> list[str]:
    """``mu1 = (x11 + x21 + x31)/3`` and ``sigma1^2 = ((x11 - mu1)^2 + ...)/3``."""
    layer = derivation.layer
    if not layer.uses_batch_statistics:
        return []
    x = np.array(derivation.x.tolist(), dtype=object).reshape(derivation.input_shape)
    means, variances = group_statistics(layer, x)
    rows = []
    for mean, variance in zip(means.flat, variances.flat):
        elements = [printer.doprint(element) for element in mean.args[0]]
        m = len(elements)
        mu = printer.doprint(mean)
        rows.append((mu, f"({' + '.join(elements)})/{m}"))
        rows.append((printer.doprint(variance),
                     f"({' + '.join(f'({e} - {mu})^2' for e in elements)})/{m}"))
    width = max(len(left) for left, _ in rows)
    return [f"{left.ljust(width)} = {right}" for left, right in rows]


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    w = _words(layer, names, input_shape)
    found = statements(layer)
    g, x = w["g"], w["x"]
    def named(text):
        return re.sub(r"\bg\b", g, text)

    lines = [named(found["x"]).replace("dL/dx", names["dx"])]
    if layer.uses_batch_statistics:
        lines[0] += f", sums over {w['over']}"
        lines.append(f"   sigma = sqrt(sigma^2 + eps), xhat = ({x} - mu) / sigma, m = {w['m']}"
                     + ("" if one_gamma_per_group(layer) or not layer.has_affine else
                        "; gamma differs inside a group, so it stays inside the sums"))
    if layer.has_affine:
        where = "over the batch" + (" and every axis but the channel" if len(input_shape) > 2
                                    else "") if hasattr(layer, "training") else \
            "over every axis gamma does not have"
        lines.append(named(found["weight"]) + f", {where}")
        lines.append(named(found["bias"]) + f", {where}")
    return lines


#: The computational graph of a normalisation and its backward walk, node by node.
GRAPH_FORWARD = (
    ("mu", "(1/m) sum x", "the mean"),
    ("xc", "x - mu", "the centred input"),
    ("var", "(1/m) sum xc^2", "the biased variance"),
    ("istd", "1 / sqrt(var + eps)", "the inverse deviation"),
    ("xhat", "xc istd", "the normalised input"),
    ("z", "gamma xhat + beta", "scale and shift"),
)
GRAPH_BACKWARD = (
    ("dbeta", "sum g", "beta is added to every z it shifts"),
    ("dgamma", "sum g xhat", "gamma multiplies xhat"),
    ("dxhat", "g gamma", "z = gamma xhat + beta"),
    ("distd", "sum dxhat xc", "xhat = xc istd, istd shared by the group"),
    ("dvar", "-(1/2) istd^3 distd", "istd = (var + eps)^(-1/2)"),
    ("dxc", "dxhat istd + (2/m) xc dvar", "xc feeds xhat and var: two paths add"),
    ("dmu", "-sum dxc", "xc = x - mu"),
    ("dx", "dxc + dmu / m", "x feeds xc and mu: two paths add"),
)


def proof_lines(rules, proofs, loss):
    """Each closed form says how it was proven; the graph's walk follows the elements."""
    verdicts = {}
    for proof in proofs:
        elements = f"{proof.checked} element{'s' if proof.checked != 1 else ''}"
        verdict = f"proven {proof.how} on {elements}" if proof.holds else \
            f"FAILS on {len(proof.mismatches)} of {proof.checked} elements"
        verdicts[proof.name] = verdict
    marked = []
    for rule in rules:
        for name, verdict in verdicts.items():
            key = {"grad_x": "/dx", "grad_weight": "/dgamma", "grad_bias": "/dbeta"}[name]
            if rule.split(" = ")[0].endswith(key):
                rule += f" ({verdict})"
        marked.append(rule)
    if proofs is None:
        marked.append("(the closed forms are quoted: this instance is too large to prove them)")
    if any("running" in proof.statement for proof in proofs or ()):
        return marked, []
    closing = ["", "The computational graph, forward (per group of m values):"]
    closing += [f"  {node.ljust(5)} = {formula.ljust(20)} {words}"
                for node, formula, words in GRAPH_FORWARD]
    closing += ["Backward, node by node (each node's gradient from the ones after it):"]
    closing += [f"  {node.ljust(6)} = {formula.ljust(27)} {words}"
                for node, formula, words in GRAPH_BACKWARD]
    return marked, closing


PARTS = TextParts(forward_header=forward_header, backward_rules=backward_rules,
                  proof_lines=proof_lines, definition_lines=definition_lines)

for _layer_type in NORMALIZATION_TYPES:
    TEXT.register(_layer_type, PARTS)
