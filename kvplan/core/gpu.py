"""An accelerator as the planner sees it: memory, bandwidth, dense peak FLOP/s, interconnect.

Units: bytes, bytes/s (decimal, as vendors state bandwidth), FLOP/s (dense, never the
"with sparsity" figures). `memory_bytes` is the total the driver reports (nvidia-smi);
`cuda_memory_bytes`, where known, is the smaller total CUDA/PyTorch report, which is what
engines such as vLLM multiply by their utilization knob.
"""

from __future__ import annotations

from typing import Any, Literal

from kvplan.core.frozen import FieldError, Frozen, field

Vendor = Literal["nvidia", "amd", "intel", "google", "apple", "other"]
FlopDtype = Literal["fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4", "int4"]


GPU_NAME_PATTERN = r"^[a-z0-9][a-z0-9.\-]*$"
# CUDA compute capability as NVIDIA writes it, "major.minor" ("9.0", "10.3", "12.1"): a
# quoted string in YAML (a bare 9.0 is a float, and 12.10 would read as 12.1)
COMPUTE_CAPABILITY_PATTERN = r"^[1-9][0-9]?\.[0-9]$"
# An AMD GPU's LLVM target (the ROCm tables' "LLVM target name"): gfx942, gfx90a, gfx1100
GFX_TARGET_PATTERN = r"^gfx[0-9]{2,3}[0-9a-f]$"


class GpuSpec(Frozen):
    """One GPU. A --gpu-file is validated by the pydantic schema of the same fields
    (`kvplan.sources.gpus.gpu_file_model`) before it becomes one of these."""

    name: str = field(pattern=GPU_NAME_PATTERN)
    display_name: str
    vendor: Vendor
    aliases: tuple[str, ...] = ()
    memory_marketed_gb: float = field(gt=0)
    memory_bytes: int = field(gt=0)
    memory_basis: str
    # The memory technology as the vendor's datasheet names it (the `source`): "HBM3e",
    # "GDDR6", "unified LPDDR5". Decides the label of the bandwidth column.
    memory_type: str | None = None
    cuda_memory_bytes: int | None = field(default=None, gt=0)
    # Where cuda_memory_bytes comes from: the published log line (PyTorch's OOM "total
    # capacity", vLLM's total_gpu_memory / "Free memory on device (free/total)") and its URL
    cuda_memory_basis: str | None = None
    memory_bandwidth: float = field(gt=0)
    flops: dict[FlopDtype, float] = field(default_factory=dict)
    interconnect: str | None = None
    interconnect_bandwidth: float | None = field(default=None, gt=0)
    # GPUs one node joins with its intra-node link (an HGX/DGX or OAM baseboard's NVLink /
    # Infinity Fabric domain, a bridge's 2 or 4); None where GPUs only meet over PCIe
    node_gpus: int | None = field(default=None, gt=0, le=1024)
    tdp_watts: float | None = field(default=None, gt=0)
    # The architecture engines key their kernel choices on (vLLM `is_device_capability_family`,
    # SGLang `is_sm100_supported`, ROCm's gfx checks): NVIDIA's CUDA compute capability, or an
    # AMD GPU's LLVM gfx target. Every bundled NVIDIA / AMD entry has its own (checked when the
    # catalog loads); in a --gpu-file it is optional, and absent means "not stated": kvplan then
    # applies no architecture-specific engine rule to that GPU.
    compute_capability: str | None = field(default=None, pattern=COMPUTE_CAPABILITY_PATTERN)
    gfx_target: str | None = field(default=None, pattern=GFX_TARGET_PATTERN)
    source: str = field(min_length=1)
    notes: str | None = None

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        flops = data.get("flops")
        if isinstance(flops, dict):  # FLOP/s are floats (a YAML integer too, as pydantic)
            data["flops"] = {k: float(v) if type(v) is int else v for k, v in flops.items()}
        if isinstance(data.get("aliases"), list):
            data["aliases"] = tuple(data["aliases"])
        return data

    def _check(self) -> None:
        if self.compute_capability is not None and self.vendor != "nvidia":
            raise FieldError(
                ("compute_capability",),
                f"a CUDA compute capability is for NVIDIA GPUs, not vendor {self.vendor!r}",
            )
        if self.gfx_target is not None and self.vendor != "amd":
            raise FieldError(
                ("gfx_target",), f"a gfx target is for AMD GPUs, not vendor {self.vendor!r}"
            )

    @property
    def cuda_major(self) -> int | None:
        """The compute capability's major version (the architecture generation: 9 Hopper,
        10 Blackwell data-center, 12 Blackwell RTX / GB10), None when not stated."""
        if self.compute_capability is None:
            return None
        return int(self.compute_capability.split(".")[0])

    @property
    def memory_family(self) -> str:
        """HBM, GDDR or unified (CPU and GPU share it), or 'memory' when not stated."""
        t = (self.memory_type or "").lower()
        for key, family in (("unified", "unified"), ("hbm", "HBM"), ("gddr", "GDDR")):
            if key in t:
                return family
        return "memory"

    @property
    def usable_memory_bytes(self) -> int:
        """Total memory as the CUDA runtime sees it (what engine fractions apply to)."""
        return self.cuda_memory_bytes or self.memory_bytes
