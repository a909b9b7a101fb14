"""kvplan's latency model against published measurements, in and out of sample.

    python benchmarks/roofline_vs_measured.py            # per-regime tables + summary
    python benchmarks/roofline_vs_measured.py --rows     # + one line per measured row
    python benchmarks/roofline_vs_measured.py --json     # one JSON object

Reads tests/data/decode_measurements.yaml (34 rows, 2023-2024) and
tests/data/decode_measurements_2026.yaml (numbers copied from their sources, never
adjusted) and predicts each row with kvplan.core.roofline at its batch, context, GPU, TP
and precision, using the default (fitted) profile. ratio = predicted / measured time per
output token (> 1: kvplan is slower than reality, i.e. pessimistic).

Split (project rule, chosen before any fitting): a row is HELD-OUT iff
int(sha256(id), 16) % 3 == 0. benchmarks/fit_latency.py fits constants on the training
rows only; every table here shows both.

What each kind of row is compared with:
  decode_step    ms per token of a decode step (llama-bench tgN, per-token latency): the
                 decode step at (batch, context).
  generate_rate  a static batch timed over the whole generate call: (prefill of `batch`
                 prompts + output_tokens x step at the mean context) / output_tokens. Where
                 the source also states the p50 per-token latency (LMDeploy), that pure
                 step is used instead and compared with the decode step.
  serving_tpot   vLLM/SGLang serving benchmark at fixed concurrency: the serving step (decode
                 at the concurrency + the share of arriving prompts' prefill). Where only
                 throughput is stated, measured = concurrency / throughput and the prediction
                 adds TTFT / output_tokens (each request spends its TTFT not decoding).
  ttft           the prefill of one prompt (its own table).

Mapped explicitly (nothing else is adjusted):
  - Chat / instruct / FP8 re-releases run the base architecture (MODEL_EQUIVALENTS).
  - Models the catalog lacks come from tests/data/latency_models/ (SOURCES.md there).
  - Weight formats without a kvplan dtype get their exact bits per weight over the tensors
    each engine quantizes (FORMATS) as a weights override; the kvplan dtype named there
    decides the GEMM dtype and the dequantization factor.
  - llama.cpp splitting layers over several GPUs (tensor_parallel_size 1, num_gpus > 1) is
    a pipeline without overlap: pp = num_gpus.
  - The row's engine_version string picks the early or later MLA per-layer cost
    (kvplan.core.roofline.early_mla_release), as `--engine-version` does for a deployment.
Rows whose deployment is not stated (TP or dtype null) or whose GPU kvplan does not list
are skipped and listed, never guessed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import statistics
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from math import ceil, log
from pathlib import Path
from typing import Any

import yaml

from kvplan.core.budget import Engine
from kvplan.core.capacity import Deployment, plan
from kvplan.core.geometry import LayerKind, ModelSpec
from kvplan.core.params import param_counts
from kvplan.core.roofline import (
    Efficiency,
    _Terms,
    decode_terms,
    default_efficiency,
    prefill_seconds,
    serving_prefill_seconds,
    step_times,
)
from kvplan.errors import KvplanError
from kvplan.sources.catalog import load_catalog
from kvplan.sources.gpus import load_gpus
from kvplan.sources.parse import parse_config_text
from kvplan.units import GiB

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "decode_measurements.yaml"
DATA_2026 = ROOT / "tests" / "data" / "decode_measurements_2026.yaml"
EXTRA_MODELS = ROOT / "tests" / "data" / "latency_models"

MODEL_EQUIVALENTS = {
    "meta-llama/Llama-2-7b-chat-hf": "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-70b-chat-hf": "meta-llama/Llama-2-70b-hf",
    "amd/Llama-3.1-70B-Instruct-FP8-KV": "meta-llama/Llama-3.1-70B-Instruct",
    "amd/Llama-3.1-405B-Instruct-FP8-KV": "meta-llama/Llama-3.1-405B-Instruct",
    "deepseek-ai/DeepSeek-R1-0528": "deepseek-ai/DeepSeek-V3",
    "deepseek-ai/DeepSeek-R1": "deepseek-ai/DeepSeek-V3",
    "amd/Llama-3.3-70B-Instruct-FP8-KV": "meta-llama/Llama-3.3-70B-Instruct",
    "meta-llama/Llama-2-13b-chat-hf": "meta-llama/Llama-2-13b-hf",
    # Qwen2.5-Coder-0.5B-Instruct has Qwen2.5-0.5B-Instruct's dimensions (hidden 896, 24
    # layers, 14 query / 2 KV heads, MLP 4864, vocab 151936, tied embeddings)
    "Qwen/Qwen2.5-0.5B-Instruct": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "nvidia/DeepSeek-R1-0528-FP4-v2": "deepseek-ai/DeepSeek-V3",
}
CODELLAMA_7B = "codellama/CodeLlama-7b-hf"
CODELLAMA_VOCAB = 32016  # CodeLlama-7b-hf config.json vocab_size

# (engine or "*", record weight dtype) -> (kvplan dtype, bits per quantized weight, scope).
# scope: "all" = every tensor incl. embeddings (GGUF, MLC), "linear+head" = every nn.Linear
# incl. the LM head (gpt-fast), "linear" = decoder linears only (GPTQ; head stays fp16),
# "experts" = routed experts only.
FORMATS: dict[tuple[str, str], tuple[str, float, str]] = {
    ("gpt-fast", "int8"): ("int8", 8.0, "linear+head"),  # per-channel scales: negligible
    ("gpt-fast", "int4"): ("int4", 5.0, "linear+head"),  # 4 bits + bf16 scale & zero per 32
    ("mlc", "int4"): ("int4", 4.5, "all"),  # q4f16_1: 4 bits + fp16 scale per 32
    ("exllama", "int4"): ("int4-g128", 4.15625, "linear"),  # GPTQ default group 128
    ("*", "q8_0"): ("int8", 8.5, "all"),  # 32 int8 + one fp16 scale per block
    ("*", "q4_k_m"): ("int4", 4.9, "all"),  # mixed 4/6-bit k-quant, file size / params
    ("*", "q4_0"): ("int4", 4.5, "all"),  # 32 4-bit weights + one fp16 scale per block
    ("vllm", "int4"): ("int4-g128", 4.15625, "linear"),  # AWQ/GPTQ checkpoints, group 128
    # NVIDIA FP4 (E2M1 + an fp8 scale per 16 = 4.5 bits) runs on FP4 tensor cores, not
    # dequantized; kvplan has no fp4 GEMM path, so its GEMMs are costed at the fp8 peak.
    ("*", "nvfp4"): ("fp8", 4.5, "experts"),
}
FLOAT_BYTES = 2  # the unquantized tensors (fp16/bf16)
KV_BUDGET = GiB
KV_DTYPE_MAP = {"q8_0": "int8"}  # llama.cpp q8_0 cache: 8.5 bits; int8 (8) is the nearest


def held_out(row_id: str) -> bool:
    """The project-wide split: HELD-OUT iff sha256(id) % 3 == 0 (chosen before fitting)."""
    return int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % 3 == 0


def load_records(path: Path | None = None) -> list[dict[str, Any]]:
    paths = [path] if path else [p for p in (DATA, DATA_2026) if p.exists()]
    out: list[dict[str, Any]] = []
    for p in paths:
        out += yaml.safe_load(p.read_text())["records"]
    return out


@functools.cache
def _spec(model: str) -> tuple[ModelSpec, str]:
    catalog = load_catalog()
    entry = catalog.find(model)
    if entry is not None:
        return catalog.load(entry), ""
    base = MODEL_EQUIVALENTS.get(model)
    if base:
        entry = catalog.find(base)
        if entry is not None:
            return catalog.load(entry), f"as {base}"
        model, note = base, f"as {base}"
    else:
        note = ""
    extra = EXTRA_MODELS / (model.replace("/", "__") + ".json")
    if extra.exists():
        spec = parse_config_text(extra.read_bytes(), name=model, origin=str(extra))
        return spec, "; ".join(x for x in (note, "config from tests/data/latency_models") if x)
    if model == CODELLAMA_7B:
        base = "meta-llama/Llama-2-7b-hf"
        spec = catalog.load(catalog.find(base))  # type: ignore[arg-type]
        return (
            spec.model_copy(update={"vocab_size": CODELLAMA_VOCAB, "name": model}),
            f"as {base} with vocab {CODELLAMA_VOCAB}",
        )
    raise LookupError(f"{model}: not in the catalog and no documented equivalent")


def _weights(spec: ModelSpec, engine: str, dtype: str) -> tuple[str, int | None, str]:
    """kvplan weight dtype, exact weight bytes override (or None), a note."""
    fmt = FORMATS.get((engine, dtype)) or FORMATS.get(("*", dtype))
    if fmt is None:
        return dtype, None, ""
    kv_dtype, bits, scope = fmt
    c = param_counts(spec)
    linear = c.attention + c.dense_mlp + c.experts + c.shared_and_router
    table = spec.vocab_size * spec.hidden_size
    head = 0 if spec.tie_embeddings else table
    quantized = {
        "all": c.total,
        "linear+head": linear + head,
        "linear": linear,
        "experts": c.experts,
    }[scope]
    if scope == "experts":  # the rest stays at the checkpoint's fp8 (DeepSeek) bytes
        total = ceil(quantized * bits / 8 + (c.total - quantized - table * 2) + table * 2 * 2)
    else:
        total = ceil(quantized * bits / 8 + (c.total - quantized) * FLOAT_BYTES)
    return kv_dtype, total, f"{bits:g} bits/weight ({scope})"


def _arch(spec: ModelSpec) -> str:
    if any(layer.kind is LayerKind.MLA for layer in spec.layers):
        return "mla"
    return "moe" if spec.moe is not None else "dense"


def _batch_band(b: int) -> str:
    return "batch 1" if b == 1 else ("batch 2-63" if b < 64 else "batch >=64")


def _tp_band(tp: int) -> str:
    return "TP 1" if tp == 1 else ("TP 2-4" if tp <= 4 else "TP 8")


def per_gpu_throughput(record: dict[str, Any]) -> bool:
    """TensorRT-LLM v0.6.1's performance.md states H100 throughput per GPU ('out tok/s/GPU')
    and leaves the A100 table's header bare. The A100 TP>1 figures are read per GPU too: read
    as totals they imply steps 8-20x slower than streaming the weights once (e.g. Falcon-180B
    fp16 TP8 at batch 128: 711 ms per step for 45 GB per GPU at 2 TB/s)."""
    return (
        record.get("engine") == "trtllm"
        and str(record.get("engine_version", "")).startswith("v0.6.1")
        and record.get("gpu") == "a100-80gb"
        and (record.get("tensor_parallel_size") or 1) > 1
        and "aggregate_tokens_per_s" in record["measured"]
    )


def measured_seconds(record: dict[str, Any]) -> tuple[float, str]:
    """Measured seconds per output token, and what they are: 'step' (a pure decode step),
    'generate' (wall time of a static batch / output tokens), 'tpot' (serving TPOT),
    'throughput' (serving concurrency / throughput), 'ttft'."""
    m = record["measured"]
    kind = record.get("kind", "decode_step")
    batch = record.get("batch") or record.get("concurrency") or 1
    gpus = record.get("num_gpus") or 1
    if per_gpu_throughput(record):
        m = {"aggregate_tokens_per_s_per_gpu": m["aggregate_tokens_per_s"]}
    if kind == "ttft":
        return m["ttft_ms"] / 1e3, "ttft"
    if kind == "serving_tpot":
        for key in ("tpot_ms_mean", "tpot_ms_median", "tpot_ms", "itl_ms_median"):
            if m.get(key):
                return m[key] / 1e3, "tpot"
        agg = m.get("aggregate_tokens_per_s") or m["aggregate_tokens_per_s_per_gpu"] * gpus
        return batch / agg, "throughput"
    if m.get("token_latency_p50_s"):
        return m["token_latency_p50_s"], "step"
    if kind == "generate_rate":
        if m.get("e2e_latency_s"):
            return m["e2e_latency_s"] / record["output_tokens"], "generate"
        if m.get("e2e_latency_ms_mean"):
            return m["e2e_latency_ms_mean"] / 1e3 / record["output_tokens"], "generate"
        if m.get("tokens_per_s_per_seq"):
            return 1 / m["tokens_per_s_per_seq"], "generate"
        agg = m.get("aggregate_tokens_per_s") or m["aggregate_tokens_per_s_per_gpu"] * gpus
        return batch / agg, "generate"
    for key in ("tpot_ms", "tpot_ms_median", "tpot_ms_mean"):
        if m.get(key):
            return m[key] / 1e3, "step"
    if m.get("tokens_per_s_per_seq"):
        return 1 / m["tokens_per_s_per_seq"], "step"
    if m.get("ms_per_token"):
        return m["ms_per_token"] / 1e3, "step"
    return batch / m["aggregate_tokens_per_s"], "step"


@dataclass(frozen=True)
class Case:
    """A measured row resolved to kvplan terms (independent of the efficiency profile)."""

    id: str
    record: dict[str, Any] = field(repr=False, compare=False)
    basis: str  # step / generate / tpot / throughput / ttft
    measured_s: float
    batch: int
    ctx: int
    prompt: int
    output: int
    step: _Terms = field(repr=False, compare=False)
    prompt_terms: _Terms | None = field(repr=False, compare=False)
    gpu: Any = field(repr=False, compare=False)
    engine: str
    engine_version: str
    gpu_name: str
    vendor: str
    tp: int
    pp: int
    arch: str
    weights: str
    mapping: str
    heldout: bool

    @property
    def regimes(self) -> tuple[str, ...]:
        return (
            _batch_band(self.batch),
            self.arch,
            _tp_band(self.tp),
            self.vendor,
        )


def _case(record: dict[str, Any]) -> Case:
    tp = record.get("tensor_parallel_size")
    if tp is None or record.get("weight_dtype") is None:
        raise LookupError("deployment not stated (TP or weight dtype null)")
    if record.get("context") is None:
        raise LookupError("context not stated (a trace's lengths, not a fixed pattern)")
    gpus = load_gpus()
    try:
        gpu = gpus.get(record["gpu"])
    except KvplanError as exc:
        raise LookupError(f"GPU {record['gpu']} not in kvplan's catalog") from exc
    spec, mapping = _spec(record["model"])
    engine = record.get("engine") or ""
    weight_dtype, override, note = _weights(spec, engine, record["weight_dtype"])
    kv = record.get("kv_dtype") or default_kv_or(spec, record["weight_dtype"])
    kv_dtype = KV_DTYPE_MAP.get(kv, kv)
    pp = 1
    num_gpus = record.get("num_gpus") or tp
    if tp == 1 and num_gpus > 1:
        pp = num_gpus
        note = "; ".join(x for x in (note, f"layer split over {num_gpus} GPUs as PP") if x)
    if pp > 1 and spec.num_layers % pp:
        raise LookupError(f"{spec.num_layers} layers do not split over {pp} GPUs evenly")
    d = Deployment(
        spec=spec,
        gpu=gpu,
        engine=Engine.NONE,
        tp=tp,
        pp=pp,
        kv_dtype=kv_dtype,
        weight_dtype=weight_dtype,
        kv_memory=KV_BUDGET,
        weights_override=override,
    )
    p = plan(d)
    measured, basis = measured_seconds(record)
    if per_gpu_throughput(record):
        note = "; ".join(x for x in (note, "A100 throughput read per GPU") if x)
    batch = record.get("batch") or record.get("concurrency") or 1
    prompt = record.get("prompt_tokens") or 0
    output = record.get("output_tokens") or 0
    ctx = record["context"]
    need_prompt = basis in ("generate", "tpot", "throughput", "ttft") and prompt > 0
    if basis == "ttft":
        ctx = prompt
    return Case(
        id=record["id"],
        record=record,
        basis=basis,
        measured_s=measured,
        batch=batch,
        ctx=ctx,
        prompt=prompt,
        output=output,
        step=decode_terms(p, ctx),
        prompt_terms=decode_terms(p, prompt) if need_prompt else None,
        gpu=gpu,
        engine=engine,
        engine_version=str(record.get("engine_version") or ""),
        gpu_name=gpu.name,
        vendor=gpu.vendor,
        tp=tp,
        pp=pp,
        arch=_arch(spec),
        weights=record["weight_dtype"],
        mapping="; ".join(x for x in (mapping, note) if x),
        heldout=held_out(record["id"]),
    )


def default_kv_or(spec: ModelSpec, weight_dtype: str) -> str:
    """KV dtype where the row leaves it null: the model's 16-bit dtype (engines' 'auto')."""
    return "bf16" if spec.checkpoint_dtype == "bf16" else "fp16"


def load_cases(
    records: Iterable[dict[str, Any]] | None = None,
) -> tuple[list[Case], list[tuple[str, str]]]:
    """Every row resolved, and the skipped ones with the reason."""
    cases: list[Case] = []
    skipped: list[tuple[str, str]] = []
    for r in records if records is not None else load_records():
        try:
            cases.append(_case(r))
        except (LookupError, KvplanError) as exc:
            skipped.append((r["id"], str(exc)))
    return cases, skipped


EffFor = Callable[[Case], Efficiency]


def profile(case: Case) -> Efficiency:
    """The default profile of the row's GPU (platform and link) under the row's engine and
    its release (engine_version as the source states it: early MLA releases differ)."""
    return default_efficiency(case.gpu, case.engine, case.engine_version or None)


def predict_seconds(c: Case, eff: Efficiency) -> float:
    """kvplan's seconds per output token for what the row measured (see the module doc)."""
    t = c.step
    if c.basis == "ttft":
        return c.pp * prefill_seconds(t, eff, prompts=c.batch)
    step = c.pp * step_times(t, c.batch, eff).step_s
    if c.basis == "step":
        return step
    if c.basis == "generate":
        if c.prompt_terms is None or not c.output:
            return step
        prefill = c.pp * prefill_seconds(c.prompt_terms, eff, prompts=c.batch)
        return (prefill + c.output * step) / c.output
    assert c.prompt_terms is not None
    share = c.pp * serving_prefill_seconds(
        t, c.prompt_terms, concurrency=c.batch, output_tokens=c.output, eff=eff
    )
    tpot = step + share
    if c.basis == "throughput":
        return tpot + c.pp * prefill_seconds(c.prompt_terms, eff) / c.output
    return tpot


