"""`kvplan fit MODEL --gpu GPU`: the largest batch or context that fits."""

from __future__ import annotations

import typer

from kvplan.cli import common as c
from kvplan.core.capacity import plan
from kvplan.core.reports import ModelRef, fit_report
from kvplan.errors import EXIT_DOES_NOT_FIT
from kvplan.presentation.capacity_view import render_fit
from kvplan.presentation.output import print_json, stdout_console


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
    """Largest batch (--ctx), largest context (--batch), both (fits?), or a table.

    Exit 0 when the asked workload fits, 1 when it does not (the answer is still printed,
    with the reason), 2 for bad input.
    """
    c.positive(ctx, "--ctx", limit=c.MAX_CTX)
    c.positive(batch, "--batch", limit=c.MAX_BATCH)
    resolved = flags.load(model)
    p = plan(flags.deployment_for(resolved))
    report = fit_report(
        p,
        ModelRef(model=resolved.spec.name, source=resolved.source, revision=resolved.revision),
        ctx=ctx,
        batch=batch,
    )
    if flags.as_json:
        print_json("fit", report.model_dump(mode="json"))
    else:
        stdout_console().print(render_fit(report))
    if not report.answered_fits:
        raise typer.Exit(EXIT_DOES_NOT_FIT)


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
