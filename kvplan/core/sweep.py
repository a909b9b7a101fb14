"""`kvplan sweep`: `fit` for every (ctx, batch) of a grid, vectorised, exactly.

A sweep is a set of *plans* (model x GPU x TP x PP x engine x engine release x KV dtype x G)
times a grid of
contexts and batches. Everything that depends on the plan alone — the KV budget, the
per-GPU layout, the per-token bytes of each layer group, the roofline's per-step constants
— is computed once per plan by the scalar core (`capacity.plan`, `roofline`'s terms): a few
thousand calls at most. What depends on (ctx, batch) is then arithmetic on a handful of
per-plan terms, done with numpy over the whole grid, never a Python loop over scenarios:

  held_g(n)    = ceil(min(n, window_g) / block) * block       (full/MLA: window = inf)
  seq(n)       = ceil(sum_g E_g * held_g(n) / den) + fixed state per sequence
  kv_bytes     = batch * seq(ctx);  fits = kv_bytes <= budget;  headroom = budget - kv_bytes
  max_batch    = budget // seq(ctx)
  max_ctx      = largest n with batch * seq(n) <= budget (a vectorised bisection over all
                 (plan, batch) pairs at once), capped by the model's max positions
  decode_ms    = the roofline's `step_times` on arrays (ctx down, batch across), so the
                 step is the scalar formula itself: pp * (max(memory, compute, floor)
                 + fixed costs + all-reduces), with the GPU platform's fitted profile

with E_g the cache bytes per token of layer group g (`kvcache.token_bytes`: elements at the
KV dtype, DSA indexer keys in the engine's indexer format) in units of 1/den byte, den the
common denominator of the groups' exact bytes, on the heaviest stage at this plan's KV heads
per GPU, so sliding-window layers plateau, MLA latents and
full layers grow, no-KV (Mamba / linear) layers add only their fixed state, and TP
replication is already in E_g. Integers are int64 and exact (the grid is refused when a
product could pass 2^62); floats follow the scalar code's operation order, so a row equals
`kvplan fit MODEL --ctx C --batch B --json` (integers exactly, floats to rounding: the
per-layer attention-FLOP sum is taken in the same layer order).

Rows stream in chunks (`SweepResult.chunks`): a grid larger than memory is never
materialised. A chunk is a dict of numpy column arrays; `plan` indexes `SweepResult.plans`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import product
from math import lcm
from typing import TYPE_CHECKING, Any, cast

from kvplan.core import kvcache
from kvplan.core.capacity import Plan
from kvplan.core.geometry import LayerKind
from kvplan.errors import KvplanError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    IntArray = npt.NDArray[np.int64]
    FloatArray = npt.NDArray[np.float64]

DEFAULT_CHUNK_ROWS = 1 << 20  # rows per chunk: ~100 MB of columns
INT_LIMIT = 1 << 62  # exact int64 arithmetic below this
NO_WINDOW = 1 << 62  # "window" of layers that keep every token

# Column order of a sweep row: the scenario, then the fields `fit --json` prints.
PLAN_COLUMNS = (
    "model",
    "gpu",
    "engine",
    "engine_version",
    "engine_release",
    "tp",
    "pp",
    "kv_dtype",
    "kv_heads",
    "kv_heads_per_gpu",
    "kv_bytes_per_token_per_gpu",
    "weights_bytes",
    "kv_budget_bytes",
    "shortfall_bytes",
    "kv_blocks",
    "kv_tokens",
)
ROW_COLUMNS = (
    "ctx",
    "batch",
    "fits",
    "kv_bytes",
    "headroom_bytes",
    "headroom_pct",
    "max_batch",
    "max_ctx",
    "capped_by_positions",
    "unbounded",
    "decode_ms",
    "decode_tokens_per_s",
)
COLUMNS = PLAN_COLUMNS + ROW_COLUMNS


@dataclass(frozen=True)
class DecodeTerms:
    """The roofline's per-plan terms (`roofline.decode_terms` at ctx 1: everything but the
    per-sequence KV read and attention FLOPs, which the grid supplies per ctx), the
    efficiency profile `fit` uses for this GPU and engine, and the per-layer factors of
    the attention FLOPs in the scalar code's layer order."""

    terms: Any  # kvplan.core.roofline._Terms
    eff: Any  # kvplan.core.roofline.Efficiency
    heads_q: float
    layer_windows: tuple[int, ...]  # per attention layer (NO_WINDOW for full/MLA)
    layer_widths: tuple[int, ...]  # d_k + d_v a query head attends with, per layer


