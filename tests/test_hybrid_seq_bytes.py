"""One per-sequence figure for a vLLM hybrid (issue #15): `Plan.seq_bytes(n)` is the pool
blocks vLLM counts for a request of n tokens (HybridLayout.bytes_per_request), so the largest
batch, the fit check, the largest context and the batch table agree with vLLM's own
"Maximum concurrency" (max_batch == floor(concurrency) at max_model_len).

vLLM 0.19.0 (the PyPI wheel; kvplan.core.hybrid_alloc cites the lines): a request of L tokens
holds, per KV-cache group, full attention cdiv(L, block) blocks (kv_cache_interface.py
:113-121), sliding cdiv(min(window - 1 + max_num_batched_tokens, L), block) + 1 (:251-270),
state 1 + num_speculative_tokens pages, 2 + it in Mamba cache mode align (:293-300); a block
is group_size pages (kv_cache_utils.py:1357-1367), concurrency = num_blocks / that sum
(:802-820). Every figure below is computed by hand from the model's config.
"""

from __future__ import annotations

from math import floor

import pytest
from conftest import catalog_spec, gpu

from kvplan.core.capacity import (
    Deployment,
    fits,
    max_batch,
    max_concurrency,
    max_ctx,
    plan,
    solve_fit,
)
from kvplan.core.engines import Engine

# Gemma-3-27B: 62 layers = 52 sliding (window 1024) + 10 full, 16 KV heads x 128, bf16:
# page = 16 tokens x 16 x 128 x (K, V) x 2 B = 131,072 B; group_size 10 (52 >= 1.5 x 10),
# 6 sliding groups (8 padding layers) + 1 full group: a block is 10 pages = 1,310,720 B.
GEMMA_BLOCK = 10 * 131_072
GEMMA_BLOCKS = 15_997  # the vLLM 0.19 H100 log's num_gpu_blocks (tests/test_engine_model.py)


def gemma(max_model_len: int = 8192):
    d = Deployment(
        spec=catalog_spec("google/gemma-3-27b-it"),
        gpu=gpu("h100-sxm"),
        engine_version="0.19.0",
        max_model_len=max_model_len,
        kv_memory=GEMMA_BLOCKS * GEMMA_BLOCK,
    )
    return plan(d)


def test_gemma3_largest_batch_is_the_logged_concurrency() -> None:
    """8,192 tokens, 8,192 batched tokens: full cdiv(8192, 16) = 512 blocks, each of 6
    sliding groups cdiv(min(1023 + 8192, 8192), 16) + 1 = 513: 3,590 blocks a request;
    15,997 / 3,590 = 4.46x (the logged "Maximum concurrency for 8,192 tokens: 4.46x"), so
    4 such requests. kvplan said 18 before (52 sliding layers x 1,024 tokens + 10 full x
    8,192, at 16-token blocks and no padding layers: 1,107,296,256 B a sequence)."""
    p = gemma()
    assert p.num_blocks == GEMMA_BLOCKS
    assert p.seq_bytes(8192) == (512 + 6 * 513) * GEMMA_BLOCK == 4_705_484_800
    assert round(max_concurrency(p, 8192), 2) == 4.46
    assert max_batch(p, 8192) == floor(max_concurrency(p, 8192)) == 4
    assert 4 * p.seq_bytes(8192) <= p.budget.kv_budget < 5 * p.seq_bytes(8192)
    assert fits(p, 8192, 4) and not fits(p, 8192, 5)


def test_gemma3_shorter_context_and_largest_context() -> None:
    """2,048 tokens: 128 full blocks + 6 x (cdiv(2048, 16) + 1) = 902 blocks: 15,997 // 902 =
    17 (kvplan said 34). Largest context for 4 sequences: below 9,215 tokens (window - 1 +
    batched tokens) a request holds 7 x cdiv(n, 16) + 6 blocks <= 15,997 // 4 = 3,999, so
    cdiv(n, 16) <= 570: n = 9,120 (beyond 9,215 the sliding groups hold 6 x 577 blocks and
    cdiv(n, 16) <= 537 contradicts n >= 9,215)."""
    p = gemma()
    assert p.seq_bytes(2048) == (128 + 6 * 129) * GEMMA_BLOCK
    assert max_batch(p, 2048) == floor(max_concurrency(p, 2048)) == 17
    assert max_ctx(p, 4).max_ctx == 9120
    assert 4 * p.seq_bytes(9120) <= p.budget.kv_budget < 4 * p.seq_bytes(9121)
    # the batch table uses the same figure
    table = {row.ctx: row for row in solve_fit(p, ctx=None, batch=None).table}
    assert table[2048].max_batch == 17
    assert table[2048].kv_bytes_per_sequence == 902 * GEMMA_BLOCK


