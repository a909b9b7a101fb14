"""`pick-g`: the design question — how many KV heads G for a model with H query heads.

One row per divisor G of H (G = H is MHA, G = 1 is MQA). With fewer KV heads the cache and
the K/V projections shrink; quality risk grows as G falls, so the recommendation is the
largest G whose workload fits. When none fits, the remedies are computed, not guessed:
an fp8 cache, a bigger TP group, or the largest batch / context that G = 1 allows.
"""

from __future__ import annotations

from collections.abc import Callable
from math import ceil

from pydantic import BaseModel, ConfigDict, Field

from kvplan.core import kvcache
from kvplan.core.capacity import CtxAnswer, Plan, max_batch, max_ctx, plan
from kvplan.core.deployment import Deployment
from kvplan.core.dtypes import DTYPE_BYTES
from kvplan.core.engines import TpError, divisors
from kvplan.core.geometry import Layer, LayerKind, ModelSpec
from kvplan.core.params import attention_params, llama_ffn_width, weight_bytes
from kvplan.core.sizing import as_standard_attention
from kvplan.units import GiB

DESIGN_VOCAB = 32000  # Llama-2 tokenizer, for models designed from scratch
DESIGN_FFN_MULTIPLE_OF = 256  # Llama-2 7B/13B params.json multiple_of
TP_CANDIDATES = (2, 4, 8, 16)


class GRow(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)

    kv_heads: int | None  # None marks the MLA reference row (a latent, no KV heads)
    label: str  # MHA / GQA-8 / MQA / MLA
    kv_bytes_per_token: int  # whole model, one sequence
    kv_bytes: int  # workload (batch x ctx), per GPU
    weights_bytes: int  # whole model
    kv_budget_bytes: int | None  # None when weights alone do not fit
    fits: bool
    max_batch: int  # at ctx
    max_ctx: int  # at batch
    max_ctx_capped: bool
    decode_ms: float | None = None  # roofline decode step at the requested (batch, ctx)
    decode_tokens_per_s: float | None = None
    plan: Plan | None = Field(default=None, exclude=True)


class Remedy(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)

    kind: str  # kv-fp8 | tp | batch-at-g1 | ctx-at-g1
    text: str
    value: int | None = None


class PickG(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True)

    rows: tuple[GRow, ...]
    recommended_kv_heads: int | None
    reason: str
    remedies: tuple[Remedy, ...]


def label_for(h: int, g: int) -> str:
    if g == h:
        return "MHA"
    if g == 1:
        return "MQA"
    return f"GQA-{g}"


def design_spec(
    *,
    layers: int,
    heads: int,
    head_dim: int,
    hidden: int | None,
    kv_heads: int | None = None,
    intermediate: int | None = None,
    vocab: int = DESIGN_VOCAB,
    max_positions: int | None = None,
) -> ModelSpec:
    """A Llama-style model described only by its geometry flags."""
    hidden = hidden or heads * head_dim
    inter = intermediate or llama_ffn_width(hidden, DESIGN_FFN_MULTIPLE_OF)
    notes = [
        f"designed from flags: Llama-style blocks (gated MLP {inter}, RMSNorm, untied "
        f"embeddings, vocab {vocab})"
    ]
    return ModelSpec(
        name=f"design L{layers} H{heads} d{head_dim}",
        family="design",
        layers=tuple(Layer(kind=LayerKind.FULL) for _ in range(layers)),
        hidden_size=hidden,
        query_heads=heads,
        kv_heads=kv_heads or heads,
        head_dim=head_dim,
        v_head_dim=head_dim,
        intermediate_size=inter,
        vocab_size=vocab,
        max_position_embeddings=max_positions,
        assumptions=tuple(notes),
        source="design flags",
    )


def _row(
    base: Deployment,
    g: int | None,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None],
) -> GRow:
    """One candidate: the model with G KV heads (g=None: the model as it is, e.g. MLA)."""
    spec = base.spec if g is None else base.spec.with_kv_heads(g)
    label = "MLA (latent)" if g is None else label_for(spec.query_heads, g)
    d = base.with_(spec=spec, weights_override=weights_for(spec))
    per_token = kvcache.kv_bytes_per_token(spec, d.kv_dtype)
    p = plan(d)
    if not p.weights_fit:
        weights = d.weights_override or weight_bytes(spec, weight_dtype=d.weight_dtype).total
        return GRow(
            kv_heads=g,
            label=label,
            kv_bytes_per_token=per_token,
            kv_bytes=batch * kvcache.kv_bytes_per_sequence(spec, ctx, d.kv_dtype),
            weights_bytes=weights,
            kv_budget_bytes=None,
            fits=False,
            max_batch=0,
            max_ctx=0,
            max_ctx_capped=False,
        )
    answer: CtxAnswer = max_ctx(p, batch, cap_to_positions=False)
    return GRow(
        kv_heads=g,
        label=label,
        kv_bytes_per_token=per_token,
        kv_bytes=batch * p.seq_bytes(ctx),
        weights_bytes=p.weights_total,
        kv_budget_bytes=p.budget.kv_budget,
        fits=batch * p.seq_bytes(ctx) <= p.budget.kv_budget,
        max_batch=max_batch(p, ctx),
        max_ctx=answer.max_ctx,
        max_ctx_capped=answer.capped_by_positions,
        plan=p,
    )


def valid_kv_heads(spec: ModelSpec, tp: int = 1) -> list[int]:
    return sorted(divisors(spec.query_heads), reverse=True)


