"""Render stage (LaTeX) for pooling, activation, flatten and fully connected layers,
and for chains of layers.

Input: a :class:`~symbackprop.core.derivation.Derivation` of one of these layers, or a
:class:`~symbackprop.core.chain.ChainDerivation`.  Output: the text of a standalone
LaTeX document (``templates/layers.tex.j2``, on the same base as the convolution
document of :mod:`~symbackprop.render.latex`):

- one layer: its arrays and output size, the forward pass element by element,
  the backward rule (max pooling's routing indicator and tie rule, average
  pooling's equal share and, for windows that tile the input, the proven
  Kronecker form; ``f'(net)`` of an activation; ``W^T g`` of a fully connected
  layer) and every gradient element;
- a chain: its layers, the walk from the last error term back to the first
  (``delta^[l-1]`` from ``delta^[l]``, with the notes'
  ``delta^[l-1] = upsample(delta^[l]) * f'(net^[l-1])`` where an activation meets
  pooling), then every layer's equations in the chain's names.

Long arrays are listed as a representative selection and long sums abbreviated,
with the limits of :mod:`~symbackprop.render.latex`.
"""

from __future__ import annotations

import re

import sympy

from symbackprop.kinds.activation.rules import ACTIVATIONS
from symbackprop.render.latex import (
    LISTING_LIMIT,
    TERMS_LIMIT,
    LatexPrinter,
    _abbreviate,
    _block,
    _selection_note,
    _terms_per_line,
    _typewriter,
    equation_rows,
    regenerate_command,
    representative_indices,
)
from symbackprop.render.templating import latex_environment, latex_escape

__all__ = ["LayerLatexPrinter", "layer_to_latex", "chain_to_latex", "layer_repr_latex",
           "ACTIVATION_LATEX"]

#: ``f(net)`` and ``f'(net)`` of each activation in LaTeX (``\net`` is the argument).
ACTIVATION_LATEX = {
    "relu": (r"\max(\mathit{net}, 0)", r"[\mathit{net} > 0] \quad (0 \text{ at } 0)"),
    "leakyrelu": (r"\begin{cases} \mathit{net} & \mathit{net} > 0 \\ \alpha\, \mathit{net} & "
                  r"\text{otherwise} \end{cases}",
                  r"\begin{cases} 1 & \mathit{net} > 0 \\ \alpha & \text{otherwise} \end{cases}"),
    "sigmoid": (r"\sigma(\mathit{net}) = \frac{1}{1 + e^{-\mathit{net}}}",
                r"\sigma(\mathit{net})\,\bigl(1 - \sigma(\mathit{net})\bigr)"),
    "tanh": (r"\tanh(\mathit{net})", r"1 - \tanh^2(\mathit{net})"),
}
_FUNCTION_NAMES = {"relu": r"\operatorname{relu}", "leaky_relu": r"\operatorname{lrelu}",
                   "sigmoid": r"\sigma", "tanh": r"\tanh"}
_CHAIN_ARRAY = re.compile(r"(a|delta|w|b)(\d+)")


