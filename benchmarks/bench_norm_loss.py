"""Generated BatchNorm2d and CrossEntropyLoss modules against the memory-bandwidth limit.

    python benchmarks/bench_norm_loss.py [--dtypes float32 float64] [--rounds 15]
                                         [--threads N] [--json benchmarks/results/norm_loss.json]

Neither layer multiplies matrices: each pass reads its arrays and writes its result a
small, fixed number of times, so what bounds it is the machine's memory bandwidth, not
its arithmetic.  Side by side in one run (round-robin, medians over rounds):

- ``generated``: the module ``symbackprop.load(layer)`` emits, forward and backward
  (batch norm in training mode: the batch's own mean and variance);
- ``bandwidth limit``: the bytes the pass must move -- each array it reads read once,
  each array it writes written once (below) -- divided by the copy bandwidth measured
  in the same round: ``np.copyto`` of an array the size of ``x`` (it reads and writes
  ``x.nbytes`` each), a memory-bound pass with nothing to compute;
- ``torch``: ``torch.nn.functional.batch_norm`` (training) and ``cross_entropy``
  autograd, when PyTorch is installed, with the same threads.

Bytes each pass must move (``x``, ``z``, ``g`` = dL/dz and dL/dx all the size of ``x``;
parameters, statistics and the integer targets of the loss are counted too):

- batch norm forward: read ``x``, write ``z``: 2 ``|x|``;
- batch norm backward: read ``x`` and ``g``, write dL/dx: 3 ``|x|``;
- cross-entropy forward: read the logits ``x`` and the targets, write one number;
- cross-entropy backward: read ``x`` and the targets, write dL/dx: 2 ``|x|`` + targets.

A real pass moves more (batch norm needs the statistics before it can normalise, so it
reads ``x`` twice unless a channel fits in cache), so the ratio says how many passes'
worth of memory traffic the code costs; 1.0 would be a single streaming pass.

BLAS settings and ``--threads`` as ``bench_conv2d.py``: from the command line the script
runs itself twice, with the machine's environment and with ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` unset (they matter little here: no matrix products), and prints both.
This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_conv2d  # noqa: E402
import blas_settings  # noqa: E402

import symbackprop as sbp  # noqa: E402

#: name -> (layer description, input shape): BatchNorm2d over shape B's feature maps,
#: and the loss of an ImageNet-sized classifier head.
CASES = {
    "BatchNorm2d": ("BatchNorm2d(64)", (8, 64, 56, 56)),
    "CrossEntropyLoss": ("CrossEntropyLoss()", (1024, 1000)),
}
QUICK_CASES = {
    "BatchNorm2d": ("BatchNorm2d(8)", (2, 8, 8, 8)),
    "CrossEntropyLoss": ("CrossEntropyLoss()", (16, 10)),
}


def copy_bandwidth(x):
    """A function that copies an array the size of ``x``: its time gives bytes per second."""
    source, target = np.ones_like(x), np.empty_like(x)

    def copy():
        np.copyto(target, source)

    return copy


def batch_norm_case(shape, dtype, rng):
    """``(contenders, bytes moved per pass, x, torch threads or None)`` for BatchNorm2d."""
    channels = shape[1]
    module = sbp.load(sbp.BatchNorm2d(channels))
    x = rng.standard_normal(shape).astype(dtype)
    gamma = rng.standard_normal(channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    grad_z = rng.standard_normal(shape).astype(dtype)
    contenders = {"forward": lambda: module.forward(x, gamma, beta),
                  "backward": lambda: module.backward(x, gamma, beta, grad_z)}
    parameters = gamma.nbytes + beta.nbytes
    moved = {"forward": 2 * x.nbytes + parameters, "backward": 3 * x.nbytes + 3 * parameters}
    threads = None
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return contenders, moved, x, threads
    tx, tgamma, tbeta = (torch.from_numpy(a).requires_grad_(True) for a in (x, gamma, beta))
    tg = torch.from_numpy(grad_z)

    def torch_forward():
        with torch.no_grad():
            return F.batch_norm(tx, None, None, tgamma, tbeta, training=True)

    z = F.batch_norm(tx, None, None, tgamma, tbeta, training=True)

    def torch_backward():
        return torch.autograd.grad(z, (tx, tgamma, tbeta), tg, retain_graph=True)

    contenders.update(torch_forward=torch_forward, torch_backward=torch_backward)
    return contenders, moved, x, torch.get_num_threads()


def cross_entropy_case(shape, dtype, rng):
    """``(contenders, bytes moved per pass, x, torch threads or None)``, CrossEntropyLoss."""
    module = sbp.load(sbp.CrossEntropyLoss())
    x = rng.standard_normal(shape).astype(dtype)
    target = rng.integers(0, shape[1], size=shape[0])
    contenders = {"forward": lambda: module.forward(x, target),
                  "backward": lambda: module.backward(x, target)}
    moved = {"forward": x.nbytes + target.nbytes + x.itemsize,
             "backward": 2 * x.nbytes + target.nbytes}
    threads = None
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return contenders, moved, x, threads
    tx = torch.from_numpy(x).requires_grad_(True)
    ttarget = torch.from_numpy(target)

    def torch_forward():
        with torch.no_grad():
            return F.cross_entropy(tx, ttarget)

    loss = F.cross_entropy(tx, ttarget)

    def torch_backward():
        return torch.autograd.grad(loss, (tx,), retain_graph=True)

    contenders.update(torch_forward=torch_forward, torch_backward=torch_backward)
    return contenders, moved, x, torch.get_num_threads()


BUILDERS = {"BatchNorm2d": batch_norm_case, "CrossEntropyLoss": cross_entropy_case}


def run_case(name, cases, dtype, rng, rounds: int) -> dict:
    description, shape = cases[name]
    contenders, moved, x, threads = BUILDERS[name](shape, dtype, rng)
    contenders["copy"] = copy_bandwidth(x)
    times = bench_conv2d.round_robin(contenders, rounds)
    row = {"kind": name, "layer": description, "input": list(shape),
           "dtype": np.dtype(dtype).name, "rounds": rounds, "bytes": moved}
    for key, values in times.items():
        row[key] = statistics.median(values)
    # bytes per second of the copy, each round: it reads and writes x.nbytes
    bandwidth = [2 * x.nbytes / seconds for seconds in times["copy"]]
    row["copy_GB_per_s"] = statistics.median(bandwidth) / 1e9
    for side in ("forward", "backward"):
        limits = [moved[side] / rate for rate in bandwidth]
        row[f"{side}_limit"] = statistics.median(limits)
        row[f"{side}_vs_limit"] = bench_conv2d.median_ratio(times[side], limits)
        if f"torch_{side}" in times:
            row[f"{side}_vs_torch"] = bench_conv2d.median_ratio(times[side],
                                                                times[f"torch_{side}"])
            row[f"torch_{side}_vs_limit"] = bench_conv2d.median_ratio(times[f"torch_{side}"],
                                                                      limits)
    if threads is not None:
        row["torch_threads"] = threads
    return row


def format_table(rows) -> str:
    header = (f"{'kind':17} {'dtype':7} {'copy GB/s':>9} {'fwd ms':>8} {'limit':>7} "
              f"{'fwd/limit':>9} {'bwd ms':>8} {'limit':>7} {'bwd/limit':>9} "
              f"{'fwd/torch':>9} {'bwd/torch':>9}")
    lines = [header, "-" * len(header)]
    for row in rows:
        torch_cells = " ".join(f"{row[key]:9.2f}" if key in row else f"{'-':>9}"
                               for key in ("forward_vs_torch", "backward_vs_torch"))
        lines.append(f"{row['kind']:17} {row['dtype']:7} {row['copy_GB_per_s']:9.1f} "
                     f"{row['forward'] * 1e3:8.2f} {row['forward_limit'] * 1e3:7.2f} "
                     f"{row['forward_vs_limit']:9.2f} {row['backward'] * 1e3:8.2f} "
                     f"{row['backward_limit'] * 1e3:7.2f} {row['backward_vs_limit']:9.2f} "
                     f"{torch_cells}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="tiny shapes (a smoke test)")
    parser.add_argument("--threads", type=int, help="BLAS and torch threads (re-runs itself)")
    parser.add_argument("--json", type=Path,
                        default=REPO / "benchmarks" / "results" / "norm_loss.json")
    parser.add_argument(blas_settings.OPTION, choices=blas_settings.SETTINGS,
                        help="run once, with the machine's BLAS settings or with "
                             f"{' and '.join(blas_settings.VARIABLES)} unset (default from "
                             "the command line: both, one after the other)")
    return parser


def main(argv=None) -> int:
    """One run, in one BLAS setting (default: the environment as it is)."""
    args = build_parser().parse_args(argv)
    arguments = sys.argv[1:] if argv is None else list(argv)
    setting = args.blas_settings or "machine"
    blas_settings.ensure_setting(setting, __file__, arguments)
    blas_settings.ensure_threads(args.threads, __file__, arguments)
    blas = blas_settings.record(setting)
    print(f"BLAS ({setting}): {blas_settings.describe_variables(blas['variables'])}: "
          f"{blas_settings.describe_pools(blas['threadpools'])}", flush=True)
    cases = QUICK_CASES if args.quick else CASES
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    rows = []
    for name in args.kinds:
        for dtype in args.dtypes:
            rows.append(run_case(name, cases, np.dtype(dtype).type, rng, args.rounds))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    machine = {"cpus": os.cpu_count(), "numpy": np.__version__,
               "threads": args.threads or "default",
               "load_average_before": [round(v, 2) for v in load_before],
               "load_average_after": [round(v, 2) for v in os.getloadavg()]}
    print()
    print(format_table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"machine": machine, "blas": blas, "rows": rows},
                                    indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


def compare_blas_settings(argv) -> int:
    """Both BLAS settings, each in a child process, one table after the other."""
    args = build_parser().parse_args(argv)
    results = blas_settings.run_both(__file__, argv)
    for line in blas_settings.header_lines(results):
        print(line)
    for setting, result in zip(blas_settings.SETTINGS, results, strict=True):
        print(f"\n{setting}:")
        print(format_table(result["rows"]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(
        {"variables": list(blas_settings.VARIABLES),
         "blas_settings": dict(zip(blas_settings.SETTINGS, results, strict=True))},
        indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


def cli(argv=None) -> int:
    """The command line: both BLAS settings, unless one is asked for."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if blas_settings.OPTION in argv or any(a.startswith(blas_settings.OPTION + "=")
                                           for a in argv) or "-h" in argv or "--help" in argv:
        return main(argv)
    return compare_blas_settings(argv)


if __name__ == "__main__":
    sys.exit(cli())
