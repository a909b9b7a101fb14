"""What the engine itself would say at start-up: its KV-cache log lines, in its own terms,
and whether it refuses to start.

vLLM (V1) refuses to start when one request of max_model_len tokens does not fit the KV
pool (vllm/v1/core/kv_cache_utils.py `check_enough_kv_cache_memory`; V0:
"max seq len ... larger than the maximum number of tokens that can be stored in KV cache"),
and names the largest max_model_len that would (`estimate_max_model_len`: a binary search
on the same per-request bytes). `--max-model-len -1` / `auto` (`_auto_fit_max_model_len`;
the lines with `auto_fit`) starts at that largest length, capped at the model's max
positions; from 0.29.0 vLLM first holds back the permanent null block
(`check_enough_kv_cache_memory`, 0.29.0 kv_cache_utils.py:975). `resolve_max_model_len`
is the one place a deployment's auto is resolved.
Hybrid (attention + Mamba / linear attention) models also need max_num_seqs <= the state
slots the pool holds (vllm#49064: "max_num_seqs (256) exceeds available Mamba cache blocks (161)").

SGLang and TensorRT-LLM do not refuse on length: SGLang sizes max_total_num_tokens and caps
requests to it; TensorRT-LLM sizes max_tokens. Their lines are printed in their own words.
"""

from __future__ import annotations

from math import ceil

from kvplan.core import kvcache
from kvplan.core.capacity import Plan, logged_kv_tokens, max_concurrency, max_ctx
from kvplan.core.engines import Engine
from kvplan.core.frozen import Frozen
from kvplan.core.geometry import LayerKind
from kvplan.units import GiB


class StartupCheck(Frozen):
    """Would the engine start with this max_model_len, and what length would it start at."""

    engine: Engine
    max_model_len: int | None
    needed_bytes: int | None  # one request at max_model_len, per GPU
    available_bytes: int  # what the admission check compares against
    refused: bool
    message: str | None  # the engine's own wording when it refuses
    largest_max_model_len: int  # what --max-model-len auto would pick (0: nothing fits)
    state_slots: int | None  # hybrid models: sequences whose fixed state the pool holds
    warnings: tuple[str, ...] = ()


def _available_for_admission(p: Plan) -> int:
    pool = p.num_blocks * p.block_bytes if p.block_bytes else p.budget.kv_budget
    d = p.deployment
    if d.profile.holds_null_block(d.engine_version) and p.block_bytes:
        pool -= p.block_bytes  # the permanently held null block (vLLM 0.29.0+)
    return max(0, pool)


def _state_slots(p: Plan) -> int | None:
    """Sequences whose fixed (Mamba / linear-attention) state the pool can hold (each needs
    1 + num_speculative_tokens state pages): vLLM's
    hybrid manager gives every request one state page per state layer group out of the same
    block pool, so the slots are the pool's blocks."""
    if not any(layer.is_recurrent for layer in p.stage.layers):
        return None
    if p.state_slots is not None:
        return p.state_slots
    per_request = 1 + p.deployment.num_speculative_tokens
    if not any(layer.kind is not LayerKind.NONE for layer in p.stage.layers):
        state = kvcache.state_bytes_per_sequence(p.stage, p.deployment.kv_dtype)
        return p.budget.kv_budget // (state * per_request) if state else None
    return p.num_blocks // per_request


