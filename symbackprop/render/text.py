"""Render stage (terminal): a derivation as plain text a person reads.

Input: a :class:`~symbackprop.core.derivation.Derivation`.  Output: a string with the
output-size formula and this layer's numbers, every ``z`` element as a textbook
writes it (padding products visible as ``0 w11``), and every gradient element.
SymPy expressions become text only through :class:`TextPrinter`.
"""

from __future__ import annotations

import math

import numpy as np
import sympy
from sympy.printing.str import StrPrinter

from symbackprop.core import progress
from symbackprop.core.indexing import dilated_length, unread_length
from symbackprop.core.naming import (
    Notation,
    element_symbol,
    factor_sort_key,
    symbol_array,
    term_sort_key,
)

__all__ = ["TextPrinter", "format_derivation", "output_size_lines", "rule_lines", "format_layer",
           "format_chain", "pool_size_lines", "backward_rules"]


class TextPrinter(StrPrinter):
    """Prints element symbols by their textbook labels, products with spaces.

    Terms of a sum are ordered by upstream-gradient index, then kernel offset
    (``g11 w22 + g12 w21 + ...``); factors of a product as ``g x w b``.
    """

    _default_settings = {**StrPrinter._default_settings, "full_prec": False}

    def __init__(self, notation: Notation, window_output: str = "z", **settings):
        super().__init__(settings)
        self.notation = notation
        #: The array that max pooling writes, named in ``[x22 = argmax z11]``.
        self.window_output = window_output

    def _print_Symbol(self, expr):
        return self.notation.label(expr)

    def _print_Mul(self, expr):
        factors = sorted(expr.args, key=factor_sort_key)
        sign = ""
        if factors and factors[0] == -1 and expr.is_commutative:
            sign, factors = "-", factors[1:]
        if not factors:
            return sign + "1"
        divisor = None
        if len(factors) > 1 and factors[0].is_Rational and abs(factors[0].p) == 1 \
                and factors[0].q > 1:  # an equal share: g11/4, (x11 + x12)/4
            sign = "-" if factors[0].p < 0 else sign
            divisor, factors = factors[0].q, factors[1:]
        parts = [self.parenthesize(f, sympy.printing.precedence.PRECEDENCE["Mul"])
                 for f in factors]
        return sign + " ".join(parts) + ("" if divisor is None else f"/{divisor}")

    def _print_Pow(self, expr, rational=False):
        exponent = expr.exp
        if exponent.is_Integer and exponent > 1:
            base = self.parenthesize(expr.base, sympy.printing.precedence.PRECEDENCE["Pow"])
            return f"{base}^{exponent}"
        return super()._print_Pow(expr, rational)

    def _print_Piecewise(self, expr):
        """``[x11 > 0]`` for an indicator, else ``(1 if x11 > 0 else 0.1)``."""
        pieces = expr.args
        if len(pieces) == 2 and pieces[0].expr == 1 and pieces[1].expr == 0 \
                and pieces[1].cond == sympy.true:
            return f"[{self._print(pieces[0].cond)}]"
        text = ""
        for piece in pieces[:-1]:
            text += f"{self._print(piece.expr)} if {self._print(piece.cond)} else "
        last = pieces[-1]
        if last.cond != sympy.true:
            raise NotImplementedError(f"TextPrinter cannot print a Piecewise without a default: "
                                      f"{expr!r}")
        return f"({text}{self._print(last.expr)})"

    def _print_ActivationBase(self, expr):
        """``relu(x11)``; constants such as the leaky slope are stated in the header."""
        return f"{expr.func.__name__}({self._print(expr.args[0])})"

    def _print_WindowMax(self, expr):
        return "max(" + ", ".join(self._print(element) for element in expr.args[0]) + ")"

    def _print_IsWindowMax(self, expr):
        """``[x22 = argmax z11]``: 1 when x22 is the first maximum of z11's window."""
        output = element_symbol(self.window_output, tuple(int(i) for i in expr.args[2]))
        return f"[{self._print(expr.candidate)} = argmax {self._print(output)}]"

    def _print_Add(self, expr, order=None):
        # A sum that lists padding zeros was written by hand (unevaluated): keep its
        # order, the window's row-major order.  Evaluated sums never hold a 0.
        written = any(term == 0 for term in expr.args)
        terms = list(expr.args) if written else sorted(expr.args, key=term_sort_key)
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
    """The whole derivation as text (what ``symbackprop derive`` prints).

    Pooling, activation, flatten and fully connected layers go to
    :func:`format_layer`, chains of layers to :func:`format_chain`.
    """
    if hasattr(derivation, "steps"):
        return format_chain(derivation, index_base=index_base, names=names,
                            show_padding=show_padding)
    if derivation.layer.kind != "conv2d":
        return format_layer(derivation, index_base=index_base, names=names,
                            show_padding=show_padding, proofs=proofs)
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
            for label, expr in progress.track(zip(labels, rights), "printing", len(labels),
                                              unit="equations")]


