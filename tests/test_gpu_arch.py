"""The GPU catalog's architecture field (CUDA compute capability / AMD gfx target) and the
engine rules that read it instead of a list of GPU names (issue #11).

Expected values are NVIDIA's CUDA GPUs page (https://developer.nvidia.com/cuda-gpus) and
ROCm's GPU specifications table (LLVM target name), not kvplan's own output."""

from __future__ import annotations

import pytest

from kvplan.core.engines import sm100_family
from kvplan.core.gpu import GpuSpec
from kvplan.errors import KvplanError
from kvplan.sources.gpus import _require_arch, load_gpus

# Published figures (developer.nvidia.com/cuda-gpus; rocm.docs.amd.com gpu-specs)
PUBLISHED = {
    "a100-80gb": "8.0",
    "a10": "8.6",
    "rtx-3090": "8.6",
    "rtx-a6000": "8.6",
    "t4": "7.5",
    "v100-32gb": "7.0",
    "l4": "8.9",
    "l40s": "8.9",
    "rtx-4090": "8.9",
    "rtx-6000-ada": "8.9",
    "h100-sxm": "9.0",
    "h200": "9.0",
    "gh200": "9.0",
    "b200": "10.0",
    "gb200": "10.0",
    "b300": "10.3",
    "gb300": "10.3",
    "rtx-5090": "12.0",
    "rtx-pro-6000": "12.0",
    "gb10": "12.1",
}
PUBLISHED_GFX = {
    "mi300x": "gfx942",
    "mi325x": "gfx942",
    "mi355x": "gfx950",
    "mi250x": "gfx90a",
    "mi210": "gfx90a",
    "rx-7900-xt": "gfx1100",
}


def test_published_compute_capabilities_and_gfx_targets() -> None:
    g = load_gpus()
    assert {n: g.get(n).compute_capability for n in PUBLISHED} == PUBLISHED
    assert {n: g.get(n).gfx_target for n in PUBLISHED_GFX} == PUBLISHED_GFX
    assert g.get("h100-sxm").cuda_major == 9 and g.get("b300").cuda_major == 10
    assert g.get("gb10").cuda_major == 12 and g.get("mi300x").cuda_major is None


def test_every_bundled_entry_states_its_architecture_with_a_source() -> None:
    for gpu in load_gpus().gpus.values():
        if gpu.vendor == "nvidia":
            assert gpu.compute_capability is not None and gpu.gfx_target is None, gpu.name
            assert "https://developer.nvidia.com/cuda-gpus" in gpu.source, gpu.name
        elif gpu.vendor == "amd":
            assert gpu.gfx_target is not None and gpu.compute_capability is None, gpu.name
            assert "rocm.docs.amd.com/en/latest/reference/gpu-specs.html" in gpu.source
        else:  # Gaudi, TPU, Apple: neither field means anything there
            assert gpu.compute_capability is None and gpu.gfx_target is None, gpu.name


def test_a_bundled_entry_without_its_architecture_is_refused() -> None:
    b200 = load_gpus().get("b200")
    bare = b200.model_copy(update={"name": "b999", "compute_capability": None})
    with pytest.raises(KvplanError, match="b999: compute_capability is missing"):
        _require_arch((b200, bare), "gpus.yaml")
    mi = load_gpus().get("mi355x").model_copy(update={"gfx_target": None})
    with pytest.raises(KvplanError, match="mi355x: gfx_target is missing"):
        _require_arch((mi,), "gpus.yaml")


def test_sm100_family_is_compute_capability_10x() -> None:
    g = load_gpus()
    assert [n for n in ("b200", "gb200", "b300", "gb300") if sm100_family(g.get(n))] == [
        "b200",
        "gb200",
        "b300",
        "gb300",
    ]
    for name in ("h100-sxm", "h200", "rtx-5090", "rtx-pro-6000", "gb10", "mi355x", "gaudi3"):
        assert not sm100_family(g.get(name)), name


CARD = """schema_version: 1
gpus:
  - name: my-card
    display_name: My Card
    vendor: {vendor}
    memory_marketed_gb: 192
    memory_bytes: 206158430208
    memory_basis: measured
    memory_bandwidth: 8.0e+12
    source: our lab
{extra}"""


def _card(tmp_path, extra: str = "", vendor: str = "nvidia") -> GpuSpec:
    path = tmp_path / "mine.yaml"
    path.write_text(CARD.format(vendor=vendor, extra=extra))
    return load_gpus(str(path)).get("my-card")


def test_gpu_file_compute_capability_is_optional_and_read(tmp_path) -> None:
    new = _card(tmp_path, '    compute_capability: "10.0"\n')
    assert new.compute_capability == "10.0" and sm100_family(new)
    assert not sm100_family(_card(tmp_path, '    compute_capability: "12.0"\n'))
    unstated = _card(tmp_path)  # absent: not stated, so no architecture rule applies
    assert unstated.compute_capability is None and not sm100_family(unstated)
    assert _card(tmp_path, "    gfx_target: gfx942\n", vendor="amd").gfx_target == "gfx942"


QUOTED = 'compute_capability must be a quoted \'major.minor\' string such as "9.0" or "10.3", got '


@pytest.mark.parametrize(
    ("extra", "vendor", "says"),
    [
        ("    compute_capability: 10.0\n", "nvidia", "compute_capability must be a quoted"),
        ('    compute_capability: "10"\n', "nvidia", QUOTED + "'10'"),
        ('    compute_capability: "sm_100"\n', "nvidia", QUOTED + "'sm_100'"),
        ('    compute_capability: "10.0.1"\n', "nvidia", QUOTED + "'10.0.1'"),
        ("    gfx_target: MI300X\n", "amd", "gfx_target: String should match"),
        ('    compute_capability: "9.0"\n', "amd", "for NVIDIA GPUs, not vendor 'amd'"),
        ("    gfx_target: gfx942\n", "nvidia", "for AMD GPUs, not vendor 'nvidia'"),
    ],
)
def test_gpu_file_garbled_architecture_is_an_error_naming_the_key(
    tmp_path, extra: str, vendor: str, says: str
) -> None:
    with pytest.raises(KvplanError) as err:
        _card(tmp_path, extra, vendor=vendor)
    assert says in str(err.value)
    assert "gpus[0] (my-card)" in str(err.value)


def test_gpu_file_unsigned_exponent_says_how_to_write_it(tmp_path) -> None:
    """YAML 1.1 (PyYAML) reads 8.0e12 as text, 8.0e+12 as 8 x 10^12: the error says so."""
    path = tmp_path / "mine.yaml"
    path.write_text(CARD.format(vendor="nvidia", extra="").replace("8.0e+12", "8.0e12"))
    with pytest.raises(KvplanError) as err:
        load_gpus(str(path))
    assert str(err.value) == (
        f"{path}: gpus[0] (my-card): memory_bandwidth must be a number, got '8.0e12' "
        "(YAML reads it as text: a number needs a dot and a signed exponent, 8.0e+12)"
    )
    assert _card(tmp_path).memory_bandwidth == 8.0e12
