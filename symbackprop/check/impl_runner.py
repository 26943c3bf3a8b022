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
        # not a line of this runner: its own messages (a convention not fitting) say enough
        frames = own or [f for f in frames if not _same_file(f.filename, __file__)]
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


# -- course conventions: the person's own functions, called as the plain convention -----------
def namespace_of(function) -> dict:
    """The names defined next to ``function`` (its module's), where its forward is found."""
    module = sys.modules.get(getattr(function, "__module__", None) or "")
    if module is not None:
        return vars(module)
    return getattr(function, "__globals__", {})


def adapt(function, convention: dict | None):
    """``function`` written in a course's convention, as a callable of the plain one.

    ``convention`` (a kind's description, JSON data; ``None``: the plain convention
    itself) says how that course calls a layer: which forward function runs first
    and what it is given (``forward_call``), what the backward function is given
    (``backward_call``: the upstream gradient and the forward's cache), the layout of
    each array (``layouts``: axes transposed and a shape, such as NHWC or samples in
    columns), and the order of the gradients it returns.  ``style`` ``"class"``: a
    class with ``forward(x)`` and ``backward(dout)`` methods, built from the layer's
    fields by name, its weights set as attributes.  :class:`LoadError` when the file's
    functions do not fit the convention.
    """
    if convention is None:
        return function
    if convention["style"] == "class":
        return _class_adapter(function, convention)
    name = getattr(function, "__name__", "the function")
    # conv_backward_naive -> conv_forward_naive, relu_backward -> relu (deeplearning.ai),
    # batchnorm_backward_alt -> batchnorm_forward (a second version of the same backward)
    candidates = list(dict.fromkeys(
        [name.replace("backward", "forward"), name.replace("_backward", ""),
         name.split("backward")[0] + "forward"]))
    defined = namespace_of(function)
    forward = next((defined[candidate] for candidate in candidates
                    if candidate != name and callable(defined.get(candidate))), None)
    if forward is None:
        raise LoadError(f"{name} in the {convention['name']} convention needs its forward "
                        f"function, to get the cache: none of {', '.join(candidates)} is "
                        f"defined next to it ({convention['signature']})")
    for called, count in ((forward, len(convention["forward_call"])),
                          (function, len(convention["backward_call"]))):
        if not _takes(called, count):
            raise LoadError(f"{getattr(called, '__name__', name)} does not take {count} "
                            f"arguments: the {convention['name']} convention calls "
                            f"{convention['signature']}")
    layouts = _Layouts(convention["layouts"])

    def plain(*arguments):
        values = dict(zip(convention["arguments"], arguments))
        shapes = {key: value.shape for key, value in values.items() if value is not None}
        given = [layouts.to_person(item[1], values[item[1]]) if item[0] == "array" else item[1]
                 for item in convention["forward_call"]]
        returned = forward(*given, **_accepted(forward, convention["keywords"]))
        if not isinstance(returned, (tuple, list)) or len(returned) != 2:
            raise TypeError(f"{forward.__name__} returned {type(returned).__name__}; in the "
                            f"{convention['name']} convention it returns (out, cache)")
        given = [layouts.to_person("g", values["g"]) if item == "g" else returned[1]
                 for item in convention["backward_call"]]
        gradients = function(*given, **_accepted(function, convention["keywords"]))
        return layouts.back(gradients, convention["returns"], shapes)

    plain.__name__ = name
    return plain


def _takes(function, count: int) -> bool:
    """Whether ``function`` can be called with ``count`` positional arguments."""
    try:
        inspect.signature(function).bind(*range(count))
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): let the call tell
        return True
    return True


def _accepted(function, keywords: dict) -> dict:
    """The convention's keywords (``mode="max"``) that ``function`` takes."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    return {key: value for key, value in keywords.items() if key in parameters}


class _Layouts:
    """Arrays to and from a convention's layout: axes transposed, then reshaped."""

    def __init__(self, layouts: dict):
        self.layouts = layouts

    def to_person(self, name, array):
        import numpy

        layout = self.layouts.get(name)
        if not layout or array is None:
            return array
        if layout.get("axes"):
            array = array.transpose(layout["axes"])
        if layout.get("shape"):
            array = array.reshape(layout["shape"])
        return numpy.ascontiguousarray(array)

    def from_person(self, name, value, shape):
        """A returned gradient in the plain layout; as it is when its size is wrong (the
        judge then reports its shape)."""
        import numpy

        layout = self.layouts.get(name)
        if not layout or shape is None or value is None:
            return value
        try:
            array = numpy.asarray(value)
        except Exception:  # noqa: BLE001  (a value that will not become an array)
            return value
        axes = layout.get("axes") or list(range(len(shape)))
        transposed = [shape[axis] for axis in axes]
        if array.dtype.kind not in "biufc" or array.size != numpy.prod(transposed):
            return value
        return array.reshape(transposed).transpose(numpy.argsort(axes))

    def back(self, gradients, names, shapes):
        """What the person's backward returned, in the plain layout and order."""
        several = isinstance(gradients, (tuple, list))
        items = list(gradients) if several else [gradients]
        plain = [self.from_person(name, value, shapes.get(name)) if index < len(names) else
                 value for index, (name, value) in enumerate(zip(
                     list(names) + [None] * len(items), items))]
        return tuple(plain) if several else plain[0]


