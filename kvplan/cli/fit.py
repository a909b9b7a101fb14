"""`kvplan fit MODEL --gpu GPU`: the largest batch or context that fits."""

from __future__ import annotations

import typer

from kvplan.cli import common as c
from kvplan.errors import EXIT_DOES_NOT_FIT


@c.with_deployment_flags
def fit(
    model: str = typer.Argument(..., metavar="MODEL", help=c.MODEL_ARG_HELP),
    ctx: int = typer.Option(None, "--ctx", help="Tokens per sequence: answer the largest batch."),
    batch: int = typer.Option(
        None,
        "--batch",
        help="Concurrent sequences: answer the largest context. Both: does it fit, with headroom.",
    ),
    *,
    flags: c.DeploymentFlags,
) -> None:
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS;
    # the docstring is the rest of its --help.
    """Exit 0 when the asked workload fits, 1 when it does not (the answer is still printed,
    with the reason), 2 for bad input.
    """
    from kvplan import api

    report = api.fit(model, ctx=ctx, batch=batch, **flags.api_kwargs())
    if flags.as_json:
        from kvplan.presentation.output import print_json

        print_json("fit", report.to_json())
    else:
        from kvplan.presentation.capacity_view import render_fit
        from kvplan.presentation.output import stdout_console

        stdout_console().print(render_fit(report))
    if not report.answered_fits:
        raise typer.Exit(EXIT_DOES_NOT_FIT)
