"""Serving targets checked against their requirements: pure evaluation, one row per requirement.

A target is a core `Deployment` plus an operating point (ctx, batch) and requirements. Each
requirement becomes a `CheckResult` with the measured value, the limit, and the margin
(positive = slack, in the requirement's own unit), so a CI log says by how much a target
passes or fails, not only whether. Three outcomes, never more lenient than the truth:

  pass   the measured value meets the requirement;
  fail   it does not (including "the weights alone do not fit": max batch 0);
  error  it could not be measured (an impossible TP split, no roofline model): the input
         needs fixing, and it never counts as a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from kvplan.core.capacity import Plan, max_batch, max_ctx, plan, weights_shortfall
from kvplan.core.deployment import Deployment
from kvplan.core.engine_log import resolve_max_model_len, startup_check
from kvplan.core.frozen import Frozen, field
from kvplan.core.geometry import AttentionLayout, ModelSpec
from kvplan.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, EXIT_OK, KvplanError
from kvplan.units import fmt_gib

Status = Literal["pass", "fail", "error"]
Unit = Literal["bytes", "%", "sequences", "tokens", "ms", "tokens/s", "kv_heads", "layout", ""]
DecodeFn = Callable[..., Any]


class Headroom(Frozen):
    """`min_headroom`: bytes left in the KV budget, or a percent of the KV budget."""

    text: str  # as written, e.g. "4GiB" or "10%"
    bytes: int | None = None
    percent: float | None = None


class KvHeadsRule(Frozen):
    """Constraints on the model's KV heads. MLA caches one latent per token shared by all
    heads, so it counts as G = 1 here."""

    min: int | None = None
    max: int | None = None
    layouts: tuple[AttentionLayout, ...] = ()


class Requirements(Frozen):
    min_headroom: Headroom | None = None
    min_batch: int | None = None
    min_ctx: int | None = None
    max_decode_ms: float | None = None
    min_tokens_per_s: float | None = None  # aggregate decode tokens/s over the batch
    min_tokens_per_s_per_seq: float | None = None
    kv_heads: KvHeadsRule | None = None


class Target(Frozen):
    """One serving target, resolved: the deployment, its operating point, what to check."""

    name: str
    model: str  # the model's display name
    deployment: Deployment
    ctx: int | None = None
    batch: int | None = None
    requirements: Requirements = Requirements()
    line: int | None = None  # where the target starts in its policy file
    lines: dict[str, int] = field(
        default_factory=dict
    )  # "tp", "requirements.min_batch", ... -> line

    def line_of(self, key: str) -> int | None:
        """The line of a key, else of its nearest enclosing key, else of the target."""
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0]
        return self.line


class CheckResult(Frozen):
    _computed = ("passed",)

    target: str
    requirement: str  # fits, min_headroom, min_batch, min_ctx, max_decode_ms, kv_heads.max ...
    status: Status
    measured: int | float | str | None = None
    limit: int | float | str | None = None
    margin: int | float | None = None  # measured vs limit, positive = slack, in `unit`
    margin_pct: float | None = None  # margin as a percent of the limit
    unit: Unit
    message: str
    line: int | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class TargetReport(Frozen):
    _computed = ("status",)

    target: str
    model: str
    gpu: str
    tp: int
    pp: int
    engine: str
    kv_dtype: str
    ctx: int | None
    batch: int | None
    line: int | None
    kv_budget_bytes: int | None  # None when no plan could be made
    kv_bytes_per_token: int | None  # per GPU
    results: tuple[CheckResult, ...]
    warnings: tuple[str, ...] = ()
    engine_version: str = ""  # the modelled release line, e.g. "vLLM 0.19" (as fit's JSON)
    engine_release: str | None = None  # the release asked for (None: the line's newest)
    engine_label: str = ""  # how output names it: "SGLang 0.5.8 [0.5 line]" (Deployment)

    @property
    def status(self) -> Status:
        statuses = {r.status for r in self.results}
        return "error" if "error" in statuses else "fail" if "fail" in statuses else "pass"


class PolicyReport(Frozen):
    file: str  # the policy path as given
    targets: tuple[TargetReport, ...]


class Summary(Frozen):
    _computed = ("exit_code",)

    passed: int
    failed: int
    errors: int  # could not be evaluated
    warnings: int
    strict: bool = False  # warnings count as failures

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_BAD_INPUT
        if self.failed or (self.strict and self.warnings):
            return EXIT_CHECK_FAILED
        return EXIT_OK

    def line(self) -> str:
        parts = [f"{self.passed} passed", f"{self.failed} failed"]
        if self.errors:
            parts.append(f"{self.errors} could not be evaluated")
        if self.warnings:
            parts.append(
                f"{self.warnings} warning{'s' if self.warnings != 1 else ''}"
                + (" (--strict: failing)" if self.strict else "")
            )
        return ", ".join(parts)


def summarize(
    targets: Sequence[TargetReport],
    *,
    lint_passed: int = 0,
    lint_failed: int = 0,
    lint_warnings: int = 0,
    strict: bool = False,
) -> Summary:
    """Counts over requirement rows and linted config files (a file passes with no errors)."""
    rows = [r for t in targets for r in t.results]
    return Summary(
        passed=sum(r.status == "pass" for r in rows) + lint_passed,
        failed=sum(r.status == "fail" for r in rows) + lint_failed,
        errors=sum(r.status == "error" for r in rows),
        warnings=sum(len(t.warnings) for t in targets) + lint_warnings,
        strict=strict,
    )


# ---- evaluation ------------------------------------------------------------------------
def evaluate(
    targets: Sequence[Target], *, decode: DecodeFn | None = None
) -> tuple[TargetReport, ...]:
    """Evaluate every target; latency requirements use the roofline (`decode` replaces it
    in tests)."""
    if decode is None and any(_needs_latency(t) for t in targets):
        from kvplan.core.roofline import estimate_decode

        decode = estimate_decode
    return tuple(evaluate_target(t, decode=decode) for t in targets)


def _needs_latency(t: Target) -> bool:
    r = t.requirements
    return any(
        v is not None for v in (r.max_decode_ms, r.min_tokens_per_s, r.min_tokens_per_s_per_seq)
    )


def evaluate_target(t: Target, *, decode: DecodeFn | None = None) -> TargetReport:
    d = t.deployment
    rows: list[CheckResult] = []
    warnings: list[str] = []
    p: Plan | None = None
    try:
        p = plan(d)
    except KvplanError as exc:
        # An impossible deployment (TP split, PP deeper than the model): nothing to measure.
        names = _capacity_requirements(t)
        listed = f" ({', '.join(names)})" if names else ""
        row = _row(
            t, "deployment", status="error", unit="", message=f"cannot evaluate{listed}: {exc}"
        )
        if exc.setting in t.lines:  # point at the setting the planner rejected
            row = row.model_copy(update={"line": t.lines[exc.setting]})
        rows.append(row)
    if p is not None and not p.weights_fit:
        reason = weights_shortfall(p)
        for name in _capacity_requirements(t) or ["deployment"]:
            limit = _limit(t, name)
            counted = isinstance(limit, int) and name in ("min_batch", "min_ctx")
            rows.append(
                _row(
                    t,
                    name,
                    status="fail",
                    message=reason,
                    measured=0 if counted else None,
                    limit=limit,
                    margin=-limit if isinstance(limit, int) and counted else None,
                )
            )
    elif p is not None:
        warnings += _warnings(t, p)
        rows += _starts_row(t, p)
        rows += _capacity_rows(t, p, decode=decode)
    rows += _kv_head_rows(t)
    return TargetReport(
        target=t.name,
        model=t.model,
        gpu=d.gpu.name,
        tp=d.tp,
        pp=d.pp,
        engine=d.engine.value,
        engine_version=d.profile.name,
        engine_release=d.engine_version,
        engine_label=d.engine_label,
        kv_dtype=d.kv_dtype,
        ctx=t.ctx,
        batch=t.batch,
        line=t.line,
        kv_budget_bytes=p.budget.kv_budget if p else None,
        kv_bytes_per_token=p.kv_bytes_per_token if p else None,
        results=tuple(rows),
        warnings=tuple(warnings),
    )


def _starts_row(t: Target, p: Plan) -> list[CheckResult]:
    """Would the engine start at all? vLLM refuses when one max_model_len request (the
    target's max_model_len, else the model's max positions) does not fit its KV pool, or a
    hybrid's state slots are fewer than max_num_seqs: a target it would refuse fails,
    whatever else it measures (kvplan.core.engine_log.startup_check)."""
    length = resolve_max_model_len(p) if t.deployment.auto_max_model_len else None
    length = length or t.deployment.fixed_max_model_len or p.max_positions
    check = startup_check(p, length)
    if not check.refused:
        return []
    seqs = t.deployment.scheduler_seqs
    if check.state_slots is not None and (check.needed_bytes or 0) <= check.available_bytes:
        # refused for state slots (max_num_seqs above the hybrid pool's state pages), not
        # for the length: the row measures sequences, so it cannot read as a pass
        row = _row(
            t,
            "starts",
            status="fail",
            measured=check.state_slots,
            limit=seqs,
            margin=check.state_slots - seqs,
            unit="sequences",
            message=(
                f"{check.message or 'the engine would refuse to start'} (max_num_seqs that "
                f"starts: {check.state_slots:,} or fewer)"
            ),
        )
        key = "max_num_seqs"
    else:
        row = _row(
            t,
            "starts",
            status="fail",
            measured=check.largest_max_model_len,
            limit=length,
            margin=(check.largest_max_model_len - length) if length else None,
            message=(
                f"{check.message or 'the engine would refuse to start'} (largest "
                f"max_model_len that starts: {check.largest_max_model_len:,})"
            ),
        )
        key = "max_model_len"
    if key in t.lines:
        row = row.model_copy(update={"line": t.lines[key]})
    return [row]


def _capacity_requirements(t: Target) -> list[str]:
    r = t.requirements
    names = ["fits"] if t.ctx is not None and t.batch is not None else []
    names += [
        n
        for n in (
            "min_headroom",
            "min_batch",
            "min_ctx",
            "max_decode_ms",
            "min_tokens_per_s",
            "min_tokens_per_s_per_seq",
        )
        if getattr(r, n) is not None
    ]
    return names


def _limit(t: Target, name: str) -> int | float | str | None:
    if name in ("fits", "deployment"):
        return None
    value = getattr(t.requirements, name)
    return value.text if isinstance(value, Headroom) else value


UNITS: dict[str, Unit] = {
    "starts": "tokens",
    "fits": "bytes",
    "min_batch": "sequences",
    "min_ctx": "tokens",
    "max_decode_ms": "ms",
    "min_tokens_per_s": "tokens/s",
    "min_tokens_per_s_per_seq": "tokens/s",
    "kv_heads.min": "kv_heads",
    "kv_heads.max": "kv_heads",
    "kv_heads.layout": "layout",
    "deployment": "",
}


def _row(
    t: Target,
    name: str,
    *,
    status: Status,
    message: str,
    measured: int | float | str | None = None,
    limit: int | float | str | None = None,
    margin: int | float | None = None,
    unit: Unit | None = None,
) -> CheckResult:
    pct = None
    if margin is not None and isinstance(limit, int | float) and limit and unit != "%":
        pct = 100 * margin / limit
    if unit is None:
        unit = UNITS.get(name, "bytes")
    key = {"fits": "batch", "deployment": "", "starts": "max_model_len"}.get(
        name, "requirements." + name
    )
    return CheckResult(
        target=t.name,
        requirement=name,
        status=status,
        measured=measured,
        limit=limit,
        margin=margin,
        margin_pct=pct,
        unit=unit,
        message=message,
        line=t.line_of(key),
    )


def _verdict(ok: bool) -> Status:
    return "pass" if ok else "fail"


def _at_least(
    t: Target,
    name: str,
    measured: int | float,
    limit: int | float,
    what: str,
    unit: Unit,
    fmt: Callable[[int | float], str] = "{:,}".format,
    note: str = "",
) -> CheckResult:
    margin = measured - limit
    ok = margin >= 0
    text = (
        f"{what} is {fmt(measured)}, at least {fmt(limit)} required"
        + (f" (+{fmt(margin)})" if ok else f": short by {fmt(-margin)}")
        + note
    )
    return _row(
        t,
        name,
        status=_verdict(ok),
        message=text,
        measured=measured,
        limit=limit,
        margin=margin,
        unit=unit,
    )


def _at_most(
    t: Target,
    name: str,
    measured: float,
    limit: float,
    what: str,
    unit: Unit,
    fmt: Callable[[float], str],
) -> CheckResult:
    margin = limit - measured
    ok = margin >= 0
    text = f"{what} is {fmt(measured)}, at most {fmt(limit)} allowed" + (
        f" ({fmt(margin)} to spare)" if ok else f": over by {fmt(-margin)}"
    )
    return _row(
        t,
        name,
        status=_verdict(ok),
        message=text,
        measured=measured,
        limit=limit,
        margin=margin,
        unit=unit,
    )


def _kv_head_rows(t: Target) -> list[CheckResult]:
    rule = t.requirements.kv_heads
    if rule is None:
        return []
    spec = t.deployment.spec
    g, label = effective_kv_heads(spec)
    rows = []
    if rule.max is not None:
        rows.append(
            _at_most(
                t,
                "kv_heads.max",
                g,
                rule.max,
                f"KV heads G ({label})",
                "kv_heads",
                lambda v: f"{v:g}",
            )
        )
    if rule.min is not None:
        rows.append(_at_least(t, "kv_heads.min", g, rule.min, f"KV heads G ({label})", "kv_heads"))
    if rule.layouts:
        allowed = ", ".join(x.value for x in rule.layouts)
        layout = spec.layout
        ok = layout in rule.layouts
        rows.append(
            _row(
                t,
                "kv_heads.layout",
                status=_verdict(ok),
                measured=layout.value,
                limit=allowed,
                message=(
                    f"attention layout is {layout.value} ({label})"
                    + ("" if ok else f", not one of {allowed}")
                ),
            )
        )
    return rows


def effective_kv_heads(spec: ModelSpec) -> tuple[int, str]:
    """G as the cache sees it, with a label: MLA's shared latent counts as one head."""
    if spec.layout is AttentionLayout.MLA:
        return 1, "MLA: one latent shared by all heads"
    return spec.kv_heads, f"{spec.layout.value.upper()}, H = {spec.query_heads}"


