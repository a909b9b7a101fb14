"""Reading real published configs into the normalized description, family by family.

The expected values are the published configs' own numbers (configs/models/, provenance in
configs/models/SOURCES.md); where a value is inferred rather than read, the test checks that
the inference is recorded as an assumption.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from kvplan.core import mixers
from kvplan.core.geometry import AttentionLayout, LayerKind, ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.catalog import load_catalog
from kvplan.sources.hf_config import parse_hf_config
from kvplan.sources.parse import parse_config_dict, parse_config_text
from kvplan.sources.resolve import resolve_model

CATALOG = load_catalog()
FULL, SLIDING, MLA, NONE = LayerKind.FULL, LayerKind.SLIDING, LayerKind.MLA, LayerKind.NONE


def load(name: str) -> ModelSpec:
    entry = CATALOG.find(name)
    assert entry is not None, name
    return CATALOG.load(entry)


def raw_config(name: str) -> dict[str, Any]:
    entry = CATALOG.find(name)
    assert entry is not None, name
    return json.loads((CATALOG.root / entry.file).read_text())


def geometry(spec: ModelSpec) -> tuple[int, int, int, int]:
    return spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim


def indices(spec: ModelSpec, kind: LayerKind) -> list[int]:
    return [i for i, layer in enumerate(spec.layers) if layer.kind is kind]


def has_assumption(spec: ModelSpec, text: str) -> bool:
    return any(text in a for a in spec.assumptions)


# (repo id, L, H, G, head_dim, layout, layer summary) -- straight from each config.json
FAMILIES = [
    ("meta-llama/Llama-2-7b-hf", 32, 32, 32, 128, "mha", "32 full"),
    ("meta-llama/Llama-2-13b-hf", 40, 40, 40, 128, "mha", "40 full"),
    ("meta-llama/Llama-2-70b-hf", 80, 64, 8, 128, "gqa", "80 full"),
    ("meta-llama/Meta-Llama-3-8B", 32, 32, 8, 128, "gqa", "32 full"),
    ("meta-llama/Llama-3.1-8B", 32, 32, 8, 128, "gqa", "32 full"),
    ("meta-llama/Llama-3.1-70B-Instruct", 80, 64, 8, 128, "gqa", "80 full"),
    ("meta-llama/Llama-3.2-1B-Instruct", 16, 32, 8, 64, "gqa", "16 full"),
    ("meta-llama/Llama-3.2-3B-Instruct", 28, 24, 8, 128, "gqa", "28 full"),
    ("meta-llama/Llama-3.3-70B-Instruct", 80, 64, 8, 128, "gqa", "80 full"),
    ("codellama/CodeLlama-34b-Instruct-hf", 48, 64, 8, 128, "gqa", "48 full"),
    ("mistralai/Mistral-7B-v0.1", 32, 32, 8, 128, "gqa", "32 sliding(4096)"),
    ("mistralai/Mistral-7B-Instruct-v0.3", 32, 32, 8, 128, "gqa", "32 full"),
    ("mistralai/Mistral-Nemo-Instruct-2407", 40, 32, 8, 128, "gqa", "40 full"),
    ("mistralai/Mixtral-8x7B-v0.1", 32, 32, 8, 128, "gqa", "32 full"),
    ("mistralai/Mixtral-8x22B-v0.1", 56, 48, 8, 128, "gqa", "56 full"),
    ("Qwen/Qwen2-7B", 28, 28, 4, 128, "gqa", "28 full"),
    ("Qwen/Qwen2.5-7B-Instruct", 28, 28, 4, 128, "gqa", "28 full"),
    ("Qwen/Qwen2.5-32B-Instruct", 64, 40, 8, 128, "gqa", "64 full"),
    ("Qwen/Qwen3-8B", 36, 32, 8, 128, "gqa", "36 full"),
    ("Qwen/Qwen3-32B", 64, 64, 8, 128, "gqa", "64 full"),
    ("Qwen/Qwen3-0.6B", 28, 16, 8, 128, "gqa", "28 full"),
    ("Qwen/Qwen3-30B-A3B", 48, 32, 4, 128, "gqa", "48 full"),
    ("Qwen/Qwen1.5-MoE-A2.7B-Chat", 24, 16, 16, 128, "mha", "24 full"),
    ("google/gemma-2b", 18, 8, 1, 256, "mqa", "18 full"),
    ("google/gemma-7b", 28, 16, 16, 256, "mha", "28 full"),
    ("google/gemma-2-2b-it", 26, 8, 4, 256, "gqa", "13 sliding(4096) + 13 full"),
    ("google/gemma-2-9b-it", 42, 16, 8, 256, "gqa", "21 sliding(4096) + 21 full"),
    ("google/gemma-2-27b-it", 46, 32, 16, 128, "gqa", "23 sliding(4096) + 23 full"),
    ("google/gemma-3-1b-it", 26, 4, 1, 256, "mqa", "22 sliding(512) + 4 full"),
    ("google/gemma-3-27b-it", 62, 32, 16, 128, "gqa", "52 sliding(1024) + 10 full"),
    ("tiiuae/falcon-7b", 32, 71, 1, 64, "mqa", "32 full"),
    ("tiiuae/falcon-7b-instruct", 32, 71, 1, 64, "mqa", "32 full"),
    ("tiiuae/falcon-40b-instruct", 60, 128, 8, 64, "gqa", "60 full"),
    ("openai-community/gpt2", 12, 12, 12, 64, "mha", "12 full"),
    ("EleutherAI/gpt-neox-20b", 44, 64, 64, 96, "mha", "44 full"),
    ("EleutherAI/pythia-6.9b-deduped", 32, 32, 32, 128, "mha", "32 full"),
    ("EleutherAI/gpt-j-6b", 28, 16, 16, 256, "mha", "28 full"),
    ("bigscience/bloom", 70, 112, 112, 128, "mha", "70 full"),
    ("bigscience/bloom-560m", 24, 16, 16, 64, "mha", "24 full"),
    ("mosaicml/mpt-7b-instruct", 32, 32, 32, 128, "mha", "32 full"),
    ("microsoft/Phi-3-mini-4k-instruct", 32, 32, 32, 96, "mha", "32 sliding(2047)"),
    ("microsoft/Phi-4-mini-instruct", 32, 24, 8, 128, "gqa", "32 full"),
    ("microsoft/phi-4", 40, 40, 10, 128, "gqa", "40 full"),
    ("microsoft/phi-2", 32, 32, 32, 80, "mha", "32 full"),
    ("deepseek-ai/DeepSeek-V2-Lite", 27, 16, 16, 192, "mla", "27 mla"),
    ("deepseek-ai/DeepSeek-V2", 60, 128, 128, 192, "mla", "60 mla"),
    ("deepseek-ai/DeepSeek-V3", 61, 128, 128, 192, "mla", "61 mla"),
    ("deepseek-ai/deepseek-moe-16b-base", 28, 16, 16, 128, "mha", "28 full"),
    ("openai/gpt-oss-20b", 24, 64, 8, 64, "gqa", "12 sliding(128) + 12 full"),
    ("openai/gpt-oss-120b", 36, 64, 8, 64, "gqa", "18 sliding(128) + 18 full"),
    ("CohereForAI/aya-23-8B", 32, 32, 8, 128, "gqa", "32 full"),
    ("allenai/OLMo-2-1124-7B", 32, 32, 32, 128, "mha", "32 full"),
    ("bigcode/starcoder2-7b", 32, 36, 4, 128, "gqa", "32 sliding(4096)"),
    ("ai21labs/AI21-Jamba-1.5-Mini", 32, 32, 8, 128, "hybrid", "28 mamba + 4 full"),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", 48, 16, 2, 256, "hybrid", "36 gated_deltanet + 12 full"),
]


@pytest.mark.parametrize(
    ("repo_id", "layers", "heads", "kv_heads", "head_dim", "layout", "summary"),
    FAMILIES,
    ids=[f[0] for f in FAMILIES],
)
def test_family_geometry(repo_id, layers, heads, kv_heads, head_dim, layout, summary):
    spec = load(repo_id)
    assert geometry(spec) == (layers, heads, kv_heads, head_dim)
    assert spec.layout is AttentionLayout(layout)
    assert spec.layer_summary() == summary


def test_every_catalog_entry_parses():
    assert len(CATALOG.entries) >= 60
    for entry in CATALOG.entries:
        spec = CATALOG.load(entry)
        assert spec.num_layers > 0 and spec.query_heads % spec.kv_heads == 0


# ---- Llama and Meta's native params.json -------------------------------------------------
def test_llama2_70b_params_json():
    spec = load("meta-llama/Llama-2-70b")  # native params.json: dim / n_heads / n_kv_heads
    assert spec.family == "llama"
    assert geometry(spec) == (80, 64, 8, 128)
    # FFN: int(2 * 4 * 8192 / 3) = 21845 -> int(1.3 * 21845) = 28398 -> next multiple of 4096
    assert spec.intermediate_size == 28672
    assert spec.vocab_size == 32000  # params.json says -1 (set by the tokenizer)
    assert has_assumption(spec, "vocab_size -1")
    assert has_assumption(spec, "FFN width")
    assert spec.tie_embeddings is False
    hf = load("meta-llama/Llama-2-70b-hf")
    assert (hf.intermediate_size, hf.vocab_size) == (spec.intermediate_size, spec.vocab_size)


def test_llama2_7b_params_json_without_kv_heads_is_mha():
    spec = load("meta-llama/Llama-2-7b")
    assert geometry(spec) == (32, 32, 32, 128)
    assert spec.intermediate_size == 11008
    assert has_assumption(spec, "no KV-head key")


def test_llama31_params_json():
    spec = load("meta-llama/Llama-3.1-70B")
    assert (spec.vocab_size, spec.intermediate_size) == (128256, 28672)
    assert not has_assumption(spec, "vocab_size -1")
    assert spec.max_position_embeddings == 131072  # use_scaled_rope true => Llama 3.1


def test_params_json_errors_name_the_params_json_key():
    raw = {
        "dim": 8192,
        "n_layers": 80,
        "n_heads": 64,
        "n_kv_heads": 7,
        "vocab_size": -1,
        "multiple_of": 4096,
        "ffn_dim_multiplier": 1.3,
        "norm_eps": 1e-05,
    }
    with pytest.raises(
        KvplanError,
        match=r"^p\.json: key n_kv_heads \(7\) does not divide "
        r"n_heads \(64\): query heads cannot be grouped evenly$",
    ):
        parse_config_dict(raw, name="x", origin="p.json")


def test_llama32_explicit_head_dim_and_tied_embeddings():
    spec = load("meta-llama/Llama-3.2-1B-Instruct")
    assert spec.head_dim == 64 and spec.tie_embeddings
    assert not has_assumption(spec, "head_dim")


# ---- Mistral / Mixtral ---------------------------------------------------------------------
def test_mistral_v01_window_and_v03_without():
    v01, v03 = load("mistralai/Mistral-7B-v0.1"), load("mistralai/Mistral-7B-Instruct-v0.3")
    assert {layer.window for layer in v01.layers} == {4096}
    assert all(layer.kind is SLIDING for layer in v01.layers)
    assert raw_config("mistralai/Mistral-7B-Instruct-v0.3")["sliding_window"] is None
    assert all(layer.kind is FULL for layer in v03.layers)


def test_mistral_nemo_explicit_head_dim_differs_from_hidden_over_heads():
    spec = load("mistralai/Mistral-Nemo-Instruct-2407")
    assert spec.hidden_size // spec.query_heads == 160
    assert spec.head_dim == 128


def test_mixtral_moe():
    spec = load("mistralai/Mixtral-8x7B-v0.1")
    assert spec.moe is not None
    assert (spec.moe.num_experts, spec.moe.experts_per_token) == (8, 2)
    assert spec.moe.expert_intermediate == 14336 and spec.moe.shared_experts == 0
    assert all(layer.moe for layer in spec.layers)


# ---- Qwen ----------------------------------------------------------------------------------
def test_qwen2_sliding_window_key_but_use_sliding_window_false():
    for name in ("Qwen/Qwen2-7B", "Qwen/Qwen2.5-7B-Instruct"):
        cfg = raw_config(name)
        assert cfg["use_sliding_window"] is False and cfg["sliding_window"] == 131072
        spec = load(name)
        assert all(layer.kind is FULL for layer in spec.layers)
        assert spec.qkv_bias


def test_qwen2_use_sliding_window_true_uses_max_window_layers():
    cfg = {
        **raw_config("Qwen/Qwen2-7B"),
        "use_sliding_window": True,
        "sliding_window": 4096,
        "max_window_layers": 20,
    }  # modified copy of the real config
    spec = parse_hf_config(cfg, name="qwen2-swa", origin="t")
    assert indices(spec, FULL) == list(range(20))
    assert indices(spec, SLIDING) == list(range(20, 28))


def test_qwen3_head_dim_explicit_and_default():
    q32 = load("Qwen/Qwen3-32B")
    assert raw_config("Qwen/Qwen3-32B")["head_dim"] == 128
    assert q32.query_heads * q32.head_dim == 8192 != q32.hidden_size == 5120
    assert q32.qk_norm
    assert raw_config("Qwen/Qwen3-8B")["head_dim"] == 128  # as published (explicit)
    assert load("Qwen/Qwen3-8B").head_dim == 128
    # a copy without the head_dim key (modified): Qwen3Config's default 128 is assumed
    cfg = {k: v for k, v in raw_config("Qwen/Qwen3-8B").items() if k != "head_dim"}
    q8 = parse_hf_config(cfg, name="qwen3-8b-no-head-dim", origin="t")
    assert q8.head_dim == 128 and has_assumption(q8, "qwen3 default 128")


def test_qwen3_moe():
    spec = load("Qwen/Qwen3-30B-A3B")
    assert spec.moe is not None
    assert (spec.moe.num_experts, spec.moe.experts_per_token, spec.moe.expert_intermediate) == (
        128,
        8,
        768,
    )
    assert spec.moe.shared_experts == 0
    assert sum(layer.moe for layer in spec.layers) == 48


def test_qwen2_moe_shared_expert():
    spec = load("Qwen/Qwen1.5-MoE-A2.7B-Chat")
    assert spec.moe is not None
    assert (spec.moe.num_experts, spec.moe.experts_per_token) == (60, 4)
    assert (spec.moe.shared_experts, spec.moe.shared_intermediate) == (1, 5632)
    assert spec.moe.shared_expert_gate


# ---- Gemma ---------------------------------------------------------------------------------
def test_gemma2_alternates_starting_with_sliding():
    spec = load("google/gemma-2-9b-it")
    assert indices(spec, SLIDING) == list(range(0, 42, 2))
    assert indices(spec, FULL) == list(range(1, 42, 2))
    assert spec.head_dim == 256 and spec.hidden_size // spec.query_heads == 224


def test_gemma3_five_local_one_global_from_text_config():
    spec = load("google/gemma-3-27b-it")
    assert "text_config" in raw_config("google/gemma-3-27b-it")
    assert indices(spec, FULL) == list(range(5, 62, 6))
    assert {layer.window for layer in spec.layers if layer.kind is SLIDING} == {1024}
    assert has_assumption(spec, "text_config")
    assert has_assumption(spec, "sliding_window_pattern not in config")
    assert spec.family == "gemma3_text" and spec.qk_norm


def test_gemma3_1b_text_only():
    spec = load("google/gemma-3-1b-it")
    assert indices(spec, FULL) == [5, 11, 17, 23]
    assert {layer.window for layer in spec.layers if layer.window} == {512}


def test_gemma1_mqa_and_mha():
    assert load("google/gemma-2b").kv_heads == 1
    g7 = load("google/gemma-7b")
    assert g7.query_heads * g7.head_dim == 4096 != g7.hidden_size == 3072


# ---- Falcon, GPT-2, NeoX, BLOOM, MPT, Phi --------------------------------------------------
def test_falcon_7b_multi_query():
    spec = load("tiiuae/falcon-7b")
    assert spec.family == "RefinedWebModel"
    assert spec.kv_heads == 1 and spec.head_dim == 4544 // 71 == 64
    assert spec.parallel_attn_mlp
    # The published in-library config has no num_kv_heads; configs re-saved by later
    # transformers add num_kv_heads 71 (= num_attention_heads), which FalconConfig ignores
    # unless new_decoder_architecture is set.
    raw = raw_config("tiiuae/falcon-7b-instruct")
    assert "num_kv_heads" not in raw and load("tiiuae/falcon-7b-instruct").kv_heads == 1
    resaved = parse_hf_config({**raw, "num_kv_heads": 71}, name="f", origin="f")
    assert resaved.kv_heads == 1


def test_falcon_40b_new_decoder_architecture():
    cfg = raw_config("tiiuae/falcon-40b-instruct")
    assert "multi_query" not in cfg and cfg["new_decoder_architecture"] is True
    spec = load("tiiuae/falcon-40b-instruct")
    assert spec.kv_heads == cfg["num_kv_heads"] == 8
    # a multi_query flag (as some re-saved copies carry) is overridden by the new architecture
    assert parse_hf_config({**cfg, "multi_query": True}, name="f", origin="f").kv_heads == 8
    assert spec.norms_per_layer == 2


def test_gpt2_records_what_it_inferred():
    spec = load("openai-community/gpt2")
    assert spec.learned_positions == 1024 and spec.tie_embeddings
    assert spec.intermediate_size == 4 * 768 and not spec.gated_mlp
    assert has_assumption(spec, "no KV-head key in config: assuming multi-head attention (G = H")
    assert has_assumption(spec, "head_dim not in config: hidden/heads = 768/12 = 64")


def test_gpt_neox_and_bloom():
    neox = load("EleutherAI/gpt-neox-20b")
    assert neox.parallel_attn_mlp and neox.norm_bias and not neox.gated_mlp
    bloom = load("bigscience/bloom")
    assert bloom.hidden_size == 14336 and bloom.intermediate_size == 4 * 14336
    assert bloom.max_position_embeddings is None  # ALiBi: no position limit in the config


def test_mpt_attn_config():
    cfg = raw_config("mosaicml/mpt-7b-instruct")
    assert "attn_config" in cfg and cfg["d_model"] == 4096
    spec = load("mosaicml/mpt-7b-instruct")
    assert geometry(spec) == (32, 32, 32, 128)
    assert spec.max_position_embeddings == cfg["max_seq_len"] == 2048
    # A grouped-query MPT puts kv_n_heads inside attn_config (modified copy of the config).
    gqa = {
        **cfg,
        "attn_config": {
            **cfg["attn_config"],
            "attn_type": "grouped_query_attention",
            "kv_n_heads": 8,
        },
    }
    assert parse_hf_config(gqa, name="mpt-gqa", origin="t").kv_heads == 8


def test_phi3_and_phi4_mini():
    phi3 = load("microsoft/Phi-3-mini-4k-instruct")
    assert {layer.window for layer in phi3.layers} == {2047}
    phi4_mini = load("microsoft/Phi-4-mini-instruct")
    cfg = raw_config("microsoft/Phi-4-mini-instruct")
    assert cfg["sliding_window"] > cfg["max_position_embeddings"]  # 262144 > 131072
    assert all(layer.kind is FULL for layer in phi4_mini.layers)
    assert has_assumption(phi4_mini, "never binds")


# ---- MLA and MoE (DeepSeek), gpt-oss, Cohere, OLMo 2, StarCoder2 ------------------------------
def test_deepseek_v2_mla_and_first_dense_layer():
    spec = load("deepseek-ai/DeepSeek-V2")
    assert spec.mla is not None
    assert (spec.mla.kv_lora_rank, spec.mla.qk_rope_head_dim, spec.mla.q_lora_rank) == (
        512,
        64,
        1536,
    )
    assert (spec.head_dim, spec.v_head_dim) == (128 + 64, 128)
    assert spec.moe is not None
    assert (spec.moe.num_experts, spec.moe.experts_per_token, spec.moe.shared_experts) == (
        160,
        6,
        2,
    )
    assert [i for i, layer in enumerate(spec.layers) if not layer.moe] == [0]


def test_deepseek_v3_three_dense_layers_one_shared_expert():
    spec = load("deepseek-ai/DeepSeek-V3")
    assert spec.moe is not None
    assert (spec.moe.num_experts, spec.moe.experts_per_token) == (256, 8)
    assert (spec.moe.shared_experts, spec.moe.shared_intermediate) == (1, 2048)
    assert [i for i, layer in enumerate(spec.layers) if not layer.moe] == [0, 1, 2]
    assert spec.quantization is not None and spec.quantization.weight_dtype == "fp8"
    assert all(layer.kind is MLA for layer in spec.layers)


def test_deepseek_v2_lite_without_q_lora():
    spec = load("deepseek-ai/DeepSeek-V2-Lite")
    assert spec.mla is not None and spec.mla.q_lora_rank is None


def test_gpt_oss_layer_types_sinks_and_mxfp4():
    spec = load("openai/gpt-oss-120b")
    cfg = raw_config("openai/gpt-oss-120b")
    assert [layer.kind.value for layer in spec.layers] == [
        "sliding" if t == "sliding_attention" else "full" for t in cfg["layer_types"]
    ]
    assert indices(spec, SLIDING) == list(range(0, 36, 2))
    assert {layer.window for layer in spec.layers if layer.window} == {128}
    assert spec.moe is not None and (spec.moe.num_experts, spec.moe.experts_per_token) == (128, 4)
    assert spec.quantization is not None and spec.quantization.weight_dtype == "mxfp4"
    assert spec.head_dim * spec.query_heads == 4096 != spec.hidden_size == 2880


def test_cohere_command_r_family():
    spec = load("CohereForAI/aya-23-8B")
    assert spec.family == "cohere"
    assert spec.tie_embeddings and spec.parallel_attn_mlp and spec.norms_per_layer == 1


# allenai/OLMo-2-1124-7B config.json (see configs/models/SOURCES.md; values unchanged)
OLMO2_1124_7B = {
    "architectures": ["Olmo2ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "eos_token_id": 100257,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 11008,
    "max_position_embeddings": 4096,
    "model_type": "olmo2",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "pad_token_id": 100277,
    "rms_norm_eps": 1e-06,
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "vocab_size": 100352,
}


def test_olmo2_fixture():
    spec = parse_hf_config(OLMO2_1124_7B, name="allenai/OLMo-2-1124-7B", origin="fixture")
    assert spec.family == "olmo2"
    assert geometry(spec) == (32, 32, 32, 128)
    assert spec.layout is AttentionLayout.MHA
    assert spec.qk_norm and spec.norms_per_layer == 2 and not spec.tie_embeddings
    assert (spec.intermediate_size, spec.vocab_size, spec.max_position_embeddings) == (
        11008,
        100352,
        4096,
    )
    assert raw_config("allenai/OLMo-2-1124-7B") == OLMO2_1124_7B
    assert load("allenai/OLMo-2-1124-7B").model_dump(exclude={"source"}) == spec.model_dump(
        exclude={"source"}
    )


def test_starcoder2_sliding_window():
    spec = load("bigcode/starcoder2-7b")
    assert spec.family == "starcoder2" and spec.max_position_embeddings == 16384
    assert {layer.window for layer in spec.layers} == {4096}


# ---- hybrids with non-attention layers -----------------------------------------------------
def test_jamba_attention_every_eighth_layer_and_moe_every_second():
    spec = load("ai21labs/AI21-Jamba-1.5-Mini")
    assert indices(spec, FULL) == [4, 12, 20, 28]  # attn_layer_period 8, offset 4
    assert [i for i, layer in enumerate(spec.layers) if layer.moe] == list(range(1, 32, 2))
    mamba = [layer for layer in spec.layers if layer.kind is NONE]
    assert {layer.state_elements for layer in mamba} == {8192 * 16 + 8192 * 3}
    # transformers JambaMambaMixer, hidden 4096, d_inner 8192, d_state 16, d_conv 4,
    # dt_rank 256: in_proj + conv1d (+bias) + x_proj + dt_proj (+bias) + A_log + D + out_proj
    # + dt/B/C RMSNorms
    inner = 8192
    expected = (
        4096 * 2 * inner
        + inner * 4
        + inner
        + inner * (256 + 2 * 16)
        + 256 * inner
        + inner
        + inner * 16
        + inner
        + inner * 4096
        + (256 + 2 * 16)
    )
    assert {mixers.mixer_params(spec, layer) for layer in mamba} == {expected}
    assert has_assumption(spec, "Mamba state")


def test_qwen3_next_full_attention_interval():
    spec = load("Qwen/Qwen3-Next-80B-A3B-Thinking")
    assert "layer_types" not in raw_config("Qwen/Qwen3-Next-80B-A3B-Thinking")
    assert indices(spec, FULL) == list(range(3, 48, 4))
    # Gated DeltaNet state: 32 value heads x 128 x 128 + conv over q, k, v channels x 3
    key_total, value_total = 16 * 128, 32 * 128
    state = 32 * 128 * 128 + (2 * key_total + value_total) * 3
    assert {layer.state_elements for layer in spec.layers if layer.kind is NONE} == {state}


def test_layer_types_with_linear_attention():
    cfg = {
        **raw_config("Qwen/Qwen3-Next-80B-A3B-Thinking"),
        "layer_types": ["linear_attention"] * 47 + ["full_attention"],
    }
    spec = parse_hf_config(cfg, name="x", origin="t")
    assert indices(spec, FULL) == [47]


def test_llama4_chunked_attention():
    # Llama-4-Scout-like text config (synthetic: structure only).
    cfg = {
        "model_type": "llama4_text",
        "hidden_size": 5120,
        "num_hidden_layers": 8,
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 202048,
        "intermediate_size": 8192,
        "attention_chunk_size": 8192,
        "no_rope_layers": [1, 1, 1, 0, 1, 1, 1, 0],
    }
    spec = parse_hf_config(cfg, name="l4", origin="t")
    assert spec.layer_summary() == "6 chunked(8192) + 2 full"
    assert indices(spec, FULL) == [3, 7]


# ---- unknown families ----------------------------------------------------------------------
def test_unknown_model_type_with_standard_keys():
    cfg = {
        "model_type": "brand_new_lm",
        "hidden_size": 2048,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "vocab_size": 50000,
    }
    spec = parse_hf_config(cfg, name="new", origin="new.json")
    assert geometry(spec) == (24, 16, 16, 128)
    assert spec.family == "brand_new_lm"
    assert "no KV-head key in config: assuming multi-head attention (G = H = 16)" in (
        spec.assumptions
    )
    assert "head_dim not in config: hidden/heads = 2048/16 = 128" in spec.assumptions
    assert has_assumption(spec, "checkpoint dtype not in config")
    with_g = parse_hf_config({**cfg, "num_key_value_heads": 4}, name="new", origin="new.json")
    assert with_g.kv_heads == 4 and not has_assumption(with_g, "KV-head")


# ---- catalog lookups -----------------------------------------------------------------------
def test_catalog_lookup_is_case_insensitive_and_hf_suffix_optional():
    assert CATALOG.find("META-LLAMA/llama-2-70B-HF") is CATALOG.find("meta-llama/Llama-2-70b-hf")
    assert CATALOG.find("meta-llama/Llama-2-70b") is not None  # the params.json entry
    assert CATALOG.find("meta-llama/llama-2-70b").format == "meta"
    assert CATALOG.find("meta-llama/Llama-2-70b-hf").format == "hf"
    code = CATALOG.find("codellama/CodeLlama-34b-Instruct")  # '-hf' dropped
    assert code is not None and code.repo_id == "codellama/CodeLlama-34b-Instruct-hf"
    assert CATALOG.find("gpt2").repo_id == "openai-community/gpt2"  # alias
    assert CATALOG.find("no-such/model") is None


def test_resolve_model_uses_the_catalog_for_both_llama2_70b_names():
    a = resolve_model("meta-llama/Llama-2-70b")
    b = resolve_model("meta-llama/Llama-2-70b-hf")
    assert a.source == b.source == "catalog"
    assert geometry(a.spec) == geometry(b.spec) == (80, 64, 8, 128)


# ---- bad input -----------------------------------------------------------------------------
GOOD = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
}
BAD = [
    (
        {k: v for k, v in GOOD.items() if k != "num_hidden_layers"},
        "missing required key num_hidden_layers / n_layer / n_layers / num_layers",
    ),
    (
        {k: v for k, v in GOOD.items() if k != "num_attention_heads"},
        "missing required key num_attention_heads / n_head / n_heads / num_heads",
    ),
    (
        {k: v for k, v in GOOD.items() if k != "hidden_size"},
        "missing required key hidden_size / n_embd / d_model / dim",
    ),
    (
        {k: v for k, v in GOOD.items() if k != "vocab_size"},
        "missing required key vocab_size / padded_vocab_size / n_vocab",
    ),
    ({**GOOD, "num_attention_heads": 0}, "key num_attention_heads must be positive, got 0"),
    ({**GOOD, "num_attention_heads": -32}, "key num_attention_heads must be positive, got -32"),
    ({**GOOD, "num_attention_heads": 32.5}, "key num_attention_heads must be an integer, got 32.5"),
    ({**GOOD, "num_attention_heads": "32"}, "key num_attention_heads must be an integer, got '32'"),
    ({**GOOD, "num_key_value_heads": 0}, "key num_key_value_heads must be positive, got 0"),
    ({**GOOD, "num_key_value_heads": True}, "key num_key_value_heads must be an integer, got True"),
    (
        {**GOOD, "num_key_value_heads": 5},
        "key num_key_value_heads (5) does not divide num_attention_heads (32): query heads "
        "cannot be grouped evenly",
    ),
    (
        {**GOOD, "num_key_value_heads": 64},
        "key num_key_value_heads (64) exceeds num_attention_heads (32): more KV heads than "
        "query heads",
    ),
    (
        {**GOOD, "hidden_size": 4100},
        "key hidden_size (4100) is not divisible by num_attention_heads (32) and there is no "
        "head_dim key",
    ),
    (
        {**GOOD, "model_type": "gpt_neox", "num_key_value_heads": 32, "head_dim": 100},
        "key head_dim (100) x num_attention_heads (32) = 3200 does not match hidden_size (4096), "
        "which gpt_neox's attention projections require",
    ),
    (
        {**GOOD, "model_type": "phi3", "head_dim": 64},
        "key head_dim (64) x num_attention_heads (32) = 2048 does not match hidden_size (4096), "
        "which phi3's attention projections require",
    ),
    (
        {
            **GOOD,
            "num_hidden_layers": 2,
            "sliding_window": 8192,
            "layer_types": ["sliding_attention", "full_attention"],
        },
        "key sliding_window (8192) exceeds max_position_embeddings (4096), but layer_types marks "
        "layers as sliding",
    ),
    (
        {**GOOD, "num_hidden_layers": 2, "layer_types": ["sliding_attention", "full_attention"]},
        "key layer_types has sliding layers but there is no sliding_window",
    ),
    (
        {**GOOD, "num_hidden_layers": 2, "layer_types": ["full_attention"]},
        "key layer_types has 1 entries for 2 layers",
    ),
    ({**GOOD, "sliding_window": 0}, "key sliding_window must be positive, got 0"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_config_names_file_and_key(cfg, message):
    with pytest.raises(KvplanError) as info:
        parse_config_dict(cfg, name="bad", origin="bad.json")
    assert str(info.value) == f"bad.json: {message}"
    assert "\n" not in str(info.value)


def test_malformed_json_and_non_object():
    with pytest.raises(KvplanError, match=r"^x\.json: not valid JSON \(line 1, column 2"):
        parse_config_text('{"hidden_size": 4096,', name="x", origin="x.json")
    with pytest.raises(KvplanError, match=r"^x\.json: config is not a JSON object$"):
        parse_config_text("[1, 2]", name="x", origin="x.json")


def test_window_that_never_binds_still_loads():
    # No layer_types: a window >= max positions is full attention, recorded as an assumption.
    spec = parse_hf_config(
        {**GOOD, "model_type": "mistral", "sliding_window": 8192}, name="x", origin="t"
    )
    assert all(layer.kind is FULL for layer in spec.layers)
    assert has_assumption(spec, "sliding_window 8192 >= max positions 4096: it never binds")
    # layer_types whose window fits the context is fine.
    ok = parse_hf_config(
        {
            **GOOD,
            "num_hidden_layers": 2,
            "sliding_window": 1024,
            "layer_types": ["sliding_attention", "full_attention"],
        },
        name="x",
        origin="t",
    )
    assert ok.layer_summary() == "1 sliding(1024) + 1 full"
