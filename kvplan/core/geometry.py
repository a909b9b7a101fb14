"""One normalized, immutable description of a model's attention stack and weights.

Every reader (HF config.json, Meta params.json, the catalog, the Hub) produces a
`ModelSpec`; every calculation takes one. The description is per layer because real
models mix layer kinds: sliding-window and global layers (Gemma 2/3, gpt-oss, Mistral
v0.1), MLA latents (DeepSeek-V2/V3), and layers with no KV cache at all (Mamba / linear
attention in Jamba, Qwen3-Next).
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from kvplan.core.frozen import FieldError, Frozen, enum_value, field

# Defined beside the storage formats it refers to; re-exported for the readers.
from kvplan.core.quant_groups import Quantization as Quantization
from kvplan.core.vision import VisionEncoder


class LayerKind(str, Enum):
    """How one layer's cache grows with context (the coarse kind every planner reads)."""

    FULL = "full"  # K and V for every token: G*(d_k + d_v) per token
    SLIDING = "sliding"  # like FULL, but only the last `window` tokens
    CHUNKED = "chunked"  # local attention within fixed chunks: at most `window` tokens
    MLA = "mla"  # one compressed latent (kv_lora_rank + rope dims) shared by K and V
    NONE = "none"  # no per-token cache (Mamba, linear attention, no-op, cross-attention)


class Mixer(str, Enum):
    """What mixes tokens in one layer: the fine kind. Each is defined once, with its
    per-token cache, fixed state and parameter formulas, in `kvplan.core.mixers`."""

    ATTENTION = "attention"  # softmax self-attention (full / sliding / chunked by LayerKind)
    MLA = "mla"  # multi-head latent attention (DeepSeek-V2/V3, Kimi)
    MLA_INDEXER = "mla_indexer"  # MLA + DSA lightning-indexer keys (DeepSeek-V3.2, GLM-5)
    CROSS_ATTENTION = "cross_attention"  # attends to a fixed encoder output (Llama-3.2-Vision)
    MAMBA = "mamba"  # Mamba-1 selective SSM (Jamba)
    MAMBA2 = "mamba2"  # Mamba-2 SSD (Nemotron-H, Falcon-H1, Granite-4)
    GATED_DELTANET = "gated_deltanet"  # Gated DeltaNet linear attention (Qwen3-Next, Qwen3.5)
    SHORT_CONV = "short_conv"  # gated short convolution (LFM2)
    COMPRESSED = "compressed"  # DeepSeek-V4: shared-KV MQA window + compressed KV entries
    LINEAR = "linear"  # attention replaced by one hidden x hidden linear (DeciLM)
    NOOP = "no_op"  # no mixer at all (Nemotron-H MLP/MoE-only blocks, DeciLM no_op)


class IndexerKind(str, Enum):
    """Whose lightning-indexer keys a model caches (each engine stores each its own way)."""

    DSA = "dsa"  # DeepSeek sparse attention: MLA + indexer (DeepSeek-V3.2, GLM-5)
    MSA = "msa"  # MiniMax sparse attention: GQA attention + indexer (MiniMax-M3)


# mixers whose layers may carry indexer keys (Layer.index_head_dim)
INDEXED_MIXERS = frozenset({Mixer.MLA_INDEXER, Mixer.ATTENTION, Mixer.COMPRESSED})
RECURRENT_MIXERS = frozenset({Mixer.MAMBA, Mixer.MAMBA2, Mixer.GATED_DELTANET, Mixer.SHORT_CONV})
# The mixer a layer has when a reader states only its cache kind (the classic zoo).
DEFAULT_MIXER = {
    LayerKind.FULL: Mixer.ATTENTION,
    LayerKind.SLIDING: Mixer.ATTENTION,
    LayerKind.CHUNKED: Mixer.ATTENTION,
    LayerKind.MLA: Mixer.MLA,
    LayerKind.NONE: Mixer.MAMBA,
}
MIXER_KINDS: dict[Mixer, frozenset[LayerKind]] = {
    Mixer.ATTENTION: frozenset({LayerKind.FULL, LayerKind.SLIDING, LayerKind.CHUNKED}),
    Mixer.MLA: frozenset({LayerKind.MLA}),
    Mixer.MLA_INDEXER: frozenset({LayerKind.MLA}),
    # ratio 0: the window only (SLIDING); ratio r: + one entry per r tokens, growing (FULL)
    Mixer.COMPRESSED: frozenset({LayerKind.SLIDING, LayerKind.FULL}),
}


