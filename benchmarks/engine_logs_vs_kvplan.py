"""kvplan's engine memory model against real engine start-up logs, train vs held-out.

    python benchmarks/engine_logs_vs_kvplan.py            # per-row table + summary (markdown)
    python benchmarks/engine_logs_vs_kvplan.py --json     # one JSON object
    python benchmarks/engine_logs_vs_kvplan.py --fit      # refit the activation / CUDA-graph
                                                          # coefficients on TRAINING rows only
    python benchmarks/engine_logs_vs_kvplan.py --why      # the rows not evaluated, and why

Reads tests/data/engine_logs.yaml and tests/data/vllm_kv_logs.yaml (numbers copied from
their sources, never adjusted). Split: a row is HELD-OUT iff
int(sha256(id), 16) % 3 == 0 (project rule, also for the older file's rows).

For every row kvplan can model (the model's config is bundled, the GPU is in the catalog,
and the log prints the engine's KV budget), it predicts, with the release profile the log's
engine version selects:

  budget   the KV memory the engine sizes (vLLM "Available KV cache memory", SGLang K + V
           size, TensorRT-LLM "Allocated ... for max tokens in paged KV cache")
           - full:        kvplan's own weights estimate (params x dtype)
           - engine only: the log's own weights figure in place of kvplan's, so the engine
                          terms (fraction, activations, non-torch, graphs) are judged alone
  tokens   the log's "GPU KV cache size" / #tokens line from kvplan's full prediction
  page     page math alone: blocks kvplan cuts from the LOGGED budget vs the logged block
           count (exact up to the log's 0.01 GiB rounding: `page_ok`); for SGLang the
           pool is token-granular, so its blocks are the logged #tokens

tests/test_engine_model.py imports `evaluate()` and asserts the held-out bounds.

What is mapped, explicitly (nothing else is adjusted):
  - Fine-tunes and re-quantizations run their base architecture (`MODELS`): RedHatAI
    fp8-dynamic / w8a8 / w4a16 checkpoints -> the base model at fp8 / int8 / int4 weights;
    Kimi-Dev-72B is a Qwen2.5-72B fine-tune (same config.json apart from metadata);
    DeepSeek-V2-Lite-Chat -> DeepSeek-V2-Lite; R1-Distill-Qwen-14B -> Qwen2.5-14B.
  - The release line (`line_choice`, first rule that applies; `--why` and the JSON rows say
    which one chose each row's line):
      1. TensorRT-LLM rows whose entry point is a "TRT engine" -> the `trt` (engine flow)
         line (any release), the others -> the PyTorch flow.
      2. A recorded engine_version (exact, or inferred by the data file from stated
         evidence) -> the line covering it; a vLLM 0.7.3 row run with VLLM_USE_V1=1 -> the
         first V1 line.
      3. No version, evidence in the log itself: vLLM rows that print "CUDA graph memory
         profiling is enabled (default since v0.21.0)" -> the 0.21+ line; vLLM rows whose
         notes say V0 -> the V0 line.
      4. No version, a `log_date`: the release that was current on PyPI at that date (the
         newest final release published on or before it, tests/data/engine_releases.yaml)
         -> the line covering it.
      5. Neither: vLLM rows whose notes name 2025 -> the pre-0.17 V1 line, other vLLM rows
         -> the default line; SGLang -> its newest line.
    Rule 4 was adopted on 2026-11-30 (issue 11) before its effect on any error was looked
    at: the newest line is wrong for a log written before that line existed.
  - A row's own "total memory" line, when printed, replaces the catalog's CUDA total.
  - TensorRT-LLM rows of vllm_kv_logs.yaml keep "Allocated X GiB for max tokens in paged KV
    cache" in that file's one budget field (available_kv_cache_gib): read as the budget.
  - vLLM rows whose log says "CUDA graph memory profiling is disabled
    (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0)": kvplan's budget with its graph estimate
    added back (nothing subtracted for graphs), tokens from that pool (ESTIMATE_OFF_LINE).
  - vLLM V0 logs before 0.6.4 print only "# GPU blocks: N": their budget is taken as
    (N + 1/2) blocks (V0 sizes N = budget // block bytes); rows of releases before 0.3.1
    are left out (see V0_BLOCKS_FROM).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import re
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from kvplan.core.capacity import Deployment, plan
from kvplan.core.engines import (
    DEFAULT_VERSIONS,
    ENGINE_LABELS,
    Engine,
    padded_vocab,
    parse_version,
    profile_for,
)
from kvplan.core.geometry import Mixer, ModelSpec
from kvplan.core.gpu import GpuSpec
from kvplan.core.prefix_cache import refusal
from kvplan.core.sizing import default_kv_dtype
from kvplan.errors import KvplanError
from kvplan.sources.catalog import load_catalog
from kvplan.sources.gpus import load_gpus
from kvplan.units import GiB

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
FILES = ("engine_logs.yaml", "vllm_kv_logs.yaml")
RELEASES = DATA / "engine_releases.yaml"  # PyPI release dates (benchmarks/fetch_engine_releases.py)

# logged model -> (catalog model, weight dtype or None for the checkpoint's)
MODELS: dict[str, tuple[str, str | None]] = {
    "RedHatAI/Llama-3.3-70B-Instruct-fp8-dynamic": ("meta-llama/Llama-3.3-70B-Instruct", "fp8"),
    "RedHatAI/Qwen2.5-7B-Instruct-fp8-dynamic": ("Qwen/Qwen2.5-7B-Instruct", "fp8"),
    "redhatai/Llama-3.3-70B-Instruct-quantized.w8a8": ("meta-llama/Llama-3.3-70B-Instruct", "int8"),
    "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8": (
        "meta-llama/Llama-3.1-8B-Instruct",
        "int8",
    ),
    "RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16": (
        "meta-llama/Llama-3.1-8B-Instruct",
        "int4",
    ),
    "RedHatAI/Qwen2.5-7B-Instruct-quantized.w8a8": ("Qwen/Qwen2.5-7B-Instruct", "int8"),
    "moonshotai/Kimi-Dev-72B": ("Qwen/Qwen2.5-72B-Instruct", None),
    "deepseek-ai/DeepSeek-V2-Lite-Chat": ("deepseek-ai/DeepSeek-V2-Lite", None),
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-14B": ("Qwen/Qwen2.5-14B", None),
    "Qwen/Qwen1.5-MoE-A2.7B": ("Qwen/Qwen1.5-MoE-A2.7B-Chat", None),
    "Qwen/Qwen3-235B-A22B-FP8": ("Qwen/Qwen3-235B-A22B", "fp8"),
    # the 2507 Instruct update keeps the Qwen3-235B-A22B geometry (94 layers, hidden 4096,
    # 64 heads, 4 KV heads x 128, 128 experts, 8 active: the config.json excerpt quoted by
    # kubesimplify/website@00b7452 content/blog/running-a-big-llm-across-multiple-gpus-with-
    # vllm.md); FP8 block-scaled checkpoint
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": ("Qwen/Qwen3-235B-A22B", "fp8"),
    # QwQ-32B is a Qwen2.5-32B fine-tune (same config.json apart from metadata)
    "Qwen/QwQ-32B": ("Qwen/Qwen2.5-32B-Instruct", None),
    "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8": ("meta-llama/Llama-3.1-8B-Instruct", "fp8"),
    # Mistral-Small-3.2 is an update of 3.1 with the same Mistral3 architecture (the llm-d-benchmark
    # row quotes 40 layers, 8 KV heads x 128, hidden 5120, Pixtral vision tower, as 3.1's config)
    "mistralai/Mistral-Small-3.2-24B-Instruct-2506": (
        "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
        None,
    ),
    # R1-Distill-Qwen-7B has the Qwen2.5-Math-7B architecture: 28 layers, 4 KV heads, hidden
    # 3584, FFN 18944, vocabulary 152,064, untied embeddings, as Qwen2.5-7B
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B": ("Qwen/Qwen2.5-7B-Instruct", None),
    # NVIDIA ModelOpt FP8 checkpoint of the same model (fp8 linear layers, bf16 embeddings)
    "nvidia/Llama-3.1-8B-Instruct-FP8": ("meta-llama/Llama-3.1-8B-Instruct", "fp8"),
    # Qwen3-Reranker-0.6B is a Qwen3-0.6B fine-tune (Qwen3ForCausalLM, same shapes)
    "Qwen/Qwen3-Reranker-0.6B": ("Qwen/Qwen3-0.6B", None),
    # the Instruct release has the base model's config.json apart from eos_token_id
    "meta-llama/Meta-Llama-3-8B-Instruct": ("meta-llama/Meta-Llama-3-8B", None),
    # Mistral-7B-v0.1 fine-tunes (same layer shapes; OpenHermes adds ChatML tokens, under
    # 0.1 MiB of embedding rows); the AWQ / GPTQ / Marlin checkpoints are 4-bit linear layers
    "teknium/OpenHermes-2.5-Mistral-7B": ("mistralai/Mistral-7B-v0.1", None),
    "TheBloke/zephyr-7B-beta-AWQ": ("mistralai/Mistral-7B-v0.1", "int4"),
    "TheBloke/Llama-2-7B-GPTQ": ("meta-llama/Llama-2-7b-hf", "int4"),
    # phi-2-super is a microsoft/phi-2 fine-tune; this is its 4-bit Marlin checkpoint
    "mgoin/phi-2-super-marlin": ("microsoft/phi-2", "int4"),
    # MiniMax-M2.5 has M2.7's geometry: ai-dynamo/aiconfigurator@095f58a5
    # aic-core/src/aiconfigurator_core/model_configs/MiniMaxAI--MiniMax-M2.5_config.json gives
    # 62 layers, hidden 3072, 48 heads / 8 KV x 128, rotary_dim 64, 256 experts x 1536 top-8,
    # vocabulary 200,064, untied head, 3 MTP modules and the same block-128 FP8
    # quantization_config as the catalog's M2.7 file; only max_position_embeddings differs
    # (196,608 vs 204,800: a rotary table about 2 MiB smaller)
    "MiniMaxAI/MiniMax-M2.5": ("MiniMaxAI/MiniMax-M2.7", None),
}

# logged GPU text (before any " (") -> kvplan GPU name
GPUS = {
    "H100 80GB": "h100-sxm",
    "H100": "h100-sxm",
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "RTX 3090": "rtx-3090",
    "RTX 4090": "rtx-4090",
    "NVIDIA GeForce RTX 4090": "rtx-4090",
    "NVIDIA RTX A6000": "rtx-a6000",
    "RTX 5090": "rtx-5090",
    "A10": "a10",
    "A100-80GB": "a100-80gb",
    "A100-40GB": "a100-40gb",
    "MI355X": "mi355x",
    "NVIDIA L4": "l4",
    "L40S": "l40s",
    "Tesla T4": "t4",
    "RTX A5000": "rtx-a5000",
    "RTX A4000 16GB": "rtx-a4000",
    "DGX Spark": "gb10",
    "H200": "h200",
    "B200": "b200",
    "H20": "h20",
    "NVIDIA L20": "l20",
    "Radeon RX 7900 XT": "rx-7900-xt",
    "MI300X": "mi300x",
    "RTX PRO 6000 Blackwell Server Edition": "rtx-pro-6000",
    "RTX A6000": "rtx-a6000",
    "A10G": "a10g",  # "A10G (AWS g5.12xlarge, 4x A10G)"
    "RTX PRO 4500 Blackwell Server Edition": "rtx-pro-4500-server",
    "RTX 5060 Ti 16GB": "rtx-5060-ti-16gb",
    "NVIDIA GB300": "gb300",
    "GB300": "gb300",
}
# Logged GPU texts that name only a class of card ("a 24 GB card", "80 GB class", "NVIDIA
# A100" without its memory) are left unmapped on purpose: kvplan does not guess the card.
# Catalogued GPUs left unmapped, with the reason `--why` prints:
UNMAPPED = {
    # the one GH200 row (vllm#44376) states no vLLM release; its log_date (2026-06-03) puts
    # it on the 0.21+ line, but since vllm#35356 vLLM takes free memory from the host on
    # every GPU that reports is_integrated, which that PR names GH200 among: not evaluated
    # rather than judged under a formula kvplan does not model
    "GH200": "GH200 possibly on vLLM's unified-memory path (vllm#35356; no vLLM release "
    "stated, the 0.21+ line by its log_date): not evaluated",
}

# Unified-memory devices: on Orin / Thor / Spark vLLM takes the free memory from
# psutil.virtual_memory().available instead of cudaMemGetInfo
# (vllm-project/vllm@a6d5c39009eb73797b276cc557ca9659c396ca14:vllm/utils/mem_utils.py,
# MemorySnapshot.measure; since vllm#35356 any GPU with is_integrated), so the non-torch
# growth it subtracts from the budget includes the host memory the process and others take
# meanwhile. kvplan does not model host memory, so such rows are not evaluated.
UMA_REASON = (
    "unified memory: vLLM measures free memory as host MemAvailable (mem_utils.py "
    "MemorySnapshot.measure), so host memory use enters its budget; not modelled"
)

# Checkpoints whose quantization config sets an fp8 KV scheme, which TensorRT-LLM follows
# when no KV dtype is passed (the TRT-LLM#4275 log: 65,536 B/token = 1 B/element).
KV_FROM_CHECKPOINT = {
    "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8": "fp8",
    # TRT-LLM#6294: "Using checkpoint KV quantization", 65,536 B/token = 1 B/element
    "nvidia/Llama-3.1-8B-Instruct-FP8": "fp8",
}

DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
KV_DTYPES = {"fp8": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8"}


# Printed at start-up from vLLM 0.20.0 on despite its wording (vllm 0.20.0 wheel,
# vllm/v1/worker/gpu_worker.py:455-462): a log without a version that carries it is from a
# line that subtracts the CUDA-graph estimate before sizing the KV cache (0.20 or 0.33: the
# budget is the same; the harness takes 0.33).
V021_LINE = "CUDA graph memory profiling is enabled (default since v0.21.0)"

# Printed by vLLM 0.20+ when VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0 (vllm 0.22.0
# gpu_worker.py:498, as the InferenceMAX_Rocm_Team B200 logs show): the graph estimate is
# computed and logged but NOT subtracted before the KV cache is sized. kvplan has no setting
# for the environment variable; for such rows the harness takes kvplan's budget with its own
# graph estimate added back (budget = total x utilization - weights - activations -
# non-torch, the 0.20+ formula without the estimate term), and its token count from that pool.
ESTIMATE_OFF_LINE = (
    "CUDA graph memory profiling is disabled (VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0)"
)


def graph_estimate_off(r: dict[str, Any]) -> bool:
    """A vLLM row whose log says the CUDA-graph estimate was not subtracted."""
    return r["engine"] == "vllm" and ESTIMATE_OFF_LINE in (r.get("raw_log") or "")


def split_of(row_id: str) -> str:
    return "heldout" if int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % 3 == 0 else "train"


def load_records() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in FILES:
        doc = yaml.safe_load((DATA / name).read_text(encoding="utf-8"))
        for r in doc["records"]:
            if "SUSPICIOUS" in (r.get("notes") or ""):
                continue  # the data file flags rows whose own figures disagree
            rows.append({**r, "split": split_of(r["id"]), "file": name})
    return rows


@functools.cache
def _releases() -> dict[str, tuple[tuple[tuple[int, ...], str, str], ...]]:
    """engine -> ((parsed version, version, YYYY-MM-DD published), ...) from PyPI."""
    doc = yaml.safe_load(RELEASES.read_text(encoding="utf-8"))
    return {
        engine: tuple((parse_version(v), v, day) for v, day in table["releases"].items())
        for engine, table in doc["engines"].items()
    }


def release_or_line(r: dict[str, Any]) -> str:
    """What kvplan is told, as a user of that release would tell it: the row's exact release
    (e.g. "0.22.0") when it states one and that release falls in the line `line_choice`
    picked, else the line's own name. Release-dependent rules inside a line (vLLM's graph
    estimate on ROCm from 0.26.0, the null block from 0.29.0, the 0.28.0 scheduler default)
    then follow the release, not the line's newest (adopted 2026-11-30 as the rule a user
    gets: `--engine-version 0.22.0`)."""
    line = version_line(r)
    text = str(r.get("engine_version") or "").split(" ")[0]
    if r["engine"] == "trtllm" or not re.fullmatch(r"\d+\.\d+(\.\d+)?(\.post\d+)?", text):
        return line
    try:
        same = profile_for(Engine(r["engine"]), text).version == line
    except KvplanError:
        return line
    return text if same else line


def release_at(engine: Engine, day: str) -> str | None:
    """The release of `engine` current at `day` (YYYY-MM-DD): the newest final release
    published on PyPI on or before that day (None before the first one)."""
    out = [(key, v) for key, v, published in _releases()[engine.value] if published <= day]
    return max(out)[1] if out else None


def line_choice(r: dict[str, Any]) -> tuple[str, str]:
    """The modelled release line for the row, and the rule that chose it (module docstring:
    the first of rules 1-5 that applies)."""
    engine = Engine(r["engine"])
    text = r["engine_version"]
    notes = (r.get("notes") or "") + r["id"]
    if engine is Engine.TRTLLM and "TRT engine" in str(r.get("entry_point")):
        return "trt", "entry point: a trtllm-build engine (the engine flow, any release)"
    if text is not None:
        if engine is Engine.VLLM and "v1" in r["id"] and str(text).startswith("0.7"):
            return "0.16", f"engine_version {text} with VLLM_USE_V1=1: the first V1 line"
        return profile_for(engine, str(text).split(" ")[0]).version, f"engine_version {text}"
    if engine is Engine.VLLM and V021_LINE in (r.get("raw_log") or ""):
        return profile_for(engine, "0.21").version, "no release; the log prints the 0.21+ line"
    if engine is Engine.VLLM and ("V0" in notes or re.search(r"(^|-)v0(-|$)", r["id"])):
        return "0.6", "no release; a V0 engine log (notes)"
    day = r.get("log_date")
    release = release_at(engine, day) if day else None
    label = f"log_date {day}: {ENGINE_LABELS[engine]} {release} current on PyPI"
    if release is not None:
        try:
            return profile_for(engine, release).version, label
        except KvplanError:  # a release older than every modelled line: rule 5 below
            label += " (outside the modelled lines)"
    why = label + "; " if release is not None else "no release or date: "
    if engine is Engine.VLLM:
        if "2025" in notes:  # an unversioned V1 log from 2025: the pre-0.17 V1 line
            return "0.16", why + "notes name 2025: the pre-0.17 V1 line"
        return DEFAULT_VERSIONS[engine], why + "the default line"
    return profile_for(engine, None).version, why + "the newest line"


def version_line(r: dict[str, Any]) -> str:
    """The modelled release line for the row's engine version (see module docstring)."""
    return line_choice(r)[0]


