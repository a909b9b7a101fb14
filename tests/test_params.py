"""Parameter counts against published figures, and weight bytes of quantized checkpoints.

Tolerance. An exact published count (a safetensors total, a paper's table) must agree to 0.5%.
A rounded one ("32.5B", "3.3B activated") must agree to half a unit in its last published
digit or 0.5%, whichever is larger. The unit is read off the stored integer: trailing zeros
count as not significant, so 3_300_000_000 ("3.3B") has a unit of 0.1B and 40_000_000_000
("40B") a unit of 10B.

Active parameters. Vendors differ on whether "active" counts the input-embedding table (a
lookup, not a matmul): OpenAI's gpt-oss 5.1B / 3.6B and DeepSeek's figures exclude it;
Mistral's 12.9B and Qwen3-30B-A3B's 3.3B include it. An active figure passes if it agrees
under either convention (docs/config-keys.md).
"""

from __future__ import annotations

from math import ceil

import pytest

from kvplan.core.params import param_counts, weight_bytes
from kvplan.sources.catalog import CatalogEntry, load_catalog

CATALOG = load_catalog()
GiB = 1024**3
REL = 0.005

# Published figures that are truncated or nominal rather than rounded: ours rounds to a
# different figure, so the strict check is expected to fail (strict xfail: if the count or
# the catalog changes so that it passes, the test says so). Each still has to be close.
NOT_ROUNDED: dict[tuple[str, str], str] = {
    ("Qwen/Qwen2.5-32B-Instruct", "total"): (
        "model card says 32.5B, the published config gives 32.76B (64 x 487.6M per layer + "
        "2 x 778.6M embeddings); the card's figure disagrees with its own config"
    ),
    ("microsoft/phi-4", "total"): (
        "'14B' is the model's name-size; the config gives 14.66B (40 layers, 17920 MLP, "
        "untied 100352 vocab)"
    ),
    ("microsoft/phi-2", "total"): (
        "'2.7 billion' is 2.78B truncated (32 x 78.7M per layer + 2 x 131M embeddings)"
    ),
    ("mosaicml/mpt-7b-instruct", "total"): (
        "published as 6.7B; the config gives 6.649B (6.6 when rounded), off by 1.3M params"
    ),
    ("Qwen/Qwen3-30B-A3B", "active"): (
        "'3.3B activated' is 3.353B (incl. embeddings) truncated; excluding the input "
        "embedding gives 3.04B"
    ),
    ("deepseek-ai/DeepSeek-V2-Lite", "active"): (
        "'2.4B activated' is 2.451B (excl. the input embedding) truncated"
    ),
    ("google/gemma-4-26B-A4B", "total"): (
        "'26B' is the multimodal checkpoint's name-size; the text decoder kvplan plans for is "
        "25.233B, exactly what transformers builds from the same config (crosscheck fixture)"
    ),
    ("nvidia/Llama-3_3-Nemotron-Super-49B-v1", "total"): (
        "'49B' is 49.87B truncated: 49 attention blocks (G 8) and 80 FFN blocks of "
        "block_configs widths, untied 128256 x 8192 embeddings"
    ),
    ("mistralai/Devstral-2-123B-Instruct-2512", "total"): (
        "'123B' is a name-size; the config gives 125.03B, exactly transformers' count"
    ),
    ("baidu/ERNIE-4.5-21B-A3B-PT", "total"): (
        "'21B' is 21.83B truncated, exactly transformers' count of the config (crosscheck fixture)"
    ),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", "active"): (
        "'A3B' is a name-size: per token 48 x (10 routed + 1 shared expert of 3 x 2048 x 512, "
        "router 2048 x 512) = 1.72B, 36 Gated DeltaNet mixers of 33.7M = 1.21B, 12 gated "
        "attention layers of 27.3M = 0.33B (q_proj emits H*d_head*2: query and output gate), "
        "LM head 0.31B: 3.56B excluding the input embedding"
    ),
}
NOMINAL_SLACK = 0.05  # how close a NOT_ROUNDED entry must still be
# Name-sizes further off than NOMINAL_SLACK, each with the arithmetic in NOT_ROUNDED.
NOMINAL_SLACK_FOR = {("Qwen/Qwen3-Next-80B-A3B-Thinking", "active"): 0.20}


def is_rounded(entry: CatalogEntry) -> bool:
    return "rounded" in (entry.params_source or "")


def last_digit_unit(published: int) -> int:
    unit = 1
    while published % (unit * 10) == 0:
        unit *= 10
    return unit


