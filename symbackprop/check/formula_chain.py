r"""A rule across the layers of a chain: the recurrences of the course notes, judged.

``\delta^{[l]} = W^{[l+1]T}\delta^{[l+1]} \odot g'(z^{[l]})`` (Ng),
``\delta^{l-1} = \delta^{l} \star \operatorname{rot}_{180}(W^{l}) \odot f'(z^{l-1})`` (the
CNN notes), ``\delta^{l-1} = \operatorname{upsample}(\delta^{l}) \odot f'(z^{l-1})`` with
pooling between: the left side is the error term at one layer boundary, the right side
mixes a later boundary's error term, weights and the activation derivative of the layers
between.  Such a rule spans more than one layer of the chain
(:class:`~symbackprop.core.layers.Sequential`), whose derivation
(:class:`~symbackprop.core.chain.ChainDerivation`) goes one layer at a time.

The truth is the chain's own derivation, composed: the left side's error term is written
in terms of the latest error term the rule names by substituting each layer's backward
step (``delta_in`` in terms of ``delta_out``), and every activation the rule or the truth
names is written in terms of the earliest of them by substituting each layer's forward
step.  The rule is then instantiated on those arrays by the evaluator of
:mod:`~symbackprop.check.formula_rules` (subclassed: names are the chain's arrays) and
compared element by element, symbolically or at random numeric points.

Where the superscripts put a name (:class:`_Reading`):

- the chain's numbering (as ``symbackprop latex`` prints a chain): every layer of the spec
  counts; ``a^{[k]}`` (``z^{[k]}`` alike) is layer k's output, ``\delta^{[k]}`` =
  dL/da^{[k]}, ``W^{[k]}`` layer k's weights;
- the course numbering (Ng's ``[l]``, the CNN notes' ``l``): a layer with weights (or a
  pooling or any other layer that is not element-wise) and the activation right after it
  are one layer k: ``z^{[k]}`` its pre-activation (the linear or convolution output),
  ``a^{[k]}`` = g(z^{[k]}) its output, ``\delta^{[k]}`` = ``dZ^{[k]}`` = dL/dz^{[k]},
  ``dA^{[k]}`` = dL/da^{[k]}, ``W^{[k]}``, ``b^{[k]}`` its parameters.  Layer 0 is the
  input (with an activation that comes first, its z^{[0]} is the input and a^{[0]} that
  activation's output).

Symbolic superscripts (``l``, ``[l]``, ``(l)``) are always the course numbering, and ``l``
takes every value at which all the rule's names exist (or the one asked for); layer
numbers are the chain's numbering when every name exists there, else the course
numbering (or the one asked for).  ``f``, ``g``, ``\phi`` are the activation whose input
the argument is (``g^{[k]\prime}``: layer k's), else the activation of the left side's
layer.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, replace

import numpy as np
import sympy

from symbackprop.check.formula import FormulaError
from symbackprop.check.formula_rules import (
    _EVALUATION_ERRORS,
    Call,
    Derivative,
    Name,
    RuleCheck,
    _check_side,
    _Evaluator,
    _map,
    _names,
    _unfit,
    _Variant,
    parse_rule,
)
from symbackprop.core.naming import Notation, to_grid

__all__ = ["check_across_layers", "NUMBERINGS", "reads_across"]

#: How layer numbers in a chain's rule are read (see the module docstring).
NUMBERINGS = ("chain", "course")
#: Most positions of ``l`` one check tries.
MAX_POSITIONS = 12


def _is_activation(step) -> bool:
    """Whether a chain step applies one function to each element (an activation),
    read off its derivation: same shape in and out, no parameters nor constants, and each
    output element a function of its own input element only."""
    derivation = step.derivation
    if derivation is None or derivation.params or derivation.constants:
        return False
    if tuple(derivation.x.shape) != tuple(derivation.z.shape):
        return False
    for symbol, output in zip(to_grid(derivation.x).flat, to_grid(derivation.z).flat,
                              strict=True):
        if output.free_symbols - {symbol} or symbol not in output.free_symbols:
            return False
    return True


@dataclass(frozen=True)
class _Place:
    """One numbered layer of a reading: where its arrays are in the chain."""

    number: int
    z: str                   # chain array of its pre-activation (a2)
    a: str                   # chain array of its output (a3)
    activation: int | None   # chain layer number of its activation
    weights: int | None      # chain layer number that holds its parameters
    layers: tuple            # the chain layers it spans


@dataclass(frozen=True)
class _Reading:
    """A numbering of the chain's layers (``chain`` or ``course``)."""

    numbering: str
    places: dict             # number -> _Place

    @classmethod
    def of(cls, derivation, numbering: str) -> "_Reading":
        steps = derivation.steps
        activations = [_is_activation(step) for step in steps]
        places = {}
        if numbering == "chain":
            places[0] = _Place(0, "a0", "a0", None, None, ())
            for number, active in enumerate(activations, 1):
                places[number] = _Place(number, f"a{number}", f"a{number}",
                                        number if active else None,
                                        None if active else number, (number,))
            return cls(numbering, places)
        k = 1
        if activations and activations[0]:
            places[0] = _Place(0, "a0", "a1", 1, None, (1,))
            k = 2
        else:
            places[0] = _Place(0, "a0", "a0", None, None, ())
        number = 1
        while k <= len(steps):
            if activations[k - 1]:  # an activation after an activation: a layer of its own
                places[number] = _Place(number, f"a{k - 1}", f"a{k}", k, None, (k,))
                k += 1
            elif k < len(steps) and activations[k]:
                places[number] = _Place(number, f"a{k}", f"a{k + 1}", k + 1, k, (k, k + 1))
                k += 2
            else:
                places[number] = _Place(number, f"a{k}", f"a{k}", None, k, (k,))
                k += 1
            number += 1
        return cls(numbering, places)

    @property
    def last(self) -> int:
        return max(self.places)

    def same_as(self, other: "_Reading") -> bool:
        return {k: (p.z, p.a, p.weights) for k, p in self.places.items()} == \
            {k: (p.z, p.a, p.weights) for k, p in other.places.items()}

    def words(self, derivation, number: int) -> str:
        """Layer ``number`` in the chain's terms, for notes."""
        place = self.places[number]
        if not place.layers:
            return "the chain's input a^{[0]}"
        layers = [derivation.steps[k - 1].layer.describe() for k in place.layers]
        which = (f"layer {place.layers[0]}" if len(place.layers) == 1 else
                 f"layers {place.layers[0]}-{place.layers[-1]}")
        return f"{which} of the chain ({', '.join(layers)})"


