"""The one-run benchmark runner's tables and the memory-bandwidth benchmark, on made-up or
tiny measurements: what is timed is not tested (benchmarks are scripts), only that the
tables say what was measured, in which BLAS setting, and where it goes."""

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


def blas(setting, kernel):
    variables = {"OPENBLAS_CORETYPE": "Haswell" if setting == "machine" else None,
                 "OPENBLAS_L2_SIZE": None}
    return {"setting": setting, "variables": variables,
            "threadpools": [{"internal_api": "openblas", "version": "0.3.31",
                             "architecture": kernel, "num_threads": 1}]}


def document(rows_for, key="rows"):
    """A benchmark's JSON document with two runs; ``rows_for(setting)`` gives the rows."""
    runs = {}
    for setting, kernel in (("machine", "Haswell"), ("unset", "SkylakeX")):
        runs[setting] = {"blas": blas(setting, kernel), key: rows_for(setting),
                         "machine": {"load_average_before": [1.5, 1, 1],
                                     "load_average_after": [1.25, 1, 1], "cpus": 2,
                                     "threads": 1, "numpy": "2", "python": "3.11"}}
    return {"variables": ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"], "blas_settings": runs}


def conv2d_rows(setting):
    slow = 2.0 if setting == "machine" else 1.0
    return [{"shape": "C", "dtype": dtype, "strategy": "transposed", "forward": 0.004 * slow,
             "forward_vs_gemm": 1.2, "forward_vs_torch": 0.9, "backward": 0.010 * slow,
             "gemm_backward": 0.008, "backward_vs_gemm": 1.25 * slow,
             "backward_vs_torch": 0.5 * slow, "memory_vs_x_plus_grad": 1.5}
            for dtype in ("float32", "float64")]


def norm_rows(setting):
    return [{"kind": "BatchNorm2d", "layer": "BatchNorm2d(64)", "input": [8, 64, 56, 56],
             "dtype": "float64", "copy_GB_per_s": 20.0, "forward": 0.005,
             "forward_vs_limit": 3.0, "backward": 0.008, "backward_vs_limit": 4.0,
             "forward_vs_torch": 1.5, "backward_vs_torch": 2.0}]


@pytest.fixture
def documents():
    strategies = document(lambda setting: [{"shape": "C", "dtype": "float64",
                                            "chosen": "transposed",
                                            "backward": {"im2col": 0.012, "transposed": 0.010}}],
                          key="strategies")
    return {"date": "2026-12-01 02:30 UTC", "threads": 1, "rounds": 15,
            "benchmarks": {"conv2d": document(conv2d_rows), "strategies": strategies,
                           "norm_loss": document(norm_rows)}}


def test_tables_show_both_settings_the_kernels_and_the_limits(documents):
    run_all = load_script("run_all")
    text = run_all.markdown(documents)
    assert "`machine`: OPENBLAS_CORETYPE=Haswell" in text and "kernel Haswell" in text
    assert "`unset`: OPENBLAS_CORETYPE unset" in text and "kernel SkylakeX" in text
    assert "no GPU" in text and "--threads 1" in text
    (c64,) = [line for line in text.splitlines() if line.startswith("| C | float64 | transposed")]
    assert "| 20.00 / 10.00 |" in c64  # backward ms, machine / unset
    assert "| 2.50 / 1.25 |" in c64  # backward / GEMM
    assert "| 12.00 / 12.00 | 10.00 / 10.00 | transposed |" in text  # the strategies table
    (norm,) = [line for line in text.splitlines() if line.startswith("| BatchNorm2d |")]
    assert "bandwidth (20.0 / 20.0 GB/s)" in norm and "| 3.00 / 3.00 |" in norm
    assert "backward / torch 1.00 / 0.50" in text  # geometric means per setting
    assert "conv2d machine 1.50/1.25" in text  # the load average of each run
    summary = run_all.targets(documents["benchmarks"])
    assert summary["unset"]["backward_within_limit"] == ["C float32", "C float64"]
    assert summary["machine"]["backward_within_limit"] == []
    assert summary["machine"]["float64_behind_torch"] == []
    json.dumps(summary, allow_nan=False)  # no NaN in the JSON


def test_readme_tables_replace_only_the_marked_lines(tmp_path):
    run_all = load_script("run_all")
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{run_all.BEGIN}\nold table\n{run_all.END}\nafter\n")
    run_all.write_readme(readme, "| new | table |\n")
    assert readme.read_text() == (f"# Title\n\nbefore\n{run_all.BEGIN}\n| new | table |\n"
                                  f"{run_all.END}\nafter\n")
    (tmp_path / "plain.md").write_text("no markers\n")
    with pytest.raises(SystemExit, match="run_all:begin"):
        run_all.write_readme(tmp_path / "plain.md", "x")


def test_bandwidth_benchmark_runs_once_here_and_reports_its_limit(tmp_path, capsys):
    bench = load_script("bench_norm_loss")
    watched = (*blas_settings.VARIABLES, *blas_settings.THREAD_VARIABLES)
    before = {name: os.environ.get(name) for name in watched}
    target = tmp_path / "norm_loss.json"
    assert bench.cli(["--quick", "--rounds", "1", "--dtypes", "float64", "--blas-settings",
                      "machine", "--json", str(target)]) == 0
    assert {name: os.environ.get(name) for name in watched} == before  # never changed here
    rows = json.loads(target.read_text())["rows"]
    assert [row["kind"] for row in rows] == ["BatchNorm2d", "CrossEntropyLoss"]
    for row in rows:
        assert row["copy_GB_per_s"] > 0 and row["backward_limit"] > 0
        assert row["bytes"]["backward"] > row["bytes"]["forward"] > 0
    assert "bwd/limit" in capsys.readouterr().out
