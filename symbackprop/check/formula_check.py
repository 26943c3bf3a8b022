r"""Stage: (derivation, formula) -> :class:`FormulaCheck`, a hand-derived formula judged.

Input: a :class:`~symbackprop.core.derivation.Derivation` (the truth, element by
element) and a :class:`~symbackprop.check.formula.Formula` (what a person wrote).
Output: a frozen :class:`FormulaCheck` saying for every element of the gradient
the formula names whether it equals SymPy's, and for each wrong one the expected
sum, the given sum, and the terms missing and extra, printed back in the person's
own notation (``\delta_{1,1} a_{1,2}`` stays LaTeX, ``g[1,1]*w[1,1]`` stays plain).

Instantiating the formula:

- the left side names one element or, with free indices (``w_{i,j}``), every
  element of the gradient;
- indices are 1-based unless ``index_base=0``; an array takes the indices
  :class:`~symbackprop.core.naming.Notation` shows (size-1 batch/channel indices left
  out) or all of them;
- a sum without limits runs over every index value for which all the terms of the
  product exist; elements outside an array inside a sum with limits, or in a term
  without sums, are taken as 0 (zero padding) and mentioned in a note; an element
  with constant indices outside its array is an error.
- the routing indicator ``[x_ab = argmax z_ij]`` becomes the derivation's own
  indicator when ``x_ab`` lies in the window of ``z_ij`` (read off ``derivation.z``),
  else 0: the layer's kind says how (its :class:`FormulaParts` in :data:`FORMULAS`); a
  layer whose kind has no indicator refuses it.
- a layer superscript places a name (:func:`_layout`): one layer has its input at
  ``l-1`` and its output, upstream gradient and parameters at ``l``, or the input at
  ``l`` and the rest at ``l+1``, read from the formula as a whole.  ``a^{l}`` is then
  the layer output, computed from the input (``sigmoid(a^{l-1})``), and
  ``\delta^{l-1}`` the error term of the input, an array of its own (never the
  upstream gradient); a name at a layer the instance does not have is an error.  In
  a chain the superscripts are layer numbers (``a^{[2]}``) and each gradient is
  checked one layer at a time, as the chain's derivation gives it; a formula that gives
  a gradient from a later layer's error term, or writes ``l``, is a rule across layers
  (:mod:`~symbackprop.check.formula_chain`).
- ``W^T_{j,i}`` is ``W_{i,j}``; ``a^{(1)}_{11}``, ``w^{(o,c)}_{mk}`` write channels as
  ``symbackprop latex`` prints them.
- the work is counted before it is done: more than :data:`MAX_ENUMERATION` index
  combinations over the whole check (every element of the gradient times the values
  of its sums) is refused up front.

Nothing here names a particular layer: the arrays come from ``derivation.x``,
``derivation.g``, ``derivation.params`` and the gradients from ``derivation.grads``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import sympy

from symbackprop.check.formula import (
    MAX_FORMULA_LENGTH,
    Add,
    Affine,
    Element,
    Formula,
    FormulaError,
    Indicator,
    Product,
    Quotient,
    Spelling,
    Summation,
    parse_formula,
    products,
)
from symbackprop.check.formula_chain import (
    _labels,
    check_across_layers,
    reads_across,
    uses_a_later_error_term,
)
from symbackprop.check.formula_rules import (
    check_chain_rule,
    check_rule,
    parse_rule,
    split_equations,
)
from symbackprop.core import progress
from symbackprop.core.algebra import product
from symbackprop.core.derivation import (
    DEFAULT_MAX_TERMS,
    Derivation,
    check_size,
    derive,
    term_count,
)
from symbackprop.core.layers import Sequential, input_shape_of, output_shape_of
from symbackprop.core.naming import (
    Notation,
    factor_sort_key,
    flat,
    parse_element,
    symbol_grid,
    to_grid,
)
from symbackprop.core.registry import Registry
from symbackprop.render.text import TextPrinter

__all__ = ["FormulaCheck", "FormulaChecks", "ElementResult", "FormulaPrinter", "check_formula",
           "check_derivation", "AXIS_NAMES", "FormulaParts", "FORMULAS",
           "FormulaMistake"]


@dataclass(frozen=True)
class FormulaParts:
    """What the formula checker needs of a layer kind beyond its arrays.

    A kind registers one in :data:`FORMULAS` from its ``kinds/<kind>/check.py``; a kind
    without an entry needs nothing more (its arrays and gradients come from the
    derivation, their words from :data:`AXIS_NAMES` and the generic meanings).
    """

    #: the kind in words, for messages ("max pooling")
    words: str
    #: ``(input element, output value) -> indicator``: what ``[x_ab = argmax z_ij]``
    #: is for the input element ``x_ab`` and the output value ``z_ij`` (an element of
    #: ``derivation.z``): the derivation's own indicator, or 0 when ``x_ab`` is not in
    #: ``z_ij``'s window.  None: the kind has no such indicator.
    argmax: Callable | None = None
    #: True when ``upsample(g)`` (``\operatorname{upsample}_{\max}``) in this layer's
    #: matrix-level rules is the layer's own backward, each element of ``g`` routed to its
    #: window's argmax as the course notes mean it for max pooling; False: a copy of each
    #: element into its whole ``s x s`` block (``kron(g, 1)``, mean pooling's notes)
    routes_upsample: bool = False
    #: array -> what it is, for messages, where the generic words do not fit
    #: (``{"w": "the weight matrix"}``)
    meanings: dict = dataclasses.field(default_factory=dict)
    #: array -> the names of its axes, used when the array has that many axes
    #: (``{"w": ("output feature", "input feature")}``)
    axes: dict = dataclasses.field(default_factory=dict)
    #: names a formula may use for the kind's own arrays besides x, g, w, b (its
    #: derivation's ``constants``: a dropout mask, ``{"m": "m", "mask": "m"}``)
    names: dict = dataclasses.field(default_factory=dict)
    #: False for a kind whose formulas need names the checker does not read yet (the
    #: ``check`` command then does not offer it)
    takes_formulas: bool = True
    #: ``(layer, input_shape) -> {letter: value}``: what the letters a matrix-level rule
    #: leaves implicit stand for in this layer (``s`` the stride, ``p`` the padding, ``P``
    #: the upstream gradient's padding for the input's gradient, ``d`` the dilation), as in
    #: ``\operatorname{pad}_P``, ``\operatorname{dil}_s``; None: no such letters.
    parameters: Callable | None = None
    #: the kind's own names in a formula, as students write them (batch norm's ``mu``,
    #: ``sigma``, ``xhat``, ``gamma``, ``m``; a loss's ``p``, ``y``, ``N``): name -> the
    #: name of one of the derivation's ``params`` or ``constants`` (``{"gamma":
    #: "weight"}``), or ``derivation -> value``, a NumPy object array of SymPy
    #: expressions (an array the formula indexes) or one SymPy number (``m``).
    quantities: dict = dataclasses.field(default_factory=dict)
    #: the kind's classic mistakes a wrong formula is matched against, each a
    #: :class:`FormulaMistake` (after the generic ones, which know no kind)
    mistakes: tuple = ()
    #: True for a loss: its upstream gradient is the number 1 unless the formula writes
    #: it (``dL/dx = (p - y) / N``)
    implicit_upstream: bool = False


@dataclass(frozen=True)
class FormulaMistake:
    """A classic mistake of one kind's formula: the gradient it gives, to name it by."""

    #: its short name ("gamma missing")
    name: str
    #: what the right formula has that this one lacks
    why: str
    #: the array whose gradient it is wrong for: "x", or a parameter's name
    gradient: str
    #: ``derivation -> iterable of grids``: the wrong gradient(s), in the derivation's
    #: SymPy terms, of the shape of ``derivation.grads[gradient]``
    candidates: Callable


#: layer type -> :class:`FormulaParts`.
FORMULAS = Registry("check a formula for")
_NO_PARTS = FormulaParts(words="")

#: What each index of an array means, for messages.
AXIS_NAMES = {
    "x": ("sample", "channel", "row", "column"),
    "g": ("sample", "output channel", "row", "column"),
    "w": ("output channel", "input channel", "kernel row", "kernel column"),
    "b": ("output channel",),
    "z": ("sample", "output channel", "row", "column"),
}
_ARRAY_MEANING = {"x": "the layer input", "g": "the upstream gradient dL/dz",
                  "w": "the kernel", "b": "the bias"}
_PARAMETER_WORDS = {"w": "weights (w)", "b": "bias (b)"}
#: Largest number of index combinations a whole check may run over: every element of
#: the gradient times the values of the sums of every product, counted before any work.
#: About a million combinations take ten to twenty seconds.
MAX_ENUMERATION = 1_000_000
#: Most terms one product of the formula may multiply out to once the layer outputs in
#: it (``a^{l}``, each a sum for a convolution) are written in terms of the input.
MAX_EXPANDED_TERMS = 100_000
#: The error term of a layer's input, ``\delta^{l-1}`` (what the previous layer is
#: handed): an array of its own, so that a formula that uses it where the upstream
#: gradient ``\delta^{l}`` belongs is judged wrong, never read as ``\delta^{l}``.
#: Named like a chain's ``delta0``, the error term of its input, so that it prints and
#: sorts as an error term.
INPUT_ERROR = "delta0"


