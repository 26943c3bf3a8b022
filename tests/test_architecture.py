"""The shape of the package, read off its source: imports flow one way and only
``symbackprop/kinds/`` names a kind.

Every module under ``symbackprop/`` is parsed (``ast``, nothing is imported to find the
imports) and every import is collected: absolute and relative, at module level and
inside functions.  A module depends on the module an import names, never on the
``__init__`` of that module's parent packages: ``import a.b.c`` and ``from a.b.c import
x`` depend on ``a.b.c`` only, ``from a.b import c`` on ``a.b`` and, when ``c`` is a
module, on ``a.b.c``.  (Python runs the parents' ``__init__`` too, but every module's
first parent is ``symbackprop/__init__.py``, which imports everything: counting parents
would make every module part of one cycle and hide the cycles that matter.)

The layers, from the bottom: ``core`` (the symbolic pipeline), ``render`` and ``check``
(the stages that ask the kinds through registries), ``kinds`` (each kind plugs itself
into the stages), ``cli`` (the program).  ``symbackprop/__init__.py``, ``__main__.py``,
``_version.py`` and ``catalog.py`` sit on top and may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import symbackprop
from symbackprop.core.registry import KINDS

PACKAGE = Path(symbackprop.__file__).parent

#: The folders every rule is enforced in.  The stages are converted to registries one
#: branch at a time; a folder joins when its branch lands (render and check still
#: import kinds, name them, and hold import cycles of their own).
CONVERTED = ("core", "kinds", "cli", "check", "render")

#: Layer -> the layers it may import (besides itself).  Lower layers never import upper.
ALLOWED = {
    "core": {"core"},
    "render": {"core", "render"},
    "check": {"core", "render", "check"},
    "kinds": {"core", "render", "check", "kinds"},
    "cli": {"core", "render", "check", "kinds", "cli"},
}

#: Modules on top of every layer: they may import anything and name any kind.
TOP = {"symbackprop", "symbackprop.__main__", "symbackprop._version", "symbackprop.catalog"}

#: A chain composes kinds without naming one: it is core, and its name is allowed anywhere;
#: so is a residual block, a chain's part (``y = x + block(x)``, the block any kinds).
CORE_KIND_NAMES = {"sequential", "Sequential", "residual", "Residual"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    return {module_name(path): (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
            for path in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute name ``from ... import`` names, relative imports resolved."""
    if not node.level:
        return node.module
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str) -> list[tuple[str, int]]:
    """``[(imported module, line), ...]``: the package's modules ``module`` imports."""
    path, tree = MODULES[module]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, path, node)
            found.append((source, node.lineno))
            found += [(f"{source}.{alias.name}", node.lineno) for alias in node.names
                      if f"{source}.{alias.name}" in MODULES]
    return [(name, line) for name, line in found if name in MODULES and name != module]


GRAPH = {module: sorted({name for name, _ in imports_of(module)}) for module in MODULES}


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """One import cycle ``[a, b, ..., a]`` of ``graph``, or ``None``."""
    state = {}  # module -> "open" while on the path, "done" after

    def visit(module, path):
        state[module] = "open"
        path.append(module)
        for name in graph[module]:
            if state.get(name) == "open":
                return path[path.index(name):] + [name]
            if name not in state:
                cycle = visit(name, path)
                if cycle:
                    return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in graph:
        if module not in state:
            cycle = visit(module, [])
            if cycle:
                return cycle
    return None


