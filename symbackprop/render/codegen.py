"""Render stage (NumPy): layer -> the source of a standalone module, asking the layer's kind.

Input: a layer spec.  Output: the text of a Python module that needs only NumPy
and implements ``forward(x, *params)`` and ``backward(x, *params, grad_out)`` for
that layer, any batch and input size.

The code is not written from the textbook formulas but read off the symbolic result:
each kind (``symbackprop/kinds/<kind>/numpy.py``) derives a small instance, reads
what its template needs off the derived sums (a *plan*), proves the plan rebuilds
the derivation, and registers a :class:`NumpyKind` in :data:`NUMPY`: how to make
the values its templates place, for each :data:`STYLES` entry, which strategies it
has, and what a chain needs of it.  This module holds what every kind shares: the
helpers a plan is read with (:func:`record_meeting`, :func:`offset_slices`), the
size limit (:func:`check_generation_size`), and :func:`generate`, :func:`load` and
:func:`write_module`.  Everything is deterministic: the same layer always gives the
same bytes.
"""

from __future__ import annotations

import functools
import importlib.util
import linecache
import math
import numbers
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import sympy
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from symbackprop.core.derivation import DEFAULT_MAX_TERMS, SizeLimitError, term_count
from symbackprop.core.naming import module_name
from symbackprop.core.operators import Transposed
from symbackprop.core.registry import Registry
from symbackprop.render.templating import python_environment

__all__ = [
    "NUMPY",
    "NumpyKind",
    "STYLES",
    "TARGETS",
    "Target",
    "NUMPY_TARGET",
    "target_names",
    "generate",
    "load",
    "write_module",
    "write_text_atomically",
    "module_name",
    "module_filename",
    "regenerate_command",
    "instance_cost",
    "check_generation_size",
    "size_limit_error",
    "common_context",
    "record_meeting",
    "offset_slices",
    "fit_line",
    "PlanError",
    "DEFAULT_OUTPUT_FOLDER",
    "GeneratedCodePrinter",
    "numpy_code",
    "HELPERS",
    "helpers_used",
    "layer_context",
]

#: The styles of generated code: ``fast`` computes with the measured strategies,
#: ``reference`` reads line by line like the printed rules.
STYLES = {
    "fast": "the measured strategies (the default)",
    "reference": "vectorised NumPy that reads line by line like the printed rules",
}


@dataclass(frozen=True)
class NumpyKind:
    """What the NumPy code generator needs of one layer kind.

    Attributes
    ----------
    context : ``context(layer, style, strategy) -> dict``, the values the kind's
        template places, its name (under ``templates/``) under ``"template"``.
        ``strategy`` is None or a key of ``strategies``.
    strategies : name -> why it is chosen; empty when the kind has one way to compute.
    instance : ``instance(layer, max_terms) -> (layer derived, input shape)``: the
        instance generating the layer derives, for the size limit; None when that is
        small whatever the layer.
    backward_rule : ``(words, bias part)``, said after a chain's backward step (the
        expression the kind registered in
        :data:`~symbackprop.core.operators.CHAIN_RULES`, printed): its parameter
        gradients in the chain's names (``{number}``, ``{previous}``); ``{bias}``
        places the bias part.
    chain_shape : ``chain_shape(number, layer, rank, channels) -> (lines, rank,
        channels)``: the code of a chain's ``output_shapes`` for this layer and the
        rank and channel count after it; None: the layer keeps the shape.
    input_shape : ``input_shape(layer) -> tuple`` the shape a chain's input must have
        when this layer is the first to fix it (letters for free sizes); None: any.
    elementwise : whether the layer is ``a = f(net)`` elementwise (an activation).
    upsamples : whether the layer's backward is an upsampling (pooling).
    """

    context: Callable
    strategies: dict = field(default_factory=dict)
    instance: Callable | None = None
    backward_rule: tuple = ("", "")
    chain_shape: Callable | None = None
    input_shape: Callable | None = None
    elementwise: bool = False
    upsamples: bool = False


#: Layer type -> :class:`NumpyKind`, filled by each kind's ``numpy`` module.
NUMPY = Registry("generate code for")


@dataclass(frozen=True)
class Target:
    """An array library generated modules can be written for besides NumPy (``--target``).

    Attributes
    ----------
    description : what the target is, for help.
    generate : ``generate(layer, max_terms) -> str``, the module's source (deterministic).
    suffix : what the module's file name ends with before ``.py``.
    """

    description: str
    generate: Callable
    suffix: str


