"""One table of model-family traits that the config reader consults.

A trait is a fact about a family that its config.json does not spell out because the
family's transformers config/modeling class implies it: embeddings tied by default, LayerNorm
vs RMSNorm, which projections carry biases, norms per layer, the layer-pattern convention, the
names its `layer_types` use, and defaults transformers fills in when a key is absent. The core
never sees family names: the reader turns these traits into fields of the `ModelSpec`.

Sources: each family's `configuration_*.py` / `modeling_*.py` in huggingface/transformers
(the class defaults and module shapes), named per entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any

from kvplan.core.frozen import dataclass

# What a `layer_types` / pattern entry names: (mixer, cache kind, ffn override).
# mixer names: attention, sliding, chunked, mamba, mamba2, gated_deltanet, short_conv, no_op;
# ffn: None (the family's usual FFN), "moe", "dense", "none".
LayerTypeName = tuple[str, str | None]

GENERIC_LAYER_TYPES: dict[str, LayerTypeName] = {
    **dict.fromkeys(
        ("full_attention", "attention", "global", "full", "global_attention"), ("full", None)
    ),
    **dict.fromkeys(
        ("sliding_attention", "sliding_window", "local", "local_attention", "sliding"),
        ("sliding", None),
    ),
    "chunked_attention": ("chunked", None),
}


@dataclass(frozen=True)
class Traits:
    """Facts a family's config leaves implicit (defaults are the Llama-style ones)."""

    plain_mlp: bool = False  # two-matrix (GELU / relu2) MLP instead of gated SwiGLU
    head_dim_from_hidden: bool = False  # projections are hidden x hidden: head_dim = hidden/H
    layernorm: bool = False  # LayerNorm (weight + bias) instead of RMSNorm
    tied_by_default: bool = False  # tie_word_embeddings when the key is absent
    norms_per_layer: int = 2
    defaults: Mapping[str, Any] = field(default_factory=dict)  # keys transformers fills in
    fixed_biases: tuple[bool, bool, bool] | None = None  # (qkv, o, mlp); None: read the keys
    mlp_bias_default: bool = False
    qk_norm: str = ""  # "", "per_head", "full_width"
    shared_expert_gate: bool = False  # sigmoid gate on the shared expert (Qwen2-MoE)
    router_bias: bool = False
    attention_sinks: bool = False
    parallel: bool = False
    learned_positions: bool = False
    embedding_norm: bool = False
    moe_step_from_one: bool = False  # MoE on layers with (i + 1) % step == 0 (Qwen, Llama-4)
    always_shared_experts: int = 0  # Llama-4: one shared expert, no key for it
    dense_width_key: str | None = None  # Llama-4: dense layers use intermediate_size_mlp
    layer_types: Mapping[str, LayerTypeName] = field(default_factory=dict)  # family names
    pattern: str | None = None  # which structural reader: jamba, qwen3_next, nemotron_h ...
    mixer: str | None = None  # the recurrent mixer of non-attention layers
    lfm2_ff_adjust: bool = False  # LFM2: block_auto_adjust_ff_dim applies to the FFN width
    free_form_keys: frozenset[str] = frozenset()  # keys this family uses with non-int values
    # The rotary cos/sin tables a serving engine builds (ModelSpec.rope): "read" from the
    # config's rope_parameters / rope_scaling, partial_rotary_factor / rotary_pct /
    # rotary_dim; "none": no rotary embedding (ALiBi, learned positions, NoPE attention);
    # "local_global": Gemma-3, whose sliding layers add a default-rope table with
    # rope_local_base_freq (vLLM models/gemma3.py: a second get_rope key); "unknown": a
    # layout kvplan does not read (the term is left out, with an assumption).
    rope: str = "read"
    rope_float32: bool = False  # vLLM builds the table in fp32 (models/gpt_oss.py get_rope)


_PLAIN: dict[str, Any] = dict(plain_mlp=True, head_dim_from_hidden=True)
_LN: dict[str, Any] = dict(layernorm=True)
_GEMMA3: dict[str, Any] = dict(
    tied_by_default=True,
    norms_per_layer=4,
    qk_norm="per_head",
    pattern="gemma3",
    rope="local_global",
)
_QWEN_MOE: dict[str, Any] = dict(
    shared_expert_gate=True, moe_step_from_one=True, pattern="qwen_window"
)
_GDN_TYPES: dict[str, LayerTypeName] = {"linear_attention": ("gated_deltanet", None)}

