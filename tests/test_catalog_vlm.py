"""Vision-language checkpoints added for issue 11 (engine logs whose model was not in the catalog):
google/gemma-3-12b-it, llava-hf/llava-1.5-7b-hf, RedHatAI/Mistral-Small-3.1-24B-Instruct-2503-
quantized.w8a8 (configs/models, sources in catalog.yaml / SOURCES.md).

Each test asserts numbers computed by hand from the published config with docs/formula.md's
    KV bytes per token = sum over layers of 2 * G * d_head * bytes per element
(sliding layers hold at most their window), and the parameter count against a published figure.
"""

from __future__ import annotations

import re

import pytest
from conftest import catalog_spec, geometry

from kvplan.core import kvcache
from kvplan.core.geometry import ModelSpec
from kvplan.core.params import param_counts, weight_bytes
from kvplan.sources.catalog import load_catalog
from kvplan.sources.hf_config import ConfigError, parse_hf_config
from kvplan.sources.vision import read_vision

CATALOG = load_catalog()


def load(name: str) -> ModelSpec:
    spec: ModelSpec = catalog_spec(name)
    return spec


# ---- google/gemma-3-12b-it ---------------------------------------------------------------
def test_gemma_3_12b_kv_bytes() -> None:
    spec = load("google/gemma-3-12b-it")
    assert geometry(spec) == (48, 16, 8, 256)
    # sliding_window_pattern 6: layers 5, 11, ..., 47 global, the other 40 a 1024-token window
    assert spec.layer_summary() == "40 sliding(1024) + 8 full"
    per_layer = 2 * 8 * 256 * 2  # K and V, G 8, d_head 256, bf16
    assert per_layer == 8192
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 48 * per_layer == 393_216
    # at the logged 8,192-token max_model_len
    expected = 40 * per_layer * 1024 + 8 * per_layer * 8192
    assert expected == 872_415_232
    assert kvcache.kv_bytes(spec, 8192, 1, "bf16") == expected


def test_gemma_3_12b_parameters_are_the_hub_safetensors_total() -> None:
    """Hub API safetensors total of google/gemma-3-12b-it: 12,187,325,040 (catalog
    params_source). The SigLIP encoder by hand: 27 blocks of 15,239,504 (test_vision.py),
    patch conv 3 x 14^2 x 1152 + 1152, 64^2 positions x 1152, post LayerNorm 2 x 1152:
    416,866,032; the projector a 1152 x 3840 matrix and a 1152-wide RMSNorm."""
    counts = param_counts(load("google/gemma-3-12b-it"))
    assert counts.vision == 416_866_032 + 1152 * 3840 + 1152 == 421_290_864
    assert counts.total + counts.vision == 12_187_325_040
    # keras-hub gemma3_instruct_12b_text: 11,765,788,416 with a 262,144-row vocabulary
    assert counts.total - 11_765_788_416 == (262_208 - 262_144) * 3840


# ---- llava-hf/llava-1.5-7b-hf ------------------------------------------------------------
def test_llava_1_5_7b_geometry_is_llamaconfig_defaults_and_says_so() -> None:
    """text_config names only vocab, positions and norm epsilon: LlamaConfig's defaults give
    the Llama-2-7B shape (32 layers, 32 heads, no GQA, 4096 / 11008), stated as assumptions."""
    spec = load("llava-hf/llava-1.5-7b-hf")
    assert geometry(spec) == (32, 32, 32, 128)
    assert spec.hidden_size == 4096 and spec.intermediate_size == 11008
    assert spec.vocab_size == 32064 and spec.max_position_embeddings == 4096
    for key in ("num_hidden_layers", "hidden_size", "num_key_value_heads", "intermediate_size"):
        note = f"{key} not in config: using the llama default"
        assert any(a.startswith(note) for a in spec.assumptions)


def test_llava_1_5_7b_kv_bytes() -> None:
    spec = load("llava-hf/llava-1.5-7b-hf")
    per_layer = 2 * 32 * 128 * 2  # K and V, 32 KV heads, d_head 128, fp16
    assert kvcache.kv_bytes_per_token(spec, "fp16") == 32 * per_layer == 524_288
    # the TRT engine's max_seq_len 2560: 1.25 GiB per sequence
    assert kvcache.kv_bytes(spec, 2560, 1, "fp16") == 524_288 * 2560 == 1_342_177_280


