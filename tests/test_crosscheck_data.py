"""Structural checks on the transformers cross-check fixtures (tests/data/transformers_crosscheck).

The fixtures are written by scripts/crosscheck_transformers.py (a developer-only script that needs
torch + transformers; see docs/crosscheck.md). These tests do not compare them with kvplan; they
check that every file parses, that INDEX.json and the files agree, that each fixture still matches
the bundled config it was made from, and that the per-layer rows add up to the recorded totals.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "transformers_crosscheck"
CONFIGS = ROOT / "configs" / "models"
STATUSES = {"ok", "ok_compressed", "ok_irregular", "structure_only", "failed", "unsupported"}

FIXTURES = sorted(p for p in DATA.glob("*.json") if p.name != "INDEX.json")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def index() -> dict:
    return _load(DATA / "INDEX.json")


def test_index_header(index: dict) -> None:
    assert index["transformers_version"]
    assert index["torch_version"]
    assert index["generated_utc"].endswith("Z")
    counts: dict[str, int] = {}
    for entry in index["models"].values():
        assert entry["status"] in STATUSES
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    assert counts == index["status_counts"]


def test_index_and_files_agree(index: dict) -> None:
    assert {p.stem for p in FIXTURES} == set(index["models"])
    for stem, entry in index["models"].items():
        assert entry["file"] == f"{stem}.json"


def test_every_bundled_config_has_a_fixture(index: dict) -> None:
    stems = {p.stem for p in CONFIGS.glob("*.json") if not p.name.endswith(".params.json")}
    missing = sorted(stems - set(index["models"]))
    assert not missing, f"rerun scripts/crosscheck_transformers.py; no fixture for {missing}"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_matches_index_and_config(path: Path, index: dict) -> None:
    fx = _load(path)
    entry = index["models"][path.stem]
    assert fx["stem"] == path.stem
    assert fx["status"] == entry["status"]
    assert fx["config_sha256"] == entry["config_sha256"]
    assert fx["transformers_version"] == index["transformers_version"]
    bundled = CONFIGS / fx["config_file"]
    if bundled.exists():
        digest = hashlib.sha256(bundled.read_bytes()).hexdigest()
        assert digest == fx["config_sha256"], (
            f"{bundled} changed since its fixture was made; "
            "rerun scripts/crosscheck_transformers.py"
        )
    if fx["status"] == "unsupported":
        assert fx["errors"], "an unsupported model must say why"
    if fx["status"] in ("structure_only", "failed"):
        assert any(e.startswith("forward on meta") for e in fx["errors"])


def _expected_total(per_layer: list, ctx: int) -> int:
    total = 0
    for _group, per_token, fixed, plateau in per_layer:
        tokens = ctx if plateau is None else min(ctx, plateau)
        total += fixed + per_token * tokens
    return total


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_cache_rows_add_up(path: Path) -> None:
    fx = _load(path)
    if fx["status"] != "ok":
        pytest.skip(f"status {fx['status']}")
    cache = fx["cache"]
    per_layer = cache["per_layer"]
    assert len(per_layer) == cache["num_cache_layers"]
    # groups partition the layers, and each row names its group
    seen = sorted(i for g in cache["groups"].values() for i in g["layers"])
    assert seen == list(range(len(per_layer)))
    for name, group in cache["groups"].items():
        for i in group["layers"]:
            assert per_layer[i][0] == name
            assert per_layer[i][1:] == [group["per_token"], group["fixed"], group["plateau_tokens"]]
        tensors = group["tensors"].values()
        assert sum(t["per_token"] for t in tensors) == group["per_token"]
        assert sum(t["fixed"] for t in tensors) == group["fixed"]
    assert sum(r[1] for r in per_layer) == cache["sum_per_token_all_layers"]
    assert sum(r[2] for r in per_layer) == cache["sum_fixed_all_layers"]
    # the fitted rows reproduce every measured total, and the per-kind split adds up too
    for ctx_s, total in cache["totals_bytes_per_seq_by_ctx"].items():
        assert _expected_total(per_layer, int(ctx_s)) == total
        by_kind = sum(k[ctx_s] for k in cache["totals_by_kind_bytes_per_seq_by_ctx"].values())
        assert by_kind == total
    assert [int(c) for c in cache["totals_bytes_per_seq_by_ctx"]] == fx["contexts_measured"]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_param_split_adds_up(path: Path) -> None:
    fx = _load(path)
    if "params" not in fx:
        pytest.skip("no model was built")
    p = fx["params"]
    assert p["total_without_embedding"] == p["total"] - p["embedding"]
    lm = 0 if p["lm_head_tied_to_embedding"] else (p["lm_head"] or 0)
    assert p["total_without_embedding_and_lm_head"] == p["total_without_embedding"] - lm
    if p["lm_head_tied_to_embedding"]:
        assert p["lm_head"] == p["embedding"]
