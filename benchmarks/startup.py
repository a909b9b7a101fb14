"""Start-up benchmark: wall time of common local answers (target: < 0.5 s each).

    python benchmarks/startup.py [--runs 10]

Runs each command as a user would (a fresh interpreter every time) and prints the median
and best wall time. Speed targets live here, not in the test suite.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ["size", "meta-llama/Llama-2-70b"],
    ["size", "deepseek-ai/DeepSeek-V3", "--json"],
    ["fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--ctx", "32768"],
    ["pick-g", "--gpu", "a100-80gb", "--ctx", "65536", "--batch", "32"],
    ["models"],
]
TARGET_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for cmd in COMMANDS:
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "kvplan", *cmd],
                check=True,
                capture_output=True,
                env={"HF_HUB_OFFLINE": "1", "PATH": ""},
            )
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        flag = "ok" if median < TARGET_S else "SLOW"
        print(
            f"{' '.join(cmd):70s} median {median * 1000:6.0f} ms  best "
            f"{min(times) * 1000:6.0f} ms  [{flag}]"
        )


if __name__ == "__main__":
    main()
