"""Time generated conv2d backward passes against the im2col reference.

    python benchmarks/bench_codegen.py            # realistic shapes, best of 3
    python benchmarks/bench_codegen.py --quick    # small shapes, a smoke run

For each shape it generates the layer's module (symbackprop.load), checks that its
gradients agree with tests/reference.py, then prints the best wall time of the
reference's ``conv2d_backward`` (im2col/col2im, float64) and of the generated
``backward`` in float64 and float32, and the ratio reference / generated (above 1:
the generated code is faster).  Targets are set by the performance issue; this
script only measures.

Both do BLAS work (matrix products), so, run from the command line, the script runs
itself twice in child processes and prints the two side by side: with the machine's
BLAS settings and with ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset, saying
which BLAS kernel ran in each (see ``benchmarks/blas_settings.py``).
``--blas-settings machine|unset`` runs once in that setting; ``main()`` called from
Python runs once, in the environment it finds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import blas_settings  # noqa: E402
from reference import conv2d_backward  # noqa: E402

from symbackprop import Conv2d, load  # noqa: E402

#: (description, layer, batch, input size)
SHAPES = [
    ("3x3 same", Conv2d(64, 64, kernel_size=3, padding=1), 8, (32, 32)),
    ("3x3 stride 2", Conv2d(64, 128, kernel_size=3, stride=2, padding=1), 8, (32, 32)),
    ("1x1 bottleneck", Conv2d(256, 64, kernel_size=1, bias=False), 8, (16, 16)),
    ("3x3 depthwise", Conv2d(64, 64, kernel_size=3, padding=1, groups=64, bias=False), 8,
     (32, 32)),
    ("5x5 LeNet", Conv2d(1, 6, kernel_size=5), 32, (28, 28)),
    ("7x7 stride-2 stem", Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False), 4,
     (64, 64)),
]
QUICK_SHAPES = [
    ("3x3 same", Conv2d(8, 8, kernel_size=3, padding=1), 2, (8, 8)),
    ("3x3 stride 2, groups 2", Conv2d(8, 16, kernel_size=3, stride=2, padding=1, groups=2), 2,
     (9, 9)),
]


def best_time(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def arrays(layer, batch, size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, layer.in_channels, *size)).astype(dtype)
    params = [rng.standard_normal(layer.weight_shape).astype(dtype)]
    if layer.bias:
        params.append(rng.standard_normal(layer.out_channels).astype(dtype))
    grad_out = rng.standard_normal(layer.output_shape(size, batch)).astype(dtype)
    return x, params, grad_out


def measure(layer, batch, size, repeat: int) -> dict:
    module = load(layer)
    x, params, grad_out = arrays(layer, batch, size, np.float64)
    options = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups)
    bias = params[1] if layer.bias else None
    want = conv2d_backward(x, params[0], bias, grad_out, **options)
    got = module.backward(x, *params, grad_out)
    for value, expected in zip(got, want, strict=False):
        np.testing.assert_allclose(value, expected, rtol=1e-8, atol=1e-8)
    x32, params32, grad_out32 = arrays(layer, batch, size, np.float32)
    return dict(
        reference=best_time(lambda: conv2d_backward(x, params[0], bias, grad_out, **options),
                            repeat),
        float64=best_time(lambda: module.backward(x, *params, grad_out), repeat),
        float32=best_time(lambda: module.backward(x32, *params32, grad_out32), repeat),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, one repeat")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--json", type=Path, help="also write the times as JSON here")
    parser.add_argument(blas_settings.OPTION, choices=blas_settings.SETTINGS,
                        help="run once, with the machine's BLAS settings or with "
                             f"{' and '.join(blas_settings.VARIABLES)} unset (default from "
                             "the command line: both, side by side)")
    return parser


def main(argv=None) -> int:
    """One run, in one BLAS setting (default: the environment as it is)."""
    args = build_parser().parse_args(argv)
    setting = args.blas_settings or "machine"
    blas_settings.ensure_setting(setting, __file__,
                                 sys.argv[1:] if argv is None else list(argv))
    blas = blas_settings.record(setting)
    shapes, repeat = (QUICK_SHAPES, 1) if args.quick else (SHAPES, args.repeat)
    header = (f"{'layer':24s} {'input (N, C, H, W)':20s} {'reference':>10s} "
              f"{'float64':>10s} {'float32':>10s} {'ratio64':>8s} {'ratio32':>8s}")
    print("backward pass, best of", repeat, "(times in ms; ratio = reference / generated); "
          f"BLAS ({setting}): {blas_settings.describe_pools(blas['threadpools'])}")
    print(header)
    print("-" * len(header))
    rows = []
    for description, layer, batch, size in shapes:
        times = measure(layer, batch, size, repeat)
        shape = str((batch, layer.in_channels, *size))
        rows.append({"layer": description, "input": shape, **times})
        print(f"{description:24s} {shape:20s} {times['reference'] * 1e3:10.1f} "
              f"{times['float64'] * 1e3:10.1f} {times['float32'] * 1e3:10.1f} "
              f"{times['reference'] / times['float64']:8.1f} "
              f"{times['reference'] / times['float32']:8.1f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"blas": blas, "repeat": repeat, "rows": rows},
                                        indent=2) + "\n")
    return 0


def format_side_by_side(results) -> str:
    """The two runs of :func:`cli` in one table, each cell ``machine / unset``."""
    lines = blas_settings.header_lines(results)
    lines.append("backward pass, times in ms, each cell: " + " / ".join(blas_settings.SETTINGS))
    header = (f"{'layer':24s} {'input (N, C, H, W)':20s} {'reference':>17s} "
              f"{'float64':>17s} {'float32':>17s}")
    lines += [header, "-" * len(header)]
    for index, row in enumerate(results[0]["rows"]):
        cells = [" / ".join(f"{result['rows'][index][key] * 1e3:.1f}" for result in results)
                 for key in ("reference", "float64", "float32")]
        lines.append(f"{row['layer']:24s} {row['input']:20s} " +
                     " ".join(f"{cell:>17s}" for cell in cells))
    return "\n".join(lines)


def cli(argv=None) -> int:
    """The command line: both BLAS settings side by side, unless one is asked for."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if (any(a == blas_settings.OPTION or a.startswith(blas_settings.OPTION + "=")
            for a in argv) or "-h" in argv or "--help" in argv):
        return main(argv)
    args = build_parser().parse_args(argv)
    results = blas_settings.run_both(__file__, argv)
    print(format_side_by_side(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(
            {"variables": list(blas_settings.VARIABLES),
             "blas_settings": dict(zip(blas_settings.SETTINGS, results))}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
