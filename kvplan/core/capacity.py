"""What fits: per-GPU cache layout under TP/PP, the budget, and exact batch/context solvers.

Tensor parallelism splits KV heads across GPUs. vLLM gives each GPU max(1, G // tp) heads
and requires G % tp == 0 or tp % G == 0; other engines ceil(G / tp). When tp > G each head
is replicated tp / G times: that share of every GPU's pool holds copies. An MLA latent
is not split by TP: every rank caches the whole latent. Pipeline parallelism splits the
layers; the stage with the most cache bytes decides what fits.

Paged engines allocate whole blocks: a sequence of n tokens holds ceil(n / block) blocks.
Per-sequence bytes are nondecreasing in context (piecewise linear with sliding windows),
so the largest context is found by exact integer bisection, and "fits" means the answer
fits and one more sequence (or token) does not.
"""

from __future__ import annotations

from collections.abc import Callable
from math import ceil, lcm
from typing import Any

from kvplan.core import kvcache
from kvplan.core.budget import Budget, compute_budget, deployment_terms
from kvplan.core.deployment import Deployment, DraftModel
from kvplan.core.engines import Engine, baseboard_linked, divisors, sm100_family
from kvplan.core.frozen import Frozen
from kvplan.core.geometry import IndexerKind, Layer, LayerKind, Mixer, ModelSpec
from kvplan.core.hybrid_alloc import KERNEL_ALIGNMENT, HybridLayout, vllm_layout
from kvplan.core.kv_formats import INDEXER_FORMATS
from kvplan.core.params import (
    kv_replica_bytes,
    mtp_weight_bytes,
    replicated_weight_bytes,
    weight_bytes,
)
from kvplan.core.prefix_cache import (
    GDN_CHECKPOINT_ALIGNMENT,
    MambaCacheMode,
    gdn_checkpoint,
    uncounted_checkpoint,
)
from kvplan.core.search import largest_true
from kvplan.core.sglang_swa import (
    SWA_FULL_TOKENS_RATIO,
    SwaPools,
    release_key,
    rounds_to_page,
    swa_pools,
    uniform_cell_bytes,
    uses_hybrid_swa,
)
from kvplan.core.trt_windows import (
    WindowPools,
    full_length_stage,
    layer_windows,
    rounds_blocks_up,
    share_rule_for,
    window_pattern,
    window_pools,
)
from kvplan.errors import KvplanError
from kvplan.units import GiB

SGLANG_MAMBA_FULL_MEMORY_RATIO = 0.9  # server_args mamba_full_memory_ratio default
COMMON_CONTEXTS = tuple(2**k for k in range(11, 21))  # 2k ... 1M


class Replication(Frozen):
    factor: float  # copies of each KV head across the TP group
    wasted_fraction: float  # share of each GPU's KV pool holding copies
    non_wasting_tp: tuple[int, ...]  # TP sizes that would not replicate


class Plan(Frozen):
    """A deployment resolved to per-GPU numbers."""

    deployment: Deployment
    stage: ModelSpec  # the layers on the heaviest pipeline stage
    kv_heads_per_gpu: int
    weights_total: int
    weights_per_gpu: int  # the checkpoint's share + rope_cache_per_gpu
    budget: Budget
    kv_bytes_per_token: int  # per GPU
    block_bytes: int  # per GPU
    num_blocks: int
    kv_tokens: int  # tokens the pool holds (blocks * block size), per the engine's log
    replication: Replication | None
    max_positions: int | None
    notes: tuple[str, ...]
    hybrid: HybridLayout | None = None  # vLLM's grouped pool for mixed layer kinds
    state_pool_bytes: int | None = None  # SGLang hybrids: the Mamba-state pool
    state_slots: int | None = None  # SGLang hybrids: requests whose state the pool holds
    trt_windows: WindowPools | None = None  # TensorRT-LLM --vswa: one pool per window size
    swa_pools: SwaPools | None = None  # SGLang hybrid SWA: full + sliding-window token pools
    rope_cache_per_gpu: int = 0  # the engine's rotary cos/sin tables (in weights_per_gpu)
    # what each GPU holds beyond an even split (in weights_per_gpu): the tensors the engine
    # keeps whole on every TP rank / pp, plus its share of duplicated KV heads' k/v rows
    weights_replicated_per_gpu: int = 0

    @property
    def weights_fit(self) -> bool:
        """False when weights and reserves leave nothing for the KV cache: a valid deployment
        that is too small, answered as "does not fit" (never as bad input)."""
        return self.budget.kv_budget > 0

    def seq_bytes(self, ctx: int) -> int:
        """Per-GPU bytes one sequence of `ctx` tokens occupies, block-rounded.

        vLLM hybrid (kvplan.core.hybrid_alloc): the pool blocks vLLM counts for a request of
        that length, HybridLayout.bytes_per_request: per group, full attention cdiv(ctx,
        block), sliding cdiv(min(window - 1 + max_num_batched_tokens, ctx), block) + 1,
        chunked-local cdiv(min(chunk + max_num_batched_tokens, ctx), block), state groups
        Deployment.state_pages pages (prefix caching's extra ones and the 0.32+ / 0.33+
        prefill-checkpoint page included), each block
        group_size padded pages at the (raised) hybrid block size. It is the per-request
        figure of vLLM's "Maximum concurrency" and start-up check, so max_batch at
        max_model_len == floor(max_concurrency). TensorRT-LLM --vswa: each window pool's
        blocks. Otherwise every layer's block-rounded tokens (kvcache.kv_bytes_per_sequence)."""
        if self.trt_windows is not None:
            w = self.trt_windows
            return sum(w.need(x, ctx) * w.tokens_per_block * x.bytes_per_token for x in w.pools)
        d = self.deployment
        if self.hybrid is not None:
            return self.hybrid.bytes_per_request(ctx, d.scheduler_tokens, d.state_pages)
        return kvcache.kv_bytes_per_sequence(
            self.stage,
            ctx,
            d.kv_dtype,
            kv_heads=self.kv_heads_per_gpu,
            block_size=d.block_size,
        )

    def held_bytes(self, ctx: int) -> int:
        """Per-GPU bytes a sequence holds while it decodes at `ctx` tokens: seq_bytes, except
        for a vLLM hybrid, whose sliding / chunked-local groups free the blocks before the
        window (HybridLayout.bytes_held): the steady state kvplan.core.workload integrates,
        where seq_bytes is vLLM's per-request worst case (one chunked-prefill step beyond
        the window)."""
        if self.hybrid is not None:
            return self.hybrid.bytes_held(ctx, self.deployment.state_pages)
        return self.seq_bytes(ctx)


