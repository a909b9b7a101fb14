"""`kvplan check`: policy loading (exact errors, exit 2), evaluation (real numbers, exit 0/1),
config lint (every problem at once), output formats, and the shipped schema / examples.

Most runs go through kvplan.cli.app.main in-process (patched argv) so exit codes and the
`Error:` path are the real ones while the file stays fast; two run a real subprocess.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_cli

from kvplan.units import GiB

EXAMPLE = "configs/examples/kvplan.yaml"
FAILING = "configs/examples/failing.yaml"
LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"

# Llama-3.1-8B-Instruct on one H100 SXM under vLLM defaults, term by term:
H100_CUDA_BYTES = 85_030_076_416  # configs/gpus.yaml cuda_memory_bytes (79.19 GiB)
LLAMA8_WEIGHTS = 8_030_261_248 * 2  # bf16 parameters
# vLLM 0.19 defaults on H100 (>= 70 GiB): 8192 tokens, 1024 seqs; the peak is the larger of
# the MLP pass and the sampler (kvplan.core.budget): max(8192 x 14336 x 7.76,
# 1024 x 128256 x 14.93 + 8192 x 4096 x 2) -> the sampler
LLAMA8_ACTIVATIONS = int(max(8192 * 14336 * 7.76, 1024 * 128256 * 14.93 + 8192 * 4096 * 2))
OVERHEAD_1GPU = GiB // 4
# vLLM's rotary cos/sin table, loaded with the weights: 131,072 positions x 128 x bf16
LLAMA8_ROPE_CACHE = 131_072 * 128 * 2  # 32 MiB
LLAMA8_H100_BUDGET = (
    int(H100_CUDA_BYTES * 0.90)
    - LLAMA8_WEIGHTS
    - LLAMA8_ROPE_CACHE
    - LLAMA8_ACTIVATIONS
    - OVERHEAD_1GPU
)
LLAMA8_PER_TOKEN = 32 * 8 * 128 * 2 * 2  # layers x G x d_head x (K,V) x bf16 = 131072


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def check(monkeypatch, capsys):
    """Run `kvplan check ARGS` in-process from the repo root (or `cwd`)."""
    from kvplan.cli.app import main

    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("KVPLAN_GPU_FILE", raising=False)

    def run(*args: str, cwd: Path = ROOT) -> Run:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["kvplan", "check", *args])
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return Run(code, out, err)

    return run


def write(tmp_path: Path, text: str, name: str = "kvplan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(doc: dict) -> dict[tuple[str, str], dict]:
    return {
        (t["target"], r["requirement"]): r
        for p in doc["policies"]
        for t in p["targets"]
        for r in t["results"]
    }


def target(body: str, name: str = "a", model: str = LLAMA8, gpu: str = "h100-sxm") -> str:
    return f"targets:\n  - name: {name}\n    model: {model}\n    gpu: {gpu}\n{body}"


# ---- passing and failing policies ------------------------------------------------------
def test_example_policy_passes_every_row(check):
    r = check("--policy", EXAMPLE, "--format", "json")
    assert r.code == 0, r.err
    d = r.json
    assert d["schema_version"] == 1 and d["command"] == "check" and d["exit_code"] == 0
    results = rows(d)
    assert all(row["status"] == "pass" and row["passed"] for row in results.values())
    assert d["summary"]["passed"] == len(results) and d["summary"]["failed"] == 0
    assert d["summary_line"] == f"{len(results)} passed, 0 failed"
    row = results[("llama-3.1-8b-h100", "min_batch")]
    assert (row["measured"], row["limit"], row["margin"]) == (54, 48, 6)
    text = (ROOT / EXAMPLE).read_text().splitlines()
    assert text[row["line"] - 1].strip().startswith("min_batch: 48")
    assert {t["target"] for t in d["policies"][0]["targets"]} >= {
        "llama-3.1-8b-l4",
        "llama-3.1-8b-a10g",
        "llama-3.1-70b-h100-tp4-fp8kv",
        "mixtral-8x7b-h100-tp2",
        "qwen2.5-7b-rtx-4090",
    }


def test_min_batch_margin_from_the_budget_terms(check, tmp_path):
    assert LLAMA8_H100_BUDGET == 58_136_628_757
    expected = LLAMA8_H100_BUDGET // (8192 * LLAMA8_PER_TOKEN)
    assert expected == 54
    policy = write(tmp_path, target("    ctx: 8192\n    requirements:\n      min_batch: 60\n"))
    r = check("--policy", str(policy), "--format", "json")
    assert r.code == 1, r.err
    row = rows(r.json)[("a", "min_batch")]
    assert row["status"] == "fail" and row["passed"] is False
    assert (row["measured"], row["limit"], row["margin"]) == (54, 60, -6)
    assert row["margin_pct"] == pytest.approx(-10.0)
    assert row["line"] == 7
    assert row["message"] == (
        "largest batch at 8,192 tokens is 54, at least 60 required: short by 6"
    )
    t = r.json["policies"][0]["targets"][0]
    assert t["kv_budget_bytes"] == LLAMA8_H100_BUDGET and t["kv_bytes_per_token"] == 131072


def test_fits_and_headroom_in_bytes_and_percent(check, tmp_path):
    used = 32 * 8192 * LLAMA8_PER_TOKEN
    policy = write(
        tmp_path,
        target("    ctx: 8192\n    batch: 32\n    requirements:\n      min_headroom: 16GiB\n")
        + target(
            "    ctx: 8192\n    batch: 32\n    requirements:\n      min_headroom: 50%\n", name="b"
        ).removeprefix("targets:\n"),
    )
    r = check("--policy", str(policy), "--format", "json")
    assert r.code == 1
    results = rows(r.json)
    fits = results[("a", "fits")]
    assert (fits["measured"], fits["limit"], fits["margin"]) == (
        used,
        LLAMA8_H100_BUDGET,
        LLAMA8_H100_BUDGET - used,
    )
    gib = results[("a", "min_headroom")]
    assert gib["status"] == "pass"
    assert (gib["measured"], gib["limit"]) == (LLAMA8_H100_BUDGET - used, 16 * GiB)
    pct = results[("b", "min_headroom")]
    want = 100 * (LLAMA8_H100_BUDGET - used) / LLAMA8_H100_BUDGET  # 40.88%
    assert pct["status"] == "fail" and pct["unit"] == "%"
    assert pct["measured"] == pytest.approx(want) and pct["margin"] == pytest.approx(want - 50)


def test_min_ctx_is_block_rounded(check, tmp_path):
    # 8 sequences share the budget; each holds whole 16-token blocks of 131072 B/token.
    per_seq = LLAMA8_H100_BUDGET // 8
    expected = per_seq // (16 * LLAMA8_PER_TOKEN) * 16
    assert expected == 55_440
    policy = write(tmp_path, target("    batch: 8\n    requirements:\n      min_ctx: 60000\n"))
    r = check("--policy", str(policy), "--format", "json")
    assert r.code == 1
    row = rows(r.json)[("a", "min_ctx")]
    assert (row["measured"], row["margin"]) == (expected, expected - 60000)


def test_failing_example_rows_and_summary(check):
    r = check(FAILING, "--format", "json")
    assert r.code == 1, r.err
    results = rows(r.json)
    status = {k: v["status"] for k, v in results.items()}
    assert status == {
        ("llama-3.1-8b-l4-8k", "fits"): "pass",
        ("llama-3.1-8b-l4-too-many", "fits"): "fail",
        ("llama-3.1-8b-l4-too-many", "min_batch"): "fail",
        ("llama-3.1-70b-one-l40s", "min_batch"): "fail",
        ("llama-3.1-8b-h100-mqa-only", "fits"): "pass",
        ("llama-3.1-8b-h100-mqa-only", "min_headroom"): "fail",
        ("llama-3.1-8b-h100-mqa-only", "kv_heads.max"): "fail",
    }
    weights = results[("llama-3.1-70b-one-l40s", "min_batch")]
    assert (weights["measured"], weights["margin"]) == (0, -1)
    # 70.55 B bf16 parameters (131.42 GiB) + the 32 MiB rotary table
    assert weights["message"].startswith("weights alone need 131.45 GiB per GPU")
    kv = results[("llama-3.1-8b-h100-mqa-only", "kv_heads.max")]
    assert (kv["measured"], kv["limit"], kv["margin"]) == (8, 4, -4)
    table = check(FAILING)
    assert table.code == 1
    assert table.out.rstrip().splitlines()[-1] == "2 passed, 5 failed"
    assert (
        "FAIL configs/examples/failing.yaml:19: llama-3.1-8b-l4-too-many min_batch: "
        "largest batch at 8,192 tokens is 4, at least 8 required: short by 4"
    ) in table.out


def test_kv_heads_rules_and_mla_counts_as_one(check, tmp_path):
    policy = write(
        tmp_path,
        target(
            "    requirements:\n      kv_heads: {max: 1, layout: [mla]}\n",
            name="dsv2",
            model="deepseek-ai/DeepSeek-V2-Lite",
            gpu="h100-sxm",
        )
        + target("    requirements:\n      kv_heads: {min: 2, layout: [mha]}\n", name="dsv2-min")
        .removeprefix("targets:\n")
        .replace(LLAMA8, "deepseek-ai/DeepSeek-V2-Lite"),
    )
    r = check("--policy", str(policy), "--format", "json")
    assert r.code == 1
    results = rows(r.json)
    assert results[("dsv2", "kv_heads.max")]["status"] == "pass"
    assert results[("dsv2", "kv_heads.layout")]["measured"] == "mla"
    assert results[("dsv2-min", "kv_heads.min")]["measured"] == 1
    assert results[("dsv2-min", "kv_heads.min")]["status"] == "fail"
    layout = results[("dsv2-min", "kv_heads.layout")]
    assert layout["status"] == "fail"
    assert layout["message"] == (
        "attention layout is mla (MLA: one latent shared by all heads), not one of mha"
    )


def test_defaults_merge_and_keep_their_lines(check, tmp_path):
    policy = write(
        tmp_path,
        (
            "defaults:\n"
            "  gpu: h100-sxm\n"
            "  ctx: 8192\n"
            "  requirements:\n"
            "    min_batch: 100\n"
            "targets:\n"
            "  - name: a\n"
            f"    model: {LLAMA8}\n"
            "  - name: b\n"
            f"    model: {LLAMA8}\n"
            "    requirements:\n"
            "      min_batch: 50\n"
        ),
    )
    r = check("--policy", str(policy), "--format", "json")
    assert r.code == 1
    results = rows(r.json)
    assert results[("a", "min_batch")]["status"] == "fail"
    assert results[("a", "min_batch")]["line"] == 5  # from defaults
    assert results[("b", "min_batch")]["status"] == "pass"
    assert results[("b", "min_batch")]["line"] == 12


def test_model_glob_expands_relative_to_the_policy(check, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("meta-llama__Llama-3.1-8B-Instruct.json", "Qwen__Qwen2.5-7B-Instruct.json"):
        shutil.copy(ROOT / "configs/models" / name, models / name)
    policy = write(tmp_path, target("    ctx: 8192\n    batch: 4\n", model="'models/*.json'"))
    r = check("--policy", str(policy), "--format", "json")
    assert r.code == 0, r.err
    names = [t["target"] for t in r.json["policies"][0]["targets"]]
    assert names == [
        "a [models/Qwen__Qwen2.5-7B-Instruct.json]",
        "a [models/meta-llama__Llama-3.1-8B-Instruct.json]",
    ]


def test_default_policy_in_cwd(check, tmp_path):
    shutil.copy(ROOT / EXAMPLE, tmp_path / "kvplan.yaml")
    assert check(cwd=tmp_path).code == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    r = check(cwd=empty)
    assert r.code == 2
    assert r.err == (
        "Error: nothing to check: no PATHS, no --policy, and no kvplan.yaml in "
        "this folder (see `kvplan check --help`)\n"
    )


# ---- requirements that cannot be evaluated ---------------------------------------------
def test_impossible_tp_is_an_error_never_a_pass(check, tmp_path):
    policy = write(tmp_path, target("    tp: 3\n    ctx: 8192\n    batch: 4\n"))
    r = check("--policy", str(policy))
    assert r.code == 2
    assert r.err == (
        f"Error: {policy}:5: target 'a': deployment: cannot evaluate (fits): --tp 3 "
        "does not divide the model's 32 attention heads (valid TP sizes: 1, 2, 4, "
        "8, 16, 32)\n"
    )
    assert r.out.rstrip().splitlines()[-1] == "0 passed, 0 failed, 1 could not be evaluated"


def test_latency_that_cannot_be_estimated_never_passes(check, tmp_path, monkeypatch):
    import kvplan.core.roofline as roofline
    from kvplan.errors import KvplanError

    def no_estimate(*_args, **_kwargs):
        raise KvplanError("the GPU has no dense FLOP/s figure")

    monkeypatch.setattr(roofline, "estimate_decode", no_estimate)
    policy = write(
        tmp_path,
        target("    ctx: 8192\n    batch: 8\n    requirements:\n      max_decode_ms: 1000\n"),
    )
    r = check("--policy", str(policy), "--format", "json")
    assert r.code == 2
    row = rows(r.json)[("a", "max_decode_ms")]
    assert row["status"] == "error" and row["passed"] is False
    assert row["message"] == "cannot evaluate: the GPU has no dense FLOP/s figure"
    assert r.err == (
        f"Error: {policy}:8: target 'a': max_decode_ms: cannot evaluate: the GPU has no dense "
        "FLOP/s figure\n"
    )


def test_latency_requirements_use_the_roofline(check, tmp_path):
    from kvplan.core import roofline
    from kvplan.core.capacity import plan
    from kvplan.sources.policy import load_policy

    policy = write(
        tmp_path,
        target(
            "    ctx: 8192\n    batch: 8\n    requirements:\n"
            "      max_decode_ms: 1000\n      min_tokens_per_s: 1\n"
            "      min_tokens_per_s_per_seq: 100000\n"
        ),
    )
    est = roofline.estimate_decode(
        plan(load_policy(str(policy)).targets[0].deployment), batch=8, ctx=8192
    )
    r = check("--policy", str(policy), "--format", "json")
    assert r.code == 1
    results = rows(r.json)
    ms = results[("a", "max_decode_ms")]
    assert ms["status"] == "pass" and ms["measured"] == pytest.approx(est.decode_ms)
    assert ms["margin"] == pytest.approx(1000 - est.decode_ms)
    agg = results[("a", "min_tokens_per_s")]
    assert agg["measured"] == pytest.approx(est.decode_tokens_per_s)
    per_seq = results[("a", "min_tokens_per_s_per_seq")]
    assert per_seq["status"] == "fail"
    assert per_seq["measured"] == pytest.approx(est.tokens_per_s_per_seq)


# ---- malformed policies: exit 2, file:line: key: message -------------------------------
BAD_POLICIES = [
    (
        "unknown key",
        target("    tpp: 2\n    ctx: 8192\n    batch: 4\n"),
        "{p}:5: target 'a': unknown key 'tpp' (did you mean 'tp'?)",
    ),
    (
        "unknown top-level key",
        "target:\n  - name: a\n",
        "{p}:1: unknown key 'target' (did you mean 'targets'?) (and 1 more problem)",
    ),
    (
        "unknown requirement",
        target("    ctx: 8\n    requirements:\n      min_bach: 2\n"),
        "{p}:7: target 'a': requirements: unknown key 'min_bach' (did you mean 'min_batch'?)",
    ),
    (
        "string for int",
        target('    tp: "2"\n    ctx: 8192\n    batch: 4\n'),
        "{p}:5: target 'a': tp: must be an integer, got '2'",
    ),
    (
        "bool for int",
        target("    ctx: true\n    batch: 4\n"),
        "{p}:5: target 'a': ctx: must be an integer, got True",
    ),
    (
        "float for int",
        target("    ctx: 8192\n    batch: 4.5\n"),
        "{p}:6: target 'a': batch: must be an integer, got 4.5",
    ),
    (
        "list for mapping",
        target("    requirements: [min_batch]\n"),
        "{p}:5: target 'a': requirements: must be a mapping, got a list",
    ),
    (
        "negative requirement",
        target("    ctx: 8192\n    requirements:\n      min_batch: -3\n"),
        "{p}:7: target 'a': requirements.min_batch: must be greater than 0, got -3",
    ),
    (
        "negative tp",
        target("    tp: -1\n    ctx: 8192\n    batch: 4\n"),
        "{p}:5: target 'a': tp: must be greater than 0, got -1",
    ),
    (
        "fraction above 1",
        target("    gpu_memory_utilization: 1.5\n    ctx: 8\n    batch: 1\n"),
        "{p}:5: target 'a': gpu_memory_utilization: must be at most 1, got 1.5",
    ),
    (
        "engine literal",
        target("    engine: vllmm\n    ctx: 8\n    batch: 1\n"),
        "{p}:5: target 'a': engine: must be one of 'vllm', 'sglang', 'trtllm' or 'none', "
        "got 'vllmm'",
    ),
    (
        "bad headroom",
        target("    ctx: 8\n    batch: 1\n    requirements:\n      min_headroom: 4 gigs\n"),
        "{p}:8: target 'a': requirements.min_headroom: must be a size such as 4GiB or a percent "
        "such as 10%, got '4 gigs'",
    ),
    (
        "bad layout",
        target("    requirements:\n      kv_heads: {layout: [gqa, gqq]}\n"),
        "{p}:6: target 'a': requirements.kv_heads.layout[1]: must be one of 'mha', 'gqa', 'mqa', "
        "'mla' or 'hybrid', got 'gqq'",
    ),
    (
        "missing model",
        "targets:\n  - name: a\n    gpu: h100-sxm\n    ctx: 8192\n    batch: 4\n",
        "{p}:2: target 'a': missing required key 'model'",
    ),
    (
        "missing name",
        f"targets:\n  - model: {LLAMA8}\n    gpu: l4\n    ctx: 8\n    batch: 1\n",
        "{p}:2: targets[0]: missing required key 'name'",
    ),
    ("empty targets", "targets: []\n", "{p}:1: targets: must not be empty, got a list"),
    (
        "duplicate names",
        target("    ctx: 8192\n    batch: 4\n")
        + target("    ctx: 8192\n    batch: 4\n", gpu="l4").removeprefix("targets:\n"),
        "{p}:7: target 'a': duplicate target name 'a' (first at line 2)",
    ),
    (
        "duplicate keys",
        target("    ctx: 8192\n    ctx: 4096\n    batch: 4\n"),
        "{p}:6: duplicate key 'ctx' (first at line 5)",
    ),
    (
        "not a mapping",
        "- name: a\n- name: b\n",
        "{p}:1: a policy must be a mapping with a 'targets' list, got a list",
    ),
    (
        "scalar document",
        "just a string\n",
        "{p}:1: a policy must be a mapping with a 'targets' list, got a string",
    ),
    (
        "empty file",
        "# nothing\n",
        "{p}: the policy file is empty (see `kvplan check --schema` or "
        "configs/examples/kvplan.yaml)",
    ),
    (
        "aliases",
        "base: &base {gpu: l4}\ntargets:\n  - *base\n",
        "{p}:3: YAML aliases (*base) are not allowed in a policy (repeat the value, or put shared "
        "settings under defaults:)",
    ),
    (
        "billion laughs",
        "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
        "{p}:2: YAML aliases (*a) are not allowed in a policy (repeat the value, or put shared "
        "settings under defaults:)",
    ),
    (
        "python tag",
        "targets: !!python/object/apply:os.system [echo hi]\n",
        "{p}:1: YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
    ),
    (
        "deep nesting",
        "targets: " + "[" * 40 + "]" * 40 + "\n",
        "{p}:1: YAML nested deeper than 16 levels",
    ),
    (
        "invalid YAML",
        "targets:\n  - name: a\n    model: [unclosed\n",
        "{p}:4: invalid YAML: expected ',' or ']', but got '<stream end>'",
    ),
    (
        "unknown GPU",
        target("    ctx: 8192\n    batch: 4\n", gpu="h100-sxmm"),
        "{p}:4: target 'a': gpu: unknown GPU 'h100-sxmm' (did you mean h100-sxm, h200, b100?)",
    ),
    (
        "needs ctx",
        target("    requirements:\n      min_batch: 3\n"),
        "{p}:6: target 'a': requirements.min_batch: needs ctx on the target (the operating point "
        "it is measured at)",
    ),
    (
        "checks nothing",
        target("    ctx: 8192\n"),
        "{p}:2: target 'a': checks nothing: give ctx and batch (does the workload fit) or "
        "requirements",
    ),
    (
        "kv min above max",
        target("    requirements:\n      kv_heads: {min: 8, max: 2}\n"),
        "{p}:6: target 'a': requirements.kv_heads.min: min (8) exceeds max (2)",
    ),
    (
        "engine knob mismatch",
        target("    engine: sglang\n    gpu_memory_utilization: 0.8\n    ctx: 8\n    batch: 1\n"),
        "{p}:6: target 'a': gpu_memory_utilization is a vllm setting, but engine is sglang "
        "(leave it out, or serve with engine vllm)",
    ),
    (
        "unsigned exponent",
        target(
            "    engine: sglang\n    mem_fraction_static: 8e-1\n    swa_full_tokens_ratio: 5e1\n"
        ),
        "{p}:6: target 'a': mem_fraction_static: must be a number, got '8e-1' (YAML reads it as "
        "text: a number needs a dot and a signed exponent, 8.0e-1) (and 1 more problem)",
    ),
    (
        "vswa before 0.21",
        target(
            "    engine: trtllm\n    engine_version: '0.19'\n    vswa: true\n    ctx: 8\n"
            "    batch: 1\n",
            model="google/gemma-3-1b-it",
        ),
        "{p}:7: target 'a': vswa: TensorRT-LLM 0.19: per-window KV pools before 0.21 are not "
        "modelled (leave vswa out for one pool (every layer over max_seq_len), or give "
        "engine_version 0.21 or later)",
    ),
    (
        "sglang swa flag before 0.4.9.post3",
        target(
            "    engine: sglang\n    engine_version: 0.4.6\n    disable_hybrid_swa_memory: true\n"
            "    ctx: 8\n    batch: 1\n",
            model="google/gemma-3-1b-it",
        ),
        "{p}:7: target 'a': disable_hybrid_swa_memory with SGLang 0.4.6: that release has no "
        "hybrid sliding-window pool or its flags (from 0.4.9.post3) (leave it out, or pick a "
        "later release with engine_version)",
    ),
    (
        "prefix caching without an engine",
        target("    engine: none\n    enable_prefix_caching: true\n    ctx: 8\n    batch: 1\n"),
        "{p}:6: target 'a': enable_prefix_caching: true with no engine: prefix caching is an "
        "engine setting, but the engine is none (plain arithmetic) (leave it out, or pick an "
        "engine: engine vllm, sglang or trtllm)",
    ),
    (
        "bad kv dtype",
        target("    kv_dtype: fp7\n    ctx: 8\n    batch: 1\n"),
        "{p}:5: target 'a': kv_dtype: unknown KV-cache dtype 'fp7' (choose one of fp32, fp16, "
        "bf16, fp8, int8, int4, nvfp4, fp8_ds_mla, nvfp4_ds_mla, int8_per_token_head, "
        "fp8_per_token_head)",
    ),
    (
        "glob matches nothing",
        target("    ctx: 8\n    batch: 1\n", model="'nothing/*.json'"),
        "{p}:3: target 'a': model: 'nothing/*.json' matches no files (relative to {d})",
    ),
    (
        "missing model file",
        target("    ctx: 8\n    batch: 1\n", model="./missing/config.json"),
        "{p}:3: target 'a': model: ./missing/config.json: no such file or folder",
    ),
    (
        "bad defaults",
        "defaults:\n  tp: 0\ntargets:\n  - name: a\n",
        "{p}:2: defaults: tp: must be greater than 0, got 0 (and 2 more problems)",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [(t, m) for _, t, m in BAD_POLICIES], ids=[i for i, _, _ in BAD_POLICIES]
)
def test_malformed_policy_is_exit_2_with_file_line_key(check, tmp_path, text, message):
    policy = write(tmp_path, text)
    r = check("--policy", str(policy))
    assert r.code == 2
    assert r.out == ""
    assert r.err == "Error: " + message.format(p=policy, d=tmp_path.as_posix()) + "\n"


def test_50mb_policy_fails_fast(check, tmp_path):
    policy = tmp_path / "huge.yaml"
    with policy.open("w") as f:
        chunk = "# " + "x" * 1021 + "\n"
        for _ in range(50 * 1024):
            f.write(chunk)
    start = time.perf_counter()
    r = check("--policy", str(policy))
    assert time.perf_counter() - start < 2
    assert r.code == 2
    assert r.err == (
        f"Error: {policy}: file is 52,428,800 bytes, larger than the "
        "1,000,000-byte limit for a policy\n"
    )


def test_missing_policy_file(check, tmp_path):
    r = check("--policy", str(tmp_path / "nope.yaml"))
    assert (r.code, r.err) == (2, f"Error: {tmp_path / 'nope.yaml'}: no such file\n")


def test_bad_format_flag(check):
    r = check("--format", "xml", FAILING)
    assert (r.code, r.err) == (
        2,
        "Error: --format must be one of table, json, github, markdown, junit, sarif, got 'xml'\n",
    )


# ---- config lint -----------------------------------------------------------------------
BAD_CONFIG = {
    "model_type": "llama",
    "num_hidden_layers": 4,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 5,
    "intermediate_size": 1.5,
    "vocab_size": -3,
    "max_position_embeddings": 0,
    "layer_types": ["full_attention", "bogus", "sliding_attention"],
}


def test_lint_reports_every_problem_at_once(check, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(BAD_CONFIG, indent=2))
    r = check(str(path), "--format", "json")
    assert r.code == 1, r.err
    lint = r.json["configs"][0]
    assert lint["file"] == str(path) and lint["passed"] is False
    found = [(f["severity"], f["key"], f["message"], f["line"]) for f in lint["findings"]]
    assert found == [
        (
            "error",
            "num_key_value_heads",
            "key num_key_value_heads (5) does not divide "
            "num_attention_heads (32): query heads cannot be grouped evenly",
            6,
        ),
        ("error", "intermediate_size", "key intermediate_size must be an integer, got 1.5", 7),
        ("error", "vocab_size", "key vocab_size must be positive, got -3", 8),
        (
            "error",
            "max_position_embeddings",
            "key max_position_embeddings must be positive, got 0",
            9,
        ),
        ("error", "layer_types", "key layer_types has 3 entries for 4 layers", 10),
        ("error", "layer_types", "key layer_types has unknown layer type 'bogus'", 10),
        (
            "error",
            "layer_types",
            "key layer_types has sliding layers but there is no sliding_window",
            10,
        ),
    ]
    assert r.json["summary_line"] == "0 passed, 1 failed"


def test_lint_missing_keys_and_the_parser_pass(check, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {"model_type": "gpt2", "n_layer": 2, "n_embd": 768, "n_head": 12, "head_dim": 32}
        )
    )
    r = check(str(path), "--format", "json")
    assert r.code == 1
    messages = [f["message"] for f in r.json["configs"][0]["findings"]]
    assert messages == [
        "key head_dim (32) x n_head (12) = 384 does not match n_embd (768), "
        "which gpt2's attention projections require"
    ]
    path.write_text(json.dumps({"model_type": "mistral", "hidden_size": 4096}))
    r = check(str(path), "--format", "json")
    messages = [f["message"] for f in r.json["configs"][0]["findings"]]
    assert messages == [
        "missing required key num_hidden_layers / n_layer / n_layers / num_layers",
        "missing required key num_attention_heads / n_head / n_heads / num_heads",
        "missing required key vocab_size / padded_vocab_size / n_vocab",
    ]


def test_lint_published_quirk_is_a_warning_and_strict_fails(check):
    qwen = "configs/models/Qwen__Qwen2.5-32B-Instruct.json"
    r = check(qwen, "--format", "json")
    assert r.code == 0
    assert r.json["configs"][0]["findings"] == [
        {
            "severity": "warning",
            "key": "max_window_layers",
            "line": 13,
            "message": "key max_window_layers (70) exceeds num_hidden_layers (64): harmless while "
            "use_sliding_window is false",
        }
    ]
    assert r.json["summary_line"] == "1 passed, 0 failed, 1 warning"
    strict = check(qwen, "--strict")
    assert strict.code == 1
    assert (
        strict.out.rstrip().splitlines()[-1] == "1 passed, 0 failed, 1 warning (--strict: failing)"
    )


def test_lint_whole_bundled_catalog_passes(check):
    files = sorted((ROOT / "configs/models").glob("*.json"))
    r = check("configs/models/*.json", "--format", "json")  # a quoted glob, expanded by kvplan
    assert r.code == 0, r.out
    assert len(r.json["configs"]) == len(files)
    assert all(c["passed"] for c in r.json["configs"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{not json",
            "not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes)",
        ),
        ("[1, 2]", "a model config must be a JSON object, got a list"),
    ],
)
def test_unreadable_config_is_exit_2(check, tmp_path, text, message):
    path = tmp_path / "config.json"
    path.write_text(text)
    r = check(str(path))
    assert (r.code, r.err) == (2, f"Error: {path}: {message}\n")


def test_missing_config_path_is_exit_2(check, tmp_path):
    r = check(str(tmp_path / "config.json"))
    assert (r.code, r.err) == (2, f"Error: {tmp_path / 'config.json'}: no such file or folder\n")


# ---- formats ---------------------------------------------------------------------------
def test_github_annotations_point_at_policy_and_config_lines(check, tmp_path):
    r = check(FAILING, "--format", "github")
    assert r.code == 1
    lines = r.out.splitlines()
    assert (
        "::error file=configs/examples/failing.yaml,line=19,title=kvplan check%3A "
        "llama-3.1-8b-l4-too-many min_batch::llama-3.1-8b-l4-too-many min_batch: largest "
        "batch at 8,192 tokens is 4, at least 8 required: short by 4 (measured 4, required "
        "≥ 8, margin -4 (-50.0%25))"
    ) in lines
    assert sum(line.startswith("::error ") for line in lines) == 5
    assert lines[-1] == "2 passed, 5 failed"
    config = tmp_path / "config.json"
    config.write_text(json.dumps(BAD_CONFIG, indent=2))
    r = check(str(config), "--format", "github")
    assert (
        f"::error file={config},line=6,title=kvplan lint%3A num_key_value_heads::key "
        "num_key_value_heads (5) does not divide num_attention_heads (32): query heads "
        "cannot be grouped evenly"
    ) in r.out.splitlines()
    qwen = check("configs/models/Qwen__Qwen2.5-3B-Instruct.json", "--format", "github")
    assert qwen.code == 0
    assert any(
        line.startswith(
            "::warning file=configs/models/Qwen__Qwen2.5-3B-Instruct.json,"
            "line=13,title=kvplan lint%3A max_window_layers::"
        )
        for line in qwen.out.splitlines()
    )


def test_github_escaping():
    from kvplan.presentation.check_view import _annotation

    assert (
        _annotation("error", "a,b:c.yaml", 3, "t: x, y", "50% done\nnext")
        == "::error file=a%2Cb%3Ac.yaml,line=3,title=t%3A x%2C y::50%25 done%0Anext"
    )


def test_markdown_summary(check):
    r = check(FAILING, "--format", "markdown")
    assert r.code == 1
    lines = r.out.splitlines()
    assert lines[0] == "### kvplan check ❌ 2 passed, 5 failed"
    assert "| | target | requirement | measured | required | margin |" in lines
    assert "| ❌ | llama-3.1-8b-l4-too-many | min_batch | 4 | ≥ 8 | -4 (-50.0%) |" in lines
    # L4 budget by hand: 22.05 GiB CUDA total x 0.90 - 16.06e9 B of bf16 weights - the
    # 32 MiB rotary table - the sampler peak (256 x 128256 x 14.93 + 2048 x 4096 x 2 B)
    # - 0.25 GiB = 4.13 GiB
    assert (
        "| ✅ | llama-3.1-8b-l4-8k | fits | 2.00 GiB | ≤ 4.13 GiB | +2.13 GiB (+51.6%) |" in lines
    )
    ok = check("--policy", EXAMPLE, "--format", "markdown")
    assert ok.code == 0 and ok.out.startswith("### kvplan check ✅ ")


def test_policy_and_configs_together(check):
    r = check(FAILING, "configs/models/Qwen__Qwen2.5-32B-Instruct.json", "--format", "json")
    assert r.code == 1
    assert r.json["summary"] == {
        "passed": 3,
        "failed": 5,
        "errors": 0,
        "warnings": 1,
        "strict": False,
        "exit_code": 1,
    }


# ---- shipped files ---------------------------------------------------------------------
def test_schema_file_is_in_sync(check):
    from kvplan.sources.policy import policy_schema_text

    shipped = (ROOT / "configs/policy.schema.json").read_text()
    assert shipped == policy_schema_text()
    r = check("--schema")
    assert r.code == 0 and r.out == shipped
    schema = json.loads(shipped)
    target_props = schema["$defs"]["TargetPolicy"]["properties"]
    assert {"name", "model", "gpu", "tp", "engine", "ctx", "batch", "requirements"} <= set(
        target_props
    )
    assert schema["$defs"]["TargetPolicy"]["additionalProperties"] is False


def test_pre_commit_hook_definition():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "kvplan-check")
    assert hook["entry"] == "kvplan check --affected"
    pattern = re.compile(hook["files"])
    for path in (
        "config.json",
        "models/x/config.json",
        "params.json",
        "kvplan.yaml",
        "deploy/kvplan.yml",
        "configs/models/meta-llama__Llama-2-7b.params.json",
    ):
        assert pattern.search(path), path
    for path in ("package.json", "my-config.json", "kvplan.yaml.bak"):
        assert not pattern.search(path), path


def test_docs_list_the_exit_codes():
    text = (ROOT / "docs/check.md").read_text()
    for row in ("| 0 |", "| 1 |", "| 2 |"):
        assert row in text
    assert "kvplan check --format github" in text and "GITHUB_STEP_SUMMARY" in text


# ---- the real entry point --------------------------------------------------------------
def test_subprocess_exit_codes(tmp_path):
    bad = write(tmp_path, "targets:\n  - name: a\n    bogus: 1\n")
    r = run_cli("check", "--policy", str(bad))
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err == f"Error: {bad}:3: target 'a': unknown key 'bogus' (and 2 more problems)\n"
    failing = run_cli("check", FAILING, "--format", "github")
    assert failing.code == 1 and failing.out.splitlines()[-1] == "2 passed, 5 failed"


def test_shipped_example_policy_has_no_target_vllm_would_refuse_to_start() -> None:
    """vLLM refuses to start when one max_model_len-long sequence does not fit the KV
    budget (vllm/v1/core/kv_cache_utils.py, the "To serve at least one request with the
    models's max seq len" check): no target of the example may pass while vLLM would not
    start. max_model_len defaults to the model's max positions."""
    from kvplan.core.capacity import plan
    from kvplan.sources.policy import load_policy

    for path in (EXAMPLE,):
        for t in load_policy(str(ROOT / path)).targets:
            d = t.deployment
            length = d.max_model_len or d.spec.max_position_embeddings
            assert length is not None, t.name
            p = plan(d)
            assert p.weights_fit, t.name
            assert p.seq_bytes(length) <= p.budget.kv_budget, (t.name, length, p.kv_tokens)
    # the L4 target would be refused at the model's own 131,072 positions (16 GiB > 3.15)
    l4 = next(t for t in load_policy(str(ROOT / EXAMPLE)).targets if t.name.endswith("-l4"))
    p = plan(l4.deployment.with_(max_model_len=None))
    assert p.seq_bytes(131072) == 131072 * LLAMA8_PER_TOKEN > p.budget.kv_budget


# ---- CI formats: input errors as annotations, JUnit, SARIF, baseline -------------------------
def test_github_format_annotates_input_errors_at_their_line(check, tmp_path):
    bad = write(
        tmp_path, "version: 1\ntargets:\n  - name: x\n    model: m\n    gpu: h100\n    tp: many\n"
    )
    r = check("--format", "github", str(bad))
    assert r.code == 2
    (line,) = [x for x in r.out.splitlines() if x.startswith("::error")]
    assert line.startswith(f"::error file={bad},line=6,title=kvplan check%3A bad input::")
    assert "Error:" in r.err  # the usual stderr line stays


def test_github_format_annotates_unreadable_configs(check, tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text("{not json")
    r = check("--format", "github", str(cfg))
    assert r.code == 2
    assert any(x.startswith(f"::error file={cfg}") for x in r.out.splitlines()), r.out


def test_junit_report_counts_and_failures(check):
    import xml.etree.ElementTree as ET

    r = check("--format", "junit", FAILING)
    assert r.code == 1
    root = ET.fromstring(r.out)
    doc = check("--format", "json", FAILING).json
    results = [row for p in doc["policies"] for t in p["targets"] for row in t["results"]]
    assert int(root.get("tests")) == len(results)
    assert int(root.get("failures")) == sum(row["status"] == "fail" for row in results)
    failed = {
        (c.get("classname"), c.get("name"))
        for c in root.iter("testcase")
        if c.find("failure") is not None
    }
    assert ("llama-3.1-8b-l4-too-many", "min_batch") in failed
    assert ("llama-3.1-8b-l4-8k", "fits") not in failed


def test_junit_input_error_is_an_errored_case(check, tmp_path):
    import xml.etree.ElementTree as ET

    bad = write(tmp_path, "targets: [1\n")
    r = check("--format", "junit", str(bad))
    assert r.code == 2
    root = ET.fromstring(r.out)
    assert root.get("errors") == "1"


def test_sarif_results_point_at_policy_lines(check):
    r = check("--format", "sarif", FAILING)
    assert r.code == 1
    doc = json.loads(r.out)
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    plain = check("--format", "json", FAILING).json
    bad = [
        row for p in plain["policies"] for t in p["targets"] for row in t["results"]
        if row["status"] != "pass"
    ]  # fmt: skip
    assert len(results) >= len(bad) > 0
    lines = {res["locations"][0]["physicalLocation"]["region"]["startLine"] for res in results}
    assert {row["line"] for row in bad} <= lines


def test_baseline_reports_what_changed(check, tmp_path):
    policy = tmp_path / "kvplan.yaml"
    policy.write_text((ROOT / EXAMPLE).read_text())
    stored = check("--format", "json", str(policy), cwd=tmp_path)
    assert stored.code == 0
    base = tmp_path / "main.json"
    base.write_text(stored.out)
    # more sequences on the H100: headroom shrinks from 22.14 GiB to 14.14 GiB (8 x 1 GiB)
    policy.write_text(policy.read_text().replace("batch: 32\n", "batch: 40\n"))
    r = check("--format", "json", str(policy), "--baseline", str(base), cwd=tmp_path)
    changes = {(c["target"], c["requirement"]): c for c in r.json["baseline"]["changes"]}
    head = changes[("llama-3.1-8b-h100", "min_headroom")]
    assert head["before"] - head["after"] == 8 * GiB
    assert (head["status_before"], head["status_after"], head["kind"]) == (
        "pass",
        "fail",
        "pass->fail",
    )
    assert ("llama-3.1-8b-l4", "min_batch") not in changes  # unchanged rows are not listed
    text = check(str(policy), "--baseline", str(base), cwd=tmp_path)
    assert "llama-3.1-8b-h100 min_headroom: 22.14 GiB -> 14.14 GiB (PASS -> FAIL)" in text.out
    policy.write_text((ROOT / EXAMPLE).read_text())
    same = check(str(policy), "--baseline", str(base), cwd=tmp_path)
    assert f"Against baseline {base}: no change" in same.out


def test_baseline_must_be_a_check_result(check, tmp_path):
    other = tmp_path / "x.json"
    other.write_text('{"command": "fit"}')
    r = check(EXAMPLE, "--baseline", str(other))
    assert r.code == 2 and "not a `kvplan check --format json` result" in r.err


def test_a_state_slot_refusal_measures_sequences_not_a_length(check, tmp_path):
    # Qwen3.5-27B on one H100: its 262,144-token length fits, but max_num_seqs 1024 exceeds
    # the hybrid pool's state pages. The 'starts' row used to print the largest length
    # (264,848 >= 262,144, a passing-looking margin) on a FAIL; it now measures the slots
    # against max_num_seqs and points at the max_num_seqs line when the target has one.
    body = "    ctx: 8192\n    batch: 8\n"
    r = check("--policy", str(write(tmp_path, target(body, model="Qwen/Qwen3.5-27B"))))
    assert r.code == 1
    r = check(
        "--policy",
        str(write(tmp_path, target(body, model="Qwen/Qwen3.5-27B"))),
        "--format",
        "json",
    )
    row = rows(r.json)[("a", "starts")]
    slots = row["measured"]
    assert row["status"] == "fail" and row["unit"] == "sequences"
    assert row["limit"] == 1024 and row["margin"] == slots - 1024 < 0
    assert f"max_num_seqs that starts: {slots:,} or fewer" in row["message"]
    fixed = target(body + f"    max_num_seqs: {slots}\n", model="Qwen/Qwen3.5-27B")
    r = check("--policy", str(write(tmp_path, fixed)), "--format", "json")
    assert r.code == 0, r.json
    assert ("a", "starts") not in rows(r.json)


def test_target_line_names_the_engine_release_line(check, tmp_path):
    # the summary line said "vllm" whatever the release; it names the line the budget uses
    body = '    ctx: 8192\n    batch: 4\n    engine_version: "0.20"\n'
    r = check("--policy", str(write(tmp_path, target(body))))
    assert r.code == 0, r.err
    assert "(TP 1, PP 1, vLLM 0.20, KV bf16)" in r.out
    j = check("--policy", str(write(tmp_path, target(body))), "--format", "json").json
    assert j["policies"][0]["targets"][0]["engine_version"] == "vLLM 0.20"


# ---- on / off settings as policy keys --------------------------------------------------
def test_flag_settings_are_booleans_in_a_policy(check, tmp_path):
    """`vswa` and `disable_hybrid_swa_memory` are flags (--vswa): a policy writes them
    true / false like the switches, never as text. gpt-oss-20b on TensorRT-LLM 1.0.0 with a
    40 GiB pool (tests/test_trt_windows.py): VSWA holds 13 sequences of 131,072 tokens
    (full-window pool 54,561 blocks / 4,096); one pool over every layer holds
    floor(42,949,672,960 / (131,072 x 49,152 B)) = 6."""
    body = (
        "    engine: trtllm\n    engine_version: 1.0.0\n    kv_memory: 40GiB\n"
        "    max_model_len: 131072\n    ctx: 131072\n    vswa: {on}\n"
        "    requirements:\n      min_batch: 13\n"
    )
    gpt = "openai/gpt-oss-20b"
    on = write(tmp_path, target(body.format(on="true"), model=gpt), "on.yaml")
    r = check("--policy", str(on), "--format", "json")
    assert r.code == 0, r.err
    assert rows(r.json)[("a", "min_batch")]["measured"] == 13
    off = write(tmp_path, target(body.format(on="false"), model=gpt), "off.yaml")
    r = check("--policy", str(off), "--format", "json")
    assert r.code == 1, r.err
    assert rows(r.json)[("a", "min_batch")]["measured"] == 6
    sg = write(
        tmp_path,
        target(
            "    engine: sglang\n    disable_hybrid_swa_memory: yes please\n    ctx: 8192\n",
            model=gpt,
        ),
        "sg.yaml",
    )
    r = check("--policy", str(sg))
    assert r.code == 2
    assert "disable_hybrid_swa_memory" in r.err and "boolean" in r.err


def test_check_names_the_release_asked_for(tmp_path) -> None:
    """A target pinned to a release inside a line says which release, as fit does
    ("SGLang 0.5.8 [0.5 line]"), in text and JSON (engine_release / engine_label)."""
    import json

    policy = tmp_path / "p.yaml"
    policy.write_text(
        "targets:\n  - name: sg\n    model: openai/gpt-oss-20b\n    gpu: h100-sxm\n"
        "    engine: sglang\n    engine_version: 0.5.8\n    ctx: 8192\n    batch: 8\n"
    )
    text = run_cli("check", str(policy))
    assert text.code == 0, text.err
    assert "SGLang 0.5.8 [0.5 line]" in text.out
    out = json.loads(run_cli("check", str(policy), "--format", "json").out)
    target = out["policies"][0]["targets"][0]
    assert (target["engine_version"], target["engine_release"], target["engine_label"]) == (
        "SGLang 0.5",
        "0.5.8",
        "SGLang 0.5.8 [0.5 line]",
    )