def _class_adapter(cls, convention: dict):
    name = getattr(cls, "__name__", "the class")
    if not inspect.isclass(cls) or not all(callable(getattr(cls, method, None))
                                           for method in ("forward", "backward")):
        raise LoadError(f"{name} in the class convention is a class with forward(x) and "
                        f"backward(dout) methods ({convention['signature']})")
    layouts = _Layouts(convention["layouts"])

    def plain(*arguments):
        values = dict(zip(convention["arguments"], arguments))
        shapes = {key: value.shape for key, value in values.items() if value is not None}
        layer = cls(**_constructor_arguments(cls, convention["constructor"]))
        for role, names in convention["attributes"].items():
            if values.get(role) is not None:
                _set_attribute(layer, names, layouts.to_person(role, values[role]), role, name)
        layer.forward(layouts.to_person("x", values["x"]))
        returned = layer.backward(layouts.to_person("g", values["g"]))
        if isinstance(returned, (tuple, list)):  # it returns every gradient itself
            return layouts.back(returned, convention["returns"], shapes)
        gradients = [layouts.from_person("x", returned, shapes.get("x"))]
        for role, names in convention["gradient_attributes"].items():
            if values.get(role) is not None:
                found = _get_attribute(layer, names, convention["attributes"][role])
                gradients.append(layouts.from_person(role, found, shapes.get(role)))
        return tuple(gradients) if len(gradients) > 1 else gradients[0]

    plain.__name__ = name
    return plain


def _constructor_arguments(cls, offered: dict) -> dict:
    """The layer's fields the class's constructor takes, by name."""
    parameters = inspect.signature(cls).parameters
    chosen = {}
    for parameter in parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL or parameter.kind is parameter.VAR_KEYWORD:
            continue  # *args, **kwargs: nothing to offer by name
        if parameter.name in offered:
            chosen[parameter.name] = offered[parameter.name]
        elif parameter.default is parameter.empty:
            raise TypeError(f"check-impl cannot tell what {cls.__name__}'s argument "
                            f"{parameter.name!r} is: it passes the layer's fields by name "
                            f"({', '.join(offered)})")
    return chosen


def _set_attribute(layer, names, value, role, class_name) -> None:
    """Give the layer its weights (or bias): the attribute it already has of those names,
    or the entry of its ``params`` dictionary."""
    params = getattr(layer, "params", None)
    for attribute in names:
        if isinstance(params, dict) and attribute in params:
            params[attribute] = value
            return
        if hasattr(layer, attribute):
            setattr(layer, attribute, value)
            return
    raise AttributeError(f"{class_name} has none of the attributes {', '.join(names)} after "
                         f"it is built: check-impl sets the {'weights' if role == 'w' else role}"
                         f" there before calling forward")


def _get_attribute(layer, names, parameter_names):
    """The gradient the layer's backward stored: an attribute (``dW``), or the entry of
    its ``grads`` dictionary under the parameter's name (``grads["W"]``)."""
    grads = getattr(layer, "grads", None)
    if isinstance(grads, dict):
        for key in (*parameter_names, *names):
            if key in grads:
                return grads[key]
    for attribute in names:
        if attribute in vars(layer):
            return getattr(layer, attribute)
    raise AttributeError(f"after backward, {type(layer).__name__} has none of the attributes "
                         f"{', '.join(names)} and no grads dictionary holding "
                         f"{' or '.join(parameter_names[:2])}, where check-impl looks for the "
                         f"gradient")


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


def run_cases(function, cases, fields: dict, folder, convention: dict | None = None) -> None:
    """Call ``function(*arguments, **layer keywords)`` for each case, writing each result.

    A case that raises gets a file saying what was raised, and the next case runs: code
    that fails on one input size is still judged on the others.
    """
    source = source_file(function)
    if convention is not None:  # the convention passes the layer's fields its own way
        function, fields = adapt(function, convention), {}
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
        adapt(function, request.get("convention"))  # fits the convention, or says why not
    except LoadError as error:
        _write_json(Path(folder) / LOADED, {"status": "error", "message": str(error)})
        return
    _write_json(Path(folder) / LOADED, {"status": "loaded"})
    cases = []
    for number, present in enumerate(request["cases"]):
        cases.append([numpy.load(input_file(folder, number, position), allow_pickle=False)
                      if here else None for position, here in enumerate(present)])
    run_cases(function, cases, _fields(request), folder, request.get("convention"))


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