TRAITS: dict[str, Traits] = {
    # transformers models/gpt2: Conv1D c_attn/c_proj with biases, wpe position table, tied.
    "gpt2": Traits(
        **_PLAIN,
        **_LN,
        tied_by_default=True,
        fixed_biases=(True, True, True),
        learned_positions=True,
        defaults={"n_positions": 1024, "vocab_size": 50257},
    ),
    "gpt_neox": Traits(**_PLAIN, **_LN, fixed_biases=(True, True, True), pattern="neox"),
    "gptj": Traits(
        **_PLAIN, **_LN, norms_per_layer=1, fixed_biases=(False, False, True), parallel=True
    ),
    "codegen": Traits(**_PLAIN, **_LN, fixed_biases=(False, False, True)),
    "bloom": Traits(
        **_PLAIN,
        **_LN,
        tied_by_default=True,
        fixed_biases=(True, True, True),
        embedding_norm=True,
        rope="none",  # ALiBi
    ),
    "falcon": Traits(**_PLAIN, **_LN, tied_by_default=True, pattern="falcon"),
    "RefinedWeb": Traits(**_PLAIN, **_LN, tied_by_default=True, pattern="falcon"),
    "RefinedWebModel": Traits(**_PLAIN, **_LN, tied_by_default=True, pattern="falcon"),
    "mpt": Traits(**_PLAIN, tied_by_default=True, pattern="mpt", rope="none"),  # ALiBi
    "starcoder2": Traits(**_PLAIN, **_LN, tied_by_default=True, pattern="starcoder2"),
    "gpt_bigcode": Traits(
        **_PLAIN,
        **_LN,
        tied_by_default=True,
        fixed_biases=(True, True, True),
        learned_positions=True,
        pattern="bigcode",
    ),
    "opt": Traits(
        **_PLAIN,
        **_LN,
        tied_by_default=True,
        fixed_biases=(True, True, True),
        learned_positions=True,
    ),
    "phi": Traits(
        **_PLAIN, **_LN, norms_per_layer=1, fixed_biases=(True, True, True), parallel=True
    ),
    "phi-msft": Traits(
        **_PLAIN, **_LN, norms_per_layer=1, fixed_biases=(True, True, True), parallel=True
    ),
    "gpt_neo": Traits(**_PLAIN, **_LN, learned_positions=True),
    "persimmon": Traits(**_PLAIN, **_LN),
    "phi3": Traits(head_dim_from_hidden=True),
    "phimoe": Traits(head_dim_from_hidden=True),
    "stablelm": Traits(head_dim_from_hidden=True, **_LN),
    "gemma": Traits(tied_by_default=True),
    "gemma2": Traits(
        tied_by_default=True, norms_per_layer=4, defaults={"sliding_window": 4096}, pattern="gemma2"
    ),
    "gemma3": Traits(**_GEMMA3),
    # transformers models/gemma3 configuration_gemma3.py Gemma3TextConfig (5.24: lines 73-93):
    # the published 4B/12B configs leave the head counts to these class defaults.
    "gemma3_text": Traits(
        **_GEMMA3,
        defaults={
            "num_attention_heads": 8,
            "num_key_value_heads": 4,
            "vocab_size": 262208,
            "max_position_embeddings": 131072,
            "sliding_window": 4096,
            "sliding_window_pattern": 6,
            "head_dim": 256,
            "rms_norm_eps": 1e-6,
        },
    ),
    # transformers models/gemma4: per-layer-type geometry (global_head_dim,
    # num_global_key_value_heads, attention_k_eq_v), 4 norms per layer, tied, MoE beside MLP.
    "gemma4_text": Traits(
        tied_by_default=True,
        norms_per_layer=4,
        qk_norm="per_head",
        pattern="gemma4",
        rope="unknown",  # "proportional" rope on global layers of global_head_dim: not read
    ),
    "cohere": Traits(tied_by_default=True, norms_per_layer=1, parallel=True),
    "cohere2": Traits(tied_by_default=True, norms_per_layer=1, parallel=True, pattern="gemma3"),
    "olmo2": Traits(qk_norm="full_width"),
    "olmo3": Traits(qk_norm="full_width"),
    "qwen2": Traits(fixed_biases=(True, False, False), pattern="qwen_window"),
    "qwen2_vl": Traits(fixed_biases=(True, False, False)),
    "qwen2_5_vl": Traits(fixed_biases=(True, False, False)),
    "qwen2_moe": Traits(fixed_biases=(True, False, False), **_QWEN_MOE),
    "qwen3": Traits(qk_norm="per_head", defaults={"head_dim": 128}, pattern="qwen_window"),
    "qwen3_moe": Traits(qk_norm="per_head", moe_step_from_one=True, pattern="qwen_window"),
    "qwen3_vl_text": Traits(qk_norm="per_head"),
    "qwen3_vl_moe_text": Traits(qk_norm="per_head", moe_step_from_one=True),
    # transformers models/qwen3_next: Gated DeltaNet + gated full attention every 4th layer.
    "qwen3_next": Traits(
        qk_norm="per_head",
        shared_expert_gate=True,
        moe_step_from_one=True,
        layer_types=_GDN_TYPES,
        pattern="qwen3_next",
        mixer="gated_deltanet",
        defaults={"attn_output_gate": True},
    ),
    # transformers models/qwen3_5 (+_moe): same mixers as Qwen3-Next, layer_types spelled out.
    "qwen3_5_text": Traits(
        qk_norm="per_head",
        layer_types=_GDN_TYPES,
        pattern="qwen3_next",
        mixer="gated_deltanet",
        defaults={"attn_output_gate": True},
    ),
    "qwen3_5_moe_text": Traits(
        qk_norm="per_head",
        shared_expert_gate=True,
        moe_step_from_one=True,
        layer_types=_GDN_TYPES,
        pattern="qwen3_next",
        mixer="gated_deltanet",
        defaults={"attn_output_gate": True},
    ),
    "gpt_oss": Traits(
        mlp_bias_default=True, router_bias=True, attention_sinks=True, rope_float32=True
    ),
    "jamba": Traits(pattern="jamba", mixer="mamba", rope="none"),  # no positional encoding
    # transformers models/nemotron_h: one mixer per block (M Mamba-2, E MoE, * attention,
    # - MLP), relu2 MLPs, one norm per block, SSM cache float32 by default.
    "nemotron_h": Traits(
        plain_mlp=True,
        norms_per_layer=1,
        router_bias=True,
        pattern="nemotron_h",
        mixer="mamba2",
        rope="none",  # NoPE attention layers (vLLM models/nemotron_h.py: no get_rope)
        defaults={"mamba_ssm_cache_dtype": "float32", "n_shared_experts": 1},
        layer_types={
            "linear_attention": ("mamba2", "none"),
            "mamba": ("mamba2", "none"),
            "moe": ("no_op", "moe"),
            "mlp": ("no_op", "dense"),
            "full_attention": ("full", "none"),
            "attention": ("full", "none"),
        },
    ),
    # DeciLM / Nemotron-NAS (remote code modeling_decilm.py): per-block block_configs.
    "nemotron-nas": Traits(pattern="block_configs"),
    "deci": Traits(pattern="block_configs"),
    # transformers models/lfm2: gated short-conv blocks and GQA blocks, tied, QK layernorm.
    "lfm2": Traits(
        tied_by_default=True,
        qk_norm="per_head",
        pattern="lfm2",
        lfm2_ff_adjust=True,
        mixer="short_conv",
        layer_types={"conv": ("short_conv", None)},
    ),
    "lfm2_moe": Traits(
        tied_by_default=True,
        qk_norm="per_head",
        pattern="lfm2",
        mixer="short_conv",
        layer_types={"conv": ("short_conv", None)},
    ),
    # transformers models/llama4: chunked local layers, always one shared expert, dense
    # layers of width intermediate_size_mlp.
    "llama4_text": Traits(
        moe_step_from_one=True,
        always_shared_experts=1,
        dense_width_key="intermediate_size_mlp",
        pattern="llama4",
        defaults={"attention_chunk_size": 8192},
    ),
    "llama4": Traits(
        moe_step_from_one=True,
        always_shared_experts=1,
        dense_width_key="intermediate_size_mlp",
        pattern="llama4",
    ),
    # transformers models/exaone4: layer_types, per-head Q/K norms; sliding_window_pattern is a
    # string such as 'LLLG' (informational: layer_types says the same).
    "exaone4": Traits(qk_norm="per_head", free_form_keys=frozenset({"sliding_window_pattern"})),
    # transformers models/granitemoehybrid: Mamba-2 and attention layers (layer_types), each
    # with a gated shared MLP of shared_intermediate_size; experts only when num_local_experts.
    "granitemoehybrid": Traits(
        layer_types={"mamba": ("mamba2", None), "attention": ("full", None)},
        mixer="mamba2",
        dense_width_key="shared_intermediate_size",
    ),
    # transformers models/ernie4_5_moe: e_score_correction_bias on the router.
    "ernie4_5_moe": Traits(router_bias=True),
    # transformers models/smollm3 configuration_smollm3.py: tie_word_embeddings: bool = True.
    "smollm3": Traits(tied_by_default=True),
    # transformers models/mllama: cross-attention layers listed in cross_attention_layers.
    "mllama_text_model": Traits(pattern="mllama"),
    "mllama": Traits(pattern="mllama"),
    # DeepSeek-V3.2 / GLM-5: MLA + DSA lightning indexer.
    "deepseek_v32": Traits(pattern="dsa"),
    "glm_moe_dsa": Traits(pattern="dsa"),
    "mimo_v2_flash": Traits(pattern="mimo_v2", rope="unknown"),  # swa_rope_theta: 2 tables
    # transformers models/deepseek_v4: per layer sliding_attention / compressed_sparse_attention
    # / heavily_compressed_attention (legacy compress_ratios 0 / 4 / 128), hyper-connections.
    "deepseek_v4": Traits(
        pattern="deepseek_v4",
        rope="unknown",  # compress_rope_theta: a second table for compressed entries
        layer_types={
            "sliding_attention": ("compressed", None),
            "compressed_sparse_attention": ("compressed", None),
            "heavily_compressed_attention": ("compressed", None),
        },
    ),
    "minimax_m2": Traits(pattern="minimax"),
    # MiniMax-M3 (remote code): the first_k_dense_replace dense layers use dense_intermediate_size;
    # `sparse_attention_config` (MiniMax sparse attention, "msa"): the layers it marks sparse
    # run a lightning indexer and cache one index key per token (hf_config._add_geometry).
    "minimax_m3": Traits(pattern="minimax_msa", dense_width_key="dense_intermediate_size"),
    # The published MiniMax-M3 config.json wraps the same text model as minimax_m3_vl (text_config
    # without its own model_type); its first 3 layers' MLPs are dense_intermediate_size wide
    # (checkpoint tensors layers.0-2.mlp.*_proj [12288, 6144], search-index file id 62774369633).
    # transformers 5.24 models/minimax_m3_vl: MiniMaxM3VLTextConfig maps sparse_attention_config
    # onto layer_types "minimax_m3_sparse", whose MiniMaxM3VLSparseCacheLayer keeps idx_keys.
    "minimax_m3_vl": Traits(pattern="minimax_msa", dense_width_key="dense_intermediate_size"),
}
DEFAULT_TRAITS = Traits()

