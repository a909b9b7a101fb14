"""kvplan: KV-cache capacity planning from a model's real config.

Data flows one way: sources (config files, Hub, catalogs; pydantic validates user files)
-> core (pure math over light immutable value classes, `kvplan.core.frozen`) ->
presentation (rich tables / JSON envelope) -> cli (thin typer commands).

The Python API (`kvplan.api`, docs/api.md) is re-exported here and imported on first use,
so `import kvplan` costs nothing until a function is called:

    import kvplan
    kvplan.size("meta-llama/Llama-2-70b", ctx=4096).kv_bytes_per_sequence
    kvplan.fit("meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", ctx=32768).max_batch
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_API = (
    "size",
    "fit",
    "pick_g",
    "roofline",
    "plan",
    "sweep",
    "load_model",
    "load_gpu",
    "SizeResult",
    "PlanResult",
    "RooflineResult",
)
# Written out (not [*_API, ...]): type checkers and linters read __all__ literally to know
# what is re-exported; tests/test_api.py keeps the two lists in step.
__all__ = [  # noqa: RUF022 (the API first, in the order docs/api.md presents it)
    "size",
    "fit",
    "pick_g",
    "roofline",
    "plan",
    "sweep",
    "load_model",
    "load_gpu",
    "SizeResult",
    "PlanResult",
    "RooflineResult",
    "KvplanError",
    "__version__",
]

if TYPE_CHECKING:
    from kvplan.api import (
        PlanResult,
        SizeResult,
        fit,
        load_gpu,
        load_model,
        pick_g,
        plan,
        roofline,
        size,
        sweep,
    )
    from kvplan.errors import KvplanError
    from kvplan.presentation.roofline_view import RooflineResult


def __getattr__(name: str) -> Any:
    if name == "RooflineResult":
        from kvplan.presentation.roofline_view import RooflineResult

        return RooflineResult
    if name in _API:
        from kvplan import api

        return getattr(api, name)
    if name == "KvplanError":
        from kvplan.errors import KvplanError

        return KvplanError
    raise AttributeError(f"module 'kvplan' has no attribute {name!r}")
