"""Time generated conv2d backward passes against the im2col reference.

    python benchmarks/bench_codegen.py            # realistic shapes, best of 3
    python benchmarks/bench_codegen.py --quick    # small shapes, a smoke run

For each shape it generates the layer's module (symbackprop.load), checks that its
gradients agree with tests/reference.py, then prints the best wall time of the
reference's ``conv2d_backward`` (im2col/col2im, float64) and of the generated
``backward`` in float64 and float32, and the ratio reference / generated (above 1:
the generated code is faster).  Targets are set by the performance issue; this
script only measures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, one repeat")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args(argv)
    shapes, repeat = (QUICK_SHAPES, 1) if args.quick else (SHAPES, args.repeat)
    header = (f"{'layer':24s} {'input (N, C, H, W)':20s} {'reference':>10s} "
              f"{'float64':>10s} {'float32':>10s} {'ratio64':>8s} {'ratio32':>8s}")
    print("backward pass, best of", repeat, "(times in ms; ratio = reference / generated)")
    print(header)
    print("-" * len(header))
    for description, layer, batch, size in shapes:
        times = measure(layer, batch, size, repeat)
        shape = str((batch, layer.in_channels, *size))
        print(f"{description:24s} {shape:20s} {times['reference'] * 1e3:10.1f} "
              f"{times['float64'] * 1e3:10.1f} {times['float32'] * 1e3:10.1f} "
              f"{times['reference'] / times['float64']:8.1f} "
              f"{times['reference'] / times['float32']:8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
