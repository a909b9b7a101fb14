"""The `kvplan` command: parse, call the core, render; errors become one line + exit 2."""

from __future__ import annotations

import errno
import itertools
import os
import sys
import traceback
from typing import TYPE_CHECKING

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
  kvplan plan MODEL --gpu h100-sxm --input-len 2048 --output-len 512 --rate 20/s
                                                concurrency, TPOT/TTFT, GPUs, cost
  kvplan sweep --model MODEL --gpu h100-sxm,h200 --ctx 4096,32768   every combination
  kvplan check                                  CI: configs and serving targets, exit codes

MODEL is a path to config.json / params.json (or a folder), a bundled catalog name
(`kvplan models`), or a Hugging Face repo id. Sizes print in GiB (2^30 bytes);
bandwidth in decimal GB/s and TB/s as vendors state it. Exit codes: 0 ok,
1 answered but it does not fit (or a check failed), 2 bad input.
"""

# The lazy command table: name -> (module, function, one-line help). A command's module
# (and whatever it imports: the core, pydantic models, rich, numpy) is imported only when
# that command runs or its own --help is asked; `kvplan --help` lists the table without
# importing any of them. The one-line help is declared here only: `load_command` puts it
# at the top of the command's own --help, above the function's docstring (the rest).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "size": (
        "kvplan.cli.size",
        "size",
        "KV cache per token / sequence / batch, and the weights, for one model.",
    ),
    "models": (
        "kvplan.cli.models",
        "models",
        "List the bundled model catalog, sorted by name (answers offline, instantly).",
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
        "For every G (divisors of H, MHA down to MQA): cache, fit, latency per GPU; pick one.",
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
        "Every combination of models, GPUs, TP/PP, engines and releases, KV dtypes, G, "
        "contexts and batches: one fit row each.",
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
    import inspect

    from typer.main import get_command_from_info
    from typer.models import CommandInfo

    module_name, attr, short = COMMANDS[name]
    callback = getattr(importlib.import_module(module_name), attr)
    rest = inspect.getdoc(callback)  # the --help below the one-line help, if any
    return get_command_from_info(
        CommandInfo(name=name, callback=callback, help=f"{short}\n\n{rest}" if rest else short),
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
    --json also one error object on stdout, so a script never parses an empty stdout.
    Control characters in the message (a filename with a newline or an escape sequence)
    are escaped, so the error stays one line and cannot drive the terminal."""
    from kvplan.sources.validate import printable

    exc.message = _shorten(printable(exc.message))
    exc.hint = printable(exc.hint) if exc.hint else exc.hint
    if as_json:
        from kvplan.presentation.output import print_error_json

        print_error_json(exc)
        sys.stdout.flush()
    sys.stderr.write(f"Error: {exc}\n")
    sys.stderr.flush()
    if os.environ.get("KVPLAN_DEBUG"):
        traceback.print_exception(exc)


MAX_ERROR_CHARS = 1000


def _shorten(text: str) -> str:
    """An echoed 5,000-character name still gives a readable line: keep both ends."""
    if len(text) <= MAX_ERROR_CHARS:
        return text
    half = MAX_ERROR_CHARS // 2
    return f"{text[:half]}...({len(text) - 2 * half:,} characters)...{text[-half:]}"


class InternalError(KvplanError):
    """A bug in kvplan: still one line (KVPLAN_DEBUG=1 shows the traceback)."""

    kind = "internal"


def main() -> None:
    """Run the CLI; every way out is an answer, one Error line (exit 2), or an interrupt.

    The cyclic garbage collector is off while a command runs (kvplan/__main__.py turns it
    off before typer is imported): a command allocates ~100k objects while importing and
    creates almost no reference cycles, and the collector's passes over them cost ~6% of a
    whole answer. Reference counting still frees memory; `kvplan sweep`, which can run for
    minutes, turns the collector back on. The state is restored on the way out (tests
    call main() in-process)."""
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        _main()
    finally:
        if was_enabled:
            gc.enable()


def _main() -> None:
    from kvplan.presentation.output import guard_streams

    guard_streams()
    as_json = wants_json(sys.argv[1:])
    try:
        code = _run(as_json=as_json)
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(EXIT_BROKEN_PIPE)
    sys.exit(code)


def wants_json(args: list[str]) -> bool:
    """--json, or `check --format json`: a failure must then be a JSON object too."""
    if "--json" in args or "--format=json" in args:
        return True
    return any(a == "--format" and b == "json" for a, b in itertools.pairwise(args))


EXIT_BROKEN_PIPE = 141  # what a shell reports for a writer killed by SIGPIPE (128 + 13)


