"""KV-cache bytes against hand-computed answers, plus properties of the formula.

Every expected number is written as the arithmetic of the formula in docs/formula.md:
    full / sliding / chunked layer:  2 * G * d_head elements per token (sliding: last W tokens)
    MLA layer:                       kv_lora_rank + qk_rope_head_dim elements per token
    no-KV layer (Mamba):             0 per token, a fixed state per sequence
times bytes per element (fp16/bf16 2, fp8 1, int4 9/16 = 4.5 bits).
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvplan.core import kvcache
from kvplan.core.geometry import LayerKind, Mixer, ModelSpec
from kvplan.sources.catalog import load_catalog
from kvplan.sources.hf_config import parse_hf_config

CATALOG = load_catalog()


def spec(name: str) -> ModelSpec:
    entry = CATALOG.find(name)
    assert entry is not None, name
    return CATALOG.load(entry)


LLAMA2_13B = spec("meta-llama/Llama-2-13b-hf")
LLAMA2_70B = spec("meta-llama/Llama-2-70b-hf")
MISTRAL_V01 = spec("mistralai/Mistral-7B-v0.1")
GEMMA2_9B = spec("google/gemma-2-9b-it")
GEMMA3_27B = spec("google/gemma-3-27b-it")
GPT_OSS_120B = spec("openai/gpt-oss-120b")
DEEPSEEK_V3 = spec("deepseek-ai/DeepSeek-V3")
JAMBA = spec("ai21labs/AI21-Jamba-1.5-Mini")
FALCON_7B = spec("tiiuae/falcon-7b")
ALL_SPECS = [CATALOG.load(entry) for entry in CATALOG.entries]

MiB = 1024**2


# ---- known answers ---------------------------------------------------------------------
def test_llama2_13b_per_token_is_800_kib_not_1_3_mb():
    expected = 2 * 40 * 40 * 128 * 2  # K and V, 40 layers, 40 KV heads (MHA), d_head 128, fp16
    assert expected == 819_200
    assert kvcache.kv_bytes_per_token(LLAMA2_13B, "fp16") == expected
    assert expected / MiB == pytest.approx(0.78125)  # 0.78 MiB, not the 1.3 MB sometimes quoted


def test_llama2_70b_per_token():
    expected = 2 * 80 * 8 * 128 * 2  # 80 layers, G = 8 (GQA), d_head 128, fp16
    assert expected == 327_680
    assert kvcache.kv_bytes_per_token(LLAMA2_70B, "fp16") == expected
    assert kvcache.kv_bytes(LLAMA2_70B, 4096, 8, "fp16") == expected * 4096 * 8


def test_meta_params_json_gives_the_same_cache_as_the_hf_config():
    native = spec("meta-llama/Llama-2-70b")  # params.json, not the -hf config.json
    assert native.source != LLAMA2_70B.source
    assert kvcache.kv_bytes_per_token(native, "bf16") == 2 * 80 * 8 * 128 * 2


def test_mistral_v01_sliding_window_below_and_above_4096():
    per_token = 2 * 32 * 8 * 128 * 2  # 32 layers, G = 8, d_head 128, fp16 = 131,072 B
    assert kvcache.kv_bytes_per_token(MISTRAL_V01, "fp16") == per_token
    assert kvcache.kv_bytes_per_sequence(MISTRAL_V01, 2048, "fp16") == per_token * 2048
    assert kvcache.kv_bytes_per_sequence(MISTRAL_V01, 4096, "fp16") == per_token * 4096
    # Beyond the window every layer holds only the last 4096 tokens.
    assert kvcache.kv_bytes_per_sequence(MISTRAL_V01, 8192, "fp16") == per_token * 4096
    assert kvcache.kv_bytes_per_sequence(MISTRAL_V01, 32768, "fp16") == per_token * 4096
    assert kvcache.kv_bytes(MISTRAL_V01, 32768, 16, "fp16") == 16 * per_token * 4096


def test_gemma2_9b_alternating_sliding_and_global_at_8192():
    per_layer = 2 * 8 * 256 * 2  # G = 8, d_head 256 (explicit; 3584/16 would be 224), bf16
    sliding = 21 * per_layer * 4096  # 21 sliding layers hold the last 4096 tokens
    full = 21 * per_layer * 8192  # 21 global layers hold all 8192
    assert kvcache.kv_bytes_per_sequence(GEMMA2_9B, 8192, "bf16") == sliding + full
    assert sliding + full == 2_113_929_216
    assert kvcache.kv_bytes_per_token(GEMMA2_9B, "bf16") == 42 * per_layer


def test_gemma3_27b_five_local_to_one_global_window_1024():
    per_layer = 2 * 16 * 128 * 2  # G = 16, d_head 128, bf16 = 8,192 B per token per layer
    assert GEMMA3_27B.count(LayerKind.SLIDING) == 52 and GEMMA3_27B.count(LayerKind.FULL) == 10
    ctx = 32768
    expected = 52 * per_layer * 1024 + 10 * per_layer * ctx
    assert kvcache.kv_bytes_per_sequence(GEMMA3_27B, ctx, "bf16") == expected
    # Short contexts: every layer still holds every token.
    assert kvcache.kv_bytes_per_sequence(GEMMA3_27B, 1000, "bf16") == 62 * per_layer * 1000


def test_gpt_oss_120b_eighteen_sliding_128_and_eighteen_full():
    per_layer = 2 * 8 * 64 * 2  # G = 8, d_head 64, bf16 = 2,048 B per token per layer
    ctx = 131072
    expected = 18 * per_layer * 128 + 18 * per_layer * ctx
    assert kvcache.kv_bytes_per_sequence(GPT_OSS_120B, ctx, "bf16") == expected
    assert kvcache.kv_bytes_per_token(GPT_OSS_120B, "bf16") == 36 * per_layer  # below 128 tokens


def test_deepseek_v3_mla_caches_one_latent():
    expected = 61 * (512 + 64) * 2  # kv_lora_rank 512 + decoupled RoPE key 64, no factor 2
    assert expected == 70_272
    assert kvcache.kv_bytes_per_token(DEEPSEEK_V3, "bf16") == expected
    assert kvcache.kv_bytes_per_sequence(DEEPSEEK_V3, 4096, "bf16") == expected * 4096


def test_jamba_four_attention_layers_plus_fixed_mamba_state():
    per_token = 4 * 2 * 8 * 128 * 2  # 4 attention layers of 32, G = 8, d_head 128, bf16
    assert per_token == 16_384
    assert kvcache.kv_bytes_per_token(JAMBA, "bf16") == per_token
    # 28 Mamba layers: SSM state d_inner x d_state + conv state d_inner x (d_conv - 1), bf16
    d_inner = 2 * 4096
    state = 28 * (d_inner * 16 + d_inner * (4 - 1)) * 2
    assert kvcache.state_bytes_per_sequence(JAMBA, None) == state
    assert kvcache.kv_bytes_per_sequence(JAMBA, 0, "bf16") == state
    assert kvcache.kv_bytes_per_sequence(JAMBA, 100_000, "bf16") == per_token * 100_000 + state
    # The state does not follow --kv-dtype: it stays at the checkpoint dtype.
    assert kvcache.kv_bytes_per_sequence(JAMBA, 1000, "fp8") == per_token // 2 * 1000 + state


def test_falcon_7b_multi_query():
    expected = 32 * 2 * 1 * 64 * 2  # 32 layers, one KV head (MQA), d_head 4544/71 = 64, bf16
    assert kvcache.kv_bytes_per_token(FALCON_7B, "bf16") == expected == 8_192


def test_int4_and_fp8_sizes():
    elements = 2 * 80 * 8 * 128  # Llama-2-70B elements per token
    assert kvcache.kv_bytes_per_token(LLAMA2_70B, "fp8") == elements * 1 == 163_840
    assert kvcache.kv_bytes_per_token(LLAMA2_70B, "int8") == elements
    # int4: 4-bit values + one fp16 scale per 32 values = (32*4 + 16) / 32 = 4.5 bits
    assert kvcache.bytes_per_element("int4") == Fraction(9, 16)
    assert kvcache.kv_bytes_per_token(LLAMA2_70B, "int4") == elements * 9 // 16 == 92_160
    assert kvcache.kv_bytes_per_token(LLAMA2_70B, "fp32") == elements * 4
    # Sub-byte sizes are rounded up to whole bytes once, at the end, not per layer or token.
    tiny = parse_hf_config(
        {
            "model_type": "llama",
            "hidden_size": 5,
            "num_attention_heads": 5,
            "num_hidden_layers": 3,
            "vocab_size": 7,
        },
        name="tiny",
        origin="t",
    )
    elements = 3 * 2 * 5 * 1 * 7  # 3 layers, G = 5, d_head 1, 7 tokens = 210 elements
    assert kvcache.kv_bytes_per_sequence(tiny, 7, "int4") == 119  # ceil(210 * 9/16 = 118.125)
    assert -(-elements * 9 // 16) == 119


def test_paged_block_rounding():
    per_token = 2 * 80 * 8 * 128 * 2
    # 1000 tokens in 16-token blocks occupy 63 blocks = 1008 token slots.
    assert kvcache.tokens_held(LLAMA2_70B.layers[0], 1000, 16) == 1008
    assert kvcache.kv_bytes_per_sequence(LLAMA2_70B, 1000, "fp16", block_size=16) == (
        per_token * 1008
    )
    assert kvcache.kv_bytes_per_sequence(LLAMA2_70B, 1024, "fp16", block_size=16) == (
        per_token * 1024
    )
    # A sliding layer rounds its window up to whole blocks too: 1024 -> 22 blocks of 48.
    sliding = next(layer for layer in GEMMA3_27B.layers if layer.kind is LayerKind.SLIDING)
    assert kvcache.tokens_held(sliding, 100_000, 48) == 22 * 48
    assert kvcache.tokens_held(sliding, 100_000, None) == 1024


def test_layer_groups_are_the_rows_of_the_formula():
    groups = {(g.kind, g.window): g for g in kvcache.layer_groups(GPT_OSS_120B, 4096)}
    sliding = groups[(LayerKind.SLIDING, 128)]
    full = groups[(LayerKind.FULL, None)]
    per_token = 2 * 8 * 64  # elements per token per layer: K and V, G = 8, d_head 64
    assert (sliding.layers, sliding.elements_per_token, sliding.tokens_held) == (18, per_token, 128)
    assert (full.layers, full.elements_per_token, full.tokens_held) == (18, per_token, 4096)


def test_what_if_kv_heads_override():
    # The same Llama-2-70B redesigned as MHA (G = H = 64) and MQA (G = 1).
    assert kvcache.kv_bytes_per_token(LLAMA2_70B, "fp16", kv_heads=64) == 2 * 80 * 64 * 128 * 2
    assert kvcache.kv_bytes_per_token(LLAMA2_70B, "fp16", kv_heads=1) == 2 * 80 * 1 * 128 * 2


# ---- properties ------------------------------------------------------------------------
specs = st.sampled_from(ALL_SPECS)
ctxs = st.integers(min_value=0, max_value=2_000_000)
batches = st.integers(min_value=1, max_value=4096)
kv_dtypes = st.sampled_from(["fp32", "fp16", "bf16", "fp8", "int8", "int4"])
blocks = st.sampled_from([None, 1, 16, 32, 256])


@settings(max_examples=150, deadline=None)
@given(s=specs, ctx=ctxs, batch=batches, dtype=kv_dtypes, block=blocks)
def test_bytes_are_linear_in_batch(s, ctx, batch, dtype, block):
    one = kvcache.kv_bytes(s, ctx, 1, dtype, block_size=block)
    assert kvcache.kv_bytes(s, ctx, batch, dtype, block_size=block) == batch * one


@settings(max_examples=150, deadline=None)
@given(s=specs, a=ctxs, b=ctxs, dtype=kv_dtypes, block=blocks)
def test_bytes_nondecreasing_in_ctx_and_never_negative(s, a, b, dtype, block):
    lo, hi = sorted((a, b))
    small = kvcache.kv_bytes_per_sequence(s, lo, dtype, block_size=block)
    large = kvcache.kv_bytes_per_sequence(s, hi, dtype, block_size=block)
    assert 0 <= small <= large


# (an indexer key - MiniMax-M3's sparse layers - is one head whatever G: not proportional)
FULL_ATTENTION = [
    s
    for s in ALL_SPECS
    if all(
        layer.kind is LayerKind.FULL and layer.mixer is Mixer.ATTENTION and not layer.index_head_dim
        for layer in s.layers
    )
]


@settings(max_examples=150, deadline=None)
@given(
    s=st.sampled_from(FULL_ATTENTION),
    ctx=ctxs,
    batch=batches,
    dtype=st.sampled_from(["fp32", "fp16", "bf16", "fp8", "int8"]),
    g=st.integers(min_value=1, max_value=128),
)
def test_bytes_exactly_proportional_to_kv_heads_for_full_attention(s, ctx, batch, dtype, g):
    one = kvcache.kv_bytes(s, ctx, batch, dtype, kv_heads=1)
    assert kvcache.kv_bytes(s, ctx, batch, dtype, kv_heads=g) == g * one
    actual = kvcache.kv_bytes(s, ctx, batch, dtype)
    assert actual == s.kv_heads * one


# DeepSeek-V4's compressed layers grow by entries, not per token: their own properties are
# pinned in tests/test_architectures.py and tests/test_layer_properties.py.
WINDOWED = [
    s
    for s in ALL_SPECS
    if any(layer.window for layer in s.layers)
    and all(layer.mixer is not Mixer.COMPRESSED for layer in s.layers)
]


@settings(max_examples=150, deadline=None)
@given(
    s=st.sampled_from(WINDOWED), extra=st.integers(min_value=0, max_value=10**6), dtype=kv_dtypes
)
def test_sliding_layers_are_constant_beyond_the_window(s, extra, dtype):
    window = max(layer.window for layer in s.layers if layer.window)
    ctx = window + extra
    sliding_only = s.model_copy(
        update={"layers": tuple(layer for layer in s.layers if layer.kind is LayerKind.SLIDING)}
    )
    at_window = kvcache.kv_elements_per_sequence(sliding_only, window)
    assert kvcache.kv_elements_per_sequence(sliding_only, ctx) == at_window
    # Growth past the window comes from the full layers alone.
    full_per_token = sum(
        kvcache.elements_per_token(s, layer) for layer in s.layers if layer.window is None
    )
    grown = kvcache.kv_elements_per_sequence(s, ctx) - kvcache.kv_elements_per_sequence(s, window)
    assert grown == full_per_token * extra


@pytest.mark.parametrize("dtype", ["fp16", "fp8", "int4"])
def test_absurd_context_is_exact_python_int(dtype):
    ctx = 10**15
    got = kvcache.kv_bytes(LLAMA2_70B, ctx, 3, dtype)
    assert isinstance(got, int)
    elements = 2 * 80 * 8 * 128
    assert got == 3 * elements * ctx * kvcache.bytes_per_element(dtype)
    assert kvcache.kv_bytes(LLAMA2_13B, 10**15, 10**6, "fp16") == 819_200 * 10**21


def test_no_kv_layers_cache_nothing_per_token():
    none_layers = [layer for layer in JAMBA.layers if layer.kind is LayerKind.NONE]
    assert len(none_layers) == 28
    assert all(kvcache.elements_per_token(JAMBA, layer) == 0 for layer in none_layers)
    assert all(kvcache.tokens_held(layer, 10**6) == 0 for layer in none_layers)
