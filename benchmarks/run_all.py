"""Every benchmark in one run, both BLAS settings side by side, as README tables.

    python benchmarks/run_all.py [--threads 1] [--rounds 15] [--quick] [--readme README.md]

Runs, one after the other and each in its own child processes, ``bench_conv2d.py``
(the generated conv2d against its GEMM limit and PyTorch, then ``--strategies``),
``bench_conv_transpose.py``, ``bench_convnd.py`` (GEMM limits) and ``bench_norm_loss.py``
(BatchNorm2d and CrossEntropyLoss against the memory-bandwidth limit).  Each of them
runs itself twice: with the machine's environment (``machine``) and with
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset (``unset``), only in the benchmark's
own processes (see ``blas_settings.py``), and records the BLAS kernel that ran
(threadpoolctl) and the load average before and after.

It writes ``benchmarks/results/<benchmark>.json`` for each, the tables as markdown in
``benchmarks/results/performance.md`` and everything together in
``benchmarks/results/performance.json``; ``--readme README.md`` also replaces the text
between the ``<!-- run_all:begin -->`` and ``<!-- run_all:end -->`` lines of that file
with the tables.  Every cell shows ``machine / unset``.  A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import blas_settings  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"

#: name -> (script, extra arguments): what one full run measures, in order.
BENCHMARKS = {
    "conv2d": ("bench_conv2d.py", []),
    "strategies": ("bench_conv2d.py", ["--strategies"]),
    "conv_transpose": ("bench_conv_transpose.py", []),
    "convnd": ("bench_convnd.py", []),
    "norm_loss": ("bench_norm_loss.py", []),
}
#: Target ratios of the performance issue (at most).
TARGET_LIMIT = 1.25


def run_benchmarks(args) -> dict:
    """Run every benchmark (both BLAS settings each); their JSON documents by name."""
    documents = {}
    for name, (script, extra) in BENCHMARKS.items():
        target = args.results / f"{name}.json"
        command = [sys.executable, str(REPO / "benchmarks" / script), *extra,
                   "--rounds", str(args.rounds), "--json", str(target)]
        if args.threads is not None:
            command += ["--threads", str(args.threads)]
        if args.quick:
            command += {"conv2d": ["--quick", "--shapes", "A", "--dtypes", "float64"],
                        "strategies": ["--shapes", "A", "--dtypes", "float64"],
                        "conv_transpose": ["--dtypes", "float64"],
                        "convnd": ["--shapes", "audio", "--dtypes", "float64"],
                        "norm_loss": ["--quick", "--dtypes", "float64"]}[name]
        print(f"=== {name}: {' '.join(command[1:])}", flush=True)
        begin = time.perf_counter()
        status = subprocess.call(command)
        if status != 0:
            raise SystemExit(f"run_all: {script} failed with status {status}")
        documents[name] = json.loads(target.read_text())
        documents[name]["seconds"] = round(time.perf_counter() - begin, 1)
    return documents


def runs(document) -> list:
    """The two runs of one benchmark's JSON document, in :data:`blas_settings.SETTINGS` order."""
    return [document["blas_settings"][setting] for setting in blas_settings.SETTINGS]


def both(rows_per_run, key, field, fmt=".2f", scale=1.0) -> str:
    """``machine / unset`` of ``field`` in the row ``key`` of each run, ``-`` if absent."""
    cells = []
    for rows in rows_per_run:
        row = rows.get(key, {})
        value = row.get(field)
        cells.append("-" if value is None else format(value * scale, fmt))
    return " / ".join(cells)


