"""Catalog files verified in the third pass of issue 15 against copies outside their source.

Each test asserts values that an independent copy named in the entry's `verified:` record
states (not kvplan's current output), read back through the catalog, so a file swapped
for another revision or hand edit fails here.
"""

from __future__ import annotations

from typing import Any

from conftest import catalog_entry, catalog_raw

from kvplan.core.geometry import Ffn, Mixer
from kvplan.sources.catalog import CatalogEntry, load_catalog


def _entry(repo_id: str) -> CatalogEntry:
    entry: CatalogEntry = catalog_entry(repo_id)
    return entry


def _raw(repo_id: str) -> dict[str, Any]:
    return catalog_raw(repo_id)


def test_nemotron_h_56b_layer_pattern_is_nemo_56b() -> None:
    """NeMo's NemotronHConfig56B (118 layers, 64 heads, 8 query groups) has this 118-char
    pattern: 54 Mamba-2 ('M'), 54 MLP ('-') and 10 attention ('*') layers, the first at 7."""
    spec = load_catalog().load(_entry("nvidia/Nemotron-H-56B-Base-8K"))
    kinds = [layer.mixer_kind for layer in spec.layers]
    assert len(kinds) == 118
    assert kinds.count(Mixer.MAMBA2) == 54
    assert kinds.count(Mixer.ATTENTION) == 10
    assert [i for i, k in enumerate(kinds) if k is Mixer.ATTENTION][:3] == [7, 18, 29]
    assert sum(layer.ffn_kind is Ffn.DENSE for layer in spec.layers) == 54
    assert (spec.query_heads, spec.kv_heads, spec.head_dim) == (64, 8, 128)


def test_glm_5_2_indexer_layers_are_the_published_pattern() -> None:
    """The GLM-5.2 reference config (assertions in a Megatron-lite test) has 21 'full'
    indexer layers, 0-2 and every fourth from 6, and 57 'shared'; 3 dense + 75 MoE layers;
    a 32 x 128 indexer; 1,048,576 positions."""
    spec = load_catalog().load(_entry("zai-org/GLM-5.2"))
    full = [i for i, layer in enumerate(spec.layers) if layer.mixer_kind is Mixer.MLA_INDEXER]
    assert full == [0, 1, 2, *range(6, 75, 4)]
    assert sum(layer.mixer_kind is Mixer.MLA for layer in spec.layers) == 57
    assert {(spec.layers[i].index_heads, spec.layers[i].index_head_dim) for i in full} == {
        (32, 128)
    }
    assert [layer.ffn_kind for layer in spec.layers].count(Ffn.MOE) == 75
    assert spec.max_position_embeddings == 1048576


def test_mistral_nemo_instruct_has_its_own_positions_and_explicit_head_dim() -> None:
    """Mistral-Nemo-Instruct-2407: head_dim 128, not 5120 / 32 = 160; 131,072 positions and
    transformers 4.43.0.dev0 (the Base-2407 config says 128,000 and 4.43.3)."""
    spec = load_catalog().load(_entry("mistralai/Mistral-Nemo-Instruct-2407"))
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == (40, 32, 8, 128)
    assert spec.max_position_embeddings == 131072
    assert _raw("mistralai/Mistral-Nemo-Instruct-2407")["transformers_version"] == "4.43.0.dev0"


def test_qwen1_5_moe_chat_has_the_published_expert_layout() -> None:
    """Qwen1.5-MoE-A2.7B-Chat: 60 routed experts of 1408 (top-4) plus a 5632-wide shared
    expert on all 24 layers, 16 heads MHA, 32,768 positions."""
    raw = _raw("Qwen/Qwen1.5-MoE-A2.7B-Chat")
    assert (raw["num_experts"], raw["num_experts_per_tok"], raw["moe_intermediate_size"]) == (
        60,
        4,
        1408,
    )
    assert raw["shared_expert_intermediate_size"] == 5632
    spec = load_catalog().load(_entry("Qwen/Qwen1.5-MoE-A2.7B-Chat"))
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == (24, 16, 16, 128)
    assert all(layer.ffn_kind is Ffn.MOE for layer in spec.layers)
    assert spec.max_position_embeddings == 32768
