"""Rendering of `kvplan roofline`: the step breakdown, the batch sweep, a chart per G."""

from __future__ import annotations

from math import log10
from typing import TYPE_CHECKING, Any

from kvplan.core.capacity import Plan
from kvplan.core.frozen import Frozen
from kvplan.core.roofline import (
    FITTED_PROVENANCE,
    DecodeEstimate,
    GSweep,
    RooflineReport,
    ServingEstimate,
)
from kvplan.units import GB, TB, fmt_bytes, fmt_tokens

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text


BAR_WIDTH = 24  # characters of the longest bar in the terminal chart
BAR = "█"
MEMORY_STYLE = "green"
KV_STYLE = "yellow"  # memory-bound, and KV is at least half the bytes
COMPUTE_STYLE = "red"
KV_MAJORITY = 0.5
TFLOP = 1e12
MS = 1e3  # seconds -> milliseconds


class RooflineResult(Frozen):
    """Everything `kvplan roofline` shows: the one typed result the rich view and the JSON
    object both render (no merging of dicts in the CLI)."""

    report: RooflineReport
    plan: Plan
    source: str | None = None
    revision: str | None = None
    plot: str | None = None
    model_note: str | None = None  # an unverified catalog entry (sources.catalog)

    def to_json(self) -> dict[str, Any]:
        """The `--json` object without the envelope keys (what `kvplan.roofline` returns)."""
        return roofline_json(self)


def _ms(seconds: float) -> str:
    return f"{seconds * MS:,.3f} ms" if seconds * MS < 10 else f"{seconds * MS:,.1f} ms"


def _point_fields(e: DecodeEstimate, max_batch: int | None) -> dict[str, Any]:
    return {
        "batch": e.batch,
        "decode_ms": e.decode_ms,
        "decode_tokens_per_s": e.decode_tokens_per_s,
        "tokens_per_s_per_seq": e.tokens_per_s_per_seq,
        "bound": e.bound,
        "kv_share": e.kv_share,
        "bytes_weights": e.bytes_weights,
        "bytes_kv": e.bytes_kv,
        "flops": e.flops,
        "intensity": e.intensity,
        "fits": None if max_batch is None else e.batch <= max_batch,
    }


def _sweep_fields(s: GSweep) -> dict[str, Any]:
    return {
        "kv_heads": s.kv_heads,
        "label": s.label,
        "max_batch": s.max_batch,
        "kv_dominant_batch": s.kv_dominant_batch,
        "compute_bound_batch": s.compute_bound_batch,
        "points": [_point_fields(e, s.max_batch) for e in s.points],
    }


def _breakdown_fields(e: DecodeEstimate) -> dict[str, float]:
    """One step's seconds term by term (per pipeline stage)."""
    return {
        "weights_s": e.weights_s,
        "kv_s": e.kv_s,
        "other_s": e.other_s,
        "memory_s": e.memory_s,
        "compute_s": e.compute_s,
        "fixed_s": e.overhead_s,
        "layer_overhead_s": e.layer_overhead_s,
        "kv_spread": e.kv_spread,
        "comm_s": e.comm_s,
        "comm_latency_s": e.comm_latency_s,
        "step_s": e.step_s,
    }


def _serving_fields(s: ServingEstimate | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "concurrency": s.concurrency,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "decode_ms": s.decode.decode_ms,
        "decode_ctx": s.decode.ctx,
        "prefill_tokens_per_step": s.prefill_tokens_per_step,
        "prefill_ms_per_step": s.prefill_s_per_step * MS,
        "prefill_share": s.prefill_share,
        "tpot_ms": s.tpot_ms,
        "ttft_ms": s.ttft_ms,
        "output_tokens_per_s": s.output_tokens_per_s,
    }


