"""`kvplan pick-g [MODEL] --gpu GPU --ctx N --batch B`: which number of KV heads to use."""

from __future__ import annotations

import typer

from kvplan.cli import common as c
from kvplan.core.design import (
    DEFAULT_HEADROOM,
    design_choices,
    design_spec,
    params_floor,
    weights_from_params,
)
from kvplan.core.reports import ModelRef, pick_g_report
from kvplan.errors import EXIT_DOES_NOT_FIT
from kvplan.presentation.capacity_view import render_pickg, write_pickg_plot
from kvplan.presentation.output import print_json, stdout_console
from kvplan.sources.deployment import weight_dtype_for
from kvplan.sources.evidence import load_evidence
from kvplan.sources.gpus import load_gpus
from kvplan.units import parse_count, parse_percent

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
    headroom: str = typer.Option(
        f"{DEFAULT_HEADROOM:.0%}",
        "--headroom",
        help="Share of the KV budget the recommendation keeps free (the budget is an estimate).",
    ),
    target_g: int = typer.Option(
        None,
        "--target-g",
        help="The G you would like; when it does not fit, search deployment changes that "
        "fit a larger G [default: H, i.e. MHA].",
    ),
    chart: bool = typer.Option(
        False, "--chart", help="Also print largest batch vs context per G (a terminal chart)."
    ),
    plot: str = typer.Option(
        None,
        "--plot",
        help="Write largest batch vs context per G to a .svg/.png/.pdf file; needs "
        "`pip install 'kvplan[plot]'`.",
    ),
    search: bool = typer.Option(
        True, "--search/--no-search", help="Search GPU/TP/PP/KV-dtype changes for a larger G."
    ),
    layers: int = typer.Option(None, "--layers", help="Design from scratch: decoder layers."),
    heads: int = typer.Option(None, "--heads", help="Design: query heads H."),
    head_dim: int = typer.Option(None, "--head-dim", help="Design: head dimension."),
    hidden: int = typer.Option(
        None, "--hidden", help="Design: hidden size [default H x head_dim]."
    ),
    vocab: int = typer.Option(None, "--vocab", help="Design: vocabulary size [default 32000]."),
    intermediate: int = typer.Option(
        None,
        "--intermediate",
        help="Design: FFN width [default: Llama rule, 8/3 x hidden rounded up to 256].",
    ),
    tie_embeddings: bool = typer.Option(
        False, "--tie-embeddings", help="Design: the LM head shares the input embedding."
    ),
    experts: int = typer.Option(None, "--experts", help="Design: MoE routed experts."),
    experts_per_token: int = typer.Option(
        None, "--experts-per-token", help="Design: MoE experts each token uses (top-k)."
    ),
    expert_intermediate: int = typer.Option(
        None,
        "--expert-intermediate",
        help="Design: FFN width of one expert [default: the FFN width].",
    ),
    window: int = typer.Option(
        None, "--window", help="Design: sliding-window size in tokens (sliding layers)."
    ),
    global_every: int = typer.Option(
        None,
        "--global-every",
        help="Design: every Nth layer is global, the rest sliding (Gemma 3: 6) [default: all "
        "sliding].",
    ),
    mla_rank: int = typer.Option(
        None, "--mla-rank", help="Design: MLA latent rank (kv_lora_rank; DeepSeek-V2: 512)."
    ),
    params: str = typer.Option(
        None,
        "--params",
        help="Parameter count at G=H, e.g. 13B or 13e9 (else counted from the geometry).",
    ),
    *,
    flags: c.DeploymentFlags,
) -> None:
    """For every G (divisors of H, MHA down to MQA): cache, fit, latency per GPU; pick one."""
    c.positive(ctx, "--ctx", limit=c.MAX_CTX)
    c.positive(batch, "--batch", limit=c.MAX_BATCH)
    c.check_gpu(flags.gpu, flags.gpu_file)
    margin = parse_percent(headroom)
    geometry = {"--layers": layers, "--heads": heads, "--head-dim": head_dim, "--hidden": hidden}
    design_flags = {
        "--vocab": vocab,
        "--intermediate": intermediate,
        "--experts": experts,
        "--experts-per-token": experts_per_token,
        "--expert-intermediate": expert_intermediate,
        "--window": window,
        "--global-every": global_every,
        "--mla-rank": mla_rank,
        "--target-g": target_g,
    }
    for flag, value in {**geometry, **design_flags}.items():
        c.positive(value, flag, limit=1 << 24)
    designing = any(v is not None for v in (layers, heads, head_dim))
    given_design = [f for f, v in design_flags.items() if v is not None and f != "--target-g"]
    if tie_embeddings:
        given_design.append("--tie-embeddings")
    weight_dtype = weight_dtype_for(flags.weight_dtype)
    design = None
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
        design = design_choices(
            heads=heads,
            head_dim=head_dim,
            hidden=hidden,
            weight_dtype=weight_dtype or "bf16",
            vocab=vocab,
            intermediate=intermediate,
            tie_embeddings=tie_embeddings,
            experts=experts,
            experts_per_token=experts_per_token,
            expert_intermediate=expert_intermediate,
            window=window,
            global_every=global_every,
            mla_rank=mla_rank,
        )
        spec = design_spec(
            layers=layers, heads=heads, head_dim=head_dim, hidden=hidden, choices=design
        )
        header = f"Design: L={layers}, H={heads}, head_dim={head_dim} (from flags)"
        source, revision = "design", None
    else:
        if given_design:
            raise c.KvplanError(
                f"{given_design[0]} describes a design from flags; give --layers, --heads and "
                "--head-dim instead of MODEL (a model's own config sets it)"
            )
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
        total = parse_count(params)
        dtype = weight_dtype or spec.checkpoint_dtype
        params_floor(spec, total)
        weights_for = weights_from_params(total, dtype)
    deployment = flags.deployment(spec)
    header += f" on {deployment.gpus} x {deployment.gpu.name}"
    report = pick_g_report(
        deployment,
        ModelRef(model=spec.name, source=source, revision=revision),
        header=header,
        ctx=ctx,
        batch=batch,
        weights_for=weights_for,
        headroom=margin,
        target_kv_heads=target_g,
        search_gpus=tuple(load_gpus(flags.gpu_file).gpus.values()) if search else (),
        design=design,
        evidence=load_evidence(),
    )
    if plot:
        write_pickg_plot(report, plot)
    if flags.as_json:
        print_json("pick-g", report.model_dump(mode="json"))
    else:
        stdout_console().print(render_pickg(report, chart=chart, plot=plot))
    if not report.answered_fits:
        raise typer.Exit(EXIT_DOES_NOT_FIT)


def register(app: typer.Typer) -> None:
    app.command("pick-g")(pick_g_command)
