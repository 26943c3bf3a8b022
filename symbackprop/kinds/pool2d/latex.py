"""Max and average pooling (1-D, 2-D, 3-D) in the LaTeX document: the window's
formulas, the notes on ties, overlaps, dilation, ceil_mode and divisors, the output
size, average pooling's proven Kronecker form,
and how :class:`~symbackprop.kinds.pool2d.rules.WindowMax` and
:class:`~symbackprop.kinds.pool2d.rules.IsWindowMax` print themselves."""

from __future__ import annotations

import math

import numpy as np
import sympy

from symbackprop.core.naming import parse_element
from symbackprop.core.operators import CHAIN_RULES, Upsample
from symbackprop.core.rules import proofs_for
from symbackprop.kinds.pool2d.figures import upsample
from symbackprop.kinds.pool2d.rules import (
    KRON_STATEMENT,
    ROUTING_STATEMENT,
    SHARE_STATEMENT,
    IsWindowMax,
    WindowMax,
    first_argmax,
    tiles_input,
)
from symbackprop.kinds.pool2d.spec import MAX_POOLS, POOLS
from symbackprop.render.latex import (
    DEFAULT_DETAIL,
    INDEX_LETTERS,
    LATEX,
    LatexParts,
    LayerLatexPrinter,
    _layer_document,
    size_formula_latex,
)
from symbackprop.render.latex_names import free_letters, name_letters
from symbackprop.render.worked_example import WorkedHints


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


#: Per number of axes: the window's index letters, its offsets' and an input element's.
_LETTERS = {1: ("i", "m", "a"), 2: ("ij", "mk", "ab"), 3: ("lij", "qmk", "abc")}
#: Per number of axes: the size symbols of each axis (output, input, padding before and
#: after, window, stride, dilation), as the LaTeX printout names them.
_SIZE_NAMES = {
    1: (("L_o", "L", r"p_{\mathrm{left}}", r"p_{\mathrm{right}}", "K", "s", "d"),),
    2: (("H_o", "H", r"p_{\mathrm{top}}", r"p_{\mathrm{bottom}}", "K_H", "s_h", "d_h"),
        ("W_o", "W", r"p_{\mathrm{left}}", r"p_{\mathrm{right}}", "K_W", "s_w", "d_w")),
    3: (("D_o", "D", r"p_{\mathrm{front}}", r"p_{\mathrm{back}}", "K_D", "s_d", "d_d"),
        ("H_o", "H", r"p_{\mathrm{top}}", r"p_{\mathrm{bottom}}", "K_H", "s_h", "d_h"),
        ("W_o", "W", r"p_{\mathrm{left}}", r"p_{\mathrm{right}}", "K_W", "s_w", "d_w")),
}


def _letters(layer, names) -> tuple[str, str, str]:
    """The window's, offsets' and input element's index letters, none of them a letter of
    the reader's names (the input named ``a``: ``a_{pq}``, not ``a_{ab}``)."""
    mapping = free_letters(INDEX_LETTERS, name_letters(names.values()))
    return tuple("".join(mapping.get(char, char) for char in letters)
                 for letters in _LETTERS[layer.spatial_dims])


def _window(layer, names, base):
    outs, offs, _ = _letters(layer, names)
    positions, ranges = [], []
    for axis, (out, off) in enumerate(zip(outs, offs)):
        kernel, stride, _, _, dilation = layer.axis_values(axis)
        i, m = sympy.symbols(f"{out} {off}", integer=True)
        position = (i - base) * stride + m if dilation == 1 else \
            (i - base) * stride + dilation * (m - base) + base
        positions.append(sympy.latex(sympy.expand(position), order="lex"))
        ranges.append(rf"{base} \le {off} \le {kernel - 1 + base}")
    separator = r",\, "
    window = rf"\tilde{{{names['x']}}}_{{{separator.join(positions)}}}"
    return window, separator.join(ranges)


