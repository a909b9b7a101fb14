"""Typed answers of `kvplan fit` and `kvplan pick-g`: one object per command.

Each report is assembled here from the plan, the solvers and the roofline; the human view
and the `--json` object are both rendered from it (the JSON object is the report's
`model_dump(mode="json")`, so every field a script reads is a typed field here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from kvplan.core.capacity import (
    FitResult,
    Plan,
    Replication,
    sequence_shortfall,
    solve_fit,
    weights_shortfall,
)
from kvplan.core.deployment import Deployment
from kvplan.core.design import (
    DEFAULT_HEADROOM,
    DesignAssumptions,
    GCurve,
    GRow,
    PickG,
    batch_curves,
    pick_g,
)
from kvplan.core.engine_log import (
    StartupCheck,
    auto_max_model_len,
    engine_log_lines,
    resolve_max_model_len,
    startup_check,
)
from kvplan.core.engines import launch_line
from kvplan.core.evidence import Study, relevant
from kvplan.core.frozen import Frozen, field
from kvplan.core.geometry import ModelSpec
from kvplan.core.gpu import GpuSpec
from kvplan.core.sglang_swa import SwaPools
from kvplan.core.trt_windows import WindowPool
from kvplan.errors import KvplanError


class _Report(Frozen):
    def to_json(self) -> dict[str, Any]:
        """The command's `--json` object without the envelope keys."""
        return self.model_dump(mode="json")


class ModelRef(_Report):
    """Which model answered, and where its config came from."""

    model: str
    source: str
    revision: str | None = None
    # a line about the config's provenance for the reader (an unverified catalog entry)
    model_note: str | None = None


class DeploymentSummary(_Report):
    """The deployment and its KV budget per GPU, every size in bytes."""

    gpu: str
    engine: str
    engine_version: str  # the modelled release line, e.g. "vLLM 0.19"
    # the release asked for ("0.24.0"; None: the engine's default line), which a line's
    # name ("vLLM 0.33") does not say and its numbers can depend on
    engine_release: str | None = None
    engine_knob: str | None
    memory_fraction: float | None
    tp: int
    pp: int
    kv_dtype: str
    block_size: int
    gpu_memory_bytes: int
    engine_memory_bytes: int
    weights_bytes: int  # per GPU, incl. rope_cache_bytes
    weights_total_bytes: int
    rope_cache_bytes: int  # per GPU: the engine's rotary cos/sin tables, loaded with the weights
    # per GPU, in weights_bytes: what the engine keeps whole on every TP rank (and its share of
    # duplicated KV heads' rows) beyond an even split (EngineRules.tp_replicated)
    weights_replicated_bytes: int
    activation_bytes: int
    overhead_bytes: int
    kv_budget_bytes: int
    shortfall_bytes: int  # > 0 when the weights and reserves exceed what the engine grants
    budget_formula: str
    kv_heads_per_gpu: int
    kv_bytes_per_token_per_gpu: int
    kv_blocks: int
    kv_tokens: int
    # prefix caching as the engine runs it (the user's switch, else the release's default;
    # None: no engine / no default read), and for a vLLM hybrid the Mamba cache mode and the
    # state pages one request holds per state group (kvplan.core.prefix_cache)
    prefix_caching: bool | None
    mamba_cache_mode: str | None
    state_pages_per_request: int | None
    replication: Replication | None
    notes: tuple[str, ...]
    # TensorRT-LLM --vswa: one pool per window size (kvplan.core.trt_windows); empty otherwise
    kv_window_pools: tuple[WindowPool, ...] = ()
    # SGLang hybrid SWA: the full-layer and sliding-window token pools (kvplan.core.sglang_swa)
    kv_swa_pools: SwaPools | None = None