@dataclass(frozen=True)
class ElementResult:
    """One wrong element: what SymPy derived, what the formula gives, and the difference.

    ``missing`` holds the terms of ``expected - given`` with a positive coefficient,
    ``extra`` those with a negative one (negated), so ``given + missing - extra ==
    expected``.
    """

    index: tuple          # 0-based index into the gradient array
    label: str            # the left side for this element, in the person's notation
    expected: sympy.Expr
    given: sympy.Expr
    missing: sympy.Expr
    extra: sympy.Expr


@dataclass(frozen=True)
class FormulaCheck:
    """The verdict on a formula: ``ok``, how many elements were checked, the wrong ones.

    ``report()`` is the text ``symbackprop check`` prints.
    """

    formula: Formula
    derivation: Derivation
    index_base: int
    checked: int
    label: str            # the element checked, or the whole gradient, in the person's notation
    wrong: tuple          # (ElementResult, ...) in the gradient's index order
    notes: tuple          # (str, ...) things worth knowing that do not make it wrong
    #: array -> how to print it: as the person wrote it at the place it belongs
    #: (``a^{l-1}`` for the input even where they wrote ``a^{l}``)
    spellings: dict = dataclasses.field(default_factory=dict, compare=False)
    #: array -> shape for printing (a chain's names, the output z of the layer checked)
    shapes: dict = dataclasses.field(default_factory=dict, compare=False)

    @property
    def ok(self) -> bool:
        return not self.wrong

    @property
    def printer(self) -> "FormulaPrinter":
        notation = Notation(shapes={**self.derivation.shapes,
                                    INPUT_ERROR: self.derivation.input_shape, **self.shapes},
                            index_base=self.index_base)
        return FormulaPrinter(self.formula, notation, spellings=self.spellings)

    def report(self, show: int = 3) -> str:
        """Plain text: ``correct`` with the count, or the first ``show`` wrong elements."""
        printer = self.printer
        shape = self.derivation.input_shape
        size = shape[2:] if len(shape) >= 3 else shape[1:]  # (N, C, *spatial) or (N, F)
        layer = f"{self.derivation.layer.describe()}; input {'x'.join(map(str, size))}" \
            + (" features" if len(shape) == 2 else "")
        if self.derivation.input_shape[0] > 1:
            layer += f", batch {self.derivation.input_shape[0]}"
        base = "indices start at 1" if self.index_base == 1 else "indices start at 0"
        context = f"  {layer}; {base}"
        if self.ok:
            what = (f"{self.label} agrees" if self.checked == 1
                    else f"all {self.checked} elements of {self.label} agree")
            lines = [f"correct: {what} with SymPy's derivation", context]
        else:
            what = (f"{self.label} differs" if self.checked == 1 else
                    f"{len(self.wrong)} of {self.checked} elements of {self.label} differ")
            lines = [f"wrong: {what} from SymPy's derivation", context]
            for result in self.wrong[:show]:
                lines += ["", result.label]
                rows = [("expected", result.expected), ("given", result.given),
                        ("missing", result.missing), ("extra", result.extra)]
                for name, expr in rows:
                    if name in ("missing", "extra") and expr == 0:
                        continue
                    lines.append(f"  {name + ':':9} {printer.doprint(expr)}")
            rest = self.wrong[show:]
            if rest:
                labels = ", ".join(r.label for r in rest[:8]) + (", ..." if len(rest) > 8 else "")
                lines += ["", f"and {len(rest)} more wrong element{'s' if len(rest) > 1 else ''}: "
                          f"{labels}"]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

class FormulaPrinter(TextPrinter):
    r"""Prints expressions in a person's notation (their names, index style and base).

    Terms and factors are ordered as in :class:`~symbackprop.render.text.TextPrinter`
    (``g x w b``, by upstream-gradient index); products use the person's separator
    (space, ``*``, ``\cdot``); fractions print as ``\frac{1}{4}`` in LaTeX formulas.
    """

    def __init__(self, formula: Formula, notation: Notation, spellings: dict | None = None,
                 **settings):
        super().__init__(notation, **settings)
        self.formula = formula
        self.spellings = dict(spellings or {})

    def spelling(self, array: str) -> Spelling:
        return self.spellings.get(array) or self.formula.spelling(array)

    def _print_Symbol(self, expr):
        parsed = parse_element(expr)
        if parsed is None:
            return str(expr)
        array, index = parsed
        return written_label(self.spelling(array), self.notation, array, index)

    def _print_Rational(self, expr):
        if expr.q == 1:
            return str(expr.p)
        sign = "-" if expr.p < 0 else ""
        if self.formula.latex:
            return f"{sign}\\frac{{{abs(expr.p)}}}{{{expr.q}}}"
        return f"{sign}{abs(expr.p)}/{expr.q}"

    def _print(self, expr, **kwargs):
        """An indicator ``[x_{1,2} = \\arg\\max z_{1,1}]`` in a LaTeX formula, ``argmax`` in
        plain text (as the text printer writes it)."""
        text = super()._print(expr, **kwargs)
        return text.replace(" = argmax ", r" = \arg\max ") if self.formula.latex else text

    def _print_Mul(self, expr):
        coefficient, factors = expr.as_coeff_mul()
        factors = sorted(factors, key=factor_sort_key)
        parts = [self.parenthesize(f, sympy.printing.precedence.PRECEDENCE["Mul"])
                 for f in factors]
        sign = "-" if coefficient < 0 else ""
        if abs(coefficient) != 1:
            parts.insert(0, self._print(abs(coefficient)))
        return sign + self.formula.product_separator.join(parts)


def written_label(spelling: Spelling, notation: Notation, array: str, index) -> str:
    """``array[index]`` in a person's spelling: ``a_{12}``, or ``a^{(1)}_{12}`` for a person
    who writes channels as a superscript, as ``symbackprop latex`` does (the batch and
    channel indices that vary up, the row and column down)."""
    shown = notation.indices(array, tuple(index))
    if not spelling.channels:
        return spelling.format(shown)
    spatial = min(2, len(shown)) if len(index) >= 2 else 0
    return spelling.format(shown[len(shown) - spatial:], channels=shown[:len(shown) - spatial])


def check_formula(layer, input_size, text: str, *, batch: int = 1,
                  index_base: int = 1, at_layer: int | None = None,
                  numbering: str | None = None) -> FormulaCheck:
    r"""Check a hand-derived gradient formula for ``layer`` on an input of ``input_size``.

    Parameters
    ----------
    layer : a layer spec of any kind, or a chain (:class:`~symbackprop.core.layers.Sequential`).
    input_size : int or (H, W)
    text : str
        ``LHS = RHS``, e.g. ``"\frac{\partial E}{\partial w_{i,j}} = \sum_m \sum_n
        \delta_{m,n} a_{i+m,j+n}"`` (see :func:`~symbackprop.check.formula.parse_formula`).
    batch : int
    index_base : 1 (default, like a textbook) or 0.
    at_layer : int, optional
        In a chain, the value of ``l`` in a rule written with ``l`` (``\delta^{l-1} =
        ...``); by default every value at which all its names exist.
    numbering : "chain" or "course", optional
        In a chain, how layer numbers are read: every layer of the spec counting, or a
        layer and the activation after it as one (Ng's ``[l]``); by default the chain's
        when it places every name (see :mod:`~symbackprop.check.formula_chain`).

    Returns
    -------
    FormulaCheck
        ``.ok``, ``.checked``, ``.wrong`` and ``.report()``.

    Raises
    ------
    FormulaError
        A formula that cannot be read, names an array the layer does not have, has
        the wrong number of indices or an element outside its array, places a name
        at a layer the instance does not have, or would run over more than
        :data:`MAX_ENUMERATION` index combinations (refused before any work).
    """
    if index_base not in (0, 1):
        raise ValueError(f"index_base must be 0 or 1, got {index_base!r}")
    if not isinstance(text, str):
        raise FormulaError("the formula is text: LHS = RHS")
    equations = split_equations(text) if len(text) <= MAX_FORMULA_LENGTH else [text]
    if len(equations) > 1:  # an align environment, or several lines: each one judged
        if len(equations) > MAX_EQUATIONS:
            raise FormulaError(f"{len(equations)} equations at once, over the limit of "
                               f"{MAX_EQUATIONS}: check fewer at a time")
        return FormulaChecks(tuple(equations), tuple(
            check_formula(layer, input_size, line, batch=batch, index_base=index_base,
                          at_layer=at_layer, numbering=numbering)
            for line in equations))
    if not equations:
        raise FormulaError("the formula is empty; write LHS = RHS, e.g. dL/dw[1,1] = ...")
    text = equations[0]
    chain = isinstance(layer, Sequential)
    if not chain and (at_layer is not None or numbering is not None):
        raise FormulaError("--layer and --numbering are for a chain (symbackprop check "
                           "sequential)", text, 0)
    across = {"at_layer": at_layer, "numbering": numbering}
    try:
        formula = parse_formula(text, FORMULAS.get(layer, _NO_PARTS).names)
    except FormulaError as error:  # not a sum of products: read it as a rule
        return _check_as_rule(layer, input_size, text, batch, index_base, error, **across)
    if chain:
        formula = _chain_formula(formula)
        if at_layer is not None or numbering is not None or _spans_layers(layer, text):
            # a rule across the chain's layers, element by element or not
            return _check_chain_as_rule(layer, input_size, text, batch, index_base, None,
                                        **across)
        try:
            return _check_elements(layer, input_size, formula, batch, index_base)
        except FormulaError as error:  # l in a chain, or layers apart: a rule across them
            return _check_as_rule(layer, input_size, text, batch, index_base, error,
                                  strict=not _whole_arrays(formula), **across)
    if _whole_arrays(formula):  # dL/dW = x * delta: a matrix-level rule
        try:
            return _check_elements(layer, input_size, formula, batch, index_base)
        except FormulaError as error:
            return _check_as_rule(layer, input_size, text, batch, index_base, error)
    return _check_elements(layer, input_size, formula, batch, index_base)


