"""Roofline decode latency: hand-computed bytes/FLOPs, crossovers, the CLI, and the honesty
check against 34 published decode measurements (tests/data/decode_measurements.yaml)."""

from __future__ import annotations

import importlib.util
from math import ceil
from pathlib import Path

import pytest
from conftest import catalog_spec, gpu, run_cli

from kvplan.core.budget import Engine
from kvplan.core.capacity import Deployment, plan
from kvplan.core.roofline import (
    FITTED,
    Efficiency,
    default_efficiency,
    estimate_decode,
    sweep_batches,
)
from kvplan.errors import KvplanError
from kvplan.units import GiB

# Llama-2-7B (fp16, untied 32000 x 4096 embeddings, 32 layers of 32 x 128 heads, MLP 11008).
L2_PARAMS = 6_738_415_616
L2_INPUT_TABLE = 32_000 * 4_096
L2_STREAMED = (L2_PARAMS - L2_INPUT_TABLE) * 2  # every weight but the input table, 2 bytes
L2_ROW = 4_096 * 2  # one embedding row per sequence
L2_KV_PER_TOKEN = 32 * 2 * 32 * 128 * 2  # layers x (K,V) x heads x d x bytes = 512 KiB
L2_OTHER_PER_TOKEN = (
    32 * (6 * 4_096 + 32 * 256 + 2 * 32 * 128 + 3 * 11_008) * 2 + 32_000 * 4
) * 2  # activations + fp32 logits, written and read
A100_BW, A100_FP16 = 2.039e12, 312e12
IDEAL = Efficiency(
    bandwidth=1,
    compute=1,
    allreduce_latency_s=0,
    quantized_stream=1,
    interconnect=1,
    kv_bandwidth=1,
    layer_overhead_s=0,
    moe_layer_overhead_s=0,
    prefill_compute=1,
    layer_floor_s=0,
    allreduce_hop_latency_s=0,
    prefill_overhead_s=0,
    mla_layer_overhead_s=0,
    kv_context_scale=0,
    mla_prefill_compute=1,
)


def _plan(model: str, gpu_name: str, **kw):
    d = Deployment(
        spec=kw.pop("spec", None) or catalog_spec(model),
        gpu=gpu(gpu_name),
        engine=Engine.NONE,
        kv_memory=kw.pop("kv_memory", 40 * GiB),
        **kw,
    )
    return plan(d)


# ---- bytes and FLOPs, by hand ----------------------------------------------------------------
def test_llama2_7b_batch1_bytes_flops_and_time_by_hand():
    p = _plan("meta-llama/Llama-2-7b-hf", "a100-80gb", kv_dtype="fp16")
    e = estimate_decode(p, batch=1, ctx=105, efficiency=IDEAL)
    assert e.bytes_weights == 13_214_695_424 == L2_STREAMED + L2_ROW
    assert e.bytes_kv == 106 * 524_288  # 105 cached tokens read + the new one written
    assert e.bytes_other == L2_OTHER_PER_TOKEN == 9_725_952
    attention = 4 * 105 * 32 * 128 * 32  # 4 B ctx H d per layer x 32 layers
    assert e.flops == 2 * (L2_PARAMS - L2_INPUT_TABLE) + attention == 13_269_737_472
    total = 13_214_695_424 + 106 * 524_288 + 9_725_952
    assert e.memory_s == pytest.approx(total / A100_BW)
    assert e.compute_s == pytest.approx(13_269_737_472 / A100_FP16)
    assert e.bound == "memory" and e.flops_dtype == "fp16"
    assert e.decode_ms == pytest.approx(total / A100_BW * 1e3)  # 6.51 ms
    assert e.tokens_per_s_per_seq == pytest.approx(A100_BW / total)  # 153.5 tok/s at 100%
    assert e.intensity == pytest.approx(13_269_737_472 / total)
    assert e.ridge == pytest.approx(312e12 / 2.039e12)  # 153 FLOP/byte
    assert e.kv_share == pytest.approx(106 * 524_288 / total)