@dataclass(frozen=True)
class Row:
    id: str
    engine: str
    gpu: str
    tp: int
    batch: int
    ctx: int
    weights: str
    basis: str
    arch: str
    split: str
    predicted_ms: float
    measured_ms: float
    ratio: float
    mapping: str

    @property
    def single_gpu_batch1(self) -> bool:
        return self.tp == 1 and self.batch == 1


def evaluate(cases: list[Case], eff_for: EffFor = profile) -> list[Row]:
    rows = []
    for c in cases:
        pred = predict_seconds(c, eff_for(c))
        rows.append(
            Row(
                id=c.id,
                engine=c.engine,
                gpu=c.gpu_name,
                tp=c.tp,
                batch=c.batch,
                ctx=c.ctx,
                weights=c.weights,
                basis=c.basis,
                arch=c.arch,
                split="held-out" if c.heldout else "train",
                predicted_ms=pred * 1e3,
                measured_ms=c.measured_s * 1e3,
                ratio=pred / c.measured_s,
                mapping=c.mapping,
            )
        )
    return rows


def compare(
    records: list[dict[str, Any]] | None = None, efficiency: Efficiency | None = None
) -> list[Row]:
    """Every predictable row (decode, generate, serving; not TTFT) at the default profile
    or at one given `efficiency` for all."""
    cases, _ = load_cases(records)
    cases = [c for c in cases if c.basis != "ttft"]
    return evaluate(cases, (lambda c: efficiency) if efficiency else profile)


