"""The engine memory model against real start-up logs (train and HELD-OUT rows), release
profiles, and the engine's own rules (scheduler defaults by device, token-line meaning).

benchmarks/engine_logs_vs_kvplan.py is the harness; this test asserts its figures stay
within the bounds docs/engines.md states. Held-out rows are those no constant was fitted on
(sha256(id) % 3 == 0).
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from typing import Any

import pytest
from conftest import ROOT, catalog_spec, gpu

from kvplan.core.budget import CG_BASE, CG_PER_LAYER, cudagraph_capture_counts, estimate_cudagraph
from kvplan.core.capacity import Deployment, plan
from kvplan.core.engines import ENGINES, Engine, parse_version, profile_for
from kvplan.errors import KvplanError
from kvplan.units import GiB


def _harness() -> Any:
    name = "engine_logs_vs_kvplan"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "benchmarks" / "engine_logs_vs_kvplan.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows():
    return _harness().evaluate()


def test_split_is_the_project_rule(rows):
    import hashlib

    for r in rows:
        heldout = int(hashlib.sha256(r.id.encode()).hexdigest(), 16) % 3 == 0
        assert r.split == ("heldout" if heldout else "train")


def test_vllm_v1_budget_held_out(rows):
    # Goal of issue 11: median <= 3 % and worst line median <= 5 %, out of sample. The V1
    # lines 0.17-0.19, 0.20 and 0.21-0.33: the V0 line and the pre-0.17 V1 line (0.8-0.16) have
    # their own (failing) held-out figures below.
    held = [
        r
        for r in rows
        if r.split == "heldout" and r.line in ("vLLM 0.19", "vLLM 0.20", "vLLM 0.33")
    ]
    assert len(held) >= 10
    errs = [abs(r.budget_err) for r in held]
    assert statistics.median(errs) <= 0.03, errs
    # the worst row is judged below (one row over 5 %: the 70B w8a8 row on one H100; the
    # Kimi-K2.5-NVFP4 TP 4 B200 row, +10.3 % before the TRT-LLM-gen MoE peak and the LM
    # head's bf16 storage, is +0.8 %: test_kimi_b200_rows)
    assert sorted(errs)[-2] <= 0.05, [(r.id, r.budget_err) for r in held]


def test_llama4_scout_held_out_with_the_rotary_cache(rows):
    # vLLM builds Llama-4-Scout's rotary cos/sin table for 10,485,760 positions x 128 dims
    # in bf16 (2.5 GiB per GPU, whole on each of the 4) while loading: counted with the
    # weights it brings the held-out TP 4 row from +17.0 % to +2.1 % (engine terms +1.9 %).
    scout = {r.id: r for r in rows}["llama4-scout-h100-tp4-v0190-len8k"]
    assert scout.split == "heldout"
    assert abs(scout.budget_err) <= 0.03, scout.budget_err


@pytest.mark.xfail(
    strict=True,
    reason="redhatai Llama-3.3-70B-w8a8 on one H100 (llm-d-planner cb66659, held-out): 67.72 "
    "GiB of weights leave a 5.01 GiB budget; kvplan's activation + non-torch are ~0.30 GiB "
    "under what the log leaves them, and its weights 0.06 GiB under: 0.35 GiB is +7.1 % of so "
    "small a pool (engine terms alone +6.0 %; +5.9 % before ACT_FFN was refitted to 7.76); "
    "+6.4 % with vLLM's 32 MiB rotary table counted",
)
def test_vllm_v1_budget_held_out_worst_row(rows):
    held = [
        r
        for r in rows
        if r.split == "heldout" and r.line in ("vLLM 0.19", "vLLM 0.20", "vLLM 0.33")
    ]
    assert max(abs(r.budget_err) for r in held) <= 0.05, [
        (r.id, r.budget_err) for r in held if abs(r.budget_err) > 0.05
    ]


def test_vllm_v0_budget_held_out(rows):
    # The V0 line's bar (issue 11): held-out median <= 5 % on at least three rows. Held out:
    # Llama-2-7B GPTQ and zephyr-7B-beta AWQ on an A6000 (vllm#4454, 0.4.1 main, budget
    # from "# GPU blocks"), +0.3 % and +1.3 %; Qwen2.5-32B TP 2 on L40S (vllm#15815, 0.7.1),
    # +7.2 %. Median +1.3 %.
    held = [r for r in rows if r.split == "heldout" and r.engine == "vllm" and "0.6" in r.line]
    assert len(held) >= 3, [r.id for r in held]
    assert statistics.median(abs(r.budget_err) for r in held) <= 0.05, [
        (r.id, r.budget_err) for r in held
    ]


@pytest.mark.xfail(
    strict=True,
    reason="the held-out V0 TP 2 row (vLLM 0.7.1, 2x L40S, Qwen2.5-32B, vllm#15815) is "
    "+7.2 % (engine terms alone +4.7 %): kvplan's weights are 0.2 GiB under the log's 30.71 "
    "and its TP 2 forward peak (13824 FFN units x 10000 tokens x 7.76 = 1.00 GiB) 0.26 GiB "
    "under the logged 1.26 GiB (hidden-size tensors TP does not split are not modelled)",
)
def test_vllm_v0_budget_held_out_worst_row(rows):
    held = [r for r in rows if r.split == "heldout" and r.engine == "vllm" and "0.6" in r.line]
    assert max(abs(r.budget_err) for r in held) <= 0.05, [(r.id, r.budget_err) for r in held]


def test_v0_budget_from_the_block_count_before_0_6_4():
    # vLLM V0 before 0.6.4 logs "# GPU blocks: N" only; N = budget // block bytes (vllm
    # 0.4.1 worker/worker.py:152-154), so the harness takes (N + 1/2) blocks as the budget.
    # Meta-Llama-3-8B: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B x 16 tokens = 2 MiB;
    # 13248.5 x 2 MiB = 26497 MiB.
    h = _harness()
    by_id = {r["id"]: r for r in h.load_records()}
    rec = by_id["llama3-8b-instruct-a6000-v041dev-pr4454"]
    assert h.budget_from_blocks(rec)
    assert h.logged_budget(rec) == pytest.approx(26497 / 1024, abs=1e-9)
    # phi-2: 32 layers x 32 heads x 80 x 2 x 2 B x 16 = 5 MiB; 8214.5 x 5 MiB
    phi = by_id["phi2-super-marlin-a6000-v041dev-pr4454"]
    assert h.logged_budget(phi) == pytest.approx(8214.5 * 5 / 1024, abs=1e-9)
    # a log that prints the breakdown keeps its own figure
    assert not h.budget_from_blocks(by_id["llama31-8b-a10-v071-len128k-oci-aqua"])
    # vLLM <= 0.3.0 measured the peak as total - free (CUDA context included): not derived
    old = by_id["llama2-7b-a100-80gb-v02-pr2031"]
    assert not h.budget_from_blocks(old) and h.logged_budget(old) is None
    assert h.why_not(old) == [f"no release >= 0.3.1 stated; {h.V02_REASON}"]


def test_rtx_a6000_cuda_total():
    # PyTorch "47.54 GiB total capacity" on an RTX A6000 (vllm#1201); nvidia-smi 49140 MiB
    a6000 = gpu("rtx-a6000")
    assert a6000.cuda_memory_bytes == 48681 * 2**20
    assert round(a6000.usable_memory_bytes / GiB, 2) == 47.54


def test_v0_act_ffn_is_the_fit_on_forward_bound_v0_training_rows():
    # ACT_FFN = median over the V0 training rows that print the breakdown and whose implied
    # peak is above the sampler model (the V1 rows' forward-bound test): the H100 vllm#10511
    # row and the two RTX 3090 rows. The A10 131072-token row (chunked prefill, 2048 tokens)
    # logs a 0.22 GiB peak, under kvplan's 256 x 128256-vocab sampler term: not forward-bound.
    from kvplan.core.budget import ACT_FFN

    f = _harness().fit(_harness().load_records())
    assert f["n_v0"] == 3
    assert f["V0_ACT_FFN"] == pytest.approx(ACT_FFN, abs=0.005)


def test_vllm_v0_held_out_row_after_the_pcie_non_torch_term(rows):
    # Was -17.3 % (engine terms -19.9 %) with V1's NVLink-H100 TP > 1 non-torch (2.09 GiB)
    # on PCIe L40S cards; with the PCIe term (0.20 GiB; the log prints 0.30) the engine terms
    # are within 5 % and the full prediction within 10 %.
    (r,) = [r for r in rows if r.id == "qwen25-32b-2xl40s-tp2-v071-len10k"]
    assert r.split == "heldout" and r.line == "vLLM 0.6"
    assert r.engine_only_err is not None and 0 < r.engine_only_err <= 0.05
    assert 0 < r.budget_err <= 0.10


def test_v0_non_torch_at_tp_depends_on_the_interconnect():
    spec = catalog_spec("Qwen/Qwen2.5-32B-Instruct")
    pcie = plan(Deployment(spec=spec, gpu=gpu("l40s"), engine_version="0.7.1", tp=2))
    nvlink = plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version="0.7.1", tp=2))
    assert pcie.budget.overhead == int(0.20 * GiB)
    assert nvlink.budget.overhead == int(2.09 * GiB)
    single = plan(Deployment(spec=spec, gpu=gpu("l40s"), engine_version="0.7.1", tp=1))
    assert single.budget.overhead == int(0.35 * GiB)
    # V1 lines keep one TP > 1 term whatever the interconnect
    v1 = plan(Deployment(spec=spec, gpu=gpu("l40s"), engine_version="0.19.0", tp=2))
    assert v1.budget.overhead == int(2.09 * GiB)


def test_v0_turns_chunked_prefill_on_above_32k():
    # vllm 0.7.3 engine/arg_utils.py:1164-1194 + config.py:1532: max_model_len > 32768 on
    # CUDA, no sliding window, not multimodal -> chunked prefill, 2048-token profiling pass
    llama = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    v0 = Deployment(spec=llama, gpu=gpu("rtx-4090"), engine_version="0.7.3")
    assert v0.scheduler_tokens == 2048  # default max_model_len 131072
    assert v0.with_(max_model_len=32768).scheduler_tokens == 32768
    assert v0.with_(max_model_len=32769).scheduler_tokens == 2048
    assert v0.with_(max_num_batched_tokens=8192).scheduler_tokens == 8192
    # a sliding-window model keeps the one long pass
    mistral = catalog_spec("mistralai/Mistral-7B-v0.1")
    assert any(layer.local_window or layer.kind.value == "sliding" for layer in mistral.layers)
    long = Deployment(spec=mistral, gpu=gpu("a100-80gb"), engine_version="0.6", max_model_len=40000)
    assert long.scheduler_tokens == 40000
    # so does a multimodal (cross-attention) model, and ROCm
    vision = catalog_spec("meta-llama/Llama-3.2-11B-Vision-Instruct")
    mm = Deployment(spec=vision, gpu=gpu("h100-sxm"), engine_version="0.6", max_model_len=65536)
    assert mm.scheduler_tokens == 65536
    rocm = Deployment(spec=llama, gpu=gpu("mi300x"), engine_version="0.6")
    assert rocm.scheduler_tokens == 131072


def test_v0_encoder_decoder_row_is_not_evaluated_and_says_why():
    # vllm#12126: Llama-3.2-11B-Vision on V0 profiles 128 dummy images through the vision
    # encoder (36.63 GiB peak); kvplan's text forward model was +202 % on it
    h = _harness()
    (rec,) = [
        r for r in h.load_records() if r["id"] == "llama32-11b-vision-h100-v0-pr12126-len64k-eager"
    ]
    assert h.evaluate_row(rec) is None
    assert h.why_not(rec) == [h.V0_ENC_DEC_REASON]


def test_v0_rows_are_told_apart_from_v02x_ids():
    h = _harness()
    by_id = {r["id"]: r for r in h.load_records()}
    assert h.version_line(by_id["llama31-8b-rtx3090-v0-len20k"]) == "0.6"
    # "v02x" / "v010x" in an id name V1 releases, not V0
    assert h.version_line(by_id["gpt-oss-120b-h100-v010x-negative-available-kv"]) != "0.6"


def test_cuda_totals_bring_the_sglang_rows_within_their_engine_terms(rows):
    # With the L4's and RTX 3090's CUDA totals (22.05 / 23.58 GiB) in place of nvidia-smi's
    # (22.49 / 24.00), SGLang's pre-load memory is predicted within 5 % on engine terms:
    # held-out 4x L4 (QwQ-32B, 0.4.3.post4) -2.5 % (+10.8 % before), training RTX 3090
    # +4.8 % (+11.4 % before; WSL2 holds 0.82 GiB before SGLang starts, kvplan 0.51).
    # Full: +0.5 % / +5.0 % with SGLang's 0.17 GiB weight-load overhead (+7.5 % / +8.4 %
    # before it; +0.8 % / +5.1 % with the 0.19 GiB fitted before the 2026-11-30 rows).
    by_id = {r.id: r for r in rows}
    l4 = by_id["qwq-32b-sglang-043post4-4xl4-tp4"]
    r3090 = by_id["r1-distill-qwen-7b-sglang-042-rtx3090-wsl2-tp1"]
    assert l4.split == "heldout" and r3090.split == "train"
    assert l4.engine_only_err is not None and r3090.engine_only_err is not None
    assert abs(l4.engine_only_err) <= 0.05 and abs(r3090.engine_only_err) <= 0.05
    assert abs(l4.budget_err) <= 0.02


def test_sglang_lines_held_out(rows):
    # Issue 11: no SGLang line with a held-out median above 5 %. Held-out rows: 4x L4 QwQ-32B
    # (0.4.3.post4, PCIe: pre-load stays 0.51 GiB) +0.8 % (+7.5 % before the weight-load
    # overhead); 8x H200 Llama-3.3-70B (sglang PR 11716, unversioned, log_date 2025-10-16 ->
    # 0.5.3.post3, the 0.5 line; NVLink: 0.51 + 1.84 GiB pre-load against the 2.01 GiB +
    # context it logs) +0.6 % (+2.3 % before); Qwen3-14B on an RTX A6000 (xinference#3481,
    # card named by the issue's own device list; unversioned, log_date 2025-05-19 ->
    # 0.4.6.post4, the 0.4.6 line: default fraction 0.88, the fraction the log's own figures
    # imply) +0.6 % (-5.9 % when unversioned rows took the newest line, 0.861), -2.4 % once
    # the A6000 got its CUDA total (47.54 GiB, vllm#1201's OOM message, in place of
    # nvidia-smi's 47.99: the log's 47.24 GiB free before the load is now 0.3 GiB under
    # kvplan's total - pre-load). 2026-11-30, second session (docs-CI, GB300 and Gemma-3
    # rows; weight-load overhead refitted 0.19 -> 0.17 GiB on the ten training rows): the 0.4
    # line adds Llama-3.2-1B on the docs runner (H100, 2025-02-10 -> 0.4.2.post4) -0.3 %, and
    # 4x L4 moves to +0.9 %; 0.4.6 -2.2 %; the 0.5 line adds Kimi-K2.5 NVFP4 on 4x GB300
    # (InferenceX replay jobs, 2026-06, SGLang's own fraction 0.827 / 0.828 logged) +2.0 %
    # twice (+0.8 % on engine
    # terms: 274.38 GiB free before the load, 3.2 GiB in use where kvplan puts 2.35; the
    # rest is the weights, logged 139.96 GiB per rank). The 0.3 line has training rows only
    # (Llama-3.1-8B -0.1 %, Llama-3.2-1B +0.7 %, docs runner 2024-11-05), 0.4.8 likewise.
    # Few rows per line: not yet a distribution.
    held: dict[str, list[float]] = {}
    for r in rows:
        if r.engine == "sglang" and r.split == "heldout":
            held.setdefault(r.line, []).append(r.budget_err)
    assert sorted(held) == ["SGLang 0.4", "SGLang 0.4.6", "SGLang 0.5"]
    assert {line: len(errs) for line, errs in held.items()} == {
        "SGLang 0.4": 2,
        "SGLang 0.4.6": 1,
        "SGLang 0.5": 3,
    }
    for line, errs in held.items():
        assert statistics.median(abs(e) for e in errs) <= 0.05, (line, errs)
        assert max(abs(e) for e in errs) <= 0.03, (line, errs)
    # training rows of the 0.5 line: Qwen3-32B 4x B200 +0.7 %, Kimi-K2.5 8x MI355X (ROCm)
    # +2.6 %
    train = [
        r for r in rows if r.engine == "sglang" and r.split == "train" and r.line == "SGLang 0.5"
    ]
    assert len(train) == 2 and max(abs(r.budget_err) for r in train) <= 0.03


def test_sglang_token_count_logs_give_the_budget(rows: list[Any]) -> None:
    # SGLang up to 0.4.0 prints no K / V size, only max_total_num_tokens; the pool is
    # int(rest x 2^30 // cell_size) tokens, so the budget is (N + 1/2) cells. Docs-CI build of
    # 2024-11-05 (SGLang 0.3.5 current): Llama-3.1-8B 442,913 tokens x 131,072 B (32 layers x
    # 8 KV heads x 128 x 2 x 2 B) = 54.07 GiB, the 63.50 - 78.59 x 0.12 = 54.07 GiB the log's
    # own free-memory figures give; Llama-3.2-1B 2,170,757 x 32,768 B = 66.25 GiB. The
    # llm-tracker.info MI300X bench_latency log (2024-10-10, SGLang 0.3.3 current):
    # Llama-3-8B 1,256,440 tokens x 131,072 B = 153.37 GiB = 176.33 - 191.33 x 0.12.
    h = _harness()
    by_id = {r["id"]: r for r in h.load_records()}
    mi300x = "llama3-8b-instruct-sglang-bench-latency-mi300x-tp1-20241010"
    for rid, tokens, cell in (
        ("llama31-8b-sglang-docs-ci-h100-20241105", 442_913, 131_072),
        ("llama32-1b-sglang-docs-ci-h100-20241105", 2_170_757, 32_768),
        (mi300x, 1_256_440, 131_072),
    ):
        rec = by_id[rid]
        assert h.budget_from_tokens(rec) and h.version_line(rec) == "0.3"
        assert h.logged_budget(rec) == pytest.approx((tokens + 0.5) * cell / GiB)
    assert h.logged_budget(by_id["llama31-8b-sglang-docs-ci-h100-20241105"]) == pytest.approx(
        63.50 - 78.59 * 0.12, abs=0.01
    )
    assert h.logged_budget(by_id[mi300x]) == pytest.approx(176.33 - 191.33 * 0.12, abs=0.01)
    # a row that prints K / V sizes keeps them; a pool capped by --max-total-tokens is no
    # budget at all
    assert not h.budget_from_tokens(by_id["llama31-8b-sglang-docs-ci-h100-20250210"])
    capped = {
        **by_id["llama31-8b-sglang-docs-ci-h100-20241105"],
        "raw_log": "server_args=ServerArgs(... max_total_tokens=20480, ...)",
    }
    assert not h.budget_from_tokens(capped) and h.logged_budget(capped) is None
    line = {r.id: r for r in rows if r.line == "SGLang 0.3"}
    assert set(line) == {
        "llama31-8b-sglang-docs-ci-h100-20241105",
        "llama32-1b-sglang-docs-ci-h100-20241105",
        mi300x,
    }
    assert all(r.from_blocks and r.page_ok is None for r in line.values())
    assert max(abs(r.budget_err) for r in line.values()) <= 0.01


def test_sglang_multimodal_models_get_a_smaller_fraction(rows: list[Any]) -> None:
    # SGLang's ModelRunner multiplies mem_fraction_static (given or default) by 0.95 for a
    # multimodal model up to 0.4.4 and by 0.90 from 0.4.5 to 0.4.8 (model_runner.py:243 in
    # v0.4.4, :274 in v0.4.5, :415 in v0.4.8); from 0.4.6 Gemma 3 and Llama 4 run text-only
    # unless --enable-multimodal (configs/model_config.py), and from 0.4.9 the reduction moved
    # to server_args' default path (not modelled).
    spec = catalog_spec("google/gemma-3-4b-it")
    text = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    mistral = catalog_spec("mistralai/Mistral-Small-3.1-24B-Instruct-2503")

    def fraction(s: Any, version: str, **kw: Any) -> float | None:
        d = Deployment(spec=s, gpu=gpu("h100-sxm"), engine=Engine.SGLANG, engine_version=version)
        return plan(d.with_(**kw)).budget.fraction

    assert fraction(spec, "0.3.6") == pytest.approx(0.88 * 0.95)
    assert fraction(spec, "0.4.4") == pytest.approx(0.88 * 0.95)
    assert fraction(spec, "0.4.5") == pytest.approx(0.88 * 0.90)
    assert fraction(spec, "0.4.4", mem_fraction_static=0.7) == pytest.approx(0.7 * 0.95)
    assert fraction(spec, "0.4.6") == pytest.approx(0.88)  # Gemma 3: text-only by default
    # 0.4.8's default on an H100 (81,559 MiB): round(1 - (9.5 + 0.5) GiB / 81,559 MiB, 3) = 0.874
    # ("0.4.8" alone names the 0.4.8-0.5.2 line, whose newest release no longer reduces)
    assert fraction(mistral, "0.4.8.post1") == pytest.approx(0.874 * 0.90)
    assert fraction(mistral, "0.4.9") == pytest.approx(0.874)
    assert fraction(mistral, "0.4.8") == pytest.approx(0.874)
    assert fraction(text, "0.4.4") == pytest.approx(0.88)
    # sglang PR #4826 (training): 139.21 GiB free x 0.88 x 0.95 - 8.13 GiB = 108.25 GiB, the
    # logged K + V (54.12 + 54.12); with the log's weights kvplan is exact on engine terms
    row = {r.id: r for r in rows}["gemma3-4b-it-sglang-pr4826-h200-tp1"]
    assert row.split == "train" and row.line == "SGLang 0.4"
    assert row.engine_only_err is not None and abs(row.engine_only_err) <= 0.005
    assert abs(row.budget_err) <= 0.02


def test_sglang_048_line_training_rows(rows: list[Any]) -> None:
    # Two unversioned training rows of July 2025 moved from the 0.5 line to 0.4.8-0.5.2 by
    # their log_date (2026-11-30 rule, adopted before these figures were seen). Qwen3-235B-FP8
    # 4x H100 (vllm#21348, 2025-07-22 -> 0.4.9.post3) passes --mem-fraction-static 0.93, so
    # the line does not move it: -1.3 %. Llama-3.1-8B on an RTX 4090 under Docker Desktop on
    # Windows (thesis row, 2025-07-14 -> 0.4.9.post2): the 0.4.8 rule's fraction 0.879 is the
    # one the log implies, but Windows keeps 24.0 - 22.39 GiB of the card before SGLang
    # starts where kvplan's pre-load is 0.51 GiB, so the pool is over-predicted: +17.8 % full,
    # +20.5 % engine terms on nvidia-smi's 23.99 GiB, +9.9 % / +14.0 % on the RTX 4090's CUDA
    # total 23.64 GiB (ali-vilab/VGen#104; +1.7 % under the 0.5 rule, whose smaller fraction
    # 0.847 happened to offset the desktop's memory). Reported as it falls; a training row,
    # no constant moved.
    line = {r.id: r for r in rows if r.line == "SGLang 0.4.8"}
    assert set(line) == {
        "qwen3-235b-fp8-h100-tp4-sglang",
        "llama31-8b-sglang-24gb-docker-desktop-thesis",
    }
    assert all(r.split == "train" for r in line.values())
    assert abs(line["qwen3-235b-fp8-h100-tp4-sglang"].budget_err) <= 0.02
    thesis = line["llama31-8b-sglang-24gb-docker-desktop-thesis"]
    assert 0.08 <= thesis.budget_err <= 0.12
    assert thesis.engine_only_err is not None and 0.12 <= thesis.engine_only_err <= 0.16


def test_unversioned_logs_take_the_release_current_at_their_date() -> None:
    # Release dates from PyPI (tests/data/engine_releases.yaml): SGLang 0.4.9.post2 2025-07-12,
    # 0.4.9.post3 2025-07-22, 0.5.3 2025-10-06 (a release counts on its own day); vLLM 0.22.0
    # 2026-05-29, 0.22.1 2026-06-05; nothing before vLLM 0.0.1 (2023-06-19).
    h = _harness()
    assert h.release_at(Engine.SGLANG, "2025-07-14") == "0.4.9.post2"
    assert h.release_at(Engine.SGLANG, "2025-07-22") == "0.4.9.post3"
    assert h.release_at(Engine.SGLANG, "2025-10-06") == "0.5.3"
    assert h.release_at(Engine.VLLM, "2026-06-03") == "0.22.0"
    assert h.release_at(Engine.VLLM, "2023-01-01") is None
    by_id = {r["id"]: r for r in h.load_records()}
    # the fraction each dated row's own figures imply (notes: 7.37 - 22.39 x (1 - f) = 4.66,
    # f = 0.879; 19.67 - 47.24 x (1 - f) = 14.00, f = 0.88) is the default of the line its
    # date selects: 1 - reserved / memory on a 24 GB card (0.4.8), 0.88 at TP 1 (0.4.6)
    for rid, version, fraction in (
        ("llama31-8b-sglang-24gb-docker-desktop-thesis", "0.4.8", 0.879),
        ("qwen3-14b-sglang-xinference3481-48gb-tp1", "0.4.6", 0.88),
    ):
        line, rule = h.line_choice(by_id[rid])
        assert line == version and rule.startswith("log_date 2025-"), rule
        assert plan(h.deployment_for(by_id[rid])).budget.fraction == pytest.approx(fraction)
    # evidence in the log itself comes before the date; neither date nor release keeps the
    # old rule (SGLang: the newest line; vLLM: notes naming 2025 -> the pre-0.17 V1 line)
    club = by_id["qwen36-27b-autoround-2x3090-tp2-fp8e5m2-v02x-util092"]
    assert h.line_choice(club) == ("0.33", "no release; the log prints the 0.21+ line")
    bare = {**by_id["qwen3-14b-sglang-xinference3481-48gb-tp1"], "log_date": None}
    assert h.line_choice(bare)[0] == "0.5"
    assert h.line_choice({**by_id["qwen3-235b-fp8-h100-tp4-vllm"], "log_date": None})[0] == "0.16"
    # a date whose release no line models (SGLang 0.2.14, 2024-08-26, before the 0.3 line)
    # falls back to that rule too, and says so
    old = {**bare, "log_date": "2024-08-27"}
    line, rule = h.line_choice(old)
    assert line == "0.5" and "0.2.14 current on PyPI (outside the modelled lines)" in rule


def test_sglang_pre_load_memory_by_tp_and_link():
    # What SGLang finds in use after init_torch_distributed: the context at TP 1; at TP > 1
    # on an NVLink / Infinity Fabric baseboard the NCCL + custom all-reduce buffers too
    # (CUDA: vLLM 0.19's 2.09 - 0.25 GiB, transferred; ROCm: the Kimi-K2.5 MI355X log's 4.42
    # GiB at TP 8, 3.81 of them "Init torch distributed"); PCIe keeps the TP 1 figure
    # (custom all-reduce is off on > 2 PCIe-only GPUs).
    spec = catalog_spec("Qwen/Qwen2.5-32B-Instruct")

    def preload(gpu_name: str, tp: int) -> int:
        d = Deployment(spec=spec, gpu=gpu(gpu_name), tp=tp, engine=Engine.SGLANG)
        return plan(d).budget.preload

    context = int(0.51 * GiB)
    assert preload("h100-sxm", 1) == context
    assert preload("h100-sxm", 4) == context + int(2.09 * GiB) - int(0.25 * GiB)
    assert preload("l4", 4) == context  # PCIe only
    assert preload("rtx-3090", 2) == context  # a 2-way bridge is not a baseboard
    assert preload("mi355x", 8) == int(4.42 * GiB)
    assert preload("mi355x", 1) == int((4.42 - 3.81) * GiB)


def test_vllm_033_line_rows_and_its_first_held_out_figures(rows):
    # Fourteen evaluable 0.20.1+ logs. LMCache#3430 (Qwen3-8B, RTX A5000, vLLM 0.21.0, util
    # 0.9764): -6.7 %, most of it kvplan's graph estimate 0.705 + 0.00448 x 36 x 84/100 = 0.84
    # GiB (51 piecewise + 35 full graphs at 256 seqs) against the logged 0.52; -7.2 % before
    # the graph count was modelled (0.87 GiB). kubesimplify/website@00b7452
    # (Qwen3-235B-A22B-Instruct-2507-FP8 on 4x RTX PRO 6000 Server Edition, 95.01 GiB, vLLM
    # 0.27.1, util 0.9, 32k, 32 seqs: 11 + 7 graphs, estimate 0.78 GiB, was 1.13): TP 4
    # -2.7 % (27.85 GiB logged; -4.0 % before), TP 4 + EP -3.1 % (27.96: kvplan does not
    # model EP, and the log's weights are the same 55.19 GiB), PP 4 +2.7 % (26.84; +2.4 %).
    # ajith-sirra-amd/InferenceMAX_Rocm_Team@e5985f07 (MiniMax-M2.5 FP8 on MI355X, vLLM
    # 0.22.0 ROCm, util 0.95, fp8 KV, 32-token blocks, 1 / 48 seqs): the line's first
    # held-out rows, TP 2 -1.3 % / -1.0 % (161.55 / 161.08 GiB logged); the TP 1 training
    # rows -10.6 % / -9.9 % (57.33 / 56.86 GiB): the log leaves 1.75 GiB for activations +
    # non-torch (0.95 x 287.98 - 214.51 - 57.33), kvplan 2.1 + 6.0 (ROCm non-torch). The
    # harness tells kvplan the row's release (0.22.0, as a user would), so no graph estimate
    # is subtracted on ROCm (from 0.26.0 only); -11.9 / -11.3 / -1.8 / -1.5 % when it passed
    # the line's name, whose newest release subtracts one.
    line = {r.id: r for r in rows if r.line == "vLLM 0.33"}
    expected = {
        "qwen3-8b-rtx-a5000-v0210-len16k-util09764": (-0.09, -0.05),
        "qwen3-235b-a22b-2507-fp8-4x-rtxpro6000-tp4-v0271-len32k": (-0.04, -0.015),
        "qwen3-235b-a22b-2507-fp8-4x-rtxpro6000-tp4-ep-v0271-len32k": (-0.045, -0.02),
        "qwen3-235b-a22b-2507-fp8-4x-rtxpro6000-pp4-v0271-len32k": (0.01, 0.045),
        "minimax-m25-fp8-mi355x-tp1-v0220-seqs1-inferencemax-rocm": (-0.115, -0.095),
        "minimax-m25-fp8-mi355x-tp1-v0220-seqs48-inferencemax-rocm": (-0.11, -0.09),
        "minimax-m25-fp8-mi355x-tp2-v0220-seqs1-inferencemax-rocm": (-0.02, -0.005),
        "minimax-m25-fp8-mi355x-tp2-v0220-seqs48-inferencemax-rocm": (-0.02, -0.005),
        # same campaign, Kimi-K2.5-NVFP4 TP 4 on B200 (vLLM 0.22.0, util 0.9, fp8 KV, graph
        # estimate disabled by VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0): +0.8 % with the
        # TRT-LLM-gen MoE profile peak, the bf16 LM head, MoonViT's whole-per-rank tensors
        # and FlashInfer-MLA's import-time workspace (+10.3 % before; +19.1 % with
        # every weight split evenly), see KIMI_B200_ROWS
        "kimi-k25-nvfp4-b200-tp4-v0220-seqs8-inferencemax-graph-estimate-off": (0.0, 0.02),
        "kimi-k25-nvfp4-b200-tp4-v0220-seqs20-inferencemax-graph-estimate-off": (0.0, 0.02),
        # gpt-oss-120b TP 8 on 8x RTX PRO 4500 Blackwell Server Edition (vLLM 0.28.0, util
        # 0.95; vllm#51590, the commenter's start-up figures), a training row evaluable since
        # the GPU entered the catalog: -2.6 % as it fell (engine terms alone -14.9 %, see
        # RTXPRO4500_MISSES)
        "gpt-oss-120b-8x-rtxpro4500-tp8-v0280-util095": (-0.04, -0.01),
        # noonghunna/club-3090 #612 / #652 (nvidia/Qwen3.6-35B-A3B-NVFP4, one RTX 5090, vLLM
        # 0.24.0, default util, fp8 KV, 128k, 1 seq; evaluable since the checkpoint's config
        # entered the catalog, 2026-11-30): +2.5 % / +2.0 % (5.98 / 6.01 GiB logged)
        "qwen36-35b-a3b-nvfp4-rtx5090-v0240-len128k-fp8kv-0706": (0.01, 0.035),
        "qwen36-35b-a3b-nvfp4-rtx5090-v0240-len128k-fp8kv-0709": (0.01, 0.035),
        # the same campaign's TP 8 runs (71.01 GiB weights and 86.18-86.19 GiB KV per rank,
        # 1 / 24 seqs), added by another hand while the SM100 rules were written, neither seen
        # by them: +1.7 % each before those rules, -0.4 % after (held out: seqs24)
        "kimi-k25-nvfp4-b200-tp8-v0220-seqs1-inferencemax-graph-estimate-off": (-0.01, 0.0),
        "kimi-k25-nvfp4-b200-tp8-v0220-seqs24-inferencemax-graph-estimate-off": (-0.01, 0.0),
        # Prathmesh234/mutliturn-inferenceX: the same checkpoint TP 4 on one GB300 node (vLLM
        # 0.21.0, util 0.9, fp8 KV, graph estimate subtracted): +5.8 % / +5.9 % (16 / 128 seqs;
        # 101.53 / 101.40 GiB logged; +5.0 % with the log's weights) before the SM100 rules,
        # +4.2 % / +4.3 % after (kvplan 105.84 / 105.74; +4.0 % / +4.1 % engine terms)
        "kimi-k25-nvfp4-gb300-tp4-v0210-seqs16-agentic-replay": (0.035, 0.05),
        "kimi-k25-nvfp4-gb300-tp4-v0210-seqs128-agentic-replay": (0.035, 0.05),
    }
    assert set(line) == set(expected)
    held = sorted(r.id for r in line.values() if r.split == "heldout")
    assert held == [
        "kimi-k25-nvfp4-b200-tp4-v0220-seqs20-inferencemax-graph-estimate-off",
        "kimi-k25-nvfp4-b200-tp8-v0220-seqs24-inferencemax-graph-estimate-off",
        "minimax-m25-fp8-mi355x-tp2-v0220-seqs1-inferencemax-rocm",
        "minimax-m25-fp8-mi355x-tp2-v0220-seqs48-inferencemax-rocm",
    ]
    for row_id, (lo, hi) in expected.items():
        assert lo < line[row_id].budget_err < hi, (row_id, line[row_id].budget_err)
    # held-out median of the line (CUDA and ROCm together): 1.0 % (n 4), within issue 11's
    # 5 % per-line bar; on CUDA alone: Kimi-K2.5 TP 4 +0.8 % (+10.3 % before the TRT-LLM-gen
    # MoE peak and the bf16 LM head, +19.1 % before the replicated tensors), TP 8 -0.4 %
    assert statistics.median(abs(line[i].budget_err) for i in held) <= 0.05
    # page math on the ROCm rows: 62 layers x 8 / TP KV heads x 128 x 2 x 1 B (fp8) per
    # token, in 32-token blocks, reproduces the logged token counts (484,800 at TP 1)
    for r in line.values():
        if r.id.startswith("minimax-m25"):
            per_token = 62 * (8 // r.tp) * 128 * 2
            blocks = int(r.logged_budget_gib * GiB) // (per_token * 32)
            assert abs(blocks * 32 - r.logged_tokens) <= 32, (r.id, blocks * 32)
    tp4 = line["qwen3-235b-a22b-2507-fp8-4x-rtxpro6000-tp4-v0271-len32k"]
    # the log's weights in place of kvplan's (55.19 vs 55.03 GiB) move it by under 1 %:
    # the miss is in the engine terms (graphs, non-torch, activations), not the weights
    assert tp4.engine_only_err is not None
    assert abs(tp4.engine_only_err - tp4.budget_err) < 0.01
    # 47 KiB per token per GPU (94 layers x 1 KV head x 128 x 2 x 2 B at TP 4): the token
    # line follows the budget within 0.1 %
    assert tp4.tokens_err is not None
    assert abs(tp4.tokens_err - tp4.budget_err) < 0.001


def test_rows_not_evaluated_say_why():
    h = _harness()
    why = {r["id"]: h.why_not(r) for r in h.load_records()}
    evaluated = {r.id for r in h.evaluate()}
    assert {i for i, w in why.items() if not w} == evaluated
    # DGX Spark (GB10): vLLM reads free memory from the host on unified memory
    assert any(
        "unified memory" in w for w in why["minimax-m27-awq-2xdgx-spark-tp2-v0291dev-util085"]
    )
    # a card named only by its size is not guessed
    assert any("named only vaguely" in w for w in why["qwen3-14b-sglang-lmcache2400-h100-tp1"])


# The one forward-bound held-out V1 row: its activation peak is the dense FFN pass, sized by
# ACT_FFN, which is fitted on the V0 training rows (the only forward-bound ones); refitted to
# 7.76 once the RTX 3090 rows got their CUDA total, it puts this row's engine terms at +6.0 %
# (+4.8 % at 9.18). Out-of-sample evidence that V1's forward peak per FFN unit is above the
# V0 fit; not tuned on (it is held out).
V1_FORWARD_BOUND_MISS = "llama33-70b-w8a8-h100-tp1-v0190-len8k"

# MiniMax-M2.5 FP8 on one MI355X (vLLM 0.22.0 ROCm, training rows): the log leaves 1.75 GiB
# for activations + non-torch where kvplan puts 2.1 + 6.0 (its ROCm non-torch term) + 0.72
# (a graph estimate 0.22.0 does not subtract on ROCm): engine terms -12 %. At TP 2 the same
# campaign is within 2 %.
ROCM_TP1_MISSES = (
    "minimax-m25-fp8-mi355x-tp1-v0220-seqs1-inferencemax-rocm",
    "minimax-m25-fp8-mi355x-tp1-v0220-seqs48-inferencemax-rocm",
)

# Kimi-K2.5-NVFP4 TP 4 on B200 (vLLM 0.22.0, InferenceMAX_Rocm_Team, one training and one
# held-out row): the log leaves 3.83 GiB per rank for activations + non-torch (0.9 x 178.35
# - 139.53 - 17.16). vLLM 0.22 runs the NVFP4 experts through FlashInfer's TRT-LLM-gen MoE on
# B200; its profile pass comes before FlashInfer's autotune, so the fallback tile (128 at
# 8192 tokens x top-8 over 384 experts) pads the routed rows to 114,304 and gemm2's bf16
# output alone is 114,304 x 7168 x 2 B = 1.53 GiB per rank, whatever the TP: 1.81 GiB with
# the kernel's other outputs and the layer's input (budget.trtllm_nvfp4_moe_peak), where the
# dense-FFN form gave 0.79. With it the engine terms are -0.4 % (+5.5 % before). The
# checkpoint's ignore list names "language_model.lm_head": the head is bf16 (ModelOpt never
# quantizes vLLM's ParallelLMHead either), +0.39 GiB per rank over the NVFP4 head kvplan
# counted. vLLM also keeps MoonViT's embeddings, LayerNorms, RowParallel biases and its
# ReplicatedLinear projector whole on each rank (59.86 M parameters, VisionEncoder.tp_whole):
# +0.08 GiB per rank over an even split. And vLLM 0.21 - 0.22 allocate FlashInfer-MLA's 128 MiB
# workspace when its module is imported, while the model is built (capacity.load_time_buffers).
# kvplan's weights are 139.31 GiB per rank, 0.22 under the logged 139.53 (not attributed):
# +0.8 % in all (+10.3 % before).
KIMI_B200_ROWS = (
    "kimi-k25-nvfp4-b200-tp4-v0220-seqs8-inferencemax-graph-estimate-off",
    "kimi-k25-nvfp4-b200-tp4-v0220-seqs20-inferencemax-graph-estimate-off",
)

# gpt-oss-120b MXFP4 TP 8 on 8x RTX PRO 4500 Blackwell Server Edition (vLLM 0.28.0, util
# 0.95, 31.38 GiB CUDA total; vllm#51590, a training row, evaluated once the GPU entered
# the catalog, figures as they fell): the commenter's figures leave 0.83 GiB per rank for
# activations + non-torch + graphs (29.81 requested - 9.98 weights - 19.0 KV), kvplan
# 3.65 GiB: engine terms -14.9 %; kvplan's own weights are 2.33 GiB per rank under the
# logged 9.98, which takes the full prediction to -2.6 %. max_model_len is not stated (the
# harness leaves kvplan's default), and the figures are a table, not log lines.
RTXPRO4500_MISSES = ("gpt-oss-120b-8x-rtxpro4500-tp8-v0280-util095",)


def test_engine_terms_alone_within_bounds_on_training_and_held_out(rows):
    # With the log's own weights, only the engine terms (fraction, activation peak,
    # non-torch, graphs) are judged: every vLLM 0.17-0.19 / 0.20 / 0.21-0.33 row within 5 %,
    # except the forward-bound held-out row below.
    for r in rows:
        if r.id == V1_FORWARD_BOUND_MISS or r.id in (ROCM_TP1_MISSES + RTXPRO4500_MISSES):
            continue
        if r.line in ("vLLM 0.19", "vLLM 0.20", "vLLM 0.33") and r.engine_only_err is not None:
            assert abs(r.engine_only_err) <= 0.05, (r.id, r.engine_only_err)


@pytest.mark.xfail(
    strict=True,
    reason="forward-bound V1 row (70B w8a8, TP 1, 5 GiB pool): ACT_FFN fitted on V0 rows "
    "(7.76) leaves its engine terms +6.0 % (see V1_FORWARD_BOUND_MISS)",
)
def test_engine_terms_of_the_forward_bound_held_out_row(rows):
    (r,) = [r for r in rows if r.id == V1_FORWARD_BOUND_MISS]
    assert abs(r.engine_only_err) <= 0.05


@pytest.mark.xfail(
    strict=True,
    reason="MiniMax-M2.5 FP8 on one MI355X (vLLM 0.22.0 ROCm, InferenceMAX_Rocm_Team): the "
    "log leaves 1.75 GiB for activations + non-torch, kvplan ~8.1 GiB (ROCm non-torch 6.0 "
    "GiB; no graph estimate on ROCm at 0.22.0): engine terms -11 % (see ROCM_TP1_MISSES)",
)
def test_engine_terms_of_the_rocm_tp1_rows(rows):
    misses = [r for r in rows if r.id in ROCM_TP1_MISSES]
    assert len(misses) == 2
    assert all(abs(r.engine_only_err) <= 0.05 for r in misses)


def test_kimi_b200_rows(rows):
    rows_ = [r for r in rows if r.id in KIMI_B200_ROWS]
    assert len(rows_) == 2 and {r.split for r in rows_} == {"train", "heldout"}
    for r in rows_:
        assert r.engine_only_err is not None
        assert abs(r.engine_only_err) <= 0.01, (r.id, r.engine_only_err)
        assert 0.0 < r.budget_err < 0.02, (r.id, r.budget_err)


def test_trtllm_nvfp4_moe_peak_by_hand():
    # Kimi-K2.5 (hidden 7168, 384 experts top-8, expert width 2048) at TP 4, 8192 tokens:
    # mean 8192 x 8 / 384 = 170.7 rows per expert -> next power of two 256 -> fallback tile
    # 128 (the smaller neighbour, selectDefaultTileN); padded rows (384 + (65536 - 384) //
    # 128) x 128 = 114,304; gemm1 fp4 out 114,304 x 256 + scales 114,304 x 32; gemm2 bf16
    # out 114,304 x 7168 x 2; finalized out 8192 x 7168 x 2; input bf16 + fp4 + scales
    # 8192 x (14336 + 3584 + 448).
    from kvplan.core.budget import _trtllm_fallback_tile, trtllm_nvfp4_moe_peak
    from kvplan.sources.catalog import load_catalog

    assert _trtllm_fallback_tile(8192, 8, 384) == 128
    assert _trtllm_fallback_tile(1, 8, 384) == 8  # mean below 1: the ladder's first tile
    catalog = load_catalog()
    spec = catalog.load(catalog.find("nvidia/Kimi-K2.5-NVFP4"))
    expected = 114_304 * 256 + 114_304 * 32 + 114_304 * 7168 * 2 + 8192 * 7168 * 2 + 8192 * 18_368
    assert trtllm_nvfp4_moe_peak(spec, tp=4, tokens=8192) == expected == 1_939_492_864


def test_kimi_k25_vision_tensors_vllm_keeps_whole():
    # MoonViT (27 blocks, width 1152, MLP 4304, patch 14, 64 x 64 position table) under vLLM
    # TP: whole on every rank are the patch conv (3 x 14 x 14 x 1152 + 1152) and position
    # table (64 x 64 x 1152) = 5,397,120; the final and projector LayerNorms 2 x 2 x 1152;
    # the projector's two ReplicatedLinear layers 4608 x 4608 + 4608 and 4608 x 7168 + 7168
    # = 54,275,584; per block two LayerNorms (4 x 1152) and the RowParallel wo / fc1 biases
    # (2 x 1152): 27 x 6912 = 186,624. 59,863,936 in all, bf16 on each of the 4 ranks.
    from kvplan.core.params import replicated_weight_bytes
    from kvplan.sources.catalog import load_catalog

    catalog = load_catalog()
    spec = catalog.load(catalog.find("nvidia/Kimi-K2.5-NVFP4"))
    assert spec.vision is not None
    assert spec.vision.tp_whole == 5_397_120 + 4_608 + 54_275_584 + 186_624 == 59_863_936
    with_vision = replicated_weight_bytes(spec, frozenset({"vision"}))
    assert with_vision == 59_863_936 * 2


def test_flashinfer_mla_import_workspace_by_release_and_gpu():
    # 128 MiB (flashinfer_mla.py:30) on SM100 for MLA models in vLLM 0.21 - 0.22 only
    from kvplan.core.capacity import FLASHINFER_MLA_IMPORT_WORKSPACE, load_time_buffers

    h = _harness()
    (row,) = [r for r in h.load_records() if r["id"] == KIMI_B200_ROWS[0]]
    d = h.deployment_for(row)
    assert FLASHINFER_MLA_IMPORT_WORKSPACE == 128 * 1024 * 1024
    assert load_time_buffers(d) == FLASHINFER_MLA_IMPORT_WORKSPACE  # 0.22.0, B200, MLA
    assert load_time_buffers(d.with_(engine_version="0.21.0")) == FLASHINFER_MLA_IMPORT_WORKSPACE
    assert load_time_buffers(d.with_(engine_version="0.33.0")) == 0  # allocated lazily there
    assert load_time_buffers(d.with_(engine_version="0.20.2")) == 0
    assert load_time_buffers(d.with_(gpu=h.load_gpus().get("h100-sxm"))) == 0
    assert load_time_buffers(h.deployment_for(row, logged_weights=True)) == 0


def test_sm100_rules_follow_compute_capability_not_names(tmp_path):
    # The vLLM 0.21 - 0.22 SM100 rules (FlashInfer-MLA import workspace, TRT-LLM-gen NVFP4
    # MoE) apply on every compute capability 10.x GPU: the catalog's B200 / GB200 / B300 /
    # GB300 and a --gpu-file GPU stating 10.0, not Hopper (9.0), RTX Blackwell (12.0), or a
    # --gpu-file GPU that does not state its capability
    from kvplan.core.budget import runs_trtllm_nvfp4_moe
    from kvplan.core.capacity import FLASHINFER_MLA_IMPORT_WORKSPACE, load_time_buffers

    h = _harness()
    (row,) = [r for r in h.load_records() if r["id"] == KIMI_B200_ROWS[0]]
    d = h.deployment_for(row)
    mine = tmp_path / "mine.yaml"
    card = (
        "  - name: my-blackwell-{n}\n    display_name: My Blackwell {n}\n    vendor: nvidia\n"
        "    memory_marketed_gb: 192\n    memory_bytes: 206158430208\n    memory_basis: lab\n"
        "    memory_bandwidth: 8.0e+12\n    source: lab\n"
    )
    mine.write_text(
        "schema_version: 1\ngpus:\n"
        + card.format(n=1)
        + '    compute_capability: "10.0"\n'
        + card.format(n=2)
    )
    gpus = h.load_gpus(str(mine))
    for name, applies in (
        ("b200", True),
        ("gb200", True),
        ("b300", True),
        ("gb300", True),
        ("my-blackwell-1", True),
        ("my-blackwell-2", False),  # capability not stated
        ("h100-sxm", False),
        ("h200", False),
        ("rtx-5090", False),
        ("rtx-pro-6000", False),
    ):
        on = d.with_(gpu=gpus.get(name))
        workspace = FLASHINFER_MLA_IMPORT_WORKSPACE if applies else 0
        assert load_time_buffers(on) == workspace, name
        assert runs_trtllm_nvfp4_moe(on) is applies, name


def test_kimi_nvfp4_lm_head_stays_bf16():
    # nvidia/Kimi-K2.5-NVFP4's ignore list names "language_model.lm_head": 163840 x 7168 in
    # bf16, not NVFP4
    from kvplan.core.params import weight_bytes
    from kvplan.sources.catalog import load_catalog

    catalog = load_catalog()
    spec = catalog.load(catalog.find("nvidia/Kimi-K2.5-NVFP4"))
    groups = weight_bytes(spec).groups
    assert groups["lm_head"] == 163_840 * 7168 * 2
    assert groups["embedding"] == 163_840 * 7168 * 2


@pytest.mark.xfail(
    strict=True,
    reason="gpt-oss-120b TP 8 on RTX PRO 4500 Blackwell Server Edition (vLLM 0.28.0, "
    "vllm#51590): the figures leave 0.83 GiB per rank for activations + non-torch + graphs, "
    "kvplan 3.65 GiB: engine terms -14.9 % (see RTXPRO4500_MISSES)",
)
def test_rtxpro4500_row_engine_terms(rows: list[Any]) -> None:
    (r,) = [r for r in rows if r.id in RTXPRO4500_MISSES]
    assert abs(r.engine_only_err) <= 0.05


def _kinds() -> dict[str, list[str]]:
    return {r["id"]: r.get("model_kind") or [] for r in _harness().load_records()}


def test_vllm_016_engine_terms_on_h100_tp1_text_models(rows):
    # The pre-0.17 V1 line (0.8-0.16) where it is validated: H100, TP 1, text-only models
    # (Qwen3-14B 0.15/0.16 sweep; llm-d-benchmark 0.11 runs of gpt-oss-20b, Llama-3.1-8B,
    # Qwen3-0.6B, Qwen3-32B), train and held-out alike, engine terms within 5 %.
    kinds = _kinds()
    checked = [
        r
        for r in rows
        if r.line == "vLLM 0.16"
        and r.gpu == "h100-sxm"
        and r.tp == 1
        and r.engine_only_err is not None
        and "multimodal" not in kinds[r.id]
    ]
    assert len(checked) >= 6
    assert all(abs(r.engine_only_err) <= 0.05 for r in checked), [
        (r.id, r.engine_only_err) for r in checked
    ]


_V016_REASON = (
    "pre-0.17 V1 line (0.8-0.16) outside H100 text models: on A100 (256 seqs / 2048 tokens) "
    "vLLM 0.10.1.1 Qwen2-7B leaves ~0.4 GiB for activations where the model puts 1.40 GiB "
    "(-4 % to -19 %, the most at utilization 0.25); the multimodal profiling pass of "
    "Mistral-Small-3.2 (2.12 GiB) is not the text forward model (-9.8 %, held-out); the "
    "unversioned Qwen3-235B-FP8 TP 4 log (vllm#21348, LMCache connector, training) is "
    "+24 % with the TP > 1 non-torch refitted to 0.55 GiB on the 0.11 TP 2 training row"
)


def test_vllm_016_budget_held_out_median(rows):
    # non-torch at TP > 1 refitted on this line's one training row that logs it (0.55 GiB,
    # was 2.09 transferred from 0.19): held-out median 4.3 % -> 0.1 % (Qwen3-32B TP 2 -4.3 %
    # -> +0.1 %, Qwen2-7B A100 TP 2 -8.9 % -> -4.1 %)
    held = [r for r in rows if r.split == "heldout" and r.line == "vLLM 0.16"]
    assert len(held) >= 5
    assert statistics.median(abs(r.budget_err) for r in held) <= 0.01


@pytest.mark.xfail(strict=True, reason=_V016_REASON)
def test_vllm_016_budget_held_out(rows):
    held = [r for r in rows if r.split == "heldout" and r.line == "vLLM 0.16"]
    assert len(held) >= 3
    errs = [abs(r.budget_err) for r in held]
    assert statistics.median(errs) <= 0.03, errs
    assert max(errs) <= 0.05, [(r.id, r.budget_err) for r in held]


@pytest.mark.xfail(strict=True, reason=_V016_REASON)
def test_vllm_016_engine_terms_on_every_row(rows):
    checked = [r for r in rows if r.line == "vLLM 0.16" and r.engine_only_err is not None]
    assert all(abs(r.engine_only_err) <= 0.05 for r in checked), [
        (r.id, r.engine_only_err) for r in checked if abs(r.engine_only_err) > 0.05
    ]


def test_page_math_reproduces_logged_blocks(rows):
    checked = [r for r in rows if r.page_ok is not None and r.pp == 1]
    assert len(checked) >= 30
    assert all(r.page_ok for r in checked), [r.id for r in checked if not r.page_ok]


def test_version_profiles_select_by_release():
    assert profile_for(Engine.VLLM, "0.19.0").version == "0.19"
    assert profile_for(Engine.VLLM, "0.19.1").version == "0.19"
    assert profile_for(Engine.VLLM, "0.20.0").version == "0.20"
    assert profile_for(Engine.VLLM, "0.20.1").version == "0.33"
    assert profile_for(Engine.VLLM, "0.21.0").version == "0.33"
    assert profile_for(Engine.VLLM, "0.15.1").version == "0.16"
    assert profile_for(Engine.VLLM, "0.26.1rc1.dev3").version == "0.33"
    assert profile_for(Engine.VLLM, "0.6.4.post1").version == "0.6"
    assert profile_for(Engine.SGLANG, "0.4.3.post4").version == "0.4"
    assert profile_for(Engine.VLLM, None).version == "0.19"
    assert profile_for(Engine.TRTLLM, None).version == "pytorch"
    assert profile_for(Engine.TRTLLM, "1.2.1").version == "pytorch"
    assert profile_for(Engine.TRTLLM, "trt").version == "trt"
    # the PyTorch backend exists from 0.17 (TensorRT-LLM docs, torch.html): before that a
    # release number means the engine flow
    assert profile_for(Engine.TRTLLM, "0.17.0").version == "pytorch"
    assert profile_for(Engine.TRTLLM, "0.16.0").version == "trt"
    assert profile_for(Engine.TRTLLM, "0.9").version == "trt"
    assert parse_version("v0.4.3.post4") == (0, 4, 3)
    with pytest.raises(KvplanError) as err:
        profile_for(Engine.VLLM, "0.40.0")
    assert err.value.setting == "engine_version"


def test_scheduler_defaults_by_device():
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    # vllm/engine/arg_utils.py: >= 70 GiB and not A100 -> 1024 seqs / 8192 tokens (API server)
    h100 = Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version="0.19.0")
    assert (h100.scheduler_seqs, h100.scheduler_tokens) == (1024, 8192)
    a100 = Deployment(spec=spec, gpu=gpu("a100-80gb"), engine_version="0.19.0")
    assert (a100.scheduler_seqs, a100.scheduler_tokens) == (256, 2048)
    l4 = Deployment(spec=spec, gpu=gpu("l4"), engine_version="0.19.0")
    assert (l4.scheduler_seqs, l4.scheduler_tokens) == (256, 2048)
    # the offline LLM class: 16384 / 8192 batched tokens
    llm = Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version="0.19.0", entry_point="llm")
    assert (llm.scheduler_seqs, llm.scheduler_tokens) == (1024, 16384)
    assert a100.with_(entry_point="llm").scheduler_tokens == 8192
    # V0 profiles one max(max_model_len, 2048)-token pass
    v0 = Deployment(spec=spec, gpu=gpu("rtx-3090"), engine_version="0.6", max_model_len=20000)
    assert v0.scheduler_tokens == 20000
    # >= 160 GiB: 16384 tokens (vllm PR #51726), from 0.28.0 (absent from the 0.27.1 wheel's
    # arg_utils.py, present in 0.28.0's :2582-2591)
    b200 = Deployment(spec=spec, gpu=gpu("b200"), engine_version="0.33")
    assert b200.scheduler_tokens == 16384
    assert b200.with_(engine_version="0.28.0").scheduler_tokens == 16384
    assert b200.with_(engine_version="0.27.1").scheduler_tokens == 8192
    assert b200.with_(engine_version="0.20.0").scheduler_tokens == 8192


def test_cudagraphs_are_subtracted_from_021_on():
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    old = plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version="0.19.0"))
    new = plan(
        Deployment(
            spec=spec, gpu=gpu("h100-sxm"), engine_version="0.33", gpu_memory_utilization=0.90
        )
    )
    assert old.budget.cudagraph == 0
    assert new.budget.cudagraph > 0.5 * GiB
    assert new.budget.kv_budget == old.budget.kv_budget - new.budget.cudagraph
    assert "0.33" in new.budget.engine_version
    # default utilization of the newest line is 0.92 (vllm/config/cache.py, 0.22+)
    assert Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version="0.33").fraction == 0.92


def test_vllm_020_subtracts_the_graph_estimate_and_prints_group_tokens():
    """vllm 0.20.0 wheel (the tagged sources): VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS
    defaults to 1 (vllm/envs.py:1724-1725; "0" in 0.19.1, envs.py:1654-1655), the estimate
    is subtracted (gpu_worker.py:398-425), gpu_memory_utilization defaults to 0.92
    (config/cache.py:66), and "GPU KV cache size" is still (blocks // groups) x block
    (kv_cache_utils.py:1693-1711); 0.20.1 on print int(concurrency x max_model_len)
    (0.20.1 / 0.20.2 wheels, kv_cache_utils.py:1706)."""
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    d = Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version="0.20.0")
    assert d.fraction == 0.92
    p = d.profile
    assert (p.version, p.cudagraph_in_budget, p.token_line) == ("0.20", True, "groups")
    assert profile_for(Engine.VLLM, "0.20.1").token_line == "concurrency"
    b20 = plan(d.with_(gpu_memory_utilization=0.9)).budget
    b33 = plan(d.with_(engine_version="0.33", gpu_memory_utilization=0.9)).budget
    assert b20.kv_budget == b33.kv_budget  # same budget terms; they differ in what they print
    assert b20.cudagraph > 0


@pytest.mark.parametrize(
    ("model", "release", "estimated"),
    [
        # Model Runner V2 by default returned 0 for the graph estimate (0.21.0 - 0.28.0
        # wheels, vllm/v1/worker/gpu/model_runner.py); which models it ran, by release
        # (vllm/config/vllm.py `_is_default_v2_model_runner_model`):
        ("meta-llama/Llama-3.1-8B-Instruct", "0.21.0", True),  # no default-V2 rule yet
        ("meta-llama/Llama-3.1-8B-Instruct", "0.22.0", True),  # 0.22 lists only Qwen3
        ("Qwen/Qwen3-8B", "0.22.0", False),
        ("meta-llama/Llama-3.1-8B-Instruct", "0.23.0", False),  # Llama listed from 0.23
        ("google/gemma-2-9b-it", "0.24.0", True),  # 0.24: listed architectures only
        ("deepseek-ai/DeepSeek-V2-Lite", "0.24.0", False),  # DeepseekV2 listed in 0.24
        ("google/gemma-2-9b-it", "0.25.1", False),  # 0.25 - 0.28: every dense model
        ("Qwen/Qwen3-30B-A3B", "0.27.1", True),  # a MoE not listed stays on V1
        ("Qwen/Qwen3.5-27B", "0.26.0", True),  # hybrid: V1
        ("meta-llama/Llama-3.1-8B-Instruct", "0.28.0", False),
        ("meta-llama/Llama-3.1-8B-Instruct", "0.29.0", True),  # V2 estimates its graphs
        ("meta-llama/Llama-3.1-8B-Instruct", "0.33", True),  # the line: its newest release
    ],
)
def test_model_runner_v2_had_no_graph_estimate_in_022_to_028(model, release, estimated):
    d = Deployment(spec=catalog_spec(model), gpu=gpu("h100-sxm"), engine_version=release)
    assert (plan(d).budget.cudagraph > 0) is estimated


def test_model_runner_v2_rule_keeps_quantized_models_on_v1_before_024():
    """0.22 / 0.23 default to V2 only for unquantized checkpoints (`not
    model_config.is_quantized`); 0.24 drops that condition."""
    from kvplan.core.engines import mrv2_skips_graph_estimate

    assert mrv2_skips_graph_estimate((0, 23, 0), "llama", False, False, False)
    assert not mrv2_skips_graph_estimate((0, 23, 0), "llama", False, False, True)
    assert mrv2_skips_graph_estimate((0, 24, 0), "llama", False, False, True)
    assert not mrv2_skips_graph_estimate((0, 27, 1), "qwen3_5_text", False, True, False)
    assert mrv2_skips_graph_estimate((0, 27, 1), "qwen2_moe", True, False, False)


@pytest.mark.parametrize(
    ("release", "subtracted"),
    [("0.19.1", False), ("0.20.0", False), ("0.25.1", False), ("0.26.0", True), ("0.33", True)],
)
def test_rocm_graph_estimate_from_026(release, subtracted):
    """vLLM estimates CUDA-graph memory on ROCm only from 0.26.0 (vllm#44825): the 0.20.0 -
    0.25.1 wheels skip it there ("Skip on ROCm/HIP/XPU", gpu_worker.py), so nothing is
    subtracted; on CUDA every 0.20.0+ release subtracts it."""
    spec = catalog_spec("Qwen/Qwen3-30B-A3B")  # a MoE: Model Runner V1 in every release
    d = Deployment(spec=spec, gpu=gpu("mi300x"), engine_version=release)
    assert (plan(d).budget.cudagraph > 0) is subtracted
    cuda = Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version=release)
    assert (plan(cuda).budget.cudagraph > 0) is (release != "0.19.1")


@pytest.mark.parametrize(
    ("seqs", "tokens", "query_len", "counts"),
    [
        # hand-counted from vLLM's rule (0.20.0 / 0.21.0 _set_cudagraph_sizes): sizes 1, 2, 4,
        # 8..248 step 8, 256..512 step 16 = 3 + 31 + 17 = 51; full decode sizes <= seqs
        (1024, 8192, 1, (51, 51)),  # the 0.19 H100 training rows' count
        (256, 8192, 1, (51, 35)),  # "PIECEWISE=51 (largest=512), FULL=35 (largest=256)",
        # LMCache#3430 (0.21.0, default 256 seqs)
        (32, 8192, 1, (11, 7)),  # ceiling 64: 1, 2, 4, 8..64; full 1, 2, 4, 8..32
        (256, 2048, 1, (51, 35)),
        (64, 100, 1, (16, 11)),  # ceiling 100 = max_num_batched_tokens, appended: 3 + 12 + 1;
        # full 1, 2, 4, 8..64
        (6, 8192, 4, (9, 4)),  # ceiling 48; full decode sizes 4..24: 4, 8, 16, 24
    ],
)
def test_cudagraph_capture_counts_follow_vllms_rule(seqs, tokens, query_len, counts):
    assert cudagraph_capture_counts(seqs, tokens, query_len) == counts


def test_cudagraph_estimate_scales_with_the_graph_count():
    """At the fit's own count (1024 seqs: 50 + 50 extrapolated graphs) the estimate is the
    fitted 0.705 + 0.00448 x layers GiB; at 32 seqs (10 + 6) the layer term is 16 / 100 of it."""
    at_fit = estimate_cudagraph(36, 1024, 8192)
    assert at_fit == CG_BASE + CG_PER_LAYER * 36
    assert estimate_cudagraph(94, 32, 8192) == CG_BASE + CG_PER_LAYER * 94 * 16 // 100
    # Qwen3-235B TP 4 (94 layers, 32 seqs, 0.27.1): 0.77 GiB, was 1.13 at 100 graphs
    assert estimate_cudagraph(94, 32, 8192) / GiB == pytest.approx(
        0.705 + 0.00448 * 94 * 0.16, abs=1e-3
    )


def test_cudagraph_constants_are_the_training_fit():
    """CG_BASE / CG_PER_LAYER are the harness's least-squares fit on the TRAINING rows
    (`--fit`), to their rounding; the fit scales each row's layer term by its graph count."""
    fitted = _harness().fit(_harness().load_records())
    assert fitted["n_graphs"] >= 20
    assert fitted["CG_BASE_GiB"] == pytest.approx(CG_BASE / GiB, abs=0.005)
    assert fitted["CG_PER_LAYER_GiB"] == pytest.approx(CG_PER_LAYER / GiB, abs=0.00005)


def test_021_budget_formula_reproduces_a_logged_breakdown():
    """vLLM >= 0.2x prints every term of its budget on one line (vllm#50722, TP 4):
    total 79.33 GiB x 0.85 = 67.43 GiB requested; 16.92 weights, 5.66 peak activation,
    0.13 non-torch, CUDA graphs 1.32 GiB estimated (1.34 actual); KV in use 43.4 GiB.
    The 0.33 line's formula (subtract the graph ESTIMATE up front) gives 43.40; without
    the graph term it would be 44.72, and with the actual pool 43.38."""
    vllm = ENGINES[Engine.VLLM]

    def g(x: float) -> int:
        return round(x * GiB)

    terms = vllm.budget(g(79.33), g(16.92), g(5.66), g(0.13), 0.85, g(1.32))
    assert terms.granted / GiB == pytest.approx(67.43, abs=0.005)
    assert terms.kv / GiB == pytest.approx(43.4, abs=0.01)
    assert "CUDA graphs" in terms.formula


def test_vllm_refusal_in_the_engines_words_and_largest_length():
    # vLLM 0.15.2 log (Qwen3-Coder-30B-A3B-Instruct-FP8, training row): "To serve at least
    # one request with the models's max seq len (262144), (24.0 GiB KV cache is needed ...
    # available KV cache memory (3.18 GiB) ... estimated maximum model length is 34736".
    # Same attention geometry as Qwen3-30B-A3B: 48 layers x 4 KV heads x 128 x (K, V) x 2 B.
    from kvplan.core.engine_log import startup_check

    spec = catalog_spec("Qwen/Qwen3-30B-A3B")
    p = plan(
        Deployment(
            spec=spec,
            gpu=gpu("rtx-5090"),
            engine_version="0.15.2",
            kv_memory=int(3.18 * GiB),
            max_model_len=262144,
        )
    )
    assert p.kv_bytes_per_token == 48 * 4 * 128 * 2 * 2 == 98304
    check = startup_check(p, 262144)
    assert check.refused
    assert check.needed_bytes == 262144 * 98304 == 24 * GiB
    # the log rounds the budget to 0.01 GiB: within one 16-token block of the engine's answer
    assert abs(check.largest_max_model_len - 34736) <= 16
    assert check.largest_max_model_len % 16 == 0
    assert check.message is not None
    assert "(24.00 GiB KV cache is needed" in check.message
    assert "estimated maximum model length is" in check.message
    ok = startup_check(p, check.largest_max_model_len)
    assert not ok.refused


def test_null_block_is_held_back_from_033():
    from kvplan.core.engine_log import startup_check

    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    d = Deployment(spec=spec, gpu=gpu("h100-sxm"), kv_memory=10 * 16 * 131072 + 5)
    old = startup_check(plan(d.with_(engine_version="0.19")), 160)
    new = startup_check(plan(d.with_(engine_version="0.33")), 160)
    assert not old.refused and old.largest_max_model_len == 160  # 10 blocks of 16
    assert new.refused and new.largest_max_model_len == 144  # 9: one is the null block
    # from 0.29.0 only: "Reserve the null block" is in the 0.29.0 wheel's
    # kv_cache_utils.py:975 and absent from 0.28.0's
    for release, held in (("0.28.0", False), ("0.29.0", True), ("0.20.1", False)):
        check = startup_check(plan(d.with_(engine_version=release)), 160)
        assert check.refused is held, release


def test_engine_lines_are_each_engines_own():
    from kvplan.core.engine_log import engine_log_lines

    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    h100 = gpu("h100-sxm")
    v = engine_log_lines(plan(Deployment(spec=spec, gpu=h100)), 8192)
    assert any(line.startswith("Available KV cache memory:") for line in v)
    sg = engine_log_lines(plan(Deployment(spec=spec, gpu=h100, engine=Engine.SGLANG)), 8192)
    assert any(line.startswith("KV Cache is allocated. #tokens:") for line in sg)
    assert not any("Available KV cache memory" in line for line in sg)
    trt = engine_log_lines(plan(Deployment(spec=spec, gpu=h100, engine=Engine.TRTLLM)), 8192)
    assert any("for max tokens in paged KV cache" in line for line in trt)
    assert not any("execution context" in line for line in trt)  # PyTorch flow: no engine
    flow = Deployment(spec=spec, gpu=h100, engine=Engine.TRTLLM, engine_version="trt")
    engine = engine_log_lines(plan(flow), 8192)
    assert engine[0].endswith("MiB for execution context memory.")


def test_trtllm_pytorch_flow_held_out(rows):
    # Issue 11 goal for the TensorRT-LLM PyTorch flow: held-out median <= 5 %. The one
    # held-out row (TRT-LLM#6294, Llama-3.1-8B-FP8 on H100, 0.20.0, fraction 0.8, 23,552
    # tokens of dry run) is +1.6 % (+1.1 % before ACT_FFN was refitted on the RTX 3090's
    # CUDA total, +1.7 % until the runtime was refitted after it, 1.55 -> 1.58 GiB); the
    # runtime constant saw only the Qwen3-0.6B training row.
    line = [r for r in rows if r.line == "TensorRT-LLM pytorch"]
    held = [r for r in line if r.split == "heldout"]
    train = [r for r in line if r.split == "train"]
    assert len(held) >= 1 and len(train) >= 1
    assert statistics.median(abs(r.budget_err) for r in held) <= 0.05
    assert all(abs(r.budget_err) <= 0.02 for r in held), [(r.id, r.budget_err) for r in held]
    bench = next(r for r in held if "issue6294" in r.id)
    assert bench.logged_budget_gib == 52.51 and 52.0 < bench.budget_gib < 53.6


def test_trtllm_trt_engine_flow_held_out(rows):
    # The `trt` line (trtllm-build engine, C++ executor): runtime = 1.62 GiB + 29.06 B x
    # max_batch_size x padded vocabulary (each term fitted on the training rows that print it,
    # rule fixed before the held-out errors below were looked at). Held-out, as they fell:
    #   RTX 5090, Llama-3.1-8B FP8 engine, 0.19.0, batch 2048 (TRT-LLM#4275): -18.4 %
    #     (+0.3 % with 0.76 GiB + 1.94 MiB x batch and the row's settings unstated; +4.5 %
    #     with the old constants once its stated max_num_tokens 1024 / max_seq_len 2048 /
    #     fp8 KV were filled in)
    #   8x H100 TP 8, Llama-3.1-70B FP8, 0.16.0, batch 2048 (trtllm-benchmarks): +3.4 %
    #     (+10.5 % before; sized by the smallest rank, as TensorRT-LLM does)
    #   2x H100 NVL TP 2, LLaVA-1.5-7B fp16 engine, max_batch_size 8 (Triton multimodal
    #     ensemble doc; evaluable since llava-hf/llava-1.5-7b-hf entered the catalog): -3.3 %
    #     (-2.3 % with the old runtime constants)
    engine_rows = {r.id: r for r in rows if r.line == "TensorRT-LLM trt"}
    held = {k: r for k, r in engine_rows.items() if r.split == "heldout"}
    assert sorted(held) == [
        "llama31-70b-fp8-trtllm-0160-trt-8xh100-tp8-bench",
        "llama31-8b-fp8-trtllm-pytorch-32gb-blackwell",
        "llava15-7b-trtllm-trt-tp2-fp16kv-multimodal-doc",
    ]
    assert -0.20 < held["llama31-8b-fp8-trtllm-pytorch-32gb-blackwell"].budget_err < -0.16
    assert 0.0 < held["llama31-70b-fp8-trtllm-0160-trt-8xh100-tp8-bench"].budget_err <= 0.05
    assert -0.04 < held["llava15-7b-trtllm-trt-tp2-fp16kv-multimodal-doc"].budget_err < -0.02
    train = {r.id: r for r in engine_rows.values() if r.split == "train"}
    assert sorted(train) == [
        "llama2-7b-fp8-trtllm-0120dev-trt-h100-bench-suite-doc",
        "llama3-8b-instruct-trtllm-080-trt-rtx3090-triton-batch40",
        "qwen25-coder-05b-int8-a4000-trtllm",
    ]
    # 0.12 trtllm-bench: +4.9 % (its 3.01 GiB residual is above the fitted 1.62); the A4000
    # 0.5B int8 engine (TensorRT-LLM#1188, companion file): -13.4 % (+94 % with the old
    # per-sequence constant, which misses its 8.42 GiB of vocabulary-sized buffers)
    assert 0.03 < train["llama2-7b-fp8-trtllm-0120dev-trt-h100-bench-suite-doc"].budget_err < 0.07
    assert -0.16 < train["qwen25-coder-05b-int8-a4000-trtllm"].budget_err < -0.10


@pytest.mark.xfail(
    strict=True,
    reason="issue 11: the TensorRT-LLM 0.8 engine on an RTX 3090 (Triton, max_batch_size 40) "
    "allocated 3.86 GiB where kvplan gives 5.41 GiB (+40 %): 0.8 prints no execution-context "
    "line and the build's max_num_tokens is not stated, so the build-time activation "
    "memory TensorRT reserved is unknown",
)
def test_trtllm_trt_engine_flow_0_8_row_within_10_percent(rows):
    row = next(
        r for r in rows if r.id == "llama3-8b-instruct-trtllm-080-trt-rtx3090-triton-batch40"
    )
    assert abs(row.budget_err) <= 0.10


def test_trtllm_trt_engine_flow_held_out_median(rows):
    # 2.3 % (n = 3: +0.3 %, -2.3 %, +10.5 %); it was 5.4 % on the first two rows, the TP 8 one
    # sized by its smallest-rank free memory (one rank 3.5 GiB below the others)
    held = [r for r in rows if r.line == "TensorRT-LLM trt" and r.split == "heldout"]
    assert len(held) == 3
    assert statistics.median(abs(r.budget_err) for r in held) <= 0.05


def test_trt_engine_constants_are_the_training_fit():
    """Each term from the TRAINING rows that print it (the harness's `--fit`), hand-checked:
    per slot x vocabulary entry = (runtime buffers + decoder) / (max_batch_size x padded V):
      trtllm-bench 0.12 Llama-2-7B: (1.14 + 4.35) GiB / (4096 x 32000) = 44.97 B
      Qwen2.5-Coder-0.5B on an A4000 (TRT-LLM#1188, default batch 2048):
        (2.66 + 5.76) GiB / (2048 x 151936) = 29.06 B
      Triton 0.13 Llama-3-8B TP 2 (tensorrtllm_backend#576): (3.44 + 15.05) MiB / (8 x 128256)
        = 18.90 B                                              -> median 29.06 B
    base = total - available - engine - context - runtime - decoder:
      memory.md: 79.10 - 70.48 - (6695 + 1134.01 + 43.29 + 180.30) MiB = 0.756 GiB
      0.12 trtllm-bench: 79.10 - 63.62 - (6214 + 928.77) MiB - 1.14 - 4.35 = 3.005 GiB
      backend#625 RTX 4090: 23.99 - 12.22 - (10194 + 196.76 + 2.98) MiB - 648.06 KB = 1.619 GiB
                                                               -> median 1.62 GiB"""
    from kvplan.core.engines import TRT_ENGINE_BASE, TRT_ENGINE_PER_SLOT_VOCAB

    per_entry = sorted(
        [
            (1.14 + 4.35) * GiB / (4096 * 32000),
            (2.66 + 5.76) * GiB / (2048 * 151936),
            (3.44 + 15.05) * 2**20 / (8 * 128256),
        ]
    )
    assert [round(x, 2) for x in per_entry] == [18.9, 29.06, 44.97]
    base = (23.99 - 12.22) - (10194 + 196.76 + 2.98) / 1024 - 648.06 / 2**20
    assert round(base, 3) == 1.619
    f = _harness().fit(_harness().load_records())
    assert (f["n_trt_engine_per_slot_vocab"], f["n_trt_engine_base"]) == (3, 3)
    assert f["TRT_ENGINE_PER_SLOT_VOCAB_B"] == pytest.approx(per_entry[1], rel=1e-9)
    assert f["TRT_ENGINE_BASE_GiB"] == pytest.approx(base, abs=1e-6)
    assert round(per_entry[1], 2) == TRT_ENGINE_PER_SLOT_VOCAB
    assert int(round(base, 2) * GiB) == TRT_ENGINE_BASE


def test_trtllm_trt_engine_flow_runtime_formula():
    # trtllm-bench 0.12 Llama-2-7B FP8 on H100 (benchmarks/Suite.md), the log's own engine
    # (6214 MiB) and execution context (928.77 MiB) given, max_batch_size 4096, fraction 0.99:
    # runtime = 1.62 GiB + 29.06 B x 4096 x 32000 = 1.62 GiB + 3,808,952,320 B, free = 79.10 -
    # 6214/1024 - 928.77/1024 - 5.167 = 66.96 GiB (the log: 63.62; its residual beyond every
    # printed allocation is 3.01 GiB, above the fitted 1.62), kv = 0.99 x free.
    spec = catalog_spec("meta-llama/Llama-2-7b-hf")
    h100 = gpu("h100-sxm").model_copy(update={"cuda_memory_bytes": int(79.10 * GiB)})
    d = Deployment(
        spec=spec,
        gpu=h100,
        engine=Engine.TRTLLM,
        engine_version="trt",
        kv_dtype="fp8",
        max_num_seqs=4096,
        free_gpu_memory_fraction=0.99,
        activation_reserve=int(928.77 * 2**20),
        weights_override=6214 * 2**20,
    )
    b = plan(d).budget
    assert b.overhead == int(1.62 * GiB) + 3_808_952_320
    free = (b.total_memory - b.weights - b.activations - b.overhead) / GiB
    assert abs(free - 66.96) < 0.01, free
    assert b.kv_budget == int(0.99 * (b.total_memory - b.weights - b.activations - b.overhead))
    # the batch-sized buffers: 2048 fewer sequences free 2048 x 32000 x 29.06 B, x 0.99
    half = plan(d.with_(max_num_seqs=2048)).budget
    assert half.kv_budget - b.kv_budget == pytest.approx(0.99 * 1_904_476_160, abs=2)
    # the vocabulary is padded to a multiple of the world size (getVocabSizePadded) and held
    # whole on every rank; TP > 1 adds the NCCL / all-reduce term (1.84 GiB, transferred)
    from kvplan.core.engines import padded_vocab

    assert (padded_vocab(32000, 3), padded_vocab(151936, 8), padded_vocab(32000, 1)) == (
        32001,
        151936,
        32000,
    )
    gpt2 = Deployment(
        spec=catalog_spec("openai-community/gpt2"),
        gpu=gpu("h100-sxm"),
        engine=Engine.TRTLLM,
        engine_version="trt",
        tp=4,
    )
    # GPT-2's 50257 tokens padded to 50260 at TP 4; the default max_batch_size 2048
    tp_term = int(1.62 * GiB) + int((2.09 - 0.25) * GiB)  # + vLLM 0.19's NCCL growth
    assert plan(gpt2).budget.overhead == tp_term + int(29.06 * 2048 * 50260)
    # --overhead replaces the whole term
    assert plan(d.with_(overhead=GiB)).budget.overhead == GiB


def test_trtllm_dry_run_samples_one_row_per_dummy_request():
    # _create_dummy_context_requests: max_num_tokens tokens in requests of
    # min(max_num_tokens, max_seq_len - 1) tokens, one generated token each.
    trt = profile_for(Engine.TRTLLM, None)
    assert trt.version == "pytorch"
    assert trt.sampler_rows(2048, 8192, 131072) == 1
    assert trt.sampler_rows(4096, 23552, 157) == 151  # ceil(23552 / 156)
    assert trt.sampler_rows(2048, 8192, 2048) == 5  # ceil(8192 / 2047)
    assert profile_for(Engine.VLLM, None).sampler_rows(1024, 8192, 2048) == 1024
    # Llama-3.1-8B, 8192 tokens, one row: the forward term 8192 x 14336 x ACT_FFN B decides
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    p = plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), engine=Engine.TRTLLM))
    from kvplan.core.budget import ACT_FFN

    assert p.budget.activations == int(8192 * 14336 * ACT_FFN)