def startup_check(p: Plan, max_model_len: int | None) -> StartupCheck:
    d = p.deployment
    available = _available_for_admission(p)
    slots = _state_slots(p)
    warnings: list[str] = []
    largest = _largest_len(p, available)
    if d.engine is not Engine.VLLM or max_model_len is None or not p.weights_fit:
        return StartupCheck(
            engine=d.engine,
            max_model_len=max_model_len,
            needed_bytes=None,
            available_bytes=available,
            refused=False,
            message=None,
            largest_max_model_len=largest,
            state_slots=slots,
        )
    needed = p.seq_bytes(max_model_len)
    refused = needed > available
    message = None
    if refused:
        message = (
            f"ValueError: To serve at least one request with the model's max seq len "
            f"({max_model_len}), ({needed / GiB:.2f} GiB KV cache is needed, which is larger "
            f"than the available KV cache memory ({available / GiB:.2f} GiB). Based on the "
            f"available memory, the estimated maximum model length is {largest}. Try "
            "increasing `gpu_memory_utilization` or decreasing `max_model_len` when "
            "initializing the engine."
        )
    elif slots is not None and d.scheduler_seqs > slots:
        refused = True
        message = (
            f"ValueError: max_num_seqs ({d.scheduler_seqs}) exceeds available Mamba cache "
            f"blocks ({slots})."
        )
    if not refused and largest and d.scheduler_seqs > 0:
        conc = max_concurrency(p, max_model_len)
        if conc < 1:
            warnings.append(
                f"at --max-model-len {max_model_len:,} not even one full-length request fits"
            )
    return StartupCheck(
        engine=d.engine,
        max_model_len=max_model_len,
        needed_bytes=needed,
        available_bytes=available,
        refused=refused,
        message=message,
        largest_max_model_len=largest,
        state_slots=slots,
        warnings=tuple(warnings),
    )


def _largest_len(p: Plan, available: int) -> int:
    """Largest max_model_len one request fits in (uncapped, as vLLM's estimate)."""
    if not p.weights_fit:
        return 0
    capped = p.model_copy(update={"budget": p.budget.model_copy(update={"kv_budget": available})})
    answer = max_ctx(capped, 1, cap_to_positions=False)
    if answer.unbounded:
        return p.max_positions or answer.max_ctx
    return answer.max_ctx


def auto_max_model_len(check: StartupCheck, max_positions: int | None) -> int:
    """What `--max-model-len auto` (-1) starts at: the largest that fits, capped by the
    model's max positions."""
    if max_positions is None:
        return check.largest_max_model_len
    return min(check.largest_max_model_len, max_positions)


def resolve_max_model_len(p: Plan) -> int | None:
    """The max_model_len the engine runs with: the deployment's; for `auto` (-1), what
    vLLM's auto-fit picks (`_auto_fit_max_model_len`: a binary search for the largest
    length one request's KV fits in the pool, capped by the model's max positions); None
    when it is not given, or when auto-fit finds nothing (vLLM then refuses to start)."""
    d = p.deployment
    if not d.auto_max_model_len:
        return d.max_model_len
    if not p.weights_fit:
        return None
    return auto_max_model_len(startup_check(p, None), p.max_positions) or None


def _auto_fit_line(p: Plan, length: int | None) -> str | None:
    """vLLM's own auto-fit line (wording as 0.2x logs print it)."""
    if not p.deployment.auto_max_model_len or not length:
        return None
    if p.max_positions and length >= p.max_positions:
        return (
            f"Auto-fit max_model_len: full model context length {length} fits in available "
            "GPU memory"
        )
    return (
        f"Auto-fit max_model_len: reduced from {p.max_positions} to {length} to fit in "
        f"available GPU memory ({p.budget.kv_budget / GiB:.2f} GiB available for KV cache)"
    )


