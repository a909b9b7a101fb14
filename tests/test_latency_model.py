"""The latency model's structure by hand (fixed costs, MoE routing cost, serving TPOT with its
prefill share, TTFT) and its out-of-sample error on the held-out published rows."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import statistics
import sys

import pytest
from conftest import ROOT, catalog_spec, gpu

from kvplan.core.budget import Engine
from kvplan.core.capacity import Deployment, plan
from kvplan.core.roofline import (
    FITTED,
    Efficiency,
    default_efficiency,
    early_mla_release,
    estimate_decode,
    estimate_serving,
    link_of,
    platform_of,
)
from kvplan.errors import KvplanError
from kvplan.units import GiB

# Llama-2-7B (fp16, untied 32000 x 4096 embeddings, 32 layers of 32 x 128 heads, MLP 11008).
L2_PARAMS = 6_738_415_616
L2_TABLE = 32_000 * 4_096
L2_STREAMED = (L2_PARAMS - L2_TABLE) * 2
L2_ROW = 4_096 * 2
L2_KV_PER_TOKEN = 32 * 2 * 32 * 128 * 2  # 512 KiB
L2_OTHER_PER_TOKEN = (32 * (6 * 4_096 + 32 * 256 + 2 * 32 * 128 + 3 * 11_008) * 2 + 32_000 * 4) * 2
A100_BW, A100_FP16 = 2.039e12, 312e12

# Every factor set by hand, so the expected numbers below do not move when constants are refit.
EFF = Efficiency(
    bandwidth=0.8,
    kv_bandwidth=0.5,
    compute=0.5,
    prefill_compute=0.4,
    quantized_stream=1,
    interconnect=0.7,
    allreduce_latency_s=20e-6,
    allreduce_hop_latency_s=0,
    layer_overhead_s=50e-6,
    moe_layer_overhead_s=30e-6,
    step_overhead_s=1e-3,
    layer_floor_s=0,
    prefill_overhead_s=5e-3,
    mla_layer_overhead_s=0,
    kv_context_scale=0,
    mla_prefill_compute=0.4,
)


def _plan(spec, gpu_name: str, **kw):
    return plan(
        Deployment(spec=spec, gpu=gpu(gpu_name), engine=Engine.NONE, kv_memory=40 * GiB, **kw)
    )


def _l2():
    return _plan(catalog_spec("meta-llama/Llama-2-7b-hf"), "a100-80gb", kv_dtype="fp16")


def test_step_breakdown_by_hand():
    """batch 4 at 1000 tokens: weights at e_bw, KV at e_bw x e_kv, fixed = 32 layers x 50 us
    + 1 ms per step; memory-bound (compute 4 x 13.3 GFLOP at 156 TFLOP/s = 0.34 ms)."""
    e = estimate_decode(_l2(), batch=4, ctx=1000, efficiency=EFF)
    bw = A100_BW * 0.8
    weights_s = (L2_STREAMED + 4 * L2_ROW) / bw  # 8.10 ms
    kv_s = 4 * 1001 * L2_KV_PER_TOKEN / (bw * 0.5)  # 2.57 ms
    other_s = 4 * L2_OTHER_PER_TOKEN / bw
    assert e.weights_s == pytest.approx(weights_s)
    assert e.kv_s == pytest.approx(kv_s)
    assert e.other_s == pytest.approx(other_s)
    assert e.overhead_s == pytest.approx(32 * 50e-6 + 1e-3)  # 2.6 ms
    assert e.layer_overhead_s == pytest.approx(32 * 50e-6)
    assert e.comm_s == 0 and e.bound == "memory"
    assert e.step_s == pytest.approx(weights_s + kv_s + other_s + 2.6e-3)
    assert e.decode_ms == pytest.approx(e.step_s * 1e3)


def test_moe_layers_add_their_routing_cost():
    spec = catalog_spec("mistralai/Mixtral-8x7B-v0.1")  # 32 layers, every one MoE
    e = estimate_decode(_plan(spec, "h100-sxm", tp=2), batch=1, ctx=128, efficiency=EFF)
    assert e.overhead_s == pytest.approx(32 * 50e-6 + 32 * 30e-6 + 1e-3)
    # 2 all-reduces per layer, 20 us each, + the ring of one 4096-wide bf16 row over 900 GB/s
    ring = 2 * 1 / 2 * 4096 * 2 / (900e9 / 2 * 0.7)
    assert e.comm_s == pytest.approx(64 * (20e-6 + ring))
    assert e.comm_latency_s == pytest.approx(64 * 20e-6)


def test_few_long_sequences_stream_their_kv_slower():
    """kv_context_scale 1000: 4 sequences of 1000 tokens stream KV 1 + 1000 / 4000 = 1.25x
    slower; 64 sequences 1 + 1000 / 64000."""
    eff = EFF.model_copy(update={"kv_context_scale": 1000})
    four = estimate_decode(_l2(), batch=4, ctx=1000, efficiency=eff)
    base = estimate_decode(_l2(), batch=4, ctx=1000, efficiency=EFF)
    assert four.kv_spread == pytest.approx(1.25)
    assert four.kv_s == pytest.approx(base.kv_s * 1.25)
    assert four.weights_s == pytest.approx(base.weights_s)
    many = estimate_decode(_l2(), batch=64, ctx=1000, efficiency=eff)
    assert many.kv_spread == pytest.approx(1 + 1000 / 64_000)


def test_mla_and_moe_layers_add_their_costs():
    spec = catalog_spec("deepseek-ai/DeepSeek-V2-Lite")  # 27 MLA layers, the first dense
    eff = EFF.model_copy(update={"mla_layer_overhead_s": 40e-6})
    e = estimate_decode(_plan(spec, "h100-sxm"), batch=1, ctx=100, efficiency=eff)
    assert e.overhead_s == pytest.approx(27 * 50e-6 + 26 * 30e-6 + 27 * 40e-6 + 1e-3)


@pytest.mark.parametrize(
    ("engine", "version", "early"),
    [
        ("vllm", "0.7.4.dev181+gf35f8e22 (nightly)", True),  # as the dstack rows state it
        ("vllm", "0.6", True),  # kvplan's vLLM line covering 0.1-0.7
        ("vllm", "0.8.0", False),
        ("vllm", "0.20", False),
        ("vllm", None, False),  # no version: the newest modelled line
        ("sglang", "v0.4.3.post2", True),
        ("sglang", "v0.5.7", False),
        ("trtllm", "0.17.post1.dev (PyTorch backend, trtllm-serve)", True),
        ("trtllm", "0.18.0", False),
        ("llama.cpp", "master 36b101543 (2026-09)", False),
        ("none", "0.1", False),
        ("vllm", "nightly", False),  # not a release number
    ],
)
def test_early_mla_releases_are_the_stated_lines(engine, version, early):
    assert early_mla_release(engine, version) is early


def test_an_early_release_pays_the_early_mla_layer_cost():
    """DeepSeek-V2-Lite (27 MLA layers) under vLLM: the 0.6 line (0.1-0.7) adds the early
    per-MLA-layer cost, the default line the later one; nothing else differs."""
    spec = catalog_spec("deepseek-ai/DeepSeek-V2-Lite")

    def overhead(version):
        d = Deployment(
            spec=spec,
            gpu=gpu("h100-sxm"),
            engine=Engine.VLLM,
            engine_version=version,
            kv_memory=40 * GiB,
        )
        return estimate_decode(plan(d), batch=1, ctx=100).overhead_s

    early = FITTED["mla_early_layer_overhead_s"]
    later = FITTED["mla_layer_overhead_s"]
    assert overhead("0.6") - overhead(None) == pytest.approx(27 * (early - later))
    assert overhead("0.20") == pytest.approx(overhead(None))
    e = default_efficiency(gpu("h200"), "sglang", "v0.4.3.post2")
    assert e.mla_layer_overhead_s == early
    assert default_efficiency(gpu("h200"), "sglang", "v0.5.7").mla_layer_overhead_s == later


def test_a_model_with_mla_layers_prefills_at_the_mla_efficiency():
    """An 8192-token prompt is compute-bound: its prefill is FLOPs / (peak x e), e the MLA
    prefill efficiency for DeepSeek-V2-Lite, the platform's for Llama-2 (which ignores it)."""
    ds = _plan(catalog_spec("deepseek-ai/DeepSeek-V2-Lite"), "h100-sxm")
    slow = EFF.model_copy(update={"mla_prefill_compute": 0.1})
    a = estimate_decode(ds, batch=1, ctx=8192, efficiency=EFF)  # mla_prefill_compute 0.4
    b = estimate_decode(ds, batch=1, ctx=8192, efficiency=slow)
    compute = a.prefill_flops / a.peak_flops  # the bf16 dense peak of the H100 SXM
    assert b.prefill_ms - a.prefill_ms == pytest.approx((compute / 0.1 - compute / 0.4) * 1e3)
    dense = _l2()
    assert estimate_decode(dense, batch=1, ctx=8192, efficiency=slow).prefill_ms == (
        pytest.approx(estimate_decode(dense, batch=1, ctx=8192, efficiency=EFF).prefill_ms)
    )