def test_trtllm_kv_memory_caps_the_estimate():
    # kv_cache_config.max_gpu_total_bytes: min(estimate, cap) (configure_kv_cache_capacity);
    # vLLM's kv_cache_memory_bytes replaces the budget instead.
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    d = Deployment(spec=spec, gpu=gpu("h100-sxm"), engine=Engine.TRTLLM)
    estimate = plan(d).budget.kv_budget
    assert plan(d.with_(kv_memory=10 * GiB)).budget.kv_budget == 10 * GiB
    assert plan(d.with_(kv_memory=estimate + 5 * GiB)).budget.kv_budget == estimate
    v = Deployment(spec=spec, gpu=gpu("h100-sxm"))
    assert plan(v.with_(kv_memory=90 * GiB)).budget.kv_budget == 90 * GiB


def test_trtllm_budget_subtracts_as_displayed():
    # kv = 0.9 x (total - weights - activations - runtime): each displayed term enters once
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    p = plan(
        Deployment(
            spec=spec, gpu=gpu("h100-sxm"), engine=Engine.TRTLLM, activation_reserve=GiB, overhead=0
        )
    )
    b = p.budget
    free = b.total_memory - b.weights - GiB
    assert b.kv_budget == int(free * 0.9)


def test_kv_formats_real_bytes_per_token(cli):
    # Llama-3.1-8B: 32 layers x 8 KV heads x (K, V) x 128 per GPU
    vectors = 32 * 8 * 2
    from kvplan.core.kvcache import kv_bytes_per_token
    from kvplan.sources.deployment import kv_dtype_for

    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    # nvfp4: 64 B of 4-bit values + 8 fp8 scales per 128-wide vector
    assert kv_bytes_per_token(spec, kv_dtype_for(spec, "nvfp4")) == vectors * (64 + 8)
    # per-token-head int8: 128 B + one fp32 scale per vector
    pth = kv_dtype_for(spec, "int8_per_token_head")
    assert kv_bytes_per_token(spec, pth) == vectors * (128 + 4)
    # the engine spellings of fp8 are one format (per-tensor scale)
    for name in ("fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc"):
        assert kv_bytes_per_token(spec, kv_dtype_for(spec, name)) == vectors * 128
    # DeepSeek-V3: 61 layers x 656 B (fp8_ds_mla), x 352 B (nvfp4_ds_mla)
    ds = catalog_spec("deepseek-ai/DeepSeek-V3")
    assert kv_bytes_per_token(ds, kv_dtype_for(ds, "fp8_ds_mla")) == 61 * 656
    assert kv_bytes_per_token(ds, kv_dtype_for(ds, "nvfp4_ds_mla")) == 61 * 352
    # fail closed: the DeepSeek layout on a model without that latent
    r = cli("fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--kv-dtype", "fp8_ds_mla")
    assert r.code == 2 and "576-wide MLA latent" in r.err


