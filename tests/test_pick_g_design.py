"""`pick-g` as a design tool: stated assumptions, design flags, per-GPU columns, rows for G
the engine refuses, the headroom margin, and the deployment-change search.

Expected numbers are computed by hand from the geometry (formulas in the comments).
"""

from __future__ import annotations

import pytest
from conftest import catalog_spec, run_cli

from kvplan.core.deployment import Deployment
from kvplan.core.design import pick_g
from kvplan.errors import KvplanError
from kvplan.sources.gpus import load_gpus
from kvplan.units import parse_count, parse_percent

DESIGN = ["--layers", "40", "--heads", "40", "--head-dim", "128"]
WORK = ["--gpu", "a100-80gb", "--ctx", "4096", "--batch", "8", "--no-search", "--json"]


def gpu(name: str):
    return load_gpus().get(name)


def test_parse_count_and_percent() -> None:
    assert parse_count("13B") == 13_000_000_000
    assert parse_count("7.5b") == 7_500_000_000
    assert parse_count("350M") == 350_000_000
    assert parse_count("13e9") == 13_000_000_000
    assert parse_count("13000000000") == 13_000_000_000
    assert parse_percent("5%") == pytest.approx(0.05)
    for bad in ("13 parsecs", "B13", ""):
        with pytest.raises(KvplanError):
            parse_count(bad)
    with pytest.raises(KvplanError):
        parse_percent("5")  # the % is required: 5 vs 0.05 would be ambiguous


def test_design_assumptions_are_stated_and_settable() -> None:
    r = run_cli("pick-g", *DESIGN, *WORK)
    assert r.code == 0, r.err
    d = r.json["design"]
    # Llama FFN rule: int(8 * 5120 / 3) = 13653 -> next multiple of 256 = 13824 (Llama-2-13B)
    assert (d["vocab"], d["intermediate"], d["tie_embeddings"]) == (32000, 13824, False)
    assert "multiple of 256" in d["intermediate_rule"]
    assert any("vocabulary 32,000" in a for a in r.json["assumptions"])
    text = run_cli("pick-g", *DESIGN, *WORK[:-1])
    assert "FFN width 13,824" in text.out and "untied embeddings" in text.out

    tied = run_cli("pick-g", *DESIGN, *WORK, "--vocab", "128256", "--tie-embeddings")
    assert tied.json["design"]["vocab"] == 128256 and tied.json["design"]["tie_embeddings"]
    untied = run_cli("pick-g", *DESIGN, *WORK, "--vocab", "128256")
    # tying removes the LM head: vocab x hidden bf16 parameters
    diff = untied.json["rows"][0]["weights_bytes"] - tied.json["rows"][0]["weights_bytes"]
    assert diff == 128256 * 5120 * 2

    wide = run_cli("pick-g", *DESIGN, *WORK, "--intermediate", "20000")
    # 40 layers x 3 matrices x 5120 x (20000 - 13824) x 2 bytes more
    more = wide.json["rows"][0]["weights_bytes"] - r.json["rows"][0]["weights_bytes"]
    assert more == 40 * 3 * 5120 * (20000 - 13824) * 2


def test_moe_design_counts_every_expert() -> None:
    dense = run_cli("pick-g", *DESIGN, *WORK)
    moe = run_cli(
        "pick-g", *DESIGN, *WORK, "--experts", "8", "--experts-per-token", "2",
        "--expert-intermediate", "4096",
    )  # fmt: skip
    assert moe.code == 0, moe.err
    # dense MLP 3 x 5120 x 13824 replaced by 8 experts of 3 x 5120 x 4096 + a 5120 x 8 router
    per_layer = 8 * 3 * 5120 * 4096 + 5120 * 8 - 3 * 5120 * 13824
    got = moe.json["rows"][0]["weights_bytes"] - dense.json["rows"][0]["weights_bytes"]
    assert got == 40 * per_layer * 2
    bad = run_cli("pick-g", *DESIGN, *WORK, "--experts", "8")
    assert bad.code == 2 and "--experts-per-token" in bad.err


