"""Generated conv2d modules against the GEMM limit, the textbook im2col and PyTorch.

    python benchmarks/bench_conv2d.py [--shapes A B ...] [--dtypes float32 float64]
                                      [--json benchmarks/results/conv2d.json] [--quick]
                                      [--rounds 15] [--threads N] [--strategies]

For every shape (N, C, H, W, O, K, stride, padding) of the performance issue and
dtype it measures, side by side in one run (medians over repetitions):

- ``generated``: the module ``symbackprop.load(layer)`` emits, forward and backward;
- ``GEMM limit``: only the matrix products the pass must do, with ``np.matmul`` on
  operands of the equivalent sizes into preallocated outputs (forward:
  ``(O, C*K*K) @ (C*K*K, N*Ho*Wo)``; backward: that product's two transposes for
  ``grad_w`` and ``grad_x``);
- ``im2col``: the textbook loop-built im2col of ``tests/reference.py`` (small shapes,
  and float64 only: the reference computes in float64);
- ``torch``: ``torch.nn.functional.conv2d`` autograd with the same number of threads,
  when PyTorch is installed (never required);
- ``memory``: peak extra bytes ``backward`` allocates (tracemalloc), as a multiple of
  ``x.nbytes + grad_z.nbytes``.

The machine may be shared, so the contenders are timed round-robin: every round
runs each of them once (generated, GEMM limit, torch; forward, then backward), and
a ratio is the median over rounds of the ratio within the round, so that a burst
of load elsewhere hits both sides of a ratio alike.  The times shown are medians
too; ``best`` is the ratio of the fastest rounds, a cross-check on a busy machine.
The load average before and after is recorded with the machine.

``--threads N`` re-runs the script with ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``
set to N and torch limited to N threads (the library never touches these: this is
the benchmark's own process).  By default both use what the machine gives them.

``--strategies`` times instead the backward pass of every strategy the generator
can use for each shape (``symbackprop.load(layer, strategy=...)``), round-robin: the
measurement behind ``symbackprop.kinds.conv2d.numpy.choose_strategy``.

It prints a table and writes it as JSON.  This is a benchmark, not a test.

BLAS settings: run from the command line, the script runs itself twice, each in a
child process, and prints the two side by side: ``machine``, the environment as it
is, and ``unset``, without ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (which make
NumPy's OpenBLAS use an older kernel on some machines).  Each run says which BLAS
library, kernel (OpenBLAS core type) and threads ran, through threadpoolctl
(``pip install 'symbackprop[bench]'``; without it the kernel is reported unknown).
The JSON then holds both runs under ``blas_settings``.  ``--blas-settings machine``
or ``unset`` runs once, in that setting; ``main()`` called from Python runs once, in
the environment it finds (the tests do: they never change these variables).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))

import blas_settings  # noqa: E402

import symbackprop as sbp  # noqa: E402

#: name -> (N, C, H, W, O, K, stride, padding), from the performance issue.
SHAPES = {
    "A": (8, 3, 32, 32, 16, 3, 1, 1),
    "B": (8, 64, 56, 56, 64, 3, 1, 1),
    "C": (8, 128, 28, 28, 128, 3, 2, 1),
    "D": (32, 1, 28, 28, 8, 5, 1, 0),
    "E": (8, 64, 56, 56, 64, 1, 1, 0),
    "F": (8, 32, 64, 64, 32, 3, 2, 0),
}
SMALL = ("A", "D")  # where the textbook im2col is timed


def round_robin(functions: dict, rounds: int) -> dict:
    """``{name: [seconds per round]}``: each round calls every function once, in turn."""
    for function in functions.values():
        function()  # warm-up: caches, page faults, lazy imports
    times = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            begin = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - begin)
    return times


def median_ratio(numerators, denominators) -> float:
    """Median over rounds of the within-round ratio."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def median_time(function, min_repeats: int = 5, min_seconds: float = 0.5) -> float:
    """Median wall time of ``function()`` over at least ``min_repeats`` calls."""
    function()  # warm-up: caches, page faults, lazy imports
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_seconds:
        begin = time.perf_counter()
        function()
        times.append(time.perf_counter() - begin)
        if len(times) >= 50:
            break
    return statistics.median(times)


