"""Small pure index helpers shared by every stage.

Each helper states its formula in the docstring: these are the formulas the
printouts quote and the tests prove.  Nothing here knows about SymPy.
"""

from __future__ import annotations

import numbers

__all__ = [
    "pair",
    "padding4",
    "output_length",
    "dilated_length",
    "unread_length",
    "grad_input_padding",
]


def pair(value, name: str) -> tuple[int, int]:
    """Return ``value`` as ``(height, width)``; an int means both.

    Raises ``ValueError`` naming ``name`` when ``value`` is neither an int nor a
    pair of ints.
    """
    if _is_int(value):
        return (int(value), int(value))
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")


def padding4(value, name: str = "padding") -> tuple[int, int, int, int]:
    """Return padding as ``(top, bottom, left, right)``.

    An int pads all four sides, a pair ``(ph, pw)`` pads top and bottom by ``ph``
    and left and right by ``pw``, four numbers are taken as they are.
    """
    if _is_int(value):
        return (int(value),) * 4
    if isinstance(value, (tuple, list)) and all(map(_is_int, value)):
        if len(value) == 2:
            return (int(value[0]), int(value[0]), int(value[1]), int(value[1]))
        if len(value) == 4:
            return tuple(int(v) for v in value)
    raise ValueError(
        f"{name} must be an int, a pair (h, w) or four ints (top, bottom, left, right), "
        f"got {value!r}"
    )


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


def _is_int(value) -> bool:
    # bool is an Integral but `stride=True` is a mistake, not a stride of 1.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