def _whole_arrays(formula: Formula) -> bool:
    """Whether a name of the formula has no indices (a whole array, not an element)."""
    elements = [formula.gradient] + [element for term in products(formula.rhs, formula.text)
                                     for element in term.elements
                                     if isinstance(element, Element)]
    return any(element.subscript is None for element in elements)


def _check_elements(layer, input_size, formula: Formula, batch: int, index_base: int):
    """``formula``, a sum of products of elements, checked on every element it names."""
    input_shape = input_shape_of(layer, input_size, batch)
    check_size(term_count(layer, input_shape), DEFAULT_MAX_TERMS)
    # The size of the whole check is known from the shapes: refuse it before deriving.
    arrays, layout = _setting(formula, layer, input_shape=input_shape)
    _Instance(arrays, formula, index_base, layout).refuse_if_too_big()
    return check_derivation(derive(layer, input_size, batch), formula, index_base=index_base)


def _check_as_rule(layer, input_size, text: str, batch: int, index_base: int,
                   refusal: FormulaError, *, at_layer=None, numbering=None, strict=False):
    """``text`` read by :mod:`~symbackprop.check.formula_rules` (functions, matrix-level
    rules, chain-rule steps); ``refusal`` is why the sum-of-products reading failed.

    A text that reader cannot parse either gets ``refusal``; one it parses but cannot
    instantiate gets its own reason, with ``refusal`` after it."""
    if len(text) > MAX_FORMULA_LENGTH:
        raise refusal
    names = _chain_names(layer) if isinstance(layer, Sequential) else \
        FORMULAS.get(layer, _NO_PARTS).quantities
    try:
        parse_rule(text, names)
    except FormulaError:
        raise refusal from None
    if isinstance(layer, Sequential):
        return _check_chain_as_rule(layer, input_size, text, batch, index_base, refusal,
                                    at_layer=at_layer, numbering=numbering, strict=strict)
    input_shape = input_shape_of(layer, input_size, batch)
    check_size(term_count(layer, input_shape), DEFAULT_MAX_TERMS)
    parts = FORMULAS.get(layer, _NO_PARTS)
    parameters = parts.parameters(layer, input_shape) if parts.parameters else {}
    derivation = derive(layer, input_size, batch)
    try:
        checks = check_rule(derivation, text, index_base=index_base, parameters=parameters,
                            parts=parts)
    except FormulaError as error:
        raise FormulaError(f"{error.message} (read as a sum of products: {refusal.message})",
                           error.text or text, error.position) from None
    if len(checks) == 1:
        return checks[0]
    sides = text.split("=")
    left = sides[0].strip()
    return FormulaChecks(tuple(f"{left} = {side.strip()}" for side in sides[1:]),
                         tuple(checks))


def _spans_layers(chain, text: str) -> bool:
    """Whether ``text``, read as a rule, is a recurrence across ``chain``'s layers (see
    :func:`~symbackprop.check.formula_chain.uses_a_later_error_term`)."""
    try:
        return uses_a_later_error_term(parse_rule(text, _chain_names(chain)))
    except FormulaError:
        return False


def _chain_names(chain) -> tuple:
    r"""The kinds' own names (batch norm's ``\mu``, a loss's ``p``) of every layer of
    ``chain``: a rule in a chain may use them, each with its layer's superscript."""
    return tuple(dict.fromkeys(name for layer in chain.layers
                               for name in FORMULAS.get(layer, _NO_PARTS).quantities))


def _check_chain_as_rule(chain, input_size, text: str, batch: int, index_base: int,
                         refusal: FormulaError, *, at_layer=None, numbering=None,
                         strict=False):
    """A rule about one layer of a chain (see
    :func:`~symbackprop.check.formula_rules.check_chain_rule`), or across several (see
    :func:`~symbackprop.check.formula_chain.check_across_layers`).  ``strict``: the
    formula was read as a sum of products and refused (``refusal``); it is read as a rule
    only across layers."""
    input_shape = input_shape_of(chain, input_size, batch)
    check_size(term_count(chain, input_shape), DEFAULT_MAX_TERMS)
    names = _chain_names(chain)
    equation = parse_rule(text, names)
    derivation = derive(chain, input_size, batch)

    def parameters(step) -> dict:
        parts = FORMULAS.get(step.layer, _NO_PARTS)
        return parts.parameters(step.layer, step.input_shape) if parts.parameters else {}

    def parts(step):
        return FORMULAS.get(step.layer, _NO_PARTS)

    across = at_layer is not None or numbering is not None or \
        reads_across(derivation, equation, parts)
    if strict and not across and refusal is not None:
        raise refusal
    try:
        if across:
            titled = check_across_layers(derivation, text, index_base=index_base,
                                         parameters=parameters, at_layer=at_layer,
                                         numbering=numbering, names=names, parts=parts)
        else:
            checks = check_chain_rule(derivation, text, index_base=index_base,
                                      parameters=parameters, parts=parts, names=names)
            titled = [("", check) for check in checks]
    except FormulaError as error:
        if refusal is None:
            raise
        if strict and not _labels(equation)[1]:  # numbered names: the first reading's reason
            raise refusal from None
        if strict:
            raise FormulaError(error.message, error.text or text, error.position) from None
        raise FormulaError(f"{error.message} (read as a sum of products: {refusal.message})",
                           error.text or text, error.position) from None
    if len(titled) == 1:
        return titled[0][1]
    left = text.split("=")[0].strip()
    sides = [side.strip() for side in text.split("=")[1:]]
    per_side = len(titled) // max(1, len(sides))
    texts = []
    for number, (title, _) in enumerate(titled):
        side = sides[number % len(sides)] if len(sides) == len(titled) // per_side else ""
        line = f"{left} = {side}" if side else text
        texts.append(f"{title}: {line}" if title else line)
    return FormulaChecks(tuple(texts), tuple(check for _, check in titled))


#: Most equations one check takes (lines of an align, or ``=`` in a row).
MAX_EQUATIONS = 50


@dataclass(frozen=True)
class FormulaChecks:
    """Several equations judged one by one (an ``align``, or ``A = B = C``)."""

    texts: tuple
    checks: tuple

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def checked(self) -> int:
        return sum(check.checked for check in self.checks)

    @property
    def wrong(self) -> tuple:
        return tuple(result for check in self.checks for result in check.wrong)

    @property
    def notes(self) -> tuple:
        return tuple(note for check in self.checks for note in check.notes)

    def report(self, show: int = 3) -> str:
        right = sum(check.ok for check in self.checks)
        lines = [f"{'correct' if self.ok else 'wrong'}: {right} of {len(self.checks)} "
                 f"equations agree with SymPy's derivation"]
        for number, (text, check) in enumerate(zip(self.texts, self.checks, strict=True), 1):
            lines += ["", f"equation {number}: {text}"]
            lines += ["  " + line if line else "" for line in check.report(show).splitlines()]
        return "\n".join(lines)


