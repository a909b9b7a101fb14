"""`kvplan plan MODEL --gpu GPU --workload ...`: concurrency, latency, sizing and cost."""

from __future__ import annotations

import sys

import typer

from kvplan.cli import common as c
from kvplan.core.serving import CannotServe, Price, Speculation, build_report
from kvplan.core.workload import workload
from kvplan.errors import EXIT_DOES_NOT_FIT, KvplanError
from kvplan.presentation.output import print_json, stdout_console
from kvplan.presentation.plan_view import render_plan, write_curve
from kvplan.sources.deployment import parse_deployment
from kvplan.sources.workload_file import (
    load_prices,
    parse_duration,
    parse_price_option,
    parse_rate,
    resolve_workload,
    shape_names,
)
from kvplan.units import parse_size


@c.with_deployment_flags
def plan_command(
    model: str = typer.Argument(..., metavar="MODEL", help=c.MODEL_ARG_HELP),
    input_len: int = typer.Option(None, "--input-len", help="Prompt tokens per request."),
    output_len: int = typer.Option(None, "--output-len", help="Generated tokens per request."),
    workload_name: str = typer.Option(
        None,
        "--workload",
        help="A CSV / JSON-lines file of (input, output) lengths, or a published shape: "
        "chat, code, rag, reasoning, sharegpt, or an id of configs/workloads.yaml.",
    ),
    prefix_len: int = typer.Option(
        0, "--prefix-len", help="Prompt tokens every request shares (prefix caching)."
    ),
    concurrency: int = typer.Option(
        None, "--concurrency", help="Requests in flight [default: what the KV pool sustains]."
    ),
    rate: str = typer.Option(
        None, "--rate", help="Arrival rate with a unit, e.g. 5/s, 300/min: size replicas."
    ),
    slo_tpot: str = typer.Option(
        None, "--slo-tpot", help="Target time per output token after the first, e.g. 50ms."
    ),
    slo_ttft: str = typer.Option(None, "--slo-ttft", help="Target time to first token, e.g. 2s."),
    gpu_hour_cost: str = typer.Option(
        None,
        "--gpu-hour-cost",
        help="USD per GPU-hour: 2.49 (every GPU) or h100-sxm=2.49,mi300x=1.85.",
    ),
    prices: str = typer.Option(
        None,
        "--prices",
        help="Price table: 'default' (configs/gpu_prices.yaml, dated and sourced) or a YAML "
        "file of the same schema.",
    ),
    cpu_offload: str = typer.Option(
        None, "--cpu-offload", help="Host memory for KV offload per replica, e.g. 200GiB."
    ),
    draft: str = typer.Option(
        None,
        "--draft",
        help="Speculative decoding draft model (MODEL syntax); its weights and KV share the pool.",
    ),
    no_search: bool = typer.Option(
        False, "--no-search", help="With --rate: keep the given TP/PP (no search over TP/PP)."
    ),
    plot: str = typer.Option(
        None, "--plot", help="Write the throughput-latency curve to this file (.svg, .png)."
    ),
    *,
    flags: c.DeploymentFlags,
) -> None:
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS;
    # the docstring is the rest of its --help.
    """Exit 0 when answered (and the asked targets are met), 1 when the asked concurrency,
    rate or SLOs cannot be met (the closest is still printed), 2 for bad input.
    """
    c.positive(input_len, "--input-len", limit=c.MAX_CTX)
    c.positive(output_len, "--output-len", limit=c.MAX_CTX)
    c.positive(concurrency, "--concurrency", limit=c.MAX_BATCH)
    if prefix_len is not None and prefix_len < 0:
        raise KvplanError(f"--prefix-len must be zero or positive, got {prefix_len}")
    fixed = input_len is not None or output_len is not None
    if fixed and workload_name:
        raise KvplanError("give either --input-len/--output-len or --workload, not both")
    if fixed and (input_len is None or output_len is None):
        raise KvplanError("--input-len and --output-len go together")
    if not fixed and not workload_name:
        raise KvplanError(
            "no workload: give --input-len and --output-len, or --workload",
            hint=f"shapes: {', '.join(shape_names())}",
        )
    # a deployment setting (declared once in core.deployment), shared with fit
    num_speculative_tokens = flags.settings.get("num_speculative_tokens") or 0
    if draft and not num_speculative_tokens:
        raise KvplanError("--draft needs --num-speculative-tokens")
    rate_s = parse_rate(rate) if rate is not None else None
    tpot_s = parse_duration(slo_tpot, "--slo-tpot") if slo_tpot is not None else None
    ttft_s = parse_duration(slo_ttft, "--slo-ttft") if slo_ttft is not None else None
    offload = _offload(cpu_offload)
    if fixed:
        assert input_len is not None and output_len is not None
        w = workload(
            f"fixed {input_len}/{output_len}", [(input_len, output_len)], prefix_len=prefix_len
        )
    else:
        w = resolve_workload(workload_name, prefix_len=prefix_len)
    gpus = [g.strip() for g in flags.gpu.split(",") if g.strip()]
    if not gpus:
        raise KvplanError("--gpu is empty", setting="gpu")
    for g in gpus:
        c.check_gpu(g, flags.gpu_file)
    resolved = c.load_model(
        model, revision=flags.revision, token=flags.token, refresh=flags.refresh
    )
    weights = c.exact_weights(resolved, flags.weight_dtype)
    speculation = None
    if num_speculative_tokens:
        draft_spec = (
            c.load_model(draft, revision=None, token=flags.token, refresh=flags.refresh).spec
            if draft
            else None
        )
        speculation = Speculation(draft=draft_spec, lookahead=num_speculative_tokens)
    deployments = [
        parse_deployment(
            resolved.spec,
            {**flags.settings, "gpu": g},
            gpu_file=flags.gpu_file,
            weights_override=weights,
        )
        for g in gpus
    ]
    price_table: dict[str, Price] = load_prices(prices) if prices else {}
    if gpu_hour_cost:
        price_table.update(parse_price_option(gpu_hour_cost, [d.gpu.name for d in deployments]))
    try:
        report = build_report(
            model=resolved.spec.name,
            source=resolved.source,
            deployments=deployments,
            w=w,
            concurrency=concurrency,
            rate=rate_s,
            slo_tpot_s=tpot_s,
            slo_ttft_s=ttft_s,
            prices=price_table,
            offload_bytes=offload,
            search=not no_search,
            speculation=speculation,
        )
    except CannotServe as exc:
        if flags.as_json:
            print_json(
                "plan",
                {
                    "targets_met": False,
                    "reason": exc.message,
                    "options": [o.model_dump(mode="json") for o in exc.options],
                },
            )
        sys.stderr.write(f"Cannot serve: {exc.message}\n")
        raise typer.Exit(EXIT_DOES_NOT_FIT) from None
    if plot:
        write_curve(report, plot)
    if flags.as_json:
        print_json("plan", {**report.model_dump(mode="json"), "plot": plot})
    else:
        stdout_console().print(render_plan(report, plot=plot))
    if not report.targets_met:
        raise typer.Exit(EXIT_DOES_NOT_FIT)


def _offload(text: str | None) -> int | None:
    if text is None:
        return None
    stripped = text.strip()
    if not stripped or stripped[-1].isdigit():
        raise KvplanError(f"--cpu-offload {text!r} has no unit", hint="e.g. 200GiB")
    size = parse_size(stripped)
    if size <= 0:
        raise KvplanError(f"--cpu-offload must be positive, got {text!r}")
    return size
