"""Roofline latency: one decode step and one prefill, per GPU, from a capacity `Plan`.

A decode step at batch B and context ctx streams, on each GPU,
  weights   the resident weights once (MoE: only the experts the batch touches, expected
            E * (1 - (1 - k/E)^B) of E per layer under uniform top-k routing; the input
            embedding table is gathered, B rows, not streamed),
  KV        every sequence's cache (full layers ctx tokens, sliding layers min(ctx, window),
            MLA the latent) plus one new token's K/V written per sequence,
  other     the activations (each layer's tensors written once and read once) and logits,
and does FLOPs = 2 * matmul params * B  +  attention over the cache (QK^T and AV for every
query head: 2 * B * held * H * (d_k + d_v) per layer, which does not shrink with G).
  step = max(bytes / (bandwidth * eff_bw), FLOPs / (peak[dtype] * eff_compute))
         + per-step overhead + tensor-parallel all-reduces
  all-reduce (ring, 2 per layer of B * hidden activations):
         latency + 2 (tp-1)/tp * bytes / (interconnect/2 one direction * eff_link)
Weight-only quantized formats (int8/int4/mxfp4, fp8 without fp8 tensor cores) are
dequantized on the fly in the GEMV, so their bytes stream slower (QUANTIZED_STREAM_FACTOR).
Pipeline parallelism: the token passes the stages in turn (no micro-batch overlap assumed),
so the step is pp x the heaviest stage's time.
Prefill of a ctx-token prompt is compute-bound:
  (2 * matmul params * ctx + attention 2 * S * H * (d_k + d_v) per layer) / (peak * eff),
  S = sum over positions t of min(t, window) (= ctx(ctx+1)/2 for full causal attention),
never faster than one pass over the weights.
Everything is bytes, seconds, FLOP and FLOP/s (decimal bandwidth, as vendors state it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import ceil, inf
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kvplan.core import capacity, kvcache
from kvplan.core.budget import ffn_width
from kvplan.core.capacity import Plan
from kvplan.core.design import label_for
from kvplan.core.dtypes import DTYPE_BYTES
from kvplan.core.geometry import LayerKind, ModelSpec
from kvplan.core.params import param_counts, weight_bytes
from kvplan.core.search import smallest_true
from kvplan.core.sizing import default_kv_dtype
from kvplan.errors import KvplanError

# ---- efficiency defaults and their evidence (docs/roofline.md has the long version) -------
# Achieved / rated memory bandwidth in batch-1 decode with 16-bit weights, from the published
# points in tests/data/decode_measurements.yaml (kvplan's byte count / measured time / rated
# bandwidth): gpt-fast 0.68 and LMDeploy 0.65-0.73 on A100; llama.cpp 0.69-0.83 on RTX
# 3090/4090/6000 Ada/A6000 and Apple M2 Ultra/M3 Max, but 0.49 / 0.56 on A100 / H100 PCIe.
# The median of the 15 points is 0.73 (gpt-fast's README itself reports 1397 GB/s of 2039).
DEFAULT_BW_EFFICIENCY = 0.72
# Achieved / dense peak tensor FLOP/s for a whole forward pass. The best-shaped bf16 GEMMs
# reach 86% (A100 SXM, 267.9 of 312 TFLOP/s) and 80% (H100 SXM, 792.1 of 989): the
# "maximum achievable matmul FLOPS" table of stas00/ml-engineering. Attention, norms and
# the odd-shaped decode and prefill GEMMs do worse; 0.6 of peak for the whole pass.
DEFAULT_COMPUTE_EFFICIENCY = 0.6
# NCCL all-reduce bus bandwidth / link rate for large messages on 8x A100 NVLink 3: ~200 and
# 208 GB/s of 300 GB/s per direction (nccl-tests issues #149, #178): 0.67-0.69, so 0.7.
DEFAULT_LINK_EFFICIENCY = 0.7
# Fixed cost of one small all-reduce (kernel launch + synchronisation across the group).
# gpt-fast on 8x A100: Llama-2-7B takes 3.04 ms/token where streaming its weight share takes
# 1.14 ms, leaving 1.9 ms for 64 all-reduces (30 us each); Llama-2-70B leaves 4.3 ms for 160
# (27 us). NCCL's small-message latency without CUDA graphs is of that order; with CUDA
# graphs and NVLink SHARP it drops to ~6 us (nccl issue #1259). 25 us, slightly below both.
DEFAULT_ALLREDUCE_LATENCY_S = 25e-6
# Per-step fixed cost outside the GPU's streaming (sampling, scheduling, launch gaps). The
# batch-1 records show no consistent offset across engines (see docs/roofline.md), so 0.
DEFAULT_STEP_OVERHEAD_S = 0.0
# Weight-only quantized GEMVs unpack and rescale every weight on the CUDA cores, so those
# bytes stream slower. gpt-fast's README reports 1069 GB/s (int8) and 863 GB/s (int4) for
# Llama-2-7B and 1323 / 1098 GB/s for 70B, against 1397 GB/s for bf16 7B: 0.77, 0.62, 0.95,
# 0.79 (median 0.78). llama.cpp on the same GPU: Q4_K_M / F16 0.65 (RTX 4090), 0.66 (3090),
# Q8_0 / F16 0.84 (4090). 0.77; docs/roofline.md shows how sensitive the fit is to it.
QUANTIZED_STREAM_FACTOR = 0.77

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


class Efficiency(BaseModel):
    """Achieved fractions of the rated figures, and fixed costs (seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bandwidth: float = Field(default=DEFAULT_BW_EFFICIENCY, gt=0, le=1)
    compute: float = Field(default=DEFAULT_COMPUTE_EFFICIENCY, gt=0, le=1)
    interconnect: float = Field(default=DEFAULT_LINK_EFFICIENCY, gt=0, le=1)
    allreduce_latency_s: float = Field(default=DEFAULT_ALLREDUCE_LATENCY_S, ge=0)
    step_overhead_s: float = Field(default=DEFAULT_STEP_OVERHEAD_S, ge=0)
    quantized_stream: float = Field(default=QUANTIZED_STREAM_FACTOR, gt=0, le=1)


def efficiency(*, bandwidth: float | None = None, compute: float | None = None) -> Efficiency:
    """Defaults with the user's overrides, each checked to lie in (0, 1]."""
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
    return Efficiency(**update)


class DecodeEstimate(BaseModel):
    """One decode step (and the prefill) at (batch, ctx); every field in SI units."""

    model_config = ConfigDict(frozen=True)

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
    memory_s: float
    compute_s: float
    comm_s: float  # tensor-parallel all-reduces (0 at tp 1)
    overhead_s: float
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

    def experts_touched(self, batch: int) -> float:
        e, k = self.experts, self.top_k
        return e * (1 - (1 - k / e) ** batch) if e else 0.0

    def weights(self, batch: int) -> float:
        experts = (
            self.weights_experts * self.experts_touched(batch) / self.experts
            if self.experts
            else 0.0
        )
        return self.weights_fixed + experts + self.row_bytes * batch

    def kv(self, batch: int) -> float:
        return batch * (self.kv_read + self.kv_write)

    def flops(self, batch: int) -> float:
        return batch * (self.matmul_flops_per_token + self.attention_flops_per_seq)

    def memory_s(self, batch: int, eff: Efficiency) -> float:
        bw = self.bandwidth * eff.bandwidth
        return (
            self.weights(batch) / (bw * self.weight_stream(eff))
            + (self.kv(batch) + self.other_per_token * batch) / bw
        )

    def weight_stream(self, eff: Efficiency) -> float:
        return eff.quantized_stream if self.weight_only else 1.0

    def compute_s(self, batch: int, eff: Efficiency) -> float:
        return self.flops(batch) / (self.peak * eff.compute)

    def comm_s(self, tokens: int, eff: Efficiency) -> float:
        if self.tp == 1 or not self.allreduces:
            return 0.0
        assert self.link_bandwidth is not None
        one_way = self.link_bandwidth / 2 * eff.interconnect
        ring = 2 * (self.tp - 1) / self.tp * self.allreduce_bytes_per_token * tokens / one_way
        return self.allreduces * (eff.allreduce_latency_s + ring)


def _attention_widths(spec: ModelSpec, kind: LayerKind) -> int:
    """d_k + d_v a query head attends with: latent + rope and latent for MLA (absorbed)."""
    if kind is LayerKind.MLA:
        assert spec.mla is not None
        return 2 * spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim
    return spec.head_dim + spec.v_head_dim


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
    raise KvplanError(
        f"GPU {gpu.name} lists no {tried} FLOP/s for the roofline",
        hint="add a flops entry for it with --gpu-file",
    )


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
    if weight_only:
        notes.append(
            f"{wb.linear_dtype} weights are dequantized in the GEMV: they stream "
            "slower than 16-bit weights (quantized-stream factor)"
        )

    heads_q = spec.query_heads / d.tp
    attn_decode = attn_prefill = 0.0
    for layer in stage.layers:
        if layer.kind is LayerKind.NONE:
            continue
        held = kvcache.tokens_held(layer, ctx)
        attn_decode += 2 * held * heads_q * _attention_widths(spec, layer.kind)
        attn_prefill += (
            2 * _causal_pairs(ctx, layer.window) * heads_q * _prefill_width(spec, layer.kind)
        )
    matmul_per_token = 2 * (counts.active - input_params) / gpus

    kv_read = kvcache.kv_bytes_per_sequence(stage, ctx, d.kv_dtype, kv_heads=p.kv_heads_per_gpu)
    kv_write = kvcache.kv_bytes_per_token(
        stage, d.kv_dtype, kv_heads=p.kv_heads_per_gpu
    ) + kvcache.state_bytes_per_sequence(stage)
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
    if any(layer.kind is LayerKind.NONE for layer in stage.layers):
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


def _estimate(
    t: _Terms, *, batch: int, ctx: int, eff: Efficiency, gpu: str, crossovers: bool = True
) -> DecodeEstimate:
    weights, kv = t.weights(batch), t.kv(batch)
    other = t.other_per_token * batch
    flops = t.flops(batch)
    memory_s, compute_s = t.memory_s(batch, eff), t.compute_s(batch, eff)
    comm_s = t.comm_s(batch, eff)
    step_s = max(memory_s, compute_s) + comm_s + eff.step_overhead_s
    decode_s = t.pp * step_s
    prefill_s = t.pp * (
        max(
            t.prefill_flops / (t.peak * eff.compute),
            t.weights(ctx) / (t.bandwidth * eff.bandwidth * t.weight_stream(eff)),
        )
        + t.comm_s(ctx, eff)
        + eff.step_overhead_s
    )
    total = weights + kv + other
    return DecodeEstimate(
        batch=batch,
        ctx=ctx,
        decode_ms=decode_s * 1e3,
        decode_tokens_per_s=batch / decode_s,
        tokens_per_s_per_seq=1 / decode_s,
        prefill_ms=prefill_s * 1e3,
        bound="compute" if compute_s > memory_s else "memory",
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
        memory_s=memory_s,
        compute_s=compute_s,
        comm_s=comm_s,
        overhead_s=eff.step_overhead_s,
        step_s=step_s,
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
    )


def _check(batch: int, ctx: int) -> None:
    if batch <= 0:
        raise KvplanError(f"batch must be a positive integer, got {batch}")
    if ctx <= 0:
        raise KvplanError(f"context must be a positive integer, got {ctx}")


def estimate_decode(
    plan: Plan, *, batch: int, ctx: int, efficiency: Efficiency | None = None
) -> DecodeEstimate:
    """Roofline estimate of one decode step of `batch` sequences holding `ctx` tokens each."""
    _check(batch, ctx)
    eff = efficiency or Efficiency()
    return _estimate(_terms(plan, ctx), batch=batch, ctx=ctx, eff=eff, gpu=plan.deployment.gpu.name)


def sweep(
    plan: Plan, *, ctx: int, batches: list[int], efficiency: Efficiency | None = None
) -> list[DecodeEstimate]:
    """The same plan at several batch sizes (crossovers computed once, on the first)."""
    eff = efficiency or Efficiency()
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
class GSweep(BaseModel):
    """Step time against batch for one number of KV heads."""

    model_config = ConfigDict(frozen=True)

    kv_heads: int
    label: str
    max_batch: int | None  # at ctx, in this deployment's KV budget (None: weights do not fit)
    kv_dominant_batch: int | None
    compute_bound_batch: int | None
    points: tuple[DecodeEstimate, ...]


class RooflineReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    estimate: DecodeEstimate
    max_batch: int | None  # of the model as given, at ctx
    sweeps: tuple[GSweep, ...]  # first: the model as given
    skipped: tuple[str, ...] = ()


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
    p: Plan, *, batch: int, ctx: int, efficiency: Efficiency | None = None, compare: bool = True
) -> RooflineReport:
    """The estimate at (batch, ctx) plus a batch sweep for the model's G and, for standard
    attention, MHA (G = H), MQA (G = 1) and a middle G, all in the same deployment."""
    eff = efficiency or Efficiency()
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
    return RooflineReport(
        model=spec.name, estimate=est, max_batch=fits, sweeps=sweeps, skipped=tuple(skipped)
    )