def test_serving_tpot_adds_the_arriving_prompts_prefill():
    """C = 16 requests of 1024 prompt + 256 output tokens: 16 / 256 prompts (64 tokens) enter
    per step; their prefill FLOPs at 0.4 of peak are the prefill share."""
    p = _l2()
    s = estimate_serving(p, concurrency=16, input_tokens=1024, output_tokens=256, efficiency=EFF)
    pure = estimate_decode(p, batch=16, ctx=1024 + 128, efficiency=EFF)
    prompt_flops = 2 * (L2_PARAMS - L2_TABLE) * 1024 + 2 * (1024 * 1025 // 2) * 32 * 256 * 32
    share = 16 / 256 * prompt_flops / (A100_FP16 * 0.4)  # 6.95 ms
    assert s.decode.decode_ms == pytest.approx(pure.decode_ms)
    assert s.prefill_tokens_per_step == pytest.approx(64)
    assert s.prefill_s_per_step == pytest.approx(share)
    assert s.tpot_ms == pytest.approx(pure.decode_ms + share * 1e3)
    assert s.prefill_share == pytest.approx(share / (s.tpot_ms / 1e3))
    assert s.output_tokens_per_s == pytest.approx(16 / (s.tpot_ms / 1e3))
    # TTFT of one 1024-token prompt alone: compute at 0.4 of peak + fixed costs + 5 ms
    ttft = prompt_flops / (A100_FP16 * 0.4) + 32 * 50e-6 + 1e-3 + 5e-3
    assert s.ttft_ms == pytest.approx(ttft * 1e3)


def test_serving_rejects_a_zero_output_length():
    with pytest.raises(KvplanError, match="output length must be a positive integer, got 0"):
        estimate_serving(_l2(), concurrency=1, input_tokens=10, output_tokens=0)


def test_platform_and_link_profiles():
    assert platform_of(gpu("mi300x")) == ("amd", None)
    assert platform_of(gpu("m2-ultra")) == ("apple", None)
    platform, note = platform_of(gpu("gaudi2"))
    assert platform == "nvidia" and note and "NVIDIA latency profile" in note
    assert link_of(gpu("h100-sxm")) == "nvlink"
    assert link_of(gpu("mi300x")) == "xgmi"
    assert link_of(gpu("l40s")) == "pcie"
    amd = default_efficiency(gpu("mi300x"))
    nv = default_efficiency(gpu("h100-sxm"))
    assert amd.bandwidth != nv.bandwidth  # a profile per platform, fitted separately


# ---- out of sample -------------------------------------------------------------------------
@functools.cache
def _bench():
    name = "roofline_vs_measured"
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "benchmarks" / "roofline_vs_measured.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def _rows():
    m = _bench()
    cases, skipped = m.load_cases()
    return m, m.evaluate([c for c in cases if c.basis != "ttft"]), cases, skipped


def test_split_is_the_project_rule_and_every_regime_has_held_out_rows():
    m, rows, cases, _ = _rows()
    for c in cases:
        assert c.heldout == (int(hashlib.sha256(c.id.encode()).hexdigest(), 16) % 3 == 0)
    held = [r for r in rows if r.split == "held-out"]
    assert len(held) >= len(rows) / 4  # the hash gives ~a third
    stats = m.regime_stats(rows)
    for regime in ("batch 1", "batch 2-63", "batch >=64", "dense", "moe", "mla", "TP 1"):
        assert stats[regime]["held-out"]["n"] >= 2, regime
    for regime in ("TP 2-4", "TP 8", "nvidia", "amd", "apple"):
        assert stats[regime]["held-out"]["n"] >= 2, regime


def test_held_out_median_error_bound():
    """The issue's goal: out-of-sample median |pred/meas - 1| <= 15% on rows no constant saw."""
    _, rows, _, _ = _rows()
    held = [abs(r.ratio - 1) for r in rows if r.split == "held-out"]
    assert len(held) >= 50
    assert statistics.median(held) <= 0.15


def test_held_out_regime_medians():
    """No regime's held-out median above 25% (the issue's goal), MLA included since the
    early-2025 engine releases carry their own MLA layer cost (docs/roofline.md)."""
    m, rows, _, _ = _rows()
    stats = m.regime_stats(rows)
    for regime, s in stats.items():
        ho = s["held-out"]
        if ho["n"] == 0:
            continue
        assert ho["median_abs_dev"] <= 0.25, (regime, ho)
    assert stats["mla"]["held-out"]["n"] >= 20


def test_mla_rows_of_both_release_groups_are_held_out():
    """The MLA bound is met on held-out rows of early (dstack, 2025-02/03) and later
    (InferenceX SGLang 0.5.x, llama.cpp) releases alike, each group's median within 25%."""
    _, rows, cases, _ = _rows()
    early = {c.id for c in cases if early_mla_release(c.engine, c.engine_version or None)}
    mla = [r for r in rows if r.arch == "mla" and r.split == "held-out"]
    for group in (
        [r for r in mla if r.id in early],
        [r for r in mla if r.id not in early],
    ):
        assert len(group) >= 4
        assert statistics.median(abs(r.ratio - 1) for r in group) <= 0.25


def test_ttft_held_out_error_bound():
    m, _, cases, _ = _rows()
    ttft = m.evaluate([c for c in cases if c.basis == "ttft"])
    held = [abs(r.ratio - 1) for r in ttft if r.split == "held-out"]
    assert len(held) >= 5
    assert statistics.median(held) <= 0.35


def test_fixed_costs_are_what_makes_tp8_batch1_slow():
    """Llama-2-7B on 8 A100s (gpt-fast, 3.04 ms/token): its weight share streams in under
    1 ms; without the per-layer and all-reduce fixed costs the step is 3x too fast."""
    m, _, cases, _ = _rows()
    case = next(c for c in cases if c.id == "gptfast-llama2-7b-a100-bf16-tp8")
    eff = m.profile(case)
    bare = eff.model_copy(update={"allreduce_latency_s": 0, "layer_overhead_s": 0})
    assert m.predict_seconds(case, bare) / case.measured_s < 0.5
    assert 0.8 < m.predict_seconds(case, eff) / case.measured_s < 1.25