#: The default target: NumPy modules, this module's code.
NUMPY_TARGET = "numpy"

#: Target name -> :class:`Target`, filled by the render module of each other target
#: (``symbackprop.render.codegen_array_api``); ``numpy`` is this module's own.
TARGETS: dict = {}


class GeneratedCodePrinter(NumPyPrinter):
    """SymPy -> the NumPy code of a generated module (``import numpy as np``).

    Written for elementwise formulas over arrays of one dtype: a float32 input gives
    float32 results (NumPy treats Python numbers as weak), and nothing overflows
    where the formula does not.

    Parameters
    ----------
    arrays : the names of the array symbols, the first the one whose dtype results take.
    """

    def __init__(self, arrays=("x",), settings=None, names=None):
        super().__init__(settings)
        self.arrays = tuple(arrays)
        self.names = dict(names or {})  # symbol name -> the text printed for it

    @classmethod
    def print_function(cls, function_class, method) -> None:
        """Teach the printer a kind's own SymPy function (a chain operator of its backward
        rule): ``method(printer, expr)`` becomes ``_print_<function_class name>``."""
        setattr(cls, f"_print_{function_class.__name__}", method)

    def _print_Symbol(self, expr):
        return self.names.get(expr.name, super()._print_Symbol(expr))

    def _print_floor(self, expr):
        """``floor(a / b)`` as Python's ``a // b`` (whole numbers: the same value)."""
        numerator, denominator = sympy.fraction(expr.args[0])
        if denominator == 1:
            return f"np.floor({self._print(numerator)})"
        return (f"{self.parenthesize(numerator, PRECEDENCE['Mul'])} // "
                f"{self.parenthesize(denominator, PRECEDENCE['Mul'])}")

    # -- a chain's backward rule (symbackprop.core.operators), for a module's comments --
    def _print_ArrayName(self, expr):
        return expr.name

    def _print_Upsample(self, expr):
        return f"upsample({self._print(expr.args[0])})"

    def _print_Reshape(self, expr):
        error, like = (self._print(arg) for arg in expr.args)
        return f"{error} reshaped to the shape of {like}"

    def _print_Transposed(self, expr):
        return f"{self._print(expr.args[0])}^T"

    def _print_MatrixProduct(self, expr):
        """``w^T g``, and how NumPy computes it: a batch's vectors are the rows of ``g``,
        so ``(w^T g)^T = g^T w`` is ``g @ w``."""
        matrix, vector = expr.args
        rows = (f"{self._print(vector)} @ {self._print(matrix.args[0])}"
                if matrix.func == Transposed else
                f"{self._print(vector)} @ {self._print(matrix)}.T")
        return f"{self._print(matrix)} {self._print(vector)} ({rows})"

    def _print_ElementwiseProduct(self, expr):
        return " * ".join(self.parenthesize(arg, PRECEDENCE["Mul"]) for arg in expr.args)

    def _print_ActivationDerivative(self, expr):
        return f"f'({self._print(expr.args[0])})"

    def _print_TransposedConvolution(self, expr):
        error, kernel = (self._print(arg) for arg in expr.args)
        return f"{error} sent back through {kernel} (a transposed convolution)"

    def _module_format(self, fqn, register=True):
        name = super()._module_format(fqn, register)
        return "np." + name[len("numpy."):] if name.startswith("numpy.") else name

    def _print_Relational(self, expr):
        # infix, as people write a condition: x > 0 rather than np.greater(x, 0)
        return (f"{self.parenthesize(expr.lhs, 40)} {expr.rel_op} "
                f"{self.parenthesize(expr.rhs, 40)}")

    def _print_Piecewise(self, expr):
        """Nested ``np.where(condition, value, otherwise)``, cast to the input's dtype
        when no branch reads an array (``np.where(x > 0, 1, ALPHA)`` would be float64)."""
        *pieces, (otherwise, last) = expr.args
        if len(pieces) == 1 and pieces[0][1] == sympy.StrictGreaterThan(pieces[0][0], otherwise):
            # max(u, c) written as a choice: np.maximum keeps a NaN u (np.where would not)
            return f"np.maximum({self._print(pieces[0][0])}, {self._print(otherwise)})"
        if last != sympy.true:
            raise ValueError(f"a Piecewise without an otherwise branch has no NumPy code: {expr}")
        code = self._print(otherwise)
        for value, condition in reversed(pieces):
            code = f"np.where({self._print(condition)}, {self._print(value)}, {code})"
        reads_array = any(symbol.name in self.arrays for value, _ in expr.args
                          for symbol in sympy.sympify(value).free_symbols)
        return code if reads_array else f"{code}.astype({self.arrays[0]}.dtype)"

    def _print_Rational(self, expr):
        """``1 / 2``, spaced as ``ruff format`` writes a division."""
        return f"{expr.p} / {expr.q}"

    def _print_erf(self, expr):
        """``_erf(u)``: NumPy has no erf; the module defines the helper (see :data:`HELPERS`)."""
        return f"_erf({self._print(expr.args[0])})"

    def _print_Mul(self, expr):
        """Factors joined by `` * `` and one `` / ``, as ``ruff format`` lays them out."""
        if expr.could_extract_minus_sign():
            return "-" + self.parenthesize(-expr, PRECEDENCE["Mul"], strict=True)
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient == -1:  # an unevaluated -1 * a * b, as written
            return "-" + self.parenthesize(rest, PRECEDENCE["Mul"], strict=True)
        numerator, denominator = sympy.fraction(expr)
        text = " * ".join(self.parenthesize(factor, PRECEDENCE["Mul"], strict=True)
                          for factor in sympy.Mul.make_args(numerator))
        if denominator != 1:
            text = f"{text} / {self.parenthesize(denominator, PRECEDENCE['Mul'])}"
        return text

    def _print_Pow(self, expr, rational=False):
        """``1/(1 + exp(-u))`` as ``exp(-logaddexp(0, -u))``: the same number, without the
        overflow of ``exp(-u)`` for a large negative ``u``."""
        base, exponent = expr.args
        if base.is_number and exponent in (sympy.S.Half, -sympy.S.Half):
            # a constant's square root as a Python float, which NumPy treats as weak:
            # np.sqrt(2) is a float64 scalar and would make a float32 result float64
            # (written as ruff format writes a power of simple operands: 2**0.5)
            return f"{self.parenthesize(base, PRECEDENCE['Pow'], strict=True)}**" \
                   f"{'0.5' if exponent > 0 else '-0.5'}"
        if exponent == -1 and isinstance(base, sympy.Add) and len(base.args) == 2 and \
                sympy.S.One in base.args:
            (term,) = [arg for arg in base.args if arg != 1]
            if isinstance(term, sympy.exp):
                return f"np.exp(-np.logaddexp(0, {self._print(term.args[0])}))"
        if exponent == -1:
            return f"1 / {self.parenthesize(base, 50)}"
        if exponent.is_Integer and exponent > 0 and not base.is_Atom:
            # spaced as ruff format writes a power of a call: np.tanh(u) ** 2 (x**2 stays)
            return f"{self.parenthesize(base, PRECEDENCE['Pow'], strict=True)} ** {exponent}"
        return super()._print_Pow(expr, rational)


