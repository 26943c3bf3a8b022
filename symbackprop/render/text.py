"""Render stage (terminal): a derivation as plain text a person reads.

Input: a :class:`~symbackprop.core.derivation.Derivation` (one layer) or a
:class:`~symbackprop.core.chain.ChainDerivation`.  Output: a string with the shapes,
the output-size formula and this layer's numbers where the kind has one, every ``z``
element as a textbook writes it (padding products visible as ``0 w11``), the
backward rule in words and every gradient element: :func:`to_text`.

This module never names a layer kind: it asks the kind's :class:`TextParts` in
:data:`TEXT`, which ``kinds/<kind>/text.py`` registers.  SymPy expressions become
text only through :class:`TextPrinter` (a kind's own SymPy functions print
themselves with ``_sympystr``) and :class:`FormulaPrinter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from symbackprop.core import progress
from symbackprop.core.indexing import output_size_formula
from symbackprop.core.layers import ResidualSum
from symbackprop.core.naming import (
    Notation,
    factor_sort_key,
    flat,
    parse_element,
    symbol_array,
    term_sort_key,
)
from symbackprop.core.operators import ArrayName, chain_rule
from symbackprop.core.registry import Registry

__all__ = ["TEXT", "TextParts", "TextPrinter", "FormulaPrinter", "to_text", "format_derivation",
           "size_formula_line", "split_sign", "backward_rules", "shape_text"]


@dataclass(frozen=True)
class TextParts:
    """What the text printout asks of a layer kind (``kinds/<kind>/text.py`` fills it).

    Attributes
    ----------
    forward_header : ``(layer, names, input_shape) -> str``
        The forward pass in words, ``z = x (cross-correlated with) w + b``.  ``names``
        maps roles (``x z g w b dx dw db``) to the reader's names.
    backward_rules : ``(layer, names, input_shape, output_shape) -> [str]``
        The backward rule in words with this instance's numbers.
    size_lines : ``(layer, input_shape, output_shape) -> [str]``, optional
        The "Output size:" lines (:func:`size_formula_line` prints the formula).
    shows_padding : bool
        The forward pass lists padding products (``0 w11``) unless switched off.
    padding_note : str
        Said after the forward header of a single layer when padding is shown.
    output_axes : str, optional
        The axes of a 4-D output (``"N x O x Ho x Wo"``); by default those of its shape.
    proof_lines : ``(rules, proofs, loss) -> (rules, closing lines)``, optional
        Where the proven closed forms of a single layer go: into its rule lines, or
        a section after the gradient elements.  By default the rules stay as they are.
    elementwise : bool
        An activation: in a chain, it joins the backward of the layer after it.
    definition_lines : ``(derivation, printer) -> [str]``, optional
        Lines between the forward header and the ``z`` elements of a single layer:
        the quantities ``z`` is written in, defined (a normalisation's mean and
        variance, written out).
    """

    forward_header: Callable
    backward_rules: Callable
    size_lines: Callable | None = None
    shows_padding: bool = False
    padding_note: str = ""
    output_axes: str | None = None
    proof_lines: Callable | None = None
    elementwise: bool = False
    definition_lines: Callable | None = None


#: layer type -> :class:`TextParts`.
TEXT = Registry("print as text")


class TextPrinter(StrPrinter):
    """Prints element symbols by their textbook labels, products with spaces.

    Terms of a sum are ordered by upstream-gradient index, then kernel offset
    (``g11 w22 + g12 w21 + ...``); factors of a product as ``g x w b``.
    """

    _default_settings = {**StrPrinter._default_settings, "full_prec": False}

    def __init__(self, notation: Notation, window_output: str = "z", **settings):
        super().__init__(settings)
        self.notation = notation
        #: The array the layer writes: a kind's own function may name it (max
        #: pooling's ``[x22 = argmax z11]``).
        self.window_output = window_output

    @classmethod
    def print_function(cls, function_class, method) -> None:
        """Teach the printer a kind's own SymPy function: ``method(printer, expr)``
        becomes ``_print_<function_class name>``, found by SymPy's dispatch (subclasses
        inherit it and may override it)."""
        setattr(cls, f"_print_{function_class.__name__}", method)

    def _print_Symbol(self, expr):
        return self.notation.label(expr)

    # -- a chain's backward rule (symbackprop.core.operators) -------------------
    def _print_ArrayName(self, expr):
        """A whole array: its name as the reader's names give it."""
        return expr.name

    def _print_Upsample(self, expr):
        return f"upsample({self._print(expr.args[0])})"

    def _print_Reshape(self, expr):
        # the layer table (and the single layer's rule) states the shape
        return f"reshape({self._print(expr.args[0])})"

    def _print_Transposed(self, expr):
        matrix = self._print(expr.args[0])
        # a name with its own superscript is bracketed: (w^l)^T
        return f"({matrix})^T" if "^" in matrix else f"{matrix}^T"

    def _print_MatrixProduct(self, expr):
        return " ".join(self._print(arg) for arg in expr.args)

    def _print_ElementwiseProduct(self, expr):
        # a matrix product inside is bracketed: (w4^T delta4) * f'(a3)
        return " * ".join(self.parenthesize(arg, PRECEDENCE["Mul"]) for arg in expr.args)

    def _print_ActivationDerivative(self, expr):
        return f"f'({self._print(expr.args[0])})"

    def _print_TransposedConvolution(self, expr):
        return "transposed-conv(" + ", ".join(self._print(arg) for arg in expr.args) + ")"

    def _print_Mul(self, expr):
        factors = self._pulled_contents(expr.args)
        denominators = [f for f in factors if f.is_Pow and f.exp.is_Rational and f.exp < 0]
        if denominators:  # x / sqrt(v + eps): the negative powers after one slash
            numerator = [f for f in factors if f not in denominators]
            below = [self._print(sympy.Pow(f.base, -f.exp)) for f in denominators]
            if numerator and numerator[0].is_Rational:  # g/3 / s is written g / (3 s)
                below.insert(0, str(numerator[0].q))
                numerator[0] = sympy.Integer(numerator[0].p)
                if numerator[0] == 1 and len(numerator) > 1:
                    numerator = numerator[1:]
            sign = ""
            if numerator and numerator[0] == -1 and len(numerator) > 1:
                sign, numerator = "-", numerator[1:]
            text = self._print_Mul(sympy.Mul(*numerator, evaluate=False)) \
                if len(numerator) > 1 else self.parenthesize(
                    numerator[0], sympy.printing.precedence.PRECEDENCE["Mul"]) \
                if numerator else "1"
            return sign + text + " / " + (below[0] if len(below) == 1 else
                                          "(" + " ".join(below) + ")")
        factors = sorted(factors, key=factor_sort_key)
        sign = ""
        if factors and factors[0] == -1 and expr.is_commutative:
            sign, factors = "-", factors[1:]
        elif factors and factors[0].is_Number and factors[0] < 0 and expr.is_commutative:
            sign, factors = "-", [-factors[0], *factors[1:]]  # -2 y11, not (-2) y11
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

    @staticmethod
    def _pulled_contents(factors) -> list:
        """A sum factor's common rational coefficient joins the product's:
        ``(mu1/3 - x11/3)`` is written ``(mu1 - x11)/3``."""
        coefficient, out = sympy.Integer(1), []
        for factor in factors:
            if factor.is_Add:
                content, primitive = factor.as_content_primitive()
                if content.is_Rational and content != 1 and \
                        primitive.could_extract_minus_sign():
                    content, primitive = -content, -primitive
                if content != 1 and content.is_Rational:
                    coefficient, factor = coefficient * content, primitive
            if factor.is_Rational:
                coefficient *= factor
            else:
                out.append(factor)
        if len(out) > 1 and coefficient != 1:  # repeated factors meet again: (x - mu)^2
            out = list(sympy.Mul.make_args(sympy.Mul(*out)))
        return ([coefficient] if coefficient != 1 else []) + out

    def _print_Pow(self, expr, rational=False):
        exponent = expr.exp
        if exponent == sympy.Rational(1, 2):
            return f"sqrt({self._print(expr.base)})"
        if exponent.is_Rational and not exponent.is_Integer and exponent > 0:
            base = self.parenthesize(expr.base, sympy.printing.precedence.PRECEDENCE["Pow"])
            return f"{base}^({exponent})"
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


