"""The Python API: the same answers as the CLI, as typed objects.

    import kvplan
    r = kvplan.fit("meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", ctx=32768)
    r.max_batch, r.fits, r.to_json()

Every function takes the arguments the CLI command takes, as keyword arguments named like
its options in snake_case (`--kv-dtype` -> `kv_dtype`, `--gpu-memory-utilization` ->
`gpu_memory_utilization`); the deployment settings of `fit`, `pick_g`, `roofline`, `plan`
and `sweep` are the fields of `kvplan.core.deployment.Deployment` and are parsed by the one
validator, `kvplan.sources.deployment.parse_deployment`. Each returns the typed result the
CLI renders; `result.to_json()` is exactly the command's `--json` object without the
envelope keys (`schema_version`, `kvplan_version`, `command`). Bad input raises the typed
`kvplan.errors.KvplanError` (with `.setting`) that the CLI turns into an `Error:` line.
"Does not fit" is an answer (`fits` False / `answered_fits`), not an exception.

The CLI commands are thin wrappers over these functions: there is no second path.
Imports are deferred into the functions so `import kvplan` stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kvplan.core.frozen import dataclass

if TYPE_CHECKING:
    from kvplan.core.deployment import Deployment
    from kvplan.core.design_choices import DesignChoices
    from kvplan.core.gpu import GpuSpec
    from kvplan.core.reports import FitReport, PickGReport
    from kvplan.core.serving import PlanReport
    from kvplan.core.sizing import SizeReport
    from kvplan.core.sweep import SweepResult
    from kvplan.presentation.roofline_view import RooflineResult
    from kvplan.sources.resolve import ResolvedModel

DEFAULT_CTX = 4096
DEFAULT_DESIGN_MODEL = "meta-llama/Llama-2-13b-hf"
MAX_KV_HEADS = 1 << 16


# ---- loading ---------------------------------------------------------------------------
def load_model(
    model: str | ResolvedModel,
    *,
    revision: str | None = None,
    token: str | None = None,
    refresh: bool = False,
) -> ResolvedModel:
    """Resolve MODEL as the CLI does: a config.json / params.json path or folder, a bundled
    catalog name, or a Hugging Face repo id (network only for the Hub)."""
    from kvplan.sources.resolve import ResolvedModel, resolve_model

    if isinstance(model, ResolvedModel):
        return model
    return resolve_model(model, revision=revision, token=token, refresh=refresh)


def load_gpu(name: str, *, gpu_file: str | None = None) -> GpuSpec:
    """A GPU from the catalog (plus `gpu_file` / KVPLAN_GPU_FILE), by any of its names."""
    from kvplan.sources.gpus import load_gpus

    try:
        return load_gpus(gpu_file).get(name)
    except Exception as exc:
        _tag(exc, "gpu")
        raise


def _tag(exc: Exception, setting: str) -> None:
    from kvplan.errors import KvplanError

    if isinstance(exc, KvplanError) and exc.setting is None:
        exc.setting = setting


def positive(value: int | None, name: str, *, limit: int | None = None) -> int | None:
    """A count argument (ctx, batch): positive and below `limit`; named like the flag."""
    from kvplan.errors import KvplanError

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise KvplanError(f"{name} must be an integer, got {value!r}")
    if value <= 0:
        raise KvplanError(f"{name} must be a positive integer, got {value}")
    if limit is not None and value > limit:
        raise KvplanError(f"{name} {value:,} is absurdly large (limit {limit:,})")
    return value


def _limits() -> tuple[int, int]:
    from kvplan.core.deployment import MAX_BATCH, MAX_CTX

    return MAX_CTX, MAX_BATCH


# ---- size ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SizeResult:
    """`kvplan size`: the core's SizeReport and where the model came from."""

    report: SizeReport
    model: ResolvedModel
    exact_weight_bytes: int | None  # checkpoint bytes when known and no dtype was forced

    def __getattr__(self, name: str) -> Any:  # r.kv_bytes_per_token etc. from the report
        return getattr(self.report, name)

    def to_json(self) -> dict[str, Any]:
        from kvplan.presentation.model_view import size_json

        return size_json(
            self.report,
            source=self.model.source,
            location=self.model.location,
            revision=self.model.revision,
            exact_weight_bytes=self.exact_weight_bytes,
            model_note=self.model.note,
        )


