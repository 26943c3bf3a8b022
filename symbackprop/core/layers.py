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
import math
import os
import re
import stat
from dataclasses import dataclass

from symbackprop.core.indexing import is_int
from symbackprop.core.naming import MODULE_NAMES, sequential_module_name
from symbackprop.core.registry import KINDS

__all__ = [
    "SpecMixin",
    "Sequential",
    "Residual",
    "ResidualSum",
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


class GroupedChannels:
    """What every convolution (plain or transposed, of any number of axes) has: ``C`` in,
    ``O`` out, split into ``groups``, and an optional bias ``b[o]``.  The layer supplies
    ``weight_shape``."""

    def check_channel_counts(self) -> None:
        for name in ("in_channels", "out_channels", "groups"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")

    def check_groups_and_bias(self) -> None:
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be True or False, got {self.bias!r}")
        for name in ("in_channels", "out_channels"):
            if getattr(self, name) % self.groups:
                raise ValueError(
                    f"groups must divide {name}: {getattr(self, name)} channels cannot be split "
                    f"into {self.groups} groups")

    @property
    def group_in_channels(self) -> int:
        """Input channels per group: ``C / groups``."""
        return self.in_channels // self.groups

    @property
    def group_out_channels(self) -> int:
        """Output channels per group: ``O / groups``."""
        return self.out_channels // self.groups

    @property
    def bias_shape(self) -> tuple[int] | None:
        return (self.out_channels,) if self.bias else None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return ("w", "b") if self.bias else ("w",)

    @property
    def parameter_shapes(self) -> dict:
        """``{"w": weight_shape, "b": (O,)}`` (no ``b`` without bias)."""
        return {"w": self.weight_shape, **({"b": self.bias_shape} if self.bias else {})}


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

@dataclass(frozen=True, init=False)
class Sequential(SpecMixin):
    """Layers applied one after the other: ``Sequential(conv, relu, pool, linear)``.

    Layer ``l`` (1-based) maps ``a^{l-1}`` to ``a^l`` (``a^0`` is the input).  Its
    parameters are named with its number (``w1``, ``b1``, ``w4``, ...) and a
    generated module takes them in that order.  A nested ``Sequential`` is
    spliced in, and so is a :class:`Residual`: its block's layers, then a
    :class:`ResidualSum` that adds the block's input back (``layers`` is the chain as it
    is computed, one array ``a_l`` per entry; :meth:`spec` and :meth:`describe` give the
    residual blocks back).
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
            if isinstance(layer, (Sequential, Residual)):
                flat.extend(layer.layers)
            elif isinstance(layer, ResidualSum):
                flat.append(layer)
            elif type(layer) in KINDS.values():
                if getattr(layer, "constant_names", ()):
                    # a chain passes x and the parameters only; inputs that are read but
                    # not differentiated (a dropout mask) have no place in its modules yet
                    raise ValueError(
                        f"layers: item {position}, {layer.describe()}, reads an input that is "
                        f"not differentiated ({', '.join(layer.constant_names)}), which a "
                        f"Sequential does not pass; derive and generate it on its own")
                flat.append(layer)
            else:
                raise ValueError(f"layers: item {position} is not a layer, got {layer!r}")
        if not flat:
            raise ValueError("layers: a Sequential needs at least one layer")
        _check_nesting(flat)
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
            if isinstance(layer, ResidualSum):
                first = number - layer.span
                try:
                    layer.check_shapes(shapes[first - 1], shapes[-1])
                except ValueError as error:
                    where = f"layer {first}" if layer.span == 1 else \
                        f"layers {first}-{number - 1}"
                    raise ValueError(f"residual block ({where}): {error}") from None
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
        return " -> ".join(layer.describe() for layer in self.grouped())

    def spec(self) -> dict:
        return {"layer": self.kind, "layers": [layer.spec() for layer in self.grouped()]}

    def grouped(self) -> tuple:
        """The layers as a person wrote them: each residual block (its layers and the
        :class:`ResidualSum` that closes it) as one :class:`Residual`."""
        return tuple(item for item, _ in _grouped(self.layers))

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



# ---------------------------------------------------------------------------
# Residual blocks: y = x + block(x)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ResidualSum(SpecMixin):
    """The end of a residual block inside a chain: ``a_l = a_{l-1} + a_{l-1-span}``.

    ``a_{l-1}`` is the block's output ``block(x)`` and ``a_{l-1-span}`` its input
    ``x``, ``span`` layers back; the sum has no parameters.  Backward, its error term
    ``delta_l`` goes unchanged both ways: to the block's output (``delta_{l-1} =
    delta_l``) and, along the identity path, to the block's input, where it is added to
    what the block hands back.  A :class:`Sequential` makes one when it splices a
    :class:`Residual` in; it is not a kind of its own (no spec, no command line).
    """

    span: int

    kind = "residual"
    short_name = "add"  # in a chain's module name
    parameter_names = ()

    def __post_init__(self):
        if not is_int(self.span) or self.span < 1:
            raise ValueError(f"span: a residual sum adds the input of a block of >= 1 "
                             f"layers, got {self.span!r}")

    @property
    def parameter_shapes(self) -> dict:
        return {}

    def input_shape(self, input_size, batch: int = 1):
        raise ValueError("a residual sum closes a block: it cannot be a chain's first layer")

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        return tuple(input_shape)

    def check_shapes(self, block_input, block_output) -> None:
        """``ValueError`` unless the block keeps the shape of its input (``x + block(x)``
        adds them element by element)."""
        if tuple(block_input) != tuple(block_output):
            raise ValueError(f"y = x + block(x) adds block(x) to x element by "
                             f"element, so the block's output shape must equal its input "
                             f"shape; the block maps x of shape {tuple(block_input)} to "
                             f"block(x) of shape {tuple(block_output)}")

    def term_count(self, input_shape) -> int:
        return math.prod(input_shape)

    def describe(self) -> str:
        return f"residual sum (+ the block's input, {self.span} layers back)"


@dataclass(frozen=True)
class Residual(SpecMixin):
    """``y = x + block(x)``: a residual (skip) connection around ``block``.

    ``block`` is one layer or a :class:`Sequential` (a list is made one) whose output
    has the shape of its input.  Backward, the gradient reaches ``x`` along two paths
    that add: the identity path brings ``dL/dy`` itself, the block's path what the
    block hands back, ``dL/dx = dL/dy + (block's backward of dL/dy)``.

    Inside a :class:`Sequential` the block's layers are numbered as the chain's own,
    followed by one :class:`ResidualSum` (``Sequential(Residual(conv, relu, conv),
    relu)`` computes ``a1, a2, a3`` in the block, ``a4 = a3 + a0`` and ``a5``); on its
    own a residual block is derived, generated and printed as that one-block chain.
    """

    block: object

    kind = "residual"
    short_name = "res"

    def __post_init__(self):
        block = self.block
        if isinstance(block, (list, tuple)):
            if not block:
                raise ValueError("block: a residual block needs at least one layer, got []")
            block = Sequential(*block)
        if isinstance(block, ResidualSum) or not (
                isinstance(block, (Sequential, Residual)) or type(block) in KINDS.values()):
            raise ValueError(f"block: a residual's block is a layer or a Sequential of "
                             f"layers, got {block!r}")
        if isinstance(block, Sequential):
            grouped = block.grouped()
            if len(grouped) == 1:  # Residual(Sequential(conv)) is Residual(conv)
                block = grouped[0]
        object.__setattr__(self, "block", block)

    @property
    def layers(self) -> tuple:
        """The block's layers, then the :class:`ResidualSum` that closes it."""
        inner = self.block.layers if isinstance(self.block, (Sequential, Residual)) \
            else (self.block,)
        return (*inner, ResidualSum(len(inner)))

    def _chain(self) -> "Sequential":
        return Sequential(self)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The block's parameters, numbered by their layer as in a chain (``w1, b1, w3``)."""
        return self._chain().parameter_names

    @property
    def parameter_shapes(self) -> dict:
        return self._chain().parameter_shapes

    def input_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self._chain().input_shape(input_size, batch)

    def output_shape(self, input_size, batch: int = 1) -> tuple[int, ...]:
        return self.output_shape_for(self.input_shape(input_size, batch))

    def output_shape_for(self, input_shape) -> tuple[int, ...]:
        return self._chain().output_shape_for(input_shape)

    def term_count(self, input_shape) -> int:
        return self._chain().term_count(input_shape)

    def describe(self) -> str:
        return f"Residual(x + {self.block.describe()})"

    def spec(self) -> dict:
        block = self.block.spec()
        if isinstance(self.block, Sequential):
            block = block["layers"]
        return {"layer": self.kind, "block": block}

    @classmethod
    def from_spec(cls, spec) -> "Residual":
        """``{"layer": "residual", "block": [layer, ...]}`` (or ``"block": {layer}``)."""
        unknown = set(spec) - {"layer", "block", "input"}
        if unknown or "block" not in spec:
            raise ValueError('a residual spec is {"layer": "residual", "block": [...]} (the '
                             f'block a list of layers or one layer), got keys {sorted(spec)}')
        block = spec["block"]
        if isinstance(block, list):
            if not block:
                raise ValueError("block: a residual block needs at least one layer, got []")
            layers = []
            for number, item in enumerate(block, 1):
                try:
                    layers.append(layer_from_spec(item))
                except ValueError as error:
                    raise ValueError(f"block layer {number}: {error}") from None
            return cls(Sequential(*layers))
        try:
            return cls(layer_from_spec(block))
        except ValueError as error:
            raise ValueError(f"block: {error}") from None


def _check_nesting(layers) -> None:
    """``ValueError`` unless every :class:`ResidualSum` closes a block of whole layers
    and blocks: one that starts before the chain or cuts another block in two."""
    _grouped(layers)


def _grouped(layers) -> list:
    """``[(item, flat length), ...]``: ``layers`` with each residual block regrouped."""
    items = []
    for number, layer in enumerate(layers, 1):
        if not isinstance(layer, ResidualSum):
            items.append((layer, 1))
            continue
        block, size = [], 0
        while items and size < layer.span:
            item, length = items.pop()
            block.insert(0, item)
            size += length
        if size != layer.span:
            raise ValueError(f"layers: item {number}, a residual sum over the last "
                             f"{layer.span} layers, does not close a block of whole layers "
                             f"(it starts before the chain or inside another block)")
        inner = block[0] if len(block) == 1 else Sequential(*block)
        items.append((Residual(inner), size + 1))
    return items


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
    builds a :class:`Sequential`; ``{"layer": "residual", "block": [...]}`` a
    :class:`Residual`.
    """
    if isinstance(spec, list) or (isinstance(spec, dict) and "layers" in spec):
        return Sequential.from_spec(spec)
    if not isinstance(spec, dict) or "layer" not in spec:
        shown = repr(spec)
        if len(shown) > 80:  # a spec may be a megabyte long: show its start
            shown = f"{shown[:70]}... ({len(shown):,} characters)"
        examples = ", ".join(list(KINDS)[:3])
        raise ValueError(f'a layer spec is a dict with a "layer" key naming a kind ({examples}, '
                         f'...: `symbackprop derive --help` lists all {len(KINDS)}), got {shown}')
    kind = spec["layer"]
    if not isinstance(kind, str) or kind not in KINDS:
        shown = repr(kind) if len(repr(kind)) <= 40 else f"{repr(kind)[:36]}..."
        raise ValueError(f"unknown layer {shown}; the kinds are {', '.join(KINDS)}")
    cls = KINDS[kind]
    if cls is Sequential:
        return Sequential.from_spec(spec)
    if cls is Residual:
        return Residual.from_spec(spec)
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


#: Largest spec :func:`load_spec` reads, file or text, in bytes (1 MiB; a chain of
#: a hundred layers is a few kilobytes).
SPEC_MAX_BYTES = 1 << 20
#: Deepest nesting of ``[`` and ``{`` in a spec (a chain needs 3 or 4 levels).
SPEC_MAX_DEPTH = 32
#: Most layers a spec may name (each costs about 2 ms and 20 kB to derive, so a
#: megabyte of ``{"layer": "relu"}`` would take minutes and gigabytes).
SPEC_MAX_LAYERS = 1000
#: Largest whole number in a spec (the command line's bound, ``cli.NUMBER_LIMIT``).
NUMBER_LIMIT = 10**9

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _json_depth(text: str) -> int:
    """Deepest bracket nesting of JSON ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    for bracket in re.finditer(r"[\[\]{}]", _JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _spec_integer(source: str):
    """``parse_int`` for :func:`json.loads`: whole numbers up to :data:`NUMBER_LIMIT`."""
    def parse(digits: str) -> int:
        if len(digits.lstrip("-").lstrip("0")) > len(str(NUMBER_LIMIT)) \
                or abs(int(digits)) > NUMBER_LIMIT:
            shown = digits if len(digits) <= 20 else f"{digits[:16]}... ({len(digits):,} digits)"
            raise ValueError(f"{source}: the number {shown} is too large: whole numbers in a "
                             f"spec are at most {NUMBER_LIMIT:,}")
        return int(digits)
    return parse


def _layer_count(spec) -> int:
    """Layers a parsed spec names: dicts with a ``"layer"`` key, however nested."""
    if isinstance(spec, dict):
        inner = sum(_layer_count(value) for value in spec.values())
        return inner + (1 if "layer" in spec else 0)
    if isinstance(spec, list):
        return sum(_layer_count(item) for item in spec)
    return 0


def read_spec_file(path: str) -> str:
    """The text of the spec file ``path``: a regular file of at most :data:`SPEC_MAX_BYTES`
    bytes of UTF-8.

    The file is opened without blocking and checked before it is read, so a FIFO,
    a device such as ``/dev/zero`` or a folder is refused at once instead of
    waiting for a writer or filling memory.

    Raises
    ------
    ValueError
        For a file that is not a regular file, too large, or not UTF-8 (naming it).
    OSError
        When it cannot be opened (naming it).
    """
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise type(error)(f"--spec: cannot read spec file {path!r}: "
                          f"{error.strerror or error}") from None
    status = os.fstat(handle)
    if not stat.S_ISREG(status.st_mode):
        os.close(handle)
        kind = ("a folder" if stat.S_ISDIR(status.st_mode) else
                "a FIFO (named pipe)" if stat.S_ISFIFO(status.st_mode) else
                "a device" if stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode)
                else "a socket" if stat.S_ISSOCK(status.st_mode) else "not a regular file")
        raise ValueError(f"--spec: {path!r} is {kind}; a spec is a regular JSON file "
                         f"or the JSON text itself")
    with os.fdopen(handle, "rb") as stream:
        if hasattr(os, "set_blocking"):
            os.set_blocking(stream.fileno(), True)
        data = stream.read(SPEC_MAX_BYTES + 1)
    if len(data) > SPEC_MAX_BYTES:
        raise ValueError(f"--spec: spec file {path!r} is larger than {SPEC_MAX_BYTES:,} bytes, "
                         f"the most a spec may have (symbackprop.core.layers.SPEC_MAX_BYTES)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"--spec: spec file {path!r} is not UTF-8 text: byte "
                         f"0x{data[error.start]:02x} at offset {error.start} cannot be "
                         f"decoded") from None


def load_spec(text: str):
    """``(layer, input_size or None)`` from JSON text or the path of a JSON file.

    The JSON is a list of layer dicts, a single layer dict, or
    ``{"input": [C, H, W], "layers": [...]}``; text starting with ``[`` or ``{`` is
    read as JSON itself, anything else as a file name.

    Bounds (checked before parsing, each a clear ``ValueError``): a file must be a
    regular file (:func:`read_spec_file`); text or file at most
    :data:`SPEC_MAX_BYTES`, nested at most :data:`SPEC_MAX_DEPTH` deep, whole
    numbers at most :data:`NUMBER_LIMIT`, at most :data:`SPEC_MAX_LAYERS` layers.
    """
    source = "the spec"
    if not text.lstrip().startswith(("[", "{")):
        source = f"spec file {text!r}"
        text = read_spec_file(text)
    elif len(text.encode("utf-8", "replace")) > SPEC_MAX_BYTES:
        raise ValueError(f"--spec: {source} is larger than {SPEC_MAX_BYTES:,} bytes, the most "
                         f"a spec may have (symbackprop.core.layers.SPEC_MAX_BYTES)")
    depth = _json_depth(text)
    if depth > SPEC_MAX_DEPTH:
        raise ValueError(f"--spec: {source} nests brackets {depth} deep; a spec needs 3 or 4 "
                         f"levels and at most {SPEC_MAX_DEPTH} are read "
                         f"(symbackprop.core.layers.SPEC_MAX_DEPTH)")
    try:
        spec = json.loads(text, parse_int=_spec_integer(f"--spec: {source}"))
    except json.JSONDecodeError as error:
        raise ValueError(f"--spec: {source} is not valid JSON: {error}") from None
    except RecursionError:  # not reached within SPEC_MAX_DEPTH; kept as a last guard
        raise ValueError(f"--spec: {source} is nested too deeply to read") from None
    layers = _layer_count(spec)
    if layers > SPEC_MAX_LAYERS:
        raise ValueError(f"--spec: {source} names {layers:,} layers, more than the "
                         f"{SPEC_MAX_LAYERS:,} a spec may have "
                         f"(symbackprop.core.layers.SPEC_MAX_LAYERS)")
    input_size = None
    if isinstance(spec, dict) and ("layers" in spec or "block" in spec):
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
MODULE_NAMES.register(Residual, lambda layer: sequential_module_name(Sequential(layer)))