class Ffn(str, Enum):
    """The feed-forward block of one layer."""

    DENSE = "dense"
    MOE = "moe"
    NONE = "none"


class AttentionLayout(str, Enum):
    MHA = "mha"
    GQA = "gqa"
    MQA = "mqa"
    MLA = "mla"
    HYBRID = "hybrid"


class StatePart(Frozen):
    """One fixed-size tensor a layer keeps per sequence (independent of context).

    `dtype` None: the model's float dtype; "kv": whatever dtype the KV cache uses."""

    name: str
    elements: int = field(ge=0)
    dtype: str | None = None


class RecurrentDims(Frozen):
    """Dimensions of a recurrent / convolutional mixer (only the ones its kind uses)."""

    d_inner: int = field(default=0, ge=0)  # Mamba-1 / Mamba-2 inner width
    d_state: int = field(default=0, ge=0)
    d_conv: int = field(default=0, ge=0)  # conv kernel width (LFM2: L_cache)
    dt_rank: int = field(default=0, ge=0)  # Mamba-1
    num_heads: int = field(default=0, ge=0)  # Mamba-2 heads / GDN value heads
    head_dim: int = field(default=0, ge=0)  # Mamba-2 head dim / GDN value head dim
    n_groups: int = field(default=0, ge=0)  # Mamba-2 B/C groups
    key_heads: int = field(default=0, ge=0)  # GDN
    key_head_dim: int = field(default=0, ge=0)  # GDN
    conv_bias: bool = False
    proj_bias: bool = False
    inner_norms: bool = False  # Mamba-1 dt/B/C layernorms (Jamba)
    ssm_dtype: str | None = None  # recurrent state dtype when the config names one


