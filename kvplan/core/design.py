"""`pick-g`: the design question — how many KV heads G for a model with H query heads.

One row per divisor G of H (G = H is MHA, G = 1 is MQA). With fewer KV heads the cache and
the K/V projections shrink; quality risk grows as G falls, so the recommendation is the
largest G whose workload fits. When none fits, the remedies are computed, not guessed:
an fp8 cache, a bigger TP group, or the largest batch / context that G = 1 allows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import ceil
from typing import TYPE_CHECKING, Any

from kvplan.core import frozen, kvcache
from kvplan.core.capacity import CtxAnswer, Plan, max_batch, max_ctx, plan
from kvplan.core.deployment import Deployment, flag_name
from kvplan.core.dtypes import DTYPE_BYTES
from kvplan.core.engines import TpError, divisors
from kvplan.core.frozen import Frozen
from kvplan.core.geometry import Layer, LayerKind, MlaDims, ModelSpec, MoeDims
from kvplan.core.gpu import GpuSpec
from kvplan.core.params import attention_params, llama_ffn_width, param_counts
from kvplan.core.sizing import as_standard_attention
from kvplan.errors import KvplanError
from kvplan.units import GiB, fmt_count

if TYPE_CHECKING:  # the declaration is imported where a design is made (fit never does)
    from kvplan.core.design_choices import DesignChoices

DESIGN_VOCAB = 32000  # Llama-2 tokenizer (meta-llama/Llama-2-7b-hf config.json vocab_size)
DESIGN_FFN_MULTIPLE_OF = 256  # Llama-2 7B/13B params.json multiple_of
DESIGN_MLA_ROPE_DIM = 64  # DeepSeek-V2 config.json qk_rope_head_dim (decoupled RoPE key)
TP_CANDIDATES = (2, 4, 8, 16)
# The budget is an estimate (activations, runtime overhead), so a recommendation keeps this
# share of it free; --headroom changes it. Not fitted: a stated safety margin.
DEFAULT_HEADROOM = 0.05
# Deployment-change search space: TP within one 8-GPU node, PP across up to 4 nodes.
SEARCH_TP = (1, 2, 4, 8)
SEARCH_PP = (1, 2, 4)
SEARCH_LIMIT = 8  # changes shown


class DesignAssumptions(Frozen):
    """What a design from flags assumed, each value with how it was chosen (stated in the
    output and the JSON so the numbers can be reproduced and challenged). The user's own
    choices are `kvplan.core.design_choices.DesignChoices` (validated); this is them with
    every rule applied."""

    vocab: int
    vocab_rule: str
    intermediate: int
    intermediate_rule: str
    tie_embeddings: bool
    weight_dtype: str
    experts: int | None = None
    experts_per_token: int | None = None
    expert_intermediate: int | None = None
    window: int | None = None
    global_every: int | None = None
    mla_rank: int | None = None
    mla_rope_dim: int | None = None

    def lines(self) -> list[str]:
        out = [
            f"vocabulary {self.vocab:,} ({self.vocab_rule})",
            f"FFN width {self.intermediate:,} ({self.intermediate_rule})",
            "tied input/output embeddings"
            if self.tie_embeddings
            else "untied embeddings (separate LM head)",
            f"weights in {self.weight_dtype}",
        ]
        if self.experts:
            out.append(
                f"MoE: {self.experts} experts, {self.experts_per_token} per token, "
                f"expert FFN width {self.expert_intermediate:,}"
            )
        if self.window:
            pattern = (
                f"every {self.global_every}th layer global, the rest sliding"
                if self.global_every
                else "every layer sliding"
            )
            out.append(f"sliding window {self.window:,} tokens: {pattern}")
        if self.mla_rank:
            out.append(
                f"MLA latent rank {self.mla_rank} + {self.mla_rope_dim} RoPE dims per token "
                "per layer (DeepSeek-V2 layout)"
            )
        return out


class GRow(Frozen):
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
    kv_bytes_per_token_per_gpu: int = 0
    weights_per_gpu_bytes: int = 0
    fits_with_headroom: bool = False  # the workload fits in (1 - headroom) x budget
    invalid_reason: str | None = None  # the engine refuses this G at the chosen TP
    decode_ms: float | None = None  # roofline decode step at the requested (batch, ctx)
    decode_tokens_per_s: float | None = None
    plan: Plan | None = frozen.field(default=None, exclude=True)


class Remedy(Frozen):
    kind: str  # kv-fp8 | tp | batch-at-g1 | ctx-at-g1
    text: str
    value: int | None = None


class DeploymentChange(Frozen):
    """A deployment that fits a larger G than the asked one, verified by the same solver."""

    kv_heads: int  # the largest G this deployment fits (with the headroom)
    label: str
    gpu: str
    tp: int
    pp: int
    kv_dtype: str
    gpus: int  # GPUs used: tp x pp
    changes: tuple[str, ...]  # the flags that differ from the asked deployment
    kv_bytes: int  # workload, per GPU
    kv_budget_bytes: int  # per GPU


class GCurve(Frozen):
    """Largest batch the KV budget holds at each context, for one G (the chart's line)."""

    kv_heads: int | None
    label: str
    points: tuple[tuple[int, int], ...]  # (context tokens, max batch)


CURVE_MIN_CTX = 1024


def curve_contexts(ctx: int) -> tuple[int, ...]:
    """Doubling contexts from 1k to at least 4x the asked context, with the asked one."""
    out = {ctx}
    c = CURVE_MIN_CTX
    while c <= max(4 * ctx, 8 * CURVE_MIN_CTX):
        out.add(c)
        c *= 2
    return tuple(sorted(out))


def batch_curves(rows: Sequence[GRow], ctx: int) -> tuple[GCurve, ...]:
    """One curve per row whose weights fit: max batch (the same solver as the table) at each
    context of `curve_contexts(ctx)`."""
    contexts = curve_contexts(ctx)
    return tuple(
        GCurve(
            kv_heads=r.kv_heads,
            label=r.label,
            points=tuple((c, max_batch(r.plan, c)) for c in contexts),
        )
        for r in rows
        if r.plan is not None and r.plan.weights_fit and r.invalid_reason is None
    )


class PickG(Frozen):
    rows: tuple[GRow, ...]
    recommended_kv_heads: int | None
    reason: str
    remedies: tuple[Remedy, ...]
    headroom: float = DEFAULT_HEADROOM
    target_kv_heads: int | None = None
    changes: tuple[DeploymentChange, ...] = ()


def label_for(h: int, g: int) -> str:
    if g == h:
        return "MHA"
    if g == 1:
        return "MQA"
    return f"GQA-{g}"


def design_assumptions(choices: DesignChoices, *, weight_dtype: str) -> DesignAssumptions:
    """Fill in what the user did not set, saying which rule chose each value. `choices`
    come validated (kvplan.sources.deployment.parse_design): heads and head_dim are given.

    FFN width rule (Meta's Llama reference code): int(2 x 4 x hidden / 3) rounded up to a
    multiple of 256 (Llama-2-7B: 11008)."""
    c = choices
    if c.heads is None or c.head_dim is None:
        raise ValueError("a design needs heads and head_dim")  # parse_design ensures it
    hidden = c.hidden or c.heads * c.head_dim
    rule_inter = llama_ffn_width(hidden, DESIGN_FFN_MULTIPLE_OF)
    inter = c.intermediate or rule_inter
    inter_rule = (
        f"given ({flag_name('intermediate')})"
        if c.intermediate
        else f"Llama rule: 8/3 x hidden {hidden:,}, rounded up to a multiple of "
        f"{DESIGN_FFN_MULTIPLE_OF}"
    )
    return DesignAssumptions(
        vocab=c.vocab or DESIGN_VOCAB,
        vocab_rule=f"given ({flag_name('vocab')})" if c.vocab else "Llama-2 tokenizer, the default",
        intermediate=inter,
        intermediate_rule=inter_rule,
        tie_embeddings=c.tie_embeddings,
        weight_dtype=weight_dtype,
        experts=c.experts,
        experts_per_token=c.experts_per_token,
        expert_intermediate=(c.expert_intermediate or inter) if c.experts else None,
        window=c.window,
        global_every=c.global_every,
        mla_rank=c.mla_rank,
        mla_rope_dim=DESIGN_MLA_ROPE_DIM if c.mla_rank else None,
    )


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
    choices: DesignAssumptions | None = None,
) -> ModelSpec:
    """A Llama-style model described only by its geometry flags (and `choices`: vocabulary,
    FFN width, tied embeddings, MoE, a sliding/global pattern, an MLA latent)."""
    hidden = hidden or heads * head_dim
    if choices is None:
        from kvplan.core.design_choices import DesignChoices

        choices = design_assumptions(
            DesignChoices(
                heads=heads,
                head_dim=head_dim,
                hidden=hidden,
                vocab=vocab,
                intermediate=intermediate,
            ),
            weight_dtype="bf16",
        )
    moe = None
    if choices.experts and choices.experts_per_token and choices.expert_intermediate:
        moe = MoeDims(
            num_experts=choices.experts,
            experts_per_token=choices.experts_per_token,
            expert_intermediate=choices.expert_intermediate,
        )
    mla = None
    qk_dim = head_dim
    if choices.mla_rank:
        rope = choices.mla_rope_dim or DESIGN_MLA_ROPE_DIM
        mla = MlaDims(
            kv_lora_rank=choices.mla_rank,
            qk_rope_head_dim=rope,
            qk_nope_head_dim=head_dim,
            v_head_dim=head_dim,
        )
        qk_dim = head_dim + rope  # DeepSeek-V2: q/k heads are nope + rope dims
    layer_list = []
    for i in range(layers):
        if mla is not None:
            layer = Layer(kind=LayerKind.MLA, moe=moe is not None)
        elif choices.window and not (choices.global_every and (i + 1) % choices.global_every == 0):
            # Gemma 3's rule: layer i is sliding unless (i + 1) % pattern == 0
            layer = Layer(kind=LayerKind.SLIDING, window=choices.window, moe=moe is not None)
        else:
            layer = Layer(kind=LayerKind.FULL, moe=moe is not None)
        layer_list.append(layer)
    notes = ["designed from flags: Llama-style blocks (gated MLP, RMSNorm)", *choices.lines()]
    return ModelSpec(
        name=f"design L{layers} H{heads} d{head_dim}",
        family="design",
        layers=tuple(layer_list),
        hidden_size=hidden,
        query_heads=heads,
        kv_heads=kv_heads or heads,
        head_dim=qk_dim,
        v_head_dim=head_dim,
        mla=mla,
        intermediate_size=0 if moe is not None else choices.intermediate,
        moe=moe,
        vocab_size=choices.vocab,
        tie_embeddings=choices.tie_embeddings,
        max_position_embeddings=max_positions,
        checkpoint_dtype=choices.weight_dtype
        if choices.weight_dtype in ("bf16", "fp16", "fp32")
        else "bf16",
        assumptions=tuple(notes),
        source="design flags",
    )


