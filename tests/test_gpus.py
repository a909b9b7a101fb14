"""GPU catalog: required entries, published facts, name matching, user overrides."""

from __future__ import annotations

import pytest

from kvplan.errors import KvplanError
from kvplan.sources.gpus import load_gpus
from kvplan.units import GiB, MiB

REQUIRED = [
    "a100-40gb",
    "a100-80gb",
    "a100-80gb-pcie",
    "h100-sxm",
    "h100-pcie",
    "h100-nvl",
    "h200",
    "gh200",
    "b200",
    "b100",
    "gb200",
    "l40s",
    "l40",
    "l4",
    "a10",
    "a10g",
    "rtx-a6000",
    "rtx-6000-ada",
    "rtx-3090",
    "rtx-4090",
    "rtx-5090",
    "v100-32gb",
    "t4",
    "mi300x",
    "mi325x",
    "mi250x",
    "mi210",
    "gaudi2",
    "gaudi3",
    "tpu-v5e",
    "tpu-v5p",
    "tpu-v6e",
    "m2-ultra",
    "m3-max",
]


def test_catalog_has_the_accelerators_people_type():
    gpus = load_gpus().gpus
    assert len(gpus) >= 30
    assert set(REQUIRED) <= set(gpus)
    assert all(g.source for g in gpus.values())


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("H100", "h100-sxm"),
        ("H100 SXM5 80GB", "h100-sxm"),
        ("h100_sxm", "h100-sxm"),
        ("a100", "a100-80gb"),
        ("A100-80GB", "a100-80gb"),
        ("4090", "rtx-4090"),
        ("RTX 4090", "rtx-4090"),
        ("MI300X", "mi300x"),
        ("l40s", "l40s"),
    ],
)
def test_names_match_case_insensitively_with_aliases(typed, canonical):
    assert load_gpus().get(typed).name == canonical


def test_published_memory_and_dense_flops():
    g = load_gpus()
    assert g.get("h100-sxm").memory_bytes == 81559 * MiB  # nvidia-smi total
    assert g.get("a100-80gb").memory_bytes == 80 * GiB  # "80GB" A100 is 80 GiB = 81920 MiB
    assert g.get("a100-40gb").memory_bytes == 40960 * MiB
    # dense, never the "with sparsity" datasheet figures (1979 / 3958 for H100 SXM)
    assert g.get("h100-sxm").flops["bf16"] == pytest.approx(989.4e12)
    assert g.get("h100-sxm").flops["fp8"] == pytest.approx(1978.9e12)
    assert g.get("a100-80gb").flops["bf16"] == pytest.approx(312e12)
    assert "fp8" not in g.get("a100-80gb").flops  # Ampere has no FP8 tensor cores
    assert g.get("h100-sxm").memory_bandwidth == pytest.approx(3.35e12)
    assert g.get("a100-80gb").memory_bandwidth == pytest.approx(2.039e12)
    assert g.get("h200").memory_bandwidth == pytest.approx(4.8e12)


def test_cuda_totals_and_new_entries_match_their_sources():
    g = load_gpus()
    # CUDA-visible totals, as the cited logs print them (GiB to 2 decimals)
    assert round(g.get("rtx-3090").usable_memory_bytes / GiB, 2) == 23.58  # vllm#10517
    assert round(g.get("l4").usable_memory_bytes / GiB, 2) == 22.05  # vllm#20214
    assert round(g.get("rtx-a5000").usable_memory_bytes / GiB, 2) == 23.57
    assert round(g.get("rtx-a4000").usable_memory_bytes / GiB, 2) == 15.61  # VGGT-Long#6
    assert round(g.get("dgx spark").usable_memory_bytes / GiB, 2) == 121.69
    # nvidia-smi totals: 24,564 MiB (A5000, as the RTX 4090), 16,376 MiB (A4000)
    assert g.get("RTX A5000").memory_bytes == 24564 * MiB == g.get("rtx-4090").memory_bytes
    assert g.get("a4000").memory_bytes == 16376 * MiB
    # datasheet "Tensor performance" is FP16 with sparsity: 222.2 / 153.4 TFLOPS -> half
    assert g.get("rtx-a5000").flops["bf16"] == pytest.approx(222.2e12 / 2)
    assert g.get("rtx-a4000").flops["fp16"] == pytest.approx(153.4e12 / 2)
    assert "fp8" not in g.get("rtx-a5000").flops  # Ampere
    # DGX Spark: 273 GB/s LPDDR5x, 1 PFLOP FP4 with sparsity; nothing else published
    spark = g.get("gb10")
    assert spark.memory_bandwidth == pytest.approx(273e9)
    assert spark.flops == {"fp4": pytest.approx(500e12)}
    assert spark.memory_family == "unified" and spark.node_gpus == 1


