"""TensorRT-LLM's attention windows: one KV pool per window size (VSWA).

TensorRT-LLM caches each layer over that layer's *max attention window*, a per-layer list
the user gives (`kv_cache_config.max_attention_window`, LLM API / trtllm-serve; `--max_
attention_window_size` of the engine-flow runners), repeated over the layers (layer i gets
list[i % len]: cpp/tensorrt_llm/batch_manager/kvCacheManager.cpp
`BaseKVCacheManager::groupLayersByWindowSize`). Without that list every layer's window is
max_seq_len: the model's own sliding windows do not shrink the cache
(tensorrt_llm/_torch/pyexecutor/resource_manager.py `KVCacheManager.__init__`:
"if kv_cache_config.max_attention_window is None: # Use max_seq_len as default
max_attention_window"; the Triton engine-flow log of tensorrt_llm_backend#366 sizes
Mistral-7B-v0.1, window 4096, at 272 blocks of 128 per sequence, i.e. its full length).
`full_length_stage` is that default; `window_pools` the per-window layout.

Windows are capped by max_seq_len (resource_manager.py: `min(window_size, max_seq_len)`;
TensorRT-LLM#6481 "clamp window sizes by the max seq len before calculating KV cache pool
size"). Layers are grouped by capped window; more than one group is VSWA, and each group
gets its own `WindowBlockManager`, i.e. its own pool of blocks of `tokens_per_block` tokens
holding that group's layers (kvCacheManager.cpp `BlockManager::BlockManager`, TensorRT-LLM
#3028). `BaseKVCacheManager::calculateMaxNumBlocks` splits the primary (GPU) budget M:

    bytes_w   = KV bytes per token of the layers with window w (this GPU's heads)
    tokens_w  = floor(M x share_w / bytes_w)
    blocks_w  = ceil(tokens_w / tokens_per_block)        (C++; engine flow)
              = floor(tokens_w / tokens_per_block)       (PyTorch flow, Python: resource_
                manager.py `calculate_max_num_blocks_for_vswa`, `int(primary_tokens //
                self.tokens_per_block)`)

and share_w by release (ShareRule; the C++ comment "Currently, we are first allocating
identical number of blocks for all layers to achieve identical performance"):

    EQUAL          1 / (number of windows)                          1.1 and later
                   (TensorRT-LLM#7923, which added TRTLLM_WINDOW_SIZE_SHARES to override
                   it; kvCacheManager.cpp calculateMaxNumBlocks "else" branch, and the
                   PyTorch flow's resource_manager.py "Using default allocation of equal
                   proportion of memory to each window size")
    WINDOW_BYTES   w x bytes_w / sum_v (v x bytes_v)                1.0
                   (TensorRT-LLM#6481 "remove duplicate layer multiplication":
                   calculateWindowSizeToShare weights bytes_w / sum(bytes) by w only)
    WINDOW_LAYERS  w x n_w x bytes_w / sum_v (v x n_v x bytes_v)    0.21
                   (TensorRT-LLM#4667; NVIDIA/TensorRT-LLM@002ba6a kvCacheManager.cpp
                   calculateWindowSizeToShare: `*= windowSize * layers.size()` on weights
                   bytes_w / sum(bytes), bytes_w already summing its n_w layers; its
                   header's example {1024: [1], 4096: [0, 4, 5], 8192: [2, 3]} ->
                   {1024: 0.0345, 4096: 0.4138, 8192: 0.5517} is this rule at equal bytes)

Which release carries which PR is inferred from the merge dates against PyPI's release
dates (#4667 2025-05/06, #6481 2025-07-30, #7923 2025-09-24; 0.21.0 2025-08-04, 1.0.0
2025-09-24, 1.1.0 2025-12-19), not read from tagged sources. Releases before 0.21 (the
#3028 split of a block count by w x n_w) are not modelled.

A request of L tokens holds, in window w's pool (kvCacheManager.cpp
`KVCacheManager::calculateMaxBlockRequirementsPerBeam`, beam 1, no sink tokens):

    need_w(L) = ceil(min(L, w) / tokens_per_block) + (1 if L > w and 1.1+ else 0)

(kSWAExtraBlock = 1, kvCacheManager.h, TensorRT-LLM#6768), and the engine admits
min_w floor(blocks_w / need_w(L)) such requests (`KVCacheManager::getMaxCapacityBatchSize`:
"The window with the *smallest* max batch size is the limiting factor").

What the engine prints: per window "Max KV cache blocks per sequence: N [window size=W],
tokens per block=T, primary blocks=P_w, secondary blocks=S_w, max sequence length=L" (1.1+;
"Blocks per window size:" / "[windowSize=W] {.primaryBlocks=P_w, .secondayBlocks=S_w}" from
1.0, "Number of blocks in KV cache primary pool for windowSize W: P_w" in 0.21), the PyTorch
flow also "Window size = W, primary_blocks: P_w, secondary_blocks: S_w"; then once
"[MemUsageChange] Allocated X GiB for max tokens in paged KV cache (N)" with N = sum_w P_w x T
(BlockManager::getNumPrimaryBlocks sums the window managers). `WindowPools.logged_tokens`.

Not modelled: TRTLLM_WINDOW_SIZE_SHARES; a window list other than the model's own windows;
the PyTorch flow shrinking windows when one sequence does not fit
(`adjust_window_sizes_for_vswa`, TensorRT-LLM#5880) - kvplan reports a concurrency below 1
instead; secondary (host) pools; beam width > 1; sink tokens.
"""

