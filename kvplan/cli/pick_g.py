"""`kvplan pick-g [MODEL] --gpu GPU --ctx N --batch B`: which number of KV heads to use."""

from __future__ import annotations

import typer

from kvplan.api import DEFAULT_DESIGN_MODEL
from kvplan.cli import common as c
from kvplan.core.design import DEFAULT_HEADROOM
from kvplan.errors import EXIT_DOES_NOT_FIT


@c.with_deployment_flags
def pick_g_command(
    model: str = typer.Argument(
        None,
        metavar="MODEL",
        help=f"Model whose geometry to vary [default: {DEFAULT_DESIGN_MODEL}].",
    ),
    ctx: int = typer.Option(..., "--ctx", help="Tokens per sequence the workload needs."),
    batch: int = typer.Option(..., "--batch", help="Concurrent sequences the workload needs."),
    headroom: str = typer.Option(
        f"{DEFAULT_HEADROOM:.0%}",
        "--headroom",
        help="Share of the KV budget the recommendation keeps free (the budget is an estimate).",
    ),
    target_g: int = typer.Option(
        None,
        "--target-g",
        help="The G you would like; when it does not fit, search GPU/TP/PP/KV-dtype changes "
        "that fit a larger G, up to it [default: no search unless no G fits at all].",
    ),
    chart: bool = typer.Option(
        False, "--chart", help="Also print largest batch vs context per G (a terminal chart)."
    ),
    plot: str = typer.Option(
        None,
        "--plot",
        help="Write largest batch vs context per G to a .svg/.png/.pdf file; needs "
        "`pip install 'kvplan[plot]'`.",
    ),
    search: bool = typer.Option(
        True, "--search/--no-search", help="Search GPU/TP/PP/KV-dtype changes for a larger G."
    ),
    layers: int = typer.Option(None, "--layers", help="Design from scratch: decoder layers."),
    heads: int = typer.Option(None, "--heads", help="Design: query heads H."),
    head_dim: int = typer.Option(None, "--head-dim", help="Design: head dimension."),
    hidden: int = typer.Option(
        None, "--hidden", help="Design: hidden size [default H x head_dim]."
    ),
    vocab: int = typer.Option(None, "--vocab", help="Design: vocabulary size [default 32000]."),
    intermediate: int = typer.Option(
        None,
        "--intermediate",
        help="Design: FFN width [default: Llama rule, 8/3 x hidden rounded up to 256].",
    ),
    tie_embeddings: bool = typer.Option(
        False, "--tie-embeddings", help="Design: the LM head shares the input embedding."
    ),
    experts: int = typer.Option(None, "--experts", help="Design: MoE routed experts."),
    experts_per_token: int = typer.Option(
        None, "--experts-per-token", help="Design: MoE experts each token uses (top-k)."
    ),
    expert_intermediate: int = typer.Option(
        None,
        "--expert-intermediate",
        help="Design: FFN width of one expert [default: the FFN width].",
    ),
    window: int = typer.Option(
        None, "--window", help="Design: sliding-window size in tokens (sliding layers)."
    ),
    global_every: int = typer.Option(
        None,
        "--global-every",
        help="Design: every Nth layer is global, the rest sliding (Gemma 3: 6) [default: all "
        "sliding].",
    ),
    mla_rank: int = typer.Option(
        None, "--mla-rank", help="Design: MLA latent rank (kv_lora_rank; DeepSeek-V2: 512)."
    ),
    params: str = typer.Option(
        None,
        "--params",
        help="Parameter count at G=H, e.g. 13B or 13e9 (else counted from the geometry).",
    ),
    *,
    flags: c.DeploymentFlags,
) -> None:
    """For every G (divisors of H, MHA down to MQA): cache, fit, latency per GPU; pick one."""
    from kvplan import api

    report = api.pick_g(
        model,
        ctx=ctx,
        batch=batch,
        headroom=headroom,
        target_g=target_g,
        search=search,
        layers=layers,
        heads=heads,
        head_dim=head_dim,
        hidden=hidden,
        vocab=vocab,
        intermediate=intermediate,
        tie_embeddings=tie_embeddings,
        experts=experts,
        experts_per_token=experts_per_token,
        expert_intermediate=expert_intermediate,
        window=window,
        global_every=global_every,
        mla_rank=mla_rank,
        params=params,
        **flags.api_kwargs(),
    )
    if plot:
        from kvplan.presentation.capacity_view import write_pickg_plot

        write_pickg_plot(report, plot)
    if flags.as_json:
        from kvplan.presentation.output import print_json

        print_json("pick-g", report.to_json())
    else:
        from kvplan.presentation.capacity_view import render_pickg
        from kvplan.presentation.output import stdout_console

        stdout_console().print(render_pickg(report, chart=chart, plot=plot))
    if not report.answered_fits:
        raise typer.Exit(EXIT_DOES_NOT_FIT)


def register(app: typer.Typer) -> None:
    app.command("pick-g")(pick_g_command)
