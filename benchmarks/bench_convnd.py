"""Generated Conv1d and Conv3d modules against the GEMM limit and PyTorch.

    python benchmarks/bench_convnd.py [--shapes audio video ...] [--dtypes float32 float64]
                                      [--json benchmarks/results/convnd.json] [--rounds 9]
                                      [--threads N]

Modelled on ``bench_conv2d.py`` (its helpers are reused): for every shape and dtype it
measures, round-robin (a ratio is the median over rounds of the ratio within a round):

- ``generated``: the module ``symbackprop.load(layer)`` emits (fast style), forward and
  backward;
- ``GEMM limit``: only the matrix products the pass must do, with ``np.matmul`` into
  preallocated outputs (forward ``(O, C*prod(K)) @ (C*prod(K), N*prod(out))``; backward
  its two transposes, for ``grad_w`` and for the columns of ``grad_x``);
- ``torch``: ``torch.nn.functional.conv1d``/``conv3d`` autograd with the same threads,
  when PyTorch is installed (never required).

Run from the command line it runs itself twice, with the machine's BLAS settings and
with ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` unset, side by side (as
``bench_conv2d.py``; ``--blas-settings machine`` runs once).  A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_conv2d  # noqa: E402  (round_robin, median_ratio, geometric_mean, cpu name)
import blas_settings  # noqa: E402

import symbackprop as sbp  # noqa: E402

#: name -> (layer type, N, C, spatial sizes, O, K, stride, padding)
SHAPES = {
    "audio": (sbp.Conv1d, 16, 32, (2048,), 32, 5, 1, 2),
    "audio-s2": (sbp.Conv1d, 16, 64, (1024,), 64, 3, 2, 1),
    "video": (sbp.Conv3d, 4, 8, (16, 32, 32), 16, 3, 1, 1),
    "tiny": (sbp.Conv3d, 2, 2, (4, 5, 6), 2, 2, 1, 1),  # the smoke test's
}
DEFAULT_SHAPES = ("audio", "video")


def gemm_limits(layer, shape, dtype, rng):
    """``(forward, backward)``: functions doing just the matrix products of each pass."""
    batch, _, *sizes = shape
    positions = batch * int(np.prod(layer.output_size(tuple(sizes))))
    rows = layer.group_in_channels * int(np.prod(layer.kernel_size))
    og = layer.group_out_channels

    def operand(*dims):
        return rng.standard_normal(dims).astype(dtype)

    weights, columns, grads = operand(og, rows), operand(rows, positions), operand(og, positions)
    z_out, gw_out, gx_out = (np.empty((og, positions), dtype), np.empty((og, rows), dtype),
                             np.empty((rows, positions), dtype))

    def forward():
        for _ in range(layer.groups):
            np.matmul(weights, columns, out=z_out)

    def backward():
        for _ in range(layer.groups):
            np.matmul(grads, columns.T, out=gw_out)
            np.matmul(weights.T, grads, out=gx_out)

    return forward, backward


def torch_functions(layer, x, w, b, grad_z):
    """``(forward, backward, threads)`` with PyTorch's conv1d/conv3d, or None."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    tx, tw, tb = (torch.from_numpy(a).requires_grad_(True) for a in (x, w, b))
    tg = torch.from_numpy(grad_z)
    pairs = layer.padding_pairs
    assert all(before == after for before, after in pairs), "symmetric padding only"
    conv = F.conv1d if layer.spatial_axes == 1 else F.conv3d
    kwargs = dict(stride=layer.stride, padding=tuple(before for before, _ in pairs),
                  dilation=layer.dilation, groups=layer.groups)

    def forward():
        with torch.no_grad():
            return conv(tx, tw, tb, **kwargs)

    z = conv(tx, tw, tb, **kwargs)

    def backward():
        return torch.autograd.grad(z, (tx, tw, tb), tg, retain_graph=True)

    return forward, backward, torch.get_num_threads()