class LayerLatexPrinter(LatexPrinter):
    """:class:`~symbackprop.render.latex.LatexPrinter` for the functions of the new layers and
    the arrays of chains.

    ``max(x_{11}, x_{12}, ...)``; the routing indicator ``[x_{22} = \\arg\\max z_{11}]``;
    ``\\operatorname{relu}(x_{11})``, ``\\sigma(x_{11})``; an indicator ``Piecewise`` as
    ``[x_{11} > 0]``; a chain's ``a2[0,0,1,1]`` as ``a^{[2]}_{22}`` and ``delta2`` as
    ``\\delta^{[2]}``.
    """

    def __init__(self, notation, window_output: str = "z", vector_bias: bool = False,
                 **options):
        super().__init__(notation, **options)
        self.window_output = window_output
        #: A fully connected layer's bias is a vector: ``b_{1}``, not a channel's ``b^{(1)}``.
        self.vector_bias = vector_bias

    def name(self, array: str) -> str:
        match = _CHAIN_ARRAY.fullmatch(array)
        if match is None:
            return super().name(array)
        stem = r"\delta" if match.group(1) == "delta" else match.group(1)
        return f"{stem}^{{[{match.group(2)}]}}"

    def label(self, array, index, name=None, free=None):
        stem = _CHAIN_ARRAY.fullmatch(array)
        is_bias = array == "b" or (stem is not None and stem.group(1) == "b")
        if self.vector_bias and is_bias and len(index) == 1:
            shown = self.notation.indices(array, index)
            return (name or self.name(array)) + (f"_{{{shown[0]}}}" if shown else "")
        text = super().label(array, index, name=name, free=free)
        # a^{[2]}^{(1,2)}_{11} -> a^{[2](1,2)}_{11}: one superscript
        return text.replace("]}^{(", "](")

    def _print_WindowMax(self, expr):
        return r"\max(" + ", ".join(self._print(element) for element in expr.args[0]) + ")"

    def _print_IsWindowMax(self, expr):
        output = tuple(int(i) for i in expr.args[2])
        return (rf"[{self._print(expr.candidate)} = \arg\max "
                rf"{self.label(self.window_output, output)}]")

    def _print_ActivationBase(self, expr, exp=None):
        name = _FUNCTION_NAMES.get(expr.func.__name__, rf"\operatorname{{{expr.func.__name__}}}")
        power = "" if exp is None else f"^{{{exp}}}"
        return rf"{name}{power}({self._print(expr.args[0])})"

    def _print_Piecewise(self, expr):
        pieces = expr.args
        if len(pieces) == 2 and pieces[0].expr == 1 and pieces[1].expr == 0 \
                and pieces[1].cond == sympy.true:
            return rf"[{self._print(pieces[0].cond)}]"
        return super()._print_Piecewise(expr)


# ---------------------------------------------------------------------------
# Pieces shared by the layer and chain documents
# ---------------------------------------------------------------------------

def _equations(printer, lhs_labels, expressions) -> tuple:
    """An ``alignat`` block of ``lhs = expression`` rows; sums abbreviated past the limit."""
    lhs_width = max(0.45 * len(re.sub(r"\\[a-z]+|[{}^_ ]", "", lhs)) for lhs in lhs_labels)
    per_line = _terms_per_line(printer, expressions, lhs_width)
    rows, abbreviated = [], False
    for lhs, expression in zip(lhs_labels, expressions, strict=True):
        terms, cut = _abbreviate(printer.terms(expression))
        abbreviated |= cut
        tag = rf"\small {len(sympy.Add.make_args(expression))} terms" if cut else None
        rows.append(equation_rows(lhs, terms, per_line, tag, join_lone_last=True))
    return _block(rows), abbreviated


def _listing(printer, array_name, shape, expressions, lhs):
    """The rows for an array (a selection when it is large) and a note saying so."""
    indices, selected = representative_indices(shape, 2 if len(shape) > 2 else 1)
    block, abbreviated = _equations(printer, [lhs(index) for index in indices],
                                    [expressions[index] for index in indices])
    note = _selection_note(array_name, shape, len(indices), printer) if selected else None
    return {"block": block, "selection": note, "abbreviated": abbreviated}


def _shape(shape) -> str:
    return r"\times".join(map(str, shape))


def _derivative(printer, loss, symbol) -> str:
    return rf"\frac{{\partial {loss}}}{{\partial {printer.doprint(symbol)}}}"


