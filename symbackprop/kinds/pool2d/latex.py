"""Max and average pooling in the LaTeX document: the window's formulas, the notes on
ties, overlaps and divisors, the output size, average pooling's proven Kronecker form,
and how :class:`~symbackprop.kinds.pool2d.rules.WindowMax` and
:class:`~symbackprop.kinds.pool2d.rules.IsWindowMax` print themselves."""

from __future__ import annotations

import sympy

from symbackprop.core.operators import CHAIN_RULES, Upsample
from symbackprop.core.rules import proofs_for
from symbackprop.kinds.pool2d.rules import IsWindowMax, WindowMax, tiles_input
from symbackprop.kinds.pool2d.spec import AvgPool2d, MaxPool2d
from symbackprop.render.latex import LATEX, LatexParts, LayerLatexPrinter, size_formula_latex


def _window_max_latex(printer, expr, exp=None) -> str:
    """``\\max(x_{11}, x_{12}, ...)``."""
    text = r"\max(" + ", ".join(printer._print(element) for element in expr.args[0]) + ")"
    return text if exp is None else rf"{text}^{{{exp}}}"


def _is_window_max_latex(printer, expr, exp=None) -> str:
    """``[x_{22} = \\arg\\max z_{11}]``: 1 when x_{22} is the first maximum of the window."""
    output = tuple(int(i) for i in expr.args[2])
    return rf"[{printer._print(expr.candidate)} = \arg\max " \
           rf"{printer.label(printer.window_output, output)}]"


# The LaTeX printer learns the pooling functions from here: it names no kind.
LayerLatexPrinter.print_function(WindowMax, _window_max_latex)
LayerLatexPrinter.print_function(IsWindowMax, _is_window_max_latex)


def _window(layer, names, base):
    (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
    i, j, m, k = sympy.symbols("i j m k", integer=True)
    row = sympy.latex(sympy.expand((i - base) * sh + m), order="lex")
    col = sympy.latex(sympy.expand((j - base) * sw + k), order="lex")
    window = rf"\tilde{{{names['x']}}}_{{{row},\, {col}}}"
    offsets = rf"{base} \le m \le {kh - 1 + base},\, {base} \le k \le {kw - 1 + base}"
    return window, offsets


def max_general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    window, offsets = _window(layer, names, base)
    return {"forward": rf"{z}_{{ij}} = \max_{{{offsets}}} {window}",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{ab}}}} = "
                        rf"\sum_{{i,j}} {g}_{{ij}}\, [{x}_{{ab}} = \arg\max {z}_{{ij}}]"}


def average_general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    window, offsets = _window(layer, names, base)
    kh, kw = layer.kernel_size
    divisor = str(kh * kw) if layer.count_include_pad else "D_{ij}"
    return {"forward": rf"{z}_{{ij}} = \frac{{1}}{{{divisor}}} \sum_{{{offsets}}} {window}",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{ab}}}} = "
                        rf"\sum_{{(i,j):\, {x}_{{ab}} \in \text{{window }} ij}} "
                        rf"\frac{{{g}_{{ij}}}}{{{divisor}}}"}


def size_rows(layer, input_shape, output_shape) -> list[str]:
    top, bottom, left, right = layer.padding
    return [size_formula_latex("hw"[axis], (input_shape[2 + axis], *pads,
                                            layer.kernel_size[axis], layer.stride[axis], 1),
                               output_shape[2 + axis], dilated=False)
            for axis, pads in enumerate(((top, bottom), (left, right)))]


def _window_notes(layer) -> list[str]:
    notes = []
    if layer.overlapping:
        notes.append("Windows overlap (the stride is smaller than the window): an element in "
                     "several windows adds what it receives from each.")
    if layer.stride[0] > layer.kernel_size[0] or layer.stride[1] > layer.kernel_size[1]:
        notes.append("The stride is larger than the window: rows or columns between windows "
                     "are never read, and their gradient is $0$.")
    return notes


def max_notes(layer) -> list[str]:
    return [r"$[x_{ab} = \arg\max z_{ij}]$ is $1$ when $x_{ab}$ is the first maximum of "
            r"window $ij$ in row-major order---ties go to the first---and $0$ otherwise; "
            r"padding never wins. The whole $g_{ij}$ of a window goes to the element "
            r"that won it.", *_window_notes(layer)]


def average_notes(layer) -> list[str]:
    return [*_window_notes(layer),
            "Every element of a window receives the same share of its $g_{ij}$. "
            + ("The divisor is the window size, padded zeros included."
               if layer.count_include_pad else
               "$D_{ij}$ is the number of input elements window $ij$ holds: padding is "
               "left out of the divisor.")]


def kron(derivation, printer) -> dict | None:
    """Windows that tile the input: ``dL/dx = g (x) ones / (KH KW)``, as proven."""
    layer = derivation.layer
    if not tiles_input(layer):
        return None
    (proof,) = proofs_for(derivation)
    kh, kw = layer.kernel_size
    return {"formula": rf"\frac{{\partial {printer.name('L')}}}{{\partial {printer.name('x')}}} = "
                       rf"\frac{{1}}{{{kh * kw}}}\, {printer.name('g')} \otimes "
                       rf"\mathbf{{1}}_{{{kh}\times{kw}}}",
            "holds": proof.holds, "checked": proof.checked, "tail": any(proof.unread)}


# A chain's step delta^{l-1} from delta^l, written once: the text printout, the LaTeX
# walk and a chain module's comments print this expression (core/operators.py).
def chain_rule(layer, names):
    """``upsample(g)``: each window's error term back to the window's inputs."""
    return Upsample(names["g"])


CHAIN_RULES.register(MaxPool2d, chain_rule)
CHAIN_RULES.register(AvgPool2d, chain_rule)


LATEX.register(MaxPool2d, LatexParts(
    title="Backpropagation through max pooling", general=max_general,
    chain_words="max pooling: each window's error goes whole to its first maximum",
    notes=max_notes, size_rows=size_rows, upsamples=True))
LATEX.register(AvgPool2d, LatexParts(
    title="Backpropagation through average pooling", general=average_general,
    chain_words="average pooling: each element of a window gets an equal share",
    notes=average_notes, size_rows=size_rows, closed_form=kron, shows_padding=True,
    upsamples=True))
