"""The KV-cache memory budget per GPU, with each serving engine's own semantics.

The formulas themselves are rows of the engine table (kvplan.core.engines); this module
estimates the terms they combine and keeps them in one typed `Budget`.
`--kv-memory` replaces all of it with a fixed budget (vLLM's kv_cache_memory_bytes).

Peak activations are estimated the way vLLM's profiling run produces them: one forward
pass of max_num_batched_tokens tokens (MLP intermediate buffers dominate) plus the
sampler's logits work for max_num_seqs sequences. The two coefficients below were fitted
to vLLM 0.19 logs (Llama-3.1-8B: 1.89 GiB, CodeLlama-7B: 0.77 GiB, Qwen2.5-7B: 2.21 GiB,
Llama-3.3-70B TP2: 1.96 GiB; tests/data/vllm_kv_logs.yaml) and land within ~5% of each.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kvplan.core.deployment import flag_name
from kvplan.core.engines import ENGINES, Engine
from kvplan.core.geometry import ModelSpec
from kvplan.units import GiB

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
    kv_budget: int  # never negative: see `shortfall`
    shortfall: int = 0  # bytes missing when the weights and reserves exceed the grant
    direct: bool = False  # --kv-memory given
    formula: str


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
    max_num_batched_tokens: int,
    max_num_seqs: int,
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
    """The engine's formula (a row of kvplan.core.engines) applied to the terms. A budget
    below zero is reported as 0 with the shortfall: the weights do not fit."""
    rules = ENGINES[engine]
    knob = flag_name(rules.knob) if rules.knob else None
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
    terms = rules.budget(total_memory, weights, activations, overhead, fraction)
    return Budget(
        engine=engine,
        knob=knob,
        fraction=fraction,
        total_memory=total_memory,
        engine_memory=terms.granted,
        weights=weights,
        activations=terms.activations,
        overhead=terms.overhead,
        kv_budget=max(0, terms.kv),
        shortfall=max(0, -terms.kv),
        formula=terms.formula,
    )