def geomean(values) -> float | None:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def machine_lines(documents) -> list:
    """Which BLAS and kernel ran in each setting, threads and the load of each run."""
    conv2d = runs(documents["conv2d"])
    machine = conv2d[0]["machine"]
    lines = [f"Machine: {machine.get('processor', platform.processor())}, "
             f"{machine.get('cpus')} cores, {machine.get('platform', platform.platform())}; "
             f"Python {machine.get('python')}, NumPy {machine.get('numpy')}, "
             f"PyTorch {machine.get('torch', 'not installed')}; no GPU on this machine; "
             f"BLAS threads {machine.get('threads')}."]
    for run in conv2d:
        blas = run["blas"]
        lines.append(f"- `{blas['setting']}`: {blas_settings.describe_variables(blas['variables'])}"
                     f": {blas_settings.describe_pools(blas['threadpools'])}.")
    if len({json.dumps(run["blas"]["variables"], sort_keys=True) for run in conv2d}) == 1:
        lines.append("- This environment sets neither variable: both runs had the same BLAS "
                     "environment and differ only by the load of the machine.")
    loads = []
    for name, document in documents.items():
        for run in runs(document):
            before = run["machine"]["load_average_before"][0]
            after = run["machine"]["load_average_after"][0]
            loads.append(f"{name} {run['blas']['setting']} {before:.2f}/{after:.2f}")
    lines.append("- Load average (1 min) before/after each run: " + ", ".join(loads) + ".")
    return lines


def keyed(document, key_fields) -> list:
    return [{tuple(row[field] for field in key_fields): row
             for row in (run.get("rows") or run.get("strategies"))} for run in runs(document)]


def conv2d_table(documents) -> list:
    per_run = keyed(documents["conv2d"], ("shape", "dtype"))
    lines = ["| shape | dtype | strategy | forward ms | fwd / GEMM | fwd / torch | backward ms "
             "| GEMM ms | bwd / GEMM | bwd / torch | textbook im2col / generated "
             "| peak memory / (x+g) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for key, row in per_run[0].items():
        lines.append(
            f"| {key[0]} | {key[1]} | {row['strategy']} "
            f"| {both(per_run, key, 'forward', scale=1e3)} "
            f"| {both(per_run, key, 'forward_vs_gemm')} "
            f"| {both(per_run, key, 'forward_vs_torch')} "
            f"| {both(per_run, key, 'backward', scale=1e3)} "
            f"| {both(per_run, key, 'gemm_backward', scale=1e3)} "
            f"| {both(per_run, key, 'backward_vs_gemm')} "
            f"| {both(per_run, key, 'backward_vs_torch')} "
            f"| {both(per_run, key, 'im2col_vs_generated', '.0f')} "
            f"| {both(per_run, key, 'memory_vs_x_plus_grad')} |")
    lines.append("")
    for dtype in ("float32", "float64"):
        means = []
        for rows in per_run:
            ratios = [r["backward_vs_torch"] for r in rows.values()
                      if r["dtype"] == dtype and "backward_vs_torch" in r]
            means.append(f"{geomean(ratios):.2f}" if ratios else "-")
        forward = []
        for rows in per_run:
            ratios = [r["forward_vs_torch"] for r in rows.values()
                      if r["dtype"] == dtype and "forward_vs_torch" in r]
            forward.append(f"{geomean(ratios):.2f}" if ratios else "-")
        lines.append(f"Geometric mean over the shapes, {dtype}: backward / torch "
                     f"{' / '.join(means)}, forward / torch {' / '.join(forward)}.")
        lines.append("")
    return lines


def strategies_table(documents) -> list:
    per_run = keyed(documents["strategies"], ("shape", "dtype"))
    names = ("pointwise", "im2col", "transposed")
    lines = ["| shape | dtype | " + " | ".join(f"{name} ms" for name in names) + " | chosen |",
             "|---|---|" + "---:|" * len(names) + "---|"]
    for key, row in per_run[0].items():
        cells = []
        for name in names:
            values = [rows.get(key, {}).get("backward", {}).get(name) for rows in per_run]
            cells.append(" / ".join("-" if v is None else f"{v * 1e3:.2f}" for v in values))
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + f" | {row['chosen']} |")
    lines.append("")
    return lines


