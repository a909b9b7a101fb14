"""`kvplan check` table view: cells are text as written, never rich markup."""

from __future__ import annotations

import shutil

from conftest import ROOT, run_cli


def test_glob_matched_target_names_print_whole(tmp_path):
    """A target expanded from a model glob is named "a [models/<file>]"; as rich markup the
    bracketed part was taken for a style tag and dropped from the table."""
    models = tmp_path / "models"
    models.mkdir()
    name = "meta-llama__Llama-3.1-8B-Instruct.json"
    shutil.copy(ROOT / "configs/models" / name, models / name)
    policy = tmp_path / "kvplan.yaml"
    policy.write_text(
        "targets:\n  - name: a\n    model: 'models/*.json'\n    gpu: h100-sxm\n"
        "    ctx: 8192\n    batch: 4\n"
    )
    r = run_cli("check", str(policy), cwd=tmp_path)
    assert r.code == 0, r.err
    rows = [line for line in r.out.splitlines() if line.startswith("│")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("│").split("│")]
    assert cells[:2] == [f"a [models/{name}]", "fits"]
    assert cells[-1] == "PASS"
