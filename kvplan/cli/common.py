"""Flag parsing shared by the commands: each bad value becomes one KvplanError line."""

from __future__ import annotations

import typer

from kvplan.core.budget import DEFAULT_MAX_NUM_BATCHED_TOKENS, DEFAULT_MAX_NUM_SEQS
from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError  # noqa: F401  (re-exported for commands)
from kvplan.sources.deployment import (  # noqa: F401  (re-exported: moved for policies)
    MAX_BATCH,
    MAX_CTX,
    build_deployment,
    engine_for,
    exact_weights,
    kv_dtype_for,
    positive,
    size_or_none,
    weight_dtype_for,
)
from kvplan.sources.gpus import load_gpus
from kvplan.sources.resolve import ResolvedModel, resolve_model

DEFAULT_CTX = 4096


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
