"""`kvplan plan MODEL --gpu GPU --workload ...`: concurrency, latency, sizing and cost."""

from __future__ import annotations

import sys

import typer

from kvplan.cli import common as c
from kvplan.errors import EXIT_DOES_NOT_FIT


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
    from kvplan import api
    from kvplan.core.serving import CannotServe

    try:
        result = api.plan(
            model,
            input_len=input_len,
            output_len=output_len,
            workload=workload_name,
            prefix_len=prefix_len,
            concurrency=concurrency,
            rate=rate,
            slo_tpot=slo_tpot,
            slo_ttft=slo_ttft,
            gpu_hour_cost=gpu_hour_cost,
            prices=prices,
            cpu_offload=cpu_offload,
            draft=draft,
            search=not no_search,
            plot=plot,
            **flags.api_kwargs(),
        )
    except CannotServe as exc:
        if flags.as_json:
            from kvplan.presentation.output import print_json

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
    if flags.as_json:
        from kvplan.presentation.output import print_json

        print_json("plan", result.to_json())
    else:
        from kvplan.presentation.output import stdout_console
        from kvplan.presentation.plan_view import render_plan

        stdout_console().print(render_plan(result.report, plot=plot))
    if not result.targets_met:
        raise typer.Exit(EXIT_DOES_NOT_FIT)
