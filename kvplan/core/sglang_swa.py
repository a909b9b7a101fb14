"""SGLang's hybrid sliding-window KV pools (SWAKVPool): the one place kvplan states them.

From 0.4.9.post3 SGLang can keep a model's sliding-window layers in their own token pool
beside the full-attention layers' pool ("hybrid SWA memory"), freeing each request's SWA
tokens once they fall out of the window. Read in the PyPI wheels of each release (the
wheels carry the tag's python/sglang tree):

* which models, by release (`hybrid_swa_families`):
  - 0.4.9.post3 - 0.5.6: a model whose SGLang class defines
    `get_attention_sliding_window_size` (0.4.9.post3 / 0.4.10 models/: gemma2, gemma3_causal,
    gemma3_mm, gemma3n_causal, gemma3n_mm; 0.5.4 adds gpt_oss, olmo2), not a Llama4
    architecture, and --disable-hybrid-swa-memory not given (0.4.9.post3
    model_executor/model_runner.py:278-285). 0.4.9 - 0.4.9.post2 have no such pool
    (no `swa_full_tokens_ratio` in their server_args.py).
  - server_args turns it off for some of them: Gemma2ForCausalLM from 0.4.10.post2
    (server_args.py:1939-1943; not in 0.4.10 / 0.4.10.post1); GptOssForCausalLM and
    Gemma2/Gemma3/Gemma3n (CausalLM and ConditionalGeneration) from 0.5.1 (0.5.1
    server_args.py:2274,2281-2295; 0.5.3 :781,794-804; 0.5.4 :959,970-982; 0.5.7 :1214,
    1278). The 0.5.0 release candidates were not read: 0.5.0 is taken as 0.5.1.
  - 0.5.7 decides in the model config only: MiMoV2FlashForCausalLM (configs/model_config.py:
    1147-1156 `is_hybrid_model` returns 1 for it; model_runner.py no longer checks the
    class method), Llama-4 only with --hybrid-kvcache-ratio.
  - 0.5.8: an architecture list, `is_hybrid_swa_model` (configs/model_config.py:1220-1228):
    Llama4ForConditionalGeneration, GptOssForCausalLM, MiMoV2FlashForCausalLM; Gemma
    still off (server_args.py:1372-1385). GPT-OSS only without speculative decoding
    (:1288-1293) and without the trtllm_mha attention backend (:1278-1286), which is its
    default on SM100 GPUs (:1257-1263). Later releases add architectures (0.5.23:
    Gemma4, GraniteSWA, Step3p5 ...): not modelled, the 0.5.8 list stands for the 0.5 line.
* the split (0.4.9.post3 model_runner.py:973-1050; 0.5.8
  model_executor/model_runner_kv_cache_mixin.py:218-251): SGLang first sizes the pool as
  if every layer held every token, max_total_num_tokens = rest // (bytes per token over
  all layers), then shares those layer-tokens out: with L = num_hidden_layers, S sliding
  and F full layers and r = --swa-full-tokens-ratio (default 0.8, server_args.py:85 in
  0.4.9.post3, :325 in 0.5.8),
      full = int(max_total_num_tokens x L / (r x S + F)),  swa = int(full x r)
  (0.5.8 rounds both down to the page size, mixin :206-251; earlier only
  max_total_num_tokens is). The engine then runs with max_total_num_tokens = full: the
  scheduler's
  "max_total_num_tokens=" line prints the full pool, "Use [Ss]liding window memory pool.
  full_layer_tokens=F, swa_layer_tokens=S" precedes it, and SWAKVPool builds the SWA pool,
  then the full one, each printing "KV Cache is allocated. #tokens: N, K size, V size"
  (0.4.9.post3 mem_cache/memory_pool.py:471-515; 0.5.8 mem_cache/swa_memory_pool.py:20-80).
  The split assumes every layer's token costs the same bytes: true of Gemma, GPT-OSS and
  Llama-4, not of MiMo-V2-Flash, whose uniform count SGLang 0.5.7 / 0.5.8 take with their
  own cell (full heads over every layer + the SWA heads over the sliding layers, mixin
  get_cell_size_per_token: `uniform_cell_bytes`; checked on sglang#18039's printed pools).
* a request of n tokens holds n tokens of the full pool and about its window of the SWA
  pool. 0.5.8 frees the tokens that leave the window as the request runs (0.5.8
  managers/schedule_batch.py:2270-2321 maybe_evict_swa / `_evict_swa`: pre_len -
  sliding_window_size). 0.4.9.post3 - 0.5.7 (no such eviction: no `swa_evicted_seqlen` in
  their schedule_batch.py) insert the prompt into SWARadixCache after prefill
  (scheduler_output_processor_mixin.py:91-94) and lock only its last window of SWA tokens
  (0.4.9.post3 mem_cache/swa_radix_cache.py:633-648): the older prompt tokens become
  evictable, but generated tokens stay until the request ends. kvplan counts the window:
  exact for prompt-dominated requests, short by the generated tokens beyond it before
  0.5.8. A prefill chunk also holds up to the chunk beyond the window for a moment.
* max_running_requests is derived before the split, from the uniform count (0.5.8
  model_runner_kv_cache_mixin.py init_memory_pool), so it does not change.
"""