def _tp_allows(d: Deployment, g: int) -> bool:
    """Does the engine accept G KV heads at this TP (its rule in the engine table)?"""
    try:
        d.rules.kv_heads_per_gpu(g, d.tp)
    except TpError:
        return False
    return True


def _checkpoint_weights(_spec: ModelSpec) -> int | None:
    return None  # estimate from the parameter count at the checkpoint/weight dtype


def pick_g(
    base: Deployment,
    *,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None] | None = None,
) -> PickG:
    """One row per valid G; the recommendation is the LARGEST G whose workload fits (more KV
    heads keep more of MHA's quality), never merely the smallest cache."""
    weights_for = weights_for or _checkpoint_weights
    mla_row = None
    if base.spec.mla is not None:
        # Compare G for standard attention with the same heads (the decompressed K/V an MLA
        # model attends over), and keep the MLA latent as a reference row.
        mla_row = _row(base, None, ctx, batch, weights_for)
        base = base.with_(spec=as_standard_attention(base.spec))
    spec = base.spec
    rows = []
    for g in valid_kv_heads(spec):
        if not _tp_allows(base, g):
            continue
        rows.append(_row(base, g, ctx, batch, weights_for))
    if mla_row is not None:
        rows.append(mla_row)
    fitting = [(r.kv_heads, r) for r in rows if r.fits and r.kv_heads is not None]
    if fitting:
        g, best = max(fitting, key=lambda gr: gr[0])
        smaller = g < spec.query_heads
        budget = best.kv_budget_bytes or 0
        reason = (
            f"G={g} ({best.label}) is the largest G whose {batch} x {ctx:,}-token "
            f"workload fits ({best.kv_bytes / GiB:.1f} of {budget / GiB:.1f} GiB)"
            + (
                "; more KV heads keep more of MHA's quality, so prefer the largest that fits."
                if smaller
                else "; full MHA fits, so no KV-head sharing is needed."
            )
        )
        return PickG(rows=tuple(rows), recommended_kv_heads=g, reason=reason, remedies=())
    remedies = _remedies(base, rows, ctx=ctx, batch=batch, weights_for=weights_for)
    reason = f"No G fits {batch} sequences of {ctx:,} tokens on this deployment."
    return PickG(
        rows=tuple(rows), recommended_kv_heads=None, reason=reason, remedies=tuple(remedies)
    )


def _first_split_that_fits(
    base: Deployment,
    field: str,
    *,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None],
) -> tuple[int, int] | None:
    """Smallest TP (or PP) size, and the largest G at it, that fits the workload."""
    spec = base.spec
    for n in TP_CANDIDATES:
        current = getattr(base, field)
        if n <= current or (field == "tp" and spec.query_heads % n) or n > spec.num_layers:
            continue
        bigger = base.with_(**{field: n})
        for g in valid_kv_heads(spec):
            if not _tp_allows(bigger, g):
                continue
            if _row(bigger, g, ctx, batch, weights_for).fits:
                return n, g
    return None


def _remedies(
    base: Deployment,
    rows: list[GRow],
    *,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None],
) -> list[Remedy]:
    spec = base.spec
    out: list[Remedy] = []
    if base.kv_dtype not in ("fp8", "int8", "int4"):
        fp8 = base.with_(kv_dtype="fp8")
        for g in valid_kv_heads(spec):
            row = _row(fp8, g, ctx, batch, weights_for)
            if row.fits:
                out.append(
                    Remedy(
                        kind="kv-fp8",
                        value=g,
                        text=(f"an fp8 KV cache (--kv-dtype fp8) fits it with G={g}"),
                    )
                )
                break
    for flag, field in (("--tp", "tp"), ("--pp", "pp")):
        found = _first_split_that_fits(base, field, ctx=ctx, batch=batch, weights_for=weights_for)
        if found is not None:
            n, g = found
            out.append(
                Remedy(
                    kind=field,
                    value=n,
                    text=(f"{flag} {n} ({n} x {base.gpu.name}) fits it with G={g}"),
                )
            )
            break
    g1 = next((r for r in rows if r.kv_heads == 1), None)
    if g1 is not None and g1.plan is not None:
        out.append(
            Remedy(
                kind="batch-at-g1",
                value=g1.max_batch,
                text=(f"with G=1 (MQA) the largest batch at {ctx:,} tokens is {g1.max_batch}"),
            )
        )
        out.append(
            Remedy(
                kind="ctx-at-g1",
                value=g1.max_ctx,
                text=(
                    f"with G=1 (MQA) the largest context at batch {batch} is {g1.max_ctx:,} tokens"
                ),
            )
        )
    elif g1 is not None:
        out.append(
            Remedy(
                kind="weights",
                text="the weights alone do not fit: add GPUs (--tp) "
                "or quantize them (--weight-dtype)",
            )
        )
    return out


def weights_from_params(total_params: int, weight_dtype: str) -> Callable[[ModelSpec], int]:
    """Weight bytes for a design given its parameter count at G = H (MHA): each variant
    subtracts the K/V projection parameters that fewer KV heads remove."""

    def weights(spec: ModelSpec) -> int:
        mha = attention_params(spec, spec.query_heads)
        now = attention_params(spec, spec.kv_heads)
        attn_layers = sum(1 for layer in spec.layers if layer.kind is not LayerKind.NONE)
        params = total_params - attn_layers * (mha - now)
        return ceil(params * DTYPE_BYTES[weight_dtype])

    return weights
