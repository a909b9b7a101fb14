"""Roofline latency: one decode step, a serving step with prefill, and one prefill, per GPU.

A decode step at batch B and context ctx streams, on each GPU,
  weights   the resident weights once (MoE: only the experts the batch touches, expected
            E * (1 - (1 - k/E)^B) of E per layer under uniform top-k routing; the input
            embedding table is gathered, B rows, not streamed),
  KV        every sequence's cache (full layers ctx tokens, sliding layers min(ctx, window),
            MLA the latent) plus one new token's K/V written per sequence,
  other     the activations (each layer's tensors written once and read once) and logits,
and does FLOPs = 2 * matmul params * B  +  attention over the cache (QK^T and AV for every
query head: 2 * B * held * H * (d_k + d_v) per layer, which does not shrink with G).
  memory  = weights / (bw * e_bw * q) + KV * spread / (bw * e_bw * e_kv) + other / (bw * e_bw)
            (spread = 1 + ctx / (B * kv_context_scale), 1 when the scale is 0)
  compute = FLOPs / (peak[dtype] * e_compute)
  fixed   = layers * c_layer + MoE layers * c_moe + MLA layers * c_mla + c_step
            (launches, syncs, routing, MLA kernels, sampler, scheduler: the intercept of a
            step, per platform)
  comm    = 2 all-reduces per layer (tp > 1):
            latency[link, engine] + 2 (tp-1)/tp * B * hidden * 2 bytes / (link/2 * e_link)
  step    = max(memory, compute) + fixed + comm
Weight-only quantized formats (int8/int4/mxfp4, fp8 without fp8 tensor cores) are
dequantized on the fly in the GEMV, so their bytes stream slower (q < 1).
Pipeline parallelism: the token passes the stages in turn (no micro-batch overlap assumed),
so the step is pp x the heaviest stage's time.
Prefill of a ctx-token prompt is compute-bound:
  (2 * matmul params * ctx + attention 2 * S * H * (d_k + d_v) per layer) / (peak * e_prefill),
  S = sum over positions t of min(t, window) (= ctx(ctx+1)/2 for full causal attention),
never faster than one pass over the weights.
A serving step (continuous batching, chunked prefill) at concurrency C with prompts of I
tokens and outputs of O tokens also carries, on average, C / O prompts' prefill: C * I / O
prompt tokens per step, costed at their prefill FLOPs (the weights are already streamed).
Everything is bytes, seconds, FLOP and FLOP/s (decimal bandwidth, as vendors state it).
The efficiency factors and fixed costs per platform are fitted on the TRAINING rows of
tests/data/decode_measurements*.yaml by benchmarks/fit_latency.py (the block below says
when, on how many rows, and with what held-out error); the rest carry their sources.
"""

from __future__ import annotations

from collections.abc import Callable
from math import ceil, inf
from typing import Literal

from kvplan.core import capacity, frozen, kvcache
from kvplan.core.budget import ffn_width
from kvplan.core.capacity import Plan
from kvplan.core.design import label_for
from kvplan.core.dtypes import DTYPE_BYTES
from kvplan.core.frozen import Frozen, dataclass
from kvplan.core.geometry import Layer, LayerKind, ModelSpec
from kvplan.core.gpu import GpuSpec
from kvplan.core.params import param_counts, weight_bytes
from kvplan.core.search import smallest_true
from kvplan.core.sizing import default_kv_dtype
from kvplan.errors import KvplanError

# ---- BEGIN FITTED CONSTANTS (benchmarks/fit_latency.py writes this block) ---------------
# Fitted 2026-11-30 by benchmarks/fit_latency.py on the 200 TRAINING rows
# (sha256(id) % 3 != 0) of tests/data/decode_measurements*.yaml: mean |log(pred/meas)|.
# Decode/serving rows: train median |pred/meas - 1| 9.3% (n=190), HELD-OUT 9.6% (n=111),
# held-out worst 86.4%. Per-regime tables: docs/roofline.md.
# Model variant 'full-kvctx+mla-release' (lowest 5-fold CV error inside the training rows).
# Not identifiable, copied: pcie.* all-reduce latency = nvlink.* (no PCIe TP row);
# xgmi.serving = xgmi (every AMD TP row is vLLM/SGLang); apple MoE and prefill = nvidia
# (no MoE or prefill row on Apple silicon). *_floor_s, hop, prefill_overhead_s,
# kv_context_scale and mla_prefill_compute: refinements CV rejected, kept at 0 (off).
# mla_early_layer_overhead_s: engine releases of early 2025 (early_mla_release).
FITTED_PROVENANCE = "benchmarks/fit_latency.py, 2026-11-30, training split only"
FITTED: dict[str, float] = {
    "nvidia.bandwidth": 0.810,
    "amd.bandwidth": 0.737,
    "apple.bandwidth": 0.783,
    "nvidia.layer_floor_s": 0.0e-6,
    "amd.layer_floor_s": 0.0e-6,
    "apple.layer_floor_s": 0.0e-6,
    "nvidia.layer_overhead_s": 47.6e-6,
    "amd.layer_overhead_s": 33.6e-6,
    "apple.layer_overhead_s": 154.7e-6,
    "nvidia.moe_layer_overhead_s": 0.0e-6,
    "amd.moe_layer_overhead_s": 178.3e-6,
    "apple.moe_layer_overhead_s": 0.0e-6,
    "quantized_stream": 0.845,
    "kv_bandwidth": 0.994,
    "allreduce_hop_latency_s": 0.0e-6,
    "prefill_overhead_s": 0.0e-6,
    "nvlink.allreduce_latency_s": 9.2e-6,
    "nvlink.serving.allreduce_latency_s": 21.2e-6,
    "pcie.serving.allreduce_latency_s": 21.2e-6,
    "xgmi.serving.allreduce_latency_s": 23.2e-6,
    "xgmi.allreduce_latency_s": 23.2e-6,
    "pcie.allreduce_latency_s": 9.2e-6,
    "compute": 0.361,
    "nvidia.prefill_compute": 0.596,
    "amd.prefill_compute": 0.085,
    "apple.prefill_compute": 0.596,
    "mla_layer_overhead_s": 54.8e-6,
    "kv_context_scale": 0.000,
    "mla_early_layer_overhead_s": 670.1e-6,
    "mla_prefill_compute": 0.000,
}
# ---- END FITTED CONSTANTS ---------------------------------------------------------------