# gpt-oss-20b at TP 2: 24 layers = 12 sliding (window 128) + 12 full, 8 KV heads / 2 = 4 per
# GPU x 64 x (K, V) x 2 B = 1,024 B a token a layer; page = 16 x 1,024 = 16,384 B; 12 + 12
# layers: group_size 12, 2 groups, no padding; a block is 12 pages = 196,608 B.
OSS_BLOCK = 12 * 16_384


def test_gpt_oss_largest_batch_at_max_model_len() -> None:
    """131,072 tokens, 8,192 batched tokens: full cdiv(131072, 16) = 8,192 blocks, sliding
    cdiv(min(127 + 8192, 131072), 16) + 1 = 521: 8,713 blocks a request; a pool of 100,000
    blocks: 11.48x, 11 requests (kvplan said 12: 12 x 131,072 + 12 x 128 tokens x 1,024 B =
    1,612,185,600 B a sequence)."""
    d = Deployment(
        spec=catalog_spec("openai/gpt-oss-20b"),
        gpu=gpu("h100-sxm"),
        tp=2,
        engine_version="0.19.0",
        max_model_len=131_072,
        max_num_batched_tokens=8192,
        kv_memory=100_000 * OSS_BLOCK,
    )
    p = plan(d)
    assert p.hybrid is not None and p.hybrid.bytes_per_block == OSS_BLOCK
    assert p.num_blocks == 100_000
    assert p.seq_bytes(131_072) == (8192 + 521) * OSS_BLOCK
    assert max_concurrency(p, 131_072) == pytest.approx(100_000 / 8713)
    assert max_batch(p, 131_072) == floor(max_concurrency(p, 131_072)) == 11
    assert 11 * p.seq_bytes(131_072) <= p.budget.kv_budget < 12 * p.seq_bytes(131_072)


# Qwen3.5-27B: 64 layers = 48 Gated DeltaNet + 16 full attention (4 KV heads x 256, bf16:
# 4,096 B a token a layer). GDN state: conv (4 - 1) x (2 x 16 x 128 + 48 x 128) x 2 B =
# 61,440 B + SSM 48 x 128 x 128 x 4 B (mamba_ssm_dtype float32) = 3,145,728 B: 3,207,168 B =
# 783 tokens x 4,096 B, so the attention block is raised to 784 tokens (multiple of 16) and
# the page is 784 x 4,096 = 3,211,264 B; group_size 16 (48 >= 1.5 x 16): 3 state groups + 1
# full group; a block is 16 pages = 51,380,224 B.
QWEN_BLOCK = 16 * 784 * 4096


@pytest.mark.parametrize(
    ("prefix", "state_pages", "batch_at_len", "batch_at_2k"),
    [
        # off (0.19.0's default for a hybrid): 42 + 3 = 45 blocks at 32,768 tokens, 22.2x;
        # 3 + 3 = 6 blocks at 2,048 tokens: 166 (kvplan said 178: 16 layers x 2,048 tokens x
        # 4,096 B + 48 states x 3,207,168 B, without the 784-token block and padding)
        (False, 1, 22, 166),
        # on: align mode, 2 pages per state group: 42 + 6 = 48 blocks, 20.8x; 3 + 6 = 9: 111
        (True, 2, 20, 111),
    ],
)
def test_qwen35_state_hybrid(
    prefix: bool, state_pages: int, batch_at_len: int, batch_at_2k: int
) -> None:
    d = Deployment(
        spec=catalog_spec("Qwen/Qwen3.5-27B"),
        gpu=gpu("h100-sxm"),
        engine_version="0.19.0",
        max_model_len=32_768,
        kv_memory=1000 * QWEN_BLOCK,
        enable_prefix_caching=prefix,
    )
    p = plan(d)
    assert p.hybrid is not None
    assert (p.hybrid.block_size, p.hybrid.page_bytes) == (784, 784 * 4096)
    assert p.hybrid.bytes_per_block == QWEN_BLOCK and p.num_blocks == 1000
    assert p.deployment.state_pages == state_pages
    # cdiv(32768, 784) = 42 (784 x 41 = 32,144 < 32,768)
    assert p.seq_bytes(32_768) == (42 + 3 * state_pages) * QWEN_BLOCK
    assert max_concurrency(p, 32_768) == pytest.approx(1000 / (42 + 3 * state_pages))
    assert max_batch(p, 32_768) == floor(max_concurrency(p, 32_768)) == batch_at_len
    assert p.seq_bytes(2048) == (3 + 3 * state_pages) * QWEN_BLOCK
    assert max_batch(p, 2048) == floor(max_concurrency(p, 2048)) == batch_at_2k
    # a sequence of 0 tokens holds only its state pages
    assert p.seq_bytes(0) == 3 * state_pages * QWEN_BLOCK