def size(
    model: str | ResolvedModel,
    *,
    ctx: int | None = None,
    batch: int = 1,
    kv_dtype: str = "auto",
    engine: str = "none",
    weight_dtype: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    refresh: bool = False,
) -> SizeResult:
    """KV cache per token / sequence / batch, and the weights, for one model. `engine`
    picks the engine's cache formats (DSA indexer keys); "none" counts every element in
    the KV dtype, as transformers' cache holds them."""
    from kvplan.core.engines import ENGINES, engine_named
    from kvplan.core.sizing import size_report
    from kvplan.sources.deployment import kv_dtype_for, parse_setting, weight_dtype_for

    max_ctx, max_batch = _limits()
    positive(batch, "--batch", limit=max_batch)
    positive(ctx, "--ctx", limit=max_ctx)
    rules = ENGINES[engine_named(engine)]
    resolved = load_model(model, revision=revision, token=token, refresh=refresh)
    spec = resolved.spec
    if spec.has_indexer:
        fmt = rules.indexer_format_for(spec.indexer_kind)
        spec = spec.model_copy(update={"indexer_format": fmt})
    forced = parse_setting("weight_dtype", lambda: weight_dtype_for(weight_dtype))
    report = size_report(
        spec,
        ctx=ctx or spec.max_position_embeddings or DEFAULT_CTX,
        batch=batch,
        kv_dtype=parse_setting("kv_dtype", lambda: kv_dtype_for(spec, kv_dtype)),
        weight_dtype=forced,
    )
    # Exact checkpoint bytes answer "how big are these weights"; a forced weight dtype asks
    # another question (what if they were stored at that dtype), which only the estimate
    # answers.
    exact = resolved.exact_weights if forced is None else None
    return SizeResult(
        report=report,
        model=resolved,
        exact_weight_bytes=exact.total_bytes if exact is not None else None,
    )


# ---- deployments -----------------------------------------------------------------------
def _deployment(
    spec: Any, settings: Mapping[str, Any], gpu_file: str | None, weights_override: int | None
) -> Deployment:
    from kvplan.sources.deployment import parse_deployment

    return parse_deployment(spec, settings, gpu_file=gpu_file, weights_override=weights_override)


def _exact_weights(resolved: ResolvedModel, settings: Mapping[str, Any]) -> int | None:
    from kvplan.sources.deployment import exact_weights

    wd = settings.get("weight_dtype")
    return exact_weights(resolved, None if wd is None else str(wd))


def _load_for(
    model: str | ResolvedModel,
    settings: Mapping[str, Any],
    *,
    gpu_file: str | None,
    revision: str | None,
    token: str | None,
    refresh: bool,
) -> ResolvedModel:
    """Check the GPU first (fail fast, before any network lookup), then resolve MODEL."""
    gpu = settings.get("gpu")
    if gpu is not None and isinstance(gpu, str):
        load_gpu(gpu, gpu_file=gpu_file)
    return load_model(model, revision=revision, token=token, refresh=refresh)


# ---- fit -------------------------------------------------------------------------------
def fit(
    model: str | ResolvedModel,
    *,
    gpu: str,
    ctx: int | None = None,
    batch: int | None = None,
    gpu_file: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    refresh: bool = False,
    **settings: Any,
) -> FitReport:
    """Largest batch (ctx=), largest context (batch=), both (fits?), or a table of contexts.

    `settings` are the deployment settings (tp, pp, engine, kv_dtype, block_size,
    gpu_memory_utilization, kv_memory="40GiB", ...): the fields of `Deployment`."""
    from kvplan.core.capacity import plan
    from kvplan.core.reports import ModelRef, fit_report

    max_ctx, max_batch = _limits()
    positive(ctx, "--ctx", limit=max_ctx)
    positive(batch, "--batch", limit=max_batch)
    raw = {"gpu": gpu, **settings}
    resolved = _load_for(
        model, raw, gpu_file=gpu_file, revision=revision, token=token, refresh=refresh
    )
    d = _deployment(resolved.spec, raw, gpu_file, _exact_weights(resolved, raw))
    return fit_report(
        plan(d),
        ModelRef(
            model=resolved.spec.name,
            source=resolved.source,
            revision=resolved.revision,
            model_note=resolved.note,
        ),
        ctx=ctx,
        batch=batch,
        serve_as=_serve_as(resolved),
    )