@dataclass(frozen=True)
class PlanTerms:
    """One plan: its scenario, its budget and layout (scalar core), and the terms the
    vectorised grid math needs."""

    model: str
    gpu: str
    engine: str
    engine_version: str  # the modelled release line, as fit's JSON prints it ("vLLM 0.19")
    engine_release: str | None  # the release as asked (None: the engine's default line)
    engine_label: str  # how text output names it: "vLLM 0.24.0 [0.33 line]" (not a column)
    tp: int
    pp: int
    kv_dtype: str
    kv_heads: int  # G of the (possibly redesigned) model
    kv_heads_per_gpu: int
    kv_bytes_per_token_per_gpu: int
    weights_bytes: int  # per GPU
    kv_budget_bytes: int
    shortfall_bytes: int
    kv_blocks: int
    kv_tokens: int
    block_size: int
    bpe_num: int  # bytes per element = num / den (exact)
    bpe_den: int
    state_bytes: int  # fixed per sequence (no-KV layers)
    held_bytes: int  # fixed per sequence in the grid's seq bytes (state; a vLLM hybrid's pages)
    # the terms of Plan.seq_bytes (what a sequence holds in the pool): the layer groups at the
    # block size, or a vLLM hybrid's pool blocks (`_hybrid_terms`)
    seq_groups: tuple[tuple[int, int], ...]
    seq_block: int
    seq_den: int  # bytes per element of seq_groups = 1 / seq_den
    # SGLang hybrids keep recurrent states in a pool of their own: each pool caps the batch
    # (kvplan.core.capacity.max_batch); 0 / 0 where the engine shares one pool
    state_pool_bytes: int
    state_slots: int
    groups: tuple[tuple[int, int], ...]  # (elements per token of the group, window)
    max_positions: int  # 0 = none
    grows: bool  # a full or MLA layer: per-sequence bytes keep growing with ctx
    widest: int  # widest window (non-growing stages)
    decode: DecodeTerms | None  # None: weights do not fit, or the GPU lacks the figures
    # Plans whose per-sequence bytes are not (elements x tokens held) per layer group —
    # DeepSeek-V4 compressed attention keeps ctx // ratio entries; SGLang's hybrid SWA
    # pools cap the batch pool by pool — are answered row by row by the scalar core (the
    # same functions `fit` calls), never approximated. A vLLM hybrid's whole pool blocks
    # per group are such terms (`_hybrid_terms`).
    scalar: Plan | None = field(default=None, compare=False, repr=False)


