"""MiniMax-M3 sparse attention: index keys in the cache, and the fail-closed screen that
refuses sparse / indexed / compressed attention keys kvplan does not read.

Hand arithmetic (configs/models/MiniMaxAI__MiniMax-M3.json, text_config): 60 attention
layers of G = 4 KV heads x d = 128, K and V; `sparse_attention_freq` marks layers 3-59 (57)
sparse, each also caching ONE index key of `sparse_index_dim` = 128 elements per token
(transformers 5.24 MiniMaxM3VLSparseCacheLayer.idx_keys [batch, 1, ctx, 128]; the crosscheck
fixture measures 137,472 B/token in bf16). vLLM (MiniMaxM3IndexerCache, bf16) and SGLang (the
model dtype, bf16 here) keep the index key in 2 bytes whatever the KV dtype, TensorRT-LLM
(MiniMaxM3KVCacheManagerV2 INDEX_KEY buffer) too except under an fp32 KV cache (4 bytes); it
has one head, so TP does not split it. At TP 8, 4 KV heads leave 1 per GPU (replicated).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import sweep_rows_equal_fit

import kvplan
from kvplan.core import kvcache
from kvplan.core.params import param_counts
from kvplan.errors import KvplanError
from kvplan.sources.hf_config import collect_findings, parse_hf_config

ROOT = Path(__file__).resolve().parent.parent
M3 = "MiniMaxAI/MiniMax-M3"
KV = 2 * 128  # K and V of one head, elements
INDEX = 128


def _raw() -> dict:
    return json.loads((ROOT / "configs/models/MiniMaxAI__MiniMax-M3.json").read_text())


@pytest.mark.parametrize(
    ("engine", "kv_dtype", "per_gpu"),
    [
        ("vllm", "bf16", 60 * 1 * KV * 2 + 57 * INDEX * 2),  # 45,312
        ("vllm", "fp8", 60 * 1 * KV * 1 + 57 * INDEX * 2),  # 29,952: the index key stays bf16
        ("sglang", "fp8", 60 * 1 * KV * 1 + 57 * INDEX * 2),
        ("trtllm", "fp8", 60 * 1 * KV * 1 + 57 * INDEX * 2),  # bf16 INDEX_KEY buffer
        ("trtllm", "fp32", 60 * 1 * KV * 4 + 57 * INDEX * 4),  # fp32 under an fp32 cache
        ("none", "fp8", 60 * 1 * KV * 1 + 57 * INDEX * 1),  # transformers' convention
    ],
)
def test_per_gpu_bytes_per_token(engine, kv_dtype, per_gpu):
    r = kvplan.fit(M3, gpu="h200", tp=8, engine=engine, kv_dtype=kv_dtype, ctx=1000, batch=1)
    assert r.kv_bytes_per_token_per_gpu == per_gpu


def test_size_equals_the_transformers_cache():
    # 60 x 2 x 4 x 128 x 2 + 57 x 128 x 2 = 122,880 + 14,592
    assert kvplan.size(M3, ctx=1000).to_json()["kv_bytes_per_token"] == 137_472
    fp8 = kvplan.size(M3, ctx=1000, kv_dtype="fp8", engine="vllm").to_json()
    assert fp8["kv_bytes_per_token"] == 61_440 + 14_592
    assert fp8["indexer_format"] == "bf16"


def test_indexer_parameters():
    """57 x (q_proj 6144 x 4*128 + k_proj 6144 x 128 + q/k RMSNorm 2 x 128)."""
    raw = _raw()
    plain = copy.deepcopy(raw)
    del plain["text_config"]["sparse_attention_config"]
    with_idx = param_counts(parse_hf_config(raw, name="m3", origin="t")).total
    without = param_counts(parse_hf_config(plain, name="m3", origin="t")).total
    assert with_idx - without == 57 * (6144 * 512 + 6144 * 128 + 256) == 224_147_712


def test_sweep_rows_equal_fit():
    n = sweep_rows_equal_fit(
        [M3],
        gpu="h200",
        tp=8,
        engine=["vllm", "trtllm"],
        kv_dtype=["bf16", "fp8"],
        ctx=[1, 1000, 65537],
        batch=[1, 3],
    )
    assert n == 2 * 2 * 3 * 2


# ---- fail closed -------------------------------------------------------------------------
LLAMA = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 4,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "intermediate_size": 14336,
    "vocab_size": 128256,
}


def _error_keys(raw: dict) -> list[str | None]:
    findings, spec = collect_findings(raw, origin="t")
    assert spec is None
    return [f.key for f in findings if f.severity == "error"]


@pytest.mark.parametrize(
    "key",
    ["sparse_attention_config", "index_head_dim", "nsa_config", "indexer_dim", "compress_ratio"],
)
def test_an_unread_sparse_key_is_refused_by_name(key):
    assert key in _error_keys({**LLAMA, key: {"a": 1} if "config" in key else 128})


def test_cli_exits_2_naming_the_key(cli, tmp_path):
    path = tmp_path / "config.json"
    sparse = _raw()["text_config"]["sparse_attention_config"]
    path.write_text(json.dumps({**LLAMA, "sparse_attention_config": sparse}))
    r = cli("size", str(path))
    assert r.code == 2
    assert "sparse_attention_config" in r.err + r.out


SAC = "sparse_attention_config"


def _m3_with(**changes) -> dict:
    raw = _raw()
    raw["text_config"]["sparse_attention_config"].update(changes)
    return raw


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"sparse_index_value_dim": 128}, f"{SAC}.sparse_index_value_dim"),
        ({"sparse_disable_index_value": [0] * 60}, f"{SAC}.sparse_disable_index_value"),
        ({"use_sparse_attention": False}, f"{SAC}.use_sparse_attention"),
        ({"sparse_attention_freq": [1] * 59}, f"{SAC}.sparse_attention_freq"),
        ({"sparse_index_dim": 0}, f"{SAC}.sparse_index_dim"),
    ],
)  # fmt: skip
def test_minimax_sparse_config_values_kvplan_cannot_size_are_refused(changes, key):
    assert key in _error_keys(_m3_with(**changes))


def test_sparse_off_everywhere_is_plain_attention():
    raw = _m3_with(use_sparse_attention=False, sparse_attention_freq=[0] * 60)
    spec = parse_hf_config(raw, name="m3", origin="t")
    assert not spec.has_indexer
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 60 * 4 * KV * 2


def test_dsa_index_period_without_indexer_types_is_refused():
    raw = json.loads((ROOT / "configs/models/zai-org__GLM-5.2.json").read_text())
    del raw["indexer_types"]
    with pytest.raises(KvplanError, match="index_topk_freq"):
        parse_hf_config(raw, name="glm", origin="t")