# Logged GPU texts that name no card: mapped only when the whole text (its memory total)
# identifies one part; matched on the full text, so one such row cannot map another.
UNNAMED_GPUS = {
    "not named (total 31.84 GiB; 32 GB Blackwell consumer card, RTX 5090 class)": "rtx-5090",
    # 93.10 GiB total: 94 GB of HBM3, which among catalogued parts only the H100 NVL has
    "not named (total 93.10 GiB: an H100 NVL 94GB class part)": "h100-nvl",
}


def _gpu_name(r: dict[str, Any]) -> str | None:
    text = str(r["gpu"]).strip()
    if text in UNNAMED_GPUS:
        return UNNAMED_GPUS[text]
    return GPUS.get(text.split(" (")[0].strip())


def _unified(name: str) -> bool:
    return load_gpus().get(name).memory_family == "unified"


def _gpu(r: dict[str, Any]) -> GpuSpec | None:
    name = _gpu_name(r)
    if name is None or (_unified(name) and r["engine"] == "vllm"):
        return None
    g = load_gpus().get(name)
    total = r["logged"].get("total_memory_gib") or r.get("gpu_total_memory_gib")
    if total:
        g = g.model_copy(update={"cuda_memory_bytes": int(total * GiB)})
    return g


def _spec(r: dict[str, Any]) -> tuple[ModelSpec, str | None] | None:
    model, weight_dtype = MODELS.get(r["model"] or "", (r["model"] or "", None))
    catalog = load_catalog()
    entry = catalog.find(model)
    if entry is None:
        return None
    spec = catalog.load(entry)
    dtype = DTYPES.get(str(r.get("model_dtype")))
    overridden = "dtype" in r["id"] or dtype == "fp32"  # a run that overrode --dtype
    if weight_dtype is None and dtype and dtype != spec.checkpoint_dtype and overridden:
        weight_dtype = dtype
    if weight_dtype is None and r.get("quantization") == "fp8":  # online --quantization fp8
        weight_dtype = "fp8"
    if weight_dtype is None and r["id"].endswith(("-fp16", "-fp32")):
        weight_dtype = r["id"].rsplit("-", 1)[1]
    return spec, weight_dtype


