"""scripts/verify_catalog.py against the Hub look-alike (tests/hubserver.py), offline.

The script runs in a subprocess with HF_ENDPOINT pointing at the local server and HF_HOME in
tmp_path (huggingface_hub reads both at import), on a copy of the catalog in tmp_path, so
the repository's catalog.yaml is never written. The served files are the catalog's own
published configs, and one edited copy whose differences are known by hand.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HUB_NO_BACKOFF, ROOT
from hubserver import FakeRepo, HubServer, fake_sha

from kvplan.sources.catalog import (
    INDEX_FILE,
    _from_index,
    read_catalog_yaml,
    verification_level,
)

MODELS = ROOT / "configs" / "models"
SCRIPT = ROOT / "scripts" / "verify_catalog.py"

LLAMA2_7B = "meta-llama/Llama-2-7b-hf"  # config.json, served byte for byte
LLAMA2_70B = "meta-llama/Llama-2-70b"  # Meta format: params.json, served byte for byte
QWEN = "Qwen/Qwen2.5-7B-Instruct"  # served with two values changed
RENAMED = "Qwen/Qwen3-8B"  # not on this Hub: a per-entry error, the run goes on
NAMES = (LLAMA2_7B, LLAMA2_70B, QWEN, RENAMED)

# Qwen2.5-7B-Instruct: 28 layers x 2 (K, V) x 128 x 2 B (bf16) per KV head
QWEN_KV_4_HEADS = 28 * 2 * 4 * 128 * 2  # 57,344 B/token, the catalog's 4 KV heads
QWEN_KV_2_HEADS = 28 * 2 * 2 * 128 * 2  # 28,672 B/token, the edited copy's 2


def _qwen_edited() -> bytes:
    raw = json.loads((MODELS / "Qwen__Qwen2.5-7B-Instruct.json").read_text())
    assert raw["num_key_value_heads"] == 4 and raw["max_position_embeddings"] == 32768
    raw["num_key_value_heads"] = 2
    raw["max_position_embeddings"] = 131072
    return json.dumps(raw, indent=2).encode()


@pytest.fixture(scope="module")
def hub():
    server = HubServer(
        {
            LLAMA2_7B: FakeRepo(
                files={"config.json": (MODELS / "meta-llama__Llama-2-7b-hf.json").read_bytes()},
                commit=fake_sha("verify llama-2-7b"),
            ),
            LLAMA2_70B: FakeRepo(
                files={
                    "params.json": (MODELS / "meta-llama__Llama-2-70b.params.json").read_bytes()
                },
                commit=fake_sha("verify llama-2-70b"),
            ),
            QWEN: FakeRepo(files={"config.json": _qwen_edited()}, commit=fake_sha("verify qwen")),
        }
    )
    yield server
    server.stop()


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A copy of the catalog: catalog.yaml, its index and the four entries' files."""
    root = tmp_path / "models"
    root.mkdir()
    shutil.copy(MODELS / "catalog.yaml", root)
    shutil.copy(MODELS / INDEX_FILE, root)
    for entry in read_catalog_yaml(MODELS).models:
        if entry.repo_id in NAMES:
            shutil.copy(MODELS / entry.file, root)
    return root


def _env(endpoint: str, home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), NO_PROXY="127.0.0.1,localhost")
    env["no_proxy"] = "127.0.0.1,localhost"
    return env


# the script with huggingface_hub's backoff sleeps skipped (conftest.HUB_NO_BACKOFF)
NO_BACKOFF = (
    HUB_NO_BACKOFF
    + "import runpy\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def script(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_BACKOFF, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def _only(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--only", name)]


def _entries(root: Path) -> dict[str, object]:
    return {e.repo_id: e for e in read_catalog_yaml(root).models}