def plan_terms(p: Plan, *, model: str) -> PlanTerms:
    """The per-plan terms, from the scalar core's `Plan` (the same one `fit` uses)."""
    d = p.deployment
    stage = p.stage
    heads = p.kv_heads_per_gpu
    # Per-token bytes of each (kind, window) group, exact; a DSA indexer key is in the
    # engine's own format (kvcache.token_bytes), so groups are carried in units of 1/den
    # byte with den the common denominator: E_g = bytes_g * den, bytes/unit = 1 / den.
    grouped: dict[tuple[LayerKind, int | None], Fraction] = {}
    for layer, n in kvcache.layer_counts(stage.layers):
        key = (layer.kind, layer.window)
        grouped[key] = grouped.get(key, Fraction(0)) + n * kvcache.token_bytes(
            stage, layer, d.kv_dtype, heads
        )
    den = lcm(*(b.denominator for b in grouped.values())) if grouped else 1
    groups = tuple(
        (int(b * den), NO_WINDOW if window is None else window)
        for (kind, window), b in grouped.items()
        if kind is not LayerKind.NONE and b
    )
    bpe = Fraction(1, den)
    state = kvcache.state_bytes_per_sequence(stage, d.kv_dtype)
    held, seq_groups, seq_block = state, groups, d.block_size
    seq_den = den  # bpe is 1 / den
    widest = max((layer.window or 0) for layer in stage.layers)
    compressed = any(layer.compress_ratio for layer in stage.layers)
    if p.hybrid is not None and p.swa_pools is None and not compressed:
        seq_groups, held, seq_block = _hybrid_terms(p)
        seq_den = seq_block
        widest += d.scheduler_tokens  # as capacity.max_ctx bounds a non-growing hybrid
    growing = [layer for layer in stage.layers if layer.kind in (LayerKind.FULL, LayerKind.MLA)]
    return PlanTerms(
        model=model,
        gpu=d.gpu.name,
        engine=d.engine.value,
        engine_version=d.profile.name,
        engine_release=d.engine_version,
        engine_label=d.engine_label,
        tp=d.tp,
        pp=d.pp,
        kv_dtype=d.kv_dtype,
        kv_heads=d.spec.kv_heads,
        kv_heads_per_gpu=heads,
        kv_bytes_per_token_per_gpu=p.kv_bytes_per_token,
        weights_bytes=p.weights_per_gpu,
        kv_budget_bytes=p.budget.kv_budget,
        shortfall_bytes=p.budget.shortfall,
        kv_blocks=p.num_blocks,
        kv_tokens=p.kv_tokens,
        block_size=d.block_size,
        bpe_num=bpe.numerator,
        bpe_den=bpe.denominator,
        state_bytes=state,
        held_bytes=held,
        seq_groups=seq_groups,
        seq_block=seq_block,
        seq_den=seq_den,
        state_pool_bytes=p.state_pool_bytes or 0,
        state_slots=p.state_slots or 0 if p.state_pool_bytes is not None else 0,
        groups=groups,
        max_positions=p.max_positions or 0,
        grows=bool(growing),
        widest=widest,
        decode=_decode_terms(p) if p.weights_fit else None,
        # SGLang's hybrid SWA pools (kvplan.core.sglang_swa) and TensorRT-LLM's per-window
        # pools (--vswa, kvplan.core.trt_windows) cap the batch pool by pool
        scalar=p if p.swa_pools is not None or p.trt_windows is not None or compressed else None,
    )


def _hybrid_terms(p: Plan) -> tuple[tuple[tuple[int, int], ...], int, int]:
    """A vLLM hybrid's per-request blocks (HybridLayout.blocks_per_request, the figure
    Plan.seq_bytes uses) as grid terms: per attention group (bytes_per_block, tokens it counts
    up to) over blocks of the raised hybrid block B, i.e. E_g = bytes_per_block with bytes
    per element 1 / B so E_g x roundup(min(n, W_g), B) / B = bytes_per_block x cdiv(min(n,
    W_g), B); W_g = none (full), window - 1 + max_num_batched_tokens (sliding: + 1 block,
    fixed), chunk + max_num_batched_tokens (chunked-local); state groups hold
    Deployment.state_pages blocks, fixed. Returns (groups, fixed bytes, B)."""
    hybrid, d = p.hybrid, p.deployment
    assert hybrid is not None
    per_block, steps = hybrid.bytes_per_block, d.scheduler_tokens
    groups: list[tuple[int, int]] = []
    fixed_blocks = 0
    for g in hybrid.groups:
        if g.kind is LayerKind.NONE:
            fixed_blocks += d.state_pages
        elif g.kind is LayerKind.SLIDING and g.window is not None:
            groups.append((per_block, g.window - 1 + steps))
            fixed_blocks += 1
        elif g.kind is LayerKind.CHUNKED and g.window is not None:
            groups.append((per_block, g.window + steps))
        else:
            groups.append((per_block, NO_WINDOW))
    return tuple(groups), fixed_blocks * per_block, hybrid.block_size