def test_non_hybrid_and_other_engines_unchanged() -> None:
    """Llama-3.1-8B on vLLM (one group): 16-token blocks of 32 layers x 8 KV heads x 128 x
    (K, V) x 2 B = 131,072 B a token; Gemma-3 on SGLang and TensorRT-LLM never get a vLLM
    hybrid layout."""
    llama = plan(
        Deployment(
            spec=catalog_spec("meta-llama/Llama-3.1-8B-Instruct"),
            gpu=gpu("h100-sxm"),
            kv_memory=40 * 1024**3,
        )
    )
    assert llama.hybrid is None
    assert llama.seq_bytes(8191) == 8192 * 131_072
    spec = catalog_spec("google/gemma-3-27b-it")
    for engine in (Engine.SGLANG, Engine.TRTLLM):
        p = plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), engine=engine, kv_memory=10**10))
        assert p.hybrid is None


def test_decoding_sequences_hold_only_the_window() -> None:
    """What a decoding request keeps (Plan.held_bytes, the steady state `kvplan plan`'s
    occupancy integrates): SlidingWindowManager frees the blocks wholly before the window, so
    a Gemma-3 sliding group keeps at most cdiv(1023, 16) + 1 = 65 blocks: 512 + 6 x 65 = 902
    blocks at 8,192 tokens, where vLLM's per-request count (seq_bytes) is 3,590. The
    guaranteed concurrency of a fixed-length workload is still `fit --ctx`'s largest batch."""
    from kvplan.core.workload import occupancy, workload

    p = gemma()
    assert p.held_bytes(8192) == (512 + 6 * 65) * GEMMA_BLOCK
    assert p.held_bytes(1000) == 7 * 63 * GEMMA_BLOCK  # cdiv(1000, 16) = 63 in every group
    assert p.held_bytes(8192) < p.seq_bytes(8192)
    occ = occupancy(p, workload("one", [(8000, 192)]), max_seqs=1024)
    assert occ.max_concurrency_guaranteed == max_batch(p, 8192) == 4
    assert occ.max_concurrency_steady > 4
    # no sliding group: both figures are the same (Qwen3.5: full + state groups)
    q = plan(
        Deployment(
            spec=catalog_spec("Qwen/Qwen3.5-27B"),
            gpu=gpu("h100-sxm"),
            engine_version="0.19.0",
            max_model_len=32_768,
            kv_memory=1000 * QWEN_BLOCK,
        )
    )
    assert q.held_bytes(32_768) == q.seq_bytes(32_768) == 45 * QWEN_BLOCK


def test_sweep_vectorises_vllm_hybrids_and_equals_fit() -> None:
    """The sweep's vectorised core carries a vLLM hybrid's pool blocks (sweep._hybrid_terms),
    so its rows equal fit's (KV bytes, largest batch) for sliding (Gemma-3, gpt-oss) and
    state (Qwen3.5) hybrids, across releases, without the per-row scalar path."""
    from conftest import sweep_rows_equal_fit

    import kvplan

    models = ["google/gemma-3-27b-it", "openai/gpt-oss-20b", "Qwen/Qwen3.5-27B"]
    n = sweep_rows_equal_fit(
        models, gpu=["h100-sxm"], ctx=[1, 2048, 8191, 32768, 131072], batch=[1, 3, 64],
        engine_version=["0.19", "0.28.0"],
    )  # fmt: skip
    assert n == 3 * 2 * 5 * 3
    r = kvplan.sweep(models, gpu=["h100-sxm"], ctx=[2048], batch=[1])
    assert all(p.scalar is None for p in r.plans)  # answered by the vectorised core