from __future__ import annotations

from enum import Enum
from math import ceil, floor

from kvplan.core import kvcache
from kvplan.core.engines import parse_version
from kvplan.core.frozen import Frozen
from kvplan.core.geometry import Layer, LayerKind, Mixer, ModelSpec
from kvplan.errors import KvplanError

SWA_EXTRA_BLOCK = 1  # kSWAExtraBlock, cpp/include/tensorrt_llm/batch_manager/kvCacheManager.h


class ShareRule(str, Enum):
    """How calculateMaxNumBlocks splits the pool between window sizes (module doc)."""

    EQUAL = "equal"  # 1 / windows (1.1+)
    WINDOW_BYTES = "window_bytes"  # w x bytes_w (1.0)
    WINDOW_LAYERS = "window_layers"  # w x n_w x bytes_w (0.21)


def share_rule_for(release: str | None) -> ShareRule:
    """The share rule of a TensorRT-LLM release (None or a line name: the newest)."""
    if release is None or not release.strip()[:1].isdigit():
        return ShareRule.EQUAL
    version = parse_version(release)
    if version >= (1, 1):
        return ShareRule.EQUAL
    if version >= (1, 0):
        return ShareRule.WINDOW_BYTES
    if version >= (0, 21):
        return ShareRule.WINDOW_LAYERS
    raise KvplanError(
        f"TensorRT-LLM {release}: per-window KV pools before 0.21 are not modelled",
        hint="drop --vswa (one pool, every layer over max_seq_len) or give a release >= 0.21",
        setting="vswa",
    )


def window_shares(
    groups: dict[int, tuple[int, int]], rule: ShareRule = ShareRule.EQUAL
) -> dict[int, float]:
    """Share of the primary pool for each window: `groups` maps window -> (layers, KV bytes
    per token of those layers). One window takes everything (calculateWindowSizeToShare)."""
    if len(groups) == 1:
        return {w: 1.0 for w in groups}
    if rule is ShareRule.EQUAL:
        return {w: 1.0 / len(groups) for w in groups}
    total_bytes = sum(b for _, b in groups.values())
    weight = {
        w: (b / total_bytes) * w * (n if rule is ShareRule.WINDOW_LAYERS else 1)
        for w, (n, b) in groups.items()
    }
    total = sum(weight.values())
    return {w: x / total for w, x in weight.items()}


class WindowPool(Frozen):
    """One window size's pool on one GPU."""

    window: int  # tokens, capped by max_seq_len
    layers: int
    bytes_per_token: int  # KV bytes per token of this window's layers, per GPU
    share: float
    tokens: int  # floor(budget x share / bytes_per_token)
    blocks: int  # primary blocks


