"""The --help of every command and layer kind: each option says what it does and its default,
and each command offers only the options (and kinds) that mean something for it."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from symbackprop.cli import LAYER_OPTIONS, build_parser, main

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("derive", "latex", "generate", "check", "check-impl", "html", "cost")
KINDS = tuple(LAYER_OPTIONS)

# What each kind has, written out here from the layers' definitions (not read from the CLI):
# the arrays it learns, and whether its sums show padding positions (a convolution's "0 w",
# average pooling's padded zeros; max pooling leaves padding out of every window).
LEARNS_WEIGHTS = {"conv2d", "linear", "sequential", "conv1d", "conv3d", "residual",
                  "convtranspose1d", "convtranspose2d", "convtranspose3d", "prelu"}
SHOWS_PADDING = {"conv2d", "avgpool2d", "avgpool1d", "avgpool3d", "sequential", "conv1d",
                 "conv3d", "residual"}
# The kinds symbackprop.check.impl takes (its IMPLEMENTATIONS); the other commands take all.
# (every kind; a chain is checked one layer at a time)
NORMALIZATIONS = {"batchnorm1d", "batchnorm2d", "layernorm", "groupnorm", "instancenorm2d"}
TAKES = {"check-impl": {"conv2d", "maxpool2d", "avgpool2d", "relu", "leakyrelu", "sigmoid",
                        "tanh", "softplus", "flatten", "linear", "conv1d", "conv3d",
                        "residual", "convtranspose1d", "convtranspose2d", "convtranspose3d",
                        "softmax", "logsoftmax", "crossentropyloss", "mseloss", "elu", "gelu",
                        "silu", "dropout", "prelu", "maxpool1d", "maxpool3d", "avgpool1d",
                        "avgpool3d", "upsample2d", "sequential", *NORMALIZATIONS},
         "check": set(KINDS)}


def help_text(*argv) -> str:
    """What ``symbackprop ARGV --help`` prints (it exits 0)."""
    if argv[:1] == ("check-impl",) and len(argv) > 1:  # FILE.py:FUNCTION comes before LAYER
        argv = ("check-impl", "student.py:backward", *argv[1:])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        main([*argv, "--help"])
    assert stop.value.code == 0
    return out.getvalue()


def options_in_help(text: str) -> dict:
    """``{"--kernel": "kernel size: ... (default 2)", ...}`` from the options section."""
    section = text.split("\noptions:\n", 1)[1]
    entries, current = {}, None
    for line in section.splitlines():
        start = re.match(r"  (-\S.*?)(?:  +(\S.*))?$", line)
        if start and not line.startswith("   "):
            names = re.findall(r"(?:^|, )(-[\w-]+)", start.group(1))
            current = [start.group(2) or ""]
            for name in names:
                entries[name] = current
        elif current is not None and line.strip():
            current.append(line.strip())
    return {name: " ".join(" ".join(words).split()) for name, words in entries.items()}


def listed_kinds(command: str) -> list[str]:
    text = help_text(command)
    listing = text.split("  LAYER\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^    (\w+)", listing, flags=re.MULTILINE)


@functools.cache
def layer_parsers() -> tuple:
    """``(command, kind, parser)`` for every command and every kind it lists (built once:
    the parametrized tests read it about 300 times)."""
    return tuple(_layer_parsers())


def _layer_parsers():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, command_parser in commands.choices.items():
        layers = next((a for a in command_parser._actions
                       if isinstance(a, argparse._SubParsersAction)), None)
        if layers is None:  # a command without layers (exercise)
            continue
        shown = {action.dest for action in layers._choices_actions}
        for kind, layer_parser in layers.choices.items():
            if kind in shown:
                yield command, kind, layer_parser


PAIRS = [(command, kind) for command in COMMANDS for kind in KINDS
         if kind in TAKES.get(command, KINDS)]


def test_the_pairs_are_every_command_and_every_kind_it_takes():
    assert sorted((c, k) for c, k, _ in layer_parsers()) == sorted(PAIRS)


@pytest.mark.parametrize("command, kind", PAIRS)
def test_every_option_says_what_it_does_and_its_default(command, kind):
    text = help_text(command, kind)
    shown = options_in_help(text)
    parser = next(p for c, k, p in layer_parsers() if (c, k) == (command, kind))
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert options, text
    for action in options:
        words = shown[action.option_strings[-1]]
        name = "/".join(action.option_strings)
        assert len(words) > 15, f"{command} {kind} {name}: no help text: {words!r}"
        assert "default" in words, f"{command} {kind} {name} does not say its default: {words!r}"
        if action.default not in (None, False):
            default = str(action.default)
            assert re.search(rf"default:? {re.escape(default)}\b", words), \
                f"{command} {kind} {name}: default {default!r} not in {words!r}"
    # Every positional (FORMULA) says what to write.
    for action in parser._actions:
        if not action.option_strings:
            assert action.help and len(action.help) > 15


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_offers_only_the_options_that_mean_something_for_it(kind):
    latex = options_in_help(help_text("latex", kind))
    derive = options_in_help(help_text("derive", kind))
    for option, learners in (("--weight-name", LEARNS_WEIGHTS),
                             ("--bias-name", LEARNS_WEIGHTS - {"prelu"})):  # a slope, no bias
        assert (option in latex) == (kind in learners), (kind, option)
    for options in (latex, derive):
        assert ("--no-padding-terms" in options) == (kind in SHOWS_PADDING), kind
        # Names every layer has stay offered.
    for option in ("--input-name", "--output-name", "--grad-name", "--loss-name"):
        assert option in latex
    assert ("--in-channels" in derive) == (kind in {"conv1d", "conv2d", "conv3d"}
                                           or kind.startswith("convtranspose"))
    assert ("--count-include-pad" in derive) == (kind in ("avgpool1d", "avgpool2d", "avgpool3d"))


@pytest.mark.parametrize("argv, option", [
    (["latex", "maxpool2d", "--weight-name", "v"], "--weight-name v"),
    (["latex", "relu", "--bias-name", "c"], "--bias-name c"),
    (["derive", "maxpool2d", "--no-padding-terms"], "--no-padding-terms"),
    (["derive", "tanh", "--no-padding-terms"], "--no-padding-terms"),
    (["derive", "linear", "--padding", "1"], "--padding 1"),
])
def test_an_option_the_kind_does_not_take_is_an_argparse_error_of_that_kind(argv, option):
    result = subprocess.run([sys.executable, "-m", "symbackprop", *argv], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    # The error is the layer's own, with the usage of what it does take.
    assert f"usage: symbackprop {argv[0]} {argv[1]}" in result.stderr
    assert f"unrecognized arguments: {option}" in result.stderr


def test_the_offered_options_do_something():
    """--no-padding-terms changes average pooling's printout; --weight-name renames w."""
    def run(*argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(list(argv)) == 0
        return out.getvalue()

    shown = run("derive", "avgpool2d", "--padding", "1", "--input", "3x3")
    hidden = run("derive", "avgpool2d", "--padding", "1", "--input", "3x3", "--no-padding-terms")
    assert "(0 + 0 + 0 + x11)" in shown and "(0 + 0 + 0 + x11)" not in hidden
    assert "(0 + 0 + 0 + x11)" not in run("derive", "avgpool2d", "--padding", "1", "--input",
                                          "3x3", "--no-count-include-pad")
    latex = run("latex", "linear", "--weight-name", "theta")
    assert r"\theta" in latex


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_lists_the_kinds_it_takes_and_only_those(command):
    assert listed_kinds(command) == [k for k in KINDS if k in TAKES.get(command, KINDS)]


def test_check_impl_lists_what_check_impl_takes():
    from symbackprop.check.impl import conventions

    assert set(listed_kinds("check-impl")) == set(conventions()) == TAKES["check-impl"]


def test_top_level_help_names_every_command_and_where_to_start():
    text = help_text()
    for command in COMMANDS:
        assert re.search(rf"^    {command}\b", text, flags=re.MULTILINE), command
    assert "symbackprop derive conv2d" in text and "examples/tutorial.ipynb" in text
    assert "--version" in options_in_help(text)


def test_version():
    result = subprocess.run([sys.executable, "-m", "symbackprop", "--version"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == f"symbackprop {importlib.metadata.version('symbackprop')}\n"


def five_minute_commands() -> list[str]:
    """The command lines of the README's "What you can do in five minutes"."""
    text = (REPO / "README.md").read_text()
    section = text.split("## What you can do in five minutes", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.slow
def test_the_readme_opening_runs_as_written(tmp_path):
    """Each command of the README's first section does what the text says it does."""
    import shlex
    import shutil

    commands = five_minute_commands()
    assert [c.split()[1] for c in commands] == ["derive", "check", "check", "check-impl",
                                                "latex", "generate"]
    (tmp_path / "tests").mkdir()
    shutil.copy(REPO / "tests" / "student_conv.py", tmp_path / "tests")
    expected = {"derive": 0, "check-impl": 1, "latex": 0, "generate": 0}
    statuses = []
    for line in commands:
        words = shlex.split(line)
        assert words[0] == "symbackprop"
        if words[1] == "latex" and shutil.which("pdflatex") is None:
            words.remove("--pdf")
        result = subprocess.run([sys.executable, "-m", "symbackprop", *words[1:]], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.stderr == "", (line, result.stderr)
        statuses.append(result.returncode)
        if words[1] in expected:
            assert result.returncode == expected[words[1]], (line, result.stdout)
        if words[1] == "check-impl":
            assert "likely mistake: kernel not rotated" in result.stdout
    assert statuses[1:3] == [0, 1]  # the right formula, then the one with the mistake
    assert (tmp_path / "handout.tex").is_file()
    assert (tmp_path / "generated" / "conv2d_in1_out1_k3_s2_p1.py").is_file()
    assert "examples/tutorial.ipynb" in (REPO / "README.md").read_text().split("## What it is")[0]
