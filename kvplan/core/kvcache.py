"""Exact KV-cache accounting, in integer bytes.

Per layer and per token of context a layer caches:
  full / sliding / chunked attention: G * (d_k + d_v) elements (= 2 * G * d_head),
      sliding/chunked layers only for the last `window` tokens;
  MLA: kv_lora_rank + qk_rope_head_dim elements (one latent shared by K and V, no factor 2);
  no-KV layers (Mamba, linear attention): nothing per token, a fixed state per sequence.
KV bytes = batch * bytes_per_element * sum over layers (elements/token * tokens held + state).
Everything is a Python int (or an exact Fraction for sub-byte dtypes), so nothing
overflows or rounds until the final ceiling to whole bytes.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil
from typing import Any

from pydantic import BaseModel, ConfigDict

from kvplan.core.dtypes import DTYPE_BYTES
from kvplan.core.geometry import Layer, LayerKind, ModelSpec

STATE_DTYPE_FALLBACK = "bf16"


class LayerGroup(BaseModel):
    """Layers that cache the same way; the rows of the hand-checkable formula."""

    model_config = ConfigDict(defer_build=True, frozen=True)

    kind: LayerKind
    window: int | None
    layers: int
    elements_per_token: int  # per layer
    tokens_held: int  # per sequence at the given context
    state_elements: int  # per layer, per sequence (no-KV layers)


def kv_heads_or_default(spec: ModelSpec, kv_heads: int | None) -> int:
    return spec.kv_heads if kv_heads is None else kv_heads


def elements_per_token(spec: ModelSpec, layer: Layer, kv_heads: int | None = None) -> int:
    """Cache elements one layer stores for one token."""
    if layer.kind is LayerKind.NONE:
        return 0
    if layer.kind is LayerKind.MLA:
        assert spec.mla is not None
        return spec.mla.latent_dim
    return kv_heads_or_default(spec, kv_heads) * (spec.head_dim + spec.v_head_dim)


def tokens_held(layer: Layer, ctx: int, block_size: int | None = None) -> int:
    """Tokens of one sequence that a layer holds at context `ctx` (block-rounded if paged)."""
    if layer.kind is LayerKind.NONE:
        return 0
    held = ctx if layer.window is None else min(ctx, layer.window)
    if block_size:
        held = ceil(held / block_size) * block_size
    return held


def layer_groups(
    spec: ModelSpec, ctx: int, *, kv_heads: int | None = None, block_size: int | None = None
) -> list[LayerGroup]:
    groups: dict[tuple[LayerKind, int | None], list[Layer]] = {}
    for layer in spec.layers:
        groups.setdefault((layer.kind, layer.window), []).append(layer)
    return [
        LayerGroup(
            kind=kind,
            window=window,
            layers=len(members),
            elements_per_token=elements_per_token(spec, members[0], kv_heads),
            tokens_held=tokens_held(members[0], ctx, block_size),
            state_elements=members[0].state_elements,
        )
        for (kind, window), members in groups.items()
    ]


def state_dtype(spec: ModelSpec) -> str:
    """SSM/linear-attention state is kept at the checkpoint's float dtype."""
    return spec.checkpoint_dtype if spec.checkpoint_dtype in DTYPE_BYTES else STATE_DTYPE_FALLBACK


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


def kv_bytes_per_token(spec: ModelSpec, kv_dtype: str, *, kv_heads: int | None = None) -> int:
    """Bytes one more token of context adds to one sequence, below any window."""
    elements = sum(
        n * elements_per_token(spec, layer, kv_heads) for layer, n in layer_counts(spec.layers)
    )
    return ceil(elements * DTYPE_BYTES[kv_dtype])


def kv_elements_per_sequence(
    spec: ModelSpec, ctx: int, *, kv_heads: int | None = None, block_size: int | None = None
) -> int:
    return sum(
        n * elements_per_token(spec, layer, kv_heads) * tokens_held(layer, ctx, block_size)
        for layer, n in layer_counts(spec.layers)
    )


def state_bytes_per_sequence(spec: ModelSpec) -> int:
    elements = sum(layer.state_elements for layer in spec.layers)
    return ceil(elements * DTYPE_BYTES[state_dtype(spec)])


def kv_bytes_per_sequence(
    spec: ModelSpec,
    ctx: int,
    kv_dtype: str,
    *,
    kv_heads: int | None = None,
    block_size: int | None = None,
) -> int:
    """Cache bytes of one sequence at `ctx` tokens: per-token cache plus fixed state."""
    token_bytes = ceil(
        kv_elements_per_sequence(spec, ctx, kv_heads=kv_heads, block_size=block_size)
        * DTYPE_BYTES[kv_dtype]
    )
    return token_bytes + state_bytes_per_sequence(spec)


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