def run_case(name, dtype, rng, rounds: int) -> dict:
    layer_type, batch, channels, sizes, out_channels, kernel, stride, padding = SHAPES[name]
    layer = layer_type(channels, out_channels, kernel_size=kernel, stride=stride,
                       padding=padding)
    module = sbp.load(layer)
    shape = (batch, channels, *sizes)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(layer.weight_shape).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    grad_z = rng.standard_normal(layer.output_shape(sizes, batch)).astype(dtype)
    gemm_forward, gemm_backward = gemm_limits(layer, shape, dtype, rng)
    functions = {"forward": lambda: module.forward(x, w, b),
                 "backward": lambda: module.backward(x, w, b, grad_z),
                 "gemm_forward": gemm_forward, "gemm_backward": gemm_backward}
    torch_parts = torch_functions(layer, x, w, b, grad_z)
    if torch_parts is not None:
        functions["torch_forward"], functions["torch_backward"], _ = torch_parts
    times = bench_conv2d.round_robin(functions, rounds)
    median = {key: sorted(values)[len(values) // 2] for key, values in times.items()}
    row = {"shape": name, "dtype": np.dtype(dtype).name, "layer": layer.describe(),
           "input": list(shape), **median,
           "backward_vs_gemm": bench_conv2d.median_ratio(times["backward"],
                                                         times["gemm_backward"]),
           "forward_vs_gemm": bench_conv2d.median_ratio(times["forward"], times["gemm_forward"])}
    if torch_parts is not None:
        row["backward_vs_torch"] = bench_conv2d.median_ratio(times["backward"],
                                                             times["torch_backward"])
        row["forward_vs_torch"] = bench_conv2d.median_ratio(times["forward"],
                                                            times["torch_forward"])
    return row


def format_table(rows) -> str:
    header = (f"{'shape':9} {'dtype':7} {'fwd ms':>8} {'bwd ms':>8} {'GEMM bwd ms':>12} "
              f"{'bwd/GEMM':>9} {'fwd/GEMM':>9} {'bwd/torch':>10}")
    lines = [header, "-" * len(header)]
    for row in rows:
        torch_ratio = f"{row['backward_vs_torch']:.2f}" if "backward_vs_torch" in row else "-"
        lines.append(f"{row['shape']:9} {row['dtype']:7} {row['forward'] * 1e3:8.2f} "
                     f"{row['backward'] * 1e3:8.2f} {row['gemm_backward'] * 1e3:12.2f} "
                     f"{row['backward_vs_gemm']:9.2f} {row['forward_vs_gemm']:9.2f} "
                     f"{torch_ratio:>10}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(DEFAULT_SHAPES), choices=SHAPES)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "results" /
                        "convnd.json")
    parser.add_argument("--rounds", type=int, default=9, help="round-robin rounds per case")
    parser.add_argument("--threads", type=int, help="BLAS and torch threads (re-runs itself)")
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
        os.execve(sys.executable, [sys.executable, __file__, *arguments],
                  {**os.environ, **{name: str(args.threads) for name in names}})
    blas = blas_settings.record(setting)
    print(f"BLAS ({setting}): {blas_settings.describe_variables(blas['variables'])}: "
          f"{blas_settings.describe_pools(blas['threadpools'])}", flush=True)
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()
    rows = []
    for name in args.shapes:
        for dtype in args.dtypes:
            rows.append(run_case(name, np.dtype(dtype).type, rng, args.rounds))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "numpy": np.__version__,
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
    """Both BLAS settings, each in a child process, side by side."""
    args = build_parser().parse_args(argv)
    results = blas_settings.run_both(__file__, argv)
    lines = blas_settings.header_lines(results)
    for setting, result in zip(blas_settings.SETTINGS, results, strict=True):
        lines += ["", f"BLAS settings '{setting}':", format_table(result["rows"])]
    print("\n".join(lines))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(
        {"variables": list(blas_settings.VARIABLES),
         "blas_settings": dict(zip(blas_settings.SETTINGS, results, strict=True))},
        indent=2) + "\n")
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