# ---- efficiency defaults with a source (docs/roofline.md has the long version) ------------
# Achieved / rated memory bandwidth of weight streaming in decode, NVIDIA (fitted above).
DEFAULT_BW_EFFICIENCY = FITTED["nvidia.bandwidth"]
# Achieved / dense peak tensor FLOP/s of a decode step (fitted above). For scale: the
# best-shaped bf16 GEMMs reach 86% (A100 SXM, 267.9 of 312 TFLOP/s) and 80% (H100 SXM,
# 792.1 of 989), the "maximum achievable matmul FLOPS" table of stas00/ml-engineering;
# attention, norms and the odd-shaped decode GEMMs do worse.
DEFAULT_COMPUTE_EFFICIENCY = FITTED["compute"]
# NCCL all-reduce bus bandwidth / link rate for large messages on 8x A100 NVLink 3: ~200 and
# 208 GB/s of 300 GB/s per direction (nccl-tests issues #149, #178): 0.67-0.69, so 0.7.
DEFAULT_LINK_EFFICIENCY = 0.7
# Fixed cost of one small all-reduce (kernel launch + synchronisation across the group), per
# link kind (fitted above; NCCL with CUDA graphs and NVLink SHARP reaches ~6 us, nccl #1259).
DEFAULT_ALLREDUCE_LATENCY_S = FITTED["nvlink.allreduce_latency_s"]
# Per-step fixed cost outside the layers (sampler, scheduler): not separable from the
# per-layer cost in the data, so 0 and the intercept is carried per layer.
DEFAULT_STEP_OVERHEAD_S = 0.0
# Weight-only quantized GEMVs unpack and rescale every weight on the CUDA cores, so those
# bytes stream slower (fitted above; gpt-fast's README bandwidths give 0.62-0.95).
QUANTIZED_STREAM_FACTOR = FITTED["quantized_stream"]

ACTIVATION_BYTES = 2  # bf16/fp16 activations, whatever the weight dtype
LOGIT_BYTES = 4  # engines compute logits in fp32
READ_AND_WRITE = 2  # an activation tensor is written once and read once
RESIDUAL_TENSORS = 6  # per layer: 2 norm inputs, 2 norm outputs, 2 residual adds (hidden wide)
ALLREDUCES_PER_LAYER = 2  # Megatron TP: after attention's o_proj and after the MLP's down_proj
MAX_SEARCH_BATCH = 1 << 30  # crossover searches give up beyond this batch
WEIGHT_ONLY_DTYPES = ("int8", "int4", "int4-g128", "mxfp4")
FLOP_FALLBACKS: dict[str, tuple[str, ...]] = {
    "bf16": ("bf16", "fp16"),
    "fp16": ("fp16", "bf16"),
    "fp32": ("fp32", "tf32"),
    "fp8": ("fp8",),
}
Platform = Literal["nvidia", "amd", "apple"]
# Serving engines run tensor parallelism through their own all-reduce kernels under CUDA/HIP
# graphs (vLLM vllm/distributed/device_communicators/custom_all_reduce.py, SGLang's port of
# it, TensorRT-LLM's customAllReduce plugin), the research engines (gpt-fast, LMDeploy) plain
# NCCL-style calls: their per-all-reduce cost is fitted separately (it also carries the other
# per-layer synchronisation of each engine's TP path).
SERVING_ENGINES = ("vllm", "sglang", "trtllm")
LinkKind = Literal["nvlink", "xgmi", "pcie"]


class Efficiency(Frozen):
    """Achieved fractions of the rated figures, and fixed costs (seconds).

    bandwidth: weight streaming / rated bandwidth; kv_bandwidth: KV streaming relative to
    that; quantized_stream: extra factor for weights dequantized in the GEMV; compute and
    prefill_compute: decode and prefill FLOP/s / dense peak; interconnect: all-reduce bus
    bandwidth / link rate; allreduce_latency_s: per all-reduce; layer_overhead_s: per layer
    per step (kernel launches and syncs); moe_layer_overhead_s: extra per MoE layer (router,
    top-k, permutation); step_overhead_s: per step; layer_floor_s: the shortest a layer's
    kernels take however little they stream (launch-bound: the CPU issues them no faster),
    so a step's memory/compute time is at least layers x layer_floor_s;
    allreduce_hop_latency_s: per step of a ring all-reduce, 2 (tp - 1) steps, on top of
    allreduce_latency_s; prefill_overhead_s: per prefill (request admission, scheduling);
    mla_layer_overhead_s: extra per MLA layer (latent attention kernels, their q/kv
    projections and rope; an early engine release gets the early value, see
    early_mla_release); mla_prefill_compute (0 = off): prefill FLOP/s / dense peak of a
    model with MLA layers, replacing prefill_compute for it; kv_context_scale (tokens, 0 = off): a
    batch of B sequences of ctx tokens streams its KV (1 + ctx / (B x scale)) times slower,
    since one long sequence splits over too few thread blocks to keep every SM streaming."""

    bandwidth: float = frozen.field(default=DEFAULT_BW_EFFICIENCY, gt=0, le=1)
    compute: float = frozen.field(default=DEFAULT_COMPUTE_EFFICIENCY, gt=0, le=1)
    interconnect: float = frozen.field(default=DEFAULT_LINK_EFFICIENCY, gt=0, le=1)
    allreduce_latency_s: float = frozen.field(default=DEFAULT_ALLREDUCE_LATENCY_S, ge=0)
    step_overhead_s: float = frozen.field(default=DEFAULT_STEP_OVERHEAD_S, ge=0)
    quantized_stream: float = frozen.field(default=QUANTIZED_STREAM_FACTOR, gt=0, le=1)
    kv_bandwidth: float = frozen.field(default=FITTED["kv_bandwidth"], gt=0, le=1)
    layer_overhead_s: float = frozen.field(default=FITTED["nvidia.layer_overhead_s"], ge=0)
    moe_layer_overhead_s: float = frozen.field(default=FITTED["nvidia.moe_layer_overhead_s"], ge=0)
    prefill_compute: float = frozen.field(default=FITTED["nvidia.prefill_compute"], gt=0, le=1)
    layer_floor_s: float = frozen.field(default=FITTED["nvidia.layer_floor_s"], ge=0)
    allreduce_hop_latency_s: float = frozen.field(default=FITTED["allreduce_hop_latency_s"], ge=0)
    prefill_overhead_s: float = frozen.field(default=FITTED["prefill_overhead_s"], ge=0)
    mla_layer_overhead_s: float = frozen.field(default=FITTED["mla_layer_overhead_s"], ge=0)
    kv_context_scale: float = frozen.field(default=FITTED["kv_context_scale"], ge=0)
    mla_prefill_compute: float = frozen.field(default=FITTED["mla_prefill_compute"], ge=0, le=1)


