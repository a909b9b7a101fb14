"""`kvplan fit`, `pick-g` and `gpus` as a user runs them: JSON fields and exact errors."""

from __future__ import annotations

import pytest
from conftest import run_cli

from kvplan.units import GiB


def test_fit_max_batch_json_has_every_budget_term():
    r = run_cli(
        "fit",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100-sxm",
        "--ctx",
        "8192",
        "--activation-reserve",
        "2GiB",
        "--overhead",
        "0.25GiB",
        "--json",
    )
    assert r.code == 0, r.err
    d = r.json
    assert d["schema_version"] == 1 and d["command"] == "fit"
    budget = int(d["gpu_memory_bytes"] * 0.90) - d["weights_bytes"] - 2 * GiB - GiB // 4
    assert d["kv_budget_bytes"] == budget
    assert d["max_batch"] == budget // (8192 * 131072)
    assert d["kv_tokens"] == budget // (16 * 131072) * 16
    for key in (
        "engine_memory_bytes",
        "activation_bytes",
        "overhead_bytes",
        "max_concurrency",
        "kv_blocks",
        "kv_heads_per_gpu",
        "fits",
    ):
        assert key in d


def test_fit_max_ctx_is_capped_by_positions_and_says_so():
    r = run_cli("fit", "meta-llama/Llama-2-7b-hf", "--gpu", "h200", "--batch", "1", "--json")
    assert r.code == 0, r.err
    assert r.json["max_ctx"] == 4096 and r.json["capped_by_positions"] is True


def test_fit_both_reports_headroom():
    r = run_cli(
        "fit",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100-sxm",
        "--ctx",
        "8192",
        "--batch",
        "8",
        "--kv-memory",
        "10GiB",
        "--json",
    )
    assert r.code == 0, r.err
    used = 8 * 8192 * 131072
    assert r.json["kv_bytes"] == used
    assert r.json["headroom_bytes"] == 10 * GiB - used
    assert r.json["fits"] is True


def test_fit_replication_note_in_table_output():
    r = run_cli("fit", "meta-llama/Llama-2-70b-hf", "--gpu", "h100", "--tp", "16", "--ctx", "4096")
    assert r.code == 0, r.err
    assert "each KV head is stored on 2 GPUs" in r.out


def test_pick_g_default_model_said_on_first_line_and_json_shape():
    r = run_cli("pick-g", "--gpu", "a100-80gb", "--ctx", "65536", "--batch", "32", "--json")
    assert r.code == 0, r.err
    d = r.json
    assert d["header"].startswith("No MODEL given: using meta-llama/Llama-2-13b-hf")
    assert [row["kv_heads"] for row in d["rows"]] == [40, 20, 10, 8, 5, 4, 2, 1]
    assert d["recommended_kv_heads"] == 1
    row1 = d["rows"][-1]
    assert row1["kv_bytes"] == 2 * 40 * 1 * 128 * 2 * 65536 * 32
    assert {"kv_heads", "kv_bytes", "fits", "max_batch", "max_ctx"} <= set(row1)
    text = run_cli("pick-g", "--gpu", "a100-80gb", "--ctx", "65536", "--batch", "32")
    assert text.out.splitlines()[0].startswith("No MODEL given: using meta-llama/Llama-2-13b-hf")