def _general(kind, layer, names, base: int = 1) -> dict:
    """The general formulas of a layer kind, in the reader's names: forward, backward."""
    x, z, g, loss = names["x"], names["z"], names["g"], names["L"]
    dx = rf"\frac{{\partial {loss}}}{{\partial {x}}}"
    if kind in ("maxpool2d", "avgpool2d"):
        (kh, kw), (sh, sw) = layer.kernel_size, layer.stride
        i, j, m, k = sympy.symbols("i j m k", integer=True)
        row = sympy.latex(sympy.expand((i - base) * sh + m), order="lex")
        col = sympy.latex(sympy.expand((j - base) * sw + k), order="lex")
        window = rf"\tilde{{{x}}}_{{{row},\, {col}}}"
        offsets = rf"{base} \le m \le {kh - 1 + base},\, {base} \le k \le {kw - 1 + base}"
        if kind == "maxpool2d":
            return {"forward": rf"{z}_{{ij}} = \max_{{{offsets}}} {window}",
                    "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{ab}}}} = "
                                rf"\sum_{{i,j}} {g}_{{ij}}\, [{x}_{{ab}} = \arg\max {z}_{{ij}}]"}
        divisor = str(kh * kw) if layer.count_include_pad else "D_{ij}"
        return {"forward": rf"{z}_{{ij}} = \frac{{1}}{{{divisor}}} \sum_{{{offsets}}} {window}",
                "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{ab}}}} = "
                            rf"\sum_{{(i,j):\, {x}_{{ab}} \in \text{{window }} ij}} "
                            rf"\frac{{{g}_{{ij}}}}{{{divisor}}}"}
    if kind == "flatten":
        return {"forward": rf"{z}_{{f}} = {x}_{{chw}},\quad f = (cH + h)W + w",
                "backward": rf"\frac{{\partial {loss}}}{{\partial {x}_{{chw}}}} = {g}_{{f}}"}
    if kind == "linear":
        w, b = names["w"], names.get("b")
        return {"forward": rf"{z} = {w}\, {x}" + (f" + {b}" if b else ""),
                "backward": rf"{dx} = {{{w}}}^{{T}} {g},\quad "
                            rf"\frac{{\partial {loss}}}{{\partial {w}}} = {g}\, {{{x}}}^{{T}}"
                            + (rf",\quad \frac{{\partial {loss}}}{{\partial {b}}} = {g}"
                               if b else "")}
    value, derivative = ACTIVATION_LATEX[kind]
    return {"forward": rf"{z} = f({x}),\quad f(\mathit{{net}}) = {value}",
            "backward": rf"{dx} = {g} \odot f'({x}),\quad f'(\mathit{{net}}) = {derivative}"}


def _size_rows(layer, input_shape, output_shape) -> list[str]:
    rows = []
    top, bottom, left, right = layer.padding
    for axis, (out, size_name, kernel_name, stride_name) in enumerate(
            (("H_o", "H", "K_H", "s_h"), ("W_o", "W", "K_W", "s_w"))):
        pads = (top, bottom) if axis == 0 else (left, right)
        size, kernel, stride = input_shape[2 + axis], layer.kernel_size[axis], layer.stride[axis]
        rows.append(rf"{out} &= \left\lfloor \frac{{{size_name} + p_{{\text{{before}}}} + "
                    rf"p_{{\text{{after}}}} - {kernel_name}}}{{{stride_name}}} \right\rfloor + 1 "
                    rf"= \left\lfloor \frac{{{size} + {pads[0]} + {pads[1]} - {kernel}}}"
                    rf"{{{stride}}} \right\rfloor + 1 = {output_shape[2 + axis]}")
    return rows


