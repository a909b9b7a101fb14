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
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_gpus_architecture_column_whole() -> None:
    # each GPU's arch (compute capability / gfx target) is whole and on that GPU's own row:
    # one table line when wide, the GPU's own block ("name: ...") on a narrow terminal
    doc = json.loads(run(["gpus", "--json"], None).stdout)
    arch = {g["name"]: g["compute_capability"] or g["gfx_target"] for g in doc["gpus"]}
    assert arch["b300"] == "10.3" and arch["rx-7900-xt"] == "gfx1100" and arch["tpu-v6e"] is None
    wide = run(["gpus"], "250").stdout
    rows = {line.split()[1]: line for line in wide.splitlines() if line.startswith("│ ")}
    narrow = run(["gpus"], "40").stdout
    blocks = {b.split("\n", 1)[0]: b for b in narrow.split("name: ")[1:]}
    assert max(len(line) for line in narrow.splitlines()) <= 40
    for name, label in arch.items():
        cell = label or "-"
        assert f" {cell} " in rows[name], (name, cell)
        assert f"arch: {cell}" in blocks[name], (name, cell)
    assert "…" not in wide + narrow


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


# ---- the drawing shortcuts of layout.py draw what rich draws ------------------------------
_STYLES = ("", "bold", "dim", "red", "bold yellow", "italic on blue")
_WORDS = ("13.98 GiB", "x", "", "  lead", "trail  ", "G=8 GQA-8", "█████ 14.1*", "≈ 5.5 µs", "漢字")


def _cell(draw_text: str, style: str, span: tuple[int, int, str] | None, kind: str) -> object:
    from rich.text import Text

    if kind == "str":
        return draw_text
    text = Text(draw_text, style=style)
    if span is not None and draw_text:
        start, end, span_style = span
        text.stylize(span_style, start % len(draw_text), end % (len(draw_text) + 1))
    if kind == "right":
        text.justify = "right"
    if kind == "end":
        text.end = ""
    return text


@settings(max_examples=300, deadline=None)
@given(
    words=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=3),
    style=st.sampled_from(_STYLES),
    span=st.none() | st.tuples(st.integers(0, 20), st.integers(0, 20), st.sampled_from(_STYLES)),
    kind=st.sampled_from(["str", "text", "right", "end"]),
    justify=st.sampled_from([None, "left", "right", "center", "full", "default"]),
    overflow=st.sampled_from([None, "fold", "crop", "ellipsis", "ignore"]),
    no_wrap=st.sampled_from([None, True, False]),
    width=st.integers(1, 40),
    padding=st.sampled_from([(0, 1, 0, 1), (0, 0, 0, 0), (0, 2, 0, 3), (1, 1, 0, 1)]),
)
def test_text_cell_draws_as_padding(
    words, style, span, kind, justify, overflow, no_wrap, width, padding
):
    """`_TextCell`, layout's shortcut for a one-line table cell, yields the very segments
    (text and style) rich's Padding yields for it, and falls back to Padding otherwise."""
    import io

    from rich.console import Console
    from rich.padding import Padding

    from kvplan.presentation.layout import FittingConsole, _TextCell

    console = Console(file=io.StringIO(), width=120, highlight=False, emoji=False)
    fitting = FittingConsole(file=io.StringIO(), width=120, highlight=False, emoji=False)
    cell = _cell(" ".join(words), style, span, kind)
    options = console.options.update(
        width=width, justify=justify, overflow=overflow, no_wrap=no_wrap, height=None
    )
    for cell_style in ("", "green"):
        expected = console.render_lines(
            Padding(cell, padding), options, style=console.get_style(cell_style)
        )
        for drawer in (console, fitting):  # FittingConsole.render_lines has its shortcut
            got = drawer.render_lines(
                _TextCell(cell, padding), options, style=console.get_style(cell_style)
            )
            assert got == expected


@pytest.mark.parametrize("box_name", ["HEAVY_HEAD", "SIMPLE", "ROUNDED", None])
def test_pinned_table_draws_as_rich_table(box_name):
    """A table pinned to its natural widths (layout._pin_tables) prints byte for byte as
    the table itself, colours included, at its natural width and wider; one with a column
    rich must measure (a nested renderable) too."""
    import io

    from rich import box
    from rich.console import Console
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from kvplan.presentation.layout import FittingConsole, _pin_tables

    def table(nested: bool) -> Table:
        t = Table(
            title="Batch sweep, a title long enough to wrap",
            title_justify="left",
            box=getattr(box, box_name) if box_name else None,
            caption="a caption",
        )
        t.add_column("batch", justify="right")
        t.add_column("share / how", style="dim")
        t.add_column("G=8 GQA-8", justify="center", header_style="bold red")
        t.add_column("nested")
        for i, row_style in enumerate(("green", "yellow", "", "red")):
            bar = Text("█" * (i + 1), style=row_style or "blue")
            bar.append(f" {i * 7.25:,.1f}*")
            inner = Padding("in", (0, 1)) if nested else f"{i}"
            t.add_row(f"{2**i:,}", "at 3.35 TB/s x 0.81" * (i % 2 + 1), bar, inner, style=row_style)
        return t

    for nested in (False, True):
        console = Console(
            file=io.StringIO(), force_terminal=True, color_system="truecolor", width=200
        )
        natural, pinned = _pin_tables(console, table(nested))
        assert type(pinned) is not Table
        for width in (natural, natural + 1, natural + 37):
            outs = []
            for t, kind in ((table(nested), Console), (pinned, Console), (pinned, FittingConsole)):
                console = kind(
                    file=io.StringIO(), force_terminal=True, color_system="truecolor", width=width
                )
                Console.print(console, t, crop=False)  # FittingConsole: its render_lines
                outs.append(console.file.getvalue())
            assert outs[0] == outs[1] == outs[2]


def test_text_cell_shortcut_is_taken_only_for_one_fitting_line():
    import io

    from rich.console import Console
    from rich.text import Text

    from kvplan.presentation.layout import _TextCell

    console = Console(file=io.StringIO(), width=120)
    options = console.options.update(width=13, justify="right", height=None)
    assert _TextCell(Text("13.98 GiB"), (0, 1, 0, 1))._one_line(console, options) is not None
    assert _TextCell("13.98 GiB", (0, 1, 0, 1))._one_line(console, options) is not None
    for cell in (Text("a much longer cell"), Text("two\nlines"), Text("a\ttab")):
        assert _TextCell(cell, (0, 1, 0, 1))._one_line(console, options) is None


@pytest.mark.parametrize("columns", WIDTHS)
def test_models_verified_level_survives_narrow(columns: str | None) -> None:
    """The verified column is not lost when the table switches to one record per row."""
    doc = json.loads(run(["models", "granite", "--json"], None).stdout)
    assert doc["models"] and {m["verified"] for m in doc["models"]} == {"no"}
    out = run(["models", "granite"], columns).stdout
    if columns is not None:  # narrower than the table: `header: value` pairs per record
        assert out.count("verified: no") == len(doc["models"])
    else:  # piped: the whole table, one row per line, the column last
        assert "verified" in out
        rows = [line for line in out.splitlines() if "granite-" in line]
        assert len(rows) == len(doc["models"])
        assert all(line.rstrip(" │").endswith(" no") for line in rows)
