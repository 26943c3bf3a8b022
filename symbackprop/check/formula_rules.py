r"""Stage: text -> :class:`RuleCheck`, a formula that is not a sum of products, judged.

:mod:`~symbackprop.check.formula` reads element-level polynomial formulas (sums of
products of elements).  What students write is often something else:

- activation derivatives and functions: ``f'(net)``, ``\sigma(x)(1-\sigma(x))``,
  ``1 - \tanh^2(x)``, ``\exp``, ``e^{x}``, ``\log``, the indicator ``[x > 0]``,
  ``\mathbb{1}(x>0)``, ``\max(0, x)``;
- matrix-level rules: ``\delta^{l-1} = \operatorname{corr}(\operatorname{pad}_P(g),
  \operatorname{rot}_{180}(w))``, ``\mathrm{conv2}(\delta, W, \text{'full'})``,
  ``\mathrm{kron}(\delta, \mathbf{1}_{2\times 2}) / 4``, ``W^T \delta``, the
  element-wise product ``\odot`` / ``\circ``;
- chain-rule steps with intermediate partials, ``\frac{\partial E}{\partial net_{11}}
  \frac{\partial net_{11}}{\partial a_{11}}``, and several ``=`` in a row.

Here such a formula is parsed into an expression tree (:func:`parse_rule`; nothing is
ever evaluated as Python), instantiated over the layer's real shapes on NumPy object
arrays of the derivation's SymPy symbols (:class:`_Evaluator`), and compared with the
derivation element by element (:func:`_compare`): symbolically when ``expand`` (or a
``simplify`` bounded in time) decides, else at several random numeric points, and the
verdict says which.  A wrong rule is re-evaluated with the classic mistakes undone
(kernel flipped, transpose toggled, padding mode, stride zeros) to name the one it
matches.

Nothing here names a layer kind: the layer's own ``f`` is read off the derivation
(an element-wise layer's output as a function of its input), and the parameters that
``\operatorname{pad}_P``, ``\operatorname{dil}_s`` and the like leave implicit come from
the kind's :attr:`~symbackprop.check.formula_check.FormulaParts.parameters`.  A kind's own
names (batch norm's ``\mu``, ``\sigma``, ``\hat{x}``, ``\gamma``, ``m``; a loss's ``p``,
``y``, ``N``) come from its
:attr:`~symbackprop.check.formula_check.FormulaParts.quantities`, its classic mistakes
from :attr:`~symbackprop.check.formula_check.FormulaParts.mistakes`.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import re
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
import sympy

from symbackprop.check.formula import Affine, FormulaError, TokenCursor
from symbackprop.core.naming import Notation, parse_element, plain_subscript, to_grid
from symbackprop.core.rules import correlate2d, dilate, pad2d, rot180
from symbackprop.render.text import TextPrinter

__all__ = ["RuleCheck", "RuleResult", "parse_rule", "check_rule", "split_equations",
           "NAMED_FUNCTIONS", "check_chain_rule",
           "NUMERIC_POINTS", "SIMPLIFY_SECONDS", "MAX_RULE_ELEMENTS"]

#: Random points at which two expressions SymPy cannot compare symbolically are compared.
NUMERIC_POINTS = 8
#: Longest time one ``sympy.simplify`` may take before the numeric comparison is used.
SIMPLIFY_SECONDS = 1.0
#: (the whole check shares this budget; what it leaves undecided is compared numerically)
#: Most elements a rule's arrays (and sums) may have: bounded work on any input.
MAX_RULE_ELEMENTS = 20_000
#: Largest count of operations of an expression handed to ``simplify``.
_SIMPLIFY_OPS = 80

# -- tokens ----------------------------------------------------------------------------
_FONTS = ("mathrm", "mathit", "mathcal", "mathbf", "mathsf", "mathbb", "operatorname",
          "text", "textrm", "textit", "texttt", "textnormal", "boldsymbol", "bm", "mathtt",
          "operatorname*")
_TOKEN = re.compile(r"""
    (?P<space>\s+|\$|~|&)
  | (?P<font>\\(?P<font_cmd>mathrm|mathit|mathcal|mathbf|mathsf|mathbb|operatorname\*?|text|
        textrm|textit|texttt|textnormal|boldsymbol|bm|mathtt)\s*\{(?P<font_body>[^{}]*)\})
  | (?P<hat>\\(?:hat|widehat)\s*(?:\{\s*(?P<hat_braced>[A-Za-z])\s*\}|(?P<hat_plain>[A-Za-z])))
  | (?P<command>\\(?:[A-Za-z]+|.))
  | (?P<string>'(?:full|valid|same)'|"(?:full|valid|same)")
  | (?P<word>rot180|rot90|convolve2d|conv2|corr2|xcorr2|correlate2d|filter2)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>[A-Za-z]+)
  | (?P<op>\.\*|>=|<=|!=|[{}\[\]()_^,+\-*/=<>'|;])
""", re.VERBOSE)
_COMMANDS = {
    "\\frac": ("frac", ""), "\\dfrac": ("frac", ""), "\\tfrac": ("frac", ""),
    "\\partial": ("partial", ""), "\\sum": ("sum", ""),
    "\\cdot": ("op", "*"), "\\times": ("op", "*"), "\\ast": ("op", "conv*"),
    "\\odot": ("op", "odot"), "\\circ": ("op", "odot"), "\\otimes": ("op", "kron"),
    "\\star": ("op", "star"), "\\gt": ("op", ">"), "\\lt": ("op", "<"),
    "\\geq": ("op", ">="), "\\ge": ("op", ">="), "\\leq": ("op", "<="), "\\le": ("op", "<="),
    "\\geqslant": ("op", ">="), "\\leqslant": ("op", "<="),
    "\\prime": ("op", "'"), "\\top": ("name", "T"), "\\intercal": ("name", "T"),
    "\\lbrack": ("op", "["), "\\rbrack": ("op", "]"), "\\{": ("op", "("), "\\}": ("op", ")"),
    "\\lvert": ("op", "|"), "\\rvert": ("op", "|"),
    "\\delta": ("name", "delta"), "\\sigma": ("name", "sigma"),
    "\\exp": ("name", "exp"), "\\log": ("name", "log"), "\\ln": ("name", "log"),
    "\\max": ("name", "max"), "\\phi": ("name", "phi"), "\\varphi": ("name", "varphi"),
    "\\nabla": ("name", "nabla"), "\\mathbb": ("name", "mathbb"),
    "\\mathbf": ("name", "mathbf"),
    # letters a layer kind may give a meaning (FormulaParts.quantities): batch norm's
    # gamma, beta, mu, epsilon
    "\\gamma": ("name", "gamma"), "\\beta": ("name", "beta"), "\\mu": ("name", "mu"),
    "\\epsilon": ("name", "epsilon"), "\\varepsilon": ("name", "epsilon"),
}
_IGNORED = {
    "\\left", "\\right", "\\big", "\\Big", "\\bigg", "\\Bigg", "\\bigl", "\\bigr", "\\Bigl",
    "\\Bigr", "\\biggl", "\\biggr", "\\Biggl", "\\Biggr", "\\displaystyle", "\\limits",
    "\\nolimits", "\\quad", "\\qquad", "\\,", "\\;", "\\:", "\\!", "\\ ", "\\[", "\\]",
    "\\(", "\\)", "\\nonumber", "\\notag", "\\middle",
}
_UNICODE = {
    "∂": ("partial", ""), "δ": ("name", "delta"), "σ": ("name", "sigma"), "∑": ("sum", ""),
    "Σ": ("sum", ""), "·": ("op", "*"), "⋅": ("op", "*"), "×": ("op", "*"),
    "∗": ("op", "conv*"), "−": ("op", "-"), "–": ("op", "-"), "⊙": ("op", "odot"),
    "∘": ("op", "odot"), "⊗": ("op", "kron"), "⋆": ("op", "star"), "≥": ("op", ">="),
    "≤": ("op", "<="), "′": ("op", "'"), "∇": ("name", "nabla"), "ᵀ": ("name", "T"),
}


@dataclass(frozen=True)
class _Token:
    category: str      # name, number, op, string, frac, partial, sum, font, end
    value: str
    start: int
    end: int
    spaced: bool
    font: str = ""


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
        if category in ("font_cmd", "font_body"):
            category = "font"
        if category in ("hat", "hat_braced", "hat_plain"):  # \hat{x}: the name xhat
            letter = match.group("hat_braced") or match.group("hat_plain")
            tokens.append(_Token("name", letter + "hat", position, match.end(), spaced))
            position, spaced = match.end(), False
            continue
        if category == "space" or (category == "command" and value in _IGNORED):
            spaced = True
        elif category == "command" and value not in _COMMANDS and value[1:] in NAMED_FUNCTIONS:
            tokens.append(_Token("name", value[1:], position, match.end(), spaced))
            spaced = False
        elif category == "command":
            if value not in _COMMANDS:
                raise FormulaError(f"unknown LaTeX command {value}", text, position)
            category, value = _COMMANDS[value]
            tokens.append(_Token(category, value, position, match.end(), spaced))
            spaced = False
        elif category == "font":
            body = match.group("font_body").strip()
            command = match.group("font_cmd").rstrip("*")
            plain = body.strip("'\"").strip()
            if plain in ("full", "valid", "same"):
                tokens.append(_Token("string", plain, position, match.end(), spaced))
            elif body == "1" and command in ("mathbb", "mathbf", "bm", "boldsymbol"):
                tokens.append(_Token("name", "ONE" if command != "mathbb" else "IND",
                                     position, match.end(), spaced))
            elif body == "T" and command in ("mathsf", "mathrm", "text"):
                tokens.append(_Token("name", "T", position, match.end(), spaced))
            else:
                inner = _tokenize(body)
                for token in inner[:-1]:  # words in a font: their own tokens, at the font
                    tokens.append(replace(token, start=position, end=match.end(),
                                          spaced=spaced and token is inner[0], font=command))
            spaced = False
        else:
            if category == "word":
                category = "name"
            elif category == "string":
                value = value.strip("'\"")
            tokens.append(_Token(category, value, position, match.end(), spaced))
            spaced = False
        position = match.end()
    tokens.append(_Token("end", "", len(text), len(text), spaced))
    return tokens


# -- the expression tree ---------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    value: Fraction
    position: int


@dataclass(frozen=True)
class Str:
    value: str
    position: int


@dataclass(frozen=True)
class Name:
    """An array or one of its elements: ``\\delta^{l}_{i,j}``, ``W^T``, ``net_{11}``."""

    name: str                 # canonical: x, net, o, g, w, b, loss, ... (see _ROLES)
    written: str
    position: int
    parts: tuple | None = None    # subscript as comma-separated index expressions
    pieces: tuple | None = None   # subscript read character by character (_{12}, _{ij})
    layer: int | None = None      # offset of a layer label (l-1 -> -1), None if none
    channels: tuple = ()          # ^{(1)}: channel indices written as a superscript
    transposed: bool = False
    script: str = ""              # the layer superscript as written, "^{l-1}"
    number: int | None = None     # a chain's layer number, a^{[2]}


@dataclass(frozen=True)
class Call:
    function: str             # canonical function name
    args: tuple
    position: int
    prime: int = 0            # f', f''
    power: object = None      # \tanh^2(x)
    sub: tuple = ()           # subscript tokens as parameters: pad_P, corr_{step d}
    written: str = ""
    layer: int | None = None  # g^{[l]\prime}: the activation of layer l (offset), in a chain
    number: int | None = None  # g^{[1]\prime}: the activation of layer 1, in a chain


@dataclass(frozen=True)
class Binary:
    op: str                   # + - * / ^ odot kron star conv* matmul
    left: object
    right: object
    position: int


@dataclass(frozen=True)
class Negate:
    operand: object
    position: int


@dataclass(frozen=True)
class Compare:
    op: str
    left: object
    right: object
    position: int


@dataclass(frozen=True)
class Derivative:
    """``\\frac{\\partial top}{\\partial bottom}``; ``top`` None is the loss."""

    top: Name | None
    bottom: Name
    position: int


@dataclass(frozen=True)
class Sum:
    variables: tuple          # ((name, lower Affine | None, upper Affine | None), ...)
    body: object
    position: int


@dataclass(frozen=True)
class Ones:
    rows: int
    cols: int
    position: int


@dataclass(frozen=True)
class Equation:
    """One line: ``sides[0] = sides[1] = ...``; ``sides[0]`` says which gradient."""

    text: str
    left: object              # Derivative (loss by a name), or Name (delta^{l-1}, dx, ...)
    rights: tuple


#: written name -> canonical name.  ``x``: the layer input; ``net``: a pre-activation
#: (an element-wise layer's input, else the layer output); ``o``: the layer output;
#: ``g``: the upstream gradient; ``loss``; ``w``, ``b``; ``dx`` etc. are gradients.
_ROLES = {
    "x": "x", "a": "x", "A": "x", "X": "x", "net": "net", "z": "net", "Z": "net", "u": "net",
    "o": "o", "y": "o",
    "h": "o", "delta": "g", "g": "g", "dz": "g", "dout": "g", "dy": "g", "do": "g",
    "grad_z": "g", "grad_out": "g", "dnet": "g", "dZ": "g", "dA": "da", "da": "da",
    "E": "loss", "L": "loss", "J": "loss",
    "C": "loss", "W": "w", "w": "w", "K": "w", "k": "w", "theta": "w", "b": "b",
    "w_b": "b",
}
#: one-word gradients: written -> the array whose gradient it is.
_GRADIENT_WORDS = {"dx": "x", "da": "x", "dX": "x", "dA": "x", "dw": "w", "dW": "w",
                   "dK": "w", "db": "b", "dw_b": "b", "grad_x": "x", "grad_a": "x",
                   "grad_w": "w", "grad_W": "w", "grad_b": "b", "dA_prev": "x",
                   "da_prev": "x", "dx_prev": "x"}
#: written function name -> canonical.
_FUNCTIONS = {
    "exp": "exp", "log": "log", "ln": "log", "max": "max", "rot180": "rot180",
    "rot": "rot180", "flip": "rot180", "rot90": "rot90", "pad": "pad", "dilate": "dilate",
    "dil": "dilate", "upsample": "upsample", "up": "upsample", "reshape": "reshape",
    "vec": "reshape", "unflatten": "reshape", "conv": "conv", "conv2": "conv", "convolve": "conv",
    "convolve2d": "conv", "corr": "corr", "corr2": "corr",
    "corr2d": "corr", "xcorr": "corr", "xcorr2": "corr", "correlate": "corr",
    "correlate2d": "corr", "filter2": "corr", "kron": "kron", "ones": "ones",
    "IND": "indicator", "sum": "sum", "f": "f", "phi": "f", "varphi": "f", "act": "f",
}
#: written name -> ``t -> SymPy expression``: functions a rule may apply by name, besides
#: ``\exp``, ``\log``, ``\max`` and the layer's own ``f``.  A layer kind adds its own
#: (an activation its function, by the name it prints) from its ``check.py``.
NAMED_FUNCTIONS = {
    "sigma": lambda t: 1 / (1 + sympy.exp(-t)), "logistic": lambda t: 1 / (1 + sympy.exp(-t)),
    "s": lambda t: 1 / (1 + sympy.exp(-t)),  # as derive writes the sigmoid's f'
    "step": lambda t: sympy.Piecewise((1, t > 0), (0, True)),
    "Heaviside": lambda t: sympy.Piecewise((1, t > 0), (0, True)),
    "sqrt": sympy.sqrt,
}
#: functions applied element by element, whose prime is their derivative.
_ELEMENTWISE = ("exp", "log", "f", "named")
_MODES = ("full", "valid", "same")


def split_equations(text: str) -> list[str]:
    r"""The equations of ``text``, one per line of an ``align`` (or of the text).

    ``\begin{align*} ... \end{align*}`` (and ``aligned``, ``eqnarray``, ``gather``),
    ``\tag{...}`` and ``\label{...}`` are dropped, lines split at ``\\`` (with an optional
    ``[2pt]``), at line breaks and at ``,\quad`` (the printouts' statements side by side);
    an empty line, and a line of parameters (``\text{with} s = ...``), are skipped.
    """
    body = re.sub(r"\\(?:begin|end)\s*\{\s*(?:align|aligned|alignat|eqnarray|gather|"
                  r"gathered|split|equation|multline)\*?\s*\}(?:\{\d+\})?", "\n", text)
    body = re.sub(r"\\(?:tag\*?|label)\s*\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", " ", body)
    lines = re.split(r"\\\\(?:\s*\[[^\]]*\])?|\n", body)
    found = []
    for line in lines:
        if re.match(r"\s*\\text\s*\{\s*(?:with|where)\b", line):
            continue  # the printout's "with s = (2, 2), P = ...": parameters, not a rule
        # derive's "dL/dx = g * f'(x) elementwise, f'(net) = [net > 0]: 1 if ...": the rule
        # and the definition of f', without the words around them
        line = re.sub(r"\s+element-?wise\b", "", line)
        statements = re.split(r",\s*(?=f'+\s*\()", line)
        line = ",\\quad ".join(
            re.sub(r":\s.*$", "", part) if part.startswith("f'") else part
            for part in statements)
        # "dL/dx = W^T g,\quad dL/dw = g x^T": one statement after the other
        for part in re.split(r",\s*\\q?quad\b", line):
            part = re.sub(r"\s*&\s*", " ", part).strip().rstrip(".,;").strip()
            if part.strip("$").strip():
                found.append(part)
    return found


def parse_rule(text: str, names=()) -> Equation:
    """Parse one equation (possibly ``A = B = C``) into an :class:`Equation`.

    ``names``: the words a layer kind gives a meaning of its own
    (:attr:`~symbackprop.check.formula_check.FormulaParts.quantities`); they are read as
    arrays, before any function or generic name of that spelling.

    Raises :class:`FormulaError` with the position of what is not understood.
    """
    try:
        return _Parser(text, names).equation()
    except RecursionError:
        raise FormulaError("this formula is nested too deeply to read", text, 0) from None


class _Parser(TokenCursor):
    def __init__(self, text: str, names=()):
        self.text = text
        self.names = frozenset(names)
        self.tokens = _tokenize(text)
        self.index = 0
        self.depth = 0

    def expect(self, value: str) -> _Token:
        if not self.at_op(value):
            raise self.error(f"expected '{value}', found {self.describe(self.peek())}")
        return self.advance()

    def nested(self, read):
        if self.depth >= 60:
            raise self.error("brackets and functions are nested more than 60 deep here")
        self.depth += 1
        try:
            return read()
        finally:
            self.depth -= 1

    # -- the equation -------------------------------------------------------------
    def equation(self) -> Equation:
        if self.at("end"):
            raise self.error("the formula is empty")
        left = self.left_side()
        rights = []
        while self.at_op("="):
            self.advance()
            if self.at("end"):
                raise self.error("the right side is empty")
            rights.append(self.expression())
        if not rights:
            raise self.error(f"expected '=' after the left side, found "
                             f"{self.describe(self.peek())}")
        if not self.at("end"):
            raise self.error(f"unexpected {self.describe(self.peek())}")
        return Equation(self.text, left, tuple(rights))

    def left_side(self):
        token = self.peek()
        if self.at_derivative():
            return self.derivative()
        if self.at("name", "nabla"):  # \nabla_W L
            self.advance()
            self.expect("_")
            closing = self.at_op("{")
            if closing:
                self.advance()
            name = self.name()
            if closing:
                self.expect("}")
            if not self.at("name") or _ROLES.get(self.peek().value) != "loss":
                raise self.error("expected the loss after \\nabla_{...}")
            self.advance()
            return Derivative(None, name, token.start)
        if token.category == "name" and (token.value in ("f", "g") and self.at_op("'", 1)
                                     or _FUNCTIONS.get(token.value) == "f"):
            return self.name_or_call()  # f'(net) = [net > 0]: the layer's derivative
        if token.category == "name":
            word = self.compound(token.value)
            if word in _GRADIENT_WORDS:  # dW, dx, grad_b, dA_prev
                self.index += 1 if word == token.value else 3
                found = Name("d" + _GRADIENT_WORDS[word], word, token.start)
                return self.name_scripts(found)
            if _ROLES.get(token.value) == "g":  # delta^{l-1}: the input's error term
                return self.name()
        raise self.error("the left side must be a gradient such as \\frac{\\partial L}"
                         "{\\partial x}, dL/dx_{ij}, \\delta^{l-1} or dW", token.start)

    def compound(self, word: str) -> str:
        """``w_b``, ``grad_x``, ``dA_prev``: a name with an underscore."""
        if self.at_op("_", 1) and self.at("name", offset=2):
            joined = f"{word}_{self.peek(2).value}"
            if joined in _ROLES or joined in _GRADIENT_WORDS:
                return joined
        return word

    # -- derivatives ----------------------------------------------------------------
    def is_differential(self, offset: int) -> bool:
        """``\\partial``, ``d`` then a name, or one word ``dL``."""
        token = self.peek(offset)
        if token.category == "partial":
            return True
        if token.category == "name" and token.value == "d":
            return self.at("name", offset=offset + 1) or self.at_op("{", offset + 1)
        return False

    def is_loss_word(self, offset: int) -> bool:
        token = self.peek(offset)
        return token.category == "name" and token.value[:1] == "d" and \
            _ROLES.get(token.value[1:]) == "loss"

    def at_derivative(self) -> bool:
        if self.at("frac") and self.at_op("{", 1):
            return self.is_differential(2) or self.is_loss_word(2)
        if self.at("partial"):
            return True
        if self.is_loss_word(0):
            return self.at_op("/", 1)
        return self.at("name", "d") and self.at("name", offset=1) and \
            _ROLES.get(self.peek(1).value) == "loss" and self.at_op("/", 2)

    def derivative(self) -> Derivative:
        start = self.peek().start
        if self.at("frac"):
            self.advance()
            self.expect("{")
            if self.is_loss_word(0) or self.is_differential(0) and (
                    self.at("name", offset=1) and _ROLES.get(self.peek(1).value) == "loss"
                    or self.at_op("{", 1) and self.at("name", offset=2)
                    and _ROLES.get(self.peek(2).value) == "loss"):
                top = self.differential()
            else:  # \frac{\partial \max(0, x_{11})}{\partial x_{11}}: any expression
                self.advance()
                top = self.expression()
            self.expect("}")
            self.expect("{")
            bottom = self.differential()
            self.expect("}")
        else:
            top = self.differential()
            self.expect("/")
            bottom = self.differential()
        if bottom is None:
            raise self.error("the variable of a derivative is an array or an element, not the "
                             "loss", start)
        return Derivative(top, bottom, start)

    def differential(self) -> Name | None:
        """``\\partial E``, ``\\partial{E_d}``, ``d w_{12}``, ``dL``: None for the loss."""
        token = self.peek()
        if token.category == "partial" or (token.category == "name" and token.value == "d"):
            self.advance()
            if self.at_op("{"):
                self.advance()
                name = self.name()
                self.expect("}")
                if self.at_op("_") or self.at_op("^"):
                    name = self.name_scripts(name)
            else:
                name = self.name()
        elif token.category == "name" and token.value[:1] == "d" and len(token.value) > 1:
            name = self.name(strip=1)
        else:
            raise self.error(f"expected \\partial L, dL or similar, found "
                             f"{self.describe(token)}")
        return None if name.name == "loss" else name

    # -- names ----------------------------------------------------------------------
    def name(self, strip: int = 0) -> Name:
        token = self.peek()
        word = token.value[strip:]
        if not strip:
            word = self.compound(word)
        self.advance()
        if word != token.value[strip:]:
            self.index += 2
        if word in self.names:  # the kind's own name (mu, xhat, gamma, p, y, N)
            found = self.squared(Name(word, word, token.start + strip))
            return self.squared(self.name_scripts(found))
        if word not in _ROLES:
            known = ("input x or a; pre-activation net or z; output o or y; upstream "
                     "gradient delta, g, dz or dL/dz; weights W, w or K; bias b or w_b; "
                     "loss E, L or J; functions f, \\sigma, \\tanh, \\exp, \\log, \\max, "
                     "conv, corr, rot180, pad, dilate, kron")
            raise self.error(f"unknown name {word!r}; the names are: {known}",
                             token.start + strip)
        found = Name(_ROLES[word], word, token.start + strip)
        return self.name_scripts(found)

    def squared(self, found: Name) -> Name:
        """``\\sigma^2`` (before or after its indices) as a name of its own where the kind
        gives ``sigma^2`` a meaning (the variance, while ``\\sigma`` alone is
        ``sqrt(sigma^2 + eps)``, as ``derive`` prints it)."""
        if found.name + "^2" not in self.names or found.name.endswith("^2") or \
                not self.at_op("^"):
            return found
        if self.at("number", "2", 1):
            self.index += 2
        elif self.at_op("{", 1) and self.at("number", "2", 2) and self.at_op("}", 3):
            self.index += 4
        else:
            return found
        return replace(found, name=found.name + "^2", written=found.written + "^2")

    def name_scripts(self, found: Name) -> Name:
        while True:
            token = self.peek()
            if self.at_op("_") and found.parts is None and found.name != "loss":
                found = self.subscript(found)
            elif self.at_op("_") and found.name == "loss":  # E_d
                self.advance()
                if self.at_op("{"):
                    self.skip_group()
                else:
                    self.advance()
            elif self.at_op("[") and found.parts is None and not token.spaced \
                    and self.bracket_is_subscript():
                found = self.subscript(found, bracket=True)
            elif token.category == "number" and not token.spaced and found.parts is None \
                    and "." not in token.value:
                self.advance()
                pieces = tuple(Affine(int(c)) for c in token.value)
                found = replace(found, parts=(Affine(int(token.value)),), pieces=pieces)
            elif self.at_op("^") and self.superscript_is_label():
                found = self.superscript(found)
            elif self.at_op("'") and found.name == "g":  # g'(z): Ng's activation
                return found
            else:
                return found

    def bracket_is_subscript(self) -> bool:
        """``g[1,2]`` (indices) rather than ``g [x > 0]`` (an indicator)."""
        depth, index = 0, self.index
        while self.tokens[index].category != "end":
            token = self.tokens[index]
            if token.category == "op" and token.value in "[]":
                depth += 1 if token.value == "[" else -1
                if depth == 0:
                    return True
            elif token.category == "op" and token.value in ("<", ">", "<=", ">=", "=", "!="):
                return False
            index += 1
        return True

    def superscript_is_label(self) -> bool:
        """``^{l-1}``, ``^{(1)}``, ``^T``, ``^{[2]}`` rather than a power ``^2``."""
        token = self.peek(1)
        if token.category == "name" and token.value in ("T", "l", "L"):
            return True
        if token.category == "op" and token.value in "([":
            return True
        if token.category == "op" and token.value == "{":
            inner = self.peek(2)
            return inner.category == "name" and inner.value in ("T", "l", "L") or \
                inner.category == "op" and inner.value in "([{" or \
                inner.category == "number" and inner.value == "2" and \
                self.peek(3).category == "op" and self.peek(3).value in "(["  # sigma^{2[2]}
        return False

    def skip_group(self):
        depth = 0
        while True:
            token = self.advance()
            if token.category == "end":
                raise self.error("a '{' is never closed with '}'", token.start)
            if token.category == "op" and token.value == "{":
                depth += 1
            elif token.category == "op" and token.value == "}":
                depth -= 1
            if depth == 0:
                return

    def subscript(self, found: Name, bracket: bool = False) -> Name:
        if not bracket:
            self.advance()
        if not bracket and not self.at_op("{"):
            token = self.advance()
            if token.category not in ("name", "number") or "." in token.value:
                raise self.error("expected indices after '_', such as _{i,j} or _{12}",
                                 token.start)
            whole = Affine(int(token.value)) if token.category == "number" \
                else Affine.variable(token.value)
            return replace(found, parts=(whole,), pieces=_pieces([token]))
        opening = self.advance()
        closing = "]" if opening.value == "[" else "}"
        start = self.index
        depth = 1
        while True:
            token = self.peek()
            if token.category == "end":
                raise self.error(f"this '{opening.value}' is never closed", opening.start)
            if token.category == "op" and token.value == opening.value:
                depth += 1
            elif token.category == "op" and token.value == closing:
                depth -= 1
                if depth == 0:
                    break
            self.advance()
        inner = self.tokens[start:self.index]
        self.index = start
        parts = None
        try:
            parts = [self.index_expression()]
            while self.at_op(","):
                self.advance()
                parts.append(self.index_expression())
            if not self.at_op(closing):
                raise self.error("expected ',' or the end of the indices")
            parts = tuple(parts)
        except FormulaError:
            if _pieces(inner) is None:
                raise
            parts = None
        self.index = start + len(inner) + 1
        if not inner:
            raise self.error("empty indices", opening.start)
        return replace(found, parts=parts, pieces=_pieces(inner))

    def superscript(self, found: Name) -> Name:
        caret = self.advance()
        braced = self.at_op("{")
        if braced:
            self.advance()
        while True:
            token = self.peek()
            if token.category == "name" and token.value == "T":
                self.advance()
                found = replace(found, transposed=not found.transposed)
            elif token.category == "number" and token.value == "2" and braced and \
                    found.name + "^2" in self.names:  # \sigma^{2[2]}: layer 2's variance
                self.advance()
                found = replace(found, name=found.name + "^2", written=found.written + "^2")
            elif token.category == "name" and token.value in ("l", "L"):
                found = replace(found, layer=self.layer_label(),
                                script=f"^{{{self.text[token.start:self.peek().start].strip()}}}")
            elif self.at_op("[") or self.at_op("(") or self.at_op("{"):
                opening = self.advance().value
                closing = {"[": "]", "(": ")", "{": "}"}[opening]
                if self.at("name") and self.peek().value in ("l", "L"):
                    found = replace(found, layer=self.layer_label())
                    self.expect(closing)
                    found = replace(found, script="^{" + self.text[
                        token.start:self.peek(-1).end] + "}")
                elif self.at("name", "T"):
                    self.advance()
                    found = replace(found, transposed=True)
                    self.expect(closing)
                else:
                    group = [self.index_expression()]
                    while self.at_op(","):
                        self.advance()
                        group.append(self.index_expression())
                    self.expect(closing)
                    if opening == "[":
                        if len(group) != 1 or group[0].coefficients or group[0].constant < 0:
                            raise self.error("a layer label is l, l-1, l+1 or a layer "
                                             "number of a chain, [2]", token.start)
                        found = replace(found, number=group[0].constant,
                                        script=f"^{{[{group[0].constant}]}}")
                    else:
                        found = replace(found, channels=tuple(group))
            elif token.category == "op" and token.value == ",":
                self.advance()
            else:
                break
            if not braced:
                break
        if braced:
            if not self.at_op("}"):
                raise self.error(f"{self.describe(self.peek())} is not understood in a "
                                 f"superscript: a layer (l-1, [l], (l)), channels ((1)) or "
                                 f"a transpose (T)")
            self.advance()
        elif self.index == self.tokens.index(caret) + 1:
            raise self.error("a superscript is a layer, channels or a transpose")
        return found

    def layer_label(self) -> int:
        self.advance()  # l or L
        offset = 0
        if self.at_op("+") or self.at_op("-"):
            sign = -1 if self.advance().value == "-" else 1
            if not self.at("number"):
                raise self.error("a layer label is l, l-1 or l+1")
            offset = sign * int(self.advance().value)
        return offset

    # -- index expressions ---------------------------------------------------------------
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
        while self.at_op("*") or (self.peek(-1).category == "number" and self.at("name")):
            if self.at_op("*"):
                self.advance()
            other = self.index_atom()
            if value.coefficients and other.coefficients:
                raise self.error("an index must be linear in the index names")
            value = other.scaled(value.constant) if not value.coefficients \
                else value.scaled(other.constant)
        return value

    def index_atom(self) -> Affine:
        return self.nested(self.plain_index_atom)

    def plain_index_atom(self) -> Affine:
        token = self.advance()
        if token.category == "number" and "." not in token.value:
            return Affine(int(token.value))
        if token.category == "name" and len(token.value) == 1:
            return Affine.variable(token.value)
        if token.category == "op" and token.value in "({":
            value = self.index_expression()
            self.expect(")" if token.value == "(" else "}")
            return value
        raise self.error(f"expected an index, found {self.describe(token)}", token.start)

    # -- the right side ---------------------------------------------------------------
    def expression(self):
        position = self.peek().start
        node = None
        if self.at_op("+") or self.at_op("-"):
            negative = self.advance().value == "-"
            node = self.term()
            if negative:
                node = Negate(node, position)
        else:
            node = self.term()
        while self.at_op("+") or self.at_op("-"):
            operator = self.advance()
            node = Binary(operator.value, node, self.term(), operator.start)
        if self.at("name", "if"):  # derive's "(1 if x11 > 0 else 0.01)"
            token = self.advance()
            condition = self.comparison()
            if not self.at("name", "else"):
                raise self.error("expected 'else' after 'A if condition'")
            self.advance()
            otherwise = self.expression()
            node = Call("where", (condition, node, otherwise), token.start, written="if")
        return node

    def starts_factor(self) -> bool:
        token = self.peek()
        if token.category == "name" and token.value in ("if", "else"):
            return False
        return token.category in ("name", "number", "frac", "partial", "sum", "string") or (
            token.category == "op" and token.value in "([{|")

    def term(self):
        node = self.power()
        while True:
            token = self.peek()
            if token.category == "op" and token.value in ("*", ".*", "odot", "kron", "star",
                                                       "conv*", "/"):
                self.advance()
                op = {".*": "odot"}.get(token.value, token.value)
                node = Binary(op, node, self.power(), token.start)
            elif self.starts_factor() and not isinstance(node, Sum):
                node = Binary("juxtapose", node, self.power(), token.start)
            else:
                return node

    def power(self):
        node = self.nested(self.primary)
        while self.at_op("^") and self.transpose_follows():
            self.advance()
            braced = self.at_op("{")
            if braced:
                self.advance()
            self.advance()  # T
            if braced:
                self.expect("}")
            node = Call("transpose", (node,), self.peek(-1).start, written="^T")
        while self.at_op("^"):
            caret = self.advance()
            exponent = self.script_value()
            node = Binary("^", node, exponent, caret.start)
        while self.at_op("'"):
            raise self.error("a prime belongs to a function name: f'(net), \\sigma'(x)")
        return node

    def transpose_follows(self) -> bool:
        """``^T``, ``^{T}``, ``^\\top`` after a group: a transpose, not a power."""
        return self.at("name", "T", 1) or (self.at_op("{", 1) and self.at("name", "T", 2)
                                           and self.at_op("}", 3))

    def script_value(self):
        """The exponent after ``^``: ``2``, ``{2}``, ``{-x}``, ``x``."""
        if self.at_op("{"):
            self.advance()
            value = self.expression()
            self.expect("}")
            return value
        token = self.advance()
        if token.category == "number":
            return Num(Fraction(token.value[:1]), token.start) if len(token.value) > 1 \
                and "." not in token.value else Num(Fraction(token.value), token.start)
        if token.category == "name":
            self.index -= 1
            return self.nested(self.primary)
        raise self.error(f"expected an exponent, found {self.describe(token)}", token.start)

    def primary(self):
        token = self.peek()
        if token.category == "number":
            self.advance()
            if self.at_op("_") and token.value == "1":  # 1_{x > 0}
                return self.subscript_indicator(token)
            return Num(Fraction(token.value), token.start)
        if token.category == "string":
            self.advance()
            return Str(token.value, token.start)
        if self.at_derivative():
            return self.derivative()
        if token.category == "partial" or (token.category == "frac" and self.is_differential(2)):
            return self.derivative_of_value()
        if token.category == "frac":
            self.advance()
            self.expect("{")
            numerator = self.expression()
            self.expect("}")
            self.expect("{")
            denominator = self.expression()
            self.expect("}")
            return Binary("/", numerator, denominator, token.start)
        if token.category == "sum":
            return self.summation()
        if token.category == "op" and token.value in "([{|":
            self.advance()
            if token.value == "[" and self.bracket_has_comparison():
                inner = self.comparison()
                self.expect("]")
                return Call("indicator", (inner,), token.start, written="[...]")
            closing = {"(": ")", "[": "]", "{": "}", "|": "|"}[token.value]
            inner = self.expression()
            self.expect(closing)
            if token.value == "|":
                return Call("abs", (inner,), token.start)
            return inner
        if token.category == "name":
            return self.name_or_call()
        raise self.error(f"expected a term, found {self.describe(token)}")

    def bracket_has_comparison(self) -> bool:
        depth, index = 0, self.index
        while self.tokens[index].category != "end":
            token = self.tokens[index]
            if token.category == "op" and token.value in "([{":
                depth += 1
            elif token.category == "op" and token.value in ")]}":
                if depth == 0:
                    return False
                depth -= 1
            elif depth == 0 and token.category == "op" and token.value in ("<", ">", "<=", ">=",
                                                                     "!="):
                return True
            index += 1
        return False

    def comparison(self) -> Compare:
        left = self.expression()
        token = self.peek()
        if not (token.category == "op" and token.value in ("<", ">", "<=", ">=", "!=")):
            raise self.error(f"expected a comparison such as x > 0, found "
                             f"{self.describe(token)}")
        self.advance()
        return Compare(token.value, left, self.expression(), token.start)

    def subscript_indicator(self, token: _Token):
        """``\\mathbb{1}_{x > 0}``, ``1_{x>0}``."""
        self.expect("_")
        self.expect("{")
        inner = self.comparison()
        self.expect("}")
        return Call("indicator", (inner,), token.start, written="1_{...}")

    def derivative_of_value(self) -> Derivative:
        """``\\frac{\\partial net_{11}}{\\partial a_{11}}``: a local derivative."""
        return self.derivative()

    def summation(self) -> Sum:
        token = self.advance()
        variables = []
        if self.at_op("_"):
            self.advance()
            if self.at_op("{"):
                self.advance()
                names = []
                while True:
                    if not self.at("name"):
                        raise self.error("expected a summation index")
                    names.append(self.advance().value)
                    if not self.at_op(","):
                        break
                    self.advance()
                lower = None
                if self.at_op("="):
                    self.advance()
                    lower = self.index_expression()
                self.expect("}")
                if len(names) == 1 and len(names[0]) > 1 and lower is None:
                    names = list(names[0])
                upper = None
                if self.at_op("^"):
                    self.advance()
                    upper = self.index_expression() if not self.at_op("{") else \
                        self.braced_index()
                if (lower is None) != (upper is None):
                    raise self.error("give both limits of a sum, or neither", token.start)
                variables = [(name, lower, upper) for name in names]
            elif self.at("name"):
                name = self.advance().value
                variables = [(name, None, None)] if len(name) == 1 else \
                    [(char, None, None) for char in name]
        if not variables:
            raise self.error("a sum needs its index: \\sum_{i,j}", token.start)
        return Sum(tuple(variables), self.term(), token.start)

    def braced_index(self) -> Affine:
        self.expect("{")
        value = self.index_expression()
        self.expect("}")
        return value

    def name_or_call(self):
        token = self.peek()
        word = token.value
        if word == "e" and self.at_op("^", 1):  # e^{x}
            self.advance()
            self.advance()
            argument = self.script_value()
            return Call("exp", (argument,), token.start, written="e^")
        if word == "IND":  # \mathbb{1}(x > 0), \mathbb{1}[x > 0], \mathbb{1}_{x>0}
            self.advance()
            if self.at_op("_"):
                return self.subscript_indicator(token)
            opening = self.advance()
            if not (opening.category == "op" and opening.value in "(["):
                raise self.error("write the indicator as \\mathbb{1}(x > 0) or [x > 0]",
                                 opening.start)
            inner = self.comparison()
            self.expect(")" if opening.value == "(" else "]")
            return Call("indicator", (inner,), token.start, written="\\mathbb{1}")
        if word == "ONE":  # \mathbf{1}_{2\times 2}: a matrix of ones
            self.advance()
            self.expect("_")
            closing = self.at_op("{")
            if closing:
                self.advance()
            rows = self.advance()
            cols = rows
            if self.at_op("*") or self.at_op(","):
                self.advance()
                cols = self.advance()
            if closing:
                self.expect("}")
            if rows.category != "number" or cols.category != "number":
                raise self.error("write a matrix of ones as \\mathbf{1}_{2\\times 2}",
                                 rows.start)
            return Ones(int(rows.value), int(cols.value), token.start)
        if word in self.names and not self.at_op("(", 1):  # sigma_j^2: the kind's name
            return self.name()
        known = word in _FUNCTIONS or word in NAMED_FUNCTIONS
        is_function = known and (
            word not in _ROLES or self.at_op("'", 1) or self.at_op("(", 1)
            and word in ("f", "g") or word == "g" and self.at_op("'", 1))
        if word == "g" and (self.at_op("'", 1) or self.labelled_prime_follows()):
            is_function = True
        if not is_function:
            return self.name()
        self.advance()
        function = "f" if word == "g" else _FUNCTIONS.get(word, "named")
        prime, power, sub = 0, None, ()
        label = (None, None)
        while True:
            if self.at_op("'"):
                self.advance()
                prime += 1
            elif self.at_op("^") and label == (None, None) and self.labelled_prime_follows(0):
                label, primes = self.function_label()
                prime += primes
            elif self.at_op("^") and self.at_op("'", 1):  # f^\prime
                self.index += 2
                prime += 1
            elif self.at_op("^") and self.at_op("{", 1) and self.at_op("'", 2):  # f^{\prime}
                self.index += 2
                while self.at_op("'"):
                    self.advance()
                    prime += 1
                self.expect("}")
            elif self.at_op("^") and power is None:
                self.advance()
                power = self.script_value()
            elif self.at_op("_") and not sub:
                self.advance()
                if self.at_op("{"):
                    opening = self.advance()
                    start = self.index
                    depth = 1
                    while depth:
                        inner = self.advance()
                        if inner.category == "end":
                            raise self.error("this '{' is never closed", opening.start)
                        if inner.category == "op" and inner.value in "{}":
                            depth += 1 if inner.value == "{" else -1
                    sub = tuple(t for t in self.tokens[start:self.index - 1])
                else:
                    sub = (self.advance(),)
            else:
                break
        if function == "ones":
            self.expect("(")
            rows = self.index_expression()
            cols = rows
            if self.at_op(","):
                self.advance()
                cols = self.index_expression()
            self.expect(")")
            if rows.coefficients or cols.coefficients:
                raise self.error("ones(m, n) takes numbers", token.start)
            return Ones(rows.constant, cols.constant, token.start)
        if self.at_op("("):
            self.advance()
            args = [self.argument()]
            while self.at_op(","):
                self.advance()
                args.append(self.argument())
            self.expect(")")
        elif function in ("named", "exp", "log", "f") and self.starts_factor():
            args = [self.power_free_factor()]
        else:
            raise self.error(f"{word} takes its arguments in parentheses: {word}(...)",
                             token.start)
        return Call(function, tuple(args), token.start, prime=prime, power=power, sub=sub,
                    written=word, layer=label[0], number=label[1])

    def labelled_prime_follows(self, offset: int = 1) -> bool:
        r"""``g^{[1]\prime}``, ``g^{[l]'}``, ``f^{(l)}'``: a layer label then a prime after the
        function name (Ng's activation of layer 1), not a power."""
        if not self.at_op("^", offset):
            return False
        index = self.index + offset + 1
        tokens = self.tokens
        braced = tokens[index].category == "op" and tokens[index].value == "{"
        if braced:
            index += 1
        first = tokens[index]
        if not (first.category == "op" and first.value in "[(" or
                first.category == "name" and first.value in ("l", "L")):
            return False
        depth = 1 if braced else 0
        while tokens[index].category != "end":
            token = tokens[index]
            if token.category == "op" and token.value == "'":
                return True
            if token.category == "op" and token.value == "{":
                depth += 1
            elif token.category == "op" and token.value == "}":
                depth -= 1
                if depth <= 0:
                    following = tokens[index + 1]
                    return following.category == "op" and following.value == "'"
            elif not braced and token.category == "op" and token.value in ")]":
                following = tokens[index + 1]
                return following.category == "op" and following.value == "'"
            index += 1
        return False

    def function_label(self) -> tuple:
        r"""``((layer offset, layer number), primes)`` of ``^{[1]\prime}``, ``^{[l]'}``."""
        self.advance()  # ^
        braced = self.at_op("{")
        if braced:
            self.advance()
        closing = None
        if self.at_op("[") or self.at_op("("):
            closing = "]" if self.advance().value == "[" else ")"
        layer = number = None
        if self.at("name") and self.peek().value in ("l", "L"):
            layer = self.layer_label()
        elif self.at("number") and "." not in self.peek().value:
            number = int(self.advance().value)
        else:
            raise self.error("a layer label is l, l-1, l+1 or a layer number: g^{[1]\\prime}")
        if closing:
            self.expect(closing)
        primes = 0
        if braced:
            while self.at_op("'"):
                self.advance()
                primes += 1
            self.expect("}")
        return (layer, number), primes

    def argument(self):
        if self.at("string"):
            token = self.advance()
            return Str(token.value, token.start)
        if self.bracket_has_comparison_here():
            return self.comparison()
        return self.expression()

    def bracket_has_comparison_here(self) -> bool:
        depth, index = 0, self.index
        while self.tokens[index].category != "end":
            token = self.tokens[index]
            if token.category == "op" and token.value in "([{":
                depth += 1
            elif token.category == "op" and token.value in ")]}" or \
                    depth == 0 and token.category == "op" and token.value == ",":
                if depth == 0:
                    return False
                depth -= 1
            elif depth == 0 and token.category == "op" and token.value in ("<", ">", "<=", ">="):
                return True
            index += 1
        return False

    def power_free_factor(self):
        return self.nested(self.primary)


def _pieces(tokens) -> tuple | None:
    """``12`` -> (1, 2); ``ij`` -> (i, j)."""
    found = []
    for token in tokens:
        if token.category not in ("name", "number") or "." in token.value:
            return None
        found += [Affine(int(c)) if c.isdigit() else Affine.variable(c) for c in token.value]
    return tuple(found) or None


# -- values ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Value:
    """An array (NumPy object array; 0-d for a number) and where it came from."""

    array: np.ndarray
    kernel: bool = False    # computed from the weights: convolution's second operand
    source: str = ""        # the array it was computed from (x, g, w, b, o) for messages

    @property
    def scalar(self) -> bool:
        return self.array.size == 1 and self.array.ndim == 0


def _scalar(value) -> _Value:
    array = np.empty((), dtype=object)
    array[()] = sympy.sympify(value)
    return _Value(array)


def _map(function, *values: _Value) -> _Value:
    try:
        arrays = np.broadcast_arrays(*[v.array for v in values])
    except ValueError:
        shapes = " and ".join(_shape_text(v.array.shape) for v in values)
        raise _ShapeMismatch(f"arrays of shapes {shapes} do not fit together here", "",
                             0) from None
    out = np.empty(arrays[0].shape, dtype=object)
    for index in np.ndindex(*out.shape):
        out[index] = function(*[a[index] for a in arrays])
    return _Value(out, kernel=any(v.kernel for v in values),
                  source=next((v.source for v in values if v.source), ""))


class _ShapeMismatch(FormulaError):
    """Arrays whose shapes do not fit an operation: a wrong rule, judged as such."""


class _Outside(Exception):
    """An element with indices outside its array (a sum without limits skips it)."""


@dataclass
class _Variant:
    """Classic mistakes undone: the user's expression re-evaluated with one change."""

    flip_kernel: bool = False
    transpose_w: bool = False
    mode: str | None = None
    dilate_g: bool = False
    flip_g: bool = False
    input_as_output: bool = False   # x where the output f(x) belongs
    output_as_input: bool = False   # the output f(x) where x belongs
    f_argument: str | None = None   # in a chain: f' taken at this array (the right z)


@dataclass
class _Context:
    derivation: object
    parameters: dict
    index_base: int
    notes: list = field(default_factory=list)
    input_at: int = -1
    variant: _Variant = field(default_factory=_Variant)
    used: set = field(default_factory=set)   # what the formula used: "dilate", "pad", ...
    #: the kind's own names (FormulaParts.quantities): name -> the name of one of the
    #: derivation's arrays, or ``derivation -> SymPy array or number``
    quantities: dict = field(default_factory=dict)
    #: ``context -> evaluator``: the evaluator for a rule across a chain's layers
    #: (:mod:`~symbackprop.check.formula_chain`); None: :class:`_Evaluator`
    make_evaluator: object = None
    #: extra classic mistakes, each ``(name, why, grid)``: the wrong gradient it gives
    candidates: tuple = ()
    #: extra classic mistakes, each ``(name, why, _Variant)``: the change that undoes it
    variants: tuple = ()
    #: True when the rule is read in Ng's layout, one sample per column (``W^T dZ`` with
    #: ``dZ`` of shape (features, samples)): whole batch arrays enter transposed
    samples_in_columns: bool = False
    #: what ``upsample(A)`` routes through, each ``(g grid, dL/dx grid)`` of a layer whose
    #: upsample is its own backward (max pooling, :attr:`FormulaParts.routes_upsample`):
    #: ``A`` of ``g``'s shape gives ``dL/dx`` with ``g``'s symbols replaced by ``A``
    routes: tuple = ()


def _evaluator(context: _Context) -> "_Evaluator":
    """The evaluator for ``context``: one layer's, or a chain's (``make_evaluator``)."""
    return context.make_evaluator(context) if context.make_evaluator else _Evaluator(context)


class _Evaluator:
    """Evaluates an expression tree on the layer's arrays of SymPy symbols."""

    def __init__(self, context: _Context):
        self.context = context
        derivation = context.derivation
        self.derivation = derivation
        self.grids = {"x": to_grid(derivation.x), "g": to_grid(derivation.g),
                      "o": to_grid(derivation.z)}
        for name, array in derivation.params.items():
            self.grids[name] = to_grid(array)
        self.shapes = dict(derivation.shapes)
        self.numbers = {}  # the kind's scalar names (m, N, epsilon)
        for name, source in context.quantities.items():
            if isinstance(source, str):
                arrays = {**derivation.params, **derivation.constants}
                if source not in arrays:  # gamma of a layer without affine parameters
                    continue
                self.grids[source] = to_grid(arrays[source])
                self.shapes.setdefault(source, self.grids[source].shape)
                continue
            value = source(derivation)
            if isinstance(value, np.ndarray):
                self.grids[name] = value
                self.shapes[name] = value.shape
            else:
                self.numbers[name] = sympy.sympify(value)
        self.elementwise = self._elementwise()
        self.notation = Notation(shapes=self.shapes, index_base=0)
        self.sum_depth = 0  # sums open around what is being evaluated

    def _elementwise(self) -> bool:
        """Whether the layer applies one function to each element (an activation)."""
        x, z = self.derivation.x, self.derivation.z
        if x.shape != z.shape or self.derivation.params:
            return False
        for symbol, output in zip(to_grid(x).flat, to_grid(z).flat, strict=True):
            if output.free_symbols - {symbol}:
                return False
        return True

    # -- the layer's function, read off the derivation ---------------------------------
    def activation(self, argument, prime: int):
        """``f(argument)`` or its ``prime``-th derivative, from the layer's first output."""
        x0 = to_grid(self.derivation.x).flat[0]
        z0 = to_grid(self.derivation.z).flat[0]
        expression = z0
        for _ in range(prime):
            expression = sympy.diff(expression, x0)
        return expression.xreplace({x0: argument}) if argument != x0 else expression

    # -- names ---------------------------------------------------------------------------
    def role(self, name: Name) -> str:
        """The array ``name`` stands for: x, o, g, w, b, dx, or an error."""
        canonical = name.name
        source = self.context.quantities.get(canonical)
        if source is not None:
            return source if isinstance(source, str) else canonical
        side = None
        if name.layer is not None:
            side = "input" if name.layer == self.context.input_at else "output"
        if canonical == "x":
            return "o" if side == "output" else "x"
        if canonical == "net":
            if self.elementwise:
                return "x"
            return "o" if side != "input" else "previous"
        if canonical == "o":
            return "x" if side == "input" and not self.elementwise else "o"
        if canonical == "g":
            return "dx" if side == "input" else "g"
        if canonical == "da":  # dA^{l}: the gradient of the layer output, the upstream one
            return "dx" if side == "input" else "g"
        if canonical in ("w", "b"):
            if side == "input":
                raise FormulaError(f"{name.written} is at the layer of this layer's input; "
                                   f"its parameters belong to the layer of its output",
                                   "", name.position)
            return canonical
        raise FormulaError(f"{name.written} cannot appear here", "", name.position)

    def grid(self, role: str, name: Name) -> np.ndarray:
        if role == "previous":
            raise FormulaError(f"{name.written} is the previous layer's pre-activation, not "
                               f"part of this layer ({self.derivation.layer.describe()})",
                               "", name.position)
        if role == "dx":
            raise FormulaError(f"{name.written} is the error term of this layer's input: "
                               f"what the formula computes, not something it may use",
                               "", name.position)
        if role not in self.grids:
            raise FormulaError(f"{name.written}: this layer has no such array "
                               f"({self.derivation.layer.describe()})", "", name.position)
        return self.grids[role]

    def shape_key(self, role: str) -> str:
        return {"o": "z", "dx": "x"}.get(role, role)

    def kind(self, role: str) -> str:
        """What ``role`` is for the classic mistakes: ``w`` (a kernel), ``g`` (an error
        term), ``x`` (an input), ``o`` (an output), or the role itself."""
        return role

    def swapped(self, role: str) -> str:
        """``role`` with the variant's input/output swap applied (the f' mistakes)."""
        variant = self.context.variant
        if variant.input_as_output and role == "x":
            return "o"
        if variant.output_as_input and role == "o":
            return "x"
        return role

    def target(self, equation: "Equation"):
        """``(array, grid of the truth, Name as written)`` of the left side."""
        return _target(self, equation)

    def written_names(self, equation: "Equation") -> dict:
        """Array -> the name the person first gave it, for printing."""
        return _written_names(self, equation)

    def element(self, name: Name, env: dict) -> _Value:
        role = self.role(name)
        if role in self.numbers:
            if name.parts is not None or name.pieces is not None:
                raise FormulaError(f"{name.written} is a number here: it takes no indices",
                                   "", name.position)
            return _scalar(self.numbers[role])
        role = self.swapped(role)
        plays = self.kind(role)  # what the array plays: w a kernel, g an error term
        grid = self.grid(role, name)
        if plays == "w" and self.context.variant.flip_kernel:
            grid = rot180(grid)
        if plays == "g" and self.context.variant.flip_g and grid.ndim >= 2:
            grid = rot180(grid)
        if plays == "w" and self.context.variant.transpose_w and grid.ndim == 2:
            grid = grid.T
        transposed = name.transposed
        if name.parts is None and name.pieces is None and not name.channels:
            array = grid
            if array.ndim == 2 and array.shape[0] == 1 and plays in ("x", "g", "o"):
                array = array.reshape(-1, 1)  # one sample: a column vector
            elif array.ndim == 2 and plays in ("x", "g", "o") and \
                    self.context.samples_in_columns:
                array = array.T  # Ng's layout: each sample a column
            elif array.ndim == 1:
                array = array.reshape(-1, 1)
            if transposed:
                if array.ndim != 2:
                    raise FormulaError(f"{name.written}^T: only a matrix or a vector has a "
                                       f"transpose here", "", name.position)
                array = array.T
            if plays == "g" and self.context.variant.dilate_g and "s" in \
                    self.context.parameters and array.ndim >= 2:
                array = dilate(array, _pair(self.context.parameters["s"]))
            return _Value(array, kernel=plays == "w", source=role)
        readings = [r for r in (name.parts, name.pieces) if r is not None] or [()]
        if transposed:
            readings = [tuple(reversed(r)) for r in readings]
        readings = [tuple(name.channels) + tuple(r) for r in readings]
        rank = grid.ndim
        shown = self.notation.indices(self.shape_key(role), tuple(range(rank)))
        full = tuple(range(rank))
        choices = [shown, full] + [full[start:] for start in range(1, rank)]
        outside = False
        for reading in readings:
            for axes in choices:
                if len(reading) != len(axes):
                    continue
                index = [0] * rank
                for axis, affine in zip(axes, reading, strict=True):
                    try:
                        value = affine.evaluate(env) - self.context.index_base
                    except KeyError as missing:
                        raise FormulaError(f"index {missing.args[0]} is not on the left side "
                                           f"and no sum runs over it", "",
                                           name.position) from None
                    if not 0 <= value < grid.shape[axis]:
                        outside = True
                        break
                    index[axis] = value
                else:
                    return _Value(np.array(grid[tuple(index)], dtype=object), source=role)
                break
        if outside:
            if self.sum_depth:
                raise _Outside(name)  # a sum skips it (zero padding with limits)
            raise FormulaError(f"{name.written}: this element does not exist (the shape is "
                               f"{_shape_text(grid.shape)}, indices start at "
                               f"{self.context.index_base})", "", name.position)
        written = len(readings[0])
        raise FormulaError(f"{name.written} takes {len(shown)} indices here (its shape is "
                           f"{' x '.join(map(str, grid.shape))}), but is written with "
                           f"{written}", "", name.position)

    # -- the tree ----------------------------------------------------------------------
    def value(self, node, env: dict) -> _Value:
        if isinstance(node, Num):
            return _scalar(sympy.Rational(node.value.numerator, node.value.denominator))
        if isinstance(node, Name):
            if node.name == "loss":
                raise FormulaError("the loss appears only in a derivative", "", node.position)
            return self.element(node, env)
        if isinstance(node, Negate):
            inner = self.value(node.operand, env)
            return _map(lambda a: -a, inner)
        if isinstance(node, Binary):
            return self.binary(node, env)
        if isinstance(node, Call):
            return self.call(node, env)
        if isinstance(node, Derivative):
            return self.derivative(node, env)
        if isinstance(node, Sum):
            return self.summation(node, env)
        if isinstance(node, Ones):
            _bounded_shape((node.rows, node.cols), node)
            array = np.empty((node.rows, node.cols), dtype=object)
            array[...] = sympy.Integer(1)
            return _Value(array)
        if isinstance(node, Str):
            raise FormulaError(f"'{node.value}' is the mode of conv2 or corr: conv2(d, w, "
                               f"'full')", "", node.position)
        if isinstance(node, Compare):
            raise FormulaError("a comparison belongs in an indicator: [x > 0] or "
                               "\\mathbb{1}(x > 0)", "", node.position)
        raise FormulaError("this is not understood here", "", getattr(node, "position", 0))

    def binary(self, node: Binary, env: dict) -> _Value:
        left, right = self.value(node.left, env), self.value(node.right, env)
        op = node.op
        if op in ("+", "-"):
            self.same_shape(left, right, node)
            return _map((lambda a, b: a + b) if op == "+" else (lambda a, b: a - b),
                        left, right)
        if op == "/":
            if not right.scalar and right.array.shape != left.array.shape:
                raise FormulaError("divide by a number or by an array of the same shape", "",
                                   node.position)
            if any(v == 0 for v in right.array.flat):
                raise FormulaError("division by zero", "", node.position)
            return _map(lambda a, b: a / b, left, right)
        if op == "^":
            if not right.scalar:
                raise FormulaError("an exponent is a number", "", node.position)
            exponent = right.array[()]
            if not exponent.is_Number:
                raise FormulaError("an exponent is a number (e^{x} for the exponential)", "",
                                   node.position)
            _check_exponent(exponent, all(getattr(sympy.sympify(v), "is_Number", False)
                                          for v in left.array.flat), node)
            return _map(lambda a: a ** exponent, left)
        if op == "odot":
            self.same_shape(left, right, node)
            return _map(lambda a, b: a * b, left, right)
        if op == "kron":
            return self.kron(left, right)
        if op == "*" and not (left.scalar or right.scalar) and left.array.ndim == 4 and \
                right.array.ndim == 4 and (left.kernel or right.kernel
                                           or left.array.shape != right.array.shape):
            op = "conv*"  # delta * rot180(W): a convolution with the kernel
        if op in ("conv*", "star"):
            if left.scalar or right.scalar or (left.array.shape == right.array.shape
                                               and not left.kernel and not right.kernel):
                return _map(lambda a, b: a * b, left, right)
            self.context.used.add("conv" if op == "conv*" else "corr")
            self.context.used.add("infix")
            # an operator says no mode: 'full' with the kernel (the input's gradient),
            # 'valid' with data as the kernel (the kernel's gradient, x corr delta)
            mode = "full" if right.kernel else "valid"
            if op == "conv*":
                return self.correlate(left, _Value(rot180(right.array), right.kernel,
                                                   right.source), mode, node=node)
            return self.correlate(left, right, mode, node=node)
        # * \cdot \times and juxtaposition: a number, an element-wise or a matrix product
        if left.scalar or right.scalar:
            return _map(lambda a, b: a * b, left, right)
        if left.array.ndim == 2 and right.array.ndim == 2 and \
                left.array.shape[1] == right.array.shape[0] and \
                not (left.array.shape == right.array.shape and op == "*"):
            self.context.used.add("matmul")
            return self.matmul(left, right)
        if left.array.shape == right.array.shape:
            return _map(lambda a, b: a * b, left, right)
        if left.array.ndim == 2 and right.array.ndim == 2:
            if left.array.shape[1] == 1 and left.array.shape[0] == right.array.shape[0]:
                return self.matmul(_Value(left.array.T, left.kernel, left.source), right)
            hint = ""
            if left.array.shape[0] == right.array.shape[0]:
                hint = ": the left one transposed would fit (W instead of W^T?)"
            raise _ShapeMismatch(
                f"a {_shape_text(left.array.shape)} and a {_shape_text(right.array.shape)} "
                f"matrix cannot be multiplied{hint}", "", node.position)
        self.same_shape(left, right, node)
        return _map(lambda a, b: a * b, left, right)

    def matmul(self, left: _Value, right: _Value) -> _Value:
        rows, inner = left.array.shape
        cols = right.array.shape[1]
        out = np.empty((rows, cols), dtype=object)
        for i in range(rows):
            for j in range(cols):
                out[i, j] = sympy.Add(*[left.array[i, k] * right.array[k, j]
                                        for k in range(inner)])
        return _Value(out)

    def same_shape(self, left: _Value, right: _Value, node):
        if left.scalar or right.scalar:
            return
        a, b = left.array.shape, right.array.shape
        if a == b or np.squeeze(left.array).shape == np.squeeze(right.array).shape:
            return
        raise _ShapeMismatch(f"the two sides of this operation have different shapes, "
                           f"{_shape_text(a)} and {_shape_text(b)}", "", node.position)

    def kron(self, left: _Value, right: _Value) -> _Value:
        self.context.used.add("kron")
        a, b = left.array, right.array
        _bounded_shape((a.size, b.size))
        if a.ndim < 2:
            raise _ShapeMismatch("kron(A, B): A is a map (a matrix or more)", "", 0)
        if b.ndim != 2:
            raise FormulaError("kron(A, B): B is a matrix, such as \\mathbf{1}_{2\\times 2}",
                               "", 0)
        lead = a.shape[:-2]
        rows, cols = a.shape[-2:]
        out = np.empty(lead + (rows * b.shape[0], cols * b.shape[1]), dtype=object)
        for index in np.ndindex(*lead):
            block = np.empty((rows * b.shape[0], cols * b.shape[1]), dtype=object)
            for i in range(rows):
                for j in range(cols):
                    for m in range(b.shape[0]):
                        for n in range(b.shape[1]):
                            block[i * b.shape[0] + m, j * b.shape[1] + n] = a[index + (i, j)] \
                                * b[m, n]
            out[index] = block
        return _Value(out, source=left.source)

    # -- functions -------------------------------------------------------------------------
    def call(self, node: Call, env: dict) -> _Value:
        function = node.function
        if function == "indicator":
            comparison = node.args[0]
            left = self.value(comparison.left, env)
            right = self.value(comparison.right, env)
            test = {">": lambda a, b: a > b, "<": lambda a, b: a < b,
                    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
                    "!=": lambda a, b: sympy.Ne(a, b)}[comparison.op]
            return self.powered(node, _map(
                lambda a, b: sympy.Piecewise((1, test(a, b)), (0, True)), left, right), env)
        if function in _ELEMENTWISE or function in ("max", "abs"):
            return self.elementwise_call(node, env)
        if function == "sum":
            inner = self.value(node.args[0], env)
            return _scalar(sympy.Add(*inner.array.flat))
        if function == "where":
            comparison, chosen, otherwise = node.args
            left = self.value(comparison.left, env)
            right = self.value(comparison.right, env)
            test = {">": lambda a, b: a > b, "<": lambda a, b: a < b,
                    ">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b,
                    "!=": lambda a, b: sympy.Ne(a, b)}[comparison.op]
            return _map(lambda a, b, c, d: sympy.Piecewise((c, test(a, b)), (d, True)),
                        left, right, self.value(chosen, env), self.value(otherwise, env))
        return self.array_call(node, env)

    def powered(self, node: Call, value: _Value, env: dict) -> _Value:
        if node.power is None:
            return value
        exponent = self.value(node.power, env)
        if not exponent.scalar or not exponent.array[()].is_Number:
            raise FormulaError("the power of a function is a number: \\tanh^2(x)", "",
                               node.position)
        power = exponent.array[()]
        _check_exponent(power, False, node)
        return _map(lambda a: a ** power, value)

    def elementwise_call(self, node: Call, env: dict) -> _Value:
        function = node.function
        if function == "max":
            if len(node.args) != 2:
                raise FormulaError("max takes two arguments: \\max(0, x)", "", node.position)
            left, right = (self.value(arg, env) for arg in node.args)
            return self.powered(node, _map(sympy.Max, left, right), env)
        if len(node.args) != 1:
            raise FormulaError(f"{node.written} takes one argument", "", node.position)
        if function == "f" and not self.elementwise:
            # no activation in this layer: f is the identity, f' is 1
            self.context.notes.append(
                f"{node.written}{chr(39) * node.prime}(...) was taken as "
                f"{'1' if node.prime else 'its argument'}: {self.derivation.layer.describe()} "
                f"has no activation (check the activation's part on its own layer, or "
                f"in a chain with symbackprop check sequential)")
            if node.prime:
                return _scalar(sympy.Integer(1 if node.prime == 1 else 0))
        argument = self.value(node.args[0], env)
        if function == "abs":
            return _map(sympy.Abs, argument)
        if function == "f":
            if not self.elementwise:
                return argument
            return self.powered(node, _map(lambda a: self.activation(a, node.prime), argument),
                                env)
        t = sympy.Dummy("t", real=True)
        if function == "named":
            definition = NAMED_FUNCTIONS[node.written](t)
        else:
            definition = sympy.exp(t) if function == "exp" else sympy.log(t)
        for _ in range(node.prime):
            definition = _step_at_zero(sympy.diff(definition, t))
        return self.powered(node, _map(lambda a: definition.xreplace({t: a}), argument), env)

    def array_call(self, node: Call, env: dict) -> _Value:
        function = node.function
        args = [arg for arg in node.args if not isinstance(arg, Str)]
        modes = [arg.value for arg in node.args if isinstance(arg, Str)]
        if not args:
            raise FormulaError(f"{node.written} needs an array", "", node.position)
        first = self.value(args[0], env)
        if function == "transpose":
            if first.array.ndim != 2:
                raise FormulaError("only a matrix or a vector has a transpose here", "",
                                   node.position)
            return _Value(first.array.T, first.kernel, first.source)
        if function == "reshape":
            return _Value(first.array.reshape(-1, 1), first.kernel, first.source)
        if first.array.ndim < 2:
            raise FormulaError(f"{node.written} works on maps (2-D arrays)", "", node.position)
        self.context.used.add(function)
        if function in ("rot180", "rot90"):
            if node.sub and _sub_text(node.sub) not in ("180", "90"):
                raise FormulaError(f"rot_{{{_sub_text(node.sub)}}} is not a rotation this "
                                   f"checker knows: rot_{{180}}", "", node.position)
            turned = rot180(first.array) if function == "rot180" and \
                _sub_text(node.sub) != "90" else np.rot90(first.array, axes=(-2, -1))
            return _Value(turned, first.kernel, first.source)
        if function == "pad":
            amount = self.parameter(node, args[1:], "P" if self.kind(first.source) == "g"
                                    else "p", env)
            padding = _padding(amount)
            _bounded_shape(first.array.shape[:-2] + (
                first.array.shape[-2] + padding[0] + padding[1],
                first.array.shape[-1] + padding[2] + padding[3]), node)
            return _Value(pad2d(first.array, padding), first.kernel, first.source)
        if function == "dilate":
            stride = _pair(self.parameter(node, args[1:], "s", env))
            if min(stride) < 1:
                raise FormulaError("a dilation is 1 or more", "", node.position)
            _bounded_shape(first.array.shape[:-2] + tuple(
                (n - 1) * s + 1 for n, s in zip(first.array.shape[-2:], stride)), node)
            return _Value(dilate(first.array, stride), first.kernel, first.source)
        if function == "upsample":
            routed = self.routed(first, node)
            if routed is not None:  # max pooling: each element to its window's argmax
                return routed
            # up(x) = x kron ones(s, s), as mean pooling's notes
            rows, cols = _pair(self.parameter(node, args[1:], "s", env))
            _bounded_shape((rows, cols, first.array.size), node)
            ones = np.empty((rows, cols), dtype=object)
            ones[...] = sympy.Integer(1)
            return self.kron(first, _Value(ones))
        if function == "kron":
            if len(args) != 2:
                raise FormulaError("kron takes two arrays", "", node.position)
            return self.kron(first, self.value(args[1], env))
        if function in ("conv", "corr"):
            if len(args) != 2:
                raise FormulaError(f"{node.written} takes two arrays (and a mode, 'full')", "",
                                   node.position)
            second = self.value(args[1], env)
            mode = modes[0] if modes else ("valid" if function == "corr" else "full")
            stride, dilation = (1, 1), (1, 1)
            text = _sub_text(node.sub)
            if text:
                letter = text.split()[-1]
                value = _pair(self.context.parameters[letter] if letter in
                              self.context.parameters else
                              _parse_int(letter, node, self.context.parameters))
                if "step" in text or "stride" in text:
                    stride = value
                else:
                    dilation = value
            if function == "conv":
                second = _Value(rot180(second.array), second.kernel, second.source)
            return self.correlate(first, second, mode, stride, dilation, node)
        raise FormulaError(f"{node.written} is not understood here", "", node.position)

    def routed(self, value: _Value, node: Call) -> _Value | None:
        """``upsample(A)`` as the backward of a layer in :attr:`_Context.routes` whose
        upstream gradient has ``A``'s shape; None when no such layer is in scope (then
        ``upsample`` copies, as mean pooling's notes mean it)."""
        sub = _sub_text(node.sub).replace("\\", "").strip()
        for g_grid, dx_grid in self.context.routes:
            if g_grid.shape == value.array.shape:
                replacement = dict(zip(g_grid.flat, value.array.flat, strict=True))
                routed = np.empty(dx_grid.shape, dtype=object)
                for index in np.ndindex(*dx_grid.shape):
                    routed[index] = sympy.sympify(dx_grid[index]).xreplace(replacement)
                return _Value(routed, value.kernel, value.source)
        if sub == "max":
            raise FormulaError("upsample_{max} routes each error to its window's maximum: it "
                               "belongs to a max pooling layer, and the array it upsamples "
                               "has that layer's output shape", "", node.position)
        return None

    def parameter(self, node: Call, args, default: str, env: dict):
        """The amount of ``pad_P(g)``, ``pad(g, 1)``, ``dil_s(g)``: a number or the layer's."""
        if args:
            value = self.value(args[0], env)
            if not value.scalar or not value.array[()].is_Integer:
                raise FormulaError(f"{node.written}'s amount is a whole number", "",
                                   node.position)
            return int(value.array[()])
        letter = _sub_text(node.sub) or default
        if letter in self.context.parameters:
            return self.context.parameters[letter]
        return _parse_int(letter, node, self.context.parameters)

    def correlate(self, array: _Value, kernel: _Value, mode: str, stride=(1, 1),
                  dilation=(1, 1), node=None) -> _Value:
        """``corr(array, kernel)`` on the last two axes, channels contracted the way the
        arrays' shapes and roles say (see :func:`_contract`)."""
        if self.context.variant.mode is not None and "pad" not in self.context.used:
            mode = self.context.variant.mode
        if mode not in _MODES:
            raise FormulaError(f"the mode is one of {', '.join(_MODES)}", "",
                               getattr(node, "position", 0))
        self.context.used.add(f"mode:{mode}")
        a, k = array.array, kernel.array
        if a.ndim < 2 or k.ndim < 2:
            raise _ShapeMismatch("a convolution or correlation takes two maps (matrices or "
                                 "more), not a number", "", getattr(node, "position", 0))
        kh, kw = k.shape[-2:]
        span_h, span_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
        if mode == "full":
            a = pad2d(a, (span_h, span_h, span_w, span_w))
        elif mode == "same":
            a = pad2d(a, (span_h // 2, span_h - span_h // 2, span_w // 2, span_w - span_w // 2))
        if a.shape[-2] < span_h + 1 or a.shape[-1] < span_w + 1:
            raise FormulaError(f"the kernel ({kh} x {kw}) is larger than the map "
                               f"({a.shape[-2]} x {a.shape[-1]}) it slides over", "",
                               getattr(node, "position", 0))
        if a.size * k.size > MAX_RULE_ELEMENTS * 50:
            raise FormulaError("this correlation is too large to check", "",
                               getattr(node, "position", 0))
        return _Value(_contract(a, k, kernel.kernel, stride, dilation), source=array.source)

    # -- derivatives and sums ------------------------------------------------------------
    def derivative(self, node: Derivative, env: dict) -> _Value:
        bottom_role = self.role(node.bottom)
        if node.top is None:  # the loss by something: only by the output is it given
            if bottom_role == "o" or (node.bottom.name == "net" and not self.elementwise):
                return self.element(replace(node.bottom, name="g", layer=None), env)
            raise FormulaError(
                f"on the right side the loss is differentiated only by the layer output "
                f"(dL/dz, the upstream gradient); dL/d{node.bottom.written} is what is being "
                f"computed", "", node.position)
        top = self.value(node.top, env)
        bottom = self.element(node.bottom, env)
        if not bottom.scalar or not top.scalar:
            raise FormulaError("a local derivative takes elements: "
                               "\\frac{\\partial net_{11}}{\\partial a_{11}}", "", node.position)
        variable = bottom.array[()]
        if not isinstance(variable, sympy.Symbol):
            # d o / d net for an activation: the output by its input
            raise FormulaError(f"{node.bottom.written} is computed, not a variable to "
                               f"differentiate by", "", node.position)
        return _scalar(_step_at_zero(sympy.diff(top.array[()], variable)))

    def summation(self, node: Sum, env: dict) -> _Value:
        names = [name for name, _, _ in node.variables]
        used = {variable for found in _names(node.body)
                for group in (found.parts or (), found.pieces or ())
                for index in group for variable in index.variables}
        for name, lower, _ in node.variables:
            if lower is None and name not in used:
                raise FormulaError(f"the sum over {name} has no limits and no index uses {name}: "
                                   f"give limits or write the indices", "", node.position)
        limit = max(max(self.shapes[key]) for key in self.shapes) + 2
        ranges = []
        for name, lower, upper in node.variables:
            if name in env:
                raise FormulaError(f"{name} is an index of the left side; a sum over it "
                                   f"would hide it", "", node.position)
            if lower is not None:
                try:
                    low = lower.evaluate(env)
                    high = upper.evaluate(env)
                except KeyError:
                    raise FormulaError("the limits of a sum are numbers", "",
                                       node.position) from None
                ranges.append(range(low, high + 1))
            else:
                ranges.append(range(self.context.index_base - limit,
                                    self.context.index_base + limit + 1))
        count = int(np.prod([len(r) for r in ranges]))
        if count > MAX_RULE_ELEMENTS:
            raise FormulaError(f"this sum runs over {count:,} index values, over the limit of "
                               f"{MAX_RULE_ELEMENTS:,}: give it limits", "", node.position)
        total = None
        for combination in itertools.product(*ranges):
            inner = dict(env)
            inner.update(zip(names, combination, strict=True))
            self.sum_depth += 1
            try:
                term = self.value(node.body, inner)
            except _Outside:
                continue  # outside its array: 0 (zero padding) or not in the sum
            finally:
                self.sum_depth -= 1
            total = term if total is None else _map(lambda a, b: a + b, total, term)
        return total if total is not None else _scalar(0)


#: Largest exponent of an expression (``\tanh^2``, ``x^{-1}``); of a number.
MAX_EXPONENT, MAX_NUMBER_EXPONENT = 4, 64


def _check_exponent(exponent, of_number: bool, node):
    """Refuse an exponent whose power would take long to multiply out (``(a+b)^{99}``,
    ``2^{2^{99}}``)."""
    limit = MAX_NUMBER_EXPONENT if of_number else MAX_EXPONENT
    if not exponent.is_Rational or abs(exponent.p) > limit or exponent.q > 4:
        raise FormulaError(f"exponents here are whole numbers (or simple fractions) up to "
                           f"{limit}", "", node.position)


def _bounded_shape(shape, node=None):
    """Refuse an array (padded, dilated, repeated) of more than :data:`MAX_RULE_ELEMENTS`."""
    size = int(np.prod([max(int(n), 0) for n in shape], dtype=float))
    if size > MAX_RULE_ELEMENTS:
        raise FormulaError(f"this array would have {size:,} elements, over the limit of "
                           f"{MAX_RULE_ELEMENTS:,}", "", getattr(node, "position", 0))


def _step_at_zero(expression):
    """SymPy's ``Heaviside`` (1/2 at 0) as the notes' step, 0 at 0 like the notes' ``[x > 0]``."""
    return expression.replace(
        lambda node: isinstance(node, sympy.Heaviside),
        lambda node: sympy.Piecewise((1, node.args[0] > 0), (0, True)))


def _contract(a: np.ndarray, k: np.ndarray, kernel: bool, stride, dilation) -> np.ndarray:
    """Correlate maps ``a`` (``(H, W)`` or ``(N, P, H, W)``) with ``k``, summing channels.

    Two maps: one correlation.  Four axes each: ``k`` shaped ``(P, R, ., .)`` pairs
    ``a``'s channels with its first axis (the upstream gradient with the rotated kernel:
    ``(N, R)``); ``(Q, P, ., .)`` with its second (the forward pass: ``(N, Q)``);
    a ``k`` that is data, shaped ``(N, R, ., .)``, pairs the batch (the kernel gradient:
    ``(R, P)``).  Size-1 leading axes are dropped where the ranks differ.
    """
    if a.ndim != k.ndim:
        a2 = a.reshape(a.shape[-2:]) if int(np.prod(a.shape[:-2])) == 1 else None
        k2 = k.reshape(k.shape[-2:]) if int(np.prod(k.shape[:-2])) == 1 else None
        if a2 is None or k2 is None:
            raise FormulaError("the maps of this convolution have channels that do not pair "
                               "up", "", 0)
        a, k = a2, k2
    if a.ndim == 2:
        return correlate2d(a, k, stride=stride, dilation=dilation)
    if a.ndim != 4:
        raise FormulaError("a convolution takes maps of 2 or 4 axes", "", 0)
    n, p = a.shape[:2]
    q, r = k.shape[:2]
    orders = ["in", "forward", "batch"] if kernel else ["batch", "in", "forward"]
    for order in orders:
        if order == "in" and q == p:
            out = [[_sum(correlate2d(a[i, c], k[c, o], stride, dilation) for c in range(p))
                    for o in range(r)] for i in range(n)]
            return np.array(out, dtype=object)
        if order == "forward" and r == p:
            out = [[_sum(correlate2d(a[i, c], k[o, c], stride, dilation) for c in range(p))
                    for o in range(q)] for i in range(n)]
            return np.array(out, dtype=object)
        if order == "batch" and q == n:
            out = [[_sum(correlate2d(a[i, c], k[i, o], stride, dilation) for i in range(n))
                    for c in range(p)] for o in range(r)]
            return np.array(out, dtype=object)
    raise FormulaError("the channels of this convolution's maps do not pair up", "", 0)


def _sum(maps):
    maps = list(maps)
    total = maps[0]
    for other in maps[1:]:
        total = total + other
    return total


def _pair(value) -> tuple:
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    return value if len(value) == 2 else (value[0], value[-1])


def _padding(value) -> tuple:
    if isinstance(value, int):
        return (value,) * 4
    value = tuple(value)
    if len(value) == 2:
        return (value[0], value[0], value[1], value[1])
    return value


def _sub_text(tokens) -> str:
    return " ".join(token.value for token in tokens)


def _parse_int(text: str, node: Call, parameters: dict | None = None):
    if text.isdigit():
        return int(text)
    known = ", ".join(sorted(parameters or {})) or "none for this layer"
    raise FormulaError(f"{node.written}_{{{text}}}: {text!r} is not a number nor a parameter of "
                       f"this layer (the layer's: {known})", "", node.position)


def _shape_text(shape) -> str:
    return " x ".join(map(str, shape)) if shape else "1"


# -- comparing --------------------------------------------------------------------------
class _Timeout(Exception):
    pass


def _bounded_simplify(expression, seconds: float = SIMPLIFY_SECONDS) -> sympy.Expr | None:
    """``sympy.simplify(expression)`` within :data:`SIMPLIFY_SECONDS`, else None.

    A timer interrupts it (in the main thread; elsewhere it is not tried at all)."""
    if sympy.count_ops(expression) > _SIMPLIFY_OPS or \
            threading.current_thread() is not threading.main_thread() or \
            not hasattr(signal, "setitimer"):
        return None

    def stop(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, SIMPLIFY_SECONDS))
    try:
        return sympy.simplify(expression)
    except _Timeout:
        return None
    except Exception:  # noqa: BLE001  (SymPy may fail on an odd expression: compare numerically)
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _explicit(expression):
    """Layer functions (an activation's own SymPy function) written with SymPy's."""
    def rewrite(node):
        rule = getattr(type(node), "rule", None)
        value = getattr(rule, "value", None)
        if value is not None:
            try:
                return value(*node.args)
            except Exception:  # noqa: BLE001
                return node
        return node
    try:
        return expression.replace(lambda node: getattr(type(node), "rule", None) is not None,
                                  rewrite)
    except Exception:  # noqa: BLE001
        return expression


def _numeric_points(symbols, count: int, seed: int) -> list[dict]:
    """Random values away from 0 (where indicators and max have their corner): the first
    point all positive, the second all negative, the rest mixed."""
    generator = random.Random(seed)
    ordered = sorted(symbols, key=str)
    points = []
    for number in range(count):
        point = {}
        for symbol in ordered:
            magnitude = generator.uniform(0.2, 2.0)
            sign = 1 if number == 0 else -1 if number == 1 else generator.choice((1, -1))
            point[symbol] = sympy.Float(sign * magnitude, 15)
        points.append(point)
    return points


def _number(expression, point):
    try:
        value = complex(sympy.sympify(expression).xreplace(point).evalf(15))
    except (TypeError, ValueError, ZeroDivisionError, AttributeError, OverflowError,
            RecursionError):
        return None
    if value != value or abs(value) == float("inf"):
        return None
    return value


@dataclass(frozen=True)
class _Comparison:
    equal: bool
    how: str           # "symbolically" or "numerically"
    point: dict | None = None   # where they differ (numerically)
    expected_value: complex | None = None
    given_value: complex | None = None
    corner: bool = False        # only at the point where the conditions have their corner


def _compare(expected, given, seed: int = 0, budget: list | None = None) -> _Comparison:
    """Whether ``expected`` equals ``given``: ``expand``, then ``simplify`` while the
    ``budget`` (``[seconds]``, shared by one check; None: none) lasts, then numbers."""
    expected, given = sympy.sympify(expected), sympy.sympify(given)
    if _expanded_terms(expected) + _expanded_terms(given) > MAX_EXPANDED:
        return _numeric(expected, given, seed)
    difference = sympy.expand(expected - given)
    if difference == 0:
        return _Comparison(True, "symbolically")
    polynomial = not difference.has(sympy.Function, sympy.Piecewise, sympy.Pow) or \
        difference.is_polynomial(*difference.free_symbols)
    if polynomial and not difference.atoms(sympy.Function, sympy.Piecewise):
        return _Comparison(False, "symbolically")
    if budget is not None and budget[0] > 0:
        started = time.monotonic()
        simplified = _bounded_simplify(_explicit(expected) - given, budget[0])
        budget[0] -= time.monotonic() - started
        if simplified is not None and simplified == 0:
            return _Comparison(True, "symbolically")
    return _numeric(expected, given, seed)


#: Most terms two expressions may multiply out to before they are compared numerically.
MAX_EXPANDED = 20_000


def _expanded_terms(expression) -> float:
    """About how many terms ``expand`` makes of ``expression`` (an upper bound)."""
    if expression.is_Add:
        return sum(_expanded_terms(arg) for arg in expression.args)
    if expression.is_Mul:
        total = 1.0
        for arg in expression.args:
            total *= _expanded_terms(arg)
        return total
    if expression.is_Pow and expression.exp.is_Integer and expression.exp > 0:
        return _expanded_terms(expression.base) ** min(int(expression.exp), 64)
    return 1.0


def _numeric(expected, given, seed: int) -> _Comparison:
    """``expected`` and ``given`` compared at random points (and at a corner)."""
    symbols = expected.free_symbols | given.free_symbols
    points = _numeric_points(symbols, NUMERIC_POINTS, seed)
    # where a condition ([x > 0], max) has its corner: its symbols 0, the others random
    cornered = set()
    for piece in (expected.atoms(sympy.Piecewise) | given.atoms(sympy.Piecewise)
                  | expected.atoms(sympy.Max) | given.atoms(sympy.Max)):
        cornered |= piece.free_symbols
    if cornered:
        points.append({**points[0], **{symbol: sympy.Float(0) for symbol in cornered
                                       if parse_element(symbol) is None
                                       or parse_element(symbol)[0] != "g"}})
    for number, point in enumerate(points):
        a, b = _number(expected, point), _number(given, point)
        if a is None or b is None or abs(a - b) > 1e-9 * (1 + abs(a)):
            return _Comparison(False, "numerically", point, a, b,
                               corner=number >= NUMERIC_POINTS)
    return _Comparison(True, "numerically")


# -- the check --------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleResult:
    """One wrong element of a rule: what SymPy derived and what the rule gives."""

    label: str
    expected: sympy.Expr
    given: sympy.Expr
    comparison: _Comparison


@dataclass(frozen=True)
class RuleCheck:
    """The verdict on one equation read as a rule (see the module docstring).

    ``ok``, ``checked`` (elements compared), ``wrong`` (:class:`RuleResult`), ``how``
    (symbolically, or numerically at :data:`NUMERIC_POINTS` random points), ``mistake``
    (the classic mistake the wrong rule matches, or ""), ``notes``; ``report()`` is what
    ``symbackprop check`` prints.
    """

    text: str
    layer: str
    label: str
    checked: int
    wrong: tuple
    how: str
    mistake: str = ""
    notes: tuple = ()
    shape_problem: str = ""
    index_base: int = 1
    printer: object = None
    derivation: object = None

    @property
    def ok(self) -> bool:
        return not self.wrong and not self.shape_problem

    def report(self, show: int = 3) -> str:
        base = "indices start at 1" if self.index_base == 1 else "indices start at 0"
        context = f"  {self.layer}; {base}"
        if self.ok:
            what = (f"{self.label} agrees" if self.checked == 1
                    else f"all {self.checked} elements of {self.label} agree")
            lines = [f"correct: {what} with SymPy's derivation ({self.how})", context]
        elif self.shape_problem:
            lines = [f"wrong: {self.shape_problem}", context]
        else:
            what = (f"{self.label} differs" if self.checked == 1 else
                    f"{len(self.wrong)} of {self.checked} elements of {self.label} differ")
            lines = [f"wrong: {what} from SymPy's derivation ({self.how})", context]
        if self.mistake:
            lines.append(f"mistake: {self.mistake}")
        printer = self.printer
        for result in self.wrong[:show]:
            lines += ["", result.label,
                      f"  expected: {printer.doprint(result.expected)}",
                      f"  given:    {printer.doprint(result.given)}"]
            comparison = result.comparison
            if comparison.point is not None:
                shown = ", ".join(f"{printer.doprint(s)} = {float(v):.4g}"
                                  for s, v in list(comparison.point.items())[:6])
                lines.append(f"  at {shown}: expected {_show(comparison.expected_value)}, "
                             f"given {_show(comparison.given_value)}")
        rest = self.wrong[show:]
        if rest:
            labels = ", ".join(r.label for r in rest[:8]) + (", ..." if len(rest) > 8 else "")
            lines += ["", f"and {len(rest)} more wrong element{'s' if len(rest) > 1 else ''}: "
                      f"{labels}"]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def _show(value) -> str:
    if value is None:
        return "undefined"
    if abs(value.imag) < 1e-12:
        return f"{value.real:.6g}"
    return f"{value.real:.4g}{value.imag:+.4g}i"


def _layer_offsets(equation: Equation) -> list:
    found = []

    def walk(node):
        if isinstance(node, Name):
            if node.layer is not None:
                found.append(node.layer)
        elif isinstance(node, Derivative):
            for part in (node.top, node.bottom):
                if part is not None:
                    walk(part)
        elif isinstance(node, (Binary, Compare)):
            walk(node.left)
            walk(node.right)
        elif isinstance(node, Negate):
            walk(node.operand)
        elif isinstance(node, Call):
            for arg in node.args:
                walk(arg)
        elif isinstance(node, Sum):
            walk(node.body)
    walk(equation.left)
    for right in equation.rights:
        walk(right)
    return found


def _mentions_gradient(node) -> bool:
    """Whether the tree uses the upstream gradient (delta, g, dL/dz)."""
    if isinstance(node, Name):
        return node.name in ("g", "da")
    if isinstance(node, Derivative):
        return node.top is None
    if isinstance(node, (Binary, Compare)):
        return _mentions_gradient(node.left) or _mentions_gradient(node.right)
    if isinstance(node, Negate):
        return _mentions_gradient(node.operand)
    if isinstance(node, Call):
        return any(_mentions_gradient(arg) for arg in node.args)
    if isinstance(node, Sum):
        return _mentions_gradient(node.body)
    return False


#: What NumPy or SymPy raise on arrays that do not fit an operation of a rule (a safety
#: net: the operations check their shapes first and say which one does not fit).
_EVALUATION_ERRORS = (ValueError, IndexError, TypeError, AttributeError, ArithmeticError)


def _unfit(error: Exception, text: str) -> FormulaError:
    if isinstance(error, FormulaError):
        return error if error.text else FormulaError(error.message, text, error.position)
    return FormulaError("the arrays of this rule do not fit together (an operation got a "
                        "number where it needs a map, or maps of shapes that do not match)",
                        text, 0)


def check_rule(derivation, text: str, *, index_base: int = 1, parameters: dict | None = None,
               seed: int = 0, parts=None) -> list[RuleCheck]:
    """Judge every right side of the equation ``text`` against ``derivation``.

    ``parameters``: the layer's letters (``s``, ``p``, ``P``, ``d``, ``K``) for
    ``\\operatorname{pad}_P``, ``\\operatorname{dil}_s`` and the like.  ``parts``: the
    layer kind's :class:`~symbackprop.check.formula_check.FormulaParts` (its own names,
    named mistakes, whether the upstream gradient may be left out), or None.  One
    :class:`RuleCheck` per right side (``A = B = C`` gives two).
    """
    quantities = dict(getattr(parts, "quantities", {}) or {})
    equation = parse_rule(text, quantities)
    try:
        return [_check_side(derivation, equation, right, index_base, dict(parameters or {}),
                            seed, parts) for right in equation.rights]
    except _EVALUATION_ERRORS as error:
        raise _unfit(error, text) from None
    except RecursionError:
        raise FormulaError("this formula has too many terms in a row to check: write it with "
                           "sums or fewer terms", text, 0) from None
    except FormulaError as error:
        if error.text:
            raise
        raise FormulaError(error.message, text, error.position) from None


def _target(evaluator: _Evaluator, equation: Equation):
    """``(array name, grid of the truth, Name as written)`` of the left side."""
    left = equation.left
    derivation = evaluator.derivation
    if isinstance(left, Derivative):
        if left.top is not None:
            raise FormulaError("the left side is a gradient of the loss: \\frac{\\partial L}"
                               "{\\partial x}", equation.text, left.position)
        name = left.bottom
        role = evaluator.role(name)
        if role == "o" or role == "g":
            raise FormulaError(f"dL/d{name.written} is the upstream gradient, given; the "
                               f"formula is for the gradient of the input or a parameter",
                               equation.text, name.position)
        if role == "dx":
            role = "x"
    else:
        name = left
        role = left.name[1:] if left.name.startswith("d") else evaluator.role(left)
        if role == "g":
            raise FormulaError(f"{left.written} without a layer label is the upstream gradient; "
                               f"the input's error term is {left.written}^{{l-1}}",
                               equation.text, left.position)
        if role == "dx":
            role = "x"
    grads = derivation.grads
    if role not in grads:
        raise FormulaError(f"{name.written}: this layer has no gradient for it "
                           f"({derivation.layer.describe()})", equation.text, name.position)
    return role, to_grid(grads[role]), name


class _RulePrinter(TextPrinter):
    """Expressions in the person's names (``\\delta_{1,1} W_{2,2}`` where they wrote
    ``\\delta`` and ``W`` in LaTeX; ``delta[1,1]`` in plain text)."""

    def __init__(self, notation: Notation, names: dict, latex: bool, **settings):
        super().__init__(notation, **settings)
        self.names, self.latex = names, latex

    def _print_Symbol(self, expr):
        parsed = parse_element(expr)
        if parsed is None or parsed[0] not in self.names:
            return super()._print_Symbol(expr)
        array, index = parsed
        shown = ",".join(map(str, self.notation.indices(array, index)))
        name = self.names[array]
        if not shown:
            return name
        if self.latex:
            return f"{name}_{{{shown}}}"
        indices = self.notation.indices(array, index)
        return name + plain_subscript(indices) if len(name) == 1 else f"{name}[{shown}]"


def _written_names(evaluator: _Evaluator, equation: Equation) -> dict:
    """Array -> the name the person first gave it (``g`` -> ``\\delta``)."""
    found = {}
    latex = "\\" in equation.text
    for name in _names(equation.left) + _names(equation.rights):
        try:
            role = evaluator.role(name)
        except FormulaError:
            continue
        role = {"o": "z", "dx": "x"}.get(role, role)
        kind_arrays = [source for source in evaluator.context.quantities.values()
                       if isinstance(source, str)]  # gamma for the weight
        if role not in ("x", "g", "w", "b", *kind_arrays) or name.name == "loss":
            continue
        written = name.written
        if written in ("delta", "sigma", "gamma", "beta") and latex:
            written = "\\" + written
        found.setdefault(role, written + (name.script if latex else ""))
    return found


def _check_definition(derivation, equation: Equation, right, index_base: int,
                      seed: int) -> RuleCheck:
    """``f'(net) = [net > 0]``: the layer's own function (or derivative) as written,
    compared on every element of its input."""
    context = _Context(derivation=derivation, parameters={}, index_base=index_base)
    evaluator = _evaluator(context)
    left = equation.left
    if not evaluator.elementwise:
        raise FormulaError(f"{left.written}{chr(39) * left.prime}(...) is an activation's; "
                           f"{derivation.layer.describe()} has none", equation.text,
                           left.position)
    truth = evaluator.value(left, {}).array
    given = evaluator.value(right, {}).array
    if given.shape != truth.shape:
        given = np.broadcast_to(given, truth.shape)
    printer = TextPrinter(Notation(shapes=dict(derivation.shapes), index_base=index_base))
    label = equation.text.split("=")[0].strip()
    wrong, hows = [], set()
    budget = [SIMPLIFY_SECONDS]
    for index in np.ndindex(*truth.shape):
        comparison = _compare(truth[index], given[index], seed, budget)
        hows.add(comparison.how)
        if not comparison.equal:
            shown = Notation(shapes=dict(derivation.shapes), index_base=index_base).indices(
                "x", index)
            wrong.append(RuleResult(f"{label} at x{''.join(map(str, shown))}", truth[index],
                                    given[index], comparison))
    how = f"numerically, at {NUMERIC_POINTS} random points" if "numerically" in hows \
        else "symbolically"
    mistake = ""
    if wrong and all(r.comparison.corner for r in wrong):
        mistake = ("the derivative at the corner: the rule differs only where the input is "
                   "exactly 0 (where the notes define f'(0) = 0: [x > 0], not [x >= 0])")
    return RuleCheck(text=equation.text, layer=derivation.layer.describe(), label=label,
                     checked=truth.size, wrong=tuple(wrong), how=how, mistake=mistake,
                     index_base=index_base, printer=printer, derivation=derivation)


def _names(node) -> list:
    """Every :class:`Name` of an expression tree."""
    if isinstance(node, Name):
        return [node]
    if isinstance(node, tuple):
        return [name for item in node for name in _names(item)]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [name for item in dataclasses.fields(node)
                for name in _names(getattr(node, item.name))]
    return []


def _renamed(node, change):
    """The tree with ``change`` applied to every :class:`Name`."""
    if isinstance(node, Name):
        return change(node)
    if isinstance(node, tuple):
        return tuple(_renamed(item, change) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type) \
            and not isinstance(node, (Num, Str, Ones)):
        return replace(node, **{item.name: _renamed(getattr(node, item.name), change)
                                for item in dataclasses.fields(node)
                                if item.name not in ("position", "text")})
    return node


def check_chain_rule(chain_derivation, text: str, *, index_base: int = 1,
                     parameters=None, seed: int = 0, parts=None,
                     names=()) -> list[RuleCheck]:
    """A rule about one layer of a chain, its names numbered as the chain's
    (``\\delta^{[1]} = W^{[2]T} \\delta^{[2]}``): checked on that layer's own derivation.

    ``parameters``: ``step -> {letter: value}`` (see :func:`check_rule`); ``parts``:
    ``step -> FormulaParts`` (the kind's own names and mistakes: batch norm's
    ``\\gamma^{[2]}``); ``names``: every kind's own names in the chain, for reading.
    """
    kind_names = frozenset(names)
    equation = parse_rule(text, names)
    steps = chain_derivation.steps
    names = _names(equation.left) + _names(equation.rights)
    # a kind's own number (batch norm's m, epsilon) needs no layer
    unnumbered = [name for name in names if name.number is None and name.name != "loss"
                  and name.name not in kind_names]
    if unnumbered:
        raise FormulaError(f"{unnumbered[0].written}: in a chain every name says its layer, "
                           f"0 to {len(steps)}: a^{{[1]}}, \\delta^{{[2]}}, W^{{[2]}}", text,
                           unnumbered[0].position)
    left = equation.left.bottom if isinstance(equation.left, Derivative) else equation.left
    if not isinstance(left, Name) or left.number is None:
        raise FormulaError("the left side of a chain's rule names its layer: "
                           "\\delta^{[1]}, dL/dW^{[2]}", text, 0)
    on_input = left.name in ("x", "g") or left.name == "dx"
    layer = left.number + 1 if on_input else left.number
    if not 1 <= layer <= len(steps):
        raise FormulaError(f"the chain has layers 1 to {len(steps)}; this rule's left side is "
                           f"about layer {layer}", text, left.position)
    for name in names:
        if name.number not in (layer - 1, layer) and name.name not in kind_names:
            raise FormulaError(
                f"{name.written}^{{[{name.number}]}}: a rule is checked one layer at a time, "
                f"as symbackprop derive gives the chain; this one is about layer {layer} "
                f"({steps[layer - 1].layer.describe()}), from a^{{[{layer - 1}]}} to "
                f"a^{{[{layer}]}}", text, name.position)
    def placed(name: Name) -> Name:
        if name.number is None:
            return name
        return replace(name, layer=name.number - layer, number=None)

    equation = replace(equation, left=_renamed(equation.left, placed),
                       rights=_renamed(equation.rights, placed))
    step = steps[layer - 1]
    found = parameters(step) if parameters else {}
    kind = parts(step) if parts else None
    try:
        checks = [_check_side(step.derivation, equation, right, index_base, dict(found), seed,
                              kind)
                  for right in equation.rights]
    except _EVALUATION_ERRORS as error:
        raise _unfit(error, text) from None
    except RecursionError:
        raise FormulaError("this formula has too many terms in a row to check", text,
                           0) from None
    except FormulaError as error:
        if error.text:
            raise
        raise FormulaError(error.message, text, error.position) from None
    note = (f"checked on layer {layer} of the chain, {step.layer.describe()}: its input "
            f"a^{{[{layer - 1}]}} prints as x, its output's error term \\delta^{{[{layer}]}} "
            f"as g")
    return [replace(check, notes=check.notes + (note,)) for check in checks]


def _check_side(derivation, equation: Equation, right, index_base: int, parameters: dict,
                seed: int, parts=None, across: dict | None = None) -> RuleCheck:
    """One right side judged.  ``across``: for a rule across a chain's layers, the fields
    of :class:`_Context` that give it its own evaluator and mistakes
    (:mod:`~symbackprop.check.formula_chain`); its names are then layer numbers."""
    numbered = [name for name in _names(equation.left) + _names(right)
                if name.number is not None]
    if numbered and across is None:
        raise FormulaError(f"{numbered[0].written}{numbered[0].script}: a layer number belongs "
                           f"to a chain (symbackprop check sequential); for one layer write "
                           f"l-1 and l", equation.text, numbered[0].position)
    if isinstance(equation.left, Call):
        return _check_definition(derivation, equation, right, index_base, seed)
    offsets = _layer_offsets(equation) if across is None else []
    if offsets and (max(offsets) - min(offsets) > 1 or max(offsets) > 1 or min(offsets) < -1):
        raise FormulaError("this formula names layers this instance does not have: one layer "
                           "has its input at l-1 and its output, error term and parameters at "
                           "l (or the input at l and the rest at l+1)", equation.text, 0)
    input_at = 0 if offsets and max(offsets) >= 1 else -1
    if across is None:
        across = {"routes": ((to_grid(derivation.g), to_grid(derivation.grad_x)),)
                  if getattr(parts, "routes_upsample", False) else ()}
    context = _Context(derivation=derivation, parameters=parameters, index_base=index_base,
                       input_at=input_at,
                       quantities=dict(getattr(parts, "quantities", {}) or {}), **across)
    evaluator = _evaluator(context)
    role, truth, written = evaluator.target(equation)
    upstream_left_out = not _mentions_gradient(right) and \
        getattr(parts, "implicit_upstream", False)
    if upstream_left_out:  # a loss: its upstream gradient is 1 unless written
        ones = {symbol: sympy.Integer(1) for symbol in to_grid(derivation.g).flat}
        truth = np.vectorize(lambda e: sympy.sympify(e).xreplace(ones), otypes=[object])(truth)
        context.notes.append("the upstream gradient dL/dz, not written, is taken as 1 (the "
                             "loss is the last layer)")
    elif not _mentions_gradient(right):
        raise FormulaError("the right side never uses the upstream gradient (\\delta, g, "
                           "dL/dz): a gradient of the loss is always a multiple of it",
                           equation.text, getattr(right, "position", 0))
    layer_text = derivation.layer.describe()
    notation = Notation(shapes=dict(derivation.shapes), index_base=index_base)
    latex = "\\" in equation.text
    printer = _RulePrinter(notation, evaluator.written_names(equation), latex)
    name_text = written.written if not written.written.startswith("d") or \
        isinstance(equation.left, Derivative) else written.written
    if name_text in ("delta", "gamma", "beta", "mu", "sigma") and latex:
        name_text = "\\" + name_text
    if isinstance(equation.left, Derivative) and written.script:
        name_text += written.script
    loss = re.search(r"(?:\\partial|\bd|∂|\\mathrm\{d\})\s*\{?\s*([ELJC])(?![A-Za-z])",
                     equation.text)
    loss = loss.group(1) if loss else "L"
    label_name = (f"\\frac{{\\partial {loss}}}{{\\partial " + name_text if latex
                  else f"d{loss}/d" + name_text) \
        if isinstance(equation.left, Derivative) else name_text
    if isinstance(equation.left, Name) and written.script:
        label_name += written.script
    elif isinstance(equation.left, Name) and written.layer is not None:
        label_name += "^{l-1}" if written.layer == -1 else f"^{{l{written.layer - 1:+d}}}" \
            if written.layer - 1 else "^{l}"

    def label(index, whole: bool) -> str:
        shown = notation.indices(role, tuple(index))
        closing = "}" if latex and isinstance(equation.left, Derivative) else ""
        if whole:
            return label_name + closing
        body = ",".join(map(str, shown))
        text = f"{label_name}_{{{body}}}" if latex else f"{label_name}[{body}]"
        return text + closing

    elementwise = written.parts is not None or written.pieces is not None
    wrong, hows, givens = [], set(), []
    budget = [SIMPLIFY_SECONDS]  # seconds of simplify for the whole check
    if elementwise:
        elements = _left_elements(evaluator, written, role, truth, equation.text)
        if len(elements) * max(1, truth.size) > MAX_RULE_ELEMENTS * 10:
            raise FormulaError("this check is too large: name fewer elements", equation.text,
                               written.position)
        for index, env in elements:
            value = evaluator.value(right, env)
            if value.array.size != 1:
                raise FormulaError(f"the right side is a {_shape_text(value.array.shape)} "
                                   f"array, the left side one element: give the right side's "
                                   f"names indices", equation.text,
                                   getattr(right, "position", 0))
            given = value.array.flat[0]
            givens.append((index, given))
            comparison = _compare(truth[index], given, seed, budget)
            hows.add(comparison.how)
            if not comparison.equal:
                wrong.append(RuleResult(label(index, False), truth[index], given, comparison))
        checked = len(elements)
        whole_label = label(elements[0][0], False) if len(elements) == 1 else label((), True)
        shape_problem = ""
        given_grid = None
    else:
        checked = truth.size
        whole_label = label((), True)
        shape_problem = ""
        try:
            value = evaluator.value(right, {})
        except _ShapeMismatch as mismatch:
            value = None
            shape_problem = mismatch.message
        if truth.ndim == 2 and truth.shape[0] > 1 and (
                value is None or np.squeeze(value.array).shape != np.squeeze(truth).shape):
            value, shape_problem = _in_columns(evaluator, right, truth, value, shape_problem,
                                               evaluator.kind(role) in ("x", "g", "o", "dx"))
        given_grid = None if value is None else value.array
        if value is not None and value.scalar:
            given_grid = np.full(truth.shape, value.array[()], dtype=object)
        if given_grid is not None and np.squeeze(given_grid).shape != np.squeeze(truth).shape \
                and given_grid.size == truth.size and np.squeeze(given_grid).ndim <= 1:
            # a vector for a map (flatten's gradient): read row-major into its shape
            context.notes.append(f"the right side, a vector of {given_grid.size}, was read "
                                 f"row-major into the shape of {whole_label}, "
                                 f"{_shape_text(truth.shape)}")
            given_grid = given_grid.reshape(truth.shape)
        if given_grid is None:
            pass
        elif np.squeeze(given_grid).shape != np.squeeze(truth).shape:
            shape_problem = (f"the right side is {_shape_text(np.squeeze(given_grid).shape)}, "
                             f"but {whole_label} is {_shape_text(np.squeeze(truth).shape)}")
        else:
            given_flat = np.squeeze(given_grid).reshape(-1)
            givens = [(np.unravel_index(flat, truth.shape), given)
                      for flat, given in enumerate(given_flat)]
            for flat_index, (expected, given) in enumerate(zip(truth.reshape(-1), given_flat,
                                                               strict=True)):
                comparison = _compare(expected, given, seed, budget)
                hows.add(comparison.how)
                if not comparison.equal:
                    index = np.unravel_index(flat_index, truth.shape)
                    wrong.append(RuleResult(label(index, False), expected, given, comparison))
    how = "numerically, at " + f"{NUMERIC_POINTS} random points" if "numerically" in hows \
        else "symbolically"
    mistake = ""
    if wrong or shape_problem:
        mistake = _name_mistake(derivation, right, context, truth,
                                elements if elementwise else None, written, role,
                                equation.text)
        if not mistake and givens:
            mistake = _kind_mistake(derivation, parts, role, givens, upstream_left_out)
        if not mistake and givens:
            mistake = _candidate_mistake(context.candidates, givens)
        if not mistake and wrong and all(r.comparison.corner for r in wrong):
            mistake = ("the derivative at the corner: the rule differs only where the input "
                       "is exactly 0 (where the notes define f'(0) = 0: [x > 0], not [x >= 0])")
        if not mistake and given_grid is not None:
            mistake = _layout_mistake(np.squeeze(given_grid), np.squeeze(truth), whole_label)
        if mistake.startswith("kernel not rotated (conv") and "rot180" in context.used and \
                "conv" in context.used:
            mistake += (" (here the kernel is rotated twice: by rot180 and by the convolution "
                        "itself, which leaves it as it was)")
        if mistake.startswith("kernel not rotated") and "infix" in context.used and \
                "conv" in context.used:
            mistake += (" (if your notes write the forward pass as z = a * w with * the "
                        "cross-correlation, write that * as \\star: a \\star rot180(W))")
        if not mistake and shape_problem and "mode:valid" in context.used:
            mistake = ("padding wrong: a 'valid' correlation shrinks the map; the input's "
                       "gradient needs the 'full' one (the upstream gradient padded by K-1)")
    notes = tuple(dict.fromkeys(context.notes))
    return RuleCheck(text=equation.text, layer=layer_text, label=whole_label, checked=checked,
                     wrong=tuple(wrong), how=how, mistake=mistake, notes=notes,
                     shape_problem=shape_problem, index_base=index_base, printer=printer,
                     derivation=derivation)


def _in_columns(evaluator: _Evaluator, right, truth: np.ndarray, value, shape_problem: str,
                batch_left: bool):
    """A rule on a batch whose shapes fit only with each sample a column (Ng's ``W^{T}
    dZ``, ``dZ`` of shape (features, samples); ``dW = dZ A^{T}``): ``(value,
    shape_problem)`` read in that layout, a batch array's result (``batch_left``)
    transposed back to the truth's one sample per row; unchanged when the shapes do not
    fit that way either."""
    context = evaluator.context
    context.samples_in_columns = True
    try:
        columns = evaluator.value(right, {})
    except _ShapeMismatch:
        columns = None
    if columns is not None and batch_left:
        columns = _Value(columns.array.T, columns.kernel, columns.source)
    if columns is None or columns.array.shape != truth.shape:
        context.samples_in_columns = False
        return value, shape_problem
    context.notes.append("read with each sample a column (Ng's layout: dZ of shape "
                         "(features, samples)), as the shapes of the rule need")
    return columns, ""


def _left_elements(evaluator: _Evaluator, written: Name, role: str, truth: np.ndarray,
                   text: str) -> list:
    """``(0-based index, {free index: value})`` for every element the left side names."""
    rank = truth.ndim
    shown = evaluator.notation.indices(role, tuple(range(rank)))
    full = tuple(range(rank))
    readings = [r for r in (written.parts, written.pieces) if r is not None]
    readings = [tuple(written.channels) + tuple(r) for r in readings]
    for reading in readings:
        for axes in (shown, full):
            if len(reading) != len(axes):
                continue
            found = []
            for index in np.ndindex(*truth.shape):
                env = {}
                for axis, affine in zip(axes, reading, strict=True):
                    value = index[axis] + evaluator.context.index_base
                    if not affine.coefficients:
                        if value != affine.constant:
                            break
                    elif len(affine.coefficients) == 1 and affine.coefficients[0][1] == 1 \
                            and affine.constant == 0:
                        if env.setdefault(affine.variables[0], value) != value:
                            break
                    else:
                        raise FormulaError("indices on the left side are numbers or single "
                                           "names, such as x_{1,2} or x_{i,j}", text,
                                           written.position)
                else:
                    if all(index[axis] == 0 for axis in full if axis not in axes):
                        found.append((index, env))
            if not found:
                raise FormulaError(f"{written.written} has no such element (its shape is "
                                   f"{_shape_text(truth.shape)})", text, written.position)
            return found
    raise FormulaError(f"{written.written} takes {len(shown)} indices here (its shape is "
                       f"{_shape_text(truth.shape)})", text, written.position)


#: The classic mistakes, each a change that undoes it when the formula is re-evaluated.
_MISTAKES = (
    ("f' written with the output but applied to the input",
     "f' written with the output a = f(x) (the sigmoid's a (1 - a), tanh's 1 - a^2) needs "
     "a; this rule put the input x in its place", _Variant(input_as_output=True)),
    ("f' evaluated at the output instead of the input",
     "dL/dx = g f'(x), the derivative at the layer's input; this rule evaluated it at the "
     "output a = f(x)", _Variant(output_as_input=True)),
    ("kernel not rotated (conv vs corr confusion)",
     "the input's gradient correlates the upstream gradient with the kernel rotated by 180 "
     "degrees (equivalently: convolves it with the kernel as it is); this rule has the "
     "kernel the other way round: a mathematical convolution (*, conv2) already flips the "
     "kernel, so conv(delta, rot180(W)) = corr(delta, W)",
     _Variant(flip_kernel=True)),
    ("upstream gradient flipped (conv vs corr confusion)",
     "the kernel's gradient is the (valid) cross-correlation of the input with the upstream "
     "gradient, corr(x, delta) = x \\star delta; a convolution (*, conv2) flips delta",
     _Variant(flip_g=True)),
    ("W instead of W^T",
     "the input's gradient is W^T delta (delta W for rows of samples); this rule used W "
     "where its transpose belongs", _Variant(transpose_w=True)),
    ("padding wrong ('same' or 'valid' instead of 'full')",
     "the input's gradient is the 'full' correlation: the upstream gradient padded by K-1 "
     "on each side", _Variant(mode="full")),
    ("stride zeros not inserted",
     "with stride s the upstream gradient needs s-1 zeros between its rows and columns "
     "(dilate_s) before the full correlation", _Variant(dilate_g=True)),
    ("kernel not rotated and padding wrong",
     "the input's gradient is the 'full' correlation with the kernel rotated by 180 degrees",
     _Variant(flip_kernel=True, mode="full")),
)


def _kind_mistake(derivation, parts, role: str, givens: list, upstream_left_out: bool) -> str:
    """The layer kind's own classic mistake (FormulaParts.mistakes) the rule's values
    match on every element it names, as ``name: why``; "" when none does."""
    if not getattr(parts, "mistakes", ()):
        return ""
    ones = {symbol: sympy.Integer(1) for symbol in to_grid(derivation.g).flat}
    for mistake in getattr(parts, "mistakes", ()) or ():
        if mistake.gradient != role:
            continue
        for candidate in mistake.candidates(derivation):
            grid = to_grid(candidate) if not isinstance(candidate, np.ndarray) else candidate
            if upstream_left_out:
                grid = np.vectorize(lambda e: sympy.sympify(e).xreplace(ones),
                                    otypes=[object])(grid)
            try:
                if all(_compare(grid[index], given).equal for index, given in givens):
                    return f"{mistake.name}: {mistake.why}"
            except _EVALUATION_ERRORS:
                continue
    return ""


def _candidate_mistake(candidates, givens: list) -> str:
    """The first of ``candidates`` (``(name, why, grid)``) whose wrong gradient the rule's
    values match on every element it names, as ``name: why``; "" when none does."""
    for name, why, grid in candidates:
        try:
            if all(_compare(grid[index], given).equal for index, given in givens):
                return f"{name}: {why}"
        except _EVALUATION_ERRORS:
            continue
    return ""


def _layout_mistake(given: np.ndarray, truth: np.ndarray, label: str) -> str:
    """A wrong result that is the truth transposed, or the truth times a number."""
    if given.ndim == 2 and given.T.shape == truth.shape and \
            all(sympy.expand(e - g) == 0 for e, g in zip(truth.flat, given.T.flat,
                                                         strict=True)):
        return (f"the gradient transposed: {label} is laid out like the array it is the "
                f"gradient of ({_shape_text(truth.shape)}; for a fully connected layer "
                f"delta a^T, not a delta^T)")
    if given.shape != truth.shape:
        return ""
    ratio = None
    for expected, value in zip(truth.flat, given.flat, strict=True):
        if expected == 0 and value == 0:
            continue
        if expected == 0:
            return ""
        quotient = sympy.cancel(value / expected)
        if not quotient.is_Number:  # an indicator or a function in both: a number where
            # they are not 0, if it is one
            point = _numeric_points(quotient.free_symbols, 1, 0)[0]
            number = _number(quotient, point)
            if number is None or abs(number.imag) > 1e-12:
                return ""
            quotient = sympy.nsimplify(round(number.real, 9), rational=True)
            if not _compare(value, quotient * expected).equal:
                return ""
        if ratio is not None and quotient != ratio:
            return ""
        ratio = quotient
    if ratio is None or ratio == 1:
        return ""
    return (f"off by a factor: every element is {ratio} times the right one (for mean "
            f"pooling: each input gets 1/(K_H K_W) of its window's gradient)")


def _name_mistake(derivation, right, context: _Context, truth, elements, written: Name,
                  role: str, text: str) -> str:
    """The classic mistake whose undoing makes the rule right, as ``name: why``.

    ``elements``: ``(index, env)`` of the elements a rule with indices names, or None
    for a whole-array rule."""
    for name, why, variant in _MISTAKES + tuple(context.variants):
        if variant.mode is not None and not any(use in context.used for use in
                                                ("mode:same", "mode:valid")):
            continue
        if variant.dilate_g and "s" not in context.parameters:
            continue
        if variant.dilate_g and _pair(context.parameters["s"]) == (1, 1):
            continue
        if (variant.input_as_output or variant.output_as_input) and \
                not _evaluator(context).elementwise:
            continue
        trial = replace(context, variant=variant, notes=[], used=set())
        try:
            evaluator = _evaluator(trial)
            if elements is None:
                value = evaluator.value(right, {}).array
                if context.samples_in_columns and value.ndim == 2 and value.shape != \
                        truth.shape:
                    value = value.T  # back to one sample per row, as the truth
                if np.squeeze(value).shape != np.squeeze(truth).shape:
                    continue
                pairs = zip(truth.reshape(-1), np.squeeze(value).reshape(-1), strict=True)
            else:
                pairs = [(truth[index], evaluator.value(right, env).array.flat[0])
                         for index, env in elements]
            if all(_compare(e, g).equal for e, g in pairs):
                return f"{name}: {why}"
        except (FormulaError, _Outside, ValueError, TypeError, IndexError, RecursionError):
            continue
    return ""
