"""Stage: (layer, backward function) -> :class:`ImplCheck`, a hand-written backward pass judged.

Input: a layer and a function written by a person in its kind's module convention
(:data:`IMPLEMENTATIONS`, one :class:`Implementation` per kind, registered by the kind's
own ``kinds/<kind>/check.py``): ``backward(x, w, b, grad_z) -> (grad_x, grad_w,
grad_b)`` for a layer with a kernel and a bias, ``backward(x, grad_out) -> grad_x`` or
``(grad_x,)`` for one without parameters.  If the function also takes arguments named
like the layer's fields (``stride``, ``padding``, ``kernel_size``, ...), they are passed
too.  Output: a frozen :class:`ImplCheck`: on several input sizes (the kind's; for a
strided layer the stride dividing the padded input evenly and not, rectangular, batch
2, random numbers, or values the kind asks for, plus an input with ties where the kind
has a tie rule) which gradient is wrong, where, and, when the wrong values are exactly
those of a known mistake, which one.

The function runs in a child process (:mod:`~symbackprop.check.impl_process`, the child's
side :mod:`~symbackprop.check.impl_runner`): the inputs are made here, only the arrays it
returns come back, as data, and they are judged here, so that what the function
does to its own process (end it, loop forever, patch NumPy, print) cannot change
the verdict.  Only real floating-point arrays (float32, float64) are gradients.

The truth is the derivation evaluated at the same numbers (:class:`NumericGradients`
compiles its sums of products, a routing indicator ``[x_ab = argmax z_ij]``
evaluated on the input; generated code is never the oracle).  A known mistake (the
kind's :attr:`Implementation.mistakes`) is recognised by computing its wrong values
from the same truth: the kernel left unrotated is the true ``dL/dx`` of the flipped
kernel; the stride left in place is the true gradient of the same layer with stride 1
reading the same rows; a tie sent to the last maximum is the derivation with the
indicator evaluated for the last maximum; and so on.  Nothing here names a kind.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import sympy

from symbackprop.check import impl_runner
from symbackprop.check.impl_process import Failure, Other, run_isolated, validate_timeout
from symbackprop.core import progress
from symbackprop.core.derivation import derive
from symbackprop.core.naming import flat
from symbackprop.core.registry import Registry

__all__ = ["ChainNumericGradients", "ImplCheck", "ImplCase", "GradientResult", "Mistake",
           "Implementation", "IMPLEMENTATIONS", "ImplementationError", "NumericGradients",
           "TermValues",
           "check_impl", "load_function", "input_sizes", "first_maximum", "mistakes_for",
           "conventions", "fit_to", "bias_not_summed",
           "leaves_unread"]

#: Relative tolerance of the comparison (float32 implementations pass).
RELATIVE_TOLERANCE = 1e-4


class ImplementationError(ValueError):
    """The function cannot be loaded, raises, or returns something unusable."""


# -- the truth, numerically ----------------------------------------------------------------
def first_maximum(windows: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The max-pooling indicator ``[x_ab = argmax z_ij]`` evaluated, one row per term.

    ``windows`` holds each term's window values in row-major order (padding left
    out), ``candidates`` the position of ``x_ab`` in it.  1 where ``x_ab`` is the
    first maximum (``numpy.argmax`` returns the first), else 0: what
    a kind's routing indicator (:attr:`Implementation.indicator`) evaluates to.
    """
    return (np.argmax(windows, axis=1) == candidates).astype(float)


@dataclass(frozen=True)
class TermValues:
    """Every term of one gradient evaluated at numbers, before the terms are summed.

    ``values[t] = coefficients[t] * products[t] * weights[t]`` is term ``t``'s share
    of element ``outs[t]`` (flat index) of the gradient; ``weights`` is the value of
    its max-pooling indicator (1 for a term without one); ``upstream`` is the flat
    index of its upstream-gradient factor ``g`` (the window it comes from in a
    pooling layer; -1 if none).
    """

    shape: tuple
    outs: np.ndarray
    coefficients: np.ndarray
    products: np.ndarray
    weights: np.ndarray
    upstream: np.ndarray

    @property
    def values(self) -> np.ndarray:
        return self.coefficients * self.products * self.weights

    def total(self, values: np.ndarray | None = None) -> np.ndarray:
        """The gradient: each element the sum of its terms (``values`` by default)."""
        values = self.values if values is None else values
        size = int(np.prod(self.shape, dtype=int))
        return np.bincount(self.outs, weights=values, minlength=size).reshape(self.shape)


