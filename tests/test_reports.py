"""Typed command results: fit and pick-g reports carry the answer and the latency there."""

from __future__ import annotations

import pytest
from conftest import catalog_spec, gpu

from kvplan.core.capacity import plan
from kvplan.core.deployment import Deployment
from kvplan.core.engines import Engine
from kvplan.core.reports import ModelRef, fit_report, pick_g_report
from kvplan.core.roofline import estimate_decode
from kvplan.units import GiB

REF = ModelRef(model="m", source="catalog")


def _plan(model: str, gpu_name: str) -> object:
    return plan(
        Deployment(
            spec=catalog_spec(model), gpu=gpu(gpu_name), engine=Engine.NONE, kv_memory=40 * GiB
        )
    )


def test_fit_latency_is_taken_at_the_answer():
    p = _plan("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm")
    report = fit_report(p, REF, ctx=8192, batch=None)
    # 40 GiB / (8192 tokens x 131,072 B/token = 1 GiB) = 40 sequences
    assert report.max_batch == 40
    point = report.latency
    assert point is not None and point.batch == 40 and point.ctx == 8192
    e = estimate_decode(p, batch=40, ctx=8192)
    assert point.decode_ms == pytest.approx(e.decode_ms)
    assert point.decode_tokens_per_s == pytest.approx(40 / e.decode_ms * 1e3)
    nothing = fit_report(p, REF, ctx=10_000_000, batch=None)
    assert nothing.max_batch == 0 and nothing.latency is None and not nothing.answered_fits


def test_fit_report_json_is_the_typed_object():
    p = _plan("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm")
    report = fit_report(p, REF, ctx=8192, batch=None)
    data = report.model_dump(mode="json")
    assert "plan" not in data
    assert data["kv_budget_bytes"] == 40 * GiB
    assert data["kv_bytes_per_token_per_gpu"] == 131_072  # 32 layers x 8 x 2 x 128 x 2 B
    assert data["kv_tokens"] == 40 * GiB // 131_072 // 16 * 16


def test_pick_g_rows_carry_latency_at_the_requested_batch():
    spec = catalog_spec("meta-llama/Llama-2-13b-hf")
    base = Deployment(spec=spec, gpu=gpu("a100-80gb"))
    report = pick_g_report(base, REF, header="h", ctx=65536, batch=32)
    by_g = {row.kv_heads: row for row in report.rows}
    for row in report.rows:
        assert row.plan is not None and row.decode_ms is not None
        assert row.decode_tokens_per_s == pytest.approx(32 / row.decode_ms * 1e3)
        assert row.decode_ms == pytest.approx(
            estimate_decode(row.plan, batch=32, ctx=65536).decode_ms
        )
    ms = {g: r.decode_ms for g, r in by_g.items()}
    assert ms[40] > ms[8] > ms[1]  # fewer KV heads, faster steps
