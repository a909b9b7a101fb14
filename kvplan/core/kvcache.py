"""Exact KV-cache accounting, in integer bytes.

Per layer and per token of context a layer caches (the formulas live beside each layer kind
in `kvplan.core.mixers`):
  full / sliding / chunked attention: G_l * (d_k + d_v) elements, sliding/chunked layers only
      for the last `window` tokens;
  MLA: kv_lora_rank + qk_rope_head_dim elements (one latent shared by K and V, no factor 2),
      plus index_head_dim for DSA indexer keys (DeepSeek-V3.2, GLM-5), stored in the
      engine's indexer format when one is set (vLLM, SGLang, TensorRT-LLM: fp8 + an fp32
      scale per 128 = index_head_dim + index_head_dim // 128 * 4 B, whatever the KV dtype;
      kvplan.core.kv_formats), else in the KV dtype;
  other layers (Mamba, Gated DeltaNet, short conv, cross-attention, no-op): nothing per
      token, a fixed state per sequence.
KV bytes = batch * (sum over layers bytes/token * tokens held
                    + sum over layers and state parts elements * bytes of that part's dtype).
Everything is a Python int (or an exact Fraction for sub-byte dtypes), so nothing
overflows or rounds until the final ceiling to whole bytes.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil
from typing import Any

from kvplan.core import mixers
from kvplan.core.dtypes import DTYPE_BYTES
from kvplan.core.frozen import Frozen
from kvplan.core.geometry import Layer, LayerKind, Mixer, ModelSpec, StatePart
from kvplan.core.kv_formats import INDEXER_FORMATS, IndexerFormat

STATE_DTYPE_FALLBACK = "bf16"


class LayerGroup(Frozen):
    """Layers that cache the same way; the rows of the hand-checkable formula."""

    kind: LayerKind
    window: int | None
    layers: int
    elements_per_token: int  # per layer
    tokens_held: int  # per sequence at the given context
    state_elements: int  # per layer, per sequence (no-KV layers)
    mixer: Mixer = Mixer.ATTENTION
    label: str = ""  # 'full', 'sliding(4096)', 'mamba2', 'mla_indexer' ...
    kv_heads: int | None = None  # attention layers: G of this group
    head_dim: int | None = None  # attention layers: d_k
    v_head_dim: int | None = None  # attention layers: d_v
    state_bytes: int = 0  # per layer, per sequence, each part in its own dtype
    bytes_per_token: int | None = None  # per layer, at the KV dtype (when one is given)
    compress_ratio: int = 0  # DeepSeek-V4: one compressed entry per this many tokens
    entry_elements: int = 0  # elements of one compressed entry (+ indexer key)
    entries_held: int = 0  # compressed entries per sequence at the given context
    index_elements: int = 0  # of elements_per_token: the DSA indexer key (per layer)
    index_bytes_per_token: int | None = None  # its bytes (in the engine's indexer format)


def kv_heads_or_default(spec: ModelSpec, kv_heads: int | None) -> int:
    return spec.kv_heads if kv_heads is None else kv_heads


def elements_per_token(spec: ModelSpec, layer: Layer, kv_heads: int | None = None) -> int:
    """Cache elements one layer stores for one token."""
    return mixers.token_elements(spec, layer, kv_heads)


def indexer_bytes_per_token(spec: ModelSpec, layer: Layer, kv_dtype: str) -> Fraction:
    """Bytes of one layer's DSA indexer key per token: the engine's format
    (`spec.indexer_format`), else index_head_dim elements in the KV dtype."""
    d = mixers.index_elements(layer)
    if not d:
        return Fraction(0)
    if spec.indexer_format is None:
        return d * DTYPE_BYTES[kv_dtype]
    return Fraction(INDEXER_FORMATS[spec.indexer_format].bytes_per_token(d, kv_dtype))


def token_bytes(
    spec: ModelSpec, layer: Layer, kv_dtype: str, kv_heads: int | None = None
) -> Fraction:
    """Exact bytes one layer stores for one more token: its cache elements in the KV dtype,
    except a DSA indexer key, which is in the engine's indexer format."""
    elements = elements_per_token(spec, layer, kv_heads)
    idx = mixers.index_elements(layer)
    if not idx or spec.indexer_format is None:
        return elements * DTYPE_BYTES[kv_dtype]
    return (elements - idx) * DTYPE_BYTES[kv_dtype] + indexer_bytes_per_token(spec, layer, kv_dtype)