def _warnings(t: Target, p: Plan) -> list[str]:
    out = []
    if t.ctx is not None and p.max_positions and t.ctx > p.max_positions:
        out.append(
            f"ctx {t.ctx:,} exceeds the model's max positions ({p.max_positions:,}); it "
            "needs RoPE scaling to be served"
        )
    out += list(p.notes)
    return out


def _capacity_rows(t: Target, p: Plan, *, decode: DecodeFn | None) -> list[CheckResult]:
    r = t.requirements
    budget = p.budget.kv_budget
    rows: list[CheckResult] = []
    workload_fits = True
    if t.ctx is not None and t.batch is not None:
        used = t.batch * p.seq_bytes(t.ctx)
        workload_fits = used <= budget
        rows.append(
            _row(
                t,
                "fits",
                status=_verdict(workload_fits),
                measured=used,
                limit=budget,
                margin=budget - used,
                unit="bytes",
                message=(
                    f"batch {t.batch:,} x {t.ctx:,} tokens needs {fmt_gib(used)} of the "
                    f"{fmt_gib(budget)} KV budget per GPU"
                ),
            )
        )
        if r.min_headroom is not None:
            rows.append(_headroom_row(t, budget - used, budget, r.min_headroom))
    if r.min_batch is not None and t.ctx is not None:
        rows.append(
            _guarded(
                t,
                "min_batch",
                lambda: _at_least(
                    t,
                    "min_batch",
                    max_batch(p, t.ctx or 0),
                    r.min_batch or 0,
                    f"largest batch at {t.ctx:,} tokens",
                    "sequences",
                ),
            )
        )
    if r.min_ctx is not None and t.batch is not None:
        rows.append(_guarded(t, "min_ctx", lambda: _ctx_row(t, p)))
    latency = [
        n
        for n in ("max_decode_ms", "min_tokens_per_s", "min_tokens_per_s_per_seq")
        if getattr(r, n) is not None
    ]
    if latency:
        rows += _latency_rows(t, p, latency, workload_fits, decode)
    return rows