def platform_of(gpu: GpuSpec) -> tuple[Platform, str | None]:
    """The latency profile a GPU gets: its vendor's where data exists (NVIDIA, AMD, Apple),
    else NVIDIA's, with a note saying so."""
    if gpu.vendor in ("nvidia", "amd", "apple"):
        return gpu.vendor, None
    return "nvidia", (
        f"no published decode measurements for {gpu.vendor} GPUs: the NVIDIA latency "
        "profile (efficiencies and fixed costs) is used"
    )


def link_of(gpu: GpuSpec) -> LinkKind:
    """The link kind of a GPU's interconnect, from the catalog's `interconnect` name:
    NVLink (incl. bridges), AMD Infinity Fabric (xGMI), anything else PCIe."""
    name = (gpu.interconnect or "").lower()
    if "nvlink" in name:
        return "nvlink"
    if "infinity fabric" in name:
        return "xgmi"
    return "pcie"


def _link_key(gpu: GpuSpec, engine: str | None) -> str:
    link = link_of(gpu)
    serving = f"{link}.serving"
    if engine in SERVING_ENGINES and f"{serving}.allreduce_latency_s" in FITTED:
        return serving
    return link


# DeepSeek-V3-architecture models (MLA attention + a 256-expert MoE) ran much slower per
# layer on the engine releases of early 2025 than on later ones: at the same batch on 8x
# H200, dstack's SGLang 0.4.3 / vLLM 0.7 / TensorRT-LLM 0.17 runs (tests/data, 2025-02/03)
# take 26-55 ms per token at concurrency 4 where InferenceX's SGLang 0.5.6/0.5.7 runs (2026)
# take 8-13 ms (one run 23 ms). An extra per-MLA-layer cost is fitted for each group
# separately (FITTED mla_early_layer_overhead_s / mla_layer_overhead_s), on training rows
# only (benchmarks/fit_latency.py, variant chosen by CV). The boundary is per engine release
# line, the last line the early rows come from: vLLM <= 0.7 (kvplan's vLLM 0.6 profile
# line; the v0.8.0 release notes: "V1 engine by default (#13726)" and "DeepSeek
# Improvements": MLA enhancements, expert/data parallelism, block-quantized CUTLASS GEMMs),
# SGLang <= 0.4 (its 0.4 line; AMD's ROCm blog "Supercharge DeepSeek-R1 Inference on AMD
# Instinct MI300X", 2025-03-21, reports 8x H200 on SGLang 0.4.4.post1 serving at most 16
# concurrent DeepSeek-R1 requests below 50 ms inter-token latency, as slow as the 0.4.3
# rows: 51 ms at 16), TensorRT-LLM <= 0.17 (the 0.17 PyTorch-backend build the dstack rows
# ran). No row measures a release between those and the later rows, so where inside that
# gap each engine got fast is not known.
EARLY_MLA_RELEASES: dict[str, tuple[int, ...]] = {
    "vllm": (0, 7),
    "sglang": (0, 4),
    "trtllm": (0, 17),
}


def early_mla_release(engine: str | None, version: str | None) -> bool:
    """Whether `version` of `engine` is one of the early-2025 releases whose MLA (DeepSeek-V3)
    decode path pays the early per-layer cost (EARLY_MLA_RELEASES); False when the version
    is not given (kvplan then plans for the newest modelled line) or not a release number."""
    last = EARLY_MLA_RELEASES.get(engine or "")
    if last is None or not version:
        return False
    from kvplan.core.engines import parse_version  # engines imports nothing from here

    try:
        wanted = parse_version(version)
    except KvplanError:
        return False
    return wanted[: len(last)] <= last


def default_efficiency(
    gpu: GpuSpec, engine: str | None = None, engine_version: str | None = None
) -> Efficiency:
    """The fitted profile of the GPU's platform, with the all-reduce latency of its link
    under `engine` (a serving engine's custom all-reduce, or plain NCCL-style calls) and
    the MLA per-layer cost of the engine's release (early_mla_release)."""
    platform, _ = platform_of(gpu)
    mla = "mla_early_layer_overhead_s" if early_mla_release(engine, engine_version) else None
    return Efficiency(
        bandwidth=FITTED[f"{platform}.bandwidth"],
        layer_overhead_s=FITTED[f"{platform}.layer_overhead_s"],
        layer_floor_s=FITTED[f"{platform}.layer_floor_s"],
        moe_layer_overhead_s=FITTED[f"{platform}.moe_layer_overhead_s"],
        prefill_compute=FITTED[f"{platform}.prefill_compute"],
        allreduce_latency_s=FITTED[f"{_link_key(gpu, engine)}.allreduce_latency_s"],
        mla_layer_overhead_s=FITTED[mla or "mla_layer_overhead_s"],
    )


