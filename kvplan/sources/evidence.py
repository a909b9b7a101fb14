"""Read configs/quality_evidence.yaml (published quality evidence, see core/evidence.py)."""

from __future__ import annotations

from functools import cache

from kvplan.core.evidence import EvidenceFile, Study
from kvplan.errors import KvplanError
from kvplan.sources.data import configs_dir, load_bundled_yaml


@cache
def load_evidence() -> tuple[Study, ...]:
    path = configs_dir() / "quality_evidence.yaml"
    try:
        return EvidenceFile.model_validate(load_bundled_yaml(path)).studies
    except (ValueError, TypeError) as exc:  # the bundled file, checked as it is built
        raise KvplanError(f"{path}: {exc}") from None
