"""Catalog entries added for issue 11 (engine start-up logs whose model was not in the catalog).

Each test asserts numbers computed by hand from the published config (configs/models, sources in
catalog.yaml / SOURCES.md) with the formula of docs/formula.md:
    KV bytes per token = sum over layers of 2 * G * d_head * bytes per element
(sliding / chunked layers hold at most their window), and parameter counts against a published
figure where one exists.
"""

from __future__ import annotations

import pytest
from conftest import gpu

from kvplan.core import kvcache
from kvplan.core.capacity import Deployment, plan
from kvplan.core.geometry import ModelSpec
from kvplan.core.params import param_counts, weight_bytes
from kvplan.sources.catalog import load_catalog

CATALOG = load_catalog()
GiB = 1024**3


def load(name: str) -> ModelSpec:
    entry = CATALOG.find(name)
    assert entry is not None, name
    return CATALOG.load(entry)


def geometry(spec: ModelSpec) -> tuple[int, int, int, int]:
    return spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim


# ---- google/gemma-3-4b-it ----------------------------------------------------------------
def test_gemma_3_4b_head_counts_are_the_gemma3_text_defaults() -> None:
    """The published text_config names no head counts: Gemma3TextConfig's defaults (8 heads,
    4 KV heads, head_dim 256) apply, and kvplan says it assumed them."""
    spec = load("google/gemma-3-4b-it")
    assert geometry(spec) == (34, 8, 4, 256)
    assert spec.hidden_size == 2560 and spec.intermediate_size == 10240
    assert any("num_key_value_heads not in config" in a for a in spec.assumptions)
    # pattern 6: every 6th layer global (5, 11, 17, 23, 29), the rest a 1024-token window
    assert spec.layer_summary() == "29 sliding(1024) + 5 full"


def test_gemma_3_4b_kv_bytes() -> None:
    spec = load("google/gemma-3-4b-it")
    per_layer = 2 * 4 * 256 * 2  # K and V, G 4, d_head 256, bf16
    assert per_layer == 4096
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 34 * per_layer == 139_264
    # at 131,072 tokens the 29 sliding layers hold 1,024 tokens, the 5 global ones all
    expected = 29 * per_layer * 1024 + 5 * per_layer * 131_072
    assert expected == 2_805_989_376
    assert kvcache.kv_bytes(spec, 131_072, 1, "bf16") == expected


def test_gemma_3_4b_text_parameters_match_keras_hub() -> None:
    """keras-hub's gemma3_instruct_4b_text preset: 3,880,099,328 parameters. Ours is 163,840
    (= 64 x 2560) more: the HF config's vocabulary is 262,208 rows, keras-hub's 262,144."""
    counts = param_counts(load("google/gemma-3-4b-it"))
    assert counts.total - 3_880_099_328 == (262_208 - 262_144) * 2560
    # with the SigLIP encoder (27 layers x 1152 + projector): the model card's 4.30e9 (as quoted
    # in search-index file id 60707514880), to its precision
    assert round((counts.total + counts.vision) / 1e9, 2) == 4.30


# ---- TinyLlama/TinyLlama-1.1B-Chat-v1.0 --------------------------------------------------
def test_tinyllama_kv_bytes_and_parameters() -> None:
    spec = load("TinyLlama/TinyLlama-1.1B-Chat-v1.0")
    assert geometry(spec) == (22, 32, 4, 64)
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 22 * 2 * 4 * 64 * 2 == 22_528
    attention = 2 * 2048 * 2048 + 2 * 2048 * 4 * 64  # q, o; k, v
    mlp = 3 * 2048 * 5632
    per_layer = attention + mlp + 2 * 2048  # two RMSNorms
    expected = 22 * per_layer + 2048 + 2 * 32000 * 2048  # final norm; untied embed + head
    assert expected == 1_100_048_384
    assert param_counts(spec).total == expected


