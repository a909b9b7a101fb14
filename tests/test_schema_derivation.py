"""kvplan.sources.schema: the pydantic schema of a user file is derived from the core
Frozen class's one declaration (fields, order, defaults, bounds, nested classes)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from kvplan.core.frozen import MISSING
from kvplan.core.gpu import GpuSpec
from kvplan.sources.catalog import CatalogEntry, catalog_schema
from kvplan.sources.gpus import gpu_file_model


@pytest.mark.parametrize(
    ("core", "derived"),
    [
        (GpuSpec, lambda: gpu_file_model().model_fields["gpus"].annotation.__args__[0]),
        (CatalogEntry, lambda: catalog_schema().model_fields["models"].annotation.__args__[0]),
    ],
)
def test_fields_defaults_and_bounds_follow_the_core_declaration(core, derived) -> None:
    model = derived()
    assert model.__name__ == core.__name__
    assert list(model.model_fields) == list(core.model_fields)  # same order
    for name, spec in core.model_fields.items():
        info = model.model_fields[name]
        assert info.is_required() == (spec.default is MISSING and spec.default_factory is None)
        meta = {type(m).__name__: m for m in info.metadata}
        if spec.gt is not None:
            assert meta["Gt"].gt == spec.gt
        if spec.le is not None:
            assert meta["Le"].le == spec.le


def test_a_bound_declared_once_is_enforced_on_the_user_file() -> None:
    entry = {
        "name": "x1",
        "display_name": "X1",
        "vendor": "other",
        "memory_marketed_gb": 10,
        "memory_bytes": 0,  # GpuSpec declares gt=0
        "memory_basis": "datasheet",
        "memory_bandwidth": 1e12,
        "source": "s",
    }
    with pytest.raises(ValidationError, match="greater than 0"):
        gpu_file_model().model_validate({"schema_version": 1, "gpus": [entry]})
    with pytest.raises(ValidationError, match="Extra inputs"):
        gpu_file_model().model_validate(
            {"schema_version": 1, "gpus": [{**entry, "memory_bytes": 1, "bogus": 1}]}
        )