def check_derivation(derivation: Derivation, formula: Formula, index_base: int = 1) \
        -> FormulaCheck:
    """Check a parsed formula against a derivation (see :func:`check_formula`)."""
    if index_base not in (0, 1):
        raise ValueError(f"index_base must be 0 or 1, got {index_base!r}")
    if isinstance(derivation.layer, Sequential):
        formula = _chain_formula(formula)
    arrays, layout = _setting(formula, derivation.layer, derivation=derivation)
    instance = _Instance(arrays, formula, index_base, layout)
    spent = instance.refuse_if_too_big()
    result = instance.check(derivation)
    if not result.ok:  # a classic slip: a 0-based formula read 1-based, or the reverse
        other = 1 - index_base
        try:
            retry = _Instance(arrays, formula, other, layout)
            # the budget covers the whole check: no second reading past it
            other_ok = retry.count() <= MAX_ENUMERATION - spent and retry.check(derivation).ok
        except FormulaError:
            other_ok = False
        if other_ok:
            result = dataclasses.replace(result, notes=result.notes + (
                f"with indices starting at {other} (--index-base {other}) this formula is "
                f"correct",))
    return result


# -- where the names of a formula sit in the network ---------------------------------
_INPUT, _OUTPUT = "input", "output"
_ROLE_WORDS = {"x": "the layer input", "g": "the upstream gradient", "w": "the kernel (weights)",
               "b": "the bias", "z": "the layer output"}


@dataclass(frozen=True)
class _Layout:
    """Which array of the layer each name with a layer superscript stands for.

    One layer has its input at layer ``input_at`` (``l-1``) and its output, upstream
    gradient and parameters one layer later (``l``); ``input_at`` is -1, or 0 for a
    person who writes the input at ``l`` and the output at ``l+1``.
    """

    placed: dict                # element position -> x, g, w, b, z (output), delta0 (the
    #                             input's error term), or a chain's a2, delta3, w3
    letter: str = ""            # "l" or "L"; "" when no name has a layer label
    input_at: int = -1
    brackets: str = ""          # "[]", "()" or "" as the person writes a label
    misplaced: tuple = ()       # (Element, array), names away from their usual place
    chain_layer: int = 0        # in a chain: the layer whose gradient is checked

    def label(self, side: str) -> str:
        """``"l-1"``, ``"l"``, ``"l+1"`` for the input or the output side."""
        offset = self.input_at + (side == _OUTPUT)
        text = self.letter + (f"{offset:+d}" if offset else "")
        return f"{self.brackets[:1]}{text}{self.brackets[1:]}"


def _label_text(letter: str, offset: int) -> str:
    return letter + (f"{offset:+d}" if offset else "")


def _elements_of(formula: Formula, terms) -> list:
    """Every element of the formula once, in written order, with its place in it."""
    found = {formula.gradient.position: (formula.gradient, "left")}
    for term in terms:
        for element in term.elements:
            if isinstance(element, Indicator):
                found.setdefault(element.candidate.position, (element.candidate, "candidate"))
                found.setdefault(element.output.position, (element.output, "argmax"))
            else:
                found.setdefault(element.position, (element, "right"))
    return [found[position] for position in sorted(found)]


def _place(element: Element, where: str, side: str, layout_words: dict):
    """``(array, usual)`` for ``element`` at ``side`` of the layer, or an error message."""
    array, name = element.array, element.spelling.name + element.superscript.text
    at = layout_words[side]
    if array == "x":
        if where == "left":
            if side == _INPUT:
                return "x", True
            return (f"{name} is at layer {at}, the output of this layer: its gradient is "
                    f"the upstream gradient, given; the input's is dL/d{element.spelling.name}"
                    f"^{{{layout_words[_INPUT]}}}")
        if where == "candidate":
            if side == _INPUT:
                return "x", True
            return (f"{name} is at layer {at}, the output of this layer; the indicator "
                    f"[a_ab = argmax z_ij] picks an input element a^{{{layout_words[_INPUT]}}}")
        if where == "argmax":
            if side == _OUTPUT:
                return "z", True
            return (f"{name} is at layer {at}, the input of this layer; argmax picks a window "
                    f"of the output, at layer {layout_words[_OUTPUT]}")
        return ("x", True) if side == _INPUT else ("z", False)
    if array == "g":
        return ("g", True) if side == _OUTPUT else (INPUT_ERROR, False)
    if array in ("w", "b", "z"):
        if side == _OUTPUT:
            return array, True
        return (f"{name} is at layer {at}, where this layer's input is; "
                f"{_ROLE_WORDS[array]} belongs to layer {layout_words[_OUTPUT]}, with the "
                f"output and its error term")
    return array, True  # pragma: no cover  (the parser knows no other array)


def _layout(formula: Formula, terms) -> _Layout:
    """Read the layer superscripts of the whole formula (see :class:`_Layout`)."""
    labelled = [(element, where) for element, where in _elements_of(formula, terms)
                if element.superscript is not None and element.superscript.layer is not None]
    if not labelled:
        return _Layout(placed={})
    for element, _ in labelled:
        superscript = element.superscript
        if not superscript.letter:
            raise FormulaError(
                f"{superscript.layer_text!r} is a layer number: layers are numbered in a "
                f"chain (symbackprop check sequential); for one layer write its input at "
                f"l-1 and its output, error term and parameters at l (a^{{l-1}}, \\delta^{{l}}, "
                f"w^{{l}})", formula.text, superscript.layer_position)
    first = labelled[0][0].superscript
    for element, _ in labelled:
        if element.superscript.letter != first.letter:
            raise FormulaError(
                f"{element.superscript.layer_text!r} mixes the layer letters {first.letter} "
                f"and {element.superscript.letter}: name the layers of one formula with one "
                f"letter", formula.text, element.superscript.layer_position)
    letter = first.letter
    offsets = [element.superscript.layer.constant for element, _ in labelled]
    low, high = min(offsets), max(offsets)
    if high - low > 1:
        far = next(element for element, _ in labelled
                   if element.superscript.layer.constant in (low, high)
                   and element.superscript.layer.constant != offsets[0])
        raise FormulaError(
            f"this formula names layers {_label_text(letter, low)} to "
            f"{_label_text(letter, high)}, but one layer spans two: its input at "
            f"{_label_text(letter, -1)} and its output, error term and parameters at {letter} "
            f"(or the input at {letter} and the rest at {_label_text(letter, 1)}); "
            f"{far.spelling.name}{far.superscript.text} names a layer this instance does "
            f"not have", formula.text, far.superscript.layer_position)
    brackets = {"[": "[]", "(": "()"}.get(first.layer_text[:1], "")
    candidates = sorted({offset - 1 for offset in offsets} | set(offsets))
    best = None
    for input_at in candidates:
        if not all(input_at <= offset <= input_at + 1 for offset in offsets):
            continue
        words = {_INPUT: _label_text(letter, input_at),
                 _OUTPUT: _label_text(letter, input_at + 1)}
        placed, misplaced, errors, usual = {}, [], [], set()
        for element, where in labelled:
            side = _INPUT if element.superscript.layer.constant == input_at else _OUTPUT
            outcome = _place(element, where, side, words)
            if isinstance(outcome, str):
                errors.append((element, outcome))
                continue
            array, is_usual = outcome
            placed[element.position] = array
            if is_usual:  # each name at each layer once, however often it is written
                usual.add((element.array, where, element.superscript.layer.constant))
            else:
                misplaced.append((element, array))
        # fewest errors, then most names at their usual place, then the input at l-1
        score = (len(errors), -len(usual), abs(input_at + 1))
        if best is None or score < best[0]:
            best = (score, input_at, placed, misplaced, errors)
    _, input_at, placed, misplaced, errors = best
    if errors:
        element, message = errors[0]
        raise FormulaError(message, formula.text, element.superscript.layer_position)
    return _Layout(placed=placed, letter=letter, input_at=input_at, brackets=brackets,
                   misplaced=tuple(misplaced))


# -- a chain: superscripts are the chain's layer numbers ------------------------------
_CHAIN_ROLE_ARRAYS = {"x": "a", "z": "a", "g": "delta"}


def _numbered_in_parentheses(element: Element) -> Element:
    """``a^{(2)}_{j}`` in a chain: layer 2 as the notes write it, not channel 2 (a chain's
    printouts write the layer in brackets, ``a^{[2](1)}``, and channels in parentheses)."""
    superscript = element.superscript
    if superscript is None or superscript.layer is not None or superscript.channels is None \
            or len(superscript.channels) != 1 or superscript.channels[0].coefficients:
        return element
    label = superscript.channels[0]
    text = f"({label.constant})"
    layered = replace(superscript, layer=label, layer_text=text, channels=None,
                      layer_position=superscript.position + 2)
    subscript = element.subscript
    if subscript is not None:
        subscript = replace(subscript, parts=subscript.parts and subscript.parts[1:] or None,
                            pieces=subscript.pieces and subscript.pieces[1:] or None)
        if not subscript.parts and not subscript.pieces:
            subscript = None
    spelling = replace(element.spelling, channels=False, layer_text=text,
                       superscript=f"^{{{text}}}")
    return replace(element, superscript=layered, subscript=subscript, spelling=spelling)


