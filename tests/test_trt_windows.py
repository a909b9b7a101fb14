"""TensorRT-LLM per-window KV pools (VSWA): the split rule, per release, and what it implies.

Every expected number is computed by hand here from the rule in kvplan/core/trt_windows.py
(sources there: kvCacheManager.cpp calculateMaxNumBlocks / calculateWindowSizeToShare,
resource_manager.py calculate_max_num_blocks_for_vswa)."""

from __future__ import annotations

import pytest
from conftest import catalog_spec, gpu

from kvplan.core.budget import Engine
from kvplan.core.capacity import (
    Deployment,
    logged_kv_tokens,
    max_batch,
    max_concurrency,
    max_ctx,
    plan,
    solve_fit,
)
from kvplan.core.engine_log import engine_log_lines
from kvplan.core.trt_windows import ShareRule, share_rule_for, window_shares
from kvplan.errors import KvplanError
from kvplan.units import GiB

GEMMA3_1B = "google/gemma-3-1b-it"  # 22 sliding(512) + 4 full, 1 KV head x 256, 32,768 pos
GPT_OSS_20B = "openai/gpt-oss-20b"  # 12 sliding(128) + 12 full, 8 KV heads x 64, 131,072 pos
LLAMA31_8B = "meta-llama/Llama-3.1-8B-Instruct"


def test_header_doc_example_shares_0_21_rule():
    # kvCacheManager.h: uniqueWindowSizeToLayers {1024: [1], 4096: [0, 4, 5], 8192: [2, 3]}
    # at equal bytes per window -> {1024: 0.0345, 4096: 0.4138, 8192: 0.5517}
    shares = window_shares({1024: (1, 1), 4096: (3, 1), 8192: (2, 1)}, ShareRule.WINDOW_LAYERS)
    assert round(shares[1024], 4) == 0.0345
    assert round(shares[4096], 4) == 0.4138
    assert round(shares[8192], 4) == 0.5517
    # exactly w x n / (1024 + 3 x 4096 + 2 x 8192 = 29,696)
    assert shares[1024] == pytest.approx(1024 / 29696, rel=1e-12)
    assert shares[4096] == pytest.approx(12288 / 29696, rel=1e-12)
    assert shares[8192] == pytest.approx(16384 / 29696, rel=1e-12)


def test_share_rules_by_release():
    groups = {1024: (1, 1), 4096: (3, 1), 8192: (2, 1)}
    # 1.0 (#6481): the layer count is already in the bytes: w x bytes only
    one = window_shares(groups, ShareRule.WINDOW_BYTES)
    assert one[1024] == pytest.approx(1024 / 13312, rel=1e-12)
    assert one[8192] == pytest.approx(8192 / 13312, rel=1e-12)
    # 1.1+ (#7923): equal shares
    assert window_shares(groups, ShareRule.EQUAL) == {1024: 1 / 3, 4096: 1 / 3, 8192: 1 / 3}
    # one window takes everything, whatever the rule
    assert window_shares({512: (4, 9)}, ShareRule.WINDOW_LAYERS) == {512: 1.0}
    assert share_rule_for(None) is ShareRule.EQUAL
    assert share_rule_for("pytorch") is ShareRule.EQUAL
    assert share_rule_for("1.2.1") is ShareRule.EQUAL
    assert share_rule_for("1.1.0") is ShareRule.EQUAL
    assert share_rule_for("1.0.0") is ShareRule.WINDOW_BYTES
    assert share_rule_for("0.21.0") is ShareRule.WINDOW_LAYERS
    with pytest.raises(KvplanError) as e:
        share_rule_for("0.20.0")
    assert e.value.setting == "vswa"


def _trt(model: str, **kw: object) -> Deployment:
    return Deployment(spec=catalog_spec(model), gpu=gpu("h100-sxm"), engine=Engine.TRTLLM, **kw)


def test_gemma3_1b_pytorch_flow_equal_split_and_concurrency():
    # 10 GiB pool (max_gpu_total_bytes caps the estimate); per layer per token
    # 2 x 1 head x 256 x 2 B = 1,024 B: sliding 22 x 1,024 = 22,528 B, full 4 x 1,024 = 4,096 B
    budget = 10 * GiB
    p = plan(_trt(GEMMA3_1B, vswa=True, max_model_len=32768, kv_memory=budget))
    assert p.budget.kv_budget == budget
    w = p.trt_windows
    assert w is not None
    pools = {x.window: x for x in w.pools}
    assert set(pools) == {512, 32768}
    assert (pools[512].layers, pools[512].bytes_per_token) == (22, 22528)
    assert (pools[32768].layers, pools[32768].bytes_per_token) == (4, 4096)
    # equal shares; PyTorch flow floors: 5,368,709,120 / 22,528 = 238,312 tokens -> 7,447
    # blocks of 32; 5,368,709,120 / 4,096 = 1,310,720 tokens -> 40,960 blocks
    assert (pools[512].tokens, pools[512].blocks) == (238_312, 7_447)
    assert (pools[32768].tokens, pools[32768].blocks) == (1_310_720, 40_960)
    # "Allocated ... for max tokens in paged KV cache (N)": (7,447 + 40,960) x 32
    assert p.kv_tokens == logged_kv_tokens(p) == 48_407 * 32 == 1_549_024
    # a 32,768-token request: 1,024 full blocks, ceil(512 / 32) + 1 (kSWAExtraBlock) = 17
    # sliding blocks -> min(40,960 / 1,024 = 40, 7,447 / 17 = 438.06) = 40
    assert max_concurrency(p, 32768) == 40.0
    assert max_batch(p, 32768) == 40
    # 41 requests: 41 x 17 = 697 sliding blocks fit, full needs 41 x c / 32 <= 40,960
    # -> c <= 31,968 (999 blocks of 32)
    assert max_ctx(p, 41).max_ctx == 999 * 32
    # check mode: 40 fit, 41 do not (the full-length pool is short by 1,024 blocks of 4,096 B
    # per token x 32 tokens)
    assert solve_fit(p, ctx=32768, batch=40).fits
    short = solve_fit(p, ctx=32768, batch=41)
    assert short.fits is False
    assert short.headroom_bytes == (40_960 - 41 * 1024) * 32 * 4096
    # the list to give TensorRT-LLM: 5 sliding + 1 full, repeated over the 26 layers
    assert "max_attention_window: [512, 512, 512, 512, 512, 32768]" in " ".join(p.notes)
    assert engine_log_lines(p, 32768)[1:4] == (
        "Blocks per window size:",
        "[windowSize=512] {.primaryBlocks=7447, .secondayBlocks=0}",
        "[windowSize=32768] {.primaryBlocks=40960, .secondayBlocks=0}",
    )