def _notes(layer) -> list[str]:
    notes = []
    if layer.kind == "maxpool2d":
        notes.append(r"$[x_{ab} = \arg\max z_{ij}]$ is $1$ when $x_{ab}$ is the first maximum of "
                     r"window $ij$ in row-major order---ties go to the first---and $0$ otherwise; "
                     r"padding never wins. The whole $g_{ij}$ of a window goes to the element "
                     r"that won it.")
    if layer.kind in ("maxpool2d", "avgpool2d"):
        if layer.overlapping:
            notes.append("Windows overlap (the stride is smaller than the window): an element in "
                         "several windows adds what it receives from each.")
        if layer.stride[0] > layer.kernel_size[0] or layer.stride[1] > layer.kernel_size[1]:
            notes.append("The stride is larger than the window: rows or columns between windows "
                         "are never read, and their gradient is $0$.")
    if layer.kind == "avgpool2d":
        notes.append("Every element of a window receives the same share of its $g_{ij}$. "
                     + ("The divisor is the window size, padded zeros included."
                        if layer.count_include_pad else
                        "$D_{ij}$ is the number of input elements window $ij$ holds: padding is "
                        "left out of the divisor."))
    return notes


# ---------------------------------------------------------------------------
# One layer
# ---------------------------------------------------------------------------

def layer_to_latex(derivation, index_base: int = 1, names: dict | None = None,
                   show_padding: bool = True, *, command: str | None = None) -> str:
    """A pooling, activation, flatten or fully connected derivation as a LaTeX document."""
    from symbackprop._version import __version__
    from symbackprop.core.rules import proofs_for
    from symbackprop.kinds.pool2d.rules import tiles_input

    layer = derivation.layer
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LayerLatexPrinter(notation, vector_bias=layer.kind == "linear")
    loss = printer.name("L")
    reader = {key: printer.name(key) for key in ("x", "z", "g", "L", "w", "b")}
    if "b" not in derivation.params:
        reader.pop("b")
    general = _general(layer.kind, layer, reader, index_base)
    arrays = [(printer.name("x"), _shape(derivation.input_shape), "the input")]
    arrays += [(printer.name(name), _shape(array.shape),
                "the weight" if name == "w" else "the bias")
               for name, array in derivation.params.items()]
    arrays.append((rf"{printer.name('z')},\ {printer.name('g')}", _shape(derivation.output_shape),
                   rf"the output and the upstream gradient $\partial {loss}/\partial "
                   rf"{printer.name('z')}$"))
    written = derivation.z_written if show_padding else derivation.z
    forward = _listing(printer, "z", derivation.output_shape, written,
                       lambda index: printer.label("z", index))
    backward = []
    for name in ("x", *derivation.params):
        symbols = derivation.x if name == "x" else derivation.params[name]
        part = _listing(printer, name, symbols.shape, derivation.grads[name],
                        lambda index, symbols=symbols: _derivative(printer, loss, symbols[index]))
        part["title"] = {"x": "Input", "w": "Weight", "b": "Bias"}[name] + \
            f" ${printer.name(name)}$"
        backward.append(part)
    kron = None
    if layer.kind == "avgpool2d" and tiles_input(layer):
        (proof,) = proofs_for(derivation)
        kh, kw = layer.kernel_size
        kron = {"formula": rf"\frac{{\partial {loss}}}{{\partial {printer.name('x')}}} = "
                           rf"\frac{{1}}{{{kh * kw}}}\, {printer.name('g')} \otimes "
                           rf"\mathbf{{1}}_{{{kh}\times{kw}}}",
                "holds": proof.holds, "checked": proof.checked,
                "tail": any(proof.unread)}
    if layer.kind in ACTIVATIONS and layer.constants:
        general["backward"] += rf",\quad \alpha = {layer.constants[0]:g}"
    command = command or regenerate_command(layer, derivation.input_shape, index_base, names,
                                            show_padding)
    context = {
        "title": _TITLES[layer.kind],
        "description": latex_escape(layer.describe()).replace("->", r"$\to$"),
        "arrays": arrays,
        "sizes": _size_rows(layer, derivation.input_shape, derivation.output_shape)
        if layer.kind.endswith("pool2d") else [],
        "general": general,
        "notes": _notes(layer),
        "forward": forward,
        "backward": backward,
        "kron": kron,
        "loss_sum": rf"{loss} = \sum {printer.name('g')} \, {printer.name('z')}",
        "method": derivation.method,
        "limits": {"listing": LISTING_LIMIT, "terms": TERMS_LIMIT},
        "chain": None,
        "command": _typewriter(command),
        "command_comment": " ".join(command.split()),
        "version": latex_escape(__version__),
    }
    return latex_environment().get_template("layers.tex.j2").render(**context)


