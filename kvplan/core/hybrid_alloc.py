"""How vLLM's hybrid KV-cache manager (V1) lays out a model whose layers cache differently
(sliding / chunked-local + full attention, attention + Mamba / linear-attention state).

vllm/v1/core/kv_cache_utils.py (`_get_kv_cache_groups_uniform_page_size`; 0.33:
core/kv_cache_planning.py) and platforms/interface.py (`_align_hybrid_block_size`):

  1. Layers are bucketed by spec (kind, window). State layers (Mamba, GDN, short-conv:
     kind NONE) have one page per request holding the whole state.
  2. With state layers the attention block size is raised to the smallest multiple of the
     kernel alignment (16) whose page is at least the state page; the state page is then
     padded up to the attention page ("Setting attention block size to N tokens").
  3. group_size = the smallest bucket's layer count, or the largest's when that is under
     1.5x the smallest; each bucket is split into cdiv(n, group_size) groups and the short
     ones padded with dummy layers ("Add N padding layers").
  4. All groups share one block pool: a block is group_size pages, so
     num_blocks = available // (group_size x page).
  5. A request at max_model_len L needs, per group: full cdiv(L, block); sliding
     cdiv(min(window - 1 + max_num_batched_tokens, L), block) + 1; chunked-local
     cdiv(min(chunk + max_num_batched_tokens, L), block); state 1 + num_speculative_tokens
     pages, 2 + it with prefix caching (Mamba cache mode "align"; kvplan.core.prefix_cache,
     which also gives the releases and sources).
     Max concurrency = num_blocks / that sum; the 0.10-0.20 "GPU KV cache size" line prints
     (num_blocks // num_groups) x block (it under-states hybrids, vllm#40691); from 0.22 it
     prints int(concurrency x L).
  6. kvplan's per-sequence bytes at n tokens (Plan.seq_bytes: the largest batch, fits,
     the largest context, the batch table) are that count at L = n x bytes_per_block
     (HybridLayout.bytes_per_request), so the largest batch at max_model_len is
     floor(max concurrency). It is vLLM's per-request worst case (a sliding group holds one
     scheduler step of chunked prefill beyond its window); a request that is decoding keeps
     only cdiv(window, block) or one more block per sliding group.

Checked against vLLM 0.19 H100 logs: Gemma-2 2B/9B/27B, Gemma-3 27B (7 groups, 8 padding
layers), gpt-oss-20b TP 2 (tests/test_engine_model.py).
"""

from __future__ import annotations

from math import ceil

from kvplan.core import kvcache
from kvplan.core.frozen import dataclass
from kvplan.core.geometry import Layer, LayerKind, ModelSpec

KERNEL_ALIGNMENT = 16


@dataclass(frozen=True)
class Group:
    kind: LayerKind
    window: int | None
    layers: int  # real layers in the group (the rest of group_size is padding)