def weights_replicated(d: Deployment, weights_total: int) -> int:
    """Bytes of the tensors the engine keeps whole on every TP rank (EngineRules.tp_replicated,
    sources there), in the checkpoint's own formats: Kimi-K2.5 NVFP4 keeps MLA in bf16, so
    vLLM TP 4 holds 61 x 7168 x (1536 + 576) x 2 B = 1.72 GiB of q_a / kv_a per rank whole.
    Zero under TP 1, and when the weights figure is the engine's own per-GPU figure (a log's
    "Model loading took": it already holds them). Never more than the total (a user's exact
    checkpoint bytes below kvplan's estimate)."""
    kinds = d.rules.tp_replicated - {"kv_heads"}
    if d.tp == 1 or d.weights_loaded or not kinds:
        return 0
    spec = d.spec
    return min(replicated_weight_bytes(spec, kinds, weight_dtype=d.weight_dtype), weights_total)


def kv_heads_per_gpu(spec: ModelSpec, d: Deployment) -> int:
    """KV heads each GPU holds under the engine's TP rule (an MLA latent is never split)."""
    return d.rules.kv_heads_per_gpu(spec.kv_heads, d.tp)


def _replication(spec: ModelSpec, tp: int, heads_per_gpu: int) -> Replication | None:
    if spec.mla is not None or tp == 1:
        return None
    stored = heads_per_gpu * tp
    if stored <= spec.kv_heads:
        return None
    return Replication(
        factor=stored / spec.kv_heads,
        wasted_fraction=1 - spec.kv_heads / stored,
        non_wasting_tp=tuple(t for t in divisors(spec.kv_heads) if spec.query_heads % t == 0),
    )


def _stages(spec: ModelSpec, pp: int) -> list[ModelSpec]:
    """Contiguous, even layer split (remainder to the first stages)."""
    n = spec.num_layers
    if pp > n:
        raise KvplanError(f"--pp {pp} exceeds the model's {n} layers", setting="pp")
    base, extra = divmod(n, pp)
    stages, start = [], 0
    for i in range(pp):
        size = base + (1 if i < extra else 0)
        stages.append(spec.model_copy(update={"layers": spec.layers[start : start + size]}))
        start += size
    return stages


def _with_draft_layers(stage: ModelSpec, n: int) -> ModelSpec:
    """The last pipeline stage plus `n` draft (MTP / EAGLE) attention layers: vLLM registers
    the drafter's attention layers in the same KV-cache config, so they share the pool
    (the drafter runs on the last PP rank). Each is cached like the model's first
    growing attention layer (full or MLA)."""
    if n == 0:
        return stage
    like = next(
        (layer for layer in stage.layers if layer.kind in (LayerKind.FULL, LayerKind.MLA)),
        None,
    )
    if like is None:
        raise KvplanError("--draft-layers needs a model with full or MLA attention layers")
    draft = like.model_copy(update={"moe": False})
    return stage.model_copy(update={"layers": (*stage.layers, *([draft] * n))})


def draft_model_layers(target: ModelSpec, draft: DraftModel, engine: Engine) -> tuple[Layer, ...]:
    """The attention layers a separate draft model adds to the last pipeline stage's cache.

    vLLM: the drafter is loaded into the same vllm_config, so its attention layers are in
    the forward context that `GPUModelRunner.get_kv_cache_spec` walks; each gets its own
    KV-cache spec and joins the KV-cache groups of the one shared pool
    (vllm/v1/spec_decode/eagle.py `EagleProposer.load_model` and draft_model.py: the
    draft's layer names are the attention layers present after loading it minus the
    target's). Each is cached with the draft's own geometry (G, d_k, d_v of the draft),
    in the KV dtype. TensorRT-LLM's one-model EAGLE3/MTP gives the draft a KV-cache manager
    of its own and splits the budget in proportion to per-token bytes (TensorRT-LLM#12188),
    which is the same sum.
    SGLang sizes the pool as the target's per-token cell x (1 + draft_layers / layers)
    (python/sglang/srt/model_executor/pool_configurator.py `DefaultPoolConfigurator`:
    "Assumes draft and target share the same per-layer KV size"), so there each draft
    layer is cached like the target's first growing layer.
    A draft with recurrent, compressed or MLA layers of another latent is refused."""
    attention = []
    for layer in draft.spec.layers:
        if layer.kind is LayerKind.NONE:
            if layer.is_recurrent or layer.encoder_tokens:
                raise KvplanError(
                    f"draft model {draft.name}: {layer.label()} layers are not modelled in a "
                    "draft (only attention / MLA layers)",
                    setting="draft_model",
                )
            continue
        attention.append(layer)
    if not attention:
        raise KvplanError(
            f"draft model {draft.name} has no attention layers", setting="draft_model"
        )
    if engine is Engine.SGLANG:
        return _with_draft_layers(target, len(attention)).layers[target.num_layers :]
    out = []
    for layer in attention:
        if layer.mixer is Mixer.COMPRESSED or (
            layer.kind is LayerKind.MLA
            and (
                target.mla is None
                or draft.spec.mla is None
                or target.mla.latent_dim != draft.spec.mla.latent_dim
            )
        ):
            raise KvplanError(
                f"draft model {draft.name}: its {layer.label()} layers differ from the "
                "target's cache layout (not modelled)",
                setting="draft_model",
            )
        if layer.kind is LayerKind.MLA:
            out.append(layer.model_copy(update={"moe": False}))
            continue
        d_k, d_v = draft.spec.layer_head_dims(layer)
        out.append(
            layer.model_copy(
                update={
                    "moe": False,
                    "query_heads": draft.spec.layer_query_heads(layer),
                    "kv_heads": draft.spec.layer_kv_heads(layer),
                    "head_dim": d_k,
                    "v_head_dim": d_v,
                }
            )
        )
    return tuple(out)


