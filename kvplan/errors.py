"""Typed errors: every failure a user can cause carries its kind and the setting it concerns.

`KvplanError` (and its subclasses) is raised for bad input: a bad flag or policy value, an
unreadable config, an unknown GPU, a Hub failure. The CLI catches it once, prints
`Error: <message>` on stderr (or, under --json, one error object on stdout) and exits 2.
`setting` names the deployment setting at fault (policy key spelling: `tp`, `kv_dtype`),
so a policy loader can point at the line that holds it and tests never match strings.

"Does not fit" is not an error: it is an answer (exit 1), and so is a failed check.

  exit 0  answered; it fits / every check passed
  exit 1  answered; the asked workload (or a check) does not fit
  exit 2  bad input
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DOES_NOT_FIT = 1
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


class KvplanError(Exception):
    """A problem with the user's input, reported as one line and exit code 2."""

    kind = "input"

    def __init__(
        self, message: str, *, hint: str | None = None, setting: str | None = None
    ) -> None:
        self.message = message
        self.hint = hint
        self.setting = setting
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(KvplanError):
    """A model config kvplan cannot read or does not understand (fail closed)."""

    kind = "config"


class NotFoundError(KvplanError):
    """A model, GPU or file that does not exist."""

    kind = "not_found"


class HubError(KvplanError):
    """The Hugging Face Hub could not answer (network, auth, gated, offline)."""

    kind = "hub"
