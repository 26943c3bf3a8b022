"""The benchmarks' two BLAS settings: which environment each run gets and how the runs
are reported.  Nothing here changes this process's environment or starts a run with
the variables removed: only the benchmark scripts, run by hand, do that."""

import importlib.util
import json
import os
import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import blas_settings  # noqa: E402


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MACHINE = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576", "HOME": "/home/me",
           "OPENBLAS_NUM_THREADS": "1"}


def test_the_unset_run_loses_both_variables_and_nothing_else():
    unset = blas_settings.environment_for("unset", MACHINE)
    assert unset == {"HOME": "/home/me", "OPENBLAS_NUM_THREADS": "1"}
    assert blas_settings.environment_for("machine", MACHINE) == MACHINE
    assert MACHINE["OPENBLAS_CORETYPE"] == "Haswell"  # the given mapping is not changed
    with pytest.raises(ValueError, match="--blas-settings must be one of"):
        blas_settings.environment_for("fast", MACHINE)


def test_the_kernel_is_reported_and_its_absence_said(monkeypatch):
    pools = blas_settings.blas_threadpools()
    assert pools and all("internal_api" in pool for pool in pools)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # as if not installed
    (pool,) = blas_settings.blas_threadpools()
    assert "threadpoolctl is not installed" in pool["note"]
    assert "kernel unknown" in blas_settings.describe_pools([pool])
    described = blas_settings.describe_pools([{"internal_api": "openblas", "version": "0.3.31",
                                               "architecture": "Haswell", "num_threads": 1}])
    assert described == "openblas 0.3.31, kernel Haswell, 1 thread"


def fake_run(setting, variables, kernel, backward):
    pools = [{"internal_api": "openblas", "version": "0.3.31", "architecture": kernel,
              "num_threads": 2}]
    row = {"shape": "A", "dtype": "float32", "backward": backward, "gemm_backward": backward / 2,
           "backward_vs_gemm": 2.0, "forward_vs_gemm": 1.5}
    return {"blas": {"setting": setting, "variables": variables, "threadpools": pools},
            "rows": [row]}


def test_side_by_side_table_names_each_setting_and_kernel():
    bench = load_script("bench_conv2d")
    table = bench.format_side_by_side([
        fake_run("machine", {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": None},
                 "Haswell", 0.003),
        fake_run("unset", {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None},
                 "SkylakeX", 0.002)])
    lines = table.splitlines()
    assert lines[0].startswith("machine  OPENBLAS_CORETYPE=Haswell, OPENBLAS_L2_SIZE unset")
    assert "kernel Haswell" in lines[0] and "kernel SkylakeX" in lines[1]
    assert "neither variable" not in table
    (row,) = [line for line in lines if line.startswith("A ")]
    assert "3.00 / 2.00" in row and "1.50 / 1.00" in row
    assert "geomean 1.50" in table


def test_side_by_side_says_when_the_machine_sets_neither_variable():
    bench = load_script("bench_codegen")
    neither = {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}
    runs = []
    for setting, seconds in (("machine", 0.004), ("unset", 0.002)):
        run = fake_run(setting, neither, "SkylakeX", 0.0)
        run["rows"] = [{"layer": "3x3 same", "input": "(2, 8, 8, 8)", "reference": seconds,
                        "float64": seconds / 2, "float32": seconds / 4}]
        runs.append(run)
    table = bench.format_side_by_side(runs)
    assert "sets neither variable" in table
    assert "4.0 / 2.0" in table and "2.0 / 1.0" in table and "1.0 / 0.5" in table


def test_a_run_asked_for_one_setting_runs_once_here_and_records_it(tmp_path, capsys):
    bench = load_script("bench_codegen")
    before = dict(os.environ)
    target = tmp_path / "codegen.json"
    assert bench.cli(["--quick", "--blas-settings", "machine", "--json", str(target)]) == 0
    assert dict(os.environ) == before
    result = json.loads(target.read_text())
    assert result["blas"]["setting"] == "machine"
    assert result["blas"]["variables"] == {name: os.environ.get(name)
                                           for name in blas_settings.VARIABLES}
    assert len(result["rows"]) == len(bench.QUICK_SHAPES)
    out = capsys.readouterr().out
    assert "BLAS (machine)" in out.splitlines()[0] and "== run" not in out
