"""``latex --lang zh``: the Chinese prose stage at the end of the LaTeX pipeline.

The lecturer's documents must have no sentence the phrase book lacks, the translation
must never touch math (read here with an extractor of the test's own, not the
package's scanner), every placeholder of a phrase is used exactly once, and the
scanner loses nothing (an empty phrase book gives back the English document).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import types
from collections import Counter

import pytest

from symbackprop.cli import main
from symbackprop.render import languages
from symbackprop.render.languages import (
    missing_report,
    sentences,
    translate_document,
    untranslated,
    zh,
)

CHAIN = ('{"input": [1, 8, 8], "layers": [{"layer": "conv2d", "in_channels": 1, '
         '"out_channels": 2, "kernel_size": 3}, {"layer": "relu"}, {"layer": "maxpool2d", '
         '"kernel_size": 2}, {"layer": "flatten"}, {"layer": "linear", "in_features": 18, '
         '"out_features": 3}]}')

#: The documents a lecturer hands out in Chinese (issue 15): none may keep English prose.
LECTURER = {
    "conv2d-stride2-channels": ["conv2d", "--input", "5x5", "--kernel", "3", "--stride", "2",
                                "--padding", "1", "--in-channels", "2", "--out-channels", "2"],
    "maxpool2d": ["maxpool2d", "--input", "4x4"],
    "avgpool2d": ["avgpool2d", "--input", "4x4"],
    "convtranspose2d": ["convtranspose2d", "--input", "3x3", "--kernel", "3", "--stride", "2"],
    "batchnorm2d": ["batchnorm2d", "--input", "2x2x2", "--batch", "2"],
    "chain": ["sequential", "--spec", CHAIN],
}

_DOCUMENTS: dict = {}


def document(name: str, capsys, *extra: str) -> str:
    """The ``latex`` command's document for ``LECTURER[name]`` (English ones cached)."""
    key = (name, extra)
    if key not in _DOCUMENTS:
        capsys.readouterr()
        assert main(["latex", *LECTURER[name], *extra]) == 0
        _DOCUMENTS[key] = capsys.readouterr().out
    return _DOCUMENTS[key]


def without_words(math: str) -> str:
    """Display math with the words of its ``\\text{...}`` and ``\\tag*{...}`` (notes set in
    math, translated like any prose) left out, their own inline math kept."""
    out, index = "", 0
    for match in re.finditer(r"\\(?:text|textrm|mbox|intertext|tag\*?)\{", math):
        if match.start() < index:
            continue
        depth, end = 0, match.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(math[end], 0)
            end += 1
            if depth == 0:
                break
        words = math[match.end():end - 1]
        out += math[index:match.end()] + " ".join(re.findall(r"\$[^$]*\$", words)) + "}"
        index = end
    return out + math[index:]


def math_spans(text: str) -> Counter:
    """Every piece of math of a document's body: display environments, \\[...\\],
    $...$ and \\(...\\), counted (the translation may reorder them, never change one;
    only the words of a note set in display math are translated)."""
    body = text[text.index("\\begin{document}"):]
    spans = Counter()
    environments = re.compile(r"\\begin\{((?:equation|align|alignat|gather|multline)\*?)\}"
                              r".*?\\end\{\1\}", re.S)
    for match in environments.finditer(body):
        spans[without_words(match.group(0))] += 1
    body = environments.sub(" ", body)
    # \\[4pt] is a line break, not display math: an opening has no backslash before it.
    for pattern in (r"(?<!\\)\\\[.*?\\\]", r"(?<!\\)\\\(.*?\\\)",
                    r"(?<!\\)\$.*?(?<!\\)\$"):
        for match in re.finditer(pattern, body, re.S):
            spans[without_words(match.group(0))] += 1
        body = re.sub(pattern, " ", body, flags=re.S)
    return spans