from __future__ import annotations

import re
from math import ceil

from kvplan.core.frozen import Frozen
from kvplan.core.geometry import LayerKind, ModelSpec

SWA_FULL_TOKENS_RATIO = 0.8  # server_args.py:85 (0.4.9.post3) .. :325 (0.5.8) default

# model_type (config.json) -> SGLang architecture group the release rules name
_GEMMA2 = ("gemma2",)
_GEMMA3 = ("gemma3", "gemma3_text", "gemma3n", "gemma3n_text")
# (first release, families whose sliding layers get their own pool by default), newest last
_STEPS: tuple[tuple[tuple[int, ...], tuple[str, ...]], ...] = (
    ((0, 4, 9, 3), (*_GEMMA2, *_GEMMA3)),
    ((0, 4, 10, 2), _GEMMA3),
    ((0, 5, 0, 0), ()),
    ((0, 5, 7, 0), ("mimo_v2_flash",)),
    ((0, 5, 8, 0), ("gpt_oss", "llama4", "llama4_text", "mimo_v2_flash")),
)
# Llama-4 only as Llama4ForConditionalGeneration (the published checkpoints: a vision tower)
_NEEDS_VISION = ("llama4", "llama4_text")
_NEVER_SPECULATIVE = ("gpt_oss",)  # 0.5.8 server_args.py:1288-1293
_NOT_ON_SM100 = ("gpt_oss",)  # trtllm_mha default there (:1257-1263) disables it (:1278-1286)


def release_key(release: str) -> tuple[int, ...]:
    """'0.4.9.post3' -> (0, 4, 9, 3), '0.5.8' -> (0, 5, 8, 0): the post release counts
    (the pool arrived inside the 0.4.9 posts). Pre-releases count as their release."""
    nums = [int(x) for x in re.findall(r"\d+", release.split("rc")[0].split("dev")[0])]
    head = nums[:3] + [0] * (3 - len(nums[:3]))
    post = re.search(r"post(\d+)", release)
    return (*head, int(post.group(1)) if post else 0)


# the release whose server_args.py first has --swa-full-tokens-ratio and
# --disable-hybrid-swa-memory (0.4.9 - 0.4.9.post2 have neither)
SWA_FLAGS_FROM = (0, 4, 9, 3)


# 0.5.8 rounds both pools down to the page size (model_runner_kv_cache_mixin.py:206-251);
# earlier releases round only max_total_num_tokens
ROUNDS_TO_PAGE_FROM = (0, 5, 8, 0)


def rounds_to_page(release: tuple[int, ...]) -> bool:
    """Whether SGLang `release` (release_key form) rounds both SWA pools to the page."""
    return release >= ROUNDS_TO_PAGE_FROM


def flags_refusal(release: tuple[int, ...]) -> str | None:
    """Why SGLang `release` (release_key form) cannot take the hybrid-SWA flags, or None."""
    if release < SWA_FLAGS_FROM:
        return "that release has no hybrid sliding-window pool or its flags (from 0.4.9.post3)"
    return None


def hybrid_swa_families(release: tuple[int, ...]) -> tuple[str, ...]:
    """The model families (config model_type) SGLang `release` (release_key form) gives a
    separate sliding-window pool by default."""
    families: tuple[str, ...] = ()
    for first, step in _STEPS:
        if release >= first:
            families = step
    return families


def uses_hybrid_swa(
    spec: ModelSpec, release: tuple[int, ...], *, speculative: bool, sm100: bool
) -> bool:
    """Whether SGLang `release` runs `spec` with SWA + full pools (module docstring)."""
    if spec.family not in hybrid_swa_families(release):
        return False
    if spec.family in _NEEDS_VISION and spec.vision is None:
        return False
    if release >= (0, 5, 8, 0) and spec.family in _NEVER_SPECULATIVE and speculative:
        return False
    if release >= (0, 5, 8, 0) and spec.family in _NOT_ON_SM100 and sm100:
        return False
    kinds = {layer.kind for layer in spec.layers}
    windowed = kinds & {LayerKind.SLIDING, LayerKind.CHUNKED}
    return bool(windowed) and LayerKind.FULL in kinds and kinds <= {LayerKind.FULL, *windowed}


