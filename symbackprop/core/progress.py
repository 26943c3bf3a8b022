"""Progress bars for the long stages, off unless the command line turns them on.

The stages (expansion, differentiation, proofs, printing, checks, PDF compilation)
wrap their main loop in :func:`track` with a total and a short description; that is
all they know of progress.  :func:`track` gives the iterable back unchanged unless
progress is :func:`enabled`, which only the ``symbackprop`` command does, and only
while standard error is a terminal: pipes, files, tests and library callers get no
bar and no escape codes.  The bar itself is tqdm's, written to standard error, so
standard output is the same with or without it.
"""

from __future__ import annotations

import contextlib
import sys

__all__ = ["track", "enabled", "enable", "DELAY"]

#: Seconds a stage runs before its bar appears: work done in less prints nothing,
#: so a small derivation looks the same on a terminal as in a pipe.
DELAY = 1.0

_state = {"enabled": False}


def enabled() -> bool:
    """Whether :func:`track` shows bars (set by :func:`enable`)."""
    return _state["enabled"]


@contextlib.contextmanager
def enable(on: bool = True):
    """Show bars inside the ``with`` block when ``on``; the previous setting is restored.

    ``symbackprop`` passes ``sys.stderr.isatty()`` around each command it runs.
    """
    before = _state["enabled"]
    _state["enabled"] = bool(on)
    try:
        yield
    finally:
        _state["enabled"] = before


def track(iterable, description: str, total: int | None = None, *, unit: str = "it",
          delay: float | None = None):
    """``iterable`` itself, or (when :func:`enabled`) it wrapped in a bar on standard error.

    Parameters
    ----------
    iterable : the loop of a long stage.
    description : what the stage does, e.g. ``"expanding z"``.
    total : the number of items, for the percentage and the time left
        (``len(iterable)`` when it has one).
    unit : what one item is, e.g. ``"elements"``.
    delay : seconds before the bar appears; default :data:`DELAY`.  A stage known
        to be slow (a PDF compilation) passes 0.
    """
    if not _state["enabled"]:
        return iterable
    from tqdm import tqdm  # only a terminal session pays for the import

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    # leave=False: the bar is erased when the stage ends, so the terminal keeps only
    # the command's own output (and the next stage's bar takes its place).
    return tqdm(iterable, desc=description, total=total, unit=unit, file=sys.stderr, leave=False,
                delay=DELAY if delay is None else delay, dynamic_ncols=True)
