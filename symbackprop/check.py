r"""Stage: (derivation, formula) -> :class:`FormulaCheck`, a hand-derived formula judged.

Input: a :class:`~symbackprop.derivation.Derivation` (the truth, element by
element) and a :class:`~symbackprop.formula.Formula` (what a person wrote).
Output: a frozen :class:`FormulaCheck` saying for every element of the gradient
the formula names whether it equals SymPy's, and for each wrong one the expected
sum, the given sum, and the terms missing and extra, printed back in the person's
own notation (``\delta_{1,1} a_{1,2}`` stays LaTeX, ``g[1,1]*w[1,1]`` stays plain).

Instantiating the formula:

- the left side names one element or, with free indices (``w_{i,j}``), every
  element of the gradient;
- indices are 1-based unless ``index_base=0``; an array takes the indices
  :class:`~symbackprop.naming.Notation` shows (size-1 batch/channel indices left
  out) or all of them;
- a sum without limits runs over every index value for which all the terms of the
  product exist; elements outside an array inside a sum with limits, or in a term
  without sums, are taken as 0 (zero padding) and mentioned in a note; an element
  with constant indices outside its array is an error.
- max pooling's indicator ``[x_ab = argmax z_ij]`` becomes the derivation's own
  :class:`~symbackprop.local_rules.IsWindowMax` when ``x_ab`` lies in the window
  of ``z_ij`` (read off ``derivation.z``), else 0.

Nothing here names a particular layer: the arrays come from ``derivation.x``,
``derivation.g``, ``derivation.params`` and the gradients from ``derivation.grads``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np
import sympy

from . import progress
from .algebra import product
from .derivation import Derivation, derive
from .formula import Element, Formula, FormulaError, Indicator, Linear, parse_formula, products
from .local_rules import IsWindowMax, WindowMax
from .naming import Notation, factor_sort_key, parse_element, to_grid
from .text import TextPrinter

__all__ = ["FormulaCheck", "ElementResult", "FormulaPrinter", "check_formula",
           "check_derivation", "AXIS_NAMES"]

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
#: Largest number of index combinations one product of the formula may run over.
MAX_ENUMERATION = 2_000_000


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

    @property
    def ok(self) -> bool:
        return not self.wrong

    @property
    def printer(self) -> "FormulaPrinter":
        return FormulaPrinter(self.formula, self.derivation.notation(self.index_base))

    def report(self, show: int = 3) -> str:
        """Plain text: ``correct`` with the count, or the first ``show`` wrong elements."""
        printer = self.printer
        shape = self.derivation.input_shape
        size = shape[2:] if len(shape) == 4 else shape[1:]  # (N, C, H, W) or (N, F)
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

    Terms and factors are ordered as in :class:`~symbackprop.text.TextPrinter`
    (``g x w b``, by upstream-gradient index); products use the person's separator
    (space, ``*``, ``\cdot``); fractions print as ``\frac{1}{4}`` in LaTeX formulas.
    """

    def __init__(self, formula: Formula, notation: Notation, **settings):
        super().__init__(notation, **settings)
        self.formula = formula

    def _print_Symbol(self, expr):
        parsed = parse_element(expr)
        if parsed is None:
            return str(expr)
        array, index = parsed
        return self.formula.spelling(array).format(self.notation.indices(array, index))

    def _print_Rational(self, expr):
        if expr.q == 1:
            return str(expr.p)
        sign = "-" if expr.p < 0 else ""
        if self.formula.latex:
            return f"{sign}\\frac{{{abs(expr.p)}}}{{{expr.q}}}"
        return f"{sign}{abs(expr.p)}/{expr.q}"

    def _print_IsWindowMax(self, expr):
        """``[x_{1,2} = \\arg\\max z_{1,1}]`` in a LaTeX formula, ``argmax`` in plain text."""
        text = super()._print_IsWindowMax(expr)
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


def check_formula(layer, input_size, text: str, *, batch: int = 1,
                  index_base: int = 1) -> FormulaCheck:
    r"""Check a hand-derived gradient formula for ``layer`` on an input of ``input_size``.

    Parameters
    ----------
    layer : a layer spec such as :class:`~symbackprop.layers.Conv2d`.
    input_size : int or (H, W)
    text : str
        ``LHS = RHS``, e.g. ``"\frac{\partial E}{\partial w_{i,j}} = \sum_m \sum_n
        \delta_{m,n} a_{i+m,j+n}"`` (see :func:`~symbackprop.formula.parse_formula`).
    batch : int
    index_base : 1 (default, like a textbook) or 0.

    Returns
    -------
    FormulaCheck
        ``.ok``, ``.checked``, ``.wrong`` and ``.report()``.

    Raises
    ------
    FormulaError
        A formula that cannot be read, names an array the layer does not have, has
        the wrong number of indices or an element outside its array.
    """
    formula = parse_formula(text)
    return check_derivation(derive(layer, input_size, batch), formula, index_base=index_base)


