"""Stage 1, layer specs: what every kind's spec shares, chains, and specs as JSON.

A layer is a small frozen value object.  Its parameters are normalised and
validated when it is built (``Conv2d(kernel_size=3)`` stores ``(3, 3)``), it is
changed with :func:`dataclasses.replace`, and it knows its own output shape.
Each kind's spec class lives in its own package (``symbackprop/kinds/<kind>/spec.py``)
and registers its name with :func:`~symbackprop.core.registry.register_kind`.

Every layer answers the same questions, so the rest of the pipeline never needs
to know which layer it holds:

- ``kind``: its name on the command line and in a JSON spec (``"maxpool2d"``);
- ``parameter_names`` and ``parameter_shapes``: the arrays it learns (``w``, ``b``),
  in the order a generated ``forward(x, *params)`` takes them;
- ``input_shape(input_size, batch)``: the full input shape from a size a person gives;
- ``output_shape_for(input_shape)``: the output shape, checking that the input fits;
- ``term_count(input_shape)``: the size of its symbolic expansion;
- ``describe()`` (one line for people) and ``spec()`` (a JSON-ready dict that
  :func:`layer_from_spec` turns back into the layer).

:class:`Sequential` chains layers; :func:`layer_from_spec` and :func:`load_spec` read
specs written as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from symbackprop.core.indexing import is_int
from symbackprop.core.naming import MODULE_NAMES, sequential_module_name
from symbackprop.core.registry import KINDS, register_kind

__all__ = [
    "SpecMixin",
    "Sequential",
    "input_shape_of",
    "output_shape_of",
    "layer_from_spec",
    "load_spec",
    "spec_dict",
    "sample_shape",
    "check_batch",
    "feature_maps",
    "batched",
    "positive_ints",
    "short_numbers",
]


# ---------------------------------------------------------------------------
# What every layer spec shares: shapes from sizes, spec dicts
# ---------------------------------------------------------------------------

def positive_ints(values, name: str) -> tuple[int, ...]:
    if not all(is_int(v) and v >= 1 for v in values):
        raise ValueError(f"{name} must be whole numbers >= 1, got {tuple(values)!r}")
    return tuple(int(v) for v in values)


def sample_shape(input_size, allow_features: bool = False) -> tuple[int, ...]:
    """One sample's shape from what a person gives.

    An int ``s`` is a square ``1 x s x s`` feature map, ``(H, W)`` one channel,
    ``(C, H, W)`` as given; with ``allow_features`` a 1-tuple ``(F,)`` is a vector.
    """
    if is_int(input_size):
        return positive_ints((1, input_size, input_size), "input_size")
    if isinstance(input_size, (tuple, list)):
        if len(input_size) == 2:
            return positive_ints((1, *input_size), "input_size")
        if len(input_size) == 3 or (allow_features and len(input_size) == 1):
            return positive_ints(input_size, "input_size")
    takes = "(H, W), (C, H, W)" + (" or (F,)" if allow_features else "")
    raise ValueError(f"input_size must be an int (square), {takes}, got {input_size!r}")


def check_batch(batch) -> int:
    if not is_int(batch) or batch < 1:
        raise ValueError(f"batch must be a whole number >= 1, got {batch!r}")
    return int(batch)


def feature_maps(input_shape, layer) -> tuple[int, int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 4:
        raise ValueError(f"{layer.describe()} takes (N, C, H, W) feature maps, got an input of "
                         f"shape {shape}" + ("; put it before the Flatten/Linear layers"
                                             if len(shape) == 2 else ""))
    return shape


def batched(input_shape, layer) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) < 2:
        raise ValueError(f"{layer.describe()} takes an input shaped (N, ...), got {shape}")
    return shape


def short_numbers(values: tuple[int, ...]) -> str:
    if len(set(values)) == 1:
        return str(values[0])
    if len(values) == 4 and values[0] == values[1] and values[2] == values[3]:
        return f"({values[0]}, {values[2]})"
    return str(values)


class SpecMixin:
    """``replace`` and ``spec`` for every layer."""

    def replace(self, **changes):
        """A copy with some parameters changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def spec(self) -> dict:
        """The layer as a JSON-ready dict (see :func:`layer_from_spec`)."""
        return spec_dict(self)

    def field_default(self, field):
        """The value of ``field`` that :meth:`spec` leaves out (its dataclass default)."""
        return field.default


# ---------------------------------------------------------------------------
# Chains
# ---------------------------------------------------------------------------