def _engine_fraction(d: Deployment) -> float | None:
    """The memory fraction the engine sizes its pool with: the user's (or default) fraction,
    times the release's multimodal factor when the checkpoint carries an image encoder
    (SGLang <= 0.4.8 ModelRunner: x 0.95 / x 0.90, engines.SGLANG_MULTIMODAL_FRACTION)."""
    fraction = d.fraction
    if fraction is None or d.spec.vision is None:
        return fraction
    return fraction * d.profile.multimodal_factor(d.engine_version, d.spec.family)


def _draft_weight_bytes(d: Deployment) -> int:
    """The draft model's checkpoint bytes (exact when known), else estimated from its config
    at its own dtype (engines load the draft's own checkpoint; --weight-dtype is the
    target's)."""
    draft = d.draft_model
    if draft is None:
        return 0
    if draft.exact_weight_bytes is not None:
        return draft.exact_weight_bytes
    return weight_bytes(draft.spec).total


def rope_cache_bytes(d: Deployment) -> int:
    """Bytes per GPU of the rotary cos/sin tables the engine builds while loading the model
    (ModelSpec.rope; EngineRules.rope_cache says whether and in which dtype):

        sum over tables: count x positions x rotary_dim x dtype bytes

    Each GPU holds every table whole: not divided by TP or PP (vLLM's get_rope builds one
    per distinct rope argument set in every worker). The dtype is the model's (vLLM:
    the dtype get_rope is given, torch's default = the model dtype while the model is
    built), 4 bytes where the model asks for fp32 (gpt-oss) or the engine keeps fp32
    (SGLang on CUDA). Llama-4-Scout: 10,485,760 x 128 x 2 B = 2.5 GiB per GPU.
    Zero when the weights figure is the engine's own (it already holds the tables), when
    the engine is not known to build them, or when the model's rope is not read
    (ModelSpec.rope None: an assumption on the model says so)."""
    rule = d.rules.rope_cache
    if rule is None or not d.spec.rope or d.weights_loaded:
        return 0
    engine_fp32 = rule == "float32_on_cuda" and d.gpu.vendor == "nvidia"
    # the model dtype: --dtype fp32 / fp16 when given, else 16-bit (vLLM "auto" serves an
    # fp32 checkpoint in bf16 / fp16 too)
    model_bytes = 4 if d.weight_dtype == "fp32" else 2
    return sum(t.elements() * (4 if t.float32 or engine_fp32 else model_bytes) for t in d.spec.rope)


# vLLM 0.21 - 0.22 FlashInfer-MLA workspace, allocated when the backend module is imported
# (vllm/v1/attention/backends/mla/flashinfer_mla.py:30,99-103, 0.22.0 wheel)
FLASHINFER_MLA_IMPORT_WORKSPACE = 128 * 1024 * 1024


def load_time_buffers(d: Deployment) -> int:
    """Bytes per GPU the engine allocates while it builds the model, beside the weights and
    rotary tables (so a log's "Model loading took" holds them): vLLM 0.21 - 0.22 on an
    SM100-family GPU import FlashInfer-MLA's backend for every MLA model (it heads the MLA
    priorities there) and the import allocates its 128 MiB workspace
    (EngineProfile.mla_import_workspace). Zero when the weights figure is the engine's own."""
    if d.engine is not Engine.VLLM or d.weights_loaded or not sm100_family(d.gpu):
        return 0
    if not any(layer.mixer_kind in (Mixer.MLA, Mixer.MLA_INDEXER) for layer in d.spec.layers):
        return 0
    if not d.profile.in_releases(d.engine_version, d.profile.mla_import_workspace):
        return 0
    return FLASHINFER_MLA_IMPORT_WORKSPACE


def _hybrid_alignment(d: Deployment) -> int:
    """What a vLLM hybrid's raised attention block is a multiple of: the kernel's 16, or
    lcm(16, 64) where vLLM 0.33 exports Gated DeltaNet prefill checkpoints on this GPU
    (platforms/interface.py:1089-1095; kvplan.core.prefix_cache)."""
    mode = d.mamba_cache_mode or MambaCacheMode.NONE
    if gdn_checkpoint(d.profile, d.engine_version, d.spec, mode, d.gpu):
        return lcm(KERNEL_ALIGNMENT, GDN_CHECKPOINT_ALIGNMENT)
    return KERNEL_ALIGNMENT