# ---- meta-llama/Llama-4-Scout-17B-16E-Instruct -------------------------------------------
def test_llama4_scout_kv_bytes() -> None:
    spec = load("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    assert geometry(spec) == (48, 40, 8, 128)
    assert spec.layer_summary() == "36 chunked(8192) + 12 full"
    per_layer = 2 * 8 * 128 * 2
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 48 * per_layer == 196_608
    # beyond the 8,192-token chunk only the 12 NoPE global layers grow
    expected = 36 * per_layer * 8192 + 12 * per_layer * 10_485_760
    assert kvcache.kv_bytes(spec, 10_485_760, 1, "bf16") == expected == 516_604_035_072


def test_llama4_scout_logged_weights_are_checkpoint_plus_vllm_rope_cache() -> None:
    """The vLLM 0.19 log (tests/data/engine_logs.yaml, llama4-scout-h100-tp4-v0190-len8k) says
    'Model loading took 53.12 GiB' per GPU at TP 4. The checkpoint (text decoder + vision
    encoder, bf16) is 50.59 GiB per GPU; the rest is vLLM's rotary cos/sin cache: RotaryEmbedding
    registers a [max_position_embeddings, rotary_dim] buffer in the model dtype
    (vllm/model_executor/layers/rotary_embedding/base.py, vllm-project/vllm @ 04458da0) and
    Llama-4 builds it with max_position = config.max_position_embeddings
    (vllm/model_executor/models/llama4.py @ 0121c95e), 10,485,760 positions for Scout:
    10,485,760 x 128 x 2 B = 2.5 GiB, not split by TP. The reader records that table
    (ModelSpec.rope: llama3 rope type -> max_position_embeddings positions) and vLLM's plan
    adds it to the weights per GPU (kvplan.core.capacity.rope_cache_bytes)."""
    spec = load("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    checkpoint_per_gpu = weight_bytes(spec).total / 4
    rope_cache = 10_485_760 * 128 * 2
    assert rope_cache == int(2.5 * GiB)
    logged = 53.12 * GiB
    assert abs(checkpoint_per_gpu - logged) / logged > 0.04  # the unexplained gap without it
    assert abs(checkpoint_per_gpu + rope_cache - logged) / logged < 0.001
    assert [(t.positions, t.rotary_dim, t.count) for t in spec.rope or ()] == [(10_485_760, 128, 1)]
    d = Deployment(spec=spec, gpu=gpu("h100-sxm"), tp=4)
    p = plan(d)
    assert p.rope_cache_per_gpu == rope_cache
    assert abs(p.weights_per_gpu - logged) / logged < 0.001


# ---- ibm-granite/granite-3.3-8b-instruct -------------------------------------------------
def test_granite_3_3_8b_kv_bytes_and_parameters() -> None:
    """Plain GQA with tied embeddings; the muP multipliers change no tensor shape."""
    spec = load("ibm-granite/granite-3.3-8b-instruct")
    assert geometry(spec) == (40, 32, 8, 128)
    assert spec.tie_embeddings is True
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 40 * 2 * 8 * 128 * 2 == 163_840
    attention = 2 * 4096 * 4096 + 2 * 4096 * 8 * 128  # q, o; k, v
    mlp = 3 * 4096 * 12800
    per_layer = attention + mlp + 2 * 4096
    expected = 40 * per_layer + 4096 + 49159 * 4096  # final norm; one tied embedding
    assert expected == 8_170_864_640
    assert param_counts(spec).total == expected


@pytest.mark.parametrize(
    "repo_id",
    [
        "google/gemma-3-4b-it",
        "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
        "meta-llama/Llama-4-Scout-17B-16E-Instruct",
        "ibm-granite/granite-3.3-8b-instruct",
    ],
)
def test_issue11_entries_are_catalogued_with_a_source(repo_id: str) -> None:
    entry = CATALOG.find(repo_id)
    assert entry is not None
    # repo@commit:path, or a search-index file id where the repository is not known
    assert entry.source and ("@" in entry.source or "search-index file id" in entry.source)