def test_bandwidth_efficiency_divides_the_memory_time():
    p = _plan("meta-llama/Llama-2-7b-hf", "a100-80gb", kv_dtype="fp16")
    ideal = estimate_decode(p, batch=1, ctx=105, efficiency=IDEAL)
    half = estimate_decode(
        p, batch=1, ctx=105, efficiency=IDEAL.model_copy(update={"bandwidth": 0.5})
    )
    assert half.decode_ms == pytest.approx(ideal.decode_ms * 2)


def test_default_profile_is_the_fitted_nvidia_one_by_hand():
    """Without an efficiency, an NVIDIA GPU gets the fitted NVIDIA profile:
    step = weights / (bw e_bw) + (KV / e_kv + other) / (bw e_bw) + layers x c_layer."""
    p = _plan("meta-llama/Llama-2-7b-hf", "a100-80gb", kv_dtype="fp16")
    e = estimate_decode(p, batch=1, ctx=105)
    bw = A100_BW * FITTED["nvidia.bandwidth"]
    kv = 106 * 524_288
    scale = FITTED["kv_context_scale"]
    spread = 1 + 105 / scale if scale else 1.0  # one sequence of 105 tokens
    expected = (
        (L2_STREAMED + L2_ROW + L2_OTHER_PER_TOKEN) / bw
        + kv * spread / (bw * FITTED["kv_bandwidth"])
        + 32 * FITTED["nvidia.layer_overhead_s"]
    )
    assert e.step_s == pytest.approx(expected)
    assert e.platform == "nvidia" and e.link is None
    assert e.efficiency == default_efficiency(gpu("a100-80gb"))


def test_kv_bytes_shrink_with_g_but_attention_flops_do_not():
    spec = catalog_spec("meta-llama/Llama-2-7b-hf")
    mha = estimate_decode(_plan("", "a100-80gb", spec=spec), batch=8, ctx=4096)
    gqa = estimate_decode(_plan("", "a100-80gb", spec=spec.with_kv_heads(8)), batch=8, ctx=4096)
    assert mha.bytes_kv == 8 * 4097 * 524_288
    assert gqa.bytes_kv == 8 * 4097 * 131_072  # G 32 -> 8: a quarter
    assert mha.flops_attention == gqa.flops_attention == 8 * 4 * 4096 * 32 * 128 * 32


def test_sliding_layers_read_at_most_the_window():
    p = _plan("google/gemma-2-9b-it", "h100-sxm")  # 21 sliding(4096) + 21 full, G=8, d=256
    e = estimate_decode(p, batch=1, ctx=8192, efficiency=IDEAL)
    per_token_layer = 2 * 8 * 256 * 2
    assert e.bytes_kv == per_token_layer * 21 * (8192 + 4096) + per_token_layer * 42


def test_moe_reads_the_experts_a_batch_touches():
    spec = catalog_spec("mistralai/Mixtral-8x7B-v0.1")  # E=8, top-2, bf16
    p = _plan("", "h100-sxm", spec=spec, tp=2)
    one = estimate_decode(p, batch=1, ctx=128, efficiency=IDEAL)
    # batch 1 touches 8 (1 - 6/8) = 2 experts per layer: the active parameters stream
    active, experts = 12_879_925_248, 45_097_156_608
    assert one.experts_touched == pytest.approx(2.0)
    assert one.bytes_weights == ceil(((active - 32_000 * 4_096) * 2 + 8_192) / 2)
    big = estimate_decode(p, batch=16, ctx=128, efficiency=IDEAL)
    touched = 8 * (1 - 0.75**16)  # 7.92 of 8
    assert big.experts_touched == pytest.approx(touched)
    non_expert = (46_702_792_704 - experts - 32_000 * 4_096) * 2
    expected = (non_expert + experts * 2 * touched / 8 + 16 * 8_192) / 2
    assert big.bytes_weights == pytest.approx(expected, abs=1)
    # FLOPs follow the active parameters, not the touched experts
    assert big.flops - big.flops_attention == pytest.approx(16 * 2 * (active - 32_000 * 4_096) / 2)


