"""Shared test helpers: run the real CLI (through main(), so exit codes and `Error:` lines
are what a user sees) and load catalog models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> dict:
        return json.loads(self.out)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Result:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "kvplan", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=120,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli


def catalog_spec(name: str):
    from kvplan.sources.catalog import load_catalog

    catalog = load_catalog()
    entry = catalog.find(name)
    assert entry is not None, name
    return catalog.load(entry)


def catalog_entry(repo_id: str):
    """The catalog entry named exactly `repo_id` (not an alias)."""
    from kvplan.sources.catalog import load_catalog

    entry = load_catalog().find(repo_id)
    assert entry is not None and entry.repo_id == repo_id, repo_id
    return entry


def catalog_raw(repo_id: str) -> dict[str, Any]:
    """The bundled config file of `repo_id`, as JSON."""
    from kvplan.sources.catalog import load_catalog

    data: dict[str, Any] = json.loads(
        (load_catalog().root / catalog_entry(repo_id).file).read_text()
    )
    return data


def geometry(spec: Any) -> tuple[int, int, int, int]:
    """(layers, query heads, KV heads, head_dim) of a ModelSpec."""
    return spec.num_layers, spec.query_heads, spec.kv_heads, spec.head_dim


# huggingface_hub's backoff sleeps skipped (prefix of a `python -c` program): its retries
# still happen, without the 1 + 2 + 4 + 8 + 8 s waits between them.
HUB_NO_BACKOFF = """
import sys, time, types
try:
    import huggingface_hub.utils._http as http
    http.time = types.SimpleNamespace(**{**vars(time), "sleep": lambda seconds: None})
except (ImportError, AttributeError):
    pass
"""


def gpu(name: str):
    from kvplan.sources.gpus import load_gpus

    return load_gpus().get(name)


def sweep_rows_equal_fit(models: list[str], **grid: Any) -> int:
    """Run `kvplan.sweep(models, **grid)` and check every row's KV bytes and largest batch
    against `kvplan.fit` on the same scenario (the vectorised core must agree with the
    scalar one); returns the number of rows checked."""
    import kvplan

    r = kvplan.sweep(models, **grid)
    assert not r.skipped, r.skipped
    n = 0
    for chunk in r.chunks():
        flat = {k: v.ravel() for k, v in chunk.items()}
        for i in range(len(flat["plan"])):
            p = r.plans[int(flat["plan"][i])]
            ctx, batch = int(flat["ctx"][i]), int(flat["batch"][i])
            f = kvplan.fit(
                p.model, gpu=p.gpu, tp=p.tp, engine=p.engine, kv_dtype=p.kv_dtype, ctx=ctx,
                batch=batch, engine_version=p.engine_release,
            )  # fmt: skip
            where = (p.model, p.engine, p.kv_dtype, ctx, batch)
            assert p.engine_version == f.engine_version, where
            assert int(flat["kv_bytes"][i]) == f.kv_bytes, where
            assert int(flat["max_batch"][i]) == f.max_batch, where
            n += 1
    return n