def plan(d: Deployment) -> Plan:
    spec = d.spec
    if spec.query_heads % d.tp:
        raise KvplanError(
            f"--tp {d.tp} does not divide the model's {spec.query_heads} attention heads",
            hint=f"valid TP sizes: {', '.join(map(str, divisors(spec.query_heads)[:12]))}",
            setting="tp",
        )
    heads = kv_heads_per_gpu(spec, d)
    d.rules.check_vocab(spec.vocab_size, d.tp)
    stages = _stages(spec, d.pp)
    if d.draft_layers and d.draft_model is not None:
        raise KvplanError(
            "--draft-layers (MTP modules of the checkpoint) and --draft-model (a separate "
            "draft model) are two kinds of drafter; give one",
            setting="draft_model",
        )
    stages[-1] = _with_draft_layers(stages[-1], d.draft_layers)
    if d.draft_model is not None:
        last = stages[-1]
        added = draft_model_layers(spec, d.draft_model, d.engine)
        stages[-1] = last.model_copy(update={"layers": (*last.layers, *added)})
    windows_ignored = False
    speculative = bool(d.draft_layers or d.draft_model or d.num_speculative_tokens)
    hybrid_swa = (
        d.engine is Engine.SGLANG
        and not d.disable_hybrid_swa_memory
        and uses_hybrid_swa(
            spec, sglang_release(d), speculative=speculative, sm100=sm100_family(d.gpu)
        )
    )
    if d.engine is Engine.SGLANG and not hybrid_swa:
        # one token pool: a token's slot holds every layer until its request ends, so a
        # sliding layer caches the whole context (kvplan.core.sglang_swa)
        stages = [full_length_stage(s) for s in stages]
    if d.engine is Engine.TRTLLM and not d.vswa:
        # TensorRT-LLM caches every layer over max_seq_len unless told each layer's window
        # (kvplan.core.trt_windows)
        full = [full_length_stage(s) for s in stages]
        windows_ignored = any(a is not b for a, b in zip(full, stages, strict=True))
        stages = full
    stage = max(
        stages,
        key=lambda s: (kvcache.kv_bytes_per_token(s, d.kv_dtype, kv_heads=heads), s.num_layers),
    )
    weights_total = d.weights_override or weight_bytes(spec, weight_dtype=d.weight_dtype).total
    # the draft of MTP speculative decoding is the checkpoint's own MTP modules: their
    # weights load beside the model's (an EAGLE / separate draft model's do not: unknown)
    draft_weights = 0
    if d.draft_layers and not d.weights_override:
        draft_weights = mtp_weight_bytes(spec, d.draft_layers, weight_dtype=d.weight_dtype)
        weights_total += draft_weights
    replicated = weights_replicated(d, weights_total)
    kv_copies = 0
    if "kv_heads" in d.rules.tp_replicated and not d.weights_loaded:
        kv_copies = kv_replica_bytes(spec, d.tp, weight_dtype=d.weight_dtype)
    # split part over tp x pp, the tensors the engine keeps whole on every TP rank over pp,
    # the duplicated KV heads' rows (kv_copies, summed over ranks) over tp x pp
    weights_gpu = ceil((weights_total - replicated + kv_copies) / (d.tp * d.pp))
    weights_gpu += ceil(replicated / d.pp)
    replicated_gpu = ceil(replicated / d.pp) + ceil(kv_copies / (d.tp * d.pp))
    # a separate draft model runs on the last PP rank at the target's TP (vLLM
    # SpeculativeConfig draft_tensor_parallel_size defaults to the target's), its weights
    # split over those TP ranks
    model_draft_weights = _draft_weight_bytes(d)
    weights_gpu += ceil(model_draft_weights / d.tp)
    rope_cache = rope_cache_bytes(d)
    weights_gpu += rope_cache + load_time_buffers(d)
    activations, overhead, cudagraph = deployment_terms(d, stage.num_layers)
    profile = d.profile
    budget = compute_budget(
        engine=d.engine,
        total_memory=d.gpu.usable_memory_bytes,
        # SGLang's "mem usage" at weight load holds a little more than the parameters; a
        # user's (or a log's) own weights figure already does
        weights=weights_gpu + (0 if d.weights_override else profile.weight_load_overhead),
        activations=activations,
        overhead=overhead,
        fraction=_engine_fraction(d),
        kv_memory=d.kv_memory,
        cudagraph=cudagraph,
        preload=profile.preload_for(d.platform, d.tp, baseboard_linked(d.gpu.node_gpus)),
        engine_version=profile.name,
    )
    per_token = kvcache.kv_bytes_per_token(stage, d.kv_dtype, kv_heads=heads)
    block_bytes = per_token * d.block_size
    notes: list[str] = []
    if windows_ignored:
        notes.append(
            "TensorRT-LLM caches the sliding-window layers over the full max_seq_len unless "
            "kv_cache_config.max_attention_window lists each layer's window; --vswa sizes "
            "its per-window pools (VSWA) instead"
        )
    if d.engine is Engine.SGLANG and not hybrid_swa and d.swa_full_tokens_ratio is not None:
        windowed = any(x.kind in (LayerKind.SLIDING, LayerKind.CHUNKED) for x in spec.layers)
        if d.disable_hybrid_swa_memory:
            why = "--disable-hybrid-swa-memory keeps one token pool"
        elif not windowed:
            why = "the model has no sliding-window layers"
        else:
            why = (
                f"{d.engine_label} keeps one token pool for this model (no separate "
                "sliding-window pool for its family here, kvplan.core.sglang_swa)"
            )
        notes.append(f"--swa-full-tokens-ratio {d.swa_full_tokens_ratio:g} has no effect: {why}")
    hybrid = None
    if d.engine is Engine.VLLM and profile.token_line in ("groups", "concurrency"):
        hybrid = vllm_layout(
            stage,
            d.kv_dtype,
            kv_heads=heads,
            block_size=d.block_size,
            alignment=_hybrid_alignment(d),
        )
    if hybrid is not None:
        block_bytes = hybrid.bytes_per_block
        notes.append(
            f"vLLM hybrid KV cache: {len(hybrid.groups)} groups of {hybrid.group_size} layers "
            f"share one pool of {hybrid.block_size}-token blocks"
            + (f"; {hybrid.padding_layers} padding layers" if hybrid.padding_layers else "")
        )
        if hybrid.block_size != d.block_size:
            notes.append(
                f"attention block size raised to {hybrid.block_size} tokens to match the state page"
            )
        if hybrid.has_state:
            notes.append(_state_pages_note(d))
    kv_pool = budget.kv_budget
    state_pool = state_slots = None
    has_state = any(layer.is_recurrent for layer in stage.layers)
    if d.engine is Engine.SGLANG and has_state and per_token:
        # SGLang splits what is left between a Mamba-state pool and the KV pool:
        # mamba = rest x r / (1 + r), r = --mamba-full-memory-ratio (default 0.9;
        # model_runner_kv_cache_mixin, second-hand copy)
        ratio = d.mamba_full_memory_ratio or SGLANG_MAMBA_FULL_MEMORY_RATIO
        state_pool = int(budget.kv_budget * ratio / (1 + ratio))
        kv_pool = budget.kv_budget - state_pool
        per_req = kvcache.state_bytes_per_sequence(stage, d.kv_dtype)
        state_slots = state_pool // per_req if per_req else None
        notes.append(
            f"SGLang hybrid pools: {state_pool / GiB:.2f} GiB of Mamba state "
            f"({state_slots:,} requests) + {kv_pool / GiB:.2f} GiB of KV"
        )
    num_blocks = kv_pool // block_bytes if block_bytes else 0
    kv_tokens = num_blocks * (hybrid.block_size if hybrid else d.block_size)
    swa = _sglang_swa_pools(d, stage, heads, kv_tokens, kv_pool, notes) if hybrid_swa else None
    if swa is not None:
        kv_tokens = swa.full_tokens  # the engine's max_total_num_tokens
        num_blocks = kv_tokens // d.block_size
    trt = _trt_window_pools(d, stage, heads, budget.kv_budget, notes)
    if trt is not None:
        num_blocks = sum(x.blocks for x in trt.pools)
        kv_tokens = trt.logged_tokens
    replication = _replication(spec, d.tp, heads)
    if replication is not None:
        notes.append(
            f"TP {d.tp} > {spec.kv_heads} KV heads: each KV head is stored on "
            f"{replication.factor:g} GPUs, so {replication.wasted_fraction:.0%} of every GPU's "
            f"KV pool holds copies; TP sizes {', '.join(map(str, replication.non_wasting_tp))} "
            "would not replicate"
        )
    if spec.mla is not None and d.tp > 1:
        notes.append(
            f"MLA latent is not split by TP: each of the {d.tp} GPUs caches the whole "
            "latent for every token"
        )
    kind = stage.indexer_kind
    what = "DSA indexer keys" if kind is IndexerKind.DSA else "sparse-attention index keys"
    if stage.has_indexer and stage.indexer_format is not None:
        fmt = INDEXER_FORMATS[stage.indexer_format]
        dims = sorted({x.index_head_dim for x in stage.layers if x.index_head_dim})
        notes.append(
            f"{what} in {d.rules.label}'s own format ({fmt.name}: {fmt.note}): "
            + ", ".join(f"{fmt.bytes_per_token(x, d.kv_dtype)} B" for x in dims)
            + f" per token per layer, whatever the KV dtype ({d.kv_dtype})"
        )
    elif stage.has_indexer and d.rules.engine is not Engine.NONE:  # a future engine row
        notes.append(
            f"{what}: no {d.rules.label} source read for how it stores them; counted in the "
            f"KV dtype ({d.kv_dtype}), as transformers' cache does (an assumption)"
        )
    if (
        spec.checkpoint_dtype == "fp32"
        and spec.quantization is None
        and d.weight_dtype is not None
        and d.weight_dtype == d.rules.loads_fp32_as
    ):
        notes.append(
            f"float32 checkpoint: {d.rules.label} serves it in {d.weight_dtype} unless told "
            "otherwise (dtype 'auto'); --weight-dtype fp32 to plan full precision"
        )
    if d.draft_layers:
        notes.append(
            f"speculative decoding: {d.draft_layers} draft layer(s) cache KV in the same pool"
            + (
                f"; the checkpoint's MTP module(s) add {draft_weights / GiB:.2f} GiB of weights"
                if draft_weights
                else "; draft weights not counted (no MTP module kvplan reads in the config: "
                "give a separate draft model with --draft-model, or its weights with --overhead)"
            )
        )
    if d.draft_model is not None:
        n_draft = sum(1 for x in d.draft_model.spec.layers if x.kind is not LayerKind.NONE)
        exact = d.draft_model.exact_weight_bytes is not None
        notes.append(
            f"speculative decoding: draft model {d.draft_model.name} adds "
            f"{model_draft_weights / GiB:.2f} GiB of weights "
            + ("(checkpoint bytes)" if exact else "(estimated from its config)")
            + f" and {n_draft} attention layer(s) caching KV in the same pool"
            + (
                " (SGLang: each sized like a target layer; whether its draft weights load "
                "before the pool is sized is not verified, so they are counted)"
                if d.engine is Engine.SGLANG
                else ""
            )
        )
    if d.pp > 1:
        notes.append(
            f"PP {d.pp}: the heaviest stage holds {stage.num_layers} of {spec.num_layers} layers"
        )
    if d.engine is Engine.VLLM and d.gpu.vendor == "nvidia" and d.gpu.memory_family == "unified":
        # vllm-project/vllm@a6d5c39:vllm/utils/mem_utils.py MemorySnapshot.measure (and
        # vllm#35356): on integrated GPUs free memory is psutil's host MemAvailable
        notes.append(
            "unified memory: vLLM reads free memory from the host (MemAvailable), so host "
            "memory taken while it profiles counts against the KV budget; kvplan assumes none"
        )
    node = d.gpu.node_gpus
    if node is not None and d.tp > node:
        keep = (
            f"; TP {node} x PP {d.tp * d.pp // node} keeps TP in a node"
            if (d.tp * d.pp) % node == 0
            else ""
        )
        notes.append(
            f"TP {d.tp} spans more GPUs than one {d.gpu.name} node joins with "
            f"{d.gpu.interconnect or 'its intra-node link'} ({node}): its all-reduces cross "
            f"nodes over the network{keep}"
        )
    return Plan(
        deployment=d,
        stage=stage,
        kv_heads_per_gpu=heads,
        weights_total=weights_total + model_draft_weights,
        weights_per_gpu=weights_gpu,
        budget=budget,
        kv_bytes_per_token=per_token,
        block_bytes=block_bytes,
        num_blocks=num_blocks,
        kv_tokens=kv_tokens,
        replication=replication,
        max_positions=spec.max_position_embeddings,
        notes=tuple(notes),
        hybrid=hybrid,
        state_pool_bytes=state_pool,
        state_slots=state_slots,
        trt_windows=trt,
        swa_pools=swa,
        rope_cache_per_gpu=rope_cache,
        weights_replicated_per_gpu=replicated_gpu if d.tp > 1 else 0,
    )


