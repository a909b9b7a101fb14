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
    return parse_hf_config(raw, name=name, origin=origin)


def parse_config_text(text: str | bytes, *, name: str, origin: str) -> ModelSpec:
    raw = load_json(text, origin=printable(origin))
    return parse_config_dict(raw, name=name, origin=origin)
