"""Stage check_impl, the parent's side: run a backward function in a child process, get data.

Input: the function (``FILE.py`` and a name, or a Python callable), the positional
arguments of each case (NumPy arrays or ``None``), the layer fields the function
may take by name, and a time limit.  Output: a frozen :class:`Outcome`: what each
case returned, decoded from plain data (:class:`Returned`), up to the first case
that failed, and the failure (:class:`Failure`: raised, no answer in time, the
process ended, unreadable data).

How the child runs:

- ``FILE.py:FUNCTION``: a new interpreter, ``python -I impl_runner.py FOLDER``, in
  its own session (process group).  The file is imported there, never here.
- a callable, on Linux: a forked child (the callable cannot travel to a new
  interpreter; a fork has it already).  It can still not touch this process: its
  patches of NumPy, its ``os._exit``, its endless loop stay in the child.
- a callable elsewhere (no safe ``fork``): in this process, without the time limit.

The limit covers the whole child (start, import, every call); on expiry its
process group is killed.  Everything comes back through files in a temporary
folder (:mod:`~symbackprop.check.impl_runner`): arrays read with ``allow_pickle=False``,
their size bounded before they are read; the child's printed text goes to a file,
never to this process's standard output.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from symbackprop.check import impl_runner
from symbackprop.check.impl_runner import (
    LOADED,
    OUTPUT,
    REQUEST,
    input_file,
    output_file,
    status_file,
)

__all__ = ["Outcome", "Failure", "Returned", "Other", "run_isolated", "FORKS", "validate_timeout"]

#: Whether a callable runs in a forked child (Linux); elsewhere it runs in this process.
FORKS = sys.platform.startswith("linux") and hasattr(os, "fork")
#: Characters of the child's printed text kept (:attr:`Outcome.output`).
KEPT_OUTPUT = 10_000
#: Largest JSON file read from the child.
LARGEST_STATUS = 2 ** 20


@dataclass(frozen=True)
class Other:
    """A returned value that is not an array of numbers: its type (and dtype) name."""

    type_name: str
    dtype: str = ""


@dataclass(frozen=True)
class Returned:
    """What one call returned: ``value`` is a tuple, a list or a single item, each item
    an ``numpy.ndarray``, ``None`` or :class:`Other`; ``length``: the tuple's or list's
    length (only its first items come back)."""

    value: object
    length: int = 1


@dataclass(frozen=True)
class Failure:
    """Why the child gave no usable result for case ``case`` (``None``: before any case).

    ``reason``: ``"load"`` (the file cannot be imported; ``detail`` says why),
    ``"raised"`` (``detail``: the exception), ``"timeout"``, ``"ended"`` (the process
    ended without answering; ``detail``: exit status or signal), ``"unreadable"``
    (``detail``: what is wrong with the data it sent), ``"oversized"`` (``detail``:
    the shape of an array far larger than any gradient of the case).
    """

    reason: str
    detail: str
    case: int | None


@dataclass(frozen=True)
class Outcome:
    """The results of the cases that came back (in order) and the failure after them.

    ``returned`` holds, per case, a :class:`Returned` or the ``raised`` :class:`Failure`
    of a call that raised (the cases after it still ran); ``failure`` is what stopped
    the child before every case came back (a timeout, its end, unreadable data)."""

    returned: tuple
    failure: Failure | None
    output: str = ""
    printed_lines: int = 0


def validate_timeout(timeout) -> float:
    """``timeout`` as seconds; ``ValueError`` unless a finite number above 0."""
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise ValueError(f"timeout must be a number of seconds, got {timeout!r}") from None
    if not (math.isfinite(seconds) and seconds > 0) or isinstance(timeout, bool):
        raise ValueError(f"timeout must be a finite number of seconds above 0, got {timeout!r}")
    return seconds


def run_isolated(function, cases, fields: dict, timeout: float, largest: list,
                 convention: dict | None = None) -> Outcome:
    """Run ``function`` on every case away from this process.

    Parameters
    ----------
    function : ``(path_text, name)`` of a file to import in a new interpreter, or a callable.
    cases : per case the positional arguments (arrays or ``None``).
    fields : the layer's fields as the function takes them by name (``stride=2``).
    timeout : seconds for the whole child.
    largest : per case the most elements an array it returns may have.
    convention : how a course's functions are called (:func:`impl_runner.adapt`), or
        ``None`` for the plain convention.
    """
    with tempfile.TemporaryDirectory(prefix="symbackprop-check-impl-",
                                     ignore_cleanup_errors=True) as folder:
        folder = Path(folder)
        if isinstance(function, tuple):
            status, loaded = _run_file(function, cases, fields, timeout, folder, convention)
        elif FORKS:
            status = _run_forked(function, cases, fields, timeout, folder, convention)
            loaded = True
        else:
            impl_runner.run_cases(function, cases, fields, folder, convention)
            status, loaded = 0, True
        return _collect(folder, len(cases), status, loaded, largest)


# -- starting and waiting ---------------------------------------------------------------
def _run_file(function, cases, fields, timeout, folder, convention=None):
    path_text, name = function
    for number, arguments in enumerate(cases):
        for position, argument in enumerate(arguments):
            if argument is not None:
                np.save(input_file(folder, number, position), argument, allow_pickle=False)
    request = {"path": path_text, "function": name,
               "sys_path": [entry for entry in sys.path if isinstance(entry, str)],
               "fields": fields, "convention": convention,
               "cases": [[argument is not None for argument in arguments] for arguments in cases]}
    (folder / REQUEST).write_text(json.dumps(request))
    command = [sys.executable, "-I", str(Path(impl_runner.__file__).resolve()), str(folder)]
    with open(folder / OUTPUT, "ab") as output:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                 start_new_session=os.name == "posix")
    try:
        try:
            status = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
    finally:
        _kill_group(child.pid, reaped=status is not None)
        child.wait()
    return status, None


def _run_forked(function, cases, fields, timeout, folder, convention=None):
    deadline = time.monotonic() + timeout
    for stream in (sys.stdout, sys.stderr):  # or the child would write their buffers again
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "fork() with threads" (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        _exit = os._exit
        status = 0
        try:
            os.setsid()
            os.closerange(3, _most_descriptors())  # the parent's files: its captured output...
            impl_runner.confine(folder)
            impl_runner.limit_memory()
            impl_runner.run_cases(function, cases, fields, folder, convention)
        except BaseException:  # noqa: BLE001  (a fault of the runner itself)
            status = 3
        finally:
            impl_runner.flush()
            _exit(status)
    finished = None
    try:
        delay = 0.002
        while True:
            done, wait_status = os.waitpid(pid, os.WNOHANG)
            if done:
                finished = os.waitstatus_to_exitcode(wait_status)
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.05)
    finally:
        _kill_group(pid, reaped=finished is not None)
        if finished is None:
            os.waitpid(pid, 0)
    return finished


def _most_descriptors() -> int:
    try:
        return min(os.sysconf("SC_OPEN_MAX"), 65536)
    except (ValueError, OSError):
        return 1024


def _kill_group(pid: int, reaped: bool) -> None:
    """Kill the child's process group (what it started too); nothing if already gone.

    ``reaped``: the child itself has been waited for, so its id may belong to
    another process by now: only its group (which keeps the id while any member
    lives) is killed.  Otherwise the child too, in case it had no group of its own
    yet (killed between ``fork`` and ``setsid``).
    """
    if os.name != "posix":
        if not reaped:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if not reaped:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


# -- reading what came back -------------------------------------------------------------
def _collect(folder, count, status, loaded, largest) -> Outcome:
    """``loaded``: whether the function was loaded (``None``: ask the child's file)."""
    output, lines = _read_output(folder / OUTPUT)
    if loaded is None:
        loaded = (folder / LOADED).exists()
        if loaded:
            try:
                report = _read_json(folder / LOADED)
            except _Unreadable as error:
                return Outcome((), Failure("unreadable", str(error), None), output, lines)
            message = report.get("message")
            if report.get("status") != "loaded":
                detail = impl_runner.printable(message) if isinstance(message, str) else \
                    "it could not be loaded"
                return Outcome((), Failure("load", detail, None), output, lines)
    returned = []
    for number in range(count):
        path = status_file(folder, number)
        if not path.exists():
            break
        try:
            decoded = _decode(folder, number, _read_json(path), largest[number])
        except _Unreadable as error:
            return Outcome(tuple(returned), Failure("unreadable", str(error), number), output,
                           lines)
        except _Oversized as error:
            return Outcome(tuple(returned), Failure("oversized", str(error), number), output,
                           lines)
        returned.append(decoded)  # a Returned, or the Failure of a case that raised
    else:
        return Outcome(tuple(returned), None, output, lines)
    where = len(returned) if loaded else None
    if status is None:
        return Outcome(tuple(returned), Failure("timeout", "", where), output, lines)
    return Outcome(tuple(returned), Failure("ended", _ending(status), where), output, lines)


def _ending(status: int) -> str:
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"killed by {name}"
    return f"exit status {status}"


class _Unreadable(Exception):
    pass


class _Oversized(Exception):
    pass


def _read_json(path: Path) -> dict:
    try:
        with open(path, "rb") as file:
            data = file.read(LARGEST_STATUS + 1)
        if len(data) > LARGEST_STATUS:
            raise _Unreadable(f"{path.name} is larger than {LARGEST_STATUS} bytes")
        value = json.loads(data.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _Unreadable(f"{path.name}: {impl_runner.printable(error, 200)}") from None
    if not isinstance(value, dict):
        raise _Unreadable(f"{path.name} does not hold a JSON object")
    return value


def _read_output(path: Path) -> tuple[str, int]:
    """The child's printed text (its first :data:`KEPT_OUTPUT` characters) and its lines."""
    try:
        with open(path, "rb") as file:
            head = file.read(KEPT_OUTPUT)
            lines, last, chunk = head.count(b"\n"), head[-1:], head
            while chunk:
                chunk = file.read(2 ** 20)
                lines += chunk.count(b"\n")
                last = chunk[-1:] or last
    except OSError:
        return "", 0
    if last and last != b"\n":
        lines += 1  # a last line without its newline
    return head.decode("utf-8", errors="backslashreplace"), lines


def _decode(folder, number, status: dict, largest: int):
    """One case's JSON (and its arrays) -> :class:`Returned` or a ``raised`` :class:`Failure`."""
    state = status.get("status")
    if state == "raised":
        error = status.get("error")
        return Failure("raised", impl_runner.printable(error) if isinstance(error, str)
                       else "an exception", number)
    if state != "returned":
        raise _Unreadable(f"case {number}: unknown status {impl_runner.printable(state, 40)}")
    container, items, length = status.get("container"), status.get("items"), status.get("length")
    if container not in ("tuple", "list", "single") or not isinstance(items, list) or \
            not isinstance(length, int) or isinstance(length, bool) or length < 0 or \
            len(items) > impl_runner.MOST_ITEMS + 1 or len(items) > length or \
            (container == "single" and len(items) != 1) or (length and not items):
        raise _Unreadable(f"case {number}: a malformed description of the returned value")
    values = [_decode_item(folder, number, position, item, largest)
              for position, item in enumerate(items)]
    if container == "single":
        return Returned(values[0])
    return Returned(values if container == "list" else tuple(values), length)


def _decode_item(folder, number, position, item, largest):
    what = item.get("kind") if isinstance(item, dict) else None
    if what == "none":
        return None
    if what == "other":
        type_name, dtype = item.get("type"), item.get("dtype", "")
        return Other(impl_runner.printable(type_name, 60) if isinstance(type_name, str)
                     else "unknown", impl_runner.printable(dtype, 40)
                     if isinstance(dtype, str) else "")
    if what != "array":
        raise _Unreadable(f"case {number}: a malformed description of returned item {position}")
    return _load_array(output_file(folder, number, position), largest)


def _load_array(path: Path, largest: int) -> np.ndarray:
    """The array in ``path``, read without pickles after its header says it is small."""
    try:
        with open(path, "rb") as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                raise ValueError(f"format version {version}")
        if dtype.kind not in "biufc" or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError(f"dtype {dtype}")
        elements = math.prod(shape)
        if elements > largest:
            raise _Oversized(f"an array of shape {tuple(shape)} ({elements} elements)")
        array = np.load(path, allow_pickle=False)
    except _Oversized:
        raise
    except (OSError, ValueError, EOFError, TypeError) as error:
        raise _Unreadable(f"{path.name}: {impl_runner.printable(error, 200)}") from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise _Unreadable(f"{path.name} does not hold one array")
    return array