def english_words(text: str) -> list[str]:
    """The English words of a sentence, but for commands and the names Chinese keeps
    (libraries, functions, option names such as ceil_mode)."""
    return re.findall(r"[A-Za-z]{3,}", re.sub(
        r"\\[A-Za-z]+|SymPy|PyTorch|NumPy|Python|Kronecker|symbackprop|valid|log-softmax|softmax|"
        r"one-hot|Dropout|alpha|beta|mean|sum|[a-z]+(?:\\?_[a-z]+)+", "", text))


@pytest.mark.parametrize("name", LECTURER)
def test_lecturer_documents_have_no_untranslated_sentence(name, capsys):
    missing = untranslated(document(name, capsys), "zh")
    assert not missing, (
        f"the Chinese phrase book lacks {len(missing)} sentences of {name}; add them to "
        f"PHRASES in symbackprop/render/languages/zh.py:\n{missing_report(missing)}")


#: Further kinds whose default document is translated in full too (the cheap ones).
OTHER_KINDS = ["relu", "sigmoid", "tanh", "elu", "prelu", "dropout", "flatten", "linear",
               "softmax", "logsoftmax", "crossentropyloss", "mseloss", "conv1d",
               "convtranspose1d", "batchnorm1d", "maxpool1d", "upsample2d"]


@pytest.mark.parametrize("kind", OTHER_KINDS)
def test_the_other_kinds_default_documents_have_no_untranslated_sentence(kind, capsys):
    capsys.readouterr()
    assert main(["latex", kind]) == 0
    english = capsys.readouterr().out
    missing = untranslated(english, "zh")
    assert not missing, (
        f"the Chinese phrase book lacks {len(missing)} sentences of latex {kind}; add them to "
        f"PHRASES in symbackprop/render/languages/zh.py:\n{missing_report(missing)}")
    assert math_spans(translate_document(english, "zh")) == math_spans(english)


BN_CHAIN = ('{"input": [4], "layers": [{"layer": "linear", "in_features": 4, "out_features": 3}, '
            '{"layer": "batchnorm1d", "num_features": 3}, {"layer": "relu"}, {"layer": "linear", '
            '"in_features": 3, "out_features": 3}, {"layer": "crossentropyloss", '
            '"target": [2, 0]}]}')

#: The options a lecturer adds to those documents: other detail, no worked example,
#: padded pooling with ceil_mode, normalisation and cross-entropy in a chain, the notes'
#: own names.
VARIANTS = {
    "conv2d-brief": ["conv2d", "--input", "5x5", "--kernel", "3", "--stride", "2",
                     "--padding", "1", "--detail", "brief"],
    "conv2d-full-renamed": ["conv2d", "--input", "4x4", "--kernel", "3", "--padding", "1",
                            "--detail", "full", "--input-name", "a^{[l-1]}", "--grad-name",
                            "delta", "--loss-name", "E"],
    "conv2d-no-worked-example": ["conv2d", "--input", "5x5", "--kernel", "3",
                                 "--no-worked-example"],
    "maxpool2d-padded-ceil": ["maxpool2d", "--input", "5x5", "--kernel", "3", "--stride", "2",
                              "--padding", "1", "--ceil-mode"],
    "avgpool2d-padded-ceil": ["avgpool2d", "--input", "5x5", "--kernel", "3", "--stride", "2",
                              "--padding", "1", "--ceil-mode", "--detail", "brief"],
    "chain-batchnorm-cross-entropy": ["sequential", "--spec", BN_CHAIN, "--batch", "2"],
    "residual": ["residual", "--input", "3", "--spec", '[{"layer": "linear", "in_features": 3, '
                 '"out_features": 3}, {"layer": "relu"}]'],
}


@pytest.mark.parametrize("name", VARIANTS)
def test_lecturer_options_leave_no_sentence_english(name, capsys):
    capsys.readouterr()
    assert main(["latex", *VARIANTS[name]]) == 0
    english = capsys.readouterr().out
    missing = untranslated(english, "zh")
    assert not missing, (
        f"the Chinese phrase book lacks {len(missing)} sentences of {name}; add them to "
        f"PHRASES in symbackprop/render/languages/zh.py:\n{missing_report(missing)}")
    assert math_spans(translate_document(english, "zh")) == math_spans(english)