def tolerance(published: int, rounded: bool) -> float:
    rel = REL * published
    return max(last_digit_unit(published) / 2, rel) if rounded else rel


def test_tolerance_rule():
    assert last_digit_unit(32_500_000_000) == 100_000_000
    assert tolerance(32_500_000_000, rounded=True) == 0.005 * 32_500_000_000  # 0.5% is larger
    assert tolerance(1_230_000_000, rounded=True) == 0.005 * 1_230_000_000
    assert tolerance(3_300_000_000, rounded=True) == 50_000_000  # half of 0.1B
    assert tolerance(68_976_648_192, rounded=False) == 0.005 * 68_976_648_192


def _cases(kind: str) -> list:
    cases = []
    for entry in CATALOG.entries:
        published = entry.published_params if kind == "total" else entry.published_active_params
        if published is None:
            continue
        reason = NOT_ROUNDED.get((entry.repo_id, kind))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        cases.append(pytest.param(entry, id=entry.repo_id, marks=marks))
    return cases


def _ours(entry: CatalogEntry) -> tuple[int, list[int]]:
    spec = CATALOG.load(entry)
    counts = param_counts(spec)
    input_embedding = spec.vocab_size * spec.hidden_size
    return counts.total, [counts.active, counts.active - input_embedding]


@pytest.mark.parametrize("entry", _cases("total"))
def test_total_params_match_published(entry: CatalogEntry):
    total, _ = _ours(entry)
    published = entry.published_params
    assert published is not None
    tol = tolerance(published, is_rounded(entry))
    assert abs(total - published) <= tol, (
        f"{entry.repo_id}: ours {total:,} vs published {published:,} "
        f"({(total - published) / published:+.3%}, tolerance {tol:,.0f})"
    )


@pytest.mark.parametrize("entry", _cases("active"))
def test_active_params_match_published_under_either_convention(entry: CatalogEntry):
    _, candidates = _ours(entry)
    published = entry.published_active_params
    assert published is not None
    tol = tolerance(published, is_rounded(entry))
    assert any(abs(c - published) <= tol for c in candidates), (
        f"{entry.repo_id}: ours {candidates[0]:,} incl. / {candidates[1]:,} excl. input "
        f"embedding vs published {published:,} (tolerance {tol:,.0f})"
    )


@pytest.mark.parametrize(("repo_id", "kind"), list(NOT_ROUNDED))
def test_nominal_figures_are_still_close(repo_id: str, kind: str):
    entry = CATALOG.find(repo_id)
    assert entry is not None
    total, candidates = _ours(entry)
    published = entry.published_params if kind == "total" else entry.published_active_params
    assert published is not None
    ours = [total] if kind == "total" else candidates
    slack = NOMINAL_SLACK_FOR.get((repo_id, kind), NOMINAL_SLACK)
    assert min(abs(c - published) for c in ours) <= slack * published


def test_every_published_figure_is_checked():
    with_published = [e for e in CATALOG.entries if e.published_params]
    assert len(with_published) >= 45
    assert all(e.params_source for e in with_published)


def test_exact_known_counts():
    expected = {
        "meta-llama/Llama-2-70b-hf": 68_976_648_192,
        "meta-llama/Llama-2-70b": 68_976_648_192,  # Meta's params.json: same weights
        "meta-llama/Llama-2-7b-hf": 6_738_415_616,
        "meta-llama/Llama-3.1-8B": 8_030_261_248,
        "mistralai/Mixtral-8x7B-v0.1": 46_702_792_704,
        "openai-community/gpt2": 124_439_808,
        "allenai/OLMo-2-1124-7B": 7_298_617_344,
    }
    for repo_id, count in expected.items():
        entry = CATALOG.find(repo_id)
        assert entry is not None
        assert param_counts(CATALOG.load(entry)).total == count, repo_id


def test_mixtral_active():
    entry = CATALOG.find("mistralai/Mixtral-8x7B-v0.1")
    assert entry is not None
    counts = param_counts(CATALOG.load(entry))
    # 2 of 8 experts: total minus 6 experts x 32 layers x 3 x 4096 x 14336
    assert counts.active == 46_702_792_704 - 6 * 32 * 3 * 4096 * 14336
    assert counts.active == pytest.approx(12.9e9, rel=REL)


