"""Parameter counts and weight bytes from the architecture.

Counted per layer from the shapes transformers builds:
  attention   q: hidden x H*d_k, k and v: hidden x G*d_k / G*d_v, o: H*d_v x hidden (+ biases);
  MLA         q (via q_lora when set), kv_a: hidden x (kv_lora + rope), kv_b: kv_lora x
              H*(nope + v), o: H*v x hidden, plus the latent norms;
  MLP         gated: 3 * hidden * inter, plain: 2 * hidden * inter (+ biases);
  MoE         router hidden x E, E experts, shared experts; active = top-k + shared;
  embeddings  vocab x hidden, plus an untied LM head, plus learned positions.
K/V projections scale with G, which is why `pick-g` shows weights shrinking with G.
"""

from __future__ import annotations

from math import ceil

from kvplan.core import mixers
from kvplan.core.dtypes import DTYPE_BYTES
from kvplan.core.frozen import Frozen
from kvplan.core.geometry import Ffn, ModelSpec
from kvplan.core.kvcache import layer_counts


class ParamCounts(Frozen):
    """Parameters by role; `linear` roles are what weight quantization applies to."""

    embedding: int  # input embedding + LM head + learned positions
    attention: int  # attention / MLA projections (weights + biases) and mixers of no-KV layers
    dense_mlp: int  # dense MLP layers
    experts: int  # all routed experts (MoE layers)
    experts_active: int  # routed experts one token uses (top-k per MoE layer)
    shared_and_router: int  # shared experts + routers of MoE layers
    norms: int

    @property
    def total(self) -> int:
        return (
            self.embedding
            + self.attention
            + self.dense_mlp
            + self.experts
            + self.shared_and_router
            + self.norms
        )

    @property
    def active(self) -> int:
        """Parameters one token touches (MoE: top-k experts; dense: all)."""
        return self.total - self.experts + self.experts_active

    @property
    def non_expert(self) -> int:
        return self.total - self.experts