# Defaults a multimodal wrapper's `text_config` inherits. A wrapper config (LlavaConfig,
# LlavaNextConfig) builds its text model as CONFIG_MAPPING[text_config["model_type"]]
# (**text_config), so a key the nested dict leaves out takes the text config class's default;
# llava-hf/llava-1.5-7b-hf's text_config names only the vocabulary, positions and norm epsilon.
# Scoped to text_config: a top-level config of the same family must still spell its geometry.
# transformers models/llama/configuration_llama.py LlamaConfig.__init__ (4.36-5.x): the
# Llama-2-7B shape; num_key_value_heads None means num_attention_heads (no GQA).
WRAPPED_TEXT_DEFAULTS: dict[str, Mapping[str, Any]] = {
    "llama": {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 2048,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
    },
}


def traits_for(family: str) -> Traits:
    return TRAITS.get(family, DEFAULT_TRAITS)


# Keys that announce an architecture kvplan does not model: reading such a config would
# give a confident wrong number, so the reader stops and names the key.
UNSUPPORTED_KEYS: dict[str, str] = {
    "linear_attn_config": (
        "Kimi-Linear style KDA / linear-attention layers are not modelled by kvplan"
    ),
    "altup_num_inputs": "Gemma-3n AltUp / per-layer embeddings are not modelled by kvplan",
}
# Keys that change the cache or the weights when non-zero (zero or absent is the plain model).
UNSUPPORTED_NONZERO_KEYS: dict[str, str] = {
    "num_kv_shared_layers": "layers that reuse another layer's KV cache are not modelled by kvplan",
    "hidden_size_per_layer_input": "per-layer input embeddings are not modelled by kvplan",
}
# Keys that only a recurrent mixer has: in a family whose traits name no recurrent mixer
# (e.g. Falcon-H1's parallel attention + Mamba layers) they mean a layer kind kvplan would
# otherwise miss silently.
RECURRENT_HINT_KEYS = (
    "mamba_d_state",
    "mamba_num_heads",
    "mamba_n_heads",
    "mamba_d_ssm",
    "mamba_head_dim",
    "ssm_state_size",
    "linear_num_value_heads",
    "conv_L_cache",
)

