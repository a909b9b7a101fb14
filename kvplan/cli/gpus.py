"""`kvplan gpus`: the accelerator catalog."""

from __future__ import annotations

import sys

import typer

from kvplan.cli import common as c
from kvplan.presentation.capacity_view import gpu_row, render_gpus
from kvplan.presentation.output import print_json, stdout_console
from kvplan.sources.gpus import gpu_file_schema_text, load_gpus


def gpus(
    filter_text: str = typer.Argument(
        None, metavar="[FILTER]", help="Show only names containing this text."
    ),
    gpu_file: str = c.GPU_FILE_OPT,
    as_json: bool = c.JSON_OPT,
    schema: bool = typer.Option(
        False, "--schema", help="Print the JSON Schema of a --gpu-file and exit."
    ),
) -> None:
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS.
    if schema:
        sys.stdout.write(gpu_file_schema_text())
        return
    catalog = load_gpus(gpu_file)
    rows = [
        g
        for g in catalog.gpus.values()
        if not filter_text or filter_text.lower() in (g.name + g.display_name).lower()
    ]
    if as_json:
        print_json("gpus", {"gpus": [gpu_row(g) for g in rows]})
    else:
        stdout_console().print(render_gpus(rows))