def _row(
    base: Deployment,
    g: int | None,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None],
    headroom: float = DEFAULT_HEADROOM,
) -> GRow:
    """One candidate: the model with G KV heads (g=None: the model as it is, e.g. MLA).
    Sizes per GPU are what the engine allocates on each GPU of the TP x PP group."""
    spec = base.spec if g is None else base.spec.with_kv_heads(g)
    label = "MLA (latent)" if g is None else label_for(spec.query_heads, g)
    d = base.with_(spec=spec, weights_override=weights_for(spec))
    per_token = kvcache.kv_bytes_per_token(spec, d.kv_dtype)
    p = plan(d)
    kv_gpu = batch * p.seq_bytes(ctx)
    common: dict[str, Any] = {
        "kv_heads": g,
        "label": label,
        "kv_bytes_per_token": per_token,
        "kv_bytes": kv_gpu,
        "weights_bytes": p.weights_total,
        "kv_bytes_per_token_per_gpu": p.kv_bytes_per_token,
        "weights_per_gpu_bytes": p.weights_per_gpu,
    }
    if not p.weights_fit:
        return GRow(
            **common,
            kv_budget_bytes=None,
            fits=False,
            max_batch=0,
            max_ctx=0,
            max_ctx_capped=False,
        )
    answer: CtxAnswer = max_ctx(p, batch, cap_to_positions=False)
    budget = p.budget.kv_budget
    return GRow(
        **common,
        kv_budget_bytes=budget,
        fits=kv_gpu <= budget,
        fits_with_headroom=kv_gpu <= budget * (1 - headroom),
        max_batch=max_batch(p, ctx),
        max_ctx=answer.max_ctx,
        max_ctx_capped=answer.capped_by_positions,
        plan=p,
    )


