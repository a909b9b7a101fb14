"""The `kvplan` command: parse, call the core, render; errors become one line + exit 2."""

from __future__ import annotations

import os
import sys
import traceback

import click
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
    from kvplan.cli import check, fit, gpus, models, pick_g, plan, roofline, size

    for module in (size, models, gpus, fit, pick_g, roofline, plan, check):
        module.register(app)


_register()


def _fail(exc: KvplanError, *, as_json: bool) -> None:
    """The one place an error becomes output: one `Error:` line on stderr, and under
    --json also one error object on stdout, so a script never parses an empty stdout."""
    if as_json:
        from kvplan.presentation.output import print_error_json

        print_error_json(exc)
    sys.stderr.write(f"Error: {exc}\n")
    if os.environ.get("KVPLAN_DEBUG"):
        traceback.print_exception(exc)


def main() -> None:
    as_json = "--json" in sys.argv[1:]
    try:
        code = app(standalone_mode=False)
    except KvplanError as exc:
        _fail(exc, as_json=as_json)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        _fail(KvplanError(_usage_message(exc), setting=_option_of(exc)), as_json=as_json)
        sys.exit(EXIT_BAD_INPUT)
    except click.Abort:
        sys.stderr.write("Interrupted\n")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_message(exc: click.UsageError) -> str:
    """click's usage error as one line (no usage block), naming the command."""
    message = exc.format_message().replace("\n", " ").strip()
    return message[:1].lower() + message[1:] if message else "bad usage"


def _option_of(exc: click.UsageError) -> str | None:
    param = getattr(exc, "param", None)
    name = getattr(param, "name", None)
    return str(name) if name else None
