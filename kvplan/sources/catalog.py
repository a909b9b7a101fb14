"""The bundled model catalog: real published configs in configs/models/, keyed by repo id.

`catalog.yaml` lists each file with where it came from; lookup is case-insensitive and a
`-hf` suffix is optional (meta-llama/Llama-2-70b and meta-llama/Llama-2-70b-hf both resolve).

Start-up: parsing the YAML (pure-Python loader) and validating every entry to answer one
model cost more than the rest of `kvplan size`. So the catalog is also compiled into
`catalog.index` (same directory; JSON, named so no `*.json` glob of configs picks it
up as a model config): the validated entries, stamped with
the length and CRC-32 of the `catalog.yaml` they came from. At run time the index is used
only when that stamp matches the YAML beside it, without re-validating (the test suite
validates it: tests/test_catalog_index.py); a stale or missing index falls back to reading
the YAML, so an edit to catalog.yaml is never silently ignored, only slower until
`python scripts/gen_cli_docs.py` regenerates the index.
"""

from __future__ import annotations

import difflib
import json
import re
import zlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kvplan.core.frozen import Frozen, field
from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.data import configs_dir, load_yaml_file
from kvplan.sources.parse import parse_config_text

if TYPE_CHECKING:
    from pydantic import BaseModel

ENTRY_PATTERN = r"^[\w.\-]+/[\w.\-]+$"


class CatalogEntry(Frozen):
    """One catalog entry (checked by the pydantic schema `catalog_schema` when read from
    catalog.yaml; taken as compiled from catalog.index)."""

    repo_id: str = field(pattern=ENTRY_PATTERN)
    file: str
    format: Literal["hf", "meta"] = "hf"
    source: str = field(min_length=1)
    aliases: tuple[str, ...] = ()
    published_params: int | None = field(default=None, gt=0)
    published_active_params: int | None = field(default=None, gt=0)
    params_source: str | None = None
    notes: str | None = None
    revision: str | None = None  # which published revision of the config the file is
    verified: str | None = None  # against what, and when, the file was last re-checked


VerificationLevel = Literal["yes", "structure", "weak", "no"]
VERIFICATION_LEVELS: tuple[VerificationLevel, ...] = ("yes", "structure", "weak", "no")

# The qualifier a `verified:` record may put in parentheses right after its date:
# "2026-11-30 (weak: a sibling repository): ...", "2026-11-30 (structure, ...): ...".
_QUALIFIER = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*\(([^)]*)\)")


def verification_level(verified: str | None) -> VerificationLevel:
    """How far an entry's `verified:` record vouches for its file, read from the record's
    own wording (the one place this is decided; `kvplan models` shows it).

    * no: no record: the file has not been re-checked against the published config.
    * weak: the qualifier starts with "weak" (second-hand tables, derivatives of the
      published file, a sibling repository).
    * structure: the qualifier names structure without values ("structure", "structure
      only", "text structure and vision_config values", ...) or a table that restates the
      architecture without "all keys": the geometry was confirmed, not every value.
    * yes: everything else: every key compared (an independent verbatim copy, the Hub page,
      `scripts/verify_catalog.py` against a Hub commit).
    """
    if verified is None or not verified.strip():
        return "no"
    match = _QUALIFIER.match(verified)
    qualifier = match[1].strip().lower() if match else ""
    if qualifier.startswith("weak"):
        return "weak"
    if "structure" in qualifier and "structure and values" not in qualifier:
        return "structure"
    if "table" in qualifier and "all keys" not in qualifier:
        return "structure"
    return "yes"


def unverified_note(entry: CatalogEntry) -> str | None:
    """The note `size`, `fit`, `pick-g`, `roofline` and `plan` show (`model_note` in their
    JSON) for a catalog entry with no `verified:` record; None for a verified one."""
    if verification_level(entry.verified) != "no":
        return None
    return (
        f"catalog entry {entry.repo_id} has not been re-verified against its current "
        "published config (kvplan models --verified no); to be sure, ask the Hub with "
        "--refresh (or --revision REV) or pass a local config.json"
    )


class CatalogFile(Frozen):
    schema_version: Literal[1]
    models: tuple[CatalogEntry, ...]


def catalog_schema() -> type[BaseModel]:
    """The pydantic schema of catalog.yaml, derived from CatalogFile's one declaration
    (kvplan.sources.schema; built only when the YAML itself is read)."""
    from kvplan.sources.schema import pydantic_model

    return pydantic_model(CatalogFile)


