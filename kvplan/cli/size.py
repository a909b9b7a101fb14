"""`kvplan size MODEL`."""

from __future__ import annotations

import typer


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
        help="KV-cache dtype: auto (the model's 16-bit dtype), fp32, fp16, bf16, fp8, int8, "
        "int4, nvfp4, int8_per_token_head, fp8_per_token_head, fp8_ds_mla, nvfp4_ds_mla.",
    ),
    engine: str = typer.Option(
        "none",
        "--engine",
        help="Engine whose cache formats apply (vllm, sglang, trtllm store DSA indexer keys "
        "in fp8 + a scale per 128, MiniMax-M3 index keys in 16 bits); none: "
        "every element in the KV dtype, as transformers.",
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
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS.
    from kvplan import api

    r = api.size(
        model,
        ctx=ctx,
        batch=batch,
        kv_dtype=kv_dtype,
        engine=engine,
        weight_dtype=weight_dtype,
        revision=revision,
        token=token,
        refresh=refresh,
    )
    if as_json:
        from kvplan.presentation.output import print_json

        print_json("size", r.to_json())
        return
    from kvplan.presentation.model_view import render_size
    from kvplan.presentation.output import stdout_console

    rev = r.model.revision
    at = "" if rev is None else f" @ {rev[:12] if len(rev) == 40 else rev}"  # short sha
    stdout_console().print(
        render_size(
            r.report,
            source=r.model.source,
            location=r.model.location + at,
            exact_weight_bytes=r.exact_weight_bytes,
            model_note=r.model.note,
        )
    )
