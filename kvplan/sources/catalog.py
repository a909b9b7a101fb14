"""The bundled model catalog: real published configs in configs/models/, keyed by repo id.

`catalog.yaml` lists each file with where it came from; lookup is case-insensitive and a
`-hf` suffix is optional (meta-llama/Llama-2-70b and meta-llama/Llama-2-70b-hf both resolve).
"""

from __future__ import annotations

import difflib
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.data import configs_dir, load_yaml_file
from kvplan.sources.parse import parse_config_text


class CatalogEntry(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    repo_id: str = Field(pattern=r"^[\w.\-]+/[\w.\-]+$")
    file: str
    format: Literal["hf", "meta"] = "hf"
    source: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    published_params: int | None = Field(default=None, gt=0)
    published_active_params: int | None = Field(default=None, gt=0)
    params_source: str | None = None
    notes: str | None = None
    revision: str | None = None  # which published revision of the config the file is
    verified: str | None = None  # against what, and when, the file was last re-checked


class CatalogFile(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    schema_version: Literal[1]
    models: tuple[CatalogEntry, ...]


def _key(name: str) -> str:
    return name.strip().lower()


class Catalog:
    def __init__(self, entries: tuple[CatalogEntry, ...], root: Path) -> None:
        self.entries = entries
        self.root = root
        self._index: dict[str, CatalogEntry] = {}
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
        path = self.root / entry.file
        spec = parse_config_text(
            path.read_bytes(), name=entry.repo_id, origin=f"catalog:{entry.repo_id}"
        )
        return spec.model_copy(update={"source": f"catalog ({entry.source})"})


@cache
def load_catalog() -> Catalog:
    root = configs_dir() / "models"
    path = root / "catalog.yaml"
    raw = load_yaml_file(path)
    try:
        parsed = CatalogFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise KvplanError(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    return Catalog(parsed.models, root)