class WindowPools(Frozen):
    """TensorRT-LLM's per-window pools of one GPU (VSWA)."""

    rule: ShareRule
    tokens_per_block: int
    max_seq_len: int
    extra_block: bool  # kSWAExtraBlock counted in a request's need (1.1+)
    pools: tuple[WindowPool, ...]

    def need(self, pool: WindowPool, length: int) -> int:
        """Blocks of `pool` one request of `length` tokens holds (beam 1, no sink)."""
        blocks = ceil(min(length, pool.window) / self.tokens_per_block)
        if self.extra_block and length > pool.window:
            blocks += SWA_EXTRA_BLOCK
        return blocks

    def max_concurrency(self, length: int) -> float:
        """Requests of `length` tokens the pools hold at once: the scarcest window's
        blocks / need (fractional, like vLLM's figure; the engine admits its floor)."""
        return min(p.blocks / self.need(p, length) for p in self.pools)

    def max_batch(self, length: int) -> int:
        """getMaxCapacityBatchSize: min over windows of floor(blocks / need)."""
        return min(p.blocks // self.need(p, length) for p in self.pools)

    def spare_bytes(self, length: int, batch: int) -> int:
        """Bytes left in the scarcest pool after `batch` requests of `length` tokens
        (negative: that pool is short)."""
        return min(
            (p.blocks - batch * self.need(p, length)) * self.tokens_per_block * p.bytes_per_token
            for p in self.pools
        )

    @property
    def logged_tokens(self) -> int:
        """N of "Allocated X GiB for max tokens in paged KV cache (N)": all windows' primary
        blocks x tokens per block."""
        return sum(p.blocks for p in self.pools) * self.tokens_per_block

    @property
    def allocated_bytes(self) -> int:
        return sum(p.blocks * self.tokens_per_block * p.bytes_per_token for p in self.pools)


def _windowed(layer: Layer) -> bool:
    return layer.mixer_kind is Mixer.ATTENTION and layer.kind in (
        LayerKind.SLIDING,
        LayerKind.CHUNKED,
    )


def full_length_stage(stage: ModelSpec) -> ModelSpec:
    """The stage as TensorRT-LLM caches it without max_attention_window: every attention
    layer over max_seq_len (its sliding / chunked window only masks attention)."""
    if not any(_windowed(x) for x in stage.layers):
        return stage
    layers = tuple(
        x.model_copy(update={"kind": LayerKind.FULL, "window": None}) if _windowed(x) else x
        for x in stage.layers
    )
    return stage.model_copy(update={"layers": layers})


def layer_windows(stage: ModelSpec, max_seq_len: int) -> list[int]:
    """Each layer's window as the model's own max_attention_window list gives it: a sliding
    layer its window, every other attention layer max_seq_len, all capped by max_seq_len."""
    out = []
    for layer in stage.layers:
        if layer.kind is LayerKind.NONE or layer.is_recurrent or layer.encoder_tokens:
            raise KvplanError(
                f"--vswa: {layer.label()} layers in TensorRT-LLM's per-window pools are not "
                "modelled",
                setting="vswa",
            )
        if layer.kind is LayerKind.CHUNKED:
            raise KvplanError(
                "--vswa: chunked local attention is not a sliding window; TensorRT-LLM's "
                "handling of its cache is not modelled",
                setting="vswa",
            )
        if layer.mixer_kind is Mixer.COMPRESSED or layer.local_window:
            raise KvplanError(
                f"--vswa: {layer.label()} layers are not modelled in per-window pools",
                setting="vswa",
            )
        window = layer.window if layer.kind is LayerKind.SLIDING and layer.window else max_seq_len
        out.append(min(window, max_seq_len))
    return out


def window_pattern(windows: list[int]) -> list[int]:
    """The shortest list TensorRT-LLM repeats into `windows` (layer i gets list[i % len]):
    what to give as kv_cache_config.max_attention_window."""
    for period in range(1, len(windows) + 1):
        if all(w == windows[i % period] for i, w in enumerate(windows)):
            return windows[:period]
    return windows


def rounds_blocks_up(flow: str, rule: ShareRule) -> bool:
    """Whether the per-window split rounds each pool's blocks up: the C++ split does
    (`calculateMaxNumBlocks`, ceil), the PyTorch flow's Python split with equal shares
    floors them (resource_manager.py `calculate_max_num_blocks_for_vswa`)."""
    return not (flow == "pytorch" and rule is ShareRule.EQUAL)


def window_pools(
    stage: ModelSpec,
    kv_dtype: str,
    *,
    kv_heads: int,
    budget: int,
    tokens_per_block: int,
    max_seq_len: int,
    rule: ShareRule,
    round_up: bool,
) -> WindowPools:
    """The per-window pools of one GPU holding `stage`'s layers, from the primary budget
    (module doc). `round_up`: the C++ split (ceil blocks), else the PyTorch flow's (floor)."""
    windows = layer_windows(stage, max_seq_len)
    by_window: dict[int, list[Layer]] = {}
    for layer, window in zip(stage.layers, windows, strict=True):
        by_window.setdefault(window, []).append(layer)
    groups: dict[int, tuple[int, int]] = {}
    for window, layers in sorted(by_window.items()):
        sub = stage.model_copy(update={"layers": tuple(layers)})
        groups[window] = (len(layers), kvcache.kv_bytes_per_token(sub, kv_dtype, kv_heads=kv_heads))
    shares = window_shares(groups, rule)
    pools = []
    for window, (n, per_token) in groups.items():
        # calculatePrimaryBlocks: static_cast<uint64_t>(memoryBudget / cacheSizeBytesPerToken)
        tokens = floor(budget * shares[window] / per_token) if budget > 0 else 0
        blocks = ceil(tokens / tokens_per_block) if round_up else tokens // tokens_per_block
        pools.append(
            WindowPool(
                window=window,
                layers=n,
                bytes_per_token=per_token,
                share=shares[window],
                tokens=tokens,
                blocks=blocks,
            )
        )
    return WindowPools(
        rule=rule,
        tokens_per_block=tokens_per_block,
        max_seq_len=max_seq_len,
        extra_block=rule is ShareRule.EQUAL,
        pools=tuple(pools),
    )