def deployment_summary(p: Plan) -> dict[str, Any]:
    b = p.budget
    d = p.deployment
    return {
        "gpu": d.gpu.name,
        "engine": b.engine.value,
        "engine_version": d.profile.name,
        "engine_release": d.engine_version,
        "engine_knob": b.knob,
        "memory_fraction": b.fraction,
        "tp": d.tp,
        "pp": d.pp,
        "kv_dtype": d.kv_dtype,
        "block_size": d.block_size,
        "gpu_memory_bytes": b.total_memory,
        "engine_memory_bytes": b.engine_memory,
        "weights_bytes": p.weights_per_gpu,
        "weights_total_bytes": p.weights_total,
        "rope_cache_bytes": p.rope_cache_per_gpu,
        "weights_replicated_bytes": p.weights_replicated_per_gpu,
        "activation_bytes": b.activations,
        "overhead_bytes": b.overhead,
        "kv_budget_bytes": b.kv_budget,
        "shortfall_bytes": b.shortfall,
        "budget_formula": b.formula,
        "kv_heads_per_gpu": p.kv_heads_per_gpu,
        "kv_bytes_per_token_per_gpu": p.kv_bytes_per_token,
        "kv_blocks": p.num_blocks,
        "kv_tokens": p.kv_tokens,
        "prefix_caching": d.prefix_caching,
        "mamba_cache_mode": d.mamba_cache_mode.value if p.hybrid and d.mamba_cache_mode else None,
        "state_pages_per_request": d.state_pages if p.hybrid and p.hybrid.has_state else None,
        "replication": p.replication,
        "notes": p.notes,
        "kv_window_pools": p.trt_windows.pools if p.trt_windows else (),
        "kv_swa_pools": p.swa_pools,
    }


# ---- decode latency at an operating point ----------------------------------------------
class OperatingPoint(_Report):
    """The roofline estimate at the answer's (batch, ctx); None fields when not estimated."""

    summary: str
    batch: int | None = None
    ctx: int | None = None
    decode_ms: float | None = None
    decode_tokens_per_s: float | None = None
    tokens_per_s_per_seq: float | None = None
    prefill_ms: float | None = None
    bound: Literal["memory", "compute"] | None = None
    bytes_weights: int | None = None
    bytes_kv: int | None = None
    flops: float | None = None
    kv_share: float | None = None


def operating_point(p: Plan, batch: int, ctx: int) -> OperatingPoint:
    from kvplan.core.roofline import estimate_decode  # only fit and pick-g need it

    try:
        e = estimate_decode(p, batch=batch, ctx=ctx)
    except KvplanError as exc:
        return OperatingPoint(summary=f"Decode latency: not estimated ({exc})")
    return OperatingPoint(
        summary=(
            f"Decode at batch {e.batch:,} x {e.ctx:,} tokens: {e.decode_ms:,.1f} ms/step, "
            f"{e.decode_tokens_per_s:,.0f} tok/s aggregate ({e.tokens_per_s_per_seq:,.1f} per "
            f"sequence), {e.bound}-bound, KV {e.kv_share:.0%} of bytes; prefill of "
            f"{e.ctx:,} tokens ~{e.prefill_ms:,.0f} ms (roofline estimate, `kvplan roofline` "
            "for the breakdown)"
        ),
        batch=e.batch,
        ctx=e.ctx,
        decode_ms=e.decode_ms,
        decode_tokens_per_s=e.decode_tokens_per_s,
        tokens_per_s_per_seq=e.tokens_per_s_per_seq,
        prefill_ms=e.prefill_ms,
        bound=e.bound,
        bytes_weights=e.bytes_weights,
        bytes_kv=e.bytes_kv,
        flops=e.flops,
        kv_share=e.kv_share,
    )


def _answer_point(r: FitResult) -> tuple[int, int] | None:
    """(batch, ctx) the fit answer names: (max batch, ctx), (batch, max ctx), the pair
    checked, or in table mode the max batch at the longest context that holds one."""
    if r.mode == "table":
        rows = [row for row in r.table if row.max_batch > 0]
        point = (rows[-1].max_batch, rows[-1].ctx) if rows else None
    elif r.mode == "max_batch":
        point = (r.max_batch or 0, r.ctx or 0)
    elif r.mode == "max_ctx":
        point = (r.batch or 0, r.max_ctx or 0)
    else:
        point = (r.batch or 0, r.ctx or 0)
    return point if point and point[0] and point[1] else None


