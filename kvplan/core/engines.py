"""One table of serving-engine rules: a new engine (or release line) is one `EngineRules` row.

Each row says, for one engine, everything kvplan needs that differs between engines:

  knob                 the deployment setting holding its memory fraction, and its default
                       (a function of TP: SGLang's default depends on it);
  kv_heads_per_gpu     how TP splits G KV heads (vLLM: max(1, G // tp), and G and TP must
                       divide one another; others: ceil(G / tp));
  budget               how the KV budget per GPU is derived from the GPU's memory, the
                       weights, the activation peak and the non-torch memory;
  max_num_seqs /       the scheduler limits the engine starts with (they size the
  max_num_batched_tokens  activation estimate);
  followed             which releases the row describes, with the sources of its constants.

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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from math import ceil

from kvplan.errors import KvplanError


class Engine(str, Enum):
    VLLM = "vllm"
    SGLANG = "sglang"
    TRTLLM = "trtllm"
    NONE = "none"


class TpError(KvplanError):
    """A TP size the engine refuses for this model; `setting` is always `tp`."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, setting="tp")


@dataclass(frozen=True)
class BudgetTerms:
    """What one engine's formula makes of the memory terms (bytes, per GPU)."""

    granted: int  # what the engine's fraction grants (or the whole memory)
    kv: int  # the KV budget
    activations: int  # as the engine counts them (0 where its fraction excludes them)
    overhead: int
    formula: str


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# ---- KV heads per GPU under TP ---------------------------------------------------------
def _split_or_replicate(g: int, tp: int) -> int:
    """vLLM: each rank holds max(1, G // tp) heads; G and TP must divide one another
    (vllm/config/model.py get_num_kv_heads; vllm/model_executor/layers/linear.py
    QKVParallelLinear replicates KV heads when tp > G)."""
    if g % tp and tp % g:
        raise TpError(
            f"--tp {tp} does not fit {g} KV heads: vLLM needs the KV heads divisible by "
            "TP or TP divisible by the KV heads",
            hint=f"TP sizes that work with {g} KV heads: "
            f"{', '.join(map(str, divisors(g)))} or multiples of {g}",
        )
    return max(1, g // tp)


def _ceil_split(g: int, tp: int) -> int:
    """SGLang / TensorRT-LLM / none: ceil(G / tp) heads per rank (replicated when tp > G)."""
    return ceil(g / tp)


# ---- budget formulas -------------------------------------------------------------------
def _vllm_budget(
    total: int, weights: int, activations: int, overhead: int, fraction: float | None
) -> BudgetTerms:
    granted = int(total * _need(fraction))
    return BudgetTerms(
        granted=granted,
        kv=granted - weights - activations - overhead,
        activations=activations,
        overhead=overhead,
        formula="kv = total x gpu_memory_utilization - weights - activations - non-torch",
    )


def _sglang_budget(
    total: int, weights: int, activations: int, overhead: int, fraction: float | None
) -> BudgetTerms:
    granted = int(total * _need(fraction))
    return BudgetTerms(
        granted=granted,
        kv=granted - weights,
        activations=0,
        overhead=0,
        formula="kv = total x mem_fraction_static - weights",
    )


def _trtllm_budget(
    total: int, weights: int, activations: int, overhead: int, fraction: float | None
) -> BudgetTerms:
    granted = int((total - weights - activations - overhead) * _need(fraction))
    return BudgetTerms(
        granted=granted,
        kv=granted,
        activations=activations,
        overhead=overhead,
        formula="kv = free_gpu_memory_fraction x (total - weights - activations - runtime)",
    )


def _plain_budget(
    total: int, weights: int, activations: int, overhead: int, fraction: float | None
) -> BudgetTerms:
    return BudgetTerms(
        granted=total,
        kv=total - weights - activations - overhead,
        activations=activations,
        overhead=overhead,
        formula="kv = total - weights - activations - overhead",
    )


def _need(fraction: float | None) -> float:
    if fraction is None:  # every engine with a formula that uses one also has a default
        raise ValueError("this engine's budget needs a memory fraction")
    return fraction


# SGLang v0.4 server_args defaults by tensor-parallel size: (min TP, fraction).
SGLANG_DEFAULT_FRACTIONS = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))


def _sglang_default_fraction(tp: int) -> float:
    return next(f for min_tp, f in SGLANG_DEFAULT_FRACTIONS if tp >= min_tp)


BudgetFormula = Callable[[int, int, int, int, "float | None"], BudgetTerms]


@dataclass(frozen=True)
class EngineRules:
    engine: Engine
    label: str  # how the engine names itself
    knob: str | None  # the deployment setting holding its memory fraction
    default_fraction: Callable[[int], float] | None  # TP -> default fraction
    kv_heads_per_gpu: Callable[[int, int], int]  # (G, tp) -> heads per rank, or TpError
    budget: BudgetFormula
    max_num_seqs: int  # scheduler defaults: size the activation estimate
    max_num_batched_tokens: int
    followed: str  # the releases whose rules these are, and where the constants come from

    def fraction(self, tp: int) -> float | None:
        return self.default_fraction(tp) if self.default_fraction else None


ENGINES: dict[Engine, EngineRules] = {
    Engine.VLLM: EngineRules(
        engine=Engine.VLLM,
        label="vLLM",
        knob="gpu_memory_utilization",
        default_fraction=lambda _tp: 0.90,  # vllm/config/cache.py gpu_memory_utilization
        kv_heads_per_gpu=_split_or_replicate,
        budget=_vllm_budget,
        max_num_seqs=256,  # vllm/config/scheduler.py DEFAULT_MAX_NUM_SEQS
        max_num_batched_tokens=8192,  # V1 chunked-prefill default for `vllm serve`
        followed="vLLM V1 engine, v0.10-v0.19",
    ),
    Engine.SGLANG: EngineRules(
        engine=Engine.SGLANG,
        label="SGLang",
        knob="mem_fraction_static",
        default_fraction=_sglang_default_fraction,
        kv_heads_per_gpu=_ceil_split,
        budget=_sglang_budget,
        max_num_seqs=256,
        max_num_batched_tokens=8192,
        followed="SGLang v0.4 (python/sglang/srt/server_args.py)",
    ),
    Engine.TRTLLM: EngineRules(
        engine=Engine.TRTLLM,
        label="TensorRT-LLM",
        knob="free_gpu_memory_fraction",
        default_fraction=lambda _tp: 0.90,  # KvCacheConfig.free_gpu_memory_fraction
        kv_heads_per_gpu=_ceil_split,
        budget=_trtllm_budget,
        max_num_seqs=256,
        max_num_batched_tokens=8192,
        followed="TensorRT-LLM (KvCacheConfig.free_gpu_memory_fraction)",
    ),
    Engine.NONE: EngineRules(
        engine=Engine.NONE,
        label="no engine",
        knob=None,
        default_fraction=None,
        kv_heads_per_gpu=_ceil_split,
        budget=_plain_budget,
        max_num_seqs=256,
        max_num_batched_tokens=8192,
        followed="plain arithmetic: total - weights - activations - overhead",
    ),
}


def rules(engine: Engine) -> EngineRules:
    return ENGINES[engine]


def engine_named(name: str) -> Engine:
    """The engine a user names (any case); an unknown name is an input error."""
    try:
        return Engine(name.lower())
    except ValueError:
        names = list(Engine)
        raise KvplanError(
            f"unknown engine {name!r}",
            hint=f"choose {', '.join(e.value for e in names[:-1])} or {names[-1].value}",
            setting="engine",
        ) from None
