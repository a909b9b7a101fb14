"""MODEL from the Hugging Face Hub, through the real huggingface_hub client, with no internet.

A Hub look-alike (tests/hubserver.py) runs on 127.0.0.1; the CLI runs in a subprocess with
HF_ENDPOINT pointing at it and HF_HOME in tmp_path, because huggingface_hub reads its
environment at import time. The served configs are the real published ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import HUB_NO_BACKOFF
from hubserver import INVALID_TOKEN, FakeRepo, HubServer, fake_sha, safetensors_file

MODELS = Path(__file__).resolve().parent.parent / "configs" / "models"
LLAMA2_7B = (MODELS / "meta-llama__Llama-2-7b-hf.json").read_bytes()
LLAMA2_70B_PARAMS = (MODELS / "meta-llama__Llama-2-70b.params.json").read_bytes()

LLAMA2_7B_KV_PER_TOKEN = 524_288  # 32 layers x 2 x 32 heads x 128 x 2 B
LLAMA2_7B_ESTIMATE = 13_476_831_232  # 6,738,415,616 parameters x 2 B (fp16)
LLAMA2_70B_KV_PER_TOKEN = 327_680  # 80 layers x 2 x 8 KV heads x 128 x 2 B

ITEMSIZE = {"BF16": 2, "F16": 2, "F32": 4, "I32": 4, "U8": 1, "F8_E4M3": 1}
# A checkpoint mixing what quantized models store: bf16, fp8 with an fp32 scale,
# AWQ-style int4 packed into I32 with fp16 scales, mxfp4 blocks in U8.
TENSORS = {
    "model.embed_tokens.weight": ("BF16", [320, 16]),  # 5,120 x 2 = 10,240
    "model.layers.0.self_attn.k_proj.weight": ("F8_E4M3", [32, 32]),  # 1,024 x 1 = 1,024
    "model.layers.0.self_attn.k_proj.weight_scale": ("F32", []),  # 1 x 4 = 4
    "model.layers.0.mlp.down_proj.qweight": ("I32", [16, 64]),  # 1,024 x 4 = 4,096
    "model.layers.0.mlp.down_proj.scales": ("F16", [1, 128]),  # 128 x 2 = 256
    "model.layers.0.mlp.experts.gate_up_proj_blocks": ("U8", [64, 16]),  # 1,024 x 1 = 1,024
}
EXACT_BYTES = 10_240 + 1_024 + 4 + 4_096 + 256 + 1_024
SHARD_A = {"a.weight": ("BF16", [1000, 10])}  # 20,000 bytes
SHARD_B = {"b.weight": ("F32", [250, 4]), "b.bias": ("F32", [250])}  # 4,000 + 1,000 bytes

REPO = "kvplan-test/llama-2-7b"
COMMIT = fake_sha("llama-2-7b")
V1_COMMIT = fake_sha("llama-2-7b v1.0")


def _repos() -> dict[str, FakeRepo]:
    index = {
        "metadata": {"total_size": 25_000},
        "weight_map": {
            "a.weight": "model-00001-of-00002.safetensors",
            "b.weight": "model-00002-of-00002.safetensors",
            "b.bias": "model-00002-of-00002.safetensors",
        },
    }
    return {
        REPO: FakeRepo(
            files={
                "config.json": LLAMA2_7B,
                "model.safetensors": safetensors_file(TENSORS, itemsize=ITEMSIZE),
            },
            commit=COMMIT,
            branches={"v1.0": V1_COMMIT},
        ),
        # Not in the catalog's spelling: --refresh / --revision must reach the Hub for it.
        "meta-llama/Llama-2-7b-hf": FakeRepo(
            files={"config.json": LLAMA2_7B}, commit=fake_sha("meta")
        ),
        "kvplan-test/sharded": FakeRepo(
            files={
                "config.json": LLAMA2_7B,
                "model.safetensors.index.json": json.dumps(index).encode(),
                "model-00001-of-00002.safetensors": safetensors_file(SHARD_A, itemsize=ITEMSIZE),
                "model-00002-of-00002.safetensors": safetensors_file(SHARD_B, itemsize=ITEMSIZE),
            },
            commit=fake_sha("sharded"),
        ),
        "meta-llama/Llama-2-70b": FakeRepo(
            files={"params.json": LLAMA2_70B_PARAMS, "consolidated.00.pth": b"\0" * 16},
            commit=fake_sha("70b"),
        ),
        "kvplan-test/bin-only": FakeRepo(
            files={"config.json": LLAMA2_7B, "pytorch_model.bin": b"\0" * 16},
            commit=fake_sha("bin"),
        ),
        "kvplan-test/gated": FakeRepo(
            files={"config.json": LLAMA2_7B}, commit=fake_sha("gated"), gated_token="hf_granted"
        ),
        "kvplan-test/readme-only": FakeRepo(
            files={"README.md": b"# nothing here\n"}, commit=fake_sha("readme")
        ),
        "kvplan-test/broken": FakeRepo(
            files={"config.json": b'{"model_type": "llama",'}, commit=fake_sha("broken")
        ),
        "kvplan-test/down": FakeRepo(
            files={"config.json": LLAMA2_7B}, commit=fake_sha("down"), fail_status=500
        ),
        "kvplan-test/slow": FakeRepo(
            files={"config.json": LLAMA2_7B}, commit=fake_sha("slow"), delay_s=2.5, delay_count=1
        ),
    }


def _env(endpoint: str, home: Path, **extra: str) -> dict[str, str]:
    """The parent's environment minus anything Hub-related, pointed at the local server."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGING", "TRANSFORMERS_"))
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HOME=str(home),
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


