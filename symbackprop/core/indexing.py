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
    "sliding_output_size",
    "is_int",
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
