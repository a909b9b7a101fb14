"""`--max-model-len auto` / `-1`: vLLM V1's auto-fit (v1/core/kv_cache_utils.py
`_auto_fit_max_model_len`: the largest length one request's KV fits in the pool, capped by
the model's max positions), as a flag, a policy key and an API argument.

Hand-computed: Llama-3.1-8B in bf16 keeps 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 B
= 131,072 B per token, a 16-token block is 2 MiB, so a 4 GiB pool (--kv-memory) holds
2,048 blocks: one request of up to 2,048 x 16 = 32,768 tokens. vLLM 0.29.0+ holds one block
back (the null block) before auto-fit: 2,047 x 16 = 32,752.
"""

from __future__ import annotations

import pytest
from conftest import run_cli

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
POOL = ("--gpu", "h100", "--kv-memory", "4GiB")
WORK = "ctx: 4096, batch: 1"


def _fit(*args: str) -> dict:
    r = run_cli("fit", MODEL, *POOL, *args, "--json")
    assert r.code == 0, r.err
    return dict(r.json)


@pytest.mark.parametrize("spelled", ["auto", "AUTO", "-1"])
def test_auto_picks_the_largest_length_one_request_fits(spelled):
    r = _fit("--max-model-len", spelled, "--engine-version", "0.20")
    assert r["max_model_len"] == r["auto_max_model_len"] == 32_768
    assert r["max_concurrency"] == pytest.approx(1.0)
    assert "--max-model-len 32768 " in r["launch_command"]
    assert (
        "Auto-fit max_model_len: reduced from 131072 to 32768 to fit in available GPU memory "
        "(4.00 GiB available for KV cache)"
    ) in r["engine_log"]
    assert not any("refuse" in w for w in r["warnings"])


def test_auto_holds_back_the_null_block_from_033():
    assert _fit("--max-model-len", "auto", "--engine-version", "0.33")["max_model_len"] == 32_752
    # held back from 0.29.0 on (0.29.0 wheel kv_cache_utils.py:975; not in 0.28.0)
    assert _fit("--max-model-len", "auto", "--engine-version", "0.29.0")["max_model_len"] == 32_752
    assert _fit("--max-model-len", "auto", "--engine-version", "0.28.0")["max_model_len"] == 32_768


def test_auto_keeps_the_full_context_when_it_fits():
    r = run_cli("fit", MODEL, "--gpu", "h100", "--max-model-len", "auto", "--json").json
    assert r["max_model_len"] == 131_072  # the model's max positions: 16 GiB per request
    assert (
        "Auto-fit max_model_len: full model context length 131072 fits in available GPU memory"
        in r["engine_log"]
    )


def test_a_fixed_length_is_unchanged():
    r = _fit("--max-model-len", "16384")
    assert r["max_model_len"] == 16_384
    assert not any(line.startswith("Auto-fit") for line in r["engine_log"])


@pytest.mark.parametrize(
    "args, words",
    [
        (("--max-model-len", "auto", "--engine", "sglang"), "SGLang takes a number"),
        (("--max-model-len", "auto", "--engine-version", "0.6"), "not known to vLLM 0.6"),
        (("--max-model-len", "0"), "must be a positive integer"),
        (("--max-model-len", "-2"), "must be a positive integer or auto"),
        (("--max-model-len", "long"), "must be a positive integer or auto"),
    ],
)
def test_what_vllm_would_not_take_is_an_input_error(args, words):
    r = run_cli("fit", MODEL, "--gpu", "h100", *args, "--json")
    assert r.code == 2
    assert r.json["error"]["setting"] == "max_model_len"
    assert words in r.json["error"]["message"]


def test_policy_key_and_api_take_auto(tmp_path):
    policy = tmp_path / "kvplan.yaml"
    policy.write_text(
        "version: 1\ntargets:\n"
        f"  - {{name: auto, model: {MODEL}, gpu: l4, max_model_len: auto, {WORK}}}\n"
        f"  - {{name: minus-one, model: {MODEL}, gpu: l4, max_model_len: -1, {WORK}}}\n"
    )
    r = run_cli("check", "--policy", str(policy), "--format", "json")
    assert r.code == 0, r.out
    # on an L4 a 131,072-token request does not fit, but auto-fit starts at a length that
    # does, so no target fails the "starts" requirement
    results = [x for t in r.json["policies"][0]["targets"] for x in t["results"]]
    assert not [x for x in results if x["requirement"] == "starts"]

    from kvplan.api import fit

    report = fit(MODEL, gpu="l4", max_model_len="auto")
    assert report.max_model_len == report.auto_max_model_len < 131_072


def test_policy_rejects_a_length_it_does_not_understand(tmp_path):
    policy = tmp_path / "kvplan.yaml"
    policy.write_text(
        f"version: 1\ntargets:\n  - {{name: t, model: {MODEL}, gpu: l4, max_model_len: 0}}\n"
    )
    r = run_cli("check", "--policy", str(policy), "--format", "json")
    assert r.code == 2
