"""The KV-cache memory budget per GPU, with each serving engine's own semantics.

The formulas themselves are rows of the engine table (kvplan.core.engines), and the terms
that change between releases and platforms are the rows' release profiles; this module
estimates the terms they combine and keeps them in one typed `Budget`.
`--kv-memory` replaces all of it with a fixed budget (vLLM's kv_cache_memory_bytes).

TensorRT-LLM's PyTorch flow profiles a dry run of dummy context requests holding
max_num_tokens tokens together, one generated token each: the same forward term, and the
sampler term on one row per request (EngineProfile.sampler_rows). `--kv-memory` caps
TensorRT-LLM's estimate (kv_cache_config.max_gpu_total_bytes) instead of replacing it.

Peak activations are estimated the way vLLM's profiling run produces them. The run is one
forward pass of max_num_batched_tokens tokens and then the sampler on max_num_seqs rows;
the torch peak is the larger of the two:

  forward = tokens x ffn_width / tp x ACT_FFN          (MLP intermediates; MoE: ACT_FFN_MOE)
  sampler = seqs x vocab x ACT_SAMPLER + tokens x hidden x 2   (fp32 logits/probs/sort
            buffers, with the bf16 hidden states still alive)
  peak    = max(forward, sampler) x the release's activation scale

The forward pass of every vLLM 0.19 training log is under its sampler when the vocabulary is
large (Llama-3.1-8B: 1.89 GiB at TP 1, 2 and 4 alike), which is why the peak does not shrink
with TP. V0 (<=0.7) profiled max(max_model_len, 2048) tokens in one pass, so its peak grows
with max_model_len (vllm#10517). The coefficients are fitted on the training split
(`python benchmarks/engine_logs_vs_kvplan.py --fit`) and their held-out error is in
docs/engines.md.

CUDA-graph memory (subtracted up front from vLLM 0.20.0 on). vLLM captures one throw-away
graph per mode twice and extrapolates: estimate = max over modes of the first capture
+ sum over modes of per_graph x (N_mode - 1) (`profile_cudagraph_memory`, vllm 0.19.1 -
0.21.0 wheels alike), where N_mode is the number of capture sizes of that mode
(`cudagraph_capture_counts`). kvplan's fit (the "Estimated CUDA graph memory" lines of the
0.19 H100 training logs, all at 51 piecewise + 51 full graphs) gives CG_BASE + CG_PER_LAYER x
layers at that count; CG_BASE is taken as the first capture and the layer term as the
extrapolated part, which is rescaled by the deployment's own graph count:

  graphs = CG_BASE + CG_PER_LAYER x layers x ((N_piecewise - 1) + (N_full - 1)) / 100
"""

from __future__ import annotations

from kvplan.core.deployment import Deployment, flag_name
from kvplan.core.engines import (
    ENGINES,
    Engine,
    EngineProfile,
    Platform,
    mrv2_skips_graph_estimate,
    parse_version,
    sm100_family,
)
from kvplan.core.frozen import Frozen
from kvplan.core.geometry import ModelSpec
from kvplan.core.quant_groups import Group
from kvplan.units import GiB

# Fitted on the training split (benchmarks/engine_logs_vs_kvplan.py --fit).
# ACT_FFN: 3 V0 training rows (two RTX 3090 logs of vllm#10517, vllm#10511 on H100); 9.18
# until the RTX 3090 got its CUDA total (23.58 GiB, printed by those logs) in place of
# nvidia-smi's 24.00 GiB, whose 0.38 GiB excess the fit had put into the activation peak.
ACT_FFN = 7.76  # bytes per token per FFN unit on the GPU (dense MLP)
ACT_FFN_MOE = 22.46  # bytes per token per activated FFN unit (fused MoE; 3 training rows)
ACT_SAMPLER = 14.93  # bytes per sequence per vocabulary entry (26 training rows)
# CG_*: the 23 TP 1 "Estimated CUDA graph memory" lines of vLLM 0.19 training rows (least
# squares, all at 51 + 51 graphs); 0.70 / 0.0046 on the 20 rows of the first fit, 0.72 /
# 0.0039 on 22 (until the Mistral-Small-3.1 w8a8 row's checkpoint entered the catalog).
CG_BASE = int(0.705 * GiB)  # CUDA-graph pool, fixed part (the first capture)
CG_PER_LAYER = int(0.00448 * GiB)  # per decoder layer on the GPU, at 100 extrapolated graphs
# Extrapolated graphs behind that fit: (51 - 1) + (51 - 1) at the 0.19 H100 API-server
# defaults (1024 seqs, 8192 tokens; `cudagraph_capture_counts(1024, 8192)`).
CG_REF_EXTRA_GRAPHS = 100
# Capture-size ceiling without compilation_config.max_cudagraph_capture_size (vllm 0.20.0 /
# 0.21.0 wheels, vllm/config/vllm.py `_set_cudagraph_sizes`; 0.33.0 uses 1024 on SM100).
CG_MAX_CAPTURE = 512