def _activation(key: str) -> int | None:
    """``k`` of the chain array ``a{k}`` (an activation), else None."""
    found = re.fullmatch(r"a(\d+)", key)
    return int(found.group(1)) if found else None


def _parameter_layer(key: str) -> int:
    """The layer number of a chain parameter (``w3``, ``weight2``)."""
    return int(re.search(r"(\d+)$", key).group(1))


def _shown(name: Name, text: str) -> str:
    """A name as written in ``text``, with its backslash (``\\delta``)."""
    if "\\" + name.written in text:
        return "\\" + name.written
    return name.written


def _labels(equation) -> tuple:
    """``(numbers, offsets)``: the layer numbers and the ``l`` offsets the rule writes."""
    numbers, offsets = set(), set()
    for name in _names(equation.left) + _names(equation.rights):
        if name.number is not None:
            numbers.add(name.number)
        if name.layer is not None:
            offsets.add(name.layer)
    for call in _calls(equation.rights):
        if call.number is not None:
            numbers.add(call.number)
        if call.layer is not None:
            offsets.add(call.layer)
    return numbers, offsets


def _calls(node) -> list:
    """Every :class:`Call` of an expression tree."""
    found = []
    if isinstance(node, Call):
        found.append(node)
    if isinstance(node, tuple):
        for item in node:
            found += _calls(item)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for item in dataclasses.fields(node):
            found += _calls(getattr(node, item.name))
    return found


def _numbered_channels(node):
    """``a^{(2)}`` in a chain: layer 2 (a chain's names say their layer in parentheses as
    in brackets), unless a layer is written too."""
    def change(name: Name) -> Name:
        if name.number is None and name.layer is None and len(name.channels) == 1 and \
                not name.channels[0].coefficients:
            label = name.channels[0].constant
            return replace(name, channels=(), number=label, script=f"^{{({label})}}")
        return name
    return _rename(node, change)


def _rename(node, change):
    if isinstance(node, Name):
        return change(node)
    if isinstance(node, tuple):
        return tuple(_rename(item, change) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type) and \
            not isinstance(node, (str, int)):
        fields = {item.name: _rename(getattr(node, item.name), change)
                  for item in dataclasses.fields(node)
                  if item.name not in ("position", "text")}
        return replace(node, **fields)
    return node


def reads_across(chain_derivation, equation, parts=None) -> bool:
    """Whether a chain's rule needs this module: it spans layers (:func:`spans_layers`), or
    names the chain's numbering cannot place (weights at a layer without them)."""
    if spans_layers(equation):
        return True
    equation = _numbered_channels(equation)
    numbers, _ = _labels(equation)
    if not numbers:
        return False
    reading = _Reading.of(chain_derivation, "chain")
    return _placement_error(chain_derivation, reading, equation, None,
                            parts=parts) is not None or \
        any(name.name in ("da",) for name in _names(equation.rights))


def uses_a_later_error_term(equation) -> bool:
    """Whether a chain's formula gives its left side from a later layer's error term
    (``dL/da^{[1]} = ... \\delta^{[3]}``), or writes ``l``: a recurrence across layers,
    whatever its form (a sum of products of elements too)."""
    equation = _numbered_channels(equation)
    numbers, offsets = _labels(equation)
    if offsets or any(call.number is not None for call in _calls(equation.rights)):
        return True
    left = equation.left.bottom if isinstance(equation.left, Derivative) else equation.left
    if not isinstance(left, Name) or left.number is None:
        return False
    own = left.number + 1 if left.name in ("x", "g", "dx") else left.number
    return any(name.name in ("g", "da") and name.number is not None and name.number > own
               for name in _names(equation.rights))


