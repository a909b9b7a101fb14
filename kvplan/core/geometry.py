"""One normalized, immutable description of a model's attention stack and weights.

Every reader (HF config.json, Meta params.json, the catalog, the Hub) produces a
`ModelSpec`; every calculation takes one. The description is per layer because real
models mix layer kinds: sliding-window and global layers (Gemma 2/3, gpt-oss, Mistral
v0.1), MLA latents (DeepSeek-V2/V3), and layers with no KV cache at all (Mamba / linear
attention in Jamba, Qwen3-Next).
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Frozen(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class LayerKind(str, Enum):
    """What one layer keeps per token of context."""

    FULL = "full"  # K and V for every token: 2*G*d_head per token
    SLIDING = "sliding"  # like FULL, but only the last `window` tokens
    CHUNKED = "chunked"  # local attention within fixed chunks: at most `window` tokens
    MLA = "mla"  # one compressed latent (kv_lora_rank + rope dims) shared by K and V
    NONE = "none"  # no per-token cache (Mamba / linear attention): fixed state per sequence


class AttentionLayout(str, Enum):
    MHA = "mha"
    GQA = "gqa"
    MQA = "mqa"
    MLA = "mla"
    HYBRID = "hybrid"


class Layer(Frozen):
    """One decoder layer: its cache kind and its feed-forward kind."""

    kind: LayerKind
    window: int | None = Field(default=None, gt=0)
    moe: bool = False
    state_elements: int = Field(default=0, ge=0)  # NONE layers: fixed state per sequence
    mixer_params: int = Field(default=0, ge=0)  # NONE layers: params of the non-attention mixer

    @model_validator(mode="after")
    def _window_matches_kind(self) -> Layer:
        windowed = self.kind in (LayerKind.SLIDING, LayerKind.CHUNKED)
        if windowed and self.window is None:
            raise ValueError(f"{self.kind.value} layer needs a window")
        if not windowed and self.window is not None:
            raise ValueError(f"{self.kind.value} layer cannot have a window")
        return self


class MlaDims(Frozen):
    """Multi-head latent attention (DeepSeek-V2/V3): what is cached is the latent."""

    kv_lora_rank: int = Field(gt=0)
    qk_rope_head_dim: int = Field(ge=0)
    qk_nope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)
    q_lora_rank: int | None = Field(default=None, gt=0)

    @property
    def latent_dim(self) -> int:
        """Elements cached per token per layer: one latent + the decoupled RoPE key."""
        return self.kv_lora_rank + self.qk_rope_head_dim


class MoeDims(Frozen):
    num_experts: int = Field(gt=0)
    experts_per_token: int = Field(gt=0)
    expert_intermediate: int = Field(gt=0)
    shared_experts: int = Field(default=0, ge=0)
    shared_intermediate: int = Field(default=0, ge=0)  # per shared expert
    shared_expert_gate: bool = False  # Qwen2-MoE style sigmoid gate on the shared expert
    router_bias: bool = False

    @model_validator(mode="after")
    def _top_k(self) -> MoeDims:
        if self.experts_per_token > self.num_experts:
            raise ValueError("experts per token exceeds the number of experts")
        return self


class Quantization(Frozen):
    method: str  # e.g. fp8, awq, gptq, mxfp4, bitsandbytes
    weight_dtype: str  # kvplan dtype name of the quantized linear weights


class ModelSpec(Frozen):
    """The normalized model. Head counts are global; cache kinds are per layer."""

    name: str
    family: str  # the config's model_type (or 'llama' for Meta params.json)
    layers: tuple[Layer, ...] = Field(min_length=1)
    hidden_size: int = Field(gt=0)
    query_heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)  # Q/K head size
    v_head_dim: int = Field(gt=0)  # V head size (differs from head_dim in some models)
    mla: MlaDims | None = None
    intermediate_size: int = Field(default=0, ge=0)  # dense MLP width
    gated_mlp: bool = True  # SwiGLU/GeGLU: 3 matrices; plain GELU MLP: 2
    moe: MoeDims | None = None
    vocab_size: int = Field(gt=0)
    tie_embeddings: bool = False
    learned_positions: int = Field(default=0, ge=0)  # GPT-2/OPT style position table
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    norm_bias: bool = False  # LayerNorm (weight+bias) vs RMSNorm (weight only)
    norms_per_layer: int = Field(default=2, ge=0)
    qk_norm: bool = False  # per-head RMSNorm on Q and K (Qwen3, OLMo 2 style)
    parallel_attn_mlp: bool = False  # Falcon/NeoX/Cohere parallel blocks (informational)
    max_position_embeddings: int | None = Field(default=None, gt=0)
    checkpoint_dtype: str = "bf16"
    quantization: Quantization | None = None
    assumptions: tuple[str, ...] = ()
    source: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.kv_heads > self.query_heads:
            raise ValueError(f"KV heads ({self.kv_heads}) exceed query heads ({self.query_heads})")
        if self.query_heads % self.kv_heads:
            raise ValueError(
                f"KV heads ({self.kv_heads}) do not divide query heads ({self.query_heads})"
            )
        has_mla_layers = any(layer.kind is LayerKind.MLA for layer in self.layers)
        if has_mla_layers and self.mla is None:
            raise ValueError("MLA layers need MLA dimensions")
        if any(layer.moe for layer in self.layers) and self.moe is None:
            raise ValueError("MoE layers need MoE dimensions")
        return self

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
    def layout(self) -> AttentionLayout:
        kinds = {layer.kind for layer in self.layers}
        if LayerKind.NONE in kinds:
            return AttentionLayout.HYBRID
        if LayerKind.MLA in kinds:
            return AttentionLayout.MLA
        if self.kv_heads == self.query_heads:
            return AttentionLayout.MHA
        if self.kv_heads == 1:
            return AttentionLayout.MQA
        return AttentionLayout.GQA

    def layer_summary(self) -> str:
        """'80 full' or '24 sliding(4096) + 24 full' or '4 full + 28 none'."""
        parts: dict[str, int] = {}
        for layer in self.layers:
            label = (
                layer.kind.value if layer.window is None else f"{layer.kind.value}({layer.window})"
            )
            parts[label] = parts.get(label, 0) + 1
        return " + ".join(f"{n} {label}" for label, n in parts.items())

    def with_kv_heads(self, kv_heads: int) -> ModelSpec:
        """The same model redesigned with G KV heads (K/V projections shrink with G)."""
        return self.model_copy(update={"kv_heads": kv_heads, "name": f"{self.name} (G={kv_heads})"})
