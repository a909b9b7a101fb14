"""The compiled catalog index (configs/models/catalog.index) is what `kvplan` reads at
start-up instead of catalog.yaml: it must hold exactly the validated YAML entries."""

from __future__ import annotations

import json
import shutil

from kvplan.sources import catalog as cat
from kvplan.sources.data import configs_dir

ROOT = configs_dir() / "models"


def test_index_is_in_sync_with_catalog_yaml():
    committed = (ROOT / cat.INDEX_FILE).read_text(encoding="utf-8")
    assert committed == cat.compile_index(ROOT), (
        "configs/models/catalog.index is stale: run python scripts/gen_cli_docs.py"
    )


def test_index_entries_equal_the_validated_yaml_entries():
    from_index = cat._from_index(ROOT)
    assert from_index is not None
    assert from_index == cat.read_catalog_yaml(ROOT).models
    # and they pass the same validation as the YAML (validated here, not on every run)
    doc = json.loads((ROOT / cat.INDEX_FILE).read_text(encoding="utf-8"))
    assert (
        cat.validate_catalog(
            {"schema_version": doc["schema_version"], "models": doc["models"]}
        ).models
        == from_index
    )


def test_a_stale_index_is_ignored(tmp_path):
    shutil.copy(ROOT / cat.CATALOG_FILE, tmp_path / cat.CATALOG_FILE)
    (tmp_path / cat.INDEX_FILE).write_text(cat.compile_index(ROOT), encoding="utf-8")
    assert cat._from_index(tmp_path) is not None
    with (tmp_path / cat.CATALOG_FILE).open("a", encoding="utf-8") as f:
        f.write("\n# an edit\n")
    assert cat._from_index(tmp_path) is None  # falls back to the YAML
    (tmp_path / cat.INDEX_FILE).unlink()
    assert cat._from_index(tmp_path) is None


def test_bundled_yaml_twins_hold_exactly_the_strictly_loaded_yaml():
    from kvplan.sources import data

    for name in data.COMPILED_YAML:
        path = configs_dir() / name
        assert data.twin_of(path).read_text(encoding="utf-8") == data.compile_yaml_twin(path), (
            f"configs/{data.twin_of(path).name} is stale: run python scripts/gen_cli_docs.py"
        )
        assert data.load_bundled_yaml(path) == data.load_yaml_file(path)


def test_a_stale_yaml_twin_is_ignored(tmp_path):
    from kvplan.sources import data

    path = tmp_path / "gpus.yaml"
    shutil.copy(configs_dir() / "gpus.yaml", path)
    data.twin_of(path).write_text(data.compile_yaml_twin(path), encoding="utf-8")
    doc = json.loads(data.twin_of(path).read_text(encoding="utf-8"))
    doc["data"]["gpus"] = []  # a twin that differs from its YAML is used only while fresh
    data.twin_of(path).write_text(json.dumps(doc), encoding="utf-8")
    assert data.load_bundled_yaml(path)["gpus"] == []
    with path.open("a", encoding="utf-8") as f:
        f.write("\n# an edit\n")
    assert data.load_bundled_yaml(path) == data.load_yaml_file(path)
    assert data.load_bundled_yaml(path)["gpus"]
