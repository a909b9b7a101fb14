"""Output plumbing: data on stdout, diagnostics on stderr, a versioned JSON envelope.

Every `--json` document is one object with `schema_version`, `kvplan_version` and
`command`, then the command's fields. The schema version changes only when a field
is removed or changes meaning.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from kvplan import __version__

SCHEMA_VERSION = 1


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def envelope(command: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kvplan_version": __version__,
        "command": command,
        **fields,
    }


def print_json(command: str, fields: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(envelope(command, fields), indent=2, default=_default) + "\n")


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
