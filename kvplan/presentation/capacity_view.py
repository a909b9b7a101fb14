"""Rendering of `kvplan fit`, `kvplan pick-g` and `kvplan gpus`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kvplan.core.capacity import Plan
from kvplan.core.design import GRow
from kvplan.core.engines import Engine, padded_vocab
from kvplan.core.gpu import GpuSpec
from kvplan.core.reports import FitReport, PickGReport
from kvplan.units import GB, TB, GiB, fmt_bytes, fmt_gib, fmt_n, fmt_tokens

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table


FIT_STYLE = "green"
NOFIT_STYLE = "red"


def budget_table(p: Plan) -> Table:
    """The budget as the engine derives it, each engine in its own order and terms, so
    every row subtracts (or multiplies) what is displayed above it."""
    from rich.table import Table

    b = p.budget
    d = p.deployment
    per = "per GPU" if d.tp * d.pp > 1 else ""
    t = Table(
        title=f"KV budget {per} on {d.gpu.display_name} ({d.engine_label})".replace("  ", " "),
        title_justify="left",
        show_header=True,
    )
    t.add_column("term")
    t.add_column("GiB per GPU", justify="right")
    t.add_column("how", style="dim")
    t.add_row(
        "GPU memory (as CUDA reports)",
        f"{b.total_memory / GiB:,.2f}",
        d.gpu.memory_basis if not d.gpu.cuda_memory_bytes else "runtime total",
    )
    if b.direct:
        t.add_row("KV budget (--kv-memory)", f"{b.kv_budget / GiB:,.2f}", "given directly")
        return t
    weights_note = f"{p.weights_total / GiB:,.2f} GiB / {fmt_n(d.tp * d.pp, 'GPU')}"
    if p.weights_replicated_per_gpu:
        # engines keep some tensors whole on every TP rank (EngineRules.tp_replicated)
        replicated = p.weights_replicated_per_gpu / GiB
        weights_note += f", {replicated:,.2f} GiB of it whole on every GPU"
    if p.rope_cache_per_gpu:
        # the checkpoint's share above does not hold the table: it is added per GPU
        weights_note += f" + rotary cache {fmt_bytes(p.rope_cache_per_gpu)}"
    load_overhead = b.weights - p.weights_per_gpu  # SGLang's "mem usage" beyond the params
    if load_overhead > 0:
        weights_note += f" + load overhead {load_overhead / GiB:,.2f} GiB"
    if d.engine is Engine.TRTLLM:
        engine_flow = d.profile.per_slot_vocab_bytes > 0  # the `trt` line
        t.add_row("− weights", f"{b.weights / GiB:,.2f}", weights_note)
        tokens = f"{d.scheduler_tokens:,} tokens"
        t.add_row(
            "− execution context" if engine_flow else "− activations",
            f"{b.activations / GiB:,.2f}",
            "given (--activation-reserve)"
            if d.activation_reserve is not None
            else f"estimated: forward pass of {tokens} (--activation-reserve)",
        )
        if d.overhead is not None:
            runtime_how = "given (--overhead)"
        elif engine_flow:
            vocab = padded_vocab(d.spec.vocab_size, d.tp)
            buffers = d.profile.batch_buffer_bytes(d.scheduler_seqs, d.spec.vocab_size, d.tp)
            runtime_how = (
                f"estimated: {(b.overhead - buffers) / GiB:.2f} + {d.scheduler_seqs:,} seqs x "
                f"{vocab:,} vocab x {d.profile.per_slot_vocab_bytes:g} B (--overhead)"
            )
        else:
            runtime_how = "estimated (--overhead)"
        t.add_row("− runtime", f"{b.overhead / GiB:,.2f}", runtime_how)
        free = b.total_memory - b.weights - b.activations - b.overhead
        t.add_row("= free after load", f"{free / GiB:,.2f}", "TensorRT-LLM's 'available'")
        t.add_row(
            f"× {b.knob} {b.fraction:g}", f"{b.kv_budget / GiB:,.2f}", b.formula, style="bold"
        )
    elif d.engine is Engine.SGLANG:
        t.add_row("− in use before load", f"{b.preload / GiB:,.2f}", "CUDA context (pre-load)")
        before = b.total_memory - b.preload
        t.add_row("= avail mem before load", f"{before / GiB:,.2f}", "SGLang's total_gpu_memory")
        t.add_row(f"× {b.knob} {b.fraction:g}", f"{b.engine_memory / GiB:,.2f}", "static share")
        t.add_row("− weights", f"{b.weights / GiB:,.2f}", weights_note)
        t.add_row("= KV pool", f"{b.kv_budget / GiB:,.2f}", b.formula, style="bold")
    else:
        if b.fraction is not None:
            t.add_row(
                f"× {b.knob} {b.fraction:g}", f"{b.engine_memory / GiB:,.2f}", "requested memory"
            )
        t.add_row("− weights", f"{b.weights / GiB:,.2f}", weights_note)
        if b.activations:
            t.add_row(
                "− peak activations",
                f"{b.activations / GiB:,.2f}",
                "estimated (--activation-reserve)",
            )
        if b.overhead:
            t.add_row("− non-torch", f"{b.overhead / GiB:,.2f}", "(--overhead)")
        if b.cudagraph:
            t.add_row("− CUDA graphs", f"{b.cudagraph / GiB:,.2f}", "estimated, subtracted")
        t.add_row("= KV budget", f"{b.kv_budget / GiB:,.2f}", b.formula, style="bold")
    if b.shortfall:
        t.add_row("short by", f"{b.shortfall / GiB:,.2f}", "weights do not fit", style="red")
    return t


def _cached_per_gpu(p: Plan) -> str:
    """What one GPU caches per token: KV heads, or, for MLA, the one latent (which TP does
    not split: every GPU holds all of it)."""
    mla = p.deployment.spec.mla
    if mla is not None:
        return f"one MLA latent of {mla.latent_dim} elements per layer, whole on every GPU"
    return f"{fmt_n(p.kv_heads_per_gpu, 'KV head')} per GPU"


def _prefix(r: FitReport) -> str:
    """Prefix caching as the engine runs it (the switch, else the release's default)."""
    if r.prefix_caching is None:
        return ""
    return f", prefix caching {'on' if r.prefix_caching else 'off'}"


def render_fit(r: FitReport) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    p = r.plan
    d = p.deployment
    model = r.model
    parts: list[RenderableType] = [
        Text.assemble(
            (model, "bold"),
            (f" on {d.tp * d.pp} x {d.gpu.name}", ""),
            (f"  (TP {d.tp}, PP {d.pp}, KV {d.kv_dtype}, block {d.block_size}{_prefix(r)})", "dim"),
        ),
        budget_table(p),
        Text(
            f"KV per token per GPU: {p.kv_bytes_per_token:,} bytes ({_cached_per_gpu(p)}); "
            f"pool: {p.num_blocks:,} blocks = {p.kv_tokens:,} tokens"
        ),
    ]
    mode = r.mode
    if mode == "max_batch":
        style = FIT_STYLE if (r.max_batch or 0) > 0 else NOFIT_STYLE
        parts.append(
            Text(
                f"Largest batch at {r.ctx:,} tokens: {r.max_batch:,} "
                f"sequences ({fmt_gib(r.kv_bytes or 0)} of KV per GPU)",
                style=f"bold {style}",
            )
        )
    elif mode == "max_ctx":
        style = FIT_STYLE if (r.max_ctx or 0) > 0 else NOFIT_STYLE
        tail = ""
        if r.capped_by_positions:
            tail = " (capped by the model's max positions; memory allows more)"
        elif r.unbounded:
            tail = " (all layers windowed: per-sequence cache stops growing)"
        parts.append(
            Text(
                f"Largest context at batch {r.batch:,}: {r.max_ctx:,} tokens{tail}",
                style=f"bold {style}",
            )
        )
    elif mode == "check":
        ok = r.fits
        verdict = "fits" if ok else "does NOT fit"
        # separate pools (TensorRT-LLM per window, SGLang full + sliding): the headroom is
        # the scarcest pool's, not the budget less the total
        pooled = p.trt_windows is not None or p.swa_pools is not None
        spare = "headroom in the scarcest pool" if pooled else "headroom"
        parts.append(
            Text(
                f"batch {r.batch:,} x {r.ctx:,} tokens {verdict}: needs "
                f"{fmt_gib(r.kv_bytes or 0)} of {fmt_gib(r.kv_budget_bytes)}; "
                f"{spare} {fmt_gib(r.headroom_bytes or 0)} ({r.headroom_pct or 0:.1f}%)",
                style=f"bold {FIT_STYLE if ok else NOFIT_STYLE}",
            )
        )
    else:
        t = Table(title="Largest batch per context", title_justify="left")
        t.add_column("context", justify="right")
        t.add_column("KV / sequence", justify="right")
        t.add_column("max batch", justify="right")
        for row in r.table:
            style = FIT_STYLE if row.max_batch > 0 else NOFIT_STYLE
            t.add_row(
                fmt_tokens(row.ctx),
                fmt_bytes(row.kv_bytes_per_sequence),
                f"{row.max_batch:,}",
                style=style,
            )
        parts.append(t)
    if r.reason:
        parts.append(Text(f"Does not fit: {r.reason}", style=f"bold {NOFIT_STYLE}"))
    if r.engine_log:
        parts.append(Text(f"{d.engine_label} would log:", style="dim"))
        for line in r.engine_log:
            parts.append(Text(f"  {line}", style="dim"))
    if r.latency is not None:
        parts.append(Text(r.latency.summary))
    if r.launch_command:
        parts.append(Text(f"Launch: {r.launch_command}", style="cyan"))
    for note in p.notes:
        parts.append(Text(note, style="yellow"))
    if r.model_note:
        parts.append(Text(f"note: {r.model_note}", style="yellow"))
    for warning in r.warnings:
        parts.append(Text(warning, style="yellow"))
    parts.append(Text("GiB = 2^30 bytes.", style="dim"))
    return Group(*parts)


def _pickg_note(r: PickGReport, row: GRow) -> str:
    if row.invalid_reason is not None:
        return f"engine refuses it at TP {r.tp} (below)"
    if row.kv_budget_bytes is None:
        return "weights alone do not fit"
    if row.kv_heads is None:
        return "reference: the model's own latent"
    if row.fits and not row.fits_with_headroom:
        return f"fits, but with under {r.headroom:.0%} of the budget free"
    return ""


def render_pickg(r: PickGReport, *, chart: bool = False, plot: str | None = None) -> RenderableType:
    """One row per G, every size PER GPU in one unit per column (KiB per token, GiB for
    the workload, weights and budget); G values the engine refuses at this TP say why."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    ctx, batch, header = r.ctx, r.batch, r.header
    latency = any(row.decode_ms is not None for row in r.rows)
    gpus = r.tp * r.pp
    engine = f", {r.engine_version}" if r.engine_version else ""
    t = Table(
        title=f"KV heads G for {batch:,} x {ctx:,} tokens, sizes per GPU ({fmt_n(gpus, 'GPU')}: "
        f"TP {r.tp}, PP {r.pp}, KV {r.kv_dtype}{engine})",
        title_justify="left",
    )
    cols = [
        ("G", "right"),
        ("layout", "left"),
        ("KV/token (KiB)", "right"),
        ("KV for workload (GiB)", "right"),
        ("weights (GiB)", "right"),
        ("KV budget (GiB)", "right"),
        (f"fits, {r.headroom:.0%} free", "left"),
        ("max batch @ctx", "right"),
        ("max ctx @batch", "right"),
    ]
    if latency:
        cols += [("decode (ms/step)", "right"), ("tok/s agg / per seq", "right")]
    notes = [_pickg_note(r, row) for row in r.rows]
    if any(notes):
        cols.append(("note", "left"))
    for col, justify in cols:
        t.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row, note in zip(r.rows, notes, strict=True):
        g = str(row.kv_heads) if row.kv_heads is not None else "latent"
        if row.invalid_reason is not None:
            t.add_row(g, row.label, *["-"] * (len(cols) - 3), note, style="dim")
            continue
        style = FIT_STYLE if row.fits_with_headroom else NOFIT_STYLE
        if row.kv_heads == r.recommended_kv_heads:
            style = f"bold reverse {FIT_STYLE}"
        fits = "yes" if row.fits_with_headroom else ("tight" if row.fits else "no")
        budget = row.kv_budget_bytes
        cells = [
            g,
            row.label,
            f"{row.kv_bytes_per_token_per_gpu / 1024:,.2f}",
            f"{row.kv_bytes / GiB:,.2f}",
            f"{row.weights_per_gpu_bytes / GiB:,.2f}",
            f"{budget / GiB:,.2f}" if budget is not None else "-",
            fits,
            f"{row.max_batch:,}",
            f"{row.max_ctx:,}",
        ]
        if latency:
            ms, tps = row.decode_ms, row.decode_tokens_per_s
            cells += (
                [f"{ms:,.1f}", f"{tps:,.0f} / {tps / batch:,.1f}"]
                if ms is not None and tps is not None
                else ["-", "-"]
            )
        if any(notes):
            cells.append(note)
        t.add_row(*cells, style=style)
    parts: list[RenderableType] = [Text(header, style="bold")]
    if r.model_note:
        parts.append(Text(f"note: {r.model_note}", style="yellow"))
    if r.assumptions:
        parts.append(Text("Assumptions: " + "; ".join(r.assumptions), style="dim"))
    parts.append(t)
    for row in r.rows:
        if row.invalid_reason is not None:
            parts.append(Text(f"G={row.kv_heads}: {row.invalid_reason}", style="dim"))
    parts.append(Text(r.reason, style="bold"))
    if r.remedies:
        parts.append(Text("What would work instead (computed):"))
    for remedy in r.remedies:
        parts.append(Text(f"  • {remedy.text}"))
    if r.changes:
        target = r.target_kv_heads
        parts.append(
            Text(
                f"Deployment changes that fit a larger G (up to G={target}), fewest GPUs "
                f"first, each checked by the same budget solver with {r.headroom:.0%} free:"
            )
        )
        for ch in r.changes:
            parts.append(
                Text(
                    f"  • G={ch.kv_heads} ({ch.label}) on {ch.gpus} x {ch.gpu}: "
                    f"{' '.join(ch.changes)}  ({ch.kv_bytes / GiB:,.2f} of "
                    f"{ch.kv_budget_bytes / GiB:,.2f} GiB per GPU)"
                )
            )
        if any(ch.kv_dtype != r.kv_dtype for ch in r.changes):
            parts.append(
                Text(
                    "  (memory only: check that your engine supports the KV dtype on that GPU)",
                    style="dim",
                )
            )
    if chart and r.curves:
        parts.append(pickg_chart(r))
    if plot:
        parts.append(Text(f"Chart written to {plot}"))
    if r.evidence:
        parts.append(
            Text(
                "Quality: published evidence for each study's own setting, not a prediction "
                "for this model:",
                style="bold",
            )
        )
        for study in r.evidence:
            parts.append(Text(f"  • {study.line()}"))
    parts.append(
        Text(
            "Sizes are per GPU; KiB = 2^10, GiB = 2^30 bytes; 'tight': fits, but inside the "
            "headroom (--headroom).",
            style="dim",
        )
    )
    return Group(*parts)


def gpu_row(g: GpuSpec) -> dict[str, Any]:
    return {
        "name": g.name,
        "display_name": g.display_name,
        "vendor": g.vendor,
        "memory_bytes": g.memory_bytes,
        "cuda_memory_bytes": g.cuda_memory_bytes,
        "usable_memory_bytes": g.usable_memory_bytes,  # the figure fit's budget starts from
        "memory_marketed_gb": g.memory_marketed_gb,
        "memory_type": g.memory_type,
        "memory_family": g.memory_family,
        "memory_bandwidth": g.memory_bandwidth,
        "flops": g.flops,
        "interconnect": g.interconnect,
        "interconnect_bandwidth": g.interconnect_bandwidth,
        "compute_capability": g.compute_capability,  # NVIDIA; None when not stated
        "gfx_target": g.gfx_target,  # AMD; None when not stated
        "aliases": list(g.aliases),
        "source": g.source,
    }


def half_precision(g: GpuSpec) -> tuple[str, float] | None:
    """The 16-bit tensor rate a GPU has: bf16 where it exists, else fp16 (V100, T4 and Apple
    have no bf16 tensor path), with the dtype named."""
    for dtype in ("bf16", "fp16"):
        rate = g.flops.get(dtype)
        if rate:
            return dtype, rate
    return None


def render_gpus(gpus: list[GpuSpec]) -> RenderableType:
    """One row per GPU; units in the headers, one precision per column. Memory is the one
    figure `fit` starts its budget from (the CUDA runtime total where known)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    t = Table(title=f"GPU catalog ({len(gpus)})", title_justify="left")
    for col in (
        "name",
        "GPU",
        "memory",
        "memory fit uses (GiB)",
        "marketed (GB)",
        "bandwidth (TB/s)",
        "16-bit dense (TFLOPS)",
        "fp8 dense (TFLOPS)",
        "link (GB/s)",
        "arch",
    ):
        t.add_column(col, justify="left" if col in ("name", "GPU", "memory", "arch") else "right")
    for g in gpus:
        half = half_precision(g)
        fp8 = g.flops.get("fp8")
        t.add_row(
            g.name,
            g.display_name,
            g.memory_type or "-",
            f"{g.usable_memory_bytes / GiB:,.2f}",
            f"{g.memory_marketed_gb:,.0f}",
            f"{g.memory_bandwidth / TB:,.2f}",
            f"{half[1] / 1e12:,.0f} {half[0]}" if half else "-",
            f"{fp8 / 1e12:,.0f}" if fp8 else "-",
            f"{g.interconnect_bandwidth / GB:,.0f}" if g.interconnect_bandwidth else "-",
            g.compute_capability or g.gfx_target or "-",
        )
    return Group(
        t,
        Text(
            "memory fit uses: the total the CUDA runtime reports where known, else the "
            "driver's (GiB = 2^30 bytes); bandwidth and FLOP/s decimal, dense (no sparsity); "
            "16-bit: bf16 where the GPU has it, else fp16 (named). HBM / GDDR / unified as the "
            "datasheet names the memory. arch: NVIDIA's CUDA compute capability (CC) or AMD's "
            "gfx target; '-' where not stated.",
            style="dim",
        ),
    )


# ---- pick-g: largest batch against context, per G ------------------------------------------
def pickg_chart(r: PickGReport) -> Table:
    """The terminal chart: one column per G, one row per context; each cell is the largest
    batch the KV budget holds there (the curve the --plot file draws). Cells that hold the
    asked batch are green; the asked context's row is marked."""
    from rich.table import Table
    from rich.text import Text

    t = Table(
        title=f"Largest batch vs context per G (KV budget per GPU; asked: {r.batch:,} x "
        f"{r.ctx:,} tokens, marked >)",
        title_justify="left",
    )
    t.add_column("context (tokens)", justify="right")
    for c in r.curves:
        t.add_column(f"G={c.kv_heads}" if c.kv_heads is not None else "MLA", justify="right")
    contexts = [ctx for ctx, _ in r.curves[0].points] if r.curves else []
    for i, ctx in enumerate(contexts):
        cells = []
        for c in r.curves:
            b = c.points[i][1]
            style = FIT_STYLE if b >= r.batch else NOFIT_STYLE
            cells.append(Text(f"{b:,}", style=style))
        mark = "> " if ctx == r.ctx else ""
        t.add_row(Text(f"{mark}{ctx:,}", style="bold" if mark else ""), *cells)
    return t


def write_pickg_plot(r: PickGReport, path: str) -> None:
    """Log-log chart: largest batch against context, one line per G, the asked workload
    starred and the asked batch as a horizontal line (needs the plot extra)."""
    from kvplan.presentation.plotting import plot_target, pyplot, save_figure

    target = plot_target(path)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for c in r.curves:
        xs = [ctx for ctx, b in c.points if b > 0]
        ys = [b for _, b in c.points if b > 0]
        name = f"G={c.kv_heads} ({c.label})" if c.kv_heads is not None else c.label
        ax.loglog(xs, ys, "o-", ms=3, label=name)
    ax.axhline(r.batch, color="k", ls="--", lw=1, label=f"asked batch {r.batch:,}")
    ax.plot([r.ctx], [r.batch], "r*", ms=14, label=f"asked {r.batch:,} x {r.ctx:,}")
    ax.set_xlabel("context per sequence (tokens)")
    ax.set_ylabel("largest batch the KV budget holds (sequences)")
    ax.set_title(f"{r.model} on {r.tp * r.pp} x {r.gpu}: which G holds the workload")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(plt, fig, target, path)
