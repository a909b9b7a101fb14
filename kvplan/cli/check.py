"""`kvplan check [PATHS...]`: lint model configs and check serving targets, for CI.

Exit codes: 0 all pass, 1 a target or lint check failed, 2 the input itself is broken
(bad YAML, unknown GPU, unreadable config, a requirement that could not be evaluated).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kvplan.errors import KvplanError

FORMATS = ("table", "json", "github", "markdown")


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
        help="table, json, github (workflow annotations) or markdown (job summary / PR comment).",
    ),
    strict: bool = typer.Option(False, "--strict", help="Warnings fail the check too."),
    schema: bool = typer.Option(False, "--schema", help="Print the policy JSON Schema and exit."),
) -> None:
    """Lint model configs and check serving targets; exit 0 pass, 1 fail, 2 bad input."""
    # Imported here: building the policy models costs startup time every other command
    # would pay.
    from kvplan.core.policy import PolicyReport, evaluate, summarize
    from kvplan.presentation.check_view import (
        check_fields,
        render_github,
        render_markdown,
        render_table,
    )
    from kvplan.presentation.output import print_json, stdout_console
    from kvplan.sources.policy import (
        DEFAULT_POLICY,
        expand_config_paths,
        is_policy_path,
        lint_config_file,
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
    if not given and not policy:
        if not Path(DEFAULT_POLICY).is_file():
            raise KvplanError(
                f"nothing to check: no PATHS, no --policy, and no {DEFAULT_POLICY} in this folder",
                hint="see `kvplan check --help`",
            )
        policies = [DEFAULT_POLICY]
    # Read every input first: a broken one stops the run before anything is reported.
    lints = [lint_config_file(path) for path in expand_config_paths(configs)]
    loaded = [load_policy(p) for p in dict.fromkeys(policies)]
    reports = [PolicyReport(file=p.path, targets=evaluate(p.targets)) for p in loaded]
    summary = summarize(
        [t for r in reports for t in r.targets],
        lint_passed=sum(c.passed for c in lints),
        lint_failed=sum(not c.passed for c in lints),
        lint_warnings=sum(c.warnings for c in lints),
        strict=strict,
    )
    if fmt == "json":
        print_json("check", check_fields(reports, lints, summary))
    elif fmt == "github":
        sys.stdout.write(render_github(reports, lints, summary))
    elif fmt == "markdown":
        sys.stdout.write(render_markdown(reports, lints, summary))
    else:
        stdout_console().print(render_table(reports, lints, summary))
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


def register(app: typer.Typer) -> None:
    app.command("check")(check)
