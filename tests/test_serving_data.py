"""Structure and internal-consistency checks of the collected serving data.

tests/data/serving_benchmarks.yaml holds published serving-benchmark operating points (for
validating a future `kvplan plan`); configs/workloads.yaml holds published workload shapes
and configs/gpu_prices.yaml published GPU rental prices. These tests cannot make the data
true, but they catch transcription slips: every printed throughput must agree with the
printed totals and duration (output tok/s = generated tokens / duration, and so on), ids
are unique, the held-out split follows the project-wide hash rule, and every row names its
source.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "tests" / "data" / "serving_benchmarks.yaml"
WORKLOADS = ROOT / "configs" / "workloads.yaml"
PRICES = ROOT / "configs" / "gpu_prices.yaml"

ENGINES = {"vllm", "vllm-ascend", "sglang", "trtllm", "mindie"}
MEASURED_KEYS = {
    # vllm bench serve / sglang bench_serving block, as printed
    "request_throughput_rps",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "peak_output_tokens_per_s",
    "peak_concurrent_requests",
    "ttft_mean_ms",
    "ttft_median_ms",
    "ttft_p99_ms",
    "tpot_mean_ms",
    "tpot_median_ms",
    "tpot_p99_ms",
    "itl_mean_ms",
    "itl_median_ms",
    "itl_p99_ms",
    "e2el_mean_ms",
    "e2el_median_ms",
    "e2el_p99_ms",
    "duration_s",
    "total_input_tokens",
    "total_output_tokens",
    "successful_requests",
    # tables that do not say mean or median
    "ttft_ms",
    "tpot_ms",
    "throughput_tokens_per_s",
    "throughput_tokens_per_s_per_gpu",
}


def _load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict)
    return data


def _records() -> list[dict[str, Any]]:
    data = _load(BENCH)
    assert data["schema_version"] == 1
    records = data["records"]
    assert isinstance(records, list)
    return records


def _heldout(row_id: str) -> bool:
    """The project-wide split rule (BRIEF): held-out iff sha256(id) % 3 == 0."""
    return int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % 3 == 0


def _close(a: float, b: float, rel: float, abs_: float = 0.0) -> bool:
    return abs(a - b) <= max(rel * abs(b), abs_)


RECORDS = _records()
FULL_BLOCKS = [r for r in RECORDS if "duration_s" in r["measured"]]


def test_enough_points_and_unique_ids() -> None:
    ids = [r["id"] for r in RECORDS]
    assert len(ids) >= 50
    duplicated = [i for i, n in Counter(ids).items() if n > 1]
    assert duplicated == []


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: r["id"])
def test_record_structure(rec: dict[str, Any]) -> None:
    assert rec["split"] == ("heldout" if _heldout(rec["id"]) else "train")
    src = rec["source"]
    assert src.startswith("https://") or ("@" in src and ":" in src), src
    assert rec["engine"] in ENGINES
    assert isinstance(rec["model"], str) and rec["model"]
    assert isinstance(rec["gpu"], str) and rec["gpu"]
    tp, pp = rec["tensor_parallel_size"], rec["pipeline_parallel_size"]
    assert isinstance(rec["num_gpus"], int) and rec["num_gpus"] >= 1
    assert rec["num_gpus"] % (tp * pp) == 0
    work, load = rec["workload"], rec["load"]
    assert work["dataset"] in {"sharegpt", "random"}
    if work["dataset"] == "random":
        assert work["input_len"] > 0 and work["output_len"] > 0
    # exactly one of: a client concurrency cap, or an (infinite) request rate
    assert (load["max_concurrency"] is None) != (load["request_rate"] is None)
    measured = rec["measured"]
    assert measured and set(measured) <= MEASURED_KEYS
    for key, value in measured.items():
        assert isinstance(value, (int, float)) and not isinstance(value, bool), key
        assert math.isfinite(value) and value > 0, key


@pytest.mark.parametrize("rec", FULL_BLOCKS, ids=lambda r: r["id"])
def test_printed_rates_agree_with_printed_totals(rec: dict[str, Any]) -> None:
    """vllm bench serve prints totals and rates; a transcription slip breaks the identity.

    output tok/s = generated tokens / duration, total tok/s = (input + generated) / duration,
    req/s = successful requests / duration. Rates are printed to 2 decimals, so allow 1 %
    (0.006 req/s absolute for small request rates).
    """
    m = rec["measured"]
    dur = m["duration_s"]
    assert _close(m["total_output_tokens"] / dur, m["output_tokens_per_s"], 0.01)
    total = (m["total_input_tokens"] + m["total_output_tokens"]) / dur
    assert _close(total, m["total_tokens_per_s"], 0.01)
    assert _close(m["successful_requests"] / dur, m["request_throughput_rps"], 0.01, 0.006)
    work = rec["workload"]
    assert work["num_requests"] == m["successful_requests"]
    mean_in = m["total_input_tokens"] / m["successful_requests"]
    assert work["mean_input_tokens"] == pytest.approx(mean_in, abs=0.05)
    if work["dataset"] == "random":
        assert _close(mean_in, work["input_len"], 0.05)
    # percentiles are ordered as printed
    for name in ("ttft", "tpot", "itl"):
        assert m[f"{name}_median_ms"] <= m[f"{name}_p99_ms"]


def test_no_block_printed_twice_under_different_settings() -> None:
    """A block copied onto another page (different GPU or command) is a source error."""
    seen: dict[str, str] = {}
    for rec in FULL_BLOCKS:
        key = json.dumps(rec["measured"], sort_keys=True)
        assert key not in seen, (rec["id"], seen.get(key))
        seen[key] = rec["id"]


def test_per_gpu_throughput_matches_total_where_both_printed() -> None:
    """MI300X tables print total and per-GPU output throughput; per GPU x GPUs = total
    (integers as printed, so allow 1 token/s per GPU of rounding)."""
    both = [
        r
        for r in RECORDS
        if {"throughput_tokens_per_s", "throughput_tokens_per_s_per_gpu"} <= set(r["measured"])
    ]
    assert len(both) >= 10
    for r in both:
        m = r["measured"]
        per_gpu = m["throughput_tokens_per_s"] / r["num_gpus"]
        assert abs(per_gpu - m["throughput_tokens_per_s_per_gpu"]) <= 1.0, r["id"]


def test_workloads_structure() -> None:
    data = _load(WORKLOADS)
    assert data["schema_version"] == 1
    ids = [w["id"] for w in data["workloads"]]
    assert len(ids) == len(set(ids))
    for w in data["workloads"]:
        assert w["kind"] in {"trace", "benchmark"}
        assert w["source"].startswith("https://")
        for side in ("input_tokens", "output_tokens"):
            for value in (w.get(side) or {}).values():
                assert value > 0
        stats = w.get("input_tokens") or {}
        if {"median", "p90", "p99", "max"} <= set(stats):
            assert stats["median"] <= stats["p90"] <= stats["p99"] <= stats["max"]


def test_workload_figures_agree_with_publisher_where_both_given() -> None:
    """Our computed means must agree (to the publisher's integer) with the printed averages."""
    data = _load(WORKLOADS)
    checked = 0
    for w in data["workloads"]:
        stated = w.get("stated_by_source")
        if not stated or not w.get("computed_from"):
            continue
        assert w["requests"] == stated["requests"]
        assert abs(w["input_tokens"]["mean"] - stated["avg_input_tokens"]) < 1
        assert abs(w["output_tokens"]["mean"] - stated["avg_output_tokens"]) < 1
        checked += 1
    assert checked >= 2


def test_gpu_prices_structure() -> None:
    data = _load(PRICES)
    assert data["schema_version"] == 1
    ids = [p["id"] for p in data["prices"]]
    assert len(ids) == len(set(ids))
    for p in data["prices"]:
        assert p["source"] and p["date"]
        assert isinstance(p["first_hand"], bool)
        per_gpu = p.get("usd_per_gpu_hour")
        per_inst = p.get("usd_per_instance_hour")
        assert per_gpu is not None or per_inst is not None
        if per_gpu is not None and per_inst is not None:
            # the printed per-GPU price is the instance price over its GPUs
            assert _close(per_inst / p["gpus_per_instance"], per_gpu, 0.002, 0.001)