def test_gemma3_1b_default_caches_every_layer_at_full_length():
    # without max_attention_window TensorRT-LLM sizes one pool of 26 layers x 1,024 B
    p = plan(_trt(GEMMA3_1B, max_model_len=32768, kv_memory=10 * GiB))
    assert p.trt_windows is None
    assert p.kv_bytes_per_token == 26 * 1024
    assert p.num_blocks == 10 * GiB // (26 * 1024 * 32) == 12_603
    assert max_batch(p, 32768) == 12_603 * 32 // 32768 == 12
    # ... and says so, naming the switch that models the per-window pools
    assert any("max_attention_window" in n and "--vswa" in n for n in p.notes)
    assert not any("max_attention_window" in n for n in plan(_trt(LLAMA31_8B)).notes)


def test_gpt_oss_20b_engine_flow_by_release():
    # per layer per token 2 x 8 x 64 x 2 B = 2,048 B; 12 sliding + 12 full: 24,576 B each
    budget = 40 * GiB  # 42,949,672,960 B
    newest = plan(
        _trt(GPT_OSS_20B, engine_version="trt", vswa=True, max_model_len=131072, kv_memory=budget)
    )
    assert newest.budget.kv_budget == budget
    w = newest.trt_windows
    assert w is not None
    # equal shares: 21,474,836,480 / 24,576 = 873,813 tokens each; the C++ rounds blocks up:
    # ceil(873,813 / 64) = 13,654
    assert [(x.window, x.tokens, x.blocks) for x in w.pools] == [
        (128, 873_813, 13_654),
        (131072, 873_813, 13_654),
    ]
    # at 131,072 tokens: full 2,048 blocks -> 6.67; sliding ceil(128/64) + 1 = 3 -> 4,551
    assert max_concurrency(newest, 131072) == pytest.approx(13_654 / 2048)
    assert max_batch(newest, 131072) == 6
    assert "max_attention_window: [128, 131072]" in " ".join(newest.notes)
    assert "at max_seq_len 131,072 the scarcest window admits 6 requests;" in " ".join(newest.notes)
    # release 1.0.0 (a release number: the PyTorch flow, 32-token blocks, which split through
    # the C++ calculateMaxNumBlocks, rounding up): window x bytes, sliding share
    # 128 / (128 + 131,072) at equal bytes
    old = plan(
        _trt(GPT_OSS_20B, engine_version="1.0.0", vswa=True, max_model_len=131072, kv_memory=budget)
    )
    o = old.trt_windows
    assert o is not None
    share_128 = 128 / 131200
    sliding, full = o.pools
    assert sliding.share == pytest.approx(share_128, rel=1e-12)
    # 42,949,672,960 x 128 / 131,200 / 24,576 = 1,705.0016 tokens; the rest 1,745,921.998
    assert sliding.tokens == 1_705
    assert sliding.blocks == 54  # ceil(1,705 / 32)
    assert full.tokens == 1_745_921
    assert full.blocks == 54_561  # ceil(1,745,921 / 32)
    # no extra SWA block before 1.1: sliding need 4 -> 13.5; full 54,561 / 4,096 -> 13.32
    assert max_batch(old, 131072) == 13


def test_non_sliding_models_unchanged_by_vswa():
    a = plan(_trt(LLAMA31_8B, kv_memory=20 * GiB))
    b = plan(_trt(LLAMA31_8B, kv_memory=20 * GiB, vswa=True, max_model_len=131072))
    assert b.trt_windows is None
    assert (a.num_blocks, a.kv_tokens, a.kv_bytes_per_token) == (
        b.num_blocks,
        b.kv_tokens,
        b.kv_bytes_per_token,
    )
    # 32 layers x 8 heads x 128 x 2 x 2 B = 131,072 B/token, 32-token blocks
    assert a.num_blocks == 20 * GiB // (131_072 * 32)


def test_vswa_refuses_what_it_does_not_model():
    with pytest.raises(KvplanError):
        plan(_trt(GEMMA3_1B, vswa=True, engine_version="0.20.0", max_model_len=32768))


def test_vswa_note_counts_one_request_in_the_singular():
    # gpt-oss-20b, engine flow, 6 GiB: equal shares of 3 GiB / 24,576 B = 131,072 tokens
    # = 2,048 blocks of 64 per window; one request of 131,072 tokens needs all 2,048
    p = plan(
        _trt(GPT_OSS_20B, engine_version="trt", vswa=True, max_model_len=131072, kv_memory=6 * GiB)
    )
    assert max_batch(p, 131072) == 1
    assert "at max_seq_len 131,072 the scarcest window admits 1 request;" in " ".join(p.notes)
