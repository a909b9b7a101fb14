"""Flag parsing shared by the commands: each bad value becomes one KvplanError line."""

from __future__ import annotations

import typer

from kvplan.core import dtypes
from kvplan.core.budget import DEFAULT_MAX_NUM_BATCHED_TOKENS, DEFAULT_MAX_NUM_SEQS, Engine
from kvplan.core.capacity import Deployment
from kvplan.core.geometry import ModelSpec
from kvplan.core.sizing import default_kv_dtype
from kvplan.errors import KvplanError  # noqa: F401  (re-exported for commands)
from kvplan.sources.gpus import load_gpus
from kvplan.sources.resolve import ResolvedModel, resolve_model
from kvplan.units import parse_size

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


# ---- deployment flags shared by fit / pick-g / roofline ---------------------------------
GPU_OPT = typer.Option(..., "--gpu", help="GPU name, e.g. h100-sxm, a100-80gb, l40s, "
                       "rtx-4090, mi300x (see `kvplan gpus`).")
GPU_FILE_OPT = typer.Option(None, "--gpu-file", help="YAML file adding or overriding GPU "
                            "entries [env: KVPLAN_GPU_FILE].")
TP_OPT = typer.Option(1, "--tp", help="Tensor-parallel GPUs (weights and KV heads split).")
PP_OPT = typer.Option(1, "--pp", help="Pipeline-parallel stages (layers split).")
ENGINE_OPT = typer.Option("vllm", "--engine", help="Budget semantics: vllm, sglang, trtllm, "
                          "none.")
VLLM_UTIL_OPT = typer.Option(None, "--gpu-memory-utilization", help="vLLM: fraction of "
                             "total memory for weights+activations+KV [default 0.90].")
SGLANG_FRAC_OPT = typer.Option(None, "--mem-fraction-static", help="SGLang: fraction of "
                               "total memory for weights+KV [default by TP: 0.88 ... 0.79].")
TRT_FRAC_OPT = typer.Option(None, "--free-gpu-memory-fraction", help="TensorRT-LLM: "
                            "fraction of the memory free after weights [default 0.90].")
KV_MEMORY_OPT = typer.Option(None, "--kv-memory", help="KV budget per GPU, e.g. 40GiB "
                             "(skips the engine budget).")
ACT_OPT = typer.Option(None, "--activation-reserve", help="Peak activation memory per GPU, "
                       "e.g. 2GiB [default: estimated like vLLM's profiling run].")
OVERHEAD_OPT = typer.Option(None, "--overhead", help="Non-torch runtime memory per GPU, e.g. "
                            "0.5GiB [default 0.25 GiB, 2.1 GiB with TP/PP].")
BLOCK_OPT = typer.Option(16, "--block-size", help="Paged-KV block size in tokens.")
KV_DTYPE_OPT = typer.Option("auto", "--kv-dtype", help="KV-cache dtype: auto, fp16, bf16, fp8, "
                            "int8, int4.")
WEIGHT_DTYPE_OPT = typer.Option(None, "--weight-dtype", help="Weights dtype [default: the "
                                "checkpoint's]: fp16, bf16, fp8, int8, int4, mxfp4.")
REVISION_OPT = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit).")
TOKEN_OPT = typer.Option(None, "--token", help="Hub token [default: HF_TOKEN or the saved "
                         "login].")
REFRESH_OPT = typer.Option(False, "--refresh", help="Skip the catalog; ask the Hub.")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")
BATCHED_TOKENS_OPT = typer.Option(DEFAULT_MAX_NUM_BATCHED_TOKENS, "--max-num-batched-tokens",
                                  help="Engine's tokens per forward pass (sizes the "
                                  "activation estimate; vLLM V0 used max_model_len).")
MAX_SEQS_OPT = typer.Option(DEFAULT_MAX_NUM_SEQS, "--max-num-seqs", help="Engine's "
                            "maximum sequences per step (sizes the sampler estimate).")