# vLLM V0 before 0.6.4 prints no memory breakdown, only "# GPU blocks: N". Its budget is
# total x gpu_memory_utilization - (free memory at worker start - free memory after the
# profiling pass) and the block count is that budget // block bytes (vllm 0.4.1
# worker/worker.py:104-105, 134-157; the same in 0.3.3 worker.py:89, 129-137), so N blocks
# fix the budget to within one block: (N + 1/2) x block bytes is taken as the logged
# budget (page math is then not checked on such rows). Up to 0.3.0 vLLM measured the peak
# as total - free memory after profiling (vllm 0.2.7 worker/worker.py:101-107, 0.3.0
# :122): everything in use on the GPU, the CUDA context included, which kvplan does not
# model; the baseline at worker start came with vllm#2863, first released in 0.3.1
# (worker.py:89, 134). Earlier rows are left out.
V0_BLOCKS_FROM = (0, 3, 1)
V02_REASON = (
    "vLLM <= 0.3.0 block count: those releases counted all memory in use on the GPU (CUDA "
    "context included) as the profiled peak (vllm 0.2.7 worker/worker.py:101-107, 0.3.0 "
    ":122): not modelled"
)


def _v0_release(r: dict[str, Any]) -> tuple[int, ...] | None:
    """The row's stated vLLM release as numbers, or None when it states none."""
    from kvplan.core.engines import parse_version

    text = r.get("engine_version")
    return None if text is None else parse_version(str(text).split(" ")[0])