def efficiency(
    *,
    bandwidth: float | None = None,
    compute: float | None = None,
    gpu: GpuSpec | None = None,
    engine: str | None = None,
    engine_version: str | None = None,
) -> Efficiency:
    """Defaults (the GPU's platform profile under `engine` and its release when `gpu` is
    given) with the user's overrides, each checked to lie in (0, 1]."""
    given = {
        "--bw-efficiency": ("bandwidth", bandwidth),
        "--compute-efficiency": ("compute", compute),
    }
    update: dict[str, float] = {}
    for flag, (field, value) in given.items():
        if value is None:
            continue
        if not 0 < value <= 1:
            raise KvplanError(f"{flag} must be in (0, 1], got {value:g}")
        update[field] = value
    base = default_efficiency(gpu, engine, engine_version) if gpu is not None else Efficiency()
    return base.model_copy(update=update)


class DecodeEstimate(Frozen):
    """One decode step (and the prefill) at (batch, ctx); every field in SI units."""

    batch: int
    ctx: int
    decode_ms: float  # one step for the whole batch
    decode_tokens_per_s: float  # aggregate over the batch
    tokens_per_s_per_seq: float
    prefill_ms: float  # time to first token for one ctx-token prompt (compute-bound)
    bound: Literal["memory", "compute"]
    bytes_weights: int  # per GPU, per step
    bytes_kv: int  # per GPU: all sequences' cache read + one token's K/V written
    bytes_other: int  # per GPU: activations and logits
    flops: float  # per GPU, per step
    flops_attention: float  # the part of `flops` spent on QK^T and AV
    prefill_flops: float  # per GPU
    intensity: float  # FLOP per byte of this step
    ridge: float  # peak FLOP/s / bandwidth (FLOP per byte) of the GPU, rated
    effective_ridge: float  # the same with the efficiency factors applied
    kv_share: float  # KV bytes / all bytes
    memory_s: float  # weights_s + kv_s + other_s
    compute_s: float
    comm_s: float  # tensor-parallel all-reduces (0 at tp 1): comm_latency_s + transfers
    overhead_s: float  # fixed per-step cost: layers, MoE layers, per step
    step_s: float  # per stage; decode_ms = pp x step_s x 1000
    experts_touched: float | None  # MoE: expected distinct experts per layer at this batch
    kv_dominant_batch: int | None  # smallest batch whose KV bytes reach the weight bytes
    compute_bound_batch: int | None  # smallest batch at which the step turns compute-bound
    gpu: str
    bandwidth: float  # bytes/s, rated
    peak_flops: float  # FLOP/s, dense, rated
    flops_dtype: str
    tp: int
    pp: int
    efficiency: Efficiency
    notes: tuple[str, ...] = ()
    # the breakdown of memory_s, overhead_s and comm_s (seconds, per stage)
    weights_s: float = 0.0
    kv_s: float = 0.0
    other_s: float = 0.0
    layer_overhead_s: float = 0.0  # layers x per-layer cost (+ MoE layers x their extra)
    comm_latency_s: float = 0.0  # all-reduces x latency
    platform: str = "nvidia"
    link: str | None = None  # interconnect kind used (tp > 1)
    kv_spread: float = 1.0  # KV streams this many times slower (few long sequences)

    @property
    def bytes_total(self) -> int:
        return self.bytes_weights + self.bytes_kv + self.bytes_other


# ---- the per-plan constants; a step at batch B is arithmetic on these ------------------
@dataclass(frozen=True)
class _Terms:
    weights_fixed: float  # non-expert bytes streamed per step (per GPU)
    weights_experts: float  # all routed-expert bytes (per GPU)
    experts: int  # E (0: dense)
    top_k: int
    row_bytes: float  # input-embedding rows gathered per token (per GPU)
    kv_read: int  # per sequence at ctx (per GPU)
    kv_write: int  # per sequence, one new token (per GPU)
    other_per_token: float  # activation + logit bytes per token (per GPU)
    matmul_flops_per_token: float
    attention_flops_per_seq: float
    prefill_flops: float
    allreduces: int
    allreduce_bytes_per_token: float
    bandwidth: float
    peak: float
    flops_dtype: str
    link_bandwidth: float | None
    tp: int
    pp: int
    weight_only: bool  # weights dequantized in the GEMV (stream at eff.quantized_stream)
    notes: tuple[str, ...]
    ctx: int = 0  # the context the per-sequence terms are for
    layers: int = 0  # layers on the timed stage
    moe_layers: int = 0  # of which MoE
    mla_layers: int = 0  # of which MLA
    platform: Platform = "nvidia"
    link: LinkKind = "nvlink"

    def experts_touched(self, batch: float) -> float:
        e, k = self.experts, self.top_k
        return e * (1 - (1 - k / e) ** batch) if e else 0.0

    def weights(self, batch: float) -> float:
        experts = (
            self.weights_experts * self.experts_touched(batch) / self.experts
            if self.experts
            else 0.0
        )
        return self.weights_fixed + experts + self.row_bytes * batch

    def kv(self, batch: float) -> float:
        return batch * (self.kv_read + self.kv_write)

    def flops(self, batch: float) -> float:
        return batch * (self.matmul_flops_per_token + self.attention_flops_per_seq)

    def memory_s(self, batch: float, eff: Efficiency) -> float:
        return step_times(self, batch, eff).memory_s

    def weight_stream(self, eff: Efficiency) -> float:
        return eff.quantized_stream if self.weight_only else 1.0

    def compute_s(self, batch: float, eff: Efficiency) -> float:
        return self.flops(batch) / (self.peak * eff.compute)

    def comm_s(self, tokens: float, eff: Efficiency) -> float:
        lat, xfer = self.comm_parts(tokens, eff)
        return lat + xfer

    def comm_parts(self, tokens: float, eff: Efficiency) -> tuple[float, float]:
        """(latency, transfer) seconds of the step's all-reduces for `tokens` tokens."""
        if self.tp == 1 or not self.allreduces:
            return 0.0, 0.0
        assert self.link_bandwidth is not None
        one_way = self.link_bandwidth / 2 * eff.interconnect
        ring = 2 * (self.tp - 1) / self.tp * self.allreduce_bytes_per_token * tokens / one_way
        latency = eff.allreduce_latency_s + 2 * (self.tp - 1) * eff.allreduce_hop_latency_s
        return self.allreduces * latency, self.allreduces * ring

    def fixed_s(self, eff: Efficiency) -> float:
        return (
            self.layers * eff.layer_overhead_s
            + self.moe_layers * eff.moe_layer_overhead_s
            + self.mla_layers * eff.mla_layer_overhead_s
            + eff.step_overhead_s
        )