def sglang_release(d: Deployment) -> tuple[int, ...]:
    """The SGLang release (kvplan.core.sglang_swa.release_key form): the one asked for, or
    the newest of the line when only the line is named."""
    profile = d.profile
    if d.engine_version is None or d.engine_version == profile.version:
        return (*profile.last, *(0,) * (3 - len(profile.last)), 99)
    return release_key(d.engine_version)


def _sglang_swa_pools(
    d: Deployment,
    stage: ModelSpec,
    heads: int,
    uniform_tokens: int,
    kv_pool: int,
    notes: list[str],
) -> SwaPools:
    """SGLang's full + sliding-window pools (kvplan.core.sglang_swa) from the uniform count
    it sizes first (max_total_num_tokens as if every layer held every token)."""
    windowed = (LayerKind.SLIDING, LayerKind.CHUNKED)

    def part(keep: tuple[LayerKind, ...]) -> int:
        layers = tuple(x for x in stage.layers if x.kind in keep)
        sub = stage.model_copy(update={"layers": layers})
        return kvcache.kv_bytes_per_token(sub, d.kv_dtype, kv_heads=heads)

    full_b, swa_b = part((LayerKind.FULL,)), part(windowed)
    n_full = sum(1 for x in stage.layers if x.kind is LayerKind.FULL)
    n_swa = sum(1 for x in stage.layers if x.kind in windowed)
    cell = uniform_cell_bytes(stage, full_bytes_per_token=full_b, swa_bytes_per_token=swa_b)
    if cell is not None:
        # SGLang sizes its uniform count with its own cell (kvplan.core.sglang_swa)
        uniform_tokens = kv_pool // cell
        notes.append(
            f"SGLang hybrid SWA: {stage.name}'s sliding layers cache other heads than its full "
            f"ones; SGLang sizes the pool with {cell:,} B per token (full heads over every "
            "layer + the sliding heads again), then splits it"
        )
    elif full_b * n_swa != swa_b * n_full:
        notes.append(
            "SGLang hybrid SWA: this model's sliding and full layers cache different bytes per "
            "token; SGLang's split counts layer-tokens as equal (sized as the engine does, "
            "its own per-token size for such models is not modelled)"
        )
    ratio = d.swa_full_tokens_ratio or SWA_FULL_TOKENS_RATIO
    pools = swa_pools(
        uniform_tokens,
        stage,
        ratio=ratio,
        page=d.block_size,
        full_bytes_per_token=full_b,
        swa_bytes_per_token=swa_b,
        round_pools=rounds_to_page(sglang_release(d)),
    )
    notes.append(
        f"SGLang hybrid SWA pools (--swa-full-tokens-ratio {ratio:g}): full layers "
        f"{pools.full_tokens:,} tokens ({pools.full_pool_bytes / GiB:.2f} GiB, "
        f"{pools.full_layers} layers), sliding layers {pools.swa_tokens:,} tokens "
        f"({pools.swa_pool_bytes / GiB:.2f} GiB, {pools.swa_layers} layers, window "
        f"{pools.window:,}); a request holds its context in the first and at most its window "
        "in the second; --disable-hybrid-swa-memory for one pool"
    )
    return pools


