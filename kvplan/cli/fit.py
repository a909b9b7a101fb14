"""`kvplan fit MODEL --gpu GPU`: the largest batch or context that fits."""

from __future__ import annotations

import typer

from kvplan.cli import common as c
from kvplan.core.capacity import plan, solve_fit
from kvplan.presentation.capacity_view import budget_fields, render_fit
from kvplan.presentation.output import print_json, stdout_console


@c.with_deployment_flags
def fit(
    model: str = typer.Argument(
        ...,
        metavar="MODEL",
        help="config.json/params.json path or folder, catalog name, or Hugging Face repo id.",
    ),
    ctx: int = typer.Option(None, "--ctx", help="Tokens per sequence: answer the largest batch."),
    batch: int = typer.Option(
        None,
        "--batch",
        help="Concurrent sequences: answer the largest context. Both: does it fit, with headroom.",
    ),
    max_model_len: int = typer.Option(
        None,
        "--max-model-len",
        help="For vLLM's 'maximum concurrency' figure [default: the model's max].",
    ),
    *,
    flags: c.DeploymentFlags,
) -> None:
    """Largest batch (--ctx), largest context (--batch), both (fits?), or a table."""
    c.positive(ctx, "--ctx", limit=c.MAX_CTX)
    c.positive(batch, "--batch", limit=c.MAX_BATCH)
    c.positive(max_model_len, "--max-model-len", limit=c.MAX_CTX)
    resolved = flags.load(model)
    p = plan(
        flags.deployment(
            resolved.spec, weights_override=c.exact_weights(resolved, flags.weight_dtype)
        )
    )
    result = solve_fit(p, ctx=ctx, batch=batch, max_model_len=max_model_len)
    data = result.model_dump(mode="json")
    extra = c.fit_latency(p, result)
    if flags.as_json:
        print_json(
            "fit",
            {
                "model": resolved.spec.name,
                "source": resolved.source,
                "revision": resolved.revision,
                **budget_fields(p),
                **data,
                "latency": extra,
            },
        )
        return
    data["latency_lines"] = c.latency_lines(extra)
    stdout_console().print(render_fit(p, data, model=resolved.spec.name))


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