def gemm_limits(layer, shape, dtype, rng):
    """``(forward, backward)``: functions doing just the matrix products of each pass.

    Per group, forward: ``(O_g, C_g*K*K) @ (C_g*K*K, N*Ho*Wo)``; backward: ``dL/dw =
    g @ columns.T`` and ``dL/dcolumns = w.T @ g`` (im2col's two products).
    """
    batch, channels, height, width = shape
    out_h, out_w = layer.output_size((height, width))
    positions = batch * out_h * out_w
    rows = layer.group_in_channels * layer.kernel_size[0] * layer.kernel_size[1]
    og = layer.group_out_channels

    def operand(*dims):
        return rng.standard_normal(dims).astype(dtype)

    weights, columns, grads = operand(og, rows), operand(rows, positions), operand(og, positions)
    z_out, gw_out, gx_out = (np.empty((og, positions), dtype), np.empty((og, rows), dtype),
                             np.empty((rows, positions), dtype))
    groups = range(layer.groups)

    def forward():
        for _ in groups:
            np.matmul(weights, columns, out=z_out)

    def backward():
        for _ in groups:
            np.matmul(grads, columns.T, out=gw_out)
            np.matmul(weights.T, grads, out=gx_out)

    return forward, backward


def peak_extra_bytes(function) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    result = function()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return peak - before


