"""Re-verify the bundled model catalog against each model's current published config.

For every entry of configs/models/catalog.yaml (or those named with --only), download the
file the entry bundles (config.json, or params.json for Meta-format entries) from the
Hugging Face Hub at the repo's default branch, note the commit it resolved to, read both
files with kvplan's own reader and compare every field kvplan reads: the geometry (every
ModelSpec field, layer by layer), KV bytes per token at the model's 16-bit KV dtype, the
parameter counts and the weight bytes. A table says which entries match; differences are
listed by key. Keys kvplan does not read (transformers_version, _name_or_path, ...) are
listed for information only.

    python scripts/verify_catalog.py                        # every entry; nothing written
    python scripts/verify_catalog.py --only Qwen/Qwen3-8B   # one entry (repeatable)
    python scripts/verify_catalog.py --write                # record the matches

`--write` records, for each entry that matches, `revision:` (the Hub commit sha) and
`verified:` (date, commit, what matched) in catalog.yaml, edited in place line by line (the
rest of the file is untouched), then recompiles catalog.index. An entry that differs is
reported, never replaced: replacing a bundled file is a reviewed change (SOURCES.md).

Everything goes through huggingface_hub, so HF_TOKEN (gated repos such as Llama and Gemma),
HF_ENDPOINT, HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE (cached answers only) hold as usual;
KVPLAN_HUB_DEADLINE bounds each download. An unreachable Hub stops the run with one error
line, before anything is written.

Exit status: 0 every compared entry matches; 1 some differ or could not be compared;
2 the Hub cannot be reached, or bad arguments. A developer script (docs/catalog.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvplan.core.geometry import ModelSpec
from kvplan.core.sizing import default_kv_dtype, size_report
from kvplan.errors import KvplanError
from kvplan.sources.catalog import (
    CATALOG_FILE,
    INDEX_FILE,
    CatalogEntry,
    compile_index,
    read_catalog_yaml,
)
from kvplan.sources.data import configs_dir
from kvplan.sources.parse import parse_config_text

IGNORED_FIELDS = ("name", "source", "assumptions")  # labels and prose, not numbers
DERIVED_CTX = 4096  # any context: KV bytes per token and weights do not depend on it
TOOL = "scripts/verify_catalog.py"


class Unreachable(Exception):
    """The Hub cannot be reached at all: stop, compare nothing more."""


@dataclass
class Outcome:
    entry: CatalogEntry
    status: str  # "match", "differs", "error"
    commit: str | None = None
    filename: str = "config.json"
    differences: list[str] = field(default_factory=list)  # "key: catalog X, Hub Y"
    other_keys: list[str] = field(default_factory=list)  # raw keys kvplan does not read
    identical: bool = False  # byte for byte
    detail: str = ""
    kv_catalog: int | None = None
    kv_hub: int | None = None
    summary: str = ""  # what matched, for the verified: record


def published_file(entry: CatalogEntry) -> str:
    """The file of the Hub repo that the bundled file is a copy of."""
    return "params.json" if entry.format == "meta" else "config.json"


# ---- what kvplan reads -------------------------------------------------------------------


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, (list, tuple)):
        out[f"{prefix}.#"] = len(value)
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    else:
        out[prefix] = value


def reading(spec: ModelSpec) -> dict[str, Any]:
    """Every field kvplan reads from a config, flattened to `key: value` (layers[3].window,
    mla.latent_dim, ...), plus the figures kvplan derives from them."""
    dumped = spec.model_dump(mode="json")
    out: dict[str, Any] = {}
    for key, value in dumped.items():
        if key not in IGNORED_FIELDS:
            _flatten(value, key, out)
    report = size_report(spec, ctx=DERIVED_CTX, batch=1, kv_dtype=default_kv_dtype(spec))
    out["derived.kv_bytes_per_token"] = report.kv_bytes_per_token
    out["derived.params"] = report.params.total
    out["derived.active_params"] = report.params.active
    out["derived.weight_bytes"] = report.weight_bytes
    return out


def differences(catalog: Mapping[str, Any], hub: Mapping[str, Any]) -> list[str]:
    """`key: catalog X, Hub Y` for every field that differs; the same change on many layers
    is one line (layers[*].window ... on 32 of them)."""
    grouped: dict[tuple[str, str, str], int] = {}
    for key in sorted(set(catalog) | set(hub)):
        a, b = catalog.get(key, "(absent)"), hub.get(key, "(absent)")
        if a != b:
            general = re.sub(r"\[\d+\]", "[*]", key)
            pair = (general, json.dumps(a), json.dumps(b))
            grouped[pair] = grouped.get(pair, 0) + 1
    lines = []
    for (key, a, b), count in grouped.items():
        times = f" ({count} items)" if count > 1 else ""
        lines.append(f"{key}: catalog {a}, Hub {b}{times}")
    return lines


def other_keys(catalog_raw: Any, hub_raw: Any) -> list[str]:
    """Top-level keys whose raw values differ (whether kvplan reads them or not)."""
    if not isinstance(catalog_raw, dict) or not isinstance(hub_raw, dict):
        return []
    keys = set(catalog_raw) | set(hub_raw)
    return sorted(k for k in keys if catalog_raw.get(k, ...) != hub_raw.get(k, ...))


def compare(entry: CatalogEntry, local: bytes, hub: bytes, commit: str, filename: str) -> Outcome:
    """The outcome of comparing the bundled file with the Hub's, through kvplan's reader."""
    mine = parse_config_text(local, name=entry.repo_id, origin=f"catalog:{entry.repo_id}")
    try:
        theirs = parse_config_text(hub, name=entry.repo_id, origin=f"hub:{entry.repo_id}")
    except KvplanError as exc:
        return Outcome(
            entry,
            "differs",
            commit,
            filename,
            differences=[f"kvplan cannot read the Hub's {filename}: {exc}"],
        )
    a, b = reading(mine), reading(theirs)
    diffs = differences(a, b)
    raw_keys = other_keys(json.loads(local), json.loads(hub))
    outcome = Outcome(
        entry,
        "differs" if diffs else "match",
        commit,
        filename,
        differences=diffs,
        other_keys=raw_keys,
        identical=local == hub,
        kv_catalog=a["derived.kv_bytes_per_token"],
        kv_hub=b["derived.kv_bytes_per_token"],
    )
    if not diffs:
        if outcome.identical:
            same = "the files are byte-identical"
        elif raw_keys:
            same = "keys whose raw values differ: " + ", ".join(raw_keys)
        else:
            same = "the same keys and values (layout differs)"
        outcome.summary = (
            f"every field kvplan reads ({len(a)} values: the geometry layer by layer, "
            f"{a['derived.kv_bytes_per_token']:,} KV bytes/token at "
            f"{default_kv_dtype(mine)}, {a['derived.params']:,} parameters, "
            f"{a['derived.weight_bytes']:,} weight bytes) equals the Hub's {filename}; {same}"
        )
    return outcome


# ---- the Hub ----------------------------------------------------------------------------


def download(repo_id: str, filename: str) -> tuple[bytes, str]:
    """The file at the default branch and the commit it resolved to. Raises Unreachable
    when the Hub cannot be reached, KvplanError (one line) for anything else."""
    from huggingface_hub import constants, hf_hub_download, logging
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars  # type: ignore[attr-defined]

    from kvplan.sources import hub
    from kvplan.sources.validate import hub_deadline

    deadline = hub_deadline()
    # One table on stdout, one error line on stderr: no progress bars, no retry chatter
    # (HF_HUB_DISABLE_PROGRESS_BARS and HF_HUB_VERBOSITY, when set, still win).
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") is None:
        disable_progress_bars()
    if not os.environ.get("HF_HUB_VERBOSITY"):
        logging.set_verbosity_error()  # type: ignore[no-untyped-call]

    def late() -> tuple[bytes, str]:
        raise Unreachable(
            f"no answer from the Hub at {constants.ENDPOINT} within {deadline:g} s "
            "(KVPLAN_HUB_DEADLINE)"
        )

    def get() -> tuple[bytes, str]:
        path = Path(hf_hub_download(repo_id, filename, library_name="kvplan-verify-catalog"))
        return path.read_bytes(), path.parent.name  # snapshots/<commit>/<file>

    try:
        return hub.within(deadline, get, on_timeout=late)
    except (Unreachable, KvplanError):
        raise
    except LocalEntryNotFoundError as exc:  # before EntryNotFoundError: a subclass
        if constants.HF_HUB_OFFLINE:  # a per-entry answer: not in the cache
            raise hub.hub_error(exc, repo_id, revision=None) from None
        raise Unreachable(hub.hub_error(exc, repo_id, revision=None).message) from None
    except EntryNotFoundError:
        raise KvplanError(f"{repo_id}: the repo has no {filename} on its default branch") from None
    except Exception as exc:
        raise hub.hub_error(exc, repo_id, revision=None) from None


def verify(entry: CatalogEntry, root: Path) -> Outcome:
    filename = published_file(entry)
    try:
        hub_bytes, commit = download(entry.repo_id, filename)
    except KvplanError as exc:
        return Outcome(entry, "error", filename=filename, detail=exc.message)
    local = (root / entry.file).read_bytes()
    return compare(entry, local, hub_bytes, commit, filename)


# ---- writing the record -------------------------------------------------------------------


def _quoted(text: str) -> str:
    """A YAML single-quoted scalar (the catalog's own style)."""
    return "'" + text.replace("'", "''") + "'"


def record_match(text: str, repo_id: str, *, verified: str, revision: str) -> str:
    """catalog.yaml's text with the entry's `revision:` and `verified:` lines replaced (or
    added at the end of the entry); every other line unchanged."""
    lines = text.splitlines(keepends=True)
    head = re.compile(r"^- repo_id:\s*['\"]?(?P<id>[^'\"\s]+)['\"]?\s*$")
    start = next(
        (i for i, line in enumerate(lines) if (m := head.match(line)) and m["id"] == repo_id),
        None,
    )
    if start is None:
        raise KvplanError(f"{repo_id}: no `- repo_id: {repo_id}` line in {CATALOG_FILE}")
    end = start + 1
    while end < len(lines) and lines[end].startswith("  "):
        end += 1
    kept: list[str] = []
    skipping = False
    for line in lines[start:end]:
        if line.startswith(("  verified:", "  revision:")):
            skipping = True  # and any continuation lines of that scalar
            continue
        if skipping and line.startswith("    "):
            continue
        skipping = False
        kept.append(line)
    if not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    kept += [f"  revision: {_quoted(revision)}\n", f"  verified: {_quoted(verified)}\n"]
    return "".join(lines[:start] + kept + lines[end:])


def verified_record(outcome: Outcome, today: str) -> str:
    return f"{today} (Hub commit {outcome.commit}, {TOOL}): {outcome.summary}"


def write_records(root: Path, outcomes: Sequence[Outcome], today: str) -> int:
    path = root / CATALOG_FILE
    text = path.read_text(encoding="utf-8")
    written = 0
    for o in outcomes:
        if o.status == "match" and o.commit:
            record = verified_record(o, today)
            text = record_match(text, o.entry.repo_id, verified=record, revision=o.commit)
            written += 1
    if not written:
        return 0
    path.write_text(text, encoding="utf-8")
    parsed = {e.repo_id: e for e in read_catalog_yaml(root).models}  # still valid?
    for o in outcomes:
        if o.status == "match" and o.commit:
            assert parsed[o.entry.repo_id].revision == o.commit, o.entry.repo_id
    (root / INDEX_FILE).write_text(compile_index(root), encoding="utf-8")
    return written


# ---- the report ---------------------------------------------------------------------------


def table(outcomes: Sequence[Outcome]) -> str:
    rows = [("model", "result", "Hub commit", "KV B/token catalog", "KV B/token Hub", "note")]
    for o in outcomes:
        if o.status == "match":
            note = (
                "identical file"
                if o.identical
                else "other keys: " + (", ".join(o.other_keys) or "none (layout only)")
            )
        elif o.status == "differs":
            note = f"{len(o.differences)} difference(s), see below"
        else:
            note = o.detail
        rows.append(
            (
                o.entry.repo_id,
                o.status,
                (o.commit or "-")[:12],
                f"{o.kv_catalog:,}" if o.kv_catalog is not None else "-",
                f"{o.kv_hub:,}" if o.kv_hub is not None else "-",
                note,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    out = []
    for r in rows:
        cells = [r[i].rjust(widths[i]) if i in (3, 4) else r[i].ljust(widths[i]) for i in range(5)]
        out.append("  ".join([*cells, r[5]]).rstrip())
    for o in outcomes:
        if o.status == "differs":
            out.append("")
            out.append(f"{o.entry.repo_id} differs from the Hub's {o.filename} @ {o.commit}:")
            out += [f"  {line}" for line in o.differences]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="this entry only")
    parser.add_argument("--write", action="store_true", help="record matches in catalog.yaml")
    parser.add_argument("--catalog", type=Path, help="catalog folder [configs/models]")
    parser.add_argument("--date", help="date for the records [today, UTC]")
    args = parser.parse_args(argv)
    root = args.catalog or configs_dir() / "models"
    today = args.date or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    try:
        entries = list(read_catalog_yaml(root).models)
        if args.only:
            wanted = {n.strip().lower() for n in args.only}
            known = {e.repo_id.lower() for e in entries}
            unknown = sorted(wanted - known)
            if unknown:
                raise KvplanError(f"not in {root / CATALOG_FILE}: {', '.join(unknown)}")
            entries = [e for e in entries if e.repo_id.lower() in wanted]
        outcomes = [verify(e, root) for e in entries]
    except Unreachable as exc:
        print(
            f"Error: cannot verify the catalog: {exc}; nothing compared or written", file=sys.stderr
        )
        return 2
    except KvplanError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    print(table(outcomes))
    matched = sum(o.status == "match" for o in outcomes)
    print(f"\n{matched} of {len(outcomes)} match the Hub", end="")
    if args.write:
        written = write_records(root, outcomes, today)
        print(f"; recorded {written} in {root / CATALOG_FILE} (and {INDEX_FILE})")
    else:
        print("; nothing written (pass --write to record the matches)")
    return 0 if matched == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
