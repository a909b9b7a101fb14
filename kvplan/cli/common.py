"""Flag parsing shared by the commands: each bad value becomes one KvplanError line."""

from __future__ import annotations

from kvplan.core import dtypes
from kvplan.core.geometry import ModelSpec
from kvplan.core.sizing import default_kv_dtype
from kvplan.errors import KvplanError
from kvplan.sources.resolve import ResolvedModel, resolve_model

MAX_CTX = 1 << 40  # beyond any real context: catches typos like 10**20
MAX_BATCH = 1 << 40
DEFAULT_CTX = 4096


def positive(value: int | None, flag: str, *, limit: int | None = None) -> int | None:
    if value is None:
        return None
    if value <= 0:
        raise KvplanError(f"{flag} must be a positive integer, got {value}")
    if limit is not None and value > limit:
        raise KvplanError(f"{flag} {value:,} is absurdly large (limit {limit:,})")
    return value


def kv_dtype_for(spec: ModelSpec, name: str) -> str:
    return default_kv_dtype(spec) if name.lower() == "auto" else dtypes.kv_dtype(name)


def weight_dtype_for(name: str | None) -> str | None:
    return None if name is None or name.lower() == "auto" else dtypes.weight_dtype(name)


def load_model(name: str, *, revision: str | None = None, token: str | None = None,
               refresh: bool = False) -> ResolvedModel:
    return resolve_model(name, revision=revision, token=token, refresh=refresh)


def default_ctx(spec: ModelSpec) -> int:
    return spec.max_position_embeddings or DEFAULT_CTX
