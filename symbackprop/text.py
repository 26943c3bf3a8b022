"""Render stage (terminal): a derivation as plain text a person reads.

Input: a :class:`~symbackprop.derivation.Derivation`.  Output: a string with the
output-size formula and this layer's numbers, every ``z`` element as a textbook
writes it (padding products visible as ``0 w11``), and every gradient element.
SymPy expressions become text only through :class:`TextPrinter`.
"""

from __future__ import annotations

import numpy as np
import sympy
from sympy.printing.str import StrPrinter

from .indexing import dilated_length, unread_length
from .naming import Notation, factor_sort_key, symbol_array, term_sort_key

__all__ = ["TextPrinter", "format_derivation", "output_size_lines", "rule_lines"]


class TextPrinter(StrPrinter):
    """Prints element symbols by their textbook labels, products with spaces.

    Terms of a sum are ordered by upstream-gradient index, then kernel offset
    (``g11 w22 + g12 w21 + ...``); factors of a product as ``g x w b``.
    """

    def __init__(self, notation: Notation, **settings):
        super().__init__(settings)
        self.notation = notation

    def _print_Symbol(self, expr):
        return self.notation.label(expr)

    def _print_Mul(self, expr):
        factors = sorted(expr.args, key=factor_sort_key)
        sign = ""
        if factors and factors[0] == -1 and expr.is_commutative:
            sign, factors = "-", factors[1:]
        if not factors:
            return sign + "1"
        parts = [self.parenthesize(f, sympy.printing.precedence.PRECEDENCE["Mul"])
                 for f in factors]
        return sign + " ".join(parts)

    def _print_Add(self, expr, order=None):
        terms = sorted(expr.args, key=term_sort_key)
        text = ""
        for position, term in enumerate(terms):
            printed = self._print(term)
            if printed.startswith("-"):
                text += ("-" if position == 0 else " - ") + printed[1:]
            else:
                text += ("" if position == 0 else " + ") + printed
        return text


def output_size_lines(derivation) -> list[str]:
    """``Ho = floor((H + top + bottom - dh*(KH-1) - 1)/sh) + 1 = ... = 4`` and ``Wo``."""
    layer = derivation.layer
    _, _, height, width = derivation.input_shape
    top, bottom, left, right = layer.padding
    lines = []
    for out, size_name, size, pads, names, kernel, stride, dilation in (
        ("Ho", "H", height, (top, bottom), ("top", "bottom"), layer.kernel_size[0],
         layer.stride[0], layer.dilation[0]),
        ("Wo", "W", width, (left, right), ("left", "right"), layer.kernel_size[1],
         layer.stride[1], layer.dilation[1]),
    ):
        k_name, s_name, d_name = ("KH", "sh", "dh") if out == "Ho" else ("KW", "sw", "dw")
        result = derivation.output_shape[2 if out == "Ho" else 3]
        lines.append(
            f"{out} = floor(({size_name} + {names[0]} + {names[1]} - {d_name}*({k_name}-1) - 1) "
            f"/ {s_name}) + 1 = floor(({size} + {pads[0]} + {pads[1]} - {dilation}*({kernel}-1) "
            f"- 1) / {stride}) + 1 = {result}"
        )
        unread = unread_length(size, kernel, stride, *pads, dilation)
        if unread:
            extent = size + pads[0] + pads[1]
            what = "row" if out == "Ho" else "column"
            which = f"last padded {what} is" if unread == 1 else f"last {unread} padded {what}s are"
            lines.append(
                f"   ({extent} - {dilated_length(kernel, dilation)}) is not a multiple of "
                f"{stride}: "
                f"the {which} never read, so the gradient there is 0"
            )
    return lines


