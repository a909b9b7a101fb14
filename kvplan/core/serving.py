"""Serving a workload: concurrency -> time per output token, TTFT, throughput; sizing; cost.

Continuous batching at C resident requests (docs/plan.md derives each line):
  decode step   t_d(C) = DECODE_FACTOR x roofline step of C sequences at the workload's
                time-averaged context (kvplan.core.roofline.estimate_decode)
  prefill work  P = PREFILL_FACTOR x the compute time of one request's prompt tokens that
                are not served from the prefix cache (roofline prefill FLOPs at the GPU's
                achieved peak; with chunked prefill these tokens ride in decode steps, so
                the weights are not streamed again for them)
  per request   a request generates `out` tokens, so per output token of the whole batch
                the GPU also spends P / out on someone's prefill; with C requests resident
                tokens/s = C / (t_d + C P / out)          (prefill interference)
                TPOT      = C / tokens/s = t_d(C) + C x P / out   (steady state, per user,
                            the request's own prefill included: E2E / out)
  E2E           Little's law: C / (requests/s) = out x t_d + C x P (+ TTFT_OVERHEAD)
  TTFT          P + ceil(in / (max_num_batched_tokens - C)) x t_d(C) + TTFT_OVERHEAD: the
                prompt's compute, the decode steps it is chunked across and the fixed
                serving overhead (no queueing: the client-limited case; requests waiting
                for a free slot add queueing on top)
  TPOT after the first token (what `vllm bench serve` prints as TPOT, and what --slo-tpot
                is checked against) = (E2E - TTFT) / (out - 1)
                = ((out - chunks) t_d + (C - 1) P) / (out - 1): only the OTHER requests'
                prefills interfere, the request's own is in its TTFT
  rate -> C     C = request rate x E2E(C), solved for C given a rate (E2E grows with
                C, so the smallest C that keeps up is found by bisection)
  per GPU       tokens/s / (tp x pp); per user 1000 / TPOT
Sizing: for each (GPU, TP, PP) the largest C (<= the steady memory limit) meeting the SLOs
gives a replica's capacity C / (out x TPOT) requests/s; replicas = ceil(rate / capacity);
gpus = replicas x tp x pp.
Cost: $/h = price per GPU-hour x gpus; $ per million output tokens = $/h / (output
tokens per hour / 10^6) (all cost charged to output tokens; the input figure likewise
charges all of it to input tokens); a month is 730 h (8760 / 12).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

from pydantic import BaseModel, ConfigDict, Field

from kvplan.core import capacity
from kvplan.core.capacity import Plan
from kvplan.core.deployment import Deployment
from kvplan.core.geometry import ModelSpec
from kvplan.core.roofline import DecodeEstimate, Efficiency, default_efficiency, estimate_decode
from kvplan.core.search import largest_true
from kvplan.core.workload import HostTier, Occupancy, Workload, host_tier, occupancy
from kvplan.errors import KvplanError

# ---- fitted on the TRAINING split of tests/data/serving_benchmarks.yaml -------------------
# `scripts/validate_plan.py --fit` reproduces all three (grid search minimising the median
# absolute log error of TPOT and output throughput on the training rows; TTFT_OVERHEAD_S
# below; tests/test_plan_validation.py re-runs the fit); docs/plan.md reports the
# held-out error. DECODE_FACTOR: measured decode step / roofline step in served runs
# (scheduling, sampling, non-ideal kernels at large batch). PREFILL_FACTOR: measured
# prefill interference / the roofline's compute-only prefill time.
DECODE_FACTOR = 1.4
PREFILL_FACTOR = 1.2
# TTFT_OVERHEAD_S: fixed time outside the GPU work in every request's TTFT (HTTP,
# tokenisation, scheduling, detokenising the first token): the median of measured minus
# modelled TTFT over the training split's client-limited runs (the only ones whose TTFT is
# not queueing), after the two factors above.
TTFT_OVERHEAD_S = 0.033
HOURS_PER_MONTH = 730.0  # 8760 h / 12, the convention cloud price lists use
MAX_PREFILL_LENGTHS = 64  # distinct input lengths evaluated exactly; more are binned
SEARCH_TP = (1, 2, 4, 8)


class CannotServe(KvplanError):
    """An answer, not bad input: no deployment asked for can serve the workload (exit 1)."""

    kind = "does_not_fit"

    def __init__(self, message: str, options: Sequence[Option] = ()) -> None:
        super().__init__(message)
        self.options = tuple(options)


class Speculation(BaseModel):
    """Speculative decoding as memory sees it: a draft model (None: MTP heads of the model
    itself) and the proposed tokens each sequence holds slots for."""

    model_config = ConfigDict(frozen=True)

    draft: ModelSpec | None = None
    lookahead: int = Field(default=0, ge=0)


class ServingFactors(BaseModel):
    model_config = ConfigDict(frozen=True)

    decode: float = Field(default=DECODE_FACTOR, gt=0)
    prefill: float = Field(default=PREFILL_FACTOR, ge=0)
    ttft_overhead_s: float = Field(default=TTFT_OVERHEAD_S, ge=0)
    # None: the roofline's own profile for the GPU's platform and the engine
    efficiency: Efficiency | None = None


class ServingPoint(BaseModel):
    """One operating point of one replica; times in ms as serving benchmarks print them."""

    model_config = ConfigDict(frozen=True)

    concurrency: int
    decode_step_ms: float  # t_d(C), with DECODE_FACTOR
    prefill_ms_per_request: float  # P, with PREFILL_FACTOR
    prefill_share: float  # share of GPU time spent on prefill: C P / out / TPOT
    tpot_ms: float  # steady state, per user: E2E / out = 1000 C / output_tokens_per_s
    tpot_after_first_ms: float  # (E2E - TTFT) / (out - 1), as serving benchmarks print TPOT
    ttft_ms: float
    e2e_ms: float
    output_tokens_per_s: float  # the replica
    output_tokens_per_s_per_gpu: float
    output_tokens_per_s_per_user: float
    input_tokens_per_s: float
    requests_per_s: float
    preemption_probability: float
    bound: str  # memory | compute (the decode step)


class Serving:
    """The latency model of one plan under one workload (the roofline terms are computed
    per call; prefill work is computed once)."""

    def __init__(
        self, p: Plan, w: Workload, occ: Occupancy, factors: ServingFactors | None = None
    ) -> None:
        self.p, self.w, self.occ = p, w, occ
        self.f = factors or ServingFactors()
        d = p.deployment
        self.eff = self.f.efficiency or default_efficiency(d.gpu, d.engine.value, d.engine_version)
        self.ctx = max(1, round(occ.mean_context))
        self.prefill_s = self.f.prefill * _prefill_seconds(p, w, self.eff)
        self.mean_in = w.mean_input
        self.cached = occ.shared_prefix_tokens
        self.out = w.mean_output
        self._steps: dict[int, DecodeEstimate] = {}

    def decode(self, c: int) -> DecodeEstimate:
        if c not in self._steps:
            self._steps[c] = estimate_decode(self.p, batch=c, ctx=self.ctx, efficiency=self.eff)
        return self._steps[c]

    def step_s(self, c: int) -> float:
        return self.f.decode * self.decode(c).decode_ms / 1e3

    def tpot_s(self, c: int) -> float:
        return self.e2e_s(c) / self.out

    def chunks(self, c: int) -> int:
        room = max(1, self.p.deployment.scheduler_tokens - c)
        return ceil(max(1.0, self.mean_in - self.cached) / room)

    def ttft_s(self, c: int) -> float:
        return self.prefill_s + self.chunks(c) * self.step_s(c) + self.f.ttft_overhead_s

    def e2e_s(self, c: int) -> float:
        return self.out * self.step_s(c) + c * self.prefill_s + self.f.ttft_overhead_s

    def tpot_after_first_s(self, c: int) -> float:
        """(E2E - TTFT) / (out - 1), never below one decode step."""
        if self.out <= 1:
            return self.step_s(c)
        rest = (self.e2e_s(c) - self.ttft_s(c)) / (self.out - 1)
        return max(self.step_s(c), rest)

    def point(self, c: int) -> ServingPoint:
        if c <= 0:
            raise KvplanError(f"concurrency must be a positive integer, got {c}")
        tpot = self.tpot_s(c)
        tokens = c / tpot
        requests = tokens / self.out
        return ServingPoint(
            concurrency=c,
            decode_step_ms=self.step_s(c) * 1e3,
            prefill_ms_per_request=self.prefill_s * 1e3,
            prefill_share=c * self.prefill_s / self.e2e_s(c),
            tpot_ms=tpot * 1e3,
            tpot_after_first_ms=self.tpot_after_first_s(c) * 1e3,
            ttft_ms=self.ttft_s(c) * 1e3,
            e2e_ms=self.e2e_s(c) * 1e3,
            output_tokens_per_s=c * 1000 / (tpot * 1e3),
            output_tokens_per_s_per_gpu=tokens / self.p.deployment.gpus,
            output_tokens_per_s_per_user=1 / tpot,
            input_tokens_per_s=requests * self.mean_in,
            requests_per_s=requests,
            preemption_probability=self.occ.preemption_probability(c),
            bound=self.decode(c).bound,
        )

    def concurrency_for_rate(self, rate: float, limit: int) -> int | None:
        """Smallest C in [1, limit] that keeps up with `rate` requests/s (Little's law:
        C >= rate x E2E(C)); None when even `limit` cannot."""

        def keeps_up(c: int) -> bool:
            return c >= rate * self.e2e_s(c)

        if limit < 1 or not keeps_up(limit):
            return None
        if keeps_up(1):
            return 1
        return largest_true(lambda c: not keeps_up(c), 1, 2) + 1

    def best_under_slo(self, limit: int, slo_tpot: float | None, slo_ttft: float | None) -> int:
        """Largest C in [1, limit] meeting both SLOs (seconds), 0 if none (both grow with C)."""

        def ok(c: int) -> bool:
            return (slo_tpot is None or self.tpot_after_first_s(c) <= slo_tpot) and (
                slo_ttft is None or self.ttft_s(c) <= slo_ttft
            )

        if limit < 1 or not ok(1):
            return 0
        if ok(limit):
            return limit
        return largest_true(lambda c: c <= limit and ok(c), 1, 2)


def _prefill_seconds(p: Plan, w: Workload, eff: Efficiency) -> float:
    """Mean compute time of one request's uncached prompt tokens: roofline prefill FLOPs of
    positions [cached, in) = FLOPs(in) - FLOPs(cached), at peak x compute efficiency, times
    the pipeline stages a token passes."""
    block = p.deployment.block_size
    cached = (w.prefix_len // block) * block
    lengths = _length_bins(w)

    def flops(n: int) -> float:
        return estimate_decode(p, batch=1, ctx=n, efficiency=eff).prefill_flops if n > 0 else 0.0

    one = estimate_decode(p, batch=1, ctx=max(1, cached or 1), efficiency=eff)
    rate = one.peak_flops * eff.compute
    base = flops(cached)
    total = sum(count * (flops(n) - base) for n, count in lengths)
    return p.deployment.pp * total / sum(c for _, c in lengths) / rate


def _length_bins(w: Workload) -> list[tuple[int, int]]:
    """(input length, count); at most MAX_PREFILL_LENGTHS, merging neighbours in sorted
    order into their count-weighted mean (prefill cost is smooth in the length)."""
    items = sorted((pair.input_len, pair.count) for pair in w.pairs)
    merged: dict[int, int] = {}
    for n, c in items:
        merged[n] = merged.get(n, 0) + c
    rows = sorted(merged.items())
    if len(rows) <= MAX_PREFILL_LENGTHS:
        return rows
    size = ceil(len(rows) / MAX_PREFILL_LENGTHS)
    out = []
    for i in range(0, len(rows), size):
        chunk = rows[i : i + size]
        count = sum(c for _, c in chunk)
        out.append((round(sum(n * c for n, c in chunk) / count), count))
    return out


# ---- the answer of `kvplan plan` ----------------------------------------------------------
class Cost(BaseModel):
    model_config = ConfigDict(frozen=True)

    usd_per_gpu_hour: float
    price_source: str  # "--gpu-hour-cost", a file, or the shipped row id + source + date
    usd_per_hour: float
    usd_per_month: float
    output_tokens_per_hour: float
    input_tokens_per_hour: float
    cost_per_million_output_tokens: float
    cost_per_million_input_tokens: float
    cost_per_million_tokens: float  # input + output tokens together


class Price(BaseModel):
    model_config = ConfigDict(frozen=True)

    usd_per_gpu_hour: float = Field(gt=0)
    source: str


def cost(price: Price, gpus: int, output_tokens_per_s: float, input_tokens_per_s: float) -> Cost:
    per_hour = price.usd_per_gpu_hour * gpus
    out_h = output_tokens_per_s * 3600
    in_h = input_tokens_per_s * 3600
    return Cost(
        usd_per_gpu_hour=price.usd_per_gpu_hour,
        price_source=price.source,
        usd_per_hour=per_hour,
        usd_per_month=per_hour * HOURS_PER_MONTH,
        output_tokens_per_hour=out_h,
        input_tokens_per_hour=in_h,
        cost_per_million_output_tokens=per_hour / (out_h / 1e6) if out_h else float("inf"),
        cost_per_million_input_tokens=per_hour / (in_h / 1e6) if in_h else float("inf"),
        cost_per_million_tokens=per_hour / ((out_h + in_h) / 1e6) if out_h + in_h else float("inf"),
    )


class Option(BaseModel):
    """One (GPU, TP, PP) candidate of a sizing search."""

    model_config = ConfigDict(frozen=True)

    gpu: str
    tp: int
    pp: int
    feasible: bool
    reason: str | None = None  # why not feasible
    max_concurrency_guaranteed: int = 0
    max_concurrency_steady: int = 0
    slo_concurrency: int = 0  # the largest C per replica meeting the SLOs
    replica_capacity_rps: float = 0.0
    replicas: int = 0
    gpus: int = 0
    point: ServingPoint | None = None  # at the asked rate spread over the replicas
    best_tpot_ms: float | None = None  # closest: TPOT after the first token at C = 1
    best_ttft_ms: float | None = None
    cost: Cost | None = None


class PlanReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    source: str
    workload: Workload
    model_note: str | None = None  # an unverified catalog entry (kvplan.sources.catalog)
    gpu: str
    engine: str
    engine_version: str = ""  # the modelled release line, e.g. "vLLM 0.19" (as fit's JSON)
    tp: int
    pp: int
    kv_budget_bytes: int
    kv_tokens: int
    max_num_seqs: int
    max_num_batched_tokens: int
    occupancy: Occupancy
    max_concurrency_guaranteed: int
    max_concurrency_steady: int
    concurrency: int
    concurrency_from: str  # asked | rate | memory
    point: ServingPoint
    tpot_ms: float
    ttft_ms: float
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    output_tokens_per_s_per_user: float
    curve: tuple[ServingPoint, ...]
    host_tier: HostTier | None
    rate_per_s: float | None
    slo_tpot_ms: float | None
    slo_ttft_ms: float | None
    replicas: int
    gpus: int
    cost: Cost | None
    cost_per_million_output_tokens: float | None
    options: tuple[Option, ...]
    chosen: int | None  # index into options of the best feasible one
    targets_met: bool
    factors: ServingFactors
    draft_model: str | None  # speculative decoding: the draft ("mtp": the model's heads)
    lookahead_tokens: int  # proposed-token slots each sequence holds
    notes: tuple[str, ...]


def curve_concurrencies(limit: int, *extra: int) -> list[int]:
    """Powers of two up to `limit`, the limit itself and any extra points within it."""
    top = max(1, limit)
    out = {1 << k for k in range(top.bit_length()) if 1 << k <= top} | {top}
    out |= {c for c in extra if 1 <= c <= top}
    return sorted(out)


def memory_limit(occ: Occupancy) -> int:
    return max(occ.max_concurrency_steady, occ.max_concurrency_guaranteed)


def resolve_plans(d: Deployment, spec: Speculation | None = None) -> tuple[Plan, Plan | None]:
    """The target's plan (its budget counting the draft's weights too, which the engine
    loads before it sizes the KV pool) and the draft's plan on the same GPUs (for its
    per-sequence KV)."""
    p = capacity.plan(d)
    if spec is None or spec.draft is None:
        return p, None
    draft = capacity.plan(d.with_(spec=spec.draft, weights_override=None))
    return capacity.plan(d.with_(weights_override=p.weights_total + draft.weights_total)), draft


def evaluate(
    d: Deployment,
    w: Workload,
    *,
    factors: ServingFactors | None = None,
    speculation: Speculation | None = None,
) -> tuple[Plan, Occupancy, Serving] | str:
    """Plan, occupancy and latency model of one deployment, or why it cannot serve."""
    try:
        p, draft = resolve_plans(d, speculation)
    except KvplanError as exc:
        return exc.message
    if not p.weights_fit:
        return capacity.weights_shortfall(p)
    occ = occupancy(
        p, w, draft=draft, lookahead=speculation.lookahead if speculation is not None else 0
    )
    if memory_limit(occ) < 1:
        return "not one request of the workload fits in the KV pool"
    return p, occ, Serving(p, w, occ, factors)


def size_option(
    d: Deployment,
    w: Workload,
    *,
    rate: float,
    slo_tpot_s: float | None,
    slo_ttft_s: float | None,
    price: Price | None,
    factors: ServingFactors | None = None,
    speculation: Speculation | None = None,
) -> Option:
    """The fewest replicas of deployment `d` serving `rate` requests/s within the SLOs."""
    got = evaluate(d, w, factors=factors, speculation=speculation)
    if isinstance(got, str):
        return Option(gpu=d.gpu.name, tp=d.tp, pp=d.pp, feasible=False, reason=got)
    _, occ, s = got
    limit = memory_limit(occ)
    c = s.best_under_slo(limit, slo_tpot_s, slo_ttft_s)
    empty = Option(
        gpu=d.gpu.name,
        tp=d.tp,
        pp=d.pp,
        feasible=False,
        reason="even one request misses the SLOs",
        max_concurrency_guaranteed=occ.max_concurrency_guaranteed,
        max_concurrency_steady=occ.max_concurrency_steady,
        best_tpot_ms=s.tpot_after_first_s(1) * 1e3,
        best_ttft_ms=s.ttft_s(1) * 1e3,
    )
    if c == 0:
        return empty
    capacity_rps = c / s.e2e_s(c)
    replicas = max(1, ceil(rate / capacity_rps - 1e-12))
    at = s.concurrency_for_rate(rate / replicas, c)
    point = s.point(at if at is not None else c)
    gpus = replicas * d.tp * d.pp
    return empty.model_copy(
        update={
            "feasible": True,
            "reason": None,
            "slo_concurrency": c,
            "replica_capacity_rps": capacity_rps,
            "replicas": replicas,
            "gpus": gpus,
            "point": point,
            "cost": cost(price, gpus, rate * s.out, rate * s.mean_in) if price else None,
        }
    )


def rank(options: Sequence[Option]) -> list[int]:
    """Feasible options first: by cost per million output tokens when priced, else GPUs,
    then TPOT."""

    def key(i: int) -> tuple[int, float, int, float]:
        o = options[i]
        price = o.cost.cost_per_million_output_tokens if o.cost else float("inf")
        tpot = o.point.tpot_ms if o.point else float("inf")
        return (0 if o.feasible else 1, price, o.gpus or 1 << 30, tpot)

    return sorted(range(len(options)), key=key)


def search_space(d: Deployment, tps: Sequence[int] = SEARCH_TP) -> list[Deployment]:
    """TP in SEARCH_TP (plus the given one) dividing the query heads, PP 1 and the given."""
    heads = d.spec.query_heads
    tp_values = sorted({t for t in (*tps, d.tp) if heads % t == 0})
    pp_values = sorted({1, d.pp})
    return [d.with_(tp=t, pp=q) for q in pp_values for t in tp_values]


def _closest(options: Sequence[Option]) -> Option | None:
    """The infeasible option whose best TPOT comes nearest (for the 'cannot be met' line)."""
    scored = [o for o in options if o.best_tpot_ms is not None]
    return min(scored, key=lambda o: o.best_tpot_ms or 0.0) if scored else None


def build_report(
    *,
    model: str,
    source: str,
    deployments: Sequence[Deployment],
    model_note: str | None = None,
    w: Workload,
    concurrency: int | None = None,
    rate: float | None = None,
    slo_tpot_s: float | None = None,
    slo_ttft_s: float | None = None,
    prices: dict[str, Price] | None = None,
    offload_bytes: int | None = None,
    search: bool = True,
    factors: ServingFactors | None = None,
    speculation: Speculation | None = None,
) -> PlanReport:
    """The whole answer of `kvplan plan`. Without a rate: the first deployment at the asked
    concurrency (default: the steady memory limit). With a rate: every candidate of
    `search_space` on every GPU sized to the rate and SLOs, ranked; the report describes the
    best feasible one (or, when none is, the first deployment as asked).
    Raises KvplanError when the first deployment cannot serve one request and there is
    nothing else to answer with."""
    f = factors or ServingFactors()
    prices = prices or {}
    notes: list[str] = list(w.notes)
    options: list[Option] = []
    order: list[int] = []
    chosen: int | None = None
    target = deployments[0]
    if rate is not None:
        candidates = [c for d in deployments for c in (search_space(d) if search else [d])]
        options = [
            size_option(
                c,
                w,
                rate=rate,
                slo_tpot_s=slo_tpot_s,
                slo_ttft_s=slo_ttft_s,
                price=prices.get(c.gpu.name),
                factors=f,
                speculation=speculation,
            )
            for c in candidates
        ]
        order = rank(options)
        options = [options[i] for i in order]
        if options and options[0].feasible:
            chosen = 0
            best = options[0]
            target = next(
                c for c in candidates if (c.gpu.name, c.tp, c.pp) == (best.gpu, best.tp, best.pp)
            )
        else:
            near = _closest(options)
            if near is not None:  # show the closest deployment's figures
                target = next(
                    c
                    for c in candidates
                    if (c.gpu.name, c.tp, c.pp) == (near.gpu, near.tp, near.pp)
                )
            notes.append(
                "no deployment meets the targets"
                + (
                    f"; closest: {near.gpu} TP {near.tp} PP {near.pp} with TPOT "
                    f"{near.best_tpot_ms:.1f} ms and TTFT {near.best_ttft_ms:.0f} ms at one request"
                    if near and near.best_tpot_ms is not None and near.best_ttft_ms is not None
                    else ""
                )
            )
    got = evaluate(target, w, factors=f, speculation=speculation)
    if isinstance(got, str):
        lead = f"{notes[-1]}; " if rate is not None and chosen is None else ""
        raise CannotServe(
            f"{lead}{target.gpu.name} TP {target.tp} PP {target.pp} cannot serve this "
            f"workload: {got}",
            options,
        )
    p, occ, s = got
    limit = memory_limit(occ)
    if chosen is not None:
        point = options[chosen].point
        assert point is not None
        c = point.concurrency
        how = "rate"
        replicas, gpus = options[chosen].replicas, options[chosen].gpus
        chosen_cost = options[chosen].cost
    else:
        c = concurrency or limit
        how = "asked" if concurrency else "memory"
        if rate is not None:
            at = s.concurrency_for_rate(rate, limit)
            c, how = (at, "rate") if at is not None else (limit, "memory")
        point = s.point(c)
        replicas, gpus = 1, target.gpus
        price = prices.get(target.gpu.name)
        chosen_cost = (
            cost(price, gpus, point.output_tokens_per_s, point.input_tokens_per_s)
            if price
            else None
        )
    met = chosen is not None or rate is None
    if c > limit:
        met = False
        notes.append(
            f"concurrency {c} is above what the KV pool sustains ({limit}): the engine will "
            f"preempt (overflow probability {point.preemption_probability:.0%})"
        )
    if rate is None and slo_tpot_s is not None and point.tpot_after_first_ms > slo_tpot_s * 1e3:
        met = False
        notes.append(f"TPOT {point.tpot_after_first_ms:.1f} ms misses --slo-tpot")
    if rate is None and slo_ttft_s is not None and point.ttft_ms > slo_ttft_s * 1e3:
        met = False
        notes.append(f"TTFT {point.ttft_ms:.0f} ms misses --slo-ttft")
    longest = max(pair.input_len + pair.output_len for pair in w.pairs)
    if p.max_positions and longest > p.max_positions:
        notes.append(
            f"the longest request ({longest:,} tokens) exceeds the model's max positions "
            f"({p.max_positions:,}); it needs RoPE scaling to be served"
        )
    if speculation is not None:
        what = speculation.draft.name if speculation.draft else "MTP heads (their KV not counted)"
        notes.append(
            f"speculative decoding with {what}: draft weights and KV and "
            f"{speculation.lookahead} lookahead slots per sequence are counted in memory; "
            "TPOT is modelled without speculation (no acceptance rate)"
        )
    if occ.capped_by_engine:
        notes.append(
            f"the engine's max_num_seqs ({occ.engine_max_num_seqs}) caps concurrency below "
            "what memory allows"
        )
    d = p.deployment
    return PlanReport(
        model=model,
        source=source,
        model_note=model_note,
        workload=w,
        gpu=d.gpu.name,
        engine=d.engine.value,
        engine_version=d.profile.name,
        tp=d.tp,
        pp=d.pp,
        kv_budget_bytes=p.budget.kv_budget,
        kv_tokens=p.kv_tokens,
        max_num_seqs=d.scheduler_seqs,
        max_num_batched_tokens=d.scheduler_tokens,
        occupancy=occ,
        max_concurrency_guaranteed=occ.max_concurrency_guaranteed,
        max_concurrency_steady=occ.max_concurrency_steady,
        concurrency=c,
        concurrency_from=how,
        point=point,
        tpot_ms=point.tpot_ms,
        ttft_ms=point.ttft_ms,
        output_tokens_per_s=point.output_tokens_per_s,
        output_tokens_per_s_per_gpu=point.output_tokens_per_s_per_gpu,
        output_tokens_per_s_per_user=point.output_tokens_per_s_per_user,
        # up to where the pool is full on average, so the preemption risk beyond the
        # steady limit shows
        curve=tuple(
            s.point(n)
            for n in curve_concurrencies(max(limit, occ.max_concurrency_mean_fill), c, limit)
        ),
        host_tier=host_tier(p, w, offload_bytes) if offload_bytes else None,
        rate_per_s=rate,
        slo_tpot_ms=slo_tpot_s * 1e3 if slo_tpot_s is not None else None,
        slo_ttft_ms=slo_ttft_s * 1e3 if slo_ttft_s is not None else None,
        replicas=replicas,
        gpus=gpus,
        cost=chosen_cost,
        cost_per_million_output_tokens=(
            chosen_cost.cost_per_million_output_tokens if chosen_cost else None
        ),
        options=tuple(options),
        chosen=chosen,
        targets_met=met,
        factors=f,
        draft_model=(
            (speculation.draft.name if speculation.draft else "mtp") if speculation else None
        ),
        lookahead_tokens=speculation.lookahead if speculation else 0,
        notes=tuple(notes + list(p.notes)),
    )