def test_mla_attends_over_the_latent_and_every_tp_rank_holds_it():
    spec = catalog_spec("deepseek-ai/DeepSeek-V2-Lite")  # 27 MLA layers, 16 heads, 512 + 64
    one = estimate_decode(_plan("", "h100-sxm", spec=spec), batch=1, ctx=1000)
    two = estimate_decode(_plan("", "h100-sxm", spec=spec, tp=2), batch=1, ctx=1000)
    assert one.flops_attention == 2 * 1000 * 16 * (2 * 512 + 64) * 27
    assert two.flops_attention == one.flops_attention / 2  # heads split
    assert one.bytes_kv == two.bytes_kv == 1001 * 27 * 576 * 2  # latent not split


def test_tensor_parallel_all_reduce_time_by_hand():
    p = _plan("meta-llama/Llama-2-70b-hf", "a100-80gb", tp=4)
    eff = IDEAL.model_copy(
        update={"allreduce_latency_s": 25e-6, "interconnect": 0.7, "allreduce_hop_latency_s": 2e-6}
    )
    e = estimate_decode(p, batch=1, ctx=65, efficiency=eff)
    # latency + 2 (tp - 1) hops + ring over one direction of the 600 GB/s NVLink
    per = 25e-6 + 6 * 2e-6 + 2 * 3 / 4 * 8192 * 2 / (600e9 / 2 * 0.7)
    assert e.comm_s == pytest.approx(2 * 80 * per)  # 2 all-reduces x 80 layers = 6.4 ms
    assert e.comm_latency_s == pytest.approx(2 * 80 * (25e-6 + 12e-6))
    assert e.decode_ms == pytest.approx((e.memory_s + e.comm_s) * 1e3)
    assert e.link == "nvlink"


def test_pipeline_stages_run_in_turn():
    one = estimate_decode(_plan("meta-llama/Llama-2-7b-hf", "a100-80gb"), batch=4, ctx=512)
    two = estimate_decode(_plan("meta-llama/Llama-2-7b-hf", "a100-80gb", pp=2), batch=4, ctx=512)
    assert two.decode_ms == pytest.approx(2 * two.step_s * 1e3)
    assert two.step_s == pytest.approx(one.step_s / 2, rel=0.01)