def _guarded(t: Target, name: str, make: Callable[[], CheckResult]) -> CheckResult:
    try:
        return make()
    except KvplanError as exc:
        return _row(
            t, name, status="error", message=f"cannot evaluate: {exc}", limit=_limit(t, name)
        )


def _headroom_row(t: Target, headroom: int, budget: int, want: Headroom) -> CheckResult:
    if want.percent is not None:
        pct = 100 * headroom / budget
        return _at_least(
            t,
            "min_headroom",
            pct,
            want.percent,
            "KV headroom (% of the KV budget)",
            "%",
            lambda v: f"{v:.1f}%",
        )
    return _at_least(
        t, "min_headroom", headroom, want.bytes or 0, "KV headroom per GPU", "bytes", fmt_gib
    )


def _ctx_row(t: Target, p: Plan) -> CheckResult:
    answer = max_ctx(p, t.batch or 0)
    note = ""
    if answer.capped_by_positions:
        note = " (capped by the model's max positions; memory allows more)"
    elif answer.unbounded:
        note = " (all layers windowed: the cache stops growing)"
    return _at_least(
        t,
        "min_ctx",
        answer.max_ctx,
        t.requirements.min_ctx or 0,
        f"largest context at batch {t.batch:,}",
        "tokens",
        note=note,
    )


