"""kvplan's roofline decode latency against published measurements.

    python benchmarks/roofline_vs_measured.py            # markdown table + summary
    python benchmarks/roofline_vs_measured.py --json     # one JSON object
    python benchmarks/roofline_vs_measured.py --ablation # + what each refinement changes

Reads tests/data/decode_measurements.yaml (numbers copied from their sources, never
adjusted) and predicts each record's time per decode step with
`kvplan.core.roofline.estimate_decode` at its batch, context, GPU, TP and precision, using
the default efficiencies. ratio = predicted / measured time per step (> 1: kvplan is slower
than reality, i.e. pessimistic). tests/test_roofline.py imports `compare()` from here.

What is mapped, explicitly (nothing else is adjusted):
  - Chat fine-tunes run the base architecture: Llama-2-{7b,70b}-chat-hf -> Llama-2-{7b,70b}-hf
    (same config.json apart from metadata).
  - CodeLlama-7b-hf, when the catalog lacks it, is Llama-2-7b-hf with its 32,016-token
    vocabulary (its config differs only in vocab_size, rope_theta and max positions).
  - Weight formats without a kvplan dtype are given their exact bits per weight over the
    tensors each engine quantizes (`FORMATS`), as a weights override; the kvplan dtype named
    there decides the GEMM dtype and the dequantization factor.
Capacity is not the question here, so each deployment gets a direct 1 GiB KV budget
(`kv_memory`), which keeps plan() from refusing e.g. 70B int8 on one 80 GB GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass
from math import ceil
from pathlib import Path

import yaml

from kvplan.core.budget import Engine
from kvplan.core.capacity import Deployment, plan
from kvplan.core.geometry import ModelSpec
from kvplan.core.params import param_counts
from kvplan.core.roofline import Efficiency, estimate_decode
from kvplan.sources.catalog import load_catalog
from kvplan.sources.gpus import load_gpus
from kvplan.units import GiB

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "decode_measurements.yaml"

MODEL_EQUIVALENTS = {
    "meta-llama/Llama-2-7b-chat-hf": "meta-llama/Llama-2-7b-hf",
    "meta-llama/Llama-2-70b-chat-hf": "meta-llama/Llama-2-70b-hf",
}
CODELLAMA_7B = "codellama/CodeLlama-7b-hf"
CODELLAMA_VOCAB = 32016  # CodeLlama-7b-hf config.json vocab_size

# (engine or "*", record weight dtype) -> (kvplan dtype, bits per quantized weight, scope).
# scope: "all" = every tensor incl. embeddings (GGUF, MLC), "linear+head" = every nn.Linear
# incl. the LM head (gpt-fast), "linear" = decoder linears only (GPTQ; head stays fp16).
FORMATS: dict[tuple[str, str], tuple[str, float, str]] = {
    ("gpt-fast", "int8"): ("int8", 8.0, "linear+head"),  # per-channel scales: negligible
    ("gpt-fast", "int4"): ("int4", 5.0, "linear+head"),  # 4 bits + bf16 scale & zero per 32
    ("mlc", "int4"): ("int4", 4.5, "all"),  # q4f16_1: 4 bits + fp16 scale per 32
    ("exllama", "int4"): ("int4-g128", 4.15625, "linear"),  # GPTQ default group 128
    ("*", "q8_0"): ("int8", 8.5, "all"),  # 32 int8 + one fp16 scale per block
    ("*", "q4_k_m"): ("int4", 4.9, "all"),  # mixed 4/6-bit k-quant, file size / params
}
FLOAT_BYTES = 2  # the unquantized tensors (fp16/bf16)
KV_BUDGET = GiB


@dataclass(frozen=True)
class Row:
    id: str
    engine: str
    model: str
    gpu: str
    tp: int
    batch: int
    ctx: int
    weights: str
    predicted_ms: float
    measured_ms: float
    ratio: float
    bound: str
    kv_share: float
    mapping: str

    @property
    def single_gpu_batch1(self) -> bool:
        return self.tp == 1 and self.batch == 1


def load_records(path: Path = DATA) -> list[dict]:
    return yaml.safe_load(path.read_text())["records"]


def _spec(model: str) -> tuple[ModelSpec, str]:
    catalog = load_catalog()
    entry = catalog.find(model)
    if entry is not None:
        return catalog.load(entry), ""
    if model in MODEL_EQUIVALENTS:
        base = MODEL_EQUIVALENTS[model]
        return catalog.load(catalog.find(base)), f"as {base}"
    if model == CODELLAMA_7B:
        base = "meta-llama/Llama-2-7b-hf"
        spec = catalog.load(catalog.find(base))
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
    quantized = {"all": c.total, "linear+head": linear + head, "linear": linear}[scope]
    total = ceil(quantized * bits / 8 + (c.total - quantized) * FLOAT_BYTES)
    return kv_dtype, total, f"{bits:g} bits/weight ({scope})"


def measured_seconds(record: dict) -> float:
    m = record["measured"]
    if m.get("tokens_per_s_per_seq"):
        return 1 / m["tokens_per_s_per_seq"]
    if m.get("ms_per_token"):
        return m["ms_per_token"] / 1e3
    return record["batch"] / m["aggregate_tokens_per_s"]


def predict(record: dict, efficiency: Efficiency | None = None) -> Row:
    spec, mapping = _spec(record["model"])
    weight_dtype, override, note = _weights(spec, record["engine"], record["weight_dtype"])
    kv_dtype = {"q8_0": "fp16"}.get(record["kv_dtype"], record["kv_dtype"])
    d = Deployment(
        spec=spec,
        gpu=load_gpus().get(record["gpu"]),
        engine=Engine.NONE,
        tp=record["tensor_parallel_size"],
        kv_dtype=kv_dtype,
        weight_dtype=weight_dtype,
        kv_memory=KV_BUDGET,
        weights_override=override,
    )
    e = estimate_decode(
        plan(d), batch=record["batch"], ctx=record["context"], efficiency=efficiency
    )
    measured = measured_seconds(record)
    predicted = e.decode_ms / 1e3
    return Row(
        id=record["id"],
        engine=record["engine"],
        model=record["model"],
        gpu=record["gpu"],
        tp=record["tensor_parallel_size"],
        batch=record["batch"],
        ctx=record["context"],
        weights=record["weight_dtype"],
        predicted_ms=predicted * 1e3,
        measured_ms=measured * 1e3,
        ratio=predicted / measured,
        bound=e.bound,
        kv_share=e.kv_share,
        mapping="; ".join(x for x in (mapping, note) if x),
    )


def compare(records: list[dict] | None = None, efficiency: Efficiency | None = None) -> list[Row]:
    return [predict(r, efficiency) for r in (records if records is not None else load_records())]


def summary(rows: list[Row]) -> dict[str, float]:
    dev = [abs(r.ratio - 1) for r in rows]
    b1 = [abs(r.ratio - 1) for r in rows if r.single_gpu_batch1]
    worst = max(rows, key=lambda r: abs(r.ratio - 1))
    return {
        "records": len(rows),
        "median_abs_dev": statistics.median(dev),
        "median_ratio": statistics.median(r.ratio for r in rows),
        "worst_ratio": worst.ratio,
        "worst_id": worst.id,  # type: ignore[dict-item]
        "worst_batch1_single_gpu_dev": max(b1),
    }


def markdown(rows: list[Row]) -> str:
    lines = [
        "| id | engine | GPU | TP | batch | ctx | weights | measured ms | predicted ms "
        "| ratio | bound | KV share |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.id} | {r.engine} | {r.gpu} | {r.tp} | {r.batch} | {r.ctx:,} | "
            f"{r.weights} | {r.measured_ms:.2f} | {r.predicted_ms:.2f} | "
            f"{r.ratio:.2f} | {r.bound} | {r.kv_share:.0%} |"
        )
    s = summary(rows)
    lines += [
        "",
        f"{s['records']} records; median |ratio - 1| = {s['median_abs_dev']:.1%} "
        f"(median ratio {s['median_ratio']:.2f}); worst ratio {s['worst_ratio']:.2f} "
        f"({s['worst_id']}); worst batch-1 single-GPU |ratio - 1| = "
        f"{s['worst_batch1_single_gpu_dev']:.1%}.",
    ]
    mapped = [f"- {r.id}: {r.mapping}" for r in rows if r.mapping]
    if mapped:
        lines += ["", "Mappings:", *mapped]
    return "\n".join(lines)


ABLATION = (
    (
        "bandwidth only (no all-reduce latency, no dequantization factor)",
        Efficiency(allreduce_latency_s=0, quantized_stream=1),
    ),
    ("+ all-reduce latency", Efficiency(quantized_stream=1)),
    ("+ dequantization factor (the default model)", Efficiency()),
)


def ablation(records: list[dict] | None = None) -> str:
    """How each refinement of the model moves the summary statistics."""
    lines = [
        "| model | median abs(ratio - 1) | worst batch-1 single-GPU | worst TP |",
        "|---|---|---|---|",
    ]
    for label, eff in ABLATION:
        rows = compare(records, eff)
        s = summary(rows)
        tp = max((abs(r.ratio - 1) for r in rows if r.tp > 1), default=0.0)
        lines.append(
            f"| {label} | {s['median_abs_dev']:.1%} | "
            f"{s['worst_batch1_single_gpu_dev']:.1%} | {tp:.1%} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also show what each refinement of the model changes",
    )
    args = parser.parse_args(argv)
    rows = compare()
    if args.json:
        json.dump(
            {"rows": [asdict(r) for r in rows], "summary": summary(rows)}, sys.stdout, indent=2
        )
        sys.stdout.write("\n")
    else:
        print(markdown(rows))
        if args.ablation:
            print()
            print(ablation())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
