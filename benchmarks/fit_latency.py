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
  mla_layer_overhead_s         extra per MLA layer (later engine releases)
  mla_early_layer_overhead_s   extra per MLA layer on early-2025 releases (early_mla_release)
  mla_prefill_compute          prefill FLOP/s / dense peak of a model with MLA layers

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

import roofline_vs_measured as bench

from kvplan.core import roofline
from kvplan.core.roofline import (
    SERVING_ENGINES,
    Efficiency,
    early_mla_release,
    link_of,
    platform_of,
)

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
    ("nvidia.layer_floor_s", 0.0, 500 * US, US),
    ("amd.layer_floor_s", 0.0, 500 * US, US),
    ("apple.layer_floor_s", 0.0, 500 * US, US),
    ("moe_layer_overhead_s", 0.0, 1000 * US, US),
    ("nvidia.moe_layer_overhead_s", 0.0, 1000 * US, US),
    ("amd.moe_layer_overhead_s", 0.0, 1000 * US, US),
    ("quantized_stream", 0.3, 1.0, 1.0),
    ("kv_bandwidth", 0.1, 1.0, 1.0),
    ("nvlink.allreduce_latency_s", 0.0, 100 * US, US),
    ("xgmi.allreduce_latency_s", 0.0, 200 * US, US),
    ("nvlink.serving.allreduce_latency_s", 0.0, 100 * US, US),
    ("allreduce_hop_latency_s", 0.0, 50 * US, US),
    ("prefill_overhead_s", 0.0, 20000 * US, US),
    ("compute", 0.1, 1.0, 1.0),
    ("nvidia.prefill_compute", 0.1, 1.0, 1.0),
    ("amd.prefill_compute", 0.05, 1.0, 1.0),
    ("prefill_compute", 0.1, 1.0, 1.0),
    ("mla_layer_overhead_s", 0.0, 1000 * US, US),
    ("kv_context_scale", 0.0, 1e6, 1e3),
    ("mla_early_layer_overhead_s", 0.0, 2000 * US, US),
    ("mla_prefill_compute", 0.01, 1.0, 1.0),
)
# Not identifiable from the training rows, so copied (and the FITTED block says so): no PCIe
# tensor-parallel row, no MoE model measured on Apple silicon.
NOT_FITTED = {
    "apple.prefill_compute": "nvidia.prefill_compute",
    "pcie.allreduce_latency_s": "nvlink.allreduce_latency_s",
    "pcie.serving.allreduce_latency_s": "nvlink.serving.allreduce_latency_s",
    "xgmi.serving.allreduce_latency_s": "xgmi.allreduce_latency_s",
    "apple.moe_layer_overhead_s": "nvidia.moe_layer_overhead_s",
}
# Model variants compared by k-fold cross-validation INSIDE the training rows (the held-out
# rows play no part in choosing): the parameters each one pins to 0.
FLOORS = ("nvidia.layer_floor_s", "amd.layer_floor_s", "apple.layer_floor_s")
ADDITIVE = ("nvidia.layer_overhead_s", "amd.layer_overhead_s", "apple.layer_overhead_s")
HOP = ("allreduce_hop_latency_s",)
TTFT = ("prefill_overhead_s",)
MOE_PLATFORM = ("nvidia.moe_layer_overhead_s", "amd.moe_layer_overhead_s")
ENGINE_AR = ("nvlink.serving.allreduce_latency_s",)
PREFILL_PLATFORM = ("nvidia.prefill_compute", "amd.prefill_compute", "apple.prefill_compute")
NEW = ("mla_layer_overhead_s", "kv_context_scale")
MLA_RELEASE = ("mla_early_layer_overhead_s",)
MLA_PREFILL = ("mla_prefill_compute",)
ROUND4 = MLA_RELEASE + MLA_PREFILL  # refinements of the fourth CV round
ALTERNATIVES = (
    *MOE_PLATFORM,
    "moe_layer_overhead_s",
    *ENGINE_AR,
    *PREFILL_PLATFORM,
    "prefill_compute",
    *ROUND4,
)
SHARED_MOE = ("moe_layer_overhead_s",)
OLD = PREFILL_PLATFORM + NEW + ROUND4  # refinements after the first CV round
ROUND3 = FLOORS + HOP + TTFT + SHARED_MOE + ROUND4  # off in the third round's variants
VARIANTS: dict[str, tuple[str, ...]] = {
    # round 4: the round-3 choice (full-kvctx) with the MLA refinements
    "full-kvctx+mla-release+mla-prefill": FLOORS
    + HOP
    + TTFT
    + SHARED_MOE
    + ("prefill_compute", "kv_context_scale"),
    "full-kvctx+mla-release": FLOORS
    + HOP
    + TTFT
    + SHARED_MOE
    + ("prefill_compute", "kv_context_scale")
    + MLA_PREFILL,
    "full-kvctx+mla-prefill": FLOORS
    + HOP
    + TTFT
    + SHARED_MOE
    + ("prefill_compute", "kv_context_scale")
    + MLA_RELEASE,
    # round 3
    "full": (*ROUND3, "prefill_compute"),
    "full-mla": (*ROUND3, "prefill_compute", "mla_layer_overhead_s"),
    "full-kvctx": (*ROUND3, "prefill_compute", "kv_context_scale"),
    "full-prefill-per-platform": ROUND3 + PREFILL_PLATFORM,
    # rounds 1 and 2
    "additive+moe-per-platform": FLOORS + HOP + TTFT + SHARED_MOE + ENGINE_AR + OLD,
    "additive+moe-per-platform+hop": FLOORS + TTFT + SHARED_MOE + ENGINE_AR + OLD,
    "additive+moe-per-platform+engine-ar": FLOORS + HOP + TTFT + SHARED_MOE + OLD,
    "additive+moe-per-platform+engine-ar+hop": FLOORS + TTFT + SHARED_MOE + OLD,
    "additive": FLOORS + HOP + TTFT + MOE_PLATFORM + ENGINE_AR + OLD,
    "floor": ADDITIVE + HOP + TTFT + MOE_PLATFORM + ENGINE_AR + OLD,
    "floor+additive": HOP + TTFT + MOE_PLATFORM + ENGINE_AR + OLD,
    "additive+hop": FLOORS + TTFT + MOE_PLATFORM + ENGINE_AR + OLD,
    "additive+ttft": FLOORS + HOP + MOE_PLATFORM + ENGINE_AR + OLD,
    "additive+hop+ttft": FLOORS + MOE_PLATFORM + ENGINE_AR + OLD,
}
# A round-4 refinement a variant does not use equals what it refines (efficiency_for);
# mla_prefill_compute is then 0 (off: the platform's prefill efficiency).
TIED = {"mla_early_layer_overhead_s": "mla_layer_overhead_s"}
DEFAULT_VARIANT = "full-kvctx+mla-release"  # the lowest CV error (docs/roofline.md)
FOLDS = 5
# Multi-start: the objective has several local minima (bandwidth traded against overheads).
STARTS: tuple[dict[str, float], ...] = (
    {},
    {"nvidia.bandwidth": 0.75, "nvidia.layer_overhead_s": 20 * US, "nvidia.layer_floor_s": 40 * US},
    {"nvidia.bandwidth": 0.85, "nvidia.layer_overhead_s": 60 * US, "nvidia.layer_floor_s": 0.0},
)


