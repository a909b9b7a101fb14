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

from fractions import Fraction
from functools import lru_cache
from math import ceil
from typing import NamedTuple

from kvplan.core import mixers
from kvplan.core.dtypes import DTYPE_BYTES
from kvplan.core.frozen import Frozen, field
from kvplan.core.geometry import Ffn, Layer, Mixer, ModelSpec
from kvplan.core.kvcache import layer_counts
from kvplan.core.quant_groups import Group, Quantization
from kvplan.errors import ConfigError


class ParamCounts(Frozen):
    """Parameters by role; `linear` roles are what weight quantization applies to."""

    embedding: int  # input embedding + LM head + learned positions
    attention: int  # attention / MLA projections (weights + biases) and mixers of no-KV layers
    dense_mlp: int  # dense MLP layers
    experts: int  # all routed experts (MoE layers)
    experts_active: int  # routed experts one token uses (top-k per MoE layer)
    shared_and_router: int  # shared experts + routers of MoE layers
    norms: int
    vision: int = 0  # image encoder + projector of a multimodal checkpoint (not in `total`)

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
    if spec.draft_head is not None:
        raise ConfigError(
            f"{spec.name} is a speculative-decoding draft head (architectures: "
            f"{spec.draft_head}); its weights are not estimated from its config (it reuses "
            "the target's embedding or LM head; an EAGLE-3 layer takes 2 x hidden inputs)",
            hint="use it as --draft-model by its Hub repo id, whose checkpoint bytes are read",
        )
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
        vision=spec.vision.params if spec.vision is not None else 0,
    )


class WeightBytes(Frozen):
    total: int
    linear_dtype: str  # dtype of the decoder's (main) quantized linear layers
    other_dtype: str  # embeddings, norms, routers, biases and unquantized groups
    experts: int  # bytes of all routed experts (for MoE traffic models)
    non_expert: int  # the decoder's other weights (streamed every decode step)
    vision: int = 0  # image encoder + projector: loaded, never read by a text decode step
    groups: dict[str, int] = field(
        default_factory=dict
    )  # bytes per group (embedding, attention, experts, ..., other)
    formats: dict[str, str] = field(default_factory=dict)  # group -> the format(s) it is stored in
    notes: tuple[str, ...] = ()


class Linear(NamedTuple):
    """`n` matrices of out x in in one weight group, known by `names` (module paths)."""

    group: Group
    out: int
    inp: int
    n: int  # how many such matrices
    names: tuple[str, ...]


# Module-path spellings of one decoder layer across families and multimodal wrappers, so
# that ignore / target patterns written for any of them find the matrix.
_PREFIXES = (
    "model.layers.{i}",
    "model.language_model.layers.{i}",
    "language_model.model.layers.{i}",
)
_ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "q_proj": ("self_attn.q_proj",),
    "k_proj": ("self_attn.k_proj",),
    "v_proj": ("self_attn.v_proj",),
    "o_proj": ("self_attn.o_proj",),
    "q_a_proj": ("self_attn.q_a_proj",),
    "q_b_proj": ("self_attn.q_b_proj",),
    "kv_a_proj": ("self_attn.kv_a_proj_with_mqa",),
    "kv_b_proj": ("self_attn.kv_b_proj",),
    "indexer": ("self_attn.indexer.wq_b", "self_attn.indexer.wk"),
    "msa_indexer": ("self_attn.indexer.q_proj", "self_attn.indexer.k_proj"),
    # a recurrent mixer is costed as one matrix; it answers to the name of its largest
    # projection too (Qwen3.5 / Qwen3-Next `linear_attn.in_proj_qkv`, as ModelOpt
    # MIXED_PRECISION quantized_layers and compressed-tensors targets spell it)
    "mixer": (
        "self_attn.proj",
        "linear_attn.in_proj",
        "linear_attn.in_proj_qkv",
        "mamba.in_proj",
        "mixer.in_proj",
    ),
    "mlp.gate_proj": ("mlp.gate_proj",),
    "mlp.up_proj": ("mlp.up_proj",),
    "mlp.down_proj": ("mlp.down_proj",),
    "experts.gate_proj": (
        "mlp.experts.0.gate_proj",
        "mlp.experts.gate_up_proj",
        "block_sparse_moe.experts.0.w1",
    ),
    "experts.up_proj": (
        "mlp.experts.0.up_proj",
        "mlp.experts.gate_up_proj",
        "block_sparse_moe.experts.0.w3",
    ),
    "experts.down_proj": (
        "mlp.experts.0.down_proj",
        "mlp.experts.down_proj",
        "block_sparse_moe.experts.0.w2",
    ),
    "shared.gate_proj": ("mlp.shared_experts.gate_proj", "mlp.shared_expert.gate_proj"),
    "shared.up_proj": ("mlp.shared_experts.up_proj", "mlp.shared_expert.up_proj"),
    "shared.down_proj": ("mlp.shared_experts.down_proj", "mlp.shared_expert.down_proj"),
    "latent": ("mlp.fc1_latent_proj", "mlp.fc2_latent_proj"),
    "router": ("mlp.gate", "mlp.router", "block_sparse_moe.gate"),
}


