"""`kvplan size` end to end: exact JSON numbers, and one-line errors with exit code 2.

The CLI runs in-process through `kvplan.cli.app.main` (the console-script entry point, which
turns a KvplanError into `Error: <message>` and exit 2; invoking the typer app directly would
skip that), with sys.argv patched. A few checks also run `python -m kvplan` in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvplan import __version__
from kvplan.cli.app import main

LLAMA2_13B_PER_TOKEN = 2 * 40 * 40 * 128 * 2  # 819,200 B (fp16/bf16)
LLAMA2_70B_PER_TOKEN = 2 * 80 * 8 * 128 * 2  # 327,680 B


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `kvplan ARGS` in-process through main(); (exit code, stdout, stderr).

    Shadows conftest's subprocess-based `cli` fixture in this module (faster)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["kvplan", *args])
        code: int | str | None = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        captured = capsys.readouterr()
        assert isinstance(code, int) or code is None, code
        return code or 0, captured.out, captured.err

    return run


def size_json(cli, *args: str) -> dict:
    code, out, err = cli("size", *args, "--json")
    assert code == 0, err
    return json.loads(out)


# ---- JSON numbers ----------------------------------------------------------------------
REQUIRED = (
    "model",
    "layers",
    "query_heads",
    "kv_heads",
    "head_dim",
    "attention",
    "params",
    "weight_bytes",
    "kv_dtype",
    "ctx",
    "batch",
    "kv_bytes_per_token",
    "kv_bytes",
    "assumptions",
)


@pytest.mark.parametrize("name", ["meta-llama/Llama-2-13b", "meta-llama/Llama-2-13b-hf"])
def test_llama2_13b_json(cli, name):
    doc = size_json(cli, name, "--ctx", "4096", "--batch", "32")
    assert all(key in doc for key in REQUIRED)
    assert doc["command"] == "size" and doc["schema_version"] == 1
    assert (doc["layers"], doc["query_heads"], doc["kv_heads"], doc["head_dim"]) == (
        40,
        40,
        40,
        128,
    )
    assert doc["attention"] == "mha"
    assert doc["kv_bytes_per_token"] == LLAMA2_13B_PER_TOKEN == 819_200
    assert (doc["ctx"], doc["batch"]) == (4096, 32)
    assert doc["kv_bytes"] == 819_200 * 4096 * 32
    assert doc["params"] == 13_015_864_320
    assert doc["kv_dtype"] in ("fp16", "bf16")  # auto: the checkpoint's 16-bit dtype
    assert isinstance(doc["assumptions"], list)


def test_llama2_70b_json(cli):
    doc = size_json(cli, "meta-llama/Llama-2-70b", "--ctx", "4096", "--batch", "8")
    assert doc["model"] == "meta-llama/Llama-2-70b"
    assert (doc["layers"], doc["query_heads"], doc["kv_heads"], doc["head_dim"]) == (80, 64, 8, 128)
    assert doc["attention"] == "gqa"
    assert doc["kv_bytes_per_token"] == LLAMA2_70B_PER_TOKEN == 327_680
    assert doc["kv_bytes"] == 327_680 * 4096 * 8
    assert doc["params"] == 68_976_648_192
    assert doc["weight_bytes"] == 2 * 68_976_648_192  # bf16
    assert doc["kv_dtype"] == "bf16"
    assert any("vocab_size -1" in a for a in doc["assumptions"])


def test_kv_dtype_flag(cli):
    fp8 = size_json(cli, "meta-llama/Llama-2-70b-hf", "--kv-dtype", "fp8", "--ctx", "1000")
    assert fp8["kv_dtype"] == "fp8"
    assert fp8["kv_bytes_per_token"] == 2 * 80 * 8 * 128 * 1
    int4 = size_json(cli, "meta-llama/Llama-2-70b-hf", "--kv-dtype", "int4", "--ctx", "1000")
    assert int4["kv_bytes_per_token"] == 2 * 80 * 8 * 128 * 9 // 16  # 4.5 bits
    assert int4["kv_bytes"] == 2 * 80 * 8 * 128 * 9 // 16 * 1000


def test_default_ctx_is_the_models_max_positions(cli):
    doc = size_json(cli, "meta-llama/Llama-2-70b-hf")
    assert (doc["ctx"], doc["batch"]) == (4096, 1)


def test_mla_and_hybrid_json(cli):
    v3 = size_json(cli, "deepseek-ai/DeepSeek-V3", "--ctx", "1024")
    assert v3["attention"] == "mla"
    assert v3["kv_bytes_per_token"] == 61 * (512 + 64) * 2
    jamba = size_json(cli, "ai21labs/AI21-Jamba-1.5-Mini", "--ctx", "1024")
    assert jamba["attention"] == "hybrid"
    assert jamba["kv_bytes_per_token"] == 4 * 2 * 8 * 128 * 2


def test_table_output_shows_numbers_and_assumptions(cli):
    code, out, err = cli("size", "openai-community/gpt2", "--ctx", "1024")
    assert code == 0 and err == ""
    assert f"{2 * 12 * 12 * 64 * 2:,}" in out  # 36,864 B per token
    assert "assumed: no KV-head key in config" in out


def test_unknown_family_file_works_and_shows_assumptions(cli, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "model_type": "brand_new_lm",
                "hidden_size": 2048,
                "num_hidden_layers": 24,
                "num_attention_heads": 16,
                "vocab_size": 50000,
            }
        )
    )
    doc = size_json(cli, str(path), "--ctx", "100")
    assert doc["kv_bytes_per_token"] == 2 * 24 * 16 * 128 * 2
    assert "head_dim not in config: hidden/heads = 2048/16 = 128" in doc["assumptions"]
    code, out, _ = cli("size", str(tmp_path), "--ctx", "100")  # a folder with config.json
    assert code == 0 and "assumed: head_dim not in config" in out


# ---- bad input: one line, names the file and the key, exit 2 ------------------------------
GOOD = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
}
BAD_FILES = [
    (
        "malformed",
        '{"hidden_size": 4096,\n',
        "not valid JSON (line 2, column 1: Expecting property name enclosed in double quotes)",
    ),
    (
        "missing",
        {k: v for k, v in GOOD.items() if k != "num_attention_heads"},
        "missing required key num_attention_heads / n_head / n_heads / num_heads",
    ),
    (
        "zero-heads",
        {**GOOD, "num_attention_heads": 0},
        "key num_attention_heads must be positive, got 0",
    ),
    (
        "negative-kv",
        {**GOOD, "num_key_value_heads": -8},
        "key num_key_value_heads must be positive, got -8",
    ),
    (
        "float-heads",
        {**GOOD, "num_attention_heads": 32.5},
        "key num_attention_heads must be an integer, got 32.5",
    ),
    (
        "g-not-dividing",
        {**GOOD, "num_key_value_heads": 5},
        "key num_key_value_heads (5) does not divide num_attention_heads (32): query heads "
        "cannot be grouped evenly",
    ),
    (
        "head-dim",
        {**GOOD, "model_type": "gpt_neox", "num_key_value_heads": 32, "head_dim": 96},
        "key head_dim (96) x num_attention_heads (32) = 3072 does not match hidden_size (4096), "
        "which gpt_neox's attention projections require",
    ),
    (
        "unknown-layer-kind",
        {**GOOD, "num_hidden_layers": 2, "layer_types": ["linear_attention", "full_attention"]},
        "key layer_types has unknown layer type 'linear_attention'",
    ),
    (
        "bad-pattern",
        {
            **GOOD,
            "model_type": "nemotron_h",
            "num_hidden_layers": 3,
            "hybrid_override_pattern": "M*Q",
        },
        "key hybrid_override_pattern has an unknown layer character 'Q' at position 2",
    ),
    (
        "window",
        {
            **GOOD,
            "num_hidden_layers": 2,
            "sliding_window": 131072,
            "layer_types": ["sliding_attention", "full_attention"],
        },
        "key sliding_window (131072) exceeds max_position_embeddings (4096), but layer_types "
        "marks layers as sliding",
    ),
]


@pytest.mark.parametrize(("label", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_config_file(cli, tmp_path, label, content, message):
    path = tmp_path / f"{label}.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    code, out, err = cli("size", str(path), "--json")
    assert code == 2
    assert err == f"Error: {path}: {message}\n"
    # under --json a failure is still one JSON object on stdout
    assert json.loads(out)["error"]["message"] == f"{path}: {message}"
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--ctx", "0"), "--ctx must be a positive integer, got 0"),
        (("--batch", "-1"), "--batch must be a positive integer, got -1"),
        (
            ("--kv-dtype", "fp5"),
            "unknown KV-cache dtype 'fp5' (choose one of fp32, fp16, bf16, fp8, int8, int4, "
            "nvfp4, fp8_ds_mla, nvfp4_ds_mla, int8_per_token_head, fp8_per_token_head)",
        ),
    ],
)
def test_bad_flags(cli, args, message):
    code, out, err = cli("size", "meta-llama/Llama-2-70b", *args)
    assert (code, out, err) == (2, "", f"Error: {message}\n")


def test_missing_file(cli, tmp_path):
    path = tmp_path / "nope.json"
    code, _, err = cli("size", str(path))
    assert (code, err) == (2, f"Error: {path}: no such file or folder\n")


def test_window_that_never_binds_loads(cli, tmp_path):
    # Phi-4-mini style: sliding_window 262144 > max_position_embeddings 131072, no layer_types.
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                **GOOD,
                "model_type": "phi3",
                "num_key_value_heads": 8,
                "sliding_window": 262144,
                "max_position_embeddings": 131072,
            }
        )
    )
    doc = size_json(cli, str(path), "--ctx", "200000")
    assert doc["layer_kinds"] == "32 full"
    assert any("never binds" in a for a in doc["assumptions"])


# ---- other commands ----------------------------------------------------------------------
def test_models_lists_the_catalog(cli):
    code, out, _ = cli("models", "--json")
    assert code == 0
    models = json.loads(out)["models"]
    assert len(models) >= 60
    names = {m["model"] for m in models}
    assert {
        "meta-llama/Llama-2-70b",
        "meta-llama/Llama-2-70b-hf",
        "allenai/OLMo-2-1124-7B",
    } <= names
    code, out, _ = cli("models")
    assert code == 0 and "Bundled catalog" in out


def test_help(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "size" in out and "models" in out
    code, out, _ = cli("size", "--help")
    assert code == 0
    for flag in ("--ctx", "--batch", "--kv-dtype", "--json"):
        assert flag in out


def run_module(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kvplan", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_python_m_kvplan_version():
    proc = run_module("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"kvplan {__version__}"


def test_subprocess_bad_input_has_no_traceback(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**GOOD, "num_key_value_heads": 3}))
    proc = run_module("size", str(path))
    assert proc.returncode == 2
    assert proc.stderr == (
        f"Error: {path}: key num_key_value_heads (3) does not divide num_attention_heads (32): "
        "query heads cannot be grouped evenly\n"
    )
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_size_shows_a_line_per_layer_kind_and_the_fixed_state(cli):
    code, out, err = cli(
        "size", "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "--ctx", "1000", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    # Mamba-2 state per layer: SSM 64 heads x 64 x d_state 128 in float32 (4 B) + conv
    # (64 * 64 + 2 * 8 groups * 128) channels x (kernel 4 - 1) in bf16
    mamba = 64 * 64 * 128 * 4 + (64 * 64 + 2 * 8 * 128) * 3 * 2
    per_token = 6 * 2 * 2 * 128 * 2  # 6 attention blocks, G 2, d_head 128, bf16
    assert doc["fixed_state_bytes_per_sequence"] == 23 * mamba == 49_082_368
    assert doc["kv_bytes_per_sequence"] == per_token * 1000 + 23 * mamba
    kinds = {row["kind"]: row for row in doc["layers_by_kind"]}
    assert set(kinds) == {"mamba2", "moe_only", "full"}
    assert (kinds["mamba2"]["layers"], kinds["mamba2"]["state_bytes_per_sequence"]) == (23, mamba)
    assert (kinds["moe_only"]["layers"], kinds["moe_only"]["bytes_per_token"]) == (23, 0)
    full = kinds["full"]
    assert (full["layers"], full["kv_heads"], full["bytes_per_token"]) == (6, 2, 2 * 2 * 128 * 2)
    code, text, _ = cli("size", "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "--ctx", "1000")
    assert code == 0
    assert "23 mamba2 layers: nothing per token; fixed state 2,134,016 B/sequence each" in text
    assert "6 full layers × 2 · G 2 · d_head 128 · 2 B = 6,144 B/token" in text


@pytest.mark.parametrize(
    ("flag", "setting"), [("--kv-dtype", "kv_dtype"), ("--weight-dtype", "weight_dtype")]
)
def test_unknown_dtype_json_error_names_the_setting(cli, flag, setting):
    """Like fit, size's --json error object names the setting a bad dtype was given for."""
    code, out, _ = cli("size", "meta-llama/Llama-2-7b-hf", flag, "bogus", "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert (error["kind"], error["setting"]) == ("input", setting)
    assert "'bogus'" in error["message"]