def llama_ffn_width(dim: int, multiple_of: int, ffn_dim_multiplier: float | None = None) -> int:
    """SwiGLU width as Meta's reference code sizes it: h = int(2 * 4 * dim / 3), scaled by
    ffn_dim_multiplier, rounded up to a multiple of `multiple_of` (Llama-2-70B: 28672)."""
    width = int(2 * 4 * dim / 3)
    if ffn_dim_multiplier is not None:
        width = int(ffn_dim_multiplier * width)
    return multiple_of * ((width + multiple_of - 1) // multiple_of)


def attention_params(spec: ModelSpec, kv_heads: int | None = None) -> int:
    """Projection parameters of one standard attention layer at G = kv_heads."""
    return mixers.attention_params(spec, None, kv_heads)


def mla_params(spec: ModelSpec) -> int:
    """Projection parameters of one MLA layer (DeepSeek-V2/V3)."""
    return mixers.mla_params(spec)


mlp_params = mixers.mlp_params


def moe_params(spec: ModelSpec) -> tuple[int, int, int]:
    """(all routed experts, top-k experts, shared experts + router + extras) of one MoE
    layer. LatentMoE (Nemotron-3): experts map latent -> latent, with one hidden -> latent
    and one latent -> hidden projection per layer; a dense MLP beside the experts
    (`dense_width`) counts with the always-active part."""
    moe = spec.moe
    assert moe is not None
    hidden = spec.hidden_size
    expert_in = moe.latent_size or hidden
    one = mlp_params(expert_in, moe.expert_intermediate, gated=spec.gated_mlp, bias=spec.mlp_bias)
    shared = moe.shared_experts * mlp_params(
        hidden, moe.shared_intermediate, gated=spec.gated_mlp, bias=False
    )
    shared += hidden * moe.num_experts + (moe.num_experts if moe.router_bias else 0)
    shared += hidden if moe.shared_expert_gate else 0
    if moe.latent_size:
        shared += 2 * hidden * moe.latent_size
    if moe.dense_width:
        shared += mlp_params(hidden, moe.dense_width, gated=spec.gated_mlp, bias=spec.mlp_bias)
    return moe.num_experts * one, moe.experts_per_token * one, shared


def param_counts(spec: ModelSpec, *, kv_heads: int | None = None) -> ParamCounts:
    hidden = spec.hidden_size
    embed = spec.vocab_size * hidden * (1 if spec.tie_embeddings else 2)
    embed += spec.learned_positions * hidden
    norm_size = hidden * (2 if spec.norm_bias else 1)
    attention = dense = experts = experts_active = shared = 0
    norm_count = 0
    for layer, n in layer_counts(spec.layers):  # one term per distinct layer
        attention += n * mixers.mixer_params(spec, layer, kv_heads)
        ffn = mixers.ffn_kind(layer)
        if ffn is Ffn.MOE:
            all_e, active_e, rest = moe_params(spec)
            experts += n * all_e
            experts_active += n * active_e
            shared += n * rest
        elif ffn is Ffn.DENSE:
            width = layer.ffn_width or spec.intermediate_size
            if width:
                dense += n * mlp_params(hidden, width, gated=spec.gated_mlp, bias=spec.mlp_bias)
        norm_count += n * (spec.norms_per_layer if layer.norms is None else layer.norms)
        if spec.hyper_connections:  # one before attention, one before the FFN
            attention += n * 2 * mixers.hyper_connection_params(hidden, spec.hyper_connections)
    norms = norm_count * norm_size + norm_size  # + final norm
    if spec.hyper_connections:  # the head that folds the m streams back into one
        m = spec.hyper_connections
        norms += m * m * hidden + m + 1
    if spec.embedding_norm:
        norms += norm_size  # BLOOM word_embeddings_layernorm
    return ParamCounts(
        embedding=embed,
        attention=attention,
        dense_mlp=dense,
        experts=experts,
        experts_active=experts_active,
        shared_and_router=shared,
        norms=norms,
    )


class WeightBytes(Frozen):
    total: int
    linear_dtype: str  # dtype of the decoder's linear layers
    other_dtype: str  # embeddings, norms, routers
    experts: int  # bytes of all routed experts (for MoE traffic models)
    non_expert: int


def weight_bytes(
    spec: ModelSpec, *, weight_dtype: str | None = None, kv_heads: int | None = None
) -> WeightBytes:
    """Bytes of the weights: linear layers at the quantized (or chosen) dtype, the rest at the
    checkpoint's float dtype. mxfp4 checkpoints (gpt-oss) quantize only the experts."""
    counts = param_counts(spec, kv_heads=kv_heads)
    base = spec.checkpoint_dtype
    if weight_dtype is not None:
        linear = weight_dtype
        other = "fp32" if weight_dtype == "fp32" else ("bf16" if base == "fp32" else base)
        quantized_attention = True
    elif spec.quantization is not None:
        linear, other = spec.quantization.weight_dtype, base
        quantized_attention = spec.quantization.weight_dtype != "mxfp4"
    else:
        linear = other = base
        quantized_attention = True
    lin, oth = DTYPE_BYTES[linear], DTYPE_BYTES[other]
    experts_b = ceil(counts.experts * lin)
    attn_b = ceil(counts.attention * (lin if quantized_attention else oth))
    dense_b = ceil(counts.dense_mlp * (lin if quantized_attention else oth))
    shared_b = ceil(counts.shared_and_router * (lin if quantized_attention else oth))
    rest_b = ceil((counts.embedding + counts.norms) * oth)
    non_expert = attn_b + dense_b + shared_b + rest_b
    return WeightBytes(
        total=non_expert + experts_b,
        linear_dtype=linear,
        other_dtype=other,
        experts=experts_b,
        non_expert=non_expert,
    )
