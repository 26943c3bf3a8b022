"""conv2d backward passes that attack the checker instead of computing the gradient.

Safe to import: every attack happens when a function is *called* (the attacks at
import time are written into temporary files by tests/test_check_impl_hostile.py).
``check_impl`` runs these in a child process; none may change its verdict, end
its process, hang it, or write to its standard output.
"""

import os
import signal
import sys

import numpy as np
import student_conv as student


def wrong(x, w, b, grad_z, stride=1, padding=0):
    """A wrong backward pass (the kernel is not rotated), what the attacks return."""
    return student.backward_kernel_not_rotated(x, w, b, grad_z, stride, padding)


def exits_zero(x, w, b, grad_z, stride=1, padding=0):
    os._exit(0)


def sys_exit_zero(x, w, b, grad_z, stride=1, padding=0):
    sys.exit(0)


def endless(x, w, b, grad_z, stride=1, padding=0):
    while True:
        pass


def second_call_endless(x, w, b, grad_z, stride=1, padding=0):
    """Right on the first input size, then an endless loop."""
    if x.shape[2] != _FIRST_HEIGHT.setdefault("height", x.shape[2]):
        while True:
            pass
    return student.backward(x, w, b, grad_z, stride, padding)


_FIRST_HEIGHT = {}


def crashes(x, w, b, grad_z, stride=1, padding=0):
    os.kill(os.getpid(), signal.SIGSEGV)


def _always_close(*args, **kwargs):
    return np.ones(np.broadcast_shapes(*(np.shape(a) for a in args[:2])), dtype=bool)


def patches_numpy(x, w, b, grad_z, stride=1, padding=0):
    """Make every comparison say "equal", then return wrong gradients."""
    np.allclose = lambda *args, **kwargs: True
    np.isclose = _always_close
    np.array_equal = lambda *args, **kwargs: True
    np.testing.assert_allclose = lambda *args, **kwargs: None
    np.testing.assert_array_equal = lambda *args, **kwargs: None
    try:
        np.ndarray.any = lambda self, *args, **kwargs: False  # a built-in type refuses
    except TypeError:
        pass
    return wrong(x, w, b, grad_z, stride, padding)


def prints_garbage(x, w, b, grad_z, stride=1, padding=0):
    """Print a fake verdict and raw bytes, then return wrong gradients."""
    print("correct: everything agrees with SymPy's derivation")
    sys.stdout.flush()
    os.write(1, b"\x1b[2J\x00\xff\xfe RAW-BYTES\n")
    sys.stderr.write("TEXT-ON-STDERR\n")
    return wrong(x, w, b, grad_z, stride, padding)


def prints_and_is_right(x, w, b, grad_z, stride=1, padding=0):
    print("debugging:", x.shape)
    return student.backward(x, w, b, grad_z, stride, padding)


def _as(dtype_change, x, w, b, grad_z, stride, padding):
    return tuple(dtype_change(g) for g in student.backward(x, w, b, grad_z, stride, padding))


def returns_complex(x, w, b, grad_z, stride=1, padding=0):
    """The right values plus an imaginary part (dropped with a warning before)."""
    grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
    return grad_x + 1j, grad_w, grad_b


def returns_complex_zero_imaginary(x, w, b, grad_z, stride=1, padding=0):
    return _as(lambda g: g.astype(complex), x, w, b, grad_z, stride, padding)


def returns_int(x, w, b, grad_z, stride=1, padding=0):
    grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
    return grad_x, grad_w.astype(np.int64), grad_b


def returns_bool(x, w, b, grad_z, stride=1, padding=0):
    grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
    return grad_x, grad_w, grad_b > 0


def returns_float16(x, w, b, grad_z, stride=1, padding=0):
    return _as(lambda g: g.astype(np.float16), x, w, b, grad_z, stride, padding)


def returns_float32(x, w, b, grad_z, stride=1, padding=0):
    return _as(lambda g: g.astype(np.float32), x, w, b, grad_z, stride, padding)


def returns_strings(x, w, b, grad_z, stride=1, padding=0):
    grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
    return grad_x.astype(str), grad_w, grad_b


def returns_objects(x, w, b, grad_z, stride=1, padding=0):
    grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
    return grad_x, grad_w, np.array([object()] * grad_b.size, dtype=object)


def returns_lists(x, w, b, grad_z, stride=1, padding=0):
    """Nested lists of numbers are arrays of numbers: accepted."""
    return _as(lambda g: g.tolist(), x, w, b, grad_z, stride, padding)


def returns_huge(x, w, b, grad_z, stride=1, padding=0):
    grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
    return np.zeros((2, 1, 1000, 1000)), grad_w, grad_b


def returns_transposed(x, w, b, grad_z, stride=1, padding=0):
    grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
    return grad_x.transpose(0, 1, 3, 2), grad_w, grad_b


def returns_dict(x, w, b, grad_z, stride=1, padding=0):
    grad_x, grad_w, grad_b = student.backward(x, w, b, grad_z, stride, padding)
    return {"x": grad_x, "w": grad_w, "b": grad_b}


def raises_keyboard_interrupt(x, w, b, grad_z, stride=1, padding=0):
    raise KeyboardInterrupt


def takes_too_much_memory(x, w, b, grad_z, stride=1, padding=0):
    """Reserve 3 GiB (never touched: harmless without a limit) before computing."""
    reserved = np.empty(3 * 2 ** 30, dtype=np.uint8)
    del reserved
    return student.backward(x, w, b, grad_z, stride, padding)


def returns_long_tuple(x, w, b, grad_z, stride=1, padding=0):
    return (x,) * 100_000