def roofline_json(result: RooflineResult) -> dict[str, Any]:
    r, p = result.report, result.plan
    e = r.estimate
    d = p.deployment
    return {
        "source": result.source,
        "revision": result.revision,
        "model_note": result.model_note,
        "model": r.model,
        "gpu": d.gpu.name,
        "tp": d.tp,
        "pp": d.pp,
        "kv_dtype": d.kv_dtype,
        "weight_dtype": d.weight_dtype,
        "kv_heads": d.spec.kv_heads,
        "kv_heads_per_gpu": p.kv_heads_per_gpu,
        "batch": e.batch,
        "ctx": e.ctx,
        "decode_ms": e.decode_ms,
        "decode_tokens_per_s": e.decode_tokens_per_s,
        "tokens_per_s_per_seq": e.tokens_per_s_per_seq,
        "prefill_ms": e.prefill_ms,
        "bound": e.bound,
        "bytes_weights": e.bytes_weights,
        "bytes_kv": e.bytes_kv,
        "bytes_other": e.bytes_other,
        "bytes_total": e.bytes_total,
        "flops": e.flops,
        "flops_attention": e.flops_attention,
        "prefill_flops": e.prefill_flops,
        "intensity": e.intensity,
        "ridge": e.ridge,
        "effective_ridge": e.effective_ridge,
        "kv_share": e.kv_share,
        "memory_s": e.memory_s,
        "compute_s": e.compute_s,
        "comm_s": e.comm_s,
        "overhead_s": e.overhead_s,
        "step_s": e.step_s,
        "experts_touched": e.experts_touched,
        "kv_dominant_batch": e.kv_dominant_batch,
        "compute_bound_batch": e.compute_bound_batch,
        "max_batch": r.max_batch,
        "bandwidth": e.bandwidth,
        "peak_flops": e.peak_flops,
        "flops_dtype": e.flops_dtype,
        "efficiency": e.efficiency.model_dump(),
        "platform": e.platform,
        "link": e.link,
        "breakdown": _breakdown_fields(e),
        "serving": _serving_fields(r.serving),
        "fitted": FITTED_PROVENANCE,
        "notes": list(e.notes),
        "sweep": _sweep_fields(r.sweeps[0])["points"] if r.sweeps else [],
        "sweeps_by_g": [_sweep_fields(s) for s in r.sweeps],
        "skipped": list(r.skipped),
        "plot": result.plot,
    }


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%} of the step" if whole else ""


def _breakdown(e: DecodeEstimate, p: Plan) -> Table:
    """One step term by term: bytes and their time, compute, fixed costs, communication."""
    from rich.table import Table

    d = p.deployment
    eff = e.efficiency
    per = " per GPU" if d.tp * d.pp > 1 else ""
    t = Table(
        title=f"One decode step: batch {e.batch:,} x {fmt_tokens(e.ctx)} tokens{per} "
        f"({e.platform} profile)",
        title_justify="left",
    )
    t.add_column("term")
    t.add_column("amount", justify="right")
    t.add_column("time", justify="right")
    t.add_column("share / how", style="dim")
    bw = f"{e.bandwidth / TB:.2f} TB/s x {eff.bandwidth:g}"
    t.add_row(
        "weights streamed",
        fmt_bytes(e.bytes_weights),
        _ms(e.weights_s),
        f"at {bw}"
        + (f" x {eff.quantized_stream:g} (dequantized)" if e.weights_s and _dequant(e) else "")
        + (f"; {e.experts_touched:.1f} experts/layer touched" if e.experts_touched else ""),
    )
    t.add_row(
        "KV cache read + new token written",
        fmt_bytes(e.bytes_kv),
        _ms(e.kv_s),
        f"at {bw} x {eff.kv_bandwidth:g}"
        + (f", {e.kv_spread:.2f}x slower: few long sequences" if e.kv_spread > 1.005 else ""),
    )
    t.add_row("activations + logits", fmt_bytes(e.bytes_other), _ms(e.other_s), f"at {bw}")
    t.add_row(
        "= memory time",
        fmt_bytes(e.bytes_total),
        _ms(e.memory_s),
        "bound" if e.bound == "memory" else "hidden under compute",
        style="bold" if e.bound == "memory" else "",
    )
    t.add_row(
        "compute time",
        f"{e.flops / TFLOP:,.3f} TFLOP",
        _ms(e.compute_s),
        f"{(e.flops - e.flops_attention) / TFLOP:,.3f} projections + "
        f"{e.flops_attention / TFLOP:,.3f} attention, at {e.peak_flops / TFLOP:,.0f} "
        f"{e.flops_dtype} TFLOP/s x {eff.compute:g}",
        style="bold" if e.bound == "compute" else "",
    )
    t.add_row(
        "fixed cost (launches, syncs, routing)",
        "",
        _ms(e.overhead_s),
        f"{d.spec.num_layers // d.pp} layers x {eff.layer_overhead_s * 1e6:g} us"
        + (f" + MoE layers x {eff.moe_layer_overhead_s * 1e6:g} us" if e.experts_touched else "")
        + (f" + MLA layers x {eff.mla_layer_overhead_s * 1e6:g} us" if d.spec.mla else "")
        + (f" + {eff.step_overhead_s * MS:g} ms per step" if eff.step_overhead_s else "")
        + f"; {_share(e.overhead_s, e.step_s)}",
    )
    if e.comm_s:
        link = d.gpu.interconnect_bandwidth or 0
        t.add_row(
            "TP all-reduces",
            "",
            _ms(e.comm_s),
            f"{_ms(e.comm_latency_s)} latency ({eff.allreduce_latency_s * 1e6:g} us each, "
            f"{e.link}) + ring over {link / GB:,.0f} GB/s x {eff.interconnect:g}; "
            f"{_share(e.comm_s, e.step_s)}",
        )
    t.add_row(
        "= decode step",
        "",
        f"{e.decode_ms:,.2f} ms",
        f"max(memory, compute) + fixed + all-reduces; {e.bound}-bound"
        + (f", x {e.pp} pipeline stages" if e.pp > 1 else ""),
        style="bold",
    )
    return t