def test_sliding_global_pattern_caps_the_sliding_layers() -> None:
    args = ["--layers", "12", "--heads", "8", "--head-dim", "128", "--gpu", "a100-80gb"]
    args += ["--batch", "1", "--no-search", "--json"]
    full = run_cli("pick-g", *args, "--ctx", "8192")
    pattern = ["--ctx", "8192", "--window", "1024", "--global-every", "6"]
    mixed = run_cli("pick-g", *args, *pattern, "--engine", "none")
    assert mixed.code == 0, mixed.err
    # layers 6 and 12 global (Gemma 3 rule: (i + 1) % 6 == 0), 10 sliding at 1024 tokens:
    # per token-layer 2 x 8 heads x 128 x 2 bytes = 4096 B
    assert full.json["rows"][0]["kv_bytes"] == 12 * 8192 * 4096
    assert mixed.json["rows"][0]["kv_bytes"] == (2 * 8192 + 10 * 1024) * 4096
    assert "every 6th layer global" in " ".join(mixed.json["assumptions"])
    # vLLM's hybrid manager (issue 15, kvplan.core.hybrid_alloc): group_size 2 (the smaller
    # bucket: 10 >= 1.5 x 2), 5 sliding groups + 1 full, a block = 2 pages of 16 tokens x
    # 4,096 B; a request of 8,192 tokens: full cdiv(8192, 16) = 512 blocks, each sliding
    # group cdiv(min(1023 + 2048 batched tokens, 8192), 16) + 1 = 193. This replaced the
    # layer rule above for vLLM: it is the count vLLM's "Maximum concurrency" divides by.
    vllm = run_cli("pick-g", *args, *pattern, "--max-num-batched-tokens", "2048")
    assert vllm.code == 0, vllm.err
    assert vllm.json["rows"][0]["kv_bytes"] == (512 + 5 * 193) * 2 * 16 * 4096


def test_mla_rank_design_adds_the_latent_row() -> None:
    r = run_cli("pick-g", *DESIGN, *WORK, "--mla-rank", "512")
    assert r.code == 0, r.err
    latent = next(row for row in r.json["rows"] if row["kv_heads"] is None)
    assert latent["kv_bytes_per_token"] == 40 * (512 + 64) * 2  # latent + RoPE key, bf16
    mha = next(row for row in r.json["rows"] if row["kv_heads"] == 40)
    assert mha["kv_bytes_per_token"] == 40 * 40 * (128 + 64 + 128) * 2  # decompressed K, V


def test_params_accepts_suffixes_and_rejects_values_below_attention() -> None:
    ok = run_cli("pick-g", *DESIGN, *WORK, "--params", "13B")
    assert ok.code == 0, ok.err
    # 13e9 parameters at G=H in bf16
    assert ok.json["rows"][0]["weights_bytes"] == 13_000_000_000 * 2
    # floor: 40 layers x 4 x 5120^2 attention + 2 x 32000 x 5120 embeddings = 4.52B
    low = run_cli("pick-g", *DESIGN, *WORK, "--params", "4B")
    assert low.code == 2
    assert "below what this geometry needs" in low.err and "4.52B" in low.err


def test_design_flags_need_a_design() -> None:
    r = run_cli("pick-g", "meta-llama/Llama-2-13b-hf", *WORK, "--vocab", "1000")
    assert r.code == 2 and "--vocab describes a design" in r.err


def test_rows_are_per_gpu_and_refused_g_are_rows_with_the_reason() -> None:
    r = run_cli("pick-g", *WORK[:-2], "--tp", "4", "--json")
    assert r.code == 0, r.err
    rows = {row["kv_heads"]: row for row in r.json["rows"]}
    assert sorted(rows) == [1, 2, 4, 5, 8, 10, 20, 40]  # none dropped
    for g in (10, 5):  # neither divides TP 4 nor is divided by it
        assert "does not fit" in rows[g]["invalid_reason"] and not rows[g]["fits"]
    # G=8 at TP 4: 2 heads per GPU x 40 layers x 128 x 2 (K,V) x 2 bytes (fp16 checkpoint)
    assert rows[8]["kv_bytes_per_token_per_gpu"] == 2 * 40 * 128 * 2 * 2
    # the checkpoint splits over the 4 GPUs but for its norms ((40 x 2 + 1) x 5120 fp16,
    # RMSNorm weights whole on every rank); vLLM's rotary table (4,096 positions x 128 x
    # 2 B: Llama-2-13B's max_position_embeddings) is whole on each
    norms = (40 * 2 + 1) * 5120 * 2
    per_gpu = rows[8]["weights_per_gpu_bytes"] - 4096 * 128 * 2 - norms
    assert per_gpu * 4 == pytest.approx(rows[8]["weights_bytes"] - norms, rel=1e-9)
    text = run_cli("pick-g", *WORK[:-2], "--tp", "4")
    assert "G=10: --tp 4 does not fit 10 KV heads" in text.out