def spans_layers(equation) -> bool:
    """Whether a chain's rule, read from its text alone, is about more than one layer: a
    symbolic ``l``, a labelled activation (``g^{[1]\\prime}``), names more than one layer
    apart, or names away from the one layer its left side is about."""
    equation = _numbered_channels(equation)
    numbers, offsets = _labels(equation)
    if offsets:
        return True
    if any(call.number is not None for call in _calls(equation.rights)):
        return True
    if not numbers:
        return False
    if max(numbers) - min(numbers) > 1:
        return True
    left = equation.left.bottom if isinstance(equation.left, Derivative) else equation.left
    if isinstance(left, Name) and left.number is not None:
        # the one layer a rule about one layer is about: names at it and its input only
        layer = left.number + 1 if left.name in ("x", "g", "dx") else left.number
        if any(number not in (layer - 1, layer) for number in numbers):
            return True
    return False


def _placement_error(derivation, reading, equation, l_value,
                     inferring: bool = False, parts=None) -> FormulaError | None:
    """Why ``equation`` cannot be read at ``l_value`` in ``reading`` (None: it can).
    ``inferring`` (a value of l not asked for): a derivative of a function
    (``f'(z^{l})``, ``\\sigma'(z^{l})``) must also be taken at an activation's input."""
    span = _Resolver(derivation, reading, l_value, equation, parts)
    steps = derivation.steps
    try:
        for name in _names(equation.left) + _names(equation.rights):
            if name.name != "loss":
                span.key(name)
        span.left_key(equation.left)
        for call in _calls(equation.rights):
            if call.function == "f" and call.prime:
                argument = call.args[0] if len(call.args) == 1 else None
                source = span.key(argument) if isinstance(argument, Name) else None
                span.activation_of_call(call, source, equation.left)
            if inferring and call.prime and len(call.args) == 1 and \
                    isinstance(call.args[0], Name):
                key = span.key(call.args[0])
                number = _activation(key) if _activation(key) is not None else len(steps)
                if number >= len(steps) or not _is_activation(steps[number]):
                    return FormulaError(f"{call.written}' is taken at the input of no "
                                        f"activation", equation.text, call.position)
    except FormulaError as error:
        return error
    return None


