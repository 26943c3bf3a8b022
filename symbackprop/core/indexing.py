"""Small pure index helpers shared by every stage.

Each helper states its formula in the docstring: these are the formulas the
printouts quote and the tests prove.  :func:`output_size_formula` is the one SymPy
expression of the output size that the text and LaTeX printouts print.
"""

from __future__ import annotations

import numbers

__all__ = [
    "pair",
    "padding4",
    "padding_pairs",
    "axis_tuple",
    "PADDING_WORDS",
    "output_length",
    "dilated_length",
    "unread_length",
    "grad_input_padding",
    "sliding_output_size",
    "is_int",
    "output_size_formula",
    "output_size_in",
    "SIZE_LATEX_NAMES",
]


def pair(value, name: str) -> tuple[int, int]:
    """Return ``value`` as ``(height, width)``; an int means both.

    Raises ``ValueError`` naming ``name`` when ``value`` is neither an int nor a
    pair of ints.
    """
    if is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")


def padding4(value, name: str = "padding") -> tuple[int, int, int, int]:
    """Return padding as ``(top, bottom, left, right)``.

    An int pads all four sides, a pair ``(ph, pw)`` pads top and bottom by ``ph``
    and left and right by ``pw``, four numbers are taken as they are.
    """
    if is_int(value):
        return (int(value),) * 4
    if isinstance(value, (tuple, list)) and all(map(is_int, value)):
        if len(value) == 2:
            return (int(value[0]), int(value[0]), int(value[1]), int(value[1]))
        if len(value) == 4:
            return tuple(int(v) for v in value)
    raise ValueError(
        f"{name} must be an int, a pair (h, w) or four ints (top, bottom, left, right), "
        f"got {value!r}"
    )


def axis_tuple(value, axes: int, name: str) -> tuple[int, ...]:
    """Return ``value`` as one int per spatial axis; an int means every axis.

    Raises ``ValueError`` naming ``name`` unless ``value`` is an int or ``axes`` ints.
    """
    if is_int(value):
        return (int(value),) * axes
    if isinstance(value, (tuple, list)) and len(value) == axes and all(map(is_int, value)):
        return tuple(int(v) for v in value)
    per_axis = "an int" if axes == 1 else f"an int or {axes} ints (one per spatial axis)"
    raise ValueError(f"{name} must be {per_axis}, got {value!r}")


#: The padding forms given by name, as PyTorch spells them.
PADDING_WORDS = ("valid", "same")


def padding_pairs(value, axes: int, kernel_size, dilation, stride,
                  name: str = "padding") -> tuple[tuple[int, int], ...]:
    """Zero padding as one ``(begin, end)`` pair per spatial axis.

    ``value`` is an int (every side), one int per axis (both ends of that axis), a
    ``(begin, end)`` pair per axis flattened in axis order (``(top, bottom, left,
    right)`` in 2-D; nested pairs are read too), or a word of :data:`PADDING_WORDS`:
    ``"valid"`` is no padding, ``"same"`` (as PyTorch: only with stride 1 along every
    axis) pads each axis by ``d*(K-1)`` in all, half at the beginning and the odd
    extra one at the end, so the output has the input's size.

    Raises ``ValueError`` naming ``name`` and the rule for any other value, a
    negative amount, or ``"same"`` with a stride other than 1.
    """
    if isinstance(value, str):
        word = value.strip().lower()
        if word == "valid":
            return ((0, 0),) * axes
        if word == "same":
            if any(step != 1 for step in stride):
                raise ValueError(
                    f"{name}='same' needs stride 1 along every axis (as in PyTorch: with a "
                    f"larger stride no padding keeps the output the input's size), got "
                    f"stride {tuple(stride)}; give the padding as numbers instead")
            pairs = []
            for kernel, spread in zip(kernel_size, dilation):
                total = spread * (kernel - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"{name} must be a number of zeros or one of "
                         f"{' or '.join(map(repr, PADDING_WORDS))}, got {value!r}")
    if isinstance(value, (tuple, list)) and value and \
            all(isinstance(v, (tuple, list)) for v in value):  # ((1, 2), (0, 1))
        value = tuple(v for pair_ in value for v in pair_)
    pairs = None
    if is_int(value):
        pairs = ((int(value), int(value)),) * axes
    elif isinstance(value, (tuple, list)) and all(map(is_int, value)):
        if len(value) == axes:
            pairs = tuple((int(v), int(v)) for v in value)
        elif len(value) == 2 * axes:
            pairs = tuple((int(value[2 * a]), int(value[2 * a + 1])) for a in range(axes))
    if pairs is None:
        forms = "an int" + (f", {axes} ints (one per axis)" if axes > 1 else "") + \
            f", {2 * axes} ints (begin, end per axis" + \
            (", as top, bottom, left, right" if axes == 2 else "") + ")"
        raise ValueError(f"{name} must be {forms}, 'valid' or 'same', got {value!r}")
    if min(v for pair_ in pairs for v in pair_) < 0:
        raise ValueError(f"{name} must be >= 0 on every side, got {value!r}")
    return pairs


