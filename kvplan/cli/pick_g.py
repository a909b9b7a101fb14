"""`kvplan pick-g [MODEL] --gpu GPU --ctx N --batch B`: which number of KV heads to use."""

from __future__ import annotations

import typer

from kvplan.cli import common as c
from kvplan.core.design import design_spec, weights_from_params
from kvplan.core.reports import ModelRef, pick_g_report
from kvplan.errors import EXIT_DOES_NOT_FIT
from kvplan.presentation.capacity_view import render_pickg
from kvplan.presentation.output import print_json, stdout_console
from kvplan.sources.deployment import weight_dtype_for
from kvplan.sources.validate import DESIGN_LIMITS, design_params

DEFAULT_DESIGN_MODEL = "meta-llama/Llama-2-13b-hf"


@c.with_deployment_flags
def pick_g_command(
    model: str = typer.Argument(
        None,
        metavar="MODEL",
        help=f"Model whose geometry to vary [default: {DEFAULT_DESIGN_MODEL}].",
    ),
    ctx: int = typer.Option(..., "--ctx", help="Tokens per sequence the workload needs."),
    batch: int = typer.Option(..., "--batch", help="Concurrent sequences the workload needs."),
    layers: int = typer.Option(None, "--layers", help="Design from scratch: decoder layers."),
    heads: int = typer.Option(None, "--heads", help="Design: query heads H."),
    head_dim: int = typer.Option(None, "--head-dim", help="Design: head dimension."),
    hidden: int = typer.Option(
        None, "--hidden", help="Design: hidden size [default H x head_dim]."
    ),
    params: str = typer.Option(
        None,
        "--params",
        help="Design: parameter count at G=H, e.g. 13B or 13e9 (else estimated from the geometry).",
    ),
    *,
    flags: c.DeploymentFlags,
) -> None:
    """For every valid G (divisors of H, MHA down to MQA): cache, fit, latency; pick one."""
    c.positive(ctx, "--ctx", limit=c.MAX_CTX)
    c.positive(batch, "--batch", limit=c.MAX_BATCH)
    c.check_gpu(flags.gpu, flags.gpu_file)
    geometry = {"--layers": layers, "--heads": heads, "--head-dim": head_dim, "--hidden": hidden}
    for flag, value in geometry.items():
        c.positive(value, flag, limit=int(DESIGN_LIMITS[flag].hi))
    designing = any(v is not None for v in (layers, heads, head_dim))
    if designing:
        if model is not None:
            raise c.KvplanError(
                "give either MODEL or geometry flags (--layers/--heads/--head-dim), not both"
            )
        missing = [
            f
            for f, v in (("--layers", layers), ("--heads", heads), ("--head-dim", head_dim))
            if v is None
        ]
        if missing:
            raise c.KvplanError(f"designing from scratch needs {', '.join(missing)}")
        spec = design_spec(layers=layers, heads=heads, head_dim=head_dim, hidden=hidden)
        header = f"Design: L={layers}, H={heads}, head_dim={head_dim} (from flags)"
        source, revision = "design", None
    else:
        name = model or DEFAULT_DESIGN_MODEL
        resolved = flags.load(name)
        spec = resolved.spec
        source, revision = resolved.source, resolved.revision
        header = (
            f"No MODEL given: using {DEFAULT_DESIGN_MODEL} geometry (L={spec.num_layers}, "
            f"H={spec.query_heads}, head_dim={spec.head_dim})"
            if model is None
            else f"{spec.name}: L={spec.num_layers}, H={spec.query_heads}, "
            f"G={spec.kv_heads} as published, head_dim={spec.head_dim}"
        )
    weights_for = None
    if params is not None:
        count = design_params(params, spec, flag="--params")
        dtype = weight_dtype_for(flags.weight_dtype) or spec.checkpoint_dtype
        weights_for = weights_from_params(count, dtype)
    deployment = flags.deployment(spec)
    header += f" on {deployment.gpus} x {deployment.gpu.name}"
    report = pick_g_report(
        deployment,
        ModelRef(model=spec.name, source=source, revision=revision),
        header=header,
        ctx=ctx,
        batch=batch,
        weights_for=weights_for,
    )
    if flags.as_json:
        print_json("pick-g", report.model_dump(mode="json"))
    else:
        stdout_console().print(render_pickg(report))
    if not report.answered_fits:
        raise typer.Exit(EXIT_DOES_NOT_FIT)


def register(app: typer.Typer) -> None:
    app.command("pick-g")(pick_g_command)