def _dequant(e: DecodeEstimate) -> bool:
    return any("dequantized in the GEMV" in n for n in e.notes)


def _serving(s: ServingEstimate) -> Table:
    from rich.table import Table

    t = Table(
        title=f"Serving at concurrency {s.concurrency:,}: {s.input_tokens:,}-token prompts, "
        f"{s.output_tokens:,}-token outputs (continuous batching, chunked prefill)",
        title_justify="left",
    )
    t.add_column("term")
    t.add_column("time", justify="right")
    t.add_column("how", style="dim")
    t.add_row(
        "pure decode step",
        f"{s.decode.decode_ms:,.2f} ms",
        f"batch {s.concurrency:,} at the mean context {s.decode.ctx:,}",
    )
    t.add_row(
        "prefill share",
        f"{s.prefill_s_per_step * MS:,.2f} ms",
        f"{s.prefill_tokens_per_step:,.1f} prompt tokens per step (C x I / O); "
        f"{s.prefill_share:.0%} of each step",
    )
    t.add_row(
        "= time per output token",
        f"{s.tpot_ms:,.2f} ms",
        f"{s.output_tokens_per_s:,.0f} output tok/s aggregate",
        style="bold",
    )
    t.add_row("time to first token", f"{s.ttft_ms:,.1f} ms", "one prompt alone, no queueing")
    return t


def _sweep_table(s: GSweep) -> Table:
    from rich.table import Table

    t = Table(title=f"Batch sweep, G={s.kv_heads} ({s.label})", title_justify="left")
    for col in (
        "batch",
        "ms/step",
        "tok/s aggregate",
        "tok/s per seq",
        "KV share",
        "bound",
        "fits",
    ):
        t.add_column(col, justify="left" if col in ("bound", "fits") else "right")
    for e in s.points:
        style = _style(e)
        fits = "-" if s.max_batch is None else ("yes" if e.batch <= s.max_batch else "no")
        t.add_row(
            f"{e.batch:,}",
            f"{e.decode_ms:,.2f}",
            f"{e.decode_tokens_per_s:,.0f}",
            f"{e.tokens_per_s_per_seq:,.1f}",
            f"{e.kv_share:.0%}",
            e.bound,
            fits,
            style=style,
        )
    return t


