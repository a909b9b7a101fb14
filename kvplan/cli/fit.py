"""`kvplan fit MODEL --gpu GPU`: the largest batch or context that fits."""

from __future__ import annotations

import typer

from kvplan.cli import common as c
from kvplan.core.capacity import plan, solve_fit
from kvplan.presentation.capacity_view import budget_fields, render_fit
from kvplan.presentation.output import print_json, stdout_console


def fit(
    model: str = typer.Argument(..., metavar="MODEL", help="config.json/params.json path or "
                                "folder, catalog name, or Hugging Face repo id."),
    gpu: str = c.GPU_OPT,
    ctx: int = typer.Option(None, "--ctx", help="Tokens per sequence: answer the largest batch."),
    batch: int = typer.Option(None, "--batch", help="Concurrent sequences: answer the largest "
                              "context. Both: does it fit, with headroom."),
    max_model_len: int = typer.Option(None, "--max-model-len", help="For vLLM's 'maximum "
                                      "concurrency' figure [default: the model's max]."),
    tp: int = c.TP_OPT,
    pp: int = c.PP_OPT,
    engine: str = c.ENGINE_OPT,
    gpu_memory_utilization: float = c.VLLM_UTIL_OPT,
    mem_fraction_static: float = c.SGLANG_FRAC_OPT,
    free_gpu_memory_fraction: float = c.TRT_FRAC_OPT,
    kv_memory: str = c.KV_MEMORY_OPT,
    activation_reserve: str = c.ACT_OPT,
    overhead: str = c.OVERHEAD_OPT,
    block_size: int = c.BLOCK_OPT,
    max_num_batched_tokens: int = c.BATCHED_TOKENS_OPT,
    max_num_seqs: int = c.MAX_SEQS_OPT,
    kv_dtype: str = c.KV_DTYPE_OPT,
    weight_dtype: str = c.WEIGHT_DTYPE_OPT,
    gpu_file: str = c.GPU_FILE_OPT,
    revision: str = c.REVISION_OPT,
    token: str = c.TOKEN_OPT,
    refresh: bool = c.REFRESH_OPT,
    as_json: bool = c.JSON_OPT,
) -> None:
    """Largest batch (--ctx), largest context (--batch), both (fits?), or a table."""
    c.positive(ctx, "--ctx", limit=c.MAX_CTX)
    c.positive(batch, "--batch", limit=c.MAX_BATCH)
    c.positive(max_model_len, "--max-model-len", limit=c.MAX_CTX)
    c.check_gpu(gpu, gpu_file)
    resolved = c.load_model(model, revision=revision, token=token, refresh=refresh)
    deployment = c.build_deployment(
        resolved.spec, gpu=gpu, gpu_file=gpu_file, tp=tp, pp=pp, engine=engine,
        gpu_memory_utilization=gpu_memory_utilization, mem_fraction_static=mem_fraction_static,
        free_gpu_memory_fraction=free_gpu_memory_fraction, kv_memory=kv_memory,
        activation_reserve=activation_reserve, overhead=overhead, block_size=block_size,
        kv_dtype=kv_dtype, weight_dtype=weight_dtype,
        weights_override=c.exact_weights(resolved, weight_dtype),
        max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
    )
    p = plan(deployment)
    result = solve_fit(p, ctx=ctx, batch=batch, max_model_len=max_model_len)
    data = result.model_dump(mode="json")
    extra = c.fit_latency(p, result)
    if as_json:
        print_json("fit", {"model": resolved.spec.name, "source": resolved.source,
                           "revision": resolved.revision, **budget_fields(p), **data,
                           "latency": extra})
        return
    data["latency_lines"] = c.latency_lines(extra)
    stdout_console().print(render_fit(p, data, model=resolved.spec.name))


def register(app: typer.Typer) -> None:
    app.command("fit")(fit)
