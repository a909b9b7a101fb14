"""Lint a model config (config.json / params.json as a dict): every problem at once.

The config reader stops at the first bad key, which is right for `kvplan fit` and wrong for
CI, where a reviewer wants the whole list. Lint is the same reader run in collect mode
(`hf_config.collect_findings`): one implementation of every rule, one message per rule.

Severity:
  error    the config is wrong or kvplan cannot read it: `kvplan check` exits 1;
  warning  a real, published quirk that kvplan reads correctly anyway (Qwen2.5-32B's
           max_window_layers 70 > num_hidden_layers 64, a float where an int belongs):
           reported, exit 0 unless --strict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kvplan.core.frozen import Frozen
from kvplan.core.geometry import LayerKind, ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.hf_config import Finding, Severity, collect_findings
from kvplan.sources.meta_params import is_meta_params, params_to_hf

__all__ = ["ConfigLint", "Finding", "Severity", "lint_config"]


class ConfigLint(Frozen):
    """The findings for one config file."""

    _computed = ("passed",)

    file: str
    findings: tuple[Finding, ...]

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "findings" in data:
            data["findings"] = tuple(data["findings"])
        return data

    @property
    def passed(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)


def lint_config(
    raw: Mapping[str, Any],
    *,
    origin: str = "",
    parse: Callable[[Mapping[str, Any]], ModelSpec] | None = None,
) -> list[Finding]:
    """All findings for one config dict: the reader in collect mode, then (if given and the
    reader found no error) `parse`, the caller's full loader, for anything beyond the reader."""
    cfg: Mapping[str, Any] = raw
    meta = is_meta_params(raw)
    if meta:
        try:
            cfg, _ = params_to_hf(raw, origin)
        except KvplanError as exc:
            return [Finding(severity="error", key=None, message=_strip(exc, origin))]
    found, spec = collect_findings(cfg, origin=origin, meta=meta)
    order = {key: i for i, key in enumerate(raw)}  # report in the file's key order
    findings = sorted(
        found, key=lambda f: order.get((f.key or "").rpartition(".")[2].split("[")[0], len(order))
    )
    if any(f.severity == "error" for f in findings):
        return findings
    if parse is not None:
        try:
            spec = parse(raw)
        except KvplanError as exc:
            findings.append(Finding(severity="error", key=None, message=_strip(exc, origin)))
            return findings
    if spec is not None and all(layer.kind is LayerKind.NONE for layer in spec.layers):
        findings.append(
            Finding(
                severity="error",
                key=None,
                message="no attention layer at all: there is no KV cache to plan",
            )
        )
    return findings


def _strip(exc: KvplanError, origin: str) -> str:
    message = exc.message.removeprefix(f"{origin}: ") if origin else exc.message
    if exc.hint:
        message += f" ({exc.hint})"
    return message
