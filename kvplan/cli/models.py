"""`kvplan models`: the bundled catalog."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from kvplan.core.params import param_counts
from kvplan.presentation.output import print_json, stdout_console
from kvplan.sources.catalog import load_catalog
from kvplan.units import fmt_count


def models(
    filter_text: str = typer.Argument(
        None, metavar="[FILTER]", help="Show only names containing this text."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the bundled model catalog (answers offline, instantly)."""
    catalog = load_catalog()
    rows: list[dict[str, Any]] = []
    for entry in catalog.entries:
        if filter_text and filter_text.lower() not in entry.repo_id.lower():
            continue
        spec = catalog.load(entry)
        counts = param_counts(spec)
        rows.append(
            {
                "model": entry.repo_id,
                "family": spec.family,
                "layers": spec.num_layers,
                "query_heads": spec.query_heads,
                "kv_heads": spec.kv_heads,
                "head_dim": spec.head_dim,
                "attention": spec.layout.value,
                "layer_kinds": spec.layer_summary(),
                "params": counts.total,
                "active_params": counts.active,
                "source": entry.source,
            }
        )
    if as_json:
        print_json("models", {"models": rows})
        return
    table = Table(title=f"Bundled catalog ({len(rows)} models)", title_justify="left")
    for col, justify in (
        ("model", "left"),
        ("family", "left"),
        ("L", "right"),
        ("H", "right"),
        ("G", "right"),
        ("d_head", "right"),
        ("attention", "left"),
        ("layer kinds", "left"),
        ("params", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        params = fmt_count(r["params"])
        if r["active_params"] != r["params"]:
            params += f" ({fmt_count(r['active_params'])} act.)"
        table.add_row(
            r["model"],
            r["family"],
            str(r["layers"]),
            str(r["query_heads"]),
            str(r["kv_heads"]),
            str(r["head_dim"]),
            r["attention"],
            r["layer_kinds"],
            params,
        )
    stdout_console().print(table)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
