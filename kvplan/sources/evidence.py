"""Read configs/quality_evidence.yaml (published quality evidence, see core/evidence.py)."""

from __future__ import annotations

from functools import cache

from pydantic import ValidationError

from kvplan.core.evidence import EvidenceFile, Study
from kvplan.errors import KvplanError
from kvplan.sources.data import configs_dir, load_yaml_file


@cache
def load_evidence() -> tuple[Study, ...]:
    path = configs_dir() / "quality_evidence.yaml"
    try:
        return EvidenceFile.model_validate(load_yaml_file(path)).studies
    except ValidationError as exc:
        raise KvplanError(f"{path}: {exc.errors()[0]['msg']}") from None