def budget_from_blocks(r: dict[str, Any]) -> bool:
    """A vLLM V0 row (release >= 0.3.1 stated) whose log gives the block count only."""
    lg = r["logged"]
    if r["engine"] != "vllm" or lg.get("available_kv_cache_gib") is not None:
        return False
    release = _v0_release(r)
    return (
        bool(lg.get("gpu_blocks"))
        and release is not None
        and release >= V0_BLOCKS_FROM
        and version_line(r) == "0.6"
    )


# SGLang up to 0.4.0 prints no "KV Cache is allocated" size line, only
# "max_total_num_tokens=N". Its pool is token-granular and sized N = int(rest x 2**30 //
# cell_size), rest = avail_after_load - total x (1 - mem_fraction_static), cell_size = KV
# heads per rank x head_dim x layers x 2 x element size (sgl-project/sglang@v0.3.6.post3:
# python/sglang/srt/model_executor/model_runner.py profile_max_num_token, the statement
# after the rest_memory lines :432-435), so N tokens fix the budget to within one token:
# (N + 1/2) x cell bytes is taken as the logged budget, as for V0 block counts (page math is
# then not checked). Not when --max-total-tokens capped the pool (min(N, max_total_tokens)).
SGLANG_CAP = re.compile(r"max_total_tokens=\d")


def budget_from_tokens(r: dict[str, Any]) -> bool:
    """An SGLang row whose log gives the token count but no K / V size line."""
    lg = r["logged"]
    if r["engine"] != "sglang" or not lg.get("max_total_num_tokens"):
        return False
    sized = ("k_size_gb", "kv_size_gb", "available_kv_cache_gib")
    return all(lg.get(k) is None for k in sized) and not SGLANG_CAP.search(r.get("raw_log") or "")


def _tokens_budget(r: dict[str, Any]) -> float | None:
    d = deployment_for(r)
    if d is None:
        return None
    cell = plan(d.with_(kv_memory=GiB)).block_bytes / d.block_size  # bytes per token
    return None if cell == 0 else (r["logged"]["max_total_num_tokens"] + 0.5) * cell / GiB


def _blocks_budget(r: dict[str, Any]) -> float | None:
    d = deployment_for(r)
    if d is None:
        return None
    block = plan(d.with_(kv_memory=GiB)).block_bytes
    return None if block == 0 else (r["logged"]["gpu_blocks"] + 0.5) * block / GiB


def logged_budget(r: dict[str, Any]) -> float | None:
    """The KV memory the engine logged it sized, GiB per GPU."""
    lg = r["logged"]
    if r["engine"] == "vllm":
        if budget_from_blocks(r):
            return _blocks_budget(r)
        value = lg.get("available_kv_cache_gib")
        return None if value is None or value <= 0 else float(value)
    if r["engine"] == "sglang":
        if lg.get("k_size_gb") is not None:
            return float(lg["k_size_gb"]) + float(lg["v_size_gb"])
        if lg.get("kv_size_gb") is not None:  # MLA pools print one "KV size"
            return float(lg["kv_size_gb"])
        if budget_from_tokens(r):
            return _tokens_budget(r)
        # vllm_kv_logs.yaml keeps SGLang's K + V in available_kv_cache_gib
        value = lg.get("available_kv_cache_gib")
        return None if value is None else float(value)
    value = lg.get("allocated_kv_gib")
    if value is None and r["file"] == "vllm_kv_logs.yaml":
        # the companion file keeps TensorRT-LLM's "Allocated X GiB for max tokens in paged
        # KV cache" in its one budget field (its schema has no allocated_kv_gib)
        value = lg.get("available_kv_cache_gib")
    if value is None and lg.get("kv_cache_bytes") is not None:
        # TensorRT-LLM <= 0.9 prints "Allocate N bytes for k/v cache." instead
        return float(lg["kv_cache_bytes"]) / GiB
    return None if value is None else float(value)


