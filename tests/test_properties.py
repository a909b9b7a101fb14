"""Properties of the core that must hold for every valid input (issue 13), checked with
hypothesis over designed geometries and real catalog models:

- KV bytes are linear in batch, non-decreasing in context, flat beyond a sliding window;
- fewer KV heads never cost more bytes; fp8 is exactly half of fp16;
- the solvers' maximum fits and maximum + 1 does not (batch and context, paged, windowed);
- tensor parallelism never leaves a GPU with less than one KV head;
- the roofline step time is non-decreasing in batch and in context.
"""

from __future__ import annotations

from conftest import catalog_spec
from fuzzkit import FUZZ
from hypothesis import assume, given
from hypothesis import strategies as st

from kvplan.core import capacity, kvcache
from kvplan.core.design import design_spec, valid_kv_heads
from kvplan.core.engines import TpError
from kvplan.core.geometry import LayerKind
from kvplan.core.roofline import estimate_decode
from kvplan.errors import KvplanError
from kvplan.sources.deployment import parse_deployment

heads = st.sampled_from([1, 2, 4, 8, 12, 16, 32, 40, 64, 96, 128])
designs = st.builds(
    lambda layers, h, head_dim, g_index: design_spec(
        layers=layers,
        heads=h,
        head_dim=head_dim,
        hidden=None,
        kv_heads=valid_kv_heads(design_spec(layers=1, heads=h, head_dim=8, hidden=None))[
            g_index % len(valid_kv_heads(design_spec(layers=1, heads=h, head_dim=8, hidden=None)))
        ],
    ),
    layers=st.integers(1, 128),
    h=heads,
    head_dim=st.sampled_from([32, 64, 80, 96, 128, 256]),
    g_index=st.integers(0, 20),
)
WINDOWED = ["mistralai/Mistral-7B-v0.1", "google/gemma-2-9b-it", "google/gemma-3-1b-it"]
REAL = [
    "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-3.1-8B-Instruct",
    "mistralai/Mixtral-8x7B-v0.1",
    "deepseek-ai/DeepSeek-V2-Lite",
    "ai21labs/AI21-Jamba-1.5-Mini",
    *WINDOWED,
]
specs = st.one_of(designs, st.sampled_from(REAL).map(catalog_spec))
contexts = st.integers(1, 1 << 20)
batches = st.integers(1, 4096)
block_sizes = st.sampled_from([None, 1, 16, 32, 256])


@FUZZ
@given(spec=specs, ctx=contexts, batch=batches, block=block_sizes)
def test_kv_bytes_linear_in_batch(spec, ctx, batch, block):
    one = kvcache.kv_bytes(spec, ctx, 1, "fp16", block_size=block)
    assert kvcache.kv_bytes(spec, ctx, batch, "fp16", block_size=block) == batch * one
    assert one >= 0


@FUZZ
@given(spec=specs, ctx=contexts, step=st.integers(1, 1 << 16), block=block_sizes)
def test_kv_bytes_non_decreasing_in_context(spec, ctx, step, block):
    a = kvcache.kv_bytes_per_sequence(spec, ctx, "bf16", block_size=block)
    b = kvcache.kv_bytes_per_sequence(spec, ctx + step, "bf16", block_size=block)
    assert a <= b


@FUZZ
@given(name=st.sampled_from(WINDOWED), extra=st.integers(0, 1 << 20))
def test_all_windowed_layers_are_flat_beyond_the_window(name, extra):
    spec = catalog_spec(name)
    sliding = spec.model_copy(
        update={
            "layers": tuple(
                layer
                for layer in spec.layers
                if layer.kind is LayerKind.SLIDING and layer.window is not None
            )
        }
    )
    window = max(layer.window or 0 for layer in sliding.layers)
    at_window = kvcache.kv_bytes_per_sequence(sliding, window, "bf16")
    assert kvcache.kv_bytes_per_sequence(sliding, window + extra, "bf16") == at_window


@FUZZ
@given(spec=designs, ctx=contexts)
def test_fewer_kv_heads_never_more_bytes(spec, ctx):
    sizes = [
        kvcache.kv_bytes_per_sequence(spec.with_kv_heads(g), ctx, "fp16")
        for g in sorted(valid_kv_heads(spec))
    ]
    assert sizes == sorted(sizes)


@FUZZ
@given(spec=specs)
def test_fp8_is_exactly_half_of_fp16(spec):
    assert 2 * kvcache.kv_bytes_per_token(spec, "fp8") == kvcache.kv_bytes_per_token(spec, "fp16")


def _plan(spec, **settings):
    raw = {"gpu": "h100-sxm", **settings}
    return capacity.plan(parse_deployment(spec, raw))


@FUZZ
@given(
    spec=specs,
    ctx=st.integers(1, 1 << 17),
    kv_memory=st.sampled_from(["1GiB", "7GiB", "40GiB"]),
    block=st.sampled_from([1, 16, 32]),
)
def test_max_batch_fits_and_one_more_does_not(spec, ctx, kv_memory, block):
    p = _plan(spec, kv_memory=kv_memory, block_size=block)
    assume(p.seq_bytes(ctx) > 0)
    best = capacity.max_batch(p, ctx)
    assert best >= 0
    if best:
        assert capacity.fits(p, ctx, best)
    assert not capacity.fits(p, ctx, best + 1)


@FUZZ
@given(
    spec=specs,
    batch=st.integers(1, 512),
    kv_memory=st.sampled_from(["1GiB", "7GiB", "40GiB"]),
    block=st.sampled_from([1, 16, 32]),
)
def test_max_ctx_fits_and_one_more_does_not(spec, batch, kv_memory, block):
    p = _plan(spec, kv_memory=kv_memory, block_size=block)
    answer = capacity.max_ctx(p, batch, cap_to_positions=False)
    if answer.max_ctx == 0:
        assert not capacity.fits(p, 1, batch)
        return
    assert capacity.fits(p, answer.max_ctx, batch)
    if not answer.unbounded:
        assert not capacity.fits(p, answer.max_ctx + 1, batch)


@FUZZ
@given(spec=specs, tp=st.sampled_from([1, 2, 3, 4, 8, 16, 32, 64]))
def test_tensor_parallel_never_below_one_head_per_gpu(spec, tp):
    try:
        p = _plan(spec, tp=tp, kv_memory="40GiB")
    except (TpError, KvplanError):
        return  # the engine refuses this split: an error, never a fraction of a head
    assert p.kv_heads_per_gpu >= 1


@FUZZ
@given(
    spec=specs,
    batch=st.integers(1, 1024),
    ctx=st.integers(1, 1 << 16),
    more_batch=st.integers(0, 1024),
    more_ctx=st.integers(0, 1 << 16),
)
def test_roofline_time_non_decreasing_in_batch_and_context(spec, batch, ctx, more_batch, more_ctx):
    p = _plan(spec, kv_memory="40GiB")
    base = estimate_decode(p, batch=batch, ctx=ctx).decode_ms
    assert base > 0
    assert estimate_decode(p, batch=batch + more_batch, ctx=ctx).decode_ms >= base
    assert estimate_decode(p, batch=batch, ctx=ctx + more_ctx).decode_ms >= base