def test_write_records_matches_and_reports_differences(hub, catalog, tmp_path):
    before = (catalog / "catalog.yaml").read_text()
    old = _entries(catalog)
    run = script(
        [*_only(*NAMES), "--catalog", str(catalog), "--write", "--date", "2031-01-02"],
        _env(hub.url, tmp_path / "hf"),
    )
    assert run.returncode == 1, run.stderr  # one differs, one is missing: not all match
    assert run.stderr == ""
    out = run.stdout
    table = out.split("\n\n")[0].splitlines()  # the table, before the differences
    rows = {line.split()[0]: line for line in table[1:]}
    assert set(rows) == set(NAMES)
    assert rows[LLAMA2_7B].split()[1:3] == ["match", fake_sha("verify llama-2-7b")[:12]]
    assert rows[LLAMA2_70B].split()[1] == "match"
    assert rows[QWEN].split()[1] == "differs"
    assert f"{QWEN_KV_4_HEADS:,}" in rows[QWEN] and f"{QWEN_KV_2_HEADS:,}" in rows[QWEN]
    assert rows[RENAMED].split()[1] == "error" and "no such model on the Hub" in rows[RENAMED]
    # the differences, by key, with both values
    assert "kv_heads: catalog 4, Hub 2" in out
    assert "max_position_embeddings: catalog 32768, Hub 131072" in out
    assert f"derived.kv_bytes_per_token: catalog {QWEN_KV_4_HEADS}, Hub {QWEN_KV_2_HEADS}" in out
    assert "2 of 4 match the Hub; recorded 2" in out

    new = _entries(catalog)
    for name, tag in ((LLAMA2_7B, "verify llama-2-7b"), (LLAMA2_70B, "verify llama-2-70b")):
        sha = fake_sha(tag)
        assert new[name].revision == sha
        record = new[name].verified
        assert record.startswith(f"2031-01-02 (Hub commit {sha}, scripts/verify_catalog.py): ")
        assert "byte-identical" in record
        assert verification_level(record) == "yes"
    assert "params.json" in new[LLAMA2_70B].verified
    assert "327,680 KV bytes/token" in new[LLAMA2_70B].verified  # 80 x 2 x 8 x 128 x 2 B
    assert "524,288 KV bytes/token" in new[LLAMA2_7B].verified  # 32 x 2 x 32 x 128 x 2 B
    # the differing and the missing entries are left exactly as they were
    for name in (QWEN, RENAMED):
        assert new[name] == old[name]
    # nothing else in the file moved: only the two entries' revision/verified lines changed
    after = (catalog / "catalog.yaml").read_text()
    removed = set(before.splitlines()) - set(after.splitlines())
    added = set(after.splitlines()) - set(before.splitlines())
    assert all(re.match(r"  (revision|verified): ", line) for line in removed | added)
    assert len(added) == 4
    assert _from_index(catalog) is not None  # the index was recompiled for the new YAML


def test_without_write_nothing_changes_and_offline_uses_the_cache(hub, catalog, tmp_path):
    before = (catalog / "catalog.yaml").read_bytes()
    env = _env(hub.url, tmp_path / "hf")
    run = script([*_only(LLAMA2_7B), "--catalog", str(catalog)], env)
    assert run.returncode == 0, run.stderr
    assert "1 of 1 match the Hub; nothing written" in run.stdout
    assert (catalog / "catalog.yaml").read_bytes() == before
    # HF_HUB_OFFLINE=1: the cached answer (same commit); an uncached repo is a row, not a stop
    offline = {**env, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}
    run = script([*_only(LLAMA2_7B, QWEN), "--catalog", str(catalog)], offline)
    assert run.returncode == 1, run.stderr
    table = run.stdout.split("\n\n")[0]
    row = next(line.split() for line in table.splitlines() if line.startswith(LLAMA2_7B))
    assert row[1:3] == ["match", fake_sha("verify llama-2-7b")[:12]]
    assert "HF_HUB_OFFLINE=1 forbids downloading it" in table


def test_unreachable_hub_is_one_error_line(catalog, tmp_path):
    server = HubServer({})
    url = server.url
    server.stop()
    before = (catalog / "catalog.yaml").read_bytes()
    run = script(
        [*_only(LLAMA2_7B, QWEN), "--catalog", str(catalog), "--write"],
        _env(url, tmp_path / "hf"),
    )
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("Error: cannot verify the catalog: ")
    assert f"cannot reach the Hub at {url}" in lines[0]
    assert "nothing compared or written" in lines[0]
    assert (catalog / "catalog.yaml").read_bytes() == before


def test_unknown_only_name_is_refused(catalog, tmp_path):
    run = script(["--only", "nobody/nothing", "--catalog", str(catalog)], os.environ.copy())
    assert run.returncode == 2
    assert "nobody/nothing" in run.stderr and run.stdout == ""