def _decode_terms(p: Plan) -> DecodeTerms | None:
    from kvplan.core.roofline import _attention_widths, decode_terms, default_efficiency

    try:
        t = decode_terms(p, 1)
    except KvplanError:
        return None  # the scalar estimate is "not estimated" for this plan too
    d = p.deployment
    spec = d.spec
    layers = [layer for layer in p.stage.layers if layer.kind is not LayerKind.NONE]
    return DecodeTerms(
        terms=t,
        eff=default_efficiency(d.gpu, d.engine.value, d.engine_version),
        heads_q=spec.query_heads / d.tp,
        layer_windows=tuple(NO_WINDOW if x.window is None else x.window for x in layers),
        layer_widths=tuple(_attention_widths(spec, x) for x in layers),
    )


@dataclass(frozen=True)
class SweepGrid:
    """The axes of a sweep (plans: gpus x tp x pp x engines x engine_versions x kv_dtypes x
    kv_heads per model; rows: ctx x batch per plan). kv_heads None = the model's own G;
    an engine version None = the engine's default release line (as `fit` without
    --engine-version)."""

    gpus: tuple[str, ...]
    tp: tuple[int, ...]
    pp: tuple[int, ...]
    engines: tuple[str, ...]
    kv_dtypes: tuple[str, ...]
    kv_heads: tuple[int | None, ...]
    ctx: tuple[int, ...]
    batch: tuple[int, ...]
    engine_versions: tuple[str | None, ...] = (None,)

    def plan_axes(self) -> Iterator[tuple[str, int, int, str, str | None, str, int | None]]:
        return product(
            self.gpus,
            self.tp,
            self.pp,
            self.engines,
            self.engine_versions,
            self.kv_dtypes,
            self.kv_heads,
        )


