"""Developer-only: extract serving-benchmark records from GPUStack's "performance lab" pages.

Usage: python scripts/extract_gpustack_serving.py GIT_DIR > records.yaml

GIT_DIR is a (bare) clone of github.com/gpustack/gpustack. The script reads the Markdown
pages under docs/performance-lab at HEAD, finds every `vllm bench serve` result block
("============ Serving Benchmark Result ============"), pairs it with the serving command
printed just before it, and emits one record per block in the schema of
tests/data/serving_benchmarks.yaml. It is how the gpustack-* records there were made; the
numbers are copied as printed. A block is dropped (and listed on stderr) when:
  * the page has no "Benchmark Dataset" section (guidellm pages print a different block),
  * the command names another model than the page, or the section heading names an engine
    the command does not run,
  * its mean input length does not match the labelled dataset (random: 5 %; ShareGPT:
    150-400 tokens),
  * the same block is printed for different settings (a copy-paste in the source: both go).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import yaml

PAGES = "docs/performance-lab"
METRICS = {
    "Successful requests": "successful_requests",
    "Maximum request concurrency": "max_concurrency",
    "Benchmark duration (s)": "duration_s",
    "Total input tokens": "total_input_tokens",
    "Total generated tokens": "total_output_tokens",
    "Request throughput (req/s)": "request_throughput_rps",
    "Output token throughput (tok/s)": "output_tokens_per_s",
    "Peak output token throughput (tok/s)": "peak_output_tokens_per_s",
    "Peak concurrent requests": "peak_concurrent_requests",
    "Total Token throughput (tok/s)": "total_tokens_per_s",
    "Total token throughput (tok/s)": "total_tokens_per_s",
    "Mean TTFT (ms)": "ttft_mean_ms",
    "Median TTFT (ms)": "ttft_median_ms",
    "P99 TTFT (ms)": "ttft_p99_ms",
    "Mean TPOT (ms)": "tpot_mean_ms",
    "Median TPOT (ms)": "tpot_median_ms",
    "P99 TPOT (ms)": "tpot_p99_ms",
    "Mean ITL (ms)": "itl_mean_ms",
    "Median ITL (ms)": "itl_median_ms",
    "P99 ITL (ms)": "itl_p99_ms",
}
MEASURED_ORDER = [
    "request_throughput_rps",
    "output_tokens_per_s",
    "total_tokens_per_s",
    "peak_output_tokens_per_s",
    "peak_concurrent_requests",
    "ttft_mean_ms",
    "ttft_median_ms",
    "ttft_p99_ms",
    "tpot_mean_ms",
    "tpot_median_ms",
    "tpot_p99_ms",
    "itl_mean_ms",
    "itl_median_ms",
    "itl_p99_ms",
    "duration_s",
    "total_input_tokens",
    "total_output_tokens",
    "successful_requests",
]
INTEGER_KEYS = {"total_input_tokens", "total_output_tokens", "successful_requests"}
# "# random 4K input" labels -> the page's random dataset definitions (input, output tokens)
RANDOM_LABELS = {
    "random 32k input": (32000, 100),
    "random 4k input": (4000, 200),
    "random 2k input": (2000, 100),
    "random 128 input": (128, 4),
}
GPU_BY_FILE = {
    "h100": "H100 SXM 80GB",
    "h200": "H200 SXM 141GB",
    "a100": "A100 SXM 80GB",
    "910b": "Ascend 910B",
}
# pages whose commands name a local path or a bare model name
PAGE_MODEL = {
    "deepseek-r1": "deepseek-ai/DeepSeek-R1-0528",
    "deepseek-v3.2": "deepseek-ai/DeepSeek-V3.2",
    "glm-4.5-air": "zai-org/GLM-4.5-Air",
}
ENGINE_NAME = {
    "vllm": "vLLM",
    "vllm-ascend": "vLLM-Ascend",
    "sglang": "SGLang",
    "trtllm": "TensorRT-LLM",
    "mindie": "MindIE",
}
RESULT_BANNER = "Serving Benchmark Result"
SERVE_RE = re.compile(r"(vllm serve|sglang\.launch_server|trtllm-serve|mindie serve)")


def split_of(row_id: str) -> str:
    """The project-wide split rule: held-out iff sha256(id) % 3 == 0."""
    return "heldout" if int(hashlib.sha256(row_id.encode()).hexdigest(), 16) % 3 == 0 else "train"


def git(repo: str, *args: str) -> str:
    return subprocess.check_output(["git", "-C", repo, *args], text=True)


@dataclass
class Block:
    """One printed result block and the context the page gives it."""

    path: str
    line: int
    heading: str
    serving: str
    label: str | None
    metrics: dict[str, float] = field(default_factory=dict)


def section(text: str, name: str) -> str | None:
    found = re.search(r"### " + name + r"\n(.*?)\n##", text, re.S)
    return found.group(1).strip() if found else None


def parse_results(body: list[str]) -> list[tuple[str | None, dict[str, float]]]:
    """Split one code block into (label, metrics) results.

    A "# label" comment names the next result; "Maximum request concurrency" may be printed
    just above the banner, so it is carried into the result that follows.
    """
    results: list[tuple[str | None, dict[str, float]]] = []
    label: str | None = None
    pending: dict[str, float] = {}
    current: dict[str, float] | None = None
    for raw in body:
        line = raw.strip()
        if line.startswith("#") and not line.startswith("##"):
            label = line.lstrip("# ").strip()
            current = None
            continue
        if RESULT_BANNER in line:
            current = dict(pending)
            pending = {}
            results.append((label, current))
            label = None
            continue
        found = re.match(r"([A-Za-z0-9 ()/.]+?):\s+(\S+)", line)
        if not found or found.group(1).strip() not in METRICS:
            continue
        key = METRICS[found.group(1).strip()]
        try:
            value = float(found.group(2))
        except ValueError:
            continue
        if current is None or (key == "max_concurrency" and len(current) > 3):
            current = None
            pending[key] = value
        else:
            current[key] = value
    return results


def page_blocks(repo: str, path: str) -> tuple[dict[str, str | None], list[Block]]:
    text = git(repo, "show", f"HEAD:{path}")
    info = {
        "hardware": section(text, "Hardware"),
        "versions": section(text, "Engine Version"),
        "dataset": section(text, "Benchmark Dataset"),
    }
    lines = text.split("\n")
    blocks: list[Block] = []
    serving = ""
    heading = ""
    info_line = ""  # the last '??? info "..."' admonition title
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.strip("# ").strip()
        if line.strip().startswith(("???", "!!!")):
            info_line = line.strip().lower()
        if line.strip().startswith("```"):
            j = i + 1
            body: list[str] = []
            while j < len(lines) and not lines[j].strip().startswith("```"):
                body.append(lines[j])
                j += 1
            joined = "\n".join(body)
            if RESULT_BANNER in joined:
                for label, metrics in parse_results(body):
                    blocks.append(Block(path, i + 1, heading, serving, label, metrics))
            elif "bench serve" not in joined and (
                "serving" in info_line or SERVE_RE.search(joined)
            ):
                # every serving script replaces the last one, whatever engine it starts
                kept = [x.strip() for x in body if x.strip() and not x.strip().startswith("#")]
                serving = " ".join(x.rstrip("\\").strip() for x in kept)
            i = j + 1
            continue
        i += 1
    return info, blocks


def flag(cmd: str, names: list[str]) -> str | None:
    for name in names:
        found = re.search(r"(?:^|\s)" + re.escape(name) + r"(?:[ =])(\S+)", cmd)
        if found:
            return found.group(1)
    return None


def record(
    commit: str, info: dict[str, str | None], block: Block
) -> tuple[dict[str, Any] | None, str]:
    """The record for one block, or None and the reason it was dropped."""
    path, cmd, label = block.path, block.serving, block.label or ""
    page, gpu_file = path.split("/")[2], path.split("/")[3][:-3]
    if info["dataset"] is None:
        return None, "no Benchmark Dataset section (guidellm page)"
    if not cmd:
        return None, "no serving command before the block"
    notes: list[str] = []
    variant = None
    effective = cmd
    if label.startswith("--"):  # a flag sweep: the label's flags replace the command's
        variant = label
        for found in re.finditer(r"(--[\w-]+)(?:[ =]([^-\s]\S*))?", label):
            pattern = r"\s" + re.escape(found.group(1)) + r"(?:[ =][^-\s]\S*)?(?=\s|$)"
            effective = re.sub(pattern, "", effective)
        effective = effective + " " + label
    elif label.lower() in ("fa3", "triton", "flashinfer"):
        variant = label
    if "mindie serve" in cmd:
        engine = "mindie"
        model_match = re.search(r"mindie serve\s+(\S+)", cmd)
        notes.append(
            "MindIE: the page shows a simplified vLLM-like command that GPUStack maps to "
            "MindIE's JSON configuration"
        )
    elif "sglang" in cmd:
        engine = "sglang"
        model_match = re.search(r"--model(?:-path)?[ =](\S+)", cmd)
    elif "trtllm-serve" in cmd:
        engine = "trtllm"
        model_match = re.search(r"trtllm-serve\s+(?:serve\s+)?(\S+)", cmd)
    else:
        engine = "vllm"
        model_match = re.search(r"vllm serve\s+(\S+)", cmd)
    if "910b" in gpu_file and engine == "vllm":
        engine = "vllm-ascend"
    version = re.search(re.escape(ENGINE_NAME[engine]) + r"[: ]+v?(\d\S*)", info["versions"] or "")
    model = model_match.group(1) if model_match else ""
    if page in PAGE_MODEL and ("/" not in model.strip("/") or model.startswith("/workspace")):
        notes.append(f"the command loads a local copy / bare name; the page's model is {model}")
        model = PAGE_MODEL[page]
    key = page.replace("qwen3-235b-a22b", "qwen3-235b").replace("glm-4.x", "glm-4.6")
    low = model.lower()
    if (
        key.split("-")[0] not in low
        or (key.startswith("gpt-oss") and key not in low)
        or (key.startswith("qwen3-") and key.split("-")[1] not in low)
    ):
        return None, f"command model {model} is not the page's ({page})"
    head = block.heading.lower()
    for named, token in (("tensorrt-llm", "trtllm"), ("sglang", "sglang"), ("vllm", "vllm")):
        if named in head and token not in cmd:
            return None, f"heading '{block.heading}' names another engine than the command"
    m = block.metrics
    n = m.get("successful_requests")
    if not n:
        return None, "no request count"
    mean_in = m["total_input_tokens"] / n
    mean_out = m["total_output_tokens"] / n
    input_len: int | None = None
    output_len: int | None = None
    if label.lower() in RANDOM_LABELS:
        dataset = "random"
        input_len, output_len = RANDOM_LABELS[label.lower()]
        if abs(mean_in - input_len) / input_len > 0.05:
            return None, f"mean input {mean_in:.0f} is not the labelled {input_len}"
    else:
        dataset = "sharegpt"
        if not 150 < mean_in < 400:
            return None, f"mean input {mean_in:.0f} is not ShareGPT's"
    concurrency = m.get("max_concurrency")
    if concurrency is None:
        size = re.search(r"batch size (\d+)", label, re.I) or re.match(r"BS=(\d+)", label)
        if size:
            concurrency = float(size.group(1))
            notes.append(f"concurrency {int(concurrency)} from the result label '{label}'")
    tp = flag(effective, ["-tp", "--tp", "--tp-size", "--tensor-parallel-size", "--tp_size"])
    dp = flag(effective, ["-dp", "--dp", "--dp-size", "--data-parallel-size", "--dp_size"])
    ep = flag(effective, ["--ep", "--ep-size", "--ep_size"])
    pp = flag(effective, ["-pp", "--pipeline-parallel-size", "--pp_size", "--pp-size"])
    tpi, dpi, ppi = int(tp or 1), int(dp or 1), int(pp or 1)
    if engine == "sglang" and "--enable-dp-attention" in effective:
        gpus = tpi * ppi
        notes.append("SGLang --enable-dp-attention: DP attention ranks live inside the TP group")
    else:
        gpus = tpi * dpi * ppi
    stated = re.match(r"(\d+)\s*×", info["hardware"] or "")
    page_gpus = int(stated.group(1)) if stated else None
    if page_gpus is None and "single" in (info["hardware"] or "").lower():
        page_gpus = 1
    if page_gpus is not None and gpus > page_gpus:
        notes.append(
            f"CONFLICT: the command needs {gpus} devices, the page's hardware line has {page_gpus}"
        )
    elif page_gpus is not None and gpus < page_gpus:
        notes.append(f"the command uses {gpus} of the page's {page_gpus} devices")
    if not tp and engine == "mindie":
        notes.append("no TP flag in the simplified MindIE command; 1 NPU assumed (not stated)")
    elif not tp:
        notes.append(f"no TP flag in the command; TP=1 is the {engine} default (inferred)")
    if re.search("fp8", low):
        weights = "fp8"
    elif "gpt-oss" in low:
        weights = "mxfp4 (MoE experts), bf16 rest"
    elif re.search("deepseek-(r1|v3)", low):
        weights = "fp8 (block-scaled checkpoint)"
    elif "w8a8" in low:
        weights = "w8a8-int8"
    elif "awq" in low:
        weights = "int4 (AWQ)"
    else:
        weights = "bf16"
        notes.append("weight dtype bf16 inferred from the named checkpoint (not on the page)")
    spec = None
    if "--speculative" in effective:
        spec = " ".join(re.findall(r"--speculative[^\s]*(?:[ =][^-\s][^\s]*)?", effective))
    batched = flag(effective, ["--max-num-batched-tokens", "--max_num_tokens"])
    seqs = flag(effective, ["--max-num-seqs", "--max-running-requests", "--max_batch_size"])
    slug = re.sub(r"[^a-z0-9]+", "-", (label or "sharegpt").lower()).strip("-")[:40]
    row_id = f"gpustack-{page}-{gpu_file}-L{block.line}-{engine}-{slug}"
    measured: dict[str, float | int] = {}
    for name in MEASURED_ORDER:
        if name in m:
            measured[name] = int(m[name]) if name in INTEGER_KEYS else m[name]
    if "prefix" not in effective:
        prefix = "engine default"
    elif "no-enable-prefix" in effective or "disable-radix" in effective:
        prefix = "off"
    else:
        prefix = "on"
    notes += [
        "mean_input_tokens/mean_output_tokens are total tokens / successful requests (derived)",
        "request rate inf = all requests submitted at t=0 (vllm bench serve default); with no "
        "--max-concurrency the engine's own max_num_seqs bounds the batch",
    ]
    rec: dict[str, Any] = {
        "id": row_id,
        "source": f"https://github.com/gpustack/gpustack/blob/{commit}/{path}#L{block.line}",
        "source_section": block.heading,
        "result_label": block.label,
        "engine": engine,
        "engine_version": version.group(1) if version else None,
        "serving_command": cmd,
        "effective_flags_note": None if effective == cmd else effective,
        "variant_flags": variant,
        "model": model,
        "gpu": GPU_BY_FILE.get(gpu_file.split("-")[0]),
        "hardware_as_stated": info["hardware"],
        "num_gpus": gpus,
        "tensor_parallel_size": tpi,
        "pipeline_parallel_size": ppi,
        "data_parallel_size": dpi if dp else None,
        "expert_parallel_size": int(ep) if ep else None,
        "weight_dtype": weights,
        "kv_dtype": flag(effective, ["--kv-cache-dtype", "--kv_cache_dtype"]) or "auto",
        "max_num_seqs": int(seqs) if seqs and seqs.isdigit() else None,
        "max_num_batched_tokens": int(batched) if batched and batched.isdigit() else None,
        "prefix_caching": prefix,
        "speculative_decoding": spec,
        "workload": {
            "dataset": dataset,
            "input_len": input_len,
            "output_len": output_len,
            "num_requests": int(n),
            "mean_input_tokens": round(mean_in, 1),
            "mean_output_tokens": round(mean_out, 1),
        },
        "load": {
            "max_concurrency": int(concurrency) if concurrency else None,
            "request_rate": None if concurrency else "inf",
        },
        "benchmark_tool": "vllm bench serve",
        "measured": measured,
        "split": split_of(row_id),
        "notes": "; ".join(notes),
    }
    return rec, ""


def main(repo: str) -> None:
    commit = git(repo, "rev-parse", "HEAD").strip()
    paths = [
        p
        for p in git(repo, "ls-tree", "-r", "--name-only", commit, PAGES).split()
        if p.endswith(".md") and "/references/" not in p and not p.endswith("overview.md")
    ]
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in paths:
        info, blocks = page_blocks(repo, path)
        for block in blocks:
            rec, why = record(commit, info, block)
            if rec is None:
                print(f"dropped {path}#L{block.line} {block.label}: {why}", file=sys.stderr)
                continue
            base, k = rec["id"], 2
            while rec["id"] in seen:
                rec["id"] = f"{base}-{k}"
                rec["split"] = split_of(rec["id"])
                k += 1
            seen.add(rec["id"])
            records.append(rec)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in records:
        groups[json.dumps(rec["measured"], sort_keys=True)].append(rec)
    drop: set[str] = set()
    for same_block in groups.values():
        if len(same_block) < 2:
            continue
        first = same_block[0]
        settings = ("serving_command", "load", "hardware_as_stated")
        if all(all(r[s] == first[s] for s in settings) for r in same_block):
            drop.update(r["id"] for r in same_block[1:])  # one run shown twice
        else:
            drop.update(r["id"] for r in same_block)  # one block under two settings
    for row_id in sorted(drop):
        print(f"dropped duplicate block {row_id}", file=sys.stderr)
    kept = [r for r in records if r["id"] not in drop]
    yaml.safe_dump({"records": kept}, sys.stdout, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    main(sys.argv[1])
