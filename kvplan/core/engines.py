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
  SGLang (0.3-0.5):                kv = (total - in use before load) * mem_fraction_static
                                        - weights
      "in use before load": the context, + NCCL / custom all-reduce at TP > 1 on an NVLink
      or Infinity Fabric baseboard (`Preload`); weights as SGLang measures them (+ a fitted
      0.19 GiB weight-load overhead);
      activations live outside the static fraction; the default fraction is a release
      rule (TP table to 0.4.5; GPU memory from 0.4.6; chunked prefill and CUDA-graph batch
      from 0.5.3): one profile per rule, each citing its server_args.py lines.
  TensorRT-LLM (PyTorch flow):     kv = free_gpu_memory_fraction * (total - weights
                                        - activations - runtime)
      KvCacheCreator._cal_max_memory: (total - peak + temporary KV) x fraction, where the
      peak is measured over a dry run of dummy context requests that together hold
      max_num_tokens tokens; default fraction 0.90 of that free memory; `--kv-memory`
      (kv_cache_config.max_gpu_total_bytes) caps the result instead of replacing it.
  none:                            kv = total - weights - activations - overhead.

Each engine also has RELEASE PROFILES (`EngineProfile`): the terms that change between
releases and platforms (default scheduler limits by device, how the profiling pass sizes
activations, non-torch memory by TP/PP and CUDA vs ROCm, whether CUDA-graph memory is
subtracted up front, what the "KV cache size" log line means, whether a null block is held).
`--engine-version` picks one (default: the newest modelled); every output names it.
docs/engines.md lists every constant with its source; constants marked "fitted" were fitted
on the TRAINING split of tests/data/engine_logs.yaml + vllm_kv_logs.yaml only
(benchmarks/engine_logs_vs_kvplan.py reports their held-out error).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from math import ceil
from typing import TYPE_CHECKING, Any

from kvplan.core.frozen import dataclass
from kvplan.core.geometry import IndexerKind
from kvplan.errors import KvplanError

if TYPE_CHECKING:  # core.deployment imports this module
    from kvplan.core.deployment import Deployment
    from kvplan.core.gpu import GpuSpec


class Platform(str, Enum):
    """The accelerator software stack; decided by the GPU's vendor (AMD -> ROCm)."""

    CUDA = "cuda"
    ROCM = "rocm"


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
    cudagraph: int = 0
    preload: int = 0


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
    total: int,
    weights: int,
    activations: int,
    overhead: int,
    fraction: float | None,
    cudagraph: int = 0,
    preload: int = 0,
) -> BudgetTerms:
    """requested = total x util (vllm/v1/worker/gpu_worker.py determine_available_memory);
    available = requested - (weights + torch peak + non-torch) - CUDA graphs (>= 0.20.0)."""
    granted = int(total * _need(fraction))
    return BudgetTerms(
        granted=granted,
        kv=granted - weights - activations - overhead - cudagraph,
        activations=activations,
        overhead=overhead,
        cudagraph=cudagraph,
        formula="kv = total x gpu_memory_utilization - weights - activations - non-torch"
        + (" - CUDA graphs" if cudagraph else ""),
    )


def _sglang_budget(
    total: int,
    weights: int,
    activations: int,
    overhead: int,
    fraction: float | None,
    cudagraph: int = 0,
    preload: int = 0,
) -> BudgetTerms:
    """rest = available_after_load - total_before_load x (1 - mem_fraction_static)
    (model_runner profile_max_num_token), i.e. (total - pre-load use) x fraction - weights:
    activations and CUDA graphs live in the (1 - fraction) share."""
    granted = int((total - preload) * _need(fraction))
    return BudgetTerms(
        granted=granted,
        kv=granted - weights,
        activations=0,
        overhead=0,
        preload=preload,
        formula="kv = (total - in use before load) x mem_fraction_static - weights",
    )


def _trtllm_budget(
    total: int,
    weights: int,
    activations: int,
    overhead: int,
    fraction: float | None,
    cudagraph: int = 0,
    preload: int = 0,
) -> BudgetTerms:
    """available_kv_mem = (total_gpu_memory - peak_memory + allocated_bytes) x fraction
    (TensorRT-LLM@0004396 tensorrt_llm/_torch/pyexecutor/_util.py
    KvCacheCreator._cal_max_memory), where peak_memory = torch peak of the dry run
    (weights + temporary KV + activations) + memory used outside torch, and allocated_bytes
    (the temporary KV) is added back: kv = fraction x (total - weights - activations -
    runtime)."""
    granted = int((total - weights - activations - overhead) * _need(fraction))
    return BudgetTerms(
        granted=granted,
        kv=granted,
        activations=activations,
        overhead=overhead,
        formula="kv = free_gpu_memory_fraction x (total - weights - activations - runtime)",
    )


def _plain_budget(
    total: int,
    weights: int,
    activations: int,
    overhead: int,
    fraction: float | None,
    cudagraph: int = 0,
    preload: int = 0,
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


@dataclass(frozen=True)
class FractionContext:
    """What an engine's default memory fraction may depend on. SGLang's depends on the
    release: TP alone (<= 0.4.5), the GPU's memory (0.4.6+) and the chunked-prefill size
    and CUDA-graph batch (0.5.3+). `smi_mib` is nvidia-smi's memory.total in MiB, which
    SGLang reads (utils.get_nvgpu_memory_capacity)."""

    tp: int = 1
    pp: int = 1
    smi_mib: float = 81559.0
    chunked_prefill: int | None = None  # the user's chunked_prefill_size, if set
    speculative: bool = False


# SGLang server_args defaults by tensor-parallel size: (min TP, fraction).
# sgl-project/sglang@v0.4.3.post4:python/sglang/srt/server_args.py:204-214 (0.4.0-0.4.5)
SGLANG_DEFAULT_FRACTIONS = ((16, 0.79), (8, 0.81), (4, 0.85), (2, 0.87), (1, 0.88))
# sgl-project/sglang@v0.3.6.post3:python/sglang/srt/server_args.py:155-165 (0.3.0 had 0.83
# at TP 8: sgl-project/sglang@v0.3.0:python/sglang/srt/server_args.py:111-119)
SGLANG_03_DEFAULT_FRACTIONS = ((16, 0.79), (8, 0.82), (4, 0.85), (2, 0.87), (1, 0.88))


def _by_parallel(table: tuple[tuple[int, float], ...], size: int) -> float:
    return next(f for min_size, f in table if size >= min_size)


def _sglang_default_fraction(tp: int) -> float:
    return _by_parallel(SGLANG_DEFAULT_FRACTIONS, tp)


def _sglang_03_fraction(c: FractionContext) -> float:
    return _by_parallel(SGLANG_03_DEFAULT_FRACTIONS, c.tp)


def _sglang_04_fraction(c: FractionContext) -> float:
    return _by_parallel(SGLANG_DEFAULT_FRACTIONS, c.tp)


def _sglang_046_fraction(c: FractionContext) -> float:
    """sgl-project/sglang@v0.4.6.post5:python/sglang/srt/server_args.py:247-268: the TP x PP
    table on GPUs of <= 81920 MiB, else 0.88; above 96 GiB the fraction grows to
    min(f + 48 GiB x (1 - f) / mem, (mem - 18 GiB) / mem)."""
    mem = c.smi_mib
    f = _by_parallel(SGLANG_DEFAULT_FRACTIONS, c.tp * c.pp) if mem <= 81920 else 0.88
    if mem > 96 * 1024:
        f = min(f + 48 * 1024 * (1 - f) / mem, (mem - 1024 * 18) / mem)
    return f


def _sglang_048_fraction(c: FractionContext) -> float:
    """sgl-project/sglang@v0.4.10.post2:python/sglang/srt/server_args.py:310-349 (from 0.4.8):
    f = round((mem - reserved) / mem, 3), reserved (MiB) by GPU memory with p = TP x PP:
    < 35 GiB (2.8 + p/10) GiB, < 90 GiB (9.5 + p/2) GiB, < 160 GiB (12 + p/2) GiB, else
    32 GiB; + 2 GiB with speculative decoding (DP attention's + 4 GiB is not modelled)."""
    mem, p = c.smi_mib, c.tp * c.pp
    if mem < 35 * 1024:
        reserved = (2.8 + p / 10) * 1024
    elif mem < 90 * 1024:
        reserved = (9.5 + p / 2) * 1024
    elif mem < 160 * 1024:
        reserved = (12 + p / 2) * 1024
    else:
        reserved = 32 * 1024
    if c.speculative:
        reserved += 2 * 1024
    return round((mem - reserved) / mem, 3)


def _sglang_05_chunk_and_graph_bs(mem: float, tp: int) -> tuple[int, int]:
    """Default chunked_prefill_size and cuda_graph_max_bs by nvidia-smi memory (MiB) and TP:
    sgl-project/sglang@v0.5.8:python/sglang/srt/server_args.py:904-963."""
    if mem < 20 * 1024:
        return 2048, 8
    if mem < 35 * 1024:
        return 2048, 24 if tp < 4 else 80
    if mem < 60 * 1024:
        return 4096, 32 if tp < 4 else 160
    if mem < 160 * 1024:
        return 8192, 256 if tp < 4 else 512
    return 16384, 512


def _sglang_05_fraction(c: FractionContext) -> float:
    """sgl-project/sglang@v0.5.8:python/sglang/srt/server_args.py:988-1029 (from 0.5.3):
    reserved (MiB) = 512 + max(chunked_prefill, 2048) x 1.5 + cuda_graph_max_bs x 2
    + TP x PP / 8 x 1024, at least 10 GiB on GPUs > 60 GiB, + 2 GiB with EAGLE-style
    speculative decoding; f = round((mem - reserved) / mem, 3). DP attention, piecewise
    CUDA graphs (off by default) and the multimodal adjustment are not modelled."""
    mem = c.smi_mib
    chunk, graph_bs = _sglang_05_chunk_and_graph_bs(mem, c.tp)
    if c.chunked_prefill:
        chunk = c.chunked_prefill
    reserved = 512 + max(chunk, 2048) * 1.5 + graph_bs * 2 + c.tp * c.pp / 8 * 1024
    if mem > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    if c.speculative:
        reserved += 2 * 1024
    return round((mem - reserved) / mem, 3)


BudgetFormula = Callable[..., BudgetTerms]

GiB = 1 << 30


# ---- release profiles --------------------------------------------------------------------
def parse_version(text: str) -> tuple[int, ...]:
    """'0.19.0' / '0.26.1rc1.dev3' / 'v0.4.3.post4' -> (0, 19, 0) ...: the leading numbers."""
    head = text.strip().lower().lstrip("v")
    parts: list[int] = []
    for piece in head.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) < len(piece):
            break
    if not parts:
        raise KvplanError(f"cannot read an engine version from {text!r}", setting="engine_version")
    return tuple(parts)


