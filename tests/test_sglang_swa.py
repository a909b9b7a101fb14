"""SGLang's hybrid sliding-window pools (kvplan.core.sglang_swa), hand-computed.

gpt-oss-20b: 24 layers (12 sliding, window 128; 12 full), 8 KV heads x 64 dims, bf16:
2 x 8 x 64 x 2 B = 2,048 B per layer-token, 49,152 B per token over all layers.
Gemma-3-27B: 62 layers (52 sliding, window 1024; 10 full), 16 KV heads x 128 dims:
8,192 B per layer-token, 507,904 B per token.
At a 40 GiB pool (42,949,672,960 B) SGLang's uniform count is 873,813 / 84,562 tokens;
full = int(T x L / (0.8 S + F)), swa = int(full x 0.8).
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import run_cli

from kvplan import api
from kvplan.core.capacity import Plan, max_batch, plan
from kvplan.core.engines import launch_line
from kvplan.core.sglang_swa import hybrid_swa_families, release_key

GPT_OSS = "openai/gpt-oss-20b"
GEMMA3 = "google/gemma-3-27b-it"


def _plan(model: str, **settings: Any) -> Plan:
    from kvplan.sources.deployment import parse_deployment

    spec = api.load_model(model).spec
    raw = {"gpu": "h100-sxm", "engine": "sglang", "kv_memory": "40GiB", **settings}
    return plan(parse_deployment(spec, raw))


def test_release_key_counts_post_releases() -> None:
    assert release_key("0.4.9.post3") == (0, 4, 9, 3)
    assert release_key("0.5.8") == (0, 5, 8, 0)
    assert release_key("v0.5.0rc2") == (0, 5, 0, 0)
    assert hybrid_swa_families((0, 4, 9, 2)) == ()
    assert "gemma2" in hybrid_swa_families((0, 4, 10, 1))
    assert "gemma2" not in hybrid_swa_families((0, 4, 10, 2))
    assert "gpt_oss" not in hybrid_swa_families((0, 5, 7, 0))
    assert "gpt_oss" in hybrid_swa_families((0, 5, 8, 0))


def test_gpt_oss_20b_pools_at_0_5_8() -> None:
    p = _plan(GPT_OSS, engine_version="0.5.8")
    assert p.swa_pools is not None
    # int(873,813 x 24 / (0.8 x 12 + 12)) = int(20,971,512 / 21.6) = 970,903
    assert p.swa_pools.full_tokens == 970_903
    assert p.swa_pools.swa_tokens == 776_722  # int(970,903 x 0.8)
    assert p.kv_tokens == 970_903  # max_total_num_tokens is the full pool
    assert p.swa_pools.full_bytes_per_token == p.swa_pools.swa_bytes_per_token == 12 * 2048
    # 8,192-token requests: min(970,903 // 8,192, 776,722 // 128) = min(118, 6,068)
    assert max_batch(p, 8192) == 118
    line, _ = launch_line(p.deployment, GPT_OSS, None)  # defaults: no SWA flags
    assert line is not None and "swa" not in line


def test_gpt_oss_ratio_and_disable_flag() -> None:
    p = _plan(GPT_OSS, engine_version="0.5.8", swa_full_tokens_ratio=0.5)
    assert p.swa_pools is not None
    # int(873,813 x 24 / (0.5 x 12 + 12)) = int(20,971,512 / 18) = 1,165,084; swa 582,542
    assert (p.swa_pools.full_tokens, p.swa_pools.swa_tokens) == (1_165_084, 582_542)
    line, _ = launch_line(p.deployment, GPT_OSS, None)
    assert line is not None and "--swa-full-tokens-ratio 0.5" in line
    off = _plan(GPT_OSS, engine_version="0.5.8", disable_hybrid_swa_memory=True)
    assert off.swa_pools is None and off.kv_tokens == 873_813
    line, _ = launch_line(off.deployment, GPT_OSS, None)
    assert line is not None and "--disable-hybrid-swa-memory" in line


@pytest.mark.parametrize("version", ["0.4.9.post2", "0.5.3", "0.5.7"])
def test_gpt_oss_one_pool_before_0_5_8(version: str) -> None:
    p = _plan(GPT_OSS, engine_version=version)
    assert p.swa_pools is None
    assert p.kv_tokens == 873_813  # 42,949,672,960 // 49,152
    # one pool: a sliding layer holds the whole context; 873,813 // 8,192 = 106
    assert max_batch(p, 8192) == 106


def test_gpt_oss_one_pool_on_b200_and_with_speculative() -> None:
    # trtllm_mha (the SM100 default for GPT-OSS) and speculative decoding turn it off
    assert _plan(GPT_OSS, engine_version="0.5.8", gpu="b200").swa_pools is None
    assert _plan(GPT_OSS, engine_version="0.5.8", num_speculative_tokens=2).swa_pools is None


def test_gemma3_pools_at_0_4_9_post3() -> None:
    p = _plan(GEMMA3, engine_version="0.4.9.post3")
    assert p.swa_pools is not None
    # int(84,562 x 62 / (0.8 x 52 + 10)) = int(5,242,844 / 51.6) = 101,605
    assert (p.swa_pools.full_tokens, p.swa_pools.swa_tokens) == (101_605, 81_284)
    assert (p.swa_pools.full_layers, p.swa_pools.swa_layers, p.swa_pools.window) == (10, 52, 1024)
    # 8,192-token requests: min(101,605 // 8,192, 81,284 // 1,024) = min(12, 79)
    assert max_batch(p, 8192) == 12
    # Gemma is off from 0.5.1 (server_args): one pool of 84,562 tokens, 10 requests
    later = _plan(GEMMA3, engine_version="0.5.8")
    assert later.swa_pools is None and later.kv_tokens == 84_562
    assert max_batch(later, 8192) == 10


def test_non_sliding_model_unchanged() -> None:
    p = _plan("Qwen/Qwen2.5-7B-Instruct", engine_version="0.5.8")
    # 28 layers x 4 KV heads x 128 x 2 x 2 B = 57,344 B; 42,949,672,960 // 57,344
    assert p.swa_pools is None and p.kv_tokens == 748_982


def test_fit_log_lines_show_both_pools() -> None:
    r = api.fit(GPT_OSS, gpu="h100-sxm", engine="sglang", engine_version="0.5.8", kv_memory="40GiB")
    assert r.kv_swa_pools is not None and r.kv_swa_pools.swa_tokens == 776_722
    lines = "\n".join(r.engine_log or ())
    assert "full_layer_tokens=970903, swa_layer_tokens=776722" in lines
    assert "KV Cache is allocated. #tokens: 776722" in lines
    assert "max_total_num_tokens=970903" in lines
    dumped = r.model_dump(mode="json")
    assert dumped["kv_swa_pools"]["full_tokens"] == 970_903


def test_llama4_scout_chunked_layers_at_0_5_8() -> None:
    # 48 layers: 36 chunked (8,192-token chunks), 12 full; 8 KV heads x 128 dims, bf16:
    # 4,096 B per layer-token, 196,608 B per token; 42,949,672,960 // 196,608 = 218,453
    scout = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
    p = _plan(scout, engine_version="0.5.8")
    assert p.swa_pools is not None
    # int(218,453 x 48 / (0.8 x 36 + 12)) = int(10,485,744 / 40.8) = 257,003; swa int(x 0.8)
    assert (p.swa_pools.full_tokens, p.swa_pools.swa_tokens) == (257_003, 205_602)
    assert _plan(scout, engine_version="0.5.7").swa_pools is None


@pytest.mark.parametrize(
    ("flag", "release"),
    [
        (("--disable-hybrid-swa-memory",), "0.3"),
        (("--swa-full-tokens-ratio", "0.5"), "0.4.9"),  # 0.4.9 - 0.4.9.post2: no such flag
        (("--swa-full-tokens-ratio", "0.5"), "0.4.6"),
    ],
)
def test_swa_flags_refused_on_releases_without_them(flag: tuple[str, ...], release: str) -> None:
    """The flags arrived with the pool in 0.4.9.post3 (server_args.py): an older SGLang
    would reject the launch line, so kvplan names the setting (exit 2), as it does for
    every setting an engine release lacks."""
    r = run_cli(
        "fit", "openai/gpt-oss-20b", "--gpu", "h100-sxm", "--engine", "sglang",
        "--engine-version", release, *flag,
    )  # fmt: skip
    assert r.code == 2, r.out
    assert r.err.startswith(f"Error: {flag[0]} with SGLang {release}")
    assert "from 0.4.9.post3" in r.err
    ok = run_cli(
        "fit", "openai/gpt-oss-20b", "--gpu", "h100-sxm", "--engine", "sglang",
        "--engine-version", "0.4.9.post3", *flag,
    )  # fmt: skip
    assert ok.code == 0, ok.err


def test_mimo_v2_flash_uniform_count_uses_sglangs_own_cell() -> None:
    """MiMo-V2-Flash's sliding layers cache other heads (8 KV x 192 + 128) than its full ones
    (4 KV x 192 + 128). SGLang 0.5.7 / 0.5.8 size the uniform count T with full heads over all
    48 layers plus the sliding heads again over the 39 sliding ones (get_cell_size_per_token):
    at TP 4, bf16, 1 x 320 x 2 x 48 + 2 x 320 x 2 x 39 = 30,720 + 49,920 = 80,640 B (kvplan's
    per-token bytes, 5,760 + 49,920 = 55,680, would give 1.45x the tokens). With T = 314,400,
    page 64 (sglang#18039's --page-size) and ratio 0.8: full = int(314,400 x 48 / 40.2) =
    375,402 -> 375,360, swa = int(375,402 x 0.8) = 300,321 -> 300,288: the two pools that
    issue's log prints."""
    cell = 30_720 + 49_920
    p = _plan(
        "XiaomiMiMo/MiMo-V2-Flash",
        engine_version="0.5.8",
        tp=4,
        gpu="h200",
        block_size=64,
        kv_memory=f"{314_400 * cell}B",
    )
    assert p.swa_pools is not None
    assert (p.swa_pools.full_tokens, p.swa_pools.swa_tokens) == (375_360, 300_288)
    assert any("80,640 B per token" in n for n in p.notes)


def test_ratio_without_a_sliding_window_pool_says_it_does_nothing() -> None:
    """--swa-full-tokens-ratio only splits SGLang's hybrid SWA pools: where the release keeps
    one token pool (gpt-oss before 0.5.8's family list, --disable-hybrid-swa-memory, a model
    with no sliding layers) the answer equals the one without it, and a note says so."""
    plain = _plan(GPT_OSS, engine_version="0.4.10.post2")
    asked = _plan(GPT_OSS, engine_version="0.4.10.post2", swa_full_tokens_ratio=0.5)
    assert asked.swa_pools is None and asked.kv_tokens == plain.kv_tokens
    assert max_batch(asked, 32768) == max_batch(plain, 32768)
    assert (
        "--swa-full-tokens-ratio 0.5 has no effect: SGLang 0.4.10.post2 [0.4.8 line] keeps one "
        "token pool for this model (no separate sliding-window pool for its family here, "
        "kvplan.core.sglang_swa)"
    ) in asked.notes
    off = _plan(
        GPT_OSS, engine_version="0.5.8", swa_full_tokens_ratio=0.5, disable_hybrid_swa_memory=True
    )
    assert (
        "--swa-full-tokens-ratio 0.5 has no effect: --disable-hybrid-swa-memory keeps one token "
        "pool"
    ) in off.notes
    split = _plan(GPT_OSS, engine_version="0.5.8", swa_full_tokens_ratio=0.5)
    assert split.swa_pools is not None
    assert not any("no effect" in n for n in split.notes)
    llama = _plan("meta-llama/Llama-3.1-8B-Instruct", swa_full_tokens_ratio=0.5)
    assert "--swa-full-tokens-ratio 0.5 has no effect: the model has no sliding-window layers" in (
        llama.notes
    )