#: SymPy functions NumPy lacks -> the helper a generated module defines for them, a
#: template under ``templates/helpers/`` (``_erf``: ``erf.py.j2``).
HELPERS = {sympy.erf: "erf"}


def helpers_used(*expressions) -> list[str]:
    """The names of the :data:`HELPERS` that the NumPy code of ``expressions`` calls."""
    return sorted({name for function, name in HELPERS.items()
                   for expression in expressions if sympy.sympify(expression).has(function)})


def numpy_code(expression, arrays=("x",), names=None, as_written=False) -> str:
    """The NumPy code of a SymPy expression, as :class:`GeneratedCodePrinter` prints it.

    ``names`` maps symbol names to the text printed for them (a layer's numbers in a
    docstring); ``as_written`` keeps the terms of a sum in the order they were built in
    (an expression made with ``sympy.evaluate(False)``).
    """
    settings = {"order": "none"} if as_written else None
    return GeneratedCodePrinter(arrays, settings, names).doprint(expression)

#: Where the command line writes modules unless told otherwise.
DEFAULT_OUTPUT_FOLDER = "generated"

class PlanError(RuntimeError):
    """The derived sums do not have the shape the code template needs (a bug)."""


def instance_cost(layer, input_shape) -> int:
    """What deriving an instance takes: the products of its expansion (padding products
    included, :func:`~symbackprop.core.derivation.term_count`) plus the elements of its input."""
    return term_count(layer, input_shape) + math.prod(input_shape)