# Layer-structure keys and the structural readers (Traits.pattern) that read them. The key in a
# family whose reader ignores it would be a layer description kvplan silently drops: an error.
STRUCTURE_KEYS: dict[str, frozenset[str]] = {
    "hybrid_override_pattern": frozenset({"nemotron_h"}),
    "layers_block_type": frozenset({"nemotron_h"}),
    "block_configs": frozenset({"block_configs"}),
    "cross_attention_layers": frozenset({"mllama"}),
    "hybrid_layer_pattern": frozenset({"mimo_v2"}),
    "swa_num_key_value_heads": frozenset({"mimo_v2"}),
    "swa_head_dim": frozenset({"mimo_v2"}),
    "full_attn_idxs": frozenset({"lfm2"}),
    "global_head_dim": frozenset({"gemma4"}),
    "num_global_key_value_heads": frozenset({"gemma4"}),
    "index_head_dim": frozenset({"dsa", "deepseek_v4"}),
    "compress_ratios": frozenset({"deepseek_v4"}),
    "hc_mult": frozenset({"deepseek_v4"}),
    "o_groups": frozenset({"deepseek_v4"}),
    "indexer_types": frozenset({"dsa"}),
    # GLM-5.2 spells the indexer layers again as a period; the dsa reader reads indexer_types
    # and refuses index_topk_freq without it (hf_config._indexer_flags)
    "index_topk_freq": frozenset({"dsa"}),
    "index_skip_topk_offset": frozenset({"dsa"}),
    "index_topk_pattern": frozenset({"dsa"}),
    "index_share_for_mtp_iteration": frozenset({"dsa"}),
    "indexer_rope_interleave": frozenset({"dsa"}),
    "index_topk": frozenset({"dsa", "deepseek_v4"}),
    "index_n_heads": frozenset({"dsa", "deepseek_v4"}),
    "compress_rope_theta": frozenset({"deepseek_v4"}),
    # MiniMax-M3 sparse attention: per-layer index keys (MiniMaxM3VLSparseCacheLayer.idx_keys)
    "sparse_attention_config": frozenset({"minimax_msa"}),
}