def efficiency_for(values: dict[str, float]) -> bench.EffFor:
    """The profile a row gets under `values` (as kvplan.core.roofline.default_efficiency).
    A refinement a variant does not use is absent from `values`: the early MLA cost then
    equals the later one, the MLA prefill efficiency is off (the platform's)."""
    cache: dict[tuple[str, str, bool], Efficiency] = {}

    def eff(c: bench.Case) -> Efficiency:
        platform, _ = platform_of(c.gpu)
        link = link_of(c.gpu)
        if c.engine in SERVING_ENGINES and f"{link}.serving.allreduce_latency_s" in values:
            link = f"{link}.serving"  # as kvplan.core.roofline._link_key
        early = early_mla_release(c.engine, c.engine_version or None)
        key = (platform, link, early)
        if key not in cache:
            prefill = values.get(f"{platform}.prefill_compute", values.get("prefill_compute", 0.6))
            mla = values.get("mla_layer_overhead_s", 0.0)
            cache[key] = Efficiency.model_construct(
                **{
                    **Efficiency().model_dump(),
                    "bandwidth": values[f"{platform}.bandwidth"],
                    "layer_overhead_s": values[f"{platform}.layer_overhead_s"],
                    "layer_floor_s": values[f"{platform}.layer_floor_s"],
                    "allreduce_hop_latency_s": values["allreduce_hop_latency_s"],
                    "prefill_overhead_s": values["prefill_overhead_s"],
                    "allreduce_latency_s": values[f"{link}.allreduce_latency_s"],
                    "moe_layer_overhead_s": values.get(
                        f"{platform}.moe_layer_overhead_s", values.get("moe_layer_overhead_s", 0.0)
                    ),
                    "quantized_stream": values["quantized_stream"],
                    "kv_bandwidth": values["kv_bandwidth"],
                    "compute": values["compute"],
                    "prefill_compute": prefill,
                    "mla_layer_overhead_s": (
                        values.get("mla_early_layer_overhead_s", mla) if early else mla
                    ),
                    "mla_prefill_compute": values.get("mla_prefill_compute", 0.0),
                    "kv_context_scale": values.get("kv_context_scale", 0.0),
                }
            )
        return cache[key]

    return eff