#: The parameters that size a layer's smallest instance, by what they are called.
_SIZING_PARAMETERS = ("kernel_size", "stride", "padding", "dilation")


def size_limit_error(layer, input_shape, cost: int, max_terms) -> SizeLimitError:
    """The :class:`SizeLimitError` of a layer whose smallest instance costs ``cost``.

    It names the sizing parameter with the largest value (the likely cause), the
    instance (``input_shape``, or None when only a lower bound ``cost`` is known)
    and how to raise the limit.
    """
    present = [(max(getattr(layer, name)), name) for name in _SIZING_PARAMETERS
               if hasattr(layer, name)]
    _, culprit = max(present, key=lambda item: item[0])
    value = getattr(layer, culprit)
    if len(set(value)) == 1:
        shown = value[0]
    else:  # KHxKW as the command line writes it; padding as (top, bottom, left, right)
        shown = "x".join(map(str, value)) if len(value) == 2 else str(value)
    if input_shape is None:
        instance = f"would expand to at least {cost:,} products"
    else:
        instance = (f"is an input of {'x'.join(map(str, input_shape[-2:]))}, which would expand "
                    f"to {cost:,} products and input elements")
    return SizeLimitError(
        f"{culprit} = {shown}: the smallest instance generate derives for {layer.describe()} "
        f"{instance}, over the limit of {max_terms:,}. Raise the limit with --max-terms N "
        f"(max_terms=N in Python) to generate it anyway.")


def fit_line(points: dict, what: str, through_origin: bool = False) -> tuple[int, int]:
    """``(start, step)`` with ``points[t] == start + step*t`` for every ``t``; else PlanError."""
    ordered = sorted(points.items())
    if len(ordered) < 2:
        raise PlanError(f"{what}: one point {ordered} does not fix a slice")
    (t0, v0), (t1, v1) = ordered[0], ordered[1]
    step, remainder = divmod(v1 - v0, t1 - t0)
    start = v0 - step * t0
    if remainder or any(value != start + step * t for t, value in ordered) or \
            (through_origin and start != 0):
        raise PlanError(f"{what} are not one strided slice: {ordered}")
    return start, step


def record_meeting(rows: dict, cols: dict, what: str, offset, output, padded) -> None:
    """Note that ``what`` offset ``offset`` at output ``(i, j)`` meets padded ``(row, col)``.

    ``rows[offset][i]`` and ``cols[offset][j]`` collect the meetings; a second, different
    padded row (or column) for the same output row is a :class:`PlanError`.
    """
    for table, output_index, padded_index, axis in (
            (rows, output[0], padded[0], "row"), (cols, output[1], padded[1], "column")):
        seen = table[offset].setdefault(output_index, padded_index)
        if seen != padded_index:
            raise PlanError(f"{what} offset {offset} meets padded {axis}s {seen} and "
                            f"{padded_index} from output {axis} {output_index}")


def offset_slices(rows: dict, cols: dict, offsets, what: str, slice_type) -> tuple:
    """One ``slice_type(offset, first_row, row_step, first_col, col_step)`` per offset.

    Each offset's meetings (from :func:`record_meeting`) must lie on one strided line.
    """
    slices = []
    for offset in offsets:
        first_row, row_step = fit_line(rows[offset], f"padded rows of {what} offset {offset}")
        first_col, col_step = fit_line(cols[offset], f"padded columns of {what} offset {offset}")
        slices.append(slice_type(offset, first_row, row_step, first_col, col_step))
    return tuple(slices)


def regenerate_command(layer) -> list[str]:
    """The shell words of ``symbackprop generate`` for ``layer``."""
    from symbackprop.core.command_line import layer_arguments

    return ["symbackprop", "generate", *layer_arguments(layer)]


def _command_lines(words: list[str], width: int = 72) -> list[str]:
    """Shell words on lines of about ``width`` characters, joined by ``\\``."""
    # An option and its value stay on one line.
    groups, index = [], 0
    while index < len(words):
        if words[index].startswith("--") and index + 1 < len(words) and \
                not words[index + 1].startswith("--"):
            groups.append(f"{words[index]} {words[index + 1]}")
            index += 2
        else:
            groups.append(words[index])
            index += 1
    lines, current = [], ""
    for group in groups:
        if current and len(current) + 1 + len(group) > width:
            lines.append(current + " \\")
            current = "    " + group
        else:
            current = f"{current} {group}" if current else group
    lines.append(current)
    return lines