def test_cuda_totals_from_published_logs():
    """Issue 11: the CUDA-visible totals engines size from, each as the cited log prints it
    (GiB to 2 decimals), and what they are below the driver total (nvidia-smi MiB)."""
    g = load_gpus()
    published = {
        "rtx-4090": 23.64,  # PyTorch OOM, ali-vilab/VGen#104 (and MuseTalk#76)
        "l40s": 44.42,  # vLLM total_gpu_memory, vllm#15815
        "l40": 44.40,  # PyTorch OOM, QwenLM/Qwen3-VL#2097
        "l20": 44.53,  # PyTorch OOM, Tencent-Hunyuan/HunyuanCustom#36
        "rtx-5090": 31.36,  # PyTorch OOM, TrajectoryCrafter#20 (Wan2.1#465: 31.37)
        "rtx-pro-6000": 95.01,  # vLLM "Free memory on device (94.05/95.01 GiB)", kubesimplify
        "t4": 14.75,  # PyTorch OOM on Colab, hpcaitech/Open-Sora#697 (CogVideo#741: 14.74)
        "a10": 22.18,  # PyTorch OOM under vLLM on an A10, OpenBMB/MiniCPM-V#640
        "a10g": 22.20,  # PyTorch OOM on a g5.12xlarge, Dreambooth-Stable-Diffusion#18
        "rtx-pro-4500-server": 31.38,  # torch total_memory, vllm#51590
        "h100-nvl": 93.00,  # PyTorch OOM on an H100 NVL, ali-vilab/VACE#56
        "b200": 178.35,  # pytorch/ao#4002
        "h200": 139.72,  # vLLM "Free memory on device (7.34/139.72 GiB)", vllm#23192
        "v100-32gb": 31.74,  # PyTorch OOM on 8x V100, haotian-liu/LLaVA#812
    }
    for name, gib in published.items():
        assert round(g.get(name).usable_memory_bytes / GiB, 2) == gib, name
    # nvidia-smi minus CUDA: 350 MiB on the RTX 4090 (24564 MiB), ~600 on the 46068 MiB
    # L40 / L40S, 0 on the V100 (32510 MiB = 31.75 GiB), 730 on the B200 (183359 MiB)
    rtx4090 = g.get("rtx-4090")
    assert rtx4090.memory_bytes - rtx4090.cuda_memory_bytes == pytest.approx(357 * MiB, abs=MiB)
    assert g.get("v100-32gb").memory_bytes - g.get("v100-32gb").cuda_memory_bytes < 16 * MiB
    assert 183359 * MiB - g.get("b200").cuda_memory_bytes == pytest.approx(727 * MiB, abs=6 * MiB)


def test_issue11_gpus_resolve_with_their_published_facts() -> None:
    """Issue 11: the GPUs of three engine-log rows (tensorrtllm_backend#366, vllm#51590, a
    TensorRT-LLM blog on an RTX 5060 Ti), each fact as its cited source prints it."""
    g = load_gpus()
    # A10G (AWS G5): nvidia-smi 23028 MiB; PyTorch "22.20 GiB total capacity" on a
    # g5.12xlarge (XavierXiao/Dreambooth-Stable-Diffusion#18); 600 GB/s, FP16 70 dense
    a10g = g.get("A10G")
    assert a10g.name == "a10g" and a10g.memory_bytes == 23028 * MiB
    assert a10g.cuda_memory_bytes == 22733 * MiB  # 22.20 GiB as whole MiB
    assert round(a10g.usable_memory_bytes / GiB, 2) == 22.20
    assert a10g.memory_bandwidth == pytest.approx(600e9)
    assert a10g.flops["fp16"] == pytest.approx(70e12) and "fp8" not in a10g.flops
    # RTX PRO 4500 Blackwell Server Edition (vllm#51590): nvidia-smi 32623 MiB,
    # torch total_memory 33,689,829,376 B = 31.38 GiB; 32 GB GDDR7, 800 GB/s, 165 W (Exxact)
    se = g.get("RTX PRO 4500 Blackwell Server Edition")
    assert se.name == "rtx-pro-4500-server"
    assert se.memory_bytes == 32623 * MiB and se.cuda_memory_bytes == 33_689_829_376
    assert round(se.usable_memory_bytes / GiB, 2) == 31.38
    assert (se.memory_marketed_gb, se.memory_type) == (32, "GDDR7")
    assert se.memory_bandwidth == pytest.approx(800e9) and se.tdp_watts == 165
    assert se.interconnect == "PCIe Gen5 x16" and se.node_gpus is None
    assert se.flops == {}  # no per-dtype figure read from a source: the roofline refuses
    # RTX 5060 Ti 16GB: 16 GB GDDR7 (read as 16 GiB, no runtime report), 448 GB/s, 180 W
    ti = g.get("RTX 5060 Ti 16GB")
    assert ti.name == "rtx-5060-ti-16gb"
    assert ti.memory_bytes == 16 * GiB and ti.cuda_memory_bytes is None
    assert ti.memory_bandwidth == pytest.approx(448e9) and ti.tdp_watts == 180
    assert ti.flops == {} and ti.interconnect_bandwidth is None
    # names that would be guesses fail: the 200 W RTX PRO 4500 workstation card, the 8 GB
    # RTX 5060 Ti
    for vague in ("rtx pro 4500", "rtx 5060 ti"):
        with pytest.raises(KvplanError):
            g.get(vague)


