"""Render stage (array API): layer -> a module that runs on the array library of its inputs.

The ``array-api`` target (``symbackprop generate ... --target array-api``) writes the
same ``forward``/``backward`` as the NumPy modules, but against the namespace of the
arrays it is called with: ``xp = array_api_compat.array_namespace(x, ...)`` at the
top of every function, and from there only what the array API standard (2023.12)
defines (:data:`STANDARD_NAMES`): strided slices, ``xp.reshape``, ``xp.permute_dims``,
``xp.concat``, ``xp.stack``, ``xp.zeros``, ``xp.matmul``, ``xp.sum``, ``xp.where``, ...
The module imports only ``array_api_compat`` and the standard library, so the same
file runs on NumPy arrays, PyTorch tensors (CPU or GPU), CuPy arrays, and, since it
never writes into an array, JAX arrays.

Each kind's ``kinds/<kind>/array_api.py`` registers an :class:`ArrayApiKind` in
:data:`ARRAY_API`: how to make the values its template
(``templates/<kind>/<name>_array_api.py.j2``) places.  The kinds read their numbers
off the same checked plans as their NumPy modules.  SymPy reaches the code only
through :class:`ArrayApiPrinter`.  This module also registers the chain and the
``array-api`` entry of :data:`~symbackprop.render.codegen.TARGETS`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Callable

import sympy
from sympy.printing.precedence import PRECEDENCE

from symbackprop.core.derivation import DEFAULT_MAX_TERMS
from symbackprop.core.layers import Sequential
from symbackprop.core.naming import module_name
from symbackprop.core.registry import Registry
from symbackprop.render.codegen import (
    NUMPY,
    TARGETS,
    GeneratedCodePrinter,
    PlanError,
    Target,
    check_generation_size,
    common_context,
)
from symbackprop.render.codegen_chain import (
    _input_shape_spec,
    regenerate_lines,
    step_lines,
    step_rule,
)
from symbackprop.render.templating import python_environment

__all__ = [
    "ARRAY_API",
    "ArrayApiKind",
    "ArrayApiPrinter",
    "STANDARD_NAMES",
    "TARGET",
    "array_api_code",
    "array_api_common_context",
    "generate_array_api",
]

#: The target's name on the command line and in Python (``target="array-api"``).
TARGET = "array-api"

#: Every name of the array API standard's namespace, version 2023.12: what ``xp.<name>``
#: in a generated module may be (the tests hold every module to it).
STANDARD_NAMES = frozenset("""
    abs acos acosh add all any arange argmax argmin argsort asarray asin asinh astype atan
    atan2 atanh bitwise_and bitwise_invert bitwise_left_shift bitwise_or bitwise_right_shift
    bitwise_xor bool broadcast_arrays broadcast_to can_cast ceil clip complex64 complex128
    concat conj copysign cos cosh cumulative_sum divide e empty empty_like equal exp
    expand_dims expm1 eye finfo flip float32 float64 floor floor_divide from_dlpack full
    full_like greater greater_equal hypot iinfo imag inf int8 int16 int32 int64 isdtype
    isfinite isinf isnan less less_equal linspace log log1p log2 log10 logaddexp logical_and
    logical_not logical_or logical_xor matmul matrix_transpose max maximum mean meshgrid min
    minimum moveaxis multiply nan negative newaxis nonzero not_equal ones ones_like
    permute_dims pi positive pow prod real remainder repeat reshape result_type roll round
    searchsorted sign signbit sin sinh sort sqrt square squeeze stack std subtract sum take
    tan tanh tensordot tile tril triu trunc uint8 uint16 uint32 uint64 unique_all
    unique_counts unique_inverse unique_values unstack var vecdot where zeros zeros_like