# vLLM 0.22.0 - 0.28.x run some models on Model Runner V2 by default, whose
# `profile_cudagraph_memory` returns 0 ("It is TBD whether we keep this API or not",
# vllm/v1/worker/gpu/model_runner.py in the 0.21.0 - 0.28.0 wheels): for them nothing is
# subtracted for CUDA graphs. `VllmConfig._is_default_v2_model_runner_model` by release
# (wheels, vllm/config/vllm.py): 0.22.x listed architectures {Qwen3ForCausalLM} (:69, :518),
# not MoE, not quantized; 0.23.x {Llama, Mistral, Qwen3}ForCausalLM (:69, :544), same
# conditions; 0.24.x any listed architecture (:68, :550); 0.25.x - 0.26.x not hybrid and
# (listed or not MoE) (0.25.1 :68, :557; 0.26.0 :68, :605); 0.27.x - 0.28.x listed or not MoE,
# hybrid only if listed (0.27.1 :69, :637; 0.28.0 :69, :691). From 0.29.0 every model
# defaults to V2 and V2 estimates its graphs (vllm/v1/worker/gpu/cudagraph_utils.py:718).
# Lists by config model_type: kvplan keeps a checkpoint's model_type, not its architecture
# (model_type -> architecture as vLLM's registry maps them). Not modelled: V2's unsupported
# features that fall back to V1, and VLLM_USE_V2_MODEL_RUNNER set by hand.
_MRV2_LISTED: tuple[tuple[tuple[int, ...], frozenset[str]], ...] = (
    ((0, 22, 0), frozenset({"qwen3"})),
    ((0, 23, 0), frozenset({"llama", "mistral", "qwen3"})),
    (
        (0, 24, 0),
        frozenset({"qwen3", "deepseek_v2", "qwen2_moe", "granitemoe", "llama", "mistral"}),
    ),
    ((0, 25, 0), frozenset({"deepseek_v2", "qwen2_moe", "granitemoe"})),
    ((0, 29, 0), frozenset()),  # every model on V2, which estimates its graphs
)


def mrv2_skips_graph_estimate(
    release: tuple[int, ...], family: str, moe: bool, hybrid: bool, quantized: bool
) -> bool:
    """Whether vLLM `release` runs this model on Model Runner V2 by default while V2 still
    returned 0 for the CUDA-graph estimate (see _MRV2_LISTED's sources)."""
    release = release + (0,) * (3 - len(release))
    if not (0, 22, 0) <= release < (0, 29, 0):
        return False
    listed = frozenset[str]()
    for first, families in _MRV2_LISTED:
        if release >= first:
            listed = families
    is_listed = family in listed
    if release < (0, 24, 0):
        return is_listed and not moe and not quantized
    if release < (0, 25, 0):
        return is_listed
    if hybrid and (release < (0, 27, 0) or not is_listed):
        return False
    return is_listed or not moe


@dataclass(frozen=True)
class SchedulerDefaults:
    """max_num_seqs / max_num_batched_tokens an engine picks when the user sets neither."""

    max_num_seqs: int
    max_num_batched_tokens: int | None  # None: the profiling pass is max(max_model_len, 2048)
    # V0: chunked prefill switches itself on above 32K tokens of max_model_len (CUDA, no
    # sliding window, not multimodal) and then profiles this many tokens (None: never)
    long_context_chunked_tokens: int | None = None


ENTRY_POINTS = ("serve", "llm")


def _vllm_v0_scheduler(_memory: int, _name: str, _entry: str) -> SchedulerDefaults:
    # vllm/config.py SchedulerConfig (0.6.4): max_num_seqs 256; without chunked prefill
    # max_num_batched_tokens = max(max_model_len, 2048) (_DEFAULT_MAX_NUM_BATCHED_TOKENS).
    # With max_model_len > 32768 V0 turns chunked prefill on by itself on CUDA unless the
    # model has a sliding window or is multimodal (vllm 0.7.3 engine/arg_utils.py:1164-1194;
    # the same rule in 0.5.5 :820-846 and 0.6.6 :1081-1110), and the profiling pass is then
    # 2048 tokens (0.6.6 config.py:1438, 0.7.3 config.py:1532; 0.6.4.post1 used 512,
    # config.py:1114).
    return SchedulerDefaults(256, None, long_context_chunked_tokens=2048)


def _vllm_v1_scheduler(memory: int, name: str, entry: str = "serve") -> SchedulerDefaults:
    # vllm/engine/arg_utils.py EngineArgs._set_default_args (V1, 0.8-0.19): device memory
    # >= 70 GiB and not an A100 -> OPENAI_API_SERVER 8192 tokens / 1024 seqs, LLM_CLASS
    # 16384 / 1024; otherwise API server 2048 / 256, LLM class 8192 / 256.
    large = memory >= 70 * GiB and "a100" not in name
    if entry == "llm":
        return SchedulerDefaults(1024, 16384) if large else SchedulerDefaults(256, 8192)
    return SchedulerDefaults(1024, 8192) if large else SchedulerDefaults(256, 2048)


def _vllm_current_scheduler(memory: int, name: str, entry: str = "serve") -> SchedulerDefaults:
    # As V1, and since vllm PR #51726 (vllm#53961) GPUs with >= 160 GiB default
    # max_num_batched_tokens to 16384.
    base = _vllm_v1_scheduler(memory, name, entry)
    if memory >= 160 * GiB:
        return SchedulerDefaults(base.max_num_seqs, 16384)
    return base


def _sglang_scheduler(memory: int, _name: str, _entry: str = "serve") -> SchedulerDefaults:
    # sgl-project/sglang@v0.4.3.post4:python/sglang/srt/server_args.py:217-221 (0.3-0.4.7):
    # chunked_prefill_size 2048 on GPUs under 25,000 MiB (the 4xL4 log shows 2048), else
    # 8192; max_running_requests is derived from the pool, so max_num_seqs only sizes
    # kvplan's sampler term. `memory` is the CUDA total, a little under nvidia-smi's.
    return SchedulerDefaults(256, 2048 if memory < 25_000 * 2**20 else 8192)


def _sglang_048_scheduler(memory: int, _name: str, _entry: str = "serve") -> SchedulerDefaults:
    # sgl-project/sglang@v0.4.10.post2:python/sglang/srt/server_args.py:361-370 (0.4.8-0.5.2):
    # 2048 under 35 GiB, 8192 under 160 GiB, else 16384.
    mib = memory / 2**20
    return SchedulerDefaults(256, 2048 if mib < 35 * 1024 else 8192 if mib < 160 * 1024 else 16384)


def _sglang_05_scheduler(memory: int, _name: str, _entry: str = "serve") -> SchedulerDefaults:
    # sgl-project/sglang@v0.5.8:python/sglang/srt/server_args.py:904-963 (0.5.3+).
    return SchedulerDefaults(256, _sglang_05_chunk_and_graph_bs(memory / 2**20, 1)[0])


def _plain_scheduler(_memory: int, _name: str, _entry: str = "serve") -> SchedulerDefaults:
    return SchedulerDefaults(256, 8192)


def _trtllm_scheduler(_memory: int, _name: str, _entry: str = "serve") -> SchedulerDefaults:
    # LLM API / trtllm-serve defaults max_batch_size 2048, max_num_tokens 8192 (printed as
    # "max_num_requests=2048, max_num_tokens=8192" by an LLM-API start-up with defaults:
    # ai-dynamo/dynamo examples/python_rs/llm/tensorrt_llm README, second-hand).
    return SchedulerDefaults(2048, 8192)


@dataclass(frozen=True)
class NonTorch:
    """Memory outside PyTorch's allocator as the engine measures it (CUDA context, NCCL,
    custom all-reduce buffers), by parallel layout, in bytes."""

    single: int  # TP 1, PP 1
    tensor_parallel: int  # TP > 1 (NCCL + custom all-reduce / P2P buffers)
    pipeline_only: int  # PP > 1, TP 1 (measured growth after init is tiny)
    # TP > 1 on PCIe-only cards, where this differs: no NVLink, so no NVLS (NVLink SHARP)
    # NCCL buffers and no NVLink custom all-reduce; None = same as `tensor_parallel`
    tensor_parallel_pcie: int | None = None

    def bytes(self, tp: int, pp: int, *, pcie: bool = False) -> int:
        if tp > 1:
            if pcie and self.tensor_parallel_pcie is not None:
                return self.tensor_parallel_pcie
            return self.tensor_parallel
        if pp > 1:
            return self.pipeline_only
        return self.single


@dataclass(frozen=True)
class Preload:
    """What SGLang finds in use when it takes its pre-load snapshot, in bytes: the MIN over
    ranks of free memory right after `init_torch_distributed` (model_runner.py), so the
    device context, plus at TP > 1 the NCCL / RCCL communicators and custom all-reduce
    buffers. The latter are only large where the TP group shares an NVLink / Infinity
    Fabric baseboard: on more than two PCIe-only GPUs SGLang disables its custom
    all-reduce (sgl-project/sglang@004e656:python/sglang/srt/distributed/
    device_communicators/custom_all_reduce.py, "not supported on more than two PCIe-only
    GPUs"), and no training row measures a PCIe TP > 1 increment, so PCIe keeps `single`."""

    single: int  # TP 1, or TP > 1 without a baseboard link
    linked_tp: int  # TP > 1 on GPUs of an NVLink / Infinity Fabric baseboard domain

    def bytes(self, tp: int, linked: bool) -> int:
        return self.linked_tp if tp > 1 and linked else self.single


def baseboard_linked(node_gpus: int | None) -> bool:
    """GPUs joined by an NVLink / Infinity Fabric baseboard (HGX, DGX, OAM: `node_gpus`
    >= 4 in the GPU catalog), not by PCIe or a 2-way bridge."""
    return node_gpus is not None and node_gpus >= 4


def sm100_family(gpu: GpuSpec) -> bool:
    """NVIDIA's SM100 family: CUDA compute capability 10.x (B200 / GB200 10.0, B300 / GB300
    10.3 in the GPU catalog, from developer.nvidia.com/cuda-gpus). The GPUs vLLM's
    `current_platform.is_device_capability_family(100)` admits (capability // 10 == 10) for
    FlashInfer's TRT-LLM-gen MoE and MLA kernels, and SGLang's `is_sm100_supported` (major
    10). Read from the catalog's `compute_capability`, so a new 10.x entry gets these rules
    with no list to edit; False when a --gpu-file entry does not state it."""
    return gpu.cuda_major == 10


def _gib(x: float) -> int:
    return int(x * GiB)


