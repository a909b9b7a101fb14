"""`kvplan size MODEL`."""

from __future__ import annotations

import typer

from kvplan.cli.common import MAX_BATCH, MAX_CTX, default_ctx, load_model, positive
from kvplan.core.sizing import size_report
from kvplan.presentation.model_view import render_size, size_json
from kvplan.presentation.output import print_json, stdout_console
from kvplan.sources.deployment import kv_dtype_for, weight_dtype_for


def size(
    model: str = typer.Argument(
        ...,
        metavar="MODEL",
        help="config.json/params.json path or folder, catalog name, or Hugging Face repo id.",
    ),
    ctx: int = typer.Option(
        None, "--ctx", help="Tokens per sequence [default: the model's max positions, else 4096]."
    ),
    batch: int = typer.Option(1, "--batch", help="Concurrent sequences."),
    kv_dtype: str = typer.Option(
        "auto",
        "--kv-dtype",
        help="KV-cache dtype: auto (the model's 16-bit dtype), fp32, fp16, bf16, fp8, int8, int4.",
    ),
    weight_dtype: str = typer.Option(
        None,
        "--weight-dtype",
        help="Count weights at this dtype "
        "instead of the checkpoint's (fp16, bf16, fp8, int8, "
        "int4, mxfp4).",
    ),
    revision: str = typer.Option(None, "--revision", help="Hub revision (branch, tag, commit)."),
    token: str = typer.Option(
        None, "--token", help="Hub token [default: HF_TOKEN or the saved login].", envvar=None
    ),
    refresh: bool = typer.Option(False, "--refresh", help="Skip the catalog; ask the Hub."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """KV cache per token / sequence / batch, and the weights, for one model."""
    positive(batch, "--batch", limit=MAX_BATCH)
    positive(ctx, "--ctx", limit=MAX_CTX)
    resolved = load_model(model, revision=revision, token=token, refresh=refresh)
    spec = resolved.spec
    forced_weight_dtype = weight_dtype_for(weight_dtype)
    report = size_report(
        spec,
        ctx=ctx or default_ctx(spec),
        batch=batch,
        kv_dtype=kv_dtype_for(spec, kv_dtype),
        weight_dtype=forced_weight_dtype,
    )
    # Exact checkpoint bytes answer "how big are these weights"; --weight-dtype asks another
    # question (what if they were stored at that dtype), which only the estimate answers.
    exact = resolved.exact_weights if forced_weight_dtype is None else None
    exact_bytes = exact.total_bytes if exact is not None else None
    if as_json:
        print_json(
            "size",
            size_json(
                report,
                source=resolved.source,
                location=resolved.location,
                revision=resolved.revision,
                exact_weight_bytes=exact_bytes,
            ),
        )
    else:
        rev = resolved.revision
        at = "" if rev is None else f" @ {rev[:12] if len(rev) == 40 else rev}"  # short sha
        stdout_console().print(
            render_size(
                report,
                source=resolved.source,
                location=resolved.location + at,
                exact_weight_bytes=exact_bytes,
            )
        )


def register(app: typer.Typer) -> None:
    app.command("size")(size)