def max_general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    window, offsets = _window(layer, names, base)
    outs, _, element = _letters(layer, names)
    summed = ",".join(outs)
    return {"forward": rf"{z}_{{{outs}}} = \max_{{{offsets}}} {window}",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{{element}}}}} = "
                        rf"\sum_{{{summed}}} {g}_{{{outs}}}\, [{x}_{{{element}}} = "
                        rf"\arg\max {z}_{{{outs}}}]"}


def _whole_window(layer) -> bool:
    """Whether every window divides by the window size: count_include_pad, no ceil_mode."""
    return layer.count_include_pad and not layer.ceil_mode


def average_general(layer, names, base: int = 1) -> dict:
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    window, offsets = _window(layer, names, base)
    outs, _, element = _letters(layer, names)
    divisor = str(math.prod(layer.kernel_size)) if _whole_window(layer) else f"D_{{{outs}}}"
    return {"forward": rf"{z}_{{{outs}}} = \frac{{1}}{{{divisor}}} \sum_{{{offsets}}} {window}",
            "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{{element}}}}} = "
                        rf"\sum_{{({','.join(outs)}):\, {x}_{{{element}}} \in \text{{window }} "
                        rf"{outs}}} \frac{{{g}_{{{outs}}}}}{{{divisor}}}"}