class FormulaPrinter(StrPrinter):
    """Prints an unevaluated formula in the order it was written.

    ``floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1``: a sum inside a product
    is written tight, a quotient with spaces around the slash.
    """

    def _print_Add(self, expr, order=None):
        tight = getattr(self, "_tight", False)
        plus, minus = ("+", "-") if tight else (" + ", " - ")
        text = ""
        for position, term in enumerate(expr.args):
            negative, body = split_sign(term)
            printed = self._print(body)
            if position == 0:
                text += ("-" if negative else "") + printed
            else:
                text += (minus if negative else plus) + printed
        return text

    def _print_Mul(self, expr):
        numerator = [f for f in expr.args if not (f.is_Pow and f.exp == -1)]
        divisors = [f.base for f in expr.args if f.is_Pow and f.exp == -1]
        negative = bool(numerator) and numerator[0] == -1
        if negative:
            numerator = numerator[1:]
        # a sum multiplied by something is written tight, dh*(KH-1); a sum divided
        # by something keeps its spaces, (H + top + ...) / sh
        saved, self._tight = getattr(self, "_tight", False), len(numerator) > 1
        try:
            factors = [f"({self._print(f)})" if f.is_Add else self._print(f) for f in numerator]
        finally:
            self._tight = saved
        text = ("-" if negative else "") + "*".join(factors)
        for divisor in divisors:
            text += f" / {self._print(divisor)}"
        return text