class SwaPools(Frozen):
    """SGLang's two token pools of a hybrid-SWA model (per GPU)."""

    full_tokens: int  # full_layer_tokens: also the engine's max_total_num_tokens
    swa_tokens: int  # swa_layer_tokens
    full_layers: int
    swa_layers: int
    window: int  # the sliding layers' window (tokens a decoding request keeps)
    ratio: float  # --swa-full-tokens-ratio
    full_bytes_per_token: int  # per GPU, all full layers
    swa_bytes_per_token: int  # per GPU, all sliding layers
    page: int

    def tokens_held(self, ctx: int) -> tuple[int, int]:
        """(full, swa) tokens one request of `ctx` tokens holds, page-rounded."""
        full = ceil(ctx / self.page) * self.page
        swa = ceil(min(ctx, self.window) / self.page) * self.page
        return full, swa

    def max_batch(self, ctx: int) -> int:
        """Requests of `ctx` tokens both pools hold at once."""
        full, swa = self.tokens_held(ctx)
        return min(self.full_tokens // full, self.swa_tokens // swa)

    def spare_bytes(self, ctx: int, batch: int) -> int:
        """Bytes left in the scarcer pool after `batch` requests of `ctx` tokens (negative:
        that pool is short): (pool tokens - batch x tokens held) x bytes per token."""
        full, swa = self.tokens_held(ctx)
        return min(
            (self.full_tokens - batch * full) * self.full_bytes_per_token,
            (self.swa_tokens - batch * swa) * self.swa_bytes_per_token,
        )

    @property
    def full_pool_bytes(self) -> int:
        return self.full_tokens * self.full_bytes_per_token

    @property
    def swa_pool_bytes(self) -> int:
        return self.swa_tokens * self.swa_bytes_per_token


# Models whose sliding layers cache another head geometry than the full ones, for which
# SGLang's per-token cell adds the sliding heads again on top of full heads over every
# layer (0.5.7 / 0.5.8 model_executor/model_runner_kv_cache_mixin.py get_cell_size_per_token
# :101-110 / :99-108: `if "MiMoV2FlashForCausalLM" in architectures: cell_size +=
# swa_kv_heads x (swa_head_dim + swa_v_head_dim) x len(swa_attention_layer_ids) x kv_size`,
# after cell_size = kv_heads x (head_dim + v_head_dim) x num_layers x kv_size)
_OWN_SWA_CELL = ("mimo_v2_flash",)


def uniform_cell_bytes(
    spec: ModelSpec, *, full_bytes_per_token: int, swa_bytes_per_token: int
) -> int | None:
    """The bytes per token SGLang divides the pool by to get its uniform count T, when that is
    not the model's own per-token bytes (full + sliding layers): for MiMo-V2-Flash, full heads
    over ALL layers plus the sliding heads over the sliding layers (`_OWN_SWA_CELL`);
    None for every other model (T = pool // its per-token bytes)."""
    if spec.family not in _OWN_SWA_CELL:
        return None
    full = sum(1 for x in spec.layers if x.kind is LayerKind.FULL)
    layers = sum(1 for x in spec.layers if x.kind is not LayerKind.NONE)
    if not full:
        return None
    return full_bytes_per_token // full * layers + swa_bytes_per_token


def swa_pools(
    uniform_tokens: int,
    spec: ModelSpec,
    *,
    ratio: float,
    page: int,
    full_bytes_per_token: int,
    swa_bytes_per_token: int,
    round_pools: bool,
) -> SwaPools:
    """full = int(T x L / (r S + F)), swa = int(full x r) from the uniform count T
    (module docstring; `round_pools`: 0.5.8 rounds both to the page)."""
    full_layers = sum(1 for x in spec.layers if x.kind is LayerKind.FULL)
    swa = [x for x in spec.layers if x.kind in (LayerKind.SLIDING, LayerKind.CHUNKED)]
    layers = full_layers + len(swa)
    full = int(uniform_tokens * layers / (ratio * len(swa) + full_layers))
    swa_tokens = int(full * ratio)
    if round_pools:
        full, swa_tokens = full // page * page, swa_tokens // page * page
    return SwaPools(
        full_tokens=full,
        swa_tokens=swa_tokens,
        full_layers=full_layers,
        swa_layers=len(swa),
        window=max(x.window or 0 for x in swa),
        ratio=ratio,
        full_bytes_per_token=full_bytes_per_token,
        swa_bytes_per_token=swa_bytes_per_token,
        page=page,
    )