# Key NAMES that announce an extra per-token cache: a sparse-attention indexer keeps index keys
# (DSA `index_head_dim`, MiniMax-M3 `sparse_attention_config`), compressed attention keeps
# compressed entries (DeepSeek-V4 `compress_ratios`). Such a key in a family whose reader does
# not read it (STRUCTURE_KEYS) is refused, naming it, unless CACHE_NEUTRAL_KEYS says why it
# leaves the cache alone: a new sparse / compressed attention variant fails closed instead of
# being sized as plain attention (MiniMax-M3's index keys were once missed that way:
# 14,592 of 137,472 B/token).
CACHE_HINT_PATTERN = (
    r"sparse_att|sparse_conf|sparse_index|indexer|(^|_)index_(head|dim|n_heads)|compress"
    r"|(^|_)nsa_|(^|_)dsa_"
)
# The sub-keys of MiniMax-M3's `sparse_attention_config` (transformers MiniMaxM3VLTextConfig,
# vLLM / SGLang minimax_m3) and what each means for the cache; any other is refused.
MSA_SUBKEYS: dict[str, str] = {
    "use_sparse_attention": "on/off (read)",
    "sparse_attention_freq": "1 = the layer runs the indexer and caches its keys (read)",
    "sparse_index_dim": "elements of the cached index key (read)",
    "sparse_num_index_heads": "index query heads: weights only (read)",
    "sparse_disable_index_value": "1 = key-only indexer; 0 also caches index values (read)",
    "sparse_topk_blocks": "selection: compute only",
    "sparse_block_size": "selection block: compute only",
    "sparse_score_type": "selection: compute only",
    "sparse_init_block": "selection: compute only",
    "sparse_local_block": "selection: compute only",
}
CACHE_NEUTRAL_KEYS: dict[str, str] = {
    "img_token_compression_config": "merges vision patches (image tokens), not the text cache",
    "for_llm_compressor": "a quantization-tooling flag (Llama-4)",
}
