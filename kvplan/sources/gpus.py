"""The GPU catalog: configs/gpus.yaml plus an optional user file (--gpu-file / KVPLAN_GPU_FILE).

Names match case-insensitively with spaces, underscores and hyphens treated alike, so
`H100 SXM5 80GB`, `h100_sxm5_80gb` and `h100-sxm5-80gb` are one key. A user entry with a
catalog name replaces it; new names are added. Unknown names get "did you mean" hints.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kvplan.core.frozen import FieldError, Frozen
from kvplan.core.gpu import GpuSpec
from kvplan.errors import KvplanError
from kvplan.sources.data import configs_dir, load_bundled_yaml, load_yaml_file
from kvplan.sources.validate import printable, screen_gpu_entries

if TYPE_CHECKING:
    from pydantic import BaseModel

GPU_FILE_ENV = "KVPLAN_GPU_FILE"


class GpuCatalogFile(Frozen):
    """A GPU file: `schema_version: 1` and the entries."""

    schema_version: Literal[1]
    gpus: tuple[GpuSpec, ...]


def gpu_file_model() -> type[BaseModel]:
    """The pydantic schema of a GPU file (a --gpu-file, and the bundled gpus.yaml in the
    tests), derived from the core GpuSpec's one declaration (kvplan.sources.schema). Built
    only when a user file is read."""
    from kvplan.sources.schema import pydantic_model

    return pydantic_model(GpuCatalogFile)


_SEPARATORS = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    return _SEPARATORS.sub("-", name.strip().lower()).strip("-")


def _load_file(path: Path) -> tuple[GpuSpec, ...]:
    """A user's GPU file: screened, validated by the pydantic schema, then core GpuSpecs."""
    from pydantic import ValidationError

    raw = load_yaml_file(path)
    screen_gpu_entries(raw, origin=printable(str(path)))
    try:
        parsed: Any = gpu_file_model().model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        where = ".".join(str(p) for p in loc)
        if len(loc) >= 2 and loc[0] == "gpus" and isinstance(raw, dict):
            with contextlib.suppress(IndexError, KeyError, AttributeError, TypeError):
                where = f"gpus[{loc[1]}] ({raw['gpus'][loc[1]].get('name', '?')}): " + ".".join(
                    str(p) for p in loc[2:]
                )
        raise KvplanError(f"{printable(str(path))}: {where}: {err['msg']}") from None
    specs = []
    for i, entry in enumerate(parsed.gpus):
        try:
            specs.append(GpuSpec(**entry.model_dump()))
        except FieldError as exc:  # an invariant across fields (GpuSpec._check)
            where = f"gpus[{i}] ({printable(entry.name)}): " + ".".join(map(str, exc.loc))
            raise KvplanError(f"{printable(str(path))}: {where}: {exc.msg}") from None
    return tuple(specs)


# Vendors whose bundled entries must state their architecture, and the field that holds it
_ARCH_FIELD = {"nvidia": "compute_capability", "amd": "gfx_target"}


def _require_arch(gpus: tuple[GpuSpec, ...], origin: str) -> tuple[GpuSpec, ...]:
    """Every bundled NVIDIA entry states its CUDA compute capability and every AMD entry
    its gfx target (architecture rules read them, kvplan.core.engines.sm100_family): a new
    entry without one is refused when the catalog loads, not read as "no such rule"."""
    for gpu in gpus:
        key = _ARCH_FIELD.get(gpu.vendor)
        if key is not None and getattr(gpu, key) is None:
            raise KvplanError(
                f"{origin}: {gpu.name}: {key} is missing (required for bundled {gpu.vendor} "
                "GPUs, with its source)"
            )
    return gpus


class GpuCatalog:
    def __init__(self, gpus: tuple[GpuSpec, ...]) -> None:
        self.gpus: dict[str, GpuSpec] = {}
        self._index: dict[str, str] = {}
        for gpu in gpus:
            self.add(gpu)

    def copy(self) -> GpuCatalog:
        """An independent catalog with the same entries (`add` on it leaves this one alone)."""
        other = GpuCatalog(())
        other.gpus, other._index = dict(self.gpus), dict(self._index)
        return other

    def add(self, gpu: GpuSpec) -> None:
        self.gpus[gpu.name] = gpu
        for key in (gpu.name, *gpu.aliases, gpu.display_name):
            self._index[normalize_name(key)] = gpu.name

    def get(self, name: str) -> GpuSpec:
        key = normalize_name(name)
        if key in self._index:
            return self.gpus[self._index[key]]
        hits = difflib.get_close_matches(key, list(self._index), n=6, cutoff=0.45)
        hits += sorted(k for k in self._index if k.startswith(key[:2]))
        names: list[str] = []
        for hit in hits:
            canonical = self._index[hit]
            if canonical not in names:
                names.append(canonical)
        hint = (
            f"did you mean {', '.join(names[:3])}?"
            if names
            else "see `kvplan gpus` for the catalog, or add one with --gpu-file"
        )
        raise KvplanError(f"unknown GPU {printable(repr(name))}", hint=hint)