def _style(e: DecodeEstimate) -> str:
    if e.bound == "compute":
        return COMPUTE_STYLE
    return KV_STYLE if e.kv_share >= KV_MAJORITY else MEMORY_STYLE


def _bar(ms: float, lo: float, hi: float) -> str:
    """Bar length on a log scale between the smallest and largest step time shown."""
    if hi <= lo:
        return BAR * BAR_WIDTH
    frac = (log10(ms) - log10(lo)) / (log10(hi) - log10(lo))
    return BAR * max(1, round(1 + frac * (BAR_WIDTH - 1)))


def _chart(r: RooflineReport) -> Table:
    from rich.table import Table
    from rich.text import Text

    values = [e.decode_ms for s in r.sweeps for e in s.points]
    lo, hi = min(values), max(values)
    t = Table(
        title="Step time vs batch per G (bar length: log ms; green memory-bound, yellow "
        "KV-dominated, red compute-bound; * = does not fit)",
        title_justify="left",
    )
    t.add_column("batch", justify="right")
    for s in r.sweeps:
        t.add_column(f"G={s.kv_heads} {s.label}")
    for i, b in enumerate(e.batch for e in r.sweeps[0].points):
        cells: list[Text | str] = [f"{b:,}"]
        for s in r.sweeps:
            e = s.points[i]
            star = "*" if s.max_batch is not None and b > s.max_batch else ""
            cell = Text(_bar(e.decode_ms, lo, hi), style=_style(e))
            cell.append(f" {e.decode_ms:,.1f}{star}")
            cells.append(cell)
        t.add_row(*cells)
    return t


def _crossovers(e: DecodeEstimate, max_batch: int | None) -> list[str]:
    lines = [
        f"Arithmetic intensity {e.intensity:,.1f} FLOP/byte vs ridge {e.ridge:,.0f} "
        f"(rated peak / bandwidth; {e.effective_ridge:,.0f} with the efficiencies): "
        f"{e.bound}-bound.",
        f"Throughput: {e.decode_tokens_per_s:,.0f} tok/s aggregate, "
        f"{e.tokens_per_s_per_seq:,.1f} tok/s per sequence.",
        f"Prefill of one {e.ctx:,}-token prompt (time to first token): ~{e.prefill_ms:,.0f} ms "
        f"({e.prefill_flops / TFLOP:,.1f} TFLOP per GPU; compute-bound estimate).",
    ]
    kv = (
        f"KV traffic overtakes weight traffic from batch {e.kv_dominant_batch:,}"
        if e.kv_dominant_batch
        else "no per-token KV: weights dominate at every batch"
    )
    cb = (
        f"the step turns compute-bound from batch {e.compute_bound_batch:,}"
        if e.compute_bound_batch
        else "it never turns compute-bound at this context (each "
        "sequence's KV bytes cost more time than its FLOPs)"
    )
    lines.append(f"At {e.ctx:,} tokens: {kv}; {cb}.")
    if max_batch is not None:
        lines.append(f"Largest batch that fits the KV budget at {e.ctx:,} tokens: {max_batch:,}.")
    return lines


def render_roofline(result: RooflineResult) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    r, p, plot = result.report, result.plan, result.plot
    e = r.estimate
    d = p.deployment
    weights = d.weight_dtype or "checkpoint dtype"
    parts: list[RenderableType] = [
        Text.assemble(
            (r.model, "bold"),
            (f" on {d.tp * d.pp} x {d.gpu.name}", ""),
            (
                f"  (TP {d.tp}, PP {d.pp}, G={d.spec.kv_heads}, weights {weights}, "
                f"KV {d.kv_dtype}, GEMMs {e.flops_dtype})",
                "dim",
            ),
        ),
        _breakdown(e, p),
        *(Text(line) for line in _crossovers(e, r.max_batch)),
    ]
    if r.serving is not None:
        parts.append(_serving(r.serving))
    if r.sweeps:
        parts += [_sweep_table(r.sweeps[0]), _chart(r)]
    for note in (*e.notes, *p.notes, *r.skipped):
        parts.append(Text(note, style="yellow"))
    if result.model_note:
        parts.append(Text(f"note: {result.model_note}", style="yellow"))
    if plot:
        parts.append(Text(f"Roofline chart written to {plot}"))
    parts.append(
        Text(
            "Latency model: step = max(bytes / (bandwidth x efficiency), FLOPs / (peak x "
            "efficiency)) + fixed per-layer cost + TP all-reduces, with the "
            f"{e.platform} profile fitted on published measurements ({FITTED_PROVENANCE}). "
            "--bw-efficiency, --compute-efficiency override; see docs/roofline.md for the "
            "in- and out-of-sample error. Bytes in binary units, bandwidth decimal.",
            style="dim",
        )
    )
    return Group(*parts)


