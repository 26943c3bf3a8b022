r"""Stage: text -> :class:`Formula`, a hand-derived gradient formula, parsed.

Input: one equation ``LHS = RHS`` as a person writes it in course notes or an
answer, in LaTeX::

    \frac{\partial E}{\partial w_{i,j}} = \sum_m \sum_n \delta_{m,n} a_{i+m,j+n}

or in plain text::

    dL/dx[i,j] = sum(g[i-m,j-n]*w[m,n], m, n)

Output: a frozen :class:`Formula`: the gradient element the left side names, the
right side as a small expression tree, and how the person spelled every array
(:class:`Spelling`), so that an answer can be printed back in their notation.
:func:`products` flattens the right side into a sum of :class:`ProductTerm`.
Nothing here knows about layers: matching the names to a layer's arrays and
instantiating the formula is the next stage, :mod:`~symbackprop.check.formula_check`.

A small hand-written tokenizer and recursive-descent parser cover the notation of
course notes (see :func:`parse_formula`); anything else is a :class:`FormulaError`
that points at the position.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from fractions import Fraction

__all__ = [
    "ARRAY_NAMES",
    "GRADIENT_NAMES",
    "LOSS_NAMES",
    "FormulaError",
    "Affine",
    "Spelling",
    "Subscript",
    "Superscript",
    "MAX_FORMULA_LENGTH",
    "MAX_NESTING",
    "MAX_PRODUCTS",
    "Element",
    "Indicator",
    "Number",
    "Add",
    "Product",
    "Quotient",
    "SumVariable",
    "Summation",
    "Formula",
    "ProductTerm",
    "parse_formula",
    "TokenCursor",
    "products",
]

#: Names people give the arrays of a layer -> symbackprop's array name.
ARRAY_NAMES = {
    "x": "x", "a": "x",                                   # layer input (a^{l-1})
    "g": "g", "delta": "g", "\\delta": "g", "dz": "g",   # upstream gradient dL/dz
    "dout": "g", "grad_z": "g", "grad_out": "g",
    "w": "w", "W": "w",                                   # kernel
    "b": "b", "w_b": "b",                                 # bias
    "z": "z",                                             # output (only inside dL/dz)
}
#: One-word names of a gradient (``dw[1,2]``, ``grad_x[i,j]``) -> the array differentiated.
GRADIENT_NAMES = {
    "dx": "x", "da": "x", "dw": "w", "dW": "w", "db": "b", "dw_b": "b",
    "grad_x": "x", "grad_a": "x", "grad_w": "w", "grad_b": "b",
}
#: Names of the loss.
LOSS_NAMES = ("L", "E")

_COMPOUND_NAMES = {name for name in (*ARRAY_NAMES, *GRADIENT_NAMES) if "_" in name}

_COMMANDS = {
    "\\frac": ("frac", "\\frac"), "\\dfrac": ("frac", "\\frac"), "\\tfrac": ("frac", "\\frac"),
    "\\partial": ("partial", "\\partial"),
    "\\sum": ("sum", "\\sum"),
    "\\delta": ("name", "\\delta"),
    "\\cdot": ("op", "*"), "\\times": ("op", "*"), "\\ast": ("op", "*"),
    "\\arg": ("name", "arg"), "\\max": ("name", "max"), "\\argmax": ("name", "argmax"),
    "\\top": ("name", "\\top"), "\\intercal": ("name", "\\top"),
}
#: How people write a transpose in a superscript: ``W^T``, ``W^\top``, ``W^{\mathsf{T}}``.
_TRANSPOSE_NAMES = ("T", "\\top")
#: Letters that name a layer in a superscript: ``a^{l-1}``, ``\delta^{L}``.
LAYER_LETTERS = ("l", "L")
#: Longest formula read, in characters; a hand-derived formula is far shorter.
MAX_FORMULA_LENGTH = 20_000
#: Deepest nesting of brackets, signs and sums the parser follows.
MAX_NESTING = 100
#: Most products the right side may expand to, ``(g_1 + g_2)(w_1 + w_2)`` being 4.
MAX_PRODUCTS = 100_000
#: Commands that only change spacing or size, and display-math delimiters.
_IGNORED_COMMANDS = {
    "\\left", "\\right", "\\big", "\\Big", "\\bigg", "\\Bigg", "\\bigl", "\\bigr", "\\Bigl",
    "\\Bigr", "\\biggl", "\\biggr", "\\displaystyle", "\\limits", "\\nolimits", "\\quad",
    "\\qquad", "\\,", "\\;", "\\:", "\\!", "\\ ", "\\\\", "\\[", "\\]", "\\(", "\\)",
}
#: Characters pasted from a PDF or typed on a phone.
_UNICODE = {
    "∂": ("partial", "\\partial"), "δ": ("name", "\\delta"), "∑": ("sum", "\\sum"),
    "Σ": ("sum", "\\sum"), "·": ("op", "*"), "⋅": ("op", "*"), "×": ("op", "*"),
    "∗": ("op", "*"), "−": ("op", "-"), "–": ("op", "-"),
}
_TOKEN = re.compile(r"""
    (?P<space>\s+|\$|~|&)
  | (?P<font>\\(?:mathrm|mathit|mathcal|mathbf|mathsf|operatorname|text|textrm|textit)
        \s*\{\s*(?P<font_name>[A-Za-z]+)\s*\})
  | (?P<command>\\(?:[A-Za-z]+|.))
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z]+)
  | (?P<op>[{}\[\]()_^,+\-*/=])
