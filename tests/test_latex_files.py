"""``symbackprop latex`` and the files it writes (issue 11, items 4, 5 and 12): no file of
the user's is overwritten by a compiler file or silently, every output check comes
before the derivation, files are 0644, and a killed run's leftovers are cleaned."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from symbackprop.cli import commands, main
from symbackprop.render import latex
from symbackprop.render.latex import check_output_name, write_document

needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None,
                                    reason="pdflatex is not installed (bash dev.sh test "
                                           "installs it)")


@pytest.fixture
def no_derivation(monkeypatch):
    """Fail the test if the command gets as far as deriving."""
    def refuse(args):
        raise AssertionError("derived before checking the output")
    monkeypatch.setattr(commands, "derivation_from_args", refuse)


# -- item 4: names that collide with the compiler's files ----------------------------

@pytest.mark.parametrize("name", ["d.log", "d.aux", "d.out", "d.toc", "d.synctex.gz", "D.LOG"])
@pytest.mark.parametrize("pdf", [[], ["--pdf"]])
def test_an_output_named_like_a_compiler_file_is_refused_before_deriving(
        tmp_path, capsys, no_derivation, name, pdf):
    target = tmp_path / name
    target.write_text("the user's own file")
    assert main(["latex", "conv2d", "-o", str(target), *pdf]) == 2
    error = capsys.readouterr().err
    assert f"-o {str(target)!r}: " in error and "a file pdflatex writes" in error
    assert target.read_text() == "the user's own file"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_with_pdf_the_document_must_end_in_tex(tmp_path, capsys, no_derivation):
    assert main(["latex", "conv2d", "-o", str(tmp_path / "d"), "--pdf"]) == 2
    assert "with --pdf the document must end in .tex" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@needs_pdflatex
@pytest.mark.slow
def test_compiling_overwrites_nothing_beside_the_document(tmp_path, capsys):
    mine = {suffix: f"the user's own {suffix} file" for suffix in (".log", ".aux", ".out")}
    for suffix, text in mine.items():
        (tmp_path / f"d{suffix}").write_text(text)
    assert main(["latex", "conv2d", "-o", str(tmp_path / "d.tex"), "--pdf"]) == 0
    for suffix, text in mine.items():
        assert (tmp_path / f"d{suffix}").read_text() == text
    pdf = tmp_path / "d.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert oct(pdf.stat().st_mode & 0o777) == oct(0o644)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.aux", "d.log", "d.out", "d.pdf",
                                                         "d.tex"]


# -- item 5: no silent overwrite without -o ------------------------------------------

@pytest.mark.parametrize("existing", ["derivation.tex", "derivation.pdf"])
def test_pdf_without_o_refuses_to_replace_an_existing_derivation(
        tmp_path, capsys, monkeypatch, no_derivation, existing):
    monkeypatch.chdir(tmp_path)
    (tmp_path / existing).write_text("an earlier derivation")
    assert main(["latex", "conv2d", "--pdf"]) == 2
    error = capsys.readouterr().err
    assert f"but {existing} already exists" in error
    assert "give -o derivation.tex to replace it, or -o OTHER.tex" in error
    assert (tmp_path / existing).read_text() == "an earlier derivation"
    assert [p.name for p in tmp_path.iterdir()] == [existing]


def test_naming_the_file_with_o_replaces_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "derivation.tex").write_text("an earlier derivation")
    assert main(["latex", "conv2d", "-o", "derivation.tex"]) == 0
    assert (tmp_path / "derivation.tex").read_text().startswith("%")
    assert "wrote derivation.tex" in capsys.readouterr().out


# -- item 12: folders, modes, names, leftovers ---------------------------------------

def test_a_missing_folder_is_created_like_generate_does(tmp_path, capsys):
    target = tmp_path / "new" / "dir" / "d.tex"
    assert main(["latex", "conv2d", "-o", str(target)]) == 0
    assert target.read_text().startswith("%")
    assert f"wrote {target}" in capsys.readouterr().out
    assert sorted(p.name for p in target.parent.iterdir()) == ["d.tex"]


def test_a_folder_that_is_a_file_is_refused_before_deriving(tmp_path, capsys, no_derivation):
    (tmp_path / "notes").write_text("a file, not a folder")
    assert main(["latex", "conv2d", "-o", str(tmp_path / "notes" / "d.tex")]) == 2
    error = capsys.readouterr().err
    assert f"{str(tmp_path / 'notes')!r} is not a folder" in error
    assert ".tmp" not in error


def test_an_output_that_is_a_folder_is_refused(tmp_path, capsys, no_derivation):
    (tmp_path / "d.tex").mkdir()
    assert main(["latex", "conv2d", "-o", str(tmp_path / "d.tex")]) == 2
    assert "is a folder: name the document" in capsys.readouterr().err


def test_documents_are_written_0644(tmp_path):
    old_umask = os.umask(0o022)
    try:
        path = write_document("text", tmp_path / "d.tex")
    finally:
        os.umask(old_umask)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_a_killed_runs_stale_temporary_file_is_removed_and_a_fresh_one_kept(tmp_path):
    stale = tmp_path / ".d.tex.symbackprop-abc123.tmp"
    fresh = tmp_path / ".d.tex.symbackprop-def456.tmp"  # another run, writing right now
    other = tmp_path / ".notes.tmp"  # not ours
    for path in (stale, fresh, other):
        path.write_text("partial")
    an_hour_ago = time.time() - latex.STALE_SECONDS - 60
    os.utime(stale, (an_hour_ago, an_hour_ago))
    os.utime(other, (an_hour_ago, an_hour_ago))
    write_document("text", tmp_path / "d.tex")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [fresh.name, other.name, "d.tex"])


def test_a_killed_runs_compile_folder_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / f"{latex.COMPILE_FOLDER_PREFIX}old"
    (stale / "sub").mkdir(parents=True)
    (stale / "document.aux").write_text("left by a killed run")
    recent = tmp_path / f"{latex.COMPILE_FOLDER_PREFIX}running"
    recent.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    latex._remove_stale_compile_folders()
    assert sorted(p.name for p in tmp_path.iterdir()) == [recent.name]


@needs_pdflatex
@pytest.mark.slow
def test_compile_runs_outside_the_documents_folder(tmp_path, monkeypatch):
    """While pdflatex runs, nothing of it appears beside the document."""
    seen = []
    run = latex.subprocess.run

    def spy(command, **options):
        seen.append((options["cwd"], sorted(p.name for p in tmp_path.iterdir())))
        return run(command, **options)

    monkeypatch.setattr(latex.subprocess, "run", spy)
    tex = write_document(r"\documentclass{article}\begin{document}x\end{document}",
                         tmp_path / "d.tex")
    latex.compile_pdf(tex)
    assert seen and all(os.path.dirname(cwd) != str(tmp_path) for cwd, _ in seen)
    assert all(names == ["d.tex"] for _, names in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pdf", "d.tex"]


def test_a_greek_letter_name_is_written_as_its_ascii_name(capsys):
    assert main(["latex", "conv2d", "--input-name", "α", "--grad-name", "Δ"]) == 0
    document = capsys.readouterr().out
    assert document.isascii()
    assert "--input-name alpha" in document and "--grad-name Delta" in document
    assert r"\alpha_{11}" in document and r"\Delta_{11}" in document


@pytest.mark.parametrize("option, name", [("--input-name", "é"), ("--weight-name", "a b"),
                                          ("--grad-name", "ж"), ("--loss-name", "")])
def test_a_name_pdflatex_cannot_typeset_is_refused_before_deriving(
        capsys, no_derivation, option, name):
    assert main(["latex", "conv2d", option, name]) == 2
    error = capsys.readouterr().err
    assert f"{option}: {name!r} cannot be typeset" in error


@needs_pdflatex
@pytest.mark.slow
@pytest.mark.parametrize("name", ["α", "x'", "a$&#~%", "a^{[l-1]}", "w_b"])
def test_every_accepted_name_compiles(tmp_path, capsys, name):
    assert main(["latex", "conv2d", "--input-name", name, "-o", str(tmp_path / "d.tex"),
                 "--pdf"]) == 0, capsys.readouterr().err
    assert (tmp_path / "d.pdf").read_bytes().startswith(b"%PDF")


def test_check_output_name_accepts_ordinary_documents(tmp_path):
    assert check_output_name(tmp_path / "notes" / "conv.tex", pdf=True) == \
        tmp_path / "notes" / "conv.tex"
    assert check_output_name(tmp_path / "conv.txt") == tmp_path / "conv.txt"


def test_a_compiler_that_does_not_finish_is_stopped_with_advice(tmp_path, monkeypatch):
    def hang(command, **options):
        raise latex.subprocess.TimeoutExpired(command, options["timeout"])

    monkeypatch.setattr(latex.shutil, "which", lambda name: "/usr/bin/pdflatex")
    monkeypatch.setattr(latex.subprocess, "run", hang)
    tex = write_document("text", tmp_path / "d.tex")
    with pytest.raises(latex.LatexCompileError, match=r"within 5 s .*timeout=SECONDS"):
        latex.compile_pdf(tex, timeout=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.tex"]


def test_a_pdf_name_that_is_a_folder_is_refused_before_deriving(tmp_path, capsys, no_derivation):
    (tmp_path / "d.pdf").mkdir()
    assert main(["latex", "conv2d", "-o", str(tmp_path / "d.tex"), "--pdf"]) == 2
    assert "which is a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pdf"]
