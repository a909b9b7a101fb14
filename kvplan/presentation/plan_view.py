"""Rendering of `kvplan plan`: memory, the operating point, the curve, sizing and cost."""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from kvplan.core.serving import PlanReport, ServingPoint
from kvplan.errors import KvplanError
from kvplan.presentation.plotting import plot_target, pyplot, save_figure
from kvplan.units import GiB

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table


CHART_WIDTH = 12
PLOT_SUFFIXES = (".svg", ".png")  # SVG is written directly, PNG via matplotlib


def _memory(r: PlanReport) -> Table:
    from rich.table import Table

    o = r.occupancy
    t = Table(title="How many requests the KV pool holds", title_justify="left", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_column("note", style="dim")
    t.add_row("KV budget per GPU", f"{o.kv_budget / GiB:,.2f} GiB", f"{r.kv_tokens:,} tokens")
    if o.shared_prefix_tokens:
        t.add_row(
            "shared prefix (stored once)",
            f"{o.shared_prefix_bytes / GiB:,.3f} GiB",
            f"{o.shared_prefix_tokens:,} tokens, whole blocks",
        )
    t.add_row(
        "guaranteed concurrency",
        f"{r.max_concurrency_guaranteed:,}",
        f"every request at full input+output ({o.full_bytes_mean / 2**20:,.1f} MiB each)",
    )
    t.add_row(
        "steady-state concurrency",
        f"{r.max_concurrency_steady:,}",
        f"mean occupancy {o.steady_bytes_mean / 2**20:,.1f} MiB per request; pool overflow ≤ 1 %",
        style="bold",
    )
    t.add_row(
        "pool full on average at",
        f"{o.max_concurrency_mean_fill:,}",
        "beyond this the engine preempts most of the time",
    )
    t.add_row(
        "engine max_num_seqs",
        f"{o.engine_max_num_seqs:,}",
        "caps both (below what memory allows)" if o.capped_by_engine else "above both: no cap",
    )
    if r.host_tier:
        h = r.host_tier
        t.add_row(
            "CPU offload tier",
            f"{h.tokens:,} tokens",
            f"{h.bytes / GiB:,.0f} GiB in {h.blocks:,} blocks: ~{h.prompts_held:,.0f} prompts",
        )
    return t


def _point(r: PlanReport) -> Table:
    from rich.table import Table

    p = r.point
    how = {
        "asked": "asked",
        "rate": f"from the rate (Little's law), {r.rate_per_s or 0:g}/s over {r.replicas} "
        "replica(s)",
        "memory": "steady memory limit",
    }
    t = Table(
        title=f"At concurrency {p.concurrency:,} ({how.get(r.concurrency_from, '')})",
        title_justify="left",
        show_header=False,
    )
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_column("note", style="dim")
    t.add_row(
        "TPOT (after first token)", f"{p.tpot_after_first_ms:,.1f} ms", "as benchmarks print it"
    )
    t.add_row("TPOT (steady, per user)", f"{p.tpot_ms:,.1f} ms", "E2E / output tokens")
    t.add_row("TTFT", f"{p.ttft_ms:,.0f} ms", "no queueing")
    t.add_row("decode step", f"{p.decode_step_ms:,.1f} ms", f"{p.bound}-bound")
    t.add_row(
        "prefill share of GPU time",
        f"{p.prefill_share:.0%}",
        f"{p.prefill_ms_per_request:,.1f} ms per request",
    )
    t.add_row(
        "output tokens/s",
        f"{p.output_tokens_per_s:,.0f}",
        f"{p.output_tokens_per_s_per_gpu:,.0f} per GPU, {p.output_tokens_per_s_per_user:,.1f} "
        "per user",
        style="bold",
    )
    t.add_row("requests/s", f"{p.requests_per_s:,.2f}", "per replica")
    t.add_row("pool overflow probability", f"{p.preemption_probability:.1%}", "")
    return t


def _curve(points: tuple[ServingPoint, ...], at: int) -> Table:
    from rich.table import Table

    t = Table(title="Throughput-latency curve (one replica)", title_justify="left")
    for name in ("C", "TPOT ms", "TTFT ms", "tok/s", "/GPU", "/user", "overflow"):
        t.add_column(name, justify="right")
    t.add_column("per GPU", justify="left")
    top = max(q.output_tokens_per_s_per_gpu for q in points) or 1.0
    for q in points:
        bar = "█" * max(1, round(CHART_WIDTH * q.output_tokens_per_s_per_gpu / top))
        t.add_row(
            f"{q.concurrency:,}",
            f"{q.tpot_after_first_ms:,.1f}",
            f"{q.ttft_ms:,.0f}",
            f"{q.output_tokens_per_s:,.0f}",
            f"{q.output_tokens_per_s_per_gpu:,.0f}",
            f"{q.output_tokens_per_s_per_user:,.1f}",
            f"{q.preemption_probability:.0%}",
            bar,
            style="bold" if q.concurrency == at else None,
        )
    return t


def _options(r: PlanReport) -> Table:
    from rich.table import Table

    t = Table(
        title=f"Sizing for {r.rate_per_s:g} requests/s, ranked (max C: per replica within SLOs)",
        title_justify="left",
    )
    for name in ("#", "GPU", "TP", "PP", "C", "max C", "repl", "GPUs", "TPOT", "TTFT"):
        t.add_column(name, justify="right", no_wrap=True)
    t.add_column("$/M out", justify="right", no_wrap=True)
    t.add_column("$/month", justify="right", no_wrap=True)
    for i, o in enumerate(r.options, 1):
        if not o.feasible:
            t.add_row(str(i), o.gpu, str(o.tp), str(o.pp), o.reason or "", style="dim")
            continue
        assert o.point is not None
        t.add_row(
            str(i),
            o.gpu,
            str(o.tp),
            str(o.pp),
            f"{o.point.concurrency:,}",
            f"{o.slo_concurrency:,}",
            f"{o.replicas:,}",
            f"{o.gpus:,}",
            f"{o.point.tpot_after_first_ms:,.1f}",
            f"{o.point.ttft_ms:,.0f}",
            f"{o.cost.cost_per_million_output_tokens:,.3f}" if o.cost else "",
            f"{o.cost.usd_per_month:,.0f}" if o.cost else "",
            style="bold" if i == 1 else None,
        )
    return t


def render_plan(r: PlanReport, *, plot: str | None = None) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    w = r.workload
    head = Text()
    head.append(f"{r.model}", style="bold")
    head.append(
        f" on {r.gpu} x{r.tp * r.pp} (TP {r.tp}, PP {r.pp}, {r.engine_version or r.engine}); "
        f"workload {w.name}: "
        f"{w.requests:,} request type(s), mean input {w.mean_input:,.0f}, "
        f"output {w.mean_output:,.0f} tokens"
    )
    if w.prefix_len:
        head.append(f", shared prefix {w.prefix_len:,}")
    if w.source:
        head.append(f"\nsource: {w.source}", style="dim")
    parts: list[RenderableType] = [head, _memory(r), _point(r), _curve(r.curve, r.concurrency)]
    if r.options:
        parts.append(_options(r))
    summary = Text()
    summary.append(
        f"replicas {r.replicas}, GPUs {r.gpus}",
        style="bold" if r.targets_met else "bold red",
    )
    if r.cost:
        summary.append(
            f"; ${r.cost.cost_per_million_output_tokens:,.3f} per million output tokens "
            f"(${r.cost.cost_per_million_input_tokens:,.3f} per million input, all cost "
            f"charged to each), ${r.cost.usd_per_month:,.0f}/month at "
            f"${r.cost.usd_per_gpu_hour:g}/GPU-hour"
        )
        summary.append(f"\nprice: {r.cost.price_source}", style="dim")
    parts.append(summary)
    for note in (*r.notes, *([r.model_note] if r.model_note else [])):
        parts.append(Text(f"note: {note}", style="yellow"))
    parts.append(
        Text(
            f"model factors (fitted on the training split, docs/plan.md): decode "
            f"{r.factors.decode:g}, prefill {r.factors.prefill:g}",
            style="dim",
        )
    )
    if plot:
        parts.append(Text(f"curve written to {plot}", style="dim"))
    return Group(*parts)


# ---- the curve as a file ---------------------------------------------------------------------
def write_curve(r: PlanReport, path: str) -> None:
    """Output tokens/s per GPU against TPOT, one point per concurrency: SVG written
    directly, PNG through matplotlib (kvplan[plot])."""
    target = plot_target(path, PLOT_SUFFIXES)
    suffix = target.suffix.lower()
    xs = [q.tpot_after_first_ms for q in r.curve]
    ys = [q.output_tokens_per_s_per_gpu for q in r.curve]
    labels = [q.concurrency for q in r.curve]
    title = f"{r.model} on {r.gpu} TP{r.tp} PP{r.pp}, {r.workload.name}"
    if suffix == ".png":
        plt = pyplot(hint="pip install 'kvplan[plot]', or write .svg")
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(xs, ys, "o-")
        for x, y, n in zip(xs, ys, labels, strict=True):
            ax.annotate(f"C={n}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xlabel("TPOT after first token (ms)")
        ax.set_ylabel("output tokens/s per GPU")
        ax.set_title(title, fontsize=9)
        ax.grid(True, alpha=0.3)
        save_figure(plt, fig, target, path)
        return
    try:
        target.write_text(_svg(xs, ys, labels, title), encoding="utf-8")
    except OSError as exc:
        raise KvplanError(f"--plot {path}: cannot write ({exc.strerror})") from None


def _svg(xs: list[float], ys: list[float], labels: list[int], title: str) -> str:
    width, height, pad = 640, 400, 60
    x_max, y_max = max(xs) * 1.05 or 1.0, max(ys) * 1.1 or 1.0

    def px(x: float) -> float:
        return pad + (width - 2 * pad) * x / x_max

    def py(y: float) -> float:
        return height - pad - (height - 2 * pad) * y / y_max

    pts = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=True))
    marks = "".join(
        f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3"/>'
        f'<text x="{px(x) + 5:.1f}" y="{py(y) - 5:.1f}" font-size="10">C={n}</text>'
        for x, y, n in zip(xs, ys, labels, strict=True)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif">'
        f'<text x="{pad}" y="24" font-size="13">{escape(title)}</text>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="black"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>'
        f'<text x="{width / 2:.0f}" y="{height - 20}" font-size="11" text-anchor="middle">'
        f"TPOT after first token (ms), 0 to {x_max:,.0f}</text>"
        f'<text x="16" y="{height / 2:.0f}" font-size="11" transform="rotate(-90 16 '
        f'{height / 2:.0f})" text-anchor="middle">output tokens/s per GPU, 0 to '
        f"{y_max:,.0f}</text>"
        f'<polyline fill="none" stroke="steelblue" stroke-width="2" points="{pts}"/>'
        f'<g fill="steelblue">{marks}</g></svg>\n'
    )