def split_sign(term):
    """``(True, dh*(KH-1))`` for ``-dh*(KH-1)``; ``(True, 1)`` for ``-1``."""
    if term.is_Number and term < 0:
        return True, -term
    if term.is_Mul and term.args[0] == -1:
        rest = term.args[1:]
        return True, rest[0] if len(rest) == 1 else sympy.Mul(*rest, evaluate=False)
    return False, term


def size_formula_line(axis: str, values, result, dilated: bool = True) -> str:
    """``Ho = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1 = floor((3 + ...) / 1) + 1 = 4``.

    ``values`` are ``(size, pad_before, pad_after, kernel, stride, dilation)``; the
    formula is :func:`~symbackprop.core.indexing.output_size_formula`, and ``result``
    (the layer's output size) must be what it evaluates to.
    """
    printer = FormulaPrinter()
    out, general = output_size_formula(axis, dilated=dilated)
    _, numbers = output_size_formula(axis, values, dilated=dilated)
    if int(numbers.doit()) != result:
        raise AssertionError(f"the output-size formula gives {numbers.doit()}, the layer {result}")
    return f"{out} = {printer.doprint(general)} = {printer.doprint(numbers)} = {result}"


def to_text(derivation, index_base: int = 1, names: dict | None = None,
            show_padding: bool = True, proofs=()) -> str:
    """The whole derivation as text (what ``symbackprop derive`` prints).

    Parameters
    ----------
    derivation : a :class:`~symbackprop.core.derivation.Derivation` or a chain's
        :class:`~symbackprop.core.chain.ChainDerivation`.
    index_base : 1 (textbook indices ``x11``) or 0 (Python's).
    names : display names, e.g. ``{"x": "a", "g": "delta"}``.
    show_padding : list padding products (``0 w11``) where the kind shows them.
    proofs : the closed forms proven for this layer (:func:`~symbackprop.core.rules.proofs_for`).
    """
    if hasattr(derivation, "steps"):  # a chain: each layer's kind speaks for itself
        return format_chain(derivation, index_base=index_base, names=names,
                            show_padding=show_padding)
    return format_layer(derivation, index_base=index_base, names=names,
                        show_padding=show_padding, proofs=proofs)


#: The former name of :func:`to_text`.
format_derivation = to_text


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


def _axes(shape) -> str:
    return {2: " (N x F)", 3: " (N x C x L)", 4: " (N x C x H x W)",
            5: " (N x C x D x H x W)"}.get(len(shape), "")


def shape_text(shape) -> str:
    """``2 x 3 x 4 x 4``."""
    return " x ".join(map(str, shape))


_shape = shape_text


def rule_names(names: dict, **replaced) -> dict:
    """The arguments of a kind's :func:`~symbackprop.core.operators.chain_rule` from the
    reader's names of ``g``, ``x`` and ``w`` (``replaced`` overrides any of them)."""
    rule = {role: ArrayName(names[role]) for role in ("g", "x", "w") if names.get(role)}
    return {**rule, **replaced}


def rule_text(layer, names: dict, **replaced) -> str:
    """The expression of the error term the layer hands back, in the reader's names:
    ``upsample(g)``, ``w^T g``, ``g * f'(x)``."""
    return TextPrinter(None).doprint(chain_rule(layer, rule_names(names, **replaced)))


def backward_rules(layer, names, input_shape, output_shape) -> list[str]:
    """The rule of a layer's backward pass in words, with this instance's numbers."""
    return TEXT[layer].backward_rules(layer, names, input_shape, output_shape)