def check_derivation(derivation: Derivation, formula: Formula, index_base: int = 1) \
        -> FormulaCheck:
    """Check a parsed formula against a derivation (see :func:`check_formula`)."""
    if hasattr(derivation, "steps"):
        raise TypeError("check compares a formula with one layer's gradients; check each layer "
                        "of a chain on its own (symbackprop check conv2d ..., maxpool2d ...)")
    if index_base not in (0, 1):
        raise ValueError(f"index_base must be 0 or 1, got {index_base!r}")
    result = _Instance(derivation, formula, index_base).check()
    if not result.ok:  # a classic slip: a 0-based formula read 1-based, or the reverse
        other = 1 - index_base
        try:
            other_ok = _Instance(derivation, formula, other).check().ok
        except FormulaError:
            other_ok = False
        if other_ok:
            result = dataclasses.replace(result, notes=result.notes + (
                f"with indices starting at {other} (--index-base {other}) this formula is "
                f"correct",))
    return result


# -- instantiating a formula on one layer instance -----------------------------------
@dataclass(frozen=True)
class _Resolved:
    """An element of the formula matched with an array of the layer."""

    element: Element
    axes: tuple     # which axes of the array the written indices address
    indices: tuple  # (Linear, ...) one per axis in ``axes``
    grid: np.ndarray

    def full_index(self, values) -> tuple | None:
        """0-based index into the array for the written index values, or None if outside."""
        index = [0] * self.grid.ndim
        for axis, value in zip(self.axes, values, strict=True):
            if not 0 <= value < self.grid.shape[axis]:
                return None
            index[axis] = value
        return tuple(index)


