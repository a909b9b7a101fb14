"""Rendering of `kvplan check`: a rich table, GitHub annotations, Markdown, or JSON fields.

Every format shows the same rows: per target and requirement the measured value against the
requirement and the margin (positive = slack), then "N passed, M failed". GitHub
annotations point at the policy line (or the config key's line) so a PR shows the failure
where it was written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kvplan import __version__
from kvplan.core.policy import BaselineChange, CheckResult, PolicyReport, Summary, TargetReport
from kvplan.sources.lint import ConfigLint
from kvplan.units import fmt_gib, fmt_n

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
        f"{t.engine_label or t.engine_version or t.engine}, KV {t.kv_dtype}){point}; {budget}"
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
        # Cells are Text, never markup: a target named after a glob match, "a [models/x.json]",
        # would otherwise lose its bracketed part as an unknown style tag (and parsing
        # every cell as markup was a third of drawing the table).
        for t in policy.targets:
            for row in t.results:
                table.add_row(
                    Text(t.target),
                    Text(row.requirement),
                    Text(fmt_value(row.measured, row.unit)),
                    Text(required_text(row)),
                    Text(margin_text(row)),
                    Text(LABEL[row.status]),
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
        parts.append(
            Text(f"Config lint: {fmt_n(len(configs), 'file')}, {len(clean)} clean", style="bold")
        )
        flagged = [c for c in configs if c.findings]
        if flagged:
            table = Table()
            for col in ("file", "severity", "key", "problem"):
                table.add_column(col)
            for c in flagged:
                for f in c.findings:
                    table.add_row(
                        Text(_where(c.file, f.line).rstrip(": ")),
                        Text(f.severity),
                        Text(f.key or "-"),
                        Text(f.message),
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
        out += [f"**Config lint**: {fmt_n(len(configs), 'file')}, {clean} clean", ""]
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


# ---- input errors as annotations ---------------------------------------------------------
_WHERE_RE = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+): (?P<rest>.*)$", re.DOTALL)


def github_input_error(message: str, fallback_file: str | None) -> str:
    """An input error (exit 2) as a workflow annotation: `file:line: text` messages point
    at their line; others at the file being read when it failed."""
    match = _WHERE_RE.match(message)
    if match:
        return _annotation(
            "error",
            match["file"],
            int(match["line"]),
            "kvplan check: bad input",
            match["rest"],
        )
    if fallback_file:
        text = message.removeprefix(f"{fallback_file}: ")
        return _annotation("error", fallback_file, None, "kvplan check: bad input", text)
    return f"::error title={_gh_prop('kvplan check: bad input')}::{_gh_data(message)}"


# ---- JUnit XML -----------------------------------------------------------------------------
def render_junit(
    policies: Sequence[PolicyReport],
    configs: Sequence[ConfigLint],
    summary: Summary,
    *,
    input_error: tuple[str, str | None] | None = None,
) -> str:
    """JUnit XML (the Jenkins/GitLab/Actions test-report schema): one <testsuite> per policy
    file with one <testcase> per target requirement, one for the config lint with one per
    file; `fail` -> <failure>, `error` -> <error>. An input error is one errored testcase."""
    import xml.etree.ElementTree as ET  # only for this format (~10 ms of every check)

    root = ET.Element("testsuites", name="kvplan check")
    total = {"tests": 0, "failures": 0, "errors": 0}

    def suite(name: str) -> ET.Element:
        return ET.SubElement(root, "testsuite", name=name)

    def case(parent: ET.Element, classname: str, name: str, status: str, text: str) -> None:
        el = ET.SubElement(parent, "testcase", classname=classname, name=name)
        total["tests"] += 1
        if status == "fail":
            total["failures"] += 1
            ET.SubElement(el, "failure", message=text.splitlines()[0] if text else "").text = text
        elif status == "error":
            total["errors"] += 1
            ET.SubElement(el, "error", message=text.splitlines()[0] if text else "").text = text

    for policy in policies:
        s = suite(policy.file)
        for t in policy.targets:
            for row in t.results:
                text = f"{_where(policy.file, row.line)}{row.message}"
                if row.measured is not None:
                    text += (
                        f" (measured {fmt_value(row.measured, row.unit)}, required "
                        f"{required_text(row)}, margin {margin_text(row)})"
                    )
                case(s, t.target, row.requirement, row.status, text)
    if configs:
        s = suite("config lint")
        for c in configs:
            errors = [f for f in c.findings if f.severity == "error"]
            text = "\n".join(
                f"{_where(c.file, f.line)}{f.key or '-'}: {f.message}" for f in c.findings
            )
            case(s, "lint", c.file, "fail" if errors else "pass", text)
    if input_error is not None:
        message, file = input_error
        case(suite("input"), "input", file or "kvplan check", "error", message)
    for s in root:
        s.set("tests", str(len(s)))
        s.set("failures", str(sum(1 for c in s if c.find("failure") is not None)))
        s.set("errors", str(sum(1 for c in s if c.find("error") is not None)))
    for k, v in total.items():
        root.set(k, str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


# ---- SARIF 2.1.0 ---------------------------------------------------------------------------
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render_sarif(
    policies: Sequence[PolicyReport], configs: Sequence[ConfigLint], summary: Summary
) -> str:
    """SARIF 2.1.0 (GitHub code scanning): one result per failed / unevaluable requirement
    and per lint finding, located at the policy or config line."""
    results: list[dict[str, Any]] = []

    def result(rule: str, level: str, text: str, file: str, line: int | None) -> None:
        location: dict[str, Any] = {"artifactLocation": {"uri": file}}
        if line:
            location["region"] = {"startLine": line}
        results.append(
            {
                "ruleId": rule,
                "level": level,
                "message": {"text": text},
                "locations": [{"physicalLocation": location}],
            }
        )

    for policy in policies:
        for t in policy.targets:
            for row in t.results:
                if row.status != "pass":
                    result(
                        f"check/{row.requirement}",
                        "error",
                        f"{t.target} {row.requirement}: {row.message}",
                        policy.file,
                        row.line,
                    )
            for warning in t.warnings:
                result("check/warning", "warning", f"{t.target}: {warning}", policy.file, t.line)
    for c in configs:
        for f in c.findings:
            level = "error" if f.severity == "error" else "warning"
            result(f"lint/{f.key or 'config'}", level, f.message, c.file, f.line)
    rules = sorted({r["ruleId"] for r in results})
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "kvplan",
                        "version": __version__,
                        "informationUri": "https://github.com/kvplan/kvplan",
                        "rules": [{"id": r} for r in rules],
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


# ---- baseline --------------------------------------------------------------------------------
def baseline_line(c: BaselineChange) -> str:
    """'llama-8b min_batch: 54 -> 48 (pass)' style; the arrow is ASCII for CI logs."""
    before = "(not in baseline)" if c.status_before is None else fmt_value(c.before, c.unit)
    after = "(no longer checked)" if c.status_after is None else fmt_value(c.after, c.unit)
    status = ""
    if c.status_before and c.status_after:
        status = (
            f" ({LABEL[c.status_before]} -> {LABEL[c.status_after]})"
            if c.status_before != c.status_after
            else f" ({LABEL[c.status_after]})"
        )
    return f"{c.target} {c.requirement}: {before} -> {after}{status}"


def render_baseline(changes: Sequence[BaselineChange], baseline_file: str) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    if not changes:
        return Text(f"Against baseline {baseline_file}: no change", style="bold")
    parts: list[RenderableType] = [
        Text(f"Against baseline {baseline_file}: {fmt_n(len(changes), 'change')}", style="bold")
    ]
    for c in changes:
        worse = c.kind == "pass->fail" or (c.status_after not in (None, "pass"))
        parts.append(Text("  " + baseline_line(c), style="red" if worse else ""))
    return Group(*parts)