# ---- the optional matplotlib chart ---------------------------------------------------------
def write_plot(r: RooflineReport, path: str) -> None:
    """Log-log roofline: attainable FLOP/s vs arithmetic intensity, the ridge point marked,
    one line of operating points (batch sweep) per G, the requested point starred."""
    import numpy as np

    from kvplan.presentation.plotting import plot_target, pyplot, save_figure

    target = plot_target(path)
    plt = pyplot()
    e = r.estimate
    points = [q for s in r.sweeps for q in s.points]
    xs = [q.intensity for q in points] + [e.ridge]
    x = np.logspace(log10(min(xs) / 2), log10(max(xs) * 4), 200)
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.loglog(x, np.minimum(e.peak_flops, e.bandwidth * x), "k-", label="rated roof")
    eff_peak = e.peak_flops * e.efficiency.compute
    ax.loglog(
        x,
        np.minimum(eff_peak, e.bandwidth * e.efficiency.bandwidth * x),
        "k--",
        label="with efficiencies",
    )
    ax.plot([e.ridge], [e.peak_flops], "kD")
    ax.annotate(
        f"ridge {e.ridge:,.0f} FLOP/B",
        (e.ridge, e.peak_flops),
        textcoords="offset points",
        xytext=(6, -14),
    )
    for n, s in enumerate(r.sweeps):
        ix = [q.intensity for q in s.points]
        iy = [q.flops / q.step_s for q in s.points]
        (line,) = ax.plot(ix, iy, "-", lw=1.2, label=f"G={s.kv_heads} ({s.label})")
        # points whose batch the KV budget holds are filled; the others hollow ('does not
        # fit' in this deployment), so the chart never suggests an impossible operating point
        limit = s.max_batch or 0
        fit = [(px, py) for q, px, py in zip(s.points, ix, iy, strict=True) if q.batch <= limit]
        over = [(px, py) for q, px, py in zip(s.points, ix, iy, strict=True) if q.batch > limit]
        if fit:
            ax.plot(*zip(*fit, strict=True), "o", ms=4, color=line.get_color())
        if over:
            ax.plot(*zip(*over, strict=True), "o", ms=5, mfc="none", color=line.get_color())
        # labels only at the ends and the asked batch, staggered per G so they do not overprint
        dy = 4 + 9 * n
        for q, px, py in zip(s.points, ix, iy, strict=True):
            if q.batch in (1, e.batch) or q.batch == s.points[-1].batch:
                ax.annotate(
                    f"B={q.batch:,}",
                    (px, py),
                    textcoords="offset points",
                    xytext=(4, dy),
                    fontsize=7,
                    color=line.get_color(),
                )
    ax.plot([], [], "o", mfc="none", color="grey", label="does not fit (hollow)")
    ax.plot([e.intensity], [e.flops / e.step_s], "r*", ms=14, label="requested point")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel(f"attained FLOP/s per GPU ({e.flops_dtype})")
    ax.set_title(
        f"{r.model} on {e.gpu}, TP {e.tp}"
        + (f" x PP {e.pp}" if e.pp > 1 else "")
        + f", {fmt_tokens(e.ctx)} tokens: decode roofline"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(plt, fig, target, path)