def _map_elements(node, change):
    """The right side with ``change`` applied to every element (indicators' too)."""
    if isinstance(node, Element):
        return change(node)
    if isinstance(node, Indicator):
        return replace(node, candidate=change(node.candidate), output=change(node.output))
    if isinstance(node, Add):
        return replace(node, terms=tuple((sign, _map_elements(child, change))
                                         for sign, child in node.terms))
    if isinstance(node, Product):
        return replace(node, factors=tuple(_map_elements(f, change) for f in node.factors))
    if isinstance(node, Quotient):
        return replace(node, numerator=_map_elements(node.numerator, change),
                       denominator=_map_elements(node.denominator, change))
    if isinstance(node, Summation):
        return replace(node, body=_map_elements(node.body, change))
    return node


def _chain_formula(formula: Formula) -> Formula:
    """``formula`` with ``a^{(2)}`` read as layer 2 (see :func:`_numbered_in_parentheses`)."""
    return replace(formula, gradient=_numbered_in_parentheses(formula.gradient),
                   rhs=_map_elements(formula.rhs, _numbered_in_parentheses))


def _chain_label(element: Element, chain) -> int:
    """The chain layer number of ``element``'s superscript (``a^{[2]}``, ``a^{(2)}``, ``a^2``)."""
    superscript = element.superscript
    name = element.spelling.name
    layers = len(chain.layers)
    label = superscript.layer if superscript is not None else None
    if label is None:
        example = ", ".join(f"{layer.kind} ..." for layer in chain.layers[:2])
        raise FormulaError(
            f"{name}: in a chain every name says its layer, 0 to {layers}: a^{{[1]}}, "
            f"\\delta^{{[2]}}, w^{{[2]}} (as symbackprop latex prints a chain); or check "
            f"each layer of a chain on its own (symbackprop check {example})",
            "", None)
    if label.coefficients:
        raise FormulaError(
            f"{superscript.layer_text!r}: a chain's layers are numbered 1 to {layers} (its "
            f"input is a^{{[0]}}); write the number, such as {name}^{{[1]}}", "", None)
    return label.constant


def _chain_layout(formula: Formula, terms, chain) -> tuple:
    """``(layout, m)``: the chain array each name stands for, and the layer ``m`` whose
    gradient the left side asks for (one layer at a time, as the derivation gives it)."""
    layers = len(chain.layers)
    placed, misplaced = {}, []
    numbers = {}
    for element, _ in _elements_of(formula, terms):
        try:
            numbers[element.position] = _chain_label(element, chain)
        except FormulaError as error:
            superscript = element.superscript
            position = element.position if superscript is None else (
                superscript.layer_position if superscript.layer is not None
                else superscript.position)
            raise FormulaError(error.message, formula.text, position) from None
    gradient = formula.gradient
    k = numbers[gradient.position]
    where_k = _label_position(gradient)
    if gradient.array == "x":
        if k >= layers:
            raise FormulaError(
                f"a^{{[{k}]}} is {'the chain output' if k == layers else 'not in the chain'}: "
                f"{'its gradient, the error term, is given' if k == layers else ''}"
                f"; the chain has a^{{[0]}} (its input) to a^{{[{layers}]}}; a formula gives "
                f"dL/da^{{[k]}} for k = 0 to {layers - 1}", formula.text, where_k)
        m = k + 1
    else:
        if not 1 <= k <= layers or gradient.array not in chain.layers[k - 1].parameter_names:
            having = [str(n) for n, layer in enumerate(chain.layers, 1)
                      if gradient.array in layer.parameter_names]
            raise FormulaError(
                f"{gradient.spelling.name}^{{[{k}]}}: "
                + (f"layer {k} ({chain.layers[k - 1].describe()}) has no "
                   f"{_PARAMETER_WORDS.get(gradient.array, gradient.array)}"
                   if 1 <= k <= layers else f"the chain has layers 1 to {layers}")
                + f"; the layers with {gradient.array}: {', '.join(having) or 'none'}",
                formula.text, where_k)
        m = k
    for element, where in _elements_of(formula, terms):
        k = numbers[element.position]
        position = _label_position(element)
        array = element.array
        if array in ("x", "z"):
            if not 0 <= k <= layers:
                raise FormulaError(f"a^{{[{k}]}}: the chain has a^{{[0]}} (its input) to "
                                   f"a^{{[{layers}]}}", formula.text, position)
            if where == "candidate" and k != m - 1:
                raise FormulaError(f"the indicator [a_ab = argmax z_ij] of layer {m} picks an "
                                   f"element of its input a^{{[{m - 1}]}}", formula.text,
                                   position)
            if where == "argmax" and k != m:
                raise FormulaError(f"argmax picks a window of layer {m}'s output "
                                   f"a^{{[{m}]}}", formula.text, position)
            if array == "z" and where not in ("argmax", "left"):
                continue  # refused in resolve as the layer output
            placed[element.position] = f"a{k}"
            if where == "right" and k != m - 1:
                misplaced.append((element, f"a{k}"))
        elif array == "g":
            if not 0 <= k <= layers:
                raise FormulaError(f"\\delta^{{[{k}]}}: the chain has error terms "
                                   f"\\delta^{{[0]}} to \\delta^{{[{layers}]}}", formula.text,
                                   position)
            placed[element.position] = f"delta{k}"
            if k != m:
                misplaced.append((element, f"delta{k}"))
        else:  # w, b
            if not 1 <= k <= layers or array not in chain.layers[k - 1].parameter_names:
                having = [str(n) for n, layer in enumerate(chain.layers, 1)
                          if array in layer.parameter_names]
                raise FormulaError(
                    f"{element.spelling.name}^{{[{k}]}}: "
                    + (f"layer {k} ({chain.layers[k - 1].describe()}) has no "
                       f"{_PARAMETER_WORDS.get(array, array)}" if 1 <= k <= layers
                       else f"the chain has layers 1 to {layers}")
                    + f"; the layers with {array}: {', '.join(having) or 'none'}",
                    formula.text, position)
            placed[element.position] = f"{array}{k}"
            if where != "left" and k != m:
                misplaced.append((element, f"{array}{k}"))
    first = next((e.superscript for e, _ in _elements_of(formula, terms)
                  if e.superscript is not None and e.superscript.layer is not None), None)
    brackets = {"[": "[]", "(": "()"}.get(first.layer_text[:1], "") if first else "()"
    return _Layout(placed=placed, brackets=brackets, misplaced=tuple(misplaced),
                   chain_layer=m), m


def _label_position(element: Element) -> int:
    superscript = element.superscript
    if superscript is None:
        return element.position
    return superscript.layer_position if superscript.layer is not None else superscript.position


# -- instantiating a formula on one layer instance -----------------------------------
@dataclass(frozen=True)
class _Arrays:
    """The arrays a formula is instantiated on: symbols from a derivation, or for
    counting the work up front only their shapes (grids of ``None``)."""

    layer: object
    checked: object     # the layer whose gradients are checked (in a chain, one of its layers)
    shapes: dict        # array -> shape, for Notation
    grids: dict         # x, g, w, b, z (output values), dx -> grid
    grads: dict         # x, w, b -> grid of the gradient
    symbolic: bool

    @classmethod
    def from_derivation(cls, derivation: Derivation) -> "_Arrays":
        arrays = {"x": derivation.x, "g": derivation.g, **derivation.params,
                  **derivation.constants}
        grids = {name: to_grid(array) for name, array in arrays.items() if array is not None}
        grids["z"] = to_grid(derivation.z)
        grids[INPUT_ERROR] = symbol_grid(INPUT_ERROR, derivation.input_shape)
        return cls(layer=derivation.layer, checked=derivation.layer, shapes=derivation.shapes,
                   grids=grids,
                   grads={name: to_grid(array) for name, array in derivation.grads.items()},
                   symbolic=True)

    @classmethod
    def from_chain(cls, derivation, m: int) -> "_Arrays":
        """A chain's arrays for checking layer ``m``'s gradients: ``a0 ... aL``,
        ``delta0 ... deltaL``, every parameter; ``a_m`` is layer ``m``'s output as
        computed from ``a_{m-1}`` (``sigmoid(a1)``), the other activations symbols."""
        steps = derivation.steps
        step = steps[m - 1]
        grids = {"a0": to_grid(steps[0].input),
                 "delta0": symbol_grid("delta0", derivation.input_shape)}
        for number, each in enumerate(steps, 1):
            grids[f"a{number}"] = to_grid(each.output)
            grids[f"delta{number}"] = to_grid(each.delta_out)
        grids.update({name: to_grid(array) for name, array in derivation.params.items()})
        grids[f"a{m}"] = grids["z"] = to_grid(step.z)
        grads = {f"a{m - 1}": to_grid(step.delta_in),
                 **{name: to_grid(array) for name, array in step.param_grads.items()}}
        return cls(layer=derivation.layer, checked=derivation.layer.layers[m - 1],
                   shapes=derivation.shapes, grids=grids, grads=grads, symbolic=True)

    @classmethod
    def from_chain_shapes(cls, chain, input_shape, m: int) -> "_Arrays":
        shapes = {}
        for number, shape in enumerate(chain.shapes(input_shape)):
            shapes[f"a{number}"] = shapes[f"delta{number}"] = shape
        shapes.update(chain.parameter_shapes)
        grids = {name: np.empty(shape, dtype=object) for name, shape in shapes.items()}
        grids["z"] = grids[f"a{m}"]
        grads = {f"a{m - 1}": grids[f"a{m - 1}"],
                 **{f"{name}{m}": grids[f"{name}{m}"]
                    for name in chain.layers[m - 1].parameter_names}}
        return cls(layer=chain, checked=chain.layers[m - 1], shapes=shapes, grids=grids,
                   grads=grads, symbolic=False)

    @classmethod
    def from_shapes(cls, layer, input_shape) -> "_Arrays":
        output_shape = output_shape_of(layer, input_shape)
        shapes = {"x": input_shape, "z": output_shape, "g": output_shape,
                  **layer.parameter_shapes,
                  **(layer.constant_shapes(input_shape) if hasattr(layer, "constant_shapes")
                     else {})}
        grids = {name: np.empty(shape, dtype=object) for name, shape in shapes.items()}
        grids[INPUT_ERROR] = grids["x"]
        grads = {name: grids[name] for name in ("x", *layer.parameter_shapes)}
        return cls(layer=layer, checked=layer, shapes=shapes, grids=grids, grads=grads,
                   symbolic=False)