def test_vllm_hybrid_groups_match_the_019_logs():
    # Gemma-3-27B on H100, vLLM 0.19 (training row): 52 sliding (window 1024) + 10 full
    # layers -> group_size 10, 6 + 1 = 7 groups, 8 padding layers; page = 16 tokens x 16
    # heads x 256 x 2 B = 131,072 B; "Available KV cache memory: 19.53 GiB",
    # "GPU KV cache size: 36,560 tokens", "Maximum concurrency for 8,192 tokens: 4.46x",
    # num_gpu_blocks 15,997.
    from kvplan.core.capacity import logged_kv_tokens, max_concurrency

    spec = catalog_spec("google/gemma-3-27b-it")
    d = Deployment(spec=spec, gpu=gpu("h100-sxm"), engine_version="0.19.0", max_model_len=8192)
    p = plan(d.with_(kv_memory=15_997 * 10 * 131_072))
    assert p.hybrid is not None
    assert (p.hybrid.group_size, len(p.hybrid.groups), p.hybrid.padding_layers) == (10, 7, 8)
    assert p.hybrid.bytes_per_block == 10 * 131_072
    assert p.num_blocks == 15_997
    assert logged_kv_tokens(p) == (15_997 // 7) * 16 == 36_560
    # per request: full cdiv(8192, 16) = 512; each sliding group cdiv(min(1023 + 8192,
    # 8192), 16) + 1 = 513
    assert p.hybrid.blocks_per_request(8192, 8192) == 512 + 6 * 513
    assert round(max_concurrency(p, 8192), 2) == 4.46
    # from 0.22 the token line is int(concurrency x max_model_len)
    newer = plan(d.with_(engine_version="0.33", kv_memory=15_997 * 10 * 131_072))
    assert logged_kv_tokens(newer) == int(newer.num_blocks / 3590 * 8192)


def test_vllm_hybrid_raises_the_attention_block_to_the_state_page():
    # kind NONE layers (state) with attention layers: block = smallest multiple of 16 whose
    # attention page >= the state page; one state page per request caps concurrency
    from kvplan.core.engine_log import startup_check
    from kvplan.core.hybrid_alloc import vllm_layout

    spec = catalog_spec("Qwen/Qwen3-Next-80B-A3B-Thinking")
    layout = vllm_layout(spec, "bf16", kv_heads=spec.kv_heads, block_size=16)
    assert layout is not None
    attn_token = next(
        spec.kv_heads * (spec.head_dim + spec.v_head_dim) * 2
        for layer in spec.layers
        if layer.kind.value == "full"
    )
    state_page = max(layer.state_elements * 2 for layer in spec.layers if layer.state_elements)
    assert layout.block_size % 16 == 0
    assert layout.block_size * attn_token >= state_page
    assert (layout.block_size - 16) * attn_token < state_page
    p = plan(
        Deployment(
            spec=spec,
            gpu=gpu("h100-sxm"),
            tp=4,
            engine_version="0.23.1",
            max_num_seqs=1024,
            max_model_len=4096,
            kv_memory=64 * layout.bytes_per_block,
        )
    )
    check = startup_check(p, 4096)
    assert check.state_slots == p.num_blocks
    assert check.refused and "exceeds available Mamba cache blocks" in (check.message or "")


def test_vllm_refuses_a_tp_that_does_not_divide_the_padded_vocabulary(cli):
    # phi-4: 40 query heads, 10 KV heads, so TP 5 splits the heads, but vLLM also splits
    # the vocabulary: 100,352 (already a multiple of 64) / 5 is not whole.
    from kvplan.core.engines import TpError

    spec = catalog_spec("microsoft/phi-4")
    assert (spec.query_heads, spec.kv_heads, spec.vocab_size) == (40, 10, 100_352)
    assert 100_352 % 64 == 0 and 100_352 % 5
    with pytest.raises(TpError) as err:
        plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), tp=5, kv_memory=GiB))
    assert "padded vocabulary" in err.value.message
    plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), tp=5, engine=Engine.SGLANG, kv_memory=GiB))
    r = cli("fit", "microsoft/phi-4", "--gpu", "h100", "--tp", "5")
    assert r.code == 2 and "padded vocabulary" in r.err