@dataclass
class SweepResult:
    """The plans of a sweep and its (ctx, batch) grid; rows are computed by `chunks()`."""

    plans: list[PlanTerms]
    ctx: tuple[int, ...]
    batch: tuple[int, ...]
    skipped: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    chunk_rows: int = DEFAULT_CHUNK_ROWS

    @property
    def rows(self) -> int:
        return len(self.plans) * len(self.ctx) * len(self.batch)

    def chunks(self) -> Iterator[dict[str, Any]]:
        """Column chunks: numpy arrays shaped (plan, ctx, batch), `np.ravel` for the flat
        column (plan-major, then ctx, then batch). Each chunk has `plan` (index into
        `plans`) and the ROW_COLUMNS; plan columns come from `plans`."""
        if not self.plans or not self.ctx or not self.batch:
            return
        per_plan = len(self.ctx) * len(self.batch)
        ctx_step = max(1, min(len(self.ctx), self.chunk_rows // len(self.batch)))
        plans_step = max(1, self.chunk_rows // per_plan) if ctx_step == len(self.ctx) else 1
        for start in range(0, len(self.plans), plans_step):
            idx = range(start, min(start + plans_step, len(self.plans)))
            for c0 in range(0, len(self.ctx), ctx_step):
                yield grid_rows(
                    [self.plans[i] for i in idx],
                    self.ctx[c0 : c0 + ctx_step],
                    self.batch,
                    first_plan=start,
                )

    def plan_column(self, name: str) -> list[Any]:
        return [getattr(p, name) for p in self.plans]


# ---- the vectorised math ---------------------------------------------------------------
def _pad(rows: list[tuple[tuple[int, int], ...]], fill: tuple[int, int]) -> Any:
    import numpy as np

    k = max(1, max((len(r) for r in rows), default=1))
    out = np.array([list(r) + [fill] * (k - len(r)) for r in rows], dtype=np.int64)
    return out.reshape(len(rows), k, 2)


def _seq_bytes(
    n: IntArray, e: IntArray, w: IntArray, bs: IntArray, num: IntArray, den: IntArray
) -> IntArray:
    """ceil(sum_g E_g * roundup(min(n, W_g), bs) * num / den) for n of shape (P, X);
    e, w: (P, 1, K); bs, num, den: (P, 1). Without the fixed state."""
    import numpy as np

    held = np.minimum(n[..., None], w)
    b3 = bs[..., None]
    held = (held + b3 - 1) // b3 * b3
    elems = (e * held).sum(axis=-1)
    out: IntArray = (elems * num + den - 1) // den
    return out


@dataclass
class _Arrays:
    """Per-plan terms as arrays shaped for broadcasting over (plan, x): the layer groups
    (e, w at num / den bytes per element: what a decode step reads) and the pool terms of
    Plan.seq_bytes (se, sw at 1 / sden, blocks of sbs: what a sequence holds)."""

    e: Any
    w: Any
    ones: Any
    num: Any
    den: Any
    state: Any
    se: Any
    sw: Any
    sbs: Any
    sden: Any
    held: Any  # the fixed part of seq: state, or a vLLM hybrid's fixed pages
    budget: Any
    pool: Any
    slots: Any
    cap: Any
    grows: Any
    widest: Any
    growth: Any

    @classmethod
    def of(cls, plans: list[PlanTerms]) -> _Arrays:
        import numpy as np

        g = _pad([p.groups for p in plans], (0, NO_WINDOW))
        sg = _pad([p.seq_groups for p in plans], (0, NO_WINDOW))

        def col(name: str) -> Any:
            return np.array([getattr(p, name) for p in plans], dtype=np.int64)[:, None]

        e, w = g[:, None, :, 0], g[:, None, :, 1]
        se, sw = sg[:, None, :, 0], sg[:, None, :, 1]
        return cls(
            e=e,
            w=w,
            ones=np.ones_like(col("block_size")),
            num=col("bpe_num"),
            den=col("bpe_den"),
            state=col("state_bytes"),
            se=se,
            sw=sw,
            sbs=col("seq_block"),
            sden=col("seq_den"),
            held=col("held_bytes"),
            budget=col("kv_budget_bytes"),
            pool=col("state_pool_bytes"),
            slots=col("state_slots"),
            cap=col("max_positions"),
            grows=np.array([p.grows for p in plans])[:, None],
            widest=col("widest"),
            growth=(se * (sw == NO_WINDOW)).sum(axis=-1),
        )

    def seq(self, n: IntArray) -> IntArray:
        """Plan.seq_bytes at n tokens."""
        out: IntArray = _seq_bytes(n, self.se, self.sw, self.sbs, self.ones, self.sden) + self.held
        return out


def _guard(a: _Arrays, ctx: IntArray, batch: IntArray) -> None:
    import numpy as np

    worst = (
        float(max(np.max(a.e.sum(axis=-1) * a.num), np.max(a.se.sum(axis=-1))))
        * (float(ctx.max()) + float(a.sbs.max()))
        * float(batch.max())
    )
    if worst >= INT_LIMIT:
        raise KvplanError(
            "sweep grid too large for exact integer arithmetic "
            "(ctx x batch x bytes per token passes 2^62): shrink --ctx or --batch"
        )


def max_ctx_grid(a: _Arrays, batch: IntArray) -> tuple[IntArray, Any, Any]:
    """Largest context per (plan, batch) as `fit --batch B` answers it: (max_ctx,
    capped_by_positions, unbounded), each shaped (P, B). Vectorised bisection."""
    import numpy as np

    shape = (a.budget.shape[0], batch.shape[0])
    lim = a.budget // batch[None, :]  # batch * seq <= budget  <=>  seq <= budget // batch

    def ok(n: IntArray) -> Any:
        return a.seq(n) <= lim

    one = np.ones(shape, dtype=np.int64)
    ok1 = ok(one)
    cap = np.broadcast_to(a.cap, shape)
    has_cap = cap > 0
    widest = np.broadcast_to(a.widest, shape)
    grows = np.broadcast_to(a.grows, shape)
    # non-growing stages: every token beyond the widest window costs nothing more
    ok_wide = ok(np.maximum(widest, 1))
    # growing stages: the cap, else an upper bound no context can pass
    ok_cap = ok(np.maximum(cap, 1)) & has_cap
    growth = np.maximum(a.growth, 1)
    bound = lim * a.sden // growth + 2
    hi = np.where(grows, np.where(has_cap, np.minimum(cap, bound), bound), widest)
    lo = one.copy()
    search = ok1 & ~np.where(grows, ok_cap, ok_wide) & (hi > 1)
    while True:
        active = search & (hi - lo > 1)
        if not active.any():
            break
        mid = (lo + hi) // 2
        good = ok(mid)
        lo = np.where(active & good, mid, lo)
        hi = np.where(active & ~good, mid, hi)
    answer = np.where(grows, np.where(ok_cap, cap, lo), np.where(ok_wide, cap, lo))
    answer = np.where(~grows & ok_wide & ~has_cap, widest, answer)
    answer = np.where(ok1, answer, 0)
    capped = ok1 & has_cap & np.where(grows, ok_cap, ok_wide)
    unbounded = ok1 & ~grows & ok_wide
    return answer.astype(np.int64), capped, unbounded


def _decode(
    plans: list[PlanTerms], ctx: IntArray, batch: IntArray, kv_read: IntArray, ms: Any, tps: Any
) -> None:
    """decode_ms and tokens/s per (plan, ctx, batch) into `ms`, `tps` (NaN where the scalar
    estimate is "not estimated"). The step is the roofline's own `step_times`, evaluated on
    numpy arrays: the plan's terms with the per-ctx KV read and attention FLOPs as a column
    and the batches as a row, so every float operation is the scalar code's, in order."""
    from dataclasses import replace

    import numpy as np

    from kvplan.core.roofline import step_times

    c_n = len(ctx)
    b_row = batch[None, :]
    for i, p in enumerate(plans):
        dt = p.decode
        if dt is None:
            ms[i] = np.nan
            tps[i] = np.nan
            continue
        # attention FLOPs per sequence at each ctx: the scalar per-layer sum, in order
        attn = np.zeros(c_n)
        for window, width in zip(dt.layer_windows, dt.layer_widths, strict=True):
            held = np.minimum(ctx, window)
            attn += 2 * held * dt.heads_q * width
        t = replace(
            dt.terms,
            kv_read=kv_read[i][:, None],
            attention_flops_per_seq=attn[:, None],
            ctx=ctx[:, None],
        )
        st = step_times(t, cast(float, b_row), dt.eff)  # arrays broadcast through the scalar code
        gpu = np.maximum(np.maximum(st.memory_s, st.compute_s), st.floor_s)  # max(m, c, f)
        decode_s = t.pp * (gpu + st.fixed_s + st.comm_s)
        ms[i] = decode_s * 1e3
        tps[i] = b_row / decode_s


def grid_rows(
    plans: list[PlanTerms],
    ctx_values: tuple[int, ...] | list[int],
    batch_values: tuple[int, ...] | list[int],
    *,
    first_plan: int = 0,
    latency: bool = True,
) -> dict[str, Any]:
    """Every (plan, ctx, batch) row of `plans` x ctx x batch as numpy columns shaped
    (plan, ctx, batch); columns that depend on fewer axes are zero-copy broadcast views
    (`np.ravel` gives the flat column, plan-major, then ctx, then batch)."""
    import numpy as np

    a = _Arrays.of(plans)
    ctx = np.asarray(ctx_values, dtype=np.int64)
    batch = np.asarray(batch_values, dtype=np.int64)
    _guard(a, ctx, batch)
    p_n, c_n, b_n = len(plans), len(ctx), len(batch)
    shape = (p_n, c_n, b_n)
    c2 = np.broadcast_to(ctx[None, :], (p_n, c_n))
    seq = a.seq(c2)  # (P, C) per-GPU bytes of one sequence, block-rounded
    budget = a.budget[:, :, None]
    kv = np.multiply(seq[:, :, None], batch[None, None, :])
    headroom = np.subtract(budget, kv)
    fits = headroom >= 0
    pct = np.multiply(headroom, 100)
    pct = np.divide(pct, budget.astype(np.float64), out=np.empty(shape), where=budget > 0)
    pct[a.budget[:, 0] <= 0] = np.nan
    safe = np.where(seq > 0, seq, 1)
    max_batch = np.where(seq > 0, a.budget // safe, -1)  # -1: no per-token cache
    # separate state pool (SGLang hybrids): min(KV pool // token bytes, state slots)
    tokens = seq - a.held
    by_kv = np.where(tokens > 0, (a.budget - a.pool) // np.where(tokens > 0, tokens, 1), a.slots)
    max_batch = np.where((a.pool > 0) & (seq > 0), np.minimum(by_kv, a.slots), max_batch)
    mctx, capped, unbounded = max_ctx_grid(a, batch)
    ms = np.empty(shape)
    tps = np.empty(shape)
    if latency:
        unblocked = _seq_bytes(c2, a.e, a.w, a.ones, a.num, a.den) + a.state
        _decode(plans, ctx, batch, unblocked, ms, tps)
    else:
        ms.fill(np.nan)
        tps.fill(np.nan)
    for i, pt in enumerate(plans):
        if pt.scalar is not None:
            _scalar_rows(
                pt.scalar,
                i,
                ctx,
                batch,
                latency,
                kv,
                headroom,
                fits,
                pct,
                max_batch,
                mctx,
                capped,
                unbounded,
                ms,
                tps,
            )
    plan_ids = np.arange(first_plan, first_plan + p_n, dtype=np.int32)
    return {
        "plan": np.broadcast_to(plan_ids[:, None, None], shape),
        "ctx": np.broadcast_to(ctx[None, :, None], shape),
        "batch": np.broadcast_to(batch[None, None, :], shape),
        "fits": fits,
        "kv_bytes": kv,
        "headroom_bytes": headroom,
        "headroom_pct": pct,
        "max_batch": np.broadcast_to(max_batch[:, :, None], shape),
        "max_ctx": np.broadcast_to(mctx[:, None, :], shape),
        "capped_by_positions": np.broadcast_to(capped[:, None, :], shape),
        "unbounded": np.broadcast_to(unbounded[:, None, :], shape),
        "decode_ms": ms,
        "decode_tokens_per_s": tps,
    }


def _scalar_rows(
    p: Plan,
    i: int,
    ctx: Any,
    batch: Any,
    latency: bool,
    kv: Any,
    headroom: Any,
    fits: Any,
    pct: Any,
    max_batch: Any,
    mctx: Any,
    capped: Any,
    unbounded: Any,
    ms: Any,
    tps: Any,
) -> None:
    """Row i of the grid from the scalar core (see PlanTerms.scalar), written in place."""
    from kvplan.core import capacity
    from kvplan.core.roofline import estimate_decode

    budget = p.budget.kv_budget
    for j, n in enumerate(ctx.tolist()):
        seq = p.seq_bytes(n)
        max_batch[i, j] = budget // seq if seq else -1
        if p.swa_pools is not None or p.trt_windows is not None:
            max_batch[i, j] = capacity.max_batch(p, n)
        for k, b in enumerate(batch.tolist()):
            used, spare, ok = capacity.check_point(p, n, b)
            kv[i, j, k] = used
            headroom[i, j, k] = spare
            fits[i, j, k] = ok
            pct[i, j, k] = 100 * spare / budget if budget > 0 else float("nan")
            if latency:
                try:
                    e = estimate_decode(p, batch=b, ctx=n) if p.weights_fit else None
                except KvplanError:
                    e = None
                ms[i, j, k] = e.decode_ms if e else float("nan")
                tps[i, j, k] = e.decode_tokens_per_s if e else float("nan")
    for k, b in enumerate(batch.tolist()):
        answer = capacity.max_ctx(p, b)
        mctx[i, k] = answer.max_ctx
        capped[i, k] = answer.capped_by_positions
        unbounded[i, k] = answer.unbounded