@pytest.mark.parametrize("name", LECTURER)
def test_translation_never_touches_math(name, capsys):
    english = document(name, capsys)
    chinese = translate_document(english, "zh")
    assert math_spans(english) and math_spans(chinese) == math_spans(english)
    assert re.search(r"[\u4e00-\u9fff]", chinese)
    # The prose is Chinese: no English word is left outside math and code.
    assert [s.masked for s in sentences(chinese) if english_words(s.masked)] == []
    assert untranslated(chinese, "zh") == []


def test_an_empty_phrase_book_gives_back_the_english_document(capsys, monkeypatch):
    """The scanner cuts and rejoins a document without losing or moving a byte."""
    empty = types.SimpleNamespace(PHRASES={}, FRAGMENTS={}, LIST_SEPARATOR="",
                                  preamble=lambda text: text)
    monkeypatch.setattr(languages, "phrase_book", lambda language: empty)
    for name in LECTURER:
        english = document(name, capsys)
        assert translate_document(english, "zh") == english


def test_every_placeholder_of_a_phrase_is_used_exactly_once():
    for table in (zh.PHRASES, zh.FRAGMENTS):
        for english, chinese in table.items():
            numbers = [int(n) for n in re.findall(r"<(\d+)>", english)]
            assert numbers == list(range(len(numbers))), english  # numbered in order
            assert sorted(int(n) for n in re.findall(r"<(\d+)>", chinese)) == numbers, english
            assert not english_words(chinese), chinese


def test_an_unknown_sentence_is_reported_in_the_form_the_phrase_book_takes():
    text = ("\\begin{document}\n\\section{Forward pass}\nThe $3 \\times 3$ kernel slides "
            "2 steps over \\texttt{x}. Grey cells are the padding (zeros).\n\\end{document}\n")
    missing = untranslated(text, "zh")
    assert [sentence.masked for sentence in missing] == [
        "The <0> kernel slides <1> steps over <2>."]
    assert missing[0].values == ("$3 \\times 3$", "2", "\\texttt{x}")
    assert "'The <0> kernel slides <1> steps over <2>.': ''," in missing_report(missing)
    # The known sentences are Chinese, the unknown one stays as written, and is still
    # found in the translated document.
    chinese = translate_document(text, "zh")
    assert "\\section{前向传播}" in chinese and "灰色单元格是填充（零）。" in chinese
    assert "The $3 \\times 3$ kernel slides 2 steps over \\texttt{x}." in chinese
    assert untranslated(chinese, "zh") == missing


def test_latex_lang_zh_warns_of_a_sentence_left_english(capsys, monkeypatch):
    monkeypatch.delitem(zh.PHRASES, "The rule:")
    assert main(["latex", *LECTURER["maxpool2d"], "--lang", "zh"]) == 0
    captured = capsys.readouterr()
    assert "The rule:\n" in captured.out  # left English, still a whole document
    assert captured.err.count("\n") == 1
    assert "warning: 1 sentence(s) have no --lang zh translation yet" in captured.err
    assert "'The rule:'" in captured.err


def test_sentences_are_masked_values_and_layer_names():
    text = ("\\begin{document}\n{\\large Conv2d 2$\\to$2, kernel 3x3, stride 2}\n"
            "Section~\\ref{sec:x} has 50 elements.\n\\end{document}\n")
    assert [s.masked for s in sentences(text)] == [
        "<0> <1>, kernel <2>, stride <3>", "Section~<0> has <1> elements."]
    assert "Conv2d 2$\\to$2，卷积核 3x3，步幅 2" in translate_document(text, "zh")