def engine_for(name: str) -> Engine:
    try:
        return Engine(name.lower())
    except ValueError:
        raise KvplanError(f"unknown engine {name!r}",
                          hint="choose vllm, sglang, trtllm or none") from None


def size_or_none(text: str | None, flag: str) -> int | None:
    if text is None:
        return None
    value = parse_size(text)
    if value < 0:
        raise KvplanError(f"{flag} must not be negative")
    return value


def build_deployment(spec: ModelSpec, *, gpu: str, gpu_file: str | None, tp: int, pp: int,
                     engine: str, gpu_memory_utilization: float | None,
                     mem_fraction_static: float | None, free_gpu_memory_fraction: float | None,
                     kv_memory: str | None, activation_reserve: str | None,
                     overhead: str | None, block_size: int, kv_dtype: str,
                     weight_dtype: str | None,
                     weights_override: int | None = None,
                     max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS,
                     max_num_seqs: int = DEFAULT_MAX_NUM_SEQS) -> Deployment:
    """Parse the deployment flags into a core Deployment (no math here)."""
    eng = engine_for(engine)
    positive(tp, "--tp", limit=4096)
    positive(pp, "--pp", limit=4096)
    positive(block_size, "--block-size", limit=1 << 20)
    positive(max_num_batched_tokens, "--max-num-batched-tokens", limit=MAX_CTX)
    positive(max_num_seqs, "--max-num-seqs", limit=MAX_BATCH)
    given = {"--gpu-memory-utilization": (gpu_memory_utilization, Engine.VLLM),
             "--mem-fraction-static": (mem_fraction_static, Engine.SGLANG),
             "--free-gpu-memory-fraction": (free_gpu_memory_fraction, Engine.TRTLLM)}
    fraction = None
    for flag, (value, owner) in given.items():
        if value is None:
            continue
        if owner is not eng:
            raise KvplanError(f"{flag} is a {owner.value} setting, but --engine is {eng.value}")
        if not 0 < value <= 1:
            raise KvplanError(f"{flag} must be in (0, 1], got {value}")
        fraction = value
    return Deployment(
        spec=spec, gpu=load_gpus(gpu_file).get(gpu), engine=eng, tp=tp, pp=pp,
        kv_dtype=kv_dtype_for(spec, kv_dtype), weight_dtype=weight_dtype_for(weight_dtype),
        block_size=block_size, fraction=fraction,
        kv_memory=size_or_none(kv_memory, "--kv-memory"),
        activations=size_or_none(activation_reserve, "--activation-reserve"),
        overhead=size_or_none(overhead, "--overhead"), weights_override=weights_override,
        max_num_batched_tokens=max_num_batched_tokens, max_num_seqs=max_num_seqs,
    )


def exact_weights(resolved: ResolvedModel, weight_dtype: str | None) -> int | None:
    """Exact checkpoint bytes (Hub safetensors) when known and not overridden by a dtype."""
    exact = getattr(resolved, "exact_weights", None)
    if exact is None or weight_dtype not in (None, "auto"):
        return None
    return int(exact.total_bytes)


def fit_latency(p: object, result: object) -> dict[str, object] | None:
    """Decode latency at the answer's operating point (filled in by the roofline module)."""
    try:
        from kvplan.core import roofline
    except ImportError:
        return None
    hook = getattr(roofline, "fit_operating_point", None)
    return hook(p, result) if hook else None


def latency_lines(extra: dict[str, object] | None) -> list[str]:
    if not extra:
        return []
    line = extra.get("summary")
    return [str(line)] if line else []


def pickg_latency(result: object, *, ctx: int, batch: int) -> dict[int, tuple[float, float]] | None:
    """Decode ms/step and aggregate tokens/s per G (from the roofline module when present)."""
    try:
        from kvplan.core import roofline
    except ImportError:
        return None
    hook = getattr(roofline, "pickg_latency", None)
    return hook(result, ctx=ctx, batch=batch) if hook else None


def check_gpu(name: str, gpu_file: str | None) -> None:
    """Fail fast on an unknown GPU before any model lookup (which may touch the network)."""
    load_gpus(gpu_file).get(name)
