"""Turn raw config bytes into a ModelSpec, whatever the format.

Every config passes `kvplan.sources.validate` first (strict JSON, then the per-key screen),
so the readers (hf_config, meta_params) only ever see finite numbers in plausible ranges
and real booleans.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.hf_config import parse_hf_config
from kvplan.sources.meta_params import is_meta_params, parse_meta_params
from kvplan.sources.validate import load_json, printable, screen_config


def parse_config_dict(raw: Any, *, name: str, origin: str) -> ModelSpec:
    origin = printable(origin)
    if not isinstance(raw, Mapping):
        raise KvplanError(f"{origin}: config is not a JSON object")
    screen_config(raw, origin=origin)
    if is_meta_params(raw):
        spec: ModelSpec = parse_meta_params(raw, name=name, origin=origin)
        return spec
    return _mark_draft_head(parse_hf_config(raw, name=name, origin=origin), raw)


DRAFT_HEAD_MARKERS = ("eagle", "medusa", "speculator")


def _mark_draft_head(spec: ModelSpec, raw: Mapping[str, Any]) -> ModelSpec:
    """EAGLE / EAGLE-3 / Medusa draft heads (vLLM `LlamaForCausalLMEagle3`, `EagleLlama...`;
    `draft_vocab_size` is EAGLE-3's reduced LM-head vocabulary) read as a 1-layer model of
    their family; mark them so their weights are never estimated (core.params)."""
    archs = raw.get("architectures")
    names = [a for a in archs if isinstance(a, str)] if isinstance(archs, list) else []
    head = next((a for a in names if any(m in a.lower() for m in DRAFT_HEAD_MARKERS)), None)
    if head is None and "draft_vocab_size" in raw:
        head = "draft_vocab_size (EAGLE-3)"
    if head is None:
        return spec
    return spec.model_copy(
        update={
            "draft_head": head,
            "assumptions": (
                *spec.assumptions,
                f"speculative-decoding draft head ({head}): its attention layers cache KV "
                "as the config says; its weights come only from its checkpoint",
            ),
        }
    )


def parse_config_text(text: str | bytes, *, name: str, origin: str) -> ModelSpec:
    raw = load_json(text, origin=printable(origin))
    return parse_config_dict(raw, name=name, origin=origin)