# The CLI with huggingface_hub's backoff sleeps skipped: its retries still happen (the server
# counts them) without waiting between them.
NO_BACKOFF = HUB_NO_BACKOFF + "from kvplan.cli.app import main\nmain()\n"


def cli(
    args: list[str], env: dict[str, str], *, no_backoff: bool = False
) -> subprocess.CompletedProcess[str]:
    command = ["-c", NO_BACKOFF, *args] if no_backoff else ["-m", "kvplan", *args]
    return subprocess.run(
        [sys.executable, *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def size_json(args: list[str], env: dict[str, str]) -> dict:
    run = cli(["size", *args, "--json"], env)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def assert_one_line_error(run: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def hub():
    server = HubServer(_repos())
    yield server
    server.stop()


@pytest.fixture
def env(hub: HubServer, tmp_path: Path) -> dict[str, str]:
    return _env(hub.url, tmp_path / "hf")


# --- answers -----------------------------------------------------------------------------


def test_config_and_exact_weights_from_the_hub(env):
    out = size_json([REPO], env)
    assert out["source"] == "hub"
    assert out["location"] == REPO
    assert out["revision"] == COMMIT
    assert out["model"] == REPO
    assert (out["layers"], out["query_heads"], out["kv_heads"]) == (32, 32, 32)
    assert out["kv_bytes_per_token"] == LLAMA2_7B_KV_PER_TOKEN
    assert out["weights_exact_bytes"] == EXACT_BYTES
    assert out["weight_bytes"] == EXACT_BYTES
    assert out["weights_estimate_bytes"] == LLAMA2_7B_ESTIMATE


def test_text_shows_exact_beside_estimate_and_the_commit(env):
    run = cli(["size", REPO], {**env, "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    assert f"from hub: {REPO} @ {COMMIT[:12]}" in run.stdout
    assert f"exact, from the checkpoint's safetensors headers ({EXACT_BYTES:,} bytes)" in run.stdout
    assert (
        f"estimate: 6.74B parameters = 12.55 GiB at fp16 ({LLAMA2_7B_ESTIMATE:,} bytes)"
        in run.stdout
    )
    assert run.stderr == ""  # no progress bars, no library chatter


def test_weight_dtype_override_uses_the_estimate(env):
    out = size_json([REPO, "--weight-dtype", "int4"], env)
    assert out["weights_exact_bytes"] is None
    assert out["weight_bytes"] == out["weights_estimate_bytes"] < LLAMA2_7B_ESTIMATE


def test_sharded_checkpoint_sums_every_shard(env, hub):
    out = size_json(["kvplan-test/sharded"], env)
    assert out["weights_exact_bytes"] == 20_000 + 4_000 + 1_000
    ranged = [p for p in hub.paths("GET") if p.startswith("/kvplan-test/sharded/")]
    assert not any(p.endswith("model.safetensors") for p in ranged)


def test_params_json_repo_and_no_safetensors(env):
    out = size_json(["meta-llama/Llama-2-70b", "--refresh"], env)
    assert out["source"] == "hub"
    assert out["revision"] == fake_sha("70b")
    assert (out["layers"], out["query_heads"], out["kv_heads"]) == (80, 64, 8)
    assert out["kv_bytes_per_token"] == LLAMA2_70B_KV_PER_TOKEN
    assert out["weights_exact_bytes"] is None
    assert out["weight_bytes"] == out["weights_estimate_bytes"]
    assert any(
        "estimated from the architecture" in a and "safetensors" in a for a in out["assumptions"]
    )


def test_bin_only_checkpoint_falls_back_to_the_estimate(env):
    out = size_json(["kvplan-test/bin-only"], env)
    assert out["weights_exact_bytes"] is None
    assert out["weight_bytes"] == LLAMA2_7B_ESTIMATE


def test_catalog_name_goes_to_the_hub_with_a_revision(env):
    # (--refresh does the same: see the params.json test.)
    assert size_json(["meta-llama/Llama-2-7b-hf"], env)["source"] == "catalog"
    out = size_json(["meta-llama/Llama-2-7b-hf", "--revision", "main"], env)
    assert out["source"] == "hub"
    assert out["revision"] == fake_sha("meta")
    assert out["kv_bytes_per_token"] == LLAMA2_7B_KV_PER_TOKEN


def test_revision_resolves_to_its_commit(env):
    assert size_json([REPO, "--revision", "v1.0"], env)["revision"] == V1_COMMIT


def test_gated_repo_with_a_token(env, hub):
    before = len(hub.requests)
    out = size_json(["kvplan-test/gated", "--token", "hf_granted"], env)
    assert out["source"] == "hub"
    env_token = {**env, "HF_TOKEN": "hf_granted"}
    assert size_json(["kvplan-test/gated"], env_token)["source"] == "hub"
    auth = [
        h.get("authorization")
        for _, p, h in hub.requests[before:]
        if p.startswith("/kvplan-test/gated/")
    ]
    assert auth and set(auth) == {"Bearer hf_granted"}


def test_second_run_is_served_from_the_cache_with_the_server_stopped(tmp_path):
    server = HubServer(_repos())
    env = _env(server.url, tmp_path / "hf")
    first = [size_json([REPO], env), size_json(["meta-llama/Llama-2-70b", "--refresh"], env)]
    server.stop()
    again = [size_json([REPO], env), size_json(["meta-llama/Llama-2-70b", "--refresh"], env)]
    assert again == first
    assert again[0]["weights_exact_bytes"] == EXACT_BYTES  # remembered per commit
    offline = size_json([REPO], {**env, "HF_HUB_OFFLINE": "1"})
    assert offline == first[0]
    # A snapshot folder in the cache is a local model too.
    snapshot = tmp_path / "hf" / "hub" / "models--kvplan-test--llama-2-7b" / "snapshots" / COMMIT
    local = size_json([str(snapshot)], env)
    assert local["source"] == "file"
    assert local["kv_bytes_per_token"] == LLAMA2_7B_KV_PER_TOKEN


def test_slow_answer_is_retried_by_huggingface_hub(env, hub):
    started = time.monotonic()
    out = size_json(["kvplan-test/slow"], {**env, "HF_HUB_ETAG_TIMEOUT": "1"})
    assert out["kv_bytes_per_token"] == LLAMA2_7B_KV_PER_TOKEN
    assert hub.paths("HEAD").count("/kvplan-test/slow/resolve/main/config.json") >= 2
    assert time.monotonic() - started < 20


# --- errors: one line, exit 2, no traceback ------------------------------------------------

SERVER_ERROR = "server-error"
ERROR_CASES: dict[str, tuple[list[str], dict[str, str]]] = {
    "gated-no-token": (["kvplan-test/gated"], {}),
    "gated-refused": (["kvplan-test/gated", "--token", "hf_wrong"], {}),
    "missing-repo": (["meta-llama/Llama-2-7b-hff", "--refresh"], {}),
    "missing-revision": ([REPO, "--revision", "v9.9"], {}),
    "no-config": (["kvplan-test/readme-only"], {}),
    "broken-config": (["kvplan-test/broken"], {}),
    SERVER_ERROR: (["kvplan-test/down"], {}),
    "offline-not-cached": ([REPO], {"HF_HUB_OFFLINE": "1"}),
    "bad-repo-id": (["not a model"], {}),
    "invalid-token": ([REPO], {"HF_TOKEN": INVALID_TOKEN}),
}


@pytest.fixture(scope="module")
def error_runs(hub: HubServer, tmp_path_factory: pytest.TempPathFactory):
    """Every error case, run side by side."""
    home = tmp_path_factory.mktemp("errors")

    def run(case: str) -> subprocess.CompletedProcess[str]:
        args, extra = ERROR_CASES[case]
        return cli(
            ["size", *args], _env(hub.url, home / case, **extra), no_backoff=case == SERVER_ERROR
        )

    with ThreadPoolExecutor(len(ERROR_CASES)) as pool:
        return dict(zip(ERROR_CASES, pool.map(run, ERROR_CASES), strict=True))


def test_gated_without_a_token(error_runs, hub):
    assert_one_line_error(
        error_runs["gated-no-token"],
        "kvplan-test/gated is gated",
        f"accept the license at {hub.url}/kvplan-test/gated",
        "set HF_TOKEN (or pass --token)",
    )


def test_gated_with_a_refused_token(error_runs):
    assert_one_line_error(
        error_runs["gated-refused"], "is gated", "accept the license", "token sent has no access"
    )


def test_missing_repo_suggests_a_catalog_name(error_runs):
    assert_one_line_error(
        error_runs["missing-repo"],
        "no such model on the Hub",
        "did you mean meta-llama/Llama-2-7b-hf",
    )


def test_missing_revision(error_runs):
    assert_one_line_error(error_runs["missing-revision"], REPO, "no revision 'v9.9'")


def test_repo_without_config(error_runs):
    assert_one_line_error(error_runs["no-config"], "neither config.json nor params.json")


def test_unreadable_config_names_the_repo(error_runs):
    assert_one_line_error(error_runs["broken-config"], "hub:kvplan-test/broken: not valid JSON")


def test_server_error_after_retries(error_runs, hub):
    assert_one_line_error(
        error_runs[SERVER_ERROR], "HTTP 500", "after retries", "local config.json"
    )
    # huggingface_hub tries, then retries with backoff (5 times); kvplan adds no loop of its own.
    assert hub.paths("HEAD").count("/kvplan-test/down/resolve/main/config.json") >= 6


def test_offline_mode_with_nothing_cached(error_runs):
    assert_one_line_error(
        error_runs["offline-not-cached"],
        "HF_HUB_OFFLINE=1",
        "not in the Hugging Face cache",
        "local config.json",
    )


def test_invalid_repo_id(error_runs):
    assert_one_line_error(error_runs["bad-repo-id"], "not a valid Hub repo id")


def test_invalid_token(error_runs):
    assert_one_line_error(error_runs["invalid-token"], "rejected the token (HTTP 401)", "HF_TOKEN")


def test_no_network_with_nothing_cached(tmp_path):
    server = HubServer({})
    url = server.url
    server.stop()
    run = cli(["size", REPO], _env(url, tmp_path / "hf"), no_backoff=True)
    assert_one_line_error(run, f"cannot reach the Hub at {url}", "local config.json")


# --- in-process pieces -------------------------------------------------------------------


def test_timeout_message():
    httpx2 = pytest.importorskip("httpx2")
    from huggingface_hub.errors import LocalEntryNotFoundError

    from kvplan.sources.hub import hub_error

    try:
        try:
            raise httpx2.ReadTimeout("timed out")
        except httpx2.ReadTimeout as cause:
            raise LocalEntryNotFoundError("An error happened...\nmore") from cause
    except LocalEntryNotFoundError as exc:
        error = hub_error(exc, "org/model", revision=None)
    assert "did not answer in time" in str(error)
    assert "\n" not in str(error)


def test_summarize_safetensors_counts_bytes_not_parameters():
    from kvplan.sources.hub import summarize_safetensors

    exact = summarize_safetensors(
        [
            ("I32", 1024, (0, 4096)),  # int4 packed 8 per I32: bytes, not "params"
            ("F4", 3, (4096, 4098)),  # packed nibbles round up per tensor
            ("X9", 7, (4098, 4105)),  # unknown dtype: its stored span
        ]
    )
    assert exact.total_bytes == 4096 + 2 + 7
    assert exact.parameters_by_dtype == {"F4": 3, "I32": 1024, "X9": 7}
    assert exact.total_parameters == 1034


def test_local_and_catalog_answers_do_not_import_huggingface_hub(tmp_path):
    code = (
        "import sys\nfrom kvplan.cli.app import app\n"
        "try:\n    app(['size', 'meta-llama/Llama-2-7b-hf', '--json'])\n"
        "except SystemExit:\n    pass\n"
        "sys.stderr.write('LOADED' if 'huggingface_hub' in sys.modules else 'LAZY')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env("http://127.0.0.1:9", tmp_path),
        timeout=60,
        check=False,
    )
    assert run.stderr.endswith("LAZY"), run.stderr