def _shape(shape) -> str:
    return " x ".join(map(str, shape))


# ---------------------------------------------------------------------------
# Pooling, activations, flatten, fully connected, and chains of layers
# ---------------------------------------------------------------------------

def pool_size_lines(layer, input_size, output_size) -> list[str]:
    """``Ho = floor((H + top + bottom - KH) / sh) + 1 = ...``, and which rows no window reads."""
    top, bottom, left, right = layer.padding
    axes = (("Ho", "H", "KH", "sh", ("top", "bottom"), (top, bottom), "row"),
            ("Wo", "W", "KW", "sw", ("left", "right"), (left, right), "column"))
    lines = []
    for axis, (out, size_name, kernel_name, stride_name, pad_names, pads, what) in enumerate(axes):
        size, result = input_size[axis], output_size[axis]
        kernel, stride = layer.kernel_size[axis], layer.stride[axis]
        lines.append(f"{out} = floor(({size_name} + {pad_names[0]} + {pad_names[1]} - "
                     f"{kernel_name}) / {stride_name}) + 1 = floor(({size} + {pads[0]} + "
                     f"{pads[1]} - {kernel}) / {stride}) + 1 = {result}")
        if stride < kernel and result > 1:
            lines.append(f"   stride {stride} < window {kernel}: neighbouring windows share "
                         f"{kernel - stride} {what}(s), whose gradient shares add up")
        elif stride > kernel and result > 1:
            lines.append(f"   stride {stride} > window {kernel}: {stride - kernel} {what}(s) "
                         f"between windows are never read, so the gradient there is 0")
        unread = unread_length(size, kernel, stride, *pads)
        if unread:
            lines.append(f"   the last {unread} padded {what}(s) are past the last window: never "
                         f"read, so the gradient there is 0")
    return lines


def _names(notation, chain_names=None) -> dict:
    """Display names for rule text: a layer's own (``x``, ``dL/dx``) or a chain's (``a2``)."""
    loss = notation.name("L")
    own = chain_names or {"x": "x", "z": "z", "g": "g", "w": "w", "b": "b"}
    names = {role: notation.name(array) for role, array in own.items() if role != "grad_x"}
    names["dx"] = notation.name(own["grad_x"]) if chain_names else f"d{loss}/d{names['x']}"
    for parameter in ("w", "b"):
        if parameter in names:
            names["d" + parameter] = f"d{loss}/d{names[parameter]}"
    return names


def _activation_rule(layer):
    from symbackprop.kinds.activation.rules import ACTIVATIONS
    return ACTIVATIONS[layer.kind]


def _constants_text(layer) -> str:
    rule = _activation_rule(layer)
    return "".join(f", {name} = {value:g}" for name, value in zip(rule.constants, layer.constants))


