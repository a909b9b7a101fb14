"""Issue 13, class by class: each hostile input ends in an answer or one Error line (exit 2),
fast. The Hub cases run against tests/hubserver.py (loopback only) in a subprocess, since
huggingface_hub reads its environment at import; the rest run in-process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fuzzkit import check, invoke
from hubserver import FakeRepo, HubServer, fake_sha, safetensors_file
from test_hub import LLAMA2_7B, _env, assert_one_line_error, cli

from kvplan.errors import KvplanError
from kvplan.sources.hub import _elements, summarize_safetensors
from kvplan.sources.resolve import near_miss
from kvplan.sources.validate import load_json, printable, screen_config
from kvplan.units import parse_count, parse_size

ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "model_type": "llama",
    "num_hidden_layers": 2,
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 100,
    "max_position_embeddings": 512,
}


def _error(args: list[str], **env: str) -> str:
    run = invoke(args, env)
    assert run.code == 2, (run.out, run.err)
    lines = run.err.strip().split("\n")
    assert len(lines) == 1 and lines[0].startswith("Error: "), run.err
    return lines[0]


def _config(tmp_path: Path, text: str, name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---- numbers in configs ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ('"num_hidden_layers": NaN', ["key num_hidden_layers is nan"]),
        ('"hidden_size": 1e400', ["key hidden_size is inf"]),
        ('"hidden_size": -Infinity', ["key hidden_size is -inf"]),
        ('"num_hidden_layers": ' + "9" * 5000, ["num_hidden_layers", "5,000 digits"]),
        # 2,048: ten times the catalog's deepest model (Nemotron-H-56B, 118 layers)
        ('"num_hidden_layers": 10000000', ["num_hidden_layers is 10,000,000", "2,048"]),
        ('"hidden_size": 1000000000000', ["hidden_size", "beyond any real value"]),
        ('"use_sliding_window": "false"', ["use_sliding_window must be true or false"]),
        ('"multi_query": "false"', ["multi_query must be true or false", "'false'"]),
        ('"mlp_only_layers": [1, "2"]', ["mlp_only_layers must be a list of layer indices"]),
        ('"num_local_experts": 4, "num_experts_per_tok": 8', ["num_experts_per_tok (8) exceeds"]),
        ('"n_shared_experts": -1', ["n_shared_experts must be non-negative, got -1"]),
        ('"qk_rope_head_dim": -64', ["qk_rope_head_dim must be non-negative"]),
        ('"quantization_config": {"bits": "4"}', ["quantization_config.bits must be an integer"]),
        ('"expansion_ratio": "4"', ["expansion_ratio must be a number, got '4'"]),
        ('"mamba_expand": 0', ["mamba_expand must be positive, got 0"]),
        ('"vocab_size": 100, "vocab_size": 200', ["vocab_size appears twice"]),
    ],
)
def test_config_numbers_are_screened_with_the_key_named(tmp_path, text, needles):
    base = {k: v for k, v in GOOD.items() if f'"{k}"' not in text}
    body = json.dumps(base)[:-1] + ", " + text + "}"
    line = _error(["size", _config(tmp_path, body), "--json"])
    for needle in needles:
        assert needle in line, line


def test_params_json_multiple_of_zero_names_the_key(tmp_path):
    params = {"dim": 64, "n_layers": 2, "n_heads": 4, "multiple_of": 0, "vocab_size": 100}
    line = _error(["size", _config(tmp_path, json.dumps(params), "params.json")])
    assert "key multiple_of must be positive, got 0" in line


def test_ffn_dim_multiplier_nan_is_refused(tmp_path):
    text = '{"dim": 64, "n_layers": 2, "n_heads": 4, "multiple_of": 32, "ffn_dim_multiplier": NaN}'
    assert "ffn_dim_multiplier is nan" in _error(["size", _config(tmp_path, text)])


def test_deep_nesting_is_one_line_fast(tmp_path):
    started = time.perf_counter()
    line = _error(["size", _config(tmp_path, "[" * 200_000 + "]" * 200_000)])
    assert "nested deeper than 64 levels" in line
    assert time.perf_counter() - started < 5


def test_every_bundled_and_reference_config_passes_the_screen():
    """The ranges refuse no published config (bundled catalog + shared reference copies)."""
    files = sorted((ROOT / "configs" / "models").glob("*.json"))
    reference = Path("/work/shared/reference/model-configs")
    if reference.is_dir():
        files += sorted(reference.glob("*.json"))
    assert len(files) > 80
    for path in files:
        screen_config(load_json(path.read_bytes(), origin=str(path)), origin=str(path))


def test_lint_reports_nan_as_an_input_error(tmp_path):
    body = json.dumps(GOOD)[:-1] + ', "sliding_window": NaN}'
    line = _error(["check", _config(tmp_path, body), "--format", "json"])
    assert "key sliding_window is nan" in line


# ---- GPU files ------------------------------------------------------------------------------
GPU = """schema_version: 1
gpus:
  - name: my-gpu
    display_name: My GPU
    vendor: nvidia
    memory_marketed_gb: 80
    memory_bytes: 85899345920
    memory_basis: test
    memory_bandwidth: {bandwidth}
    flops: {{bf16: {flops}}}
    source: test