""".split())


@dataclass(frozen=True)
class ArrayApiKind:
    """What the array-API code generator needs of one layer kind.

    Attributes
    ----------
    context : ``context(layer) -> dict``, the values the kind's template places, its
        name (under ``templates/``) under ``"template"``; start from
        :func:`array_api_common_context`.
    chain_shape : as :attr:`~symbackprop.render.codegen.NumpyKind.chain_shape`, for a
        kind whose NumPy lines name NumPy; None: the kind's NumPy lines (which call only
        the chain module's own helpers) serve.
    """

    context: Callable
    chain_shape: Callable | None = None


#: Layer type -> :class:`ArrayApiKind`, filled by each kind's ``array_api`` module.
ARRAY_API = Registry("generate array-API code (--target array-api) for")


class ArrayApiPrinter(GeneratedCodePrinter):
    """SymPy -> code against the namespace ``xp`` of the array API standard (2023.12).

    As :class:`~symbackprop.render.codegen.GeneratedCodePrinter` (the same layout and
    the same overflow-free sigmoid), but every function is ``xp.<name>``, refused
    unless the standard has it, and a number where a function takes an array is
    ``xp.full_like(x, number)``: the 2023.12 standard takes Python numbers in operators
    only, and ``full_like`` gives them the dtype and device of ``x``.
    """

    def _module_format(self, fqn, register=True):
        library, _, name = fqn.rpartition(".")
        if library != "numpy" or name not in STANDARD_NAMES:
            raise PlanError(f"{fqn} has no counterpart in the array API standard (2023.12)")
        return f"xp.{name}"

    def _reads_array(self, expr) -> bool:
        return any(symbol.name in self.arrays for symbol in sympy.sympify(expr).free_symbols)

    def _array(self, expr) -> str:
        """``expr`` printed where a function takes an array: a constant becomes one."""
        code = self._print(expr)
        return code if self._reads_array(expr) else f"xp.full_like({self.arrays[0]}, {code})"

    def _print_floor(self, expr):
        numerator, denominator = sympy.fraction(expr.args[0])
        if denominator == 1:
            return f"xp.floor({self._print(numerator)})"
        return super()._print_floor(expr)

    def _print_Piecewise(self, expr):
        """Nested ``xp.where(condition, value, otherwise)``; ``max(u, c)`` as ``xp.maximum``,
        which keeps a NaN ``u`` (``where`` would not)."""
        *pieces, (otherwise, last) = expr.args
        if len(pieces) == 1 and pieces[0][1] == sympy.StrictGreaterThan(pieces[0][0], otherwise):
            return f"xp.maximum({self._array(pieces[0][0])}, {self._array(otherwise)})"
        if last != sympy.true:
            raise ValueError(f"a Piecewise without an otherwise branch has no code: {expr}")
        code = self._array(otherwise)
        for value, condition in reversed(pieces):
            code = f"xp.where({self._print(condition)}, {self._array(value)}, {code})"
        return code

    def _print_Pow(self, expr, rational=False):
        """``1/(1 + exp(-u))`` as ``exp(-logaddexp(0, -u))``, without the overflow of
        ``exp(-u)`` for a large negative ``u``."""
        base, exponent = expr.args
        if exponent == -1 and isinstance(base, sympy.Add) and len(base.args) == 2 and \
                sympy.S.One in base.args:
            (term,) = [arg for arg in base.args if arg != 1]
            if isinstance(term, sympy.exp):
                return (f"xp.exp(-xp.logaddexp({self._array(sympy.S.Zero)}, "
                        f"{self._array(term.args[0])}))")
        if exponent == -1:
            return f"1 / {self.parenthesize(base, PRECEDENCE['Mul'] + 1)}"
        return super()._print_Pow(expr, rational)


def array_api_code(expression, arrays=("x",), names=None) -> str:
    """The array-API code of a SymPy expression, as :class:`ArrayApiPrinter` prints it."""
    return ArrayApiPrinter(arrays, None, names).doprint(expression)


def array_api_common_context(layer) -> dict:
    """What every array-API template's shared header places; the command regenerates
    this module (``--target array-api``)."""
    context = common_context(layer)
    *lines, last = context["command_lines"]
    context["command_lines"] = [*lines, f"{last} --target {TARGET}"]
    return context


# -- a chain ----------------------------------------------------------------------------

def _chain_step(number: int, layer) -> dict:
    return step_lines(number, layer, ARRAY_API[layer].context(layer))


def _chain_shape_lines(number: int, layer, rank: int, channels) -> tuple:
    chain_shape = ARRAY_API[layer].chain_shape or NUMPY[layer].chain_shape
    if chain_shape is None:
        return [], rank, channels  # the layer keeps the shape
    return chain_shape(number, layer, rank, channels)


def chain_context(chain: Sequential) -> dict:
    """The values ``templates/sequential_array_api.py.j2`` places: each layer's code is
    the blocks of its own array-API template, called as the NumPy chain calls them."""
    input_spec = _input_shape_spec(chain)
    rank, channels = len(input_spec), input_spec[1] if isinstance(input_spec[1], int) else None
    steps = []
    for number, layer in enumerate(chain.layers, 1):
        if layer not in ARRAY_API:
            raise TypeError(f"layer {number} of the chain, {layer.describe()}, has no "
                            f"array-API code; {_known_kinds()}")
        step = _chain_step(number, layer)
        step["shape_lines"], rank, channels = _chain_shape_lines(number, layer, rank, channels)
        steps.append(step)
    combined = []
    for step, following in zip(steps, steps[1:]):
        if step["entry"].elementwise and following["entry"].upsamples:
            number = step["number"]
            rule = step_rule(number, chain.layers[number - 1],
                             g=step_rule(number + 1, chain.layers[number]))
            combined.append(f"delta{number - 1} = {GeneratedCodePrinter().doprint(rule)}   "
                            f"(layers {number} and {number + 1})")
    parameters = list(chain.parameter_names)
    lines = regenerate_lines(chain)
    checks_used = {line.split("(")[0] for step in steps for line in step["shape_lines"]
                   if line.startswith("_expect_")}
    return dict(
        template="sequential_array_api.py.j2",
        title=f"Sequential: {chain.describe()}",
        module=module_name(chain),
        command_lines=[*lines[:-1], f"{lines[-1]} --target {TARGET}"],
        parameters_signature=", ".join(parameters),
        parameter_names=parameters,
        parameter_shapes=[(name, str(shape)) for name, shape in chain.parameter_shapes.items()],
        gradients_signature=", ".join(["grad_x", *(f"grad_{name}" for name in parameters)]),
        exports=["forward", "backward", "output_shapes"],
        input_spec="(" + ", ".join(json.dumps(size) for size in input_spec) + ")",
        input_text="(" + ", ".join(map(str, input_spec)) + ")",
        steps=steps,
        combined=combined,
        gradients_returned=["delta0", *(f"grad_{name}" for name in parameters)],
        checks_used=sorted(checks_used),
        # math.prod counts features (flatten, the check of a linear layer's input)
        uses_math="_expect_features" in checks_used or any(
            "math." in text for step in steps for text in [step["code"], *step["shape_lines"]]),
        last=len(chain.layers),
    )


ARRAY_API.register(Sequential, ArrayApiKind(context=chain_context))


# -- the public API ---------------------------------------------------------------------

def _known_kinds() -> str:
    names = [layer_type.kind for layer_type in ARRAY_API.types() if layer_type is not Sequential]
    return (f"the {TARGET} target has code for {', '.join(names)} and chains of them "
            f"(--target numpy has every kind)")


@functools.lru_cache(maxsize=128)
def _generate_cached(layer) -> str:
    context = ARRAY_API[layer].context(layer)
    return python_environment().get_template(context["template"]).render(**context)


def generate_array_api(layer, max_terms=DEFAULT_MAX_TERMS) -> str:
    """The source of the array-API module of ``layer`` (deterministic).

    Raises
    ------
    TypeError
        For a kind without array-API code, naming the kinds that have it.
    SizeLimitError
        As :func:`~symbackprop.render.codegen.generate`: the code is read off the same
        derived instance as the NumPy module's.
    """
    if layer not in ARRAY_API:
        raise TypeError(f"{layer.describe()} has no array-API code; {_known_kinds()}")
    for number, part in enumerate(getattr(layer, "layers", ()), 1):
        if part not in ARRAY_API:
            raise TypeError(f"layer {number} of the chain, {part.describe()}, has no "
                            f"array-API code; {_known_kinds()}")
    check_generation_size(layer, max_terms)
    return _generate_cached(layer)


TARGETS[TARGET] = Target(
    description="the array API standard: runs on the library of its inputs",
    generate=generate_array_api,
    suffix="_array_api",
)
