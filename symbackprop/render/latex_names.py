"""Course names in LaTeX: ``a^{[l-1]}``, ``w_b``, ``\\delta``, ``\\tilde{x}``, ``net``.

A reader names the arrays of a printout after their course (``--input-name``,
``--output-name``, ... of ``symbackprop latex`` and ``html``).  This module reads
such a name into its parts (:class:`CourseName`: the base letter or word, its own
superscript and subscript), refuses what it cannot set with one line that names
the option and the rule, and joins the name's own scripts with the indices a formula
adds (:func:`join_scripts`), so that every formula of every kind prints

- ``a^{[l-1]}`` with an element index as ``a^{[l-1]}_{11}``, with a channel as
  ``a^{[l-1](2)}_{11}`` (one superscript: the layer's, then the channel's in
  parentheses; ``a^{l-1,(2)}`` when the layer's is not bracketed);
- ``w_b`` with an element index as ``w_{b,1}`` (one subscript, the name's first);
- ``\\tilde{a^{[2]}}`` (the padded input of a formula) as ``\\tilde{a}^{[2]}``: a
  decoration (tilde, hat, bar, ...) goes on the base letter only.

An identifier with a word after an underscore (``running_mean``) is set upright as
it is.  Names without any of ``\\ { } ^ _`` keep their earlier forms: a Greek letter or its
name (``delta``, ``δ``) becomes the letter, one Latin letter stays, a word is set in
italics as one symbol (``\\mathit{net}``), other ASCII text (``x'``) upright.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sympy.printing.latex import greek_letters_set, translate

from symbackprop.render.templating import latex_escape

__all__ = ["CourseName", "parse_name", "latex_name", "option_name", "join_scripts",
           "DECORATIONS", "name_letters", "free_letters", "has_subscript",
           "fill_names", "rename_index_letters", "rename_in_prose", "math_letters"]

#: Commands that decorate a base letter (``\tilde{x}``: the padded input).
DECORATIONS = ("tilde", "hat", "bar", "check", "breve", "dot", "ddot", "vec", "widetilde",
               "widehat", "overline", "mathbf", "boldsymbol", "mathrm", "mathcal")
#: Greek letter commands a name may use, ``\delta`` ... ``\Omega`` and the ``\var`` forms.
_GREEK = frozenset(greek_letters_set) | {letter.capitalize() for letter in greek_letters_set} \
    | {"varepsilon", "vartheta", "varphi", "varrho", "varsigma", "varpi", "ell"}
#: Characters a script may hold besides letters, digits and Greek commands.
_SCRIPT_CHARACTERS = set("+-*/()[],.'=|: ")

_RULE = ("write a letter, a word or a Greek letter with at most one superscript and one "
         "subscript, e.g. a^{[l-1]}, z^{(l)}, w_b, delta, \\tilde{x}")


@dataclass(frozen=True)
class CourseName:
    """A display name in parts: ``a^{[l-1]}`` is ``CourseName("a", "[l-1]", "")``.

    Attributes
    ----------
    base : the base letter or word in LaTeX (``a``, ``\\delta``, ``\\mathit{net}``,
        ``\\tilde{x}``).
    superscript, subscript : the name's own scripts without their braces (``"[l-1]"``,
        ``"b"``), ``""`` when it has none.
    """

    base: str
    superscript: str = ""
    subscript: str = ""

    @property
    def latex(self) -> str:
        return self.base + (f"^{{{self.superscript}}}" if self.superscript else "") \
            + (f"_{{{self.subscript}}}" if self.subscript else "")


def _greek_character(name: str) -> str | None:
    """``"δ" -> "delta"``, ``"Δ" -> "Delta"``; ``None`` for anything else."""
    if len(name) != 1 or not unicodedata.name(name, "").startswith("GREEK "):
        return None
    words = unicodedata.name(name).split()
    letter = {"lamda": "lambda"}.get(words[-1].lower(), words[-1].lower())
    if letter not in greek_letters_set:
        return None
    return letter.capitalize() if words[1] == "CAPITAL" else letter


def _word(name: str) -> str:
    """A base without commands: ``delta -> \\delta``, ``a``, ``net -> \\mathit{net}``."""
    if name.lower() in greek_letters_set:
        return translate(name)
    if len(name) == 1:
        return name
    return rf"\mathit{{{name}}}"


class _Reader:
    """Reads the LaTeX grammar of a name with scripts; errors are ``ValueError(rule)``."""

    def __init__(self, text: str):
        self.text, self.at = text, 0

    def peek(self) -> str:
        return self.text[self.at:self.at + 1]

    def command(self) -> str:
        match = re.compile(r"\\([A-Za-z]+)").match(self.text, self.at)
        if match is None:
            raise ValueError("has a backslash that starts no command: " + _RULE)
        self.at = match.end()
        return match.group(1)

    def group(self, what: str) -> str:
        """The content of ``{...}`` (balanced) at the cursor."""
        depth, start = 0, self.at
        for position in range(self.at, len(self.text)):
            char = self.text[position]
            if char == "\\":
                continue
            if char == "{" and (position == 0 or self.text[position - 1] != "\\"):
                depth += 1
            elif char == "}" and self.text[position - 1] != "\\":
                depth -= 1
                if depth == 0:
                    self.at = position + 1
                    content = self.text[start + 1:position]
                    if not content.strip():
                        raise ValueError(f"has an empty {what}: {_RULE}")
                    return content
        raise ValueError("has unbalanced braces: every { needs its }")

    def base(self) -> str:
        if self.peek() == "\\":
            command = self.command()
            if command in _GREEK:
                return "\\" + command
            if command in DECORATIONS:
                if self.peek() != "{":
                    raise ValueError(f"\\{command} needs its letter in braces, "
                                     f"\\{command}{{x}}")
                inner = self.group(f"\\{command}{{}}")
                return rf"\{command}{{{parse_name(inner).latex}}}"
            known = ", ".join("\\" + decoration for decoration in DECORATIONS[:3])
            raise ValueError(f"uses \\{command}, a LaTeX command symbackprop does not know "
                             f"(a name may use Greek letters such as \\delta and, on its base "
                             f"letter, {known} ...)")
        match = re.compile(r"[A-Za-z][A-Za-z0-9]*").match(self.text, self.at)
        if match is None:
            raise ValueError(f"must start with a letter or a Greek letter: {_RULE}")
        self.at = match.end()
        return _word(match.group(0))

    def script(self, what: str) -> str:
        if self.peek() == "{":
            content = self.group(what)
        elif self.peek() == "\\":
            content = "\\" + self.command()
        elif re.fullmatch(r"[A-Za-z0-9]", self.peek() or "-"):
            content = self.peek()
            self.at += 1
        else:
            raise ValueError(f"has an empty {what}: {_RULE}")
        for command in re.findall(r"\\([A-Za-z]+)", content):
            if command not in _GREEK:
                raise ValueError(f"uses \\{command} in its {what}, a LaTeX command "
                                 f"symbackprop does not know (scripts may hold letters, "
                                 f"digits, Greek letters and + - ( ) [ ] ,)")
        plain = re.sub(r"\\[A-Za-z]+|[{}]", "", content)
        odd = sorted({char for char in plain if not char.isalnum() and
                      char not in _SCRIPT_CHARACTERS})
        if odd or not plain.isascii():
            raise ValueError(f"has {''.join(odd) or 'non-ASCII text'} in its {what}: scripts "
                             f"may hold letters, digits, Greek letters and + - ( ) [ ] ,")
        return content


def parse_name(name: str) -> CourseName:
    """A display name in parts (see :class:`CourseName`).

    Raises
    ------
    ValueError
        Saying the rule the name breaks (``has unbalanced braces: ...``).
    """
    name = str(name)
    greek = _greek_character(name)
    if greek is not None:
        return CourseName(translate(greek))
    if not name:
        raise ValueError("is empty: " + _RULE)
    if not all(33 <= ord(char) < 127 for char in name):
        raise ValueError("has spaces, control or non-ASCII characters: " + _RULE)
    if not any(char in name for char in "\\{}^_"):
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name):
            return CourseName(_word(name))
        return CourseName(rf"\text{{{latex_escape(name)}}}")
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*_[A-Za-z0-9]{2,}(_[A-Za-z0-9]+)*",
                    name):
        # a program's identifier (running_mean), not a letter with a subscript (w_b)
        return CourseName(rf"\text{{{latex_escape(name)}}}")
    if name.count("{") != name.count("}"):
        raise ValueError("has unbalanced braces: every { needs its }")
    reader = _Reader(name)
    base = reader.base()
    while reader.peek() == "'":
        base, reader.at = base + "'", reader.at + 1
    scripts = {}
    while reader.peek() in ("^", "_"):
        mark = reader.peek()
        what = "superscript" if mark == "^" else "subscript"
        if what in scripts:
            raise ValueError(f"has two {what}s: {_RULE}")
        reader.at += 1
        scripts[what] = reader.script(what)
    if reader.at != len(name):
        raise ValueError(f"has {name[reader.at:]!r} after its name and scripts: {_RULE}")
    return CourseName(base, scripts.get("superscript", ""), scripts.get("subscript", ""))


def latex_name(name: str) -> str:
    """A display name in math mode: ``delta -> \\delta``, ``net -> \\mathit{net}``,
    ``a^{l-1} -> a^{l-1}``, ``w_b -> w_{b}``, ``\\tilde{x}``.

    Raises
    ------
    ValueError
        ``names: 'a^{' ... the rule``: a name that is empty, has spaces or characters
        pdflatex could not typeset, unbalanced braces, or a command it does not know.
    """
    try:
        return parse_name(name).latex
    except ValueError as error:
        raise ValueError(f"names: {str(name)!r} is not a usable name: it {error}") from None


def option_name(name: str, option: str) -> str:
    """A ``--NAME-name`` value as the document and its regenerate command use it.

    A Greek letter becomes its ASCII name (``α -> alpha``, ``Δ -> Delta``: the same
    letter in the document, and a command line pdflatex can print); every other
    name must be one :func:`parse_name` reads.

    Raises
    ------
    ValueError
        ``--input-name: 'a^{' cannot be typeset: it has unbalanced braces ...``.
    """
    name = str(name)
    name = _greek_character(name) or name
    try:
        parse_name(name)
    except ValueError as error:
        raise ValueError(f"{option}: {name!r} cannot be typeset: it {error}") from None
    return name


# ---------------------------------------------------------------------------
# Joining a name's scripts with a formula's
# ---------------------------------------------------------------------------

def has_subscript(latex: str) -> bool:
    """Whether a printed name carries its own subscript (``w_{b}``, not ``\\text{a\\_1}``)."""
    depth, position = 0, 0
    while position < len(latex):
        char = latex[position]
        if char == "\\":
            position += 2
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "_" and depth == 0:
            return True
        position += 1
    return False


def _join_superscripts(first: str, second: str) -> str:
    """``[l-1]`` and ``(2)`` -> ``[l-1](2)``; ``l-1`` and ``(2)`` -> ``l-1,(2)``."""
    if first[-1:] in ")]" and second[:1] in "([":
        return first + second
    return f"{first},{second}"


def _read_group(text: str, at: int) -> int:
    """The position after the balanced ``{...}`` that starts at ``at``."""
    depth = 0
    position = at
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return position + 1
        position += 1
    return len(text)


def _read_argument(text: str, at: int) -> int:
    """The position after one script argument at ``at``: a group, a command or a character."""
    if at >= len(text):
        return at
    if text[at] == "{":
        return _read_group(text, at)
    if text[at] == "\\":
        match = re.compile(r"\\[A-Za-z]+|\\.").match(text, at)
        return match.end() if match else at + 1
    return at + 1


def _content(argument: str) -> str:
    return argument[1:-1] if argument.startswith("{") and argument.endswith("}") else argument


_BASE_WITH_SCRIPTS = re.compile(
    r"(?P<base>[A-Za-z]'*|\\[A-Za-z]+'*|\\mathit\{[A-Za-z0-9]+\}'*)(?P<scripts>[\^_].*)",
    re.DOTALL)


def join_scripts(latex: str) -> str:
    """Give every symbol of ``latex`` one superscript and one subscript.

    A course name brings its own scripts and a formula adds its indices: ``a^{[l-1]}``
    + ``^{(n,c)}_{ab}`` -> ``a^{[l-1](n,c)}_{ab}``, ``w_{b}`` + ``_{o}`` -> ``w_{b,o}``
    (LaTeX refuses a double script).  A decoration holding a name with scripts goes
    on the base letter only: ``\\tilde{a^{[2]}}_{i,j}`` -> ``\\tilde{a}^{[2]}_{i,j}``.
    Text that has neither is returned unchanged, character for character; comments
    (``%`` to the end of the line) are left alone.
    """
    if "^" not in latex and "_" not in latex:
        return latex
    out: list[str] = []
    pending: list[tuple[str, str]] = []  # (mark, raw argument) after the last symbol
    raw_start = None  # where the pending scripts' source begins, to copy it unchanged

    def flush(end: int) -> None:
        nonlocal pending, raw_start
        if not pending:
            return
        marks = [mark for mark, _ in pending]
        if raw_start is not None and marks.count("^") <= 1 and marks.count("_") <= 1:
            out.append(latex[raw_start:end])
        else:
            sup = sub = ""
            for mark, argument in pending:
                content = join_scripts(_content(argument))
                if mark == "^":
                    sup = _join_superscripts(sup, content) if sup else content
                else:
                    sub = f"{sub},{content}" if sub else content
            out.append((f"^{{{sup}}}" if sup else "") + (f"_{{{sub}}}" if sub else ""))
        pending, raw_start = [], None

    position = 0
    while position < len(latex):
        char = latex[position]
        if char in "^_":
            end = _read_argument(latex, position + 1)
            if not pending:
                raw_start = position
            pending.append((char, latex[position + 1:end]))
            position = end
            continue
        flush(position)
        if char == "%":
            end = latex.find("\n", position)
            end = len(latex) if end < 0 else end
            out.append(latex[position:end])
            position = end
            continue
        if char == "\\":
            match = re.compile(r"\\([A-Za-z]+)|\\.").match(latex, position)
            end = match.end() if match else position + 1
            command = match.group(1) if match else None
            if command in DECORATIONS and latex[end:end + 1] == "{":
                group_end = _read_group(latex, end)
                inner = join_scripts(latex[end + 1:group_end - 1])
                split = _BASE_WITH_SCRIPTS.fullmatch(inner)
                if split is not None and _scripts_only(split.group("scripts")):
                    out.append(rf"\{command}{{{split.group('base')}}}")
                    scripts = split.group("scripts")
                    at = 0
                    while at < len(scripts):
                        stop = _read_argument(scripts, at + 1)
                        pending.append((scripts[at], scripts[at + 1:stop]))
                        at = stop
                    raw_start = None  # rewritten: never copied as it was
                else:
                    out.append(latex[position:end] + "{" + inner + "}")
                position = group_end
                continue
            out.append(latex[position:end])
            position = end
            continue
        if char == "{":
            end = _read_group(latex, position)
            out.append("{" + join_scripts(latex[position + 1:end - 1]) + "}"
                       if end - position >= 2 and latex[end - 1] == "}" else latex[position:end])
            position = end
            continue
        out.append(char)
        position += 1
    flush(position)
    return "".join(out)


def _scripts_only(text: str) -> bool:
    """Whether ``text`` is nothing but ``^...`` and ``_...`` arguments."""
    at = 0
    while at < len(text):
        if text[at] not in "^_":
            return False
        at = _read_argument(text, at + 1)
    return bool(text)


def fill_names(text: str, names: dict) -> str:
    """A kind's fixed formula or sentence with the reader's names: ``@x``, ``@w``, ``@g``,
    ``@z``, ``@b``, ``@L`` become ``names["x"]`` ... (the printed names, ``\\delta``).

    ``\\hat{@x}_i`` with the input named ``a^{[l-1]}`` gives ``\\hat{a^{[l-1]}}_i``, which
    :func:`join_scripts` (run over the whole document) sets as ``\\hat{a}^{[l-1]}_{i}``.
    """
    for array in ("x", "w", "g", "z", "b", "L"):
        if array in names:
            text = text.replace(f"@{array}", names[array])
    return text


#: Commands whose braced argument is text or one symbol, never index letters.
_WORD_COMMANDS = ("text", "mathrm", "operatorname", "mathit", "texttt", "mathbf", "textbf")


def _math_letters(math: str):
    """``(position, letter)`` of each Latin letter of ``math`` that is a variable: not part
    of a command (``\\max``) nor inside a word command's argument (``\\text{window}``)."""
    position = 0
    while position < len(math):
        char = math[position]
        if char == "\\":
            match = re.compile(r"\\([A-Za-z]+)|\\.").match(math, position)
            position = match.end() if match else position + 1
            if match and match.group(1) in _WORD_COMMANDS and math[position:position + 1] == "{":
                position = _read_group(math, position)
            continue
        if char.isascii() and char.isalpha():
            yield position, char
        position += 1


