"""`kvplan size`: the cache and weights of one model, and what its G buys over MHA and MQA."""

from __future__ import annotations

from kvplan.core import kvcache
from kvplan.core.frozen import Frozen
from kvplan.core.geometry import LayerKind, Mixer, ModelSpec
from kvplan.core.params import ParamCounts, param_counts, weight_bytes


class Variant(Frozen):
    """The same model at another G (MHA: G = H, MQA: G = 1)."""

    label: str
    kv_heads: int
    kv_bytes_per_token: int
    kv_bytes: int
    ratio_to_actual: float  # KV bytes relative to the model as published


class WeightGroup(Frozen):
    """One weight group's bytes and the format(s) it is stored in."""

    group: str  # embedding, lm_head, attention, dense_mlp, experts, shared_experts, router, other
    bytes: int
    format: str  # e.g. "mxfp4", "int4 g32", "bf16"; "other": biases, norms, the rest


class SizeReport(Frozen):
    spec: ModelSpec
    ctx: int
    batch: int
    kv_dtype: str
    groups: tuple[kvcache.LayerGroup, ...]
    kv_bytes_per_token: int
    kv_bytes_per_sequence: int
    kv_bytes: int
    state_bytes_per_sequence: int
    params: ParamCounts
    weight_bytes: int
    weight_dtype: str
    variants: tuple[Variant, ...]
    weight_groups: tuple[WeightGroup, ...] = ()  # quantized checkpoints: bytes per group


def as_standard_attention(spec: ModelSpec) -> ModelSpec:
    """An MLA model as plain MHA with the decompressed per-head K and V it attends over."""
    layers = tuple(
        layer.model_copy(
            update={"kind": LayerKind.FULL, "mixer": Mixer.ATTENTION, "index_head_dim": 0}
        )
        if layer.kind is LayerKind.MLA
        else layer
        for layer in spec.layers
    )
    return spec.model_copy(update={"layers": layers, "mla": None, "kv_heads": spec.query_heads})


def default_kv_dtype(spec: ModelSpec) -> str:
    """What engines use for kv_cache_dtype=auto: the model's 16-bit dtype (fp16 for fp32)."""
    return "bf16" if spec.checkpoint_dtype == "bf16" else "fp16"


def size_report(
    spec: ModelSpec, *, ctx: int, batch: int, kv_dtype: str, weight_dtype: str | None = None
) -> SizeReport:
    per_seq = kvcache.kv_bytes_per_sequence(spec, ctx, kv_dtype)
    total = batch * per_seq
    weights = weight_bytes(spec, weight_dtype=weight_dtype)
    variants: list[Variant] = []
    has_gqa_layers = any(
        layer.kind in (LayerKind.FULL, LayerKind.SLIDING, LayerKind.CHUNKED)
        for layer in spec.layers
    )
    if spec.mla is not None:
        mha = as_standard_attention(spec)
        m_total = kvcache.kv_bytes(mha, ctx, batch, kv_dtype)
        variants.append(
            Variant(
                label="MHA (decompressed K/V)",
                kv_heads=spec.query_heads,
                kv_bytes_per_token=kvcache.kv_bytes_per_token(mha, kv_dtype),
                kv_bytes=m_total,
                ratio_to_actual=m_total / total if total else 0.0,
            )
        )
    if has_gqa_layers:
        for label, g in (("MHA", spec.query_heads), ("MQA", 1)):
            v_total = kvcache.kv_bytes(spec, ctx, batch, kv_dtype, kv_heads=g)
            variants.append(
                Variant(
                    label=label,
                    kv_heads=g,
                    kv_bytes_per_token=kvcache.kv_bytes_per_token(spec, kv_dtype, kv_heads=g),
                    kv_bytes=v_total,
                    ratio_to_actual=v_total / total if total else 0.0,
                )
            )
    return SizeReport(
        spec=spec,
        ctx=ctx,
        batch=batch,
        kv_dtype=kv_dtype,
        groups=tuple(kvcache.layer_groups(spec, ctx, kv_dtype=kv_dtype)),
        kv_bytes_per_token=kvcache.kv_bytes_per_token(spec, kv_dtype),
        kv_bytes_per_sequence=per_seq,
        kv_bytes=total,
        state_bytes_per_sequence=kvcache.state_bytes_per_sequence(spec, kv_dtype),
        params=param_counts(spec),
        weight_bytes=weights.total,
        weight_dtype=weights.linear_dtype,
        variants=tuple(variants),
        weight_groups=tuple(
            WeightGroup(group=g, bytes=b, format=weights.formats.get(g, weights.other_dtype))
            for g, b in weights.groups.items()
        ),
    )