def _forward_header(layer, names, input_shape) -> str:
    x, z = names["x"], names["z"]
    kind = layer.kind
    if kind == "conv2d":
        return f"{z} = {x} (cross-correlated with) {names['w']}" + \
            (f" + {names['b']}" if "b" in names else "")
    if kind in ("maxpool2d", "avgpool2d"):
        kernel_h, kernel_w = layer.kernel_size
        if kind == "maxpool2d":
            return f"{z} = the largest element of each {kernel_h}x{kernel_w} window of {x} " \
                   f"(padding never wins)"
        divisor = (f"divided by KH*KW = {kernel_h * kernel_w}" +
                   (" (padded zeros count, shown as 0)" if any(layer.padding) else "")
                   if layer.count_include_pad else
                   "divided by the number of input elements in the window (padding left out)")
        return f"{z} = the mean of each {kernel_h}x{kernel_w} window of {x}, {divisor}"
    if kind == "flatten":
        return f"{z} = {x} flattened in row-major order (feature f = (c*H + h)*W + w)"
    if kind == "linear":
        text = f"{z} = {names['w']} {x}" + (f" + {names['b']}" if "b" in names else "")
        if len(input_shape) > 2:
            text += f", {x} read as {math.prod(input_shape[1:])} features in row-major order"
        return text
    rule = _activation_rule(layer)
    return f"{z} = f({x}) elementwise, {rule.formula}{_constants_text(layer)}"


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    """The rule of a layer's backward pass in words, with this instance's numbers."""
    x, g, dx = names["x"], names["g"], names["dx"]
    kind = layer.kind
    if kind == "conv2d":
        from symbackprop.kinds.conv2d.rules import grad_padding
        stride = "x".join(map(str, layer.stride))
        dilation = "" if layer.dilation == (1, 1) else \
            f", dilation {'x'.join(map(str, layer.dilation))}"
        lines = [f"{dx}[n,c] = sum_o correlate(pad(dilate({g}[n,o], stride {stride}), "
                 f"{grad_padding(layer, input_shape[2:])}), rot180({names['w']}[o,c]){dilation}), "
                 f"o over c's group (a transposed convolution)",
                 f"{names['dw']}[o,c] = sum_n correlate(pad({x}[n,c], {layer.padding}), "
                 f"dilate({g}[n,o], stride {stride}))"]
        if "b" in names:
            lines.append(f"{names['db']}[o] = sum of {g}[n,o,i,j] over n, i, j")
        return lines
    if kind == "linear":
        lines = [f"{dx} = {names['w']}^T {g}" +
                 (f", reshaped to {_shape(input_shape)}" if len(input_shape) > 2 else ""),
                 f"{names['dw']} = {g} {x}^T" + (" summed over the batch" if output_shape[0] > 1
                                                  else "")]
        if "b" in names:
            lines.append(f"{names['db']} = {g}" + (" summed over the batch"
                                                   if output_shape[0] > 1 else ""))
        return lines
    if kind == "maxpool2d":
        z = names["z"]
        return [f"{dx} = upsample({g}): the whole {g}_ij goes to the element that won window ij",
                f"[{x}_ab = argmax {z}_ij] is 1 when {x}_ab is the first maximum of {z}_ij's "
                f"window in row-major order",
                "   (ties go to the first; padding never wins), else 0; overlapping windows add"]
    if kind == "avgpool2d":
        from symbackprop.kinds.pool2d.rules import tiles_input
        kernel_h, kernel_w = layer.kernel_size
        share = f"{g}_ij / {kernel_h * kernel_w}" if layer.count_include_pad or \
            not any(layer.padding) else f"{g}_ij / (input elements in the window)"
        lines = [f"{dx} = upsample({g}): every input element of a window receives an equal share "
                 f"{share}; overlapping windows add"]
        if tiles_input(layer):
            tail = unread_length(input_shape[2], kernel_h, kernel_h, 0, 0) or \
                unread_length(input_shape[3], kernel_w, kernel_w, 0, 0)
            lines.append(f"windows tile the input: {dx} = kron({g}, ones({kernel_h}, "
                         f"{kernel_w})) / {kernel_h * kernel_w}"
                         + (", then zeros past the last window" if tail else ""))
        return lines
    if kind == "flatten":
        return [f"{dx} = {g} reshaped to {_shape(input_shape)}"]
    rule = _activation_rule(layer)
    return [f"{dx} = {g} * f'({x}) elementwise, {rule.derivative_formula}"
            f"{_constants_text(layer)}"]


