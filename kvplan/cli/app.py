"""The `kvplan` command: parse, call the core, render; errors become one line + exit 2."""

from __future__ import annotations

import os
import sys
import traceback
from typing import TYPE_CHECKING

import click
import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    from typer import _click

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

# The lazy command table: name -> (module, function, one-line help). A command's module
# (and whatever it imports: the core, pydantic models, rich, numpy) is imported only when
# that command runs or its own --help is asked; `kvplan --help` lists the table without
# importing any of them. tests/test_startup.py checks each short help against the
# command's docstring, so the two cannot drift.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "size": (
        "kvplan.cli.size",
        "size",
        "KV cache per token / sequence / batch, and the weights, for one model.",
    ),
    "models": (
        "kvplan.cli.models",
        "models",
        "List the bundled model catalog (answers offline, instantly).",
    ),
    "gpus": (
        "kvplan.cli.gpus",
        "gpus",
        "List the GPU catalog: memory, bandwidth, dense FLOP/s, interconnect, source.",
    ),
    "fit": (
        "kvplan.cli.fit",
        "fit",
        "Largest batch (--ctx), largest context (--batch), both (fits?), or a table.",
    ),
    "pick-g": (
        "kvplan.cli.pick_g",
        "pick_g_command",
        "For every valid G (divisors of H, MHA down to MQA): cache, fit, latency; pick one.",
    ),
    "roofline": (
        "kvplan.cli.roofline",
        "roofline",
        "Roofline decode latency: bytes and FLOPs per step, the bound, a batch sweep per G.",
    ),
    "plan": (
        "kvplan.cli.plan",
        "plan_command",
        "Concurrency the KV pool holds for a workload, TPOT/TTFT/throughput, and sizing.",
    ),
    "check": (
        "kvplan.cli.check",
        "check",
        "Lint model configs and check serving targets; exit 0 pass, 1 fail, 2 bad input.",
    ),
    "sweep": (
        "kvplan.cli.sweep",
        "sweep",
        "Every combination of models, GPUs, TP/PP, engines, KV dtypes, G, contexts and "
        "batches: one fit row each.",
    ),
}


class LazyGroup(TyperGroup):
    """A typer group whose commands are built from `COMMANDS` on first use."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        """The root --help: the table's one-line help (shortened the way click shortens a
        docstring), without importing any command module."""
        from typer._click.utils import make_default_short_help

        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(n, make_default_short_help(h, limit)) for n, (_, _, h) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def load_command(name: str) -> _click.Command:
    """Import one command's module and build its click command (typer's own builder)."""
    import importlib

    from typer.main import get_command_from_info
    from typer.models import CommandInfo

    module_name, attr, _ = COMMANDS[name]
    callback = getattr(importlib.import_module(module_name), attr)
    return get_command_from_info(
        CommandInfo(name=name, callback=callback),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
    )


app = typer.Typer(
    cls=LazyGroup,
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