def tokens_held(layer: Layer, ctx: int, block_size: int | None = None) -> int:
    """Tokens of one sequence that a layer holds at context `ctx` (block-rounded if paged)."""
    if layer.kind is LayerKind.NONE:
        return 0
    window = layer.window or layer.local_window  # DeepSeek-V4: the K/V window of a growing layer
    held = ctx if window is None else min(ctx, window)
    if block_size:
        held = ceil(held / block_size) * block_size
    return held


def state_dtype(spec: ModelSpec) -> str:
    """Recurrent state is kept at the checkpoint's float dtype unless the config names one."""
    return spec.checkpoint_dtype if spec.checkpoint_dtype in DTYPE_BYTES else STATE_DTYPE_FALLBACK


def part_dtype(spec: ModelSpec, part: StatePart, kv_dtype: str | None = None) -> str:
    if part.dtype is None:
        return state_dtype(spec)
    if part.dtype == "kv":
        return kv_dtype or state_dtype(spec)
    return part.dtype


def layer_state_bytes(spec: ModelSpec, layer: Layer, kv_dtype: str | None = None) -> int:
    """Fixed bytes one layer keeps per sequence (exact: parts are summed as fractions)."""
    total = sum(
        (
            part.elements * DTYPE_BYTES[part_dtype(spec, part, kv_dtype)]
            for part in mixers.state_parts(layer)
        ),
        Fraction(0),
    )
    return ceil(total)


def _signature(spec: ModelSpec, layer: Layer, kv_heads: int | None) -> tuple[object, ...]:
    return (
        layer.label(),
        layer.kind,
        layer.window,
        elements_per_token(spec, layer, kv_heads),
        tuple(mixers.state_parts(layer)),
    )


def layer_groups(
    spec: ModelSpec,
    ctx: int,
    *,
    kv_heads: int | None = None,
    block_size: int | None = None,
    kv_dtype: str | None = None,
) -> list[LayerGroup]:
    """One row per kind of layer (same mixer, window, per-token elements and state)."""
    groups: dict[tuple[object, ...], list[Layer]] = {}
    for layer in spec.layers:
        groups.setdefault(_signature(spec, layer, kv_heads), []).append(layer)
    out = []
    for members in groups.values():
        first = members[0]
        per_token = elements_per_token(spec, first, kv_heads)
        attention = first.mixer is Mixer.ATTENTION
        d_k, d_v = spec.layer_head_dims(first) if attention else (None, None)
        compressed = first.mixer is Mixer.COMPRESSED
        if compressed:
            d_k = d_v = first.head_dim
        ratio = first.compress_ratio if compressed else 0
        out.append(
            LayerGroup(
                kind=first.kind,
                window=first.window,
                layers=len(members),
                elements_per_token=per_token,
                tokens_held=tokens_held(first, ctx, block_size),
                state_elements=first.state_elements,
                mixer=first.mixer_kind,
                label=first.label(),
                kv_heads=mixers.layer_kv_heads(spec, first, kv_heads)
                if attention
                else (1 if compressed else None),
                head_dim=d_k,
                v_head_dim=d_v,
                state_bytes=layer_state_bytes(spec, first, kv_dtype),
                bytes_per_token=None
                if kv_dtype is None
                else ceil(token_bytes(spec, first, kv_dtype, kv_heads)),
                index_elements=mixers.index_elements(first),
                index_bytes_per_token=None
                if kv_dtype is None
                else ceil(indexer_bytes_per_token(spec, first, kv_dtype)),
                compress_ratio=ratio,
                entry_elements=(first.head_dim or 0) + first.index_head_dim if ratio else 0,
                entries_held=ctx // ratio if ratio else 0,
            )
        )
    return out


_COUNTS: dict[int, tuple[tuple[Layer, ...], list[tuple[Layer, int]]]] = {}