def validate_catalog(raw: Any) -> CatalogFile:
    """catalog.yaml's content, validated by the schema (raises pydantic's ValidationError)."""
    parsed: Any = catalog_schema().model_validate(raw)
    return CatalogFile(
        schema_version=parsed.schema_version,
        models=tuple(CatalogEntry(**m.model_dump()) for m in parsed.models),
    )


def _key(name: str) -> str:
    return name.strip().lower()


class Catalog:
    def __init__(self, entries: tuple[CatalogEntry, ...], root: Path) -> None:
        self.entries = entries
        self.root = root
        self._index: dict[str, CatalogEntry] = {}
        self._loaded: dict[str, ModelSpec] = {}
        for entry in entries:
            self._index[_key(entry.repo_id)] = entry
        for entry in entries:
            names = [*entry.aliases]
            if entry.repo_id.lower().endswith("-hf"):
                names.append(entry.repo_id[:-3])
            for alias in names:
                self._index.setdefault(_key(alias), entry)

    def find(self, name: str) -> CatalogEntry | None:
        return self._index.get(_key(name))

    def suggest(self, name: str, n: int = 3) -> list[str]:
        ids = [entry.repo_id for entry in self.entries]
        lowered = {i.lower(): i for i in ids}
        hits = difflib.get_close_matches(_key(name), list(lowered), n=n, cutoff=0.6)
        tail = _key(name).split("/")[-1]
        hits += [
            lowered[i]
            for i in lowered
            if tail and tail in i.split("/")[-1] and lowered[i] not in hits
        ]
        return [lowered.get(h, h) for h in hits][:n]

    def load(self, entry: CatalogEntry) -> ModelSpec:
        """The entry's model, read once per process (a ModelSpec is immutable; a policy
        names the same catalog model for many targets)."""
        if entry.repo_id not in self._loaded:
            path = self.root / entry.file
            spec = parse_config_text(
                path.read_bytes(), name=entry.repo_id, origin=f"catalog:{entry.repo_id}"
            )
            self._loaded[entry.repo_id] = spec.model_copy(
                update={"source": f"catalog ({entry.source})"}
            )
        return self._loaded[entry.repo_id]


CATALOG_FILE = "catalog.yaml"
INDEX_FILE = "catalog.index"
INDEX_VERSION = 1


def _stamp(data: bytes) -> str:
    """What the index records of the YAML it was compiled from: length and CRC-32 (a
    staleness check, not a security one; crc32 costs no import, unlike hashlib)."""
    return f"{len(data)}:{zlib.crc32(data):08x}"


def _validated(raw: object, path: Path) -> CatalogFile:
    from pydantic import ValidationError

    try:
        return validate_catalog(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise KvplanError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def read_catalog_yaml(root: Path) -> CatalogFile:
    """The catalog as written: YAML, every entry validated."""
    path = root / CATALOG_FILE
    return _validated(load_yaml_file(path), path)


def compile_index(root: Path | None = None) -> str:
    """The text of `catalog.index` for the catalog.yaml in `root` (validated here)."""
    root = root or configs_dir() / "models"
    parsed = read_catalog_yaml(root)
    doc = {
        "index_version": INDEX_VERSION,
        "generated_by": "python scripts/gen_cli_docs.py (do not edit by hand)",
        "catalog_stamp": _stamp((root / CATALOG_FILE).read_bytes()),
        "schema_version": parsed.schema_version,
        "models": [_non_default(e) for e in parsed.models],
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def _non_default(entry: CatalogEntry) -> dict[str, Any]:
    defaults = CatalogEntry.model_fields
    return {k: v for k, v in entry.model_dump().items() if v != defaults[k].default}


def _from_index(root: Path) -> tuple[CatalogEntry, ...] | None:
    """The compiled entries, if the index matches the YAML beside it (else None)."""
    try:
        stamp = _stamp((root / CATALOG_FILE).read_bytes())
        doc = json.loads((root / INDEX_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    if doc.get("index_version") != INDEX_VERSION or doc.get("catalog_stamp") != stamp:
        return None
    # Trusted: compiled from validated entries, and the stamp says from this very YAML.
    return tuple(
        CatalogEntry.model_construct(**{**e, "aliases": tuple(e.get("aliases", ()))})
        for e in doc["models"]
    )


@cache
def load_catalog() -> Catalog:
    root = configs_dir() / "models"
    entries = _from_index(root)
    if entries is None:
        entries = read_catalog_yaml(root).models
    return Catalog(entries, root)
