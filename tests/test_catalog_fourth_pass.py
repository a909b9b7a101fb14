"""Catalog files checked in the fourth pass of issue 15 (Hub pages, the model families' own repos).

Each test asserts values that the copy named in the entry's `verified:` record states (a Hub
page of the published config.json, Meta's SKU table, EleutherAI's / AI2's / Baidu's training
configs, a model card's table), read back through the catalog, so a file swapped for another
revision or hand edit fails here. Where a file was replaced, the replaced value is asserted.
"""

from __future__ import annotations

import math
from typing import Any

from conftest import catalog_entry, catalog_raw

from kvplan.core.geometry import LayerKind
from kvplan.core.params import param_counts
from kvplan.sources.catalog import CatalogEntry, load_catalog
from kvplan.sources.hf_config import parse_hf_config


def _entry(repo_id: str) -> CatalogEntry:
    entry: CatalogEntry = catalog_entry(repo_id)
    return entry


def _raw(repo_id: str) -> dict[str, Any]:
    return catalog_raw(repo_id)


def _geometry(repo_id: str) -> tuple[int, int, int, int]:
    spec = load_catalog().load(_entry(repo_id))
    return spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim


def _llama_ffn(dim: int, multiplier: float, multiple_of: int) -> int:
    """Meta's FeedForward width: int(multiplier * int(2 * 4 * dim / 3)) rounded up to
    `multiple_of` (meta-llama/llama-models models/llama3/model.py)."""
    hidden = int(multiplier * int(2 * 4 * dim / 3))
    return multiple_of * math.ceil(hidden / multiple_of)