# The embedding and LM head as plain text models and multimodal wrappers name them (as
# _PREFIXES for the layers): nvidia/Kimi-K2.5-NVFP4's ignore list names
# "language_model.lm_head", which a bare "lm_head" does not match.
_EMBED_NAMES = (
    "model.embed_tokens",
    "embed_tokens",
    "model.language_model.embed_tokens",
    "language_model.model.embed_tokens",
)
_LM_HEAD_NAMES = ("lm_head", "language_model.lm_head")


def _names(i: int, role: str) -> tuple[str, ...]:
    return tuple(p.format(i=i) + "." + n for p in _PREFIXES for n in _ROLE_NAMES[role])


def _mlp(
    group: Group, i: int, hidden: int, width: int, gated: bool, kind: str, n: int
) -> list[Linear]:
    mats = [Linear(group, width, hidden, n, _names(i, f"{kind}.up_proj"))]
    if gated:
        mats.append(Linear(group, width, hidden, n, _names(i, f"{kind}.gate_proj")))
    mats.append(Linear(group, hidden, width, n, _names(i, f"{kind}.down_proj")))
    return mats


def layer_linears(
    spec: ModelSpec, i: int, layer: Layer, kv_heads: int | None = None
) -> list[Linear]:
    """The weight matrices of layer i, from the same shapes `param_counts` sums. Mixers with
    many small projections (recurrent, DeepSeek-V4 compressed attention) appear as one matrix
    of their parameter count x hidden: exact for whole-tensor formats, close for grouped ones."""
    hidden = spec.hidden_size
    out: list[Linear] = []
    mixer = layer.mixer_kind
    att = Group.ATTENTION
    if mixer in (Mixer.ATTENTION, Mixer.CROSS_ATTENTION) and not layer.mixer_params:
        h = spec.layer_query_heads(layer)
        g = mixers.layer_kv_heads(spec, layer, kv_heads)
        d_k, d_v = spec.layer_head_dims(layer)
        gate = 2 if spec.attn_output_gate else 1
        out.append(Linear(att, h * d_k * gate, hidden, 1, _names(i, "q_proj")))
        out.append(Linear(att, g * d_k, hidden, 1, _names(i, "k_proj")))
        if not layer.k_eq_v:
            out.append(Linear(att, g * d_v, hidden, 1, _names(i, "v_proj")))
        out.append(Linear(att, hidden, h * d_v, 1, _names(i, "o_proj")))
        if layer.index_head_dim:  # MiniMax-M3 sparse attention's lightning indexer
            d, heads = layer.index_head_dim, layer.index_heads
            out.append(Linear(att, heads * d, hidden, 1, _names(i, "msa_indexer")))
            out.append(Linear(att, d, hidden, 1, _names(i, "msa_indexer")))
    elif mixer in (Mixer.MLA, Mixer.MLA_INDEXER) and spec.mla is not None:
        m, h = spec.mla, spec.query_heads
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            out.append(Linear(att, m.q_lora_rank, hidden, 1, _names(i, "q_a_proj")))
            out.append(Linear(att, h * qk, m.q_lora_rank, 1, _names(i, "q_b_proj")))
        else:
            out.append(Linear(att, h * qk, hidden, 1, _names(i, "q_proj")))
        out.append(
            Linear(att, m.kv_lora_rank + m.qk_rope_head_dim, hidden, 1, _names(i, "kv_a_proj"))
        )
        kv_b = h * (m.qk_nope_head_dim + m.v_head_dim)
        out.append(Linear(att, kv_b, m.kv_lora_rank, 1, _names(i, "kv_b_proj")))
        out.append(Linear(att, hidden, h * m.v_head_dim, 1, _names(i, "o_proj")))
        if mixer is Mixer.MLA_INDEXER:
            q_in = m.q_lora_rank or hidden
            d, heads = layer.index_head_dim, layer.index_heads
            out.append(Linear(att, heads * d, q_in, 1, _names(i, "indexer")))
            out.append(Linear(att, d, hidden, 1, _names(i, "indexer")))
    elif mixer is not Mixer.NOOP:
        params = mixers.mixer_params(spec, layer, kv_heads)
        if params >= hidden:
            out.append(Linear(att, params // hidden, hidden, 1, _names(i, "mixer")))
    ffn = mixers.ffn_kind(layer)
    gated = spec.gated_mlp
    if ffn is Ffn.DENSE:
        width = layer.ffn_width or spec.intermediate_size
        if width:
            out += _mlp(Group.DENSE_MLP, i, hidden, width, gated, "mlp", 1)
    elif ffn is Ffn.MOE and spec.moe is not None:
        moe = spec.moe
        e_in = moe.latent_size or hidden
        out += _mlp(
            Group.EXPERTS, i, e_in, moe.expert_intermediate, gated, "experts", moe.num_experts
        )
        if moe.shared_experts and moe.shared_intermediate:
            out += _mlp(
                Group.SHARED_EXPERTS,
                i,
                hidden,
                moe.shared_intermediate,
                gated,
                "shared",
                moe.shared_experts,
            )
        if moe.latent_size:
            out.append(
                Linear(Group.SHARED_EXPERTS, moe.latent_size, hidden, 2, _names(i, "latent"))
            )
        if moe.dense_width:
            out += _mlp(Group.DENSE_MLP, i, hidden, moe.dense_width, gated, "mlp", 1)
        out.append(Linear(Group.ROUTER, moe.num_experts, hidden, 1, _names(i, "router")))
    return out


_ROLE_OF = {
    Group.EMBEDDING: "embedding",
    Group.LM_HEAD: "embedding",
    Group.ATTENTION: "attention",
    Group.DENSE_MLP: "dense_mlp",
    Group.EXPERTS: "experts",
    Group.SHARED_EXPERTS: "shared_and_router",
    Group.ROUTER: "shared_and_router",
}


@lru_cache(maxsize=64)  # pick-g / sweeps ask for the same model many times
def _quantized_bytes(
    spec: ModelSpec, quant: Quantization, other: str, kv_heads: int | None
) -> WeightBytes:
    """Each matrix in the format its group is stored in; the rest of each role (biases, norms,
    sinks, learned positions, unquantized groups) at the float dtype `other`."""
    counts = param_counts(spec, kv_heads=kv_heads)
    hidden = spec.hidden_size
    mats: list[Linear] = [Linear(Group.EMBEDDING, spec.vocab_size, hidden, 1, _EMBED_NAMES)]
    if not spec.tie_embeddings:
        mats.append(Linear(Group.LM_HEAD, spec.vocab_size, hidden, 1, _LM_HEAD_NAMES))
    for i, layer in enumerate(spec.layers):
        mats += layer_linears(spec, i, layer, kv_heads)
    oth = DTYPE_BYTES[other]
    by_group: dict[str, Fraction] = {}
    formats: dict[str, set[str]] = {}
    stored: dict[str, int] = {}  # elements per role held in some format (quantized or float)
    for m in mats:
        fmt = quant.format_for(m.group, m.names)
        elements = m.n * m.out * m.inp
        role = _ROLE_OF[m.group]
        stored[role] = stored.get(role, 0) + elements
        key = m.group.value
        if fmt is None:
            size = Fraction(elements) * oth
            formats.setdefault(key, set()).add(other)
        else:
            size = Fraction(m.n * fmt.bytes(m.out, m.inp))
            formats.setdefault(key, set()).add(fmt.name)
        by_group[key] = by_group.get(key, Fraction(0)) + size
    rest = counts.norms
    for role in ("embedding", "attention", "dense_mlp", "experts", "shared_and_router"):
        rest_role = getattr(counts, role) - stored.get(role, 0)
        if role == "experts" and rest_role > 0:  # expert biases live with the experts
            by_group["experts"] = by_group.get("experts", Fraction(0)) + rest_role * oth
        else:
            rest += max(rest_role, 0)
    by_group["other"] = by_group.get("other", Fraction(0)) + rest * oth
    sizes = {k: ceil(v) for k, v in by_group.items()}
    experts_b = sizes.get("experts", 0)
    total = sum(sizes.values())
    return WeightBytes(
        total=total,
        linear_dtype=quant.weight_dtype,
        other_dtype=other,
        experts=experts_b,
        non_expert=total - experts_b,
        groups=sizes,
        formats={k: " + ".join(sorted(v)) for k, v in formats.items()},
        notes=quant.notes,
    )


def weight_bytes(
    spec: ModelSpec, *, weight_dtype: str | None = None, kv_heads: int | None = None
) -> WeightBytes:
    """Bytes of the weights an engine loads: the text decoder's (`_decoder_bytes`) plus a
    multimodal checkpoint's image encoder, at the float dtype (quantized checkpoints list the
    encoder among the modules not to convert). The encoder is in `total` and `vision`, not in
    `non_expert`: a text decode step never reads it."""
    text = _decoder_bytes(spec, weight_dtype, kv_heads)
    vision = param_counts(spec, kv_heads=kv_heads).vision
    if not vision:
        return text
    vision_b = ceil(vision * DTYPE_BYTES[text.other_dtype])
    update: dict[str, object] = {"total": text.total + vision_b, "vision": vision_b}
    if text.groups:
        update["groups"] = {**text.groups, "vision": vision_b}
        update["formats"] = {**text.formats, "vision": text.other_dtype}
    return text.model_copy(update=update)


def _decoder_bytes(spec: ModelSpec, weight_dtype: str | None, kv_heads: int | None) -> WeightBytes:
    """With a forced `weight_dtype`, every linear layer at that dtype and the rest at the
    checkpoint's float dtype. Otherwise each weight group in the format the checkpoint's
    `quantization_config` gives it (kvplan.core.quant_groups), scales and zeros included:
    gpt-oss mxfp4 only the experts, Kimi-K2.5 int4 experts with bf16 attention."""
    base = spec.checkpoint_dtype
    if weight_dtype is None and spec.quantization is not None:
        return _quantized_bytes(spec, spec.quantization, base, kv_heads)
    counts = param_counts(spec, kv_heads=kv_heads)
    if weight_dtype is not None:
        linear = weight_dtype
        other = "fp32" if weight_dtype == "fp32" else ("bf16" if base == "fp32" else base)
    else:
        linear = other = base
    lin, oth = DTYPE_BYTES[linear], DTYPE_BYTES[other]
    experts_b = ceil(counts.experts * lin)
    attn_b = ceil(counts.attention * lin)
    dense_b = ceil(counts.dense_mlp * lin)
    shared_b = ceil(counts.shared_and_router * lin)
    rest_b = ceil((counts.embedding + counts.norms) * oth)
    non_expert = attn_b + dense_b + shared_b + rest_b
    return WeightBytes(
        total=non_expert + experts_b,
        linear_dtype=linear,
        other_dtype=other,
        experts=experts_b,
        non_expert=non_expert,
    )


def mtp_weight_bytes(spec: ModelSpec, n: int, *, weight_dtype: str | None = None) -> int:
    """Bytes of `n` of the checkpoint's MTP modules, as vLLM loads them for speculative
    decoding. Each is one decoder layer like the model's last attention layer (in the
    checkpoint's formats: the checkpoint stores it after layer L, so quantization patterns
    apply as to the others) + a 2 hidden -> hidden projection + three norms, and:

    * DeepSeek-style (deepseek_mtp.py `DeepSeekMultiTokenPredictorLayer`): its own
      embedding and LM head (vocab x hidden each); eh_proj is a plain nn.Linear that vLLM
      dequantizes to the float dtype at load. Checked against DeepSeek-V3's published
      checkpoint (tests).
    * Qwen3-Next-style (`mtp_shares_embeddings`; qwen3_next_mtp.py
      `Qwen3NextMultiTokenPredictor`: fc, pre_fc_norm_embedding / pre_fc_norm_hidden /
      norm): the target's embedding and head, which the checkpoint's mtp.* tensors do not
      repeat and vLLM's drafter shares."""
    n = min(n, spec.mtp_layers)
    if n <= 0:
        return 0
    like = next(
        (layer for layer in reversed(spec.layers) if not layer.is_recurrent), spec.layers[-1]
    )
    longer = spec.model_copy(update={"layers": (*spec.layers, *([like] * n))})
    blocks = weight_bytes(longer, weight_dtype=weight_dtype).total
    blocks -= weight_bytes(spec, weight_dtype=weight_dtype).total
    h, v = spec.hidden_size, spec.vocab_size
    other = DTYPE_BYTES[_decoder_bytes(spec, weight_dtype, None).other_dtype]
    embeddings = 0 if spec.mtp_shares_embeddings else 2 * v * h
    per_module = (embeddings + 2 * h * h + 3 * h) * other
    return blocks + ceil(n * per_module)


# ---- what an engine keeps whole on every TP rank ----------------------------------------
# Tensor kinds an engine may replicate instead of splitting (EngineRules.tp_replicated):
#   mla_a     MLA's q_a_proj + kv_a_proj_with_mqa (+ the q_a / kv_a latent norms)
#   indexer   a DSA indexer's wq_b, wk, weights_proj and k_norm
#   router    the MoE router (gate) of each MoE layer
#   norms     every RMSNorm / LayerNorm weight (input, post-attention, final)
#   kv_heads  K/V projection rows of the KV heads each rank holds when tp > G
#   vision    the image encoder's tensors the engine keeps whole (VisionEncoder.tp_whole)
REPLICABLE = frozenset({"mla_a", "indexer", "router", "norms", "kv_heads", "vision"})


def _replica_kind(m: Linear) -> str | None:
    if m.group is Group.ROUTER:
        return "router"
    name = m.names[0]
    if name.endswith(("self_attn.q_a_proj", "self_attn.kv_a_proj_with_mqa")):
        return "mla_a"
    if name.endswith("self_attn.indexer.wq_b"):
        return "indexer"
    return None


def _storage(
    spec: ModelSpec, weight_dtype: str | None
) -> tuple[Quantization | None, Fraction, Fraction]:
    """(the checkpoint's quantization when it decides formats, bytes per element of a
    linear layer without one, bytes per element of what `_decoder_bytes` keeps at the float
    dtype): the same conventions `_decoder_bytes` sums the total with."""
    base = spec.checkpoint_dtype
    if weight_dtype is None and spec.quantization is not None:
        oth = DTYPE_BYTES[base]
        return spec.quantization, oth, oth
    if weight_dtype is not None:
        other = "fp32" if weight_dtype == "fp32" else ("bf16" if base == "fp32" else base)
        return None, DTYPE_BYTES[weight_dtype], DTYPE_BYTES[other]
    return None, DTYPE_BYTES[base], DTYPE_BYTES[base]


def _matrix_bytes(
    m: Linear, quant: Quantization | None, lin: Fraction, oth: Fraction, rows: int | None = None
) -> Fraction:
    """Bytes of `m` (or of its first `rows` output rows) in the format its group is stored
    in: a quantized format's scales scale with the rows kept."""
    out = m.out if rows is None else rows
    if quant is None:
        return Fraction(m.n * out * m.inp) * Fraction(lin)
    fmt = quant.format_for(m.group, m.names)
    if fmt is None:
        return Fraction(m.n * out * m.inp) * Fraction(oth)
    return Fraction(m.n * fmt.bytes(m.out, m.inp) * out, m.out)


@lru_cache(maxsize=64)
def replicated_weight_bytes(
    spec: ModelSpec, kinds: frozenset[str], *, weight_dtype: str | None = None
) -> int:
    """Bytes of the tensors of `kinds` (see REPLICABLE; "kv_heads" is `kv_replica_bytes`),
    in the format the checkpoint stores each (Kimi-K2.5 NVFP4: MLA and router in bf16).
    An engine that keeps these whole on every rank holds, per GPU under TP x PP,
        (total - replicated) / (tp * pp) + replicated / pp
    (kvplan.core.capacity.plan). Biases of the router / e_score_correction_bias are left out
    (E floats per layer)."""
    if not kinds:
        return 0
    quant, lin, oth = _storage(spec, weight_dtype)
    rest = oth if quant is not None else lin  # projection extras outside layer_linears
    size = Fraction(0)
    hidden = spec.hidden_size
    for i, layer in enumerate(spec.layers):
        for m in layer_linears(spec, i, layer):
            kind = _replica_kind(m)
            if kind is not None and kind in kinds:
                size += _matrix_bytes(m, quant, lin, oth)
        if layer.mixer_kind in (Mixer.MLA, Mixer.MLA_INDEXER) and spec.mla is not None:
            if "mla_a" in kinds:  # q_a_layernorm + kv_a_layernorm
                size += ((spec.mla.q_lora_rank or 0) + spec.mla.kv_lora_rank) * Fraction(rest)
            if "indexer" in kinds and layer.mixer_kind is Mixer.MLA_INDEXER:
                d, heads = layer.index_head_dim, layer.index_heads  # k_norm, weights_proj
                size += (2 * d + hidden * heads) * Fraction(rest)
    if "norms" in kinds:
        size += param_counts(spec).norms * Fraction(oth)
    if "vision" in kinds and spec.vision is not None and spec.vision.counted:
        size += spec.vision.tp_whole * Fraction(oth)  # stored at the float dtype (weight_bytes)
    return ceil(size)


@lru_cache(maxsize=64)
def kv_replica_bytes(spec: ModelSpec, tp: int, *, weight_dtype: str | None = None) -> int:
    """Bytes of the K/V projection rows the ranks hold beyond one copy when tp > G: vLLM's
    QKVParallelLinear (and SGLang's, TensorRT-LLM's Attention) gives each rank ceil(G / tp)
    KV heads, so the TP group stores ceil(G / tp) * tp - G heads twice; e.g. G = 4 at TP 8:
    every rank holds 1 head, 4 extra heads' k and v rows in all. Summed over the standard
    attention layers (each with its own G); MLA / other mixers: 0."""
    if tp <= 1:
        return 0
    quant, lin, oth = _storage(spec, weight_dtype)
    size = Fraction(0)
    for i, layer in enumerate(spec.layers):
        if layer.mixer_kind not in (Mixer.ATTENTION, Mixer.CROSS_ATTENTION) or layer.mixer_params:
            continue
        g = mixers.layer_kv_heads(spec, layer, None)
        extra = -(-g // tp) * tp - g
        if extra <= 0:
            continue
        for m in layer_linears(spec, i, layer):
            if m.names[0].endswith(("self_attn.k_proj", "self_attn.v_proj")):
                size += _matrix_bytes(m, quant, lin, oth, rows=m.out * extra // g)
    return ceil(size)
