"""The `kvplan` command: parse, call the core, render; errors become one line + exit 2."""

from __future__ import annotations

import sys

import typer

from kvplan import __version__
from kvplan.errors import EXIT_BAD_INPUT, KvplanError

HELP = """KV-cache capacity planner for LLM serving.

Decoding re-reads the whole KV cache every token, so the number of KV heads G
(MHA: G = H, GQA: 1 < G < H, MQA: G = 1; MLA caches a latent) decides how many
sequences fit and how fast they decode. kvplan answers from a model's real config:

\b
  kvplan size meta-llama/Llama-2-70b            cache per token / sequence / batch, weights
  kvplan fit MODEL --gpu h100-sxm --ctx 32768   largest batch (or context) that fits
  kvplan pick-g --gpu a100-80gb --ctx 65536 --batch 32   which G to choose
  kvplan roofline MODEL --gpu h100-sxm --batch 8 --ctx 8192   decode latency estimate
  kvplan check                                  CI: configs and serving targets, exit codes

MODEL is a path to config.json / params.json (or a folder), a bundled catalog name
(`kvplan models`), or a Hugging Face repo id. Sizes print in GiB (2^30 bytes);
bandwidth in decimal GB/s and TB/s as vendors state it. Exit codes: 0 ok,
1 a check failed, 2 bad input.
"""

app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kvplan {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """KV-cache capacity planner."""


def _register() -> None:
    from kvplan.cli import models, size

    size.register(app)
    models.register(app)
    for optional in ("gpus", "fit", "pick_g", "roofline", "check"):
        try:
            module = __import__(f"kvplan.cli.{optional}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"kvplan.cli.{optional}":
                raise
            continue
        module.register(app)


_register()


def main() -> None:
    try:
        app(standalone_mode=True)
    except KvplanError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted\n")
        sys.exit(130)