def engine_log_lines(p: Plan, max_model_len: int | None) -> tuple[str, ...]:
    """The start-up lines the engine prints about its KV cache, in its own words and units
    (vLLM and TensorRT-LLM: GiB; SGLang prints "GB" but means GiB)."""
    d = p.deployment
    b = p.budget
    if not p.weights_fit:
        return ()
    tokens = int(logged_kv_tokens(p, max_model_len))
    if d.engine is Engine.VLLM:
        lines = []
        if b.activations or b.overhead:
            lines.append(
                f"Memory profiling: weights memory: {b.weights / GiB:.2f}GiB; torch peak "
                f"memory increase: {b.activations / GiB:.2f}GiB; non-torch forward increase "
                f"memory: {b.overhead / GiB:.2f}GiB"
            )
        if b.cudagraph:
            lines.append(f"Estimated CUDA graph memory: {b.cudagraph / GiB:.2f} GiB total")
        lines.append(f"Available KV cache memory: {b.kv_budget / GiB:.2f} GiB")
        auto_line = _auto_fit_line(p, max_model_len)
        if auto_line:
            lines.append(auto_line)
        lines.append(f"GPU KV cache size: {tokens:,} tokens")
        length = max_model_len or p.max_positions
        if length:
            lines.append(
                f"Maximum concurrency for {length:,} tokens per request: "
                f"{max_concurrency(p, length):.2f}x"
            )
        return tuple(lines)
    if d.engine is Engine.SGLANG:
        half = p.num_blocks * p.block_bytes / 2 / GiB
        k_size = v_size = half
        if p.stage.mla is not None and any(layer.kind is LayerKind.MLA for layer in p.stage.layers):
            k_size, v_size = 2 * half, 0.0  # MLA: one latent pool
        avail = (b.total_memory - b.preload) / GiB
        sglang_pools: tuple[str, ...] = (
            f"KV Cache is allocated. #tokens: {tokens}, K size: {k_size:.2f} GB, "
            f"V size: {v_size:.2f} GB",
        )
        if p.swa_pools is not None:  # SWAKVPool: the SWA pool, then the full one
            w = p.swa_pools
            sglang_pools = (
                f"Use sliding window memory pool. full_layer_tokens={w.full_tokens}, "
                f"swa_layer_tokens={w.swa_tokens}",
                *(
                    f"KV Cache is allocated. #tokens: {n}, K size: {size / 2 / GiB:.2f} GB, "
                    f"V size: {size / 2 / GiB:.2f} GB"
                    for n, size in (
                        (w.swa_tokens, w.swa_pool_bytes),
                        (w.full_tokens, w.full_pool_bytes),
                    )
                ),
            )
        return (
            f"Load weight begin. avail mem={avail:.2f} GB",
            f"Load weight end. avail mem={avail - b.weights / GiB:.2f} GB, "
            f"mem usage={b.weights / GiB:.2f} GB.",
            *sglang_pools,
            f"max_total_num_tokens={tokens}",
        ) + ((f"max_mamba_cache_size={p.state_slots}",) if p.state_slots is not None else ())
    if d.engine is Engine.TRTLLM:
        free = b.total_memory - b.weights - b.activations - b.overhead
        # the C++ executor's TllmRuntime prints the engine's execution context first
        context = (
            (
                f"[MemUsageChange] Allocated {b.activations / (1 << 20):.2f} MiB for execution "
                "context memory.",
            )
            if d.profile.per_slot_vocab_bytes > 0
            else ()
        )
        pools: tuple[str, ...] = (f"Number of blocks in KV cache primary pool: {p.num_blocks}",)
        allocated = p.num_blocks * p.block_bytes
        if p.trt_windows is not None:  # VSWA (kvplan.core.trt_windows): one line per window
            pools = (
                "Blocks per window size:",
                *(
                    f"[windowSize={x.window}] {{.primaryBlocks={x.blocks}, .secondayBlocks=0}}"
                    for x in p.trt_windows.pools
                ),
            )
            allocated = p.trt_windows.allocated_bytes
        return (
            *context,
            f"Memory usage when calculating max tokens in paged kv cache: total: "
            f"{b.total_memory / GiB:.2f} GiB, available: {free / GiB:.2f} GiB",
            *pools,
            f"Number of tokens per block: {d.block_size}.",
            f"Allocated {allocated / GiB:.2f} GiB for max tokens in paged KV cache ({tokens}).",
        )
    return ()


def blocks_for(p: Plan, tokens: int) -> int:
    return ceil(tokens / p.deployment.block_size)