@cache
def _bundled() -> tuple[GpuSpec, ...]:
    """configs/gpus.yaml, which ships with kvplan (read from its compiled twin, see
    `kvplan.sources.data`) and built with GpuSpec's own checks (bounds, unknown keys),
    without the pydantic schema, which costs more than a whole `kvplan fit`;
    tests/test_gpus.py screens the file and validates it with that schema."""
    path = configs_dir() / "gpus.yaml"
    origin = printable(str(path))
    raw = load_bundled_yaml(
        path, screen=lambda data: screen_gpu_entries(data, origin=printable(str(path)))
    )
    if (
        not isinstance(raw, dict)
        or raw.get("schema_version") != 1
        or set(raw)
        != {
            "schema_version",
            "gpus",
        }
    ):
        return _require_arch(_load_file(path), origin)  # the schema says what is wrong
    try:
        gpus = tuple(GpuSpec(**entry) for entry in raw["gpus"])
    except (TypeError, ValueError):
        gpus = _load_file(path)
    return _require_arch(gpus, origin)


@cache
def _bundled_catalog() -> GpuCatalog:
    """The bundled catalog indexed once per process (a command looks GPUs up more than
    once: the API and the deployment parser); `load_gpus` hands out copies."""
    return GpuCatalog(_bundled())


def load_gpus(user_file: str | None = None) -> GpuCatalog:
    catalog = _bundled_catalog().copy()
    path_text = user_file or os.environ.get(GPU_FILE_ENV)
    if path_text:
        try:
            path = Path(path_text).expanduser()
            exists = path.exists()
        except (OSError, RuntimeError, ValueError):
            exists = False
        if not exists:
            raise KvplanError(f"GPU file {printable(path_text)}: no such file", setting="gpu_file")
        for gpu in _load_file(path):
            catalog.add(gpu)
    return catalog


# ---- the --gpu-file format as a JSON Schema (configs/gpus.schema.json, generated) ---------
_GPU_FIELD_DOCS = {
    "name": "Canonical name to type after --gpu: lowercase letters, digits, '.', '-'. A name "
    "already in the catalog replaces that entry; a new name adds one.",
    "display_name": "Human name, e.g. 'NVIDIA H100 SXM5 80GB' (also accepted by --gpu).",
    "vendor": "Who makes it.",
    "aliases": "Other names --gpu accepts (case, spaces, '_' and '-' are ignored).",
    "memory_marketed_gb": "The datasheet memory figure in GB, kept for reference.",
    "memory_bytes": "Total memory in bytes as the runtime reports it (nvidia-smi total MiB x "
    "1,048,576; rocminfo for AMD).",
    "memory_basis": "Where memory_bytes comes from, e.g. 'nvidia-smi total 81559 MiB'.",
    "memory_type": "Memory technology as the datasheet names it: HBM3e, GDDR6, unified "
    "LPDDR5 (labels the bandwidth as HBM / GDDR / unified).",
    "cuda_memory_bytes": "Optional: the smaller total CUDA/PyTorch report (torch.cuda."
    "mem_get_info()[1]); engines' memory fractions apply to this one when given.",
    "cuda_memory_basis": "Where cuda_memory_bytes comes from: the log line (PyTorch's OOM "
    "'total capacity', vLLM's total_gpu_memory) and its URL. Only with cuda_memory_bytes.",
    "memory_bandwidth": "Memory bandwidth in bytes/s, decimal as vendors state it "
    "(3.35e12 = 3.35 TB/s).",
    "flops": "Dense peak FLOP/s (OP/s for int8) per data type: never the 'with sparsity' "
    "figure. Leave out a dtype the hardware has no tensor/matrix unit for.",
    "interconnect": "GPU-to-GPU link name, e.g. 'NVLink 4' or 'PCIe Gen5 x16'.",
    "interconnect_bandwidth": "Per-GPU link bandwidth in bytes/s, both directions.",
    "node_gpus": "Optional: GPUs one node joins with that link (8 on an HGX/DGX or OAM "
    "baseboard, 72 in an NVL72 rack, 2 for a bridge); TP beyond it crosses nodes.",
    "tdp_watts": "Board power in watts.",
    "compute_capability": "Optional, NVIDIA only: the CUDA compute capability as a quoted "
    "'major.minor' string ('9.0' H100, '10.0' B200, '12.0' RTX 5090; nvidia-smi "
    "--query-gpu=compute_cap). Engine rules that depend on the architecture (e.g. vLLM's "
    "SM100-family kernels: 10.x) read it; absent means not stated, and no such rule applies.",
    "gfx_target": "Optional, AMD only: the LLVM gfx target ('gfx942' MI300X, 'gfx950' "
    "MI355X; rocminfo). Absent means not stated.",
    "source": "Where the figures come from (URLs); required.",
    "notes": "Anything a reader should know (sparsity halved, runtime totals, ...).",
}


def gpu_file_schema() -> dict[str, object]:
    """JSON Schema of a --gpu-file (the same model that validates the file)."""
    schema = gpu_file_model().model_json_schema()
    gpu = schema["$defs"]["GpuSpec"]
    for field_name, doc in _GPU_FIELD_DOCS.items():
        gpu["properties"][field_name]["description"] = doc
    gpu["description"] = "One accelerator as software schedules it (one GPU of a node)."
    schema["properties"]["schema_version"]["description"] = "Always 1."
    schema["properties"]["gpus"]["description"] = "The entries to add or replace."
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/kvplan/kvplan/blob/main/configs/gpus.schema.json",
        "title": "kvplan GPU file (--gpu-file / KVPLAN_GPU_FILE / policy gpu_file)",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def gpu_file_schema_text() -> str:
    import json

    return json.dumps(gpu_file_schema(), indent=2) + "\n"