_TITLES = {
    "maxpool2d": "Backpropagation through max pooling",
    "avgpool2d": "Backpropagation through average pooling",
    "relu": "Backpropagation through a ReLU", "leakyrelu": "Backpropagation through a leaky ReLU",
    "sigmoid": "Backpropagation through a sigmoid", "tanh": "Backpropagation through tanh",
    "flatten": "Backpropagation through a flatten layer",
    "linear": "Backpropagation through a fully connected layer",
}


# ---------------------------------------------------------------------------
# A chain
# ---------------------------------------------------------------------------

def _chain_rule(step, printer) -> str:
    """``\\delta^{[l-1]}`` from ``\\delta^{[l]}`` for one step, as a formula."""
    number, kind = step.number, step.layer.kind
    before, after = printer.name(f"delta{number - 1}"), printer.name(f"delta{number}")
    a_before = printer.name(f"a{number - 1}")
    if kind == "linear":
        w = printer.name(f"w{number}")
        return rf"{before} = \bigl({w}\bigr)^{{T}} {after}"
    if kind == "conv2d":
        w = printer.name(f"w{number}")
        return (rf"{before}_{{c}} = \sum_o \corr\bigl(\operatorname{{pad}}(\operatorname{{dil}}_s "
                rf"{after}_{{o}}),\ \operatorname{{rot}}_{{180}}\, {w}_{{o,c}}\bigr)")
    if kind in ("maxpool2d", "avgpool2d"):
        return rf"{before} = \operatorname{{upsample}}\bigl({after}\bigr)"
    if kind == "flatten":
        return rf"{before} = \operatorname{{reshape}}\bigl({after}\bigr)"
    return rf"{before} = {after} \odot f'\bigl({a_before}\bigr)"


_CHAIN_WORDS = {
    "conv2d": "a convolution: a full correlation with the rotated kernel, channels swapped",
    "linear": "a fully connected layer",
    "maxpool2d": "max pooling: each window's error goes whole to its first maximum",
    "avgpool2d": "average pooling: each element of a window gets an equal share",
    "flatten": "flatten: the error takes the shape of the feature maps again",
}


