"""Rendering of `kvplan check`: a rich table, GitHub annotations, Markdown, or JSON fields.

Every format shows the same rows: per target and requirement the measured value against the
requirement and the margin (positive = slack), then "N passed, M failed". GitHub
annotations point at the policy line (or the config key's line) so a PR shows the failure
where it was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kvplan.core.policy import CheckResult, PolicyReport, Summary, TargetReport
from kvplan.sources.lint import ConfigLint
from kvplan.units import fmt_gib

if TYPE_CHECKING:
    from rich.console import RenderableType


STYLE = {"pass": "green", "fail": "red", "error": "bold red", "warning": "yellow"}
LABEL = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}
EMOJI = {"pass": "✅", "fail": "❌", "error": "⛔", "warning": "⚠️"}


# ---- cell text -------------------------------------------------------------------------
def fmt_value(value: int | float | str | None, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "bytes":
        return fmt_gib(value)
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "ms":
        return f"{value:,.2f} ms"
    if unit == "tokens/s":
        return f"{value:,.1f} tok/s"
    return f"{value:,}" if isinstance(value, int) else f"{value:,g}"


def required_text(row: CheckResult) -> str:
    if row.requirement == "deployment":
        return "-"
    if row.requirement == "kv_heads.layout":
        return f"one of {row.limit}"
    sign = (
        "≤"
        if row.requirement in ("fits", "kv_heads.max") or row.requirement.startswith("max_")
        else "≥"
    )
    return f"{sign} {fmt_value(row.limit, row.unit)}"


def margin_text(row: CheckResult) -> str:
    if row.margin is None:
        return "-"
    sign = "+" if row.margin >= 0 else "-"
    text = sign + fmt_value(abs(row.margin), row.unit)
    if row.unit == "%":
        text = text.removesuffix("%") + " pts"
    if row.margin_pct is not None:
        text += f" ({row.margin_pct:+.1f}%)"
    return text


def target_caption(t: TargetReport) -> str:
    budget = (
        f"KV budget {fmt_gib(t.kv_budget_bytes)} per GPU, {t.kv_bytes_per_token:,} B/token per GPU"
        if t.kv_budget_bytes is not None
        else "no plan"
    )
    point = ""
    if t.batch is not None and t.ctx is not None:
        point = f" at batch {t.batch:,} x {t.ctx:,} tokens"
    elif t.batch is not None:
        point = f" at batch {t.batch:,}"
    elif t.ctx is not None:
        point = f" at {t.ctx:,} tokens"
    return (
        f"{t.target}: {t.model} on {t.tp * t.pp} x {t.gpu} (TP {t.tp}, PP {t.pp}, "
        f"{t.engine}, KV {t.kv_dtype}){point}; {budget}"
    )


# ---- JSON ------------------------------------------------------------------------------
def check_fields(
    policies: Sequence[PolicyReport], configs: Sequence[ConfigLint], summary: Summary
) -> dict[str, Any]:
    return {
        "passed": summary.exit_code == 0,
        "exit_code": summary.exit_code,
        "summary": summary.model_dump(mode="json"),
        "summary_line": summary.line(),
        "policies": [p.model_dump(mode="json") for p in policies],
        "configs": [c.model_dump(mode="json") for c in configs],
    }


# ---- table -----------------------------------------------------------------------------
def render_table(
    policies: Sequence[PolicyReport], configs: Sequence[ConfigLint], summary: Summary
) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[RenderableType] = []
    for policy in policies:
        parts.append(Text(f"Policy {policy.file}", style="bold"))
        for t in policy.targets:
            parts.append(Text("  " + target_caption(t), style="dim"))
        table = Table(title_justify="left")
        for col in ("target", "requirement", "measured", "required", "margin", "result"):
            table.add_column(
                col, justify="right" if col in ("measured", "required", "margin") else "left"
            )
        for t in policy.targets:
            for row in t.results:
                table.add_row(
                    t.target,
                    row.requirement,
                    fmt_value(row.measured, row.unit),
                    required_text(row),
                    margin_text(row),
                    LABEL[row.status],
                    style=STYLE[row.status],
                )
        parts.append(table)
        for t in policy.targets:
            for row in t.results:
                if row.status != "pass":
                    parts.append(
                        Text(
                            f"{LABEL[row.status]} {_where(policy.file, row.line)}"
                            f"{t.target} {row.requirement}: {row.message}",
                            style=STYLE[row.status],
                        )
                    )
            for warning in t.warnings:
                parts.append(
                    Text(
                        f"warning {_where(policy.file, t.line)}{t.target}: {warning}",
                        style=STYLE["warning"],
                    )
                )
    if configs:
        clean = [c for c in configs if not c.findings]
        parts.append(Text(f"Config lint: {len(configs)} file(s), {len(clean)} clean", style="bold"))
        flagged = [c for c in configs if c.findings]
        if flagged:
            table = Table()
            for col in ("file", "severity", "key", "problem"):
                table.add_column(col)
            for c in flagged:
                for f in c.findings:
                    table.add_row(
                        _where(c.file, f.line).rstrip(": "),
                        f.severity,
                        f.key or "-",
                        f.message,
                        style=STYLE["fail" if f.severity == "error" else "warning"],
                    )
            parts.append(table)
    style = STYLE["pass"] if summary.exit_code == 0 else STYLE["fail"]
    parts.append(Text(summary.line(), style=f"bold {style}"))
    return Group(*parts)


def _where(file: str, line: int | None) -> str:
    return f"{file}:{line}: " if line else f"{file}: "


# ---- GitHub Actions --------------------------------------------------------------------
def _gh_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(level: str, file: str, line: int | None, title: str, message: str) -> str:
    props = [f"file={_gh_prop(file)}"]
    if line:
        props.append(f"line={line}")
    props.append(f"title={_gh_prop(title)}")
    return f"::{level} {','.join(props)}::{_gh_data(message)}"


def render_github(
    policies: Sequence[PolicyReport], configs: Sequence[ConfigLint], summary: Summary
) -> str:
    """Workflow commands: ::error / ::warning per problem, plain lines for the log."""
    lines: list[str] = []
    for policy in policies:
        for t in policy.targets:
            for row in t.results:
                text = f"{t.target} {row.requirement}: {row.message}"
                if row.measured is not None:
                    text += (
                        f" (measured {fmt_value(row.measured, row.unit)}, required "
                        f"{required_text(row)}, margin {margin_text(row)})"
                    )
                lines.append(f"{LABEL[row.status]} {text}")
                if row.status != "pass":
                    title = (
                        "kvplan check: cannot evaluate"
                        if row.status == "error"
                        else f"kvplan check: {t.target} {row.requirement}"
                    )
                    lines.append(_annotation("error", policy.file, row.line, title, text))
            for warning in t.warnings:
                lines.append(
                    _annotation(
                        "warning",
                        policy.file,
                        t.line,
                        f"kvplan check: {t.target}",
                        f"{t.target}: {warning}",
                    )
                )
    for c in configs:
        if not c.findings:
            lines.append(f"PASS {c.file}")
        for f in c.findings:
            level = "error" if f.severity == "error" else "warning"
            lines.append(f"{f.severity.upper()} {c.file}: {f.message}")
            lines.append(
                _annotation(
                    level,
                    c.file,
                    f.line,
                    f"kvplan lint: {f.key}" if f.key else "kvplan lint",
                    f.message,
                )
            )
    lines.append(summary.line())
    return "\n".join(lines) + "\n"


# ---- Markdown --------------------------------------------------------------------------
def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(
    policies: Sequence[PolicyReport], configs: Sequence[ConfigLint], summary: Summary
) -> str:
    """A job summary / PR comment: one table row per target and requirement."""
    ok = summary.exit_code == 0
    out = [f"### kvplan check {EMOJI['pass'] if ok else EMOJI['fail']} {summary.line()}", ""]
    for policy in policies:
        out += [
            f"**Policy `{policy.file}`**",
            "",
            "| | target | requirement | measured | required | margin |",
            "|---|---|---|---:|---:|---:|",
        ]
        for t in policy.targets:
            for row in t.results:
                out.append(
                    f"| {EMOJI[row.status]} | {_md(t.target)} | {row.requirement} | "
                    f"{_md(fmt_value(row.measured, row.unit))} | "
                    f"{_md(required_text(row))} | {_md(margin_text(row))} |"
                )
        out.append("")
        problems = [(t, row) for t in policy.targets for row in t.results if row.status != "pass"]
        for t, row in problems:
            where = f"{policy.file}:{row.line}" if row.line else policy.file
            out.append(
                f"- {EMOJI[row.status]} **{_md(t.target)}** `{row.requirement}` "
                f"({where}): {_md(row.message)}"
            )
        for t in policy.targets:
            for warning in t.warnings:
                out.append(f"- {EMOJI['warning']} **{_md(t.target)}**: {_md(warning)}")
        if problems or any(t.warnings for t in policy.targets):
            out.append("")
        out += ["<details><summary>Deployments</summary>", ""]
        out += [f"- {_md(target_caption(t))}" for t in policy.targets]
        out += ["", "</details>", ""]
    if configs:
        clean = sum(1 for c in configs if not c.findings)
        out += [f"**Config lint**: {len(configs)} file(s), {clean} clean", ""]
        flagged = [c for c in configs if c.findings]
        if flagged:
            out += ["| | file | key | problem |", "|---|---|---|---|"]
            for c in flagged:
                for f in c.findings:
                    where = f"{c.file}:{f.line}" if f.line else c.file
                    emoji = EMOJI["fail"] if f.severity == "error" else EMOJI["warning"]
                    out.append(
                        f"| {emoji} | `{_md(where)}` | {_md(f.key or '-')} | {_md(f.message)} |"
                    )
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
