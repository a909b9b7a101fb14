"""Structure checks for tests/data/engine_logs.yaml (real engine start-up logs).

The file is hand-transcribed from public logs, so these tests guard the
transcription: every record carries its provenance (source, verbatim raw_log),
the train/held-out split follows the project rule
(heldout iff int(sha256(id), 16) % 3 == 0), and every number recorded under
``logged`` can be found in the raw log text it was copied from. A record without an
exact engine release carries ``log_date`` (the date the log was posted, ISO YYYY-MM-DD, or
null when unknown), which the harness uses to pick the release current at that date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DATA = Path(__file__).parent / "data" / "engine_logs.yaml"
OLD = Path(__file__).parent / "data" / "vllm_kv_logs.yaml"

REQUIRED = (
    "id",
    "split",
    "engine",
    "engine_version",
    "platform",
    "gpu",
    "num_gpus",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "model",
    "model_kind",
    "kv_cache_dtype",
    "memory_knob",
    "gpu_memory_utilization",
    "gpu_memory_utilization_is_default",
    "max_model_len",
    "logged",
    "raw_log",
    "source",
    "notes",
)
ENGINES = {"vllm", "sglang", "trtllm"}
PLATFORMS = {"cuda", "rocm"}
KNOBS = {"gpu_memory_utilization", "mem_fraction_static", "free_gpu_memory_fraction"}
KINDS = {
    "dense",
    "moe",
    "mla",
    "sliding_window",
    "chunked_local_attention",
    "hybrid",
    "multimodal",
}


# an exact release: "0.19.0", "0.26.1rc1.dev608+g99a10304d", "0.17.1 (ROCm wheel)"; not
# null, a major.minor only ("0.8 (per issue title)") or one the notes infer ("inferred")
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _load() -> list[dict[str, Any]]:
    doc = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    assert doc["schema_version"] == 1
    records = doc["records"]
    assert isinstance(records, list)
    return records


RECORDS = _load()


def _split(row_id: str) -> str:
    heldout = int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % 3 == 0
    return "heldout" if heldout else "train"


def test_enough_records_with_unique_ids_not_in_the_old_file() -> None:
    ids = [r["id"] for r in RECORDS]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)
    old = {r["id"] for r in yaml.safe_load(OLD.read_text(encoding="utf-8"))["records"]}
    assert not old & set(ids)


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: str(r.get("id")))
def test_record_structure(rec: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED if k not in rec]
    assert not missing, missing
    assert rec["split"] == _split(rec["id"])
    assert rec["engine"] in ENGINES
    assert rec["platform"] in PLATFORMS
    assert rec["memory_knob"] in KNOBS
    assert set(rec["model_kind"]) <= KINDS and rec["model_kind"]
    # any public page a reader can open (issue threads, repositories, vendor blogs, forums)
    assert str(rec["source"]).startswith("https://")
    assert isinstance(rec["raw_log"], str) and rec["raw_log"].strip()
    assert isinstance(rec["logged"], dict) and rec["logged"]
    tp, pp = rec["tensor_parallel_size"], rec["pipeline_parallel_size"]
    if tp is not None and pp is not None and rec["num_gpus"] is not None:
        assert rec["num_gpus"] >= tp * pp


def _number_forms(value: float | int) -> set[str]:
    """Textual forms a printed number may take (the log may pad decimals)."""
    if isinstance(value, bool):
        raise TypeError("logged values are numbers, not booleans")
    if isinstance(value, int):
        return {str(value)}
    text = repr(value)
    return {text, text.rstrip("0").rstrip(".")}


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: str(r.get("id")))
def test_logged_numbers_appear_in_raw_log(rec: dict[str, Any]) -> None:
    # Thousands separators ("476,016", "123 399") are removed so they match 476016;
    # the untouched text is searched too, so no number is lost by the rewrite.
    raw = rec["raw_log"]
    text = re.sub(r"(?<=\d)[, \u2009\u202f](?=\d{3}(?!\d))", "", raw)
    tokens = set()
    for pattern in (r"\d+(?:\.\d+)?", r"-\d+(?:\.\d+)?"):  # the second keeps negative values
        tokens |= set(re.findall(pattern, text)) | set(re.findall(pattern, raw))
    for key, value in rec["logged"].items():
        if value is None:
            continue
        forms = _number_forms(value)
        # Allow trailing zeros the log printed (e.g. 0.950000) by normalising tokens.
        norm = {t.rstrip("0").rstrip(".") if "." in t else t for t in tokens}
        assert forms & (tokens | norm), f"{key}={value} not found in raw_log"


def _exact_version(rec: dict[str, Any]) -> bool:
    text = rec.get("engine_version")
    return text is not None and "inferred" not in str(text) and bool(EXACT_VERSION.match(str(text)))


OLD_RECORDS = yaml.safe_load(OLD.read_text(encoding="utf-8"))["records"]


@pytest.mark.parametrize("rec", RECORDS + OLD_RECORDS, ids=lambda r: str(r.get("id")))
def test_log_date_is_an_iso_date_and_present_without_an_exact_release(rec: dict[str, Any]) -> None:
    """log_date is optional; where present it is null or a real YYYY-MM-DD date no later
    than the data's collection (2026-11-30), and a record without an exact engine_version
    must carry it (null stated explicitly when the date is unknown)."""
    if not _exact_version(rec):
        assert "log_date" in rec, "no exact engine_version: log_date (or null) is required"
    day = rec.get("log_date")
    if day is None:
        return
    assert isinstance(day, str) and ISO_DATE.match(day), day  # quoted, so YAML keeps a string
    assert dt.date(2023, 1, 1) <= dt.date.fromisoformat(day) <= dt.date(2026, 11, 30)


def test_log_date_counts() -> None:
    """Hand-counted when the field was added (2026-11-30): 57 records without an exact
    release, 53 of them dated, 4 unknown (all TensorRT-LLM); then the OCI troubleshooting
    guide's V0 row (release inferred, the guide does not date its log): 58, 53; then the
    four SGLang docs-CI rows (SGLang installed from main, dated by their log lines) and the
    two SGLang GB300 replay jobs (image build, no release printed): 64, 59; then sglang
    PR #4826's Gemma-3 row (release inferred from the PR date): 65, 60; the TRT-LLM#4275 row
    got its stated release (0.19.0) and the tensorrtllm_backend#625 row came in with "0.13"
    and its issue date: 65, 61; then the llm-tracker.info MI300X SGLang bench_latency row
    (built from source, dated by its page's commit and log line): 66, 62."""
    undated = [r for r in RECORDS + OLD_RECORDS if not _exact_version(r)]
    dated = [r for r in undated if r.get("log_date")]
    assert (len(undated), len(dated)) == (66, 62)
