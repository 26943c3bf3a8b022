"""A generated ConvTranspose2d module against the GEMM limit and PyTorch.

    python benchmarks/bench_conv_transpose.py [--dtypes float32 float64] [--rounds 15]
                                              [--threads N]
                                              [--json benchmarks/results/conv_transpose.json]

One shape, the DCGAN/U-Net upsampling layer ConvTranspose2d(64, 32, 4, stride=2,
padding=1) on a batch of 8 inputs of 16x16 (output 32x32), modelled on
``benchmarks/bench_conv2d.py``; side by side in one run (medians over rounds):

- ``generated``: the module ``symbackprop.load(layer)`` emits, forward and backward;
- ``GEMM limit``: only the matrix products the pass must do, with ``np.matmul`` into
  preallocated outputs (forward: ``(N*H*W, C) @ (C, O*K*K)``, every contribution;
  backward: ``(N*H*W, O*K*K) @ (O*K*K, C)`` for ``dL/dx`` and ``(O*K*K, N*H*W) @ (N*H*W,
  C)`` for ``dL/dw`` transposed; each in the orientation that measured fastest);
- ``torch``: ``torch.nn.functional.conv_transpose2d`` autograd, when PyTorch is installed.

Contenders are timed round-robin and a ratio is the median over rounds of the ratio
within the round (a burst of load elsewhere hits both sides alike).

BLAS settings, as ``bench_conv2d.py``: run from the command line, the script runs itself
twice, in child processes, with the machine's environment (``machine``) and without
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` (``unset``), and prints both side by side;
``--blas-settings machine`` (or ``unset``) runs once.  This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import blas_settings  # noqa: E402

import symbackprop as sbp  # noqa: E402

#: (N, C, H, W, O, K, stride, padding): DCGAN/U-Net upsampling, 16x16 -> 32x32.
SHAPE = (8, 64, 16, 16, 32, 4, 2, 1)


def round_robin(functions: dict, rounds: int) -> dict:
    """``{name: [seconds per round]}``: each round calls every function once, in turn."""
    for function in functions.values():
        function()  # warm-up
    times = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            begin = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - begin)
    return times


def median_ratio(numerators, denominators) -> float:
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def gemm_limits(layer, shape, dtype, rng):
    """``(forward, backward)``: just the matrix products of each pass, per group."""
    batch, channels, height, width = shape
    positions = batch * height * width
    cg, og = layer.group_in_channels, layer.group_out_channels
    columns = og * layer.kernel_size[0] * layer.kernel_size[1]

    def operand(*dims):
        return rng.standard_normal(dims).astype(dtype)

    rows, weights, gathered = operand(positions, cg), operand(cg, columns), \
        operand(positions, columns)
    z_out, gx_out, gw_out = (np.empty((positions, columns), dtype),
                             np.empty((positions, cg), dtype), np.empty((columns, cg), dtype))

    # each product in the orientation that measured fastest here: the N*H*W axis long
    def forward():
        for _ in range(layer.groups):
            np.matmul(rows, weights, out=z_out)

    def backward():
        for _ in range(layer.groups):
            np.matmul(gathered, weights.T, out=gx_out)
            np.matmul(gathered.T, rows, out=gw_out)  # dL/dw^T

    return forward, backward


def torch_functions(layer, x, w, b, grad_z):
    """``(forward, backward, threads)`` with ``conv_transpose2d``, or None."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    tx, tw, tb = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, b))
    tg = torch.from_numpy(grad_z)
    kwargs = dict(stride=layer.stride, padding=layer.pad_begin,
                  output_padding=layer.output_padding, groups=layer.groups,
                  dilation=layer.dilation)

    def forward():
        with torch.no_grad():
            return F.conv_transpose2d(tx, tw, tb, **kwargs)

    z = F.conv_transpose2d(tx, tw, tb, **kwargs)

    def backward():
        return torch.autograd.grad(z, (tx, tw, tb), tg, retain_graph=True)

    return forward, backward, torch.get_num_threads()


def run_case(dtype, rng, rounds: int) -> dict:
    batch, channels, height, width, out_channels, kernel, stride, padding = SHAPE
    layer = sbp.ConvTranspose2d(channels, out_channels, kernel, stride=stride, padding=padding)
    module = sbp.load(layer)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    w = rng.standard_normal(layer.weight_shape).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    grad_z = rng.standard_normal(layer.output_shape((height, width), batch)).astype(dtype)
    row = {"dtype": np.dtype(dtype).name, "layer": layer.describe(),
           "input": [batch, channels, height, width]}
    gemm_forward, gemm_backward = gemm_limits(layer, x.shape, dtype, rng)
    contenders = {"forward": lambda: module.forward(x, w, b), "gemm_forward": gemm_forward,
                  "backward": lambda: module.backward(x, w, b, grad_z),
                  "gemm_backward": gemm_backward}
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
    if with_torch is not None:
        row["forward_vs_torch"] = median_ratio(times["forward"], times["torch_forward"])
        row["backward_vs_torch"] = median_ratio(times["backward"], times["torch_backward"])
    return row


def format_table(rows) -> str:
    header = (f"{'dtype':8} {'fwd ms':>8} {'GEMM fwd':>9} {'fwd/GEMM':>9} {'bwd ms':>8} "
              f"{'GEMM bwd':>9} {'bwd/GEMM':>9} {'fwd/torch':>10} {'bwd/torch':>10}")
    lines = [header, "-" * len(header)]
    for row in rows:
        torch_cells = [f"{row[key]:10.2f}" if key in row else f"{'-':>10}"
                       for key in ("forward_vs_torch", "backward_vs_torch")]
        lines.append(f"{row['dtype']:8} {row['forward'] * 1e3:8.2f} "
                     f"{row['gemm_forward'] * 1e3:9.2f} {row['forward_vs_gemm']:9.2f} "
                     f"{row['backward'] * 1e3:8.2f} {row['gemm_backward'] * 1e3:9.2f} "
                     f"{row['backward_vs_gemm']:9.2f} " + " ".join(torch_cells))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, help="BLAS and torch threads (re-runs itself)")
    parser.add_argument("--json", type=Path,
                        default=REPO / "benchmarks" / "results" / "conv_transpose.json")
    parser.add_argument(blas_settings.OPTION, choices=blas_settings.SETTINGS,
                        help="run once, with the machine's BLAS settings or with "
                             f"{' and '.join(blas_settings.VARIABLES)} unset (default: both, "
                             "side by side)")
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
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    rows = [run_case(np.dtype(dtype).type, rng, args.rounds) for dtype in args.dtypes]
    print(format_table(rows))
    machine = {"cpus": os.cpu_count(), "numpy": np.__version__,
               "threads": args.threads or "default",
               "load_average_before": [round(v, 2) for v in load_before],
               "load_average_after": [round(v, 2) for v in os.getloadavg()]}
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
    for setting, result in zip(blas_settings.SETTINGS, results):
        print(f"\n{setting}:")
        print(format_table(result["rows"]))
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
                                           for a in argv) or "-h" in argv or "--help" in argv:
        return main(argv)
    return compare_blas_settings(argv)


if __name__ == "__main__":
    sys.exit(cli())