def chain_to_latex(chain, index_base: int = 1, names: dict | None = None,
                   show_padding: bool = True, *, command: str | None = None) -> str:
    """A :class:`~symbackprop.core.chain.ChainDerivation` as a LaTeX document."""
    from symbackprop._version import __version__

    notation = chain.notation(index_base=index_base, names=names)
    plain = LayerLatexPrinter(notation)
    loss = plain.name("L")
    steps = chain.steps
    table = [("", "input", plain.name("a0"), _shape(chain.activation_shapes[0]), "")]
    walk = []
    for step in steps:
        parameters = ", ".join(f"${plain.name(name)}$: ${_shape(array.shape)}$"
                               for name, array in step.params.items())
        table.append((str(step.number), latex_escape(step.layer.describe()).replace(
            "->", r"$\to$"), plain.name(step.names["z"]), _shape(step.output_shape),
            parameters))
    for step in reversed(steps):
        kind = step.layer.kind
        words = _CHAIN_WORDS.get(kind) or (
            "an activation, $f'(\\mathit{net}) = " + ACTIVATION_LATEX[kind][1] + "$")
        row = {"formula": _chain_rule(step, plain), "layer": step.number, "words": words,
               "combined": None}
        following = steps[step.number] if step.number < len(steps) else None
        if kind in ACTIVATIONS and following is not None and \
                following.layer.kind.endswith("pool2d"):
            row["combined"] = (rf"{plain.name(step.names['grad_x'])} = \operatorname{{upsample}}"
                               rf"\bigl({plain.name(following.names['g'])}\bigr) \odot "
                               rf"f'\bigl({plain.name(step.names['x'])}\bigr)")
        walk.append(row)
    sections = []
    for step in steps:
        printer = LayerLatexPrinter(notation, window_output=step.names["z"],
                                    vector_bias=step.layer.kind == "linear")
        shown = step.z_written if show_padding and step.layer.kind in ("conv2d", "avgpool2d",
                                                                        "linear") else step.z
        forward = _listing(printer, step.names["z"], step.output_shape, shown,
                           lambda index, step=step, printer=printer:
                           printer.doprint(step.output[index]))
        backward = [_listing(printer, step.names["grad_x"], step.input_shape, step.delta_in,
                             lambda index, step=step, printer=printer: printer.label(
                                 step.names["grad_x"], index))]
        for name, gradient in step.param_grads.items():
            backward.append(_listing(
                printer, name, gradient.shape, gradient,
                lambda index, name=name, step=step, printer=printer:
                _derivative(printer, loss, step.params[name][index])))
        reader = {"x": plain.name(step.names["x"]), "z": plain.name(step.names["z"]),
                  "g": plain.name(step.names["g"]), "L": loss}
        for own in ("w", "b"):
            if own in step.names:
                reader[own] = plain.name(step.names[own])
        general = _general(step.layer.kind, step.layer, reader, index_base) \
            if step.layer.kind != "conv2d" else None
        sections.append({"number": step.number,
                         "description": latex_escape(step.layer.describe()).replace(
                             "->", r"$\to$"),
                         "general": general, "forward": forward, "backward": backward})
    layer = chain.layer
    command = command or regenerate_command(layer, chain.input_shape, index_base, names,
                                            show_padding)
    context = {
        "title": "Backpropagation through a chain of layers",
        "description": latex_escape(layer.describe()).replace("->", r"$\to$"),
        "chain": {"table": table, "walk": walk, "sections": sections,
                  "last": plain.name(f"delta{len(steps)}"),
                  "output": plain.name(f"a{len(steps)}")},
        "loss_sum": rf"{loss} = \sum {plain.name(f'delta{len(steps)}')} \, "
                    rf"{plain.name(f'a{len(steps)}')}",
        "method": chain.method,
        "limits": {"listing": LISTING_LIMIT, "terms": TERMS_LIMIT},
        "command": _typewriter(command),
        "command_comment": " ".join(command.split()),
        "version": latex_escape(__version__),
    }
    return latex_environment().get_template("layers.tex.j2").render(**context)


def layer_repr_latex(derivation, index_base: int = 1, names: dict | None = None) -> str:
    """A short math-mode summary for notebooks: the first output and input gradient."""
    if hasattr(derivation, "steps"):
        notation = derivation.notation(index_base=index_base, names=names)
        printer = LayerLatexPrinter(notation)
        rows = [rf"&\text{{{latex_escape(derivation.layer.describe())}}}".replace(
            "->", r"}\to\text{")]
        rows += [_chain_rule(step, printer).replace(" = ", " &= ", 1)
                 for step in reversed(derivation.steps)]
        return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"
    notation = derivation.notation(index_base=index_base, names=names)
    printer = LayerLatexPrinter(notation)
    loss = printer.name("L")
    first_out = (0,) * len(derivation.output_shape)
    first_in = (0,) * len(derivation.input_shape)
    rows = [rf"&\text{{{latex_escape(derivation.layer.describe())}}}".replace(
                "->", r"}\to\text{"),
            rf"{printer.label('z', first_out)} &= {printer.doprint(derivation.z[first_out])}",
            rf"{_derivative(printer, loss, derivation.x[first_in])} &= "
            rf"{printer.doprint(derivation.grad_x[first_in])}"]
    return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"
