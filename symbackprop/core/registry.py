"""Where the stages find the layer kinds: the core never names one.

Every stage that does something per kind (expanding it, printing it, generating its
code, checking an implementation of it) owns one :class:`Registry`: a table from a
layer type to what that stage needs of the kind.  A kind's own package under
``symbackprop/kinds/`` fills the tables when it is imported, and
``symbackprop/kinds/__init__.py`` imports every kind, so adding a kind is one new
folder and one line there.  :data:`KINDS` maps each kind's name (``"conv2d"``, as the
command line and JSON specs spell it) to its layer type.
"""

from __future__ import annotations

__all__ = ["Registry", "KINDS", "register_kind", "kind_named"]

#: Every layer kind by its name on the command line and in JSON specs, in the order
#: the kinds were registered.
KINDS: dict = {}


def register_kind(layer_type):
    """Class decorator: make ``layer_type`` (which has a ``kind`` name) known by name."""
    name = layer_type.kind
    if KINDS.get(name, layer_type) is not layer_type:
        raise ValueError(f"two layer types call themselves {name!r}: "
                         f"{KINDS[name].__name__} and {layer_type.__name__}")
    KINDS[name] = layer_type
    return layer_type


def kind_named(name: str):
    """The layer type called ``name``; ``ValueError`` listing the kinds otherwise."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown layer {name!r}; the kinds are {', '.join(KINDS)}") from None


class Registry:
    """One stage's table: layer type -> what that stage needs of the kind.

    Parameters
    ----------
    stage : str
        What the stage does, for messages: ``"expand"``, ``"generate code for"``.
    """

    def __init__(self, stage: str):
        self.stage = stage
        #: layer type -> entry; tests may swap an entry with ``monkeypatch.setitem``.
        self.table: dict = {}

    def register(self, layer_type, entry=None):
        """Record ``entry`` for ``layer_type``; without ``entry``, a decorator."""
        if entry is None:
            def decorate(function):
                self.register(layer_type, function)
                return function
            return decorate
        if layer_type in self.table:
            raise ValueError(f"{layer_type.__name__} is registered twice to {self.stage}")
        self.table[layer_type] = entry
        return entry

    def __getitem__(self, layer):
        try:
            return self.table[type(layer)]
        except KeyError:
            known = ", ".join(t.__name__ for t in self.table) or "nothing yet"
            raise TypeError(f"symbackprop cannot {self.stage} a {type(layer).__name__}; "
                            f"it can for {known}") from None

    def get(self, layer, default=None):
        return self.table.get(type(layer), default)

    def __contains__(self, layer) -> bool:
        return type(layer) in self.table

    def types(self) -> tuple:
        """The registered layer types, in registration order."""
        return tuple(self.table)
