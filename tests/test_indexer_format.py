"""DSA indexer keys in the engine's own format (kvplan.core.kv_formats INDEXER_FORMATS).

Hand-computed from the engines' sources: vLLM's `DeepseekV32IndexerCache` (head_dim =
index_head_dim + index_head_dim // 128 * 4, dtype uint8), SGLang's
`DefaultPoolConfigurator._compute_cell_size` and TensorRT-LLM's `DSACacheManager` store
128 fp8 values + one 4-byte fp32 scale = 132 B per token per layer for index_head_dim 128,
whatever the KV dtype. The MLA latent is 576 elements (1,152 B in bf16) or 656 B in
vLLM's fp8_ds_mla; DeepSeek-V3.2 has 61 layers, all with an indexer; GLM-5.2 has 78
MLA layers, 21 of which run (and cache) their own indexer (`indexer_types`).
"""

from __future__ import annotations

import pytest
from conftest import sweep_rows_equal_fit

import kvplan
from kvplan.core.kv_formats import INDEXER_FORMATS

V32 = "deepseek-ai/DeepSeek-V3.2"
GLM52 = "zai-org/GLM-5.2"


def test_fp8_block128_bytes():
    fmt = INDEXER_FORMATS["fp8_block128"]
    assert fmt.bytes_per_token(128) == 128 + 4
    assert fmt.bytes_per_token(256) == 256 + 8


@pytest.mark.parametrize(
    ("model", "engine", "kv_dtype", "per_token"),
    [
        (V32, "vllm", "bf16", 61 * (576 * 2 + 132)),  # 78,324
        (V32, "vllm", "fp8_ds_mla", 61 * (656 + 132)),  # 48,068
        (V32, "sglang", "bf16", 61 * (576 * 2 + 132)),
        (V32, "trtllm", "fp8", 61 * (576 + 132)),
        (V32, "none", "bf16", 61 * (576 + 128) * 2),  # transformers: keys in the model dtype
        (GLM52, "vllm", "bf16", 78 * 576 * 2 + 21 * 132),  # 92,628
        (GLM52, "vllm", "fp8_ds_mla", 78 * 656 + 21 * 132),
    ],
)
def test_per_token_bytes_follow_the_engine(model, engine, kv_dtype, per_token):
    r = kvplan.fit(model, gpu="h200", tp=8, engine=engine, kv_dtype=kv_dtype, ctx=1000, batch=1)
    assert r.kv_bytes_per_token_per_gpu == per_token
    # the pool is whole blocks of per_token x block_size bytes (one uniform MLA group), the
    # block being the engine's default page: vLLM 16 tokens, SGLang 1, TensorRT-LLM 32
    block = {"vllm": 16, "sglang": 1, "trtllm": 32, "none": 16}[engine]
    assert r.kv_blocks == r.kv_budget_bytes // (per_token * block)


def test_sweep_rows_equal_fit_with_the_indexer_format():
    n = sweep_rows_equal_fit(
        [V32, GLM52],
        gpu="h200",
        tp=8,
        engine=["vllm", "none"],
        kv_dtype=["bf16", "fp8_ds_mla"],
        ctx=[1, 1000, 65537],
        batch=[1, 7],
    )
    assert n == 2 * 2 * 2 * 3 * 2


def test_size_formula_shows_the_engine_format(cli):
    r = cli("size", V32, "--ctx", "1000", "--engine", "vllm", "--kv-dtype", "fp8_ds_mla")
    assert r.code == 0, r.err
    assert "indexer 128 → 132 B" in r.out
    assert "= 48,068 B/token" in r.out
    plain = cli("size", V32, "--ctx", "1000")
    assert "(kv_lora_rank 512 + rope 64 + indexer 128) · 2 B = 85,888 B/token" in plain.out
    j = kvplan.size(V32, ctx=1000, engine="sglang").to_json()
    assert j["indexer_format"] == "fp8_block128"
    assert j["kv_bytes_per_token"] == 61 * (1152 + 132)
    bad = cli("size", V32, "--engine", "tgi")
    assert bad.code == 2
