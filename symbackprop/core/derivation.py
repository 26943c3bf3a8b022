"""The pipeline in one call: layer -> :class:`Derivation`.

``derive(layer, input_size, batch)`` checks the size of the request, expands the
forward pass (:mod:`~symbackprop.core.expand`) and differentiates it
(:mod:`~symbackprop.core.differentiate`).  The returned :class:`Derivation` holds every
intermediate so that each stage can be looked at and tested on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

from symbackprop.core import differentiate, expand
from symbackprop.core.layers import Sequential, input_shape_of, output_shape_of
from symbackprop.core.naming import Notation
from symbackprop.core.registry import Registry

__all__ = ["Derivation", "derive", "DEFAULT_MAX_TERMS", "DEFAULT_DIFF_MAX_TERMS", "SizeLimitError",
           "term_count", "diff_term_count", "DERIVE_WHOLE", "NOTEBOOK_LATEX"]

#: layer type -> ``function(layer, input_size, batch, *, method, max_terms)`` for a layer
#: :func:`derive` hands on whole instead of expanding it: a chain
#: (:mod:`symbackprop.core.chain` registers :class:`Sequential`, and ``import
#: symbackprop`` imports it).  A table, so that the chain may build on this module
#: without this module importing the chain back.
DERIVE_WHOLE = Registry("derive")

#: derivation type -> ``function(derivation) -> str``: how a notebook typesets it
#: (``_repr_latex_``).  The LaTeX renderer fills it when imported (``import symbackprop``
#: imports it): the core never imports a renderer.
NOTEBOOK_LATEX = Registry("typeset in a notebook")

#: Largest instance :func:`derive` expands unless told otherwise: products in the
#: forward expansion (padding products included).  It derives in well under a
#: minute on a laptop; the rules it shows do not depend on the size.
DEFAULT_MAX_TERMS = 100_000

#: Largest instance ``method="diff"`` differentiates unless told otherwise, counted
#: as :func:`diff_term_count` (products in the loss times symbols differentiated):
#: ``sympy.diff`` walks the whole loss once per symbol, so its time grows with that
#: product, about 30-70 microseconds per term on a 2-core machine (measured: a 3x3
#: kernel on 12x12, 0.2 million, 5.5 s; on 16x16, 0.6 million, 10-22 s; on 20x20,
#: 1.5 million, 44 s; a 1x1 kernel on 48x48, 5.3 million, 355 s).  Half a million
#: answers in well under a minute.
DEFAULT_DIFF_MAX_TERMS = 500_000


class SizeLimitError(ValueError):
    """The requested instance is too large to expand symbolically."""


def term_count(layer, input_shape) -> int:
    """Terms written out in the forward expansion of this instance.

    ``N * O * Ho * Wo * (C/groups) * KH * KW`` products for a convolution, window
    elements for pooling, elements for activations (each layer's ``term_count``);
    the gradients have about as many again each.
    """
    return layer.term_count(tuple(input_shape))


def diff_term_count(layer, input_shape) -> int:
    """Terms ``method="diff"`` walks: for each layer, the products of its loss times
    the symbols it differentiates (input and parameter elements)."""
    if isinstance(layer, Sequential):
        shapes = layer.shapes(input_shape)
        return sum(diff_term_count(inner, shape) for inner, shape in zip(layer.layers, shapes))
    symbols = math.prod(input_shape) + sum(math.prod(shape) for shape
                                           in layer.parameter_shapes.values())
    return term_count(layer, input_shape) * symbols


def _check_max_terms(max_terms) -> None:
    """A limit is a whole number >= 1, or ``math.inf`` (no limit: the code generator's
    own smallest instances)."""
    if max_terms == math.inf:
        return
    if isinstance(max_terms, bool) or not isinstance(max_terms, int) or max_terms < 1:
        raise ValueError(f"max_terms (--max-terms) must be a whole number >= 1, got "
                         f"{max_terms!r}")


def check_diff_size(layer, input_shape, max_terms: int) -> None:
    """Raise :class:`SizeLimitError` when ``method="diff"`` would walk more than
    ``max_terms`` terms (:func:`diff_term_count`)."""
    count = diff_term_count(layer, input_shape)
    if count > max_terms:
        products = term_count(layer, input_shape)
        raise SizeLimitError(
            f"input_size/batch: method diff (--method diff) differentiates the whole loss, "
            f"{products:,} products, once per symbol: {count:,} terms in all, over the "
            f"limit of {max_terms:,} for this method (it answers in well under a minute). "
            f"--method collect gives the same sums up "
            f"to {DEFAULT_MAX_TERMS:,} products; or derive a smaller instance, or raise "
            f"max_terms (--max-terms {count}; with --method diff it counts products times "
            f"symbols) if you really want it.")


def check_size(count: int, max_terms: int) -> None:
    """Raise :class:`SizeLimitError` when ``count`` terms exceed ``max_terms``."""
    _check_max_terms(max_terms)
    if count > max_terms:
        raise SizeLimitError(
            f"input_size/batch: this instance would expand to {count:,} products in z "
            f"(and about as many again in each gradient), over the limit of {max_terms:,}. "
            f"The element-wise rules do not depend on the size: derive a smaller input, batch "
            f"or channel count, or raise max_terms (--max-terms) if you really want it."
        )


@dataclass(frozen=True)
class Derivation:
    """Everything symbackprop derived for one layer instance.

    Attributes
    ----------
    layer : the layer spec.
    input_shape, output_shape : ``(N, C, H, W)`` and ``(N, O, Ho, Wo)``.
    forward : the :class:`~symbackprop.core.expand.Forward` stage result; ``x``, ``g``
        (the input and upstream-gradient symbols), ``params`` (parameter symbols in
        call order, ``w``, ``b``), ``z`` (each output as a sum of products) and
        ``z_written`` (padding products kept as ``0*w``) are read from it.
    grads : dict ``{"x": dL/dx, "w": dL/dw, "b": dL/db}`` of SymPy arrays.
    method : ``"collect"`` or ``"diff"``, how the gradients were obtained.
    """

    layer: object
    input_shape: tuple
    output_shape: tuple
    forward: expand.Forward
    grads: dict
    method: str

    @property
    def x(self) -> sympy.Array:
        return self.forward.x

    @property
    def params(self) -> dict:
        return self.forward.params

    @property
    def g(self) -> sympy.Array:
        return self.forward.g

    @property
    def constants(self) -> dict:
        """Inputs not differentiated by (a dropout mask, a loss's targets), by name."""
        return self.forward.constants

    @property
    def z(self) -> sympy.Array:
        return self.forward.z

    # Convenience names of the API -----------------------------------
    @property
    def w(self):
        return self.params.get("w")

    @property
    def b(self):
        return self.params.get("b")

    @property
    def grad_x(self):
        return self.grads["x"]

    @property
    def grad_w(self):
        return self.grads.get("w")

    @property
    def grad_b(self):
        return self.grads.get("b")

    @property
    def z_written(self):
        """``z`` as a textbook writes it, padding products kept as ``0*w``."""
        return self.forward.z_written

    @property
    def shapes(self) -> dict:
        """Shape of every named array, for :class:`~symbackprop.core.naming.Notation`."""
        shapes = {"x": self.input_shape, "z": self.output_shape, "g": self.output_shape}
        shapes.update({name: array.shape for name, array in self.params.items()})
        shapes.update({name: array.shape for name, array in self.constants.items()})
        return shapes

    def notation(self, index_base: int = 1, names: dict | None = None) -> Notation:
        return Notation(shapes=self.shapes, index_base=index_base, names=dict(names or {}))

    def _repr_latex_(self) -> str:
        """Notebook display: the layer and a few of its equations, typeset."""
        return NOTEBOOK_LATEX[self](self)


def derive(layer, input_size=None, batch: int = 1, *, method: str = "collect",
           max_terms: int | None = None):
    """Expand ``layer`` on a ``batch`` of inputs of ``input_size`` and differentiate.

    Parameters
    ----------
    layer : a layer spec such as :class:`~symbackprop.core.layers.Conv2d`; a
        :class:`~symbackprop.core.layers.Sequential` gives a
        :class:`~symbackprop.core.chain.ChainDerivation`.
    input_size : int or (H, W), (C, H, W) for layers without a channel count, or
        ``None``/``in_features`` for :class:`~symbackprop.core.layers.Linear`
    batch : int
    method : ``"collect"`` (fast, default) or ``"diff"`` (``sympy.diff`` of the loss).
    max_terms : refuse instances whose forward expansion has more products
        (default :data:`DEFAULT_MAX_TERMS`); with ``method="diff"``, more products
        times symbols (:func:`diff_term_count`, default :data:`DEFAULT_DIFF_MAX_TERMS`).

    Raises
    ------
    ValueError
        For parameters that break a rule; :class:`SizeLimitError` for an instance
        larger than ``max_terms``.
    """
    if max_terms is None:
        max_terms = DEFAULT_DIFF_MAX_TERMS if method == "diff" else DEFAULT_MAX_TERMS
    _check_max_terms(max_terms)
    derive_whole = DERIVE_WHOLE.get(layer)
    if derive_whole is not None:
        return derive_whole(layer, input_size, batch, method=method, max_terms=max_terms)
    input_shape = input_shape_of(layer, input_size, batch)
    output_shape = output_shape_of(layer, input_shape)
    check_size(term_count(layer, input_shape), max_terms)
    if method == "diff":
        check_diff_size(layer, input_shape, max_terms)
    return derive_instance(layer, input_shape, output_shape, method)


def derive_instance(layer, input_shape, output_shape, method: str = "collect") -> Derivation:
    """Expand and differentiate one layer on an input shape already checked and sized."""
    forward = expand.expand(layer, input_shape)
    return Derivation(layer=layer, input_shape=input_shape, output_shape=output_shape,
                      forward=forward, grads=differentiate.gradients(forward, method=method),
                      method=method)
