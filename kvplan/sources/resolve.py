"""Resolve the MODEL argument: a local file or folder, then the bundled catalog, then the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.catalog import load_catalog
from kvplan.sources.parse import parse_config_text

CONFIG_FILES = ("config.json", "params.json")
MAX_CONFIG_BYTES = 10_000_000

SourceKind = Literal["file", "catalog", "hub", "design"]


class ExactWeights(BaseModel):
    """Weight bytes read from a checkpoint's safetensors headers, not estimated.

    `parameters_by_dtype` counts stored elements, so packed formats (AWQ/GPTQ int4 in I32,
    mxfp4 in U8) show storage elements, not logical parameters; `total_bytes` is exact.
    """

    model_config = ConfigDict(defer_build=True, frozen=True)

    total_bytes: int
    parameters_by_dtype: dict[str, int]
    total_parameters: int


class ResolvedModel(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, arbitrary_types_allowed=True)

    spec: ModelSpec
    source: SourceKind
    location: str  # path, catalog entry, or Hub repo id
    revision: str | None = None  # Hub: the resolved commit sha (else the one asked for)
    exact_weights: ExactWeights | None = None  # Hub checkpoints with safetensors headers


def read_local(path: Path) -> ModelSpec:
    """Read a config.json / params.json file, or a folder holding one."""
    if path.is_dir():
        for name in CONFIG_FILES:
            if (path / name).is_file():
                return read_local(path / name)
        raise KvplanError(f"{path}: folder has neither config.json nor params.json")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise KvplanError(f"{path}: too large for a model config")
        data = path.read_bytes()
    except OSError as exc:
        raise KvplanError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_config_text(data, name=model_name_for(path, data), origin=str(path))


def model_name_for(path: Path, data: bytes) -> str:
    """A readable name: the config's `_name_or_path`, else the file or folder name."""
    import json

    try:
        raw = json.loads(data)
        named = raw.get("_name_or_path") if isinstance(raw, dict) else None
    except (ValueError, UnicodeDecodeError):
        named = None
    if isinstance(named, str) and named and not named.startswith(("/", ".")):
        return named
    stem = path.parent.name if path.name in CONFIG_FILES else path.stem
    stem = stem.removesuffix(".params")
    return stem.replace("__", "/") if stem.count("__") == 1 else (stem or str(path))


def looks_like_path(name: str) -> bool:
    return (
        name.endswith(".json")
        or name.startswith((".", "/", "~"))
        or name.count("/") > 1
        or Path(name).expanduser().exists()
    )


def resolve_model(
    name: str, *, revision: str | None = None, token: str | None = None, refresh: bool = False
) -> ResolvedModel:
    """Find MODEL: local path -> bundled catalog -> Hugging Face Hub."""
    name = strip_hub_url(name)
    path = Path(name).expanduser()
    if path.exists():
        return ResolvedModel(spec=read_local(path), source="file", location=str(path))
    if looks_like_path(name) and not _is_repo_id(name):
        raise KvplanError(f"{name}: no such file or folder")
    catalog = load_catalog()
    if not refresh and revision is None:
        entry = catalog.find(name)
        if entry is not None:
            return ResolvedModel(spec=catalog.load(entry), source="catalog", location=entry.repo_id)
    return _from_hub(name, revision=revision, token=token)


HUB_URL_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf://")


def strip_hub_url(name: str) -> str:
    """Accept a pasted Hub URL (https://huggingface.co/org/name[/tree/main]) as a repo id."""
    for prefix in HUB_URL_PREFIXES:
        if name.startswith(prefix):
            parts = name[len(prefix) :].strip("/").split("/")
            return "/".join(parts[:2])
    return name


def _is_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.endswith(".json")


def _from_hub(name: str, *, revision: str | None, token: str | None) -> ResolvedModel:
    from kvplan.sources import hub  # lazy: huggingface_hub costs start-up time

    return hub.fetch_model(name, revision=revision, token=token)
