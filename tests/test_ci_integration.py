"""CI integration as shipped: the GitHub Action (action.yml + scripts/action_check.sh), the
docs' workflow example against the action's inputs, the pre-commit hook's --affected
re-check, and the --gpu-file JSON Schema."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_cli

ACTION = yaml.safe_load((ROOT / "action.yml").read_text())


def _docs_workflow() -> dict:
    text = (ROOT / "docs" / "check.md").read_text()
    block = re.search(r"## GitHub Actions\n.*?```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "docs/check.md lost its workflow example"
    return yaml.safe_load(block.group(1))


def test_docs_workflow_uses_the_action_with_declared_inputs() -> None:
    steps = _docs_workflow()["jobs"]["capacity"]["steps"]
    ours = [s for s in steps if str(s.get("uses", "")).startswith("kvplan/kvplan@")]
    assert ours, "the documented workflow should use the shipped action"
    for step in ours:
        assert set(step.get("with", {})) <= set(ACTION["inputs"])
    assert ACTION["runs"]["using"] == "composite"


def _run_action(tmp_path: Path, **inputs: str) -> tuple[int, str, str, str]:
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    out_file, summary = tmp_path / "output", tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVPLAN_")}
    env.update(
        {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
            "GITHUB_OUTPUT": str(out_file),
            "GITHUB_STEP_SUMMARY": str(summary),
            "HF_HUB_OFFLINE": "1",
            **{f"KVPLAN_{k.upper()}": v for k, v in inputs.items()},
        }
    )
    if shutil.which("kvplan", path=env["PATH"]) is None:
        pytest.skip("the kvplan entry point is not installed next to this python")
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "action_check.sh")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    output = out_file.read_text() if out_file.exists() else ""
    return proc.returncode, proc.stdout, output, summary.read_text() if summary.exists() else ""


def test_action_step_fails_the_job_and_reports(tmp_path: Path) -> None:
    code, out, output, summary = _run_action(tmp_path, policy="configs/examples/failing.yaml")
    assert code == 1
    assert "exit-code=1" in output
    assert "::error file=configs/examples/failing.yaml,line=" in out
    assert summary.startswith("### kvplan check")


def test_action_step_passes_and_lints_quoted_globs(tmp_path: Path) -> None:
    models = tmp_path / "models" / "m"
    models.mkdir(parents=True)
    shutil.copy(_a_catalog_config(), models / "config.json")
    code, out, output, _ = _run_action(
        tmp_path,
        policy="configs/examples/kvplan.yaml",
        paths=f"'{tmp_path}/models/**/config.json'",
    )
    assert code == 0, out
    assert "exit-code=0" in output
    assert f"PASS {models / 'config.json'}" in out


def _a_catalog_config() -> Path:
    return ROOT / "configs" / "models" / "Qwen__Qwen2-7B.json"  # lints clean


# ---- pre-commit: changed configs re-run the policy targets that use them -------------------
def test_affected_rechecks_targets_of_changed_configs(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        shutil.copy(_a_catalog_config(), d / "config.json")
    (tmp_path / "kvplan.yaml").write_text(
        "version: 1\ntargets:\n"
        "  - name: uses-a\n    model: ./a\n    gpu: h100-sxm\n    ctx: 1024\n    batch: 1\n"
        "  - name: uses-b\n    model: b/config.json\n    gpu: h100-sxm\n    ctx: 1024\n"
        "    batch: 1\n"
        "  - name: catalog\n    model: meta-llama/Llama-3.1-8B-Instruct\n    gpu: h100-sxm\n"
        "    ctx: 1024\n    batch: 1\n"
    )
    r = run_cli("check", "--affected", "a/config.json", "--format", "json", cwd=tmp_path)
    assert r.code == 0, r.err
    targets = [t["target"] for p in r.json["policies"] for t in p["targets"]]
    assert targets == ["uses-a"]  # not b's target, not the catalog one
    assert [c["file"] for c in r.json["configs"]] == ["a/config.json"]
    plain = run_cli("check", "a/config.json", "--format", "json", cwd=tmp_path)
    assert plain.json["policies"] == []  # without --affected: lint only, as before
    hook = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())[0]
    assert "--affected" in hook["entry"]


# ---- the --gpu-file schema --------------------------------------------------------------
def test_gpu_file_schema_is_generated_documented_and_matches_the_catalog() -> None:
    from kvplan.core.gpu import GpuSpec
    from kvplan.sources.gpus import gpu_file_schema_text

    shipped = (ROOT / "configs" / "gpus.schema.json").read_text()
    assert shipped == gpu_file_schema_text()
    schema = json.loads(shipped)
    gpu = schema["$defs"]["GpuSpec"]
    assert set(gpu["properties"]) == set(GpuSpec.model_fields)
    assert all("description" in p for p in gpu["properties"].values())
    assert set(schema["required"]) == {"schema_version", "gpus"}
    bundled = yaml.safe_load((ROOT / "configs" / "gpus.yaml").read_text())
    for entry in bundled["gpus"]:  # the catalog itself follows the documented format
        assert set(gpu["required"]) <= set(entry) <= set(gpu["properties"])
    r = run_cli("gpus", "--schema")
    assert r.code == 0 and json.loads(r.out) == schema
    assert "configs/gpus.schema.json" in (ROOT / "docs" / "gpus.md").read_text()