def torch_functions(layer, x, w, b, grad_z):
    """``(forward, backward, threads)`` with ``torch.nn.functional.conv2d``, or None."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    tx = torch.from_numpy(x).requires_grad_(True)
    tw = torch.from_numpy(w).requires_grad_(True)
    tb = torch.from_numpy(b).requires_grad_(True)
    tg = torch.from_numpy(grad_z)
    top, bottom, left, right = layer.padding
    assert top == bottom and left == right, "torch takes symmetric padding only"
    kwargs = dict(stride=layer.stride, padding=(top, left), dilation=layer.dilation,
                  groups=layer.groups)

    def forward():
        with torch.no_grad():
            return F.conv2d(tx, tw, tb, **kwargs)

    z = F.conv2d(tx, tw, tb, **kwargs)

    def backward():
        return torch.autograd.grad(z, (tx, tw, tb), tg, retain_graph=True)

    return forward, backward, torch.get_num_threads()


def run_case(name, dtype, rng, quick: bool, rounds: int) -> dict:
    batch, channels, height, width, out_channels, kernel, stride, padding = SHAPES[name]
    layer = sbp.Conv2d(channels, out_channels, kernel_size=kernel, stride=stride,
                       padding=padding)
    module = sbp.load(layer)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    w = rng.standard_normal(layer.weight_shape).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    grad_z = rng.standard_normal(layer.output_shape((height, width), batch)).astype(dtype)

    row = {"shape": name, "dtype": np.dtype(dtype).name, "layer": layer.describe(),
           "input": [batch, channels, height, width], "strategy": module.STRATEGY}
    gemm_forward, gemm_backward = gemm_limits(layer, x.shape, dtype, rng)
    contenders = {
        "forward": lambda: module.forward(x, w, b),
        "gemm_forward": gemm_forward,
        "backward": lambda: module.backward(x, w, b, grad_z),
        "gemm_backward": gemm_backward,
    }
    with_torch = torch_functions(layer, x, w, b, grad_z)
    if with_torch is not None:
        contenders["torch_forward"], contenders["torch_backward"], row["torch_threads"] = \
            with_torch
    times = round_robin(contenders, rounds)
    for key, values in times.items():
        row[key] = statistics.median(values)
    row["rounds"] = rounds
    row["forward_vs_gemm"] = median_ratio(times["forward"], times["gemm_forward"])
    row["backward_vs_gemm"] = median_ratio(times["backward"], times["gemm_backward"])
    # best of the rounds: what each side does when nothing else runs (a cross-check)
    row["forward_vs_gemm_best"] = min(times["forward"]) / min(times["gemm_forward"])
    row["backward_vs_gemm_best"] = min(times["backward"]) / min(times["gemm_backward"])
    if with_torch is not None:
        row["backward_vs_torch"] = median_ratio(times["backward"], times["torch_backward"])
        row["forward_vs_torch"] = median_ratio(times["forward"], times["torch_forward"])
    extra = peak_extra_bytes(lambda: module.backward(x, w, b, grad_z))
    row["backward_peak_extra_MiB"] = extra / 2**20
    row["memory_vs_x_plus_grad"] = extra / (x.nbytes + grad_z.nbytes)
    if name in SMALL and dtype == np.float64 and not quick:
        from reference import conv2d_backward

        conv = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                    groups=layer.groups)
        row["im2col_backward"] = median_time(lambda: conv2d_backward(x, w, b, grad_z, **conv),
                                             min_repeats=3, min_seconds=0.2)
        row["im2col_vs_generated"] = row["im2col_backward"] / row["backward"]
    return row


def compare_strategies(name, dtype, rng, rounds: int) -> dict:
    """Backward seconds of every applicable strategy for one shape, round-robin."""
    from symbackprop.kinds.conv2d.numpy import STRATEGIES, choose_strategy

    batch, channels, height, width, out_channels, kernel, stride, padding = SHAPES[name]
    layer = sbp.Conv2d(channels, out_channels, kernel_size=kernel, stride=stride,
                       padding=padding)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    w = rng.standard_normal(layer.weight_shape).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    grad_z = rng.standard_normal(layer.output_shape((height, width), batch)).astype(dtype)
    chosen = choose_strategy(layer)
    contenders = {}
    for strategy in STRATEGIES:
        if strategy == "pointwise" and chosen != "pointwise":
            continue
        module = sbp.load(layer, strategy=strategy)
        contenders[strategy] = lambda module=module: module.backward(x, w, b, grad_z)
    times = round_robin(contenders, rounds)
    row = {"shape": name, "dtype": np.dtype(dtype).name, "chosen": chosen,
           "backward": {key: statistics.median(values) for key, values in times.items()}}
    row["chosen_vs_best"] = row["backward"][chosen] / min(row["backward"].values())
    return row


def format_strategies(rows) -> str:
    names = ["pointwise", "im2col", "transposed"]
    header = (f"{'shape':5} {'dtype':7} {'chosen':10} " +
              " ".join(f"{name + ' ms':>13}" for name in names) + f" {'chosen/best':>11}")
    lines = [header, "-" * len(header)]
    for row in rows:
        cells = [f"{row['backward'][name] * 1e3:13.2f}" if name in row["backward"] else
                 "-".rjust(13) for name in names]
        lines.append(f"{row['shape']:5} {row['dtype']:7} {row['chosen']:10} " + " ".join(cells) +
                     f" {row['chosen_vs_best']:11.2f}")
    return "\n".join(lines)


def format_table(rows) -> str:
    header = (f"{'shape':5} {'dtype':7} {'strategy':10} {'fwd ms':>8} {'fwd/GEMM':>8} "
              f"{'bwd ms':>8} {'GEMM ms':>8} {'bwd/GEMM':>8} {'best':>5} {'im2col/gen':>10} "
              f"{'bwd/torch':>9} {'fwd/torch':>9} {'mem x(x+g)':>10}")
    lines = [header, "-" * len(header)]
    def cell(row, key, fmt, width):
        return format(row[key], fmt).rjust(width) if key in row else "-".rjust(width)

    for row in rows:
        lines.append(
            f"{row['shape']:5} {row['dtype']:7} {row['strategy']:10} {row['forward'] * 1e3:8.2f} "
            f"{row['forward_vs_gemm']:8.2f} {row['backward'] * 1e3:8.2f} "
            f"{row['gemm_backward'] * 1e3:8.2f} {row['backward_vs_gemm']:8.2f} "
            f"{row['backward_vs_gemm_best']:5.2f} "
            f"{cell(row, 'im2col_vs_generated', '.1f', 10)} "
            f"{cell(row, 'backward_vs_torch', '.2f', 9)} "
            f"{cell(row, 'forward_vs_torch', '.2f', 9)} {row['memory_vs_x_plus_grad']:10.2f}")
    return "\n".join(lines)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{config.get('name')} {config.get('version')}"
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


def geometric_mean(values) -> float:
    values = list(values)
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" /
                        "conv2d.json")
    parser.add_argument("--quick", action="store_true", help="skip the slow im2col reference")
    parser.add_argument("--rounds", type=int, default=15, help="round-robin rounds per case")
    parser.add_argument("--threads", type=int, help="BLAS and torch threads (re-runs itself)")
    parser.add_argument("--strategies", action="store_true",
                        help="compare the backward of every strategy instead")
    parser.add_argument(blas_settings.OPTION, choices=blas_settings.SETTINGS,
                        help="run once, with the machine's BLAS settings or with "
                             f"{' and '.join(blas_settings.VARIABLES)} unset (default from "
                             "the command line: both, side by side)")
    return parser


def main(argv=None) -> int:
    """One run, in one BLAS setting (default: the environment as it is)."""
    args = build_parser().parse_args(argv)
    arguments = sys.argv[1:] if argv is None else list(argv)
    setting = args.blas_settings or "machine"
    blas_settings.ensure_setting(setting, __file__, arguments)
    if args.threads is not None and os.environ.get("BENCH_THREADS") != str(args.threads):
        names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BENCH_THREADS")
        variables = {name: str(args.threads) for name in names}
        os.execve(sys.executable, [sys.executable, __file__, *arguments],
                  {**os.environ, **variables})
    if args.threads is not None:
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            pass
    blas = blas_settings.record(setting)
    print(f"BLAS ({setting}): {blas_settings.describe_variables(blas['variables'])}: "
          f"{blas_settings.describe_pools(blas['threadpools'])}", flush=True)

    rng = np.random.default_rng(0)
    rows = []
    load_before = os.getloadavg()
    if args.strategies:
        for name in args.shapes:
            for dtype in args.dtypes:
                rows.append(compare_strategies(name, np.dtype(dtype).type, rng, args.rounds))
                print(format_strategies(rows[-1:]).splitlines()[-1], flush=True)
        print()
        print(format_strategies(rows))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        machine = {"threads": args.threads or "default", "numpy": np.__version__,
                   "load_average_before": [round(v, 2) for v in load_before],
                   "load_average_after": [round(v, 2) for v in os.getloadavg()]}
        args.json.write_text(json.dumps({"machine": machine, "blas": blas, "strategies": rows},
                                        indent=2) + "\n")
        print(f"wrote {args.json}")
        return 0
    for name in args.shapes:
        for dtype in args.dtypes:
            rows.append(run_case(name, np.dtype(dtype).type, rng, args.quick, args.rounds))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    machine = {"platform": platform.platform(), "processor": _cpu_name(),
               "cpus": os.cpu_count(), "numpy": np.__version__, "python": platform.python_version(),
               "blas": _blas_name(), "threads": args.threads or "default",
               "load_average_before": [round(v, 2) for v in load_before],
               "load_average_after": [round(v, 2) for v in os.getloadavg()]}
    try:
        import torch

        machine["torch"] = torch.__version__
    except ImportError:
        pass
    summary = {}
    for key in ("backward_vs_gemm", "forward_vs_gemm"):
        summary[f"worst_{key}"] = max(r[key] for r in rows)
    for dtype in args.dtypes:
        ratios = [r["backward_vs_torch"] for r in rows if r["dtype"] == dtype
                  and "backward_vs_torch" in r]
        if ratios:
            summary[f"geomean_backward_vs_torch_{dtype}"] = geometric_mean(ratios)
    print()
    print(format_table(rows))
    for key, value in summary.items():
        print(f"{key}: {value:.2f}")
    print(f"machine: {machine}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "blas": blas, "rows": rows,
                                     "summary": summary}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


def both_cell(results, key, field, fmt) -> str:
    """``machine / unset`` values of ``field`` in the row ``key`` of each run."""
    values = []
    for result in results:
        row = result["rows_by_key"].get(key, {})
        values.append(format(row[field], fmt) if field in row else "-")
    return " / ".join(values)


def format_side_by_side(results) -> str:
    """The two runs of :func:`compare_blas_settings` in one table."""
    for result in results:
        rows = result.get("rows") or result.get("strategies")
        result["rows_by_key"] = {(row["shape"], row["dtype"]): row for row in rows}
    keys = list(results[0]["rows_by_key"])
    lines = blas_settings.header_lines(results)
    lines.append("each cell: " + " / ".join(blas_settings.SETTINGS))
    if "strategies" in results[0]:
        names = ["pointwise", "im2col", "transposed"]
        header = (f"{'shape':5} {'dtype':7} {'chosen':10} " +
                  " ".join(f"{name + ' ms':>17}" for name in names) + f" {'chosen/best':>13}")
        lines += [header, "-" * len(header)]
        for key in keys:
            for result in results:
                row = result["rows_by_key"].get(key, {})
                for name in names:
                    if name in row.get("backward", {}):
                        row[f"{name}_ms"] = row["backward"][name] * 1e3
            cells = [both_cell(results, key, f"{name}_ms", ".2f").rjust(17) for name in names]
            chosen = results[0]["rows_by_key"][key]["chosen"]
            lines.append(f"{key[0]:5} {key[1]:7} {chosen:10} " + " ".join(cells) +
                         f" {both_cell(results, key, 'chosen_vs_best', '.2f'):>13}")
        return "\n".join(lines)
    for result in results:
        for row in result["rows"]:
            row["backward_ms"], row["gemm_backward_ms"] = (row["backward"] * 1e3,
                                                           row["gemm_backward"] * 1e3)
    columns = [("bwd ms", "backward_ms", ".2f", 17), ("GEMM bwd ms", "gemm_backward_ms", ".2f", 17),
               ("bwd/GEMM", "backward_vs_gemm", ".2f", 15),
               ("fwd/GEMM", "forward_vs_gemm", ".2f", 15),
               ("bwd/torch", "backward_vs_torch", ".2f", 13),
               ("fwd/torch", "forward_vs_torch", ".2f", 13)]
    header = f"{'shape':5} {'dtype':7} " + " ".join(f"{title:>{width}}"
                                                    for title, _, _, width in columns)
    lines += [header, "-" * len(header)]
    for key in keys:
        lines.append(f"{key[0]:5} {key[1]:7} " + " ".join(
            both_cell(results, key, field, fmt).rjust(width) for _, field, fmt, width in columns))
    ratios = []
    for key in keys:
        gemm = [result["rows_by_key"].get(key, {}).get("gemm_backward") for result in results]
        if None not in gemm:
            ratios.append(gemm[0] / gemm[1])
    lines.append(f"GEMM limit, {' / '.join(blas_settings.SETTINGS)} time: geomean "
                 f"{geometric_mean(ratios):.2f} (above 1: the machine's settings are slower)")
    return "\n".join(lines)


def compare_blas_settings(argv) -> int:
    """Run the benchmark in both BLAS settings, each in a child process, side by side."""
    args = build_parser().parse_args(argv)
    results = blas_settings.run_both(__file__, argv)
    print(format_side_by_side(results))
    for result in results:
        result.pop("rows_by_key", None)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(
        {"variables": list(blas_settings.VARIABLES),
         "blas_settings": dict(zip(blas_settings.SETTINGS, results))}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


def cli(argv=None) -> int:
    """The command line: both BLAS settings side by side, unless one is asked for."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if blas_settings.OPTION in argv or any(a.startswith(blas_settings.OPTION + "=")
                                           for a in argv):
        return main(argv)
    if "-h" in argv or "--help" in argv:
        return main(argv)
    return compare_blas_settings(argv)


if __name__ == "__main__":
    sys.exit(cli())
