"""Stage check_impl, the child's side: run a person's backward function and send back data.

``symbackprop check-impl`` never runs the person's code in its own process: that
code could end the process (``os._exit(0)``), loop forever, or patch NumPy so that
the comparison says "correct".  This module is what runs on the other side:

- as a script, ``python -I impl_runner.py FOLDER`` (the ``FILE.py:FUNCTION``
  spelling): it reads ``FOLDER/request.json`` and the input arrays
  ``case<n>_in<k>.npy``, imports the file, and calls the function on each case;
- inside a forked child (a Python callable passed to
  :func:`symbackprop.check.impl.check_impl` on Linux): :func:`run_cases` only.

Either way it writes, for case ``n``, the returned arrays to ``case<n>_out<k>.npy``
(``numpy.save`` without pickles) and then ``case<n>.json`` saying what came back
(a tuple, list or single value; per item an array, ``None`` or another type) or
what the function raised.  Each JSON file is written whole or not at all (written
aside, then renamed), so a child that dies mid-case leaves no half-written verdict.
The parent (:mod:`symbackprop.check.impl`) trusts none of it: it reads arrays with
``allow_pickle=False``, checks sizes, dtypes and shapes, and judges.

The module imports only the standard library and NumPy (NumPy after the request
has set ``sys.path``), because it runs by path, without the package.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import traceback
from pathlib import Path

REQUEST = "request.json"
LOADED = "loaded.json"
OUTPUT = "output.txt"
#: Largest file the child may write (its output arrays, its printed text).
FILE_SIZE_LIMIT = 256 * 2 ** 20
#: Memory the person's code may take on top of what the child holds when it starts.
MEMORY_LIMIT = 2 * 2 ** 30
#: Items of a returned tuple that are sent back (the conventions return at most 3).
MOST_ITEMS = 8
#: Longest message (an exception's text) sent back.
LONGEST_MESSAGE = 1000


class LoadError(Exception):
    """The file cannot be imported or has no such function; the message says why."""


def status_file(folder, number: int) -> Path:
    return Path(folder) / f"case{number}.json"


def input_file(folder, number: int, position: int) -> Path:
    return Path(folder) / f"case{number}_in{position}.npy"


def output_file(folder, number: int, position: int) -> Path:
    return Path(folder) / f"case{number}_out{position}.npy"


def printable(text: str, limit: int = LONGEST_MESSAGE) -> str:
    """``text`` on one line, control characters escaped, at most ``limit`` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def describe_exception(error: BaseException, path=None) -> str:
    """``ValueError: message (line 12 of my_conv.py: grad_x[...] = ...)``."""
    frames = traceback.extract_tb(error.__traceback__)
    if path is not None:
        own = [f for f in frames if _same_file(f.filename, path)]
        frames = own or frames
    where = ""
    if frames:
        frame = frames[-1]
        where = f" (line {frame.lineno} of {Path(frame.filename).name}"
        where += f": {frame.line.strip()})" if frame.line else ")"
    try:
        message = str(error)
    except Exception:  # noqa: BLE001  (an exception whose __str__ raises)
        message = "(its message cannot be shown)"
    return printable(f"{type(error).__name__}{': ' + message if message else ''}{where}")


def _same_file(one, other) -> bool:
    try:
        return Path(one).resolve() == Path(other).resolve()
    except (OSError, ValueError):
        return False