def test_llava_1_5_7b_parameters_match_the_published_count() -> None:
    """sum(p.numel()) of LlavaForConditionalGeneration for this checkpoint: 7,063,427,072
    (catalog params_source). By hand:
      text: 32 x (4 x 4096^2 + 3 x 4096 x 11008 + 2 x 4096) + 4096 + 2 x 32064 x 4096
      CLIP ViT-L/14-336: 24 blocks x (4h^2 + 4h + 2hi + i + h + 4h), h 1024, i 4096;
        class token h, patch conv 3 x 14^2 x h (no bias), (336/14)^2 + 1 = 577 positions x h,
        pre_layrnorm + post_layernorm 2 x 2h
      projector: 1024 -> 4096 and 4096 -> 4096, both with bias."""
    h, i = 1024, 4096
    clip = 24 * (4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h) + h + 3 * 14 * 14 * h
    clip += 577 * h + 2 * 2 * h
    assert clip == 303_507_456
    projector = (1024 * 4096 + 4096) + (4096 * 4096 + 4096)
    text = 32 * (4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096) + 4096 + 2 * 32064 * 4096
    assert text == 6_738_939_904
    spec = load("llava-hf/llava-1.5-7b-hf")
    counts = param_counts(spec)
    assert counts.total == text
    assert counts.vision == clip + projector == 324_487_168
    assert counts.total + counts.vision == 7_063_427_072
    assert weight_bytes(spec).total == 2 * 7_063_427_072  # fp16 checkpoint


def test_llama_defaults_fill_only_a_wrapped_text_config() -> None:
    """LlamaConfig's defaults apply where a multimodal wrapper builds the text model from a
    partial text_config; a top-level llama config without its geometry is still an error."""
    with pytest.raises(ConfigError, match=r"missing required key num_hidden_layers"):
        parse_hf_config({"model_type": "llama", "vocab_size": 32000}, name="x", origin="x")


@pytest.mark.parametrize(
    ("vision", "key"),
    [
        ({"model_type": "pixtral", "hidden_size": 1024}, "vision_config.model_type"),
        # SiglipVisionConfig's default vision_use_head is true: a pooling head kvplan does not
        # count, so an explicit false is required (as for Gemma 3)
        (
            {"model_type": "siglip_vision_model", "hidden_size": 1152},
            "vision_config.vision_use_head",
        ),
    ],
)
def test_llava_vision_tower_kvplan_does_not_model_fails_closed(
    vision: dict[str, object], key: str
) -> None:
    raw = {"model_type": "llava", "text_config": {"model_type": "llama"}, "vision_config": vision}
    with pytest.raises(ConfigError, match=re.escape(key)):
        parse_hf_config(raw, name="x", origin="x")


def test_llava_next_siglip_tower_by_hand() -> None:
    """LlavaNextForConditionalGeneration as Granite Vision builds it (no verbatim config.json
    of ibm-granite/granite-vision-3.3-2b was found, so no catalog entry): a SigLIP tower
    (27 x 1152, MLP 4304, 384 px / patch 14 = 27^2 = 729 positions, conv with bias,
    post_layernorm), four concatenated feature layers into a 2048-wide text model, and
    image_newline (2048). transformers 5.24 builds this config (LlavaNextConfig with a
    2-layer granite text_config, meta device) with the same 426,624,880 parameters outside
    the language model (a developer check, 2026-11-30; no fixture: not a bundled config)."""
    h, i = 1152, 4304
    tower = 27 * (4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h)
    tower += 3 * 14 * 14 * h + h + 729 * h + 2 * h
    assert tower == 412_987_248
    projector = (4 * h * 2048 + 2048) + (2048 * 2048 + 2048)
    top = {
        "model_type": "llava_next",
        "vision_feature_layer": [-24, -20, -12, -1],
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": h,
            "intermediate_size": i,
            "num_hidden_layers": 27,
            "image_size": 384,
            "patch_size": 14,
            "vision_use_head": False,
        },
    }
    notes: list[str] = []
    v = read_vision(top, 2048, notes)
    assert v is not None and v.family == "llava_next"
    assert v.params == tower + projector + 2048 == 426_624_880
    assert any("multimodal_projector_bias" in n for n in notes)  # LlavaNextConfig default


# ---- RedHatAI/Mistral-Small-3.1-24B-Instruct-2503-quantized.w8a8 ---------------------------
W8A8 = "RedHatAI/Mistral-Small-3.1-24B-Instruct-2503-quantized.w8a8"


def test_mistral_small_3_1_w8a8_kv_bytes() -> None:
    spec = load(W8A8)
    assert geometry(spec) == (40, 32, 8, 128)
    # weights in int8, the cache at the checkpoint's bf16
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 40 * 2 * 8 * 128 * 2 == 163_840