def other_kinds_table(documents) -> list:
    """Transposed, 1-D and 3-D convolution (GEMM limit), batch norm and cross-entropy
    (memory-bandwidth limit), one row per kind and dtype."""
    lines = ["| kind | layer, input | dtype | limit | forward ms | fwd / limit | fwd / torch "
             "| backward ms | bwd / limit | bwd / torch |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|"]
    sources = [("conv_transpose", ("dtype",), "GEMM"), ("convnd", ("shape", "dtype"), "GEMM"),
               ("norm_loss", ("kind", "dtype"), "bandwidth")]
    for name, fields, limit in sources:
        if name not in documents:
            continue
        per_run = keyed(documents[name], fields)
        for key, row in per_run[0].items():
            suffix = "gemm" if limit == "GEMM" else "limit"
            kind = row.get("kind") or row["layer"].split()[0]
            where = f"{row['layer']}, {tuple(row['input'])}".replace("|", "/")
            limit_text = limit if limit == "GEMM" else (
                f"bandwidth ({both(per_run, key, 'copy_GB_per_s', '.1f')} GB/s)")
            lines.append(
                f"| {kind} | {where} | {row['dtype']} | {limit_text} "
                f"| {both(per_run, key, 'forward', scale=1e3)} "
                f"| {both(per_run, key, f'forward_vs_{suffix}')} "
                f"| {both(per_run, key, 'forward_vs_torch')} "
                f"| {both(per_run, key, 'backward', scale=1e3)} "
                f"| {both(per_run, key, f'backward_vs_{suffix}')} "
                f"| {both(per_run, key, 'backward_vs_torch')} |")
    lines.append("")
    return lines


def targets(documents) -> dict:
    """Which conv2d targets each setting meets: ratios at most :data:`TARGET_LIMIT` for the
    GEMM limit, below 1 for torch in float64 and by geomean in float32."""
    summary = {}
    for run in runs(documents["conv2d"]):
        rows = run["rows"]
        setting = run["blas"]["setting"]
        summary[setting] = {
            "backward_within_limit": sorted(f"{r['shape']} {r['dtype']}" for r in rows
                                            if r["backward_vs_gemm"] <= TARGET_LIMIT),
            "forward_within_limit": sorted(f"{r['shape']} {r['dtype']}" for r in rows
                                           if r["forward_vs_gemm"] <= TARGET_LIMIT),
            "float64_behind_torch": sorted(
                f"{r['shape']} {pass_}" for r in rows if r["dtype"] == "float64"
                for pass_ in ("backward", "forward") if r.get(f"{pass_}_vs_torch", 0) > 1),
            "geomean_backward_vs_torch_float32": geomean(
                r["backward_vs_torch"] for r in rows
                if r["dtype"] == "float32" and "backward_vs_torch" in r),
        }
    return summary


def markdown(documents) -> str:
    lines = [f"Measured with `python benchmarks/run_all.py"
             f"{' --threads ' + str(documents['threads']) if documents.get('threads') else ''}`"
             f" ({documents['date']}); each cell is `machine / unset` (the two BLAS settings, "
             "see Benchmark).", ""]
    lines += machine_lines(documents["benchmarks"]) + [""]
    lines += ["**Conv2d** (the issue's shapes A-F; GEMM = only the matrix products of the pass):",
              ""] + conv2d_table(documents["benchmarks"])
    lines += ["**Backward of each conv2d strategy** (the measurement behind `choose_strategy`):",
              ""] + strategies_table(documents["benchmarks"])
    lines += ["**The other kinds** (GEMM limit as for conv2d; bandwidth limit = the bytes the "
              "pass must read and write / the copy bandwidth `np.copyto` measured in the same "
              "rounds):", ""] + other_kinds_table(documents["benchmarks"])
    return "\n".join(lines).rstrip() + "\n"


def write_readme(path: Path, text: str) -> None:
    content = path.read_text()
    if BEGIN not in content or END not in content:
        raise SystemExit(f"run_all: {path} has no {BEGIN} ... {END} lines to replace")
    head, rest = content.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{text}{END}{tail}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, help="BLAS and torch threads of every benchmark")
    parser.add_argument("--rounds", type=int, default=15, help="round-robin rounds per case")
    parser.add_argument("--quick", action="store_true", help="one small case each (a smoke test)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--readme", type=Path, help=f"replace {BEGIN} ... {END} in this file")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    documents = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "threads": args.threads, "rounds": args.rounds,
                 "benchmarks": run_benchmarks(args)}
    documents["targets"] = targets(documents["benchmarks"])
    text = markdown(documents)
    (args.results / "performance.md").write_text(text)
    (args.results / "performance.json").write_text(json.dumps(documents, indent=2) + "\n")
    print(text)
    print(json.dumps(documents["targets"], indent=2))
    if args.readme is not None:
        write_readme(args.readme, text)
        print(f"wrote the tables into {args.readme}")
    print(f"wrote {args.results / 'performance.md'} and {args.results / 'performance.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
