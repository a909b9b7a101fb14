"""Catalog files that were re-verified against the published config.json (issue 15).

Each test asserts values of the published config as read from a verbatim copy named in
catalog.yaml (`source`, `revision`, `verified`), not the current output of kvplan: a
file swapped back to an older or edited copy fails here.
"""

from __future__ import annotations

import json
from typing import Any

from kvplan.sources.catalog import CatalogEntry, load_catalog


def _entry(repo_id: str) -> CatalogEntry:
    entry = load_catalog().find(repo_id)
    assert entry is not None and entry.repo_id == repo_id
    return entry


def _raw(repo_id: str) -> dict[str, Any]:
    catalog = load_catalog()
    data: dict[str, Any] = json.loads((catalog.root / _entry(repo_id).file).read_text())
    return data


def test_llama_3_1_8b_instruct_is_the_published_config_with_llama3_rope_scaling() -> None:
    """The published Llama-3.1-8B-Instruct config (inference-sim @ 59649ee4, tt-metal @
    f64bd68c) has llama3 RoPE scaling from 8,192 to 131,072 positions and three EOS ids;
    the copy bundled before had neither (a LoRA test fixture)."""
    raw = _raw("meta-llama/Llama-3.1-8B-Instruct")
    assert raw["rope_scaling"] == {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    }
    assert raw["eos_token_id"] == [128001, 128008, 128009]
    assert raw["transformers_version"] == "4.42.3"
    entry = _entry("meta-llama/Llama-3.1-8B-Instruct")
    spec = load_catalog().load(entry)
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == (32, 32, 8, 128)
    assert spec.max_position_embeddings == 131072
    assert entry.revision and entry.verified


def test_qwen3_8b_is_the_published_config_with_an_explicit_head_dim() -> None:
    """The published Qwen3-8B config (aiconfigurator @ 095f58a5) states head_dim 128 and
    rope_theta 1000000 (an int), like the other Qwen3 dense configs; the tt-metal copy
    bundled before was re-serialized without head_dim."""
    raw = _raw("Qwen/Qwen3-8B")
    assert raw["head_dim"] == 128
    assert raw["rope_theta"] == 1000000 and isinstance(raw["rope_theta"], int)
    assert (raw["num_hidden_layers"], raw["num_attention_heads"], raw["num_key_value_heads"]) == (
        36,
        32,
        8,
    )
    assert (raw["hidden_size"], raw["intermediate_size"], raw["vocab_size"]) == (
        4096,
        12288,
        151936,
    )
    assert raw["max_position_embeddings"] == 40960
    assert _entry("Qwen/Qwen3-8B").revision