@dataclass(frozen=True)
class StepTimes:
    """One decode step (one stage), term by term, seconds."""

    weights_s: float
    kv_s: float
    other_s: float
    compute_s: float
    fixed_s: float
    comm_latency_s: float
    comm_transfer_s: float
    floor_s: float = 0.0  # layers x layer_floor_s: the launch-bound minimum of the GPU work
    kv_spread: float = 1.0  # the long-context slowdown of the KV stream (1 + ctx / (B scale))

    @property
    def memory_s(self) -> float:
        return self.weights_s + self.kv_s + self.other_s

    @property
    def comm_s(self) -> float:
        return self.comm_latency_s + self.comm_transfer_s

    @property
    def gpu_s(self) -> float:
        """The streamed/computed part: max(memory, compute), never below the launch floor."""
        return max(self.memory_s, self.compute_s, self.floor_s)

    @property
    def step_s(self) -> float:
        return self.gpu_s + self.fixed_s + self.comm_s


def step_times(t: _Terms, batch: float, eff: Efficiency) -> StepTimes:
    """The decode step at `batch` (may be fractional: an expected batch) term by term."""
    bw = t.bandwidth * eff.bandwidth
    lat, xfer = t.comm_parts(batch, eff)
    spread = 1 + t.ctx / (batch * eff.kv_context_scale) if eff.kv_context_scale else 1.0
    return StepTimes(
        weights_s=t.weights(batch) / (bw * t.weight_stream(eff)),
        kv_s=t.kv(batch) * spread / (bw * eff.kv_bandwidth),
        other_s=t.other_per_token * batch / bw,
        compute_s=t.compute_s(batch, eff),
        fixed_s=t.fixed_s(eff),
        comm_latency_s=lat,
        comm_transfer_s=xfer,
        floor_s=t.layers * eff.layer_floor_s,
        kv_spread=spread,
    )


def _attention_widths(spec: ModelSpec, layer: Layer) -> int:
    """d_k + d_v a query head attends with in this layer (per-layer head sizes, e.g.
    Gemma-4's global layers): latent + rope and latent for MLA (absorbed)."""
    if layer.kind is LayerKind.MLA:
        assert spec.mla is not None
        return 2 * spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim
    d_k, d_v = spec.layer_head_dims(layer)
    return d_k + d_v


def _prefill_width(spec: ModelSpec, kind: LayerKind) -> int:
    """MLA prefill runs decompressed (per head nope + rope for QK, v_head_dim for AV)."""
    if kind is LayerKind.MLA:
        assert spec.mla is not None
        return spec.mla.qk_nope_head_dim + spec.mla.qk_rope_head_dim + spec.mla.v_head_dim
    return spec.head_dim + spec.v_head_dim


def _causal_pairs(ctx: int, window: int | None) -> int:
    """Query-key pairs of a causal prefill: sum over t = 1..ctx of min(t, window)."""
    if window is None or ctx <= window:
        return ctx * (ctx + 1) // 2
    return window * (window + 1) // 2 + (ctx - window) * window


def _flops_dtype(p: Plan, linear: str) -> tuple[str, float, bool, list[str]]:
    """The dtype the GEMMs run in, its peak, whether weights are dequantized on the fly."""
    gpu = p.deployment.gpu
    act = default_kv_dtype(p.deployment.spec)
    notes: list[str] = []
    weight_only = linear in WEIGHT_ONLY_DTYPES
    if linear == "fp8" and "fp8" not in gpu.flops:
        weight_only = True
        notes.append(
            f"{gpu.name} has no fp8 tensor cores: fp8 weights are dequantized and "
            f"the GEMMs run in {act}"
        )
    wanted = linear if linear in FLOP_FALLBACKS and not weight_only else act
    for dtype in FLOP_FALLBACKS[wanted]:
        peak = gpu.flops.get(dtype)  # type: ignore[call-overload]
        if peak:
            if dtype != wanted:
                notes.append(f"{gpu.name} lists no {wanted} FLOP/s; using its {dtype} peak")
            return dtype, peak, weight_only, notes
    tried = " or ".join(FLOP_FALLBACKS[wanted])
    hint = "add a flops entry for it with --gpu-file"
    if wanted == "fp32":
        # vLLM and SGLang load a float32 checkpoint in 16 bits by default (dtype "auto")
        hint = f"pass --weight-dtype fp16 (engines serve fp32 checkpoints in 16 bits), or {hint}"
    raise KvplanError(f"GPU {gpu.name} lists no {tried} FLOP/s for the roofline", hint=hint)