def _run(*, as_json: bool) -> int:
    from kvplan.sources.validate import screen_environment

    try:
        screen_environment()
        code = app(standalone_mode=False)
        sys.stdout.flush()
    except KvplanError as exc:
        return _failed(exc, as_json=as_json)
    except _click_classes("Exit") as exc:  # evaluated only when an exception gets here
        return _flushed(int(getattr(exc, "exit_code", 0) or 0), as_json=as_json)
    except _click_classes("UsageError") as exc:
        error = KvplanError(_usage_message(exc), setting=_option_of(exc))
        return _failed(error, as_json=as_json)
    except _interrupts():
        sys.stderr.write("Interrupted\n")
        return 130
    except BrokenPipeError:
        raise
    except OSError as exc:  # stdout on a full disk; a path the system refuses
        if exc.errno in OUTPUT_ERRNOS:
            return _failed(_output_error(exc), as_json=False)
        return _failed(_os_error(exc), as_json=as_json)
    except Exception as exc:  # a bug: one line, never a traceback (unless KVPLAN_DEBUG)
        error = InternalError(
            f"internal error: {type(exc).__name__}: {_first_line(exc)}",
            hint="please report it; KVPLAN_DEBUG=1 shows the traceback",
        )
        error.__cause__ = exc
        return _failed(error, as_json=as_json)
    return code if isinstance(code, int) else 0


def _failed(exc: KvplanError, *, as_json: bool) -> int:
    try:
        _fail(exc, as_json=as_json)
    except BrokenPipeError:
        raise
    except OSError:
        pass  # stdout cannot take the error object either: the exit code still says it
    return EXIT_BAD_INPUT


def _flushed(code: int, *, as_json: bool) -> int:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        return _failed(_output_error(exc), as_json=False)
    return code


OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _os_error(exc: OSError) -> KvplanError:
    """An OSError no reader turned into a message (e.g. a name longer than the file system
    allows): the file and the system's reason, on one line."""
    where = f"{exc.filename}: " if exc.filename is not None else ""
    return KvplanError(f"{where}{exc.strerror or _first_line(exc)}")


def _output_error(exc: OSError) -> KvplanError:
    return KvplanError(f"cannot write the output: {exc.strerror or _first_line(exc)}")


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """click's exception class `name`, and typer's own copy of it (typer >= 0.20 vendors
    click as typer._click, whose classes are not click's). The real click only when it is
    already imported: nothing can have raised its exceptions otherwise, and importing it
    costs ~10% of a whole answer (it is installed for huggingface_hub, not for typer)."""
    import importlib

    modules: tuple[str, ...] = ("typer._click.exceptions", "typer.exceptions", "typer")
    if "click" in sys.modules:
        modules = ("click.exceptions", *modules)
    found: list[type[BaseException]] = []
    for module in modules:
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    return tuple(found)


def _interrupts() -> tuple[type[BaseException], ...]:
    return (*_click_classes("Abort"), KeyboardInterrupt)


def _usage_message(exc: BaseException) -> str:
    """A usage error as one line (no usage block), naming the option and the value given."""
    param = getattr(exc, "param", None)
    flag = _flag_of(param)
    kind = type(exc).__name__
    text = getattr(exc, "format_message", lambda: str(exc))()
    message = " ".join(str(getattr(exc, "message", "") or text).split())
    if kind == "MissingParameter" and flag:
        what = "option" if flag.startswith("-") else "argument"
        return f"missing {what} {flag}"
    if kind == "BadParameter" and flag:
        value = _value_given(param)
        given = f" {value!r}" if value is not None else ""
        detail = message[:1].lower() + message[1:]
        return f"invalid value{given} for {flag}: {detail}"
    message = " ".join(text.split())
    return message[:1].lower() + message[1:] if message else "bad usage"


def _flag_of(param: object) -> str | None:
    if getattr(param, "param_type_name", "") == "argument":
        metavar = getattr(param, "metavar", None)
        name = getattr(param, "name", None)
        return str(metavar or name or "argument").upper()
    opts = [str(o) for o in getattr(param, "opts", None) or []]
    if opts:
        return max(opts, key=len)
    name = getattr(param, "name", None)
    return str(name).upper() if name else None


def _value_given(param: object) -> str | None:
    """What the user typed for this option (the last occurrence), from the command line."""
    opts = [str(o) for o in getattr(param, "opts", None) or []]
    args = sys.argv[1:]
    value = None
    for i, arg in enumerate(args):
        for opt in opts:
            if arg == opt and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(opt + "="):
                value = arg[len(opt) + 1 :]
    return value


def _option_of(exc: BaseException) -> str | None:
    param = getattr(exc, "param", None)
    name = getattr(param, "name", None)
    return str(name) if name else None
