"""Where a generated conv2d module's time goes: milliseconds per call of each helper.

    python benchmarks/profile_conv2d.py [--shapes C F] [--dtypes float32 float64] [--calls 10]

Every helper function of the module (``_fill_phase``, ``_join_phase``, ``_grad_on_grid``,
...) is wrapped with a timer, then ``backward`` and ``forward`` run ``--calls`` times;
it prints each helper's inclusive milliseconds per pass (a helper called by another is
counted in both), and what the pass spends outside the helpers: for the transposed
strategy the matrix products and the gathers of ``G``, written inline (im2col's are
inside ``_grads_on_grid``).  The GEMM limit of ``bench_conv2d.py`` is shown beside it.
Run it with ``OPENBLAS_NUM_THREADS=1`` to compare with the one-thread benchmark.  A
profile, not a benchmark: the timers cost a little, and nothing is interleaved.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_conv2d  # noqa: E402

import symbackprop as sbp  # noqa: E402

#: The helpers called by the pass functions themselves (their time is the pass's own).
PASSES = ("_forward", "_forward_fast", "_backward", "_backward_fast")


#: The key of ``spent`` that sums the helpers called from the pass itself (not nested).
OUTERMOST = "(all helpers)"


def instrument(module, spent):
    """Wrap every helper of ``module`` so that its inclusive time adds to ``spent``, and
    the time of helpers not called from another helper to ``spent[OUTERMOST]``."""
    depth = [0]
    for name in list(vars(module)):
        function = getattr(module, name)
        if not (name.startswith("_") and callable(function)) or name.startswith("__"):
            continue
        if name in PASSES or name in ("_check_array",):
            continue

        def timed(*arguments, _function=function, _name=name, **keywords):
            begin = time.perf_counter()
            depth[0] += 1
            try:
                return _function(*arguments, **keywords)
            finally:
                depth[0] -= 1
                seconds = time.perf_counter() - begin
                spent[_name] += seconds
                if depth[0] == 0:
                    spent[OUTERMOST] += seconds

        setattr(module, name, timed)



#: Small helpers not worth a column.
HIDDEN = {"_phase_slices", "_phase_rows", "_grid", OUTERMOST}


def profile(name, dtype, calls):
    batch, channels, height, width, out_channels, kernel, stride, padding = \
        bench_conv2d.SHAPES[name]
    layer = sbp.Conv2d(channels, out_channels, kernel_size=kernel, stride=stride,
                       padding=padding)
    module = sbp.load(layer)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, channels, height, width)).astype(dtype)
    w = rng.standard_normal(layer.weight_shape).astype(dtype)
    b = rng.standard_normal(out_channels).astype(dtype)
    grad_z = rng.standard_normal(layer.output_shape((height, width), batch)).astype(dtype)
    gemm_forward, gemm_backward = bench_conv2d.gemm_limits(layer, x.shape, dtype, rng)
    spent = collections.Counter()
    instrument(module, spent)
    rows = []
    for pass_name, run, gemm in (("backward", lambda: module.backward(x, w, b, grad_z),
                                  gemm_backward),
                                 ("forward", lambda: module.forward(x, w, b), gemm_forward)):
        run()
        spent.clear()
        totals, limits = [], []
        for _ in range(calls):
            begin = time.perf_counter()
            run()
            totals.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            gemm()
            limits.append(time.perf_counter() - begin)
        total = sum(totals) / calls
        helpers = {key: value / calls for key, value in spent.items() if key not in HIDDEN
                   and not key.startswith("_check")}
        rows.append({"shape": name, "dtype": np.dtype(dtype).name, "pass": pass_name,
                     "strategy": module.STRATEGY, "total": total,
                     "gemm": statistics.median(limits), "helpers": helpers,
                     "outside": total - spent[OUTERMOST] / calls})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["C", "F"],
                        choices=list(bench_conv2d.SHAPES))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args(argv)
    for name in args.shapes:
        for dtype in args.dtypes:
            for row in profile(name, np.dtype(dtype).type, args.calls):
                parts = ", ".join(f"{key} {value * 1e3:.2f}" for key, value in
                                  sorted(row["helpers"].items(), key=lambda item: -item[1])
                                  if value * 1e3 >= 0.01)
                print(f"{row['shape']} {row['dtype']} {row['pass']} ({row['strategy']}): "
                      f"{row['total'] * 1e3:.2f} ms, GEMM limit {row['gemm'] * 1e3:.2f} ms; "
                      f"outside the helpers {row['outside'] * 1e3:.2f}; {parts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