def _serve_as(resolved: ResolvedModel) -> str | None:
    """What an engine is given for a local model: its folder (engines read a checkpoint
    folder, not its config.json), as the user wrote the path."""
    if resolved.source != "file" or not resolved.location:
        return None
    where = resolved.location
    if where.endswith(".json"):
        where = (where.rsplit("/", 1)[0] if "/" in where else ".") or "/"
    # a relative folder keeps its ./ so the engine cannot read it as a Hub repo id
    return where if where.startswith(("/", ".", "~")) else f"./{where}"


# ---- pick-g ----------------------------------------------------------------------------
def pick_g(
    model: str | ResolvedModel | None = None,
    *,
    gpu: str,
    ctx: int,
    batch: int,
    headroom: str | float | None = None,
    target_g: int | None = None,
    search: bool = True,
    design: DesignChoices | Mapping[str, Any] | None = None,
    gpu_file: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    refresh: bool = False,
    plot: str | None = None,
    **settings: Any,
) -> PickGReport:
    """For every G (divisors of H, MHA down to MQA): cache, fit, latency per GPU; pick the
    largest G whose workload fits with `headroom` of the budget free (default 5%). MODEL's
    geometry is varied (default Llama-2-13B), or give layers/heads/head_dim (and the other
    design knobs) to design from scratch. When the recommendation is below `target_g`
    (default H), deployment changes that fit a larger G are searched (`search=False` skips).

    `settings` are the design knobs — the fields of `kvplan.core.design_choices
    .DesignChoices` (layers, heads, head_dim, hidden, vocab, intermediate, tie_embeddings,
    experts, experts_per_token, expert_intermediate, window, global_every, mla_rank,
    params="13B") — and the deployment settings (the fields of `Deployment`). The knobs may
    instead come as one typed `design=DesignChoices(...)` (or a mapping of them). `plot`
    writes the largest-batch-against-context chart to that file (.svg/.png/.pdf; needs the
    `plot` extra), as `roofline` and `plan` do."""
    from kvplan.core.design import (
        DEFAULT_HEADROOM,
        design_assumptions,
        design_spec,
        params_floor,
        weights_from_params,
    )
    from kvplan.core.design_choices import knob_defaults, knobs
    from kvplan.core.reports import ModelRef, pick_g_report
    from kvplan.errors import KvplanError
    from kvplan.sources.deployment import parse_design, weight_dtype_for
    from kvplan.sources.evidence import load_evidence
    from kvplan.sources.gpus import load_gpus
    from kvplan.units import parse_percent

    max_ctx, max_batch = _limits()
    positive(ctx, "--ctx", limit=max_ctx)
    positive(batch, "--batch", limit=max_batch)
    knob_values = {name: settings.pop(name) for name in knobs() if name in settings}
    defaults = knob_defaults()
    as_keywords = [name for name, value in knob_values.items() if value != defaults[name]]
    if design is not None and as_keywords:
        raise KvplanError(
            f"give the design as design= or as keywords, not both ({as_keywords[0]})",
            setting=as_keywords[0],
        )
    raw = {"gpu": gpu, **settings}
    load_gpu(gpu, gpu_file=gpu_file)
    margin = (
        DEFAULT_HEADROOM
        if headroom is None
        else parse_percent(headroom)
        if isinstance(headroom, str)
        else float(headroom)
    )
    try:
        positive(target_g, "--target-g", limit=1 << 24)
    except KvplanError as exc:
        _tag(exc, "target_g")
        raise
    choices = parse_design(
        design if design is not None else knob_values, model_given=model is not None
    )
    wd = raw.get("weight_dtype")
    weight_dtype = weight_dtype_for(None if wd is None else str(wd))
    assumed = None
    if choices.designing:
        assert choices.layers and choices.heads and choices.head_dim  # parse_design checks
        assumed = design_assumptions(choices, weight_dtype=weight_dtype or "bf16")
        spec = design_spec(
            layers=choices.layers,
            heads=choices.heads,
            head_dim=choices.head_dim,
            hidden=choices.hidden,
            choices=assumed,
        )
        header = (
            f"Design: L={choices.layers}, H={choices.heads}, head_dim={choices.head_dim} "
            "(from flags)"
        )
        source, revision_out, note = "design", None, None
    else:
        resolved = load_model(
            model or DEFAULT_DESIGN_MODEL, revision=revision, token=token, refresh=refresh
        )
        spec = resolved.spec
        source, revision_out, note = resolved.source, resolved.revision, resolved.note
        header = (
            f"No MODEL given: using {DEFAULT_DESIGN_MODEL} geometry (L={spec.num_layers}, "
            f"H={spec.query_heads}, head_dim={spec.head_dim})"
            if model is None
            else f"{spec.name}: L={spec.num_layers}, H={spec.query_heads}, "
            f"G={spec.kv_heads} as published, head_dim={spec.head_dim}"
        )
    weights_for = None
    if choices.params is not None:
        params_floor(spec, choices.params)
        weights_for = weights_from_params(choices.params, weight_dtype or spec.checkpoint_dtype)
    deployment = _deployment(spec, raw, gpu_file, None)
    header += f" on {deployment.gpus} x {deployment.gpu.name}"
    report = pick_g_report(
        deployment,
        ModelRef(model=spec.name, source=source, revision=revision_out, model_note=note),
        header=header,
        ctx=ctx,
        batch=batch,
        weights_for=weights_for,
        headroom=margin,
        target_kv_heads=target_g,
        search_gpus=tuple(load_gpus(gpu_file).gpus.values()) if search else (),
        design=assumed,
        evidence=load_evidence(),
    )
    if plot:
        from kvplan.presentation.capacity_view import write_pickg_plot

        write_pickg_plot(report, plot)
    return report