def deployment_for(r: dict[str, Any], *, logged_weights: bool = False) -> Deployment | None:
    if r.get("pipeline_parallel_size") not in (None, 1) and r["engine"] != "vllm":
        return None
    found = _spec(r)
    gpu = _gpu(r)
    if found is None or gpu is None or r["tensor_parallel_size"] is None:
        return None
    spec, weight_dtype = found
    engine = Engine(r["engine"])
    kv = r["kv_cache_dtype"]
    if kv is None and r["engine"] == "trtllm":
        kv = KV_FROM_CHECKPOINT.get(r["model"] or "")
    if kv in (None, "auto"):
        # the KV cache is in the model dtype the engine serves: a run's own --dtype, else
        # kvplan's rule for auto (a float32 checkpoint is served, and cached, in fp16)
        kv_dtype = (
            weight_dtype if weight_dtype in ("fp32", "fp16", "bf16") else default_kv_dtype(spec)
        )
    else:
        kv_dtype = KV_DTYPES.get(kv, kv)
    tp, pp = r["tensor_parallel_size"], r.get("pipeline_parallel_size") or 1
    knob = {Engine.VLLM: "gpu_memory_utilization", Engine.SGLANG: "mem_fraction_static"}.get(
        engine, "free_gpu_memory_fraction"
    )
    util = r.get("gpu_memory_utilization")
    weights = None
    if logged_weights:
        lg = r["logged"]
        w = lg.get("model_weights_gib") or lg.get("weights_mem_usage_gb")
        before, after = lg.get("avail_mem_before_load_gb"), lg.get("avail_mem_after_weights_gb")
        if w is None and lg.get("engine_mib") is not None:
            w = lg["engine_mib"] / 1024  # TRT engine flow: "Loaded engine size" (per rank)
        if w is None and before is not None and after is not None:
            # SGLang logs before "mem usage" was printed: its drop in free memory
            w = before - after
        if w is None:
            return None
        weights = int(w * GiB) * tp * pp
    seqs = r.get("max_num_seqs")
    if engine is Engine.SGLANG:
        seqs = None  # SGLang logs max_running_requests (derived from the pool), not a limit
    entry = "llm" if "LLM(" in str(r.get("entry_point")) else "serve"
    return Deployment(
        spec=spec,
        gpu=gpu,
        engine=engine,
        entry_point=entry,
        engine_version=release_or_line(r),
        tp=tp,
        pp=pp,
        kv_dtype=kv_dtype,
        weight_dtype=weight_dtype if weight_dtype not in ("fp32", "fp16", "bf16") else None,
        max_num_seqs=seqs,
        max_num_batched_tokens=r.get("max_num_batched_tokens"),
        max_model_len=r.get("max_model_len"),
        # the row's stated switch (null: the release's default, kvplan.core.prefix_cache)
        enable_prefix_caching=r.get("enable_prefix_caching"),
        block_size=r.get("block_size") or profile_for(engine, version_line(r)).block_size,
        weights_override=weights
        if weights is not None
        else _dtype_weights(spec, weight_dtype, tp, pp),
        weights_loaded=weights is not None,  # the log's figure holds the rotary tables
        **({knob: util} if util else {}),
    )


def _dtype_weights(spec: ModelSpec, weight_dtype: str | None, tp: int, pp: int) -> int | None:
    """fp32 / fp16 runs of a bf16 checkpoint: the checkpoint's parameters at that width."""
    if weight_dtype not in ("fp32", "fp16"):
        return None
    from kvplan.core.params import weight_bytes

    return weight_bytes(spec, weight_dtype=weight_dtype).total


@dataclass
class Row:
    id: str
    split: str
    engine: str
    line: str
    platform: str
    gpu: str
    tp: int
    pp: int
    model: str
    logged_budget_gib: float
    budget_gib: float  # kvplan full
    budget_err: float
    engine_only_gib: float | None
    engine_only_err: float | None
    logged_tokens: int | None
    tokens: int | None
    tokens_err: float | None
    page_ok: bool | None  # page math on the logged budget reproduces the logged blocks
    line_rule: str  # which rule chose the release line (`line_choice`)
    # logged budget derived from a V0 block count or an SGLang token count (see above)
    from_blocks: bool = False


def _page_check(r: dict[str, Any], d: Deployment) -> bool | None:
    """Blocks kvplan cuts from the LOGGED budget vs the logged block count, allowing the
    log's rounding of the budget to 0.01 GiB (+-0.005 GiB) and one block."""
    lg = r["logged"]
    if budget_from_blocks(r) or budget_from_tokens(r):
        return None  # the budget was derived from the block / token count itself
    blocks = lg.get("gpu_blocks") or lg.get("primary_pool_blocks")
    if r["engine"] == "sglang":  # the pool holds whole pages (page_size tokens, default 1)
        tokens = lg.get("kv_cache_tokens") or lg.get("max_total_num_tokens")
        blocks = tokens // d.block_size if tokens else None
    budget = logged_budget(r)
    if not blocks or budget is None:
        return None
    if d.profile.version == "0.6" and any(
        layer.mixer is Mixer.CROSS_ATTENTION for layer in d.spec.layers
    ):
        # V0 pages the cross-attention layers like self-attention (vllm#12126: 14.65 GiB /
        # 6001 blocks = 40 layers' pages for Llama-3.2-11B-Vision); kvplan keeps V1's
        # fixed per-image encoder K/V instead (docs/engines.md "Not modelled")
        return None
    p = plan(d.with_(kv_memory=int(budget * GiB)))
    if p.block_bytes == 0 or r.get("pipeline_parallel_size", 1) not in (None, 1):
        return None  # PP: the log's budget is the first rank's, its blocks the minimum
    # SGLang's budget is K + V, two figures each rounded to 0.01 GiB
    tol = 0.01 if r["engine"] == "sglang" else 0.005
    lo = int((budget - tol) * GiB) // p.block_bytes
    hi = int((budget + tol) * GiB) // p.block_bytes
    return lo - 1 <= blocks <= hi + 1


def _tokens_logged(r: dict[str, Any]) -> int | None:
    lg = r["logged"]
    return lg.get("kv_cache_tokens") or lg.get("max_total_num_tokens")


# vLLM V0 profiles encoder-decoder multimodal models (mllama: Llama-3.2-Vision) with
# max_num_seqs dummy requests that EACH carry the largest image input: unlike the
# decoder-only runner, enc_dec_model_runner.profile_run does not cut max_num_seqs to
# max_num_batched_tokens // max_mm_tokens (vllm 0.7.3 worker/enc_dec_model_runner.py:267-297
# vs worker/model_runner.py:1279-1291), so the vision encoder's activations for e.g. 128
# images make the peak (36.63 GiB in vllm#12126). kvplan has no vision-encoder activation
# model: such rows are not evaluated rather than judged under the text-only forward model.
V0_ENC_DEC_REASON = (
    "vLLM V0 encoder-decoder multimodal profiling (max_num_seqs dummy images through the "
    "vision encoder, enc_dec_model_runner.py profile_run): not modelled"
)