def test_pick_g_from_geometry_flags():
    r = run_cli(
        "pick-g",
        "--gpu",
        "h100",
        "--layers",
        "32",
        "--heads",
        "32",
        "--head-dim",
        "128",
        "--ctx",
        "8192",
        "--batch",
        "64",
        "--json",
    )
    assert r.code == 0, r.err
    assert [row["kv_heads"] for row in r.json["rows"]][:2] == [32, 16]
    assert r.json["rows"][0]["kv_bytes_per_token"] == 2 * 32 * 32 * 128 * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--ctx", "0"],
            "Error: --ctx must be a positive integer, got 0",
        ),
        (
            ["fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--batch", "-3"],
            "Error: --batch must be a positive integer, got -3",
        ),
        (
            ["fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--tp", "3"],
            "Error: --tp 3 does not divide the model's 64 attention heads "
            "(valid TP sizes: 1, 2, 4, 8, 16, 32, 64)",
        ),
        (
            ["pick-g", "--gpu", "a100-80gb", "--ctx", "65536", "--batch", "32", "--tp", "3"],
            "Error: --tp 3 does not divide the model's 40 attention heads "
            "(valid TP sizes: 1, 2, 4, 5, 8, 10, 20, 40)",
        ),
        (
            ["fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--gpu-memory-utilization", "1.5"],
            "Error: --gpu-memory-utilization must be in (0, 1], got 1.5",
        ),
        (
            ["fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--mem-fraction-static", "0.8"],
            "Error: --mem-fraction-static is a sglang setting, but --engine is vllm (leave it "
            "out, or serve with --engine sglang)",
        ),
        (
            ["fit", "google/gemma-3-1b-it", "--gpu", "h100", "--ctx", "8192", "--vswa"],
            "Error: --vswa is a trtllm setting, but --engine is vllm (leave it out, or serve "
            "with --engine trtllm)",
        ),
        (
            [
                "fit",
                "google/gemma-3-1b-it",
                "--gpu",
                "h100",
                "--engine",
                "trtllm",
                "--engine-version",
                "0.19",
                "--vswa",
            ],
            "Error: --vswa: TensorRT-LLM 0.19: per-window KV pools before 0.21 are not modelled "
            "(leave --vswa out for one pool (every layer over max_seq_len), or give "
            "--engine-version 0.21 or later)",
        ),
        (
            ["fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--engine", "foo"],
            "Error: unknown engine 'foo' (choose vllm, sglang, trtllm or none)",
        ),
        (
            ["fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--kv-memory", "12XB"],
            "Error: --kv-memory: cannot read size '12XB' (use a number with a unit such as 40GiB, "
            "80GB, 512MiB)",
        ),
        (
            ["fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--ctx", str(10**20)],
            "Error: --ctx 100,000,000,000,000,000,000 is absurdly large (limit 1,099,511,627,776)",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    r = run_cli(*args)
    assert r.code == 2
    assert r.err.strip() == message
    assert "Traceback" not in r.err + r.out


def test_unknown_gpu_gets_suggestions():
    r = run_cli("fit", "meta-llama/Llama-2-70b", "--gpu", "h1OO", "--ctx", "4096")
    assert r.code == 2
    assert r.err.startswith("Error: unknown GPU 'h1OO' (did you mean ")


def test_weights_that_do_not_fit_are_an_answer_not_bad_input():
    # 68,976,648,192 params x 2 bytes = 128.48 GiB > 0.90 x 79.19 GiB: exit 1 ("does not fit"),
    # with the reason, never exit 2 (the input is valid).
    r = run_cli("fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--ctx", "4096")
    assert r.code == 1
    assert r.err == ""
    assert "weights alone need 128.48 GiB per GPU of the 71.27 GiB budget on h100-sxm" in r.out
    j = run_cli("fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--ctx", "4096", "--json")
    assert j.code == 1
    assert j.json["fits"] is False and j.json["max_batch"] == 0
    assert j.json["kv_budget_bytes"] == 0 and j.json["shortfall_bytes"] > 0
    assert j.json["reason"].startswith("weights alone need 128.48 GiB per GPU")


def test_trtllm_weights_shortfall_names_the_memory_not_a_negative_grant():
    # TensorRT-LLM's fraction applies to what is free after loading, so the grant is
    # negative when the weights do not fit; the reason names the 79.19 GiB CUDA reports
    # (85,030,076,416 B) the 128.48 GiB of weights compete for.
    r = run_cli(
        "fit", "meta-llama/Llama-2-70b", "--gpu", "h100", "--ctx", "4096", "--engine", "trtllm"
    )
    assert r.code == 1
    assert "weights alone need 128.48 GiB per GPU of the 79.19 GiB of memory on h100-sxm" in r.out
    assert "budget on h100-sxm" not in r.out


def test_gpus_lists_catalog_json():
    r = run_cli("gpus", "--json")
    assert r.code == 0
    names = {g["name"] for g in r.json["gpus"]}
    assert {"h100-sxm", "a100-80gb", "mi300x", "tpu-v5e", "m2-ultra"} <= names


def test_state_slot_refusal_suggests_fewer_sequences_not_a_shorter_length():
    # Qwen3.5-27B on one H100: one 262,144-token request fits, but vLLM's hybrid manager
    # gives each running request its own state pages, so max_num_seqs 1024 above the pool's
    # blocks is what it refuses; the hint and the launch line carry the slot count instead
    # of a (useless) shorter --max-model-len.
    import re

    j = run_cli("fit", "Qwen/Qwen3.5-27B", "--gpu", "h100", "--ctx", "8192", "--json").json
    refusal = next(w for w in j["warnings"] if "exceeds available Mamba cache blocks" in w)
    slots = int(re.search(r"Mamba cache blocks \((\d+)\)", refusal).group(1))
    assert slots == j["startup"]["state_slots"] and 0 < slots < 1024
    assert f"--max-num-seqs {slots:,} or fewer would start" in " ".join(j["warnings"])
    assert not any("largest --max-model-len that would start" in w for w in j["warnings"])
    assert f"--max-num-seqs {slots} " in j["launch_command"]


def test_fit_describes_mla_as_a_latent_never_as_heads() -> None:
    """Issue 15: MLA caches one latent (kv_lora_rank + rope dims), not heads; TP does not
    split it. DeepSeek-V3: 61 layers x (512 + 64) x 2 B = 70,272 B per token on every GPU."""
    out = run_cli("fit", "deepseek-ai/DeepSeek-V3", "--gpu", "h200", "--tp", "8", "--ctx", "32768")
    line = next(x for x in out.out.splitlines() if x.startswith("KV per token per GPU"))
    assert "70,272 bytes" in line and "latent of 576 elements" in line
    assert "head" not in line


def test_zero_sequences_says_why_when_the_weights_fit():
    """Largest batch 0 with the weights loaded is an answer with a reason, like a weights
    shortfall: Llama-3.1-8B keeps 32 x 8 x 128 x 2 x 2 = 131,072 B per token, so one
    sequence of 131,072 tokens needs exactly 16 GiB; a 10 GiB pool holds
    10 x 2^30 / 131,072 = 81,920 tokens (2,560 TensorRT-LLM blocks of 32)."""
    args = ["fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "l40s", "--ctx", "131072"]
    args += ["--engine", "trtllm", "--kv-memory", "10GiB"]
    r = run_cli(*args, "--json")
    assert r.code == 1
    assert r.json["max_batch"] == 0 and r.json["kv_tokens"] == 81_920
    assert r.json["reason"] == (
        "one sequence of 131,072 tokens needs 16.00 GiB of KV per GPU; the KV pool holds "
        "10.00 GiB (81,920 tokens), so the longest one sequence gets is 81,920 tokens: "
        "shorten --ctx, use more GPUs (--tp), a smaller --kv-dtype, or a bigger GPU"
    )
    text = run_cli(*args)
    assert text.code == 1
    assert "Does not fit: one sequence of 131,072 tokens needs 16.00 GiB" in " ".join(
        text.out.split()
    )
