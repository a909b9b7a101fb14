"""Properties of the per-layer cache model over generated heterogeneous stacks.

Stacks mix every layer kind the registry knows (full / sliding / chunked attention with their
own G and head sizes, MLA, MLA + indexer, Mamba, Mamba-2, Gated DeltaNet, short conv,
cross-attention, no-op). For any such stack:
  - bytes are additive over layers (a model is the sum of its one-layer parts);
  - windowed layers stop growing beyond their window;
  - fixed state does not depend on the context;
  - MLA (and indexer) terms are linear in the context.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kvplan.core import kvcache
from kvplan.core.geometry import (
    CompressedAttentionDims,
    Ffn,
    Layer,
    LayerKind,
    Mixer,
    MlaDims,
    ModelSpec,
    MoeDims,
    RecurrentDims,
)

H = 16
DTYPES = st.sampled_from(["bf16", "fp16", "fp8", "fp32"])


@st.composite
def layers(draw: st.DrawFn) -> Layer:
    kind = draw(
        st.sampled_from(
            [
                "full",
                "sliding",
                "chunked",
                "mla",
                "mla_indexer",
                "mamba",
                "mamba2",
                "gdn",
                "conv",
                "cross",
                "noop",
            ]
        )
    )
    g = draw(st.sampled_from([1, 2, 4, 8, 16]))
    d = draw(st.sampled_from([64, 128, 192, 256]))
    ffn = draw(st.sampled_from([Ffn.DENSE, Ffn.MOE, Ffn.NONE]))
    if kind in ("full", "sliding", "chunked"):
        window = None if kind == "full" else draw(st.integers(1, 5000))
        return Layer(
            kind=LayerKind(kind),
            window=window,
            kv_heads=g,
            head_dim=d,
            v_head_dim=draw(st.sampled_from([d, 128])),
            ffn=ffn,
        )
    if kind == "mla":
        return Layer(kind=LayerKind.MLA, ffn=ffn)
    if kind == "mla_indexer":
        return Layer(
            kind=LayerKind.MLA, mixer=Mixer.MLA_INDEXER, index_head_dim=d, index_heads=4, ffn=ffn
        )
    if kind == "cross":
        return Layer(
            kind=LayerKind.NONE,
            mixer=Mixer.CROSS_ATTENTION,
            kv_heads=g,
            head_dim=d,
            encoder_tokens=draw(st.integers(1, 7000)),
            ffn=ffn,
        )
    if kind == "noop":
        return Layer(kind=LayerKind.NONE, mixer=Mixer.NOOP, ffn=ffn)
    dims = RecurrentDims(
        d_inner=draw(st.integers(1, 8192)),
        d_state=draw(st.sampled_from([16, 64, 128])),
        d_conv=draw(st.integers(2, 5)),
        dt_rank=16,
        num_heads=draw(st.integers(1, 64)),
        head_dim=draw(st.sampled_from([64, 128])),
        n_groups=draw(st.sampled_from([1, 8])),
        key_heads=draw(st.integers(1, 16)),
        key_head_dim=128,
        ssm_dtype=draw(st.sampled_from([None, "fp32"])),
    )
    mixer = {
        "mamba": Mixer.MAMBA,
        "mamba2": Mixer.MAMBA2,
        "gdn": Mixer.GATED_DELTANET,
        "conv": Mixer.SHORT_CONV,
    }[kind]
    return Layer(kind=LayerKind.NONE, mixer=mixer, recurrent=dims, ffn=ffn)


@st.composite
def compressed_layers(draw: st.DrawFn) -> Layer:
    """DeepSeek-V4 style: a K=V window, and for ratio r > 0 one entry per r tokens."""
    ratio = draw(st.sampled_from([0, 2, 4, 128]))
    window = draw(st.integers(1, 512))
    common = {"mixer": Mixer.COMPRESSED, "kv_heads": 1, "head_dim": 512, "v_head_dim": 512}
    if not ratio:
        return Layer(kind=LayerKind.SLIDING, window=window, **common)
    index = draw(st.sampled_from([0, 128]))
    return Layer(
        kind=LayerKind.FULL,
        local_window=window,
        compress_ratio=ratio,
        index_head_dim=index,
        **common,
    )


def make(stack: list[Layer]) -> ModelSpec:
    return ModelSpec(
        name="generated",
        family="generated",
        layers=tuple(stack),
        hidden_size=2048,
        query_heads=H,
        kv_heads=4,
        head_dim=128,
        v_head_dim=128,
        mla=MlaDims(kv_lora_rank=512, qk_rope_head_dim=64, qk_nope_head_dim=128, v_head_dim=128),
        moe=MoeDims(num_experts=8, experts_per_token=2, expert_intermediate=1024),
        intermediate_size=4096,
        vocab_size=1000,
        compressed=CompressedAttentionDims(
            head_dim=512,
            q_lora_rank=1024,
            o_lora_rank=1024,
            o_groups=8,
            index_heads=64,
            index_head_dim=128,
        ),
    )


STACKS = st.lists(layers(), min_size=1, max_size=12)
MIXED = st.lists(st.one_of(layers(), compressed_layers()), min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(MIXED, st.integers(0, 20_000), DTYPES)
def test_bytes_are_additive_over_layers(stack, ctx, dtype):
    whole = kvcache.kv_bytes_per_sequence(make(stack), ctx, dtype)
    parts = sum(kvcache.kv_bytes_per_sequence(make([x]), ctx, dtype) for x in stack)
    assert whole == parts


@settings(max_examples=150, deadline=None)
@given(STACKS, st.integers(1, 5000), DTYPES)
def test_windowed_layers_are_flat_beyond_their_window(stack, extra, dtype):
    spec = make(stack)
    widest = max((x.window or 0) for x in stack)
    growing = [x for x in stack if x.window is None]
    a = kvcache.kv_bytes_per_sequence(spec, widest, dtype)
    b = kvcache.kv_bytes_per_sequence(spec, widest + extra, dtype)
    grow = kvcache.kv_bytes_per_token(make(growing), dtype) if growing else 0
    assert b - a == grow * extra


@settings(max_examples=150, deadline=None)
@given(MIXED, st.integers(0, 100_000), DTYPES)
def test_fixed_state_is_independent_of_context(stack, ctx, dtype):
    spec = make(stack)
    state = kvcache.state_bytes_per_sequence(spec, dtype)
    assert kvcache.kv_bytes_per_sequence(spec, 0, dtype) == state
    per_token_part = kvcache.kv_bytes_per_sequence(spec, ctx, dtype) - state
    assert per_token_part >= 0
    assert kvcache.state_bytes_per_sequence(spec, dtype) == state


@settings(max_examples=150, deadline=None)
@given(STACKS, st.integers(0, 50_000), st.integers(1, 50_000), DTYPES)
def test_mla_and_indexer_terms_are_linear_in_context(stack, a, b, dtype):
    latent = [x for x in stack if x.kind is LayerKind.MLA] or [Layer(kind=LayerKind.MLA)]
    spec = make(latent)
    per_token = kvcache.kv_bytes_per_token(spec, dtype)
    assert per_token == sum(
        kvcache.kv_bytes_per_token(make([x]), dtype) for x in latent
    )  # 576 or 576 + index_head_dim elements per layer, whole bytes for these dtypes
    total = kvcache.kv_bytes_per_sequence
    assert total(spec, a + b, dtype) == total(spec, a, dtype) + per_token * b


@settings(max_examples=150, deadline=None)
@given(st.lists(compressed_layers(), min_size=1, max_size=8), st.integers(0, 50_000), DTYPES)
def test_compressed_entries_grow_once_per_ratio_tokens(stack, ctx, dtype):
    spec = make(stack)
    widest = max((x.window or x.local_window or 0) for x in stack)
    a = kvcache.kv_bytes_per_sequence(spec, widest + ctx, dtype)
    b = kvcache.kv_bytes_per_sequence(spec, widest + ctx + 1, dtype)
    # beyond every window only the compressed entries grow, one entry per r tokens
    step = sum(
        ((widest + ctx + 1) // x.compress_ratio - (widest + ctx) // x.compress_ratio)
        * (512 + x.index_head_dim)
        for x in stack
        if x.compress_ratio
    )
    assert b - a == step * kvcache.bytes_per_element(dtype)