def _invalid_row(base: Deployment, g: int, reason: str) -> GRow:
    """A G the engine refuses at this TP: shown, with why, instead of silently dropped."""
    spec = base.spec.with_kv_heads(g)
    return GRow(
        kv_heads=g,
        label=label_for(spec.query_heads, g),
        kv_bytes_per_token=kvcache.kv_bytes_per_token(spec, base.kv_dtype),
        kv_bytes=0,
        weights_bytes=0,
        kv_budget_bytes=None,
        fits=False,
        max_batch=0,
        max_ctx=0,
        max_ctx_capped=False,
        invalid_reason=reason,
    )


def valid_kv_heads(spec: ModelSpec, tp: int = 1) -> list[int]:
    return sorted(divisors(spec.query_heads), reverse=True)


def _tp_refusal(d: Deployment, g: int) -> str | None:
    """Why the engine refuses G KV heads at this TP (its rule in the engine table), or None."""
    try:
        d.rules.kv_heads_per_gpu(g, d.tp)
    except TpError as exc:
        return exc.message
    return None


def _tp_allows(d: Deployment, g: int) -> bool:
    return _tp_refusal(d, g) is None


def _checkpoint_weights(_spec: ModelSpec) -> int | None:
    return None  # estimate from the parameter count at the checkpoint/weight dtype