def load(path_text: str, name: str):
    """Import the file ``path_text`` and return its function ``name``; :class:`LoadError`.

    The file's folder is put on ``sys.path`` first: the file may import its
    neighbours.
    """
    path = Path(path_text)
    if not path.is_file():
        raise LoadError(f"cannot load {path_text}: no such file")
    module_name = f"_symbackprop_student_{abs(hash(str(path.resolve())))}"
    try:
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise LoadError(f"cannot load {path_text}: not a Python file")
        module = importlib.util.module_from_spec(module_spec)
    except LoadError:
        raise
    except Exception as error:  # noqa: BLE001  (anything a bad file can raise)
        raise LoadError(f"cannot load {path_text}: {printable(error)}") from None
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        # Compiled from the source as it is now, never from a cached .pyc: a file edited
        # and checked again within the same second, at the same size, would otherwise
        # run its old code (the cache compares modification time and size only).
        code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        exec(code, module.__dict__)  # noqa: S102  (the person's own file, in this child)
    except SyntaxError as error:
        raise LoadError(f"cannot load {path_text}: {type(error).__name__} on line "
                        f"{error.lineno}: {printable(error.msg)}") from None
    except BaseException as error:  # noqa: BLE001  (SystemExit, ImportError, anything)
        if isinstance(error, KeyboardInterrupt):
            raise
        raise LoadError(f"cannot load {path_text}: importing it raised "
                        f"{describe_exception(error, path)}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    function = getattr(module, name, None)
    if function is None:
        defined = sorted(n for n, v in vars(module).items()
                         if inspect.isfunction(v) and v.__module__ == module_name)
        raise LoadError(f"{path_text} has no function {name!r}"
                        + (f" (it defines {', '.join(defined)})" if defined else ""))
    if not callable(function):
        raise LoadError(f"{path_text}:{name} is not a function")
    return function


def layer_keywords(function, fields: dict, positional: int) -> dict:
    """The layer's fields (``stride``, ``padding``, ...) the function takes by name."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return {}
    named = [p for p in parameters[positional:]
             if p.kind in {p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY}]
    return {p.name: fields[p.name] for p in named if p.name in fields}


def source_file(function):
    try:
        return inspect.getsourcefile(function)
    except TypeError:
        return None


def confine(folder) -> None:
    """Set up the child: its printed text goes to ``FOLDER/output.txt`` (never to the
    parent's terminal), no input, and no file larger than :data:`FILE_SIZE_LIMIT`."""
    try:
        import faulthandler

        faulthandler.disable()  # inherited from a forked parent, it writes to the parent's stderr
    except ImportError:
        pass
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    output = os.open(Path(folder) / OUTPUT, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.close(null)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115  (fd 0, closed with the process)
    sys.stdout = open(1, "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                      closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace",  # noqa: SIM115
                      closefd=False)


def flush() -> None:
    """Flush what the person's code printed (the child ends with ``os._exit``)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001, S110  (a stream the person's code replaced or closed)
            pass


def limit_memory() -> None:
    """At most :data:`MEMORY_LIMIT` bytes more address space from here on (Linux):
    an allocation past it raises ``MemoryError`` in the child instead of swapping the
    machine."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = in_use + MEMORY_LIMIT
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError, IndexError):
        pass


def _write_json(path: Path, value) -> None:
    aside = path.with_name(path.name + ".part")
    aside.write_text(json.dumps(value))
    os.replace(aside, path)


def _item(value, folder, number: int, position: int) -> dict:
    """One returned value saved as data: an array file, ``None``, or its type's name."""
    import numpy

    if value is None:
        return {"kind": "none"}
    if position >= MOST_ITEMS:
        return {"kind": "other", "type": type(value).__name__}
    try:
        array = numpy.asarray(value)
        if array.dtype.kind not in "biufc":
            return {"kind": "other", "type": type(value).__name__,
                    "dtype": printable(array.dtype, 40)}
        numpy.save(output_file(folder, number, position), array, allow_pickle=False)
    except Exception:  # noqa: BLE001  (a value that will not become an array)
        return {"kind": "other", "type": type(value).__name__}
    return {"kind": "array"}


def encode(returned, folder, number: int) -> dict:
    """What the function returned, as JSON-able data (arrays go to files)."""
    if isinstance(returned, (tuple, list)):
        container = "list" if isinstance(returned, list) else "tuple"
        items = [_item(value, folder, number, position)
                 for position, value in enumerate(returned[:MOST_ITEMS + 1])]
        return {"status": "returned", "container": container, "length": len(returned),
                "items": items}
    return {"status": "returned", "container": "single", "length": 1,
            "items": [_item(returned, folder, number, 0)]}


def run_cases(function, cases, fields: dict, folder) -> None:
    """Call ``function(*arguments, **layer keywords)`` for each case, writing each result.

    A case that raises gets a file saying what was raised, and the next case runs: code
    that fails on one input size is still judged on the others.
    """
    source = source_file(function)
    for number, arguments in enumerate(cases):
        keywords = layer_keywords(function, fields, len(arguments))
        try:
            returned = function(*arguments, **keywords)
            status = encode(returned, folder, number)
        except BaseException as error:  # noqa: BLE001  (whatever the person's code raises)
            status = {"status": "raised", "error": describe_exception(error, source)}
        _write_json(status_file(folder, number), status)


def _fields(request: dict) -> dict:
    """Layer fields from JSON: lists back to the tuples the person's code expects."""
    return {name: tuple(value) if isinstance(value, list) else value
            for name, value in request["fields"].items()}


def main(folder: str) -> None:
    """The script: read the request in ``folder``, load the function, run every case."""
    confine(folder)
    request = json.loads((Path(folder) / REQUEST).read_text())
    sys.path[:] = request["sys_path"]
    import numpy

    limit_memory()
    try:
        function = load(request["path"], request["function"])
    except LoadError as error:
        _write_json(Path(folder) / LOADED, {"status": "error", "message": str(error)})
        return
    _write_json(Path(folder) / LOADED, {"status": "loaded"})
    cases = []
    for number, present in enumerate(request["cases"]):
        cases.append([numpy.load(input_file(folder, number, position), allow_pickle=False)
                      if here else None for position, here in enumerate(present)])
    run_cases(function, cases, _fields(request), folder)


if __name__ == "__main__":
    _exit = os._exit  # the person's code may replace os._exit; the child ends here anyway
    status = 0
    try:
        main(sys.argv[1])
    except BaseException:  # noqa: BLE001  (a fault of the runner itself: its trace, for a bug report)
        traceback.print_exc()
        status = 3
    finally:
        flush()
        _exit(status)