def _latency_rows(
    t: Target,
    p: Plan,
    names: list[str],
    workload_fits: bool,
    decode: DecodeFn | None,
) -> list[CheckResult]:
    r = t.requirements
    if not workload_fits:
        return [
            _row(
                t,
                n,
                status="fail",
                limit=getattr(r, n),
                message=f"batch {t.batch:,} x {t.ctx:,} tokens does not fit, so it cannot "
                "decode at any speed",
            )
            for n in names
        ]
    if decode is None:
        raise ValueError("latency requirements need a decode estimator")
    try:
        est = decode(p, batch=t.batch, ctx=t.ctx)
    except KvplanError as exc:
        return [
            _row(t, n, status="error", limit=getattr(r, n), message=f"cannot evaluate: {exc}")
            for n in names
        ]
    rows = []
    bound = getattr(est, "bound", None)
    tail = f" ({bound}-bound roofline estimate)" if bound else " (roofline estimate)"
    if r.max_decode_ms is not None:
        row = _at_most(
            t,
            "max_decode_ms",
            float(est.decode_ms),
            r.max_decode_ms,
            "decode step",
            "ms",
            lambda v: f"{v:,.2f} ms",
        )
        rows.append(row.model_copy(update={"message": row.message + tail}))
    if r.min_tokens_per_s is not None:
        row = _at_least(
            t,
            "min_tokens_per_s",
            float(est.decode_tokens_per_s),
            r.min_tokens_per_s,
            "decode throughput (all sequences)",
            "tokens/s",
            lambda v: f"{v:,.1f} tok/s",
        )
        rows.append(row.model_copy(update={"message": row.message + tail}))
    if r.min_tokens_per_s_per_seq is not None:
        row = _at_least(
            t,
            "min_tokens_per_s_per_seq",
            float(est.tokens_per_s_per_seq),
            r.min_tokens_per_s_per_seq,
            "decode speed per sequence",
            "tokens/s",
            lambda v: f"{v:,.1f} tok/s",
        )
        rows.append(row.model_copy(update={"message": row.message + tail}))
    return rows