def test_every_cuda_total_names_its_source():
    """One place for each fact: a CUDA total carries the log it comes from (a URL); a GPU
    without one falls back to memory_bytes (nvidia-smi / rocminfo), the basis says so."""
    for gpu in load_gpus().gpus.values():
        if gpu.cuda_memory_bytes is None:
            assert gpu.cuda_memory_basis is None, gpu.name
            assert gpu.usable_memory_bytes == gpu.memory_bytes
        else:
            assert gpu.cuda_memory_basis and "https://" in gpu.cuda_memory_basis, gpu.name
            assert 0.9 * gpu.memory_bytes <= gpu.cuda_memory_bytes <= gpu.memory_bytes


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    cuda_memory_bytes: 80000000000\n", "under 90 % of memory_bytes"),
        ("    cuda_memory_bytes: 90000000000\n", "exceeds memory_bytes"),
        ("    cuda_memory_basis: a log\n", "cuda_memory_basis is given without"),
    ],
)
def test_user_cuda_total_is_screened(tmp_path, extra, message):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "schema_version: 1\ngpus:\n  - name: my-card\n    display_name: My Card\n"
        "    vendor: other\n    memory_marketed_gb: 96\n    memory_bytes: 89120571392\n"
        "    memory_basis: measured\n    memory_bandwidth: 1.0e+12\n    source: our lab\n" + extra
    )
    with pytest.raises(KvplanError) as err:
        load_gpus(str(path))
    assert message in str(err.value) and "my-card" in str(err.value)


def test_vllm_on_unified_memory_says_host_memory_is_not_modelled():
    from conftest import catalog_spec

    from kvplan.core.capacity import Deployment, plan
    from kvplan.core.engines import Engine

    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    spark = plan(Deployment(spec=spec, gpu=load_gpus().get("gb10")))
    assert any(n.startswith("unified memory: vLLM reads free memory") for n in spark.notes)
    # the budget still starts from CUDA's 121.69 GiB total
    assert spark.budget.total_memory == load_gpus().get("gb10").cuda_memory_bytes
    sglang = plan(Deployment(spec=spec, gpu=load_gpus().get("gb10"), engine=Engine.SGLANG))
    h100 = plan(Deployment(spec=spec, gpu=load_gpus().get("h100-sxm")))
    assert not any(n.startswith("unified memory") for n in (*sglang.notes, *h100.notes))


def test_unknown_gpu_suggests_near_names():
    with pytest.raises(KvplanError) as err:
        load_gpus().get("h1000")
    assert "unknown GPU 'h1000'" in str(err.value)
    assert "did you mean" in str(err.value) and "h100" in str(err.value)


def test_user_file_adds_and_overrides(tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text("""schema_version: 1
gpus:
  - name: my-card
    display_name: My Card 48GB
    vendor: other
    aliases: [mycard]
    memory_marketed_gb: 48
    memory_bytes: 51539607552
    memory_basis: measured
    memory_bandwidth: 1.0e+12
    flops: {bf16: 2.0e+14}
    source: our lab
  - name: h100-sxm
    display_name: H100 (derated)
    vendor: nvidia
    memory_marketed_gb: 80
    memory_bytes: 85520809984
    memory_basis: nvidia-smi
    memory_bandwidth: 3.0e+12
    flops: {bf16: 8.0e+14}
    source: our lab
""")
    g = load_gpus(str(path))
    assert g.get("MyCard").memory_bytes == 48 * GiB
    assert g.get("h100-sxm").memory_bandwidth == 3.0e12
    monkeypatch.setenv("KVPLAN_GPU_FILE", str(path))
    assert load_gpus().get("my-card").name == "my-card"


def test_user_file_is_validated_strictly(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("schema_version: 1\ngpus:\n  - name: x\n    vendor: other\n    colour: red\n")
    with pytest.raises(KvplanError) as err:
        load_gpus(str(path))
    assert str(path) in str(err.value)
    assert "gpus[0] (x)" in str(err.value)


def test_bundled_gpu_file_passes_the_pydantic_schema():
    """kvplan reads configs/gpus.yaml without the pydantic schema (start-up): here the
    schema a --gpu-file must pass checks it, and gives the very same GpuSpecs."""
    from kvplan.core.gpu import GpuSpec
    from kvplan.sources import gpus as g
    from kvplan.sources.data import configs_dir, load_yaml_file
    from kvplan.sources.validate import screen_gpu_entries

    raw = load_yaml_file(configs_dir() / "gpus.yaml")
    screen_gpu_entries(raw, origin="gpus.yaml")  # raises on an implausible figure
    parsed = g.gpu_file_model().model_validate(raw)
    assert len(parsed.gpus) > 10
    assert tuple(GpuSpec(**x.model_dump()) for x in parsed.gpus) == g._bundled()
