"""The pipeline for a chain of layers: :class:`~symbackprop.core.layers.Sequential` ->
:class:`ChainDerivation`.

Each layer is expanded and differentiated on its own (stages
:mod:`~symbackprop.core.expand` and :mod:`~symbackprop.core.differentiate`), then its arrays
are renamed into the chain's names, so that every layer boundary's error term is
written in terms of the next one:

- ``a0`` is the input ``x``, ``a_l`` the output of layer ``l`` (for a convolution
  or fully connected layer, the notes' ``net^l``; for an activation, ``a^l``);
- ``delta_l = dL/da_l``; ``delta_L`` (the last) is given;
- layer ``l``'s parameters are ``w_l`` and ``b_l``.

Layer ``l`` then reads ``a_l = f(a_{l-1}, w_l, b_l)`` forward and
``delta_{l-1} = (backward of layer l)(delta_l, a_{l-1}, w_l)`` backward: the
chain rule applied one boundary at a time, exactly as the course notes do it
(``delta^{l-1} = upsample(delta^l) * f'(net^{l-1})`` is two such steps, a pooling
layer's and an activation's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from symbackprop.core import differentiate, progress
from symbackprop.core.derivation import (
    DEFAULT_MAX_TERMS,
    DERIVE_WHOLE,
    NOTEBOOK_LATEX,
    Derivation,
    check_diff_size,
    check_size,
    derive_instance,
)
from symbackprop.core.layers import Sequential, input_shape_of
from symbackprop.core.naming import Notation, element_symbol, flat, symbol_array, to_array

__all__ = ["ChainStep", "ChainDerivation", "derive_chain", "chain_array_names"]


def chain_array_names(number: int, layer) -> dict:
    """How layer ``number``'s own arrays are called in the chain.

    ``{"x": "a2", "z": "a3", "g": "delta3", "grad_x": "delta2", "w": "w3", ...}``.
    """
    names = {"x": f"a{number - 1}", "z": f"a{number}", "g": f"delta{number}",
             "grad_x": f"delta{number - 1}"}
    names.update({name: f"{name}{number}" for name in layer.parameter_names})
    return names


@dataclass(frozen=True)
class ChainStep:
    """Layer ``number`` of a chain, in the chain's names.

    Attributes
    ----------
    number : 1-based position ``l`` of the layer.
    layer : its spec.
    derivation : the layer's own :class:`~symbackprop.core.derivation.Derivation`
        (arrays named ``x``, ``z``, ``g``, ``w``, ``b``).
    names : own array name -> chain array name (see :func:`chain_array_names`).
    input, output : symbols of ``a_{l-1}`` and ``a_l``.
    params : ``{"w3": ..., "b3": ...}`` symbol arrays.
    z : ``a_l`` element by element, in terms of ``a_{l-1}`` and the parameters.
    z_written : the same as written by hand (padding products kept as ``0 w``).
    delta_out : symbols of ``delta_l = dL/da_l``.
    delta_in : ``delta_{l-1}`` element by element, in terms of ``delta_l``,
        ``a_{l-1}`` and the parameters.
    param_grads : ``{"w3": dL/dw3, ...}`` in terms of ``delta_l`` and ``a_{l-1}``.
    """

    number: int
    layer: object
    derivation: Derivation
    names: dict
    input: sympy.Array
    output: sympy.Array
    params: dict
    z: sympy.Array
    z_written: sympy.Array
    delta_out: sympy.Array
    delta_in: sympy.Array
    param_grads: dict

    @property
    def input_shape(self) -> tuple:
        return self.derivation.input_shape

    @property
    def output_shape(self) -> tuple:
        return self.derivation.output_shape


@dataclass(frozen=True)
class ChainDerivation:
    """Everything symbackprop derived for a chain of layers.

    Attributes
    ----------
    layer : the :class:`~symbackprop.core.layers.Sequential`.
    input_shape, output_shape : shapes of ``a0`` (the input) and ``a_L``.
    activation_shapes : shapes of ``a0, a1, ..., a_L``.
    steps : one :class:`ChainStep` per layer, in forward order.
    method : ``"collect"`` or ``"diff"``.

    ``x``, ``g``, ``params``, ``grads`` mirror :class:`~symbackprop.core.derivation.Derivation`:
    ``x`` is ``a0``, ``g`` is ``delta_L``; ``grads["x"]`` is ``delta0`` in terms of
    ``delta1`` and ``grads["w3"]`` is ``dL/dw3`` in terms of ``delta3``: each
    gradient one chain-rule step from the error term of its own layer.
    """

    layer: object
    input_shape: tuple
    output_shape: tuple
    activation_shapes: tuple
    steps: tuple
    method: str

    @property
    def x(self):
        return self.steps[0].input

    @property
    def g(self):
        return self.steps[-1].delta_out

    @property
    def params(self) -> dict:
        """Every parameter array, in the order a generated module takes them."""
        return {name: array for step in self.steps for name, array in step.params.items()}

    @property
    def grads(self) -> dict:
        grads = {"x": self.steps[0].delta_in}
        for step in self.steps:
            grads.update(step.param_grads)
        return grads

    @property
    def grad_x(self):
        return self.steps[0].delta_in

    @property
    def deltas(self) -> dict:
        """``{"delta0": ..., "delta1": ..., ...}``: each error term in terms of the next."""
        return {step.names["grad_x"]: step.delta_in for step in self.steps}

    @property
    def shapes(self) -> dict:
        """Shape of every named array of the chain, for
        :class:`~symbackprop.core.naming.Notation`."""
        shapes = {}
        for number, shape in enumerate(self.activation_shapes):
            shapes[f"a{number}"] = shapes[f"delta{number}"] = shape
        for step in self.steps:
            shapes.update({name: array.shape for name, array in step.params.items()})
        return shapes

    def notation(self, index_base: int = 1, names: dict | None = None) -> Notation:
        return Notation(shapes=self.shapes, index_base=index_base, names=dict(names or {}))

    def _repr_latex_(self) -> str:
        """Jupyter shows a chain as its error terms, last to first."""
        return NOTEBOOK_LATEX[self](self)


def derive_chain(chain, input_size=None, batch: int = 1, *, method: str = "collect",
                 max_terms: int = DEFAULT_MAX_TERMS) -> ChainDerivation:
    """Derive every layer of ``chain`` and connect them by the error terms.

    Parameters are those of :func:`~symbackprop.core.derivation.derive`; ``input_size``
    is the first layer's.  ``max_terms`` bounds the sum over the layers.
    """
    if method not in differentiate.METHODS:
        raise ValueError(f"method must be one of {differentiate.METHODS}, got {method!r}")
    input_shape = input_shape_of(chain, input_size, batch)
    shapes = chain.shapes(input_shape)
    check_size(chain.term_count(input_shape), max_terms)
    steps = []
    # Each layer's own stages show their bars; this one says which layer they belong to.
    for number, (layer, shape, out_shape) in enumerate(progress.track(
            zip(chain.layers, shapes, shapes[1:]), "deriving the layers", len(chain.layers),
            unit="layers", delay=0), 1):
        steps.append(_renamed_step(number, derive_instance(layer, shape, out_shape, method)))
    return ChainDerivation(layer=chain, input_shape=shapes[0], output_shape=shapes[-1],
                           activation_shapes=shapes, steps=tuple(steps), method=method)


@DERIVE_WHOLE.register(Sequential)
def _derive_sequential(chain, input_size=None, batch: int = 1, *, method: str = "collect",
                       max_terms: int = DEFAULT_MAX_TERMS) -> ChainDerivation:
    """:func:`~symbackprop.core.derivation.derive` of a chain: with ``method="diff"``, the
    whole chain's size is checked first, then :func:`derive_chain`."""
    if method == "diff":
        check_diff_size(chain, chain.shapes(input_shape_of(chain, input_size, batch))[0],
                        max_terms)
    return derive_chain(chain, input_size, batch, method=method, max_terms=max_terms)