class Layer(Frozen):
    """One decoder layer: its mixer (with cache kind and geometry) and its feed-forward.

    Attention geometry defaults to the model-wide values (`ModelSpec.kv_heads`, `head_dim`,
    `v_head_dim`); a layer that differs (Gemma-4 global layers, MiMo-V2 sliding layers,
    DeciLM blocks) states its own."""

    kind: LayerKind
    window: int | None = field(default=None, gt=0)
    mixer: Mixer | None = None  # None: DEFAULT_MIXER[kind]
    moe: bool = False
    ffn: Ffn | None = None  # None: MOE if moe else DENSE
    ffn_width: int | None = field(default=None, gt=0)  # dense width when it differs per layer
    query_heads: int | None = field(default=None, gt=0)
    kv_heads: int | None = field(default=None, gt=0)
    head_dim: int | None = field(default=None, gt=0)
    v_head_dim: int | None = field(default=None, gt=0)
    k_eq_v: bool = False  # no V projection: V = K (Gemma-4 attention_k_eq_v)
    # lightning-indexer key per token: DSA (MLA + indexer) or MiniMax-M3 sparse attention
    # (an attention layer that also caches one index key)
    index_head_dim: int = field(default=0, ge=0)
    index_heads: int = field(default=0, ge=0)
    encoder_tokens: int = field(default=0, ge=0)  # cross-attention: encoder K/V per sequence
    compress_ratio: int = field(default=0, ge=0)  # DeepSeek-V4: one KV entry per r tokens
    local_window: int | None = field(default=None, gt=0)  # its sliding K/V window (FULL kind)
    norms: int | None = field(default=None, ge=0)  # None: ModelSpec.norms_per_layer
    recurrent: RecurrentDims | None = None
    state_elements_override: int | None = field(default=None, ge=0)  # legacy readers only
    mixer_params: int = field(default=0, ge=0)  # legacy: params of an opaque mixer

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "state_elements" in data:  # the pre-registry spelling
            data["state_elements_override"] = data.pop("state_elements")
        kind = data.get("kind")
        if kind is not None:
            data["kind"] = kind = enum_value(LayerKind, kind, "kind")
        mixer = data.get("mixer")
        if mixer is None:
            if kind is not None:
                data["mixer"] = DEFAULT_MIXER[kind]
        else:
            data["mixer"] = enum_value(Mixer, mixer, "mixer")
        ffn = data.get("ffn")
        if ffn is None:
            data["ffn"] = Ffn.MOE if data.get("moe") else Ffn.DENSE
        else:
            data["ffn"] = ffn = enum_value(Ffn, ffn, "ffn")
            data["moe"] = ffn is Ffn.MOE
        return data

    def _check(self) -> None:
        windowed = self.kind in (LayerKind.SLIDING, LayerKind.CHUNKED)
        if windowed and self.window is None:
            raise FieldError((), f"{self.kind.value} layer needs a window")
        if not windowed and self.window is not None:
            raise FieldError((), f"{self.kind.value} layer cannot have a window")
        assert self.mixer is not None
        allowed = MIXER_KINDS.get(self.mixer, frozenset({LayerKind.NONE}))
        if self.kind not in allowed:
            raise FieldError(
                (), f"a {self.mixer.value} layer cannot have cache kind {self.kind.value}"
            )
        if (
            self.mixer in RECURRENT_MIXERS
            and self.recurrent is None
            and (self.state_elements_override is None)
        ):
            raise FieldError((), f"a {self.mixer.value} layer needs its recurrent dimensions")
        if self.index_head_dim and self.mixer not in INDEXED_MIXERS:
            raise FieldError(
                (),
                "only an MLA + indexer, a sparse attention or a compressed layer has indexer keys",
            )
        if self.mixer is Mixer.COMPRESSED and (self.kind is LayerKind.FULL) != bool(
            self.compress_ratio
        ):
            raise FieldError((), "a compressed layer grows (full) exactly when it has a ratio")

    @property
    def mixer_kind(self) -> Mixer:
        assert self.mixer is not None
        return self.mixer

    @property
    def ffn_kind(self) -> Ffn:
        assert self.ffn is not None
        return self.ffn

    @property
    def is_recurrent(self) -> bool:
        """A Mamba / linear-attention / short-conv mixer: a fixed state per sequence that
        engines page like KV (vLLM's hybrid manager, SGLang's Mamba pool). Cross-attention
        and MLP-only layers also cache nothing per token, but are not recurrent."""
        return self.mixer in RECURRENT_MIXERS

    @property
    def is_attention(self) -> bool:
        """Self-attention with a per-token K/V cache (not MLA)."""
        return self.mixer is Mixer.ATTENTION

    @property
    def state_elements(self) -> int:
        """Fixed cache elements per sequence (all state parts together)."""
        from kvplan.core.mixers import state_parts  # the registry lives beside the formulas

        return sum(part.elements for part in state_parts(self))

    def label(self) -> str:
        """'full', 'sliding(4096)', 'mamba2', 'mla_indexer', 'cross_attention', 'moe_only'
        (no mixer, MoE only), 'mlp_only', 'no_op' (nothing at all)."""
        assert self.mixer is not None
        if self.mixer is Mixer.ATTENTION:
            base = self.kind.value if self.window is None else f"{self.kind.value}({self.window})"
            return f"{base}+indexer" if self.index_head_dim else base
        if self.mixer is Mixer.COMPRESSED:
            window = self.window or self.local_window
            if not self.compress_ratio:
                return f"mqa_sliding({window})"
            kind = "csa" if self.index_head_dim else "hca"
            return f"{kind}_1/{self.compress_ratio}+sliding({window})"
        if self.mixer is Mixer.NOOP and self.ffn is not Ffn.NONE:
            return "moe_only" if self.ffn is Ffn.MOE else "mlp_only"
        return str(self.mixer.value)