""", re.VERBOSE)


class FormulaError(ValueError):
    """A formula that cannot be read or does not fit the layer.

    Attributes
    ----------
    message : str
        What is wrong, in one sentence.
    text : str
        The formula.
    position : int or None
        Where (0-based character offset); ``str(error)`` shows the formula with a caret.
    """

    def __init__(self, message: str, text: str = "", position: int | None = None):
        self.message, self.text, self.position = message, text, position
        super().__init__(self._render())

    def _render(self) -> str:
        if self.position is None or not self.text:
            return self.message
        line = re.sub(r"\s", " ", self.text)
        return (f"{self.message} (column {self.position + 1})\n  {line}\n"
                f"  {' ' * self.position}^")


# -- index arithmetic ---------------------------------------------------------------
@dataclass(frozen=True)
class Affine:
    """An affine index expression ``constant + sum(coefficient * variable)`` (integers)."""

    constant: int = 0
    coefficients: tuple = ()  # sorted ((variable, coefficient), ...), no zero coefficient

    @classmethod
    def variable(cls, name: str) -> "Affine":
        return cls(0, ((name, 1),))

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.coefficients)

    def __add__(self, other: "Affine") -> "Affine":
        merged = dict(self.coefficients)
        for name, value in other.coefficients:
            merged[name] = merged.get(name, 0) + value
        return Affine(self.constant + other.constant,
                      tuple(sorted((n, c) for n, c in merged.items() if c)))

    def scaled(self, factor: int) -> "Affine":
        if factor == 0:
            return Affine()
        return Affine(self.constant * factor,
                      tuple((name, c * factor) for name, c in self.coefficients))

    def evaluate(self, values: dict) -> int:
        return self.constant + sum(c * values[name] for name, c in self.coefficients)

    def renamed(self, mapping: dict) -> "Affine":
        return Affine(self.constant, tuple(sorted(
            (mapping.get(name, name), c) for name, c in self.coefficients)))

    def substituted(self, values: dict) -> "Affine":
        """Fold the variables that ``values`` gives into the constant."""
        constant = self.constant + sum(c * values[n] for n, c in self.coefficients if n in values)
        return Affine(constant, tuple((n, c) for n, c in self.coefficients if n not in values))


# -- the parsed formula -------------------------------------------------------------
@dataclass(frozen=True)
class Spelling:
    """How a person wrote an array: name, layer label, index style.

    ``format((1, 2))`` gives the element back in the same notation:
    ``\\delta_{1,2}``, ``a_{12}``, ``g[1,2]``, ``g12``, ``\\frac{\\partial E}{\\partial w_{1,2}}``.
    """

    name: str
    superscript: str = ""  # the layer label as printed, e.g. "^{l-1}" (never a transpose)
    # braces _{1,2} | compact _{12} | underscore _12 | brackets [1,2] | digits 12
    style: str = "braces"
    separator: str = ","
    prefix: str = ""       # text around the name of a derivative, e.g. "\\partial E/\\partial "
    suffix: str = ""
    layer_text: str = ""   # the layer label inside the braces, e.g. "[l-1]"
    channels: bool = False  # channel indices written as a superscript, a^{(1)}_{11}

    def format(self, indices=(), channels=()) -> str:
        """The element with ``indices`` in the subscript and ``channels`` (when the
        person writes channels as a superscript) in ``^{(...)}``."""
        indices = tuple(int(i) for i in indices)
        head = self.name + self.superscript
        if channels:
            head = (f"{self.name}^{{{self.layer_text}"
                    f"({','.join(str(int(c)) for c in channels)})}}")
        style = self.style
        if style in ("compact", "underscore", "digits") and not all(0 <= i <= 9 for i in indices):
            style = "brackets" if style == "digits" else "braces"
        joined = self.separator.join(map(str, indices))
        if not indices:
            written = head
        elif style == "braces":
            written = f"{head}_{{{joined}}}"
        elif style == "compact":
            written = f"{head}_{{{''.join(map(str, indices))}}}"
        elif style == "underscore":
            written = f"{head}_{''.join(map(str, indices))}"
        elif style == "brackets":
            written = f"{head}[{joined}]"
        else:
            written = head + "".join(map(str, indices))
        return self.prefix + written + self.suffix


@dataclass(frozen=True)
class Subscript:
    """The indices of an element as written.

    ``parts`` reads the subscript as comma-separated expressions (``_{i+m,j+n}``,
    ``[1,2]``, ``_{12}`` as the one index 12); ``pieces`` reads a subscript without
    commas or operators character by character (``_{12}`` as 1, 2 and ``_{ij}`` as
    i, j), or is ``None``.  Which reading applies depends on how many indices the
    array has, so it is decided when the formula meets a layer.
    """

    parts: tuple | None
    pieces: tuple | None
    position: int

    def renamed(self, mapping: dict) -> "Subscript":
        def rename(group):
            return None if group is None else tuple(i.renamed(mapping) for i in group)
        return replace(self, parts=rename(self.parts), pieces=rename(self.pieces))


@dataclass(frozen=True)
class Superscript:
    r"""What a superscript on a name says, e.g. ``^{l-1}``, ``^T``, ``^{(1)}``, ``^{[2](1)}``.

    ``layer`` is the layer label as an index expression in ``l`` or ``L`` (``l-1``
    -> ``-1 + l``) or a layer number (``[2]`` -> ``2``); ``channels`` the indices of a
    parenthesised group that is not a layer label (``(1)``, ``(o,c)``: channel, or
    batch and channel, as ``symbackprop latex`` prints them); ``transposed`` a ``T``,
    ``	op`` or ``\mathsf{T}``.  Which layer a label means is decided when the
    formula meets a layer or a chain (:mod:`~symbackprop.check.formula_check`).
    """

    text: str                  # as written, "^{l-1}"
    position: int              # where the '^' is
    layer: Affine | None = None
    layer_text: str = ""       # the label as written inside the braces, "l-1", "[l]", "(l)"
    layer_position: int = 0
    channels: tuple | None = None
    transposed: bool = False

    @property
    def letter(self) -> str:
        """``"l"`` or ``"L"`` for a label relative to a layer, ``""`` for a layer number."""
        return self.layer.variables[0] if self.layer is not None and self.layer.variables else ""


@dataclass(frozen=True)
class Element:
    """One array element on either side, e.g. ``\\delta_{m,n}`` (array ``g``)."""

    array: str            # symbackprop's name: x, g, w, b (z only inside dL/dz)
    spelling: Spelling
    subscript: Subscript | None
    position: int         # where the name starts
    end: int = 0          # where the element (name and indices) ends
    superscript: Superscript | None = None

    def renamed(self, mapping: dict) -> "Element":
        if self.subscript is None:
            return self
        return replace(self, subscript=self.subscript.renamed(mapping))


@dataclass(frozen=True)
class Indicator:
    """``[x_{a,b} = argmax z_{i,j}]``: 1 when ``x_ab`` is the first maximum of ``z_ij``'s
    window (max pooling), else 0.  ``candidate`` is an input element, ``output`` an
    output element (array ``z``)."""

    candidate: Element
    output: Element
    position: int
    end: int

    @property
    def spelling(self) -> Spelling:
        return self.candidate.spelling

    def renamed(self, mapping: dict) -> "Indicator":
        return replace(self, candidate=self.candidate.renamed(mapping),
                       output=self.output.renamed(mapping))


@dataclass(frozen=True)
class Number:
    value: Fraction
    position: int


@dataclass(frozen=True)
class Add:
    terms: tuple  # ((sign, node), ...)
    position: int


@dataclass(frozen=True)
class Product:
    factors: tuple
    position: int


@dataclass(frozen=True)
class Quotient:
    numerator: object
    denominator: object
    position: int


@dataclass(frozen=True)
class SumVariable:
    """A summation index; ``lower``/``upper`` are ``None`` for a sum without limits."""

    name: str
    lower: Affine | None
    upper: Affine | None
    position: int
    written: str = ""  # the name as the person wrote it (``name`` may be made unique)

    @property
    def limited(self) -> bool:
        return self.lower is not None


@dataclass(frozen=True)
class Summation:
    variables: tuple  # (SumVariable, ...), outermost first
    body: object
    position: int
    closed: bool = False  # sum(body, m) ends at its ')'; \sum_m takes the rest of the product


@dataclass(frozen=True)
class Formula:
    """A parsed ``LHS = RHS``.

    Attributes
    ----------
    text : the formula as written.
    gradient : :class:`Element` the left side differentiates, with the whole
        derivative (``\\frac{\\partial E}{\\partial w_{i,j}}``) in its spelling.
    loss : the loss name written (``L``, ``E``; ``L`` for ``dw[1,2]``).
    rhs : the right side's expression tree.
    spellings : array -> :class:`Spelling` as first written (both sides).
    latex : whether the formula is LaTeX (fractions print as ``\\frac{1}{4}``).
    product_separator : how the person wrote a product (``" "``, ``"*"``, ``" \\cdot "``).
    index_style : the first subscript style used, for arrays the person did not write.
    """

    text: str
    gradient: Element
    loss: str
    rhs: object
    spellings: dict
    latex: bool
    product_separator: str
    index_style: tuple  # (style, separator)

    def __hash__(self):
        return hash(self.text)

    def spelling(self, array: str) -> Spelling:
        """How to write ``array``: as the person did, else in their style."""
        if array in self.spellings:
            return self.spellings[array]
        style, separator = self.index_style
        return Spelling(name=array, style=style, separator=separator)


@dataclass(frozen=True)
class ProductTerm:
    """``coefficient * sum over variables of product(elements)``: one term of the RHS."""

    coefficient: Fraction
    variables: tuple  # (SumVariable, ...) with unique names, outermost first
    elements: tuple   # (Element, ...)


# -- tokenizer -------------------------------------------------------------------------
@dataclass(frozen=True)
class _Token:
    category: str    # name, number, op, frac, partial, sum, end
    value: str
    start: int
    end: int
    spaced: bool  # whitespace before it


def _tokenize(text: str) -> list[_Token]:
    tokens, position, spaced = [], 0, False
    while position < len(text):
        char = text[position]
        if char in _UNICODE:
            category, value = _UNICODE[char]
            tokens.append(_Token(category, value, position, position + 1, spaced))
            position, spaced = position + 1, False
            continue
        match = _TOKEN.match(text, position)
        if match is None:
            raise FormulaError(f"unexpected character {char!r}", text, position)
        category, value = match.lastgroup, match.group()
        if category == "font_name":
            category = "font"
        if category == "space" or (category == "command" and value in _IGNORED_COMMANDS):
            spaced = True
        elif category == "command":
            if value not in _COMMANDS:
                raise FormulaError(f"unknown LaTeX command {value}", text, position)
            category, value = _COMMANDS[value]
            tokens.append(_Token(category, value, position, match.end(), spaced))
            spaced = False
        else:
            if category == "font":
                category, value = "name", match.group("font_name")
            tokens.append(_Token(category, value, position, match.end(), spaced))
            spaced = False
        position = match.end()
    tokens.append(_Token("end", "", len(text), len(text), spaced))
    return tokens


# -- parser ----------------------------------------------------------------------------
def parse_formula(text: str, names: dict | None = None) -> Formula:
    r"""Parse one gradient formula ``LHS = RHS``.

    The left side is a derivative of the loss (``L`` or ``E``) by one element of
    the input, kernel or bias: ``\frac{\partial E}{\partial w_{1,2}}``,
    ``\partial L / \partial x_{i,j}``, ``dL/dx[i,j]``, ``dw[1,2]``, ``grad_x[i,j]``.
    The right side is a sum of products of elements, numbers and sums:

    - elements ``name_{i,j}``, ``name_{ij}`` (single digits or letters), ``name_i``,
      ``name[i,j]``, ``g11``; indices are whole-number expressions such as ``i+m``,
      ``2i-1``, ``s*i + m``;
    - superscripts (:class:`Superscript`): a layer label ``^{l}``, ``^{l-1}``,
      ``^{l+1}``, ``^{(l)}``, ``^{[l-1]}`` (or with ``L``; a number ``^{[2]}`` in a
      chain), a transpose ``^T``, ``^\top``, ``^{\mathsf{T}}``, channel indices
      ``^{(1)}``, ``^{(o,c)}`` as ``symbackprop latex`` prints them, or several
      together (``^{[l]T}``, ``^{[1](2)}``); anything else is refused;
    - names: input ``x``/``a``; upstream gradient ``g``, ``\delta``/``delta``,
      ``dz``, ``dout`` or ``\partial L/\partial z_{i,j}``; kernel ``w``; bias ``b``/``w_b``;
    - products by juxtaposition, ``*``, ``\cdot``, ``\times``; division by a number
      (``/4``, ``\frac{1}{4}``); parentheses;
    - sums ``\sum_m``, ``\sum_{m,n}``, ``\sum_{m=0}^{1}``, ``sum_m``, and the plain
      ``sum(body, m, n)`` or ``sum(body, (m, 0, 1))``.  A sum covers the product
      that follows it.
    - max pooling's routing indicator ``[x_{a,b} = argmax z_{i,j}]`` (also
      ``\arg\max``, ``\operatorname{argmax}``), as ``derive`` prints it: 1 when
      ``x_ab`` is the first maximum of ``z_ij``'s window, 0 otherwise (also when
      ``x_ab`` is not in that window).

    ``names`` adds a layer's own array names to :data:`ARRAY_NAMES` (a dropout's
    keep-mask ``m``: ``{"m": "m", "mask": "m"}``).

    Raises
    ------
    FormulaError
        With the position of the first thing that is not understood, or of nesting
        deeper than :data:`MAX_NESTING`; a formula longer than
        :data:`MAX_FORMULA_LENGTH` characters, or one whose products multiply out to
        more than :data:`MAX_PRODUCTS` terms, is refused too.
    """
    return _Parser(text, names).formula()


class TokenCursor:
    """Reading a formula's tokens one by one, for a recursive-descent parser: ``tokens``
    (ending with an ``"end"`` token), ``index`` and ``text`` are the parser's."""

    def peek(self, offset: int = 0):
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self):
        token = self.peek()
        self.index += 1
        return token

    def at(self, category: str, value: str | None = None, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.category == category and (value is None or token.value == value)

    def at_op(self, value: str, offset: int = 0) -> bool:
        return self.at("op", value, offset)

    def error(self, message: str, position: int | None = None) -> FormulaError:
        """A :class:`FormulaError` at ``position`` (default: the next token's)."""
        return FormulaError(message, self.text,
                            self.peek().start if position is None else position)

    def describe(self, token) -> str:
        return "the end of the formula" if token.category == "end" else repr(
            self.text[token.start:token.end])


class _Parser(TokenCursor):
    def __init__(self, text: str, names: dict | None = None):
        self.array_names = {**ARRAY_NAMES, **(names or {})}
        if len(text) > MAX_FORMULA_LENGTH:
            raise FormulaError(
                f"the formula is {len(text):,} characters long, over the limit of "
                f"{MAX_FORMULA_LENGTH:,}: write it with sums (\\sum_m, sum(body, m)) or "
                f"check fewer elements at a time")
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0  # brackets, signs and sums open at this point
        self.spellings: dict = {}
        self.separator: str | None = None
        self.index_style: tuple | None = None

    def expect_op(self, value: str, what: str) -> _Token:
        if not self.at_op(value):
            raise self.error(f"expected {what}, found {self.describe(self.peek())}")
        return self.advance()

    # -- the equation ---------------------------------------------------------------
    def formula(self) -> Formula:
        if self.at("end"):
            raise self.error("the formula is empty; write LHS = RHS, e.g. dL/dw[1,1] = ...")
        loss, gradient = self.left_side()
        if not self.at_op("="):
            raise self.error(f"expected '=' after the left side, found "
                             f"{self.describe(self.peek())}")
        self.advance()
        if self.at("end"):
            raise self.error("the right side is empty")
        rhs = self.expression()
        if self.at_op("="):
            raise self.error("one '=' only: check one equation at a time")
        if not self.at("end"):
            raise self.error(f"unexpected {self.describe(self.peek())}")
        products(rhs, self.text)  # division by something other than a number fails here
        latex = "\\" in self.text or any(char in _UNICODE for char in self.text)
        return Formula(text=self.text, gradient=gradient, loss=loss, rhs=rhs,
                       spellings=dict(self.spellings), latex=latex,
                       product_separator=self.separator or " ",
                       index_style=self.index_style or (("braces", ",") if latex
                                                        else ("brackets", ",")))

    def left_side(self):
        token = self.peek()
        if self.at_derivative():
            loss, element = self.derivative()
            self.remember(element, bare=True)
            return loss, element
        if token.category == "name":
            name = self.compound(token.value, offset=1)
            if name in GRADIENT_NAMES:  # dw[1,2], grad_x[i,j]
                element = self.element(strip=1 if name.startswith("d") else len("grad_"),
                                       array=GRADIENT_NAMES[name])
                prefix = self.text[token.start:element.position]
                element = replace(element, spelling=replace(element.spelling, prefix=prefix))
                self.remember(element, bare=True)
                return "L", element
        raise self.error("the left side must be a gradient such as "
                         "\\frac{\\partial L}{\\partial w_{1,1}}, dL/dx[i,j] or dw[1,1]",
                         token.start)

    # -- derivatives ----------------------------------------------------------------
    def is_loss_differential(self, offset: int = 0) -> bool:
        """``\\partial L``, ``d L``, ``dL`` at ``offset``."""
        token = self.peek(offset)
        if token.category == "partial" or (token.category == "name" and token.value == "d"):
            return self.at("name", offset=offset + 1) and self.peek(offset + 1).value in LOSS_NAMES
        return token.category == "name" and token.value[:1] == "d" and token.value[1:] in LOSS_NAMES

    def at_derivative(self) -> bool:
        if self.at("frac"):
            return self.at_op("{", offset=1) and self.is_loss_differential(offset=2)
        if self.at("partial"):
            return True
        return self.is_loss_differential() and (
            self.peek().value != "d" or self.at_op("/", offset=2))

    def derivative(self):
        """``\\frac{\\partial L}{\\partial v}`` or ``\\partial L / \\partial v`` -> (loss, v)."""
        start = self.peek().start
        if self.at("frac"):
            self.advance()
            self.expect_op("{", "'{' after \\frac")
            loss = self.loss_differential()
            self.expect_op("}", "'}' closing the numerator")
            self.expect_op("{", "'{' opening the denominator")
            element = self.differential()
            self.expect_op("}", "'}' closing the denominator")
        else:
            loss = self.loss_differential()
            self.expect_op("/", "'/' after the loss")
            element = self.differential()
        end = self.tokens[self.index - 1].end
        spelling = replace(element.spelling, prefix=self.text[start:element.position],
                           suffix=self.text[element.end:end])
        return loss, replace(element, spelling=spelling)

    def loss_differential(self) -> str:
        token = self.advance()
        if token.category == "partial" or (token.category == "name" and token.value == "d"):
            name = self.advance()
            if name.category != "name" or name.value not in LOSS_NAMES:
                raise self.error(f"expected the loss ({' or '.join(LOSS_NAMES)}) after "
                                 f"{self.describe(token)}", name.start)
            return name.value
        if token.category == "name" and token.value[:1] == "d" and token.value[1:] in LOSS_NAMES:
            return token.value[1:]
        raise self.error(f"expected \\partial L or dL, found {self.describe(token)}",
                         token.start)

    def differential(self) -> Element:
        """``\\partial w_{1,2}``, ``d w_{12}``, ``dw[1,2]``: the variable of a derivative."""
        token = self.peek()
        if token.category == "partial" or (token.category == "name" and token.value == "d"):
            self.advance()
            if not self.at("name"):
                raise self.error(f"expected an array name after {self.describe(token)}")
            return self.element()
        if token.category == "name" and token.value[:1] == "d" and len(token.value) > 1:
            return self.element(strip=1)
        raise self.error(f"expected \\partial x, dx or similar, found {self.describe(token)}")

    # -- names and elements ----------------------------------------------------------
    def compound(self, name: str, offset: int = 0) -> str:
        """``w_b``, ``grad_x``: ``name`` and an underscore if the tokens at ``offset`` spell one."""
        if not self.at_op("_", offset):
            return name
        if self.at("name", offset=offset + 1) and f"{name}_{self.peek(offset + 1).value}" \
                in _COMPOUND_NAMES:
            return f"{name}_{self.peek(offset + 1).value}"
        if self.at_op("{", offset + 1) and self.at("name", offset=offset + 2) \
                and self.at_op("}", offset + 3) \
                and f"{name}_{self.peek(offset + 2).value}" in _COMPOUND_NAMES:
            return f"{name}_{self.peek(offset + 2).value}"
        return name

    def element(self, strip: int = 0, array: str | None = None) -> Element:
        """An array name (``strip`` leading characters are a ``d`` or ``grad_``) and its indices."""
        token = self.advance()
        name = self.compound(token.value)
        if name != token.value:  # consume "_ b" or "_ { b }"
            self.advance()
            if self.at_op("{"):
                self.index += 3
            else:
                self.advance()
        name_end = self.tokens[self.index - 1].end
        alias = name[strip:]
        if array is None:
            if alias not in self.array_names:
                raise self.unknown_name(token, alias)
            array = self.array_names[alias]
        position = token.start + strip
        superscript, subscript, style = None, None, None
        while True:
            following = self.peek()
            if self.at_op("^") and superscript is None:
                superscript = self.superscript()
            elif self.at_op("^"):
                raise self.error(f"{name} has two superscripts; write one, such as "
                                 f"{name}^{{[l]T}} for a layer and a transpose")
            elif self.at_op("_") and subscript is None:
                subscript, style = self.underscore_subscript()
            elif self.at_op("[") and subscript is None:
                subscript, style = self.bracket_subscript()
            elif following.category == "number" and not following.spaced and subscript is None:
                self.advance()
                subscript, style = self.single_token_subscript(following), ("digits", ",")
            else:
                break
        spelling = Spelling(name=self.text[position:name_end],
                            style=style[0] if style else "braces",
                            separator=style[1] if style else ",")
        if style and self.index_style is None:
            self.index_style = style
        if superscript is not None:
            spelling = replace(spelling, superscript=_layer_superscript(superscript),
                               layer_text=superscript.layer_text,
                               channels=superscript.channels is not None)
            if superscript.channels is not None:
                subscript = _with_channels(subscript, superscript)
        return Element(array=array, spelling=spelling, subscript=subscript, position=position,
                       end=self.tokens[self.index - 1].end, superscript=superscript)

    def remember(self, element: Element, bare: bool = False):
        """Keep the first spelling of each array, to print answers in it.

        ``bare``: the left side's array without the derivative around it.
        """
        spelling = replace(element.spelling, prefix="", suffix="") if bare else element.spelling
        self.spellings.setdefault(element.array, spelling)

    def unknown_name(self, token: _Token, name: str) -> FormulaError:
        known = ("input x or a; upstream gradient g, delta, dz or dL/dz; kernel w; "
                 "bias b or w_b") + "".join(f"; {alias}" for alias in self.array_names
                                            if alias not in ARRAY_NAMES)
        if name in GRADIENT_NAMES or name in LOSS_NAMES:
            return self.error(f"{name} cannot appear on the right side; it uses {known}",
                              token.start)
        hint = " (write a product with a space or *: 'g w', 'g*w')" if len(name) > 1 else ""
        if name in ("for", "in", "range"):
            hint = " (write a sum as sum(body, m, n) or sum(body, (m, 0, 1)))"
        return self.error(f"unknown name {name!r}{hint}; the names are: {known}", token.start)

    def superscript(self) -> Superscript:
        r"""``^{l-1}``, ``^l``, ``^{[l]}``, ``^{(l)}``, ``^T``, ``^\top``, ``^{(o,c)}``,
        ``^{[1](2)}``: a layer label, channel indices and a transpose, each at most once.

        Anything else is refused here, with its position, rather than dropped.
        """
        caret = self.advance()
        found = Superscript(text="", position=caret.start)
        if self.at_op("{"):
            opened = self.advance()
            while not self.at_op("}"):
                if self.at("end"):
                    raise self.error("this '{' is never closed with '}'", opened.start)
                found = self.superscript_item(found, braced=True)
                if self.at_op(","):
                    self.advance()
            self.advance()
        else:
            found = self.superscript_item(found, braced=False)
        return replace(found, text=self.text[caret.start:self.tokens[self.index - 1].end])

    def superscript_item(self, found: Superscript, braced: bool) -> Superscript:
        token = self.peek()
        if braced and self.at_op("{"):  # ^{{l-1}}, ^{{(l)}}: a group inside the braces
            self.advance()
            while not self.at_op("}"):
                if self.at("end"):
                    raise self.error("this '{' is never closed with '}'", token.start)
                found = self.superscript_item(found, braced=True)
                if self.at_op(","):
                    self.advance()
            self.advance()
            return found
        what = ("a superscript is a layer (a^{l-1}, a^{l}, a^{[l]}, a^{(l)}, a^{[2]} in a "
                "chain), channel indices as symbackprop latex prints them (a^{(1)}, "
                "w^{(o,c)}) or a transpose (W^T, W^\\top)")
        if token.category == "name" and token.value in _TRANSPOSE_NAMES:
            if found.transposed:
                raise self.error("a second transpose in one superscript", token.start)
            self.advance()
            return replace(found, transposed=True)
        if self.at_op("("):
            self.advance()
            group = [self.index_expression()]
            while self.at_op(","):
                self.advance()
                group.append(self.index_expression())
            self.expect_op(")", "')' closing the superscript's group")
            text = self.text[token.start:self.tokens[self.index - 1].end]
            if len(group) == 1 and _is_layer_label(group[0], numbers=False):
                return self.with_layer(found, group[0], text, token.start)
            if found.channels is not None:
                raise self.error("a second group of channel indices in one superscript",
                                 token.start)
            return replace(found, channels=tuple(group))
        if self.at_op("["):
            self.advance()
            label = self.index_expression()
            self.expect_op("]", "']' closing the layer label")
            text = self.text[token.start:self.tokens[self.index - 1].end]
            return self.with_layer(found, label, text, token.start)
        if token.category == "number" or (token.category == "name"
                                           and token.value in LAYER_LETTERS):
            if braced:
                label = self.index_expression()
            else:  # a^l-1 is (a^l) - 1 in LaTeX: only the one token belongs to the label
                self.advance()
                label = Affine(int(token.value)) if token.category == "number" \
                    else Affine.variable(token.value)
            text = self.text[token.start:self.tokens[self.index - 1].end]
            return self.with_layer(found, label, text, token.start)
        if token.category == "name" and token.value.lower() in ("lt", "ltop") or \
                token.category == "name" and token.value[:1] in LAYER_LETTERS and braced \
                and token.value[1:] in _TRANSPOSE_NAMES:
            raise self.error(f"{token.value!r} is not understood in a superscript; write the "
                             f"layer and the transpose apart, e.g. ^{{[l]T}}; {what}",
                             token.start)
        raise self.error(f"{self.describe(token)} is not understood in a superscript: {what}",
                         token.start)

    def with_layer(self, found: Superscript, label: Affine, text: str,
                   position: int) -> Superscript:
        if found.layer is not None:
            raise self.error("a second layer label in one superscript", position)
        if not _is_layer_label(label, numbers=True):
            raise self.error(
                f"{text!r} is not a layer label: write l, l-1, l+1 (or L, L-1, ...), or a "
                f"layer number 0, 1, 2, ... for a chain", position)
        return replace(found, layer=label, layer_text=text, layer_position=position)

    def skip_group(self):
        depth = 0
        while True:
            token = self.advance()
            if token.category == "end":
                raise self.error("a '{' is never closed with '}'", token.start)
            depth += (token.value == "{") - (token.value == "}") if token.category == "op" else 0
            if depth == 0:
                return

    def underscore_subscript(self):
        self.advance()
        following = self.peek()
        if self.at_op("{"):
            return self.index_list("{", "}", "braces", "compact")
        if following.category in ("name", "number"):
            self.advance()
            return self.single_token_subscript(following), ("underscore", ",")
        raise self.error("expected indices after '_', such as _{i,j} or _{12}")

    def bracket_subscript(self):
        return self.index_list("[", "]", "brackets", "brackets")

    def single_token_subscript(self, token: _Token) -> Subscript:
        if token.category == "number" and "." in token.value:
            raise self.error("an index must be a whole number", token.start)
        whole = Affine(int(token.value)) if token.category == "number" \
            else Affine.variable(token.value)
        return Subscript(parts=(whole,), pieces=self.pieces([token]), position=token.start)

    @staticmethod
    def pieces(tokens) -> tuple | None:
        """``12`` -> (1, 2); ``ij`` -> (i, j); ``i1`` -> (i, 1)."""
        found = []
        for token in tokens:
            if token.category not in ("name", "number") or "." in token.value:
                return None
            found += [Affine(int(c)) if c.isdigit() else Affine.variable(c) for c in token.value]
        return tuple(found)

    def index_list(self, opening: str, closing: str, style: str, compact_style: str):
        opened = self.advance()
        close = self.find_closing(opening, closing)
        inner = self.tokens[self.index:close]
        pieces = self.pieces(inner) if inner else None
        commas = [t for t in inner if t.category == "op" and t.value == ","]
        try:
            parts = [self.index_expression()]
            while self.at_op(","):
                self.advance()
                parts.append(self.index_expression())
            if self.index != close:
                raise self.error(f"expected ',' or '{closing}' in the indices, found "
                                 f"{self.describe(self.peek())}")
            parts = tuple(parts)
        except FormulaError:
            if pieces is None:
                raise
            parts = None
        self.index = close + 1
        if not inner:
            raise self.error("empty indices", opened.start)
        separator = ","
        if commas and self.text[commas[0].end:commas[0].end + 1] == " ":
            separator = ", "
        chosen = style if commas or pieces is None else compact_style
        return Subscript(parts=parts, pieces=pieces, position=inner[0].start), (chosen, separator)

    def find_closing(self, opening: str, closing: str) -> int:
        depth, index = 1, self.index
        while True:
            token = self.tokens[index]
            if token.category == "end":
                raise self.error(f"this '{opening}' is never closed with '{closing}'",
                                 self.tokens[self.index - 1].start)
            if token.category == "op" and token.value == opening:
                depth += 1
            elif token.category == "op" and token.value == closing:
                depth -= 1
                if depth == 0:
                    return index
            index += 1

    # -- index expressions --------------------------------------------------------------
    def index_expression(self) -> Affine:
        sign = 1
        if self.at_op("+") or self.at_op("-"):
            sign = -1 if self.advance().value == "-" else 1
        value = self.index_term().scaled(sign)
        while self.at_op("+") or self.at_op("-"):
            sign = -1 if self.advance().value == "-" else 1
            value = value + self.index_term().scaled(sign)
        return value

    def index_term(self) -> Affine:
        value = self.index_atom()
        while True:
            if self.at_op("*"):
                self.advance()
            elif not (self.peek(-1).category == "number" and
                      (self.at("name") or self.at_op("("))):  # 2i, 2(i+1)
                return value
            position = self.peek().start
            other = self.index_atom()
            if value.coefficients and other.coefficients:
                raise self.error("an index must be linear in the index names "
                                 "(a product of two index names is not)", position)
            value = other.scaled(value.constant) if not value.coefficients \
                else value.scaled(other.constant)

    def index_atom(self) -> Affine:
        return self.nested(self.plain_index_atom)

    def plain_index_atom(self) -> Affine:
        token = self.peek()
        if token.category == "number":
            if "." in token.value:
                raise self.error("an index must be a whole number")
            self.advance()
            return Affine(int(token.value))
        if token.category == "name":
            self.advance()
            return Affine.variable(token.value)
        if self.at_op("(") or self.at_op("{"):
            closing = ")" if self.advance().value == "(" else "}"
            value = self.index_expression()
            self.expect_op(closing, f"'{closing}'")
            return value
        if self.at_op("-"):
            self.advance()
            return self.index_atom().scaled(-1)
        raise self.error(f"expected an index, found {self.describe(token)}")

    # -- the right side -----------------------------------------------------------------
    def expression(self):
        position = self.peek().start
        terms = []
        sign = 1
        if self.at_op("+") or self.at_op("-"):
            sign = -1 if self.advance().value == "-" else 1
        while True:
            terms.append((sign, self.term()))
            if self.at_op("+") or self.at_op("-"):
                sign = -1 if self.advance().value == "-" else 1
                continue
            break
        if len(terms) == 1 and terms[0][0] == 1:
            return terms[0][1]
        return Add(tuple(terms), position)

    def starts_factor(self) -> bool:
        token = self.peek()
        return token.category in ("name", "number", "frac", "partial", "sum") or (
            token.category == "op" and token.value in "([{")

    def term(self):
        position = self.peek().start
        factors = [self.factor()]
        # \sum_m takes the rest of the product; sum(body, m) ends at its ')'
        while not (isinstance(factors[-1], Summation) and not factors[-1].closed):
            if self.at_op("*"):
                operator = self.advance()
                self.note_separator(operator)
                factors.append(self.factor())
            elif self.at_op("/"):
                operator = self.advance()
                factors.append(Quotient(Number(Fraction(1), operator.start), self.factor(),
                                        operator.start))
            elif self.starts_factor():
                self.note_separator(None)
                factors.append(self.factor())
            else:
                break
        if self.at_op("^"):
            raise self.error("a superscript belongs right after an array name (a^{l-1}, W^T, "
                             "a^{(1)}); powers are not supported: write a product, a a")
        return factors[0] if len(factors) == 1 else Product(tuple(factors), position)

    def note_separator(self, operator: _Token | None):
        if self.separator is not None:
            return
        if operator is None:
            self.separator = " "
            return
        written = self.text[operator.start:operator.end]
        before = self.text[operator.start - 1:operator.start].isspace()
        after = self.text[operator.end:operator.end + 1].isspace()
        self.separator = (" " if before else "") + written + (" " if after else "")

    def nested(self, read):
        """``read()`` one level deeper; past :data:`MAX_NESTING` levels a FormulaError."""
        if self.depth >= MAX_NESTING:
            raise self.error(f"brackets, signs and sums are nested more than {MAX_NESTING} "
                             f"deep here; write the formula with fewer levels")
        self.depth += 1
        try:
            return read()
        finally:
            self.depth -= 1

    def factor(self):
        return self.nested(self.plain_factor)

    def plain_factor(self):
        token = self.peek()
        if token.category == "number":
            self.advance()
            return Number(Fraction(token.value), token.start)
        if self.at_indicator():
            return self.indicator()
        if token.category == "op" and token.value in "([{":
            closing = {"(": ")", "[": "]", "{": "}"}[self.advance().value]
            inner = self.expression()
            self.expect_op(closing, f"'{closing}'")
            return inner
        if self.at_op("-") or self.at_op("+"):
            self.advance()
            inner = self.factor()
            return Add(((-1 if token.value == "-" else 1, inner),), token.start)
        if token.category == "sum" or (token.category == "name" and token.value == "sum"):
            return self.summation()
        if self.at_derivative():
            return self.upstream_derivative()
        if token.category == "frac":
            self.advance()
            self.expect_op("{", "'{' after \\frac")
            numerator = self.expression()
            self.expect_op("}", "'}' closing the numerator")
            self.expect_op("{", "'{' opening the denominator")
            denominator = self.expression()
            self.expect_op("}", "'}' closing the denominator")
            return Quotient(numerator, denominator, token.start)
        if token.category == "name":
            element = self.element()
            self.remember(element)
            return element
        raise self.error(f"expected a term, found {self.describe(token)}")

    def at_indicator(self) -> bool:
        """At ``[`` opening ``[x_ab = argmax z_ij]`` (``argmax`` or ``=`` before its ``]``)."""
        if not self.at_op("["):
            return False
        depth, index = 0, self.index
        while self.tokens[index].category != "end":
            token = self.tokens[index]
            if token.category == "op" and token.value in "[]":
                depth += 1 if token.value == "[" else -1
                if depth == 0:
                    return False
            elif depth == 1 and (token.category == "name" and token.value in ("argmax", "arg")
                                 or token.category == "op" and token.value == "="):
                return True
            index += 1
        return False

    def indicator(self) -> Indicator:
        """``[x_{ab} = argmax z_{ij}]``, ``[x_{ab} = \\arg\\max z_{ij}]``: max pooling's routing."""
        opened = self.advance()
        form = "[x_ab = argmax z_ij]"
        if not self.at("name"):
            raise self.error(f"expected an input element in the indicator {form}, found "
                             f"{self.describe(self.peek())}")
        candidate = self.element()
        if candidate.array != "x":
            raise self.error(f"the indicator {form} names an element of the input x (or a) "
                             f"before '='", candidate.position)
        self.expect_op("=", f"'=' in the indicator {form}")
        if self.at("name", "argmax"):
            self.advance()
        elif self.at("name", "arg") and self.at("name", "max", offset=1):
            self.index += 2
        else:
            raise self.error(f"expected argmax in the indicator {form}, found "
                             f"{self.describe(self.peek())}")
        if not self.at("name"):
            raise self.error(f"expected an output element in the indicator {form}, found "
                             f"{self.describe(self.peek())}")
        output = self.element()
        labelled = output.superscript is not None and output.superscript.layer is not None
        if output.array != "z" and not (output.array == "x" and labelled):  # a^{l}: the output
            raise self.error(f"the indicator {form} names an element of the layer output z "
                             f"after argmax", output.position)
        closing = self.expect_op("]", f"']' closing the indicator {form}")
        self.remember(candidate)
        self.remember(output)
        return Indicator(candidate, output, opened.start, closing.end)

    def upstream_derivative(self) -> Element:
        """``\\partial L/\\partial z_{m,n}`` on the right side: the upstream gradient."""
        position = self.peek().start
        _, element = self.derivative()
        if element.array != "z":
            raise self.error(
                "on the right side only the upstream gradient dL/dz can appear as a "
                "derivative", position)
        element = replace(element, array="g")
        self.remember(element)
        return element

    def summation(self) -> Summation:
        token = self.advance()
        if token.category == "name" and self.at_op("("):  # sum(body, m, n)
            self.advance()
            body = self.expression()
            if not self.at_op(","):
                raise self.error("name the summation indices: sum(body, m, n) or "
                                 "sum(body, (m, 0, 1))")
            variables = []
            while self.at_op(","):
                self.advance()
                variables.append(self.plain_sum_variable())
            self.expect_op(")", "')' closing sum(...)")
            return Summation(tuple(variables), body, token.start, closed=True)
        names, lower, upper = [], None, None
        if self.at_op("_"):
            self.advance()
            if self.at_op("{"):
                self.advance()
                names = self.sum_names()
                if self.at_op("="):
                    self.advance()
                    lower = self.index_expression()
                self.expect_op("}", "'}' after the summation index")
            elif self.at("name"):
                names = [(self.peek().value, self.advance().start)]
            else:
                raise self.error("expected the summation index after '_'")
        if self.at_op("^"):
            self.advance()
            if self.at_op("{"):
                self.advance()
                upper = self.index_expression()
                self.expect_op("}", "'}' after the upper limit")
            else:
                upper = self.index_atom()
        if not names:
            raise self.error("a sum needs its index: \\sum_m, \\sum_{m=0}^{1} or sum(body, m)",
                             token.start)
        if (lower is None) != (upper is None):
            raise self.error("give both limits, \\sum_{m=0}^{1}, or neither: a sum without "
                             "limits runs over every index value where all its terms exist",
                             token.start)
        if len(names) == 1 and len(names[0][0]) > 1 and lower is None:  # \sum_{mn}
            name, start = names[0]
            names = [(char, start + offset) for offset, char in enumerate(name)]
        variables = tuple(SumVariable(name, lower, upper, start, name) for name, start in names)
        return Summation(variables, self.term(), token.start)

    def sum_names(self) -> list:
        names = []
        while True:
            if not self.at("name"):
                raise self.error(f"expected a summation index, found {self.describe(self.peek())}")
            token = self.advance()
            names.append((token.value, token.start))
            if not self.at_op(","):
                return names
            self.advance()

    def plain_sum_variable(self) -> SumVariable:
        if self.at("name"):
            token = self.advance()
            return SumVariable(token.value, None, None, token.start, token.value)
        if self.at_op("("):
            self.advance()
            if not self.at("name"):
                raise self.error("expected (index, first, last), e.g. (m, 0, 1)")
            token = self.advance()
            self.expect_op(",", "',' after the index name")
            lower = self.index_expression()
            self.expect_op(",", "',' after the first value")
            upper = self.index_expression()
            self.expect_op(")", "')'")
            return SumVariable(token.value, lower, upper, token.start, token.value)
        raise self.error(f"expected a summation index, found {self.describe(self.peek())}")


# -- flattening the right side ------------------------------------------------------------
def products(node, text: str = "") -> list[ProductTerm]:
    """The right side as a list of :class:`ProductTerm` (sums distributed over products).

    Every summation index gets a unique name (``m#1``), so that ``(\\sum_m a_m)(\\sum_m b_m)``
    keeps its two ``m`` apart.  ``text`` is the formula, for error messages.
    """
    counter = itertools.count(1)

    def walk(node) -> list[ProductTerm]:
        if isinstance(node, Number):
            return [ProductTerm(node.value, (), ())]
        if isinstance(node, (Element, Indicator)):
            return [ProductTerm(Fraction(1), (), (node,))]
        if isinstance(node, Add):
            return [replace(term, coefficient=sign * term.coefficient)
                    for sign, child in node.terms for term in walk(child)]
        if isinstance(node, Product):
            result = [ProductTerm(Fraction(1), (), ())]
            for factor in node.factors:
                parts = walk(factor)
                if len(result) * len(parts) > MAX_PRODUCTS:
                    raise FormulaError(
                        f"multiplied out, this product has more than {MAX_PRODUCTS:,} terms; "
                        f"write the formula as a sum of shorter products", text, node.position)
                result = [ProductTerm(a.coefficient * b.coefficient, a.variables + b.variables,
                                      a.elements + b.elements)
                          for a in result for b in parts]
            return result
        if isinstance(node, Quotient):
            denominator = walk(node.denominator)
            if any(term.elements or term.variables for term in denominator):
                raise FormulaError("only division by a number is supported", text,
                                   node.position)
            value = sum((term.coefficient for term in denominator), Fraction(0))
            if value == 0:
                raise FormulaError("division by zero", text, node.position)
            return [replace(term, coefficient=term.coefficient / value)
                    for term in walk(node.numerator)]
        if isinstance(node, Summation):
            mapping = {v.name: f"{v.name}#{next(counter)}" for v in node.variables}
            variables = tuple(replace(v, name=mapping[v.name]) for v in node.variables)
            result = []
            for term in walk(node.body):
                elements = tuple(e.renamed(mapping) for e in term.elements)
                inner = tuple(replace(v, lower=_rename(v.lower, mapping),
                                      upper=_rename(v.upper, mapping)) for v in term.variables)
                result.append(ProductTerm(term.coefficient, variables + inner, elements))
            return result
        raise TypeError(f"unknown formula node {node!r}")  # pragma: no cover

    return [term for term in walk(node) if term.coefficient != 0]


def _rename(linear: Affine | None, mapping: dict) -> Affine | None:
    return None if linear is None else linear.renamed(mapping)


def _is_layer_label(label: Affine, numbers: bool) -> bool:
    """``l``, ``l-1``, ``L+1`` (one layer letter, coefficient 1), or with ``numbers`` a
    layer number 0, 1, 2, ..."""
    if not label.coefficients:
        return numbers and label.constant >= 0
    if len(label.coefficients) != 1:
        return False
    name, coefficient = label.coefficients[0]
    return name in LAYER_LETTERS and coefficient == 1


def _layer_superscript(superscript: Superscript) -> str:
    """The layer part of a superscript as printed (``^{l-1}``, ``^l``); no transpose."""
    if not superscript.layer_text:
        return ""
    if superscript.channels is None and not superscript.transposed:
        return superscript.text
    return f"^{{{superscript.layer_text}}}"


def _with_channels(subscript: Subscript | None, superscript: Superscript) -> Subscript:
    """The channel indices of ``a^{(1)}_{11}`` first, then the subscript's."""
    channels = superscript.channels
    if subscript is None:
        return Subscript(parts=channels, pieces=None, position=superscript.position + 1)

    def joined(group):
        return None if group is None else channels + group
    return replace(subscript, parts=joined(subscript.parts), pieces=joined(subscript.pieces))