def _renamed_step(number: int, derivation: Derivation) -> ChainStep:
    names = chain_array_names(number, derivation.layer)
    mapping = {}
    for own, array in (("x", derivation.x), ("g", derivation.g), *derivation.params.items()):
        for index in np.ndindex(*array.shape):
            mapping[array[index]] = element_symbol(names[own], index)

    def rename(array):
        return array.applyfunc(lambda expression: expression.xreplace(mapping))

    written = np.empty(derivation.output_shape, dtype=object)
    flat_written = flat(derivation.z_written)
    for position, index in enumerate(np.ndindex(*derivation.output_shape)):
        written[index] = _rename_written(flat_written[position], mapping)
    params = {names[own]: rename(array) for own, array in derivation.params.items()}
    return ChainStep(
        number=number, layer=derivation.layer, derivation=derivation, names=names,
        input=rename(derivation.x), output=symbol_array(names["z"], derivation.output_shape),
        params=params, z=rename(derivation.z), z_written=to_array(written),
        delta_out=rename(derivation.g), delta_in=rename(derivation.grads["x"]),
        param_grads={names[own]: rename(derivation.grads[own]) for own in derivation.params})


def _rename_written(expression, mapping):
    """Rename symbols without evaluating, so that ``0 w11`` stays as written."""
    if expression in mapping:
        return mapping[expression]
    if not expression.args:
        return expression
    args = [_rename_written(argument, mapping) for argument in expression.args]
    if isinstance(expression, (sympy.Add, sympy.Mul)):
        return expression.func(*args, evaluate=False)
    return expression.func(*args)
