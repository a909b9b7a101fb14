"""Catalog files that were re-verified against the published config.json (issue 15).

Each test asserts values of the published config as read from a verbatim copy named in
catalog.yaml (`source`, `revision`, `verified`), not the current output of kvplan: a
file swapped back to an older or edited copy fails here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

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


def test_qwen2_5_32b_instruct_says_32768_positions_as_published() -> None:
    """The published Qwen2.5-32B-Instruct config.json is set for 32,768 positions (model
    card; vLLM issue #12328 quotes it); the tt-metal copy said 131072. The base model's
    config says 131072, which the alias does not carry."""
    entry = _entry("Qwen/Qwen2.5-32B-Instruct")
    spec = load_catalog().load(entry)
    assert spec.max_position_embeddings == 32768
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == (64, 40, 8, 128)
    raw = _raw("Qwen/Qwen2.5-32B-Instruct")
    assert (raw["max_window_layers"], raw["sliding_window"], raw["use_sliding_window"]) == (
        70,
        131072,
        False,
    )
    assert entry.revision and entry.verified and "RECONSTRUCTED" in entry.source


def test_deepseek_v2_has_the_published_yarn_mscale() -> None:
    """DeepSeek-V2's published rope_scaling is yarn factor 40 with mscale and mscale_all_dim
    0.707 (V3 uses 1.0); MLA geometry as in the paper: kv_lora_rank 512, rope dim 64."""
    raw = _raw("deepseek-ai/DeepSeek-V2")
    assert raw["rope_scaling"] == {
        "beta_fast": 32,
        "beta_slow": 1,
        "factor": 40,
        "mscale": 0.707,
        "mscale_all_dim": 0.707,
        "original_max_position_embeddings": 4096,
        "type": "yarn",
    }
    assert "ep_size" not in raw
    assert (raw["kv_lora_rank"], raw["qk_rope_head_dim"], raw["q_lora_rank"]) == (512, 64, 1536)
    assert (raw["num_hidden_layers"], raw["n_routed_experts"], raw["num_experts_per_tok"]) == (
        60,
        160,
        6,
    )
    assert _entry("deepseek-ai/DeepSeek-V2").revision


def test_deepseek_v3_is_the_config_written_by_transformers_4_33_1() -> None:
    """Two independent copies of the DeepSeek-V3 config (aiconfigurator, Megatron-Bridge)
    say transformers_version 4.33.1; the geometry is the published one."""
    raw = _raw("deepseek-ai/DeepSeek-V3")
    assert raw["transformers_version"] == "4.33.1"
    assert (raw["num_hidden_layers"], raw["first_k_dense_replace"], raw["n_routed_experts"]) == (
        61,
        3,
        256,
    )
    assert (raw["kv_lora_rank"], raw["qk_rope_head_dim"], raw["max_position_embeddings"]) == (
        512,
        64,
        163840,
    )
    assert _entry("deepseek-ai/DeepSeek-V3").revision


def test_llama_2_7b_hf_is_the_current_revision() -> None:
    """The current Llama-2-7b-hf config (a 2025-10-30 Hub download vendored by
    aiconfigurator, and four other copies) names itself and has no pad_token_id; the
    earlier revision bundled before had pad_token_id 0. Geometry: Llama 2 paper, 7B."""
    raw = _raw("meta-llama/Llama-2-7b-hf")
    assert raw["_name_or_path"] == "meta-llama/Llama-2-7b-hf"
    assert "pad_token_id" not in raw
    assert raw["transformers_version"] == "4.31.0.dev0"
    spec = load_catalog().load(_entry("meta-llama/Llama-2-7b-hf"))
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == (32, 32, 32, 128)
    assert spec.max_position_embeddings == 4096


def test_qwen2_5_base_models_have_their_own_131072_position_configs() -> None:
    """The base Qwen2.5-7B and -32B configs (2025-10-30 Hub downloads vendored by
    aiconfigurator; identical copies in LLM-Prof) say 131,072 positions where the
    Instruct configs say 32,768, so the base names no longer resolve to the Instruct files."""
    catalog = load_catalog()
    for base, instruct in (
        ("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B-Instruct"),
        ("Qwen/Qwen2.5-32B", "Qwen/Qwen2.5-32B-Instruct"),
    ):
        b, i = _entry(base), _entry(instruct)
        assert b.file != i.file and b.revision and b.verified
        sb, si = catalog.load(b), catalog.load(i)
        assert (sb.max_position_embeddings, si.max_position_embeddings) == (131072, 32768)
        geometry = ("num_layers", "query_heads", "kv_heads", "head_dim", "hidden_size")
        assert [getattr(sb, k) for k in geometry] == [getattr(si, k) for k in geometry]
    assert _raw("Qwen/Qwen2.5-7B")["eos_token_id"] == 151643  # base, not the chat model
    assert (
        _raw("Qwen/Qwen2.5-32B")["rms_norm_eps"],
        _raw("Qwen/Qwen2.5-32B")["max_window_layers"],
    ) == (
        1e-05,
        64,
    )


def test_phi_2_is_the_transformers_native_revision() -> None:
    """The current microsoft/phi-2 config (onnx-diagnostic get_phi2, file id 32193779230,
    and a second copy, file id 4881146369) is model_type phi with hidden_size 2560,
    intermediate_size 10240 and partial_rotary_factor 0.4; the copy bundled before was the
    old remote-code revision (model_type phi-msft, n_embd/n_layer keys)."""
    raw = _raw("microsoft/phi-2")
    assert raw["model_type"] == "phi" and "n_embd" not in raw
    assert (raw["hidden_size"], raw["intermediate_size"], raw["partial_rotary_factor"]) == (
        2560,
        10240,
        0.4,
    )
    assert raw["transformers_version"] == "4.37.0"
    spec = load_catalog().load(_entry("microsoft/phi-2"))
    # 2560 / 32 heads = 80 per head, all 32 heads cached (MHA)
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == (32, 32, 32, 80)
    assert spec.max_position_embeddings == 2048


def test_gpt_j_6b_is_the_full_published_config() -> None:
    """The published EleutherAI/gpt-j-6b config (file ids 57174331611 and 4884378620) has
    gradient_checkpointing and a text-generation temperature, which the mlc-llm copy
    bundled before had dropped; its geometry is 28 layers of 16 heads x 256, rotary_dim 64."""
    raw = _raw("EleutherAI/gpt-j-6b")
    assert raw["gradient_checkpointing"] is False
    assert raw["task_specific_params"]["text-generation"]["temperature"] == 1.0
    assert (raw["n_layer"], raw["n_head"], raw["n_embd"], raw["rotary_dim"]) == (28, 16, 4096, 64)
    assert (raw["n_positions"], raw["vocab_size"]) == (2048, 50400)


def test_instruct_aliases_with_other_max_positions_are_not_resolved_to_a_sibling() -> None:
    """Qwen2.5-14B-Instruct (model card: config set for 32,768 positions) and
    Mistral-Nemo-Base-2407 (128,000 positions in its serialized config) have no file of
    their own; they must not resolve to the base / Instruct sibling, which says 131,072."""
    catalog = load_catalog()
    assert catalog.find("Qwen/Qwen2.5-14B-Instruct") is None
    assert catalog.find("mistralai/Mistral-Nemo-Base-2407") is None
    assert catalog.load(_entry("Qwen/Qwen2.5-14B")).max_position_embeddings == 131072
    nemo = catalog.load(_entry("mistralai/Mistral-Nemo-Instruct-2407"))
    assert nemo.max_position_embeddings == 131072


@pytest.mark.parametrize("repo_id", ["Qwen/Qwen3-VL-8B-Instruct", "Qwen/Qwen3-VL-30B-A3B-Instruct"])
def test_qwen3_vl_instruct_is_the_raw_config_with_mrope(repo_id: str) -> None:
    """The raw Qwen3-VL-8B / 30B-A3B-Instruct config.json files (search-index file ids
    62543607479, 62501178117) have text_config.rope_scaling (interleaved mrope, section
    [24, 20, 20]) and the vision start/end token ids, which the trimmed copies bundled
    before lacked."""
    raw = _raw(repo_id)
    assert raw["text_config"]["rope_scaling"] == {
        "mrope_interleaved": True,
        "mrope_section": [24, 20, 20],
        "rope_type": "default",
    }
    assert (raw["vision_start_token_id"], raw["vision_end_token_id"]) == (151652, 151653)
    assert raw["transformers_version"] == "4.57.0.dev0"
    spec = load_catalog().load(_entry(repo_id))
    geometry = {
        "Qwen/Qwen3-VL-8B-Instruct": (36, 32, 8, 128),
        "Qwen/Qwen3-VL-30B-A3B-Instruct": (48, 32, 4, 128),
    }
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == geometry[repo_id]
    assert spec.max_position_embeddings == 262144


def test_minimax_m3_is_the_published_vl_wrapper() -> None:
    """The published MiniMax-M3 config.json (search-index file id 62774369633) is a
    minimax_m3_vl wrapper whose text_config has no first_k_dense_replace or
    moe_intermediate_size (the flattened copy bundled before added both). The first three
    layers are still dense and dense_intermediate_size (12288) wide, as the checkpoint's
    layers.0-2.mlp tensors are."""
    raw = _raw("MiniMaxAI/MiniMax-M3")
    assert raw["model_type"] == "minimax_m3_vl"
    text = raw["text_config"]
    assert "first_k_dense_replace" not in text and "moe_intermediate_size" not in text
    assert text["moe_layer_freq"] == [0, 0, 0] + [1] * 57
    spec = load_catalog().load(_entry("MiniMaxAI/MiniMax-M3"))
    assert (spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim) == (60, 64, 4, 128)
    dense_widths = [x.ffn_width for x in spec.layers[:3]]
    assert dense_widths == [12288, 12288, 12288]