def rule_lines(proofs, loss: str = "L") -> list[str]:
    """The closed forms with this layer's numbers and whether each was proven."""
    lines = []
    for proof in proofs:
        plural = "s" if proof.checked != 1 else ""
        verdict = (f"verified on {proof.checked} element{plural}" if proof.holds else
                   f"FAILS on {len(proof.mismatches)} of {proof.checked} elements")
        (sh, sw), (dh, dw) = proof.stride, proof.dilation
        if proof.name == "grad_x":
            top, bottom, left, right = proof.grad_padding
            lines += [f"  d{loss}/dx: insert {sh - 1} zero row(s) and {sw - 1} zero column(s) "
                      f"between the elements of g (undo stride {sh}x{sw}),",
                      f"     pad it by top {top}, bottom {bottom}, left {left}, right {right} "
                      f"(negative crops), correlate with w rotated by 180 degrees",
                      f"     (dilation {dh}x{dw}), channels swapped, summed over output channels"
                      f": {verdict}"]
        elif proof.name == "grad_w":
            lines += [f"  d{loss}/dw: correlate the padded input with g dilated by the stride "
                      f"({sh}x{sw}) as the kernel, step {dh}x{dw}: {verdict}"]
        else:
            lines += [f"  d{loss}/db: sum of g over the batch and all positions: {verdict}"]
    return lines


def format_derivation(derivation, index_base: int = 1, names: dict | None = None,
                      show_padding: bool = True, proofs=()) -> str:
    """The whole derivation as text (what ``symbackprop derive`` prints)."""
    notation = derivation.notation(index_base=index_base, names=names)
    printer = TextPrinter(notation)
    name = notation.name
    layer = derivation.layer
    loss = name("L")
    lines = [layer.describe()]
    shapes = [f"{name('x')}: {_shape(derivation.input_shape)} (N x C x H x W)"]
    shapes += [f"{name(p)}: {_shape(a.shape)}" for p, a in derivation.params.items()]
    shapes.append(f"{name('z')}, {name('g')} = d{loss}/d{name('z')}: "
                  f"{_shape(derivation.output_shape)} (N x O x Ho x Wo)")
    lines += ["  " + "   ".join(shapes), "", "Output size:"]
    lines += ["  " + line for line in output_size_lines(derivation)]

    lines += ["", f"Forward, {name('z')} = {name('x')} (cross-correlated with) {name('w')}"
              + (f" + {name('b')}" if "b" in derivation.params else "")
              + (" (0 marks a padding position):" if show_padding else ":")]
    shown = derivation.z_written if show_padding else derivation.z
    lines += _equations(printer, symbol_array("z", derivation.output_shape), shown,
                        printer.doprint)

    lines += ["", f"Backward, {loss} = sum {name('g')}*{name('z')} differentiated by SymPy "
              f"({derivation.method}):"]
    for array_name in ("x", *derivation.params):
        symbols = derivation.x if array_name == "x" else derivation.params[array_name]
        lines.append("")
        lines += _equations(printer, symbols, derivation.grads[array_name],
                            lambda s: f"d{loss}/d{printer.doprint(s)}")
    if proofs:
        lines += ["", "Closed forms (SPEC.md), checked element by element against the sums above:"]
        lines += rule_lines(proofs, loss)
    base = "1-based, like a textbook (--index-base 0 for Python's)" if index_base == 1 \
        else "0-based, like Python"
    lines += ["", f"Indices are {base}."]
    return "\n".join(lines)


def _equations(printer, left_symbols, right_exprs, left_format) -> list[str]:
    lefts = np.array(left_symbols.tolist(), dtype=object).reshape(-1) \
        if left_symbols.rank() else [left_symbols]
    rights = np.array(right_exprs.tolist(), dtype=object).reshape(-1) \
        if right_exprs.rank() else [right_exprs]
    labels = [left_format(s) for s in lefts]
    width = max(map(len, labels), default=0)
    return [f"  {label.ljust(width)} = {printer.doprint(expr)}"
            for label, expr in zip(labels, rights)]


def _shape(shape) -> str:
    return " x ".join(map(str, shape))
