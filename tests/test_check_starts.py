"""A policy target fails when the engine would refuse to start (issue: CI must not pass a
target vLLM refuses), and the figure it reports is the one `fit` reports."""

from __future__ import annotations

from conftest import run_cli

POLICY = """version: 1
targets:
  - name: full-length
    model: meta-llama/Llama-3.1-8B-Instruct
    gpu: l4
    ctx: 4096
    batch: 1
  - name: capped
    model: meta-llama/Llama-3.1-8B-Instruct
    gpu: l4
    max_model_len: 16384
    ctx: 4096
    batch: 1
"""


def test_target_vllm_would_refuse_fails_with_the_engines_words(tmp_path):
    policy = tmp_path / "kvplan.yaml"
    policy.write_text(POLICY)
    r = run_cli("check", "--policy", str(policy), "--format", "json")
    assert r.code == 1
    rows = {
        (x["target"], x["requirement"]): x
        for t in r.json["policies"][0]["targets"]
        for x in t["results"]
    }
    starts = rows[("full-length", "starts")]
    # one 131,072-token request needs 131,072 x 131,072 B = 16 GiB; an L4 pool holds ~4.6
    assert starts["status"] == "fail" and starts["limit"] == 131_072
    assert (
        "To serve at least one request with the model's max seq len (131072)" in (starts["message"])
    )
    fit = run_cli("fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l4", "--json").json
    assert starts["measured"] == fit["auto_max_model_len"] < 131_072
    assert ("capped", "starts") not in rows  # 16,384 tokens = 2 GiB: it starts
    assert rows[("capped", "fits")]["status"] == "pass"
