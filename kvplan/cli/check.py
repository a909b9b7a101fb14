"""`kvplan check [PATHS...]`: lint model configs and check serving targets, for CI.

Exit codes: 0 all pass, 1 a target or lint check failed, 2 the input itself is broken
(bad YAML, unknown GPU, unreadable config, a requirement that could not be evaluated).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kvplan.errors import KvplanError
from kvplan.units import fmt_n

FORMATS = ("table", "json", "github", "markdown", "junit", "sarif")


def check(
    paths: list[str] = typer.Argument(
        None,
        metavar="PATHS",
        help="config.json / "
        "params.json files, folders or quoted globs to lint; "
        "*.yaml / *.yml are policies to check.",
    ),
    policy: str = typer.Option(
        None,
        "--policy",
        help="Policy file of serving targets [default: ./kvplan.yaml when no PATHS are given].",
    ),
    fmt: str = typer.Option(
        "table",
        "--format",
        help="table, json, github (workflow annotations), markdown (job summary / PR "
        "comment), junit (JUnit XML test report) or sarif (SARIF 2.1.0, code scanning).",
    ),
    baseline: str = typer.Option(
        None,
        "--baseline",
        help="A stored `--format json` result (e.g. from main): report what changed against it.",
    ),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail the check too."),
    affected: bool = typer.Option(
        False,
        "--affected",
        help="With config PATHS: also check the targets of the policy (--policy or "
        "./kvplan.yaml) whose model is one of those configs (the pre-commit hook uses it).",
    ),
    schema: bool = typer.Option(False, "--schema", help="Print the policy JSON Schema and exit."),
) -> None:
    # The one-line help is this command's row of kvplan.cli.app.COMMANDS.
    # Imported here: building the policy models costs startup time every other command
    # would pay.
    from kvplan.core.policy import PolicyReport, baseline_changes, evaluate, summarize
    from kvplan.presentation.check_view import (
        baseline_line,
        check_fields,
        github_input_error,
        render_baseline,
        render_github,
        render_junit,
        render_markdown,
        render_sarif,
        render_table,
    )
    from kvplan.presentation.output import print_json, stdout_console
    from kvplan.sources.policy import (
        DEFAULT_POLICY,
        expand_config_paths,
        is_policy_path,
        lint_config_file,
        load_baseline,
        load_policy,
        policy_schema_text,
    )

    if schema:
        sys.stdout.write(policy_schema_text())
        return
    if fmt not in FORMATS:
        raise KvplanError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    given = list(paths or [])
    policies = [p for p in given if is_policy_path(p)] + ([policy] if policy else [])
    configs = [p for p in given if not is_policy_path(p)]
    rerun: list[str] = []
    if affected and configs:
        # Changed configs: their targets in the project policy are re-checked too (a policy
        # given as a PATH is checked whole, as always).
        policies = [p for p in given if is_policy_path(p)]
        home = policy or DEFAULT_POLICY
        rerun = [home] if Path(home).is_file() and home not in policies else []
    if not given and not policy:
        if not Path(DEFAULT_POLICY).is_file():
            raise KvplanError(
                f"nothing to check: no PATHS, no --policy, and no {DEFAULT_POLICY} in this folder",
                hint="see `kvplan check --help`",
            )
        policies = [DEFAULT_POLICY]
    # Read every input first: a broken one stops the run before anything is reported
    # (under --format github / junit, also as an annotation / an errored test case).
    reading: str | None = None
    try:
        lints = []
        for path in expand_config_paths(configs):
            reading = str(path)
            lints.append(lint_config_file(path))
        loaded = []
        for p in dict.fromkeys(policies):
            reading = p
            loaded.append(load_policy(p))
        changed = [Path(c) for c in expand_config_paths(configs)] if rerun else []
        for p in rerun:
            reading = p
            loaded.append(load_policy(p, only_configs=changed))
        reading = baseline
        stored = load_baseline(baseline) if baseline else None
    except KvplanError as exc:
        if fmt == "github":
            sys.stdout.write(github_input_error(str(exc), reading) + "\n")
        elif fmt == "junit":
            sys.stdout.write(render_junit([], [], summarize([]), input_error=(str(exc), reading)))
        raise
    reports = [PolicyReport(file=p.path, targets=evaluate(p.targets)) for p in loaded]
    summary = summarize(
        [t for r in reports for t in r.targets],
        lint_passed=sum(c.passed for c in lints),
        lint_failed=sum(not c.passed for c in lints),
        lint_warnings=sum(c.warnings for c in lints),
        strict=strict,
    )
    changes = baseline_changes(stored, reports) if stored is not None else None
    if fmt == "json":
        fields = check_fields(reports, lints, summary)
        if changes is not None:
            fields["baseline"] = {
                "file": baseline,
                "changes": [{**c.model_dump(mode="json"), "kind": c.kind} for c in changes],
            }
        print_json("check", fields)
    elif fmt == "github":
        sys.stdout.write(render_github(reports, lints, summary))
        for c in changes or ():
            sys.stdout.write(f"::notice title=kvplan check: vs baseline::{baseline_line(c)}\n")
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(reports, lints, summary))
        if changes is not None:
            sys.stdout.write(
                f"\n**Against baseline `{baseline}`**: "
                + (fmt_n(len(changes), "change") if changes else "no change")
                + "\n\n"
                + "".join(f"- {baseline_line(c)}\n" for c in changes)
            )
    elif fmt == "junit":
        sys.stdout.write(render_junit(reports, lints, summary))
    elif fmt == "sarif":
        sys.stdout.write(render_sarif(reports, lints, summary))
    else:
        console = stdout_console()
        console.print(render_table(reports, lints, summary))
        if changes is not None and baseline is not None:
            console.print(render_baseline(changes, baseline))
    for report in reports:
        for t in report.targets:
            for row in t.results:
                if row.status == "error":
                    where = f"{report.file}:{row.line}" if row.line else report.file
                    sys.stderr.write(
                        f"Error: {where}: target {t.target!r}: {row.requirement}: {row.message}\n"
                    )
    if summary.exit_code:
        raise typer.Exit(summary.exit_code)
