"""Flag parsing shared by the commands: each bad value becomes one KvplanError line."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

from kvplan.core.budget import DEFAULT_MAX_NUM_BATCHED_TOKENS, DEFAULT_MAX_NUM_SEQS
from kvplan.core.capacity import Deployment, FitResult, Plan
from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError  # noqa: F401  (re-exported for commands)
from kvplan.sources.deployment import (  # noqa: F401  (MAX_*, positive ... used by commands)
    MAX_BATCH,
    MAX_CTX,
    build_deployment,
    exact_weights,
    kv_dtype_for,
    positive,
    weight_dtype_for,
)
from kvplan.sources.gpus import load_gpus
from kvplan.sources.resolve import ResolvedModel, resolve_model

DEFAULT_CTX = 4096


def load_model(
    name: str, *, revision: str | None = None, token: str | None = None, refresh: bool = False
) -> ResolvedModel:
    return resolve_model(name, revision=revision, token=token, refresh=refresh)


def default_ctx(spec: ModelSpec) -> int:
    return spec.max_position_embeddings or DEFAULT_CTX


# ---- deployment flags shared by fit / pick-g / roofline ---------------------------------
GPU_OPT = typer.Option(
    ...,
    "--gpu",
    help="GPU name, e.g. h100-sxm, a100-80gb, l40s, rtx-4090, mi300x (see `kvplan gpus`).",
)
GPU_FILE_OPT = typer.Option(
    None, "--gpu-file", help="YAML file adding or overriding GPU entries [env: KVPLAN_GPU_FILE]."
)
TP_OPT = typer.Option(1, "--tp", help="Tensor-parallel GPUs (weights and KV heads split).")
PP_OPT = typer.Option(1, "--pp", help="Pipeline-parallel stages (layers split).")
ENGINE_OPT = typer.Option("vllm", "--engine", help="Budget semantics: vllm, sglang, trtllm, none.")
VLLM_UTIL_OPT = typer.Option(
    None,
    "--gpu-memory-utilization",
    help="vLLM: fraction of total memory for weights+activations+KV [default 0.90].",
)
SGLANG_FRAC_OPT = typer.Option(
    None,
    "--mem-fraction-static",
    help="SGLang: fraction of total memory for weights+KV [default by TP: 0.88 ... 0.79].",
)
TRT_FRAC_OPT = typer.Option(
    None,
    "--free-gpu-memory-fraction",
    help="TensorRT-LLM: fraction of the memory free after weights [default 0.90].",
)
KV_MEMORY_OPT = typer.Option(
    None, "--kv-memory", help="KV budget per GPU, e.g. 40GiB (skips the engine budget)."
)
ACT_OPT = typer.Option(
    None,
    "--activation-reserve",
    help="Peak activation memory per GPU, "
    "e.g. 2GiB [default: estimated like vLLM's profiling run].",
)
OVERHEAD_OPT = typer.Option(
    None,
    "--overhead",
    help="Non-torch runtime memory per GPU, e.g. 0.5GiB [default 0.25 GiB, 2.1 GiB with TP/PP].",
)
BLOCK_OPT = typer.Option(16, "--block-size", help="Paged-KV block size in tokens.")
KV_DTYPE_OPT = typer.Option(
    "auto", "--kv-dtype", help="KV-cache dtype: auto, fp16, bf16, fp8, int8, int4."
)
WEIGHT_DTYPE_OPT = typer.Option(
    None,
    "--weight-dtype",
    help="Weights dtype [default: the checkpoint's]: fp16, bf16, fp8, int8, int4, mxfp4.",
)
REVISION_OPT = typer.Option(None, "--revision", help="Hub revision (branch, tag or commit).")
TOKEN_OPT = typer.Option(None, "--token", help="Hub token [default: HF_TOKEN or the saved login].")
REFRESH_OPT = typer.Option(False, "--refresh", help="Skip the catalog; ask the Hub.")
JSON_OPT = typer.Option(False, "--json", help="Print one JSON object.")
BATCHED_TOKENS_OPT = typer.Option(
    DEFAULT_MAX_NUM_BATCHED_TOKENS,
    "--max-num-batched-tokens",
    help="Engine's tokens per forward pass (sizes the "
    "activation estimate; vLLM V0 used max_model_len).",
)
MAX_SEQS_OPT = typer.Option(
    DEFAULT_MAX_NUM_SEQS,
    "--max-num-seqs",
    help="Engine's maximum sequences per step (sizes the sampler estimate).",
)


def fit_latency(p: Plan, result: FitResult) -> dict[str, object] | None:
    """Decode latency at the answer's operating point (lazy: only fit needs the roofline)."""
    from kvplan.core.roofline import fit_operating_point

    return fit_operating_point(p, result)


