"""Output width policy (kvplan/presentation/layout.py): a name or a number is never cut,
piped or on a narrow terminal, and COLUMNS is honoured.

Each test takes the exact strings from the command's own `--json` answer (names, numbers)
and asserts that every one appears whole in the text output, at several widths.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

WIDTHS = (None, "40", "60", "100")  # None: piped, no COLUMNS


def run(args: list[str], columns: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["HF_HUB_OFFLINE"] = "1"
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-m", "kvplan", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def _whole(needles: list[str], out: str) -> list[str]:
    """The needles that do not appear whole in `out`, and the cut marker if rich cut one."""
    missing = [n for n in needles if n not in out]
    if "…" in out:
        missing.append("…")
    return missing


@pytest.mark.parametrize("columns", WIDTHS)
def test_models_names_whole(columns: str | None) -> None:
    doc = json.loads(run(["models", "--json"], None).stdout)
    names = [m["model"] for m in doc["models"]]
    assert len(names) > 10
    out = run(["models"], columns).stdout
    assert _whole(names, out) == []


def test_piped_table_rows_are_one_line_each() -> None:
    """`kvplan models | grep Qwen`: the whole row, name first, on one line."""
    out = run(["models"], None).stdout
    lines = [line for line in out.splitlines() if "Qwen/Qwen2.5-7B-Instruct" in line]
    assert len(lines) == 1
    assert "qwen2" in lines[0]  # the family column is on the same line
    assert max(len(line) for line in out.splitlines()) > 80  # not pretending to be 80 wide


def test_columns_is_honoured() -> None:
    out = run(["gpus"], "60").stdout
    assert max(len(line) for line in out.splitlines()) <= 60
    wide = run(["gpus"], "250").stdout
    assert any(len(line) > 100 for line in wide.splitlines())  # a table row, one line


@pytest.mark.parametrize("columns", WIDTHS)
def test_gpus_names_whole(columns: str | None) -> None:
    doc = json.loads(run(["gpus", "--json"], None).stdout)
    names = [g["name"] for g in doc["gpus"]]
    assert "h100-sxm" in names
    out = run(["gpus"], columns).stdout
    assert _whole(names, out) == []


@pytest.mark.parametrize("columns", WIDTHS)
def test_pick_g_numbers_whole(columns: str | None) -> None:
    args = ["pick-g", "meta-llama/Llama-2-13b-hf", "--gpu", "a100-80gb", "--ctx", "4096"]
    args += ["--batch", "16"]
    doc = json.loads(run([*args, "--json"], None).stdout)
    needles = [f"{r['max_batch']:,}" for r in doc["rows"] if r.get("max_batch")]
    needles += [f"{r['max_ctx']:,}" for r in doc["rows"] if r.get("max_ctx")]
    assert any(len(n) >= 5 for n in needles)  # e.g. "1,600" style numbers
    out = run(args, columns).stdout
    assert _whole(needles, out) == []


@pytest.mark.parametrize("columns", WIDTHS)
def test_check_paths_whole(columns: str | None, tmp_path) -> None:
    deep = tmp_path / "a-rather-long-directory-name" / "another-level-of-nesting"
    deep.mkdir(parents=True)
    cfg = deep / "config.json"
    cfg.write_text(json.dumps({"model_type": "llama", "num_hidden_layers": "x"}))
    r = run(["check", str(cfg)], columns)
    assert r.returncode in (1, 2), r.stderr
    assert str(cfg) in r.stdout + r.stderr
    assert "…" not in r.stdout


@pytest.mark.parametrize("columns", (None, "40"))
@pytest.mark.parametrize(
    "args",
    [
        ["size", "meta-llama/Llama-3.1-8B-Instruct"],
        ["fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--ctx", "8192"],
        ["fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100"],
    ],
)
def test_other_commands_never_cut(args: list[str], columns: str | None) -> None:
    doc = json.loads(run([*args, "--json"], None).stdout)
    out = run(args, columns).stdout
    needles = ["meta-llama/Llama-3.1-8B-Instruct"]
    if doc.get("max_batch"):
        needles.append(f"{doc['max_batch']:,}")
    assert _whole(needles, out) == []


def test_table_natural_width_equals_rich_measurement():
    """layout measures a table's columns once; rich's own measurement (twice) must agree."""
    from rich import box
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    from kvplan.presentation.layout import _UNBOUNDED, natural_width

    console = Console(width=80)
    tables = []
    for kwargs in (
        {},
        {"box": None},
        {"show_edge": False, "padding": (0, 3)},
        {"min_width": 200},
        {"box": box.SIMPLE, "expand": True},
    ):
        t = Table(title="a title that is rather long for this table", **kwargs)
        t.add_column("name")
        t.add_column("value", justify="right", min_width=12)
        t.add_column("notes", max_width=30)
        t.add_column("empty")
        t.add_row("meta-llama/Llama-3.1-8B-Instruct", "1,234", Text("x " * 40), "")
        t.add_row("a", "5", "short", "")
        tables.append(t)
    tables.append(Table())  # no columns at all
    options = console.options.update_width(_UNBOUNDED)
    for t in tables:
        assert natural_width(console, t) == Measurement.get(console, options, t).maximum