def _terms(p: Plan, ctx: int) -> _Terms:
    d = p.deployment
    spec, stage, gpu = d.spec, p.stage, d.gpu
    if not gpu.memory_bandwidth or gpu.memory_bandwidth <= 0:
        raise KvplanError(
            f"GPU {gpu.name} lists no memory bandwidth", hint="add memory_bandwidth with --gpu-file"
        )
    if d.tp > 1 and not gpu.interconnect_bandwidth:
        raise KvplanError(
            f"GPU {gpu.name} lists no interconnect bandwidth, needed for --tp {d.tp}",
            hint="add interconnect_bandwidth with --gpu-file",
        )
    counts = param_counts(spec)
    wb = weight_bytes(spec, weight_dtype=d.weight_dtype)
    scale = p.weights_total / wb.total if wb.total else 1.0  # exact checkpoint bytes if known
    gpus = d.tp * d.pp
    other_b = DTYPE_BYTES[wb.other_dtype]
    hidden = spec.hidden_size
    input_rows = (0 if spec.tie_embeddings else 1) + (1 if spec.learned_positions else 0)
    input_params = (
        0 if spec.tie_embeddings else spec.vocab_size * hidden
    ) + spec.learned_positions * hidden
    input_bytes = float(input_params * other_b) * scale
    weights_fixed = (wb.non_expert * scale - input_bytes) / gpus
    moe = spec.moe if counts.experts else None
    flops_dtype, peak, weight_only, notes = _flops_dtype(p, wb.linear_dtype)
    platform, platform_note = platform_of(gpu)
    if platform_note:
        notes.append(platform_note)
    if weight_only:
        notes.append(
            f"{wb.linear_dtype} weights are dequantized in the GEMV: they stream "
            "slower than 16-bit weights (quantized-stream factor)"
        )

    heads_q = spec.query_heads / d.tp
    attn_decode = attn_prefill = 0.0
    for layer in stage.layers:
        if layer.kind is LayerKind.NONE:  # no per-token cache to attend over
            continue
        held = kvcache.tokens_held(layer, ctx)
        attn_decode += 2 * held * heads_q * _attention_widths(spec, layer)
        attn_prefill += (
            2 * _causal_pairs(ctx, layer.window) * heads_q * _prefill_width(spec, layer.kind)
        )
    matmul_per_token = 2 * (counts.active - input_params) / gpus

    kv_read = kvcache.kv_bytes_per_sequence(stage, ctx, d.kv_dtype, kv_heads=p.kv_heads_per_gpu)
    kv_write = kvcache.kv_bytes_per_token(
        stage, d.kv_dtype, kv_heads=p.kv_heads_per_gpu
    ) + kvcache.state_bytes_per_sequence(stage, d.kv_dtype)
    gated = 3 if spec.gated_mlp else 2
    sharded = (
        spec.query_heads * (spec.head_dim + spec.v_head_dim)
        + 2 * spec.kv_heads * spec.head_dim
        + gated * ffn_width(spec)
    )
    per_layer = RESIDUAL_TENSORS * hidden + sharded / d.tp
    other = (
        stage.num_layers * per_layer * ACTIVATION_BYTES + spec.vocab_size / d.tp * LOGIT_BYTES
    ) * READ_AND_WRITE
    if d.pp > 1:
        notes.append(
            f"PP {d.pp}: a token passes the {d.pp} stages in turn; the step is "
            f"{d.pp} x the heaviest stage (no micro-batch overlap assumed)"
        )
    if spec.mla is not None:
        notes.append(
            "MLA decode attends over the cached latent (absorbed form): per head "
            "2 x (2 x kv_lora_rank + rope) FLOPs per cached token"
        )
    if any(layer.is_recurrent for layer in stage.layers):
        notes.append(
            "linear-attention / Mamba layers: their fixed state is read and written "
            "each step; their mixing FLOPs are counted as projections only"
        )
    prefill_flops = ctx * matmul_per_token + attn_prefill
    return _Terms(
        weights_fixed=weights_fixed,
        weights_experts=wb.experts * scale / gpus,
        experts=moe.num_experts if moe else 0,
        top_k=moe.experts_per_token if moe else 0,
        row_bytes=float(input_rows * hidden * other_b) * scale / gpus,
        kv_read=kv_read,
        kv_write=kv_write,
        other_per_token=other,
        matmul_flops_per_token=matmul_per_token,
        attention_flops_per_seq=attn_decode,
        prefill_flops=prefill_flops,
        allreduces=ALLREDUCES_PER_LAYER * stage.num_layers if d.tp > 1 else 0,
        allreduce_bytes_per_token=hidden * ACTIVATION_BYTES,
        bandwidth=gpu.memory_bandwidth,
        peak=peak,
        flops_dtype=flops_dtype,
        link_bandwidth=gpu.interconnect_bandwidth,
        tp=d.tp,
        pp=d.pp,
        weight_only=weight_only,
        notes=tuple(notes),
        ctx=ctx,
        layers=stage.num_layers,
        moe_layers=sum(1 for layer in stage.layers if layer.moe) if moe else 0,
        mla_layers=sum(1 for layer in stage.layers if layer.kind is LayerKind.MLA),
        platform=platform,
        link=link_of(gpu),
    )


def _first_true(ok: Callable[[int], bool], limit: int = MAX_SEARCH_BATCH) -> int | None:
    """Smallest n in [1, limit] with ok(n), for ok false-then-true."""
    return smallest_true(ok, limit)


def kv_dominant_batch(t: _Terms) -> int | None:
    """Smallest batch whose KV traffic reaches the weight traffic (None: no per-token KV).
    Dense: ceil(weights / KV per sequence); MoE weights grow with B (concave), KV linearly."""
    if t.kv_read + t.kv_write <= 0:
        return None
    return _first_true(lambda b: t.kv(b) >= t.weights(b))


def compute_bound_batch(t: _Terms, eff: Efficiency) -> int | None:
    """Smallest batch at which FLOPs/(peak*eff) reach bytes/(bw*eff) (None: never, when each
    sequence's KV bytes cost more time than its FLOPs, e.g. long contexts at small G/H)."""
    return _first_true(lambda b: t.compute_s(b, eff) >= t.memory_s(b, eff))


def prefill_efficiency(t: _Terms, eff: Efficiency) -> float:
    """Prefill FLOP/s / dense peak: the MLA one (when set) for a model with MLA layers (its
    prefill decompresses the latent per head and, in the data, always runs with DeepSeek's
    256-expert MoE: both would be in it), else the platform's. Cross-validation did not
    choose it (docs/roofline.md), so it is off (0) by default."""
    if t.mla_layers and eff.mla_prefill_compute:
        return eff.mla_prefill_compute
    return eff.prefill_compute


def prefill_seconds(t: _Terms, eff: Efficiency, prompts: float = 1) -> float:
    """`prompts` prompts of t.ctx tokens prefilled together (time to first token, per
    stage): compute at the prefill efficiency, never faster than one pass over the weights,
    plus the all-reduces and the fixed per-step cost."""
    tokens = prompts * t.ctx
    return (
        max(
            prompts * t.prefill_flops / (t.peak * prefill_efficiency(t, eff)),
            t.weights(tokens) / (t.bandwidth * eff.bandwidth * t.weight_stream(eff)),
            t.layers * eff.layer_floor_s,
        )
        + t.comm_s(tokens, eff)
        + t.fixed_s(eff)
        + eff.prefill_overhead_s
    )