def test_prefill_is_compute_bound_with_causal_half():
    p = _plan("meta-llama/Llama-2-7b-hf", "a100-80gb")
    e = estimate_decode(p, batch=1, ctx=4096, efficiency=IDEAL)
    flops = 2 * (L2_PARAMS - L2_INPUT_TABLE) * 4096 + 2 * (4096 * 4097 // 2) * 32 * 256 * 32
    assert e.prefill_flops == flops  # 56.4 TFLOP
    assert e.prefill_ms == pytest.approx(flops / A100_FP16 * 1e3)  # 181 ms at 100% of peak


def test_crossover_batches_by_hand():
    p = _plan("meta-llama/Llama-2-7b-hf", "a100-80gb")
    e = estimate_decode(p, batch=1, ctx=4096)
    # KV per sequence (4096 read + 1 written) vs 13.2 GB of weights: 6 x 2.148 GB < 13.2 GB
    assert e.kv_dominant_batch == 7
    # ctx 1: compute per token 2P / (312e12 x 0.6) vs bytes per token / (2.039e12 x 0.72)
    eff = IDEAL.model_copy(update={"bandwidth": 0.72, "compute": 0.6})
    e1 = estimate_decode(p, batch=1, ctx=1, efficiency=eff)
    bw, peak = 2.039e12 * 0.72, 312e12 * 0.6
    weights_s = L2_STREAMED / bw
    per_token = (2 * (L2_PARAMS - L2_INPUT_TABLE) + 4 * 32 * 128 * 32) / peak - (
        L2_ROW + 2 * L2_KV_PER_TOKEN + L2_OTHER_PER_TOKEN
    ) / bw
    assert e1.compute_bound_batch == ceil(weights_s / per_token)  # 131
    at = estimate_decode(p, batch=e1.compute_bound_batch, ctx=1, efficiency=eff)
    below = estimate_decode(p, batch=e1.compute_bound_batch - 1, ctx=1, efficiency=eff)
    assert at.bound == "compute" and below.bound == "memory"


def test_long_context_never_turns_compute_bound():
    e = estimate_decode(_plan("meta-llama/Llama-2-7b-hf", "a100-80gb"), batch=1, ctx=32768)
    assert e.compute_bound_batch is None  # MHA: every sequence adds 16 GiB of KV per step


def test_sweep_batches_are_powers_of_two_plus_the_limits():
    assert sweep_batches(16, 54, 14, None) == [1, 2, 4, 8, 14, 16, 32, 54]
    assert sweep_batches(None) == [1]


# ---- dtypes and errors --------------------------------------------------------------------------
def test_quantized_weights_stream_slower_and_fp8_uses_fp8_tensor_cores():
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    int8 = estimate_decode(_plan("", "a100-80gb", spec=spec, weight_dtype="int8"), batch=1, ctx=128)
    assert int8.flops_dtype == "bf16" and any("dequantized" in n for n in int8.notes)
    fp8_h100 = estimate_decode(
        _plan("", "h100-sxm", spec=spec, weight_dtype="fp8"), batch=1, ctx=128
    )
    assert fp8_h100.flops_dtype == "fp8" and fp8_h100.peak_flops == gpu("h100-sxm").flops["fp8"]
    fp8_a100 = estimate_decode(
        _plan("", "a100-80gb", spec=spec, weight_dtype="fp8"), batch=1, ctx=128
    )
    assert fp8_a100.flops_dtype == "bf16"
    assert any("no fp8 tensor cores" in n for n in fp8_a100.notes)


def test_bf16_falls_back_to_fp16_peak_and_says_so():
    e = estimate_decode(_plan("meta-llama/Meta-Llama-3-8B", "m2-ultra"), batch=1, ctx=256)
    assert e.flops_dtype == "fp16" and e.peak_flops == 27.2e12
    assert any("lists no bf16 FLOP/s; using its fp16 peak" in n for n in e.notes)


def test_bad_batch_or_ctx_is_one_line_error():
    p = _plan("meta-llama/Llama-2-7b-hf", "a100-80gb")
    with pytest.raises(KvplanError, match="batch must be a positive integer, got 0"):
        estimate_decode(p, batch=0, ctx=10)
    with pytest.raises(KvplanError, match="context must be a positive integer, got -1"):
        estimate_decode(p, batch=1, ctx=-1)


# ---- CLI -----------------------------------------------------------------------------------
def test_roofline_cli_json():
    r = run_cli(
        "roofline",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100-sxm",
        "--batch",
        "16",
        "--ctx",
        "8192",
        "--json",
    )
    assert r.code == 0, r.err
    d = r.json
    assert d["command"] == "roofline" and d["bound"] == "memory"
    assert d["bytes_kv"] == 16 * 8193 * 131_072  # 128 KiB per token, G=8
    assert d["decode_tokens_per_s"] == pytest.approx(16 / d["decode_ms"] * 1e3)
    for key in (
        "prefill_ms",
        "bytes_weights",
        "flops",
        "kv_dominant_batch",
        "compute_bound_batch",
        "max_batch",
        "ridge",
        "intensity",
    ):
        assert key in d
    assert [s["kv_heads"] for s in d["sweeps_by_g"]] == [8, 32, 1]
    assert [p["batch"] for p in d["sweep"]][:4] == [1, 2, 4, 8]
    assert d["max_batch"] == 54 and {p["fits"] for p in d["sweep"]} == {True, False}


def test_roofline_cli_text_and_kv_heads_override():
    r = run_cli(
        "roofline",
        "meta-llama/Llama-2-7b-hf",
        "--gpu",
        "a100-80gb",
        "--kv-heads",
        "8",
        "--ctx",
        "4096",
    )
    assert r.code == 0, r.err
    assert "G=8" in r.out and "decode step" in r.out and "Step time vs batch" in r.out
    bad = run_cli("roofline", "meta-llama/Llama-2-7b-hf", "--gpu", "a100-80gb", "--kv-heads", "3")
    assert bad.code == 2
    assert bad.err.strip() == ("Error: --kv-heads 3 does not divide the model's 32 query heads")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--batch", "0"), "Error: --batch must be a positive integer, got 0"),
        (("--bw-efficiency", "1.5"), "Error: --bw-efficiency must be in (0, 1], got 1.5"),
        (("--compute-efficiency", "0"), "Error: --compute-efficiency must be in (0, 1], got 0"),
    ],
)
def test_roofline_cli_bad_flags(args, message):
    r = run_cli("roofline", "meta-llama/Llama-2-7b-hf", "--gpu", "a100-80gb", *args)
    assert r.code == 2 and r.err.strip() == message