class _Resolver:
    """Names of a rule -> the chain's arrays, in one reading at one value of ``l``."""

    def __init__(self, derivation, reading: _Reading, l_value, equation, parts=None):
        self.derivation, self.reading, self.l_value, self.text = \
            derivation, reading, l_value, equation.text
        self.equation = equation
        self.steps = derivation.steps
        self.parts = parts  # step -> the kind's FormulaParts (its own names), or None

    def quantities(self, step) -> dict:
        if self.parts is None or step.derivation is None:
            return {}
        return dict(getattr(self.parts(step), "quantities", {}) or {})

    def quantity_layer(self, name) -> int | None:
        """The chain layer whose kind gives ``name`` a meaning of its own (batch norm's
        ``\\gamma^{[2]}``), or None for a generic name."""
        having = [step.number for step in self.steps if name.name in self.quantities(step)]
        if not having:
            return None
        if name.number is None and name.layer is None:
            if len(having) == 1:
                return having[0]
            raise FormulaError(f"{_shown(name, self.text)}: layers "
                               f"{', '.join(map(str, having))} have a {name.written}; say "
                               f"which with a superscript",
                               self.text, name.position)
        place = self.place(name)
        inside = [k for k in place.layers if k in having]
        if not inside:
            raise FormulaError(
                f"{_shown(name, self.text)}{name.script}: layer {place.number} "
                f"({self.reading.words(self.derivation, place.number)}) has no "
                f"{name.written}; the layers with one: {', '.join(map(str, having))}",
                self.text, name.position)
        return inside[0]

    def number(self, name) -> int:
        if name.layer is not None:
            if self.l_value is None:
                raise FormulaError(f"{_shown(name, self.text)}{name.script}: give l a value "
                                   f"(--layer L)", self.text, name.position)
            return self.l_value + name.layer
        if name.number is not None:
            return name.number
        raise FormulaError(
            f"{_shown(name, self.text)}: in a chain every name says its layer: a^{{[1]}}, "
            f"\\delta^{{[2]}}, W^{{[2]}}, or with l: \\delta^{{l-1}}, W^{{l}}", self.text,
            name.position)

    def range_words(self) -> str:
        count = len(self.steps)
        if self.reading.numbering == "chain":
            return f"the chain has layers 1 to {count} (a^{{[0]}} is its input)"
        return (f"in the course numbering (a layer and the activation after it are one "
                f"layer) the chain's {count} layers are layers 1 to {self.reading.last}"
                + (" (layer 0: its input and the activation on it)"
                   if self.reading.places[0].activation else " (layer 0: its input)"))

    def place(self, name) -> _Place:
        number = self.number(name)
        if number not in self.reading.places:
            label = name.script or f"^{{[{number}]}}"
            at = f" (l = {self.l_value}: layer {number})" if name.layer is not None else ""
            raise FormulaError(f"{_shown(name, self.text)}{label}{at}: {self.range_words()}",
                               self.text, name.position)
        return self.reading.places[number]

    def key(self, name) -> str:
        """The chain array ``name`` stands for (a3, delta3, w3, b3)."""
        canonical = name.name
        if canonical.startswith("key:"):
            return canonical[4:]
        own = self.quantity_layer(name)
        if own is not None:
            source = self.quantities(self.steps[own - 1])[canonical]
            step = self.steps[own - 1]
            if isinstance(source, str) and source in step.names:  # gamma: the weight
                return step.names[source]
            return f"{canonical}@{own}"
        place = self.place(name)
        if canonical in ("x", "o"):
            return place.a
        if canonical == "net":
            return place.z
        if canonical == "g":
            return "delta" + (place.z if self.reading.numbering == "course" else place.a)[1:]
        if canonical == "da":
            return "delta" + place.a[1:]
        if canonical in ("w", "b", "dw", "db"):
            array = canonical[-1]
            layer = place.weights
            if layer is None or array not in self.steps[layer - 1].layer.parameter_names:
                having = sorted(k for k, p in self.reading.places.items()
                                if p.weights is not None
                                and array in self.steps[p.weights - 1].layer.parameter_names)
                label = name.script or f"^{{[{place.number}]}}"
                at = f" (l = {self.l_value}: layer {place.number})" \
                    if name.layer is not None else ""
                words = "weights" if array == "w" else "bias"
                raise FormulaError(
                    f"{_shown(name, self.text)}{label}{at}: layer {place.number} has no "
                    f"{words} "
                    f"({self.reading.words(self.derivation, place.number)}); the layers "
                    f"with {words}: {', '.join(map(str, having)) or 'none'}"
                    f" ({self.reading.numbering} numbering)", self.text, name.position)
            return f"{array}{layer}"
        if canonical == "dx":
            return "delta" + place.a[1:]
        raise FormulaError(f"{_shown(name, self.text)}: this name is not read in a rule "
                           f"across a chain's layers (the names: a, z, \\delta, dZ, dA, W, b)",
                           self.text, name.position)

    def default_names(self, latex: bool) -> dict:
        """Chain array -> its name in this reading, for arrays the rule does not write
        (``z^{[1]}``, ``\\delta^{[l+1]}``)."""
        scripts = [name.script for name in _names(self.equation.left)
                   + _names(self.equation.rights) if name.script]
        opening = next((script[2] for script in scripts if script[2:3] in "[("), "")
        closing = {"[": "]", "(": ")"}.get(opening, "")

        def label(number: int) -> str:
            offset = number - self.l_value
            return "^{" + opening + "l" + (f"{offset:+d}" if offset else "") + closing + "}"
        symbolic = self.l_value is not None
        found = {}
        delta = "\\delta" if latex else "delta"
        for number, place in sorted(self.reading.places.items(), reverse=True):
            text = label(number) if symbolic else f"^{{{opening or '['}{number}{closing or ']'}}}"
            found[place.a] = "a" + text
            if place.z != place.a:
                found[place.z] = "z" + text
            course = self.reading.numbering == "course"
            found["delta" + (place.z if course else place.a)[1:]] = delta + text
            if place.weights is not None:
                step = self.steps[place.weights - 1]
                # a kind's own name for a parameter (batch norm's gamma for its weight)
                own = {source: name for name, source in self.quantities(step).items()
                       if isinstance(source, str)}
                for array in step.layer.parameter_names:
                    shown = own.get(array, {"w": "W"}.get(array, array))
                    if latex and shown in ("gamma", "beta"):
                        shown = "\\" + shown
                    found[f"{array}{place.weights}"] = shown + text
        return found

    def left_key(self, left) -> str:
        """The chain array whose gradient the left side asks for: delta2 (dL/da2), w3."""
        if isinstance(left, Derivative):
            if left.top is not None:
                raise FormulaError("the left side is a gradient of the loss", self.text,
                                   left.position)
            name = left.bottom
            if name.name in ("g", "da"):
                raise FormulaError(f"dL/d{name.written} is an error term: write "
                                   f"{_shown(name, self.text)}{name.script} = ...", self.text,
                                   name.position)
            key = self.key(name)
            return "delta" + key[1:] if _activation(key) is not None else key
        if isinstance(left, Call):
            raise FormulaError("the definition of f' is checked on its own layer "
                               "(symbackprop check with that layer)", self.text, left.position)
        key = self.key(left)
        return key

    def activation_of_call(self, call: Call, source: str | None, left) -> int:
        """The chain layer whose activation ``f``/``g`` of ``call`` is."""
        if call.number is not None or call.layer is not None:
            number = call.number if call.number is not None else (
                None if self.l_value is None else self.l_value + call.layer)
            if number is None:
                raise FormulaError("give l a value (--layer L)", self.text, call.position)
            place = self.reading.places.get(number)
            if place is None or place.activation is None:
                raise FormulaError(
                    f"{call.written} of layer {number}: "
                    + (self.range_words() if place is None else
                       f"layer {number} ({self.reading.words(self.derivation, number)}) has "
                       f"no activation"), self.text, call.position)
            return place.activation
        if source is not None and _activation(source) is not None:
            following = int(source[1:]) + 1
            if following <= len(self.steps) and _is_activation(self.steps[following - 1]):
                return following
        default = self.default_activation(left)
        if default is None:
            raise FormulaError(
                f"{call.written}'(...): the layer of the left side has no activation, and "
                f"the argument is not the input of one", self.text, call.position)
        return default

    def default_activation(self, left) -> int | None:
        """The activation between the left side's boundary (for a parameter's gradient:
        its layer's output) and the next layer."""
        key = self.left_key(left)
        boundary = int(key[5:]) if key.startswith("delta") else _parameter_layer(key)
        if boundary < len(self.steps) and _is_activation(self.steps[boundary]):
            return boundary + 1
        return None