# ---- roofline --------------------------------------------------------------------------
def roofline(
    model: str | ResolvedModel,
    *,
    gpu: str,
    batch: int = 1,
    ctx: int | None = None,
    kv_heads: int | None = None,
    bw_efficiency: float | None = None,
    compute_efficiency: float | None = None,
    prompt_tokens: int | None = None,
    output_tokens: int | None = None,
    plot: str | None = None,
    gpu_file: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    refresh: bool = False,
    **settings: Any,
) -> RooflineResult:
    """Roofline decode latency: bytes and FLOPs per step, the bound, a batch sweep per G.
    `prompt_tokens` with `output_tokens` adds the serving estimate; `plot` writes a chart
    to that file (needs the `plot` extra). Returns the `RooflineResult` the CLI renders."""
    from kvplan.core.capacity import plan
    from kvplan.core.roofline import efficiency, roofline_report
    from kvplan.errors import KvplanError
    from kvplan.presentation.roofline_view import RooflineResult

    max_ctx, max_batch = _limits()
    positive(batch, "--batch", limit=max_batch)
    positive(ctx, "--ctx", limit=max_ctx)
    positive(kv_heads, "--kv-heads", limit=MAX_KV_HEADS)
    positive(prompt_tokens, "--prompt-tokens", limit=max_ctx)
    positive(output_tokens, "--output-tokens", limit=max_ctx)
    if (prompt_tokens is None) != (output_tokens is None):
        raise KvplanError("--prompt-tokens and --output-tokens go together")
    efficiency(bandwidth=bw_efficiency, compute=compute_efficiency)  # checks them early
    raw = {"gpu": gpu, **settings}
    resolved = _load_for(
        model, raw, gpu_file=gpu_file, revision=revision, token=token, refresh=refresh
    )
    spec = resolved.spec
    weights_override = _exact_weights(resolved, raw)
    if kv_heads is not None and kv_heads != spec.kv_heads:
        if spec.mla is not None:
            raise KvplanError(
                f"{spec.name} uses MLA (a latent, not KV heads): --kv-heads does not apply"
            )
        if spec.query_heads % kv_heads:
            raise KvplanError(
                f"--kv-heads {kv_heads} does not divide the model's {spec.query_heads} query heads"
            )
        spec = spec.with_kv_heads(kv_heads)
        weights_override = None  # the checkpoint's exact bytes are for the published G
    ctx = ctx or min(DEFAULT_CTX, spec.max_position_embeddings or DEFAULT_CTX)
    deployment = _deployment(spec, raw, gpu_file, weights_override)
    p = plan(deployment)
    eff = efficiency(
        bandwidth=bw_efficiency,
        compute=compute_efficiency,
        gpu=deployment.gpu,
        engine=deployment.engine.value,
        engine_version=deployment.engine_version,
    )
    serving = (prompt_tokens, output_tokens) if prompt_tokens and output_tokens else None
    report = roofline_report(p, batch=batch, ctx=ctx, efficiency=eff, serving=serving)
    if plot:
        from kvplan.presentation.roofline_view import write_plot

        write_plot(report, plot)
    return RooflineResult(
        report=report,
        plan=p,
        source=resolved.source,
        revision=resolved.revision,
        plot=plot,
        model_note=resolved.note,
    )