def layer_counts(layers: tuple[Layer, ...]) -> list[tuple[Layer, int]]:
    """The distinct layers of a stack and how often each occurs, so per-layer sums cost one
    term per distinct layer (a handful), not per layer (up to thousands). Remembered by the
    tuple's identity: copies of a spec (with_kv_heads, model_copy) share their layers."""
    hit = _COUNTS.get(id(layers))
    if hit is not None and hit[0] is layers:
        return hit[1]
    counts: dict[tuple[object, ...], list[Any]] = {}  # field values -> [layer, count]
    previous: Layer | None = None
    entry: list[Any] = []
    for layer in layers:
        if layer is not previous:  # runs of one shared object cost a pointer compare
            key = tuple(layer.__dict__.values())
            entry = counts.setdefault(key, [layer, 0])
            previous = layer
        entry[1] += 1
    if len(_COUNTS) >= 256:
        _COUNTS.clear()
    _COUNTS[id(layers)] = (layers, [(layer, n) for layer, n in counts.values()])
    return _COUNTS[id(layers)][1]


def _indexer_format(spec: ModelSpec) -> IndexerFormat | None:
    return None if spec.indexer_format is None else INDEXER_FORMATS[spec.indexer_format]


def kv_bytes_per_token(spec: ModelSpec, kv_dtype: str, *, kv_heads: int | None = None) -> int:
    """Bytes one more token of context adds to one sequence, below any window: elements in
    the KV dtype, DSA indexer keys in the engine's indexer format (whole bytes)."""
    fmt = _indexer_format(spec)
    elements = exact = 0
    for layer, n in layer_counts(spec.layers):
        idx = mixers.index_elements(layer) if fmt is not None else 0
        elements += n * (elements_per_token(spec, layer, kv_heads) - idx)
        if idx and fmt is not None:
            exact += n * fmt.bytes_per_token(idx, kv_dtype)
    return ceil(elements * DTYPE_BYTES[kv_dtype]) + exact


def kv_elements_per_sequence(
    spec: ModelSpec, ctx: int, *, kv_heads: int | None = None, block_size: int | None = None
) -> int:
    return sum(
        n
        * (
            elements_per_token(spec, layer, kv_heads) * tokens_held(layer, ctx, block_size)
            + mixers.compressed_elements(layer, ctx)
        )
        for layer, n in layer_counts(spec.layers)
    )


def state_bytes_per_sequence(spec: ModelSpec, kv_dtype: str | None) -> int:
    """Fixed bytes per sequence, whatever the context: recurrent state (each part in its own
    dtype) and cross-attention encoder K/V (in the KV dtype when one is given)."""
    total = sum(
        (
            n * part.elements * DTYPE_BYTES[part_dtype(spec, part, kv_dtype)]
            for layer, n in layer_counts(spec.layers)
            for part in mixers.state_parts(layer)
        ),
        Fraction(0),
    )
    return ceil(total)


def kv_bytes_per_sequence(
    spec: ModelSpec,
    ctx: int,
    kv_dtype: str,
    *,
    kv_heads: int | None = None,
    block_size: int | None = None,
) -> int:
    """Cache bytes of one sequence at `ctx` tokens: per-token cache plus fixed state."""
    fmt = _indexer_format(spec)
    elements = exact = 0
    for layer, n in layer_counts(spec.layers):
        held = tokens_held(layer, ctx, block_size)
        idx = mixers.index_elements(layer) if fmt is not None else 0
        elements += n * (
            (elements_per_token(spec, layer, kv_heads) - idx) * held
            + mixers.compressed_elements(layer, ctx)
        )
        if idx and fmt is not None:
            exact += n * fmt.bytes_per_token(idx, kv_dtype) * held
    token_part = ceil(elements * DTYPE_BYTES[kv_dtype]) + exact
    return token_part + state_bytes_per_sequence(spec, kv_dtype)


def kv_bytes(
    spec: ModelSpec,
    ctx: int,
    batch: int,
    kv_dtype: str,
    *,
    kv_heads: int | None = None,
    block_size: int | None = None,
) -> int:
    """Cache bytes of `batch` sequences of `ctx` tokens each."""
    return batch * kv_bytes_per_sequence(
        spec, ctx, kv_dtype, kv_heads=kv_heads, block_size=block_size
    )


def bytes_per_element(kv_dtype: str) -> Fraction:
    return DTYPE_BYTES[kv_dtype]