def common_context(layer) -> dict:
    """What every layer template's shared header places: title, command, signatures."""
    parameters = list(layer.parameter_names)
    return dict(
        title=layer.describe(),
        command_lines=_command_lines(regenerate_command(layer)),
        parameters_signature=", ".join(parameters),
        parameter_names=parameters,
        gradients_signature=", ".join(f"grad_{name}" for name in ["x", *parameters]) +
        ("," if not parameters else ""),
    )


# -- the public API --------------------------------------------------------------

def check_generation_size(layer, max_terms=DEFAULT_MAX_TERMS) -> None:
    """Raise :class:`~symbackprop.core.derivation.SizeLimitError` unless every instance that
    generating ``layer`` derives costs at most ``max_terms`` (:func:`instance_cost`).

    Computed up front, in closed form, before anything is derived; a chain checks each
    of its layers.
    """
    if isinstance(max_terms, bool) or not (isinstance(max_terms, numbers.Integral) or
                                           max_terms == math.inf) or max_terms < 1:
        raise ValueError(f"max_terms (--max-terms) must be a whole number >= 1, "
                         f"got {max_terms!r}")
    for part in getattr(layer, "layers", (layer,)):
        entry = NUMPY.get(part)
        if entry is not None and entry.instance is not None:
            instance, input_shape = entry.instance(part, max_terms)
            cost = instance_cost(instance, input_shape)
            if cost > max_terms:
                raise size_limit_error(part, input_shape, cost, max_terms)


def _check_choices(layer, style: str, strategy: str | None) -> None:
    """``ValueError`` naming ``style`` or ``strategy`` unless the layer's kind has it."""
    if style not in STYLES:
        raise ValueError(f"style (--style) must be one of {', '.join(STYLES)}, got {style!r}")
    if strategy is None:
        return
    strategies = NUMPY[layer].strategies
    if style != "fast" or not strategies:
        raise ValueError(f"strategy is only chosen for the fast style of a layer that has "
                         f"strategies; {layer.describe()} in style {style!r} has none")
    if strategy not in strategies:
        raise ValueError(f"strategy must be one of {', '.join(strategies)}, got {strategy!r}")


def layer_context(layer, style: str = "fast", strategy: str | None = None) -> dict:
    """The values the template of ``layer``'s kind places, its name under ``"template"``."""
    _check_choices(layer, style, strategy)
    context = NUMPY[layer].context(layer, style, strategy)
    if style != "fast":  # the command in the docstring regenerates this module, style and all
        context["command_lines"] = [*context["command_lines"][:-1],
                                    f"{context['command_lines'][-1]} --style {style}"]
    return context


@functools.lru_cache(maxsize=128)
def _generate_cached(layer, style, strategy) -> str:
    context = layer_context(layer, style, strategy)
    return python_environment().get_template(context["template"]).render(**context)


def _other_target(target: str, style: str, strategy: str | None):
    """The :class:`Target` ``target`` names (None for NumPy); ``ValueError`` for an unknown
    target or a NumPy-only choice (style, strategy) made for another."""
    if target == NUMPY_TARGET:
        return None
    if target not in TARGETS:
        raise ValueError(f"target (--target) must be one of {', '.join(target_names())}, "
                         f"got {target!r}")
    if style != "fast" or strategy is not None:
        raise ValueError(f"style and strategy choose among NumPy modules; the {target} "
                         f"target writes one kind of module (leave --style at fast)")
    return TARGETS[target]


def target_names() -> tuple[str, ...]:
    """``("numpy", ...)``: every ``--target`` generate knows."""
    return (NUMPY_TARGET, *TARGETS)


def generate(layer, strategy: str | None = None, max_terms=DEFAULT_MAX_TERMS,
             style: str = "fast", target: str = NUMPY_TARGET) -> str:
    """The source of a standalone NumPy module with ``forward`` and ``backward`` for ``layer``.

    The module needs only NumPy, has the layer's constants baked in, accepts any
    batch and input size that fits, and checks its arguments.  The same layer always
    gives the same text.  ``style`` is a key of :data:`STYLES`: ``"fast"`` (the
    default) or ``"reference"``, code that reads like the printed rules.
    ``strategy`` (one of the kind's ``strategies``, fast style) overrides the one the
    kind picks; the tests use it to run every strategy.  ``max_terms`` bounds the
    instance the code is read off, as for :func:`~symbackprop.core.derivation.derive`
    (see :func:`check_generation_size`).  ``target`` is ``"numpy"`` (the default) or a
    key of :data:`TARGETS`: ``"array-api"`` writes the module against the array API
    standard, to run on the library of its inputs (NumPy, PyTorch, ...).

    Raises
    ------
    TypeError
        For a layer kind symbackprop cannot generate code for.
    ValueError
        For an unknown ``style`` or ``strategy``.
    SizeLimitError
        When the smallest instance that shows the layer's index rules is larger than
        ``max_terms`` (a huge kernel, stride, padding or dilation).
    """
    other = _other_target(target, style, strategy)
    if other is not None:
        return other.generate(layer, max_terms)
    NUMPY[layer]  # noqa: B018 - the TypeError of a kind without code comes first
    _check_choices(layer, style, strategy)
    check_generation_size(layer, max_terms)
    return _generate_cached(layer, style, strategy)


