"""`kvplan roofline MODEL --gpu GPU --batch B --ctx N`: decode and prefill latency bounds."""

from __future__ import annotations

import typer

from kvplan.cli import common as c
from kvplan.core.capacity import plan
from kvplan.core.roofline import efficiency, roofline_report
from kvplan.presentation.output import print_json, stdout_console
from kvplan.presentation.roofline_view import (
    RooflineResult,
    render_roofline,
    roofline_json,
    write_plot,
)

MAX_KV_HEADS = 1 << 16


@c.with_deployment_flags
def roofline(
    model: str = typer.Argument(
        ...,
        metavar="MODEL",
        help="config.json/params.json path or folder, catalog name, or Hugging Face repo id.",
    ),
    batch: int = typer.Option(1, "--batch", help="Concurrent sequences decoding together."),
    ctx: int = typer.Option(
        None,
        "--ctx",
        help="Tokens in each sequence's cache [default "
        f"{c.DEFAULT_CTX}, or the model's max if smaller].",
    ),
    kv_heads: int = typer.Option(
        None, "--kv-heads", help="Override G, the number of KV heads (must divide the query heads)."
    ),
    bw_efficiency: float = typer.Option(
        None,
        "--bw-efficiency",
        help="Achieved fraction of rated memory bandwidth for weights [default: the GPU "
        "platform's fitted profile, docs/roofline.md].",
    ),
    compute_efficiency: float = typer.Option(
        None,
        "--compute-efficiency",
        help="Achieved fraction of dense peak FLOP/s in decode [default: the fitted "
        "profile, docs/roofline.md].",
    ),
    prompt_tokens: int = typer.Option(
        None,
        "--prompt-tokens",
        help="Serving: prompt length of arriving requests; with --output-tokens, adds the "
        "expected time per output token at concurrency --batch, prefill share shown.",
    ),
    output_tokens: int = typer.Option(
        None, "--output-tokens", help="Serving: output length of each request."
    ),
    plot: str = typer.Option(
        None,
        "--plot",
        help="Write a log-log roofline chart to this "
        "file (.svg, .png, .pdf); needs `pip install 'kvplan[plot]'`.",
    ),
    *,
    flags: c.DeploymentFlags,
) -> None:
    """Roofline decode latency: bytes and FLOPs per step, the bound, a batch sweep per G."""
    c.positive(batch, "--batch", limit=c.MAX_BATCH)
    c.positive(ctx, "--ctx", limit=c.MAX_CTX)
    c.positive(kv_heads, "--kv-heads", limit=MAX_KV_HEADS)
    c.positive(prompt_tokens, "--prompt-tokens", limit=c.MAX_CTX)
    c.positive(output_tokens, "--output-tokens", limit=c.MAX_CTX)
    if (prompt_tokens is None) != (output_tokens is None):
        raise c.KvplanError("--prompt-tokens and --output-tokens go together")
    efficiency(bandwidth=bw_efficiency, compute=compute_efficiency)  # checks the flags early
    resolved = flags.load(model)
    spec = resolved.spec
    weights_override = c.exact_weights(resolved, flags.weight_dtype)
    if kv_heads is not None and kv_heads != spec.kv_heads:
        if spec.mla is not None:
            raise c.KvplanError(
                f"{spec.name} uses MLA (a latent, not KV heads): --kv-heads does not apply"
            )
        if spec.query_heads % kv_heads:
            raise c.KvplanError(
                f"--kv-heads {kv_heads} does not divide the model's {spec.query_heads} query heads"
            )
        spec = spec.with_kv_heads(kv_heads)
        weights_override = None  # the checkpoint's exact bytes are for the published G
    ctx = ctx or min(c.DEFAULT_CTX, spec.max_position_embeddings or c.DEFAULT_CTX)
    deployment = flags.deployment(spec, weights_override=weights_override)
    p = plan(deployment)
    eff = efficiency(
        bandwidth=bw_efficiency,
        compute=compute_efficiency,
        gpu=deployment.gpu,
        engine=deployment.engine.value,
    )
    serving = (prompt_tokens, output_tokens) if prompt_tokens and output_tokens else None
    report = roofline_report(p, batch=batch, ctx=ctx, efficiency=eff, serving=serving)
    if plot:
        write_plot(report, plot)
    result = RooflineResult(
        report=report, plan=p, source=resolved.source, revision=resolved.revision, plot=plot
    )
    if flags.as_json:
        print_json("roofline", roofline_json(result))
        return
    stdout_console().print(render_roofline(result))


def register(app: typer.Typer) -> None:
    app.command("roofline")(roofline)
