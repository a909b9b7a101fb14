"""Fuzzing every surface a user controls (issue 13): config JSON, GPU YAML, policy YAML,
every numeric flag, the MODEL argument and the environment. Each run goes through main()
in-process and must satisfy the oracle in tests/fuzzkit.py: an answer, or one Error line
with exit 2, JSON that parses under --json, no NaN/inf/negative sizes, within the limit.

CI runs a bounded, derandomized profile; KVPLAN_FUZZ=long runs the long one on demand.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from fuzzkit import (
    CONFIG_SEEDS,
    FAMILIES,
    FUZZ,
    check,
    flag_texts,
    invoke,
    numbers,
    seed_config,
    texts,
    values,
)
from hypothesis import given
from hypothesis import strategies as st

from kvplan.core.deployment import Kind, flag_name
from kvplan.core.design_choices import knobs
from kvplan.sources.validate import BOOLEAN_KEYS, CONFIG_BOUNDS, GPU_BOUNDS, LAYER_LIST_KEYS

WORK = Path(tempfile.mkdtemp(prefix="kvplan-fuzz-"))
_names = itertools.count()


def _write(text: str | bytes, suffix: str) -> Path:
    path = WORK / f"case{next(_names)}{suffix}"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


CONFIG_KEYS = sorted(
    {*CONFIG_BOUNDS, *BOOLEAN_KEYS, *LAYER_LIST_KEYS}
    | {
        "model_type",
        "layer_types",
        "torch_dtype",
        "quantization_config",
        "text_config",
        "attn_config",
        "rope_scaling",
        "hybrid_override_pattern",
        "_name_or_path",
        "moe",
    }
)
COMMANDS = [
    ["size", "{f}", "--json"],
    ["size", "{f}"],
    ["fit", "{f}", "--gpu", "h100-sxm", "--json"],
    ["fit", "{f}", "--gpu", "a100-80gb", "--tp", "2"],
    ["roofline", "{f}", "--gpu", "h100-sxm", "--batch", "4", "--ctx", "4096", "--json"],
    ["pick-g", "{f}", "--gpu", "h100-sxm", "--batch", "4", "--ctx", "4096", "--json"],
    ["check", "{f}", "--format", "json"],
]


def _run(command: list[str], path: Path, surface: str) -> Any:
    args = [a.replace("{f}", str(path)) for a in command]
    return check(invoke(args), surface=surface, as_json="--json" in args or "json" in args)


mutations = st.lists(st.tuples(st.sampled_from(CONFIG_KEYS), values), min_size=1, max_size=4)


@FUZZ
@given(
    seed=st.sampled_from(CONFIG_SEEDS),
    family=st.one_of(st.none(), st.sampled_from(FAMILIES)),
    changes=mutations,
    drop=st.lists(st.sampled_from(CONFIG_KEYS), max_size=2),
    command=st.sampled_from(COMMANDS),
    nested=st.sampled_from([None, "text_config", "attn_config", "quantization_config"]),
)
def test_config_json_mutations(seed, family, changes, drop, command, nested):
    cfg = seed_config(seed)
    if family is not None and "dim" not in cfg:
        cfg["model_type"] = family
    target = cfg
    if nested is not None:
        target = cfg.setdefault(nested, {}) if isinstance(cfg.get(nested, {}), dict) else cfg
    for key, value in changes:
        target[key] = value
    for key in drop:
        cfg.pop(key, None)
    text = json.dumps(cfg, allow_nan=True)  # writes NaN / Infinity as a hostile file would
    _run(command, _write(text, ".json"), "config-json")


RAW_TEXT = [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 5000 + "1" + "}" * 5000,
    '{"num_hidden_layers": ' + "9" * 5000 + "}",
    '{"num_hidden_layers": 1e400, "hidden_size": 4096}',
    '{"num_hidden_layers": NaN}',
    '{"num_hidden_layers": -Infinity}',
    '{"num_hidden_layers": 2, "num_hidden_layers": 3}',
    "",
    "null",
    "[]",
    '"text"',
    "\ufeff{}",
    '{"hidden_size": 4096,',
]


@FUZZ
@given(
    text=st.one_of(
        st.integers(0, len(RAW_TEXT) - 1),  # an index: the texts are too large to print
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    ),
    command=st.sampled_from(COMMANDS),
    raw_bytes=st.booleans(),
)
def test_config_raw_text(text, command, raw_bytes):
    text = RAW_TEXT[text] if isinstance(text, int) else text
    data: str | bytes = text.encode("latin-1", "replace") if raw_bytes else text
    _run(command, _write(data, ".json"), "config-text")


@FUZZ
@given(
    seed=st.sampled_from(CONFIG_SEEDS),
    splice=st.sampled_from(["NaN", "Infinity", "-1", "0", '"false"', "1e400", "9" * 44, "[]"]),
    long_digits=st.booleans(),
    position=st.integers(0, 60),
    command=st.sampled_from(COMMANDS),
)
def test_config_value_splices(seed, splice, position, command, long_digits):
    """Seeded mutations of the real file text: replace the n-th number with a hostile token."""
    if long_digits:
        splice = "9" * 4400
    text = (Path(__file__).resolve().parent.parent / "configs" / "models" / seed).read_text()
    import re

    spots = list(re.finditer(r"(?<=: )-?\d+(\.\d+)?(e[+-]?\d+)?", text))
    if spots:
        m = spots[position % len(spots)]
        text = text[: m.start()] + splice + text[m.end() :]
    _run(command, _write(text, ".json"), "config-splice")


# ---- GPU files ---------------------------------------------------------------------------
BASE_GPU: dict[str, Any] = {
    "name": "fuzz-gpu",
    "display_name": "Fuzz GPU",
    "vendor": "nvidia",
    "memory_marketed_gb": 80,
    "memory_bytes": 85899345920,
    "cuda_memory_bytes": 85031714816,
    "memory_basis": "test",
    "memory_bandwidth": 3.35e12,
    "flops": {"bf16": 989e12, "fp16": 989e12, "fp8": 1979e12},
    "interconnect_bandwidth": 9e11,
    "tdp_watts": 700,
    "source": "test",
}
GPU_KEYS = sorted({*GPU_BOUNDS, "flops", "name", "vendor", "aliases", "source"})
GPU_COMMANDS = [
    ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "fuzz-gpu", "--json"],
    ["roofline", "meta-llama/Llama-2-7b-hf", "--gpu", "fuzz-gpu", "--batch", "8", "--json"],
    ["fit", "Qwen/Qwen3-8B", "--gpu", "fuzz-gpu"],
    ["gpus", "--json"],
]


@FUZZ
@given(
    changes=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(GPU_KEYS), values),
            st.tuples(st.just("flops"), st.dictionaries(st.sampled_from(["bf16", "fp8"]), numbers)),
        ),
        min_size=1,
        max_size=3,
    ),
    command=st.sampled_from(GPU_COMMANDS),
    duplicate=st.booleans(),
)
def test_gpu_yaml_mutations(changes, command, duplicate):
    entry = dict(BASE_GPU)
    for key, value in changes:
        entry[key] = value
    text = yaml.safe_dump({"schema_version": 1, "gpus": [entry]}, allow_unicode=True)
    if duplicate:
        text = text.replace("  memory_bytes:", "  memory_bytes: 1\n  memory_bytes:", 1)
    path = _write(text, ".yaml")
    args = [*command, "--gpu-file", str(path)] if command[0] != "gpus" else command
    env = {"KVPLAN_GPU_FILE": str(path)}
    check(invoke(args, env), surface="gpu-yaml", as_json="--json" in args)


# ---- policies -------------------------------------------------------------------------------
POLICY_KEYS = [
    "ctx",
    "batch",
    "tp",
    "pp",
    "kv_memory",
    "gpu_memory_utilization",
    "block_size",
    "kv_dtype",
    "engine",
    "overhead",
    "max_model_len",
    "model",
    "gpu",
]
REQUIREMENT_KEYS = [
    "max_decode_ms",
    "min_tokens_per_s",
    "min_tokens_per_s_per_seq",
    "min_batch",
    "min_ctx",
    "min_headroom",
    "kv_heads",
]


@FUZZ
@given(
    target=st.lists(st.tuples(st.sampled_from(POLICY_KEYS), values), max_size=3),
    requirements=st.lists(st.tuples(st.sampled_from(REQUIREMENT_KEYS), values), max_size=3),
    gpu_changes=st.lists(st.tuples(st.sampled_from(GPU_KEYS), values), max_size=2),
)
def test_policy_yaml_mutations(target, requirements, gpu_changes):
    gpu_entry = dict(BASE_GPU)
    gpu_entry.update(dict(gpu_changes))
    gpu_path = _write(yaml.safe_dump({"schema_version": 1, "gpus": [gpu_entry]}), ".yaml")
    t: dict[str, Any] = {
        "name": "t",
        "model": "meta-llama/Llama-2-7b-hf",
        "gpu": "fuzz-gpu",
        "ctx": 4096,
        "batch": 8,
        "requirements": {"max_decode_ms": 100, "min_batch": 1},
    }
    t.update(dict(target))
    t["requirements"].update(dict(requirements))
    policy = {"version": 1, "gpu_file": gpu_path.name, "targets": [t]}
    path = _write(yaml.safe_dump(policy, allow_unicode=True), ".yaml")
    run = invoke(["check", str(path), "--format", "json"])
    parsed = check(run, surface="policy-yaml", as_json=True)
    if run.code != 2:
        statuses = [
            r["status"]
            for p in parsed["policies"]
            for target_report in p["targets"]
            for r in target_report["results"]
        ]
        # Never a passing check for a requirement that could not be evaluated.
        if "error" in statuses:
            assert run.code != 0, statuses


# ---- flags and arguments ----------------------------------------------------------------------
FLAG_COMMANDS: dict[str, list[str]] = {
    "fit": ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "h100-sxm"],
    "roofline": ["roofline", "Qwen/Qwen3-8B", "--gpu", "h100-sxm"],
    "pick-g": ["pick-g", "--gpu", "a100-80gb", "--ctx", "4096", "--batch", "8"],
    "pick-g-design": [
        "pick-g",
        "--gpu",
        "a100-80gb",
        "--ctx",
        "4096",
        "--batch",
        "8",
        "--layers",
        "40",
        "--heads",
        "40",
        "--head-dim",
        "128",
    ],
    "size": ["size", "meta-llama/Llama-2-7b-hf"],
}
NUMERIC_FLAGS: dict[str, list[str]] = {
    "fit": [
        "--ctx",
        "--batch",
        "--tp",
        "--pp",
        "--kv-memory",
        "--gpu-memory-utilization",
        "--activation-reserve",
        "--overhead",
        "--block-size",
        "--max-num-batched-tokens",
        "--max-num-seqs",
        "--max-model-len",
    ],
    "roofline": ["--ctx", "--batch", "--tp", "--kv-memory", "--gpu-memory-utilization"],
    "pick-g": ["--params", "--tp", "--kv-memory", "--block-size"],
    # every numeric design knob, from its one declaration
    "pick-g-design": [
        flag_name(name) for name, k in knobs().items() if k.kind in (Kind.INT, Kind.COUNT)
    ],
    "size": ["--ctx", "--batch"],
}


@FUZZ
@given(
    command=st.sampled_from(sorted(FLAG_COMMANDS)),
    picks=st.lists(st.tuples(st.integers(0, 20), flag_texts), min_size=1, max_size=3),
    as_json=st.booleans(),
    equals=st.booleans(),
)
def test_numeric_flags(command, picks, as_json, equals):
    args = list(FLAG_COMMANDS[command])
    flags = NUMERIC_FLAGS[command]
    for index, value in picks:
        flag = flags[index % len(flags)]
        args += [f"{flag}={value}"] if equals else [flag, value]
    if as_json:
        args.append("--json")
    check(invoke(args), surface="flags", as_json=as_json)


@FUZZ
@given(
    model=st.one_of(
        st.sampled_from(
            [
                "",
                " ",
                "~nosuchuser/config.json",
                "a" * 5000,
                "/" + "b" * 300 + "/config.json",
                "x\n\x1b[31my.json",
                "/dev/zero",
                "/dev/null",
                "/",
                ".",
                "./nope.json",
                "meta-lama/Llama-2-7b-hf",
                "Qwen/Qwen3-8b",
                "https://huggingface.co/meta-llama/Llama-2-7b-hf/tree/main",
                "hf://",
                "a/b/c/d",
                "\x00",
            ]
        ),
        texts.map(lambda t: "./" + t),
    ),
    command=st.sampled_from(["size", "fit"]),
    as_json=st.booleans(),
)
def test_model_argument(model, command, as_json):
    args = [command, model] + (["--gpu", "h100-sxm"] if command == "fit" else [])
    args += ["--json"] if as_json else []
    run = check(invoke(args), surface="model-arg", as_json=as_json)
    del run


@FUZZ
@given(
    name=st.sampled_from(
        ["HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT", "KVPLAN_HUB_DEADLINE", "COLUMNS"]
    ),
    value=flag_texts,
)
def test_environment(name, value):
    if "\x00" in value:
        value = value.replace("\x00", "")
    run = invoke(["size", "meta-llama/Llama-2-7b-hf", "--json"], env={name: value})
    check(run, surface="environment", as_json=True)