def serving_prefill_seconds(
    step: _Terms, prompt: _Terms, *, concurrency: float, output_tokens: int, eff: Efficiency
) -> float:
    """What the prompts arriving during one serving step add to it (per stage): C / O prompts
    of prompt.ctx tokens, at their prefill FLOPs and all-reduce transfers (the weights are
    already streamed for the decodes, the fixed costs already paid)."""
    per_step = concurrency / output_tokens
    _, xfer = step.comm_parts(per_step * prompt.ctx, eff)
    return per_step * prompt.prefill_flops / (prompt.peak * prefill_efficiency(prompt, eff)) + xfer


def _estimate(
    t: _Terms, *, batch: int, ctx: int, eff: Efficiency, gpu: str, crossovers: bool = True
) -> DecodeEstimate:
    weights, kv = t.weights(batch), t.kv(batch)
    other = t.other_per_token * batch
    flops = t.flops(batch)
    s = step_times(t, batch, eff)
    decode_s = t.pp * s.step_s
    prefill_s = t.pp * prefill_seconds(t, eff)
    total = weights + kv + other
    return DecodeEstimate(
        batch=batch,
        ctx=ctx,
        decode_ms=decode_s * 1e3,
        decode_tokens_per_s=batch / decode_s,
        tokens_per_s_per_seq=1 / decode_s,
        prefill_ms=prefill_s * 1e3,
        bound="compute" if s.compute_s > s.memory_s else "memory",
        bytes_weights=ceil(weights),
        bytes_kv=ceil(kv),
        bytes_other=ceil(other),
        flops=flops,
        flops_attention=batch * t.attention_flops_per_seq,
        prefill_flops=t.prefill_flops,
        intensity=flops / total if total else inf,
        ridge=t.peak / t.bandwidth,
        effective_ridge=t.peak * eff.compute / (t.bandwidth * eff.bandwidth),
        kv_share=kv / total if total else 0.0,
        memory_s=s.memory_s,
        compute_s=s.compute_s,
        comm_s=s.comm_s,
        overhead_s=s.fixed_s,
        step_s=s.step_s,
        experts_touched=t.experts_touched(batch) if t.experts else None,
        kv_dominant_batch=kv_dominant_batch(t) if crossovers else None,
        compute_bound_batch=compute_bound_batch(t, eff) if crossovers else None,
        gpu=gpu,
        bandwidth=t.bandwidth,
        peak_flops=t.peak,
        flops_dtype=t.flops_dtype,
        tp=t.tp,
        pp=t.pp,
        efficiency=eff,
        notes=t.notes,
        weights_s=s.weights_s,
        kv_s=s.kv_s,
        other_s=s.other_s,
        layer_overhead_s=s.fixed_s - eff.step_overhead_s,
        comm_latency_s=s.comm_latency_s,
        platform=t.platform,
        link=t.link if t.tp > 1 else None,
        kv_spread=s.kv_spread,
    )


def _check(batch: int, ctx: int) -> None:
    if batch <= 0:
        raise KvplanError(f"batch must be a positive integer, got {batch}")
    if ctx <= 0:
        raise KvplanError(f"context must be a positive integer, got {ctx}")


def _eff(plan: Plan, efficiency: Efficiency | None) -> Efficiency:
    d = plan.deployment
    return efficiency or default_efficiency(d.gpu, d.engine.value, d.engine_version)


def estimate_decode(
    plan: Plan, *, batch: int, ctx: int, efficiency: Efficiency | None = None
) -> DecodeEstimate:
    """Roofline estimate of one decode step of `batch` sequences holding `ctx` tokens each.
    Without `efficiency`, the fitted profile of the GPU's platform and link is used."""
    _check(batch, ctx)
    eff = _eff(plan, efficiency)
    return _estimate(_terms(plan, ctx), batch=batch, ctx=ctx, eff=eff, gpu=plan.deployment.gpu.name)


def decode_terms(plan: Plan, ctx: int) -> _Terms:
    """The per-plan constants of the step at `ctx` (for fitting: `step_times(terms, B, eff)`
    is then plain arithmetic)."""
    if ctx <= 0:
        raise KvplanError(f"context must be a positive integer, got {ctx}")
    return _terms(plan, ctx)


# ---- serving: continuous batching with chunked prefill -------------------------------------
class ServingEstimate(Frozen):
    """Expected time per output token (TPOT) of a serving benchmark at fixed concurrency.

    Each of the C running requests emits one token per step and lasts O steps, so on average
    C / O new prompts enter per step, and with chunked prefill their C * I / O prompt tokens
    share the step with the decodes. The decodes run at the mean context I + O / 2.
      tpot = pure decode step(C, I + O/2) + prefill share
      prefill share = prefill FLOPs of C * I / O tokens / (peak * e_prefill) + their all-reduce
                      transfers (the weights are already streamed for the decodes)."""

    concurrency: int
    input_tokens: int
    output_tokens: int
    decode: DecodeEstimate  # the pure decode step at (C, I + O/2)
    prefill_tokens_per_step: float  # C * I / O
    prefill_s_per_step: float  # added to each step by those prompt tokens
    tpot_ms: float  # expected time per output token = one mixed step
    prefill_share: float  # prefill_s_per_step / tpot
    ttft_ms: float  # one prompt of I tokens alone (compute-bound prefill)
    output_tokens_per_s: float  # aggregate: C / tpot