def _size_row(layer, axis, size, result) -> str:
    """PyTorch's output size with dilation and ceil_mode, as an ``alignat`` row."""
    out, name, before_name, after_name, kernel_name, stride_name, dilation_name = \
        _SIZE_NAMES[layer.spatial_dims][axis]
    kernel, stride, before, after, dilation = layer.axis_values(axis)
    left, right = (r"\left\lceil", r"\right\rceil") if layer.ceil_mode else \
        (r"\left\lfloor", r"\right\rfloor")
    general = rf"{left} \frac{{{name} + {before_name} + {after_name} - {dilation_name} " \
              rf"({kernel_name} - 1) - 1}}{{{stride_name}}} {right} + 1"
    numbers = rf"{left} \frac{{{size} + {before} + {after} - {dilation} \cdot ({kernel} - 1) " \
              rf"- 1}}{{{stride}}} {right} + 1"
    span = size + before + after - dilation * (kernel - 1) - 1
    rounded = (-(-span // stride) if layer.ceil_mode else span // stride) + 1
    row = rf"{out} &= {general} = {numbers} = {rounded}"
    if rounded != result:
        row += rf" - 1 = {result} \quad \text{{(the last window would start in the right " \
               rf"padding)}}"
    return row


def size_rows(layer, input_shape, output_shape) -> list[str]:
    if layer.new_options:
        return [_size_row(layer, axis, input_shape[2 + axis], output_shape[2 + axis])
                for axis in range(layer.spatial_dims)]
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
    if any(s > e for s, e in zip(layer.stride, layer.extent)):
        notes.append("The stride is larger than the window: rows or columns between windows "
                     "are never read, and their gradient is $0$.")
    if any(d != 1 for d in layer.dilation):
        notes.append(f"Dilation {'x'.join(map(str, layer.dilation))}: a window reads every "
                     f"$d$-th element, and only those receive its gradient.")
    if layer.ceil_mode:
        notes.append("ceil\\_mode (PyTorch): the number of windows is rounded up, so a last "
                     "window may run past the padded input, whose positions it does not read; "
                     "a window that would start in the right padding is dropped.")
    return notes


def max_notes(layer, names) -> list[str]:
    outs, _, element = _letters(layer, names)
    x, z, g = names["x"], names["z"], names["g"]
    return [rf"$[{x}_{{{element}}} = \arg\max {z}_{{{outs}}}]$ is $1$ when "
            rf"${x}_{{{element}}}$ is the first maximum of window ${outs}$ in row-major "
            rf"order---ties go to the first---and $0$ otherwise; padding never wins. The whole "
            rf"${g}_{{{outs}}}$ of a window goes to the element that won it.",
            *_window_notes(layer)]


def average_notes(layer, names) -> list[str]:
    outs = _letters(layer, names)[0]
    if _whole_window(layer):
        divisor = "The divisor is the window size, padded zeros included."
    elif layer.count_include_pad:
        divisor = (f"$D_{{{outs}}}$ is the number of positions of window ${outs}$ inside the "
                   f"padded input, padded zeros included (PyTorch's divisor): the window size, "
                   f"except for a ceil\\_mode window that runs past the padded input.")
    else:
        divisor = (f"$D_{{{outs}}}$ is the number of input elements window ${outs}$ holds: "
                   f"padding is left out of the divisor.")
    return [*_window_notes(layer),
            f"Every element of a window receives the same share of its "
            f"${names['g']}_{{{outs}}}$. "
            + divisor]


def kron(derivation, printer) -> dict | None:
    """Windows that tile the input: ``dL/dx = g (x) ones / (KH KW)``, as proven."""
    layer = derivation.layer
    if not tiles_input(layer):
        return None
    (proof,) = [proof for proof in proofs_for(derivation) if proof.statement == KRON_STATEMENT]
    kh, kw = layer.kernel_size
    return {"formula": rf"\frac{{\partial {printer.name('L')}}}{{\partial {printer.name('x')}}} = "
                       rf"\frac{{1}}{{{kh * kw}}}\, {printer.name('g')} \otimes "
                       rf"\mathbf{{1}}_{{{kh}\times{kw}}}",
            "holds": proof.holds, "checked": proof.checked, "tail": any(proof.unread)}


# -- the pooling's own document: the layer document with the upsample figure, the rules
# section and the chain's continuation through the activation before it ---------------

def _verdict(proof) -> dict:
    """A proof's verdict as the template states it (None: not proven, too large)."""
    if proof is None:
        return {"holds": None, "text": "this instance is too large to prove the rule while "
                                       "writing the document; it is quoted, not re-proven."}
    if proof.holds:
        return {"holds": True, "text": rf"SymPy expanded the rule for all {proof.checked} "
                                       r"input elements and each is exactly the element-wise "
                                       r"sum of Section~\ref{sec:backward}."}
    return {"holds": False, "text": rf"the rule differs from the element-wise sums at "
                                    rf"{len(proof.mismatches)} of {proof.checked} elements; "
                                    r"the sums are the truth."}


def _no_kron_reason(layer) -> str:
    """Why the Kronecker form does not apply to windows that do not tile the input."""
    reasons = []
    if layer.stride != layer.kernel_size:
        reasons.append(f"the stride {'x'.join(map(str, layer.stride))} is not the window "
                       f"{'x'.join(map(str, layer.kernel_size))}")
    if any(layer.padding):
        reasons.append("the input is padded")
    if layer.ceil_mode:
        reasons.append("ceil\\_mode clips the last windows")
    if any(d != 1 for d in layer.dilation):
        reasons.append("the window is dilated")
    return _join_words(reasons)


def _join_words(items) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def rules_section(derivation, printer, names: dict | None = None) -> dict:
    """The rules section: max pooling's routing to the argmax, average pooling's equal
    share and Kronecker form, each with this layer's numbers and its proof's verdict."""
    layer = derivation.layer
    is_max = isinstance(layer, MAX_POOLS)
    proofs = proofs_for(derivation)
    by_statement = {proof.statement: proof for proof in proofs} if proofs is not None else {}
    x, z, g, loss = (printer.name(key) for key in ("x", "z", "g", "L"))
    outs, _, element = _letters(layer, names or {})
    size = math.prod(layer.kernel_size)
    window_words = "x".join(map(str, layer.kernel_size))
    section = {"is_max": is_max, "window": window_words, "size": size,
               "maps": layer.spatial_dims == 2}  # the Kronecker form is stated for 2-D maps
    if is_max:
        section["formula"] = (
            rf"\frac{{\partial {loss}}}{{\partial {x}_{{{element}}}}} = "
            rf"\sum_{{\text{{windows }} {outs} \ni {x}_{{{element}}}}} {g}_{{{outs}}}\, "
            rf"[{x}_{{{element}}} = \arg\max {z}_{{{outs}}}]")
        section["matrix"] = (rf"\partial {loss}/\partial {x} = "
                             rf"\operatorname{{upsample}}_{{\max}}({g})")
        section["verdict"] = _verdict(by_statement.get(ROUTING_STATEMENT)) \
            if proofs is not None else _verdict(None)
        return section
    whole = _whole_window(layer)
    section["formula"] = (
        rf"\frac{{\partial {loss}}}{{\partial {x}_{{{element}}}}} = "
        rf"\sum_{{\text{{windows }} {outs} \ni {x}_{{{element}}}}} "
        rf"\frac{{{g}_{{{outs}}}}}{{{size if whole else f'D_{{{outs}}}'}}}")
    if whole:
        shown = (r" \times ".join(map(str, layer.kernel_size)) + f" = {size}"
                 if layer.spatial_dims > 1 else str(size))
        section["divisor"] = (rf"Every window divides by its size, ${shown}$"
                              + (", padded zeros included (count\\_include\\_pad)."
                                 if any(layer.padding) else "."))
    elif layer.count_include_pad:
        section["divisor"] = (rf"$D_{{{outs}}}$ is the number of positions of window ${outs}$ "
                              r"inside the padded input (count\_include\_pad): "
                              rf"${size}$ except for a window ceil\_mode clips at the end.")
    else:
        section["divisor"] = (rf"$D_{{{outs}}}$ is the number of input elements window "
                              rf"${outs}$ holds (count\_include\_pad off): ${size}$ for a window "
                              r"inside the input, fewer where it covers padding.")
    section["verdict"] = _verdict(by_statement.get(SHARE_STATEMENT)) \
        if proofs is not None else _verdict(None)
    kh = layer.kernel_size[0]
    kw = layer.kernel_size[1] if layer.spatial_dims > 1 else 1
    # in the text, not a line of its own: a printed rule line is one `check` can read
    section["kron_general"] = (rf"\tfrac{{1}}{{K_H K_W}}\, {g} \otimes "
                               rf"\mathbf{{1}}_{{K_H\times K_W}}")
    if tiles_input(layer):
        proof = by_statement.get(KRON_STATEMENT)
        section["kron"] = {
            "formula": rf"\frac{{\partial {loss}}}{{\partial {x}}} = \frac{{1}}{{{kh * kw}}}\, "
                       rf"{g} \otimes \mathbf{{1}}_{{{kh}\times{kw}}}",
            "verdict": _verdict(proof) if proofs is not None else _verdict(None)}
    else:
        section["kron"] = None
        section["no_kron"] = _no_kron_reason(layer) if layer.spatial_dims == 2 else ""
    return section


def activation_section(derivation, printer) -> dict:
    """The chain's continuation: the pooling's input is an activation's output, so
    ``delta^{l-1} = upsample(delta^l) (.) f'(net^{l-1})``, with this layer's first element."""
    x, loss = printer.name("x"), printer.name("L")
    first = (0,) * len(derivation.input_shape)
    element = printer.label("x", first)
    net = printer.label("x", first, name=r"\mathit{net}")
    gradient = printer.doprint(derivation.grad_x[first])
    if len(sympy.Add.make_args(derivation.grad_x[first])) > 1:
        gradient = rf"\bigl({gradient}\bigr)"
    return {
        "element": element,
        "net": net,
        "first": rf"\frac{{\partial {loss}}}{{\partial {net}}} = "
                 rf"\frac{{\partial {loss}}}{{\partial {element}}}\, f'({net}) = "
                 rf"{gradient}\, f'({net})",
        "x": x, "z": printer.name("z"), "g": printer.name("g"), "L": loss,
    }


def document(derivation, index_base: int = 1, names: dict | None = None,
             show_padding: bool = True, detail: str = DEFAULT_DETAIL) -> tuple[str, dict]:
    """The pooling's document: the shared layer document (``templates/layers.tex.j2``)
    through ``templates/pool2d/derivation.tex.j2``, which adds the upsample figure, the
    rules and the continuation through the activation before the pooling."""
    _, context = _layer_document(derivation, index_base, names, show_padding, detail)
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LayerLatexPrinter(notation)
    is_max = isinstance(derivation.layer, MAX_POOLS)
    figure = upsample(derivation, printer, is_max)
    dims = derivation.layer.spatial_dims
    context.update(
        upsample_missing=None if figure is not None else
        "A figure of the upsample is drawn for 1-D and 2-D pooling only." if dims > 2 else
        "The input is too large for a readable figure of the upsample; a smaller instance "
        "draws one.",
        kron=None,  # stated in the rules section, with the general sum
        names_g=printer.name("g"),
        upsample_figure=figure,
        pool_rules=rules_section(derivation, printer, names),
        pool_activation=activation_section(derivation, printer))
    return "pool2d/derivation.tex.j2", context


# A chain's step delta^{l-1} from delta^l, written once: the text printout, the LaTeX
# walk and a chain module's comments print this expression (core/operators.py).
def chain_rule(layer, names):
    """``upsample(g)``: each window's error term back to the window's inputs."""
    return Upsample(names["g"])


for _kind in POOLS:
    CHAIN_RULES.register(_kind, chain_rule)

_DIMENSIONS = {1: "1-D ", 2: "", 3: "3-D "}


def _window_maxima(derivation, values) -> dict:
    """The worked example's marks: each window's (first) maximum in the input, read off
    the derivation's ``WindowMax`` outputs at the example's numbers."""
    maxima = set()
    for index in np.ndindex(*derivation.output_shape):
        window = derivation.z[index].args[0]
        position = first_argmax([values[element] for element in window])
        maxima.add(parse_element(window[position])[1])
    return {"x": frozenset(maxima)}


def _tied_windows(derivation, values) -> int:
    """Windows whose largest number occurs more than once at the example's numbers."""
    tied = 0
    for index in np.ndindex(*derivation.output_shape):
        numbers = [values[element] for element in derivation.z[index].args[0]]
        tied += numbers.count(max(numbers)) > 1
    return tied


#: Max pooling's worked example: all inputs different (no window has a tie), maxima boxed.
_MAX_WORKED = WorkedHints(
    distinct_input=True, marks=_window_maxima, ties=_tied_windows,
    note=r"The boxed entries of {x} are the windows' maxima (all entries differ, so no window "
         r"has a tie): each window's upstream gradient goes whole to its maximum, and an entry "
         r"that is no window's maximum gets gradient 0.")

for _kind in POOLS:
    if _kind in MAX_POOLS:
        LATEX.register(_kind, LatexParts(
            title=f"Backpropagation through {_DIMENSIONS[_kind.spatial_dims]}max pooling",
            general=max_general,
            worked_example=_MAX_WORKED,
            chain_words="max pooling: each window's error goes whole to its first maximum",
            notes=max_notes, notes_take_names=True, size_rows=size_rows, upsamples=True,
            document=document))
    else:
        LATEX.register(_kind, LatexParts(
            title=f"Backpropagation through {_DIMENSIONS[_kind.spatial_dims]}average pooling",
            general=average_general,
            chain_words="average pooling: each element of a window gets an equal share",
            notes=average_notes, notes_take_names=True, size_rows=size_rows, closed_form=kron,
            shows_padding=True, upsamples=True, document=document))