class NumericGradients:
    """A derivation's gradients evaluated at numbers.

    Each gradient element is a sum of products of element symbols, in max pooling
    times the indicator ``[x_ab = argmax z_ij]``; they are compiled once into index
    arrays (``coefficient * prod(values[positions])``, the indicator evaluated on the
    values of its window by :func:`first_maximum`) and summed with
    ``numpy.bincount``.  A term that is not such a product (a ``Max``, a
    ``Piecewise``) is evaluated with ``sympy.lambdify``.
    """

    def __init__(self, derivation):
        self.derivation = derivation
        # a symbolic constant (a loss's class weights) is read like a parameter; numbers
        # (a loss's one-hot targets) are already in the expressions
        constants = {name: array for name, array in getattr(derivation, "constants", {}).items()
                     if all(isinstance(element, sympy.Symbol) for element in flat(array))}
        self.arrays = {"x": derivation.x, "g": derivation.g, **derivation.params, **constants}
        #: symbols of the layer's own numbers in the formulas (a normalisation's eps) and
        #: their values: replaced before compiling
        self.symbol_values = dict(getattr(getattr(derivation, "layer", None), "symbol_values", {}))
        self.position = {}
        for array in self.arrays.values():
            for symbol in flat(array):
                self.position[symbol] = len(self.position)
        first_g = self.position[flat(derivation.g)[0]]
        self._upstream = range(first_g, first_g + int(np.prod(derivation.g.shape, dtype=int)))
        self.programs = {name: self._compile(grad) for name, grad in derivation.grads.items()}

    def _compile(self, array):
        groups, fallback = {}, []
        indicator_types = _indicator_types()
        for out, expr in enumerate(flat(array)):
            expr = sympy.sympify(expr)
            if self.symbol_values:
                expr = expr.xreplace(self.symbol_values)
            for term in sympy.Add.make_args(expr):
                if term == 0:
                    continue
                coefficient, factors = term.as_coeff_mul()
                indicators = [f for f in factors if isinstance(f, indicator_types)]
                indicator = self._indicator(indicators)
                positions = self._positions([f for f in factors if f not in indicators])
                if positions is None or not coefficient.is_Number or (
                        indicators and indicator is None):
                    fallback.append((out, term))
                    continue
                candidate, window = indicator or (0, ())
                group = groups.setdefault((len(positions), len(window)), ([], [], [], [], [], []))
                for column, value in zip(group, (out, float(coefficient), positions, candidate,
                                                 window, self._upstream_of(positions))):
                    column.append(value)
        compiled = {}
        for (count, length), (o, c, i, candidates, windows, upstream) in groups.items():
            compiled[count, length] = (
                np.array(o), np.array(c), np.array(i, dtype=int).reshape(len(o), count),
                np.array(candidates, dtype=int), np.array(windows, dtype=int).reshape(
                    len(o), length), np.array(upstream, dtype=int))
        if fallback:  # every other term in one function: one lambdify, not one per term
            symbols = sorted(set().union(*[term.free_symbols for _, term in fallback]), key=str)
            # plain names first, in one pass: lambdify would rename each symbol whose name
            # is not an identifier (x[0,1]) in a walk of every term of its own
            plain = {symbol: sympy.Symbol(f"v{number}") for number, symbol in enumerate(symbols)}
            terms = [term.xreplace(plain) for _, term in fallback]
            fallback = (np.array([out for out, _ in fallback], dtype=int),
                        sympy.lambdify([plain[s] for s in symbols], terms, "numpy",
                                       dummify=False),
                        [self.position[s] for s in symbols])
        return array.shape, compiled, fallback

    def _positions(self, factors):
        positions = []
        for factor in factors:
            base, exponent = factor.as_base_exp()
            if base not in self.position or not (exponent.is_Integer and exponent > 0):
                return None
            positions += [self.position[base]] * int(exponent)
        return positions

    def _indicator(self, indicators):
        """``(position of x_ab in the window, positions of the window)`` or None."""
        if len(indicators) != 1:
            return None
        position, window, _ = indicators[0].args
        if not all(element in self.position for element in window):
            return None
        return int(position), [self.position[element] for element in window]

    def _upstream_of(self, positions) -> int:
        return next((p - self._upstream.start for p in positions if p in self._upstream), -1)

    def terms(self, values: dict, name: str, indicator: Callable = first_maximum) -> TermValues:
        """Gradient ``name``'s terms evaluated at ``values`` (arrays named x, g, w, b).

        ``indicator(windows, candidates) -> weights`` evaluates the max-pooling
        indicator (the truth: :func:`first_maximum`); a known-wrong rule in its
        place gives the values of a known-wrong backward pass.
        """
        vector = np.concatenate([np.asarray(values[array], dtype=float).ravel()
                                 for array in self.arrays])
        shape, compiled, fallback = self.programs[name]
        columns = [[] for _ in range(5)]
        for (count, length), (outs, coefficients, indices, candidates, windows,
                              upstream) in compiled.items():
            products = vector[indices].prod(axis=1) if count else np.ones(len(outs))
            weights = indicator(vector[windows], candidates) if length \
                else np.ones(len(outs))
            for column, part in zip(columns, (outs, coefficients, products, weights, upstream)):
                column.append(part)
        if fallback:
            outs, function, positions = fallback
            values = np.array([np.broadcast_to(value, ()) for value in
                               function(*vector[positions])], dtype=float)
            for column, part in zip(columns, (outs, np.ones(len(outs)), values,
                                              np.ones(len(outs)), np.full(len(outs), -1))):
                column.append(part)
        outs, coefficients, products, weights, upstream = (
            np.concatenate(column) if column else np.zeros(0) for column in columns)
        return TermValues(shape=shape, outs=outs.astype(int), coefficients=coefficients,
                          products=products, weights=weights, upstream=upstream.astype(int))

    def __call__(self, values: dict, indicator: Callable = first_maximum) -> dict:
        """``{"x": dL/dx, ...}`` as arrays for ``values`` (arrays named x, g, w, b)."""
        return {name: self.terms(values, name, indicator).total() for name in self.programs}


class ChainNumericGradients:
    """A chain's derivation (:class:`~symbackprop.core.chain.ChainDerivation`) evaluated at
    numbers, as :class:`NumericGradients` does for one layer: the forward pass step by
    step (each ``a_l`` from its step's expansion), then the error terms back, each step's
    own backward compiled as one layer's, a residual sum's ``delta`` handed on unchanged
    and added, along the identity path, to its block's input.

    Called with ``{"x": ..., "w1": ..., "g": ...}`` (the chain's parameter names), it
    returns ``{"x": dL/dx, "w1": dL/dw1, ...}``.
    """

    def __init__(self, derivation):
        self.derivation = derivation
        self.steps = []
        for step in derivation.steps:
            if step.is_sum:
                self.steps.append((step, None))
                continue
            own = step.block_path if step.block_path is not None else step.delta_in
            view = _StepArrays(x=step.input, g=step.delta_out, params=step.params,
                               grads={"a": step.z, "x": own, **step.param_grads})
            self.steps.append((step, NumericGradients(view)))

    def __call__(self, values: dict, indicator: Callable = first_maximum) -> dict:
        params = {name: values[name] for name in self.derivation.params}
        activations = [np.asarray(values["x"], dtype=float)]
        for step, numeric in self.steps:
            if numeric is None:
                activations.append(activations[-1] + activations[step.fork])
                continue
            forward = numeric.terms({"x": activations[-1], "g": np.zeros(step.output_shape),
                                     **params}, "a", indicator).total()
            activations.append(forward)
        delta = np.asarray(values["g"], dtype=float)
        identity, grads = {}, {}
        for step, numeric in reversed(self.steps):
            number = step.number
            if numeric is None:
                identity[step.fork] = identity.get(step.fork, 0) + delta
                continue
            arrays = {"x": activations[number - 1], "g": delta, **params}
            for name in step.param_grads:
                grads[name] = numeric.terms(arrays, name, indicator).total()
            delta = numeric.terms(arrays, "x", indicator).total() + identity.pop(number - 1, 0)
        return {"x": delta, **{name: grads[name] for name in self.derivation.params}}


@dataclass(frozen=True)
class _StepArrays:
    """A chain step's arrays as :class:`NumericGradients` reads a derivation's."""

    x: sympy.Array
    g: sympy.Array
    params: dict
    grads: dict


# -- loading and calling the person's function ------------------------------------------------
def load_function(spec: str) -> Callable:
    """``"my_conv.py:backward"`` -> the function, imported into *this* process.

    :class:`ImplementationError` saying why not.  :func:`check_impl` never calls
    this: it imports the file in a child process (:mod:`~symbackprop.check.impl_process`).
    """
    path_text, name = _split_spec(spec)
    try:
        return impl_runner.load(path_text, name)
    except impl_runner.LoadError as error:
        raise ImplementationError(str(error)) from None


def _split_spec(spec: str) -> tuple[str, str]:
    """``"my_conv.py:backward"`` -> ``("my_conv.py", "backward")``, the file checked to exist."""
    path_text, colon, name = spec.rpartition(":")
    if not colon or not path_text or not name:
        raise ImplementationError(f"expected FILE.py:FUNCTION, such as my_conv.py:backward, "
                                  f"got {spec!r}")
    if not Path(path_text).is_file():
        raise ImplementationError(f"cannot load {path_text}: no such file")
    return path_text, name


