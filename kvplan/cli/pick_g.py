"""`kvplan pick-g [MODEL] --gpu GPU --ctx N --batch B`: which number of KV heads to use."""

from __future__ import annotations

import typer

from kvplan.cli import common as c
from kvplan.core.design import design_spec, pick_g, weights_from_params
from kvplan.core.sizing import default_kv_dtype
from kvplan.presentation.capacity_view import budget_fields, pickg_json, render_pickg
from kvplan.presentation.output import print_json, stdout_console

DEFAULT_DESIGN_MODEL = "meta-llama/Llama-2-13b-hf"


def pick_g_command(
    model: str = typer.Argument(None, metavar="[MODEL]", help="Model whose geometry to vary "
                                f"[default: {DEFAULT_DESIGN_MODEL}]."),
    gpu: str = c.GPU_OPT,
    ctx: int = typer.Option(..., "--ctx", help="Tokens per sequence the workload needs."),
    batch: int = typer.Option(..., "--batch", help="Concurrent sequences the workload needs."),
    layers: int = typer.Option(None, "--layers", help="Design from scratch: decoder layers."),
    heads: int = typer.Option(None, "--heads", help="Design: query heads H."),
    head_dim: int = typer.Option(None, "--head-dim", help="Design: head dimension."),
    hidden: int = typer.Option(None, "--hidden", help="Design: hidden size [default H x "
                               "head_dim]."),
    params: float = typer.Option(None, "--params", help="Design: parameter count at G=H, e.g. "
                                 "13e9 (else estimated from the geometry)."),
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
    kv_dtype: str = c.KV_DTYPE_OPT,
    weight_dtype: str = c.WEIGHT_DTYPE_OPT,
    gpu_file: str = c.GPU_FILE_OPT,
    revision: str = c.REVISION_OPT,
    token: str = c.TOKEN_OPT,
    refresh: bool = c.REFRESH_OPT,
    as_json: bool = c.JSON_OPT,
) -> None:
    """For every valid G (divisors of H, MHA down to MQA): cache, fit, latency; pick one."""
    c.positive(ctx, "--ctx", limit=c.MAX_CTX)
    c.positive(batch, "--batch", limit=c.MAX_BATCH)
    c.check_gpu(gpu, gpu_file)
    geometry = {"--layers": layers, "--heads": heads, "--head-dim": head_dim, "--hidden": hidden}
    for flag, value in geometry.items():
        c.positive(value, flag, limit=1 << 20)
    designing = any(v is not None for v in (layers, heads, head_dim))
    if designing:
        if model is not None:
            raise c.KvplanError("give either MODEL or geometry flags (--layers/--heads/"
                                "--head-dim), not both")
        missing = [f for f, v in (("--layers", layers), ("--heads", heads),
                                  ("--head-dim", head_dim)) if v is None]
        if missing:
            raise c.KvplanError(f"designing from scratch needs {', '.join(missing)}")
        spec = design_spec(layers=layers, heads=heads, head_dim=head_dim, hidden=hidden)
        header = f"Design: L={layers}, H={heads}, head_dim={head_dim} (from flags)"
        source = "design"
    else:
        name = model or DEFAULT_DESIGN_MODEL
        resolved = c.load_model(name, revision=revision, token=token, refresh=refresh)
        spec = resolved.spec
        source = resolved.source
        header = (f"No MODEL given: using {DEFAULT_DESIGN_MODEL} geometry (L={spec.num_layers}, "
                  f"H={spec.query_heads}, head_dim={spec.head_dim})" if model is None
                  else f"{spec.name}: L={spec.num_layers}, H={spec.query_heads}, "
                  f"G={spec.kv_heads} as published, head_dim={spec.head_dim}")
    weights_for = None
    if params is not None:
        if params <= 0:
            raise c.KvplanError(f"--params must be positive, got {params:g}")
        dtype = c.weight_dtype_for(weight_dtype) or default_kv_dtype(spec)
        weights_for = weights_from_params(int(params), dtype)
    deployment = c.build_deployment(
        spec, gpu=gpu, gpu_file=gpu_file, tp=tp, pp=pp, engine=engine,
        gpu_memory_utilization=gpu_memory_utilization, mem_fraction_static=mem_fraction_static,
        free_gpu_memory_fraction=free_gpu_memory_fraction, kv_memory=kv_memory,
        activation_reserve=activation_reserve, overhead=overhead, block_size=block_size,
        kv_dtype=kv_dtype, weight_dtype=weight_dtype,
    )
    result = pick_g(deployment, ctx=ctx, batch=batch,
                    **({"weights_for": weights_for} if weights_for else {}))
    latency = c.pickg_latency(result, ctx=ctx, batch=batch)
    header += f" on {deployment.tp * deployment.pp} x {deployment.gpu.name}"
    if as_json:
        first = next((r.plan for r in result.rows if r.plan is not None), None)
        data = pickg_json(result)
        if latency:
            for row in data["rows"]:
                ms, tps = latency.get(row["kv_heads"], (None, None))
                row["decode_ms"] = ms
                row["decode_tokens_per_s"] = tps
        print_json("pick-g", {"model": spec.name, "source": source, "header": header,
                              "ctx": ctx, "batch": batch,
                              **({k: v for k, v in budget_fields(first).items()
                                  if k in ("gpu", "engine", "tp", "pp", "kv_dtype",
                                           "block_size", "memory_fraction")} if first else {}),
                              **data})
        return
    stdout_console().print(render_pickg(result, header=header, ctx=ctx, batch=batch,
                                        latency=latency))


def register(app: typer.Typer) -> None:
    app.command("pick-g")(pick_g_command)
