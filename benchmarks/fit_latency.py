"""Fit kvplan's latency constants on the TRAINING rows only, report in and out of sample.

    python benchmarks/fit_latency.py            # fit, print tables, do not write
    python benchmarks/fit_latency.py --write    # also rewrite the FITTED block of
                                                # kvplan/core/roofline.py

Developer-only (needs scipy). The split is the project rule (benchmarks/roofline_vs_measured
.held_out: sha256(id) % 3 == 0 is held out), fixed before fitting; held-out rows never enter
the objective. Objective: mean |log(predicted / measured)| over the training rows (decode,
generate, serving and TTFT rows together), minimized with scipy's bounded Powell search
from the current constants. The fitted parameters:

  <platform>.bandwidth         weight-streaming efficiency, per platform (NVIDIA, AMD, Apple)
  <platform>.layer_overhead_s  fixed cost per layer per step (launches, syncs), per platform
  moe_layer_overhead_s         extra per MoE layer (router, top-k, permutation, small GEMMs)
  quantized_stream             weight-only dequantizing GEMV factor
  kv_bandwidth                 KV streaming relative to weight streaming
  nvlink/xgmi.allreduce_latency_s   per all-reduce, per link kind
  compute                      decode FLOP/s / dense peak
  prefill_compute              prefill FLOP/s / dense peak (TTFT, serving prefill share)

PCIe tensor parallelism has no training row, so its all-reduce latency is not fitted: it is
set to the NVLink value and the block says so.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from math import log
from pathlib import Path

from scipy.optimize import minimize  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))

import roofline_vs_measured as bench  # noqa: E402

from kvplan.core import roofline  # noqa: E402
from kvplan.core.roofline import Efficiency, link_of, platform_of  # noqa: E402

ROOFLINE = Path(roofline.__file__)
US = 1e-6
# name, lower, upper, scale (the optimizer sees value / scale)
PARAMS: tuple[tuple[str, float, float, float], ...] = (
    ("nvidia.bandwidth", 0.2, 1.0, 1.0),
    ("amd.bandwidth", 0.1, 1.0, 1.0),
    ("apple.bandwidth", 0.2, 1.0, 1.0),
    ("nvidia.layer_overhead_s", 0.0, 300 * US, US),
    ("amd.layer_overhead_s", 0.0, 500 * US, US),
    ("apple.layer_overhead_s", 0.0, 500 * US, US),
    ("moe_layer_overhead_s", 0.0, 1000 * US, US),
    ("quantized_stream", 0.3, 1.0, 1.0),
    ("kv_bandwidth", 0.1, 1.0, 1.0),
    ("nvlink.allreduce_latency_s", 0.0, 100 * US, US),
    ("xgmi.allreduce_latency_s", 0.0, 200 * US, US),
    ("compute", 0.1, 1.0, 1.0),
    ("prefill_compute", 0.1, 1.0, 1.0),
)
NOT_FITTED = {"pcie.allreduce_latency_s": "nvlink.allreduce_latency_s"}


def efficiency_for(values: dict[str, float]) -> bench.EffFor:
    """The profile a row gets under `values` (as kvplan.core.roofline.default_efficiency)."""
    cache: dict[tuple[str, str], Efficiency] = {}

    def eff(c: bench.Case) -> Efficiency:
        platform, _ = platform_of(c.gpu)
        link = link_of(c.gpu)
        key = (platform, link)
        if key not in cache:
            cache[key] = Efficiency.model_construct(
                **{
                    **Efficiency().model_dump(),
                    "bandwidth": values[f"{platform}.bandwidth"],
                    "layer_overhead_s": values[f"{platform}.layer_overhead_s"],
                    "allreduce_latency_s": values[f"{link}.allreduce_latency_s"],
                    "moe_layer_overhead_s": values["moe_layer_overhead_s"],
                    "quantized_stream": values["quantized_stream"],
                    "kv_bandwidth": values["kv_bandwidth"],
                    "compute": values["compute"],
                    "prefill_compute": values["prefill_compute"],
                }
            )
        return cache[key]

    return eff


def objective(cases: list[bench.Case], values: dict[str, float]) -> float:
    eff = efficiency_for(values)
    return sum(abs(log(bench.predict_seconds(c, eff(c)) / c.measured_s)) for c in cases) / len(
        cases
    )


def fit(cases: list[bench.Case]) -> dict[str, float]:
    train = [c for c in cases if not c.heldout]
    start = dict(roofline.FITTED)
    x0 = [min(max(start[n], lo), hi) / s for n, lo, hi, s in PARAMS]
    bounds = [(lo / s, hi / s) for _, lo, hi, s in PARAMS]

    def unpack(x: list[float]) -> dict[str, float]:
        values = dict(start)
        values.update({n: float(v) * s for (n, _, _, s), v in zip(PARAMS, x, strict=True)})
        for target, source in NOT_FITTED.items():
            values[target] = values[source]
        return values

    best = minimize(
        lambda x: objective(train, unpack(list(x))),
        x0,
        method="Powell",
        bounds=bounds,
        options={"maxiter": 20000, "xtol": 1e-4, "ftol": 1e-7},
    )
    return unpack(list(best.x))


def _fmt(name: str, v: float) -> str:
    if name.endswith("_s"):
        return f"{v / US:.1f}e-6"
    return f"{v:.3f}"


def block(values: dict[str, float], cases: list[bench.Case]) -> str:
    eff = efficiency_for(values)
    rows = bench.evaluate([c for c in cases if c.basis != "ttft"], eff)
    s = bench.regime_stats(rows)["all"]
    tr, ho = s["train"], s["held-out"]
    today = datetime.date.today().isoformat()
    lines = [
        "# ---- BEGIN FITTED CONSTANTS (benchmarks/fit_latency.py writes this block) "
        "---------------",
        f"# Fitted {today} by benchmarks/fit_latency.py on the {len([c for c in cases if not c.heldout])} "
        "TRAINING rows",
        "# (sha256(id) % 3 != 0) of tests/data/decode_measurements*.yaml: mean |log(pred/meas)|.",
        f"# Decode/serving rows: train median |pred/meas - 1| {tr['median_abs_dev']:.1%} "
        f"(n={tr['n']}), HELD-OUT {ho['median_abs_dev']:.1%} (n={ho['n']}),",
        f"# held-out worst {ho['worst_abs_dev']:.1%}. Per-regime tables: docs/roofline.md.",
        "# pcie.allreduce_latency_s: no PCIe tensor-parallel row to fit; set to the NVLink value.",
        f'FITTED_PROVENANCE = "benchmarks/fit_latency.py, {today}, training split only"',
        "FITTED: dict[str, float] = {",
    ]
    for name in roofline.FITTED:
        lines.append(f'    "{name}": {_fmt(name, values[name])},')
    lines += [
        "}",
        "# ---- END FITTED CONSTANTS "
        "---------------------------------------------------------------",
    ]
    return "\n".join(lines)


def write(text: str) -> None:
    src = ROOFLINE.read_text()
    new, n = re.subn(
        r"# ---- BEGIN FITTED CONSTANTS.*?# ---- END FITTED CONSTANTS -+",
        lambda _: text,
        src,
        flags=re.S,
    )
    if n != 1:
        raise SystemExit("FITTED block not found in kvplan/core/roofline.py")
    ROOFLINE.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the FITTED block")
    args = parser.parse_args(argv)
    cases, skipped = bench.load_cases()
    before = dict(roofline.FITTED)
    values = fit(cases)
    print("| constant | before | fitted |\n|---|---|---|")
    for name in roofline.FITTED:
        print(f"| {name} | {_fmt(name, before[name])} | {_fmt(name, values[name])} |")
    eff = efficiency_for(values)
    decode = [c for c in cases if c.basis != "ttft"]
    ttft = [c for c in cases if c.basis == "ttft"]
    print(f"\nTraining objective (mean |log ratio|): {objective([c for c in cases if not c.heldout], values):.4f}")
    print("\nDecode / serving rows:\n")
    print(bench.regime_table(bench.evaluate(decode, eff)))
    if ttft:
        print("\nTTFT rows:\n")
        print(bench.regime_table(bench.evaluate(ttft, eff)))
    print(f"\n{len(skipped)} rows skipped (see roofline_vs_measured.py).")
    text = block(values, cases)
    if args.write:
        write(text)
        print(f"\nWrote the FITTED block of {ROOFLINE}.")
    else:
        print("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