def _not_modelled(r: dict[str, Any]) -> str | None:
    d = deployment_for(r)
    if d is None:
        return None
    # prefix caching as the row states it, where kvplan refuses it (the CLI's error)
    why = refusal(d.engine, d.profile, d.engine_version, d.spec, d.enable_prefix_caching)
    if why is not None:
        return f"prefix caching: {why}"
    if version_line(r) != "0.6" or r["engine"] != "vllm":
        return None
    if any(layer.mixer is Mixer.CROSS_ATTENTION for layer in d.spec.layers):
        return V0_ENC_DEC_REASON
    return None


def evaluate_row(r: dict[str, Any]) -> Row | None:
    budget = logged_budget(r)
    if budget is None:
        return None
    d = deployment_for(r)
    if d is None or _not_modelled(r) is not None:
        return None
    p = plan(d)
    predicted = p.budget.kv_budget / GiB
    eo = deployment_for(r, logged_weights=True)
    eo_gib = plan(eo).budget.kv_budget / GiB if eo is not None else None
    if graph_estimate_off(r):  # see ESTIMATE_OFF_LINE: nothing subtracted for graphs
        predicted += p.budget.cudagraph / GiB
        p = plan(d.with_(kv_memory=p.budget.kv_budget + p.budget.cudagraph))
        if eo is not None and eo_gib is not None:
            eo_gib += plan(eo).budget.cudagraph / GiB
    tokens = _tokens_logged(r)
    predicted_tokens = _engine_tokens(p) if tokens else None
    return Row(
        id=r["id"],
        split=r["split"],
        engine=r["engine"],
        line=d.profile.name,
        platform=d.platform.value,
        gpu=d.gpu.name,
        tp=d.tp,
        pp=d.pp,
        model=d.spec.name,
        logged_budget_gib=budget,
        budget_gib=round(predicted, 3),
        budget_err=predicted / budget - 1,
        engine_only_gib=None if eo_gib is None else round(eo_gib, 3),
        engine_only_err=None if eo_gib is None else eo_gib / budget - 1,
        logged_tokens=tokens,
        tokens=predicted_tokens,
        tokens_err=None
        if not tokens or predicted_tokens is None
        else predicted_tokens / tokens - 1,
        page_ok=_page_check(r, d),
        from_blocks=budget_from_blocks(r) or budget_from_tokens(r),
        line_rule=line_choice(r)[1],
    )


def _engine_tokens(p: Any) -> int:
    from kvplan.core.capacity import logged_kv_tokens

    return int(logged_kv_tokens(p))


def evaluate() -> list[Row]:
    return [row for r in load_records() if (row := evaluate_row(r)) is not None]


def why_not(r: dict[str, Any]) -> list[str]:
    """Every reason the harness does not evaluate a row (empty when it does)."""
    reasons = []
    lg = r["logged"]
    v0_blocks_only = (
        r["engine"] == "vllm"
        and lg.get("gpu_blocks")
        and lg.get("available_kv_cache_gib") is None
        and version_line(r) == "0.6"
    )
    if v0_blocks_only and not budget_from_blocks(r):
        reasons.append(f"no release >= 0.3.1 stated; {V02_REASON}")
    elif logged_budget(r) is None:
        reasons.append("log prints no KV budget (refused start, or not in the excerpt)")
    if r.get("pipeline_parallel_size") not in (None, 1) and r["engine"] != "vllm":
        reasons.append(f"PP {r['pipeline_parallel_size']} on {r['engine']}: not modelled")
    model = MODELS.get(r["model"] or "", (r["model"] or "", None))[0]
    if load_catalog().find(model) is None:
        reasons.append(f"model not in the catalog: {r['model']}")
    name = _gpu_name(r)
    gpu_text = str(r["gpu"]).split(" (")[0].strip()
    if gpu_text in UNMAPPED:
        reasons.append(UNMAPPED[gpu_text])
    elif name is None:
        reasons.append(f"GPU not mapped (not in the catalog, or named only vaguely): {r['gpu']}")
    elif _unified(name) and r["engine"] == "vllm":
        reasons.append(UMA_REASON)
    if r["tensor_parallel_size"] is None:
        reasons.append("TP not stated")
    if not reasons and (unmodelled := _not_modelled(r)) is not None:
        reasons.append(unmodelled)
    if not reasons and evaluate_row(r) is None:
        reasons.append("the log's own weights line is missing for an engine-only figure")
    return reasons


def summarize(rows: list[Row], attr: str = "budget_err") -> dict[str, dict[str, Any]]:
    """Median |error| and worst error by (engine line, platform) and split, and overall."""
    out: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[Row]] = {}
    for row in rows:
        if getattr(row, attr) is None:
            continue
        groups.setdefault(f"{row.line} / {row.platform}", []).append(row)
        groups.setdefault("all", []).append(row)
    for key, members in sorted(groups.items()):
        entry: dict[str, Any] = {}
        for split in ("train", "heldout"):
            errs = [getattr(m, attr) for m in members if m.split == split]
            if errs:
                worst = max(errs, key=abs)
                entry[split] = {
                    "n": len(errs),
                    "median_abs": statistics.median(abs(e) for e in errs),
                    "worst": worst,
                }
        out[key] = entry
    return out


def _fmt_summary(title: str, summary: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"### {title}", "", "| engine line / platform | split | n | median abs | worst |"]
    lines.append("|---|---|---:|---:|---:|")
    for key, entry in summary.items():
        for split, s in entry.items():
            lines.append(
                f"| {key} | {split} | {s['n']} | {s['median_abs']:.1%} | {s['worst']:+.1%} |"
            )
    return lines


def _sglang_weight_load_overheads(rows: list[dict[str, Any]]) -> list[float]:
    """SGLang TRAINING rows: the logged weight-load memory ("Load weight end ... mem usage",
    or the drop in free memory) less params x dtype / TP, GiB per GPU (any GPU: the figure
    does not depend on the card)."""
    from kvplan.core.params import weight_bytes

    out = []
    for r in rows:
        lg = r["logged"]
        if r["split"] != "train" or r["engine"] != "sglang" or not r["tensor_parallel_size"]:
            continue
        w = lg.get("weights_mem_usage_gb")
        before, after = lg.get("avail_mem_before_load_gb"), lg.get("avail_mem_after_weights_gb")
        if w is None and before is not None and after is not None:
            w = before - after
        found = _spec(r)
        if w is None or found is None:
            continue
        spec, wd = found
        dtype = wd if wd not in ("fp32", "fp16", "bf16") else None
        params = weight_bytes(spec, weight_dtype=dtype).total / r["tensor_parallel_size"]
        out.append(w - params / GiB)
    return out