# ---- replaced by the published file ------------------------------------------------------------
def test_falcon_7b_instruct_is_the_published_in_library_config() -> None:
    """The Hub page (refs/pr/126, config.json as of cf4b3c4, #88) has no num_kv_heads and no
    _name_or_path and says transformers 4.27.4 (the tt-metal copy: 71 / present / 4.28.1)."""
    raw = _raw("tiiuae/falcon-7b-instruct")
    assert "num_kv_heads" not in raw and "_name_or_path" not in raw
    assert raw["transformers_version"] == "4.27.4"
    assert (raw["multi_query"], raw["new_decoder_architecture"]) == (True, False)
    assert len(raw) == 22  # top-level keys of the published file
    assert _geometry("tiiuae/falcon-7b-instruct") == (32, 71, 1, 4544 // 71)


def test_falcon_40b_instruct_is_the_published_in_library_config() -> None:
    """AIDSC/falcon-40b-instruct @ 7afdc89 ('Duplicate from tiiuae/falcon-40b-instruct') has no
    multi_query key and says transformers 4.26.0; 8 KV groups of the new decoder architecture."""
    raw = _raw("tiiuae/falcon-40b-instruct")
    assert "multi_query" not in raw and "_name_or_path" not in raw
    assert raw["transformers_version"] == "4.26.0"
    assert (raw["new_decoder_architecture"], raw["num_kv_heads"]) == (True, 8)
    assert _geometry("tiiuae/falcon-40b-instruct") == (60, 128, 8, 64)


def test_codellama_7b_is_published_as_a_float32_checkpoint() -> None:
    """codellama/CodeLlama-7b-hf config.json at 533ac5f says torch_dtype float32 (the mlc-llm
    preset said bfloat16); geometry unchanged: MHA 32 x 128, vocab 32016, 16384 positions."""
    raw = _raw("codellama/CodeLlama-7b-hf")
    assert raw["torch_dtype"] == "float32" and raw["transformers_version"] == "4.33.0.dev0"
    spec = load_catalog().load(_entry("codellama/CodeLlama-7b-hf"))
    assert spec.checkpoint_dtype == "fp32"
    assert _geometry("codellama/CodeLlama-7b-hf") == (32, 32, 32, 128)
    assert (spec.vocab_size, spec.max_position_embeddings) == (32016, 16384)
    # Meta-native params.json: multiple_of 256, ffn_dim_multiplier 1.0
    assert raw["intermediate_size"] == _llama_ffn(4096, 1.0, 256) == 11008


def test_llama_3_2_vision_tiles_are_560_px_as_published() -> None:
    """image_size 560 (Meta's vision_chunk_size) instead of the test dict's 448: 1601 instead of
    1025 positions per tile, i.e. 576 x 1280 x (1 + 9 ratios x 4 tiles) more parameters."""
    raw = _raw("meta-llama/Llama-3.2-11B-Vision-Instruct")
    assert raw["vision_config"]["image_size"] == 560
    published = parse_hf_config(raw, name="v", origin="v").vision
    raw["vision_config"]["image_size"] = 448
    test_dict = parse_hf_config(raw, name="v", origin="v").vision
    assert published is not None and test_dict is not None
    assert published.params - test_dict.params == 576 * 1280 * 37 == 27_279_360


# ---- Meta's SKU table (meta-llama/llama-models models/sku_list.py) -----------------------------
def test_llama_3_1_70b_params_json_is_metas_arch_args() -> None:
    assert _raw("meta-llama/Llama-3.1-70B") == {
        "dim": 8192,
        "ffn_dim_multiplier": 1.3,
        "multiple_of": 4096,
        "n_heads": 64,
        "n_kv_heads": 8,
        "n_layers": 80,
        "norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "use_scaled_rope": True,
        "vocab_size": 128256,
    }
    assert _geometry("meta-llama/Llama-3.1-70B") == (80, 64, 8, 128)


def test_llama_3_70b_family_ffn_is_metas_multiplier_rule() -> None:
    width = _llama_ffn(8192, 1.3, 4096)
    assert width == 28672
    for repo_id in ("meta-llama/Meta-Llama-3-70B", "meta-llama/Llama-3.3-70B-Instruct"):
        raw = _raw(repo_id)
        assert raw["intermediate_size"] == width
        assert (raw["num_hidden_layers"], raw["vocab_size"], raw["rope_theta"]) == (
            80,
            128256,
            500000.0,
        )
    assert _raw("meta-llama/Meta-Llama-3-70B")["rope_scaling"] is None  # use_scaled_rope false
    assert _raw("meta-llama/Llama-3.3-70B-Instruct")["rope_scaling"]["rope_type"] == "llama3"
    text = _raw("meta-llama/Llama-3.2-11B-Vision-Instruct")["text_config"]
    assert text["intermediate_size"] == _llama_ffn(4096, 1.3, 1024) == 14336
    # 32 self-attention + 8 cross-attention layers (vision_num_cross_attention_layers 8)
    assert text["num_hidden_layers"] == 32 + len(text["cross_attention_layers"]) == 40


# ---- EleutherAI / AI2 / Baidu / Google / Hugging Face training configs -------------------------
def test_pythia_and_neox_vocab_is_the_tokenizer_padded_by_model_parallel_size() -> None:
    """GPT-NeoX pads 50277 tokens to a multiple of 128 x model-parallel size (2 for 6.9B and
    20B, 4 for 12B); the README table gives 32 x 4096 x 32 heads (6.9B), 36 x 5120 x 40 (12B)."""
    for repo_id, mp, geometry in (
        ("EleutherAI/pythia-6.9b-deduped", 2, (32, 32, 32, 128)),
        ("EleutherAI/pythia-12b-deduped", 4, (36, 40, 40, 128)),
        ("EleutherAI/gpt-neox-20b", 2, (44, 64, 64, 96)),
    ):
        padded = 128 * mp * math.ceil(50277 / (128 * mp))
        assert _raw(repo_id)["vocab_size"] == padded, repo_id
        assert _geometry(repo_id) == geometry, repo_id
        assert _raw(repo_id)["rotary_pct"] == 0.25


def test_olmo_core_builders() -> None:
    """OLMo-core olmo2_7B: 4096 / 32 layers / 32 heads (MHA), FFN int(8 x 4096 / 3) to a
    multiple of 256; olmo3_32B: 5120 / 64 layers / 40:8 heads, FFN 27648, windows of 4096 in
    the pattern sliding x 3 + full, last layer full."""
    assert _geometry("allenai/OLMo-2-1124-7B") == (32, 32, 32, 128)
    assert _raw("allenai/OLMo-2-1124-7B")["intermediate_size"] == 256 * math.ceil(10922 / 256)
    spec = load_catalog().load(_entry("allenai/Olmo-3.1-32B-Instruct"))
    assert (spec.num_layers, spec.query_heads, spec.kv_heads) == (64, 40, 8)
    kinds = [layer.kind for layer in spec.layers]
    assert kinds == [LayerKind.SLIDING, LayerKind.SLIDING, LayerKind.SLIDING, LayerKind.FULL] * 16
    assert {layer.window for layer in spec.layers if layer.kind is LayerKind.SLIDING} == {4096}
    assert _raw("allenai/Olmo-3.1-32B-Instruct")["intermediate_size"] == 27648


def test_ernie_4_5_21b_a3b_is_the_pretraining_config_less_its_tail() -> None:
    """PaddlePaddle/ERNIE model_config.json: num_hidden_layers 30 with remove_tail_layer 2."""
    raw = _raw("baidu/ERNIE-4.5-21B-A3B-PT")
    assert raw["num_hidden_layers"] == 30 - 2
    assert (raw["moe_num_experts"], raw["moe_k"], raw["moe_num_shared_experts"]) == (64, 6, 2)
    assert raw["hidden_size"] // raw["num_attention_heads"] == 128


def test_gemma_3_4b_is_googles_gemma3_4b() -> None:
    """google-deepmind/gemma Gemma3_4B: 34 layers, 5 local (1024) : 1 global, 8 / 4 heads x 256."""
    spec = load_catalog().load(_entry("google/gemma-3-4b-it"))
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == (34, 8, 4, 256)
    kinds = [layer.kind for layer in spec.layers]
    assert [i for i, k in enumerate(kinds) if k is LayerKind.FULL] == [5, 11, 17, 23, 29]
    assert spec.intermediate_size == 2560 * 8 // 2


def test_lfm2_350m_counts_the_model_cards_exact_parameters() -> None:
    """The LFM2-350M model card: 354,483,968 parameters, 16 layers (10 conv + 6 attention)."""
    spec = load_catalog().load(_entry("LiquidAI/LFM2-350M"))
    assert param_counts(spec).total == 354_483_968
    assert spec.num_layers == 16
    assert len(_raw("LiquidAI/LFM2-350M")["full_attn_idxs"]) == 6