# ---- plan ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanResult:
    """`kvplan plan`: the core's `PlanReport` (its fields read through) and the chart file
    written, if any."""

    report: PlanReport
    plot: str | None = None

    def __getattr__(self, name: str) -> Any:  # r.tpot_ms, r.replicas etc. from the report
        return getattr(self.report, name)

    def to_json(self) -> dict[str, Any]:
        return {**self.report.model_dump(mode="json"), "plot": self.plot}


def _seconds(value: str | float | None, name: str, parse: Any) -> float | None:
    """A CLI text with its unit ("50ms", "5/s") or, from Python, a number in the internal
    unit (seconds; requests per second)."""
    from kvplan.errors import KvplanError

    if value is None:
        return None
    if isinstance(value, str):
        return float(parse(value))
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise KvplanError(f"{name} must be positive, got {value!r}")
    return float(value)


def _offload(value: str | int | None) -> int | None:
    from kvplan.errors import KvplanError
    from kvplan.units import parse_size

    if value is None:
        return None
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped or stripped[-1].isdigit():
            raise KvplanError(f"--cpu-offload {value!r} has no unit", hint="e.g. 200GiB")
        size = parse_size(stripped)
    elif isinstance(value, bool) or not isinstance(value, int):
        raise KvplanError(f"--cpu-offload must be a size, got {value!r}")
    else:
        size = value  # bytes
    if size <= 0:
        raise KvplanError(f"--cpu-offload must be positive, got {value!r}")
    return size


