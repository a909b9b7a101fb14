"""The layer-kind registry: for every mixer, what it caches per token, what fixed state it
keeps per sequence, and how many parameters it has. One place per formula; `kvcache` and
`params` sum these over the layers of a `ModelSpec`.

Per token of context, per layer (elements, stored in the KV-cache dtype):
  attention (full / sliding / chunked)  G_l * (d_k + d_v)   (K = V sharing still stores both,
                                                            as transformers' cache does)
                                        (+ index_head_dim on a MiniMax-M3 sparse-attention
                                        layer: one index key per token, not split over
                                        KV heads or TP ranks)
  MLA                                   kv_lora_rank + qk_rope_head_dim
  MLA + DSA indexer                     kv_lora_rank + qk_rope_head_dim + index_head_dim
  DeepSeek-V4 compressed attention      2 * head_dim (K and V of one shared KV head) for the
                                        last `window` tokens, plus floor(ctx / r) compressed
                                        entries of head_dim (+ index_head_dim with an indexer)
  everything else                       0
Fixed state per sequence, per layer (conv windows hold d_conv - 1 past inputs, as vLLM's
MambaStateShapeCalculator allocates them; transformers allocates the whole kernel width):
  Mamba-1         ssm d_inner * d_state            + conv d_inner * (d_conv - 1)
  Mamba-2         ssm heads * head_dim * d_state   + conv (d_inner + 2 * n_groups * d_state)
                                                          * (d_conv - 1), d_inner = heads*head_dim
  Gated DeltaNet  ssm v_heads * k_dim * v_dim      + conv (2 * k_heads * k_dim + v_heads * v_dim)
                                                          * (d_conv - 1)
  short conv      conv hidden * (L_cache - 1)
  cross-attention encoder K/V: encoder_tokens * G * (d_k + d_v), in the KV dtype
  DeepSeek-V4 compressor state (transformers DeepseekV4HCACache / DeepseekV4CSACache): the
                  not-yet-compressed remainder, at most r - 1 tokens of kv + gate features
                  (2 * coff * d, coff = 2 for CSA's overlapping windows, 1 for HCA, the same
                  again at index_head_dim for CSA's indexer), and CSA's overlap state r * d kv
                  (model dtype) + r * d gate (fp32), again at index_head_dim
The SSM (recurrent) state is kept in `ssm_dtype` when the config names one
(`mamba_ssm_cache_dtype`, `mamba_ssm_dtype`), else in the model's float dtype; conv state
always in the model's float dtype.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvplan.core.geometry import Ffn, Layer, LayerKind, Mixer, RecurrentDims, StatePart

if TYPE_CHECKING:
    from kvplan.core.geometry import ModelSpec


def _dims(layer: Layer) -> RecurrentDims:
    assert layer.recurrent is not None, layer
    return layer.recurrent


def mamba2_inner(r: RecurrentDims) -> int:
    return r.num_heads * r.head_dim if r.num_heads else r.d_inner


def state_parts(layer: Layer) -> list[StatePart]:
    """Fixed-size tensors one layer keeps per sequence."""
    mixer = layer.mixer
    if layer.state_elements_override is not None:
        return [StatePart(name="state", elements=layer.state_elements_override)]
    if mixer is Mixer.MAMBA:
        r = _dims(layer)
        return [
            StatePart(name="ssm", elements=r.d_inner * r.d_state, dtype=r.ssm_dtype),
            StatePart(name="conv", elements=r.d_inner * (r.d_conv - 1)),
        ]
    if mixer is Mixer.MAMBA2:
        r = _dims(layer)
        inner = mamba2_inner(r)
        return [
            StatePart(name="ssm", elements=r.num_heads * r.head_dim * r.d_state, dtype=r.ssm_dtype),
            StatePart(name="conv", elements=(inner + 2 * r.n_groups * r.d_state) * (r.d_conv - 1)),
        ]
    if mixer is Mixer.GATED_DELTANET:
        r = _dims(layer)
        conv_dim = 2 * r.key_heads * r.key_head_dim + r.num_heads * r.head_dim
        return [
            StatePart(
                name="ssm", elements=r.num_heads * r.key_head_dim * r.head_dim, dtype=r.ssm_dtype
            ),
            StatePart(name="conv", elements=conv_dim * (r.d_conv - 1)),
        ]
    if mixer is Mixer.SHORT_CONV:
        r = _dims(layer)
        return [StatePart(name="conv", elements=r.d_inner * (r.d_conv - 1))]
    if mixer is Mixer.COMPRESSED and layer.compress_ratio:
        ratio, d, idx = layer.compress_ratio, layer.head_dim or 0, layer.index_head_dim
        coff = 2 if idx else 1
        parts = [StatePart(name="buffer", elements=(ratio - 1) * 2 * coff * d)]
        if idx:
            parts += [
                StatePart(name="buffer_indexer", elements=(ratio - 1) * 2 * coff * idx),
                StatePart(name="overlap_kv", elements=ratio * (d + idx)),
                StatePart(name="overlap_gate", elements=ratio * (d + idx), dtype="fp32"),
            ]
        return parts
    if mixer is Mixer.CROSS_ATTENTION and layer.encoder_tokens:
        g = layer.kv_heads or 0
        d = (layer.head_dim or 0) + (layer.v_head_dim or layer.head_dim or 0)
        return [StatePart(name="encoder_kv", elements=layer.encoder_tokens * g * d, dtype="kv")]
    return []


def layer_kv_heads(spec: ModelSpec, layer: Layer, kv_heads: int | None = None) -> int:
    """KV heads of one attention layer; `kv_heads` re-targets the model-wide G (a what-if G
    or the per-GPU share under TP) and scales a layer with its own G in proportion."""
    own = spec.layer_kv_heads(layer)
    if kv_heads is None or kv_heads == spec.kv_heads:
        return own
    if layer.kv_heads is None:
        return kv_heads
    return max(1, own * kv_heads // spec.kv_heads)


def token_elements(spec: ModelSpec, layer: Layer, kv_heads: int | None = None) -> int:
    """Cache elements one layer stores for one more token of context."""
    mixer = layer.mixer
    if mixer is Mixer.ATTENTION:
        d_k, d_v = spec.layer_head_dims(layer)
        return layer_kv_heads(spec, layer, kv_heads) * (d_k + d_v) + layer.index_head_dim
    if mixer in (Mixer.MLA, Mixer.MLA_INDEXER):
        assert spec.mla is not None
        return spec.mla.latent_dim + layer.index_head_dim
    if mixer is Mixer.COMPRESSED:
        return 2 * (layer.head_dim or 0)  # one shared KV head, K and V both cached
    return 0


def index_elements(layer: Layer) -> int:
    """Of `token_elements`, the indexer key's elements (DSA, MiniMax-M3 sparse attention):
    an engine may store them in a format of its own (kvplan.core.kv_formats
    INDEXER_FORMATS)."""
    return layer.index_head_dim if layer.mixer in (Mixer.MLA_INDEXER, Mixer.ATTENTION) else 0


def compressed_elements(layer: Layer, ctx: int) -> int:
    """DeepSeek-V4: elements of the compressed entries one sequence holds at `ctx` tokens,
    floor(ctx / r) entries of head_dim (+ index_head_dim: CSA's indexer keys)."""
    if layer.mixer is not Mixer.COMPRESSED or not layer.compress_ratio:
        return 0
    return ctx // layer.compress_ratio * ((layer.head_dim or 0) + layer.index_head_dim)


# ---- parameters ------------------------------------------------------------------------
def attention_params(
    spec: ModelSpec, layer: Layer | None = None, kv_heads: int | None = None
) -> int:
    """q: hidden x H*d_k (x2 with an output gate), k: hidden x G*d_k, v: hidden x G*d_v
    (none when V = K), o: H*d_v x hidden, plus biases, Q/K norms and sinks."""
    probe = layer or Layer(kind=LayerKind.FULL)
    h = spec.layer_query_heads(probe)
    g = layer_kv_heads(spec, probe, kv_heads)
    d_k, d_v = spec.layer_head_dims(probe)
    hidden = spec.hidden_size
    gate = 2 if spec.attn_output_gate else 1
    q = hidden * h * d_k * gate + (h * d_k * gate if spec.qkv_bias else 0)
    k = hidden * g * d_k + (g * d_k if spec.qkv_bias else 0)
    v = 0 if probe.k_eq_v else hidden * g * d_v + (g * d_v if spec.qkv_bias else 0)
    o = h * d_v * hidden + (hidden if spec.o_bias else 0)
    qk_norm = 0
    if spec.qk_norm:
        qk_norm = (h + g) * d_k if spec.qk_norm_full_width else 2 * d_k
    sinks = h if spec.attention_sinks else 0
    return q + k + v + o + qk_norm + sinks


def mla_params(spec: ModelSpec) -> int:
    """q (via q_lora when set), kv_a: hidden x (kv_lora + rope), kv_b: kv_lora x
    H*(nope + v), o: H*v x hidden, plus the latent norms."""
    mla = spec.mla
    assert mla is not None
    h, hidden = spec.query_heads, spec.hidden_size
    qk_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    if mla.q_lora_rank:
        q = hidden * mla.q_lora_rank + mla.q_lora_rank + mla.q_lora_rank * h * qk_head
    else:
        q = hidden * h * qk_head
    kv_a = hidden * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank
    kv_b = mla.kv_lora_rank * h * (mla.qk_nope_head_dim + mla.v_head_dim)
    o = h * mla.v_head_dim * hidden
    return q + kv_a + kv_b + o


def indexer_params(spec: ModelSpec, layer: Layer) -> int:
    """DSA lightning indexer: wq_b q_lora x heads*d, wk hidden x d, k_norm LayerNorm(d)
    (weight + bias), weights_proj hidden x heads."""
    assert spec.mla is not None
    d, heads, hidden = layer.index_head_dim, layer.index_heads, spec.hidden_size
    q_in = spec.mla.q_lora_rank or hidden
    return q_in * heads * d + hidden * d + 2 * d + hidden * heads


def sparse_indexer_params(spec: ModelSpec, layer: Layer) -> int:
    """MiniMax-M3 lightning indexer (transformers MiniMaxM3VLIndexer): q_proj hidden x
    heads*d, k_proj hidden x d, q_norm and k_norm RMSNorm(d), no biases."""
    d, heads, hidden = layer.index_head_dim, layer.index_heads, spec.hidden_size
    return hidden * heads * d + hidden * d + 2 * d


def compressed_attention_params(spec: ModelSpec, layer: Layer) -> int:
    """DeepSeek-V4 attention, from the module shapes transformers builds: sinks H, q_a
    hidden x q_lora (+ norm), q_b q_lora x H*d, kv_proj hidden x d (+ norm), o_a
    (H*d / groups) x (groups * o_lora), o_b (groups * o_lora) x hidden; a compressor with
    ratio r: position bias r x coff*d, kv and gate projections hidden x coff*d, kv norm d;
    CSA's indexer: the same at index_head_dim, plus q_b q_lora x index_heads * index_head_dim
    and weights_proj hidden x index_heads."""
    c = spec.compressed
    assert c is not None
    h, hidden, d = spec.query_heads, spec.hidden_size, c.head_dim
    params = (
        h
        + hidden * c.q_lora_rank
        + c.q_lora_rank
        + c.q_lora_rank * h * d
        + hidden * d
        + d
        + (h * d // c.o_groups) * (c.o_groups * c.o_lora_rank)
        + c.o_groups * c.o_lora_rank * hidden
    )
    r = layer.compress_ratio
    if r:
        idx = layer.index_head_dim
        coff = 2 if idx else 1
        params += r * coff * d + 2 * hidden * coff * d + d
        if idx:
            heads = c.index_heads
            params += r * coff * idx + 2 * hidden * coff * idx + idx
            params += c.q_lora_rank * heads * idx + hidden * heads
    return params


def hyper_connection_params(hidden: int, streams: int) -> int:
    """One hyper-connection mixer (DeepSeek-V4 attn_hc / ffn_hc): fn (2 + m) * m x m * hidden,
    base (2 + m) * m, scale 3."""
    m = streams
    return (2 + m) * m * (m * hidden) + (2 + m) * m + 3


def recurrent_params(hidden: int, mixer: Mixer, r: RecurrentDims) -> int:
    if mixer is Mixer.MAMBA:
        inner, dt = r.d_inner, r.dt_rank
        return (
            hidden * 2 * inner  # in_proj (x and gate)
            + inner * r.d_conv
            + inner  # depthwise conv1d + bias
            + inner * (dt + 2 * r.d_state)  # x_proj
            + dt * inner
            + inner  # dt_proj + bias
            + inner * r.d_state
            + inner  # A_log, D
            + inner * hidden  # out_proj
            + ((dt + 2 * r.d_state) if r.inner_norms else 0)  # Jamba dt/B/C RMSNorms
        )
    if mixer is Mixer.MAMBA2:
        inner = mamba2_inner(r)
        conv_dim = inner + 2 * r.n_groups * r.d_state
        in_out = inner + conv_dim + r.num_heads  # z, xBC, dt
        return (
            hidden * in_out
            + (in_out if r.proj_bias else 0)
            + conv_dim * r.d_conv
            + (conv_dim if r.conv_bias else 0)
            + 3 * r.num_heads  # dt_bias, A_log, D
            + inner  # gated RMSNorm
            + inner * hidden
            + (hidden if r.proj_bias else 0)
        )
    if mixer is Mixer.GATED_DELTANET:
        key_total, value_total = r.key_heads * r.key_head_dim, r.num_heads * r.head_dim
        conv_dim = 2 * key_total + value_total
        return (
            hidden * (2 * key_total + 2 * value_total)  # q, k, v, z projections
            + hidden * 2 * r.num_heads  # beta, alpha
            + conv_dim * r.d_conv
            + (conv_dim if r.conv_bias else 0)
            + 2 * r.num_heads  # dt_bias, A_log
            + r.head_dim  # gated RMSNorm
            + value_total * hidden  # out projection
        )
    if mixer is Mixer.SHORT_CONV:
        bias = r.conv_bias
        return (
            hidden * 3 * hidden
            + (3 * hidden if bias else 0)  # in_proj (B, C, x)
            + hidden * r.d_conv
            + (hidden if bias else 0)  # depthwise conv
            + hidden * hidden
            + (hidden if bias else 0)  # out_proj
        )
    raise AssertionError(mixer)


def mixer_params(spec: ModelSpec, layer: Layer, kv_heads: int | None = None) -> int:
    """Parameters of one layer's token mixer (norms and FFN excluded)."""
    mixer = layer.mixer
    if layer.mixer_params:
        return layer.mixer_params
    if mixer is Mixer.ATTENTION:
        indexer = sparse_indexer_params(spec, layer) if layer.index_head_dim else 0
        return attention_params(spec, layer, kv_heads) + indexer
    if mixer is Mixer.MLA:
        return mla_params(spec)
    if mixer is Mixer.MLA_INDEXER:
        return mla_params(spec) + indexer_params(spec, layer)
    if mixer is Mixer.CROSS_ATTENTION:
        d_k, _ = spec.layer_head_dims(layer)
        # Llama-3.2-Vision: q/k/v/o, per-head q and k RMSNorms, attention and MLP tanh gates
        return attention_params(spec, layer, kv_heads) + 2 * d_k + 2
    if mixer is Mixer.COMPRESSED:
        return compressed_attention_params(spec, layer)
    if mixer is Mixer.LINEAR:
        return spec.hidden_size * spec.hidden_size
    if mixer is Mixer.NOOP:
        return 0
    assert layer.recurrent is not None
    return recurrent_params(spec.hidden_size, mixer, layer.recurrent)  # type: ignore[arg-type]


def mlp_params(hidden: int, inter: int, *, gated: bool, bias: bool) -> int:
    mats = 3 if gated else 2
    weights = mats * hidden * inter
    biases = ((2 if gated else 1) * inter + hidden) if bias else 0
    return weights + biases


def ffn_kind(layer: Layer) -> Ffn:
    assert layer.ffn is not None
    return layer.ffn
