"""`kvplan pick-g [MODEL] --gpu GPU --ctx N --batch B`: which number of KV heads to use."""

from __future__ import annotations

import typer

from kvplan.api import DEFAULT_DESIGN_MODEL
from kvplan.cli import common as c
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
    layers: int = typer.Option(None, "--layers", help="Design from scratch: decoder layers."),
    heads: int = typer.Option(None, "--heads", help="Design: query heads H."),
    head_dim: int = typer.Option(None, "--head-dim", help="Design: head dimension."),
    hidden: int = typer.Option(
        None, "--hidden", help="Design: hidden size [default H x head_dim]."
    ),
    params: str = typer.Option(
        None,
        "--params",
        help="Design: parameter count at G=H, e.g. 13B or 13e9 (else estimated from the geometry).",
    ),
    *,
    flags: c.DeploymentFlags,
) -> None:
    """For every valid G (divisors of H, MHA down to MQA): cache, fit, latency; pick one."""
    from kvplan import api

    report = api.pick_g(
        model,
        ctx=ctx,
        batch=batch,
        layers=layers,
        heads=heads,
        head_dim=head_dim,
        hidden=hidden,
        params=params,
        **flags.api_kwargs(),
    )
    if flags.as_json:
        from kvplan.presentation.output import print_json

        print_json("pick-g", report.to_json())
    else:
        from kvplan.presentation.capacity_view import render_pickg
        from kvplan.presentation.output import stdout_console

        stdout_console().print(render_pickg(report))
    if not report.answered_fits:
        raise typer.Exit(EXIT_DOES_NOT_FIT)


def register(app: typer.Typer) -> None:
    app.command("pick-g")(pick_g_command)