def test_roofline_cli_gpu_without_flops(tmp_path: Path):
    f = tmp_path / "gpus.yaml"
    f.write_text(
        "schema_version: 1\ngpus:\n  - name: bare\n    display_name: Bare\n"
        "    vendor: other\n    memory_marketed_gb: 80\n    memory_bytes: 85899345920\n"
        "    memory_basis: test\n    memory_bandwidth: 2.0e+12\n    source: test\n"
    )
    r = run_cli("roofline", "meta-llama/Llama-2-7b-hf", "--gpu", "bare", "--gpu-file", str(f))
    assert r.code == 2
    assert r.err.strip() == (
        "Error: GPU bare lists no fp16 or bf16 FLOP/s for the roofline "
        "(add a flops entry for it with --gpu-file)"
    )


def test_roofline_cli_plot(tmp_path: Path):
    out = tmp_path / "roof.svg"
    r = run_cli("roofline", "meta-llama/Llama-2-7b-hf", "--gpu", "a100-80gb", "--plot", str(out))
    if importlib.util.find_spec("matplotlib") is None:
        assert r.code == 2
        assert r.err.strip() == (
            "Error: --plot needs matplotlib, which is not installed (pip install 'kvplan[plot]')"
        )
    else:
        assert r.code == 0, r.err
        assert out.read_text().lstrip().startswith("<?xml")


def test_fit_and_pick_g_show_latency():
    r = run_cli(
        "fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--ctx", "8192", "--json"
    )
    assert r.code == 0, r.err
    assert r.json["latency"]["batch"] == r.json["max_batch"]
    assert r.json["latency"]["decode_ms"] > 0
    r = run_cli("pick-g", "--gpu", "a100-80gb", "--ctx", "65536", "--batch", "32", "--json")
    assert r.code == 0, r.err
    for row in r.json["rows"]:
        assert row["decode_ms"] > 0
        assert row["decode_tokens_per_s"] == pytest.approx(32 / row["decode_ms"] * 1e3)


def test_roofline_cli_serving_and_breakdown_json():
    r = run_cli(
        "roofline",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100-sxm",
        "--batch",
        "16",
        "--ctx",
        "2048",
        "--prompt-tokens",
        "1024",
        "--output-tokens",
        "256",
        "--json",
    )
    assert r.code == 0, r.err
    d = r.json
    b = d["breakdown"]
    assert b["memory_s"] == pytest.approx(b["weights_s"] + b["kv_s"] + b["other_s"])
    assert b["step_s"] == pytest.approx(
        max(b["memory_s"], b["compute_s"]) + b["fixed_s"] + b["comm_s"]
    )
    assert d["decode_ms"] == pytest.approx(b["step_s"] * 1e3)
    assert d["platform"] == "nvidia" and d["link"] is None and d["plot"] is None
    s = d["serving"]
    assert s["concurrency"] == 16 and s["decode_ctx"] == 1024 + 128
    assert s["prefill_tokens_per_step"] == pytest.approx(16 * 1024 / 256)
    assert s["tpot_ms"] == pytest.approx(s["decode_ms"] + s["prefill_ms_per_step"])
    assert s["prefill_share"] == pytest.approx(s["prefill_ms_per_step"] / s["tpot_ms"])
    bad = run_cli(
        "roofline", "meta-llama/Llama-2-7b-hf", "--gpu", "a100-80gb", "--prompt-tokens", "10"
    )
    assert bad.code == 2
    assert bad.err.strip() == "Error: --prompt-tokens and --output-tokens go together"
