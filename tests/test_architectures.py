"""Heterogeneous layer stacks read from real 2025-2026 configs, against hand-computed numbers.

Every expected number is the arithmetic of docs/formula.md on the config's keys, written out
in the test. Configs are the bundled copies in configs/models (provenance: SOURCES.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvplan.core import kvcache, mixers
from kvplan.core.geometry import Ffn, LayerKind, Mixer, ModelSpec
from kvplan.core.params import moe_params, param_counts
from kvplan.errors import KvplanError
from kvplan.sources.hf_config import collect_findings, parse_hf_config

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "configs" / "models"


def raw(stem: str) -> dict:
    path = MODELS / f"{stem}.json"
    if not path.exists():
        path = MODELS / "unsupported" / f"{stem}.json"
    return json.loads(path.read_text())


def load(stem: str) -> ModelSpec:
    return parse_hf_config(raw(stem), name=stem, origin=f"{stem}.json")


def count(spec: ModelSpec, label: str) -> int:
    return sum(1 for layer in spec.layers if layer.label() == label)


# ---- Nemotron-H / Nemotron-3: one mixer per block --------------------------------------
def test_nemotron3_nano_pattern_is_one_mixer_per_block():
    spec = load("nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
    pattern = raw("nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")["hybrid_override_pattern"]
    assert (pattern.count("M"), pattern.count("E"), pattern.count("*")) == (23, 23, 6)
    assert spec.layer_summary() == "23 mamba2 + 23 moe_only + 6 full"
    for layer, c in zip(spec.layers, pattern, strict=True):
        expected_ffn = {"M": Ffn.NONE, "E": Ffn.MOE, "*": Ffn.NONE}[c]
        assert layer.ffn is expected_ffn
    # 6 attention layers x 2 (K, V) x G 2 x d_head 128 x bf16 2 B
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 6 * 2 * 2 * 128 * 2 == 6144
    # Mamba-2 state per layer: SSM mamba_num_heads 64 x mamba_head_dim 64 x ssm_state_size 128
    # in mamba_ssm_cache_dtype float32 (4 B) + conv (64*64 + 2 * n_groups 8 * 128) x
    # (conv_kernel 4 - 1) in bf16
    per_layer = 64 * 64 * 128 * 4 + (64 * 64 + 2 * 8 * 128) * 3 * 2
    assert per_layer == 2_134_016
    assert kvcache.state_bytes_per_sequence(spec, None) == 23 * per_layer
    assert kvcache.kv_bytes_per_sequence(spec, 1000, "bf16") == 6144 * 1000 + 23 * per_layer


def test_nemotron3_super_latent_moe_counts_latent_experts():
    spec = load("nvidia__NVIDIA-Nemotron-3-Super-120B-A12B-FP8")
    assert spec.moe is not None and spec.moe.latent_size == 1024
    hidden, latent = 4096, 1024
    # relu2 experts (up + down) map latent -> 2688 -> latent; one hidden->latent and one
    # latent->hidden projection per MoE layer; shared expert hidden -> 5376 -> hidden
    all_experts, active, rest = moe_params(spec)
    assert all_experts == 512 * 2 * latent * 2688
    assert active == 22 * 2 * latent * 2688
    router = hidden * 512 + 512  # + e_score_correction_bias
    assert rest == 2 * hidden * 5376 + router + 2 * hidden * latent


def test_nemotron_ultra_layer_count_from_layers_block_type():
    spec = load("nvidia__NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16")
    assert "num_hidden_layers" not in raw("nvidia__NVIDIA-Nemotron-3-Ultra-550B-A55B-BF16")
    assert spec.num_layers == 108
    assert spec.layer_summary() == "48 mamba2 + 48 moe_only + 12 full"


def test_nemotron_h_56b_mlp_blocks():
    spec = load("nvidia__Nemotron-H-56B-Base-8K")
    assert spec.layer_summary() == "54 mamba2 + 54 mlp_only + 10 full"
    mlp = [layer for layer in spec.layers if layer.label() == "mlp_only"]
    assert all(layer.ffn is Ffn.DENSE for layer in mlp)
    # relu2 MLP: up + down only, 2 x 8192 x 32768
    assert not spec.gated_mlp and spec.intermediate_size == 32768


# ---- DeciLM / Nemotron-NAS block_configs -------------------------------------------------
def test_nemotron_super_49b_block_configs():
    spec = load("nvidia__Llama-3_3-Nemotron-Super-49B-v1")
    attention = [layer for layer in spec.layers if layer.mixer is Mixer.ATTENTION]
    assert len(attention) == 49 and spec.count(LayerKind.NONE) == 31
    assert {spec.layer_kv_heads(layer) for layer in attention} == {64 // 8}  # n_heads_in_group
    # 49 layers x 2 x G 8 x d_head 128 x bf16: 13x less than 80 MHA layers would be
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 49 * 2 * 8 * 128 * 2 == 200_704
    assert pytest.approx(13.06, abs=0.01) == 80 * 2 * 64 * 128 * 2 / 200_704
    # ffn_mult 5.25: int(2 * 5.25 * 8192 / 3) = 28672, already a multiple of 256;
    # ffn_mult 1.3125: int(2 * 1.3125 * 8192 / 3) = 7168
    widths = {layer.ffn_width for layer in spec.layers}
    assert {28672, 7168} <= widths
    # no-op attention blocks have no input norm: norms = 49 + 80 (every block has an FFN)
    assert sum(layer.norms or 0 for layer in spec.layers) == 49 + 80


# ---- LFM2: short convolutions -------------------------------------------------------------
def test_lfm2_conv_layers_and_ffn_width():
    spec = load("LiquidAI__LFM2.5-VL-1.6B")
    assert spec.layer_summary().count("short_conv") == 1
    assert count(spec, "short_conv") == 10 and count(spec, "full") == 6
    # block_ff_dim 12288, auto-adjusted: int(2 * 12288 / 3) = 8192, x 1.0, multiple of 256
    assert spec.intermediate_size == 8192
    # 6 attention layers x 2 x G 8 x d_head 2048/32 = 64 x bf16
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 6 * 2 * 8 * 64 * 2 == 12_288
    # conv state: conv_dim 2048 channels x (conv_L_cache 3 - 1) past inputs x bf16
    assert kvcache.state_bytes_per_sequence(spec, None) == 10 * 2048 * 2 * 2 == 81_920
    assert spec.tie_embeddings  # Lfm2Config ties by default; this config has no key


# ---- per-layer-type attention geometry -----------------------------------------------------
def test_gemma4_global_layers_have_their_own_heads_and_head_dim():
    spec = load("google__gemma-4-26B-A4B")
    full = [layer for layer in spec.layers if layer.kind is LayerKind.FULL]
    sliding = [layer for layer in spec.layers if layer.kind is LayerKind.SLIDING]
    assert (len(sliding), len(full)) == (25, 5)
    assert {(spec.layer_kv_heads(x), *spec.layer_head_dims(x)) for x in full} == {(2, 512, 512)}
    assert {(spec.layer_kv_heads(x), *spec.layer_head_dims(x)) for x in sliding} == {(8, 256, 256)}
    assert all(layer.k_eq_v for layer in full)
    # sliding: 25 x 2 x 8 x 256; global: 5 x 2 x 2 x 512 (K and V both stored); bf16
    assert kvcache.kv_bytes_per_token(spec, "bf16") == (25 * 4096 + 5 * 2048) * 2 == 225_280
    # beyond the 1024 window only the global layers grow
    at = kvcache.kv_bytes_per_sequence
    assert at(spec, 5000, "bf16") - at(spec, 4000, "bf16") == 1000 * 5 * 2048 * 2
    # MoE beside a dense MLP: 128 experts of 704 plus a dense MLP of 2112 in every layer
    assert spec.moe is not None and spec.moe.dense_width == 2112


def test_mimo_v2_sliding_layers_have_their_own_kv_heads():
    spec = load("XiaomiMiMo__MiMo-V2-Flash")
    assert count(spec, "sliding(128)") == 39 and count(spec, "full") == 9
    # sliding: swa_num_key_value_heads 8 x (swa_head_dim 192 + swa_v_head_dim 128);
    # full: num_key_value_heads 4 x (192 + 128); bf16
    assert kvcache.kv_bytes_per_token(spec, "bf16") == (39 * 8 * 320 + 9 * 4 * 320) * 2
    flags = raw("XiaomiMiMo__MiMo-V2-Flash")["moe_layer_freq"]
    assert [layer.ffn is Ffn.MOE for layer in spec.layers] == [f == 1 for f in flags]


# ---- DSA indexer ---------------------------------------------------------------------------
def test_deepseek_v32_caches_the_indexer_keys():
    v32, v3 = load("deepseek-ai__DeepSeek-V3.2"), None
    v3 = parse_hf_config(
        {k: v for k, v in raw("deepseek-ai__DeepSeek-V3.2").items() if "index" not in k}
        | {"model_type": "deepseek_v3"},
        name="v3",
        origin="t",
    )
    assert {layer.mixer for layer in v32.layers} == {Mixer.MLA_INDEXER}
    # 61 layers x (kv_lora_rank 512 + qk_rope_head_dim 64 + index_head_dim 128) x bf16
    assert kvcache.kv_bytes_per_token(v32, "bf16") == 61 * (512 + 64 + 128) * 2 == 85_888
    assert kvcache.kv_bytes_per_token(v3, "bf16") == 61 * 576 * 2
    assert pytest.approx(0.1818, abs=1e-4) == 1 - 61 * 576 / (61 * 704)  # the 18%
    # indexer parameters per layer: wq_b q_lora 1536 x 64 heads x 128, wk 7168 x 128,
    # k_norm 2 x 128, weights_proj 7168 x 64
    per_layer = 1536 * 64 * 128 + 7168 * 128 + 2 * 128 + 7168 * 64
    assert param_counts(v32).attention - param_counts(v3).attention == 61 * per_layer


# ---- Gated DeltaNet state and dtype ---------------------------------------------------------
def test_qwen35_gdn_state_in_float32_and_conv_key_channels():
    spec = load("Qwen__Qwen3.5-35B-A3B")
    assert count(spec, "gated_deltanet") == 30 and count(spec, "full") == 10
    assert spec.attn_output_gate
    # recurrent: 32 value heads x key dim 128 x value dim 128 in mamba_ssm_dtype float32;
    # conv: (2 x 16 key heads x 128 + 32 x 128) channels x (kernel 4 - 1), bf16
    per_layer = 32 * 128 * 128 * 4 + (2 * 16 * 128 + 32 * 128) * 3 * 2
    assert kvcache.state_bytes_per_sequence(spec, None) == 30 * per_layer == 64_389_120
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 10 * 2 * 2 * 256 * 2


# ---- cross-attention (Llama-3.2-Vision) -----------------------------------------------------
MLLAMA = {
    # A Llama-3.2-Vision-shaped config with 560 px tiles (patch 14, 4 tiles; the other vision
    # keys at transformers' MllamaVisionConfig defaults); the real 11B config is below.
    "model_type": "mllama",
    "text_config": {
        "model_type": "mllama_text_model",
        "hidden_size": 4096,
        "num_hidden_layers": 40,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "cross_attention_layers": [3, 8, 13, 18, 23, 28, 33, 38],
        "torch_dtype": "bfloat16",
    },
    "vision_config": {"image_size": 560, "patch_size": 14, "max_num_tiles": 4},
}


def test_cross_attention_layers_hold_a_fixed_encoder_kv_not_per_token_kv():
    spec = parse_hf_config(MLLAMA, name="mllama", origin="t")
    cross = [layer for layer in spec.layers if layer.mixer is Mixer.CROSS_ATTENTION]
    assert len(cross) == 8 and all(layer.kind is LayerKind.NONE for layer in cross)
    # 32 self-attention layers grow per token: 32 x 2 x 8 x 128 x bf16
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 32 * 2 * 8 * 128 * 2
    # each cross layer: one image = 4 tiles x ((560 / 14)^2 + 1) = 6404 encoder tokens
    tokens = 4 * ((560 // 14) ** 2 + 1)
    assert tokens == 6404
    assert kvcache.state_bytes_per_sequence(spec, "bf16") == 8 * tokens * 2 * 8 * 128 * 2
    assert kvcache.state_bytes_per_sequence(spec, "fp8") == 8 * tokens * 2 * 8 * 128


# ---- implicit defaults -------------------------------------------------------------------
def test_llama4_always_has_one_shared_expert_and_wide_dense_layers():
    spec = load("meta-llama__Llama-4-Maverick-17B-128E-Instruct")
    assert spec.moe is not None and spec.moe.shared_experts == 1
    assert spec.moe.shared_intermediate == 8192  # the expert width; no key for it
    dense = [layer for layer in spec.layers if layer.ffn is Ffn.DENSE]
    assert len(dense) == 24  # interleave_moe_layer_step 2: every other layer dense
    assert {layer.ffn_width for layer in dense} == {16384}  # intermediate_size_mlp


def test_smollm3_ties_embeddings_when_the_key_is_absent():
    cfg = {
        "model_type": "smollm3",
        "hidden_size": 2048,
        "num_hidden_layers": 36,
        "num_attention_heads": 16,
        "num_key_value_heads": 4,
        "intermediate_size": 11008,
        "vocab_size": 128256,
    }
    assert parse_hf_config(cfg, name="s", origin="t").tie_embeddings
    assert not parse_hf_config(
        {**cfg, "tie_word_embeddings": False}, name="s", origin="t"
    ).tie_embeddings


# ---- fail closed -----------------------------------------------------------------------------
NANO = "nvidia__NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"
BAD = [
    (
        {**raw("MiniMaxAI__MiniMax-M2.7"), "layer_types": ["linear_attention"] * 62},
        "key layer_types has unknown layer type 'linear_attention'",
    ),
    (
        {**raw("MiniMaxAI__MiniMax-M2.7"), "attn_type_list": [0] + [1] * 61},
        "key attn_type_list has value 0 (lightning linear attention) on 1 layers: a layer "
        "kind kvplan does not model",
    ),
    (
        {**raw(NANO), "hybrid_override_pattern": "MEX" + raw(NANO)["hybrid_override_pattern"][3:]},
        "key hybrid_override_pattern has an unknown layer character 'X' at position 2",
    ),
    (
        {**raw(NANO), "hybrid_override_pattern": "ME*"},
        "key hybrid_override_pattern has 3 entries for 52 layers",
    ),
    (
        {**raw("nvidia__Llama-3_3-Nemotron-Super-49B-v1"), "block_configs": [{}] * 80},
        "key block_configs[0] must have an 'attention' and an 'ffn' object",
    ),
    (
        {**raw("nvidia__Llama-3_3-Nemotron-Super-49B-v1"), "block_configs": {"a": 1}},
        "key block_configs must be a list of objects, one per layer",
    ),
    (
        {**raw("deepseek-ai__DeepSeek-V3.2"), "index_head_dim": -128},
        "key index_head_dim must be positive, got -128",
    ),
    (
        {**raw("XiaomiMiMo__MiMo-V2-Flash"), "swa_head_dim": 1.5},
        "key swa_head_dim must be an integer, got 1.5",
    ),
    (
        {**raw(NANO), "mamba_num_heads": 0},
        "key mamba_num_heads must be positive, got 0",
    ),
    (
        {**raw("deepseek-ai__DeepSeek-V4-Flash"), "compress_ratios": [0, 8] + [4] * 42},
        "key compress_ratios has value 8: a compression kvplan does not know (0, 4 or 128)",
    ),
    (
        {**raw("deepseek-ai__DeepSeek-V4-Flash"), "compress_ratios": [0, 4]},
        "key compress_ratios has 2 entries for 43 layers",
    ),
    (
        # Falcon-H1 style: Mamba keys in a family whose layers kvplan reads as attention only
        {**raw("meta-llama__Llama-3.1-8B"), "model_type": "falcon_h1", "mamba_d_ssm": 1024},
        "key mamba_d_ssm: a recurrent (state-space / linear-attention) mixer in a falcon_h1 config",
    ),
    (
        {**raw("meta-llama__Llama-3.1-8B"), "hybrid_override_pattern": "M*" * 16},
        "key hybrid_override_pattern: a layer-structure key kvplan reads only for nemotron_h, "
        "not for llama",
    ),
    (
        {
            **raw("google__gemma-4-26B-A4B"),
            "text_config": {
                **raw("google__gemma-4-26B-A4B")["text_config"],
                "num_kv_shared_layers": 10,
            },
        },
        "key num_kv_shared_layers (10): layers that reuse another layer's KV cache",
    ),
    (raw("moonshotai__Kimi-K3"), "key linear_attn_config: Kimi-Linear style KDA"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_unknown_or_malformed_structure_is_one_line_naming_the_key(cfg, message):
    with pytest.raises(KvplanError) as info:
        parse_hf_config(cfg, name="bad", origin="bad.json")
    assert str(info.value).startswith(f"bad.json: {message}")
    assert "\n" not in str(info.value)
    findings, spec = collect_findings(cfg, origin="bad.json")
    assert spec is None
    assert any(f.severity == "error" and message in f.message for f in findings)


def test_with_kv_heads_is_validated():
    spec = load("nvidia__Llama-3_3-Nemotron-Super-49B-v1")
    with pytest.raises(ValueError, match="do not divide"):
        spec.with_kv_heads(3)
    four = spec.with_kv_heads(4)
    assert {four.layer_kv_heads(x) for x in four.layers if x.mixer is Mixer.ATTENTION} == {4}
    assert mixers.mixer_params(four, four.layers[0]) < mixers.mixer_params(spec, spec.layers[0])


def test_check_reports_an_unknown_layer_kind_as_a_lint_finding():
    from kvplan.sources.lint import lint_config

    cfg = {**raw("MiniMaxAI__MiniMax-M2.7"), "layer_types": ["linear_attention"] * 62}
    findings = lint_config(cfg, origin="c.json")
    assert [(f.severity, f.key, f.message) for f in findings] == [
        ("error", "layer_types", "key layer_types has unknown layer type 'linear_attention'")
    ]


def test_minimax_m3_dense_layers_use_dense_intermediate_size():
    spec = load("MiniMaxAI__MiniMax-M3")
    dense = [layer for layer in spec.layers if layer.ffn is Ffn.DENSE]
    flags = raw("MiniMaxAI__MiniMax-M3")["text_config"]["moe_layer_freq"]  # a minimax_m3_vl wrapper
    assert len(dense) == flags.count(0)
    assert {layer.ffn_width for layer in dense} == {12288}  # dense_intermediate_size


# ---- DeepSeek-V4 compressed attention ----------------------------------------------------
def test_deepseek_v4_flash_window_plus_compressed_entries():
    spec = load("deepseek-ai__DeepSeek-V4-Flash")
    ratios = raw("deepseek-ai__DeepSeek-V4-Flash")["compress_ratios"][:43]  # 44th: MTP layer
    assert (ratios.count(0), ratios.count(4), ratios.count(128)) == (2, 21, 20)
    assert spec.layer_summary() == (
        "2 mqa_sliding(128) + 21 csa_1/4+sliding(128) + 20 hca_1/128+sliding(128)"
    )

    def tokens(ctx: int) -> int:
        # every layer: K and V of one shared head of head_dim 512 for the last 128 tokens;
        # CSA: ctx // 4 entries of 512 + indexer key 128; HCA: ctx // 128 entries of 512
        return 43 * 2 * 512 * min(ctx, 128) + 21 * (ctx // 4) * 640 + 20 * (ctx // 128) * 512

    # compressor state bound per sequence: CSA remainder 3 tokens x (2 x 2 x 512 + 2 x 2 x 128)
    # and overlap 4 x 640 in bf16 + 4 x 640 gate in fp32; HCA remainder 127 x 2 x 512, bf16
    csa = (3 * (2 * 2 * 512 + 2 * 2 * 128) + 4 * 640) * 2 + 4 * 640 * 4
    hca = 127 * 2 * 512 * 2
    assert kvcache.state_bytes_per_sequence(spec, None) == 21 * csa + 20 * hca == 5_847_040
    for ctx in (1, 7, 149, 4099, 1_000_000):
        assert kvcache.kv_bytes_per_sequence(spec, ctx, "bf16") == tokens(ctx) * 2 + 5_847_040
    # below the window one more token adds the K/V of all 43 layers (entries come per r tokens)
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 43 * 1024 * 2


def test_deepseek_v4_flash_parameters_include_hyper_connections():
    spec = load("deepseek-ai__DeepSeek-V4-Flash")
    assert spec.hyper_connections == 4 and spec.compressed is not None
    # hc_mult m = 4: fn (2 + m) m x m * hidden, base (2 + m) m, scale 3; two per layer
    one = (2 + 4) * 4 * (4 * 4096) + (2 + 4) * 4 + 3
    assert mixers.hyper_connection_params(4096, 4) == one
    # o-projection groups: o_a (64 * 512 / 8) x (8 * 1024), o_b (8 * 1024) x 4096
    swa = spec.layers[0]
    assert mixers.mixer_params(spec, swa) == (
        64  # sinks
        + 4096 * 1024
        + 1024  # q_a + norm
        + 1024 * 64 * 512  # q_b
        + 4096 * 512
        + 512  # shared K=V projection + norm
        + (64 * 512 // 8) * (8 * 1024)
        + 8 * 1024 * 4096
    )
    # the whole model, as transformers builds it (crosscheck fixture): 284,332,230,231
    assert param_counts(spec).total == 284_332_230_231


def test_llama32_vision_real_config_cross_attention_state():
    spec = load("meta-llama__Llama-3.2-11B-Vision-Instruct")
    assert spec.layer_summary() == "32 full + 8 cross_attention"  # summary keeps first-seen order
    # vision_config image_size 560 as published (Meta's vision_chunk_size 560; restored from the
    # 448 of the TensorRT-LLM test dict, issue 15), patch 14, max_num_tiles 4:
    # 4 x ((560 / 14)^2 + 1) = 6404 encoder tokens
    tokens = 4 * ((560 // 14) ** 2 + 1)
    assert tokens == 6404
    # 8 cross layers x 6404 tokens x (K + V) x G 8 x d_head 128 x bf16; equals transformers'
    # cross_k + cross_v for one image (crosscheck fixture: 2 x 104,923,136)
    assert kvcache.state_bytes_per_sequence(spec, "bf16") == 8 * tokens * 2 * 8 * 128 * 2
    assert kvcache.state_bytes_per_sequence(spec, "bf16") == 209_846_272 == 2 * 104_923_136
    assert kvcache.kv_bytes_per_token(spec, "bf16") == 32 * 2 * 8 * 128 * 2