@register_kind
@dataclass(frozen=True, init=False)
class Sequential(SpecMixin):
    """Layers applied one after the other: ``Sequential(conv, relu, pool, linear)``.

    Layer ``l`` (1-based) maps ``a^{l-1}`` to ``a^l`` (``a^0`` is the input).  Its
    parameters are named with its number (``w1``, ``b1``, ``w4``, ...) and a
    generated module takes them in that order.  A nested ``Sequential`` is
    spliced in.
    """

    layers: tuple

    kind = "sequential"

    def __init__(self, *layers, **keywords):
        if "layers" in keywords:  # dataclasses.replace(chain, layers=...)
            layers = tuple(layers) + tuple(keywords.pop("layers"))
        if keywords:
            raise TypeError(f"Sequential takes layers, got keyword(s) {sorted(keywords)}")
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        flat = []
        for position, layer in enumerate(layers, 1):
            if isinstance(layer, Sequential):
                flat.extend(layer.layers)
            elif type(layer) in KINDS.values():
                flat.append(layer)
            else:
                raise ValueError(f"layers: item {position} is not a layer, got {layer!r}")
        if not flat:
            raise ValueError("layers: a Sequential needs at least one layer")
        object.__setattr__(self, "layers", tuple(flat))

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """``("w1", "b1", "w4", ...)``: each layer's parameters, numbered by the layer."""
        return tuple(f"{name}{number}" for number, layer in enumerate(self.layers, 1)
                     for name in layer.parameter_names)

    @property
    def parameter_shapes(self) -> dict:
        return {f"{name}{number}": shape for number, layer in enumerate(self.layers, 1)
                for name, shape in layer.parameter_shapes.items()}

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        """The first layer's input shape."""
        return self.layers[0].input_shape(input_size, batch)

    def shapes(self, input_shape) -> tuple[tuple[int, ...], ...]:
        """``(shape of a^0, shape of a^1, ..., shape of a^L)``; errors name the layer."""
        shapes = [tuple(input_shape)]
        for number, layer in enumerate(self.layers, 1):
            try:
                shapes.append(tuple(layer.output_shape_for(shapes[-1])))
            except ValueError as error:
                named = str(error).startswith(layer.describe())
                where = f"layer {number}" + ("" if named else f" ({layer.describe()})")
                raise ValueError(f"{where}: {error}") from None
        return tuple(shapes)

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        return self.shapes(input_shape)[-1]

    def term_count(self, input_shape) -> int:
        shapes = self.shapes(input_shape)
        return sum(layer.term_count(shape) for layer, shape in zip(self.layers, shapes))

    def describe(self) -> str:
        return " -> ".join(layer.describe() for layer in self.layers)

    def spec(self) -> dict:
        return {"layer": self.kind, "layers": [layer.spec() for layer in self.layers]}

    @classmethod
    def from_spec(cls, spec) -> "Sequential":
        """A chain from a list of layer dicts (or ``{"layers": [...]}``)."""
        if isinstance(spec, dict):
            unknown = set(spec) - {"layer", "layers", "input"}
            if unknown or "layers" not in spec or spec.get("layer", cls.kind) != cls.kind:
                raise ValueError('a sequential spec is a list of layers or {"layers": [...], '
                                 f'"input": [C, H, W]}}, got keys {sorted(spec)}')
            spec = spec["layers"]
        if not isinstance(spec, list) or not spec:
            raise ValueError(f"layers: a sequential spec needs a non-empty list of layers, got "
                             f"{spec!r}")
        layers = []
        for number, item in enumerate(spec, 1):
            try:
                layers.append(layer_from_spec(item))
            except ValueError as error:
                raise ValueError(f"layer {number}: {error}") from None
        return cls(*layers)


def spec_dict(layer) -> dict:
    """Kind and every parameter that differs from its default, JSON-ready."""
    spec = {"layer": layer.kind}
    for field in dataclasses.fields(layer):
        value = getattr(layer, field.name)
        default = layer.field_default(field)
        if default is not dataclasses.MISSING and value == default:
            continue
        if isinstance(value, tuple):  # (3, 3) -> 3, (0, 1, 0, 1) -> [0, 1, 0, 1]
            value = value[0] if len(set(value)) == 1 else list(value)
        spec[field.name] = value
    return spec


def layer_from_spec(spec: dict):
    """A layer from a dict such as ``{"layer": "maxpool2d", "kernel_size": 2}``.

    Keys are the constructor's keyword names (``kernel`` is accepted for
    ``kernel_size``); lists stand for tuples.  A list (or a ``"sequential"`` dict)
    builds a :class:`Sequential`.
    """
    if isinstance(spec, list) or (isinstance(spec, dict) and "layers" in spec):
        return Sequential.from_spec(spec)
    if not isinstance(spec, dict) or "layer" not in spec:
        raise ValueError(f'a layer spec is a dict with a "layer" key naming one of '
                         f'{", ".join(KINDS)}, got {spec!r}')
    kind = spec["layer"]
    if kind not in KINDS:
        raise ValueError(f"unknown layer {kind!r}; the kinds are {', '.join(KINDS)}")
    cls = KINDS[kind]
    if cls is Sequential:
        return Sequential.from_spec(spec)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    keywords = {}
    for key, value in spec.items():
        if key == "layer":
            continue
        name = getattr(cls, "spec_aliases", {}).get(key, key)
        if name not in fields:
            raise ValueError(f"{kind} takes {', '.join(fields) or 'no parameters'}; got {key!r}")
        keywords[name] = tuple(value) if isinstance(value, list) else value
    missing = [name for name, field in fields.items()
               if field.default is dataclasses.MISSING and name not in keywords]
    if missing:
        raise ValueError(f"{kind} needs {', '.join(missing)}")
    return cls(**keywords)


def load_spec(text: str):
    """``(layer, input_size or None)`` from JSON text or the path of a JSON file.

    The JSON is a list of layer dicts, a single layer dict, or
    ``{"input": [C, H, W], "layers": [...]}``; text starting with ``[`` or ``{`` is
    read as JSON itself, anything else as a file name.
    """
    source = "the spec"
    if not text.lstrip().startswith(("[", "{")):
        source = text
        with open(text, encoding="utf-8") as handle:
            text = handle.read()
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source} is not valid JSON: {error}") from None
    input_size = None
    if isinstance(spec, dict) and "layers" in spec:
        input_size = spec.get("input")
        if isinstance(input_size, list):
            input_size = tuple(input_size)
    return layer_from_spec(spec), input_size


def input_shape_of(layer, input_size, batch: int = 1):
    """The full input shape of ``layer`` (``(N, C, H, W)`` or ``(N, F)``), checking ``batch``."""
    check_batch(batch)
    return tuple(layer.input_shape(input_size, batch))


def output_shape_of(layer, input_shape):
    """The output shape of ``layer`` for an input of ``input_shape`` (checked)."""
    return tuple(layer.output_shape_for(input_shape))


MODULE_NAMES.register(Sequential, sequential_module_name)
