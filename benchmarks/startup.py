"""Start-up benchmark: whole-process wall time of common answers, as a ratio to a baseline.

    python benchmarks/startup.py [--runs 21] [--peer] [--cpu-time] [--against DIR]

The baseline is `python -c "import typer, pydantic, yaml"` in the same environment: the
floor any typer/pydantic/yaml CLI pays before doing anything. Each round runs the baseline
and every command once, alternated (so drift and noise hit all of them alike); the figure
per command is the median over rounds of (command time / that round's baseline time).
A fresh interpreter every run, offline (HF_HUB_OFFLINE=1), output discarded.
kvplan is byte-compiled once before timing (`compileall` into its __pycache__ folders), as
`pip install kvplan` does: from an editable checkout with PYTHONDONTWRITEBYTECODE=1 set,
every run would otherwise compile kvplan's modules from source (~60 ms a run here), while
typer, pydantic and yaml in the baseline load from their installed .pyc files.
`--cpu-time` compares user+system CPU time instead (on a loaded, shared machine wall time
also counts waiting for a CPU). Targets (issue 14) are printed beside each ratio. Speed
targets live here, never in tests. `--peer` adds hf-mem (if installed) for comparison.
`--against DIR` also times every command from another checkout of kvplan (e.g.
`git archive main | tar -x -C /tmp/main`), in the same rounds against the same baseline,
so a before/after comparison is not skewed by a machine that got busier in between.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY = str(ROOT / "configs" / "examples" / "kvplan.yaml")
BASELINE = [sys.executable, "-c", "import typer, pydantic, yaml"]
KV = [sys.executable, "-m", "kvplan"]

# (label, argv, target ratio or None)
COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("size", [*KV, "size", "meta-llama/Llama-2-70b"], 1.2),
    ("size --json", [*KV, "size", "meta-llama/Llama-2-70b", "--json"], 1.2),
    ("--help", [*KV, "--help"], 0.8),
    (
        "fit",
        [*KV, "fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--ctx", "32768"],
        1.3,
    ),
    (
        "roofline",
        [*KV, "roofline", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm"],
        1.3,
    ),
    ("pick-g", [*KV, "pick-g", "--gpu", "a100-80gb", "--ctx", "65536", "--batch", "32"], 1.4),
    ("check", [*KV, "check", POLICY], 1.6),
]


CPU_TIME = False


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _time(argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    """Wall time of one run (or, with --cpu-time, the user + system CPU time it used);
    `python -m kvplan` imports the kvplan of `cwd`, the checkout it runs in."""
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    return _children_cpu() - cpu if CPU_TIME else time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--only", nargs="*", help="labels to run (default: all)")
    parser.add_argument(
        "--peer",
        nargs="?",
        const="hf-mem",
        help="also time `hf-mem --help` (the peer tool; give its path if not on PATH)",
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="ratio of user+system CPU time instead of wall time (for a loaded, shared machine)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another kvplan checkout to time in the same rounds (shown as 'label @DIR')",
    )
    args = parser.parse_args()
    global CPU_TIME
    CPU_TIME = args.cpu_time
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_COLOR": "1"}
    commands = [c for c in COMMANDS if not args.only or c[0] in args.only]
    hf_mem = shutil.which(args.peer) if args.peer else None
    if hf_mem:
        commands.append(("hf-mem --help", [hf_mem, "--help"], None))
    # The installed condition: kvplan's .pyc written once (pip byte-compiles on install).
    trees = [ROOT] + ([args.against.resolve()] if args.against else [])
    for tree in trees:
        compileall.compile_dir(tree / "kvplan", quiet=1)
    runs = [
        (label if tree == ROOT else f"{label} @{tree.name}", argv, target, tree)
        for label, argv, target in commands
        for tree in (trees if argv[: len(KV)] == KV else [ROOT])
    ]
    for _, argv, _, tree in runs:  # warm the file cache
        _time(argv, env, tree)
    ratios: dict[str, list[float]] = {label: [] for label, _, _, _ in runs}
    walls: dict[str, list[float]] = {label: [] for label, _, _, _ in runs}
    base: list[float] = []
    for n in range(args.runs):
        b = _time(BASELINE, env)
        base.append(b)
        for label, argv, _, tree in runs if n % 2 == 0 else reversed(runs):
            t = _time(argv, env, tree)
            walls[label].append(t)
            ratios[label].append(t / b)
    print(
        f"python {sys.version.split()[0]} on {os.cpu_count()} CPUs, {args.runs} rounds, "
        f"{'CPU time' if CPU_TIME else 'wall time'}, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"baseline `import typer, pydantic, yaml`: median {statistics.median(base) * 1e3:.0f} ms")
    width = max(16, *(len(label) for label, _, _, _ in runs))
    for label, _, target, _ in runs:
        ratio = statistics.median(ratios[label])
        ok = "" if target is None else ("ok" if ratio <= target else "OVER")
        tgt = "" if target is None else f"target <= {target:.2f}x"
        median_ms = statistics.median(walls[label]) * 1e3
        print(f"{label:{width}s} {ratio:5.2f}x  (median {median_ms:5.0f} ms)  {tgt} {ok}")


if __name__ == "__main__":
    main()