def format_layer(derivation, index_base: int = 1, names: dict | None = None,
                 show_padding: bool = True, proofs=()) -> str:
    """One layer's derivation as text; its kind supplies the words (:data:`TEXT`)."""
    notation = derivation.notation(index_base=index_base, names=names)
    printer = TextPrinter(notation)
    name = notation.name
    layer = derivation.layer
    parts = TEXT[layer]
    loss = name("L")
    own = _names(notation, None)
    if "b" not in derivation.params:
        own.pop("b", None)
        own.pop("db", None)
    lines = [layer.describe()]
    shapes = [f"{name('x')}: {_shape(derivation.input_shape)}{_axes(derivation.input_shape)}"]
    shapes += [f"{name(p)}: {_shape(a.shape)}" for p, a in derivation.params.items()]
    shapes += [f"{name(c)}: {_shape(a.shape)}" for c, a in derivation.constants.items()]
    output_axes = f" ({parts.output_axes})" if parts.output_axes and \
        len(derivation.output_shape) == len(parts.output_axes.split(" x ")) \
        else _axes(derivation.output_shape)
    shapes.append(f"{name('z')}, {name('g')} = d{loss}/d{name('z')}: "
                  f"{_shape(derivation.output_shape)}{output_axes}")
    lines += ["  " + "   ".join(shapes)]
    if parts.size_lines is not None:
        lines += ["", "Output size:"]
        lines += ["  " + line for line in parts.size_lines(
            layer, derivation.input_shape, derivation.output_shape)]
    shows_zeros = show_padding and parts.shows_padding
    lines += ["", f"Forward, {parts.forward_header(layer, own, derivation.input_shape)}"
              + (parts.padding_note if shows_zeros else "") + ":"]
    if parts.definition_lines is not None:
        lines += ["  " + line for line in parts.definition_lines(derivation, printer)]
    shown = derivation.z_written if shows_zeros else derivation.z
    lines += _equations(printer, symbol_array("z", derivation.output_shape), shown,
                        printer.doprint)
    lines += ["", f"Backward, {loss} = sum {name('g')}*{name('z')} differentiated by SymPy "
              f"({derivation.method}):"]
    rules = parts.backward_rules(layer, own, derivation.input_shape, derivation.output_shape)
    closing = []
    if parts.proof_lines is not None:
        rules, closing = parts.proof_lines(rules, tuple(proofs), loss)
    lines += ["  " + rule for rule in rules]
    for array_name in ("x", *derivation.params):
        symbols = derivation.x if array_name == "x" else derivation.params[array_name]
        lines.append("")
        lines += _equations(printer, symbols, derivation.grads[array_name],
                            lambda s: f"d{loss}/d{printer.doprint(s)}")
    lines += closing
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
        rows.append((str(step.number), step_title(step), "   ".join(arrays)))
    width = max(len(row[1]) for row in rows)
    lines += [f"  {number:>2}  {what.ljust(width)}   {arrays}" for number, what, arrays in rows]

    lines += ["", f"Backward, one layer boundary at a time ({steps[-1].names['g']} = "
              f"d{loss}/d{last} is given):"]
    step_names = {step.number: _step_names(step, notation) for step in steps}
    for step in reversed(steps):
        own = step_names[step.number]
        rules = backward_rules(step.layer, own, step.input_shape, step.output_shape)
        lines.append(f"  layer {step.number}, {step_title(step)}:")
        if step.identity_paths:
            lines.append(f"    the block's path, through layer {step.number}:")
            lines += [f"      {rule}" for rule in rules]
            lines += [f"    {line}" for line in _two_paths_lines(step, own)]
        else:
            lines += [f"    {rule}" for rule in rules]
        following = steps[step.number] if step.number < len(steps) else None
        if following is not None and TEXT[step.layer].elementwise \
                and not following.is_sum and not TEXT[following.layer].elementwise:
            # the activation's rule applied to what the layer after it hands back
            later = chain_rule(following.layer, rule_names(step_names[following.number]))
            notes = chain_rule(following.layer, rule_names(
                {"g": "delta^l", "x": "a^(l-1)", "w": "w^l"}))
            lines.append(f"    together with layer {following.number}: {own['dx']} = "
                         f"{rule_text(step.layer, own, g=later)}   (the notes' delta^(l-1) = "
                         f"{rule_text(step.layer, {'x': 'net^(l-1)'}, g=notes)})")

    lines += ["", "Forward, element by element:"]
    for step in steps:
        own = step_names[step.number]
        printer = TextPrinter(notation, window_output=step.names["z"])
        parts = TEXT[step.layer]
        lines += ["", f"  layer {step.number}, {step_title(step)}: "
                  f"{parts.forward_header(step.layer, own, step.input_shape)}"]
        shown = step.z_written if show_padding and parts.shows_padding else step.z
        lines += ["  " + line for line in _equations(printer, step.output, shown, printer.doprint)]

    lines += ["", "Backward, element by element (from the last layer to the first), "
              f"{loss} = sum {steps[-1].names['g']}*{last} differentiated by SymPy "
              f"({chain.method}):"]
    for step in reversed(steps):
        printer = TextPrinter(notation, window_output=step.names["z"])
        lines += ["", f"  layer {step.number}, {step_title(step)}:"]
        if step.identity_paths:
            # the two paths side by side: the block's (this layer's backward) + identity
            paths = ", ".join(notation.name(path_name(path)) for path in step.identity_paths)
            lines.append(f"    {notation.name(step.names['grad_x'])} = (through layer "
                         f"{step.number}, the block's path) + {paths} (the identity path):")
            lines += ["  " + line for line in _two_paths_equations(printer, step)]
        else:
            lines += ["  " + line for line in _equations(printer, symbol_array(
                step.names["grad_x"], step.input_shape), step.delta_in, printer.doprint)]
        for parameter, gradient in step.param_grads.items():
            lines.append("")
            lines += ["  " + line for line in _equations(
                printer, step.params[parameter], gradient,
                lambda s, printer=printer: f"d{loss}/d{printer.doprint(s)}")]
    lines += ["", _index_line(index_base)]
    return "\n".join(lines)