# ---- baseline: what changed against a stored result -------------------------------------
class BaselineChange(Frozen):
    """One requirement whose measured value or status differs from a stored `--format json`
    result (e.g. `kvplan check --format json > main.json` on the main branch)."""

    file: str
    target: str
    requirement: str
    unit: Unit
    before: int | float | str | None
    after: int | float | str | None
    status_before: str | None  # None: not in the baseline (a new requirement)
    status_after: str | None  # None: no longer checked

    @property
    def kind(self) -> str:
        if self.status_before is None:
            return "new"
        if self.status_after is None:
            return "removed"
        if self.status_before != self.status_after:
            return "pass->fail" if self.status_after != "pass" else "fail->pass"
        return "value"


BaselineRow = tuple[str, int | float | str | None, str]  # unit, measured, status


def baseline_changes(
    baseline: dict[tuple[str, str, str], BaselineRow], policies: Sequence[PolicyReport]
) -> tuple[BaselineChange, ...]:
    """Every (policy file, target, requirement) whose measured value or status changed,
    plus the ones added or removed since the baseline. Unchanged rows are not listed."""
    out: list[BaselineChange] = []
    seen: set[tuple[str, str, str]] = set()
    for policy in policies:
        for t in policy.targets:
            for row in t.results:
                key = (policy.file, t.target, row.requirement)
                seen.add(key)
                old = baseline.get(key)
                if old is not None and old[1] == row.measured and old[2] == row.status:
                    continue
                out.append(
                    BaselineChange(
                        file=policy.file,
                        target=t.target,
                        requirement=row.requirement,
                        unit=row.unit,
                        before=None if old is None else old[1],
                        after=row.measured,
                        status_before=None if old is None else old[2],
                        status_after=row.status,
                    )
                )
    checked_files = {p.file for p in policies}
    for key, (unit, measured, status) in baseline.items():
        if key not in seen and key[0] in checked_files:
            out.append(
                BaselineChange(
                    file=key[0],
                    target=key[1],
                    requirement=key[2],
                    unit=unit,  # type: ignore[arg-type]
                    before=measured,
                    after=None,
                    status_before=status,
                    status_after=None,
                )
            )
    return tuple(out)
