"""The one user-facing exception type.

Everything a user can cause (a bad flag, an unreadable config, an unknown GPU) raises
`KvplanError`; the CLI catches it once, prints `Error: <message>` on stderr and exits 2.
Policy failures are not errors: `kvplan check` reports them and exits 1.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


class KvplanError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message
