"""How long the symbolic derivation takes, and how it grows with the input size.

    python benchmarks/bench_derive.py [--sizes 8 16 32 64] [--repeat 3]

Target (issue 2): a 1-channel 3x3 kernel, padding 1, on a 32x32 input derives in well
under a second.  Prints one row per size: products in z, median seconds for the
fast ``collect`` path, microseconds per product, and the growth against the previous
size; ``--diff`` adds the ``sympy.diff`` path (much slower) for the small sizes.
"""

from __future__ import annotations

import argparse
import statistics
import time

import symbackprop as sbp
from symbackprop.core.derivation import term_count


def median_seconds(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--diff", action="store_true", help="also time method='diff' (<= 16)")
    args = parser.parse_args()

    layer = sbp.Conv2d(kernel_size=3, padding=1)
    sbp.derive(layer, (4, 4))  # import and cache warm-up
    print(f"{layer.describe()}, batch 1")
    print(f"{'input':>7} {'products':>9} {'collect s':>10} {'us/product':>11} {'growth':>7}"
          + (f" {'diff s':>8}" if args.diff else ""))
    previous = None
    for size in args.sizes:
        products = term_count(layer, layer.input_shape((size, size)))
        size_hw = (size, size)
        seconds = median_seconds(lambda: sbp.derive(layer, size_hw), args.repeat)  # noqa: B023
        growth = f"{seconds / previous:6.1f}x" if previous else "      -"
        row = (f"{size:>4}x{size:<2} {products:>9,} {seconds:>10.3f} "
               f"{1e6 * seconds / products:>11.1f} {growth:>7}")
        if args.diff and size <= 16:
            diff_seconds = median_seconds(
                lambda: sbp.derive(layer, size_hw, method="diff", max_terms=10**7), 1)  # noqa: B023
            row += f" {diff_seconds:>8.2f}"
        print(row)
        previous = seconds


if __name__ == "__main__":
    main()