def estimate_serving(
    plan: Plan,
    *,
    concurrency: int,
    input_tokens: int,
    output_tokens: int,
    efficiency: Efficiency | None = None,
) -> ServingEstimate:
    """TPOT of a serving benchmark (vLLM/SGLang `benchmark_serving` style) at `concurrency`
    requests in flight, each with `input_tokens` prompt and `output_tokens` output tokens."""
    _check(concurrency, input_tokens)
    if output_tokens <= 0:
        raise KvplanError(f"output length must be a positive integer, got {output_tokens}")
    eff = _eff(plan, efficiency)
    ctx = input_tokens + max(1, output_tokens // 2)
    t = _terms(plan, ctx)
    pure = _estimate(
        t, batch=concurrency, ctx=ctx, eff=eff, gpu=plan.deployment.gpu.name, crossovers=False
    )
    prompt = _terms(plan, input_tokens)
    tokens = concurrency * input_tokens / output_tokens
    prefill_s = t.pp * serving_prefill_seconds(
        t, prompt, concurrency=concurrency, output_tokens=output_tokens, eff=eff
    )
    tpot_s = pure.decode_ms / 1e3 + prefill_s
    return ServingEstimate(
        concurrency=concurrency,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        decode=pure,
        prefill_tokens_per_step=tokens,
        prefill_s_per_step=prefill_s,
        tpot_ms=tpot_s * 1e3,
        prefill_share=prefill_s / tpot_s,
        ttft_ms=t.pp * prefill_seconds(prompt, eff) * 1e3,
        output_tokens_per_s=concurrency / tpot_s,
    )


def sweep(
    plan: Plan, *, ctx: int, batches: list[int], efficiency: Efficiency | None = None
) -> list[DecodeEstimate]:
    """The same plan at several batch sizes (crossovers computed once, on the first)."""
    eff = _eff(plan, efficiency)
    if not batches:
        return []
    for b in batches:
        _check(b, ctx)
    t = _terms(plan, ctx)
    gpu = plan.deployment.gpu.name
    return [
        _estimate(t, batch=b, ctx=ctx, eff=eff, gpu=gpu, crossovers=i == 0)
        for i, b in enumerate(batches)
    ]


def sweep_batches(*limits: int | None, cap: int = 1 << 16) -> list[int]:
    """Powers of two from 1 up to the largest given limit (at least 1, at most `cap`), plus
    the limits themselves, so a sweep shows where each crossover falls."""
    top = min(max([1, *(n for n in limits if n)]), cap)
    out = [1 << k for k in range(top.bit_length()) if 1 << k <= top]
    out += [n for n in limits if n and n <= cap]
    return sorted(set(out))


# ---- G variants, for `kvplan roofline` ----------------------------------------------------
class GSweep(Frozen):
    """Step time against batch for one number of KV heads."""

    kv_heads: int
    label: str
    max_batch: int | None  # at ctx, in this deployment's KV budget (None: weights do not fit)
    kv_dominant_batch: int | None
    compute_bound_batch: int | None
    points: tuple[DecodeEstimate, ...]


class RooflineReport(Frozen):
    model: str
    estimate: DecodeEstimate
    max_batch: int | None  # of the model as given, at ctx
    sweeps: tuple[GSweep, ...]  # first: the model as given
    skipped: tuple[str, ...] = ()
    serving: ServingEstimate | None = None  # when an arrival pattern was given


def _variant_plan(base: Plan, g: int) -> Plan | None:
    d = base.deployment
    spec = d.spec.with_kv_heads(g)
    try:
        p = capacity.plan(d.with_(spec=spec, weights_override=None))
    except KvplanError:
        return None
    return p if p.weights_fit else None


def _max_batch_or_none(p: Plan, ctx: int) -> int | None:
    try:
        return capacity.max_batch(p, ctx)
    except KvplanError:
        return None


def roofline_report(
    p: Plan,
    *,
    batch: int,
    ctx: int,
    efficiency: Efficiency | None = None,
    compare: bool = True,
    serving: tuple[int, int] | None = None,
) -> RooflineReport:
    """The estimate at (batch, ctx) plus a batch sweep for the model's G and, for standard
    attention, MHA (G = H), MQA (G = 1) and a middle G, all in the same deployment.
    `serving=(input_tokens, output_tokens)` adds the serving TPOT at concurrency `batch`."""
    eff = _eff(p, efficiency)
    est = estimate_decode(p, batch=batch, ctx=ctx, efficiency=eff)
    spec = p.deployment.spec
    fits = _max_batch_or_none(p, ctx)
    variants: list[tuple[int, Plan | None]] = [(spec.kv_heads, p)]
    skipped: list[str] = []
    if compare and spec.mla is None and spec.layout.value != "hybrid":
        h = spec.query_heads
        middle = [g for g in (8, 4, 2) if h % g == 0 and 1 < g < h]
        for g in (h, *middle[:1], 1):
            if g not in (v for v, _ in variants):
                variants.append((g, _variant_plan(p, g)))
    elif compare:
        skipped.append(f"{spec.layout.value.upper()} model: no G variants to compare")
    resolved: list[tuple[int, Plan, _Terms, int | None, int | None, int | None]] = []
    for g, vp in variants:
        if vp is None:
            skipped.append(f"G={g}: not a valid deployment here (weights or TP split)")
            continue
        t = _terms(vp, ctx)
        resolved.append(
            (
                g,
                vp,
                t,
                _max_batch_or_none(vp, ctx),
                kv_dominant_batch(t),
                compute_bound_batch(t, eff),
            )
        )
    # One batch axis for every G: powers of two up to the furthest limit of any G, plus the
    # requested batch and the model's own limits (other G's odd limits would only clutter).
    furthest = max([n for _, _, _, *found in resolved for n in found if n] or [batch])
    own = resolved[0][3:] if resolved else ()
    batches = sorted(set(sweep_batches(furthest)) | set(sweep_batches(batch, *own)))
    sweeps = tuple(
        GSweep(
            kv_heads=g,
            label=label_for(spec.query_heads, g),
            max_batch=vmax,
            kv_dominant_batch=kv_b,
            compute_bound_batch=cb_b,
            points=tuple(
                _estimate(
                    t, batch=b, ctx=ctx, eff=eff, gpu=vp.deployment.gpu.name, crossovers=False
                )
                for b in batches
            ),
        )
        for g, vp, t, vmax, kv_b, cb_b in resolved
    )
    serving_est = (
        estimate_serving(
            p,
            concurrency=batch,
            input_tokens=serving[0],
            output_tokens=serving[1],
            efficiency=eff,
        )
        if serving
        else None
    )
    return RooflineReport(
        model=spec.name,
        estimate=est,
        max_batch=fits,
        sweeps=sweeps,
        skipped=tuple(skipped),
        serving=serving_est,
    )