def _short_backward(layer, names) -> str:
    """``upsample(delta3)``, ``(w5^T delta5)``: a layer's backward applied to its error term."""
    g = names["g"]
    return {"maxpool2d": f"upsample({g})", "avgpool2d": f"upsample({g})",
            "flatten": f"reshape({g})", "linear": f"({names.get('w')}^T {g})",
            "conv2d": f"transposed-conv({g}, {names.get('w')})"}.get(layer.kind, g)


def _axes(shape, pooled=False) -> str:
    if len(shape) == 4:
        return " (N x C x Ho x Wo)" if pooled else " (N x C x H x W)"
    return " (N x F)" if len(shape) == 2 else ""


def format_layer(derivation, index_base: int = 1, names: dict | None = None,
                 show_padding: bool = True, proofs=()) -> str:
    """A pooling, activation, flatten or fully connected derivation as text."""
    notation = derivation.notation(index_base=index_base, names=names)
    printer = TextPrinter(notation)
    name = notation.name
    layer = derivation.layer
    loss = name("L")
    own = _names(notation, None)
    if "b" not in derivation.params:
        own.pop("b", None)
        own.pop("db", None)
    lines = [layer.describe()]
    shapes = [f"{name('x')}: {_shape(derivation.input_shape)}{_axes(derivation.input_shape)}"]
    shapes += [f"{name(p)}: {_shape(a.shape)}" for p, a in derivation.params.items()]
    shapes.append(f"{name('z')}, {name('g')} = d{loss}/d{name('z')}: "
                  f"{_shape(derivation.output_shape)}"
                  f"{_axes(derivation.output_shape, layer.kind.endswith('pool2d'))}")
    lines += ["  " + "   ".join(shapes)]
    if layer.kind in ("maxpool2d", "avgpool2d"):
        lines += ["", "Output size:"]
        lines += ["  " + line for line in pool_size_lines(
            layer, derivation.input_shape[2:], derivation.output_shape[2:])]
    shows_zeros = show_padding and layer.kind in ("avgpool2d", "linear")
    lines += ["", f"Forward, {_forward_header(layer, own, derivation.input_shape)}:"]
    shown = derivation.z_written if shows_zeros else derivation.z
    lines += _equations(printer, symbol_array("z", derivation.output_shape), shown,
                        printer.doprint)
    lines += ["", f"Backward, {loss} = sum {name('g')}*{name('z')} differentiated by SymPy "
              f"({derivation.method}):"]
    rules = backward_rules(layer, own, derivation.input_shape, derivation.output_shape)
    for proof in proofs:  # closed forms proven against the sums (average pooling's kron)
        verdict = f"verified on {proof.checked} elements" if proof.holds else \
            f"FAILS on {len(proof.mismatches)} of {proof.checked} elements"
        rules = [rule + f" ({verdict})" if "kron(" in rule else rule for rule in rules]
    lines += ["  " + rule for rule in rules]
    for array_name in ("x", *derivation.params):
        symbols = derivation.x if array_name == "x" else derivation.params[array_name]
        lines.append("")
        lines += _equations(printer, symbols, derivation.grads[array_name],
                            lambda s: f"d{loss}/d{printer.doprint(s)}")
    lines += ["", _index_line(index_base)]
    return "\n".join(lines)