def _trt_window_pools(
    d: Deployment, stage: ModelSpec, heads: int, budget: int, notes: list[str]
) -> WindowPools | None:
    """TensorRT-LLM --vswa: the per-window pools (kvplan.core.trt_windows), or None when
    every layer has one window (one pool: the uniform math applies)."""
    if d.engine is not Engine.TRTLLM or not d.vswa:
        return None
    length = d.fixed_max_model_len or d.spec.max_position_embeddings
    if not length:
        raise KvplanError(
            "--vswa needs max_seq_len (the full-attention layers' window): give --max-model-len",
            setting="max_model_len",
        )
    rule = share_rule_for(d.engine_version)
    pools = window_pools(
        stage,
        d.kv_dtype,
        kv_heads=heads,
        budget=budget,
        tokens_per_block=d.block_size,
        max_seq_len=length,
        rule=rule,
        round_up=rounds_blocks_up(d.profile.version, rule),
    )
    if len(pools.pools) == 1:
        return None
    admitted = pools.max_batch(length)
    notes.append(
        f"TensorRT-LLM VSWA: {len(pools.pools)} pools ({rule.value} shares), "
        + "; ".join(
            f"window {x.window:,}: {x.layers} layers, {x.blocks:,} blocks ({x.share:.1%})"
            for x in pools.pools
        )
        + f"; at max_seq_len {length:,} the scarcest window admits "
        f"{admitted:,} request{'' if admitted == 1 else 's'}; TensorRT-LLM needs kv_cache_config."
        f"max_attention_window: {window_pattern(layer_windows(stage, length))} "
        "(--extra_llm_api_options)"
    )
    return pools


def weights_shortfall(p: Plan) -> str:
    """Why nothing is left for the KV cache (when `not p.weights_fit`)."""
    b = p.budget
    # TensorRT-LLM applies its fraction to what is free after loading (the grant is negative
    # here): the weights compete for the whole memory CUDA reports
    if p.deployment.engine is Engine.TRTLLM:
        pool = f"{b.total_memory / GiB:.2f} GiB of memory"
    else:
        pool = f"{b.engine_memory / GiB:.2f} GiB budget"
    return (
        f"weights alone need {p.weights_per_gpu / GiB:.2f} GiB per GPU of the "
        f"{pool} on {p.deployment.gpu.name} (after "
        f"activations and overhead {(b.activations + b.overhead) / GiB:.2f} GiB, nothing is "
        "left for the KV cache): use more GPUs (--tp), a smaller --weight-dtype, or a bigger GPU"
    )


def sequence_shortfall(p: Plan, ctx: int) -> str:
    """Why not even one sequence of `ctx` tokens fits while the weights do: its KV against
    the pool, and the longest context one sequence gets (max_ctx at batch 1)."""
    longest = max_ctx(p, 1).max_ctx
    return (
        f"one sequence of {ctx:,} tokens needs {p.seq_bytes(ctx) / GiB:.2f} GiB of KV per GPU; "
        f"the KV pool holds {p.budget.kv_budget / GiB:.2f} GiB ({p.kv_tokens:,} tokens), so the "
        f"longest one sequence gets is {longest:,} tokens: shorten --ctx, use more GPUs "
        "(--tp), a smaller --kv-dtype, or a bigger GPU"
    )


# ---- solvers ---------------------------------------------------------------------------
def fits(p: Plan, ctx: int, batch: int) -> bool:
    if p.trt_windows is not None:
        return batch <= p.trt_windows.max_batch(ctx)
    if p.swa_pools is not None:
        return batch <= p.swa_pools.max_batch(ctx)
    if p.state_pool_bytes is not None:
        return batch <= max_batch(p, ctx)
    return batch * p.seq_bytes(ctx) <= p.budget.kv_budget


