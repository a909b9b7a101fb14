"""`kvplan roofline MODEL --gpu GPU --batch B --ctx N`: decode and prefill latency bounds."""

from __future__ import annotations

import typer

from kvplan.cli import common as c


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
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS.
    from kvplan import api

    result = api.roofline(
        model,
        batch=batch,
        ctx=ctx,
        kv_heads=kv_heads,
        bw_efficiency=bw_efficiency,
        compute_efficiency=compute_efficiency,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        plot=plot,
        **flags.api_kwargs(),
    )
    if flags.as_json:
        from kvplan.presentation.output import print_json

        print_json("roofline", result.to_json())
        return
    from kvplan.presentation.output import stdout_console
    from kvplan.presentation.roofline_view import render_roofline

    stdout_console().print(render_roofline(result))