def pick_g(
    base: Deployment,
    *,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None] | None = None,
    headroom: float = DEFAULT_HEADROOM,
    target_kv_heads: int | None = None,
    search_gpus: Sequence[GpuSpec] = (),
) -> PickG:
    """One row per divisor G of H; the recommendation is the LARGEST G whose workload fits
    in the budget less `headroom` (more KV heads keep more of MHA's quality), never merely
    the smallest cache. G values the engine refuses at this TP are rows with the reason.

    When the recommendation is below the G the user asked for (`target_kv_heads`), or no G
    fits at all, the deployments in the search space (GPU types in `search_gpus` x TP x PP x
    KV dtype) that fit a larger G (up to the asked G, else H) are listed, cheapest (fewest
    GPUs) first. Without an asked G a fitting answer is not searched further: the search
    costs about a second and the answer is already there."""
    if not 0 <= headroom < 1:
        raise KvplanError(f"--headroom must be in [0%, 100%), got {headroom:.0%}")
    weights_for = weights_for or _checkpoint_weights
    mla_row = None
    if base.spec.mla is not None:
        # Compare G for standard attention with the same heads (the decompressed K/V an MLA
        # model attends over), and keep the MLA latent as a reference row.
        mla_row = _row(base, None, ctx, batch, weights_for, headroom)
        base = base.with_(spec=as_standard_attention(base.spec))
    spec = base.spec
    target = target_kv_heads or spec.query_heads
    if spec.query_heads % target:
        raise KvplanError(
            f"--target-g {target} does not divide the {spec.query_heads} query heads",
            hint=f"valid G: {', '.join(map(str, valid_kv_heads(spec)))}",
            setting="target_g",
        )
    rows = []
    for g in valid_kv_heads(spec):
        refusal = _tp_refusal(base, g)
        if refusal is not None:
            rows.append(_invalid_row(base, g, refusal))
            continue
        rows.append(_row(base, g, ctx, batch, weights_for, headroom))
    if mla_row is not None:
        rows.append(mla_row)
    margin = f"{headroom:.0%} of the budget kept free"
    fitting = [
        (r.kv_heads, r)
        for r in rows
        if r.fits_with_headroom and r.kv_heads is not None and r.invalid_reason is None
    ]
    recommended: int | None = None
    remedies: list[Remedy] = []
    if fitting:
        g, best = max(fitting, key=lambda gr: gr[0])
        recommended = g
        smaller = g < spec.query_heads
        budget = best.kv_budget_bytes or 0
        reason = (
            f"G={g} ({best.label}) is the largest G whose {batch} x {ctx:,}-token "
            f"workload fits with {margin} ({best.kv_bytes / GiB:.1f} of "
            f"{budget * (1 - headroom) / GiB:.1f} GiB per GPU)"
            + (
                "; more KV heads keep more of MHA's quality, so prefer the largest that fits."
                if smaller
                else "; full MHA fits, so no KV-head sharing is needed."
            )
        )
    else:
        remedies = _remedies(base, rows, ctx=ctx, batch=batch, weights_for=weights_for)
        reason = f"No G fits {batch} sequences of {ctx:,} tokens on this deployment with {margin}."
    changes: tuple[DeploymentChange, ...] = ()
    asked = target_kv_heads is not None and (recommended or 0) < target
    if search_gpus and (asked or recommended is None):
        changes = search_changes(
            base,
            ctx=ctx,
            batch=batch,
            weights_for=weights_for,
            headroom=headroom,
            above=recommended or 0,
            up_to=target,
            gpus=search_gpus,
        )
    return PickG(
        rows=tuple(rows),
        recommended_kv_heads=recommended,
        reason=reason,
        remedies=tuple(remedies),
        headroom=headroom,
        target_kv_heads=target,
        changes=changes,
    )


