"""Translation of a finished LaTeX document's prose: the last stage of ``latex --lang``.

The stages before write English; this one reads the finished document, finds its
prose (never the preamble, math, code or commands it quotes), cuts it into
sentences, masks each sentence's variable parts (inline math, numbers and sizes,
``\\texttt{...}``, ``\\ref{...}``, layer names) as numbered placeholders ``<0>``,
``<1>``, ... and looks the masked sentence up in the language's phrase book
(``languages/<code>.py``), whose Chinese form places the same placeholders where
its grammar needs them.  A sentence the phrase book does not know stays English
and is reported by :func:`untranslated`, so that a test can list what to add, in
the masked form a phrase book takes.

The phrase book is a plain mapping: adding a sentence never touches the stages that
wrote it, and a stage that changes a sentence only makes it show up in
:func:`untranslated` until the phrase book has the new one.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass

#: The languages ``to_latex(..., language=...)`` and ``latex --lang`` take.
LANGUAGES = {"en": "English", "zh": "Chinese (needs xelatex and the ctex package)"}

#: The compiler a document in each language needs, and the LaTeX packages it loads
#: beyond the English document's (checked before --pdf compiles anything).
COMPILERS = {"en": ("pdflatex", ()), "zh": ("xelatex", ("ctex.sty",))}

#: How to get a language's compiler and packages (``bash dev.sh setup-zh``).
SETUP_HINTS = {"zh": "run 'bash dev.sh setup-zh' (Debian/Ubuntu: apt-get install texlive-xetex "
                     "texlive-lang-chinese)"}

#: Environments whose whole content is math or quoted code: never translated.
PROTECTED_ENVIRONMENTS = {
    "equation", "equation*", "align", "align*", "alignat", "alignat*", "gather",
    "gather*", "multline", "multline*", "flalign", "flalign*", "displaymath", "math",
    "eqnarray", "eqnarray*", "verbatim", "Verbatim", "lstlisting", "minted", "split",
}

#: Of those, the ones that hold quoted code, not math: no word in them is translated.
VERBATIM_ENVIRONMENTS = {"verbatim", "Verbatim", "lstlisting", "minted"}

#: Commands whose argument is a unit of prose of its own (a heading, a caption).
HEADINGS = {"section", "subsection", "subsubsection", "paragraph", "subparagraph",
            "caption", "title", "author"}

#: Commands whose braced argument is prose inside the sentence around it.
INLINE_FORMATS = {"textbf", "emph", "textit", "textsc", "textrm", "textsf", "underline",
                  "mbox", "textsl", "textup", "textnormal"}

#: Commands whose argument is a value, not words: masked as one placeholder.
MASKED_COMMANDS = {"texttt", "ref", "eqref", "pageref", "cite", "url", "href", "nolinkurl"}

#: Commands (with their arguments) that end a unit of prose and are kept as they are.
BREAKING_COMMANDS = {
    "label": 1, "color": 1, "setlength": 2, "addtolength": 2, "vspace": 1, "hspace": 1,
    "includegraphics": 1, "setcounter": 2, "input": 1, "tikzset": 1, "usetikzlibrary": 1,
    "newcommand": 2, "renewcommand": 2, "rule": 2, "bibliography": 1,
    # Definitions and colour specifications (red!70!black) are markup, never prose.
    "providecommand": 2, "DeclareRobustCommand": 2, "newenvironment": 3,
    "renewenvironment": 3, "definecolor": 3, "colorlet": 2, "pagecolor": 1,
    "rowcolor": 1, "rowcolors": 3, "columncolor": 1, "cellcolor": 1, "arrayrulecolor": 1,
    "newlength": 1, "settowidth": 2, "resizebox": 2, "scalebox": 1, "raisebox": 1,
    "makebox": 0, "parbox": 1, "fbox": 0, "adjustbox": 1, "pgfmathsetmacro": 2,
    # Their last argument (a table cell, coloured words) is then read as prose.
    "multicolumn": 2, "multirow": 2, "textcolor": 1, "colorbox": 1, "fcolorbox": 2, "phantom": 1,
    "Large": 0, "large": 0, "LARGE": 0, "huge": 0, "Huge": 0, "small": 0,
    "footnotesize": 0, "scriptsize": 0, "tiny": 0, "normalsize": 0, "bfseries": 0,
    "itshape": 0, "mdseries": 0, "upshape": 0, "raggedright": 0, "raggedleft": 0,
    "centering": 0, "noindent": 0, "par": 0, "vfill": 0, "hfill": 0, "toprule": 0,
    "midrule": 0, "bottomrule": 0, "hline": 0, "cmidrule": 1, "newpage": 0,
    "clearpage": 0, "item": 0, "maketitle": 0, "tableofcontents": 0, "quad": 0,
    "qquad": 0, "smallskip": 0, "medskip": 0, "bigskip": 0, "allowbreak": 0,
}

#: A number or a size written in the prose (3, 0.1.0, 3x3, 2x2x2): one placeholder.
NUMBER = re.compile(r"(?<![A-Za-z0-9\\])\d+(?:[.x]\d+)*(?![A-Za-z0-9])")

#: A placeholder in a phrase book's sentences.
PLACEHOLDER = re.compile(r"<(\d+)>")


@dataclass(frozen=True)
class Sentence:
    """One sentence of prose: its masked form and the text each placeholder stands for."""

    masked: str
    values: tuple[str, ...]


def _layer_names() -> set[str]:
    """The names of the layer kinds (``Conv2d``, ...): values, not words to translate."""
    from symbackprop.core.registry import KINDS

    return {layer_type.__name__ for layer_type in KINDS.values()}


class _Scanner:
    """Cut a document's body into protected text and units of prose.

    A unit is a list of pieces ``("text", s)`` and ``("mask", s)``; everything else
    is kept verbatim.  Braces that belong to an inline format (``\\textbf{...}``) stay
    inside the unit; every other brace, ``&``, ``\\\\``, a blank line, an environment
    or a layout command ends it.
    """

    def __init__(self, text: str):
        self.text = text
        self.position = 0
        self.output: list = []  # str (kept) or list of pieces (a unit)
        self.unit: list = []
        self.braces: list[str] = []  # "inline" or "break" for every open brace

    # -- output -------------------------------------------------------------
    def keep(self, text: str) -> None:
        self.flush()
        if self.output and isinstance(self.output[-1], str):
            self.output[-1] += text
        else:
            self.output.append(text)

    def add(self, role: str, text: str) -> None:
        if role == "text" and self.unit and self.unit[-1][0] == "text":
            self.unit[-1] = ("text", self.unit[-1][1] + text)
        else:
            self.unit.append((role, text))

    def flush(self) -> None:
        if self.unit:
            self.output.append(self.unit)
            self.unit = []

    # -- reading --------------------------------------------------------------
    def group(self, start: int, open_: str = "{", close: str = "}") -> int:
        """The index just past the group opening at ``start`` (balanced, escapes skipped)."""
        depth = 0
        index = start
        while index < len(self.text):
            char = self.text[index]
            if char == "\\":
                index += 2
                continue
            if char == open_:
                depth += 1
            elif char == close:
                depth -= 1
                if depth == 0:
                    return index + 1
            index += 1
        return len(self.text)

    def arguments(self, start: int, count: int) -> int:
        """Skip optional ``[...]`` and ``count`` braced arguments after a command."""
        index = start
        taken = 0
        while index < len(self.text):
            rest = self.text[index]
            if rest == "[":
                index = self.group(index, "[", "]")
            elif rest == "{" and taken < count:
                index = self.group(index)
                taken += 1
            else:
                break
        return index

    def math_end(self, start: int, closer: str) -> int:
        index = start
        while index < len(self.text):
            if self.text[index] == "\\":
                if self.text.startswith(closer, index):
                    return index + len(closer)
                index += 2
                continue
            if self.text.startswith(closer, index):
                return index + len(closer)
            index += 1
        return len(self.text)

    def scan(self) -> list:
        text = self.text
        while self.position < len(text):
            start = self.position
            char = text[start]
            if char == "%":
                end = text.find("\n", start)
                end = len(text) if end < 0 else end + 1
                self.keep(text[start:end])
            elif char == "$":
                if text.startswith("$$", start):
                    end = self.math_end(start + 2, "$$")
                    self.keep(text[start:end])
                else:
                    end = self.math_end(start + 1, "$")
                    self.add("mask", text[start:end])
            elif char == "\\":
                end = self.command(start)
            elif char == "{":
                self.braces.append("break")
                end = start + 1
                self.keep("{")
            elif char == "}":
                role = self.braces.pop() if self.braces else "break"
                end = start + 1
                if role == "inline":
                    self.add("text", "}")
                else:
                    self.keep("}")
            elif char == "&":
                end = start + 1
                self.keep("&")
            elif char == "\n" and re.match(r"\n[ \t]*\n", text[start:]):
                end = start + len(re.match(r"\n(?:[ \t]*\n)+", text[start:]).group(0))
                self.keep(text[start:end])
            else:
                match = re.compile(r"[^%$\\{}&\n]+|\n").match(text, start)
                end = match.end()
                self.add("text", text[start:end])
            self.position = max(end, start + 1)
        self.flush()
        return self.output

    def command(self, start: int) -> int:
        text = self.text
        match = re.compile(r"\\([A-Za-z]+\*?|.)").match(text, start)
        if match is None:
            self.add("text", text[start:])
            return len(text)
        name = match.group(1)
        end = match.end()
        if name == "(":
            close = self.math_end(end, r"\)")
            self.add("mask", text[start:close])
            return close
        if name == "[":
            close = self.math_end(end, r"\]")
            self.flush()
            self.output.extend(_math(text[start:close]))
            return close
        if name == "\\":
            close = self.arguments(end, 0)
            self.keep(text[start:close])
            return close
        if name == "begin":
            environment = re.compile(r"\{([^}]*)\}").match(text, end)
            environment = environment.group(1) if environment else ""
            if environment in PROTECTED_ENVIRONMENTS or environment == "tikzpicture":
                closer = f"\\end{{{environment}}}"
                close = text.find(closer, end)
                close = len(text) if close < 0 else close + len(closer)
                self.flush()
                if environment == "tikzpicture":
                    self.output.extend(_tikz(text[start:close]))
                elif environment in VERBATIM_ENVIRONMENTS:
                    self.keep(text[start:close])
                else:
                    self.output.extend(_math(text[start:close]))
                return close
            close = self.arguments(end, 2 if environment in ("tabular", "alignat") else 1)
            self.keep(text[start:close])
            return close
        if name == "end":
            close = self.arguments(end, 1)
            self.keep(text[start:close])
            return close
        bare = name.rstrip("*")
        if bare in HEADINGS:
            opening = self.arguments(end, 0)
            if opening < len(text) and text[opening] == "{":
                self.keep(text[start:opening + 1])
                self.braces.append("break")
                return opening + 1
            self.keep(text[start:opening])
            return opening
        if bare in INLINE_FORMATS and text.startswith("{", end):
            self.add("text", text[start:end + 1])
            self.braces.append("inline")
            return end + 1
        if bare == "verb" and end < len(text):  # \verb|code|: quoted code, one value
            close = text.find(text[end], end + 1)
            close = len(text) if close < 0 else close + 1
            self.add("mask", text[start:close])
            return close
        if bare in MASKED_COMMANDS:
            close = self.arguments(end, 2 if bare == "href" else 1)
            self.add("mask", text[start:close])
            return close
        if bare in BREAKING_COMMANDS:
            close = self.arguments(end, BREAKING_COMMANDS[bare])
            self.keep(text[start:close])
            return close
        # Any other command (\ldots, \%, \,) is part of the words around it.
        self.add("text", text[start:end])
        return end


def _math(block: str) -> list:
    """Display math: kept, but for the words of its ``\\text{...}`` and ``\\tag*{...}``
    (a note beside a sum, "with" before the values), which are text set in math."""
    output: list = []
    kept_from = 0
    for match in re.finditer(r"\\(?:text|textrm|mbox|intertext|tag\*?)\{", block):
        if match.start() < kept_from:
            continue  # inside the words of an earlier one
        opening = match.end() - 1
        close = _Scanner(block).group(opening)
        output.append(block[kept_from:opening + 1])
        output.extend(_Scanner(block[opening + 1:close - 1]).scan())
        output.append("}")
        kept_from = close
    output.append(block[kept_from:])
    return output


def _tikz(picture: str) -> list:
    """A ``tikzpicture``: kept, but for the text of its nodes, scanned as prose."""
    output: list = []
    kept_from = 0
    for match in re.finditer(r"\bnode\b", picture):
        index = match.end()
        # Skip the node's options, name and position: [...], (name), at (x, y).
        while True:
            rest = re.compile(r"\s*(\[[^\]]*\]|\([^)]*\)|at\b)").match(picture, index)
            if rest is None:
                break
            index = rest.end()
        brace = re.compile(r"\s*\{").match(picture, index)
        if brace is None:
            continue
        opening = brace.end() - 1
        scanner = _Scanner(picture)
        close = scanner.group(opening)
        output.append(picture[kept_from:opening + 1])
        inner = _Scanner(picture[opening + 1:close - 1]).scan()
        output.extend(inner)
        output.append("}")
        kept_from = close
    output.append(picture[kept_from:])
    return output


def _mask_numbers_and_names(unit: list, names: set[str]) -> list:
    """Split the text pieces so that numbers, sizes and layer names become masks."""
    pattern = NUMBER
    if names:
        words = "|".join(sorted((re.escape(name) for name in names), key=len, reverse=True))
        pattern = re.compile(rf"{NUMBER.pattern}|(?<![A-Za-z0-9\\])(?:{words})(?![A-Za-z0-9])")
    pieces = []
    for role, text in unit:
        if role != "text":
            pieces.append((role, text))
            continue
        last = 0
        for match in pattern.finditer(text):
            if match.start() > last:
                pieces.append(("text", text[last:match.start()]))
            pieces.append(("mask", match.group(0)))
            last = match.end()
        if last < len(text):
            pieces.append(("text", text[last:]))
    # Masks with nothing between them are one value ("2$\to$2").
    merged = []
    for role, text in pieces:
        if merged and role == "mask" and merged[-1][0] == "mask":
            merged[-1] = ("mask", merged[-1][1] + text)
        else:
            merged.append((role, text))
    return merged


#: A sentence ends at . ! ? followed by space and a capital or a command, or (in a
#: translated document) at a Chinese full stop.
#: Where a sentence ends: after ".", "!" or "?" before a capital, a command, Chinese or a
#: masked value ("... derivative $1$. $b$: 2 elements"); after a colon that ends its line
#: before a capital ("Written out for every output:" then the next sentence).
_SENTENCE_END = re.compile(r"((?<=[.!?])\s+(?=[A-Z\\\u4e00-\u9fff\ue000-\uf8ff])"
                           r"|(?<=[.!?])\s+(?=[a-z]+\\_)"  # an option: ceil\_mode ...
                           r"|(?<=:)[ \t]*\n\s*(?=[A-Z\u4e00-\u9fff])"
                           r"|(?<=[\u3002\uff01\uff1f])\s*)")


def _sentences(unit: list) -> list:
    """``[(leading space, Sentence, trailing space, the sentence as written), ...]``."""
    # The unit as one string, masks as private characters that cannot occur in prose.
    values = [text for role, text in unit if role == "mask"]
    joined = ""
    count = 0
    for role, text in unit:
        if role == "mask":
            joined += chr(0xE000 + count)
            count += 1
        else:
            joined += text
    result = []
    parts = _SENTENCE_END.split(joined)
    # parts: sentence, space, sentence, space, ...
    for index in range(0, len(parts), 2):
        part = parts[index]
        following = parts[index + 1] if index + 1 < len(parts) else ""
        stripped = part.lstrip()
        leading = part[:len(part) - len(stripped)]
        body = stripped.rstrip()
        trailing = stripped[len(body):] + following
        used = []
        masked = ""
        for char in body:
            if 0xE000 <= ord(char) < 0xE000 + count:
                masked += f"<{len(used)}>"
                used.append(values[ord(char) - 0xE000])
            else:
                masked += char
        original = _fill(masked, tuple(used))  # the sentence as written, line breaks kept
        masked = re.sub(r"\s+", " ", masked)
        result.append((leading, Sentence(masked, tuple(used)), trailing, original))
    return result


def _needs_words(masked: str) -> bool:
    """Whether a masked sentence has words: two letters in a row outside commands and
    placeholders (a lone letter, a cell "x", is a name)."""
    return bool(re.search(r"[A-Za-z]{2}", re.sub(r"\\[A-Za-z]+|<\d+>", "", masked)))


def phrase_book(language: str):
    """The module ``symbackprop.render.languages.<language>`` (its ``PHRASES``, ...)."""
    if language not in LANGUAGES or language == "en":
        raise ValueError(f"language: {language!r} has no phrase book; the languages are "
                         f"{', '.join(sorted(LANGUAGES))}")
    return importlib.import_module(f"{__name__}.{language}")


def check_language(language: str) -> str:
    """``language`` if documents can be written in it, else a ValueError with the rule."""
    if language not in LANGUAGES:
        raise ValueError(f"language: {language!r} is not one of "
                         f"{', '.join(sorted(LANGUAGES))} (en: English, zh: Chinese)")
    return language


def compiler_for(language: str) -> str:
    """The LaTeX compiler of a document in ``language``, once it is known to be there.

    Raises
    ------
    ValueError
        When the compiler or one of the language's packages is missing: one line
        saying what to install.
    """
    import shutil
    import subprocess

    compiler, packages = COMPILERS[check_language(language)]
    if language == "en":
        return compiler  # compile_pdf explains a missing pdflatex itself
    missing = [] if shutil.which(compiler) else [compiler]
    finder = shutil.which("kpsewhich")
    for package in packages:
        found = finder and subprocess.run([finder, package], stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL).stdout.strip()
        if not found:
            missing.append(package)
    if missing:
        raise ValueError(f"--lang {language} --pdf needs {' and '.join(missing)}: "
                         f"{SETUP_HINTS[language]}, or leave out --pdf to write only the .tex file")
    return compiler


def _fill(template: str, values: tuple[str, ...]) -> str:
    return PLACEHOLDER.sub(lambda match: values[int(match.group(1))], template)


def _translate_sentence(sentence: Sentence, book) -> str | None:
    """The sentence in the phrase book's language, or None when the book lacks it."""
    if not _needs_words(sentence.masked):
        return _fill(sentence.masked, sentence.values)
    if sentence.masked in book.PHRASES:
        return _fill(book.PHRASES[sentence.masked], sentence.values)
    # A list of short parts ("kernel 3x3, stride 2, padding 1"), each known on its own.
    translated = []
    for part in _fragments(sentence):
        words = _fragment(part, book)
        if words is None:
            break
        translated.append(words)
    else:
        return book.LIST_SEPARATOR.join(translated)
    # A note beside a sum ("4 elements; in 9 outputs; 36 terms"), never a sentence of
    # its own (no full stop): each part between "; " known on its own.
    if "; " not in sentence.masked or sentence.masked.endswith("."):
        return None
    translated = []
    for part in _fragments(sentence, "; "):
        words = _fragment(part, book)
        if words is None:
            return None
        translated.append(words)
    return book.CLAUSE_SEPARATOR.join(translated)


