"""Run ruff on generated code with the project's rules, for the tests.

``generated/`` is excluded from the repository-wide lint (pyproject.toml), so the
tests lint generated code on their own, with the same rules given explicitly.
Tests that need ruff are skipped when it is not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

#: The project's ruff settings (pyproject.toml), independent of any configuration file.
RUFF_SETTINGS = ["--isolated", "--line-length", "100"]
RUFF_RULES = ["--select", "E,F,W,I,B"]


def ruff_command() -> list[str]:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install ruff, or the test extra)")
    return [sys.executable, "-m", "ruff"]


def ruff_problems(source: str) -> str:
    """Empty when ``source`` passes ``ruff check`` and ``ruff format`` leaves it as it is."""
    ruff = ruff_command()
    stdin = ["--stdin-filename", "module.py", "-"]
    check = subprocess.run([*ruff, "check", *RUFF_SETTINGS, *RUFF_RULES, *stdin], input=source,
                           capture_output=True, text=True)
    formatted = subprocess.run([*ruff, "format", *RUFF_SETTINGS, *stdin], input=source,
                               capture_output=True, text=True)
    problems = []
    if check.returncode:
        problems.append(check.stdout + check.stderr)
    if formatted.returncode or formatted.stdout != source:
        problems.append("not stable under ruff format " + formatted.stderr)
    return "\n".join(problems)


def ruff_problems_in_files(paths) -> str:
    """The same for files, in one ruff run each for check and format."""
    ruff = ruff_command()
    paths = [str(path) for path in paths]
    check = subprocess.run([*ruff, "check", *RUFF_SETTINGS, *RUFF_RULES, *paths],
                           capture_output=True, text=True)
    formatted = subprocess.run([*ruff, "format", "--check", "--diff", *RUFF_SETTINGS, *paths],
                               capture_output=True, text=True)
    return "\n".join(result.stdout + result.stderr for result in (check, formatted)
                     if result.returncode)