def padded_vocab(vocab_size: int, tp: int) -> int:
    """The vocabulary TensorRT-LLM sizes logits and decoder buffers by: rounded up to a
    multiple of the world size (ModelConfig::getVocabSizePadded, NVIDIA/TensorRT-LLM@585c756
    cpp/include/tensorrt_llm/runtime/modelConfig.h: (V + world - 1) / world x world). The
    logits are gathered, so every rank holds the whole padded vocabulary."""
    return -(-vocab_size // tp) * tp


@dataclass(frozen=True)
class EngineProfile:
    """One release line of one engine on one or more platforms: the version-dependent terms.

    `version` is how `--engine-version` names the line (any release inside `first`..`last`
    selects it); `sources` maps each constant to where it comes from."""

    engine: Engine
    version: str
    first: tuple[int, ...]
    last: tuple[int, ...]
    label: str
    default_fraction: Callable[[FractionContext], float] | None
    scheduler: Callable[[int, str, str], SchedulerDefaults]  # (memory, name, entry point)
    activation_scale: float  # x the activation model (pre-0.17 V1 profiled ~2.5x more)
    non_torch: dict[Platform, NonTorch]
    cudagraph_in_budget: bool  # CUDA-graph pool subtracted before the KV cache is sized
    preload_bytes: int  # SGLang: memory in use before the weights load (CUDA context ...)
    token_line: str  # blocks | groups | concurrency: what "GPU KV cache size" prints
    null_block: bool  # one block held back before sizing / admission
    block_size: int  # default tokens per block (page)
    sources: tuple[tuple[str, str], ...]
    # takes max_model_len = -1 (auto-fit: the largest length the pool holds); known in
    # vLLM V1 from the 0.17-0.19 line on (a 0.18-era copy of v1/core/kv_cache_utils.py
    # `_auto_fit_max_model_len`; 0.2x logs: "'max_model_len': -1")
    auto_fit: bool = False
    # TensorRT-LLM's dry run is context requests that together hold max_num_tokens tokens,
    # each min(max_num_tokens, max_seq_len - 1) long and generating one token, so logits
    # exist for one row per request, not for max_batch_size rows (_util.py
    # KvCacheCreator._create_dummy_context_requests).
    profiles_dummy_requests: bool = False
    # SGLang: the pre-load snapshot by platform, TP and link (replaces `preload_bytes`)
    preload_table: dict[Platform, Preload] | None = None
    # SGLang: what "Load weight end ... mem usage" holds beyond params x dtype / GPUs
    weight_load_overhead: int = 0
    # Memory allocated per (max_batch_size slot x padded vocabulary entry) before the KV pool
    # is sized, on top of `non_torch` (TensorRT-LLM engine flow: runtime buffers + decoder,
    # whose large buffers are [maxNumSequences, vocabSizePadded]). 0 for the other lines.
    per_slot_vocab_bytes: float = 0.0
    # vLLM measures the CUDA-graph estimate on ROCm only from this release on (None: never in
    # this line); before it the estimate is 0 there ("Skip on ROCm/HIP/XPU", gpu_worker.py).
    cudagraph_rocm_from: tuple[int, ...] | None = None
    # (first release, scheduler): from that release on the scheduler defaults change inside
    # the line (vLLM 0.28.0: 16384 batched tokens on GPUs with >= 160 GiB)
    later_scheduler: tuple[tuple[int, ...], Callable[[int, str, str], SchedulerDefaults]] | None = (
        None
    )
    # the null block is held back only from this release on (None: `null_block` for all)
    null_block_from: tuple[int, ...] | None = None
    # SGLang: the factor the engine applies to mem_fraction_static (the user's or the
    # default) for a multimodal model, as (first release, factor) steps inside the line
    multimodal_fraction: tuple[tuple[tuple[int, ...], float], ...] = ()
    # SGLang: model families whose multimodal path is off unless --enable-multimodal is
    # passed, from this release on (no reduction then)
    multimodal_off: tuple[tuple[int, ...], tuple[str, ...]] | None = None
    # vLLM: the releases (first, last) whose profiling pass runs a W4A4 NVFP4 MoE through
    # FlashInfer's TRT-LLM-gen kernel on an SM100-family GPU with its fallback tile
    # (kvplan.core.budget.trtllm_nvfp4_moe_peak); None: not modelled in this line
    trtllm_nvfp4_moe: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    # vLLM: the releases (first, last) that allocate FlashInfer-MLA's 128 MiB workspace when
    # the backend module is imported, i.e. while the model is built on an SM100 GPU
    # (kvplan.core.capacity.load_time_buffers); None: not in this line
    mla_import_workspace: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def reaches(self, release: str | None, first: tuple[int, ...]) -> bool:
        """Whether `release` (None or the line's own name: its newest) is `first` or later."""
        if release is None or release == self.version:
            return True
        wanted = parse_version(release)[: len(first)]
        return wanted + (0,) * (len(first) - len(wanted)) >= first

    def subtracts_cudagraphs(self, platform: Platform, release: str | None) -> bool:
        """Whether the CUDA-graph estimate is subtracted before sizing the KV cache, on this
        platform at this release."""
        if not self.cudagraph_in_budget:
            return False
        if platform is not Platform.ROCM:
            return True
        return self.cudagraph_rocm_from is not None and self.reaches(
            release, self.cudagraph_rocm_from
        )

    def holds_null_block(self, release: str | None) -> bool:
        """Whether the admission check and auto-fit hold back the permanent null block."""
        if self.null_block_from is not None:
            return self.reaches(release, self.null_block_from)
        return self.null_block

    def multimodal_factor(self, release: str | None, family: str) -> float:
        """What the release multiplies the memory fraction by for a multimodal model (1.0:
        nothing), e.g. SGLang 0.4.4 model_runner.py:243 `mem_fraction_static *= 0.95`."""
        off = self.multimodal_off
        if off is not None and self.reaches(release, off[0]) and family.startswith(off[1]):
            return 1.0
        factor = 1.0
        for first, step in self.multimodal_fraction:
            if self.reaches(release, first):
                factor = step
        return factor

    def in_releases(
        self, release: str | None, span: tuple[tuple[int, ...], tuple[int, ...]] | None
    ) -> bool:
        """Whether `release` (None or the line's own name: its newest) is inside `span`
        (first, last); False when the span is None."""
        if span is None:
            return False
        first, last = span
        newest = release is None or release == self.version
        version = self.last if newest else parse_version(str(release))
        return first <= version[: len(first)] and version[: len(last)] <= last

    def runs_trtllm_nvfp4_moe(self, release: str | None) -> bool:
        """Whether this release's profiling pass runs W4A4 NVFP4 experts through FlashInfer's
        TRT-LLM-gen MoE on SM100-family GPUs (`trtllm_nvfp4_moe`)."""
        return self.in_releases(release, self.trtllm_nvfp4_moe)

    def scheduler_for(self, release: str | None) -> Callable[[int, str, str], SchedulerDefaults]:
        """The scheduler-defaults rule of this release of the line."""
        if self.later_scheduler is not None and self.reaches(release, self.later_scheduler[0]):
            return self.later_scheduler[1]
        return self.scheduler

    def sampler_rows(self, max_num_seqs: int, tokens: int, max_model_len: int | None) -> int:
        """Rows the profiling pass samples: vLLM max_num_seqs; TensorRT-LLM one per dummy
        context request, ceil(max_num_tokens / min(max_num_tokens, max_seq_len - 1))."""
        if not self.profiles_dummy_requests:
            return max_num_seqs
        length = min(tokens, max(1, (max_model_len or tokens + 1) - 1))
        return -(-tokens // length)

    def covers(self, version: tuple[int, ...]) -> bool:
        return self.first <= version[: len(self.first)] and version[: len(self.last)] <= self.last

    def preload_for(self, platform: Platform, tp: int, linked: bool) -> int:
        """Memory in use before the weights load (SGLang): `preload_table` by platform,
        TP and baseboard link where the profile has one, else `preload_bytes`."""
        if not self.preload_table:
            return self.preload_bytes
        table = self.preload_table.get(platform) or self.preload_table[Platform.CUDA]
        return table.bytes(tp, linked)

    def batch_buffer_bytes(self, seqs: int, vocab_size: int, tp: int) -> int:
        """Runtime + decoder buffers sized by max_batch_size x padded vocabulary (TensorRT-LLM
        engine flow; 0 for the other lines)."""
        return int(self.per_slot_vocab_bytes * seqs * padded_vocab(vocab_size, tp))

    def non_torch_bytes(self, platform: Platform, tp: int, pp: int, *, pcie: bool = False) -> int:
        table = self.non_torch.get(platform) or self.non_torch[Platform.CUDA]
        return table.bytes(tp, pp, pcie=pcie)

    @property
    def name(self) -> str:
        label = ENGINE_LABELS[self.engine]
        # the plain-arithmetic row has no release ("-"): "no engine", not "no engine -"
        return label if self.version == "-" else f"{label} {self.version}"


ENGINE_LABELS = {
    Engine.VLLM: "vLLM",
    Engine.SGLANG: "SGLang",
    Engine.TRTLLM: "TensorRT-LLM",
    Engine.NONE: "no engine",
}

# Fitted on the training split (benchmarks/engine_logs_vs_kvplan.py --fit): medians of
# the logged "non-torch forward increase memory" of vLLM 0.19 H100 training rows.
VLLM_V1_NON_TORCH = NonTorch(
    single=_gib(0.25), tensor_parallel=_gib(2.09), pipeline_only=_gib(0.07)
)
# vLLM 0.15-0.17 logs (Qwen3-14B version sweep, training rows): 0.13 GiB at TP 1. At TP > 1
# the one training row of this line that logs it (llm-d-benchmark config_explorer, vLLM
# 0.11, Llama-3.3-70B-FP8 TP 2 on H100, SECOND-HAND) prints 0.55 GiB: these releases did not
# yet count the ~2 GiB of NCCL / custom all-reduce buffers that 0.19 logs as non-torch (the
# 2.09 GiB used here before was transferred from 0.19). Held-out check: Qwen3-32B TP 2.
VLLM_V1_EARLY_NON_TORCH = NonTorch(
    single=_gib(0.13), tensor_parallel=_gib(0.55), pipeline_only=_gib(0.07)
)
# V0 (<=0.6): non-torch = all memory used outside torch after profiling (RTX 3090: 0.35).
# The baseline is taken before distributed init in every V0 release (vllm 0.6.4
# worker/worker.py:139-145, 0.6.6 :142-148, 0.7.3 :159-166), so NCCL / custom all-reduce
# buffers are counted at TP > 1. On NVLink systems that is the ~2 GiB vLLM 0.19 measures on
# H100 (2.09, transferred; vllm#10511's V0 dev build: 1.79 -> 3.58 GiB from TP 1 to TP 2 on
# H100). PCIe-only cards have no NVLS buffers and no NVLink custom all-reduce: 0.20 GiB is
# what V0 measures on RTX 3090s at TP > 1 (vllm#14447, a V0 0.8.3 dev build serving
# DeepSeek-V3-AWQ on 16 RTX 3090s, "non_torch_memory takes 0.20GiB" on every worker; a log
# outside the data files, so on neither split). The 0.25 GiB quoted for 2x RTX 4090 TP 2
# (vllm#13061) is a HELD-OUT row by the split rule (left out for its KV figures): not used.
VLLM_V0_NON_TORCH = NonTorch(
    single=_gib(0.35),
    tensor_parallel=_gib(2.09),
    pipeline_only=_gib(0.35),
    tensor_parallel_pcie=_gib(0.20),
)
# ROCm: ~6 GiB non-torch on MI300X (issue 11 collector notes, second-hand; no ROCm row in
# the data logs a budget breakdown, so this is not validated).
VLLM_ROCM_NON_TORCH = NonTorch(single=_gib(6.0), tensor_parallel=_gib(6.0), pipeline_only=_gib(6.0))
# Pre-0.17 V1 profiled activations 5.64 / 2.23 = 2.53x what 0.17+ does (Qwen3-14B on H100,
# 0.15/0.16 vs 0.17/0.18, training rows).
VLLM_PRE_017_ACTIVATION_SCALE = 5.64 / 2.23
# TensorRT-LLM PyTorch flow: what its dry run finds in use beyond the weights and the
# forward activations (CUDA context, CUDA-graph pool, sampler / decoder buffers sized by
# max_batch_size, attention workspace). Fitted on the TRAINING rows
# (benchmarks/engine_logs_vs_kvplan.py --fit, "TRTLLM_RUNTIME_GiB"): one row, Qwen3-0.6B on
# H100 with TensorRT-LLM 1.2.1 defaults (1.55 until ACT_FFN's refit to 7.76 moved the
# activation term the fit subtracts; refitted 2026-11-30). TP > 1 adds vLLM's measured
# NCCL / all-reduce growth (2.09 - 0.25 GiB, vLLM 0.19 H100 training rows), transferred and
# not validated (no TRT-LLM PyTorch-flow TP > 1 row prints a budget).
TRTLLM_RUNTIME = _gib(1.58)
TRTLLM_NON_TORCH = NonTorch(
    single=TRTLLM_RUNTIME,
    tensor_parallel=TRTLLM_RUNTIME + _gib(2.09 - 0.25),
    pipeline_only=TRTLLM_RUNTIME,
)
# TensorRT-LLM TRT engine flow (C++ executor). The pool is fraction x the memory free when
# the KV cache manager is built (NVIDIA/TensorRT-LLM@002ba6a
# cpp/tensorrt_llm/batch_manager/kvCacheManager.cpp BaseKVCacheManager::calculateFreeMemBytes:
# cudaMemGetInfo free + the memory pool's free bytes, x freeGpuMemoryFraction), which comes
# after the engine (weights), its execution context (TllmRuntime: getDeviceMemorySizeV2,
# sized at build time), the runtime buffers and the decoder (TrtGptModelInflightBatching
# constructor, createBuffers / createDecoder, both sized by maxNumSequences = max_batch_size;
# @00825c4 cpp/tensorrt_llm/batch_manager/trtGptModelInflightBatching.cpp). kvplan: free =
# total - weights - execution context - (TRT_ENGINE_BASE + max_batch_size x padded vocabulary
# x TRT_ENGINE_PER_SLOT_VOCAB) [- NCCL at TP > 1]. Both constants are fitted on the TRAINING
# rows, each from the rows that print it (benchmarks/engine_logs_vs_kvplan.py --fit; rule
# fixed 2026-11-30 before any held-out error was looked at), replacing 0.76 GiB + 1.94 MiB x
# max_batch_size (a per-sequence constant fitted on one row):
# TRT_ENGINE_PER_SLOT_VOCAB ("TRT_ENGINE_PER_SLOT_VOCAB_B"): the printed "Allocated X GB GPU
# memory for runtime buffers" + "... for decoder" over max_batch_size x padded vocabulary,
# median of the 3 training rows that print both with a catalog model: trtllm-bench 0.12
# Llama-2-7B (4096 x 32000: 44.97 B), Qwen2.5-Coder-0.5B int8 on an A4000 (TensorRT-LLM#1188,
# 2048 x 151936: 29.06 B) and Triton 0.13 Llama-3-8B TP 2 (8 x 128256: 18.90 B). Why the
# vocabulary: the large buffers are [maxNumSequences x beam, vocabSizePadded] - the logits
# (RuntimeBuffers::setMaxBufferSizes / reshape, @092a5a1 cpp/tensorrt_llm/batch_manager/
# runtimeBuffers.cpp, float32 by default) and the penalty layer's logits copy and occurrence
# workspace (PenaltyLayer::allocateBuffer / allocateWorkspace, @05316d3 cpp/tensorrt_llm/
# layers/penaltyLayer.cpp); the per-sequence form misses the 0.5B model's 152K-vocabulary
# buffers by 2x (8.42 GiB printed). The buffers of ids / parentIds / logProbs grow with
# max_seq_len too (a maintainer: "the default max_seq_len of llama 3 model is 8192, while
# ... llama 3.1 model is 131072 ... you should observe similar runtime buffer size and
# decoder buffer size", TensorRT-LLM#2317, 0.12); that term is not separable in the training
# rows and is not modelled. The per-entry figure varies by release (45 / 19 / 29 B at 0.12 /
# 0.13 / late 2024); beam width 1 assumed.
# TRT_ENGINE_BASE ("TRT_ENGINE_BASE_GiB"): total - available - engine - context - runtime
# buffers - decoder (memory the executor's MemoryCounters do not count: CUDA context, cuBLAS,
# the launcher's own use), median of the 3 training rows that print all six: the memory.md
# reference log (@7ff5302, 0.76 GiB), trtllm-bench 0.12 (3.01 GiB) and Triton 0.13 on an RTX
# 4090 (tensorrtllm_backend#625, 1.62 GiB). "KB" / "MB" / "GB" are binary
# (runtime/memoryCounters.cpp doubleBytesToString). A user who has the engine's log can give
# both terms: --activation-reserve (the execution-context MiB) and --overhead (total -
# available - engine - context).
TRT_ENGINE_BASE = _gib(1.62)
TRT_ENGINE_PER_SLOT_VOCAB = 29.06
# SGLang's pre-load snapshot is taken after the CUDA context is up: 0.51 GiB is the CUDA
# context vLLM 0.19 measures at process start on H100 (worker init snapshot, training rows).
SGLANG_PRELOAD = _gib(0.51)
SGLANG_PRELOAD_SOURCE = "CUDA context 0.51 GiB (vLLM 0.19 H100 worker-init snapshot, training rows)"
# TP > 1 on an NVLink baseboard adds the NCCL communicators and custom all-reduce buffers
# SGLang builds in init_torch_distributed. SGLang's custom all-reduce is adapted from vLLM's
# (custom_all_reduce.py@004e656 line 1: "Adapted from ... vllm/v0.6.4.post1 ...") and both
# use NCCL, so vLLM 0.19's measured TP > 1 non-torch growth on H100 (2.09 - 0.25 GiB, the
# VLLM_V1_NON_TORCH training rows) is transferred. Training check: Qwen3-235B-FP8 on 4x H100
# (vllm#21348) implies 2.30 GiB with kvplan's weights, 0.51 + 1.84 = 2.35.
SGLANG_LINKED_TP_PRELOAD = (
    SGLANG_PRELOAD + VLLM_V1_NON_TORCH.tensor_parallel - VLLM_V1_NON_TORCH.single
)
# ROCm (MI355X, one TRAINING row: Kimi-K2.5 TP 8, SGLang 0.5.8.post1): 287.98 GiB total -
# 283.56 free at "Load weight begin" = 4.42 GiB at TP 8, of which "Init torch distributed
# ends. mem usage=3.81 GB": 0.61 GiB before distributed init (the TP 1 value).
SGLANG_PRELOAD_TABLE = {
    Platform.CUDA: Preload(single=SGLANG_PRELOAD, linked_tp=SGLANG_LINKED_TP_PRELOAD),
    Platform.ROCM: Preload(single=_gib(4.42 - 3.81), linked_tp=_gib(4.42)),
}
SGLANG_LINKED_TP_SOURCE = (
    "pre-load at TP > 1 on a baseboard",
    "CUDA 0.51 + 1.84 GiB (vLLM 0.19 H100 TP > 1 non-torch growth, transferred: SGLang's "
    "custom all-reduce is vLLM's, custom_all_reduce.py@004e656); ROCm 4.42 GiB at TP 8, 0.61 "
    "at TP 1 (Kimi-K2.5 MI355X log, training row); PCIe and 2-way bridges keep the TP 1 "
    "value (custom all-reduce off on > 2 PCIe GPUs)",
)
# "Load weight end ... mem usage" (or the drop in free memory) exceeds params x dtype / TP by
# 0.04-0.24 GiB per GPU on most TRAINING rows (Llama-3.1-8B H100 0.15, docs CI 0.13 and 0.15,
# thesis 0.06; R1-Distill-7B RTX 3090 0.21; Qwen3-14B H100 0.18; Qwen3-32B B200 TP 4 0.24;
# Gemma-3-4B H200 0.12; Llama-3-8B MI300X bench_latency 0.04; Llama-3.2-1B docs CI 0.61 in a
# 0.3 build, 0.14 in a 0.4 one (held out); Kimi-K2.5 MI355X 4.30, a weights-model gap): the
# median of all eleven, 0.152 GiB (0.17 over the first ten, 0.19 over the first six), not
# attributed to a named buffer (fitted, benchmarks/engine_logs_vs_kvplan.py --fit). Not added
# when the log's own weights are given.
SGLANG_WEIGHT_LOAD_OVERHEAD = _gib(0.15)
SGLANG_WEIGHT_LOAD_SOURCE = (
    "weight-load overhead 0.17 GiB",
    "median of logged mem usage - params x dtype / TP over the SGLang training rows (fitted)",
)

_VLLM_COMMON_SOURCES = (
    ("gpu_memory_utilization", "vllm/config/cache.py (0.90 to 0.19; 0.92 in 0.22, 0.33)"),
    ("page math", "vllm/v1/kv_cache_interface.py AttentionSpec.page_size_bytes"),
    ("scheduler defaults", "vllm/engine/arg_utils.py EngineArgs._set_default_args"),
)

_SGLANG_BUDGET_SOURCE = (
    "budget",
    "rest = avail_after_load - total_gpu_memory x (1 - mem_fraction_static), total_gpu_memory "
    "= free memory after distributed init (min over ranks): sgl-project/sglang@v0.3.6.post3:"
    "python/sglang/srt/model_executor/model_runner.py:432-435, @v0.4.3.post4:...model_runner.py:"
    "299-316,629-632, @v0.4.10.post2:...model_runner.py:986-989, @v0.5.8:python/sglang/srt/"
    "model_executor/model_runner_kv_cache_mixin.py:138-144 and model_runner.py:555,779",
)

# Multimodal models: ModelRunner multiplies mem_fraction_static (given or default) by 0.95,
# from 0.4.5 by 0.90, before the pool is sized (sgl-project/sglang@v0.3.0:python/sglang/srt/
# model_executor/model_runner.py:107 (on server_args), @v0.3.6.post3:...model_runner.py:122,
# @v0.4.0:...:118, @v0.4.3.post4:...:236, @v0.4.4:...:243 "Automatically reduce
# --mem-fraction-static ... because this is a multimodal model", x 0.90 @v0.4.5:...:274,
# @v0.4.6.post5:...:394, @v0.4.7:...:402, @v0.4.8:...:415; PyPI wheels). From 0.4.6
# Gemma3ForConditionalGeneration and Llama4ForConditionalGeneration run text-only unless
# --enable-multimodal (@v0.4.6.post5:python/sglang/srt/configs/model_config.py:82-93, @v0.4.8
# :90-101): no reduction. From 0.4.9 the reduction moved to server_args
# (adjust_mem_fraction_for_vlm, @v0.4.10.post2:python/sglang/srt/server_args.py:356-359,
# 2040-2079): it scales only the DEFAULT fraction, by 0.95 x a ViT-size factor; not modelled.
SGLANG_MULTIMODAL_FRACTION: dict[str, tuple[tuple[tuple[int, ...], float], ...]] = {
    "0.3": (((0, 3), 0.95),),
    "0.4": (((0, 4, 0), 0.95), ((0, 4, 5), 0.90)),
    "0.4.6": (((0, 4, 6), 0.90),),
    "0.4.8": (((0, 4, 8), 0.90), ((0, 4, 9), 1.0)),
}
SGLANG_MULTIMODAL_OFF = ((0, 4, 6), ("gemma3", "llama4"))
SGLANG_MULTIMODAL_SOURCE = (
    "multimodal fraction",
    "x 0.95 (0.3.0-0.4.4), x 0.90 (0.4.5-0.4.8) on the fraction, given or default: "
    "sgl-project/sglang@v0.4.4:python/sglang/srt/model_executor/model_runner.py:243, "
    "@v0.4.5:...model_runner.py:274, @v0.4.8:...:415 (Gemma 3 / Llama 4 text-only by default "
    "from 0.4.6: configs/model_config.py:90-101); 0.4.9+ ViT-size rule not modelled",
)

# (version, first, last, label, default fraction, scheduler, fraction source)
_SGLANG_LINES: tuple[
    tuple[
        str,
        tuple[int, ...],
        tuple[int, ...],
        str,
        Callable[[FractionContext], float],
        Callable[[int, str, str], SchedulerDefaults],
        str,
    ],
    ...,
] = (
    (
        "0.3",
        (0, 3),
        (0, 3),
        "SGLang 0.3 (default fraction by TP)",
        _sglang_03_fraction,
        _sglang_scheduler,
        "0.79/0.82/0.85/0.87/0.88 by TP 16/8/4/2/1: "
        "sgl-project/sglang@v0.3.6.post3:python/sglang/srt/server_args.py:155-165",
    ),
    (
        "0.4",
        (0, 4, 0),
        (0, 4, 5),
        "SGLang 0.4.0-0.4.5 (default fraction by TP)",
        _sglang_04_fraction,
        _sglang_scheduler,
        "0.79/0.81/0.85/0.87/0.88 by TP 16/8/4/2/1: "
        "sgl-project/sglang@v0.4.3.post4:python/sglang/srt/server_args.py:204-214 "
        "(same in v0.4.0 and v0.4.5)",
    ),
    (
        "0.4.6",
        (0, 4, 6),
        (0, 4, 7),
        "SGLang 0.4.6-0.4.7 (default fraction by TP x PP and GPU memory)",
        _sglang_046_fraction,
        _sglang_scheduler,
        "sgl-project/sglang@v0.4.6.post5:python/sglang/srt/server_args.py:247-268 "
        "(the rule appears in v0.4.5.post3; v0.4.7 unchanged)",
    ),
    (
        "0.4.8",
        (0, 4, 8),
        (0, 5, 2),
        "SGLang 0.4.8-0.5.2 (default fraction = 1 - reserved / GPU memory, by tier)",
        _sglang_048_fraction,
        _sglang_048_scheduler,
        "sgl-project/sglang@v0.4.10.post2:python/sglang/srt/server_args.py:310-349 "
        "(v0.4.8, v0.4.9.post6 and v0.5.1 the same)",
    ),
    (
        "0.5",
        (0, 5, 3),
        (0, 5, 99),
        "SGLang 0.5.3+ (default fraction from chunked prefill and CUDA-graph batch)",
        _sglang_05_fraction,
        _sglang_05_scheduler,
        "sgl-project/sglang@v0.5.8:python/sglang/srt/server_args.py:879-1029 "
        "(_handle_gpu_memory_settings; from v0.5.3)",
    ),
)


def _sglang_profile(
    version: str,
    first: tuple[int, ...],
    last: tuple[int, ...],
    label: str,
    fraction: Callable[[FractionContext], float],
    scheduler: Callable[[int, str, str], SchedulerDefaults],
    fraction_source: str,
) -> EngineProfile:
    return EngineProfile(
        engine=Engine.SGLANG,
        version=version,
        first=first,
        last=last,
        label=label,
        default_fraction=fraction,
        scheduler=scheduler,
        activation_scale=1.0,
        non_torch={Platform.CUDA: NonTorch(0, 0, 0)},
        cudagraph_in_budget=False,
        preload_bytes=SGLANG_PRELOAD,
        token_line="blocks",
        null_block=False,
        block_size=1,
        sources=(
            ("mem_fraction_static default", fraction_source),
            _SGLANG_BUDGET_SOURCE,
            ("pre-load memory", SGLANG_PRELOAD_SOURCE),
            SGLANG_LINKED_TP_SOURCE,
            SGLANG_WEIGHT_LOAD_SOURCE,
            *((SGLANG_MULTIMODAL_SOURCE,) if version in SGLANG_MULTIMODAL_FRACTION else ()),
            *((SGLANG_SWA_SOURCE,) if last >= (0, 4, 9) else ()),
        ),
        preload_table=SGLANG_PRELOAD_TABLE,
        weight_load_overhead=SGLANG_WEIGHT_LOAD_OVERHEAD,
        multimodal_fraction=SGLANG_MULTIMODAL_FRACTION.get(version, ()),
        multimodal_off=SGLANG_MULTIMODAL_OFF if first >= SGLANG_MULTIMODAL_OFF[0] else None,
    )


SGLANG_SWA_SOURCE = (
    "hybrid sliding-window pools (0.4.9.post3+)",
    "kvplan.core.sglang_swa: sglang 0.4.9.post3 wheel model_executor/model_runner.py:"
    "278-285,973-1050; 0.5.8 wheel model_executor/model_runner_kv_cache_mixin.py:206-251, "
    "configs/model_config.py:1220-1228, server_args.py:1278-1293,1372-1385",
)


def _vllm_line(**changes: Any) -> EngineProfile:
    """A vLLM release line: what every V1 line shares (the V1 scheduler defaults, its
    non-torch terms, no pre-load snapshot, 16-token blocks, the "(blocks // groups) x
    block" token line, graphs captured after KV sizing, no null block held back, the common
    sources), overridden by what this line changes; each entry below states only that."""
    shared: dict[str, Any] = {
        "engine": Engine.VLLM,
        "scheduler": _vllm_v1_scheduler,
        "activation_scale": 1.0,
        "non_torch": {Platform.CUDA: VLLM_V1_NON_TORCH, Platform.ROCM: VLLM_ROCM_NON_TORCH},
        "cudagraph_in_budget": False,
        "preload_bytes": 0,
        "token_line": "groups",
        "null_block": False,
        "block_size": 16,
    }
    sources = (*_VLLM_COMMON_SOURCES, *changes.pop("sources", ()))
    return EngineProfile(**{**shared, **changes, "sources": sources})


PROFILES: tuple[EngineProfile, ...] = (
    _vllm_line(
        version="0.6",
        first=(0, 1),
        last=(0, 7),
        label="vLLM V0 engine (releases <= 0.7; also <= 0.10 with VLLM_USE_V1=0)",
        default_fraction=lambda _c: 0.90,
        scheduler=_vllm_v0_scheduler,
        non_torch={Platform.CUDA: VLLM_V0_NON_TORCH, Platform.ROCM: VLLM_ROCM_NON_TORCH},
        token_line="blocks",
        sources=(
            ("budget", "vllm/worker/worker.py Worker.determine_num_available_blocks (0.6.4)"),
            (
                "budget 0.3.1 - 0.6.3",
                "total x util - (free at worker start - free after profiling): vllm 0.4.1 "
                "worker/worker.py:104-105, 134-157 (<= 0.3.0 counted the CUDA context too)",
            ),
            ("profile pass", "max(max_model_len, 2048) tokens: vllm/config.py SchedulerConfig"),
            ("non-torch 0.35 GiB", "RTX 3090 V0 logs, vllm#10517 (training rows)"),
            (
                "non-torch at TP > 1: 2.09 GiB NVLink, 0.20 GiB PCIe",
                "baseline before distributed init (vllm 0.7.3 worker/worker.py:159-166); "
                "2.09 from V1 0.19 H100 rows; 0.20 vllm#14447 (RTX 3090s, V0 0.8.3 dev)",
            ),
            (
                "chunked prefill above 32K: 2048 tokens",
                "vllm 0.7.3 engine/arg_utils.py:1164-1194, config.py:1532",
            ),
        ),
    ),
    _vllm_line(
        version="0.16",
        first=(0, 8),
        last=(0, 16),
        label="vLLM V1 engine 0.8-0.16 (before the 0.17 activation-profiling change)",
        default_fraction=lambda _c: 0.90,
        activation_scale=VLLM_PRE_017_ACTIVATION_SCALE,
        non_torch={Platform.CUDA: VLLM_V1_EARLY_NON_TORCH, Platform.ROCM: VLLM_ROCM_NON_TORCH},
        sources=(
            ("budget", "vllm/v1/worker/gpu_worker.py Worker.determine_available_memory"),
            ("activation x2.53", "Qwen3-14B H100 0.15/0.16 vs 0.17/0.18 logs (training rows)"),
            ("non-torch 0.13 GiB", "Qwen3-14B H100 0.15-0.17 logs (training rows)"),
            (
                "non-torch 0.55 GiB at TP > 1",
                "llm-d-benchmark config_explorer, vLLM 0.11 Llama-3.3-70B-FP8 TP 2 on H100 "
                "(the line's one training row that logs it; SECOND-HAND)",
            ),
        ),
    ),
    _vllm_line(
        version="0.19",
        first=(0, 17),
        last=(0, 19),
        label="vLLM V1 engine 0.17-0.19 (CUDA graphs captured after KV sizing)",
        default_fraction=lambda _c: 0.90,
        sources=(
            ("budget", "vllm/v1/worker/gpu_worker.py Worker.determine_available_memory (0.19)"),
            (
                "CUDA graphs",
                "estimated, not subtracted: VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS defaults "
                "to 0 (vllm 0.19.1 wheel, vllm/envs.py:1654-1655)",
            ),
            ("token line", "vllm/v1/core/kv_cache_utils.py _report_kv_cache_config (0.19)"),
        ),
        auto_fit=True,
    ),
    # vLLM 0.20.0: the first release that subtracts the CUDA-graph estimate by default (its
    # log already says "default since v0.21.0") and defaults to 0.92, but still prints "GPU
    # KV cache size" as (blocks // groups) x block; 0.20.1 prints int(concurrency x
    # max_model_len) as 0.21+ does (0.20.1 / 0.20.2 wheels, kv_cache_utils.py:1706). Read
    # in the PyPI wheels (the tagged sources).
    _vllm_line(
        version="0.20",
        first=(0, 20, 0),
        last=(0, 20, 0),
        label="vLLM V1 engine 0.20.0 (CUDA-graph estimate subtracted up front)",
        default_fraction=lambda _c: 0.92,
        cudagraph_in_budget=True,
        sources=(
            (
                "graph estimate subtracted by default",
                "vllm 0.20.0 wheel: vllm/envs.py:1724-1725 (VLLM_MEMORY_PROFILER_ESTIMATE_"
                "CUDAGRAPHS defaults to 1), vllm/v1/worker/gpu_worker.py:398-425 "
                "(available = requested - non_kv - estimate)",
            ),
            ("gpu_memory_utilization 0.92", "vllm 0.20.0 wheel: vllm/config/cache.py:66"),
            (
                "graph count",
                "vllm 0.20.0 wheel: vllm/config/vllm.py:1423-1524 (_set_cudagraph_sizes), "
                "vllm/v1/cudagraph_dispatcher.py:205-221 (FULL decode sizes <= max_num_seqs)",
            ),
            (
                "token line",
                "(num_blocks // groups) x min block: vllm 0.20.0 wheel "
                "vllm/v1/core/kv_cache_utils.py:1693-1711",
            ),
            ("scheduler defaults", "vllm 0.20.0 wheel: vllm/engine/arg_utils.py:2211-2221"),
            (
                "no graph estimate on ROCm",
                "vllm 0.20.0 wheel: vllm/v1/worker/gpu_worker.py:376-385 (estimate only when "
                "current_platform is not ROCm)",
            ),
        ),
        auto_fit=True,
    ),
    _vllm_line(
        version="0.33",
        first=(0, 20, 1),
        last=(0, 33),
        label="vLLM V1 engine 0.20.1-0.33 (CUDA-graph memory subtracted up front)",
        default_fraction=lambda _c: 0.92,
        cudagraph_in_budget=True,
        token_line="concurrency",
        null_block=True,
        sources=(
            ("budget", "vllm/v1/worker/gpu_worker.py; GPUModelRunner.profile_cudagraph_memory"),
            (
                "graph estimate subtracted",
                "vllm#50722 log: 67.43 - 16.92 - 5.66 - 0.13 - 1.32 (estimate) = 43.40 GiB in use",
            ),
            (
                "graph estimate",
                "max over modes of the first capture + sum per_graph x (N_mode - 1) (vllm "
                "0.21.0 wheel vllm/v1/worker/gpu_model_runner.py:6049-6147, same in 0.19.1 and "
                "0.20.0); N from _set_cudagraph_sizes (0.21.0 wheel vllm/config/vllm.py:"
                "1476-1587) and cudagraph_dispatcher.py:205-221; 0.33.0 raises the capture "
                "ceiling to 1024 on SM100 GPUs (vllm/config/vllm.py:2464), not modelled",
            ),
            (
                "no graph estimate on Model Runner V2, 0.22.0 - 0.28.x",
                "V2's profile_cudagraph_memory returns 0 (vllm/v1/worker/gpu/model_runner.py, "
                "0.21.0 - 0.28.0 wheels); the models V2 runs by default: "
                "mrv2_skips_graph_estimate (vllm/config/vllm.py of the 0.22.0 - 0.28.0 "
                "wheels); 0.29.0 V2 estimates (vllm/v1/worker/gpu/cudagraph_utils.py:718)",
            ),
            (
                "graph estimate caveats",
                "hybrid GDN models count an mnbt-linear transient from 0.26.0 (vllm#50780); "
                "0.29.0+ V2 measures piecewise graphs in full and extrapolates FULL ones, "
                "modelled with the V1 form",
            ),
            ("token line", "int(max_concurrency x max_model_len): kv_cache_utils.py (0.22, 0.33)"),
            (
                "null block from 0.29.0",
                "'Reserve the null block BlockPool permanently holds back': vllm 0.29.0 wheel "
                "vllm/v1/core/kv_cache_utils.py:975 (and 0.30.0, 0.31.0; 0.33.0 "
                "kv_cache_planning.py); absent from the 0.20.0, 0.21.0 and 0.28.0 wheels",
            ),
            (
                "16384 tokens >= 160 GiB from 0.28.0",
                "vllm PR #51726 (vllm#53961); absent from the 0.27.1 wheel's "
                "vllm/engine/arg_utils.py, present in 0.28.0's (:2582-2591) and 0.33.0's",
            ),
            (
                "NVFP4 MoE profile peak on SM100 (0.21.0 - 0.22.x)",
                "W4A4 NVFP4 experts run FlashInfer's TRT-LLM-gen MoE first on SM100 GPUs (vllm "
                "0.22.0 wheel vllm/model_executor/layers/fused_moe/oracle/nvfp4.py:174-182, "
                "experts/trtllm_nvfp4_moe.py:113-120; 0.21.0 the same, oracle/nvfp4.py:164-168); "
                "the profile pass precedes FlashInfer's autotune (v1/worker/gpu_worker.py:358 vs "
                ":572-606), so the fallback tile sizes a bf16 gemm2 output of "
                "getMaxPermutedPaddedCount x hidden (flashinfer-python 0.6.11.post2 / 0.6.8.post1 "
                "data/csrc/trtllm_fused_moe_kernel_launcher.cu:89-151,1476-1487,1640-1694; "
                "include/flashinfer/trtllm/fused_moe/runner.h:65-70,97-130)",
            ),
            (
                "FlashInfer-MLA workspace in the weights on SM100 (0.21.0 - 0.22.x)",
                "128 MiB torch.zeros at import of the backend module (vllm 0.22.0 wheel "
                "vllm/v1/attention/backends/mla/flashinfer_mla.py:30,99-103; 0.21.0 the same), "
                "imported while MLAAttention is built (mla_attention.py:386 get_attn_backend -> "
                "platforms/cuda.py:278 get_class) inside load_model's DeviceMemoryProfiler: "
                "FLASHINFER_MLA heads the MLA priorities on capability 10.x (platforms/cuda.py:"
                "86-120); 0.33.0 allocates it lazily (_get_workspace_buffer)",
            ),
            (
                "graph estimate on ROCm from 0.26.0",
                "vllm wheels: 0.21.0 to 0.25.1 estimate only on CUDA (0.25.1 "
                "vllm/v1/worker/gpu_worker.py:475-484, 'Skip on ROCm'); 0.26.0 on every "
                "cuda_alike platform (gpu_worker.py:495-505, 'ROCm is included: #44825')",
            ),
        ),
        auto_fit=True,
        cudagraph_rocm_from=(0, 26, 0),
        later_scheduler=((0, 28, 0), _vllm_current_scheduler),
        null_block_from=(0, 29, 0),
        trtllm_nvfp4_moe=((0, 21, 0), (0, 22, 99)),
        mla_import_workspace=((0, 21, 0), (0, 22, 99)),
    ),
    *(
        _sglang_profile(version, first, last, label, fraction, scheduler, fraction_source)
        for version, first, last, label, fraction, scheduler, fraction_source in _SGLANG_LINES
    ),
    EngineProfile(
        engine=Engine.TRTLLM,
        version="pytorch",
        # "The PyTorch backend of TensorRT-LLM is available in version 0.17 and later"
        # (nvidia.github.io/TensorRT-LLM torch.html, 0.19.0 - 1.1 docs): an older release
        # number selects the engine flow below
        first=(0, 17),
        last=(99,),
        label="TensorRT-LLM PyTorch flow (KvCacheCreator dry run)",
        default_fraction=lambda _c: 0.90,
        scheduler=_trtllm_scheduler,
        activation_scale=1.0,
        non_torch={Platform.CUDA: TRTLLM_NON_TORCH},
        cudagraph_in_budget=False,
        preload_bytes=0,
        token_line="blocks",
        null_block=False,
        block_size=32,
        sources=(
            (
                "free_gpu_memory_fraction",
                "tensorrt_llm/llmapi/llm_args.py KvCacheConfig.free_gpu_memory_fraction "
                "('Default is 90%'; None -> 0.9 in _util.py)",
            ),
            (
                "budget",
                "TensorRT-LLM@0004396 tensorrt_llm/_torch/pyexecutor/_util.py "
                "KvCacheCreator._cal_max_memory: (total - peak + temporary KV) x fraction",
            ),
            (
                "dry run",
                "same file, _create_dummy_context_requests: max_num_tokens tokens in requests "
                "of min(max_num_tokens, max_seq_len - 1), max_tokens=1",
            ),
            ("max_gpu_total_bytes", "configure_kv_cache_capacity: min(estimate, cap)"),
            ("tokens per block", "32: 'Number of tokens per block: 32.' (TensorRT-LLM#4275)"),
            ("runtime 1.58 GiB", "fitted, 1 training row (Qwen3-0.6B, H100, 1.2.1)"),
        ),
        profiles_dummy_requests=True,
    ),
    EngineProfile(
        engine=Engine.TRTLLM,
        version="trt",
        first=(0,),
        last=(99,),
        label="TensorRT-LLM TRT engine flow (trtllm-build engine, C++ executor)",
        default_fraction=lambda _tp: 0.90,
        scheduler=_trtllm_scheduler,
        activation_scale=1.0,
        non_torch={
            Platform.CUDA: NonTorch(
                single=TRT_ENGINE_BASE,
                tensor_parallel=TRT_ENGINE_BASE + _gib(2.09 - 0.25),
                pipeline_only=TRT_ENGINE_BASE,
            )
        },
        cudagraph_in_budget=False,
        preload_bytes=0,
        token_line="blocks",
        null_block=False,
        block_size=64,
        sources=(
            (
                "budget",
                "kv = kv_cache_free_gpu_mem_fraction (0.9) x free memory when the KV cache manager "
                "is built: NVIDIA/TensorRT-LLM@002ba6a cpp/tensorrt_llm/batch_manager/"
                "kvCacheManager.cpp BaseKVCacheManager::calculateFreeMemBytes; blocks per rank, "
                "the minimum over ranks (calculateMaxNumBlocks)",
            ),
            ("tokens per block", "64 ('Number of tokens per block: 64.' in the engine logs)"),
            (
                "max_batch_size / max_num_tokens",
                "the engine's; trtllm-build defaults 2048 / 8192 (BuildConfig, "
                "NVIDIA/TensorRT-LLM@008b2b8 tensorrt_llm/builder.py)",
            ),
            (
                "runtime 1.62 GiB",
                "fitted: residual beyond every printed allocation, median of 3 training rows "
                "(memory.md@7ff5302 0.76, trtllm-bench 0.12 3.01, tensorrtllm_backend#625 1.62)",
            ),
            (
                "runtime + decoder 29.06 B x max_batch_size x padded vocabulary",
                "fitted: printed runtime buffers + decoder over N x V, median of 3 training rows "
                "(44.97 / 29.06 / 18.90 B); [N, vocabSizePadded] logits and penalty buffers: "
                "@092a5a1 batch_manager/runtimeBuffers.cpp, @05316d3 layers/penaltyLayer.cpp; "
                "beam width 1 assumed",
            ),
            (
                "execution context",
                "kvplan's forward-activation model at max_num_tokens (transferred, not "
                "validated: TensorRT sizes it at build time; TllmRuntime getDeviceMemorySizeV2, "
                "@0165bd7 cpp/tensorrt_llm/runtime/tllmRuntime.cpp); give the logged MiB with "
                "--activation-reserve",
            ),
            ("TP > 1", "+1.84 GiB NCCL / all-reduce (vLLM 0.19 H100 figure, transferred)"),
        ),
        profiles_dummy_requests=True,
        per_slot_vocab_bytes=TRT_ENGINE_PER_SLOT_VOCAB,
    ),
    EngineProfile(
        engine=Engine.NONE,
        version="-",
        first=(0,),
        last=(99,),
        label="plain arithmetic",
        default_fraction=None,
        scheduler=_plain_scheduler,
        activation_scale=1.0,
        non_torch={Platform.CUDA: VLLM_V1_NON_TORCH},
        cudagraph_in_budget=False,
        preload_bytes=0,
        token_line="blocks",
        null_block=False,
        block_size=16,
        sources=(),
    ),
)


# The line a deployment gets without --engine-version. vLLM: 0.19 (releases 0.17-0.19), the
# newest line whose every budget term is validated against logs out of sample (0.20 and 0.33
# subtract a CUDA-graph estimate; no held-out log of either line is evaluable yet);
# `--engine-version 0.20` / `0.33` (or a release number) selects them.
# TensorRT-LLM: the PyTorch flow (the default backend since 1.0); `trt` is the engine flow.
DEFAULT_VERSIONS: dict[Engine, str] = {Engine.VLLM: "0.19", Engine.TRTLLM: "pytorch"}


def profiles_of(engine: Engine) -> tuple[EngineProfile, ...]:
    return tuple(p for p in PROFILES if p.engine is engine)


def profile_for(engine: Engine, version: str | None) -> EngineProfile:
    """The release profile for `version` of `engine` (None: the newest modelled). A version
    outside every modelled line is an input error naming the lines that exist."""
    lines = profiles_of(engine)
    if version is None:
        version = DEFAULT_VERSIONS.get(engine, lines[-1].version)
    if version in {p.version for p in lines}:
        return next(p for p in lines if p.version == version)
    wanted = parse_version(version)
    for p in lines:
        if p.covers(wanted):
            return p
    raise KvplanError(
        f"{ENGINE_LABELS[engine]} {version} is outside the modelled releases",
        hint="modelled: "
        + "; ".join(f"{p.version} ({_span(p)})" for p in lines)
        + " - pass the nearest with --engine-version",
        setting="engine_version",
    )


def _span(p: EngineProfile) -> str:
    first = ".".join(map(str, p.first))
    last = ".".join(map(str, p.last))
    return first if first == last else f"{first}-{last}"


@dataclass(frozen=True)
class LaunchFlags:
    """How the engine's own launcher spells the settings kvplan planned with, so `fit` can
    print a ready-to-paste command (None where the engine takes it from a config file)."""

    command: str  # with {model}
    tp: str
    pp: str
    max_model_len: str
    fraction: str | None
    kv_dtype: str | None
    fp8_kv: str | None  # the engine's name for an fp8 (e4m3) KV cache
    max_num_seqs: str
    max_num_batched_tokens: str
    block_size: str | None
    source: str


@dataclass(frozen=True)
class EngineRules:
    engine: Engine
    label: str  # how the engine names itself
    knob: str | None  # the deployment setting holding its memory fraction
    default_fraction: Callable[[int], float] | None  # TP -> default fraction (newest line)
    kv_heads_per_gpu: Callable[[int, int], int]  # (G, tp) -> heads per rank, or TpError
    budget: BudgetFormula
    max_num_seqs: int  # scheduler defaults of the newest line on a large GPU
    max_num_batched_tokens: int
    followed: str  # the releases whose rules these are, and where the constants come from
    # vocabulary padding before the TP split (vLLM VocabParallelEmbedding: the padded
    # vocabulary must divide by TP); None where the engine does not split that way
    vocab_pad: int | None = None
    launch: LaunchFlags | None = None  # the engine's launcher and its flag names
    # `--kv-memory` is a cap on the engine's own estimate (TensorRT-LLM max_gpu_total_bytes)
    # rather than the budget itself (vLLM kv_cache_memory_bytes)
    kv_memory_caps: bool = False
    # DSA indexer keys' storage, whatever the KV dtype (kvplan.core.kv_formats
    # INDEXER_FORMATS, where each engine's source is cited); None: the KV dtype
    indexer_format: str | None = None
    # The rotary cos/sin tables (ModelSpec.rope) the engine builds on the GPU while it
    # loads the model, so they count in its weights figure and come out of the KV budget:
    # "model" (in the model dtype, unless the model asks for fp32), "float32_on_cuda"
    # (fp32 on NVIDIA, the model dtype elsewhere); None: not counted (not verified).
    rope_cache: str | None = None
    # MiniMax-M3 sparse-attention index keys' storage (same table); None: the KV dtype
    msa_index_format: str | None = None
    # Tensors the engine keeps whole on every TP rank instead of splitting them
    # (kvplan.core.params.REPLICABLE: mla_a, indexer, router, norms, kv_heads); each GPU
    # holds (total - replicated) / (tp * pp) + replicated / pp, plus the duplicated KV
    # heads' k/v rows when tp > G. Empty: every weight split evenly over tp * pp.
    tp_replicated: frozenset[str] = frozenset()
    # The 16-bit dtype the engine loads a float32 checkpoint in when the user does not
    # name one (dtype "auto"); None: as the checkpoint says (not verified for that engine).
    loads_fp32_as: str | None = None

    def indexer_format_for(self, kind: IndexerKind | None) -> str | None:
        """How this engine stores a model's indexer keys (None: in the KV dtype)."""
        if kind is IndexerKind.DSA:
            return self.indexer_format
        if kind is IndexerKind.MSA:
            return self.msa_index_format
        return None

    def fraction(self, tp: int) -> float | None:
        return self.default_fraction(tp) if self.default_fraction else None

    def check_vocab(self, vocab: int, tp: int) -> None:
        """vLLM pads the vocabulary to a multiple of 64 (DEFAULT_VOCAB_PADDING_SIZE) and
        then splits it over TP with divide(num_embeddings_padded, tp_size)
        (vllm/model_executor/layers/vocab_parallel_embedding.py), which asserts exact
        division: a TP size that does not divide the padded vocabulary is refused."""
        if self.vocab_pad is None or tp == 1:
            return
        padded = -(-vocab // self.vocab_pad) * self.vocab_pad
        if padded % tp:
            ok = [t for t in divisors(padded) if t <= 64]
            raise TpError(
                f"--tp {tp} does not divide the padded vocabulary ({vocab:,} -> {padded:,}): "
                f"{self.label} splits the embedding and LM head by TP",
                hint=f"TP sizes that divide it: {', '.join(map(str, ok))}",
            )


ENGINES: dict[Engine, EngineRules] = {
    Engine.VLLM: EngineRules(
        engine=Engine.VLLM,
        label="vLLM",
        knob="gpu_memory_utilization",
        default_fraction=lambda _tp: 0.90,  # vllm/config/cache.py (0.92 from 0.22)
        kv_heads_per_gpu=_split_or_replicate,
        budget=_vllm_budget,
        max_num_seqs=1024,
        max_num_batched_tokens=8192,
        followed="vLLM V0 (<=0.7) and V1 engine 0.8-0.33 (release profiles)",
        launch=LaunchFlags(
            command="vllm serve {model}",
            tp="--tensor-parallel-size",
            pp="--pipeline-parallel-size",
            max_model_len="--max-model-len",
            fraction="--gpu-memory-utilization",
            kv_dtype="--kv-cache-dtype",
            fp8_kv="fp8",
            max_num_seqs="--max-num-seqs",
            max_num_batched_tokens="--max-num-batched-tokens",
            block_size="--block-size",
            source="vllm/engine/arg_utils.py EngineArgs (vllm serve --help)",
        ),
        vocab_pad=64,
        indexer_format="fp8_block128",  # deepseek_v2.py Indexer / DeepseekV32IndexerCache
        # rotary_embedding/base.py RotaryEmbedding.__init__: cache.to(dtype), registered
        # as a buffer at model init (vllm-project/vllm @ 04458da0; @ 072d10a0 the same)
        rope_cache="model",
        msa_index_format="bf16",  # models/minimax_m3/common/indexer.py MiniMaxM3IndexerCache
        # vllm-project/vllm @ 002d6073 vllm/model_executor/models/deepseek_v2.py:
        # DeepseekV2MLAAttention fused_qkv_a_proj (DeepSeekV2FusedQkvAProjLinear,
        # MergedColumnParallelLinear disable_tp=True) or kv_a_proj_with_mqa
        # (ReplicatedLinear); DeepseekV2Attention q_a_proj / kv_a_proj_with_mqa
        # (ReplicatedLinear); Indexer wq_b (ReplicatedLinear, "no tensor parallel, just
        # replicated") + wk_weights_proj (disable_tp=True); DeepseekV2MoE gate (GateLinear);
        # the FusedMoE models' routers (qwen3_moe / mixtral Qwen3MoeSparseMoeBlock /
        # MixtralMoE gate: ReplicatedLinear); RMSNorm weights (whole per rank);
        # layers/linear.py QKVParallelLinear: num_kv_heads = max(1, G // tp), each rank
        # loads its head's k/v rows (num_kv_head_replicas = tp // G); vision: the encoder
        # tensors its model file keeps whole (VisionEncoder.tp_whole; Kimi-K2.5's MoonViT
        # embeddings, LayerNorms, RowParallel biases and ReplicatedLinear projector, vllm
        # 0.22.0 wheel kimi_k25.py:342-357, kimi_k25_vit.py)
        tp_replicated=frozenset({"mla_a", "indexer", "router", "norms", "kv_heads", "vision"}),
        # vllm/config.py _get_and_verify_dtype (0.4 - 0.6; ModelConfig dtype resolution
        # later): dtype "auto" on a float32 config serves it in float16 (bfloat16 for
        # Gemma-2), "Downcasting torch.float32 to torch.float16" in the log
        loads_fp32_as="fp16",
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
        followed="SGLang 0.3-0.5 (python/sglang/srt/server_args.py, model_runner.py)",
        launch=LaunchFlags(
            command="python -m sglang.launch_server --model-path {model}",
            tp="--tp-size",
            pp="--pp-size",
            max_model_len="--context-length",
            fraction="--mem-fraction-static",
            kv_dtype="--kv-cache-dtype",
            fp8_kv="fp8_e4m3",
            max_num_seqs="--max-running-requests",
            max_num_batched_tokens="--chunked-prefill-size",
            block_size="--page-size",
            source="python/sglang/srt/server_args.py ServerArgs (launch_server --help)",
        ),
        indexer_format="fp8_block128",  # pool_configurator.py DefaultPoolConfigurator
        # python/sglang/srt/layers/rotary_embedding.py RotaryEmbedding.__init__ (sgl-project/
        # sglang @ ed0774f9): "cache needs to be in FP32 for numerical stability", cast to
        # the model dtype only off CUDA; memoized per rope key by get_rope (_ROPE_DICT)
        rope_cache="float32_on_cuda",
        msa_index_format="bf16",  # the same, MiniMax branch: the model dtype (bf16 here)
        # python/sglang/srt/models/deepseek_v2.py DeepseekV2AttentionMLA
        # fused_qkv_a_proj_with_mqa (ReplicatedLinear) / kv_a_proj_with_mqa; the NSA
        # Indexer wq_b, wk, weights_proj (ReplicatedLinear); MoEGate (a plain nn.Parameter
        # per rank) and qwen3_moe gate (ReplicatedLinear); RMSNorm; QKVParallelLinear as
        # vLLM's (ceil(G / tp) heads per rank)
        tp_replicated=frozenset({"mla_a", "indexer", "router", "norms", "kv_heads"}),
        # python/sglang/srt/configs/model_config.py _get_and_verify_dtype: the same rule
        # as vLLM's (float32 config + dtype auto -> float16)
        loads_fp32_as="fp16",
    ),
    Engine.TRTLLM: EngineRules(
        engine=Engine.TRTLLM,
        label="TensorRT-LLM",
        knob="free_gpu_memory_fraction",
        default_fraction=lambda _tp: 0.90,  # KvCacheConfig.free_gpu_memory_fraction
        kv_heads_per_gpu=_ceil_split,
        budget=_trtllm_budget,
        max_num_seqs=2048,
        max_num_batched_tokens=8192,
        followed="TensorRT-LLM PyTorch flow (KvCacheCreator, _util.py) and TRT engine flow",
        launch=LaunchFlags(
            command="trtllm-serve {model}",
            tp="--tp_size",
            pp="--pp_size",
            max_model_len="--max_seq_len",
            fraction="--kv_cache_free_gpu_memory_fraction",
            kv_dtype=None,  # kv_cache_config.dtype in an --extra_llm_api_options YAML
            fp8_kv=None,
            max_num_seqs="--max_batch_size",
            max_num_batched_tokens="--max_num_tokens",
            block_size=None,  # tokens_per_block in the same YAML
            source="trtllm-serve --help (nvidia.github.io/TensorRT-LLM 0.18 commands/trtllm-serve)",
        ),
        kv_memory_caps=True,
        indexer_format="fp8_block128",  # _torch/attention_backend/sparse/dsa.py DSACacheManager
        msa_index_format="bf16_or_fp32",  # sparse/minimax_m3/cache_manager.py INDEX_KEY buffer
        # tensorrt_llm/_torch/modules/attention.py MLA: kv_a_proj_with_mqa is one Linear
        # hidden -> q_lora + kv_lora + rope with no tensor-parallel mode (whole per rank);
        # num_key_value_heads = ceil(G / tp) per rank. Router and indexer not verified:
        # split evenly here.
        tp_replicated=frozenset({"mla_a", "norms", "kv_heads"}),
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
        # no engine: every weight split evenly over tp * pp (tp_replicated empty)
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


def launch_line(
    d: Deployment, model: str, max_model_len: int | None
) -> tuple[str | None, list[str]]:
    """The engine's own launch command for deployment `d` (what kvplan planned: TP, PP,
    max_model_len, memory fraction, KV dtype, scheduler limits, block size), and notes on
    what the command line cannot carry. None for the `none` engine."""
    flags = ENGINES[d.engine].launch
    if flags is None:
        return None, []
    notes: list[str] = []
    if d.engine is Engine.VLLM and d.entry_point == "llm":
        notes.append(
            "planned for the offline LLM class (--entry-point llm): pass these settings as "
            "LLM(...) keyword arguments (tensor_parallel_size=..., max_model_len=..., ...)"
        )
    parts = [flags.command.format(model=model), f"{flags.tp} {d.tp}"]
    if d.pp > 1:
        parts.append(f"{flags.pp} {d.pp}")
    if max_model_len:
        parts.append(f"{flags.max_model_len} {max_model_len}")
    fraction = d.fraction
    if flags.fraction and fraction is not None:
        parts.append(f"{flags.fraction} {fraction:g}")
    if d.kv_dtype == "fp8" and flags.kv_dtype and flags.fp8_kv:
        parts.append(f"{flags.kv_dtype} {flags.fp8_kv}")
    elif d.kv_dtype not in ("bf16", "fp16", "fp32"):
        notes.append(
            f"KV dtype {d.kv_dtype}: set it as {ENGINES[d.engine].label} documents "
            "(not on this command line)"
        )
    parts.append(f"{flags.max_num_seqs} {d.scheduler_seqs}")
    parts.append(f"{flags.max_num_batched_tokens} {d.scheduler_tokens}")
    if flags.block_size and d.block_size != d.profile.block_size:
        parts.append(f"{flags.block_size} {d.block_size}")
    elif not flags.block_size and d.block_size != d.profile.block_size:
        notes.append(f"block size {d.block_size}: set it in the engine's config file")
    if d.enable_prefix_caching is not None and d.enable_prefix_caching != d.default_prefix_caching:
        # only what differs from the release's default (kvplan.core.prefix_cache): vLLM
        # --enable-prefix-caching / --no-enable-prefix-caching, SGLang --disable-radix-cache
        on = d.enable_prefix_caching
        if d.engine is Engine.VLLM:
            parts.append("--enable-prefix-caching" if on else "--no-enable-prefix-caching")
        elif d.engine is Engine.SGLANG and not on:
            parts.append("--disable-radix-cache")
        elif d.engine is Engine.TRTLLM:
            notes.append(
                f"prefix caching {'on' if on else 'off'}: set kv_cache_config.enable_block_reuse: "
                f"{str(on).lower()} in the engine's config file"
            )
    if d.engine is Engine.SGLANG:
        # kvplan.core.sglang_swa: SGLang's own flag names
        if d.swa_full_tokens_ratio is not None:
            parts.append(f"--swa-full-tokens-ratio {d.swa_full_tokens_ratio:g}")
        if d.disable_hybrid_swa_memory:
            parts.append("--disable-hybrid-swa-memory")
    if d.draft_layers or d.draft_model is not None:
        spec_flags, spec_notes = _speculative_flags(d)
        parts.extend(spec_flags)
        notes.extend(spec_notes)
    return " ".join(parts), notes


def _speculative_flags(d: Deployment) -> tuple[list[str], list[str]]:
    """Speculative decoding on the engine's command line: the checkpoint's MTP modules
    (`--draft-layers`) or a separate draft (`--draft-model`), proposing k tokens a step
    (`--num-speculative-tokens`, 1 when not given).

    vLLM: `--speculative-config` JSON, `{"method": "mtp", ...}` for MTP modules, `{"model":
    DRAFT, ...}` for a draft (vllm/config/speculative.py SpeculativeConfig: method is inferred
    from the draft's name / architecture when omitted). SGLang: `--speculative-algorithm`
    (EAGLE for MTP modules and EAGLE heads, EAGLE3 for EAGLE-3 heads, STANDALONE for a small
    LM; server_args.py), `--speculative-num-steps k --speculative-eagle-topk 1
    --speculative-num-draft-tokens k + 1` (a chain of k drafts: the DeepSeek-V3 MTP recipe in
    SGLang's docs uses 1 / 1 / 2). TensorRT-LLM takes `speculative_config` in its YAML."""
    import json

    k = d.num_speculative_tokens or 1
    notes = [] if d.num_speculative_tokens else ["num_speculative_tokens 1 assumed (not given)"]
    draft = d.draft_model
    if d.engine is Engine.VLLM:
        cfg: dict[str, object] = {"method": "mtp"} if draft is None else {"model": draft.name}
        cfg["num_speculative_tokens"] = k
        return [f"--speculative-config '{json.dumps(cfg)}'"], notes
    if d.engine is Engine.SGLANG:
        head = (draft.spec.draft_head or "").lower() if draft is not None else "mtp"
        if not head:
            algo = "STANDALONE"  # a small LM
        elif "eagle3" in head or "eagle-3" in head:
            algo = "EAGLE3"
        else:
            algo = "EAGLE"  # MTP modules (NEXTN is its alias) and EAGLE heads
        flags = [f"--speculative-algorithm {algo}"]
        if draft is not None:
            flags.append(f"--speculative-draft-model-path {draft.name}")
        flags += [
            f"--speculative-num-steps {k}",
            "--speculative-eagle-topk 1",
            f"--speculative-num-draft-tokens {k + 1}",
        ]
        return flags, notes
    return [], [*notes, "speculative decoding: speculative_config in the engine's YAML"]