def _simple(value):
    """A layer field as a person passes it: ``(2, 2)`` -> ``2``."""
    if isinstance(value, tuple) and value and all(v == value[0] for v in value):
        return value[0]
    if isinstance(value, tuple) and len(value) == 4 and value[0] == value[1] \
            and value[2] == value[3]:
        return (value[0], value[2])
    return value


def _label(function) -> str:
    name = getattr(function, "__qualname__", getattr(function, "__name__", repr(function)))
    try:
        source = Path(inspect.getsourcefile(function) or "").name
    except TypeError:
        source = ""
    return f"{source}:{name}" if source else name


# -- the cases -------------------------------------------------------------------------------
def input_sizes(layer) -> list[tuple[int, int]]:
    """Input sizes to run a backward function on.

    Rectangular sizes where the stride divides the padded input evenly (output at
    least 2 along each axis) and, when a stride is larger than 1, sizes where it
    does not, so that some rows/columns are never read by the forward pass.
    """
    height, width = (_axis_sizes(layer, axis) for axis in (0, 1))
    (h1, h2, h_uneven), (w1, w2, w_uneven) = height, width
    sizes = [(h1, w2), (h2, w1)]
    if h_uneven or w_uneven:
        sizes.append((h_uneven or h2, w_uneven or w2))
    if h_uneven and w_uneven:
        sizes.append((h_uneven, w1))
    if len(sizes) < 3:
        sizes.append((h2, w2))
    return list(dict.fromkeys(sizes))


def _output_lengths(layer, axis: int, largest: int = 64) -> dict:
    """Input length -> output length along ``axis`` for every input length that fits."""
    outputs = {}
    for size in range(1, largest + 1):
        try:
            input_size = (size, largest) if axis == 0 else (largest, size)
            outputs[size] = layer.output_size(input_size)[axis]
        except ValueError:
            continue
    return outputs


def _axis_sizes(layer, axis: int, largest: int = 64):
    """(smallest even size, next even size, an uneven size or None) along one axis."""
    outputs = _output_lengths(layer, axis, largest)
    if not outputs:
        raise ValueError(f"no input of up to {largest} fits this layer: {layer.describe()}")
    even = [n for n, out in outputs.items() if out >= 2 and outputs.get(n - 1) != out]
    if len(even) < 2:
        raise ValueError(f"no input of up to {largest} gives this layer an output of 2 or more")
    # the most rows left unread (stride - 1): past the padding into x when the stride allows
    uneven = [n for n in range(even[0] + 1, even[1]) if outputs.get(n) == outputs[even[0]]]
    return even[0], even[1], (uneven[-1] if uneven else None)


@dataclass(frozen=True)
class GradientResult:
    """One gradient in one case: what came back and how it compares with the truth."""

    name: str                  # "x", "w", "b"
    expected: np.ndarray
    given: np.ndarray | None   # None when the function returned None
    wrong: np.ndarray | None   # boolean map of wrong elements when the shapes agree

    @property
    def ok(self) -> bool:
        return self.wrong is not None and not self.wrong.any()

    @property
    def shape_ok(self) -> bool:
        return self.given is not None and self.given.shape == self.expected.shape


@dataclass(frozen=True)
class ImplCase:
    """The function run once: input size, the inputs, and each gradient's result."""

    input_size: tuple
    batch: int
    inputs: dict       # x, w, b, g as passed
    results: dict      # name -> GradientResult
    derivation: object
    truth: "NumericGradients"
    #: max pooling: the input has deliberate ties (equal maxima in a window)
    ties: bool = False
    #: what the function raised on this case (``results`` is then empty); None if it returned
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(result.ok for result in self.results.values())

    def truth_with(self, **changes) -> dict:
        """The true gradients with some inputs replaced (``w=np.flip(w)``)."""
        return self.truth({**self.inputs, **changes})

    def variant(self, x: np.ndarray | None = None, **layer_changes) -> dict | None:
        """True gradients of a changed layer reading the same rows of ``x`` with the same ``g``.

        The changed layer gets the smallest input size that gives the same output
        size (the rows a wrong backward pass reads); ``x`` (default: this case's
        input) is cropped or zero-extended to it.  ``None`` if no such layer or size
        exists.
        """
        layer = self.derivation.layer
        try:
            changed = dataclasses.replace(layer, **layer_changes)
        except (TypeError, ValueError):
            return None
        output = self.derivation.output_shape[2:]
        size = []
        for axis in (0, 1):
            outputs = _output_lengths(changed, axis, largest=4 * (max(self.input_size) + 8))
            matching = [n for n, out in outputs.items() if out == output[axis]]
            if not matching:
                return None
            size.append(matching[0])
        truth = numeric_truth(changed, tuple(size), self.batch)
        x = fit_to(self.inputs["x"] if x is None else x, truth.derivation.input_shape)
        return truth({**self.inputs, "x": x})


def leaves_unread(layer, input_size) -> bool:
    """Whether the forward pass never reads the last rows or columns of this input (a
    strided layer's :attr:`Implementation.unread`).

    True when one row or column less gives the same output size (the stride does
    not divide the padded input evenly).
    """
    height, width = input_size
    own = tuple(layer.output_size((height, width)))
    for smaller in ((height - 1, width), (height, width - 1)):
        try:
            if tuple(layer.output_size(smaller)) == own:
                return True
        except ValueError:
            continue
    return False


def fit_to(array: np.ndarray, shape) -> np.ndarray:
    """``array`` cropped or zero-extended (at the end of each axis) to ``shape``."""
    fitted = np.zeros(shape)
    overlap = tuple(slice(0, min(a, b)) for a, b in zip(array.shape, shape, strict=True))
    fitted[overlap] = array[overlap]
    return fitted


# -- known mistakes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Mistake:
    """A classic wrong backward pass and how to compute its values from the truth.

    ``candidates(case)`` yields the arrays the mistaken gradient could hold on that
    case (any shape); the person's output matching one of them, on every case where
    it is wrong, names the mistake.
    """

    name: str
    gradient: str          # "x", "w" or "b"
    explanation: str
    candidates: Callable
    #: compare a candidate of another height/width with the output cropped or
    #: zero-extended to its size (a pass that computed the right rows, shifted or cut)
    fit: bool = True


def bias_not_summed(case):
    """What a bias gradient not summed over the batch holds: sample 0's share, the last
    sample's, the batch mean, or one row per sample (any layer with a bias ``b``)."""
    g = case.inputs["g"]
    if "b" not in case.results or g.shape[0] < 2:
        return
    per_sample = []
    for n in range(g.shape[0]):
        only = np.zeros_like(g)
        only[n] = g[n]
        per_sample.append(case.truth_with(g=only)["b"])
    yield per_sample[0]                                   # sample 0 only
    yield per_sample[-1]                                  # last sample only (a loop's leftover)
    yield case.truth_with()["b"] / g.shape[0]             # mean over the batch
    yield np.stack(per_sample)                            # one row per sample



# -- what check-impl needs of a kind -----------------------------------------------------------
def _same_size(layer, size) -> tuple:
    return tuple(size)


