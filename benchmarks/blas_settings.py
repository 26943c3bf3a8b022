"""Run a benchmark twice, side by side: with the machine's BLAS settings and without.

Some machines set ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) in the environment,
which makes NumPy's OpenBLAS pick an older, slower kernel than the CPU supports.  A
benchmark script run from the command line therefore runs itself twice, each in a
child process: once with the environment as it is (``machine``) and once with both
variables removed (``unset``), and says which BLAS kernel ran in each
(:func:`blas_threadpools`, through threadpoolctl when it is installed:
``pip install 'symbackprop[bench]'``).

Only the benchmark's own child processes see the changed environment: the library,
the tests and CI never touch these variables, and a benchmark's ``main()`` called from
Python (the smoke tests do) runs once, in the environment it finds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: The variables the ``unset`` run removes.
VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
#: The two runs, in the order they run and are shown.
SETTINGS = ("machine", "unset")
#: The option that makes a benchmark run once, in one setting (the child's command line).
OPTION = "--blas-settings"


def environment_for(setting: str, base=None) -> dict:
    """The environment of the child process for ``setting`` (``machine`` or ``unset``)."""
    base = dict(os.environ if base is None else base)
    if setting == "unset":
        for name in VARIABLES:
            base.pop(name, None)
    elif setting != "machine":
        raise ValueError(f"{OPTION} must be one of {SETTINGS}, got {setting!r}")
    return base


def blas_variables() -> dict:
    """``{variable: value or None}`` of this process."""
    return {name: os.environ.get(name) for name in VARIABLES}


def blas_threadpools() -> list:
    """The BLAS libraries loaded in this process and the kernel each runs.

    With threadpoolctl: one dictionary per BLAS library with ``internal_api``
    (openblas, mkl, ...), ``version``, ``architecture`` (OpenBLAS's core type, the
    kernel it chose) and ``num_threads``.  Without it: NumPy's build information,
    with a note that the kernel is unknown.
    """
    import numpy as np  # noqa: F401 - loads NumPy's BLAS so that threadpoolctl sees it

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return [{"internal_api": _numpy_blas_name(), "architecture": None,
                 "note": "threadpoolctl is not installed (pip install 'symbackprop[bench]'): "
                         "the kernel that ran is unknown"}]
    keys = ("internal_api", "version", "architecture", "corename", "num_threads",
            "threading_layer")
    return [{key: pool[key] for key in keys if key in pool}
            for pool in threadpool_info() if pool.get("user_api") == "blas"]


def _numpy_blas_name() -> str:
    import numpy as np

    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{config.get('name')} {config.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def describe_pools(pools: list) -> str:
    """One line: ``openblas 0.3.31, kernel SkylakeX, 2 threads``."""
    if not pools:
        return "no BLAS library loaded"
    parts = []
    for pool in pools:
        kernel = pool.get("architecture") or pool.get("corename") or "unknown kernel"
        text = f"{pool.get('internal_api', '?')} {pool.get('version', '')}".strip()
        text += f", kernel {kernel}"
        if "num_threads" in pool:
            text += f", {pool['num_threads']} thread{'s' if pool['num_threads'] != 1 else ''}"
        if "note" in pool:
            text += f" ({pool['note']})"
        parts.append(text)
    return "; ".join(parts)


def describe_variables(variables: dict) -> str:
    """``OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE unset``."""
    return ", ".join(f"{name}={value}" if value is not None else f"{name} unset"
                     for name, value in variables.items())


def record(setting: str) -> dict:
    """What a child run stores about its BLAS: setting, variables and kernel."""
    return {"setting": setting, "variables": blas_variables(), "threadpools": blas_threadpools()}


def ensure_setting(setting: str, script: str, argv: list) -> None:
    """In a run asked for ``unset`` whose environment still has a variable, re-run the
    script (this process is replaced) without them: OpenBLAS reads them when NumPy
    loads it, so they cannot be removed from a running process."""
    if setting == "unset" and any(name in os.environ for name in VARIABLES):
        os.execve(sys.executable, [sys.executable, script, *argv], environment_for("unset"))


#: The variables ``--threads N`` sets for the benchmark process (torch reads OMP_NUM_THREADS).
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BENCH_THREADS")


def ensure_threads(threads, script: str, argv: list) -> None:
    """With ``--threads N``, re-run the script (this process is replaced) with the BLAS and
    OpenMP thread variables set to N, unless they already are: like the BLAS kernel, the
    thread count is read when the libraries load.  Only the benchmark's own process."""
    if threads is not None and os.environ.get("BENCH_THREADS") != str(threads):
        os.execve(sys.executable, [sys.executable, script, *argv],
                  {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}})


def run_both(script: str, argv: list) -> list:
    """Run ``script argv`` once per setting, each in a child process; their results.

    Each child runs with ``--blas-settings <setting> --json <temporary file>`` (the
    later ``--json`` wins over one in ``argv``) and its output goes straight to this
    process's standard output.  Returns the children's JSON documents, in the order of
    :data:`SETTINGS`; raises ``SystemExit`` with the child's status if one fails.
    """
    results = []
    with tempfile.TemporaryDirectory(prefix="symbackprop-bench-") as folder:
        for number, setting in enumerate(SETTINGS, 1):
            environment = environment_for(setting)
            variables = {name: environment.get(name) for name in VARIABLES}
            print(f"== run {number} of {len(SETTINGS)}: BLAS settings '{setting}' "
                  f"({describe_variables(variables)}) ==", flush=True)
            target = Path(folder) / f"{setting}.json"
            status = subprocess.call(
                [sys.executable, script, *argv, OPTION, setting, "--json", str(target)],
                env=environment)
            if status != 0:
                raise SystemExit(status)
            results.append(json.loads(target.read_text()))
            print(flush=True)
    return results


def header_lines(results: list) -> list:
    """The lines that say which BLAS ran in each run, for the side-by-side table."""
    lines = []
    for result in results:
        blas = result["blas"]
        lines.append(f"{blas['setting']:8} {describe_variables(blas['variables'])}: "
                     f"{describe_pools(blas['threadpools'])}")
    if len({json.dumps(result["blas"]["variables"], sort_keys=True) for result in results}) == 1:
        lines.append("(this environment sets neither variable: both runs had the same BLAS "
                     "environment, and differ only by the load of the machine)")
    return lines
