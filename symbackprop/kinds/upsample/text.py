"""Upsampling in the terminal printout."""

from __future__ import annotations

from symbackprop.kinds.upsample.rules import BLOCK_SUM_STATEMENT, BlockSum
from symbackprop.kinds.upsample.spec import Upsample
from symbackprop.render.text import TEXT, TextParts, TextPrinter, rule_text

TextPrinter.print_function(
    BlockSum, lambda printer, expr: f"blocksum({printer._print(expr.args[0])})")


def _forward(layer, names, input_shape) -> str:
    sh, sw = layer.scale_factor
    return f"{names['z']} = {names['x']} with every element copied into a {sh}x{sw} block " \
           f"(nearest): {names['z']}[n, c, i, j] = {names['x']}[n, c, i // {sh}, j // {sw}] " \
           f"(0-based)"


def _backward(layer, names, input_shape, output_shape) -> list[str]:
    sh, sw = layer.scale_factor
    return [f"{names['dx']} = {rule_text(layer, names)}: each {names['x']}_ab receives the sum "
            f"of {names['g']} over the {sh}x{sw} block it was copied to"]


def _size_lines(layer, input_shape, output_shape) -> list[str]:
    sh, sw = layer.scale_factor
    return [f"Ho = H*sh = {input_shape[2]}*{sh} = {output_shape[2]}",
            f"Wo = W*sw = {input_shape[3]}*{sw} = {output_shape[3]}"]


def _proofs(rules, proofs, loss):
    closing = []
    for proof in proofs:
        if proof.statement == BLOCK_SUM_STATEMENT:
            verdict = f"verified on {proof.checked} elements" if proof.holds else \
                f"FAILS on {len(proof.mismatches)} of {proof.checked} elements"
            closing += ["", f"closed form {proof.statement}: {verdict}"]
    return rules, closing


TEXT.register(Upsample, TextParts(
    forward_header=_forward, backward_rules=_backward, size_lines=_size_lines,
    output_axes="N x C x Ho x Wo", proof_lines=_proofs))