def layer_of(module: str) -> str | None:
    """``"core"`` for ``symbackprop.core.expand``; ``None`` for the top modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


# -- the test's own machinery, on made-up graphs and sources -------------------------


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def test_imports_are_read_at_every_level_and_relative_ones_resolved(monkeypatch):
    source = ("import symbackprop.core.expand\n"
              "from . import registry\n"
              "def later():\n"
              "    from ..render import text\n")
    path = PACKAGE / "core" / "made_up.py"
    monkeypatch.setitem(MODULES, "symbackprop.core.made_up", (path, ast.parse(source)))
    assert sorted(imports_of("symbackprop.core.made_up")) == [
        ("symbackprop.core", 2), ("symbackprop.core.expand", 1),
        ("symbackprop.core.registry", 2), ("symbackprop.render", 4),
        ("symbackprop.render.text", 4)]


# -- the package ---------------------------------------------------------------------


def test_every_layer_and_top_module_is_found():
    assert {layer_of(module) for module in MODULES} == set(ALLOWED) | {None}
    assert TOP <= set(MODULES)
    assert {module for module in MODULES if layer_of(module) is None} == TOP


def test_no_import_cycle():
    """No cycle anywhere, except (until they join :data:`CONVERTED`) one within a
    folder still being converted: render's and check's own modules among themselves."""
    graph = {module: [name for name in names
                      if layer_of(name) in CONVERTED or layer_of(name) != layer_of(module)]
             for module, names in GRAPH.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def wrong_way_imports(layer: str) -> list[str]:
    """``["module:line imports name", ...]``: the imports of ``layer``'s modules that flow
    against ``cli -> kinds -> check, render -> core`` (``_version`` imports nothing and
    may be read from anywhere; the other top modules import everything and may not)."""
    return [f"{module}:{line} imports {name}"
            for module in MODULES if layer_of(module) == layer
            for name, line in imports_of(module)
            if name != "symbackprop._version"
            and (layer_of(name) is None or layer_of(name) not in ALLOWED[layer])]


def test_wrong_way_imports_are_found(monkeypatch):
    source = ("from symbackprop.core import expand\n"
              "def show():\n"
              "    from symbackprop.render.latex import repr_latex\n"
              "    import symbackprop.catalog\n")
    monkeypatch.setitem(MODULES, "symbackprop.core.made_up",
                        (PACKAGE / "core" / "made_up.py", ast.parse(source)))
    assert [found for found in wrong_way_imports("core") if "made_up" in found] == [
        "symbackprop.core.made_up:3 imports symbackprop.render.latex",
        "symbackprop.core.made_up:4 imports symbackprop.catalog"]


@pytest.mark.parametrize("layer", CONVERTED)
def test_imports_flow_one_way(layer):
    wrong = wrong_way_imports(layer)
    assert not wrong, f"{layer} imports against the flow cli -> kinds -> check, render -> " \
                      "core:\n" + "\n".join(wrong)


def kind_names() -> tuple[set[str], set[str]]:
    """``({"conv2d", ...}, {"Conv2d", ...})``: every registered kind's name and spec class
    (a chain, which is core, left out)."""
    import symbackprop.kinds  # noqa: F401  (registers every kind)

    return ({name for name in KINDS} - CORE_KIND_NAMES,
            {layer_type.__name__ for layer_type in KINDS.values()} - CORE_KIND_NAMES)


def kind_mentions(module: str) -> list[str]:
    """Where ``module`` names a kind: a kind's name as a whole string literal, or its spec
    class as a name, an attribute or an import (which ``isinstance`` on it needs)."""
    strings, classes = kind_names()
    path, tree = MODULES[module]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value in strings:
            found.append(f"{module}:{node.lineno} the string {node.value!r}")
        elif isinstance(node, ast.Name) and node.id in classes:
            found.append(f"{module}:{node.lineno} the name {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in classes:
            found.append(f"{module}:{node.lineno} the attribute .{node.attr}")
        elif isinstance(node, ast.alias) and node.name.split(".")[-1] in classes:
            found.append(f"{module}:{node.lineno} imports {node.name}")
    return found


def test_kind_mentions_are_found(monkeypatch):
    source = ('if kind == "conv2d" or isinstance(layer, kinds.MaxPool2d):\n'
              '    linear = Linear()\n')
    monkeypatch.setitem(MODULES, "symbackprop.core.made_up",
                        (PACKAGE / "core" / "made_up.py", ast.parse(source)))
    assert kind_mentions("symbackprop.core.made_up") == [
        "symbackprop.core.made_up:1 the string 'conv2d'",
        "symbackprop.core.made_up:1 the attribute .MaxPool2d",
        "symbackprop.core.made_up:2 the name Linear"]


@pytest.mark.parametrize("layer", [layer for layer in CONVERTED if layer != "kinds"])
def test_no_kind_named_outside_kinds(layer):
    strings, classes = kind_names()
    assert "conv2d" in strings and "MaxPool2d" in classes  # the kinds are registered
    found = [mention for module in MODULES if layer_of(module) == layer
             for mention in kind_mentions(module)]
    assert not found, f"{layer} names a kind (ask its registry instead):\n" + "\n".join(found)
