"""Deployment settings (flags or policy keys) -> one core `Deployment`.

`kvplan fit`, `pick-g`, `roofline` and `kvplan check` policies all build their Deployment
here, so a policy target means exactly what the same flags mean on the command line. A bad
value raises `DeploymentFieldError`, a KvplanError that also names the setting, so the
policy loader can point at the YAML line that holds it. Messages name the setting the way
the caller spells it (`names`: `--tp` for flags, `tp` for policy keys).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from kvplan.core import dtypes
from kvplan.core.budget import DEFAULT_MAX_NUM_BATCHED_TOKENS, DEFAULT_MAX_NUM_SEQS, Engine
from kvplan.core.capacity import Deployment
from kvplan.core.geometry import ModelSpec
from kvplan.core.sizing import default_kv_dtype
from kvplan.errors import KvplanError
from kvplan.sources.gpus import load_gpus
from kvplan.sources.resolve import ResolvedModel
from kvplan.units import parse_size

MAX_CTX = 1 << 40  # beyond any real context: catches typos like 10**20
MAX_BATCH = 1 << 40
MAX_PARALLEL = 4096
MAX_BLOCK_SIZE = 1 << 20

# Setting -> how the command line spells it (the default `names`).
FLAG_NAMES: dict[str, str] = {
    "gpu": "--gpu",
    "tp": "--tp",
    "pp": "--pp",
    "engine": "--engine",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "mem_fraction_static": "--mem-fraction-static",
    "free_gpu_memory_fraction": "--free-gpu-memory-fraction",
    "kv_memory": "--kv-memory",
    "activation_reserve": "--activation-reserve",
    "overhead": "--overhead",
    "block_size": "--block-size",
    "kv_dtype": "--kv-dtype",
    "weight_dtype": "--weight-dtype",
    "max_num_batched_tokens": "--max-num-batched-tokens",
    "max_num_seqs": "--max-num-seqs",
}
FRACTION_OWNERS = {
    "gpu_memory_utilization": Engine.VLLM,
    "mem_fraction_static": Engine.SGLANG,
    "free_gpu_memory_fraction": Engine.TRTLLM,
}


class DeploymentFieldError(KvplanError):
    """A bad deployment setting; `field` is the setting's name (policy key spelling)."""

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


@contextmanager
def _field(name: str) -> Iterator[None]:
    try:
        yield
    except DeploymentFieldError:
        raise
    except KvplanError as exc:
        raise DeploymentFieldError(name, exc.message, hint=exc.hint) from None


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


def engine_for(name: str) -> Engine:
    try:
        return Engine(name.lower())
    except ValueError:
        raise KvplanError(
            f"unknown engine {name!r}", hint="choose vllm, sglang, trtllm or none"
        ) from None


def size_or_none(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    value = parse_size(text)
    if value < 0:
        raise KvplanError(f"{flag} must not be negative")
    return value


def build_deployment(
    spec: ModelSpec,
    *,
    gpu: str,
    gpu_file: str | None,
    tp: int,
    pp: int,
    engine: str,
    gpu_memory_utilization: float | None,
    mem_fraction_static: float | None,
    free_gpu_memory_fraction: float | None,
    kv_memory: str | None,
    activation_reserve: str | None,
    overhead: str | None,
    block_size: int,
    kv_dtype: str,
    weight_dtype: str | None,
    weights_override: int | None = None,
    max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
    names: Mapping[str, str] = FLAG_NAMES,
) -> Deployment:
    """Parse the deployment settings into a core Deployment (no math here)."""
    with _field("engine"):
        eng = engine_for(engine)
    for key, value, limit in (
        ("tp", tp, MAX_PARALLEL),
        ("pp", pp, MAX_PARALLEL),
        ("block_size", block_size, MAX_BLOCK_SIZE),
        ("max_num_batched_tokens", max_num_batched_tokens, MAX_CTX),
        ("max_num_seqs", max_num_seqs, MAX_BATCH),
    ):
        with _field(key):
            positive(value, names[key], limit=limit)
    given = {
        "gpu_memory_utilization": gpu_memory_utilization,
        "mem_fraction_static": mem_fraction_static,
        "free_gpu_memory_fraction": free_gpu_memory_fraction,
    }
    fraction = None
    for key, value in given.items():
        if value is None:
            continue
        owner = FRACTION_OWNERS[key]
        if owner is not eng:
            raise DeploymentFieldError(
                key,
                f"{names[key]} is a {owner.value} setting, but {names['engine']} is {eng.value}",
            )
        if not 0 < value <= 1:
            raise DeploymentFieldError(key, f"{names[key]} must be in (0, 1], got {value}")
        fraction = value
    with _field("gpu"):
        gpu_spec = load_gpus(gpu_file).get(gpu)
    with _field("kv_dtype"):
        kv = kv_dtype_for(spec, kv_dtype)
    with _field("weight_dtype"):
        weights = weight_dtype_for(weight_dtype)
    sizes: dict[str, int | None] = {}
    for key, text in (
        ("kv_memory", kv_memory),
        ("activation_reserve", activation_reserve),
        ("overhead", overhead),
    ):
        with _field(key):
            sizes[key] = size_or_none(text, names[key])
    return Deployment(
        spec=spec,
        gpu=gpu_spec,
        engine=eng,
        tp=tp,
        pp=pp,
        kv_dtype=kv,
        weight_dtype=weights,
        block_size=block_size,
        fraction=fraction,
        kv_memory=sizes["kv_memory"],
        activations=sizes["activation_reserve"],
        overhead=sizes["overhead"],
        weights_override=weights_override,
        max_num_batched_tokens=max_num_batched_tokens,
        max_num_seqs=max_num_seqs,
    )


def exact_weights(resolved: ResolvedModel, weight_dtype: str | None) -> int | None:
    """Exact checkpoint bytes (Hub safetensors) when known and not overridden by a dtype."""
    exact = getattr(resolved, "exact_weights", None)
    if exact is None or weight_dtype not in (None, "auto"):
        return None
    return int(exact.total_bytes)
