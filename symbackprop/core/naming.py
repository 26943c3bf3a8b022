"""Names in one place: array names, element symbols and how people read them.

Every element of every array is a SymPy ``Symbol`` named ``"<array>[i,j,...]"``
(0-based, Python's indexing).  :func:`element_symbol` builds such a symbol and
:func:`parse_element` reads it back; no other module invents or parses names.
:class:`Notation` turns an element into the label a person reads (``x11``,
``x_{1,1}``): 1-based by default, batch and channel indices dropped where that
dimension has size 1, and array names that follow the reader's course.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field

import numpy as np
import sympy

from symbackprop.core.registry import Registry

__all__ = [
    "ARRAYS",
    "element_symbol",
    "parse_element",
    "symbol_array",
    "symbol_grid",
    "to_array",
    "to_grid",
    "flat",
    "Notation",
    "role",
    "module_name",
    "MODULE_NAMES",
    "pair_token",
    "padding_token",
    "number_token",
    "sequential_module_name",
]

#: Arrays a derivation names, with what they are.  The order is the order factors
#: are written in a product (``g x w``, as in ``dL/dw11 = g11 x11 + ...``).
ARRAYS = {
    "g": "upstream gradient dL/dz",
    "x": "layer input",
    "w": "kernel (weights)",
    "b": "bias",
    "z": "layer output",
}
#: Order of the arrays when sorting the terms of a sum: by upstream gradient index,
#: then by kernel offset (the textbook writes ``z11 = x11 w11 + x12 w12 + ...``).
TERM_SORT_ORDER = ("g", "w", "x", "b")
FACTOR_ORDER = ("g", "x", "w", "b")

#: Arrays of a chain of layers are numbered by layer (``a2``, ``delta2``, ``w1``);
#: their role in a product is that of the single-layer array: the activations
#: ``a`` are inputs, the error terms ``delta`` upstream gradients.
ROLES = {"a": "x", "delta": "g"}

# Default spelling of each array for people, and of the loss.
DEFAULT_DISPLAY = {"g": "g", "x": "x", "w": "w", "b": "b", "z": "z", "L": "L"}


def element_symbol(array: str, index: tuple[int, ...]) -> sympy.Symbol:
    """The symbol of ``array[index]`` (0-based), e.g. ``x[0,0,1,2]``."""
    return sympy.Symbol(f"{array}[{','.join(str(int(i)) for i in index)}]", real=True)


@functools.lru_cache(maxsize=None)
def _parse_name(name: str):
    array, bracket, rest = name.partition("[")
    if not bracket or not rest.endswith("]"):
        return None
    try:
        return array, tuple(int(part) for part in rest[:-1].split(","))
    except ValueError:
        return None


def parse_element(symbol) -> tuple[str, tuple[int, ...]] | None:
    """``(array, index)`` of a symbol made by :func:`element_symbol`, else ``None``."""
    if not isinstance(symbol, sympy.Symbol):
        return None
    return _parse_name(symbol.name)


def symbol_grid(array: str, shape: tuple[int, ...]) -> np.ndarray:
    """A NumPy object array of element symbols with the given shape."""
    grid = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        grid[index] = element_symbol(array, index)
    return grid


def symbol_array(array: str, shape: tuple[int, ...]) -> sympy.Array:
    """A SymPy ``Array`` of element symbols with the given shape."""
    return to_array(symbol_grid(array, shape))


def flat(array) -> list:
    """The elements of a SymPy ``Array`` in row-major order (``[]`` for ``None``)."""
    if array is None:
        return []
    return sympy.flatten(array.tolist()) if array.rank() else [array[()]]


def to_grid(array) -> np.ndarray:
    """A SymPy ``Array`` as a NumPy object array of the same shape (fast indexing)."""
    grid = np.empty(len(flat(array)), dtype=object)
    grid[:] = flat(array)
    return grid.reshape(array.shape)


def to_array(grid: np.ndarray) -> sympy.Array:
    """A NumPy object array as an immutable SymPy ``Array`` of the same shape."""
    return sympy.ImmutableDenseNDimArray(list(grid.flat), grid.shape)


@dataclass(frozen=True, eq=False)  # dict fields: compared and hashed by identity
class Notation:
    """How element symbols are shown to people.

    Parameters
    ----------
    shapes : dict
        Shape of each array; a leading (batch or channel) dimension of size 1 is
        not printed, so a 1-channel ``x[0,0,1,2]`` reads ``x23``.
    index_base : int
        0 for Python's indexing, 1 (default) for the textbook's.
    names : dict
        Display names, e.g. ``{"x": "a", "g": "delta"}``.
    spatial_axes : int, optional
        How many trailing axes of an array of rank 3 or more are positions, always
        shown: 2 unless the layer says otherwise (a 1-D layer's ``x[c, i]`` reads
        ``x3`` for one channel, not ``x13``).
    """

    shapes: dict = field(default_factory=dict)
    index_base: int = 1
    names: dict = field(default_factory=dict)
    spatial_axes: int | None = None

    def __post_init__(self):
        if self.index_base not in (0, 1):
            raise ValueError(f"index_base must be 0 or 1, got {self.index_base!r}")

    def name(self, array: str) -> str:
        return self.names.get(array, DEFAULT_DISPLAY.get(array, array))

    def indices(self, array: str, index: tuple[int, ...]) -> tuple[int, ...]:
        """The indices a person reads: base applied, size-1 leading dimensions dropped."""
        shape = self.shapes.get(array)
        shown = list(index)
        if shape is not None:
            # Spatial dimensions (all after the batch and channel axes of 3-d to 5-d arrays,
            # or as many as the layer says it has) and features (the last of 2-d arrays)
            # are always shown; the leading batch/channel dimensions only when they have
            # more than one value.
            if len(shape) >= 3:
                spatial = len(shape) - 2 if self.spatial_axes is None else self.spatial_axes
                keep_from = len(shape) - spatial
            else:
                keep_from = max(len(shape) - 1, 1)
            shown = [i for axis, i in enumerate(index) if axis >= keep_from or shape[axis] != 1]
        return tuple(i + self.index_base for i in shown)

    def label(self, symbol) -> str:
        """Plain-text label: ``x11``, ``x[2,1,3]``, ``b`` (one output channel)."""
        parsed = parse_element(symbol)
        if parsed is None:
            return str(symbol)
        array, index = parsed
        shown = self.indices(array, index)
        name, subscript = self.name(array), plain_subscript(shown)
        if shown and _has_scripts(name):
            # a course name with its own scripts (a^{[l-1]}, w_b): the indices in brackets
            return f"{name}[{','.join(map(str, shown))}]"
        if name[-1:].isdigit() and subscript[:1].isdigit():
            return f"{name}_{subscript}"  # a chain's a2_11, not a211
        return name + subscript


def _has_scripts(name: str) -> bool:
    """A course name with its own scripts (``a^{[l-1]}``, ``w_b``), not an identifier
    (``running_mean``)."""
    return any(char in name for char in "^{}\\") or \
        re.fullmatch(r"[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9]", name) is not None


def plain_subscript(indices: tuple[int, ...]) -> str:
    """``(1, 2) -> "12"``; anything else, or a two-digit index, ``"[1,2,3]"``."""
    if not indices:
        return ""
    if len(indices) <= 2 and all(0 <= i < 10 for i in indices):
        return "".join(map(str, indices))
    return "[" + ",".join(map(str, indices)) + "]"


def role(array: str) -> str:
    """The single-layer array ``array`` stands for: ``"delta3" -> "g"``, ``"w1" -> "w"``."""
    stem = array.rstrip("0123456789") or array
    return ROLES.get(stem, stem)


def term_sort_key(term) -> tuple:
    """Sort key of a product: by ``g`` index, then kernel offset, input, bias."""
    found = {}
    for factor in sympy.Mul.make_args(term):
        parsed = parse_element(factor)
        if parsed is not None:
            found.setdefault(role(parsed[0]), parsed[1])
    return tuple((0, found[a]) if a in found else (1,) for a in TERM_SORT_ORDER)


def factor_sort_key(factor) -> tuple:
    """Order of factors in a product: numbers first, then ``g, x, w, b``."""
    parsed = parse_element(factor)
    if parsed is None:
        # Numbers first, functions such as s(x) before sums such as (1 - s(x)).
        return (0 if factor.is_number else 2, 0 if factor.is_Function else 1, str(factor))
    array = role(parsed[0])
    position = FACTOR_ORDER.index(array) if array in FACTOR_ORDER else len(FACTOR_ORDER)
    return (1, position, parsed[1])


#: The generated module's name of each kind: layer type -> ``function(layer) -> str``.
MODULE_NAMES = Registry("name the generated module of")


def module_name(layer) -> str:
    """Python module (and file stem) of the generated code for ``layer``.

    Every parameter that differs from the default is spelled out, so two layers
    share a name only if they are equal: ``conv2d_in3_out16_k3_s2_p1``,
    ``conv2d_in8_out8_k2_s1_p0_1_0_1_g8_nobias`` (padding top, bottom, left, right).
    Each kind registers its spelling in :data:`MODULE_NAMES`.
    """
    return MODULE_NAMES[layer](layer)


def pair_token(values) -> str:
    """``(3, 3) -> "3"``, ``(1, 7) -> "1x7"``: a pair of sizes in a module name."""
    return str(values[0]) if values[0] == values[1] else f"{values[0]}x{values[1]}"


def padding_token(padding) -> str:
    """``(1, 1, 1, 1) -> "1"``, ``(0, 0, 3, 3) -> "0x3"``, else ``"0_1_0_1"``."""
    top, bottom, left, right = padding
    if top == bottom == left == right:
        return str(top)
    if top == bottom and left == right:
        return f"{top}x{left}"
    return f"{top}_{bottom}_{left}_{right}"


def number_token(value: float) -> str:
    """``0.01 -> "0p01"``, ``-0.5 -> "m0p5"``, ``1e-05 -> "1em05"``: a number in a Python name.

    Written from ``repr``, the shortest text that gives back exactly this float, so two
    different constants never share a name (``0.1`` and ``0.10000000001`` do not).
    """
    return repr(float(value)).replace("-", "m").replace(".", "p").replace("+", "")


def sequential_module_name(layer) -> str:
    """``sequential_conv_relu_maxpool_fc_<8 hex digits of the spec's SHA-256>``.

    Each layer is named by its ``short_name`` (its kind by default).  Chains of more
    than 6 layers name their first 4 and their length:
    ``sequential_conv_tanh_avgpool_conv_12layers_<digest>``.
    """
    spec = json.dumps(layer.spec(), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
    kinds = [getattr(part, "short_name", part.kind) for part in layer.layers]
    if len(kinds) > 6:
        kinds = [*kinds[:4], f"{len(kinds)}layers"]
    return "_".join(["sequential", *kinds, digest])