# ---- fit -------------------------------------------------------------------------------
class FitReport(FitResult, DeploymentSummary, ModelRef):
    """`kvplan fit`: the deployment, its budget, the answer, and decode latency there."""

    reason: str | None = None  # why it does not fit, when it does not
    latency: OperatingPoint | None = None
    engine_log: tuple[str, ...] = ()  # what the engine would print, in its own words
    startup: StartupCheck | None = None  # would the engine start at max_model_len
    auto_max_model_len: int | None = None  # what --max-model-len auto would pick
    # the engine's own command for this deployment (at a max_model_len that starts)
    launch_command: str | None = None
    plan: Plan = field(exclude=True)

    @property
    def answered_fits(self) -> bool:
        """Does the asked workload fit (table mode: does any context hold a sequence)?"""
        if self.mode == "table":
            return any(row.max_batch > 0 for row in self.table)
        return bool(self.fits)


def _reason(p: Plan, r: FitResult) -> str | None:
    """Why the answer is "does not fit": the weights, or (largest batch 0) one sequence's KV."""
    if not p.weights_fit:
        return weights_shortfall(p)
    if r.mode == "max_batch" and not r.max_batch and r.ctx:
        return sequence_shortfall(p, r.ctx)
    return None


def fit_report(
    p: Plan,
    model: ModelRef,
    *,
    ctx: int | None,
    batch: int | None,
    latency: bool = True,
    serve_as: str | None = None,
) -> FitReport:
    """`serve_as`: what the launch line hands the engine for the model (a local checkpoint
    folder's path), when that is not the model's name."""
    asked = resolve_max_model_len(p)  # auto (-1): what vLLM's auto-fit picks
    result = solve_fit(p, ctx=ctx, batch=batch, max_model_len=asked)
    point = _answer_point(result) if latency and p.weights_fit else None
    startup = startup_check(p, result.max_model_len) if p.weights_fit else None
    warnings = list(result.warnings)
    if p.deployment.auto_max_model_len and p.weights_fit and asked is None:
        warnings.append(
            f"{p.deployment.engine_label} would refuse to start: --max-model-len auto "
            "finds no length whose KV fits (not even one token)"
        )
    auto = None
    # a hybrid model's refusal can be about state slots (max_num_seqs above the pool's
    # Mamba pages) while one max_model_len request fits: a shorter length does not help
    slots_refusal = (
        startup is not None
        and startup.refused
        and startup.state_slots is not None
        and (startup.needed_bytes or 0) <= startup.available_bytes
    )
    if startup is not None:
        auto = auto_max_model_len(startup, p.max_positions)
        if startup.refused and startup.message:
            engine = p.deployment.engine_label
            warnings.append(f"{engine} would refuse to start: {startup.message}")
            if slots_refusal:
                warnings.append(
                    f"--max-num-seqs {startup.state_slots:,} or fewer would start (each "
                    "running request holds its own state pages)"
                )
            else:
                warnings.append(
                    f"largest --max-model-len that would start: {startup.largest_max_model_len:,}"
                    + (f" (--max-model-len auto picks {auto:,})" if auto else "")
                )
        warnings.extend(startup.warnings)
    length = result.max_model_len
    launch_deployment = p.deployment
    if slots_refusal and startup is not None and startup.state_slots:
        # fewer sequences only shrink the sampler estimate, so the slots still hold
        launch_deployment = p.deployment.with_(max_num_seqs=startup.state_slots)
    elif startup is not None and startup.refused and startup.largest_max_model_len:
        length = min(length or startup.largest_max_model_len, startup.largest_max_model_len)
    launch, launch_notes = launch_line(launch_deployment, serve_as or model.model, length)
    warnings.extend(launch_notes)
    seqs = p.deployment.scheduler_seqs
    if result.max_batch is not None and result.max_batch > seqs:
        warnings.append(
            f"the KV pool holds {result.max_batch:,} sequences but the engine schedules at most "
            f"max_num_seqs = {seqs:,} at once (--max-num-seqs)"
        )
    return FitReport(
        **model.shallow_dump(),
        **deployment_summary(p),
        **result.shallow_dump(exclude={"kv_budget_bytes", "warnings"}),
        warnings=tuple(warnings),
        reason=_reason(p, result),
        latency=operating_point(p, *point) if point else None,
        engine_log=engine_log_lines(p, result.max_model_len),
        startup=startup,
        auto_max_model_len=auto,
        launch_command=launch,
        plan=p,
    )