@dataclass(frozen=True)
class _Resolved:
    """An element of the formula matched with an array of the layer."""

    element: Element
    axes: tuple     # which axes of the array the written indices address
    indices: tuple  # (Affine, ...) one per axis in ``axes``
    grid: np.ndarray

    def full_index(self, values) -> tuple | None:
        """0-based index into the array for the written index values, or None if outside."""
        index = [0] * self.grid.ndim
        for axis, value in zip(self.axes, values, strict=True):
            if not 0 <= value < self.grid.shape[axis]:
                return None
            index[axis] = value
        return tuple(index)


def _setting(formula: Formula, layer, *, derivation=None, input_shape=None) -> tuple:
    """``(arrays, layout)`` for checking ``formula`` on ``layer`` (a chain or one layer):
    from the derivation, or from the shapes alone to count the work up front."""
    terms = products(formula.rhs, formula.text)
    if isinstance(layer, Sequential):
        layout, m = _chain_layout(formula, terms, layer)
        arrays = _Arrays.from_chain(derivation, m) if derivation is not None \
            else _Arrays.from_chain_shapes(layer, input_shape, m)
        return arrays, layout
    arrays = _Arrays.from_derivation(derivation) if derivation is not None \
        else _Arrays.from_shapes(layer, input_shape)
    return arrays, _layout(formula, terms)