def test_headroom_margin_decides_the_recommendation() -> None:
    spec = catalog_spec("meta-llama/Llama-2-13b-hf")
    base = Deployment(spec=spec, gpu=gpu("a100-80gb"), kv_dtype="fp16")
    # G=1: 39 x 65,536 tokens x 20,480 B = 48.75 GiB of a ~49.67 GiB budget (98%)
    tight = pick_g(base, ctx=65536, batch=39, headroom=0.0)
    assert tight.recommended_kv_heads == 1
    safe = pick_g(base, ctx=65536, batch=39, headroom=0.05)
    g1 = next(r for r in safe.rows if r.kv_heads == 1)
    assert g1.kv_bytes == 39 * 65536 * 20480 and g1.fits and not g1.fits_with_headroom
    assert safe.recommended_kv_heads is None
    with pytest.raises(KvplanError):
        pick_g(base, ctx=65536, batch=39, headroom=1.0)


def test_deployment_change_search_is_verified_and_ranked() -> None:
    spec = catalog_spec("meta-llama/Llama-2-13b-hf")
    base = Deployment(spec=spec, gpu=gpu("a100-80gb"), kv_dtype="fp16")
    gpus = tuple(load_gpus().gpus.values())
    # without an asked G, a fitting answer is not searched further (the search costs ~1 s)
    assert pick_g(base, ctx=65536, batch=32, search_gpus=gpus).changes == ()
    result = pick_g(base, ctx=65536, batch=32, search_gpus=gpus, target_kv_heads=40)
    assert result.recommended_kv_heads == 1
    assert result.changes
    same = [c for c in result.changes if c.gpu == "a100-80gb"]
    assert same and [c.gpus for c in same] == sorted(c.gpus for c in same)
    # the cheapest on the same GPU: an fp8 cache alone lets G=2 fit (2 x 40 GiB / 2 = 40 GiB)
    assert (same[0].gpus, same[0].kv_heads, same[0].changes) == (1, 2, ("--kv-dtype fp8",))
    for c in result.changes:
        assert c.kv_heads > 1
        d = base.with_(gpu=gpu(c.gpu), tp=c.tp, pp=c.pp, kv_dtype=c.kv_dtype)
        again = pick_g(d, ctx=65536, batch=32)  # the same solver, independently
        assert again.recommended_kv_heads == c.kv_heads
        row = next(r for r in again.rows if r.kv_heads == c.kv_heads)
        assert row.kv_bytes == c.kv_bytes and row.kv_budget_bytes == c.kv_budget_bytes


def test_no_search_when_mha_already_fits() -> None:
    spec = catalog_spec("meta-llama/Llama-2-13b-hf")
    base = Deployment(spec=spec, gpu=gpu("a100-80gb"))
    result = pick_g(base, ctx=1024, batch=1, search_gpus=tuple(load_gpus().gpus.values()))
    assert result.recommended_kv_heads == 40 and result.changes == ()


def test_headroom_flag_needs_a_percent() -> None:
    r = run_cli("pick-g", *WORK, "--headroom", "5")
    assert r.code == 2 and "percentage" in r.err
    r = run_cli("pick-g", *WORK, "--headroom", "0%")
    assert r.code == 0 and r.json["headroom"] == 0


