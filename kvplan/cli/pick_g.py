"""`kvplan pick-g [MODEL] --gpu GPU --ctx N --batch B`: which number of KV heads to use.

The design options (--layers ... --params) are generated from
`kvplan.core.design_choices.DesignChoices`, the deployment options from `Deployment`."""

from __future__ import annotations

from typing import Any

import typer

from kvplan.api import DEFAULT_DESIGN_MODEL
from kvplan.cli import common as c
from kvplan.core.design import DEFAULT_HEADROOM
from kvplan.errors import EXIT_DOES_NOT_FIT


@c.with_deployment_flags
@c.with_design_flags
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
    *,
    design: dict[str, Any],
    flags: c.DeploymentFlags,
) -> None:
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS.
    from kvplan import api

    report = api.pick_g(
        model,
        ctx=ctx,
        batch=batch,
        headroom=headroom,
        target_g=target_g,
        search=search,
        plot=plot,
        **design,
        **flags.api_kwargs(),
    )
    if flags.as_json:
        from kvplan.presentation.output import print_json

        print_json("pick-g", report.to_json())
    else:
        from kvplan.presentation.capacity_view import render_pickg
        from kvplan.presentation.output import stdout_console

        stdout_console().print(render_pickg(report, chart=chart, plot=plot))
    if not report.answered_fits:
        raise typer.Exit(EXIT_DOES_NOT_FIT)
