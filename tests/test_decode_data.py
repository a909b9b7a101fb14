"""Structure checks for the published decode/serving measurements in
tests/data/decode_measurements_2026.yaml.

The file feeds the roofline latency validation, so a malformed row would silently skew a fit or a
held-out error. These checks pin what every row must carry (a source, positive finite numbers, the
project's hash split) and spot-check a few values against their sources, so a transcription
slip in a regenerated file shows up here."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import pytest
import yaml

DATA = Path(__file__).parent / "data"
NEW = DATA / "decode_measurements_2026.yaml"
OLD = DATA / "decode_measurements.yaml"

REQUIRED = [
    *("id", "model", "arch", "gpu", "num_gpus", "tensor_parallel_size", "kind", "batch"),
    *("concurrency", "prompt_tokens", "output_tokens", "context", "weight_dtype", "kv_dtype"),
    *("engine", "engine_version", "cuda_graphs", "measured", "source", "notes", "split"),
]
KINDS = {"decode_step", "generate_rate", "serving_tpot", "ttft"}
ARCHS = {"dense", "moe", "moe_mla"}
DTYPES = {"fp16", "bf16", "fp8", "int8", "int4", "mxfp4", "nvfp4", "q4_0", "q8_0", "q4_k_m"}


def _records(path: Path) -> list[dict]:
    with path.open() as f:
        return yaml.safe_load(f)["records"]


RECORDS = _records(NEW)


def _heldout(row_id: str) -> bool:
    """The project-wide split rule, chosen before any fitting (BRIEF.md)."""
    return int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % 3 == 0


def _pos_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def test_schema_version_and_size():
    with NEW.open() as f:
        assert yaml.safe_load(f)["schema_version"] == 2
    assert len(RECORDS) >= 120
    assert len(RECORDS) + len(_records(OLD)) >= 150


def test_ids_unique_across_both_files():
    ids = [r["id"] for r in RECORDS] + [r["id"] for r in _records(OLD)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("r", RECORDS, ids=lambda r: r["id"])
def test_row_structure(r):
    assert set(REQUIRED) <= set(r), set(REQUIRED) - set(r)
    assert r["kind"] in KINDS
    assert r["arch"] in ARCHS
    assert r["split"] == ("heldout" if _heldout(r["id"]) else "train")
    assert str(r["source"]).startswith("https://")
    assert isinstance(r["notes"], str) and len(r["notes"]) > 20
    assert isinstance(r["model"], str) and "/" in r["model"]
    assert r["cuda_graphs"] in (True, False, None)
    assert r["weight_dtype"] is None or r["weight_dtype"] in DTYPES
    assert r["kv_dtype"] is None or r["kv_dtype"] in DTYPES
    for key in ("num_gpus", "tensor_parallel_size"):
        assert r[key] is None or _pos_int(r[key]), key
    if r["num_gpus"] and r["tensor_parallel_size"]:
        assert r["num_gpus"] >= r["tensor_parallel_size"]
    for key in ("expert_parallel_size", "data_parallel_size"):
        assert r.get(key) is None or _pos_int(r[key]), key
    # A serving benchmark fixes the concurrency; everything else fixes the batch.
    if r["kind"] == "serving_tpot":
        assert _pos_int(r["concurrency"]) and r["batch"] is None
    else:
        assert _pos_int(r["batch"]) and r["concurrency"] is None


@pytest.mark.parametrize("r", RECORDS, ids=lambda r: r["id"])
def test_context_follows_the_header_convention(r):
    p, o, c = r["prompt_tokens"], r["output_tokens"], r["context"]
    for v in (p, o):
        assert v is None or (isinstance(v, int) and v >= 0)
    if c is None:  # only where the source fixes no lengths (ShareGPT) or does not state them
        assert (p is None and "ShareGPT" in r["notes"]) or "not stated" in r["notes"]
        return
    assert isinstance(c, (int, float)) and c >= 0
    if r["kind"] == "ttft":
        assert c == p
    elif p is not None and o is not None:
        assert c == p + o / 2


@pytest.mark.parametrize("r", RECORDS, ids=lambda r: r["id"])
def test_measured_values_are_positive_finite_numbers(r):
    m = r["measured"]
    assert isinstance(m, dict) and m
    for k, v in m.items():
        assert isinstance(v, (int, float)) and not isinstance(v, bool), k
        assert math.isfinite(v) and v > 0, k


def test_split_is_roughly_a_third_heldout():
    held = sum(r["split"] == "heldout" for r in RECORDS)
    assert 0.2 < held / len(RECORDS) < 0.47


@pytest.mark.parametrize(
    ("row_id", "key", "value"),
    [
        # ROCm/vllm docs/dev-docker/README.md, MI300X latency, Llama 3.1 70B FP8, TP8, BS1
        ("vllm-rocm-llama31-70b-mi300x-fp8-tp8-b1-i128-o2048", "e2e_latency_s", 17.236),
        # TensorRT-LLM performance.md, H100 FP8, Falcon 180B, batch 1024, TP8, 128/2048
        (
            "trtllm-falcon-180b-h100-sxm-fp8-tp8-b1024-i128-o2048",
            "aggregate_tokens_per_s_per_gpu",
            724,
        ),
        # LMDeploy a100_fp16.md, llama2-70b, batch 64, tp 4, 2048/2048, 50% token latency
        ("lmdeploy-llama2-70b-a100-fp16-tp4-b64-p2048-o2048", "token_latency_p50_s", 0.055),
        # InferenceX PR #1053, gpt-oss-120b on one MI300X, concurrency 256, median TPOT
        ("inferencex-gptoss120b-mi300x-mxfp4-vllm-tp1-c256-i1024-o1024", "tpot_ms_median", 58.3),
    ],
)
def test_spot_values_match_their_sources(row_id, key, value):
    (r,) = [r for r in RECORDS if r["id"] == row_id]
    assert r["measured"][key] == value