class _Instance:
    def __init__(self, arrays: _Arrays, formula: Formula, index_base: int, layout: _Layout):
        self.arrays, self.formula, self.base = arrays, formula, index_base
        self.grids = arrays.grids
        shapes = dict(arrays.shapes)
        shapes.setdefault(INPUT_ERROR, shapes.get("x", shapes.get("a0")))
        self.notation = Notation(shapes=shapes, index_base=index_base)
        self.notes: dict = {}
        self.terms = products(formula.rhs, formula.text)
        self.layout = layout

    def error(self, message: str, position: int) -> FormulaError:
        return FormulaError(message, self.formula.text, position)

    def describe(self) -> str:
        return self.arrays.layer.describe()

    def meaning(self, array: str) -> str:
        """``"the kernel"``: what ``array`` is, in the kind's words if it has its own."""
        parts = FORMULAS.get(self.arrays.checked, _NO_PARTS)
        return parts.meanings.get(array) or _ARRAY_MEANING.get(array, array)

    def axis_names(self, array: str, rank: int) -> tuple:
        """The names of ``array``'s axes, in the kind's words if it has its own for that rank."""
        names = FORMULAS.get(self.arrays.checked, _NO_PARTS).axes.get(array)
        return names if names is not None and len(names) == rank else AXIS_NAMES.get(array, ())

    def placed(self, element: Element) -> str:
        """The array ``element`` stands for, its layer superscript read."""
        return self.layout.placed.get(element.position, element.array)

    # -- matching names and indices ----------------------------------------------------
    def shown_axes(self, array: str, rank: int) -> tuple:
        # Notation drops size-1 batch/channel axes; with base 0 the indices it keeps
        # from (0, 1, ..., rank-1) are the axis numbers themselves.
        return Notation(shapes=self.notation.shapes, index_base=0).indices(
            array, tuple(range(rank)))

    def resolve(self, element: Element, grid: np.ndarray | None = None) -> _Resolved:
        name = element.spelling.name
        array = self.placed(element)
        if grid is None:
            if element.array == "z":
                raise self.error(f"{name} is the layer output; a gradient formula uses the "
                                 f"upstream gradient g = dL/dz instead", element.position)
            if array not in self.grids:
                raise self.error(
                    f"{name} ({self.meaning(array)}) is not part "
                    f"of this layer: {self.describe()}", element.position)
            grid = self.grids[array]
        shown = self.shown_axes(array, grid.ndim)
        full = tuple(range(grid.ndim))
        subscript = element.subscript
        readings = [()] if subscript is None else [
            group for group in (subscript.parts, subscript.pieces) if group is not None]
        if len(readings) == 2 and any(len(variable) > 1 for index in readings[0]
                                      for variable in index.variables):
            readings.reverse()  # _{ij}: the indices i and j, not one index named ij
        transposed = element.superscript is not None and element.superscript.transposed
        if transposed:  # W^T_{j,i} is W_{i,j}; a vector's transpose is the vector
            readings = [tuple(reversed(reading)) for reading in readings if len(reading) <= 2]
            if not readings:
                raise self.error(f"{name}{element.superscript.text} is a transpose: it takes "
                                 f"two indices (a matrix) or one (a vector)",
                                 element.superscript.position)
        # the indices shown in printouts, or all of them; with a channel superscript
        # also all but size-1 leading ones (a^{(1)}_{ij}: the channel of a one-channel
        # layer written, the batch not)
        choices = [shown, full]
        if element.superscript is not None and element.superscript.channels is not None:
            ones = next((axis for axis in full if grid.shape[axis] != 1), len(full))
            choices += [full[start:] for start in range(1, ones + 1)]
        outside = None
        for reading in readings:
            for axes in choices:
                if len(reading) == len(axes):
                    resolved = _Resolved(element, axes, tuple(reading), grid)
                    try:
                        self.check_constant_range(resolved)
                    except FormulaError as error:  # _{11}: perhaps 1, 1 rather than 11
                        outside = outside or error
                        continue
                    return resolved
        if outside is not None:
            raise outside
        given = len(readings[0]) if readings else 0
        position = element.position if subscript is None else subscript.position
        names = self.axis_names(array, grid.ndim)
        also = f" (or all {len(full)}, {_shape_words(names, full, grid.shape)})" \
            if len(full) != len(shown) else ""
        if not shown:
            raise self.error(f"{name} is a single value here and takes no index{also}, but is "
                             f"written with {given}", position)
        raise self.error(
            f"{name} takes {len(shown)} ind{'ex' if len(shown) == 1 else 'ices'} here "
            f"({_shape_words(names, shown, grid.shape)}){also}, but is written "
            f"with {given}", position)

    def resolve_indicator(self, indicator: Indicator) -> _Resolved:
        """``[x_ab = argmax z_ij]`` as one element of a grid indexed by ``(a, b, i, j)``."""
        z = self.grids["z"]
        parts = FORMULAS.get(self.arrays.checked)
        if parts is None or parts.argmax is None:
            owners = " and ".join(dict.fromkeys(
                entry.words for entry in FORMULAS.table.values() if entry.argmax is not None))
            raise self.error(
                f"the indicator [x_ab = argmax z_ij] belongs to {owners or 'no layer'}; "
                f"{self.describe()} has none", indicator.position)
        candidate = self.resolve(indicator.candidate)
        output = self.resolve(indicator.output, z)
        grid = _IndicatorGrid(candidate, output, parts.argmax)
        return _Resolved(indicator, tuple(range(len(grid.shape))),
                         candidate.indices + output.indices, grid)

    def check_constant_range(self, resolved: _Resolved):
        if any(index.coefficients for index in resolved.indices):
            return
        values = [index.constant - self.base for index in resolved.indices]
        for axis, value in zip(resolved.axes, values, strict=True):
            size = resolved.grid.shape[axis]
            if not 0 <= value < size:
                element = resolved.element
                names = self.axis_names(element.array, resolved.grid.ndim)
                what = names[axis] if axis < len(names) else f"axis {axis}"
                written = element.spelling.format([v + self.base for v in values])
                raise self.error(
                    f"{written} does not exist: the {what} index of {element.spelling.name} "
                    f"runs from {self.base} to {self.base + size - 1}",
                    element.position)

    def gradient_elements(self):
        """``(0-based index, {free index: value})`` for every element the left side names."""
        gradient = self.formula.gradient
        array = self.placed(gradient)
        if gradient.array == "z":
            raise self.error("the left side must be the gradient of the input, kernel or bias; "
                             "dL/dz is the upstream gradient g", gradient.position)
        if array not in self.arrays.grads:
            raise self.error(
                f"{gradient.spelling.name}: this layer has no gradient for "
                f"{self.meaning(array)} ({self.describe()})", gradient.position)
        grid = self.arrays.grads[array]
        resolved = self.resolve(gradient, grid)
        for index in resolved.indices:
            if index.coefficients and (index.constant or len(index.coefficients) > 1
                                       or index.coefficients[0][1] != 1):
                raise self.error("indices on the left side must be numbers or single index "
                                 "names, such as w_{1,2} or w_{i,j}",
                                 gradient.subscript.position)
        found = []
        for full in np.ndindex(*grid.shape):
            values = {}
            for axis, index in zip(resolved.axes, resolved.indices, strict=True):
                value = full[axis] + self.base
                if not index.coefficients:
                    if value != index.constant:
                        break
                elif values.setdefault(index.variables[0], value) != value:
                    break
            else:
                found.append((tuple(full), values))
        return array, grid, found

    # -- the size of the check, before any work ------------------------------------------
    def count(self) -> int:
        """Index combinations the whole check runs over; past the limit an estimate
        from the elements counted so far (counting every element can take long)."""
        _, _, elements = self.gradient_elements()
        free = set(elements[0][1]) if elements else set()
        terms = [self.prepare(term, free) for term in self.terms]
        total = 0
        for counted, (_, values) in enumerate(elements, 1):
            for term, resolved in terms:
                ranges, _ = self.box(term, resolved, values)
                total += int(np.prod([len(r) for r in ranges], dtype=float))
            if total > MAX_ENUMERATION:
                return max(total, total * len(elements) // counted)
        return total

    def refuse_if_too_big(self) -> int:
        """The size of the check (:meth:`count`); a FormulaError past :data:`MAX_ENUMERATION`."""
        _, _, elements = self.gradient_elements()
        total = self.count()
        if total <= MAX_ENUMERATION:
            return total
        gradient = self.formula.gradient
        sums = [v for term in self.terms for v in term.variables]
        where = sums[0].position if sums else gradient.position
        raise self.error(
            f"this check would run over about {total:,} index combinations, over the "
            f"limit of {MAX_ENUMERATION:,} ({len(elements):,} "
            f"element{'s' if len(elements) != 1 else ''} of {gradient.spelling.format(())} "
            f"times the values of the sums): narrow it: name fewer elements on the left "
            f"side (numbers instead of index names), give the sums limits that fit the "
            f"layer, or check a smaller --input", where)

    # -- the check ----------------------------------------------------------------------
    def check(self, derivation: Derivation) -> FormulaCheck:
        array, gradient_grid, elements = self.gradient_elements()
        free = set(elements[0][1]) if elements else set()
        terms = [self.prepare(term, free) for term in self.terms]
        spellings = self.spellings()
        spelling = self.formula.gradient.spelling
        labels = [written_label(spelling, self.notation, array, index)
                  for index, _ in elements]
        wrong = []
        for (index, values), label in progress.track(zip(elements, labels, strict=True),
                                                     "checking", len(elements), unit="elements"):
            given = self.instantiate(terms, values)
            expected = gradient_grid[index]
            difference = sympy.expand(expected - given)
            if difference == 0:
                continue
            missing, extra = [], []
            for term, coefficient in difference.as_coefficients_dict().items():
                (missing if coefficient > 0 else extra).append(abs(coefficient) * term)
            wrong.append(ElementResult(index=index, label=label, expected=expected,
                                       given=given, missing=sympy.Add(*missing),
                                       extra=sympy.Add(*extra)))
        notes = tuple(self.notes.values())
        if wrong:
            notes = self.placement_notes(spellings) + self.identity_notes(
                derivation, wrong, spellings) + notes
        return FormulaCheck(formula=self.formula, derivation=derivation,
                            index_base=self.base, checked=len(elements),
                            label=labels[0] if len(labels) == 1 else spelling.format(()),
                            wrong=tuple(wrong), notes=notes, spellings=spellings,
                            shapes={**self.notation.shapes, "z": self.grids["z"].shape})

    def spellings(self) -> dict:
        """Array -> how to print it: as first written at the place it belongs; an array
        written only at another layer gets that spelling with the right layer label."""
        found, roles = {}, {}
        for element, where in _elements_of(self.formula, self.terms):
            spelling = element.spelling
            if where == "left":
                spelling = replace(spelling, prefix="", suffix="")
            array = self.placed(element)
            if where == "argmax" or (array == "z" and where != "left"):
                array = "z"
            found.setdefault(array, spelling)
            roles.setdefault(element.array, spelling)
        layout = self.layout
        if layout.chain_layer:
            opening, closing = layout.brackets or "  "
            style, separator = self.formula.index_style
            for array in self.grids:
                stem = array.rstrip("0123456789")
                role = {"a": "x", "delta": "g"}.get(stem, stem)
                if array in found or stem == array:
                    continue
                text = f"{opening}{array[len(stem):]}{closing}".strip()
                written = roles.get(role) or Spelling(
                    "\\delta" if stem == "delta" and self.formula.latex else stem,
                    style=style, separator=separator)
                found[array] = replace(written, superscript=f"^{{{text}}}", layer_text=text)
        elif layout.letter:
            for array, side in (("x", _INPUT), ("g", _OUTPUT), ("w", _OUTPUT), ("b", _OUTPUT)):
                if array not in found and array in roles and roles[array].superscript:
                    text = layout.label(side)
                    found[array] = replace(roles[array], superscript=f"^{{{text}}}",
                                           layer_text=text)
        return found

    def placement_notes(self, spellings: dict) -> tuple:
        """Why a name read at another layer than usual gives a wrong answer."""
        if self.layout.chain_layer:
            return self.chain_notes(spellings)
        notes = []
        for element, array in self.layout.misplaced:
            written = element.spelling.name + element.superscript.text
            layer = self.layout.label(_OUTPUT if array == "z" else _INPUT)
            if array == "z":
                belongs = spellings.get("x", element.spelling).format(())
                notes.append(f"{written} is at layer {layer}: the output of this layer, "
                             f"computed from its input {belongs} at layer "
                             f"{self.layout.label(_INPUT)}")
            else:
                belongs = spellings.get("g", element.spelling).format(())
                source = spellings.get("x", Spelling("x")).format(())
                notes.append(f"{written} is at layer {layer}: the error term of this layer's "
                             f"input {source}, which this layer hands back to the one before; "
                             f"the upstream gradient that belongs here is {belongs}, at layer "
                             f"{self.layout.label(_OUTPUT)}")
        return tuple(dict.fromkeys(notes))

    def identity_notes(self, derivation, wrong, spellings: dict) -> tuple:
        """In a chain, at a residual block's input: the note when exactly the identity
        path is missing from every wrong element (only the block's path written)."""
        m = self.layout.chain_layer
        steps = getattr(derivation, "steps", ())
        if not m or m > len(steps) or not steps[m - 1].identity_paths:
            return ()
        step = steps[m - 1]
        identity = {symbol for path in step.identity_paths for symbol in flat(path)}
        if not all(item.extra == 0 and item.missing != 0
                   and set(sympy.Add.make_args(item.missing)) <= identity for item in wrong):
            return ()
        def shown(name):
            return spellings[name].format(()) if name in spellings else name
        paths = " + ".join(shown(parse_element(flat(path)[0])[0])
                           for path in step.identity_paths)
        source = shown(step.names["x"])
        return (f"the identity path is missing: {source} is a residual block's input and "
                f"also goes straight to the residual sum, so its error term is the block's "
                f"path plus {paths} (y = x + block(x): dL/dx = dL/dy + the block's dL/dx)",)

    def chain_notes(self, spellings: dict) -> tuple:
        """In a chain: names of another layer than the one whose gradient is checked."""
        m = self.layout.chain_layer
        own = {name: spellings[name].format(()) for name in (f"a{m - 1}", f"delta{m}")
               if name in spellings}
        notes = []
        for element, array in self.layout.misplaced:
            written = element.spelling.name + element.superscript.text
            number = int(array.lstrip("abdeltw"))
            if array.startswith("delta"):
                notes.append(
                    f"{written} is the error term of layer {number}'s output; layer {m}'s "
                    f"gradients are one step from {own.get(f'delta{m}', 'its own')} (the "
                    f"chain is checked one layer at a time, as symbackprop derive gives it)")
            elif array == f"a{m}":
                notes.append(f"{written} is the output of layer {m}, computed from its "
                             f"input {own.get(f'a{m - 1}', f'a^[{m - 1}]')}")
            elif array.startswith("a"):
                notes.append(f"{written} is the output of layer {number}; layer {m} reads "
                             f"{own.get(f'a{m - 1}', f'the output of layer {m - 1}')}")
            else:
                notes.append(f"{written} belongs to layer {number}; this gradient is layer "
                             f"{m}'s")
        return tuple(dict.fromkeys(notes))

    def prepare(self, term, free: set):
        """Resolve the elements of one product and check that every index is bound."""
        resolved = tuple(self.resolve_indicator(element) if isinstance(element, Indicator)
                         else self.resolve(element) for element in term.elements)
        bound = set(free)
        for variable in term.variables:
            if variable.written in free:
                raise self.error(f"{variable.written} is an index of the left side; a sum "
                                 f"over it would hide it (use another letter)",
                                 variable.position)
            for limit in (variable.lower, variable.upper):
                unknown = [n for n in (limit.variables if limit else ()) if n not in bound]
                if unknown:
                    raise self.error(
                        f"the limits of the sum over {variable.written} use "
                        f"{unknown[0].split('#')[0]}, which is not an index here: write the "
                        f"number (the kernel or output size of this layer)", variable.position)
            bound.add(variable.name)
        for item in resolved:
            for index in item.indices:
                self.check_bound(index, bound, item.element.position)
        self.check_expansion(resolved)
        return term, resolved

    def check_expansion(self, resolved):
        """Refuse a product of layer outputs (``a^{l}``, each a sum) that multiplies out to
        more terms than :data:`MAX_EXPANDED_TERMS`, before any work."""
        if not self.arrays.symbolic:
            return
        size = 1
        for item in resolved:
            if isinstance(item.element, Element) and item.grid is self.grids["z"]:
                size *= self.output_terms()
        if size > MAX_EXPANDED_TERMS:
            raise self.error(
                f"this product of layer outputs multiplies out to about {size:,} terms, over "
                f"the limit of {MAX_EXPANDED_TERMS:,}: write it with the layer's input",
                resolved[0].element.position)

    def output_terms(self) -> int:
        """The most terms one element of the layer output has (a convolution's z_ij: one
        per kernel element, and the bias)."""
        if not hasattr(self, "_output_terms"):
            self._output_terms = max((len(sympy.Add.make_args(value))
                                      for value in self.grids["z"].flat), default=1)
        return self._output_terms

    def check_bound(self, index: Affine | None, bound: set, position: int):
        for name in (index.variables if index is not None else ()):
            if name not in bound:
                shown = name.split("#")[0]
                raise self.error(f"index {shown} is not on the left side and no sum runs "
                                 f"over it here", position)

    def instantiate(self, terms, values: dict) -> sympy.Expr:
        """The right side for one element: ``values`` gives the free indices."""
        total = Counter()
        for term, resolved in terms:
            for symbols in self.enumerate(term, resolved, values):
                key = tuple(sorted(symbols, key=str))
                total[key] += term.coefficient
        return sympy.Add(*[sympy.Rational(c.numerator, c.denominator) * product(*key)
                           for key, c in total.items() if c])

    def box(self, term, resolved, values: dict):
        """The ranges of the summation indices of one term for one element, and the
        limits (hard constraints) a combination must meet."""
        variables = term.variables
        hard, soft = [], []
        for variable in variables:
            if variable.limited:
                hard.append((Affine.variable(variable.name) + variable.lower.scaled(-1), 0, None))
                hard.append((variable.upper + Affine.variable(variable.name).scaled(-1), 0, None))
        for item in resolved:
            for axis, index in zip(item.axes, item.indices, strict=True):
                soft.append((index, self.base, self.base + item.grid.shape[axis] - 1))
        box = _bounds(variables, [(c.substituted(values), lo, hi) for c, lo, hi in hard],
                      [(c.substituted(values), lo, hi) for c, lo, hi in soft])
        for variable in variables:
            low, high = box[variable.name]
            if low is None or high is None:
                raise self.error(
                    f"the sum over {variable.written} has no limits and no term bounds it; "
                    f"give limits, such as \\sum_{{{variable.written}=0}}^{{1}}",
                    variable.position)
        ranges = [range(box[v.name][0], box[v.name][1] + 1) for v in variables]
        return ranges, hard

    def enumerate(self, term, resolved, values: dict):
        """Every product of symbols one term of the formula stands for."""
        variables = term.variables
        ranges, hard = self.box(term, resolved, values)
        unlimited = any(not v.limited for v in variables)
        names = [v.name for v in variables]
        for combination in itertools.product(*ranges):
            env = dict(values)
            env.update(zip(names, combination, strict=True))
            if any(c.evaluate(env) < lo for c, lo, _ in hard):
                continue
            symbols = []
            for item in resolved:
                written = [index.evaluate(env) for index in item.indices]
                full = item.full_index([v - self.base for v in written])
                if full is None:
                    if not unlimited:
                        self.note_outside(item, written)
                    break
                symbols.append(item.grid[full])
            else:
                yield symbols

    def note_outside(self, item: _Resolved, written):
        if isinstance(item.element, Indicator):
            if "[argmax]" not in self.notes:
                self.notes["[argmax]"] = (
                    f"{item.grid.format(written)} and any other indicator of an element "
                    f"outside x or z were taken as 0")
            return
        spelling = item.element.spelling
        key = spelling.name
        if key not in self.notes:
            self.notes[key] = (
                f"{spelling.format(written)} and any other element outside "
                f"{spelling.name} were taken as 0 (zero padding)")


class _IndicatorGrid:
    """``[x_ab = argmax z_ij]`` for every written ``(a, b)`` and ``(i, j)``.

    Indexed by the candidate's written indices followed by the output's; an element
    is what the kind's :attr:`FormulaParts.argmax` makes of ``x_ab`` and ``z_ij``: the
    derivation's own indicator when ``x_ab`` lies in ``z_ij``'s window, else 0.
    """

    def __init__(self, candidate: _Resolved, output: _Resolved, argmax: Callable):
        self.candidate, self.output, self.argmax = candidate, output, argmax
        self.split = len(candidate.axes)
        self.shape = tuple(candidate.grid.shape[a] for a in candidate.axes) + \
            tuple(output.grid.shape[a] for a in output.axes)
        self.ndim = len(self.shape)

    def __getitem__(self, index):
        element = self.candidate.grid[self.candidate.full_index(index[:self.split])]
        return self.argmax(element, self.output.grid[self.output.full_index(index[self.split:])])

    def format(self, written) -> str:
        return (f"[{self.candidate.element.spelling.format(written[:self.split])} = argmax "
                f"{self.output.element.spelling.format(written[self.split:])}]")


def _shape_words(names: tuple, axes, shape) -> str:
    """``"row, column; it is 3 x 3"`` for the message about a wrong index count (``names``:
    the array's axis names)."""
    meaning = ", ".join(names[a] if a < len(names) else f"axis {a}" for a in axes)
    return f"{meaning}: {' x '.join(str(shape[a]) for a in axes)}"


def _bounds(variables, hard, soft) -> dict:
    """Smallest box of integer values the summation indices can take.

    ``hard`` (limits) and ``soft`` (elements inside their arrays) are
    ``(Affine, low, high)`` constraints, ``None`` meaning unbounded.  Soft
    constraints narrow only sums without limits: those run over every value for
    which all their terms exist.  Plain interval propagation until nothing changes.
    """
    box = {v.name: [None, None] for v in variables}
    limited = {v.name for v in variables if v.limited}
    constraints = [(c, lo, hi, True) for c, lo, hi in hard] + \
                  [(c, lo, hi, False) for c, lo, hi in soft]
    for _ in range(100):
        changed = False
        for linear, low, high, is_hard in constraints:
            for name, coefficient in linear.coefficients:
                if name not in box or (not is_hard and name in limited):
                    continue
                rest_low, rest_high = linear.constant, linear.constant
                for other, c in linear.coefficients:
                    if other == name:
                        continue
                    lo_other, hi_other = box[other] if other in box else (None, None)
                    a, b = (lo_other, hi_other) if c > 0 else (hi_other, lo_other)
                    rest_low = None if rest_low is None or a is None else rest_low + c * a
                    rest_high = None if rest_high is None or b is None else rest_high + c * b
                # low <= coefficient*v + rest <= high
                upper = None if high is None or rest_low is None else high - rest_low
                lower = None if low is None or rest_high is None else low - rest_high
                if coefficient < 0:
                    lower, upper = (None if upper is None else -upper,
                                    None if lower is None else -lower)
                    coefficient = -coefficient
                new_low = None if lower is None else -((-lower) // coefficient)
                new_high = None if upper is None else upper // coefficient
                current = box[name]
                if new_low is not None and (current[0] is None or new_low > current[0]):
                    current[0], changed = new_low, True
                if new_high is not None and (current[1] is None or new_high < current[1]):
                    current[1], changed = new_high, True
        if not changed:
            break
    return {name: tuple(bounds) for name, bounds in box.items()}


