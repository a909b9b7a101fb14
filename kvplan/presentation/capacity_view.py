"""Rendering of `kvplan fit`, `kvplan pick-g` and `kvplan gpus`."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from kvplan.core.capacity import Plan
from kvplan.core.engines import Engine
from kvplan.core.gpu import GpuSpec
from kvplan.core.reports import FitReport, PickGReport
from kvplan.units import GB, TB, GiB, fmt_bytes, fmt_gib, fmt_tokens

FIT_STYLE = "green"
NOFIT_STYLE = "red"


def budget_table(p: Plan) -> Table:
    """The budget as the engine derives it, each engine in its own order and terms, so
    every row subtracts (or multiplies) what is displayed above it."""
    b = p.budget
    d = p.deployment
    per = "per GPU" if d.tp * d.pp > 1 else ""
    t = Table(
        title=f"KV budget {per} on {d.gpu.display_name} ({d.profile.name})".replace("  ", " "),
        title_justify="left",
        show_header=False,
    )
    t.add_column("term")
    t.add_column("GiB", justify="right")
    t.add_column("note", style="dim")
    t.add_row(
        "GPU memory (as CUDA reports)",
        f"{b.total_memory / GiB:,.2f}",
        d.gpu.memory_basis if not d.gpu.cuda_memory_bytes else "runtime total",
    )
    if b.direct:
        t.add_row("KV budget (--kv-memory)", f"{b.kv_budget / GiB:,.2f}", "given directly")
        return t
    weights_note = f"{p.weights_total / GiB:,.2f} GiB / {d.tp * d.pp} GPU(s)"
    if d.engine is Engine.TRTLLM:
        t.add_row("− weights", f"{b.weights / GiB:,.2f}", weights_note)
        t.add_row(
            "− activations", f"{b.activations / GiB:,.2f}", "estimated (--activation-reserve)"
        )
        t.add_row("− runtime", f"{b.overhead / GiB:,.2f}", "(--overhead)")
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


def render_fit(r: FitReport) -> RenderableType:
    p = r.plan
    d = p.deployment
    model = r.model
    parts: list[RenderableType] = [
        Text.assemble(
            (model, "bold"),
            (f" on {d.tp * d.pp} x {d.gpu.name}", ""),
            (f"  (TP {d.tp}, PP {d.pp}, KV {d.kv_dtype}, block {d.block_size})", "dim"),
        ),
        budget_table(p),
        Text(
            f"KV per token per GPU: {p.kv_bytes_per_token:,} bytes "
            f"({p.kv_heads_per_gpu} KV head(s) per GPU); pool: {p.num_blocks:,} blocks = "
            f"{p.kv_tokens:,} tokens"
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
        parts.append(
            Text(
                f"batch {r.batch:,} x {r.ctx:,} tokens {verdict}: needs "
                f"{fmt_gib(r.kv_bytes or 0)} of {fmt_gib(r.kv_budget_bytes)}; "
                f"headroom {fmt_gib(r.headroom_bytes or 0)} ({r.headroom_pct or 0:.1f}%)",
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
        parts.append(Text(f"{r.engine_version} would log:", style="dim"))
        for line in r.engine_log:
            parts.append(Text(f"  {line}", style="dim"))
    if r.latency is not None:
        parts.append(Text(r.latency.summary))
    for note in p.notes:
        parts.append(Text(note, style="yellow"))
    for warning in r.warnings:
        parts.append(Text(warning, style="yellow"))
    parts.append(Text("GiB = 2^30 bytes.", style="dim"))
    return Group(*parts)


def render_pickg(r: PickGReport) -> RenderableType:
    ctx, batch, header = r.ctx, r.batch, r.header
    latency = any(row.decode_ms is not None for row in r.rows)
    t = Table(title=f"KV heads G for {batch} x {fmt_tokens(ctx)} tokens", title_justify="left")
    for col in (
        "G",
        "layout",
        "KV / token",
        "KV for workload",
        "weights",
        "KV budget",
        "fits",
        "max batch @ctx",
        "max ctx @batch",
    ):
        t.add_column(col, justify="left" if col in ("layout", "fits") else "right")
    if latency:
        t.add_column("decode ms/step", justify="right")
        t.add_column("tok/s (agg / per seq)", justify="right")
    for row in r.rows:
        style = FIT_STYLE if row.fits else NOFIT_STYLE
        if row.kv_heads == r.recommended_kv_heads:
            style = f"bold reverse {FIT_STYLE}"
        g = str(row.kv_heads) if row.kv_heads is not None else "latent"
        cells = [
            g,
            row.label,
            fmt_bytes(row.kv_bytes_per_token),
            fmt_gib(row.kv_bytes),
            fmt_gib(row.weights_bytes),
            fmt_gib(row.kv_budget_bytes)
            if row.kv_budget_bytes is not None
            else "weights don't fit",
            "yes" if row.fits else "no",
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
        t.add_row(*cells, style=style)
    parts: list[RenderableType] = [Text(header, style="bold"), t, Text(r.reason, style="bold")]
    if r.remedies:
        parts.append(Text("What would work instead (computed):"))
    for remedy in r.remedies:
        parts.append(Text(f"  • {remedy.text}"))
    parts.append(Text("KV for workload is per GPU; GiB = 2^30 bytes.", style="dim"))
    return Group(*parts)


def gpu_row(g: GpuSpec) -> dict[str, Any]:
    return {
        "name": g.name,
        "display_name": g.display_name,
        "vendor": g.vendor,
        "memory_bytes": g.memory_bytes,
        "cuda_memory_bytes": g.cuda_memory_bytes,
        "memory_marketed_gb": g.memory_marketed_gb,
        "memory_bandwidth": g.memory_bandwidth,
        "flops": g.flops,
        "interconnect": g.interconnect,
        "interconnect_bandwidth": g.interconnect_bandwidth,
        "aliases": list(g.aliases),
        "source": g.source,
    }


def render_gpus(gpus: list[GpuSpec]) -> RenderableType:
    t = Table(title=f"GPU catalog ({len(gpus)})", title_justify="left")
    for col in (
        "name",
        "GPU",
        "memory GiB",
        "marketed",
        "HBM TB/s",
        "bf16 TFLOPS",
        "fp8 TFLOPS",
        "link GB/s",
    ):
        t.add_column(col, justify="left" if col in ("name", "GPU") else "right")
    for g in gpus:
        bf16 = g.flops.get("bf16") or g.flops.get("fp16")
        fp8 = g.flops.get("fp8")
        t.add_row(
            g.name,
            g.display_name,
            f"{g.memory_bytes / GiB:,.1f}",
            f"{g.memory_marketed_gb:g} GB",
            f"{g.memory_bandwidth / TB:.2f}",
            f"{bf16 / 1e12:,.0f}" if bf16 else "-",
            f"{fp8 / 1e12:,.0f}" if fp8 else "-",
            f"{g.interconnect_bandwidth / GB:,.0f}" if g.interconnect_bandwidth else "-",
        )
    return Group(
        t,
        Text(
            "Memory: GiB as the runtime reports it; bandwidth and FLOP/s decimal, "
            "dense (no sparsity).",
            style="dim",
        ),
    )