"""


@pytest.mark.parametrize(
    ("bandwidth", "flops", "needle"),
    [
        (".nan", "1.0e+15", "memory_bandwidth is nan"),
        (".inf", "1.0e+15", "memory_bandwidth is inf"),
        ("-5", "1.0e+15", "memory_bandwidth must be positive"),
        ('"3e12"', "1.0e+15", "memory_bandwidth must be a number"),
        ("3.0e+12", ".nan", "flops.bf16 is nan"),
        ("3.0e+12", "-1", "flops.bf16 must be positive"),
        ("3.0e+12", "1.0e+30", "flops.bf16 is 1e+30, beyond"),
        ("3.0e+12", "1.0e-300", "flops.bf16 is 1e-300, below any real value"),
        ("5", "1.0e+15", "memory_bandwidth is 5, below any real value"),
    ],
)
def test_gpu_figures_are_validated(tmp_path, bandwidth, flops, needle):
    path = tmp_path / "gpus.yaml"
    path.write_text(GPU.format(bandwidth=bandwidth, flops=flops))
    run = invoke(["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "my-gpu", "--gpu-file", str(path)])
    assert run.code == 2 and needle in run.err, run.err
    run = invoke(
        ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "x", "--gpu-file", str(path), "--json"]
    )
    assert run.code == 2 and json.loads(run.out)["error"]["message"]


def test_gpu_file_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "gpus.yaml"
    text = GPU.format(bandwidth="3.0e+12", flops="1.0e+15")
    path.write_text(text.replace("    vendor: nvidia\n", "    vendor: nvidia\n    vendor: amd\n"))
    line = _error(["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "my-gpu", "--gpu-file", str(path)])
    assert "duplicate key 'vendor'" in line


def test_gpu_file_that_is_a_fifo_does_not_hang(tmp_path):
    import os

    fifo = tmp_path / "gpus.yaml"
    os.mkfifo(fifo)
    line = _error(["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "h100-sxm", "--gpu-file", str(fifo)])
    assert "not a regular file" in line


# ---- flags ------------------------------------------------------------------------------------
def test_usage_errors_name_the_option_and_the_value():
    line = _error(["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "h100-sxm", "--tp", "x"])
    assert line.startswith("Error: invalid value 'x' for --tp")
    line = _error(["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "h100-sxm", "--ctx=1.5"])
    assert "invalid value '1.5' for --ctx" in line
    assert _error(["fit", "meta-llama/Llama-2-7b-hf"]) == "Error: missing option --gpu"
    run = invoke(["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "h100-sxm", "--tp", "x", "--json"])
    assert json.loads(run.out)["error"]["setting"] == "tp"


def test_kv_memory_without_a_unit_or_beyond_the_gpu():
    base = ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "h100-sxm"]
    assert "has no unit" in _error([*base, "--kv-memory", "40"])
    line = _error([*base, "--kv-memory", "1000TiB"])
    assert "more than the whole GPU" in line and "h100-sxm" in line
    # the bound is what CUDA reports (85,030,076,416 B = 79.19 GiB), the budget's first row,
    # not the 79.65 GiB on the box: 79.5 GiB cannot be allocated
    line = _error([*base, "--kv-memory", "79.5GiB"])
    assert line.endswith("(79.19 GiB on h100-sxm) (sizes are per GPU)"), line
    assert "more than zero" in _error([*base, "--kv-memory", "0GiB"])
    assert "digits" in _error([*base, "--kv-memory", "9" * 5000 + "GiB"])


def test_pick_g_params_scale_and_floor():
    base = ["pick-g", "--gpu", "a100-80gb", "--ctx", "4096", "--batch", "8"]
    design = [*base, "--layers", "40", "--heads", "40", "--head-dim", "128"]
    line = _error([*design, "--params", "13"])
    assert "below what this geometry needs" in line and "13B" in line
    for text in ("13B", "13e9", "13000000000"):
        out = check(invoke([*design, "--params", text, "--json"]), surface="unit", as_json=True)
        assert all(r["weights_bytes"] > 0 for r in out["rows"])
    started = time.perf_counter()
    assert "absurdly large (limit 1,024)" in _error([*base, "--layers", "1048576"])
    assert time.perf_counter() - started < 2


def test_parse_count_and_size_spellings():
    assert parse_count("13B") == parse_count("13e9") == 13 * 10**9
    assert parse_count("7.5B") == 7_500_000_000
    assert parse_count("350M") == 350_000_000
    for bad in ("nan", "inf", "1e400", "-5", "13X", ""):
        with pytest.raises(KvplanError):
            parse_count(bad)
    with pytest.raises(KvplanError):
        parse_size("9" * 5000 + "GiB")


# ---- paths and text -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("", "MODEL is empty"),
        ("   ", "MODEL is empty"),
        ("/dev/zero", "not a regular file"),
        ("./" + "a" * 5000 + ".json", "no such file"),
        ("~nosuchuser-kvplan/config.json", ""),
    ],
)
def test_odd_model_arguments(model, needle):
    assert needle in _error(["size", model])


def test_fifo_model_does_not_hang(tmp_path):
    import os

    fifo = tmp_path / "config.json"
    os.mkfifo(fifo)
    assert "not a regular file" in _error(["size", str(fifo)])


def test_control_characters_in_names_are_escaped():
    line = _error(["size", "./x\n\x1b[31my.json"])
    assert "\x1b" not in line and "\\n" in line and "\\x1b" in line
    assert printable("a\nb\x1bc") == "a\\nb\\x1bc"


def test_empty_model_under_json_is_one_object():
    run = invoke(["size", "", "--json"])
    assert run.code == 2 and json.loads(run.out)["error"]["message"].startswith("MODEL is empty")


# ---- output ------------------------------------------------------------------------------------
def _subprocess(args: list[str], **kwargs) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "kvplan", *args],
        capture_output=True,
        timeout=60,
        env={**_base_env(), **kwargs.pop("env", {})},
        **kwargs,
    )


def _base_env() -> dict[str, str]:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1"}


def test_ascii_stdout_prints_the_budget_table():
    run = _subprocess(
        ["fit", "meta-llama/Llama-2-7b-hf", "--gpu", "h100-sxm"],
        env={"PYTHONIOENCODING": "ascii"},
    )
    assert run.returncode == 0, run.stderr
    assert b"KV budget" in run.stdout and b"Traceback" not in run.stderr


def test_columns_zero_still_prints():
    run = _subprocess(["size", "meta-llama/Llama-2-7b-hf"], env={"COLUMNS": "0"})
    assert run.returncode == 0 and b"Llama-2-7b" in run.stdout


def test_broken_pipe_is_quiet():
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvplan", "gpus"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_base_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader went away before kvplan wrote
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 141
    assert err == b""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_is_one_error_line():
    with open("/dev/full", "w") as full:
        run = subprocess.run(
            [sys.executable, "-m", "kvplan", "size", "meta-llama/Llama-2-7b-hf"],
            stdout=full,
            stderr=subprocess.PIPE,
            env=_base_env(),
            timeout=60,
        )
    assert run.returncode == 2
    assert run.stderr.decode().strip() == "Error: cannot write the output: No space left on device"


def test_internal_errors_are_one_line_and_debug_shows_the_traceback(monkeypatch):
    import kvplan.core.sizing as sizing

    def boom(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(sizing, "size_report", boom)
    run = invoke(["size", "meta-llama/Llama-2-7b-hf", "--json"])
    assert run.code == 2
    assert json.loads(run.out)["error"]["kind"] == "internal"
    assert run.err.strip().count("\n") == 0 and "ZeroDivisionError" in run.err
    debug = invoke(["size", "meta-llama/Llama-2-7b-hf"], {"KVPLAN_DEBUG": "1"})
    assert "Traceback" in debug.err


# ---- the Hub -----------------------------------------------------------------------------------
class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_endpoint_that_never_answers_fails_by_the_deadline(tmp_path):
    server = SilentServer()
    url = server.url
    try:
        env = _env(url, tmp_path / "hf", KVPLAN_HUB_DEADLINE="2")
        started = time.monotonic()
        run = cli(["size", "kvplan-test/silent"], env)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    line = assert_one_line_error(run, "no answer from the Hub within the 2 s deadline")
    assert f"tried {url}/kvplan-test/silent/resolve/main/config.json" in line
    assert elapsed < 2 + 10  # the deadline plus interpreter start-up, not minutes


def test_refused_connection_fails_by_the_deadline(tmp_path):
    server = HubServer({})
    url = server.url
    server.stop()
    started = time.monotonic()
    run = cli(["size", "kvplan-test/anything"], _env(url, tmp_path / "hf", KVPLAN_HUB_DEADLINE="1"))
    assert time.monotonic() - started < 1 + 10
    assert_one_line_error(run, "kvplan-test/anything")


def test_server_error_fails_by_the_deadline(tmp_path):
    server = HubServer({"kvplan-test/down": FakeRepo(files={}, commit=fake_sha("d"))})
    server.repos["kvplan-test/down"].fail_status = 500
    try:
        started = time.monotonic()
        run = cli(
            ["size", "kvplan-test/down"], _env(server.url, tmp_path / "hf", KVPLAN_HUB_DEADLINE="2")
        )
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert_one_line_error(run, "kvplan-test/down")
    assert elapsed < 2 + 10


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HF_HUB_ETAG_TIMEOUT", "abc"),
        ("HF_HUB_DOWNLOAD_TIMEOUT", "-1"),
        ("HF_HUB_ETAG_TIMEOUT", "1.5"),
        ("KVPLAN_HUB_DEADLINE", "nan"),
        ("KVPLAN_HUB_DEADLINE", "0"),
    ],
)
def test_invalid_timeout_environment_is_one_line(name, value):
    line = _error(["size", "meta-llama/Llama-2-7b-hf"], **{name: value})
    assert name in line and repr(value) in line


def test_negative_safetensors_dimension_keeps_the_estimate(tmp_path):
    header = safetensors_file({"w": ("BF16", [2, 4])}, itemsize={"BF16": 2})
    bad = header.replace(b"[2,4]", b"[-2,4]")
    repo = FakeRepo(
        files={"config.json": LLAMA2_7B, "model.safetensors": bad}, commit=fake_sha("neg")
    )
    server = HubServer({"kvplan-test/negative": repo})
    try:
        run = cli(["size", "kvplan-test/negative", "--json"], _env(server.url, tmp_path / "hf"))
    finally:
        server.stop()
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["weights_exact_bytes"] is None
    assert out["weight_bytes"] == out["weights_estimate_bytes"] > 0


def test_safetensors_figures_are_checked():
    with pytest.raises(ValueError, match="negative dimension"):
        _elements([-2, 4], -8)
    with pytest.raises(ValueError, match="negative or absurd"):
        summarize_safetensors([("BF16", -8, (0, 16))])
    with pytest.raises(ValueError, match="out of order"):
        summarize_safetensors([("BF16", 8, (16, 0))])
    assert summarize_safetensors([("BF16", 8, (0, 16))]).total_bytes == 16


def test_typo_of_a_catalog_name_is_caught_before_the_network(tmp_path):
    server = HubServer({})
    try:
        run = invoke(["size", "meta-lama/Llama-2-7b-hf"], {"HF_ENDPOINT": server.url})
    finally:
        server.stop()
    assert run.code == 2 and "did you mean meta-llama/Llama-2-7b-hf?" in run.err
    assert "--refresh" in run.err
    assert server.requests == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("meta-lama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf"),
        ("Qwen/Qwen3-8BB", "Qwen/Qwen3-8B"),
        ("mistralai/Mistral-7B-v0.3", None),  # another version, a real model
        ("microsoft/phi-1", None),  # phi-2 is in the catalog; phi-1 is real
        ("meta-llama/Llama-2-7b-chat-hf", None),  # a real variant, far from the base
    ],
)
def test_near_miss_is_a_typo_not_a_version(name, expected):
    from kvplan.sources.catalog import load_catalog

    ids = [e.repo_id for e in load_catalog().entries]
    assert near_miss(name, ids) == expected


def test_within_returns_the_fallback_when_work_overruns():
    from kvplan.sources.hub import within

    started = time.monotonic()
    answer = within(0.2, lambda: time.sleep(5) or "late", on_timeout=lambda: "fallback")
    assert answer == "fallback" and time.monotonic() - started < 1
    assert within(1, lambda: "done", on_timeout=lambda: "fallback") == "done"


def test_recursive_glob_through_symlink_loops_ends(tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "config.json").write_text(json.dumps(GOOD))
    (tmp_path / "a" / "config.json").write_text(json.dumps(GOOD))
    (nested / "up").symlink_to(tmp_path)  # two loops: the walk would branch forever
    (tmp_path / "a" / "self").symlink_to(tmp_path / "a")
    started = time.perf_counter()
    run = invoke(["check", str(tmp_path / "**" / "config.json"), "--format", "json"])
    assert time.perf_counter() - started < 5
    out = check(run, surface="unit", as_json=True)
    assert sorted(c["file"] for c in out["configs"]) == sorted(
        [str(tmp_path / "a" / "b" / "config.json"), str(tmp_path / "a" / "config.json")]
    )


def test_the_bounds_table_in_the_docs_matches_the_code():
    from kvplan.sources.validate import BOOLEAN_KEYS, CONFIG_BOUNDS, GPU_BOUNDS

    text = (ROOT / "docs" / "robustness.md").read_text()
    for key in [*CONFIG_BOUNDS, *GPU_BOUNDS, *BOOLEAN_KEYS]:
        assert f"`{key}`" in text, key
    for key, bound in CONFIG_BOUNDS.items():
        row = next(line for line in text.splitlines() if f"`{key}`" in line and "|" in line)
        assert (f"{int(bound.hi):,}" if bound.integer else f"{bound.hi:g}") in row, key


def test_bounds_keep_a_tenfold_margin_over_the_bundled_data():
    import yaml

    from kvplan.sources.validate import BITS, CONFIG_BOUNDS, FLOPS_BOUND, GPU_BOUNDS

    largest: dict[str, float] = {}

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                if key in CONFIG_BOUNDS and isinstance(item, (int, float)):
                    largest[key] = max(largest.get(key, 0), item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for path in (ROOT / "configs" / "models").glob("*.json"):
        walk(json.loads(path.read_text()))
    for key, value in largest.items():
        if CONFIG_BOUNDS[key] is not BITS:
            assert CONFIG_BOUNDS[key].hi >= 10 * value, key
    gpus = yaml.safe_load((ROOT / "configs" / "gpus.yaml").read_text())["gpus"]
    for key, bound in GPU_BOUNDS.items():
        values = [g[key] for g in gpus if g.get(key)]
        assert bound.lo * 10 <= min(values) and 10 * max(values) <= bound.hi, key
    flops = [v for g in gpus for v in g.get("flops", {}).values()]
    assert FLOPS_BOUND.lo * 10 <= min(flops) and 10 * max(flops) <= FLOPS_BOUND.hi


def test_check_paths_that_the_system_refuses_are_one_line():
    line = _error(["check", "a" * 300 + ".json"])
    assert "File name too long" in line or "no such file" in line
    assert _error(["check", "--policy", "~nosuchuser-kvplan/p.yaml"]).endswith("no such file")
    assert "no such file" in _error(["check", "~nosuchuser-kvplan/c.json"])