def rename_index_letters(math: str, mapping: dict[str, str]) -> str:
    """``math`` with its variable letters renamed by ``mapping`` (``{"a": "p"}``)."""
    if not mapping:
        return math
    chars = list(math)
    for position, char in _math_letters(math):
        chars[position] = mapping.get(char, char)
    return "".join(chars)


def math_letters(math: str) -> set[str]:
    """The variable letters ``math`` writes (see :func:`rename_index_letters`)."""
    return {char for _, char in _math_letters(math)}


def rename_in_prose(text: str, mapping: dict[str, str]) -> str:
    """A sentence with ``$...$`` math: the letters renamed inside the math only."""
    if not mapping:
        return text
    parts = re.split(r"(?<!\\)(\$)", text)
    inside, out = False, []
    for part in parts:
        if part == "$":
            inside = not inside
            out.append(part)
        else:
            out.append(rename_index_letters(part, mapping) if inside else part)
    return "".join(out)


# ---------------------------------------------------------------------------
# Index letters that never collide with a name
# ---------------------------------------------------------------------------

def name_letters(names) -> set[str]:
    """The Latin letters a reader's names are written with, as single symbols:
    ``a^{[l-1]}`` -> ``{a, l}``, ``w_b`` -> ``{w, b}``; a word set as one symbol
    (``\\mathit{net}``, ``\\text{x'}``) is no single letter."""
    letters = set()
    for name in names:
        text = re.sub(r"\\(mathit|text)\{[^{}]*\}", "", str(name))
        text = re.sub(r"\\[A-Za-z]+", "", text)
        letters |= {char for char in text if char.isascii() and char.isalpha()}
    return letters


#: Letters an index may be renamed to, in order of preference.
_SPARE_LETTERS = "pqrstuvhefdyk"


def free_letters(groups, taken: set[str], avoid=()) -> dict[str, str]:
    """``{letter: replacement}`` for the index letters that a reader's names use.

    ``groups`` are the letters that go together (``("ab", "ij", "mk", "n")``, or one
    string of single letters): a group with a letter in ``taken`` is replaced as a whole
    by spare letters that are neither taken nor in use (``ab`` -> ``pq`` when the input
    is named ``a``), so a pair stays a pair.  No spare is one of ``avoid`` (the letters
    a formula already writes).
    """
    groups = list(groups)
    used = set("".join(groups)) | set(taken) | set(avoid)
    mapping = {}
    for group in groups:
        if not set(group) & set(taken):
            continue
        for letter in group:
            spare = next(char for char in _SPARE_LETTERS if char not in used)
            used.add(spare)
            mapping[letter] = spare
    return mapping