def _largest_g_fitting(
    d: Deployment,
    gs: Sequence[int],
    *,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None],
    headroom: float,
) -> tuple[int, int, int] | None:
    """(G, KV bytes per GPU, budget per GPU) for the largest G in `gs` (descending) that the
    engine accepts at this TP and whose workload fits in the budget less the headroom."""
    for g in gs:
        if not _tp_allows(d, g):
            continue
        spec = d.spec.with_kv_heads(g)
        p = plan(d.with_(spec=spec, weights_override=weights_for(spec)))
        if not p.weights_fit:
            continue
        need = batch * p.seq_bytes(ctx)
        if need <= p.budget.kv_budget * (1 - headroom):
            return g, need, p.budget.kv_budget
    return None


def search_changes(
    base: Deployment,
    *,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None],
    headroom: float,
    above: int,
    up_to: int,
    gpus: Sequence[GpuSpec],
    limit: int = SEARCH_LIMIT,
) -> tuple[DeploymentChange, ...]:
    """The cheapest deployment changes that fit a G in (above, up_to]: every combination of
    GPU type, TP (SEARCH_TP), PP (SEARCH_PP) and KV dtype (the asked one, fp8), each checked
    by the same budget solver as the table, ranked by GPUs used (see the end of the body)."""
    spec = base.spec
    gs = [g for g in valid_kv_heads(spec) if above < g <= up_to]
    if not gs:
        return ()
    kv_dtypes = list(dict.fromkeys([base.kv_dtype, "fp8"]))
    found: list[DeploymentChange] = []
    for gpu in gpus:
        for tp in SEARCH_TP:
            if spec.query_heads % tp:
                continue
            for pp in SEARCH_PP:
                if pp > spec.num_layers:
                    continue
                for kv in kv_dtypes:
                    d = base.with_(gpu=gpu, tp=tp, pp=pp, kv_dtype=kv)
                    if (gpu.name, tp, pp, kv) == (
                        base.gpu.name,
                        base.tp,
                        base.pp,
                        base.kv_dtype,
                    ):
                        continue
                    hit = _largest_g_fitting(
                        d, gs, ctx=ctx, batch=batch, weights_for=weights_for, headroom=headroom
                    )
                    if hit is None:
                        continue
                    g, need, budget = hit
                    changed = [
                        f"--{flag} {new}"
                        for flag, old, new in (
                            ("gpu", base.gpu.name, gpu.name),
                            ("tp", base.tp, tp),
                            ("pp", base.pp, pp),
                            ("kv-dtype", base.kv_dtype, kv),
                        )
                        if old != new
                    ]
                    found.append(
                        DeploymentChange(
                            kv_heads=g,
                            label=label_for(spec.query_heads, g),
                            gpu=gpu.name,
                            tp=tp,
                            pp=pp,
                            kv_dtype=kv,
                            gpus=tp * pp,
                            changes=tuple(changed),
                            kv_bytes=need,
                            kv_budget_bytes=budget,
                        )
                    )
    # Two lists, each ranked by GPUs used: staying on the asked GPU type (TP / PP / KV
    # dtype changes only), then any GPU type. Per G, only the fewest GPUs; among those, the
    # fewest flags changed, then the most spare budget per GPU. A change that uses as many
    # GPUs as another of its list yet reaches a smaller G is dominated and dropped.
    kept: list[DeploymentChange] = []
    for same_gpu in (True, False):
        group = [c for c in found if (c.gpu == base.gpu.name) == same_gpu]
        best: dict[int, list[DeploymentChange]] = {}
        for c in group:
            best.setdefault(c.kv_heads, []).append(c)
        ranked: list[DeploymentChange] = []
        for cands in best.values():
            fewest = min(c.gpus for c in cands)
            ranked.append(
                min(
                    (c for c in cands if c.gpus == fewest),
                    key=lambda c: (len(c.changes), -(c.kv_budget_bytes - c.kv_bytes), c.gpu),
                )
            )
        ranked.sort(key=lambda c: (c.gpus, -c.kv_heads))
        mine: list[DeploymentChange] = []
        for c in ranked:
            if not any(k.gpus <= c.gpus and k.kv_heads >= c.kv_heads for k in mine):
                mine.append(c)
        kept.extend(mine[: limit // 2])
    return tuple(kept)


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
        params_floor(spec, total_params)
        mha = attention_params(spec, spec.query_heads)
        now = attention_params(spec, spec.kv_heads)
        attn_layers = sum(1 for layer in spec.layers if layer.kind is not LayerKind.NONE)
        params = total_params - attn_layers * (mha - now)
        return ceil(params * DTYPE_BYTES[weight_dtype])

    return weights


def params_floor(spec: ModelSpec, total_params: int) -> None:
    """A parameter count below what the geometry itself needs at G = H (the attention
    projections of every layer plus the embeddings) cannot be this model's: an input error."""
    attn_layers = sum(1 for layer in spec.layers if layer.kind is not LayerKind.NONE)
    attention = attn_layers * attention_params(spec, spec.query_heads)
    embedding = param_counts(spec).embedding
    floor = attention + embedding
    if total_params < floor:
        flag = flag_name("params")
        raise KvplanError(
            f"{flag} {fmt_count(total_params)} is below what this geometry needs at G=H: "
            f"{fmt_count(attention)} of attention projections + {fmt_count(embedding)} of "
            f"embeddings = {fmt_count(floor)}",
            hint=f"give the whole model's parameter count, e.g. {flag} 13B",
            setting="params",
        )