def plan(
    model: str | ResolvedModel,
    *,
    gpu: str | Iterable[str],
    input_len: int | None = None,
    output_len: int | None = None,
    workload: str | None = None,
    prefix_len: int = 0,
    concurrency: int | None = None,
    rate: str | float | None = None,
    slo_tpot: str | float | None = None,
    slo_ttft: str | float | None = None,
    gpu_hour_cost: str | float | None = None,
    prices: str | None = None,
    cpu_offload: str | int | None = None,
    draft: str | ResolvedModel | None = None,
    search: bool = True,
    plot: str | None = None,
    gpu_file: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    refresh: bool = False,
    **settings: Any,
) -> PlanResult:
    """Serving plan for a workload: concurrency, latency (TTFT, TPOT), throughput, and with
    `rate` the replicas (searching TP/PP unless `search=False`) and cost.

    The workload is `input_len` with `output_len` (fixed lengths) or `workload`: a CSV /
    JSON-lines file of (input, output) lengths or a published shape (chat, code, rag,
    reasoning, sharegpt, an id of configs/workloads.yaml). `gpu` is one GPU, a comma list
    or a list (candidates for sizing). `rate` ("5/s", or a number of requests per second),
    `slo_tpot` / `slo_ttft` ("50ms", or seconds), `gpu_hour_cost` ("2.49",
    "h100-sxm=2.49,mi300x=1.85", or a number for every GPU), `cpu_offload` ("200GiB", or
    bytes) are the CLI's options. `settings` are the deployment settings (the fields of
    `Deployment`), as for `fit`; `draft` needs `num_speculative_tokens`.

    Targets not met (`targets_met` False, the closest is answered) is an answer. When no
    deployment asked for can serve the workload, `kvplan.core.serving.CannotServe` (a
    `KvplanError` of kind "does_not_fit", with `.options`) is raised: the CLI exits 1."""
    from kvplan.core.serving import Price, Speculation, build_report
    from kvplan.core.workload import workload as fixed_workload
    from kvplan.errors import KvplanError
    from kvplan.sources.workload_file import (
        load_prices,
        parse_duration,
        parse_price_option,
        parse_rate,
        resolve_workload,
        shape_names,
    )

    max_ctx, max_batch = _limits()
    for value, name in (
        (input_len, "input_len"),
        (output_len, "output_len"),
        (concurrency, "concurrency"),
    ):
        try:
            positive(
                value,
                "--" + name.replace("_", "-"),
                limit=max_batch if name == "concurrency" else max_ctx,
            )
        except KvplanError as exc:
            _tag(exc, name)
            raise
    if prefix_len is not None and prefix_len < 0:
        raise KvplanError(
            f"--prefix-len must be zero or positive, got {prefix_len}", setting="prefix_len"
        )
    fixed = input_len is not None or output_len is not None
    if fixed and workload:
        raise KvplanError("give either --input-len/--output-len or --workload, not both")
    if fixed and (input_len is None or output_len is None):
        raise KvplanError("--input-len and --output-len go together")
    if not fixed and not workload:
        raise KvplanError(
            "no workload: give --input-len and --output-len, or --workload",
            hint=f"shapes: {', '.join(shape_names())}",
        )
    # a deployment setting (declared once in core.deployment), shared with fit
    num_speculative_tokens = settings.get("num_speculative_tokens") or 0
    if draft and not num_speculative_tokens:
        raise KvplanError("--draft needs --num-speculative-tokens", setting="draft")
    rate_s = _seconds(rate, "--rate", parse_rate)
    tpot_s = _seconds(slo_tpot, "--slo-tpot", lambda t: parse_duration(t, "--slo-tpot"))
    ttft_s = _seconds(slo_ttft, "--slo-ttft", lambda t: parse_duration(t, "--slo-ttft"))
    offload = _offload(cpu_offload)
    if fixed:
        assert input_len is not None and output_len is not None
        w = fixed_workload(
            f"fixed {input_len}/{output_len}", [(input_len, output_len)], prefix_len=prefix_len
        )
    else:
        assert workload is not None
        w = resolve_workload(workload, prefix_len=prefix_len)
    names = gpu.split(",") if isinstance(gpu, str) else list(gpu)
    gpus = [g.strip() for g in names if g.strip()]
    if not gpus:
        raise KvplanError("--gpu is empty", setting="gpu")
    for g in gpus:
        load_gpu(g, gpu_file=gpu_file)
    resolved = load_model(model, revision=revision, token=token, refresh=refresh)
    weights = _exact_weights(resolved, settings)
    speculation = None
    if num_speculative_tokens:
        draft_spec = (
            load_model(draft, revision=None, token=token, refresh=refresh).spec if draft else None
        )
        speculation = Speculation(draft=draft_spec, lookahead=num_speculative_tokens)
    deployments = [
        _deployment(resolved.spec, {**settings, "gpu": g}, gpu_file, weights) for g in gpus
    ]
    price_table: dict[str, Price] = load_prices(prices) if prices else {}
    if gpu_hour_cost is not None and gpu_hour_cost != "":
        text = gpu_hour_cost if isinstance(gpu_hour_cost, str) else repr(float(gpu_hour_cost))
        price_table.update(parse_price_option(text, [d.gpu.name for d in deployments]))
    report = build_report(
        model=resolved.spec.name,
        source=resolved.source,
        model_note=resolved.note,
        deployments=deployments,
        w=w,
        concurrency=concurrency,
        rate=rate_s,
        slo_tpot_s=tpot_s,
        slo_ttft_s=ttft_s,
        prices=price_table,
        offload_bytes=offload,
        search=search,
        speculation=speculation,
    )
    if plot:
        from kvplan.presentation.plan_view import write_curve

        write_curve(report, plot)
    return PlanResult(report=report, plot=plot)