# ---- pick-g ----------------------------------------------------------------------------
class PickGReport(PickG, ModelRef):
    """`kvplan pick-g`: one row per G, the recommendation, remedies, latency per row."""

    header: str
    ctx: int
    batch: int
    gpu: str
    engine: str
    tp: int
    pp: int
    kv_dtype: str
    block_size: int
    memory_fraction: float | None
    engine_version: str = ""  # the modelled release line, e.g. "vLLM 0.19" (as fit's JSON)
    weight_dtype: str | None = None  # None: the checkpoint's
    design: DesignAssumptions | None = None  # what a design from flags assumed
    assumptions: tuple[str, ...] = ()  # every assumption behind the numbers, stated
    # Published quality evidence for the layouts in the rows: the studies' own settings,
    # never a prediction for this model.
    evidence: tuple[Study, ...] = ()
    curves: tuple[GCurve, ...] = ()  # largest batch vs context per G (the chart)

    @property
    def answered_fits(self) -> bool:
        return self.recommended_kv_heads is not None


def _with_latency(result: PickG, *, ctx: int, batch: int) -> tuple[GRow, ...]:
    """Decode step per G at the requested (batch, ctx). Rows whose workload does not fit are
    still estimated at the requested batch: what G would cost if the memory were there.
    Rows whose weights do not fit, or on a GPU without the figures needed, get none."""
    from kvplan.core.roofline import estimate_decode

    out = []
    for row in result.rows:
        if row.plan is not None and row.plan.weights_fit:
            try:
                e = estimate_decode(row.plan, batch=batch, ctx=ctx)
            except KvplanError:
                pass
            else:
                row = row.model_copy(
                    update={"decode_ms": e.decode_ms, "decode_tokens_per_s": e.decode_tokens_per_s}
                )
        out.append(row)
    return tuple(out)


def pick_g_report(
    d: Deployment,
    model: ModelRef,
    *,
    header: str,
    ctx: int,
    batch: int,
    weights_for: Callable[[ModelSpec], int | None] | None = None,
    headroom: float = DEFAULT_HEADROOM,
    target_kv_heads: int | None = None,
    search_gpus: Sequence[GpuSpec] = (),
    design: DesignAssumptions | None = None,
    evidence: tuple[Study, ...] = (),
) -> PickGReport:
    result = pick_g(
        d,
        ctx=ctx,
        batch=batch,
        weights_for=weights_for,
        headroom=headroom,
        target_kv_heads=target_kv_heads,
        search_gpus=search_gpus,
    )
    return PickGReport(
        **model.shallow_dump(),
        **{k: getattr(result, k) for k in PickG.model_fields if k != "rows"},
        rows=_with_latency(result, ctx=ctx, batch=batch),
        header=header,
        ctx=ctx,
        batch=batch,
        gpu=d.gpu.name,
        engine=d.engine.value,
        engine_version=d.profile.name,
        tp=d.tp,
        pp=d.pp,
        kv_dtype=d.kv_dtype,
        block_size=d.block_size,
        memory_fraction=d.fraction,
        weight_dtype=d.weight_dtype,
        design=design,
        assumptions=d.spec.assumptions,
        evidence=relevant(evidence, {_layout(r.label) for r in result.rows}),
        curves=batch_curves(result.rows, ctx),
    )


def _layout(label: str) -> str:
    """Row label -> layout key of the evidence file: MHA, GQA-8, MQA, MLA (latent)."""
    return label.split("-")[0].split(" ")[0].lower()