# A residual sum (core: a chain's part, not a kind) in the chain's walk.
TEXT.register(ResidualSum, TextParts(
    forward_header=lambda layer, names, input_shape:
        "element by element, the block's input plus its output",
    backward_rules=lambda layer, names, input_shape, output_shape: [
        f"{names['dx']} = {names['g']}   (to the block's output: d{names['z']}/d{names['x']} "
        f"= 1)",
        f"and {names['g']} goes on unchanged to the block's input {names['skip']} (the "
        f"identity path: d{names['z']}/d{names['skip']} = 1), added there to the block's path"],
))


def _step_names(step, notation) -> dict:
    return _names(notation, dict(step.names))


def step_title(step) -> str:
    """A chain step in words: the layer, or ``residual sum a4 = a3 + a0``."""
    if step.is_sum:
        first = step.fork + 1
        block = f"layer {first}" if first == step.number - 1 else \
            f"layers {first}-{step.number - 1}"
        return (f"residual sum {step.names['z']} = {step.names['skip']} + {step.names['x']} "
                f"(x + block(x), the block: {block})")
    return step.layer.describe()


def path_name(path) -> str:
    """The array name of an identity path's error term (``delta4``)."""
    return parse_element(flat(path)[0])[0]


def _two_paths_equations(printer, step) -> list[str]:
    """A residual block's first layer's ``delta_in``, element by element, as
    ``<the block's path> + delta4_11``: the identity path last, a term of its own, so
    that the reader sees where each term comes from."""
    lefts = [printer.doprint(symbol) for symbol in flat(symbol_array(step.names["grad_x"],
                                                                     step.input_shape))]
    rights = [" + ".join([printer.doprint(block), *(printer.doprint(flat(path)[position])
                                                    for path in step.identity_paths)])
              for position, block in enumerate(flat(step.block_path))]
    width = max(map(len, lefts), default=0)
    return [f"  {label.ljust(width)} = {right}" for label, right in zip(lefts, rights)]


def _two_paths_lines(step, names) -> list[str]:
    """The walk's lines for a residual block's first layer: its input is also the block's
    skip, so its error term adds the two paths."""
    sums = [path_name(path) for path in step.identity_paths]
    rule = TextPrinter(None).doprint(chain_rule(step.layer, rule_names(names)))
    outputs = " and ".join(f"a{name[len('delta'):]}" for name in sums)
    return [f"the identity path: {names['x']} also goes straight to the residual sum "
            f"{outputs} (d(x + block(x))/dx = 1 + d block(x)/dx), so the two paths add:",
            f"{names['dx']} = {rule} + {' + '.join(sums)}"]


def _index_line(index_base: int) -> str:
    base = "1-based, like a textbook (--index-base 0 for Python's)" if index_base == 1 \
        else "0-based, like Python"
    return f"Indices are {base}."
