"""Output plumbing: data on stdout, diagnostics on stderr, a versioned JSON envelope.

Every `--json` document is one object with `schema_version`, `kvplan_version` and
`command`, then the command's fields. The schema version changes only when a field
is removed or changes meaning.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from kvplan import __version__

if TYPE_CHECKING:  # rich is imported only when a table is printed (not for --json)
    from rich.console import Console

SCHEMA_VERSION = 1


@cache
def _console_class() -> type[Console]:
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """rich exits 1 on a broken pipe; kvplan's main() handles it once (quietly,
            exit 141)."""
            self.quiet = True
            raise BrokenPipeError

    return _Console


def stdout_console() -> Console:
    """Data console: never cuts a name or a number (width policy in presentation/layout),
    and never turns text into something else: no highlighting, no `:name:` emoji codes
    (which also spares loading rich's 3,600-entry emoji table, ~3 ms of every table)."""
    from kvplan.presentation.layout import FittingConsole

    return FittingConsole(highlight=False, soft_wrap=False, emoji=False)


def stderr_console() -> Console:
    return _console_class()(stderr=True, highlight=False)


# What a non-UTF-8 terminal (PYTHONIOENCODING=ascii, a latin-1 locale) gets instead of the
# typographic characters the views use: the same meaning in ASCII, never a crash.
ASCII_FALLBACK = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u2014": "--",
    "\u00d7": "x",
    "\u2248": "~",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2192": "->",
    "\u2026": "...",
    "\u00b7": ".",
    "\u2713": "ok",
    "\u2717": "x",
    "\u2502": "|",
    "\u2500": "-",
    "\u00b5": "u",
    "\u03bc": "u",
    "\u2009": " ",
    "\u00a0": " ",
}
ERRORS = "kvplan-ascii"


def _fallback(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    return "".join(ASCII_FALLBACK.get(ch, "?") for ch in bad), exc.end


codecs.register_error(ERRORS, _fallback)


def guard_streams() -> None:
    """Make stdout/stderr unable to crash on a character their encoding lacks: typographic
    characters become their ASCII spelling (U+2212 -> '-'), anything else '?'."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors=ERRORS)


def envelope(command: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kvplan_version": __version__,
        "command": command,
        **fields,
    }


def print_json(command: str, fields: dict[str, Any]) -> None:
    """One JSON document; NaN or Infinity can never be written (allow_nan=False: the
    sources refuse non-finite input, so one here is a bug, reported as one error line)."""
    text = json.dumps(envelope(command, fields), indent=2, default=_default, allow_nan=False)
    sys.stdout.write(text + "\n")


def print_error_json(exc: Exception) -> None:
    """Under --json a failure is still one JSON object on stdout (exit 2)."""
    error = {
        "kind": getattr(exc, "kind", "input"),
        "message": str(exc),
        "setting": getattr(exc, "setting", None),
    }
    sys.stdout.write(
        json.dumps(
            {"schema_version": SCHEMA_VERSION, "kvplan_version": __version__, "error": error}
        )
        + "\n"
    )


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "value"):
        return value.value
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
