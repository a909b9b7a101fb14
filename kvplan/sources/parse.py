"""Turn raw config bytes into a ModelSpec, whatever the format."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kvplan.core.geometry import ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.hf_config import parse_hf_config
from kvplan.sources.meta_params import is_meta_params, parse_meta_params


def parse_config_dict(raw: Any, *, name: str, origin: str) -> ModelSpec:
    if not isinstance(raw, Mapping):
        raise KvplanError(f"{origin}: config is not a JSON object")
    if is_meta_params(raw):
        return parse_meta_params(raw, name=name, origin=origin)
    return parse_hf_config(raw, name=name, origin=origin)


def parse_config_text(text: str | bytes, *, name: str, origin: str) -> ModelSpec:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise KvplanError(
            f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except UnicodeDecodeError:
        raise KvplanError(f"{origin}: not a text file") from None
    return parse_config_dict(raw, name=name, origin=origin)