def objective(cases: list[bench.Case], values: dict[str, float]) -> float:
    eff = efficiency_for(values)
    return sum(abs(log(bench.predict_seconds(c, eff(c)) / c.measured_s)) for c in cases) / len(
        cases
    )


def fit(
    cases: list[bench.Case],
    variant: str = DEFAULT_VARIANT,
    starts: tuple[dict[str, float], ...] = STARTS,
) -> dict[str, float]:
    """Constants minimizing the objective over the training rows among `cases` (held-out
    rows are dropped here, whatever the caller passes)."""
    train = [c for c in cases if not c.heldout]
    pinned = set(VARIANTS[variant])
    free = [p for p in PARAMS if p[0] not in pinned]
    best: tuple[float, dict[str, float]] | None = None
    for extra in starts:
        start = {**roofline.FITTED, **extra}
        for name in pinned:
            if name in ALTERNATIVES or name not in roofline.FITTED:
                start.pop(name, None)  # an alternative form this variant does not use
            else:
                start[name] = 0.0
        for name, *_ in free:
            start.setdefault(name, roofline.FITTED.get(name.split(".", 1)[-1], 0.0))

        def unpack(x: list[float], start: dict[str, float] = start) -> dict[str, float]:
            values = dict(start)
            values.update({n: float(v) * s for (n, _, _, s), v in zip(free, x, strict=True)})
            for target, source in NOT_FITTED.items():
                if source in values:
                    values[target] = values[source]
                else:
                    values.pop(target, None)
            return values

        x0 = [min(max(start[n], lo), hi) / s for n, lo, hi, s in free]
        found = minimize(
            lambda x, unpack=unpack: objective(train, unpack(list(x))),
            x0,
            method="Powell",
            bounds=[(lo / s, hi / s) for _, lo, hi, s in free],
            options={"maxiter": 20000, "xtol": 1e-4, "ftol": 1e-7},
        )
        values = unpack(list(found.x))
        score = objective(train, values)
        if best is None or score < best[0]:
            best = (score, values)
    assert best is not None
    return best[1]


def cross_validate(cases: list[bench.Case], variant: str, folds: int = FOLDS) -> float:
    """Mean |log ratio| on each fold of the TRAINING rows when fitted on the other folds
    (folds by sha256(id) // 3 % folds, so deterministic and disjoint from the split)."""
    train = [c for c in cases if not c.heldout]

    def fold(c: bench.Case) -> int:
        return int(bench.hashlib.sha256(c.id.encode()).hexdigest(), 16) // 3 % folds

    errors: list[float] = []
    for k in range(folds):
        inner = [c for c in train if fold(c) != k]
        outer = [c for c in train if fold(c) == k]
        values = fit(inner, variant, starts=STARTS[:1])
        eff = efficiency_for(values)
        errors += [abs(log(bench.predict_seconds(c, eff(c)) / c.measured_s)) for c in outer]
    return sum(errors) / len(errors)


