"""Jinja2 environments, one per target language.

Templates place code; Python computes it.  Both environments are strict: an
undefined name in a template is an error, never an empty string.  Templates are
looked up inside the installed package first (the wheel ships them as
``symbackprop/templates``) and then in the checkout's top-level ``templates/``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

__all__ = ["template_dir", "python_environment", "latex_environment", "latex_escape",
           "nested_code"]

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # symbackprop/


def template_dir() -> Path:
    """The folder holding the ``*.py.j2`` and ``*.tex.j2`` templates."""
    for candidate in (_PACKAGE_DIR / "templates", _PACKAGE_DIR.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"symbackprop's templates are missing: looked in {_PACKAGE_DIR / 'templates'} and "
        f"{_PACKAGE_DIR.parent / 'templates'}; reinstall the package")


def _environment(**delimiters) -> jinja2.Environment:
    """A strict environment over :func:`template_dir`; ``delimiters`` as Jinja2 names them."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        **delimiters,
    )


@functools.lru_cache(maxsize=None)
def python_environment() -> jinja2.Environment:
    """Environment for ``*.py.j2`` templates (with the :func:`nested_code` and
    :func:`bracketed` filters)."""
    environment = _environment()
    environment.filters["nested"] = nested_code
    environment.filters["bracketed"] = bracketed
    return environment


#: Longest line of generated code (the project's ruff line length).
LINE_LENGTH = 100


def bracketed(inner: str, head: str, tail: str = "", indent: str = "") -> str:
    """``head(inner)tail`` laid out as ruff format lays it out: on one line when it fits,
    else the bracket's contents on a line of their own, else one item a line with a
    trailing comma (a long argument list of a chain's module)."""
    line = f"{indent}{head}({inner}){tail}"
    if len(line) <= LINE_LENGTH:
        return line
    inside = indent + "    "
    if len(inside + inner) <= LINE_LENGTH:
        return f"{indent}{head}(\n{inside}{inner}\n{indent}){tail}"
    items = [item.strip() for item in inner.split(",") if item.strip()]
    return f"{indent}{head}(\n" + "".join(f"{inside}{item},\n" for item in items) + \
        f"{indent}){tail}"


def nested_code(code: str, width: int = 4) -> str:
    """Module-level code laid out one level deeper, inside a function.

    Every non-blank line is indented by ``width`` spaces, and the two blank lines
    that separate module-level definitions become one, as inside a function
    (PEP 8).  Leading and trailing blank lines are dropped.
    """
    lines, blank = [], False
    for line in code.strip("\n").split("\n"):
        if not line.strip():
            if not blank:
                lines.append("")
            blank = True
            continue
        lines.append(" " * width + line)
        blank = False
    return "\n".join(lines)


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "%": r"\%", "_": r"\_", "^": r"\^{}", "~": r"\textasciitilde{}",
}


def latex_escape(text) -> str:
    """Escape a plain string for LaTeX text mode."""
    return "".join(_LATEX_SPECIALS.get(char, char) for char in str(text))


@functools.lru_cache(maxsize=None)
def latex_environment() -> jinja2.Environment:
    """Environment for ``*.tex.j2`` templates: ``((* block *))``, ``((( value )))``."""
    environment = _environment(
        block_start_string="((*", block_end_string="*))",
        variable_start_string="(((", variable_end_string=")))",
        comment_start_string="((=", comment_end_string="=))",
        line_comment_prefix="%#",
    )
    environment.filters["latex_escape"] = latex_escape
    return environment