def max_batch(p: Plan, ctx: int) -> int:
    """Largest number of concurrent sequences of `ctx` tokens (0 if not even one). With
    separate state and KV pools (SGLang hybrids) each pool caps it on its own."""
    if p.trt_windows is not None:
        return p.trt_windows.max_batch(ctx)
    if p.swa_pools is not None:
        return p.swa_pools.max_batch(ctx)
    per_seq = p.seq_bytes(ctx)
    if per_seq == 0:
        raise KvplanError("this model keeps no per-token cache; batch is not limited by KV")
    if p.state_pool_bytes is not None and p.state_slots is not None:
        tokens = per_seq - kvcache.state_bytes_per_sequence(p.stage, p.deployment.kv_dtype)
        kv_pool = p.budget.kv_budget - p.state_pool_bytes
        by_kv = kv_pool // tokens if tokens else p.state_slots
        return min(by_kv, p.state_slots)
    return p.budget.kv_budget // per_seq


class CtxAnswer(Frozen):
    max_ctx: int  # 0 if not even one token fits
    capped_by_positions: bool  # memory would allow more than the model's max positions
    unbounded: bool  # per-sequence bytes stop growing (all layers windowed / no KV)


def max_ctx(p: Plan, batch: int, *, cap_to_positions: bool = True) -> CtxAnswer:
    """Largest context per sequence at `batch` (exact bisection on integer bytes), capped
    by the model's max positions unless `cap_to_positions` is False (designs)."""
    cap = p.max_positions if cap_to_positions else None
    if p.trt_windows is not None:
        return _max_ctx_windows(p.trt_windows, batch, cap)
    if p.swa_pools is not None:
        return _max_ctx_swa(p.swa_pools, batch, cap)
    budget = p.budget.kv_budget

    def ok(n: int) -> bool:
        return batch * p.seq_bytes(n) <= budget

    if not ok(1):
        return CtxAnswer(max_ctx=0, capped_by_positions=False, unbounded=False)
    grows = any(layer.kind in (LayerKind.FULL, LayerKind.MLA) for layer in p.stage.layers)
    if not grows:
        widest = max((layer.window or 0) for layer in p.stage.layers)
        if p.hybrid is not None:
            # a vLLM hybrid's sliding / chunked groups count up to window + one scheduler
            # step of tokens (HybridLayout.blocks_per_request)
            widest += p.deployment.scheduler_tokens
        limit = cap or widest
        if not ok(max(widest, 1)):
            return _bisect(ok, 1, widest)
        return CtxAnswer(max_ctx=limit, capped_by_positions=cap is not None, unbounded=True)
    hi = budget // max(1, batch * _growth_bytes(p)) + 1 + p.deployment.block_size
    if cap is not None and ok(cap):
        return CtxAnswer(max_ctx=cap, capped_by_positions=True, unbounded=False)
    return _bisect(ok, 1, hi if cap is None else min(hi, cap))


def _max_ctx_windows(w: WindowPools, batch: int, cap: int | None) -> CtxAnswer:
    """Largest context at `batch` in TensorRT-LLM's per-window pools: every window's pool
    must hold `batch` requests; the engine takes none longer than max_seq_len."""
    limit = min(cap, w.max_seq_len) if cap else w.max_seq_len

    def ok(n: int) -> bool:
        return w.max_batch(n) >= batch

    if not ok(1):
        return CtxAnswer(max_ctx=0, capped_by_positions=False, unbounded=False)
    if ok(limit):
        return CtxAnswer(max_ctx=limit, capped_by_positions=True, unbounded=False)
    return _bisect(ok, 1, limit)


def _max_ctx_swa(w: SwaPools, batch: int, cap: int | None) -> CtxAnswer:
    """Largest context at `batch` in SGLang's hybrid SWA pools: both must hold `batch`."""

    def ok(n: int) -> bool:
        return w.max_batch(n) >= batch

    if not ok(1):
        return CtxAnswer(max_ctx=0, capped_by_positions=False, unbounded=False)
    if cap is not None and ok(cap):
        return CtxAnswer(max_ctx=cap, capped_by_positions=True, unbounded=False)
    hi = w.full_tokens // max(1, batch)
    return _bisect(ok, 1, hi if cap is None else min(hi, cap))


def _growth_bytes(p: Plan) -> int:
    """Per-token bytes of the layers that keep growing (full / MLA)."""
    grow = p.stage.model_copy(
        update={
            "layers": tuple(
                layer for layer in p.stage.layers if layer.kind in (LayerKind.FULL, LayerKind.MLA)
            )
        }
    )
    return kvcache.kv_bytes_per_token(grow, p.deployment.kv_dtype, kv_heads=p.kv_heads_per_gpu)


def _bisect(ok: Callable[[int], bool], lo: int, hi: int) -> CtxAnswer:
    """Largest n >= lo with ok(n), given ok(lo) and ok monotone (hi is a first guess)."""
    return CtxAnswer(max_ctx=largest_true(ok, lo, hi), capped_by_positions=False, unbounded=False)


def _state_pages_note(d: Deployment) -> str:
    """How many state pages a request holds per state group, and why (prefix caching's
    Mamba cache mode, speculative tokens: kvplan.core.prefix_cache)."""
    mode = d.mamba_cache_mode or MambaCacheMode.NONE
    why = (
        f"prefix caching on (Mamba cache mode {mode.value})"
        if mode is not MambaCacheMode.NONE
        else "prefix caching off"
    )
    note = f"{why}: {d.state_pages} state page(s) per request per state group"
    if d.num_speculative_tokens:
        note += f" (incl. {d.num_speculative_tokens} for speculative tokens)"
    if gdn_checkpoint(d.profile, d.engine_version, d.spec, mode, d.gpu):
        # the kernel needs CUDA 13 only off Hopper (kvplan.core.prefix_cache)
        cc = d.gpu.compute_capability
        cuda = "" if cc == "9.0" else ", CUDA 13 assumed (the PyPI wheel's)"
        note += (
            " (incl. vLLM 0.33's Gated DeltaNet prefill checkpoint: FlashInfer's GDN prefill "
            f"runs on compute capability {cc}{cuda}; blocks aligned to 64 tokens)"
        )
    if uncounted_checkpoint(d.profile, d.engine_version, d.spec, mode, d.gpu):
        note += (
            "; vLLM 0.33 adds one Gated DeltaNet prefill-checkpoint page (and 64-token block "
            "alignment) where the FlashInfer GDN kernel runs (compute capability 9.0; 10.x / "
            "12.x with CUDA 13): this GPU states no compute_capability, so not counted"
        )
    return note


