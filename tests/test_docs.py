"""Docs stay in step with the code: docs/cli.md and the policy schema are regenerated."""

from __future__ import annotations

import typer.main
from conftest import ROOT, run_cli

from kvplan.cli.app import app


def test_cli_reference_names_every_command_and_option():
    text = (ROOT / "docs" / "cli.md").read_text()
    group = typer.main.get_command(app)
    assert group.commands  # a group of subcommands (typer may vendor its own click)
    for name, command in group.commands.items():
        assert f"## kvplan {name}" in text, f"docs/cli.md lacks {name}: regenerate it"
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--"):
                    assert opt in text, f"docs/cli.md lacks {name} {opt}: regenerate it"


def test_installed_package_answers_from_another_directory(tmp_path):
    # From a folder that is not the checkout, the bundled data must come from the package.
    r = run_cli("size", "meta-llama/Llama-2-70b", "--json", cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.json["kv_bytes_per_token"] == 2 * 80 * 8 * 128 * 2
    assert r.json["source"] == "catalog"


def test_generated_docs_and_schema_are_up_to_date():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen", ROOT / "scripts" / "gen_cli_docs.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for path, make in gen.GENERATED.items():
        assert path.read_text(encoding="utf-8") == make(), (
            f"{path.name} is stale: run python scripts/gen_cli_docs.py"
        )
