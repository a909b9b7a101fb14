"""The KV-cache memory budget per GPU, with each serving engine's own semantics.

  vLLM (V1 engine, v0.10-v0.19):   kv = total * gpu_memory_utilization
                                        - weights - peak activations - non-torch memory
      default gpu_memory_utilization 0.90 (vllm/config/cache.py); `total` is what CUDA
      reports (torch.cuda.mem_get_info), e.g. 79.19 GiB on an H100 SXM.
  SGLang (v0.4):                   kv = total * mem_fraction_static - weights
      activations live outside the static fraction; the default fraction depends on TP
      (server_args.py: 0.88 at TP1, 0.87 TP2, 0.85 TP4, 0.81 TP8, 0.79 TP16+).
  TensorRT-LLM:                    kv = free_gpu_memory_fraction * (total - weights
                                        - activations - runtime)
      default free_gpu_memory_fraction 0.90 of the memory free after the engine loads.
  none:                            kv = total - weights - activations - overhead.
`--kv-memory` replaces all of this with a fixed budget (vLLM's kv_cache_memory_bytes).

Peak activations are estimated the way vLLM's profiling run produces them: one forward
pass of max_num_batched_tokens tokens (MLP intermediate buffers dominate) plus the
sampler's logits work for max_num_seqs sequences. The two coefficients below were fitted
to vLLM 0.19 logs (Llama-3.1-8B: 1.89 GiB, CodeLlama-7B: 0.77 GiB, Qwen2.5-7B: 2.21 GiB,
Llama-3.3-70B TP2: 1.96 GiB; tests/data/vllm_kv_logs.yaml) and land within ~5% of each.
"""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, ConfigDict

from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError
from kvplan.units import GiB


class Engine(str, Enum):
    VLLM = "vllm"
    SGLANG = "sglang"
    TRTLLM = "trtllm"
    NONE = "none"


ENGINE_KNOB = {
    Engine.VLLM: "--gpu-memory-utilization",
    Engine.SGLANG: "--mem-fraction-static",
    Engine.TRTLLM: "--free-gpu-memory-fraction",
    Engine.NONE: None,
}
VLLM_DEFAULT_UTILIZATION = 0.90
VLLM_VERSION_FOLLOWED = "vLLM V1 engine, v0.10-v0.19"
TRTLLM_DEFAULT_FREE_FRACTION = 0.90
# SGLang v0.4 server_args defaults by tensor-parallel size: (min TP, fraction).
SGLANG_DEFAULT_FRACTIONS = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))

DEFAULT_MAX_NUM_BATCHED_TOKENS = 8192  # vLLM V1 chunked-prefill default for serving
DEFAULT_MAX_NUM_SEQS = 256
ACTIVATION_BYTES_PER_TOKEN_PER_FFN_UNIT = 5.25  # fitted: gate/up outputs + act, bf16
SAMPLER_BYTES_PER_SEQ_PER_VOCAB = 43  # fitted: fp32 logits, probs, sort buffers
NON_TORCH_BYTES_SINGLE_GPU = int(0.25 * GiB)  # CUDA context etc. (vLLM 0.19 logs)
NON_TORCH_BYTES_MULTI_GPU = int(2.1 * GiB)  # + NCCL / custom all-reduce buffers at TP>1


class Budget(BaseModel):
    """Every term of the KV budget for one GPU, in bytes."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    engine: Engine
    knob: str | None
    fraction: float | None
    total_memory: int  # as CUDA reports it
    engine_memory: int  # what the engine's fraction grants (total * fraction, or similar)
    weights: int
    activations: int
    overhead: int
    kv_budget: int
    direct: bool = False  # --kv-memory given
    formula: str


def default_fraction(engine: Engine, tp: int) -> float | None:
    if engine is Engine.VLLM:
        return VLLM_DEFAULT_UTILIZATION
    if engine is Engine.TRTLLM:
        return TRTLLM_DEFAULT_FREE_FRACTION
    if engine is Engine.SGLANG:
        return next(f for min_tp, f in SGLANG_DEFAULT_FRACTIONS if tp >= min_tp)
    return None


def ffn_width(spec: ModelSpec) -> int:
    """Intermediate width one token's MLP materializes (MoE: top-k experts + shared)."""
    if spec.moe is not None and any(layer.moe for layer in spec.layers):
        moe = spec.moe
        routed = moe.experts_per_token * moe.expert_intermediate
        return max(routed + moe.shared_experts * moe.shared_intermediate, spec.intermediate_size)
    return spec.intermediate_size or 4 * spec.hidden_size


def estimate_activations(
    spec: ModelSpec,
    *,
    tp: int,
    max_num_batched_tokens: int = DEFAULT_MAX_NUM_BATCHED_TOKENS,
    max_num_seqs: int = DEFAULT_MAX_NUM_SEQS,
) -> int:
    """Peak activation memory of vLLM's profiling pass, per GPU (see module docstring)."""
    mlp = max_num_batched_tokens * ffn_width(spec) / tp * ACTIVATION_BYTES_PER_TOKEN_PER_FFN_UNIT
    sampler = max_num_seqs * spec.vocab_size * SAMPLER_BYTES_PER_SEQ_PER_VOCAB
    return int(mlp + sampler)


def estimate_overhead(tp: int, pp: int) -> int:
    return NON_TORCH_BYTES_MULTI_GPU if tp * pp > 1 else NON_TORCH_BYTES_SINGLE_GPU


def compute_budget(
    *,
    engine: Engine,
    total_memory: int,
    weights: int,
    activations: int,
    overhead: int,
    fraction: float | None,
    kv_memory: int | None,
) -> Budget:
    knob = ENGINE_KNOB[engine]
    if fraction is not None and not 0 < fraction <= 1:
        raise KvplanError(f"{knob or 'memory fraction'} must be in (0, 1], got {fraction}")
    if kv_memory is not None:
        return Budget(
            engine=engine,
            knob=knob,
            fraction=fraction,
            total_memory=total_memory,
            engine_memory=kv_memory,
            weights=weights,
            activations=0,
            overhead=0,
            kv_budget=kv_memory,
            direct=True,
            formula="kv = --kv-memory",
        )
    if engine is Engine.VLLM:
        assert fraction is not None
        granted = int(total_memory * fraction)
        kv = granted - weights - activations - overhead
        formula = "kv = total x gpu_memory_utilization - weights - activations - non-torch"
    elif engine is Engine.SGLANG:
        assert fraction is not None
        granted = int(total_memory * fraction)
        kv = granted - weights
        formula = "kv = total x mem_fraction_static - weights"
        activations = overhead = 0
    elif engine is Engine.TRTLLM:
        assert fraction is not None
        free = total_memory - weights - activations - overhead
        granted = int(free * fraction)
        kv = granted
        formula = "kv = free_gpu_memory_fraction x (total - weights - activations - runtime)"
    else:
        granted = total_memory
        kv = total_memory - weights - activations - overhead
        formula = "kv = total - weights - activations - overhead"
    return Budget(
        engine=engine,
        knob=knob,
        fraction=fraction,
        total_memory=total_memory,
        engine_memory=granted,
        weights=weights,
        activations=activations,
        overhead=overhead,
        kv_budget=kv,
        formula=formula,
    )