def _fragment(part: Sentence, book) -> str | None:
    """One part of a list: known as it is, or once the values after it are set aside
    ("padding <0> <1> <2>" of a chain's description is "padding <0>" and then the
    arrow and the next layer's name)."""
    masked, values = part.masked, part.values
    tail = ""
    while True:
        if not _needs_words(masked):
            return _fill(masked, values) + tail
        for table in (book.FRAGMENTS, book.PHRASES):
            if masked in table:
                return _fill(table[masked], values) + tail
        # The last values, a layer's name with its size in parentheses too: "BatchNorm2d(2)",
        # or a residual block's opening "Residual(x + Conv2d".
        last = re.search(r" ((?:<\d+>|[()]|\(x \+ )*<(\d+)>[()]*)$", masked)
        if last is None or int(last.group(2)) != len(values) - 1:
            return None
        numbers = [int(number) for number in PLACEHOLDER.findall(last.group(1))]
        first = len(values) - len(numbers)
        if numbers != list(range(first, len(values))):
            return None
        tail = " " + _fill(last.group(1), values) + tail
        masked, values = masked[:last.start()], values[:first]


def _fragments(sentence: Sentence, separator: str = ", ") -> list[Sentence]:
    """The parts of a sentence between ``separator`` (placeholders renumbered in each)."""
    parts = []
    # ", " inside parentheses belongs to a value: "padding (0, 1)"; not inside those
    # right after a layer's name, a residual block's layers: "Residual(x + Conv2d ...)".
    pieces, depth, current, opened = [], 0, "", []
    masked = sentence.masked
    index = 0
    while index < len(masked):
        char = masked[index]
        if char == "(":
            opened.append(not (index and masked[index - 1] == ">"))
            depth += opened[-1]
        elif char == ")" and opened:
            depth -= opened.pop()
        if depth == 0 and masked.startswith(separator, index):
            pieces.append(current)
            current = ""
            index += len(separator)
            continue
        current += char
        index += 1
    pieces.append(current)
    for text in pieces:
        used = []

        def renumber(match, used=used):
            used.append(sentence.values[int(match.group(1))])
            return f"<{len(used) - 1}>"
        parts.append(Sentence(PLACEHOLDER.sub(renumber, text), tuple(used)))
    return parts