# weight dtypes that make vLLM's model_config.is_quantized true (a quantization method)
QUANTIZED_DTYPES = frozenset({"fp8", "int8", "int4", "mxfp4", "nvfp4", "fp4"})

# Kept for callers that predate release profiles (vLLM 0.19 on CUDA).
NON_TORCH_BYTES_SINGLE_GPU = int(0.25 * GiB)
NON_TORCH_BYTES_MULTI_GPU = int(2.09 * GiB)


class Budget(Frozen):
    """Every term of the KV budget for one GPU, in bytes."""

    engine: Engine
    engine_version: str = ""  # the modelled release line, e.g. "vLLM 0.19"
    knob: str | None
    fraction: float | None
    total_memory: int  # as CUDA reports it
    engine_memory: int  # what the engine's fraction grants (total * fraction, or similar)
    weights: int
    activations: int
    overhead: int
    cudagraph: int = 0  # subtracted before KV sizing (vLLM >= 0.20.0)
    preload: int = 0  # in use before the weights load (SGLang's snapshot)
    kv_budget: int  # never negative: see `shortfall`
    shortfall: int = 0  # bytes missing when the weights and reserves exceed the grant
    direct: bool = False  # --kv-memory given
    formula: str


def ffn_width(spec: ModelSpec) -> int:
    """Intermediate width one token's MLP materializes (MoE: top-k experts + shared)."""
    if is_moe(spec):
        assert spec.moe is not None
        moe = spec.moe
        routed = moe.experts_per_token * moe.expert_intermediate
        return max(routed + moe.shared_experts * moe.shared_intermediate, spec.intermediate_size)
    return spec.intermediate_size or 4 * spec.hidden_size


def is_moe(spec: ModelSpec) -> bool:
    return spec.moe is not None and any(layer.moe for layer in spec.layers)


def estimate_activations(
    spec: ModelSpec,
    *,
    tp: int,
    max_num_batched_tokens: int,
    max_num_seqs: int,
    scale: float = 1.0,
) -> int:
    """Peak activation memory of vLLM's profiling pass, per GPU (see module docstring)."""
    per_unit = ACT_FFN_MOE if is_moe(spec) else ACT_FFN
    forward = max_num_batched_tokens * ffn_width(spec) / tp * per_unit
    sampler = (
        max_num_seqs * spec.vocab_size * ACT_SAMPLER + max_num_batched_tokens * spec.hidden_size * 2
    )
    return int(max(forward, sampler) * scale)


# FlashInfer's TRT-LLM-gen FP4 MoE tile ladder (FP4BlockScaleLauncher::getSupportedTileNums
# for fp4 activations: {8, 16, 32, 64} + {128, 256}, flashinfer-python 0.6.8.post1 /
# 0.6.11.post2 data/csrc/trtllm_fused_moe_kernel_launcher.cu:1476-1487)
TRTLLM_FP4_MOE_TILES = (8, 16, 32, 64, 128, 256)


