"""kvplan against the independent transformers cross-check (tests/data/transformers_crosscheck).

The fixtures hold what transformers builds from each bundled config on the meta device: the
parameter count and, layer by layer, every tensor its cache object keeps (docs/crosscheck.md).
kvplan must agree:
  - parameters within 0.5% (REL) of transformers' total;
  - per-token cache bytes exactly, at the checkpoint dtype;
  - fixed (per-sequence) state exactly in elements, once two documented convention
    differences are undone: transformers' conv caches hold the whole kernel width (d_conv
    inputs) where engines keep d_conv - 1 (kvplan's convention, vLLM's
    MambaStateShapeCalculator), and transformers keeps recurrent states in its own dtype
    (compared here in elements, not bytes).
Transformers-only conventions that differ from what an engine stores are listed in
KNOWN_DIFFERENCES with the factor and the reason; each is asserted exactly, not skipped.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

from kvplan.core import kvcache, mixers
from kvplan.core.dtypes import DTYPE_BYTES, normalize_dtype
from kvplan.core.geometry import Mixer, ModelSpec
from kvplan.core.params import param_counts
from kvplan.sources.parse import parse_config_text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "transformers_crosscheck"
REL = 0.005
INDEX = json.loads((DATA / "INDEX.json").read_text())
OK = sorted(stem for stem, e in INDEX["models"].items() if e["status"] == "ok")
# Built but not run (transformers' forward failed): parameters are still comparable.
BUILT = sorted(
    stem
    for stem, e in INDEX["models"].items()
    if e["status"] in ("ok", "ok_compressed", "structure_only")
)
COMPRESSED = sorted(stem for stem, e in INDEX["models"].items() if e["status"] == "ok_compressed")

# Per-token bytes where transformers' cache holds something other than what kvplan (and an
# engine) stores: stem -> (factor fixture / kvplan as a function of the spec, reason).
KNOWN_DIFFERENCES = {
    "tiiuae__falcon-40b-instruct": (
        lambda s: Fraction(s.query_heads, s.kv_heads),
        "transformers' Falcon (new_decoder_architecture) caches K and V after repeating them "
        "to all 128 query heads; engines store the 8 KV heads",
    ),
}


def _spec(stem: str) -> tuple[ModelSpec, dict]:
    entry = INDEX["models"][stem]
    fx = json.loads((DATA / f"{stem}.json").read_text())
    # the bundled copy (configs/models, or configs/models/unsupported for architectures kvplan
    # refuses), whatever directory the fixture was generated from
    path = ROOT / "configs" / "models" / entry["file"]
    spec = parse_config_text(path.read_text(), name=stem, origin=str(path))
    return spec, fx


@pytest.mark.parametrize("stem", BUILT)
def test_params_within_half_a_percent_of_transformers(stem: str) -> None:
    spec, fx = _spec(stem)
    # Multimodal models without a text causal-LM class are built whole; the fixture then also
    # records the text decoder (+ LM head) alone, which is what kvplan counts.
    text_only = fx.get("params_text_decoder", {}).get("total_with_lm_head")
    ours, theirs = param_counts(spec).total, text_only or fx["params"]["total"]
    assert abs(ours - theirs) <= REL * theirs, f"{ours:,} vs {theirs:,}"


@pytest.mark.parametrize("stem", OK)
def test_per_token_bytes_equal_transformers_cache(stem: str) -> None:
    spec, fx = _spec(stem)
    dtype = normalize_dtype(fx["dtype"])
    ours = kvcache.kv_bytes_per_token(spec, dtype)
    theirs = fx["cache"]["sum_per_token_all_layers"]
    factor = KNOWN_DIFFERENCES[stem][0](spec) if stem in KNOWN_DIFFERENCES else 1
    assert ours * factor == theirs


def _their_state_elements(fx: dict) -> dict[str, int]:
    """Elements of fixed state per kind (conv_state, recurrent_state, ...), all layers."""
    out: dict[str, int] = {}
    for group in fx["cache"]["groups"].values():
        for tensor in group["tensors"].values():
            if not tensor["fixed"]:
                continue
            size = DTYPE_BYTES[normalize_dtype(tensor["dtype"])]
            elements = Fraction(tensor["fixed"]) / size
            assert elements.denominator == 1
            out[tensor["kind"]] = out.get(tensor["kind"], 0) + int(elements) * len(group["layers"])
    return out


@pytest.mark.parametrize("stem", OK)
def test_fixed_state_elements_equal_transformers_cache(stem: str) -> None:
    spec, fx = _spec(stem)
    ssm = conv = encoder = 0
    for layer in spec.layers:
        for part in mixers.state_parts(layer):
            if part.name == "encoder_kv":
                encoder += part.elements
            if part.name == "conv":
                assert layer.recurrent is not None
                d_conv = layer.recurrent.d_conv
                conv += part.elements // (d_conv - 1) * d_conv  # transformers: whole kernel
            elif part.name == "ssm":
                ssm += part.elements
    theirs = _their_state_elements(fx)
    assert conv == theirs.get("conv_state", 0)
    assert ssm == theirs.get("recurrent_state", 0)
    # cross-attention: one image's encoder K and V (transformers: cross_k / cross_v)
    assert encoder == theirs.get("cross_k", 0) + theirs.get("cross_v", 0)


def test_the_comparison_covers_the_new_layer_kinds() -> None:
    kinds = {layer.mixer for stem in OK for layer in _spec(stem)[0].layers}
    assert {Mixer.ATTENTION, Mixer.MLA, Mixer.MAMBA, Mixer.GATED_DELTANET} <= kinds


@pytest.mark.parametrize("stem", COMPRESSED)
def test_compressed_attention_matches_transformers_cache(stem: str) -> None:
    """DeepSeek-V4: at every measured context, transformers' compressed entries (and indexer
    keys) equal kvplan's floor(ctx / r) entries exactly; its window K/V equal kvplan's with
    transformers' W - 1 window; its overlap state equals kvplan's; its remainder buffers
    (ctx % r tokens) never exceed kvplan's r - 1 bound."""
    spec, fx = _spec(stem)
    dtype = normalize_dtype(fx["dtype"])
    size = DTYPE_BYTES[dtype]
    by_kind = fx["cache"]["totals_by_kind_bytes_per_seq_by_ctx"]
    for ctx_text in fx["contexts_measured"]:
        ctx, key = int(ctx_text), str(ctx_text)
        entries = sum(mixers.compressed_elements(layer, ctx) for layer in spec.layers)
        assert entries * size == by_kind["other:compressed_kv"][key]
        window = sum(
            kvcache.elements_per_token(spec, layer)
            * min(ctx, (layer.window or layer.local_window or ctx) - 1)
            for layer in spec.layers
        )
        assert window * size == by_kind["k"][key] + by_kind["v"][key]
        parts = [p for layer in spec.layers for p in mixers.state_parts(layer)]
        overlap = sum(
            p.elements * DTYPE_BYTES[p.dtype or dtype]
            for p in parts
            if p.name.startswith("overlap")
        )
        if ctx > 1:  # the overlap state appears once a first window has been pooled
            theirs = by_kind["other:overlap_kv"][key] + by_kind["other:overlap_gate"][key]
            assert overlap == theirs
        buffers = sum(p.elements * size for p in parts if p.name.startswith("buffer"))
        theirs = by_kind["other:buffer_kv"][key] + by_kind["other:buffer_gate"][key]
        assert theirs <= buffers