# ---- statistics ---------------------------------------------------------------------------
def dev(r: Row) -> float:
    return abs(r.ratio - 1)


def stats(rows: list[Row]) -> dict[str, Any]:
    if not rows:
        return {"n": 0, "median_abs_dev": None, "worst_abs_dev": None, "median_ratio": None}
    worst = max(rows, key=dev)
    return {
        "n": len(rows),
        "median_abs_dev": statistics.median(dev(r) for r in rows),
        "worst_abs_dev": dev(worst),
        "worst_id": worst.id,
        "median_ratio": statistics.median(r.ratio for r in rows),
        "mean_abs_log": sum(abs(log(r.ratio)) for r in rows) / len(rows),
    }


REGIME_ORDER = (
    "all",
    "batch 1",
    "batch 2-63",
    "batch >=64",
    "dense",
    "moe",
    "mla",
    "TP 1",
    "TP 2-4",
    "TP 8",
    "nvidia",
    "amd",
    "apple",
)


def regime_of(r: Row) -> tuple[str, ...]:
    vendor = load_gpus().get(r.gpu).vendor
    return ("all", _batch_band(r.batch), r.arch, _tp_band(r.tp), vendor)


def regime_stats(rows: list[Row]) -> dict[str, dict[str, dict[str, Any]]]:
    """regime -> {"train": stats, "held-out": stats}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    tags = {r.id: regime_of(r) for r in rows}
    for regime in REGIME_ORDER:
        members = [r for r in rows if regime in tags[r.id]]
        out[regime] = {
            split: stats([r for r in members if r.split == split])
            for split in ("train", "held-out")
        }
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def regime_table(rows: list[Row]) -> str:
    lines = [
        "| regime | n train | median train | worst train | n held-out | median held-out "
        "| worst held-out | median ratio held-out |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for regime, s in regime_stats(rows).items():
        tr, ho = s["train"], s["held-out"]
        ratio = "-" if ho["median_ratio"] is None else f"{ho['median_ratio']:.2f}"
        lines.append(
            f"| {regime} | {tr['n']} | {_pct(tr['median_abs_dev'])} | "
            f"{_pct(tr['worst_abs_dev'])} | {ho['n']} | {_pct(ho['median_abs_dev'])} | "
            f"{_pct(ho['worst_abs_dev'])} | {ratio} |"
        )
    return "\n".join(lines)


def rows_table(rows: list[Row]) -> str:
    lines = [
        "| id | split | engine | GPU | TP | batch | ctx | weights | basis | measured ms "
        "| predicted ms | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.id} | {r.split} | {r.engine} | {r.gpu} | {r.tp} | {r.batch} | {r.ctx:,} | "
            f"{r.weights} | {r.basis} | {r.measured_ms:.2f} | {r.predicted_ms:.2f} | "
            f"{r.ratio:.2f} |"
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> dict[str, Any]:
    """Kept for callers of the 34-row era: overall statistics and the worst batch-1 row."""
    s = stats(rows)
    b1 = [dev(r) for r in rows if r.single_gpu_batch1]
    return {
        "records": s["n"],
        "median_abs_dev": s["median_abs_dev"],
        "median_ratio": s["median_ratio"],
        "worst_ratio": max(rows, key=dev).ratio,
        "worst_id": s["worst_id"],
        "worst_batch1_single_gpu_dev": max(b1) if b1 else None,
    }


def markdown(rows: list[Row]) -> str:
    return regime_table(rows)


def report(with_rows: bool = False) -> str:
    cases, skipped = load_cases()
    decode = [c for c in cases if c.basis != "ttft"]
    ttft = [c for c in cases if c.basis == "ttft"]
    rows = evaluate(decode)
    parts = [
        f"Decode / serving rows: {len(decode)} predicted ({sum(c.heldout for c in decode)} "
        f"held-out), {len(skipped)} skipped.",
        "",
        regime_table(rows),
    ]
    if ttft:
        trows = evaluate(ttft)
        parts += ["", f"TTFT (prefill) rows: {len(trows)}", "", regime_table(trows)]
    if skipped:
        parts += ["", "Skipped:", *(f"- {i}: {why}" for i, why in skipped)]
    if with_rows:
        parts += ["", rows_table(rows)]
        if ttft:
            parts += ["", rows_table(evaluate(ttft))]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--rows", action="store_true", help="also list every row")
    args = parser.parse_args(argv)
    if args.json:
        cases, skipped = load_cases()
        rows = evaluate(cases)
        json.dump(
            {
                "rows": [asdict(r) for r in rows],
                "regimes": regime_stats([r for r in rows if r.basis != "ttft"]),
                "skipped": skipped,
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        print(report(args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