def test_mistral_small_3_1_w8a8_parameters_and_int8_bytes() -> None:
    """keras-hub mistral_small_3.1_24b: 24,011,361,280 parameters (catalog params_source).
    Bytes: every decoder Linear int8 plus one bf16 scale per output channel; embeddings,
    lm_head, norms and the Pixtral encoder + projector bf16."""
    spec = load(W8A8)
    counts = param_counts(spec)
    assert counts.total + counts.vision == 24_011_361_280
    h, q, kv, inter, vocab = 5120, 32 * 128, 8 * 128, 32768, 131072
    attention = h * q * 2 + h * kv * 2 + 2 * (q + kv + kv + h)  # q, o; k, v; scales
    mlp = 3 * h * inter + 2 * (inter + inter + h)
    expected = 40 * (attention + mlp)
    expected += 2 * vocab * h * 2  # embed_tokens, lm_head
    expected += (40 * 2 * h + h) * 2  # RMSNorms
    expected += counts.vision * 2
    assert expected == 25_799_464_960
    w = weight_bytes(spec)
    assert w.total == expected
    assert w.formats["lm_head"] == "bf16" and w.formats["attention"].startswith("int8")


# ---- moonshotai/Kimi-VL-A3B-Instruct (reader only: no verbatim config.json found) ----------
# The text_config values of two partial copies of the published config (search-index file ids
# 61386913732 and 54699038243; Moonlight-16B-A3B's published config.json, file id 70966029457,
# has the same geometry) and the MoonViT vision_config they quote; not a catalog entry.
KIMI_VL = {
    "architectures": ["KimiVLForConditionalGeneration"],
    "model_type": "kimi_vl",
    "vision_config": {
        "model_type": "moonvit",
        "patch_size": 14,
        "init_pos_emb_height": 64,
        "init_pos_emb_width": 64,
        "num_attention_heads": 16,
        "num_hidden_layers": 27,
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "merge_kernel_size": [2, 2],
    },
    "text_config": {
        "model_type": "deepseek_v3",
        "vocab_size": 163840,
        "max_position_embeddings": 131072,
        "hidden_size": 2048,
        "intermediate_size": 11264,
        "moe_intermediate_size": 1408,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "n_shared_experts": 2,
        "n_routed_experts": 64,
        "num_experts_per_tok": 6,
        "kv_lora_rank": 512,
        "q_lora_rank": None,
        "qk_rope_head_dim": 64,
        "v_head_dim": 128,
        "qk_nope_head_dim": 128,
        "topk_method": "noaux_tc",
        "n_group": 1,
        "topk_group": 1,
        "moe_layer_freq": 1,
        "first_k_dense_replace": 1,
        "norm_topk_prob": True,
        "scoring_func": "sigmoid",
        "routed_scaling_factor": 2.446,
        "hidden_act": "silu",
        "rope_theta": 800000.0,
        "tie_word_embeddings": False,
    },
}


def test_kimi_vl_text_model_is_read_as_mla_and_moe() -> None:
    """The deepseek_v3 text_config inside the kimi_vl wrapper: MLA caches the 512-wide latent
    plus the 64-wide rope key per layer (2 B each), not 16 heads x (192 + 128); 64 routed
    experts top-6 + 2 shared from layer 1."""
    spec = parse_hf_config(KIMI_VL, name="kimi-vl", origin="kimi-vl")
    assert spec.mla is not None and spec.mla.kv_lora_rank == 512 and spec.mla.q_lora_rank is None
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 27 * (512 + 64) * 2 == 31_104
    assert spec.moe is not None
    assert (spec.moe.num_experts, spec.moe.experts_per_token) == (64, 6)
    assert (spec.moe.shared_experts, spec.moe.expert_intermediate) == (2, 1408)
    assert spec.layer_summary() == "27 mla"
    assert [layer.moe for layer in spec.layers] == [False] + [True] * 26  # first_k_dense_replace


def test_kimi_vl_moonvit_by_hand() -> None:
    """MoonVitPretrainedModel + KimiVLMultiModalProjector (Kimi-VL remote code, vLLM
    models/moonvit.py + kimi_vl.py): 27 blocks of 4h^2 + 4h (wqkv + wo, biases) + 2hi + i + h
    (fc0 / fc1, biases) + 4h (norm0, norm1), h 1152, i 4304; patch conv 3 x 14^2 x h + h;
    a 64 x 64 x h position table; final_layernorm 2h. Projector: pre_norm LayerNorm(1152),
    linear_1 4608 -> 4608 and linear_2 4608 -> 2048 with biases (2 x 2 merge)."""
    h, i = 1152, 4304
    encoder = 27 * (4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h)
    encoder += 3 * 14 * 14 * h + h + 64 * 64 * h + 2 * h
    assert encoder == 416_866_032
    wide = 4 * h
    projector = 2 * h + (wide * wide + wide) + (wide * 2048 + 2048)
    spec = parse_hf_config(KIMI_VL, name="kimi-vl", origin="kimi-vl")
    assert spec.vision is not None and spec.vision.family == "kimi_vl"
    assert spec.vision.params == encoder + projector == 447_545_840