def test_fit_names_the_release_and_warns_past_max_num_seqs(cli):
    r = cli(
        "fit",
        LLAMA := "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100",
        "--ctx",
        "1024",
        "--engine-version",
        "0.19.0",
        "--json",
    )
    assert r.code == 0, r.err
    out = r.json
    assert out["engine_version"] == "vLLM 0.19"
    # 54.18 GiB / (1024 x 128 KiB) = 433 sequences < 1024: no warning at 0.19 on an H100
    assert out["max_batch"] < 1024
    assert not any("max_num_seqs" in w for w in out["warnings"])
    small = cli("fit", LLAMA, "--gpu", "h100", "--ctx", "1024", "--max-num-seqs", "64", "--json")
    assert any("max_num_seqs = 64" in w for w in small.json["warnings"])
    assert any(line.startswith("Available KV cache memory") for line in small.json["engine_log"])
    bad = cli("fit", LLAMA, "--gpu", "h100", "--engine-version", "0.99")
    assert bad.code == 2 and "outside the modelled releases" in bad.err


def test_rocm_uses_its_own_non_torch_term():
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    cuda = plan(Deployment(spec=spec, gpu=gpu("h100-sxm")))
    rocm = plan(Deployment(spec=spec, gpu=gpu("mi300x")))
    assert cuda.deployment.platform.value == "cuda" and rocm.deployment.platform.value == "rocm"
    assert cuda.budget.overhead == int(0.25 * GiB)
    assert rocm.budget.overhead == int(6.0 * GiB)