# ---- weight bytes of quantized checkpoints ---------------------------------------------
def test_gpt_oss_120b_mxfp4_weight_bytes():
    entry = CATALOG.find("openai/gpt-oss-120b")
    assert entry is not None
    spec = CATALOG.load(entry)
    hidden, layers, vocab, heads, kv_heads, d = 2880, 36, 201088, 64, 8, 64
    q = hidden * heads * d + heads * d  # attention_bias true
    kv = 2 * (hidden * kv_heads * d + kv_heads * d)
    o = heads * d * hidden + hidden
    sinks = heads
    attention = layers * (q + kv + o + sinks)
    expert_mats = layers * 128 * 3 * hidden * 2880  # gate+up and down projections
    expert_bias = layers * 128 * 3 * 2880
    experts = expert_mats + expert_bias
    router = layers * (hidden * 128 + 128)
    norms = layers * 2 * hidden + hidden
    embedding = 2 * vocab * hidden  # untied
    # quantization_config mxfp4: expert matrices at 4 bits + an 8-bit scale per 32 = 4.25
    # bits; their biases, attention, router, embeddings and norms stay bf16.
    expert_bytes = ceil(expert_mats * 17 / 32) + 2 * expert_bias
    expected = expert_bytes + 2 * (attention + router + norms + embedding)
    got = weight_bytes(spec)
    assert got.total == expected
    assert got.linear_dtype == "mxfp4"
    assert got.experts == expert_bytes
    assert param_counts(spec).total == attention + experts + router + norms + embedding
    # Plausible: about 65 GB, which is why gpt-oss-120b fits on one 80 GB GPU.
    assert 60 * GiB < got.total < 62 * GiB
    assert weight_bytes(spec, weight_dtype="bf16").total > 3.5 * got.total


def test_deepseek_v3_fp8_weight_bytes():
    entry = CATALOG.find("deepseek-ai/DeepSeek-V3")
    assert entry is not None
    spec = CATALOG.load(entry)
    hidden, layers, dense_layers, vocab, heads = 7168, 61, 3, 129280, 128
    q_lora, kv_lora, nope, rope, v = 1536, 512, 128, 64, 128
    mla = (
        hidden * q_lora
        + q_lora
        + q_lora * heads * (nope + rope)  # q_a, q_a norm, q_b
        + hidden * (kv_lora + rope)
        + kv_lora  # kv_a (latent + rope key), kv_a norm
        + kv_lora * heads * (nope + v)  # kv_b
        + heads * v * hidden
    )  # o
    dense = 3 * hidden * 18432
    expert = 3 * hidden * 2048
    moe = 256 * expert + 1 * expert + hidden * 256  # routed + shared + router
    norms = layers * 2 * hidden + hidden
    embedding = 2 * vocab * hidden
    linear = layers * mla + dense_layers * dense + (layers - dense_layers) * moe
    assert param_counts(spec).total == linear + norms + embedding

    # fp8 checkpoint: linear layers 1 byte + one fp32 scale per 128 x 128 block; the router
    # (MoEGate, not an nn.Linear), latent norms, embeddings and norms stay bf16.
    def blocks(out: int, inp: int) -> int:
        return -(-out // 128) * -(-inp // 128)

    mla_scales = (
        blocks(q_lora, hidden)
        + blocks(heads * (nope + rope), q_lora)
        + blocks(kv_lora + rope, hidden)
        + blocks(heads * (nope + v), kv_lora)
        + blocks(hidden, heads * v)
    )
    mlp_scales = 2 * blocks(18432, hidden) + blocks(hidden, 18432)
    expert_scales = 2 * blocks(2048, hidden) + blocks(hidden, 2048)
    scales = (
        layers * mla_scales
        + dense_layers * mlp_scales
        + (layers - dense_layers) * 257 * expert_scales
    )
    router = (layers - dense_layers) * hidden * 256
    latent_norms = layers * (q_lora + kv_lora)
    float_params = norms + embedding + router + latent_norms
    expected = (linear - router - latent_norms) + 4 * scales + 2 * float_params
    got = weight_bytes(spec)
    assert got.linear_dtype == "fp8"
    assert got.total == expected
    # Plausible: about one byte per parameter for 671B parameters.
    assert 620 * GiB < got.total < 635 * GiB


def test_weight_dtype_override():
    entry = CATALOG.find("meta-llama/Llama-2-70b-hf")
    assert entry is not None
    spec = CATALOG.load(entry)
    total = 68_976_648_192
    embedding = 2 * 32000 * 8192
    norms = 80 * 2 * 8192 + 8192
    assert weight_bytes(spec).total == 2 * total  # fp16 checkpoint
    assert weight_bytes(spec, weight_dtype="fp8").total == (total - embedding - norms) + 2 * (
        embedding + norms
    )