def format_chain(chain, index_base: int = 1, names: dict | None = None,
                 show_padding: bool = True) -> str:
    """A :class:`~symbackprop.core.chain.ChainDerivation` as text: the layers, the chain of
    error terms from the output back, then every element forward and backward."""
    notation = chain.notation(index_base=index_base, names=names)
    loss = notation.name("L")
    steps = chain.steps
    last = steps[-1].names["z"]
    lines = [f"Sequential, {len(steps)} layers: {chain.layer.describe()}", "",
             f"Layers (a0 is the input x, a_l the output of layer l, delta_l = d{loss}/da_l "
             f"its error term):"]
    rows = [("", "input", f"a0: {_shape(chain.activation_shapes[0])}")]
    for step in steps:
        arrays = [f"{step.names['z']}: {_shape(step.output_shape)}"]
        arrays += [f"{p}: {_shape(a.shape)}" for p, a in step.params.items()]
        rows.append((str(step.number), step.layer.describe(), "   ".join(arrays)))
    width = max(len(row[1]) for row in rows)
    lines += [f"  {number:>2}  {what.ljust(width)}   {arrays}" for number, what, arrays in rows]

    lines += ["", f"Backward, one layer boundary at a time ({steps[-1].names['g']} = "
              f"d{loss}/d{last} is given):"]
    step_names = {step.number: _step_names(step, notation) for step in steps}
    for step in reversed(steps):
        own = step_names[step.number]
        rules = backward_rules(step.layer, own, step.input_shape, step.output_shape)
        lines.append(f"  layer {step.number}, {step.layer.describe()}:")
        lines += [f"    {rule}" for rule in rules]
        following = steps[step.number] if step.number < len(steps) else None
        if step.layer.kind in _ACTIVATION_KINDS and following is not None \
                and following.layer.kind not in _ACTIVATION_KINDS:
            later = step_names[following.number]
            lines.append(f"    together with layer {following.number}: {own['dx']} = "
                         f"{_short_backward(following.layer, later)} * f'({own['x']})"
                         f"   (the notes' delta^(l-1) = "
                         + ("upsample(delta^l)" if following.layer.kind.endswith("pool2d") else
                            "backward(delta^l)") + " * f'(net^(l-1)))")

    lines += ["", "Forward, element by element:"]
    for step in steps:
        own = step_names[step.number]
        printer = TextPrinter(notation, window_output=step.names["z"])
        lines += ["", f"  layer {step.number}, {step.layer.describe()}: "
                  f"{_forward_header(step.layer, own, step.input_shape)}"]
        shown = step.z_written if show_padding and step.layer.kind in _SHOWS_ZEROS else step.z
        lines += ["  " + line for line in _equations(printer, step.output, shown, printer.doprint)]

    lines += ["", "Backward, element by element (from the last layer to the first), "
              f"{loss} = sum {steps[-1].names['g']}*{last} differentiated by SymPy "
              f"({chain.method}):"]
    for step in reversed(steps):
        printer = TextPrinter(notation, window_output=step.names["z"])
        lines += ["", f"  layer {step.number}, {step.layer.describe()}:"]
        lines += ["  " + line for line in _equations(printer, symbol_array(
            step.names["grad_x"], step.input_shape), step.delta_in, printer.doprint)]
        for parameter, gradient in step.param_grads.items():
            lines.append("")
            lines += ["  " + line for line in _equations(
                printer, step.params[parameter], gradient,
                lambda s, printer=printer: f"d{loss}/d{printer.doprint(s)}")]
    lines += ["", _index_line(index_base)]
    return "\n".join(lines)


_ACTIVATION_KINDS = ("relu", "leakyrelu", "sigmoid", "tanh")
_SHOWS_ZEROS = ("conv2d", "avgpool2d", "linear")


def _step_names(step, notation) -> dict:
    own = {role: name for role, name in step.names.items()}
    names = _names(notation, own)
    return names


def _index_line(index_base: int) -> str:
    base = "1-based, like a textbook (--index-base 0 for Python's)" if index_base == 1 \
        else "0-based, like Python"
    return f"Indices are {base}."