def test_latex_lang_zh_is_the_english_document_translated(capsys):
    english = document("maxpool2d", capsys)
    chinese = document("maxpool2d", capsys, "--lang", "zh")
    assert "\\usepackage[UTF8]{ctex}" in chinese and "fontenc" not in chinese
    # The regenerate command keeps the language.
    assert re.search(r"^%%   symbackprop latex maxpool2d .* --lang zh$", chinese, re.M)
    assert chinese.replace(" -{}-{}lang zh", "").replace(" --lang zh", "") == \
        translate_document(english, "zh")
    assert translate_document(english, "zh") == translate_document(english, "zh")
    capsys.readouterr()
    assert main(["latex", *LECTURER["maxpool2d"], "--lang", "zh"]) == 0
    assert capsys.readouterr().out == chinese  # deterministic


def test_an_unknown_language_is_refused_with_the_rule(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["latex", "maxpool2d", "--lang", "fr"])
    assert exit_.value.code == 2
    assert "--lang: invalid choice: 'fr' (choose from 'en', 'zh')" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"language: 'fr' is not one of en, zh"):
        translate_document("\\begin{document}\\end{document}", "fr")


def test_a_missing_xelatex_is_one_line_naming_the_setup(capsys, monkeypatch, tmp_path):
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which",
                        lambda name, *a, **k: None if name == "xelatex" else real_which(name))
    target = tmp_path / "zh.tex"
    assert main(["latex", "maxpool2d", "--lang", "zh", "--pdf", "-o", str(target)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "needs xelatex" in error and "bash dev.sh setup-zh" in error
    assert not target.exists()  # refused before anything is written


def _has_ctex() -> bool:
    finder = shutil.which("kpsewhich")
    return bool(finder and shutil.which("xelatex") and subprocess.run(
        [finder, "ctex.sty"], capture_output=True, text=True).stdout.strip())


@pytest.mark.slow
@pytest.mark.skipif(not _has_ctex(), reason="xelatex or ctex.sty missing (bash dev.sh setup-zh)")
def test_a_chinese_document_compiles_with_xelatex(tmp_path, capsys):
    target = tmp_path / "maxpool.tex"
    assert main(["latex", *LECTURER["maxpool2d"], "--lang", "zh", "--pdf",
                 "-o", str(target)]) == 0
    pdf = target.with_suffix(".pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                              text=True).stdout
        assert "最大池化的反向传播" in text and "上采样" in text


def test_colours_definitions_and_tikz_options_are_not_prose():
    """xcolor specifications (red!70!black), command definitions, lengths and TikZ
    options are markup: never sentences, kept byte for byte."""
    text = ("\\begin{document}\n"
            "\\providecommand{\\mark}[1]{{\\setlength{\\fboxsep}{1.5pt}"
            "\\fcolorbox{red!70!black}{red!10}{$#1$}}}\n"
            "\\definecolor{padgrey}{gray}{0.6}\\colorlet{hot}{red!40}\n"
            "\\begin{tabular}{cc}\\rowcolor{gray!10} \\cellcolor{blue!5}$x$ & "
            "\\textcolor{red!70!black}{The rule:} \\colorbox{yellow!20}{$y$}\\end{tabular}\n"
            "\\begin{tikzpicture}\\draw[fill=red!10, draw=red!70!black] (0,0) rectangle (1,1);\n"
            "\\node[fill=blue!10, text width=2cm] at (0.5, 0.5) {The rule:};\\end{tikzpicture}\n"
            "\\end{document}\n")
    words = [s.masked for s in sentences(text) if re.search("[A-Za-z]{2}", s.masked)]
    assert words == ["The rule:", "The rule:"]
    chinese = translate_document(text, "zh")
    assert chinese.count("规则：") == 2, chinese
    assert untranslated(text, "zh") == []
    for markup in ("\\fcolorbox{red!70!black}{red!10}{$#1$}", "\\colorlet{hot}{red!40}",
                   "\\cellcolor{blue!5}", "[fill=red!10, draw=red!70!black]",
                   "\\node[fill=blue!10, text width=2cm] at (0.5, 0.5) {"):
        assert markup in chinese