def test_speculative_draft_layers_share_the_pool():
    # DeepSeek-V3 MTP: one more MLA layer caches 576 latent values per token in the pool
    spec = catalog_spec("deepseek-ai/DeepSeek-V3")
    base = plan(Deployment(spec=spec, gpu=gpu("h200"), tp=8, kv_memory=40 * GiB))
    mtp = plan(Deployment(spec=spec, gpu=gpu("h200"), tp=8, kv_memory=40 * GiB, draft_layers=1))
    assert base.kv_bytes_per_token == 61 * 576 * 2
    assert mtp.kv_bytes_per_token == 62 * 576 * 2
    assert mtp.num_blocks == 40 * GiB // (16 * 62 * 576 * 2)
    # PP: the drafter sits on the last stage
    llama = catalog_spec("meta-llama/Llama-2-70b-hf")
    pp = plan(Deployment(spec=llama, gpu=gpu("h100-sxm"), pp=2, draft_layers=2, kv_memory=GiB))
    assert pp.stage.num_layers == 42  # 40 + 2 on the last stage


def test_speculative_tokens_multiply_state_pages_per_request():
    from kvplan.core.engine_log import startup_check

    spec = catalog_spec("Qwen/Qwen3-Next-80B-A3B-Thinking")
    d = Deployment(
        spec=spec, gpu=gpu("h100-sxm"), tp=4, engine_version="0.23.1", max_model_len=4096
    )
    p0 = plan(d.with_(kv_memory=200 * GiB // 10))
    p3 = plan(d.with_(kv_memory=200 * GiB // 10, num_speculative_tokens=3))
    assert startup_check(p3, 4096).state_slots == p0.num_blocks // 4
    assert p3.hybrid is not None
    full = sum(1 for g in p3.hybrid.groups if g.kind.value != "none")
    state = len(p3.hybrid.groups) - full
    block = p3.hybrid.block_size
    assert p3.hybrid.blocks_per_request(4096, 8192, 4) == full * -(-4096 // block) + state * 4


def test_sglang_hybrid_splits_state_and_kv_pools():
    # rest x r / (1 + r) to Mamba state (r = 0.9 by default), the rest to the KV pool; the
    # state pool caps running requests
    from kvplan.core import kvcache
    from kvplan.core.engine_log import engine_log_lines

    spec = catalog_spec("Qwen/Qwen3-Next-80B-A3B-Thinking")
    d = Deployment(spec=spec, gpu=gpu("h200"), tp=4, engine=Engine.SGLANG, kv_memory=38 * GiB)
    p = plan(d)
    state = int(38 * GiB * 0.9 / 1.9)
    assert p.state_pool_bytes == state
    per_req = kvcache.state_bytes_per_sequence(p.stage, p.deployment.kv_dtype)
    assert p.state_slots == state // per_req
    assert p.num_blocks == (38 * GiB - state) // p.block_bytes
    assert f"max_mamba_cache_size={p.state_slots}" in engine_log_lines(p, 4096)
    half = plan(d.with_(mamba_full_memory_ratio=0.5))
    assert half.state_pool_bytes == int(38 * GiB * 0.5 / 1.5)


def test_sglang_hybrid_batch_is_capped_by_each_pool():
    from kvplan.core import kvcache
    from kvplan.core.capacity import fits, max_batch

    spec = catalog_spec("Qwen/Qwen3-Next-80B-A3B-Thinking")
    p = plan(Deployment(spec=spec, gpu=gpu("h200"), tp=4, engine=Engine.SGLANG, kv_memory=38 * GiB))
    assert p.state_slots is not None and p.state_pool_bytes is not None
    ctx = 4096
    token_bytes = p.seq_bytes(ctx) - kvcache.state_bytes_per_sequence(
        p.stage, p.deployment.kv_dtype
    )
    by_kv = (38 * GiB - p.state_pool_bytes) // token_bytes
    n = max_batch(p, ctx)
    assert n == min(by_kv, p.state_slots)
    assert fits(p, ctx, n) and not fits(p, ctx, n + 1)


def test_sglang_default_fraction_follows_each_release():
    # Hand-computed from each release's server_args.py (docs/engines.md cites the lines).
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")

    def f(version: str, gpu_name: str, tp: int = 1, **kw) -> float | None:
        d = Deployment(
            spec=spec, gpu=gpu(gpu_name), tp=tp, engine=Engine.SGLANG, engine_version=version, **kw
        )
        return d.fraction

    assert profile_for(Engine.SGLANG, "0.3.6.post3").version == "0.3"
    assert profile_for(Engine.SGLANG, "0.4.6.post5").version == "0.4.6"
    assert profile_for(Engine.SGLANG, "0.4.10.post2").version == "0.4.8"
    assert profile_for(Engine.SGLANG, "0.5.2").version == "0.4.8"
    assert profile_for(Engine.SGLANG, "0.5.8").version == "0.5"
    # <= 0.4.5: by TP only (0.3.6: 0.82 at TP 8, 0.4: 0.81)
    assert f("0.3.6", "h100-sxm", tp=8) == 0.82
    assert f("0.4.3", "h100-sxm", tp=8) == 0.81
    assert f("0.4.3", "l4", tp=4) == 0.85
    # 0.4.6: H200 (nvidia-smi 143,771 MiB > 96 GiB): min(0.88 + 48 GiB x 0.12 / mem,
    # (mem - 18 GiB) / mem) = min(0.92103, 0.87180)
    assert f("0.4.6", "h200") == pytest.approx((143771 - 18432) / 143771)
    # 0.4.8-0.5.2: H100 (81,559 MiB) TP1 reserves (9.5 + 1/2) GiB -> round(0.87445, 3)
    assert f("0.4.10", "h100-sxm") == 0.874
    # T4 (15,360 MiB): (2.8 + 0.1) GiB -> round(0.80667, 3)
    assert f("0.4.10", "t4") == 0.807
    # 0.5.3+: H100 TP1: 512 + 8192 x 1.5 + 256 x 2 + 1/8 x 1024 = 13,440 MiB (> 10 GiB)
    assert f("0.5.8", "h100-sxm") == round((81559 - 13440) / 81559, 3) == 0.835
    # RTX 4090 (24,564 MiB) TP2: 512 + 2048 x 1.5 + 24 x 2 + 2/8 x 1024 = 3,888 MiB
    assert f("0.5.8", "rtx-4090", tp=2) == round((24564 - 3888) / 24564, 3) == 0.842
    # a user's chunked prefill size enters the reservation: 512 + 16384 x 1.5 + 512 + 128
    assert f("0.5.8", "h100-sxm", max_num_batched_tokens=16384) == round((81559 - 25728) / 81559, 3)
    # speculative decoding reserves 2 GiB more
    assert f("0.5.8", "h100-sxm", draft_layers=1) == round((81559 - 13440 - 2048) / 81559, 3)
    # the user's fraction always wins
    assert f("0.5.8", "h100-sxm", mem_fraction_static=0.7) == 0.7


def test_sglang_pool_formula_reproduces_logs_given_their_own_memory_figures():
    # model_runner.profile_max_num_token: rest = avail_after_load - before_load x (1 - f).
    # Fed each log's own "Load weight begin/end" figures (GiB), the formula gives the
    # logged K + V to the log's 0.01 rounding, in three releases:
    from kvplan.core.engines import _sglang_budget

    cases = [
        # (before load, weights, fraction, logged K + V): QwQ-32B 4xL4 0.4.3.post4;
        # R1-Distill-Qwen-7B RTX 3090 (0.4.1-0.4.2); Llama-3.1-8B H100 (PR #4760)
        (21.63, 21.63 - 6.09, 0.85, 1.42 + 1.42),
        (22.76, 22.76 - 8.37, 0.88, 2.82 + 2.82),
        (63.48 + 15.11, 15.11, 0.88, 27.02 + 27.02),
    ]
    for before, weights, fraction, logged in cases:
        kv = _sglang_budget(int(before * GiB), int(weights * GiB), 0, 0, fraction).kv / GiB
        assert abs(kv - logged) <= 0.015, (before, kv, logged)


def test_sglang_weight_load_overhead_is_the_training_median():
    # engines.SGLANG_WEIGHT_LOAD_OVERHEAD (0.15 GiB) is the median of "Load weight end ...
    # mem usage" (or the drop in free memory) - params x dtype / TP over the eleven SGLang
    # TRAINING rows that print it (0.04, 0.06, 0.12, 0.13, 0.15, 0.15, 0.18, 0.21, 0.24, 0.61
    # and Kimi-K2.5's 4.30 GiB: 0.152); held-out rows never enter. Ten rows gave 0.17 before
    # the MI300X bench_latency row (15.00 GiB logged for 14.96 GiB of bf16 weights) came in.
    from kvplan.core.engines import SGLANG_WEIGHT_LOAD_OVERHEAD

    overheads = _harness()._sglang_weight_load_overheads(_harness().load_records())
    assert len(overheads) == 11
    assert statistics.median(overheads) == pytest.approx(0.152, abs=0.001)
    assert statistics.median(overheads) == pytest.approx(
        SGLANG_WEIGHT_LOAD_OVERHEAD / GiB, abs=0.005
    )


def test_block_size_defaults_to_the_engine_release_page():
    # Without --block-size the page is the release's own default: TensorRT-LLM prints
    # "Number of tokens per block: 32." through the LLM API / trtllm-serve (TensorRT-LLM#4275,
    # #6294) and 64 for trtllm-build engines (memory.md reference log, trtllm-bench 0.12 /
    # 0.16 logs); vLLM's CUDA default is 16; SGLang pages single tokens (page_size 1).
    spec, h100 = catalog_spec("meta-llama/Llama-3.1-8B-Instruct"), gpu("h100-sxm")
    sizes = {
        (engine, version): Deployment(
            spec=spec, gpu=h100, engine=engine, engine_version=version
        ).block_size
        for engine, version in [
            (Engine.TRTLLM, None),
            (Engine.TRTLLM, "trt"),
            (Engine.VLLM, None),
            (Engine.SGLANG, None),
        ]
    }
    assert sizes == {
        (Engine.TRTLLM, None): 32,
        (Engine.TRTLLM, "trt"): 64,
        (Engine.VLLM, None): 16,
        (Engine.SGLANG, None): 1,
    }
    # a block size the user gives is kept, and the pool is cut in pages of it
    d = Deployment(spec=spec, gpu=h100, engine=Engine.TRTLLM, block_size=128)
    assert d.block_size == 128
    p = plan(d.with_(kv_memory=10 * GiB))
    # Llama-3.1-8B bf16: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B = 131,072 B per token
    assert p.block_bytes == 128 * 131072
    assert p.kv_tokens == (10 * GiB // (128 * 131072)) * 128