# V0 training rows left out of the ACT_FFN fit, with the reason (decided from the row's own
# figures and notes when it was added, before any fit or held-out figure was looked at):
V0_FIT_EXCLUDED = {
    # no launch command quoted, so the scheduler settings that size the profiling pass are
    # unknown; its 9.37 GiB peak is 7.4x the same model's at the same 8192 tokens on H100
    # (vllm#10511, 1.26 GiB): one such row would move a 3-row median by itself
    "llama3-8b-a100-40gb-v066-issue12330": "scheduler settings not stated",
}


def fit(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Coefficients of kvplan.core.budget, from TRAINING rows of vLLM 0.17-0.19 on CUDA
    (the only line whose logs print every term): activation model and CUDA-graph pool."""
    from kvplan.core.budget import (
        CG_REF_EXTRA_GRAPHS,
        cudagraph_capture_counts,
        ffn_width,
        is_moe,
    )

    sampler, graphs, layers = [], [], []
    # (moe, peak bytes, forward units, seqs x vocab, hidden bytes)
    forward: list[tuple[bool, float, float, float, float]] = []
    for r in rows:
        lg = r["logged"]
        if r["split"] != "train" or r["engine"] != "vllm" or lg.get("activation_peak_gib") is None:
            continue
        if version_line(r) != "0.19":
            continue
        d = deployment_for(r)
        if d is None or (r.get("pipeline_parallel_size") or 1) > 1:
            continue
        spec, act = d.spec, lg["activation_peak_gib"] * GiB
        tokens, seqs = d.scheduler_tokens, d.scheduler_seqs
        if spec.vocab_size >= 100_000 and not is_moe(spec):
            # sampler-bound (large vocabulary, dense MLP)
            sampler.append((act - tokens * spec.hidden_size * 2) / (seqs * spec.vocab_size))
        else:
            forward.append(
                (
                    is_moe(spec),
                    act,
                    tokens * ffn_width(spec) / d.tp,
                    seqs * spec.vocab_size,
                    tokens * spec.hidden_size * 2,
                )
            )
        if lg.get("cudagraph_estimated_gib") is not None and d.tp == 1:
            # the layer term is vLLM's extrapolated per-graph part: scale it by the row's own
            # graph count (kvplan.core.budget.estimate_cudagraph; 100 at the H100 defaults)
            piecewise, full = cudagraph_capture_counts(
                d.scheduler_seqs, d.scheduler_tokens, 1 + d.num_speculative_tokens
            )
            extra = max(piecewise - 1, 0) + max(full - 1, 0)
            graphs.append(lg["cudagraph_estimated_gib"])
            layers.append(spec.num_layers * extra / CG_REF_EXTRA_GRAPHS)
    per_seq = statistics.median(sampler)
    # a row is forward-bound where its peak exceeds the sampler model by > 5 %
    bound = [(m, a / u) for m, a, u, sv, h in forward if a > 1.05 * (per_seq * sv + h)]
    dense = [c for m, c in bound if not m]
    moe = [c for m, c in bound if m]
    # V0 (<= 0.7): the peak is what the budget leaves: total x util - weights - non-torch -
    # available, against the forward model at the profiled tokens (max(max_model_len, 2048),
    # or 2048 with chunked prefill), on rows that print the breakdown and are forward-bound.
    v0 = []
    for r in rows:
        lg = r["logged"]
        if r["split"] != "train" or r["engine"] != "vllm" or version_line(r) != "0.6":
            continue
        if "multimodal" in (r.get("model_kind") or ()):
            continue  # its profiling pass runs the encoder too: not the text forward model
        if r["id"] in V0_FIT_EXCLUDED:
            continue
        d = deployment_for(r, logged_weights=True)
        if d is None or logged_budget(r) is None:
            continue
        util = d.fraction or 0.9
        implied = (
            d.gpu.usable_memory_bytes * util
            - (d.weights_override or 0)
            - (lg.get("non_torch_memory_gib") or 0) * GiB
            - (logged_budget(r) or 0) * GiB
        )
        # forward-bound only, by the V1 rows' test: a peak at or under the sampler model is
        # not the forward pass's (vLLM V0 samples inside the same profiling pass)
        sampler_model = (
            per_seq * d.scheduler_seqs * d.spec.vocab_size
            + d.scheduler_tokens * d.spec.hidden_size * 2
        )
        if implied <= 1.05 * sampler_model:
            continue
        v0.append(implied / (d.scheduler_tokens * ffn_width(d.spec) / d.tp))
    # the dense forward-bound training rows are V0's (V1 0.19 dense rows are all
    # sampler-bound), so ACT_FFN comes from them and applies to V1 as well
    dense = dense or v0
    # least squares for graphs = a + b * layers
    n = len(graphs)
    mx, my = sum(layers) / n, sum(graphs) / n
    b = sum((x - mx) * (y - my) for x, y in zip(layers, graphs, strict=True)) / sum(
        (x - mx) ** 2 for x in layers
    )
    # TensorRT-LLM PyTorch flow: kv = fraction x (total - weights - activations - runtime),
    # so runtime = total - kv / fraction - weights - activations on each TRAINING row
    # (kvplan's weights and activation model; the log's own where it prints them).
    trt = []
    for r in rows:
        if r["split"] != "train" or r["engine"] != "trtllm" or version_line(r) != "pytorch":
            continue
        d = deployment_for(r)
        budget = logged_budget(r)
        if d is None or budget is None:
            continue
        terms = plan(d).budget
        trt.append(
            (
                terms.total_memory
                - budget * GiB / (d.fraction or 0.9)
                - terms.weights
                - terms.activations
            )
            / GiB
        )
    sglang = _sglang_weight_load_overheads(rows)
    trt_base, trt_per_seq = _fit_trt_engine(rows)
    return {
        "SGLANG_WEIGHT_LOAD_OVERHEAD_GiB": statistics.median(sglang) if sglang else float("nan"),
        "n_sglang_weights": len(sglang),
        "TRTLLM_RUNTIME_GiB": statistics.median(trt) if trt else float("nan"),
        "n_trtllm": len(trt),
        "TRT_ENGINE_BASE_GiB": trt_base[0],
        "n_trt_engine_base": trt_base[1],
        "TRT_ENGINE_PER_SLOT_VOCAB_B": trt_per_seq[0],
        "n_trt_engine_per_slot_vocab": trt_per_seq[1],
        "ACT_SAMPLER": per_seq,
        "ACT_FFN": statistics.median(dense) if dense else float("nan"),
        "ACT_FFN_MOE": statistics.median(moe) if moe else float("nan"),
        "CG_BASE_GiB": my - b * mx,
        "CG_PER_LAYER_GiB": b,
        "V0_ACT_FFN": statistics.median(v0) if v0 else float("nan"),
        "n_v0": len(v0),
        "n_sampler": len(sampler),
        "n_dense": len(dense),
        "n_moe": len(moe),
        "n_graphs": n,
    }


# "[MemUsageChange] Allocated 1.14 GB GPU memory for runtime buffers." / "... for decoder."
# (TrtGptModelInflightBatching); "KB" / "MB" / "GB" are binary (runtime/memoryCounters.cpp
# doubleBytesToString divides by 1024). Read from the verbatim raw_log, so rows of either
# data file count; a TP log prints one line per rank, and the first is taken.
# trtllm-build's BuildConfig default max_batch_size (NVIDIA/TensorRT-LLM@008b2b8
# tensorrt_llm/builder.py), for logs whose engine was built without one
TRT_BUILD_DEFAULT_BATCH = 2048
_BUFFER_LINE = re.compile(
    r"Allocated ([0-9.]+) (KB|MB|GB) GPU memory for (runtime buffers|decoder)"
)
_BUFFER_UNIT = {"KB": 1 << 20, "MB": 1 << 10, "GB": 1}  # divisor to GiB


def printed_batch_buffers(r: dict[str, Any]) -> tuple[float, float] | None:
    """(runtime buffers, decoder) in GiB as the engine-flow log prints them, or None."""
    found: dict[str, float] = {}
    for value, unit, what in _BUFFER_LINE.findall(str(r.get("raw_log") or "")):
        found.setdefault(what, float(value) / _BUFFER_UNIT[unit])
    if len(found) < 2:
        return None
    return found["runtime buffers"], found["decoder"]


def _fit_trt_engine(rows: list[dict[str, Any]]) -> tuple[tuple[float, int], tuple[float, int]]:
    """TensorRT-LLM TRT engine flow, TRAINING rows only, each term from the rows that print
    it (decided 2026-11-30 before any held-out error was looked at):
      base: total - available - engine - execution context - runtime buffers - decoder, on
            rows that print all six (what the executor's counters do not see);
      per slot x vocabulary entry: (runtime buffers + decoder) / (max_batch_size x padded
            vocabulary) on rows that print both and whose model is in the catalog
            (max_batch_size: the row's, else the line's default, trtllm-build's 2048).
    Returns ((base GiB, n), (bytes per slot x vocabulary entry, n))."""
    base: list[float] = []
    per_entry: list[float] = []
    for r in rows:
        lg = r["logged"]
        if r["split"] != "train" or r["engine"] != "trtllm" or version_line(r) != "trt":
            continue
        buffers = printed_batch_buffers(r)
        if buffers is None:
            continue
        need = ("total_memory_gib", "available_memory_gib", "engine_mib", "execution_context_mib")
        if all(lg.get(k) is not None for k in need):
            used = (
                lg["total_memory_gib"]
                - lg["available_memory_gib"]
                - (lg["engine_mib"] + lg["execution_context_mib"]) / 1024
            )
            base.append(used - sum(buffers))
        found = _spec(r)
        if found is not None:
            # the GPU does not enter: these buffers are sized by the engine's limits alone
            seqs = r.get("max_num_seqs") or TRT_BUILD_DEFAULT_BATCH
            slots = seqs * padded_vocab(found[0].vocab_size, r.get("tensor_parallel_size") or 1)
            per_entry.append(sum(buffers) * GiB / slots)
    return (
        (statistics.median(base) if base else float("nan"), len(base)),
        (statistics.median(per_entry) if per_entry else float("nan"), len(per_entry)),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--fit", action="store_true")
    ap.add_argument("--why", action="store_true", help="list the rows not evaluated and why")
    args = ap.parse_args(argv)
    if args.why:
        records = load_records()
        skipped = [(rec, why) for rec in records if (why := why_not(rec))]
        print(f"{len(skipped)} of {len(records)} rows not evaluated:")
        for rec, why in skipped:
            head = f"{rec['id']} ({rec['split']}, {rec['engine']} {rec['engine_version']})"
            print(f"- {head}: {'; '.join(why)}")
        ruled = [
            rec for rec in records if not str(line_choice(rec)[1]).startswith("engine_version")
        ]
        print(f"\nRelease line of the {len(ruled)} rows not placed by their engine_version:")
        for rec in ruled:
            line, rule = line_choice(rec)
            state = "not evaluated" if why_not(rec) else "evaluated"
            print(f"- {rec['id']} ({rec['split']}, {state}): {rec['engine']} {line} <- {rule}")
        return 0
    if args.fit:
        print(json.dumps(fit(load_records()), indent=2))
        return 0
    rows = evaluate()
    if args.json:
        print(
            json.dumps(
                {
                    "rows": [asdict(r) for r in rows],
                    "budget": summarize(rows),
                    "engine_only": summarize(rows, "engine_only_err"),
                    "tokens": summarize(rows, "tokens_err"),
                },
                indent=2,
            )
        )
        return 0
    out = [
        "| id | split | line | GPU | TP | PP | logged GiB | kvplan GiB | err | engine-only err"
        " | tokens err | page |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        eo = "" if r.engine_only_err is None else f"{r.engine_only_err:+.1%}"
        te = "" if r.tokens_err is None else f"{r.tokens_err:+.1%}"
        page = "" if r.page_ok is None else ("ok" if r.page_ok else "OFF")
        out.append(
            f"| {r.id} | {r.split} | {r.line} | {r.gpu} | {r.tp} | {r.pp} | "
            f"{r.logged_budget_gib:.2f} | {r.budget_gib:.2f} | {r.budget_err:+.1%} | {eo} | {te}"
            f" | {page} |"
        )
    out.append("")
    out += _fmt_summary("KV budget, kvplan weights (full prediction)", summarize(rows))
    out.append("")
    out += _fmt_summary(
        "KV budget, engine terms only (log's weights)", summarize(rows, "engine_only_err")
    )
    out.append("")
    out += _fmt_summary("Logged KV tokens (full prediction)", summarize(rows, "tokens_err"))
    pages = [r for r in rows if r.page_ok is not None]
    out.append("")
    out.append(
        f"Page math on the logged budget: {sum(r.page_ok for r in pages)}/{len(pages)} rows "
        "reproduce the logged block count (within the log's rounding and one block)."
    )
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