class _Instance:
    def __init__(self, derivation: Derivation, formula: Formula, index_base: int):
        self.derivation, self.formula, self.base = derivation, formula, index_base
        arrays = {"x": derivation.x, "g": derivation.g, **derivation.params}
        self.grids = {name: to_grid(array) for name, array in arrays.items() if array is not None}
        self.notation = derivation.notation(index_base)
        self.notes: dict = {}

    def error(self, message: str, position: int) -> FormulaError:
        return FormulaError(message, self.formula.text, position)

    # -- matching names and indices ----------------------------------------------------
    def shown_axes(self, array: str, rank: int) -> tuple:
        # Notation drops size-1 batch/channel axes; with base 0 the indices it keeps
        # from (0, 1, ..., rank-1) are the axis numbers themselves.
        return Notation(shapes=self.derivation.shapes, index_base=0).indices(
            array, tuple(range(rank)))

    def resolve(self, element: Element, grid: np.ndarray | None = None) -> _Resolved:
        name = element.spelling.name
        if grid is None:
            if element.array == "z":
                raise self.error(f"{name} is the layer output; a gradient formula uses the "
                                 f"upstream gradient g = dL/dz instead", element.position)
            if element.array not in self.grids:
                raise self.error(
                    f"{name} ({_ARRAY_MEANING.get(element.array, element.array)}) is not part "
                    f"of this layer: {self.derivation.layer.describe()}", element.position)
            grid = self.grids[element.array]
        shown = self.shown_axes(element.array, grid.ndim)
        full = tuple(range(grid.ndim))
        subscript = element.subscript
        readings = [()] if subscript is None else [
            group for group in (subscript.parts, subscript.pieces) if group is not None]
        for reading in readings:
            for axes in (shown, full):
                if len(reading) == len(axes):
                    resolved = _Resolved(element, axes, tuple(reading), grid)
                    self.check_constant_range(resolved)
                    return resolved
        given = len(readings[0]) if readings else 0
        position = element.position if subscript is None else subscript.position
        also = f" (or all {len(full)}, {_shape_words(element.array, full, grid.shape)})" \
            if len(full) != len(shown) else ""
        if not shown:
            raise self.error(f"{name} is a single value here and takes no index{also}, but is "
                             f"written with {given}", position)
        raise self.error(
            f"{name} takes {len(shown)} ind{'ex' if len(shown) == 1 else 'ices'} here "
            f"({_shape_words(element.array, shown, grid.shape)}){also}, but is written "
            f"with {given}", position)

    def resolve_indicator(self, indicator: Indicator) -> _Resolved:
        """``[x_ab = argmax z_ij]`` as one element of a grid indexed by ``(a, b, i, j)``."""
        z = to_grid(self.derivation.z)
        if not all(isinstance(value, WindowMax) for value in z.flat):
            raise self.error(
                f"the indicator [x_ab = argmax z_ij] belongs to max pooling; "
                f"{self.derivation.layer.describe()} has none", indicator.position)
        candidate = self.resolve(indicator.candidate)
        output = self.resolve(indicator.output, z)
        grid = _IndicatorGrid(candidate, output)
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
                names = AXIS_NAMES.get(element.array, ())
                what = names[axis] if axis < len(names) else f"axis {axis}"
                written = element.spelling.format([v + self.base for v in values])
                raise self.error(
                    f"{written} does not exist: the {what} index of {element.spelling.name} "
                    f"runs from {self.base} to {self.base + size - 1}",
                    element.position)

    def gradient_elements(self):
        """``(0-based index, {free index: value})`` for every element the left side names."""
        gradient = self.formula.gradient
        if gradient.array == "z":
            raise self.error("the left side must be the gradient of the input, kernel or bias; "
                             "dL/dz is the upstream gradient g", gradient.position)
        if gradient.array not in self.derivation.grads:
            raise self.error(
                f"{gradient.spelling.name}: this layer has no gradient for "
                f"{_ARRAY_MEANING.get(gradient.array, gradient.array)} "
                f"({self.derivation.layer.describe()})", gradient.position)
        grid = to_grid(self.derivation.grads[gradient.array])
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
        return grid, found

    # -- the check ----------------------------------------------------------------------
    def check(self) -> FormulaCheck:
        gradient_grid, elements = self.gradient_elements()
        free = set(elements[0][1]) if elements else set()
        terms = [self.prepare(term, free) for term in products(self.formula.rhs,
                                                                  self.formula.text)]
        spelling = self.formula.gradient.spelling
        array = self.formula.gradient.array
        labels = [spelling.format(self.notation.indices(array, index)) for index, _ in elements]
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
        return FormulaCheck(formula=self.formula, derivation=self.derivation,
                            index_base=self.base, checked=len(elements),
                            label=labels[0] if len(labels) == 1 else spelling.format(()),
                            wrong=tuple(wrong),
                            notes=tuple(self.notes.values()))

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
        return term, resolved

    def check_bound(self, index: Linear | None, bound: set, position: int):
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

    def enumerate(self, term, resolved, values: dict):
        """Every product of symbols one term of the formula stands for."""
        variables = term.variables
        hard, soft = [], []
        for variable in variables:
            if variable.limited:
                hard.append((Linear.variable(variable.name) + variable.lower.scaled(-1), 0, None))
                hard.append((variable.upper + Linear.variable(variable.name).scaled(-1), 0, None))
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
        if np.prod([len(r) for r in ranges], dtype=float) > MAX_ENUMERATION:
            raise self.error("the sums of this term run over too many index values",
                             variables[0].position)
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
    """Max pooling's ``[x_ab = argmax z_ij]`` for every written ``(a, b)`` and ``(i, j)``.

    Indexed by the candidate's written indices followed by the output's; an element
    is the derivation's own :class:`~symbackprop.local_rules.IsWindowMax` when
    ``x_ab`` lies in ``z_ij``'s window, else 0.
    """

    def __init__(self, candidate: _Resolved, output: _Resolved):
        self.candidate, self.output = candidate, output
        self.split = len(candidate.axes)
        self.shape = tuple(candidate.grid.shape[a] for a in candidate.axes) + \
            tuple(output.grid.shape[a] for a in output.axes)
        self.ndim = len(self.shape)

    def __getitem__(self, index):
        element = self.candidate.grid[self.candidate.full_index(index[:self.split])]
        window, output_index = self.output.grid[self.output.full_index(index[self.split:])].args
        if element not in window:
            return sympy.Integer(0)
        return IsWindowMax(sympy.Integer(list(window).index(element)), window, output_index)

    def format(self, written) -> str:
        return (f"[{self.candidate.element.spelling.format(written[:self.split])} = argmax "
                f"{self.output.element.spelling.format(written[self.split:])}]")


def _shape_words(array: str, axes, shape) -> str:
    """``"row, column; it is 3 x 3"`` for the message about a wrong index count."""
    names = AXIS_NAMES.get(array, ())
    meaning = ", ".join(names[a] if a < len(names) else f"axis {a}" for a in axes)
    return f"{meaning}: {' x '.join(str(shape[a]) for a in axes)}"


def _bounds(variables, hard, soft) -> dict:
    """Smallest box of integer values the summation indices can take.

    ``hard`` (limits) and ``soft`` (elements inside their arrays) are
    ``(Linear, low, high)`` constraints, ``None`` meaning unbounded.  Soft
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