@dataclass(frozen=True)
class HybridLayout:
    block_size: int  # tokens per attention block (raised for state hybrids)
    page_bytes: int  # one layer's page (all pages unified)
    group_size: int
    groups: tuple[Group, ...]
    padding_layers: int

    @property
    def has_state(self) -> bool:
        """Whether some group holds fixed (Mamba / linear-attention) state pages."""
        return any(g.kind is LayerKind.NONE for g in self.groups)

    @property
    def bytes_per_block(self) -> int:
        return self.group_size * self.page_bytes

    def blocks_per_request(
        self, max_model_len: int, batched_tokens: int, state_pages: int = 1
    ) -> int:
        """Blocks one request of `max_model_len` tokens holds over every group, as vLLM
        counts them (the sum over groups of KVCacheSpec.max_memory_usage_bytes / page,
        vllm 0.19.0 v1/kv_cache_interface.py:113-121 full, :232-244 chunked-local,
        :251-270 sliding, :293-300 state; v1/core/kv_cache_utils.py:802-820 the concurrency,
        :1332-1367 the start-up check's _max_memory_usage_bytes_from_groups, called at
        :1575-1584). `state_pages`: pages per state group
        (Deployment.state_pages: 1 + num_speculative_tokens, 2 + it with prefix caching in
        Mamba cache mode align). A sliding group counts the window plus one scheduler step
        of chunked prefill (window - 1 + max_num_batched_tokens tokens, + 1 block for a
        window that starts mid-block): the most a request holds, not the fewer blocks it
        keeps once decoding (SlidingWindowManager frees the blocks before the window,
        single_type_kv_cache_manager.py:358-399, :575-601). A request of 0 tokens holds
        only its state pages."""
        total = 0
        block = self.block_size
        for g in self.groups:
            if g.kind is LayerKind.NONE:
                total += state_pages
            elif max_model_len <= 0:
                continue
            elif g.kind is LayerKind.SLIDING and g.window is not None:
                total += ceil(min(g.window - 1 + batched_tokens, max_model_len) / block) + 1
            elif g.kind is LayerKind.CHUNKED and g.window is not None:
                total += ceil(min(g.window + batched_tokens, max_model_len) / block)
            else:
                total += ceil(max_model_len / block)
        return total

    def blocks_held(self, tokens: int, state_pages: int = 1) -> int:
        """Blocks a request holds while it decodes at `tokens` tokens (the steady state, not
        vLLM's per-request worst case): SlidingWindowManager frees the blocks wholly before
        the window (remove_skipped_blocks, skipped = computed - window + 1; vllm 0.19.0
        v1/core/single_type_kv_cache_manager.py:358-399, :575-601), so a sliding group
        keeps at most cdiv(window - 1, block) + 1 blocks; a chunked-local group at most
        cdiv(chunk, block) + 1 (:710, skipped = whole chunks before the current one); full
        groups cdiv(tokens, block); state groups their pages. Constant on each block of
        tokens, as kvplan.core.workload's occupancy sums require."""
        total = 0
        block = self.block_size
        for g in self.groups:
            if g.kind is LayerKind.NONE:
                total += state_pages
                continue
            held = ceil(tokens / block) if tokens > 0 else 0
            if g.kind is LayerKind.SLIDING and g.window is not None:
                held = min(held, ceil((g.window - 1) / block) + 1)
            elif g.kind is LayerKind.CHUNKED and g.window is not None:
                held = min(held, ceil(g.window / block) + 1)
            total += held
        return total

    def bytes_held(self, tokens: int, state_pages: int = 1) -> int:
        """`blocks_held` x bytes_per_block."""
        return self.blocks_held(tokens, state_pages) * self.bytes_per_block

    def bytes_per_request(self, tokens: int, batched_tokens: int, state_pages: int = 1) -> int:
        """Per-GPU bytes of the pool one request of `tokens` tokens holds: its blocks
        (`blocks_per_request` at that length) x bytes_per_block (group_size pages, padding
        layers included): vLLM's own per-request figure (_max_memory_usage_bytes_from_groups,
        vllm 0.19.0 v1/core/kv_cache_utils.py:1357-1367: group_size x page x blocks), so
        pool // this == floor(num_blocks / blocks_per_request) == floor(the logged maximum
        concurrency) at max_model_len."""
        return self.blocks_per_request(tokens, batched_tokens, state_pages) * self.bytes_per_block


def vllm_layout(
    stage: ModelSpec,
    kv_dtype: str,
    *,
    kv_heads: int,
    block_size: int,
    alignment: int = KERNEL_ALIGNMENT,
) -> HybridLayout | None:
    """The hybrid layout of one pipeline stage, or None when every layer caches alike (or
    when pages differ in a way kvplan does not model: then the uniform math applies).
    `alignment`: what the raised attention block is a multiple of (the kernel's 16; vLLM
    0.33 in align mode with FlashInfer GDN: lcm(16, 64), kvplan.core.prefix_cache)."""
    buckets: dict[tuple[LayerKind, int | None], int] = {}
    for layer in stage.layers:
        if layer.kind is LayerKind.NONE and not layer.is_recurrent:
            continue  # MLP-only / cross-attention layers: no KV pages, no state pages
        key = (layer.kind, layer.window)
        buckets[key] = buckets.get(key, 0) + 1
    if len(buckets) < 2:
        return None
    attention = [k for k in buckets if k[0] is not LayerKind.NONE]
    per_token = {
        k: kvcache.token_bytes(stage, _first(stage, k), kv_dtype, kv_heads) for k in attention
    }
    if len(set(per_token.values())) > 1:
        return None  # mixed page sizes (different heads per layer kind): not modelled
    block = block_size
    if not attention:
        return None
    token_bytes = next(iter(per_token.values()))
    if any(k[0] is LayerKind.NONE for k in buckets):
        state_layers = [layer for layer in stage.layers if layer.is_recurrent]
        # each state tensor in its own dtype (vLLM MambaSpec.page_size_bytes: sum of
        # prod(shape) x dtype size over the layer's state tensors), e.g. Qwen3.5's fp32 SSM
        # state (mamba_ssm_dtype) beside its model-dtype conv state
        state_page = max(
            kvcache.layer_state_bytes(stage, layer, kv_dtype) for layer in state_layers
        )
        needed = ceil(state_page / token_bytes)
        block = max(block, ceil(needed / alignment) * alignment)
    page = ceil(block * token_bytes)
    counts = list(buckets.values())
    smallest, largest = min(counts), max(counts)
    group_size = largest if largest < 1.5 * smallest else smallest
    groups: list[Group] = []
    padding = 0
    for (kind, window), n in buckets.items():
        parts = ceil(n / group_size)
        padding += parts * group_size - n
        for i in range(parts):
            groups.append(Group(kind, window, min(group_size, n - i * group_size)))
    return HybridLayout(
        block_size=block,
        page_bytes=page,
        group_size=group_size,
        groups=tuple(groups),
        padding_layers=padding,
    )


def _first(stage: ModelSpec, key: tuple[LayerKind, int | None]) -> Layer:
    return next(layer for layer in stage.layers if (layer.kind, layer.window) == key)