def _body_bounds(document: str) -> tuple[int, int]:
    start = document.find("\\begin{document}")
    start = 0 if start < 0 else start + len("\\begin{document}")
    end = document.rfind("\\end{document}")
    return start, (len(document) if end < 0 else end)


def _units(document: str) -> tuple[int, int, list]:
    start, end = _body_bounds(document)
    names = _layer_names()
    pieces = _Scanner(document[start:end]).scan()
    return start, end, [piece if isinstance(piece, str) else _mask_numbers_and_names(piece, names)
                        for piece in pieces]


def _math_units(value: str) -> list | None:
    """The pieces of an inline-math value whose ``\\text{...}`` holds words (an
    underbrace's note ``\\text{through the block}``), or None for a plain value."""
    if "\\text" not in value or not value.startswith(("$", "\\(")):
        return None
    names = _layer_names()
    return [piece if isinstance(piece, str) else _mask_numbers_and_names(piece, names)
            for piece in _math(value)]


def _translate_units(pieces: list, book) -> str:
    body = []
    for piece in pieces:
        if isinstance(piece, str):
            body.append(piece)
            continue
        for leading, sentence, trailing, original in _sentences(piece):
            # A piece without words (a command and a number) stays as written, line
            # breaks and all.
            translated = (_translate_sentence(sentence, book)
                          if _needs_words(sentence.masked) else original)
            if translated is None:
                translated = original
            # The words inside an inline formula's \text{...}, translated on their own.
            for value in dict.fromkeys(sentence.values):
                inner = _math_units(value)
                if inner is not None:
                    translated = translated.replace(value, _translate_units(inner, book))
            body.append(leading + translated + trailing)
    return "".join(body)