def _value(values: dict[str, float], name: str) -> float:
    """A FITTED entry from the fitted values; a form the variant did not use falls back to
    the plain one (serving all-reduce latency -> the link's, per-platform -> shared)."""
    if name in values:
        return values[name]
    if name in TIED:
        return _value(values, TIED[name])
    plain = name.replace(".serving", "")
    if plain in values:
        return values[plain]
    return values.get(name.split(".", 1)[-1], 0.0)


def _fmt(name: str, v: float) -> str:
    if name.endswith("_s"):
        return f"{v / US:.1f}e-6"
    return f"{v:.3f}"


def block(values: dict[str, float], cases: list[bench.Case], variant: str) -> str:
    eff = efficiency_for(values)
    rows = bench.evaluate([c for c in cases if c.basis != "ttft"], eff)
    s = bench.regime_stats(rows)["all"]
    tr, ho = s["train"], s["held-out"]
    today = datetime.date.today().isoformat()
    n_train = len([c for c in cases if not c.heldout])
    lines = [
        "# ---- BEGIN FITTED CONSTANTS (benchmarks/fit_latency.py writes this block) "
        "---------------",
        f"# Fitted {today} by benchmarks/fit_latency.py on the {n_train} TRAINING rows",
        "# (sha256(id) % 3 != 0) of tests/data/decode_measurements*.yaml: mean |log(pred/meas)|.",
        f"# Decode/serving rows: train median |pred/meas - 1| {tr['median_abs_dev']:.1%} "
        f"(n={tr['n']}), HELD-OUT {ho['median_abs_dev']:.1%} (n={ho['n']}),",
        f"# held-out worst {ho['worst_abs_dev']:.1%}. Per-regime tables: docs/roofline.md.",
        f"# Model variant {variant!r} (lowest {FOLDS}-fold CV error inside the training rows).",
        "# Not identifiable, copied: pcie.* all-reduce latency = nvlink.* (no PCIe TP row);",
        "# xgmi.serving = xgmi (every AMD TP row is vLLM/SGLang); apple MoE and prefill = nvidia",
        "# (no MoE or prefill row on Apple silicon). *_floor_s, hop, prefill_overhead_s,",
        "# kv_context_scale and mla_prefill_compute: refinements CV rejected, kept at 0 (off).",
        "# mla_early_layer_overhead_s: engine releases of early 2025 (early_mla_release).",
        f'FITTED_PROVENANCE = "benchmarks/fit_latency.py, {today}, training split only"',
        "FITTED: dict[str, float] = {",
    ]
    for name in roofline.FITTED:
        value = _value(values, name)
        lines.append(f'    "{name}": {_fmt(name, value)},')
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
    parser.add_argument(
        "--cv", action="store_true", help="first compare the model variants by k-fold CV"
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS), default=DEFAULT_VARIANT)
    parser.add_argument("--cv-variants", nargs="*", choices=sorted(VARIANTS))
    args = parser.parse_args(argv)
    cases, skipped = bench.load_cases()
    if args.cv:
        print(f"| variant | {FOLDS}-fold CV on training rows, mean abs log ratio |\n|---|---|")
        for name in args.cv_variants or VARIANTS:
            print(f"| {name} | {cross_validate(cases, name):.4f} |")
        print()
    before = dict(roofline.FITTED)
    values = fit(cases, args.variant)
    print("| constant | before | fitted |\n|---|---|---|")
    for name in roofline.FITTED:
        value = _value(values, name)
        print(f"| {name} | {_fmt(name, before[name])} | {_fmt(name, value)} |")
    eff = efficiency_for(values)
    decode = [c for c in cases if c.basis != "ttft"]
    ttft = [c for c in cases if c.basis == "ttft"]
    train_obj = objective([c for c in cases if not c.heldout], values)
    print(f"\nTraining objective (mean |log ratio|): {train_obj:.4f}")
    print("\nDecode / serving rows:\n")
    print(bench.regime_table(bench.evaluate(decode, eff)))
    if ttft:
        print("\nTTFT rows:\n")
        print(bench.regime_table(bench.evaluate(ttft, eff)))
    print(f"\n{len(skipped)} rows skipped (see roofline_vs_measured.py).")
    text = block(values, cases, args.variant)
    if args.write:
        write(text)
        print(f"\nWrote the FITTED block of {ROOFLINE}.")
    else:
        print("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