def dilated_length(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel along one axis: ``d*(K-1) + 1``."""
    return dilation * (kernel - 1) + 1


def output_length(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                  dilation: int = 1) -> int:
    """Output length along one axis: ``floor((H + top + bottom - d*(K-1) - 1) / s) + 1``.

    Returns a value below 1 when the dilated kernel does not fit in the padded
    input; callers turn that into an error that names the parameters.
    """
    return (size + pad_before + pad_after - dilated_length(kernel, dilation)) // stride + 1


#: The symbols of :func:`output_size_formula` per axis, as the text printout names them.
_SIZE_SYMBOLS = {
    "h": ("Ho", "H", "top", "bottom", "KH", "sh", "dh"),
    "w": ("Wo", "W", "left", "right", "KW", "sw", "dw"),
    "l": ("Lo", "L", "begin", "end", "K", "s", "d"),  # a sequence's one axis
    "d": ("Do", "D", "front", "back", "KD", "sd", "dd"),  # a volume's depth
}
#: The same symbols as the LaTeX printout names them.
SIZE_LATEX_NAMES = {
    "Ho": "H_o", "H": "H", "top": r"p_{\mathrm{top}}", "bottom": r"p_{\mathrm{bottom}}",
    "KH": "K_H", "sh": "s_h", "dh": "d_h",
    "Wo": "W_o", "W": "W", "left": r"p_{\mathrm{left}}", "right": r"p_{\mathrm{right}}",
    "KW": "K_W", "sw": "s_w", "dw": "d_w",
    "Lo": "L_o", "L": "L", "begin": r"p_{\mathrm{begin}}", "end": r"p_{\mathrm{end}}",
    "K": "K", "s": "s", "d": "d",
    "Do": "D_o", "D": "D", "front": r"p_{\mathrm{front}}", "back": r"p_{\mathrm{back}}",
    "KD": "K_D", "sd": "s_d", "dd": "d_d",
}


def output_size_formula(axis: str, values=None, dilated: bool = True):
    """``(Ho, floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1)`` as SymPy, unevaluated.

    The formula of :func:`output_length` written as the printouts show it: the
    terms stay in this order, and ``formula.doit()`` evaluates it.

    Parameters
    ----------
    axis : ``"h"`` (rows: ``Ho``), ``"w"`` (columns: ``Wo``), ``"d"`` (a volume's depth:
        ``Do``) or ``"l"`` (a sequence: ``Lo``).
    values : tuple, optional
        ``(size, pad_before, pad_after, kernel, stride, dilation)`` put in place of
        the symbols, still unevaluated (``floor((3 + 1 + 1 - 1*(2-1) - 1) / 1) + 1``).
    dilated : bool
        ``False`` for a window without dilation (pooling): ``floor((H + top + bottom
        - KH) / sh) + 1``, the same formula at ``dh = 1``.

    Returns
    -------
    (sympy.Symbol, sympy.Expr)
        The output size's symbol and the unevaluated formula.
    """
    import sympy

    out, *names = _SIZE_SYMBOLS[axis]
    size, before, after, kernel, stride, dilation = \
        sympy.symbols(names, integer=True) if values is None else \
        [sympy.Integer(value) for value in values]

    def add(*terms):
        return sympy.Add(*terms, evaluate=False)

    def mul(*factors):
        return sympy.Mul(*factors, evaluate=False)

    if dilated:
        extent = add(size, before, after, mul(-1, dilation, add(kernel, -1)), -1)
    else:
        extent = add(size, before, after, mul(-1, kernel))
    windows = sympy.floor(mul(extent, sympy.Pow(stride, -1, evaluate=False)), evaluate=False)
    return sympy.Symbol(out, integer=True), add(windows, 1)


def output_size_in(names, dilated: bool = True):
    """The formula of :func:`output_size_formula` in other names, still unevaluated.

    ``names`` replaces ``(size, pad_before, pad_after, kernel, stride, dilation)`` (without
    ``dilation`` when ``dilated`` is False): a generated module's ``height, TOP, BOTTOM,
    KH, SH, DH``.  The terms keep the order the printouts show, so the module's code,
    the text and the LaTeX state one formula.
    """
    import sympy

    _, formula = output_size_formula("h", dilated=dilated)
    symbols = sympy.symbols(_SIZE_SYMBOLS["h"][1:], integer=True)
    # evaluate(False): the replaced sum is rebuilt as written, not reordered or folded
    with sympy.evaluate(False):
        return formula.xreplace(dict(zip(symbols, names)))


def unread_length(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                  dilation: int = 1) -> int:
    """Rows (or columns) at the end of the padded input the forward never reads.

    ``(H + top + bottom - d*(K-1) - 1) mod s``: when the stride does not divide the
    padded extent evenly, the last positions are skipped and their gradient is 0.
    """
    return (size + pad_before + pad_after - dilated_length(kernel, dilation)) % stride


def grad_input_padding(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                       dilation: int = 1) -> tuple[int, int]:
    """Padding of the stride-dilated upstream gradient for the closed form of dL/dx.

    ``before = d*(K-1) - top`` and ``after = d*(K-1) - bottom + r`` where ``r`` is
    :func:`unread_length`.  Correlating the padded, stride-dilated ``g`` with the
    180-degree-rotated (dilated) kernel then gives exactly ``H`` rows; a negative
    value means crop.
    """
    reach = dilated_length(kernel, dilation) - 1
    remainder = unread_length(size, kernel, stride, pad_before, pad_after, dilation)
    return (reach - pad_before, reach - pad_after + remainder)


def is_int(value) -> bool:
    # bool is an Integral but `stride=True` is a mistake, not a stride of 1.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def sliding_output_size(input_size, kernel_size, stride, padding, dilation,
                        too_small) -> tuple[int, int]:
    """``(Ho, Wo)`` of a window sliding over an input of ``input_size``.

    ``Ho = floor((H + top + bottom - dh*(KH-1) - 1) / sh) + 1`` (and ``Wo`` alike).
    ``ValueError`` when the padded input is smaller than the (dilated) window; its
    message ends with ``too_small(kernel, dilation, extent)``.
    """
    height, width = pair(input_size, "input_size")
    if height < 1 or width < 1:
        raise ValueError(f"input_size must be at least 1x1, got {height}x{width}")
    top, bottom, left, right = padding
    sizes = []
    for axis, size, kernel, step, before, after, spread in (
        ("height", height, kernel_size[0], stride[0], top, bottom, dilation[0]),
        ("width", width, kernel_size[1], stride[1], left, right, dilation[1]),
    ):
        extent = dilated_length(kernel, spread)
        if size + before + after < extent:
            raise ValueError(
                f"input_size: the padded input {axis} {size}+{before}+{after} = "
                f"{size + before + after} is smaller than {too_small(kernel, spread, extent)}")
        sizes.append(output_length(size, kernel, step, before, after, spread))
    return tuple(sizes)