@dataclass(frozen=True)
class _SpanLayer:
    text: str

    def describe(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Span:
    """What :func:`~symbackprop.check.formula_rules._check_side` reads of a derivation, for
    a rule across a chain's layers, and what the chain evaluator needs."""

    layer: _SpanLayer
    shapes: dict
    grads: dict           # left key -> truth grid
    grids: dict           # chain array -> grid, activations forward-substituted
    g: object
    resolver: _Resolver
    left_key: str
    equation: object
    steps: tuple
    inputs_of: dict       # activation output key -> its input key (a3 -> a2)
    substitution: dict = dataclasses.field(default_factory=dict)  # symbol -> value
    params: dict = dataclasses.field(default_factory=dict)
    constants: dict = dataclasses.field(default_factory=dict)


class _ChainEvaluator(_Evaluator):
    """The rule evaluator on a chain's arrays: names are resolved by layer number."""

    def __init__(self, context):
        span = context.derivation
        self.context = context
        self.derivation = span
        self.span = span
        self.grids = dict(span.grids)
        self.shapes = dict(span.shapes)
        self.numbers = {}
        self.elementwise = bool(span.inputs_of)
        self.notation = Notation(shapes=self.shapes, index_base=0)
        self.sum_depth = 0

    def role(self, name) -> str:
        key = self.span.resolver.key(name)
        if "@" in key and key not in self.grids and key not in self.numbers:
            self.quantity(key)
        return key

    def quantity(self, key: str):
        """A kind's own name (``xhat@2``: layer 2's normalised input), in the chain's
        symbols, from the kind's :attr:`FormulaParts.quantities`."""
        name, number = key.split("@")
        step = self.span.steps[int(number) - 1]
        own = step.derivation
        source = self.span.resolver.quantities(step)[name]
        if isinstance(source, str):
            value = to_grid({**own.params, **own.constants}[source])
        else:
            value = source(own)
        renamed = dict(zip(to_grid(own.x).flat, to_grid(step.input).flat, strict=True))
        renamed.update(zip(to_grid(own.g).flat, to_grid(step.delta_out).flat, strict=True))
        for array, symbols in own.params.items():
            renamed.update(zip(to_grid(symbols).flat,
                               to_grid(step.params[step.names[array]]).flat, strict=True))

        def chain(expression):
            return sympy.sympify(expression).xreplace(renamed).xreplace(
                self.span.substitution)
        if isinstance(value, np.ndarray):
            grid = np.empty(value.shape, dtype=object)
            for index in np.ndindex(*value.shape):
                grid[index] = chain(value[index])
            self.grids[key] = grid
            self.shapes[key] = grid.shape
        else:
            self.numbers[key] = chain(value)

    def grid(self, role: str, name) -> np.ndarray:
        if role not in self.grids:
            raise FormulaError(f"{_shown(name, self.span.resolver.text)}{name.script}: this "
                               f"array is not part of the layers this rule spans", "",
                               name.position)
        return self.grids[role]

    def kind(self, role: str) -> str:
        if role.startswith("delta"):
            return "g"
        if _activation(role) is not None:
            return "x"
        found = re.fullmatch(r"([wb])\d+", role)
        return found.group(1) if found else role

    def swapped(self, role: str) -> str:
        variant = self.context.variant
        if variant.output_as_input and role in self.span.inputs_of:
            return self.span.inputs_of[role]
        if variant.input_as_output:
            outputs = {value: key for key, value in self.span.inputs_of.items()}
            return outputs.get(role, role)
        return role

    def target(self, equation):
        left = equation.left
        written = left.bottom if isinstance(left, Derivative) else left
        return self.span.left_key, self.span.grads[self.span.left_key], written

    def written_names(self, equation) -> dict:
        latex = "\\" in equation.text
        found = {}
        written = {}
        for name in _names(equation.left) + _names(equation.rights):
            if name.name == "loss":
                continue
            try:
                key = self.role(name)
            except FormulaError:
                continue
            text = name.written
            if text in ("delta", "sigma", "gamma", "beta") and latex:
                text = "\\" + text
            written.setdefault(key, text + name.script)  # in a chain the layer is needed
        found.update(self.span.resolver.default_names(latex))
        found.update(written)
        return found

    def derivative(self, node, env):
        if node.top is None:
            key = self.role(node.bottom)
            if _activation(key) is not None:
                return self.element(replace(node.bottom, name="key:delta" + key[1:]), env)
        raise FormulaError("in a rule across a chain's layers a derivative on the right side "
                           "is dL/da or dL/dz of a layer (its error term)", "", node.position)

    def elementwise_call(self, node, env):
        wanted = self.context.variant.f_argument
        if node.function != "f" and wanted and node.prime and len(node.args) == 1 and \
                isinstance(node.args[0], Name):  # sigma'(z) at the right layer's z
            node = replace(node, args=(replace(node.args[0], name="key:" + wanted),))
        if node.function != "f":
            return super().elementwise_call(node, env)
        if len(node.args) != 1:
            raise FormulaError(f"{node.written} takes one argument", "", node.position)
        wanted = self.context.variant.f_argument
        argument_node = node.args[0]
        if wanted and node.prime and isinstance(argument_node, Name):
            argument_node = replace(argument_node, name="key:" + wanted)
            layer = self.span.resolver.default_activation(self.span.equation.left)
        else:
            layer = None
        argument = self.value(argument_node, env)
        if layer is None:
            layer = self.span.resolver.activation_of_call(node, argument.source,
                                                          self.span.equation.left)
        step = self.span.steps[layer - 1]
        x0 = to_grid(step.derivation.x).flat[0]
        z0 = to_grid(step.derivation.z).flat[0]
        expression = z0
        for _ in range(node.prime):
            expression = sympy.diff(expression, x0)
        return self.powered(node, _map(lambda a: expression.xreplace({x0: a}), argument), env)


def _composed(derivation, low: int, high: int, skip: frozenset = frozenset()) -> dict:
    """``{k: grid of delta_k in terms of delta_high}`` for ``low <= k < high``; the chain
    layers in ``skip`` (activations) taken as passing their error term on unchanged."""
    steps = derivation.steps
    found = {}
    replacement = {}  # the symbols of delta_{k+1} -> their values in terms of delta_high
    for k in range(high - 1, low - 1, -1):
        step = steps[k]  # layer k + 1: its delta_in is delta_k, in terms of delta_{k+1}
        grid = _substituted(to_grid(step.delta_out if k + 1 in skip else step.delta_in),
                            replacement)
        found[k] = grid
        if k >= 1:  # delta_k's symbols are layer k's delta_out
            replacement = dict(zip(to_grid(steps[k - 1].delta_out).flat, grid.flat,
                                   strict=True))
    return found


def _forward(derivation, low: int, high: int) -> dict:
    """``{symbol of a_k: its value}`` for ``low < k <= high`` where layer ``k`` is an
    activation: ``a^{[2]} = sigmoid(a^{[1]})``, so that a rule may write either.  The
    output of any other layer stays a variable of its own: a rule equal to the truth with
    it free is equal for every value it takes (and the truth stays readable)."""
    steps = derivation.steps
    replacement = {}
    for k in range(low + 1, high + 1):
        step = steps[k - 1]
        if not _is_activation(step):
            continue
        values = [sympy.sympify(value).xreplace(replacement) for value in to_grid(step.z).flat]
        replacement.update(zip(to_grid(step.output).flat, values, strict=True))
    return replacement


def _substituted(grid, replacement: dict) -> np.ndarray:
    out = np.empty(grid.shape, dtype=object)
    for index in np.ndindex(*grid.shape):
        out[index] = sympy.sympify(grid[index]).xreplace(replacement)
    return out


def _span(derivation, reading: _Reading, l_value, equation, right, parts=None) -> tuple:
    """``(span, variants, candidates)`` for one right side at one value of l."""
    resolver = _Resolver(derivation, reading, l_value, equation, parts)
    steps = derivation.steps
    left_key = resolver.left_key(equation.left)
    keys = {}
    for name in _names(right):
        if name.name != "loss":
            keys[name] = resolver.key(name)
    for node in _derivatives(right):
        if node.top is None:
            key = resolver.key(node.bottom)
            keys[node] = "delta" + key[1:] if _activation(key) is not None else key
    deltas = sorted({int(key[5:]) for key in keys.values() if key.startswith("delta")})
    if not deltas:
        raise FormulaError("the right side never uses an error term (\\delta, dZ, dL/dz): a "
                           "gradient of the loss is always a multiple of one", equation.text,
                           getattr(right, "position", 0))
    high = deltas[-1]
    if left_key in keys.values():
        written = next(name for name, key in keys.items() if key == left_key)
        raise FormulaError(f"{_shown(written, equation.text)}{written.script} is what this rule "
                           f"computes (its left side); the right side gives it from a later "
                           f"layer's error term", equation.text, written.position)
    if left_key.startswith("delta"):
        boundary = int(left_key[5:])
        if high <= boundary:
            written = next(name for name, key in keys.items() if key == f"delta{high}")
            raise FormulaError(
                f"{getattr(written, 'written', 'the error term')}"
                f"{getattr(written, 'script', '')} is the error term at or before the left "
                f"side's ({'the same one' if high == boundary else 'an earlier one'}): a "
                f"rule gives an error term from a later layer's", equation.text,
                getattr(written, "position", 0))
        start = boundary
    else:
        layer = _parameter_layer(left_key)
        start = layer
        boundary = layer - 1
        if high < layer:
            raise FormulaError(f"the gradient of layer {layer}'s parameters needs its error "
                               f"term \\delta^{{[{layer}]}} or a later one", equation.text, 0)
    composed = _composed(derivation, start, high)
    if left_key.startswith("delta"):
        truth = composed[boundary] if boundary < high else None
    else:
        step = steps[_parameter_layer(left_key) - 1]
        truth = to_grid(step.param_grads[left_key])
        if start < high:
            replacement = dict(zip(to_grid(step.delta_out).flat, composed[start].flat,
                                   strict=True))
            truth = _substituted(truth, replacement)
    actives = [k for k in range(boundary + 1, high + 1) if _is_activation(steps[k - 1])]
    # the activations named, and those the truth depends on, in terms of the earliest
    mentioned = {_activation(key) for key in keys.values() if _activation(key) is not None}
    low = min(mentioned | {boundary})
    top = max(mentioned | {high - 1, boundary})
    forward = _forward(derivation, low, top)
    truth = _substituted(truth, forward)
    grids = {}
    for number in range(0, len(steps) + 1):
        symbols = to_grid(steps[0].input) if number == 0 else to_grid(steps[number - 1].output)
        grids[f"a{number}"] = _substituted(symbols, forward) if number > low else symbols
    for k, grid in composed.items():
        grids[f"delta{k}"] = _substituted(grid, forward)
    grids[f"delta{high}"] = to_grid(steps[high - 1].delta_out)
    for step in steps:
        for name, array in step.params.items():
            grids[name] = to_grid(array)
    shapes = dict(derivation.shapes)
    inputs_of = {f"a{k}": f"a{k - 1}" for k in actives}
    first, last = boundary + 1, high
    names = " -> ".join(steps[k - 1].layer.describe() for k in range(first, last + 1))
    which = f"layer {first}" if first == last else f"layers {first}-{last}"
    substitution = dict(forward)
    for k, grid in composed.items():
        if k >= 1:
            substitution.update(zip(to_grid(steps[k - 1].delta_out).flat,
                                    _substituted(grid, forward).flat, strict=True))
    span = _Span(layer=_SpanLayer(f"{names} ({which} of the chain)"), shapes=shapes,
                 grads={left_key: truth}, grids=grids, g=grids[f"delta{high}"],
                 resolver=resolver, left_key=left_key, equation=equation, steps=steps,
                 inputs_of=inputs_of, substitution=substitution)
    candidates = ()
    if actives and left_key.startswith("delta"):
        forgotten = _composed(derivation, start, high, frozenset(actives))[boundary]
    elif actives and start < high:  # a parameter's gradient through an activation
        step = steps[_parameter_layer(left_key) - 1]
        skipped = _composed(derivation, start, high, frozenset(actives))[start]
        forgotten = _substituted(to_grid(step.param_grads[left_key]), dict(zip(
            to_grid(step.delta_out).flat, skipped.flat, strict=True)))
    if actives and (left_key.startswith("delta") or start < high):
        candidates = (("the f' factor forgotten",
                       "between these layers the error term passes through an activation: "
                       "its derivative, f'(z) (the layer's pre-activation), multiplies it "
                       "element by element (\\odot f'(z)); this rule leaves it out",
                       _substituted(forgotten, forward)),)
    variants = ()
    default = resolver.default_activation(equation.left)
    if default is not None:
        variants = (("f' at the wrong layer's z",
                     f"f' is taken at the pre-activation of the left side's layer, "
                     f"z = a^{{[{default - 1}]}} in the chain's numbering (the input of "
                     f"{steps[default - 1].layer.describe()}); this rule took it at another "
                     f"layer's", _Variant(f_argument=f"a{default - 1}")),)
    return span, variants, candidates


def _derivatives(node) -> list:
    found = []
    if isinstance(node, Derivative):
        found.append(node)
    if isinstance(node, tuple):
        for item in node:
            found += _derivatives(item)
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        for item in dataclasses.fields(node):
            found += _derivatives(getattr(node, item.name))
    return found


def _position_note(derivation, reading: _Reading, l_value, equation) -> str:
    numbers, offsets = _labels(equation)
    used = sorted({l_value + offset for offset in offsets} | numbers) if offsets \
        else sorted(numbers)
    places = "; ".join(
        (f"l{offset:+d}" if offset else "l") + f" = {l_value + offset}: "
        + reading.words(derivation, l_value + offset)
        for offset in sorted(offsets)) if offsets else "; ".join(
        f"[{number}] = {reading.words(derivation, number)}" for number in used
        if number in reading.places)
    if reading.numbering == "course":
        how = ("course numbering: a layer and the activation after it are one layer, "
               "z its pre-activation, a its output, \\delta = dZ = dL/dz")
    else:
        how = "chain's numbering: every layer counts, \\delta^{[k]} = dL/da^{[k]}"
    at = f"at l = {l_value}, " if offsets else ""
    return f"checked {at}in the {how}; {places}"


def check_across_layers(chain_derivation, text: str, *, index_base: int = 1,
                        parameters=None, at_layer: int | None = None,
                        numbering: str | None = None, seed: int = 0,
                        names=(), parts=None) -> list:
    """Judge a rule across a chain's layers (see the module docstring).

    ``parameters``: ``step -> {letter: value}`` (the kinds' implicit letters).
    ``at_layer``: the value of a symbolic ``l`` (None: every value at which the rule's
    names exist).  ``numbering``: ``"chain"`` or ``"course"`` for layer numbers (None:
    the chain's when it places every name).  Returns ``[(title, RuleCheck), ...]``, one
    per right side and value of ``l``; the title says which (``""`` for one).
    """
    if numbering is not None and numbering not in NUMBERINGS:
        raise FormulaError(f"numbering: one of {', '.join(NUMBERINGS)}, not {numbering!r}",
                           text, 0)
    chosen = numbering is None
    equation = _numbered_channels(parse_rule(text, names))
    numbers, offsets = _labels(equation)
    if numbers and offsets:
        name = next(n for n in _names(equation.left) + _names(equation.rights)
                    if n.number is not None)
        raise FormulaError(f"{_shown(name, text)}{name.script}: this rule mixes layer numbers and "
                           f"l; write all with l (\\delta^{{l-1}}, W^{{l}}) or all with "
                           f"numbers", text, name.position)
    if at_layer is not None and not offsets:
        raise FormulaError(f"--layer {at_layer}: this rule writes no l (its layers are "
                           f"numbered)", text, 0)
    if offsets:
        reading = _Reading.of(chain_derivation, numbering or "course")
        if at_layer is not None:
            error = _placement_error(chain_derivation, reading, equation, at_layer, parts=parts)
            if error is not None:
                raise FormulaError(f"at l = {at_layer} (--layer): {error.message}", text,
                                   error.position)
            positions = [at_layer]
        else:
            low = -min(offsets)
            candidates = range(low, reading.last - max(offsets) + 1)
            positions = [value for value in candidates
                         if _placement_error(chain_derivation, reading, equation, value,
                                             inferring=True, parts=parts) is None]
            positions = positions[:MAX_POSITIONS]
            if not positions:
                value = low if low in reading.places else min(reading.places)
                error = _placement_error(chain_derivation, reading, equation, value,
                                         parts=parts) or \
                    FormulaError("no value of l places every name of this rule", text, 0)
                raise FormulaError(f"no value of l fits this chain (at l = {value}: "
                                   f"{error.message})", text, error.position)
    else:
        chain_reading = _Reading.of(chain_derivation, "chain")
        first_error = None
        if numbering is None:
            first_error = _placement_error(chain_derivation, chain_reading, equation, None,
                                           parts=parts)
            numbering = "chain" if first_error is None else "course"
        reading = chain_reading if numbering == "chain" else \
            _Reading.of(chain_derivation, "course")
        error = _placement_error(chain_derivation, reading, equation, None, parts=parts)
        if error is not None:  # in neither numbering: the chain's own words, then the course's
            if first_error is not None and not reading.same_as(chain_reading):
                course = _Resolver(chain_derivation, reading, None, equation).range_words()
                raise FormulaError(f"{first_error.message}; {course}", text,
                                   first_error.position)
            raise FormulaError(error.message, text, error.position)
        positions = [None]
    results = []
    failures = []
    for value in positions:
        for right in equation.rights:
            try:
                results.append((value, _check_at(chain_derivation, reading, value, equation,
                                                  right, index_base, parameters, seed, parts)))
            except FormulaError as error:
                if len(positions) == 1 or at_layer is not None:
                    raise
                # one value of l where the rule's arrays do not fit: wrong there
                failures.append(error)
                results.append((value, RuleCheck(
                    text=equation.text, layer=f"the chain at l = {value}", label="",
                    checked=0, wrong=(), how="", index_base=index_base,
                    shape_problem=f"at l = {value} this rule does not fit the chain: "
                                  f"{error.message}",
                    notes=(_position_note(chain_derivation, reading, value, equation),))))
    if failures and len(failures) == len(results):
        raise failures[0]
    if not offsets and chosen and reading.numbering == "chain" and \
            any(not check.ok for _, check in results):
        other = _Reading.of(chain_derivation, "course")
        if not other.same_as(reading) and \
                _placement_error(chain_derivation, other, equation, None, parts=parts) is None:
            try:
                retry = [_check_at(chain_derivation, other, None, equation, right,
                                   index_base, parameters, seed, parts)
                         for right in equation.rights]
            except (FormulaError, *_EVALUATION_ERRORS):
                retry = []
            if retry and all(check.ok for check in retry):
                note = ("in the course numbering (a layer and the activation after it are one "
                        "layer, \\delta^{[k]} = dL/dz^{[k]}; --numbering course) this rule is "
                        "correct")
                results = [(value, replace(check, notes=check.notes + (note,)))
                           for value, check in results]
    titled = []
    for value, check in results:
        title = f"l = {value}" if value is not None and len(positions) > 1 else ""
        titled.append((title, check))
    return titled


def _routes(span, parts) -> tuple:
    """The chain's layers whose ``upsample`` is their own backward (max pooling), as
    :attr:`~symbackprop.check.formula_rules._Context.routes`: each layer's error term
    handed back, written with its input's values (``[relu(z) = argmax ...]``)."""
    if parts is None:
        return ()
    return tuple((to_grid(step.delta_out),
                  _substituted(to_grid(step.delta_in), span.substitution))
                 for step in span.steps
                 if step.derivation is not None and step.delta_in is not None
                 and getattr(parts(step), "routes_upsample", False))


def _check_at(derivation, reading, l_value, equation, right, index_base, parameters,
              seed, parts=None) -> RuleCheck:
    try:
        span, variants, candidates = _span(derivation, reading, l_value, equation, right, parts)
        found = {}
        first = int(span.left_key[5:]) + 1 if span.left_key.startswith("delta") \
            else _parameter_layer(span.left_key)
        for step in derivation.steps[first - 1:]:
            if parameters and step.derivation is not None and not _is_activation(step):
                found = dict(parameters(step))
                break
        check = _check_side(span, equation, right, index_base, found, seed, None,
                            across={"make_evaluator": _ChainEvaluator, "candidates": candidates,
                                    "variants": variants, "routes": _routes(span, parts)})
    except _EVALUATION_ERRORS as error:
        raise _unfit(error, equation.text) from None
    except RecursionError:
        raise FormulaError("this formula has too many terms in a row to check",
                           equation.text, 0) from None
    except FormulaError as error:
        if error.text:
            raise
        raise FormulaError(error.message, equation.text, error.position) from None
    note = _position_note(derivation, reading, l_value, equation)
    return replace(check, notes=check.notes + (note,))