def _normal_input(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.standard_normal(shape)


def _never(layer) -> bool:
    return False


def _reads_all(layer, size) -> bool:
    return False


def _no_notes(layer) -> tuple:
    return ()


def _itself(layer, size, batch):
    return layer


def _no_constants(derivation, rng) -> dict:
    return {}


def layer_keywords(layer) -> dict:
    """Every field of the layer as a person passes it (``stride=2``, ``padding=1``): the
    keywords a function taking arguments of those names receives."""
    if not dataclasses.is_dataclass(layer):
        return {}
    return {field.name: _simple(getattr(layer, field.name)) for field in dataclasses.fields(layer)}


@dataclass(frozen=True)
class Implementation:
    """What check-impl needs of a layer kind: how a backward function of it is called,
    what it returns, what to run it on, and the mistakes it knows.

    A kind registers one in :data:`IMPLEMENTATIONS` from its ``kinds/<kind>/check.py``.
    """

    #: the call convention as a person reads it, for messages and help
    convention: str
    #: positional arguments in order: ``"x"``, the parameters by name, ``"g"`` (the
    #: upstream gradient); a parameter the instance lacks (``b`` without bias) is None
    arguments: tuple = ("x", "g")
    #: the gradients returned, in order; one the instance lacks may be left out at the end
    gradients: tuple = ("x",)
    #: the known mistakes (:class:`Mistake`), the first that matches is named
    mistakes: tuple = ()
    #: layer -> the sizes to try, as the report shows them (``(H, W)``)
    sizes: Callable = input_sizes
    #: (layer, size) -> the input size the derivation takes (channels added, ...)
    input_size: Callable = _same_size
    #: (rng, shape) -> the input ``x`` of a regular case
    make_input: Callable = _normal_input
    #: how the report describes the values of the regular inputs (" (distinct values)")
    input_words: str = ""
    #: layer -> whether an input with ties is tried too
    ties: Callable = _never
    #: (rng, shape, truth, g) -> an input with ties, or None if none tells the rules apart
    tied_input: Callable | None = None
    #: the SymPy function of the kind's routing indicator, ``F(position, window, ...)``,
    #: evaluated numerically by :func:`first_maximum` (or a known-wrong rule)
    indicator: type | None = None
    #: the report says how many channels the inputs have (the kind chooses them)
    show_channels: bool = False
    #: layer -> notes the report adds (what the inputs cannot test)
    notes: Callable = _no_notes
    #: layer -> {name: value} passed by name to a function that takes such an argument
    keywords: Callable = layer_keywords
    #: (layer, size) -> whether the forward pass leaves rows/columns of this input unread
    #: (their gradient is 0; the report says so)
    unread: Callable = _reads_all
    #: a course's convention (a key of :data:`CONVENTIONS`) -> ``(layer) ->`` its
    #: description (:func:`course_convention`), ``ValueError`` for a layer that
    #: convention cannot express; the class convention needs no entry
    conventions: dict = dataclasses.field(default_factory=dict)
    #: layer -> ``(arguments, gradients)`` when they depend on the layer (a residual
    #: block's parameters, numbered by their layer); None: :attr:`arguments` and
    #: :attr:`gradients`
    signature: Callable | None = None
    #: array -> the names of its leading axes in the report's maps, where they differ from
    #: the convolution's (``{"w": ("input channel", "output channel")}``)
    leading_axes: dict = dataclasses.field(default_factory=dict)
    #: (layer, size, batch) -> the layer whose derivation is the truth: by default the
    #: layer itself; a loss chooses its concrete targets (an ignored one among them)
    truth_layer: Callable = _itself
    #: (derivation, rng) -> {name: array}: inputs the layer reads but nobody
    #: differentiates by (a loss's targets and class weights), passed by the names in
    #: ``arguments``; a symbolic constant of the derivation takes its value from here
    constants: Callable = _no_constants
    #: (rng, layer, shapes) -> the inputs the layer reads but nobody differentiates by
    #: (the derivation's ``constants``, a dropout mask), by name; ``shapes`` their shapes.
    #: By default normal random numbers.
    make_constants: Callable | None = None


#: The calling conventions check-impl takes (``--convention``), in words.
CONVENTIONS = {
    "plain": "backward(x, <parameters>, grad_out) -> the gradients, NCHW (this project's)",
    "cs231n": "Stanford CS231n: LAYER_forward(x, ..., param) -> (out, cache) and "
              "LAYER_backward(dout, cache) -> dx or (dx, dw, db), NCHW",
    "dlai": "deeplearning.ai: LAYER_forward(A_prev, ..., hparameters) -> (Z, cache) and "
            "LAYER_backward(dZ, cache) -> dA_prev or (dA_prev, dW, db), NHWC, samples in "
            "columns for dense layers",
    "class": "a class built from the layer's fields by name, with forward(x) and "
             "backward(dout) -> dx; weights in W/weight/params['W'], gradients in "
             "dW/grad_W/grads['W'] (the usual names)",
}

#: The names a class keeps its weights, bias and their gradients under, most usual first.
CLASS_ATTRIBUTES = {"w": ("W", "w", "weight", "weights", "kernel", "K", "filters"),
                    "b": ("b", "bias", "biases")}
CLASS_GRADIENTS = {"w": ("dW", "dw", "grad_W", "grad_w", "dweight", "dweights", "weight_grad",
                         "grad_weight", "W_grad", "dK"),
                   "b": ("db", "grad_b", "dbias", "dbiases", "bias_grad", "grad_bias", "b_grad")}
#: Other names classes give a layer's fields (``pad`` for ``padding``).
CLASS_ALIASES = {"kernel_size": ("kernel", "filter_size", "pool_size", "size", "k", "f"),
                 "padding": ("pad", "p"), "stride": ("s",),
                 "in_channels": ("in_ch", "n_channels"), "out_channels": ("out_ch", "n_filters",
                                                                          "num_filters")}


def course_convention(name: str, *, signature: str, forward_call, returns, names: dict,
                      layouts: dict | None = None, keywords: dict | None = None,
                      input_rank: int | None = None) -> dict:
    """A course's functions for one layer, described for :func:`impl_runner.adapt`.

    ``forward_call``: what the forward is given, in order: an array's name (``"x"``,
    ``"w"``) or a value (the course's ``conv_param`` dictionary); ``returns``: the
    gradients its backward returns, in order; ``names``: what the course calls them
    (``{"x": "dA_prev"}``), for the report; ``layouts``: per array (``x w b g``) the
    axes transposed and the shape (``{"axes": [0, 2, 3, 1]}`` for NHWC); ``keywords``:
    passed to the forward and the backward when they take them (``mode="max"``);
    ``input_rank``: the number of axes of the inputs the course's layer takes, when the
    kind takes several (CS231n's batch norm takes ``(N, D)`` only).
    """
    return {"name": name, "style": "functions", "signature": signature, "input_rank": input_rank,
            "forward_call": [["array", item] if isinstance(item, str) else ["value", item]
                             for item in forward_call],
            "backward_call": ["g", "cache"], "returns": list(returns), "names": dict(names),
            "layouts": dict(layouts or {}), "keywords": dict(keywords or {})}


def class_convention(layer, entry) -> dict:
    """The class convention: any kind, its fields by name (and their usual aliases)."""
    fields = layer_keywords(layer)
    offered = dict(fields)
    for field, aliases in CLASS_ALIASES.items():
        for alias in aliases:
            if field in fields and alias not in offered:
                offered[alias] = fields[field]
    return {"name": "class", "style": "class", "signature": CONVENTIONS["class"],
            "constructor": offered, "layouts": {}, "returns": list(entry.gradients),
            "names": {}, "keywords": {},
            "attributes": {role: list(names) for role, names in CLASS_ATTRIBUTES.items()
                           if role in entry.arguments},
            "gradient_attributes": {role: list(names) for role, names in CLASS_GRADIENTS.items()
                                    if role in entry.gradients}}


def convention_for(layer, convention: str) -> dict | None:
    """The description of ``convention`` for ``layer`` (``None``: the plain one), or a
    ``ValueError`` naming the conventions its kind has."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention (--convention) must be one of {', '.join(CONVENTIONS)}, "
                         f"got {convention!r}")
    if convention == "plain":
        return None
    entry = IMPLEMENTATIONS[layer]
    if entry.signature is not None:  # its arguments depend on the layer (a residual block)
        raise ValueError(f"convention (--convention): a {layer.kind} layer is checked in the "
                         f"plain convention only, {entry.convention}")
    if convention == "class":
        description = class_convention(layer, entry)
    elif convention in entry.conventions:
        description = entry.conventions[convention](layer)
    else:
        known = ["plain", *entry.conventions, "class"]
        raise ValueError(f"convention (--convention): {convention} has no {layer.kind} layer "
                         f"check-impl knows; for {layer.kind} it takes {', '.join(known)}")
    return {**description, "arguments": list(entry.arguments)}


#: layer type -> :class:`Implementation`: the kinds check-impl takes, in registration order.
IMPLEMENTATIONS = Registry("check a backward implementation of")


def conventions() -> dict:
    """Kind name -> its call convention, for every kind check-impl takes."""
    return {layer_type.kind: entry.convention
            for layer_type, entry in IMPLEMENTATIONS.table.items()}


def _indicator_types() -> tuple:
    return tuple(entry.indicator for entry in IMPLEMENTATIONS.table.values()
                 if entry.indicator is not None)


# -- the verdict ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImplCheck:
    """The verdict on a backward function.

    Attributes
    ----------
    label : the function, e.g. ``my_conv.py:backward``.
    layer : the layer spec.
    cases : :class:`ImplCase` per input size.
    mistakes : gradient name -> the :class:`Mistake` its wrong values match (if any).
    output : what the function printed while it ran (its first 10,000 characters;
        it ran in a child process, whose printed text never reaches this one's).
    printed_lines : how many lines it printed.
    """

    label: str
    layer: object
    cases: tuple
    mistakes: dict
    output: str = ""
    printed_lines: int = 0
    #: the convention it was called in (:data:`CONVENTIONS`)
    convention: str = "plain"
    #: gradient -> what the person's convention calls it (``{"x": "dA_prev"}``)
    names: dict = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(case.ok for case in self.cases)

    def shown(self, name: str) -> str:
        """A gradient as the report names it: the convention's name (``dA_prev``) or
        ``grad_x``."""
        return self.names.get(name, f"grad_{name}")

    @property
    def gradients(self) -> tuple:
        returned = self.returned_cases
        return tuple(returned[0].results) if returned else ()

    @property
    def returned_cases(self) -> tuple:
        """The cases the function returned from (not those it raised on)."""
        return tuple(case for case in self.cases if case.error is None)

    @property
    def raised_cases(self) -> tuple:
        """The cases the function raised on (:attr:`ImplCase.error` says what)."""
        return tuple(case for case in self.cases if case.error is not None)

    @property
    def wrong_gradients(self) -> tuple:
        """Names (``"x"``, ``"w"``, ``"b"``) of the gradients wrong in some case."""
        return tuple(name for name in self.gradients
                     if any(not case.results[name].ok for case in self.returned_cases))

    @property
    def ties_ok(self) -> bool | None:
        """Max pooling: whether the input with ties came out right (``None``: no such input)."""
        tied = [case for case in self.cases if case.ties]
        return all(case.ok for case in tied) if tied else None

    def report(self) -> str:
        """Plain text: which gradient is wrong, where, and the likely mistake."""
        regular = [case for case in self.cases if not case.ties]
        tied = [case for case in self.cases if case.ties]
        entry = IMPLEMENTATIONS[self.layer]
        sizes = ", ".join(_size_text(case.input_size) for case in regular) + entry.input_words
        if tied:
            sizes += f" and {_size_text(tied[0].input_size)} with ties"
        batch = self.cases[0].batch if self.cases else 1
        channels = f", {self.cases[0].derivation.input_shape[1]} channels" \
            if self.cases and entry.show_channels else ""
        context = _wrap(f"{self.layer.describe()}; random inputs of size {sizes}, batch "
                        f"{batch}{channels}, compared with SymPy's derivation", "  ")
        if self.convention != "plain" and not self.ok:
            context += _wrap(f"called in the {self.convention} convention; wrong elements are "
                             f"shown as grad_x, grad_w, ... in this project's layout (N, C, H, "
                             f"W for feature maps)", "  ")
        notes = []
        if self.printed_lines:
            count = f"{self.printed_lines} line{'s' if self.printed_lines > 1 else ''}"
            notes += _wrap(f"note: it printed {count} while it ran (not shown; the verdict is "
                           f"on the arrays it returned only)", "")
        for note in entry.notes(self.layer):
            notes += _wrap(f"note: {note}", "")
        if self.ok:
            names = ", ".join(self.shown(name) for name in self.gradients)
            lines = [f"correct: {self.label} ({names}) agrees with SymPy's derivation on "
                     f"{len(regular)} input size{'s' if len(regular) != 1 else ''}", *context]
            if tied:
                lines += _wrap("ties: where a window holds equal maxima, it sends the window's "
                               "gradient to the first of them in row-major order, as it "
                               "should", "  ")
            return "\n".join(lines + notes)
        wrong = " and ".join(self.shown(n) for n in self.wrong_gradients)
        when = " when windows hold equal maxima (ties)" if all(
            case.ok for case in regular) else ""
        raised = self.raised_cases
        verdicts = []
        if wrong:
            verdicts.append(f"returns a wrong {wrong}{when}")
        if raised:
            count = len(self.cases)
            verdicts.append(f"raises an exception on {len(raised)} of {count} input "
                            f"size{'s' if count != 1 else ''}")
        lines = [f"wrong: {self.label} {' and '.join(verdicts)}", *context, ""]
        width = max(len(_size_text(case.input_size)) for case in self.cases)
        for case in self.cases:
            size = _size_text(case.input_size)
            cells = [f"{self.shown(name)} {'ok' if result.ok else 'WRONG':5}"
                     for name, result in case.results.items()]
            unread = entry.unread(case.derivation.layer, case.input_size)
            note = "  (the stride leaves rows/columns unread)" if unread else ""
            if case.ties:
                note = "  (ties: equal maxima in windows)"
            if case.error is not None:
                cells = [f"raised {case.error.split(':')[0].split(' (')[0]} (below)"]
            lines.append(f"  input {size:{width}}  " + "   ".join(cells).rstrip() + note)
        errors = {}  # each exception once, with the sizes it was raised on
        for case in raised:
            errors.setdefault(case.error, []).append(
                _size_text(case.input_size) + (" with ties" if case.ties else ""))
        for error, sizes in errors.items():
            # the line of code it raised on stays whole, on its own line
            message, cut, where = error.partition("  (line ")
            if not cut:
                message, cut, where = error.partition(" (line ")
            lines += [""] + _wrap(f"on input {', '.join(sizes)} it raised {message}", "")
            if cut and where.endswith(")"):
                lines.append(f"  at line {where[:-1]}")
        for name in self.wrong_gradients:
            lines += [""] + self._explain(name)
        return "\n".join(lines + ([""] + notes if notes else []))

    def _explain(self, name: str) -> list[str]:
        cases = self.returned_cases
        failing = [case for case in cases if not case.results[name].ok]
        regular = [case for case in cases if not case.ties]
        wrong_regular = [case for case in failing if not case.ties]
        shown = self.shown(name)
        heading = f"{shown}: wrong for {len(wrong_regular)} of {len(regular)} input sizes"
        if len(regular) < len(cases):
            if not wrong_regular:
                heading = (f"{shown}: right on every input with distinct values, wrong on "
                           f"the input with ties")
            else:
                heading += " and with ties" if len(wrong_regular) < len(failing) \
                    else "; right with ties"
        lines = [heading]
        mistake = self.mistakes.get(name)
        if mistake is not None:
            lines += [f"  likely mistake: {mistake.name}", *_wrap(mistake.explanation, "    ")]
        case = failing[0]
        result = case.results[name]
        size = _size_text(case.input_size) + (" with ties" if case.ties else "")
        if result.given is None:
            lines.append(f"  on input {size} it returned None instead of an array of shape "
                         f"{result.expected.shape}")
            return lines
        if not result.shape_ok:
            lines.append(f"  on input {size} it has shape {result.given.shape}, expected "
                         f"{result.expected.shape}")
            return lines
        axes = IMPLEMENTATIONS[self.layer].leading_axes
        lines += ["  " + line for line in _element_map(name, result, size, axes)]
        return lines


def _element_map(name: str, result: GradientResult, size: str,
                 axes: dict | None = None) -> list[str]:
    """Where the wrong elements are: a map of each wrong 2-D slice (small cases), the worst one."""
    wrong, given, expected = result.wrong, result.given, result.expected
    lines = [f"on input {size}: {int(wrong.sum())} of {wrong.size} "
             f"element{'s' if wrong.size > 1 else ''} wrong (indices 0-based)"]
    if wrong.ndim >= 2 and wrong.shape[-1] <= 16 and wrong.shape[-2] <= 16:
        shown = 0
        for lead in np.ndindex(*wrong.shape[:-2]):
            if not wrong[lead].any():
                continue
            if shown == 2:
                lines.append("(more slices are wrong)")
                break
            shown += 1
            where = ", ".join(f"{axis} {i}" for axis, i in zip(
                {**_LEADING_AXES, **(axes or {})}.get(name, ()), lead, strict=False))
            lines.append(f"grad_{name}[{', '.join(map(str, lead))}{', ' if lead else ''}:, :]"
                         f"{' (' + where + ')' if where else ''}: X wrong, . right")
            header = "".join(f"{j:>2}" for j in range(wrong.shape[-1]))
            lines.append(f"    {header}")
            for i, row in enumerate(wrong[lead]):
                lines.append(f"  {i:>2}" + "".join(f" {'X' if bad else '.'}" for bad in row))
    elif wrong.ndim == 1 or wrong.size <= 16:
        positions = [tuple(int(v) for v in index) for index in np.argwhere(wrong)]
        lines.append("wrong at " + ", ".join(f"grad_{name}[{', '.join(map(str, p))}]"
                                             for p in positions[:12]))
    error = np.where(wrong, np.abs(np.nan_to_num(given - expected, nan=np.inf)), -1)
    worst = np.unravel_index(int(np.argmax(error)), error.shape)
    lines.append(f"largest difference at grad_{name}[{', '.join(map(str, worst))}]: "
                 f"{given[worst]:.6g} given, {expected[worst]:.6g} expected")
    return lines


def _size_text(size) -> str:
    """``"5x6"``: an input size as the report writes it."""
    return "x".join(str(n) for n in size)


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=92, initial_indent=indent, subsequent_indent=indent)


_LEADING_AXES = {"x": ("sample", "channel"), "w": ("output channel", "input channel")}


def check_impl(layer, function, *, seed: int = 0, batch: int = 2,
               sizes=None, timeout: float = 60, convention: str = "plain") -> ImplCheck:
    """Run a hand-written backward function on random inputs and compare with the derivation.

    The function runs in a child process (:mod:`~symbackprop.check.impl_process`), on
    inputs made here, and only the arrays it returns come back, as data; they are
    judged here.  Whatever it does (end its process, loop forever, patch NumPy,
    print) cannot change the verdict.

    Parameters
    ----------
    layer : a layer of a kind in :data:`IMPLEMENTATIONS` (``symbackprop check-impl --help``
        lists them).
    function : ``"FILE.py:FUNCTION"``, or a callable in the kind's convention
        (:attr:`Implementation.convention`): ``backward(x, w, b, grad_z) -> (grad_x,
        grad_w, grad_b)`` (``b`` is ``None`` for a layer without bias),
        ``backward(x, grad_out) -> grad_x`` or ``(grad_x,)`` for a layer without
        parameters.  Keyword arguments named like the layer's fields (``stride``,
        ``padding``, ``kernel_size``, ``count_include_pad``, ...) are passed when the
        function takes them.  A kind with a tie rule (max pooling) also runs on an
        input with ties (:attr:`ImplCheck.ties_ok`).  ``FILE.py`` is imported in a new
        Python interpreter, never in this one; a callable runs in a forked child
        on Linux (so its side effects, on NumPy or on variables of the caller,
        stay there) and in this process elsewhere (without the time limit).
    seed : random seed of the inputs (the check is deterministic).
    batch : samples per case (2, so that a bias gradient must sum over the batch).
    sizes : input sizes ``[(H, W), ...]``; default :func:`input_sizes`.
    timeout : seconds the child may take in all (starting, importing the file,
        every call); then it is killed and the check fails.
    convention : how the function is written (:data:`CONVENTIONS`): ``"plain"`` as
        above; ``"cs231n"`` and ``"dlai"``: the course's backward function, whose
        forward (the same name with ``forward``, or without ``_backward``) runs first
        to make the cache, in the course's layout; ``"class"``: a class with
        ``forward`` and ``backward`` methods.  The report uses the course's names.

    Raises
    ------
    ImplementationError
        The function cannot be loaded, raises, ends its process, does not finish in
        time, or does not return real floating-point gradients.
    """
    entry = IMPLEMENTATIONS.get(layer)
    if entry is None:
        takes = ", ".join(layer_type.kind for layer_type in IMPLEMENTATIONS.types())
        raise TypeError(f"check-impl checks backward functions of {takes}; for a "
                        f"{type(layer).__name__} compare with `symbackprop generate` or check "
                        f"a formula with `symbackprop check`")
    timeout = validate_timeout(timeout)
    description = convention_for(layer, convention)
    if isinstance(function, str):
        label, target = function, _split_spec(function)
    elif callable(function):
        label, target = _label(function), function
        try:  # only looks the forward up next to it: nothing of the person's runs here
            impl_runner.adapt(function, description)
        except impl_runner.LoadError as error:
            raise ImplementationError(str(error)) from None
    else:
        raise ImplementationError(f"{function!r} is not a function")
    sizes = [tuple(size) for size in (sizes or entry.sizes(layer))]
    prepared = [_prepare_case(layer, size, batch, np.random.default_rng(seed + number))
                for number, size in enumerate(progress.track(
                    sizes, "preparing the inputs and the truth", unit="input sizes"))]
    rank = (description or {}).get("input_rank")
    if rank is not None:  # a course's layer takes inputs of one rank only ((N, D) batch norm)
        prepared = [case for case in prepared if case is None or
                    len(case.inputs["x"].shape) == rank]
        if not prepared:
            raise ValueError(f"input_size: the {convention} convention's layer takes inputs "
                             f"of {rank} axes; none of the sizes asked for has them")
    if sizes and entry.tied_input is not None and entry.ties(layer):
        largest = max(sizes, key=lambda size: int(np.prod(size)))
        tied = _prepare_case(layer, largest, batch, np.random.default_rng(seed + len(sizes)),
                             ties=True)
        if tied is not None:
            prepared.append(tied)
    fields = entry.keywords(layer) if description is None else {}
    limits = [16 * max(array.size for array in case.expected.values()) + 1024
              for case in prepared]
    outcome = run_isolated(target, [case.arguments for case in prepared], fields, timeout,
                           limits, description)
    if outcome.failure is not None:
        raise ImplementationError(_failure_message(outcome.failure, label, target, prepared,
                                                   timeout))
    raised = [failure for failure in outcome.returned if isinstance(failure, Failure)]
    if raised and len(raised) == len(outcome.returned):  # nothing to judge: say why
        message = _failure_message(raised[0], label, target, prepared, timeout)
        if description is not None:
            message += (f"; in the {convention} convention it is called as "
                        f"{description['signature']}")
        raise ImplementationError(message)
    cases = [_raised_case(case, returned) if isinstance(returned, Failure) else
             _judge_case(case, returned.value, label, returned.length)
             for case, returned in zip(prepared, outcome.returned)]
    mistakes = {}
    judged = [case for case in cases if case.error is None]
    for name in judged[0].results if judged else ():
        failing = [case for case in judged if not case.results[name].ok]
        if failing:
            mistake = _diagnose(name, failing, entry.mistakes)
            if mistake is not None:
                mistakes[name] = mistake
    return ImplCheck(label=label, layer=layer, cases=tuple(cases), mistakes=mistakes,
                     output=outcome.output, printed_lines=outcome.printed_lines,
                     convention=convention,
                     names=description["names"] if description is not None else {})


def _failure_message(failure, label, target, prepared, timeout) -> str:
    """One sentence: what went wrong in the child, and on which case."""
    where = prepared[failure.case].where if failure.case is not None else ""
    covers = "starting Python, importing the file and every call" if isinstance(target, tuple) \
        else "every call"
    limit = f"the limit covers {covers}; raise it with --timeout SECONDS (timeout= in Python)"
    if failure.reason == "load":
        return failure.detail
    if failure.reason == "raised":
        memory = (f" (its process may take at most {impl_runner.MEMORY_LIMIT // 2 ** 30} GiB "
                  f"of memory)") if failure.detail.startswith("MemoryError") else ""
        return f"{label} raised {failure.detail} {where}{memory}"
    if failure.reason == "oversized":
        expected = ", ".join(str(array.shape) for array in
                             prepared[failure.case].expected.values())
        return (f"{label} returned {failure.detail} {where}, far larger than the gradients "
                f"(shapes {expected})")
    if failure.reason == "unreadable":
        return f"the process running {label} sent back unreadable results: {failure.detail}"
    if failure.case is None:  # the file was being imported
        path = target[0] if isinstance(target, tuple) else label
        if failure.reason == "timeout":
            return (f"importing {path} did not finish within {timeout:g} s (an endless loop "
                    f"when the file is imported?); {limit}")
        return (f"importing {path} ended its process ({failure.detail}) before the function "
                f"could be called: the file ends the process itself (os._exit, a crash)")
    if failure.reason == "timeout":
        return (f"{label} did not return within {timeout:g} s {where} (an endless loop?); "
                f"{limit}")
    return (f"{label} ended its process without returning ({failure.detail}) {where}: it calls "
            f"os._exit or crashed; check-impl runs it in a separate process and needs its "
            f"return value")


def mistakes_for(layer) -> tuple:
    """The known mistakes of ``layer``'s kind (its :attr:`Implementation.mistakes`)."""
    return IMPLEMENTATIONS[layer].mistakes


def _diagnose(name: str, failing, mistakes: tuple) -> Mistake | None:
    for mistake in mistakes:
        if mistake.gradient != name:
            continue
        if all(any(_matches(case.results[name].given, candidate, mistake.fit)
                   for candidate in mistake.candidates(case)) for case in failing):
            return mistake
    return None


def _matches(given, candidate, fit: bool = True) -> bool:
    if given is None or candidate is None:
        return False
    if given.shape != candidate.shape:
        if fit and given.ndim == candidate.ndim == 4 and given.shape[:2] == candidate.shape[:2]:
            candidate = fit_to(candidate, given.shape)  # a wrong size cropped/padded at the end
        else:
            return False
    return bool(np.allclose(given, candidate, rtol=RELATIVE_TOLERANCE,
                            atol=RELATIVE_TOLERANCE * max(1.0, float(np.abs(candidate).max(
                                initial=0)))))


@functools.lru_cache(maxsize=64)
def numeric_truth(layer, input_size: tuple, batch: int) -> NumericGradients:
    """The derivation of one instance, compiled for numbers.

    Cached: the input sizes, the tie input and the known-mistake variants ask for
    the same instances again.
    """
    derivation = derive(layer, input_size, batch)
    if hasattr(derivation, "steps"):  # a chain (a residual block): step by step
        return ChainNumericGradients(derivation)
    return NumericGradients(derivation)


@dataclass(frozen=True)
class _Prepared:
    """One case before the function runs: its inputs, the truth, the arguments passed."""

    size: tuple
    batch: int
    ties: bool
    inputs: dict       # x, w, b, g
    expected: dict     # name -> the true gradient
    arguments: list    # positional arguments of the call (b is None without bias)
    names: list        # the gradients the function returns, in order
    optional: bool     # the last name (grad_b of a layer without bias) may be left out
    where: str         # "on input 5x6, batch 2 ..." for messages
    truth: NumericGradients


def _prepare_case(layer, size, batch, rng, ties=False) -> _Prepared | None:
    """Random inputs of ``size`` and their true gradients; ``ties``: an input with equal
    maxima in windows (the kind's :attr:`Implementation.tied_input`; ``None`` if the
    windows cannot hold ties)."""
    entry = IMPLEMENTATIONS[layer]
    truth = numeric_truth(entry.truth_layer(layer, size, batch), entry.input_size(layer, size),
                          batch)
    derivation = truth.derivation
    inputs = {"x": rng.standard_normal(derivation.input_shape),
              **{name: rng.standard_normal(array.shape)
                 for name, array in derivation.params.items()},
              "g": rng.standard_normal(derivation.output_shape),
              **entry.constants(derivation, rng)}
    inputs["x"] = entry.tied_input(rng, derivation.input_shape, truth, inputs["g"]) if ties \
        else entry.make_input(rng, derivation.input_shape)
    shapes = {name: array.shape for name, array in getattr(derivation, "constants", {}).items()}
    if shapes:  # inputs read, not differentiated: the kind draws them (a 0/1 mask)
        inputs.update(entry.make_constants(rng, layer, shapes) if entry.make_constants
                      else {name: rng.standard_normal(shape) for name, shape in shapes.items()})
    if inputs["x"] is None:
        return None
    # a parameter of the convention the instance lacks (b without bias) is passed as None
    takes, gives = entry.signature(layer) if entry.signature is not None \
        else (entry.arguments, entry.gradients)
    arguments = [inputs[name].copy() if name in inputs else None for name in takes]
    names = list(gives)
    where = f"on input {_size_text(size)}, batch {batch}"
    if ties:
        where += " with ties (equal maxima in a window)"
    if entry.unread(layer, size):
        where += (" (at this size the stride leaves the last rows/columns unread by the "
                  "forward pass; their gradient is 0)")
    return _Prepared(size=tuple(size), batch=batch, ties=ties, inputs=inputs,
                     expected=truth(inputs), arguments=arguments, names=names,
                     optional=names[-1] not in derivation.grads, where=where, truth=truth)


def _judge_case(case: _Prepared, returned, label, length: int | None = None) -> ImplCase:
    """Compare what the function returned on ``case`` with the truth (``length``: of the
    returned tuple, when only its first items came back)."""
    values = _unpack(returned, case.names, label, case.where, optional=case.optional,
                     length=length)
    results = {}
    for name, expected in case.expected.items():
        given = _gradient(values.get(name), name, label, case.where)
        wrong = None
        if given is not None and given.shape == expected.shape:
            scale = max(1.0, float(np.abs(expected).max(initial=0)))
            wrong = ~np.isclose(given, expected, rtol=RELATIVE_TOLERANCE,
                                atol=RELATIVE_TOLERANCE * scale)
        results[name] = GradientResult(name=name, expected=expected, given=given, wrong=wrong)
    return ImplCase(input_size=case.size, batch=case.batch, inputs=case.inputs, results=results,
                    derivation=case.truth.derivation, truth=case.truth, ties=case.ties)


def _raised_case(case: _Prepared, failure) -> ImplCase:
    """A case the function raised on: what it raised, no gradients to judge."""
    memory = (f" (its process may take at most {impl_runner.MEMORY_LIMIT // 2 ** 30} GiB "
              f"of memory)") if failure.detail.startswith("MemoryError") else ""
    return ImplCase(input_size=case.size, batch=case.batch, inputs=case.inputs, results={},
                    derivation=case.truth.derivation, truth=case.truth, ties=case.ties,
                    error=failure.detail + memory)


def _gradient(given, name: str, label: str, where: str) -> np.ndarray | None:
    """A returned gradient as float64, or :class:`ImplementationError` naming its type.

    Only real floating-point arrays (float32, float64) are gradients: a complex
    array's imaginary part, an integer array's lost fraction, float16's three digits
    would each hide or fake a mistake.
    """
    if given is None:
        return None
    if isinstance(given, Other):
        what = f"a {given.type_name}" + (f" of dtype {given.dtype}" if given.dtype else "")
        raise ImplementationError(f"{label} returned grad_{name} that is not an array of "
                                  f"numbers ({what}) {where}")
    dtype = given.dtype
    if np.issubdtype(dtype, np.floating) and dtype.itemsize >= 4:  # float32 and wider
        return given.astype(float)
    if np.issubdtype(dtype, np.complexfloating):
        why = ("the gradient of a real loss is real; check-impl does not drop an imaginary "
               "part")
    elif np.issubdtype(dtype, np.floating):
        why = "float16 holds about 3 digits, too few for the comparison (relative 1e-4)"
    else:
        values = "truth values" if dtype == np.bool_ else "whole numbers"
        why = f"an array of {values} cannot hold the gradient of random inputs"
    raise ImplementationError(f"{label} returned grad_{name} of dtype {dtype} {where}: {why}; "
                              f"return a float32 or float64 array")


def _unpack(returned, names, label, where, optional: bool, length: int | None = None) -> dict:
    """The returned gradients by name; ``optional``: the last (``grad_b`` of a layer
    without bias) may be left out.  A single gradient may come alone or as a 1-tuple."""
    if isinstance(returned, (tuple, list)) and length is not None and length != len(returned):
        # only its first items came back: longer than any convention
        raise ImplementationError(f"{label} returned a {type(returned).__name__} of {length} "
                                  f"{where}; expected {_expected_return(names)}")
    if len(names) == 1 and not isinstance(returned, (tuple, list)):
        return {names[0]: returned}
    if isinstance(returned, (tuple, list)) and len(returned) == len(names):
        return dict(zip(names, returned, strict=True))
    if isinstance(returned, (tuple, list)) and optional and len(returned) == len(names) - 1:
        return dict(zip(names[:-1], returned, strict=True))
    type_name = returned.type_name if isinstance(returned, Other) \
        else type(returned).__name__
    what = f"a {type_name}" + (f" of {len(returned)}" if isinstance(
        returned, (tuple, list)) else "")
    raise ImplementationError(f"{label} returned {what} {where}; expected "
                              f"{_expected_return(names)}")


def _expected_return(names) -> str:
    return (f"grad_{names[0]} alone or the 1-tuple (grad_{names[0]},)" if len(names) == 1
            else "the tuple (" + ", ".join(f"grad_{n}" for n in names) + ")")