def test_quality_evidence_is_published_numbers_labelled_as_such() -> None:
    from kvplan.sources.evidence import load_evidence

    studies = {s.id: s for s in load_evidence()}
    gqa = {r.label: r.value for r in studies["gqa-t5-xxl"].results}
    # Ainslie et al. 2023, Table 1 (average over seven tasks)
    assert (gqa["MHA-XXL"], gqa["GQA-8-XXL"], gqa["MQA-XXL"]) == (47.2, 47.1, 46.6)
    dense = {r.layout: r.value for r in studies["deepseek-v2-dense-7b"].results}
    assert (dense["mha"], dense["gqa"], dense["mqa"]) == (45.2, 41.2, 37.9)  # Table 8 MMLU
    # Shazeer 2019, Table 1 (WMT14 EN-DE dev BLEU) and Table 3 (Billion-Word dev perplexity)
    wmt = {r.label: r.value for r in studies["mqa-shazeer-2019"].results}
    assert (wmt["multi-head h=8 d=128"], wmt["multi-query h=8 d=128"]) == (26.7, 26.5)
    lm = {r.label: r.value for r in studies["mqa-shazeer-2019-lm"].results}
    assert (lm["multi-head h=8 d=128"], lm["multi-query h=8 d=128"]) == (29.9, 30.2)
    assert "LOWER is better" in studies["mqa-shazeer-2019-lm"].metric
    for s in studies.values():
        assert s.source.startswith("https://arxiv.org/abs/") and s.read_in

    r = run_cli("pick-g", *WORK)
    ids = {s["id"] for s in r.json["evidence"]}
    assert {"gqa-t5-xxl", "deepseek-v2-dense-7b"} <= ids
    assert "deepseek-v2-mla" not in ids  # no MLA row in a Llama-2 table
    mla = run_cli("pick-g", "deepseek-ai/DeepSeek-V2-Lite", *WORK)
    assert "deepseek-v2-mla" in {s["id"] for s in mla.json["evidence"]}
    text = run_cli("pick-g", *WORK[:-1]).out
    assert "not a prediction for this model" in text and "GQA-8-XXL 47.1" in text


def test_chart_is_the_solver_largest_batch_per_context() -> None:
    spec = catalog_spec("meta-llama/Llama-2-13b-hf")
    base = Deployment(spec=spec, gpu=gpu("a100-80gb"), kv_dtype="fp16")
    from kvplan.core.capacity import max_batch
    from kvplan.core.reports import ModelRef, pick_g_report

    report = pick_g_report(base, ModelRef(model="m", source="s"), header="h", ctx=65536, batch=32)
    by_g = {c.kv_heads: dict(c.points) for c in report.curves}
    rows = {r.kv_heads: r for r in report.rows}
    assert 65536 in by_g[1] and 1024 in by_g[1] and max(by_g[1]) >= 4 * 65536
    for g, points in by_g.items():
        assert points[65536] == rows[g].max_batch  # the table's column at the asked context
        for ctx, b in points.items():
            assert b == max_batch(rows[g].plan, ctx)
    # G=1: 40 layers x 2 x 128 x 2 B = 20,480 B per token; a 65,536-token sequence is
    # 1.25 GiB (1,342,177,280 B), so the budget holds floor(budget / 1.25 GiB) of them
    budget = rows[1].kv_budget_bytes
    assert budget is not None
    assert by_g[1][65536] == budget // 1_342_177_280 == 40
    text = run_cli("pick-g", *WORK[:-2], "--chart").out
    assert "Largest batch vs context per G" in text and "> 4,096" in text


def test_plot_file_or_a_clear_error(tmp_path) -> None:
    import importlib.util

    out = tmp_path / "g.svg"
    r = run_cli("pick-g", *WORK[:-2], "--plot", str(out))
    if importlib.util.find_spec("matplotlib") is None:
        assert r.code == 2 and "kvplan[plot]" in r.err
        return
    assert r.code == 0, r.err
    assert out.read_text().lstrip().startswith("<?xml") and "asked batch" in out.read_text()
    bad = run_cli("pick-g", *WORK[:-2], "--plot", str(tmp_path / "g.txt"))
    assert bad.code == 2 and "unsupported file type" in bad.err


def test_api_pick_g_writes_the_plot_as_the_cli_does(tmp_path) -> None:
    """`kvplan.pick_g(plot=...)` writes the chart itself, like `roofline` and `plan`:
    the CLI adds nothing the API lacks."""
    import importlib.util

    import kvplan
    from kvplan.errors import KvplanError

    out = tmp_path / "api.svg"
    if importlib.util.find_spec("matplotlib") is None:
        with pytest.raises(KvplanError, match=r"kvplan\[plot\]"):
            kvplan.pick_g(gpu="a100-80gb", ctx=4096, batch=8, search=False, plot=str(out))
        return
    kvplan.pick_g(gpu="a100-80gb", ctx=4096, batch=8, search=False, plot=str(out))
    assert out.read_text().lstrip().startswith("<?xml") and "asked batch" in out.read_text()