def _trtllm_fallback_tile(tokens: int, top_k: int, local_experts: int) -> int:
    """The tile FlashInfer's TRT-LLM-gen MoE uses without a tuned tactic (selectDefaultTileN):
    the next power of two of the mean tokens per expert, clamped to the ladder, then the
    smallest of it and its neighbours - the one below it when there is one."""
    mean = tokens * top_k / local_experts
    n = max(1, -int(-mean // 1))  # ceil
    power = 1 << (n - 1).bit_length() if n > 1 else 1
    tile = min(max(power, TRTLLM_FP4_MOE_TILES[0]), TRTLLM_FP4_MOE_TILES[-1])
    i = TRTLLM_FP4_MOE_TILES.index(tile)
    return TRTLLM_FP4_MOE_TILES[i - 1] if i > 0 else tile


def trtllm_nvfp4_moe_peak(spec: ModelSpec, *, tp: int, tokens: int) -> int:
    """Bytes one MoE layer holds while FlashInfer's TRT-LLM-gen NVFP4 kernel runs the
    profiling pass's `tokens` (vLLM 0.21-0.22 on SM100 GPUs, EngineProfile.trtllm_nvfp4_moe).

    Before FlashInfer's autotune (which runs after KV sizing) the kernel takes its fallback
    tile T (`_trtllm_fallback_tile`) and pads the routed rows to
        P = (min(E, M k) + (M k - min(E, M k)) // T) x T      (getMaxPermutedPaddedCount)
    for M tokens, top-k k and E experts on the rank (TP splits each expert, not the set), then
    allocates gemm1's fp4 output P x I_tp / 2 (+ one e4m3 scale per 16), gemm2's bf16 output
    P x hidden x 2 and the finalized M x hidden x 2; the layer's bf16 input and its NVFP4
    copy (M x hidden x (2 + 1/2 + 1/16)) are alive beside them. gemm2's output does not
    shrink with TP: it is what the dense-FFN form (tokens x ffn / tp) misses at TP > 1."""
    moe = spec.moe
    assert moe is not None
    h, k, e = spec.hidden_size, moe.experts_per_token, moe.num_experts
    inter = moe.expert_intermediate // tp
    routed = tokens * k
    tile = _trtllm_fallback_tile(tokens, k, e)
    filled = min(e, routed)
    padded = (filled + (routed - filled) // tile) * tile
    gemm1 = padded * inter // 2 + padded * inter // 16
    gemm2 = padded * h * 2
    around = tokens * h * 2 + tokens * (h * 2 + h // 2 + h // 16)
    return gemm1 + gemm2 + around


def runs_trtllm_nvfp4_moe(d: Deployment) -> bool:
    """W4A4 NVFP4 routed experts (ModelOpt / compressed-tensors: values, e4m3 scales per 16,
    weight and input global scales) served by a vLLM release that runs them through
    FlashInfer's TRT-LLM-gen MoE on an SM100-family GPU (kvplan.core.engines)."""
    spec = d.spec
    if d.engine is not Engine.VLLM or not sm100_family(d.gpu) or not is_moe(spec):
        return False
    if spec.quantization is None or d.weight_dtype is not None:
        return False
    fmt = spec.quantization.format_for(Group.EXPERTS, ("model.layers.1.mlp.experts.0.up_proj",))
    w4a4 = fmt is not None and fmt.name == "nvfp4" and fmt.matrix_bytes == 8
    return w4a4 and d.profile.runs_trtllm_nvfp4_moe(d.engine_version)


def cudagraph_capture_counts(
    max_num_seqs: int, max_num_batched_tokens: int, decode_query_len: int = 1
) -> tuple[int, int]:
    """(piecewise, full) CUDA graphs vLLM captures by default (FULL_AND_PIECEWISE mode).

    Capture sizes (vllm 0.20.0 / 0.21.0 `VllmConfig._set_cudagraph_sizes`): ceiling
    min(2 x max_num_seqs x decode_query_len, 512, max_num_batched_tokens); sizes 1, 2, 4,
    every 8 below 256, every 16 from 256, plus max_num_batched_tokens when it is the
    ceiling. Piecewise graphs: every size. Full decode graphs (`cudagraph_dispatcher.py`):
    the sizes from decode_query_len to decode_query_len x max_num_seqs."""
    cap = min(max_num_seqs * decode_query_len * 2, CG_MAX_CAPTURE, max_num_batched_tokens)
    sizes = {i for i in (1, 2, 4) if i <= cap}
    if cap >= 8:
        sizes |= set(range(8, min(cap + 1, 256), 8))
    if cap >= 256:
        sizes |= set(range(256, cap + 1, 16))
    if max_num_batched_tokens <= cap:
        sizes.add(max_num_batched_tokens)
    full = sum(1 for x in sizes if decode_query_len <= x <= decode_query_len * max_num_seqs)
    return len(sizes), full


def estimate_cudagraph(
    layers_on_gpu: int,
    max_num_seqs: int = 1024,
    max_num_batched_tokens: int = 8192,
    decode_query_len: int = 1,
) -> int:
    """CUDA-graph pool estimate (what vLLM >= 0.20 subtracts before sizing the KV cache):
    first capture + the per-layer extrapolated part scaled to this deployment's graph count
    (module docstring). The defaults are the H100 API-server defaults the fit saw."""
    piecewise, full = cudagraph_capture_counts(
        max_num_seqs, max_num_batched_tokens, decode_query_len
    )
    extra = max(piecewise - 1, 0) + max(full - 1, 0)
    return CG_BASE + CG_PER_LAYER * layers_on_gpu * extra // CG_REF_EXTRA_GRAPHS


def estimate_overhead(
    tp: int,
    pp: int,
    profile: EngineProfile | None = None,
    platform: Platform = Platform.CUDA,
    *,
    pcie: bool = False,
) -> int:
    """Non-torch memory the release measures on this platform and layout (`pcie`: the
    GPUs talk over PCIe only, which some release lines measure apart at TP > 1)."""
    if profile is None:
        return NON_TORCH_BYTES_MULTI_GPU if tp * pp > 1 else NON_TORCH_BYTES_SINGLE_GPU
    return profile.non_torch_bytes(platform, tp, pp, pcie=pcie)


def deployment_terms(d: Deployment, layers_on_gpu: int) -> tuple[int, int, int]:
    """(activations, non-torch, cudagraph) for a deployment: the user's values where given,
    else the release profile's estimates. The non-torch estimate adds the profile's
    per-sequence buffers x max_num_seqs (TensorRT-LLM engine flow: runtime + decoder buffers,
    sized by max_batch_size); `--overhead` replaces the whole term."""
    profile = d.profile
    activations = (
        d.activation_reserve
        if d.activation_reserve is not None
        else estimate_activations(
            d.spec,
            tp=d.tp,
            max_num_batched_tokens=d.scheduler_tokens,
            max_num_seqs=profile.sampler_rows(
                d.scheduler_seqs,
                d.scheduler_tokens,
                d.max_model_len or d.spec.max_position_embeddings,
            ),
            scale=profile.activation_scale,
        )
    )
    if d.activation_reserve is None and runs_trtllm_nvfp4_moe(d):
        moe_peak = trtllm_nvfp4_moe_peak(d.spec, tp=d.tp, tokens=d.scheduler_tokens)
        activations = max(activations, int(moe_peak * profile.activation_scale))
    overhead = (
        d.overhead
        if d.overhead is not None
        else estimate_overhead(
            d.tp,
            d.pp,
            profile,
            d.platform,
            pcie=(d.gpu.interconnect or "").startswith("PCIe"),
        )
        + profile.batch_buffer_bytes(d.scheduler_seqs, d.spec.vocab_size, d.tp)
    )
    cudagraph = (
        estimate_cudagraph(
            layers_on_gpu, d.scheduler_seqs, d.scheduler_tokens, 1 + d.num_speculative_tokens
        )
        if profile.subtracts_cudagraphs(d.platform, d.engine_version)
        and not _runner_v2_without_estimate(d)
        else 0
    )
    return activations, overhead, cudagraph


def _runner_v2_without_estimate(d: Deployment) -> bool:
    """vLLM 0.22 - 0.28 run some models on Model Runner V2 by default, which returned 0 for
    the graph estimate (kvplan.core.engines.mrv2_skips_graph_estimate). Only a release
    number selects it: a line name means the line's newest release (0.33: graphs estimated)."""
    release = d.engine_version
    if d.engine is not Engine.VLLM or release is None or release == d.profile.version:
        return False
    spec = d.spec
    quantized = spec.quantization is not None or (d.weight_dtype or "") in QUANTIZED_DTYPES
    return mrv2_skips_graph_estimate(
        parse_version(release),
        spec.family,
        is_moe(spec),
        any(layer.is_recurrent for layer in spec.layers),
        quantized,
    )


def compute_budget(
    *,
    engine: Engine,
    total_memory: int,
    weights: int,
    activations: int,
    overhead: int,
    fraction: float | None,
    kv_memory: int | None,
    cudagraph: int = 0,
    preload: int = 0,
    engine_version: str = "",
) -> Budget:
    """The engine's formula (a row of kvplan.core.engines) applied to the terms. A budget
    below zero is reported as 0 with the shortfall: the weights do not fit."""
    rules = ENGINES[engine]
    knob = flag_name(rules.knob) if rules.knob else None
    if kv_memory is not None and rules.kv_memory_caps:
        # TensorRT-LLM: max_gpu_total_bytes caps the estimate (min of the two)
        capped = compute_budget(
            engine=engine,
            total_memory=total_memory,
            weights=weights,
            activations=activations,
            overhead=overhead,
            fraction=fraction,
            kv_memory=None,
            cudagraph=cudagraph,
            preload=preload,
            engine_version=engine_version,
        )
        if capped.kv_budget <= kv_memory:
            return capped
        return capped.model_copy(
            update={
                "kv_budget": kv_memory,
                "formula": capped.formula + ", capped at max_gpu_total_bytes (--kv-memory)",
            }
        )
    if kv_memory is not None:
        return Budget(
            engine=engine,
            engine_version=engine_version,
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
    terms = rules.budget(total_memory, weights, activations, overhead, fraction, cudagraph, preload)
    return Budget(
        engine=engine,
        engine_version=engine_version,
        knob=knob,
        fraction=fraction,
        total_memory=total_memory,
        engine_memory=terms.granted,
        weights=weights,
        activations=terms.activations,
        overhead=terms.overhead,
        cudagraph=terms.cudagraph,
        preload=terms.preload,
        kv_budget=max(0, terms.kv),
        shortfall=max(0, -terms.kv),
        formula=terms.formula,
    )
