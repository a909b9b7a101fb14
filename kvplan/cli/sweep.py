"""`kvplan sweep`: `fit` for every combination of models, GPUs, parallelism, engines, KV
dtypes, KV-head counts, contexts and batches, one row each (vectorised, streamed)."""

from __future__ import annotations

import sys
from typing import Any

import typer

from kvplan.cli.common import with_fixed_settings
from kvplan.errors import KvplanError


def _items(values: list[str] | None) -> list[str]:
    """Repeated options and comma lists: --tp 1,2 --tp 4 -> ['1', '2', '4']."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


def _ints(values: list[str] | None, flag: str) -> list[int]:
    out = []
    for item in _items(values):
        try:
            out.append(int(item.replace("_", "")))
        except ValueError:
            raise KvplanError(f"{flag} takes integers, got {item!r}") from None
    return out


# the settings sweep takes as lists of its own; every other deployment setting is one value
SWEPT = frozenset({"gpu", "tp", "pp", "engine", "engine_version", "kv_dtype"})


@with_fixed_settings(SWEPT)
def sweep(
    model: list[str] = typer.Option(
        ...,
        "--model",
        help="Models: catalog names, config paths, Hub repo ids or quoted globs "
        "(repeat or comma-separate).",
    ),
    gpu: list[str] = typer.Option(..., "--gpu", help="GPU names (see `kvplan gpus`)."),
    ctx: list[str] = typer.Option(..., "--ctx", help="Tokens per sequence."),
    batch: list[str] = typer.Option(["1"], "--batch", help="Concurrent sequences."),
    tp: list[str] = typer.Option(["1"], "--tp", help="Tensor-parallel sizes."),
    pp: list[str] = typer.Option(["1"], "--pp", help="Pipeline-parallel sizes."),
    engine: list[str] = typer.Option(
        ["vllm"], "--engine", help="Engines: vllm, sglang, trtllm, none."
    ),
    engine_version: list[str] = typer.Option(
        None,
        "--engine-version",
        help="Engine releases, as `kvplan fit --engine-version` takes them, e.g. 0.6, 0.16, "
        "0.33 (vLLM), 0.4.3 (SGLang); a release an engine does not model is skipped "
        "[default: each engine's default line].",
    ),
    kv_dtype: list[str] = typer.Option(
        ["auto"],
        "--kv-dtype",
        help="KV-cache dtypes, as `kvplan fit --kv-dtype` takes them: auto, fp16, bf16, "
        "fp8, int8, int4, nvfp4, ...",
    ),
    kv_heads: list[str] = typer.Option(
        None,
        "--kv-heads",
        help="Design study: KV-head counts G to redesign each model with "
        "[default: the model's own].",
    ),
    fmt: str = typer.Option("table", "--format", help="table, csv, jsonl or parquet."),
    output: str = typer.Option(None, "--output", help="Write to this file [default: stdout]."),
    progress: bool = typer.Option(
        None,
        "--progress/--no-progress",
        help="Progress bar on stderr [default: on when stderr is a terminal].",
    ),
    gpu_file: str = typer.Option(
        None, "--gpu-file", help="YAML file adding or overriding GPU entries."
    ),
    settings: dict[str, Any] | None = None,
) -> None:
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS;
    # the docstring is the rest of its --help.
    """Options repeat or take comma lists. Each row is the scenario plus the fields
    `kvplan fit MODEL --ctx C --batch B --json` prints for it (kv_bytes_per_token_per_gpu,
    kv_budget_bytes, kv_tokens, fits, kv_bytes, headroom_bytes, max_batch, max_ctx,
    decode_ms, ...). Combinations that are not a valid deployment are skipped, each
    named on stderr. The other deployment options (--max-model-len, --kv-memory,
    --enable-prefix-caching, --vswa, --swa-full-tokens-ratio, ...) take one value, as `fit`
    takes it, for every combination; an engine's own option skips the other engines'
    rows. parquet needs `pip install 'kvplan[parquet]'`.
    """
    import gc

    gc.enable()  # main() turns it off for start-up; a sweep can run for minutes
    from kvplan import api
    from kvplan.presentation.sweep_view import FORMATS, render_table, write

    if fmt not in FORMATS:
        raise KvplanError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    heads = _ints(kv_heads, "--kv-heads")
    result = api.sweep(
        _items(model),
        gpu=_items(gpu),
        ctx=_ints(ctx, "--ctx"),
        batch=_ints(batch, "--batch"),
        tp=_ints(tp, "--tp"),
        pp=_ints(pp, "--pp"),
        engine=_items(engine),
        engine_version=_items(engine_version) or None,
        kv_dtype=_items(kv_dtype),
        kv_heads=heads or None,
        gpu_file=gpu_file,
        **(settings or {}),
    )
    for scenario, reason in result.skipped[:20]:
        where = " ".join(f"{k}={v}" for k, v in scenario.items() if v is not None)
        sys.stderr.write(f"Skipped: {where}: {reason}\n")
    if len(result.skipped) > 20:
        sys.stderr.write(f"Skipped: {len(result.skipped) - 20} more combinations\n")
    if not result.plans:
        raise KvplanError("no combination is a valid deployment (see the Skipped lines)")
    if fmt == "table":
        from kvplan.presentation.output import stdout_console

        stdout_console().print(render_table(result))
        return
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        write(result, fmt, output)
        return
    from rich.progress import Progress

    with Progress(transient=True, console=_stderr()) as bar:
        task = bar.add_task("sweep", total=result.rows)
        write(result, fmt, output, progress=lambda n: bar.advance(task, n))


def _stderr() -> Any:
    from kvplan.presentation.output import stderr_console

    return stderr_console()
