"""Sweep throughput: scenarios per second, on one core (targets from issue 14).

    python benchmarks/sweep.py [--rows 4000000]

1. vectorised core: `kvplan.core.sweep.grid_rows` over (plan, ctx, batch), every column
   a fit row carries, decode latency included (target >= 20 million scenarios/s);
2. end to end: `kvplan.sweep(...)` (catalog models, scalar plans) written to Parquet and
   to JSON lines in a temporary folder (target >= 1 million scenarios/s); needs pyarrow
   for these two (the standard-library writers are correct but much slower).
Pinned to one thread (OMP/OPENBLAS/MKL) and, where the OS allows, one CPU. Best of
`--repeat` runs, as throughput benchmarks usually report. Speed targets live here, never
in the test suite.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

MODELS = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "google/gemma-2-9b-it",
    "openai/gpt-oss-120b",
    "deepseek-ai/DeepSeek-V3",
    "Qwen/Qwen3-Next-80B-A3B-Thinking",
    "mistralai/Mixtral-8x7B-v0.1",
    "Qwen/Qwen2.5-72B-Instruct",
]
GPUS = ["h100-sxm", "h200", "a100-80gb", "l40s"]


CLOCK = time.perf_counter


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = CLOCK()
        fn()
        best = min(best, CLOCK() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=4_000_000, help="end-to-end grid size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU time instead of wall time (on a shared, loaded "
        "machine this is the one-core throughput; wall time also counts waiting for a CPU)",
    )
    args = parser.parse_args()
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    print(
        f"clock: {'process CPU time' if args.cpu_time else 'wall time'}; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    import kvplan
    from kvplan.core.sweep import grid_rows
    from kvplan.presentation.sweep_view import has_pyarrow, write

    # 1. the vectorised core
    base = kvplan.sweep(MODELS, gpu=GPUS, tp=[1, 2, 4, 8], kv_dtype=["auto", "fp8"], ctx=[1])
    plans = base.plans
    ctx = [1024 * k for k in range(1, 129)]  # 128 contexts
    batch = list(range(1, 129))  # 128 batches
    rows = len(plans) * len(ctx) * len(batch)
    t = _best(lambda: grid_rows(plans, ctx, batch), args.repeat)
    print(f"plans {len(plans)}, grid {len(ctx)} ctx x {len(batch)} batch = {rows:,} rows")
    print(
        f"vectorised core : {rows / t / 1e6:6.1f} M scenarios/s  ({t * 1e3:.0f} ms)  target >= 20"
    )
    t = _best(lambda: grid_rows(plans, ctx, batch, latency=False), args.repeat)
    print(f"  (without decode latency: {rows / t / 1e6:6.1f} M scenarios/s)")

    # 2. end to end, catalog names to a file
    per_plan = max(1, args.rows // len(plans))
    side = max(1, int(per_plan**0.5))
    ctx2 = [512 * k for k in range(1, side + 1)]
    batch2 = list(range(1, side + 1))
    if not has_pyarrow():
        print("end to end: pyarrow not installed (pip install 'kvplan[parquet]'); skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("parquet", "jsonl"):
            out = str(Path(tmp) / f"sweep.{fmt}")

            def run(fmt: str = fmt, out: str = out) -> None:
                r = kvplan.sweep(
                    MODELS,
                    gpu=GPUS,
                    tp=[1, 2, 4, 8],
                    kv_dtype=["auto", "fp8"],
                    ctx=ctx2,
                    batch=batch2,
                )
                write(r, fmt, out)

            t = _best(run, max(1, args.repeat - 1))
            n = len(plans) * len(ctx2) * len(batch2)
            size = Path(out).stat().st_size
            print(
                f"end to end {fmt:8s}: {n / t / 1e6:6.2f} M scenarios/s  ({n:,} rows in "
                f"{t:.2f} s, {size / 1e6:.0f} MB)  target >= 1"
            )


if __name__ == "__main__":
    main()