def _all_sentences(pieces: list):
    """``(sentence, ...)`` of pieces, those of an inline formula's words after each."""
    for piece in pieces:
        if isinstance(piece, str):
            continue
        for _, sentence, _, _ in _sentences(piece):
            yield sentence
            for value in dict.fromkeys(sentence.values):
                inner = _math_units(value)
                if inner is not None:
                    yield from _all_sentences(inner)


def translate_document(document: str, language: str) -> str:
    """The finished LaTeX ``document`` with its prose in ``language`` (``"en"``: unchanged).

    Math, the preamble, commands and quoted code are kept byte for byte; a sentence
    the phrase book lacks stays English (see :func:`untranslated`).
    """
    check_language(language)
    if language == "en":
        return document
    book = phrase_book(language)
    start, end, pieces = _units(document)
    return book.preamble(document[:start]) + _translate_units(pieces, book) + document[end:]


def untranslated(document: str, language: str) -> list[Sentence]:
    """The sentences of ``document`` that ``language``'s phrase book lacks, each once, in
    the order they appear (``Sentence.masked`` is the phrase book's key).

    ``document`` is the English one, or the one :func:`translate_document` made, in
    which the sentences left English are those written without the language's script.
    """
    book = phrase_book(language)
    missing = {}
    for sentence in _all_sentences(_units(document)[2]):
        if book.SCRIPT.search(sentence.masked):
            continue  # already translated
        if _translate_sentence(sentence, book) is None:
            missing.setdefault(sentence.masked, sentence)
    return list(missing.values())


def sentences(document: str) -> list[Sentence]:
    """Every sentence of prose of a document, masked, in order (for tests and tools)."""
    return [sentence for sentence in _all_sentences(_units(document)[2]) if sentence.masked]


def missing_report(missing: list[Sentence]) -> str:
    """The sentences a phrase book lacks as lines ready to paste into its ``PHRASES``."""
    return "\n".join(f"    {sentence.masked!r}: '',  # e.g. {sentence.values!r}"
                     for sentence in missing)