def module_filename(layer, style: str = "fast", target: str = NUMPY_TARGET) -> str:
    """``module_name(layer) + ".py"``; a reference-style module ends ``_reference.py``, a
    module of another target with that target's suffix (``_array_api.py``)."""
    suffix = "" if target == NUMPY_TARGET else TARGETS[target].suffix
    return module_name(layer) + ("" if style == "fast" else f"_{style}") + suffix + ".py"


def write_module(layer, folder=DEFAULT_OUTPUT_FOLDER, max_terms=DEFAULT_MAX_TERMS,
                 style: str = "fast", target: str = NUMPY_TARGET) -> Path:
    """Write :func:`generate`'s source to ``folder/<module_filename>``; return the path.

    The folder is created if missing.  The file is written to a temporary file in
    the same folder and renamed over the target, so a failure never leaves a half
    file behind.

    Raises
    ------
    OSError
        With the folder in the message, when it cannot be created or written to.
    """
    source = generate(layer, max_terms=max_terms, style=style, target=target)
    path = Path(folder) / module_filename(layer, style, target)
    write_text_atomically(path, source)
    return path


def write_text_atomically(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` through a temporary file in the same folder.

    The folder is created if missing; ``OSError`` names it when it cannot be.
    Either the whole new text is in ``target`` or ``target`` is as it was.
    """
    folder = target.parent
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"cannot write {target.name}: {str(folder)!r} is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        raise type(error)(f"cannot write {target.name} into {str(folder)!r}: "
                          f"{error.strerror or error}") from error
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def load(layer, folder=None, strategy: str | None = None, max_terms=DEFAULT_MAX_TERMS,
         style: str = "fast", target: str = NUMPY_TARGET):
    """Import the module :func:`generate` writes for ``layer``.

    Parameters
    ----------
    layer : the layer.
    folder : path, optional
        Write the module there first (see :func:`write_module`) and import that
        file.  By default nothing is written: the source is compiled in memory and
        registered with :mod:`linecache`, so tracebacks, :mod:`inspect` and
        :mod:`pdb` still show it.
    strategy : str, optional
        As for :func:`generate` (in-memory modules only).
    max_terms : int, optional
        As for :func:`generate`.
    style : str, optional
        As for :func:`generate`.
    target : str, optional
        As for :func:`generate`: ``"array-api"`` loads the module that runs on the
        library of its inputs.

    Returns
    -------
    module
        With ``forward``, ``backward``, ``output_size`` and the layer's constants.
        The same layer gives the same module object (for ``folder=None``).
    """
    if _other_target(target, style, strategy) is not None:
        generate(layer, max_terms=max_terms, target=target)  # its errors, before any file
    else:
        NUMPY[layer]  # noqa: B018 - the TypeError of a kind without code comes first
        _check_choices(layer, style, strategy)
        check_generation_size(layer, max_terms)
    if folder is not None:
        if strategy is not None:
            raise ValueError("strategy can only be chosen for a module loaded in memory")
        path = write_module(layer, folder, max_terms, style, target)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return _load_in_memory(layer, strategy, style, target)


@functools.lru_cache(maxsize=128)
def _load_in_memory(layer, strategy=None, style="fast", target=NUMPY_TARGET):
    # checked by load
    source = generate(layer, strategy, max_terms=math.inf, style=style, target=target)
    name = module_filename(layer, style, target)[:-len(".py")]
    if strategy is not None:
        name = f"{name}_{strategy}"
    filename = f"<symbackprop generated {name}>"
    # An entry without a modification time is never dropped by linecache.checkcache.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    spec = importlib.util.spec_from_loader(name, loader=None, origin=filename)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)
    return module