def latency_lines(extra: dict[str, object] | None) -> list[str]:
    line = extra.get("summary") if extra else None
    return [str(line)] if line else []


def check_gpu(name: str, gpu_file: str | None) -> None:
    """Fail fast on an unknown GPU before any model lookup (which may touch the network)."""
    load_gpus(gpu_file).get(name)


# ---- one bundle of deployment flags for fit / pick-g / roofline -------------------------
_DEPLOYMENT_FLAGS: tuple[tuple[str, object, object], ...] = (
    ("gpu", str, GPU_OPT),
    ("tp", int, TP_OPT),
    ("pp", int, PP_OPT),
    ("engine", str, ENGINE_OPT),
    ("gpu_memory_utilization", float | None, VLLM_UTIL_OPT),
    ("mem_fraction_static", float | None, SGLANG_FRAC_OPT),
    ("free_gpu_memory_fraction", float | None, TRT_FRAC_OPT),
    ("kv_memory", str | None, KV_MEMORY_OPT),
    ("activation_reserve", str | None, ACT_OPT),
    ("overhead", str | None, OVERHEAD_OPT),
    ("block_size", int, BLOCK_OPT),
    ("max_num_batched_tokens", int, BATCHED_TOKENS_OPT),
    ("max_num_seqs", int, MAX_SEQS_OPT),
    ("kv_dtype", str, KV_DTYPE_OPT),
    ("weight_dtype", str | None, WEIGHT_DTYPE_OPT),
    ("gpu_file", str | None, GPU_FILE_OPT),
    ("revision", str | None, REVISION_OPT),
    ("token", str | None, TOKEN_OPT),
    ("refresh", bool, REFRESH_OPT),
    ("as_json", bool, JSON_OPT),
)


@dataclass(frozen=True)
class DeploymentFlags:
    """The flags every deployment command shares, parsed once."""

    gpu: str
    tp: int
    pp: int
    engine: str
    gpu_memory_utilization: float | None
    mem_fraction_static: float | None
    free_gpu_memory_fraction: float | None
    kv_memory: str | None
    activation_reserve: str | None
    overhead: str | None
    block_size: int
    max_num_batched_tokens: int
    max_num_seqs: int
    kv_dtype: str
    weight_dtype: str | None
    gpu_file: str | None
    revision: str | None
    token: str | None
    refresh: bool
    as_json: bool

    def load(self, model: str) -> ResolvedModel:
        check_gpu(self.gpu, self.gpu_file)  # fail fast, before any network lookup
        return load_model(model, revision=self.revision, token=self.token, refresh=self.refresh)

    def deployment(self, spec: ModelSpec, *, weights_override: int | None = None) -> Deployment:
        return build_deployment(
            spec,
            gpu=self.gpu,
            gpu_file=self.gpu_file,
            tp=self.tp,
            pp=self.pp,
            engine=self.engine,
            gpu_memory_utilization=self.gpu_memory_utilization,
            mem_fraction_static=self.mem_fraction_static,
            free_gpu_memory_fraction=self.free_gpu_memory_fraction,
            kv_memory=self.kv_memory,
            activation_reserve=self.activation_reserve,
            overhead=self.overhead,
            block_size=self.block_size,
            kv_dtype=self.kv_dtype,
            weight_dtype=self.weight_dtype,
            weights_override=weights_override,
            max_num_batched_tokens=self.max_num_batched_tokens,
            max_num_seqs=self.max_num_seqs,
        )


def with_deployment_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Add the shared deployment options to a typer command; it receives `flags=`."""
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "flags"]
    extra = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation
        )
        for name, annotation, option in _DEPLOYMENT_FLAGS
    ]
    names = [name for name, _, _ in _DEPLOYMENT_FLAGS]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        flags = DeploymentFlags(**{name: kwargs.pop(name) for name in names})
        command(flags=flags, **kwargs)

    wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
    return wrapper
