"""Roofline decode latency: hand-computed bytes/FLOPs, crossovers, the CLI, and the honesty
check against 34 published decode measurements (tests/data/decode_measurements.yaml)."""

from __future__ import annotations

import functools
import importlib.util
import statistics
import sys
from math import ceil
from pathlib import Path

import pytest
from conftest import ROOT, catalog_spec, gpu, run_cli

from kvplan.core.budget import Engine
from kvplan.core.capacity import Deployment, plan
from kvplan.core.roofline import (
    Efficiency,
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
    bandwidth=1, compute=1, allreduce_latency_s=0, quantized_stream=1, interconnect=1
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


def test_default_efficiency_divides_the_bandwidth():
    p = _plan("meta-llama/Llama-2-7b-hf", "a100-80gb", kv_dtype="fp16")
    ideal = estimate_decode(p, batch=1, ctx=105, efficiency=IDEAL)
    real = estimate_decode(p, batch=1, ctx=105)
    assert real.decode_ms == pytest.approx(ideal.decode_ms / 0.72)
    half = estimate_decode(p, batch=1, ctx=105, efficiency=Efficiency(bandwidth=0.5))
    assert half.decode_ms == pytest.approx(ideal.decode_ms * 2)


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
    e = estimate_decode(p, batch=1, ctx=65)
    per = 25e-6 + 2 * 3 / 4 * 8192 * 2 / (600e9 / 2 * 0.7)  # latency + ring over one way
    assert e.comm_s == pytest.approx(2 * 80 * per)  # 2 all-reduces x 80 layers = 4.02 ms
    assert e.decode_ms == pytest.approx((e.memory_s + e.comm_s) * 1e3)


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
    e1 = estimate_decode(p, batch=1, ctx=1)
    bw, peak = 2.039e12 * 0.72, 312e12 * 0.6
    weights_s = L2_STREAMED / bw
    per_token = (2 * (L2_PARAMS - L2_INPUT_TABLE) + 4 * 32 * 128 * 32) / peak - (
        L2_ROW + 2 * L2_KV_PER_TOKEN + L2_OTHER_PER_TOKEN
    ) / bw
    assert e1.compute_bound_batch == ceil(weights_s / per_token)  # 131
    at = estimate_decode(p, batch=e1.compute_bound_batch, ctx=1)
    below = estimate_decode(p, batch=e1.compute_bound_batch - 1, ctx=1)
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


# ---- honesty check against published measurements ------------------------------------------
@functools.cache
def _benchmark_module():
    """benchmarks/roofline_vs_measured.py (the script that makes docs/roofline.md's table)."""
    name = "roofline_vs_measured"
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "benchmarks" / "roofline_vs_measured.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _measured_rows():
    module = _benchmark_module()
    return module, module.compare()


def test_predictions_against_34_published_measurements():
    module, rows = _measured_rows()
    assert len(rows) == 34  # every record is predicted; none skipped
    dev = [abs(r.ratio - 1) for r in rows]
    b1 = [r for r in rows if r.single_gpu_batch1]
    print("\n" + module.markdown(rows))
    assert len(b1) == 24
    assert statistics.median(dev) <= 0.15
    worst = max(b1, key=lambda r: abs(r.ratio - 1))
    assert abs(worst.ratio - 1) <= 0.35, worst


def test_batch1_tp_records_need_the_all_reduce_latency():
    """Without a per-all-reduce latency the TP8 7B record is predicted 2x too fast."""
    module = _benchmark_module()
    records = [r for r in module.load_records() if r["id"] == "gptfast-llama2-7b-a100-bf16-tp8"]
    with_latency = module.compare(records)[0]
    without = module.compare(records, Efficiency(allreduce_latency_s=0))[0]
    assert 0.85 < with_latency.ratio < 1.15
    assert without.ratio < 0.55