def max_concurrency(p: Plan, max_len: int) -> float:
    """vLLM's 'Maximum concurrency for N tokens per request': pool / one request's blocks
    (hybrids: blocks of every group, kvplan.core.hybrid_alloc; TensorRT-LLM VSWA: the
    scarcest window's pool, kvplan.core.trt_windows)."""
    if p.trt_windows is not None:
        return p.trt_windows.max_concurrency(max_len)
    if p.swa_pools is not None:
        full, swa = p.swa_pools.tokens_held(max_len)
        return min(p.swa_pools.full_tokens / full, p.swa_pools.swa_tokens / swa)
    if p.hybrid is not None:
        d = p.deployment
        need = p.hybrid.blocks_per_request(max_len, d.scheduler_tokens, d.state_pages)
        return p.num_blocks / need if need else float("inf")
    per_seq = p.seq_bytes(max_len)
    return (p.num_blocks * p.block_bytes) / per_seq if per_seq else float("inf")


def logged_kv_tokens(p: Plan, max_model_len: int | None = None) -> float:
    """The number the engine's own "KV cache size" line prints, per its release:
    blocks       num_blocks x block_size (V0 "# GPU blocks" x block, SGLang
                 max_total_num_tokens, TensorRT-LLM "max tokens in paged KV cache");
    groups       (num_blocks // num_groups) x block_size (vLLM 0.10-0.20
                 _report_kv_cache_config; one group for uniform models);
    concurrency  int(max_concurrency x max_model_len) (vLLM >= 0.22), at `max_model_len`
                 (the length the engine runs with; default: the deployment's fixed one,
                 else the model's max positions)."""
    d = p.deployment
    if p.trt_windows is not None:
        return p.trt_windows.logged_tokens
    line = d.profile.token_line
    if line == "concurrency":
        length = max_model_len or d.fixed_max_model_len or p.max_positions
        if length:
            return int(max_concurrency(p, length) * length)
    if p.hybrid is not None and line == "groups":
        return (p.num_blocks // len(p.hybrid.groups)) * p.hybrid.block_size
    return p.num_blocks * d.block_size


def contexts_up_to(limit: int | None) -> list[int]:
    top = limit or COMMON_CONTEXTS[-1]
    ctxs = [c for c in COMMON_CONTEXTS if c <= top]
    if limit and limit not in ctxs:
        ctxs.append(limit)
    return ctxs


class ContextRow(Frozen):
    ctx: int
    kv_bytes_per_sequence: int
    max_batch: int


class FitResult(Frozen):
    """The answer to `kvplan fit` in one of four modes."""

    mode: str  # max_batch | max_ctx | check | table
    ctx: int | None = None
    batch: int | None = None
    fits: bool | None = None
    max_batch: int | None = None
    max_ctx: int | None = None
    capped_by_positions: bool = False
    unbounded: bool = False
    kv_bytes: int | None = None  # per GPU, at the answer
    kv_budget_bytes: int
    headroom_bytes: int | None = None
    headroom_pct: float | None = None
    table: tuple[ContextRow, ...] = ()
    max_model_len: int | None = None
    max_concurrency: float | None = None
    warnings: tuple[str, ...] = ()


def check_point(p: Plan, ctx: int, batch: int) -> tuple[int, int, bool]:
    """`batch` sequences of `ctx` tokens: (KV bytes per GPU, spare bytes, fits?) as `fit
    --ctx --batch` answers (and `sweep` rows): spare = budget - used, or with separate pools
    (TensorRT-LLM's per window, SGLang's full + sliding-window) the scarcest pool's spare
    bytes, and fits when every pool holds the batch (the largest batch's own rule)."""
    used = batch * p.seq_bytes(ctx)
    pools = p.trt_windows if p.trt_windows is not None else p.swa_pools
    if pools is not None:
        return used, pools.spare_bytes(ctx, batch), fits(p, ctx, batch)
    return used, p.budget.kv_budget - used, used <= p.budget.kv_budget


def solve_fit(
    p: Plan, *, ctx: int | None, batch: int | None, max_model_len: int | None = None
) -> FitResult:
    budget = p.budget.kv_budget
    warnings: list[str] = []
    if ctx is not None and p.max_positions and ctx > p.max_positions:
        warnings.append(
            f"--ctx {ctx:,} exceeds the model's max positions "
            f"({p.max_positions:,}); it needs RoPE scaling to be served"
        )
    length = max_model_len or p.max_positions or ctx
    conc = max_concurrency(p, length) if length else None
    common: dict[str, Any] = {
        "kv_budget_bytes": budget,
        "max_model_len": length,
        "max_concurrency": conc,
        "warnings": tuple(warnings),
    }
    if ctx is not None and batch is not None:
        used, spare, ok = check_point(p, ctx, batch)
        return FitResult(
            mode="check",
            ctx=ctx,
            batch=batch,
            fits=ok,
            kv_bytes=used,
            headroom_bytes=spare,
            headroom_pct=100 * spare / budget if budget else None,
            max_batch=max_batch(p, ctx),
            **common,
        )
    if ctx is not None:
        n = max_batch(p, ctx)
        return FitResult(
            mode="max_batch",
            ctx=ctx,
            max_batch=n,
            fits=n > 0,
            kv_bytes=n * p.seq_bytes(ctx),
            **common,
        )
    if batch is not None:
        answer = max_ctx(p, batch)
        return FitResult(
            mode="max_ctx",
            batch=batch,
            max_ctx=answer.max_ctx,
            fits=answer.max_ctx > 0,
            capped_by_positions=answer.capped_by_positions,
            unbounded=answer.unbounded,
            kv_bytes=batch * p.seq_bytes(answer.max_ctx) if answer.max_ctx else 0,
            **common,
        )
    rows = tuple(
        ContextRow(ctx=c, kv_bytes_per_sequence=p.seq_bytes(c), max_batch=max_batch(p, c))
        for c in contexts_up_to(p.max_positions)
    )
    return FitResult(mode="table", table=rows, **common)
