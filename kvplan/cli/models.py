"""`kvplan models`: the bundled catalog."""

from __future__ import annotations

from typing import Any

import typer

from kvplan.core.geometry import AttentionLayout
from kvplan.core.params import param_counts
from kvplan.errors import KvplanError
from kvplan.presentation.output import print_json, stdout_console
from kvplan.sources.catalog import VERIFICATION_LEVELS, load_catalog, verification_level


def models(
    filter_text: str = typer.Argument(
        None, metavar="[FILTER]", help="Show only names containing this text."
    ),
    family: str = typer.Option(
        None,
        "--family",
        help="Only this family: the config's model_type or its start (qwen matches qwen2, "
        "qwen3_moe, ...).",
    ),
    attention: str = typer.Option(
        None, "--attention", help="Only this attention layout: mha, gqa, mqa, mla or hybrid."
    ),
    verified: str = typer.Option(
        None,
        "--verified",
        help="Only entries whose file was re-checked to this level against the published "
        "config: yes, structure, weak or no (docs/catalog.md).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS.
    layouts = [a.value for a in AttentionLayout]
    if attention is not None and attention.lower() not in layouts:
        raise KvplanError(
            f"--attention must be one of {', '.join(layouts)}, got {attention!r}",
            setting="attention",
        )
    if verified is not None and verified.lower() not in VERIFICATION_LEVELS:
        raise KvplanError(
            f"--verified must be one of {', '.join(VERIFICATION_LEVELS)}, got {verified!r}",
            setting="verified",
        )
    catalog = load_catalog()
    rows: list[dict[str, Any]] = []
    seen_families: set[str] = set()
    for entry in sorted(catalog.entries, key=lambda e: e.repo_id.lower()):
        if filter_text and filter_text.lower() not in entry.repo_id.lower():
            continue
        level = verification_level(entry.verified)
        if verified is not None and level != verified.lower():
            continue
        spec = catalog.load(entry)
        seen_families.add(spec.family)
        if family is not None and not spec.family.lower().startswith(family.lower()):
            continue
        if attention is not None and spec.layout.value != attention.lower():
            continue
        counts = param_counts(spec)
        rows.append(
            {
                "model": entry.repo_id,
                "family": spec.family,
                "layers": spec.num_layers,
                "query_heads": spec.query_heads,
                "kv_heads": spec.kv_heads,  # as the config states it (MLA: see kv_latent_dim)
                "kv_latent_dim": spec.mla.latent_dim if spec.mla is not None else None,
                "head_dim": spec.head_dim,
                "attention": spec.layout.value,
                "layer_kinds": spec.layer_summary(),
                "max_context": spec.max_position_embeddings,
                "params": counts.total,
                "active_params": counts.active,
                "source": entry.source,
                "verified": level,  # kvplan.sources.catalog.verification_level
                "verified_record": entry.verified,
                "revision": entry.revision,
            }
        )
    if family is not None and not rows and seen_families:
        raise KvplanError(
            f"--family {family}: no bundled model of that family",
            hint="families: " + ", ".join(sorted(seen_families)),
            setting="family",
        )
    if as_json:
        print_json("models", {"models": rows})
        return
    from rich.table import Table  # only when a table is printed
    from rich.text import Text

    families = sorted({r["family"] for r in rows})
    title = f"Bundled catalog ({len(rows)} models, sorted by name)"
    table = Table(title=title, title_justify="left")
    for col, justify in (
        ("model", "left"),
        ("family", "left"),
        ("L", "right"),
        ("H", "right"),
        ("G (KV heads)", "right"),
        ("d_head", "right"),
        ("attention", "left"),
        ("layer kinds", "left"),
        ("max context (tokens)", "right"),
        ("params (B)", "right"),
        ("active (B)", "right"),
        ("verified", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        kv = (
            f"latent {r['kv_latent_dim']}" if r["kv_latent_dim"] is not None else str(r["kv_heads"])
        )
        table.add_row(
            r["model"],
            r["family"],
            str(r["layers"]),
            str(r["query_heads"]),
            kv,
            str(r["head_dim"]),
            r["attention"],
            r["layer_kinds"],
            f"{r['max_context']:,}" if r["max_context"] else "-",
            f"{r['params'] / 1e9:,.2f}",
            f"{r['active_params'] / 1e9:,.2f}" if r["active_params"] != r["params"] else "",
            r["verified"],
        )
    console = stdout_console()
    console.print(table)
    console.print(
        Text(
            "G: KV heads per layer; MLA models cache one latent per token per layer (latent "
            "dim = kv_lora_rank + RoPE dims), not heads. max context: the config's "
            "max_position_embeddings. params in billions (10^9). verified: how far the bundled "
            "file was re-checked against the published config (yes: every key; structure: "
            "the geometry; weak: second-hand; no: not yet; see --json verified_record). "
            "Families: " + ", ".join(families),
            style="dim",
        )
    )