class MlaDims(Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): what is cached is the latent."""

    kv_lora_rank: int = field(gt=0)
    qk_rope_head_dim: int = field(ge=0)
    qk_nope_head_dim: int = field(gt=0)
    v_head_dim: int = field(gt=0)
    q_lora_rank: int | None = field(default=None, gt=0)

    @property
    def latent_dim(self) -> int:
        """Elements cached per token per layer: one latent + the decoupled RoPE key."""
        return self.kv_lora_rank + self.qk_rope_head_dim


class RopeCache(Frozen):
    """The rotary-embedding cos/sin tables an engine builds for the model at load time.

    vLLM's `RotaryEmbedding` registers a `[positions, rotary_dim]` buffer (the cos and sin
    halves side by side: rotary_dim elements per position) and `get_rope` memoizes one per
    distinct set of rope arguments, shared by every layer that asks for it
    (vllm/model_executor/layers/rotary_embedding/__init__.py `_ROPE_DICT`, base.py
    `_compute_cos_sin_cache`). Each GPU holds every table whole (not split by TP or PP).
    `count` tables of this shape; `float32`: the model builds them in fp32 whatever the
    model dtype (gpt-oss passes dtype=torch.float32 to get_rope). Bytes per GPU:
    count x positions x rotary_dim x dtype bytes (kvplan.core.capacity.rope_cache_bytes).
    """

    positions: int = field(gt=0)
    rotary_dim: int = field(gt=0)
    count: int = field(default=1, gt=0)
    float32: bool = False

    def elements(self) -> int:
        return self.count * self.positions * self.rotary_dim


class MoeDims(Frozen):
    num_experts: int = field(gt=0)
    experts_per_token: int = field(gt=0)
    expert_intermediate: int = field(gt=0)
    shared_experts: int = field(default=0, ge=0)
    shared_intermediate: int = field(default=0, ge=0)  # per shared expert
    shared_expert_gate: bool = False  # Qwen2-MoE style sigmoid gate on the shared expert
    router_bias: bool = False
    latent_size: int | None = field(default=None, gt=0)  # LatentMoE: experts work in this width
    dense_width: int = field(default=0, ge=0)  # a dense MLP beside the experts (0: none)

    def _check(self) -> None:
        if self.experts_per_token > self.num_experts:
            raise FieldError((), "experts per token exceeds the number of experts")


class CompressedAttentionDims(Frozen):
    """DeepSeek-V4 attention projections (transformers DeepseekV4Attention): low-rank query
    (q_a: hidden x q_lora, q_b: q_lora x H*d), one shared K=V projection hidden x d, grouped
    low-rank output (o_a: H*d/groups x groups*o_lora, o_b: groups*o_lora x hidden), sinks."""

    head_dim: int = field(gt=0)
    q_lora_rank: int = field(gt=0)
    o_lora_rank: int = field(gt=0)
    o_groups: int = field(gt=0)
    index_heads: int = field(default=0, ge=0)
    index_head_dim: int = field(default=0, ge=0)


class ModelSpec(Frozen):
    """The normalized model. Head counts are global; cache kinds are per layer."""

    name: str
    family: str  # the config's model_type (or 'llama' for Meta params.json)
    layers: tuple[Layer, ...] = field(min_length=1)
    hidden_size: int = field(gt=0)
    query_heads: int = field(gt=0)
    kv_heads: int = field(gt=0)
    head_dim: int = field(gt=0)  # Q/K head size
    v_head_dim: int = field(gt=0)  # V head size (differs from head_dim in some models)
    mla: MlaDims | None = None
    compressed: CompressedAttentionDims | None = None  # DeepSeek-V4 attention
    hyper_connections: int = field(default=0, ge=0)  # hc_mult: residual streams per layer
    intermediate_size: int = field(default=0, ge=0)  # dense MLP width
    gated_mlp: bool = True  # SwiGLU/GeGLU: 3 matrices; plain GELU MLP: 2
    moe: MoeDims | None = None
    vocab_size: int = field(gt=0)
    tie_embeddings: bool = False
    learned_positions: int = field(default=0, ge=0)  # GPT-2/OPT style position table
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    norm_bias: bool = False  # LayerNorm (weight+bias) vs RMSNorm (weight only)
    norms_per_layer: int = field(default=2, ge=0)
    qk_norm: bool = False  # per-head RMSNorm on Q and K (Qwen3, OLMo 2 style)
    qk_norm_full_width: bool = False  # OLMo 2: the norm spans all heads' Q and K, not one head
    attention_sinks: bool = False  # gpt-oss: one learned sink logit per query head
    attn_output_gate: bool = False  # Qwen3.5 / Qwen3-Next: q_proj also emits a sigmoid gate
    embedding_norm: bool = False  # BLOOM: a LayerNorm right after the word embeddings
    parallel_attn_mlp: bool = False  # Falcon/NeoX/Cohere parallel blocks (informational)
    max_position_embeddings: int | None = field(default=None, gt=0)
    checkpoint_dtype: str = "bf16"
    quantization: Quantization | None = None
    vision: VisionEncoder | None = None  # multimodal checkpoints: the image encoder (weights)
    # DeepSeek-style multi-token-prediction modules the checkpoint ships (num_nextn_predict_
    # layers): loaded only as a speculative-decoding draft (core/params.mtp_weight_bytes)
    mtp_layers: int = field(default=0, ge=0)
    # True when those modules reuse the model's embedding and LM head instead of shipping
    # their own (Qwen3-Next / Qwen3.5 `mtp_num_hidden_layers`: the checkpoint's mtp.* tensors
    # hold no embedding or head, and vLLM's drafter shares the target's)
    mtp_shares_embeddings: bool = field(default=False, exclude=True)
    # The rotary cos/sin tables the serving engine builds at load (counted with the
    # weights where the engine's rule says so). (): no rotary embedding (ALiBi, learned
    # positions, NoPE); None: the reader did not recognise the rope layout, so the term
    # is not counted and an assumption says so.
    rope: tuple[RopeCache, ...] | None = field(default=(), exclude=True)
    # How the serving engine stores DSA indexer keys (kvplan.core.kv_formats
    # INDEXER_FORMATS); None: in the KV dtype, as transformers' cache. Set from the
    # engine's rule by `Deployment`, not read from a config.
    indexer_format: str | None = field(default=None, exclude=True)
    # A speculative-decoding draft head's architecture (EAGLE, EAGLE-3, Medusa: read from
    # `architectures` / `draft_vocab_size`): its KV layers are ordinary attention, but its
    # weights are not what its config describes (it reuses the target's embedding or LM
    # head, EAGLE-3's layer takes 2 x hidden inputs), so they are never estimated.
    draft_head: str | None = field(default=None, exclude=True)
    assumptions: tuple[str, ...] = ()
    source: str = ""

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        for name in ("layers", "assumptions", "rope"):  # a reader's list, stored as the tuple it is
            if isinstance(data.get(name), list):
                data[name] = tuple(data[name])
        return data

    def _check(self) -> None:
        if self.kv_heads > self.query_heads:
            raise FieldError(
                (), f"KV heads ({self.kv_heads}) exceed query heads ({self.query_heads})"
            )
        if self.query_heads % self.kv_heads:
            raise FieldError(
                (), f"KV heads ({self.kv_heads}) do not divide query heads ({self.query_heads})"
            )
        for i, layer in enumerate(self.layers):
            h = layer.query_heads or self.query_heads
            g = layer.kv_heads or self.kv_heads
            own = layer.kv_heads is not None or layer.query_heads is not None
            if own and (g > h or h % g):
                raise FieldError((), f"layer {i}: KV heads ({g}) do not divide query heads ({h})")
        mla_layers = any(layer.kind is LayerKind.MLA for layer in self.layers)
        if mla_layers and self.mla is None:
            raise FieldError((), "MLA layers need MLA dimensions")
        if any(x.mixer is Mixer.COMPRESSED for x in self.layers) and self.compressed is None:
            raise FieldError((), "compressed layers need their attention dimensions")
        if any(layer.moe for layer in self.layers) and self.moe is None:
            raise FieldError((), "MoE layers need MoE dimensions")

    # ---- derived facts -------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def group_size(self) -> int:
        """Query heads sharing one KV head (H / G)."""
        return self.query_heads // self.kv_heads

    def count(self, kind: LayerKind) -> int:
        return sum(1 for layer in self.layers if layer.kind is kind)

    @property
    def indexer_kind(self) -> IndexerKind | None:
        """Whose lightning-indexer keys the cache holds: DSA (an MLA + indexer layer:
        DeepSeek-V3.2, GLM-5) or MSA (MiniMax-M3 sparse attention: an attention layer with
        an index key). Engines store the two differently (EngineRules.indexer_format_for)."""
        for layer in self.layers:
            if layer.mixer is Mixer.MLA_INDEXER:
                return IndexerKind.DSA
            if layer.mixer is Mixer.ATTENTION and layer.index_head_dim:
                return IndexerKind.MSA
        return None

    @property
    def has_indexer(self) -> bool:
        """Some layer caches lightning-indexer keys kept in an engine format of their own."""
        return self.indexer_kind is not None

    @property
    def layout(self) -> AttentionLayout:
        if any(layer.mixer in RECURRENT_MIXERS for layer in self.layers):
            return AttentionLayout.HYBRID
        if any(layer.kind is LayerKind.MLA for layer in self.layers):
            return AttentionLayout.MLA
        if self.kv_heads == self.query_heads:
            return AttentionLayout.MHA
        if self.kv_heads == 1:
            return AttentionLayout.MQA
        return AttentionLayout.GQA

    def layer_summary(self) -> str:
        """'80 full' or '24 sliding(4096) + 24 full' or '28 mamba + 4 full'."""
        parts: dict[str, int] = {}
        for layer in self.layers:
            label = layer.label()
            parts[label] = parts.get(label, 0) + 1
        return " + ".join(f"{n} {label}" for label, n in parts.items())

    # ---- per-layer geometry (a layer's own value, else the model's) ------------------
    def layer_query_heads(self, layer: Layer) -> int:
        return layer.query_heads or self.query_heads

    def layer_kv_heads(self, layer: Layer) -> int:
        return layer.kv_heads or self.kv_heads

    def layer_head_dims(self, layer: Layer) -> tuple[int, int]:
        """(d_k, d_v) of one attention layer."""
        d_k = layer.head_dim or self.head_dim
        d_v = layer.v_head_dim or (layer.head_dim if layer.head_dim else self.v_head_dim)
        return d_k, d_v

    def with_kv_heads(self, kv_heads: int) -> ModelSpec:
        """The same model redesigned with G KV heads in every self-attention layer (K/V
        projections shrink with G). Validated like any model: G must divide H."""
        layers = tuple(
            layer.model_copy(update={"kv_heads": None}) if layer.is_attention else layer
            for layer in self.layers
        )
        return self.replace(layers=layers, kv_heads=kv_heads, name=f"{self.name} (G={kv_heads})")