# ---- sweep -----------------------------------------------------------------------------
def sweep(
    model: str | ResolvedModel | Iterable[str | ResolvedModel],
    *,
    gpu: str | Iterable[str],
    ctx: int | Iterable[int],
    batch: int | Iterable[int] = 1,
    tp: int | Iterable[int] = 1,
    pp: int | Iterable[int] = 1,
    engine: str | Iterable[str] = "vllm",
    kv_dtype: str | Iterable[str] = "auto",
    kv_heads: int | Iterable[int] | None = None,
    engine_version: str | Iterable[str | None] | None = None,
    gpu_file: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    refresh: bool = False,
    chunk_rows: int | None = None,
    **settings: Any,
) -> SweepResult:
    """Every combination of models (names, files, globs), GPUs, TP and PP sizes, engines,
    engine releases (None: each engine's default line; a release another engine does not
    model is a skipped combination, as `fit` refuses it), KV dtypes, KV-head counts G
    (None: the model's own), contexts and batches.

    Returns a `SweepResult`: `.plans` (one per model x gpu x tp x pp x engine x
    engine_version x kv_dtype x G,
    computed with the scalar core), `.skipped` (combinations that are not a valid
    deployment, with the reason), and `.chunks()`, which yields column dicts of numpy arrays
    (the scenario plus the fields `fit --json` prints for it), `chunk_rows` rows at a time,
    so grids larger than memory stream. Other `settings` (block_size, kv_memory, ...) apply
    to every plan."""
    from kvplan.core.sweep import SweepGrid

    def many(value: Any) -> list[Any]:
        if value is None:
            return [None]
        if isinstance(value, str | int) or not isinstance(value, Iterable):
            return [value]
        return list(value)

    names = many(model)
    resolved = [
        m
        for name in names
        for m in _expand_models(name, revision=revision, token=token, refresh=refresh)
    ]
    max_ctx, max_batch = _limits()
    ctxs = [positive(c, "--ctx", limit=max_ctx) for c in many(ctx)]
    batches = [positive(b, "--batch", limit=max_batch) for b in many(batch)]
    gpus = [load_gpu(g, gpu_file=gpu_file).name for g in many(gpu)]
    grid = SweepGrid(
        gpus=tuple(gpus),
        tp=tuple(many(tp)),
        pp=tuple(many(pp)),
        engines=tuple(many(engine)),
        engine_versions=tuple(many(engine_version)),
        kv_dtypes=tuple(many(kv_dtype)),
        kv_heads=tuple(many(kv_heads)),
        ctx=tuple(int(c) for c in ctxs if c is not None),
        batch=tuple(int(b) for b in batches if b is not None),
    )
    return _build_sweep(resolved, grid, settings=settings, gpu_file=gpu_file, chunk_rows=chunk_rows)


def _build_sweep(
    models: list[ResolvedModel],
    grid: Any,
    *,
    settings: Mapping[str, Any],
    gpu_file: str | None,
    chunk_rows: int | None,
) -> SweepResult:
    """One scalar-core plan per model x GPU x TP x PP x engine x release x KV dtype x G (parsed by
    `parse_deployment`, as `fit` parses its flags); invalid combinations are skipped with
    the reason. The (ctx, batch) grid is left to the vectorised core."""
    from kvplan.core.capacity import plan
    from kvplan.core.sizing import as_standard_attention
    from kvplan.core.sweep import DEFAULT_CHUNK_ROWS, PlanTerms, SweepResult, plan_terms
    from kvplan.errors import KvplanError

    plans: list[PlanTerms] = []
    skipped: list[tuple[dict[str, Any], str]] = []
    for resolved in models:
        spec0 = resolved.spec
        for gpu, tp, pp, engine, version, kv_dtype, g in grid.plan_axes():
            scenario = {
                "model": spec0.name,
                "gpu": gpu,
                "tp": tp,
                "pp": pp,
                "engine": engine,
                "engine_version": version,
                "kv_dtype": kv_dtype,
                "kv_heads": g,
            }
            raw = {**settings, "gpu": gpu, "tp": tp, "pp": pp, "engine": engine}
            raw["engine_version"] = version
            raw["kv_dtype"] = kv_dtype
            try:
                if g is None:
                    spec, weights = spec0, _exact_weights(resolved, raw)
                else:
                    base = as_standard_attention(spec0) if spec0.mla is not None else spec0
                    if base.query_heads % g:
                        raise KvplanError(
                            f"G={g} does not divide the model's {base.query_heads} query heads",
                            setting="kv_heads",
                        )
                    spec, weights = base.with_kv_heads(g), None
                d = _deployment(spec, raw, gpu_file, weights)
                plans.append(plan_terms(plan(d), model=spec0.name))
            except KvplanError as exc:
                skipped.append((scenario, str(exc)))
    return SweepResult(
        plans=plans,
        ctx=grid.ctx,
        batch=grid.batch,
        skipped=skipped,
        chunk_rows=chunk_rows or DEFAULT_CHUNK_ROWS,
    )


GLOB_CHARS = "*?["


def _expand_models(
    model: str | ResolvedModel, *, revision: str | None, token: str | None, refresh: bool
) -> list[ResolvedModel]:
    """One MODEL of a sweep: a name / path / repo id, or a glob of config files (sorted)."""
    import glob

    from kvplan.errors import KvplanError

    if not isinstance(model, str) or not any(ch in model for ch in GLOB_CHARS):
        return [load_model(model, revision=revision, token=token, refresh=refresh)]
    paths = sorted(glob.glob(model, recursive=True))
    if not paths:
        raise KvplanError(f"{model}: the glob matches no file", setting="model")
    return [load_model(p) for p in paths]
