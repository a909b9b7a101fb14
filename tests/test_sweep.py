"""`kvplan sweep`: every row equals what `fit` (and `pick-g`) answer for the same scenario.

The sweep computes the (ctx, batch) grid with numpy from per-plan terms; these tests draw a
random sample of rows from a large grid covering sliding-window (Gemma 2, Mistral v0.1,
gpt-oss), MLA (DeepSeek-V2-Lite), hybrid no-KV layers (Jamba, Qwen3-Next), TP replication
(TP > G), PP, all engines, sub-byte and fp8 caches, and compare each with the scalar
`kvplan.fit` report: integers exactly, floats to rounding.
"""

from __future__ import annotations

import io
import json
import math
import random

import pytest

import kvplan
from kvplan.core.sweep import COLUMNS, PLAN_COLUMNS
from kvplan.errors import KvplanError

MODELS = [
    "meta-llama/Llama-3.1-8B-Instruct",  # GQA 8 of 32: TP 16 replicates
    "google/gemma-2-9b-it",  # sliding 4096 + full
    "mistralai/Mistral-7B-v0.1",  # all sliding: max ctx unbounded
    "openai/gpt-oss-20b",  # sliding 128 + full, MoE, mxfp4
    "deepseek-ai/DeepSeek-V2-Lite",  # MLA latent, not split by TP
    "ai21labs/AI21-Jamba-1.5-Mini",  # hybrid: Mamba state + attention
    "Qwen/Qwen3-Next-80B-A3B-Thinking",  # hybrid linear attention
    "meta-llama/Llama-2-70b",  # MHA-era GQA 8, weights do not fit one small GPU
]
GRID = dict(
    gpu=["h100-sxm", "l40s", "a100-80gb"],
    tp=[1, 3, 16],
    pp=[1, 2],
    engine=["vllm", "sglang", "trtllm"],
    kv_dtype=["auto", "fp8", "int4"],
    ctx=[1, 100, 4095, 4096, 4097, 32768, 131072, 1 << 20],
    batch=[1, 3, 64, 1000],
)


@pytest.fixture(scope="module")
def big():
    return kvplan.sweep(MODELS, **GRID, chunk_rows=5000)


def _rows(result):
    for chunk in result.chunks():
        flat = {k: v.ravel() for k, v in chunk.items()}
        for i in range(len(flat["plan"])):
            yield {k: v[i].item() for k, v in flat.items()}


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)


def _assert_row_equals_fit(p, row, **settings):
    """One sweep row against `kvplan.fit` on the same scenario (release and the sweep's
    other `settings` included): every plan column, the row's integers exactly, decode
    latency to rounding, max_ctx against fit's largest-context answer."""
    kw = dict(
        gpu=p.gpu,
        tp=p.tp,
        pp=p.pp,
        engine=p.engine,
        engine_version=p.engine_release,
        kv_dtype=p.kv_dtype,
        **settings,
    )
    f = kvplan.fit(p.model, ctx=row["ctx"], batch=row["batch"], **kw).to_json()
    assert p.engine_version == f["engine_version"]
    assert p.engine_release == f["engine_release"]  # None: the default line, not asked
    for name in PLAN_COLUMNS[PLAN_COLUMNS.index("kv_heads_per_gpu") :]:
        assert getattr(p, name) == f[name], name
    assert row["fits"] == f["fits"]
    assert row["kv_bytes"] == f["kv_bytes"]
    assert row["headroom_bytes"] == f["headroom_bytes"]
    assert row["max_batch"] == f["max_batch"]
    pct = None if math.isnan(row["headroom_pct"]) else row["headroom_pct"]
    assert pct == f["headroom_pct"]
    lat = f["latency"]
    ms = None if math.isnan(row["decode_ms"]) else row["decode_ms"]
    assert _close(ms, lat and lat["decode_ms"]), (p, row, lat)
    b = kvplan.fit(p.model, batch=row["batch"], **kw).to_json()
    assert row["max_ctx"] == b["max_ctx"], (p, row)
    assert row["capped_by_positions"] == b["capped_by_positions"]
    assert row["unbounded"] == b["unbounded"]


def test_grid_size_and_skips(big):
    assert big.rows == len(big.plans) * 8 * 4
    assert len(big.plans) + len(big.skipped) == len(MODELS) * 3 * 3 * 2 * 3 * 3
    assert len(big.plans) > 300
    # TP 3 divides no model's heads: skipped with the reason; TP 16 > G replicates.
    reasons = " ".join(r for _, r in big.skipped)
    assert "does not divide" in reasons


def test_random_rows_equal_fit(big):
    rng = random.Random(14)
    rows = list(_rows(big))
    assert len(rows) == big.rows
    sample = rng.sample(rows, 120)
    # make sure the interesting cases are in the sample
    sample += [
        r
        for r in rows
        if big.plans[r["plan"]].kv_heads_per_gpu * big.plans[r["plan"]].tp
        > big.plans[r["plan"]].kv_heads
    ][:5]
    sample += [r for r in rows if not r["fits"] and r["max_batch"] == 0][:5]
    checked = 0
    for row in sample:
        _assert_row_equals_fit(big.plans[row["plan"]], row)
        checked += 1
    assert checked >= 120


def test_kinds_covered(big):
    kinds = {(p.model, p.tp) for p in big.plans}
    assert ("deepseek-ai/DeepSeek-V2-Lite", 16) in kinds  # MLA under TP
    assert any(p.kv_heads_per_gpu * p.tp > p.kv_heads for p in big.plans)  # replication
    assert any(p.kv_budget_bytes == 0 for p in big.plans)  # weights that do not fit


def test_design_study_rows_equal_pick_g():
    ctx, batch = 65536, 8
    r = kvplan.sweep(
        "meta-llama/Llama-2-13b-hf",
        gpu="a100-80gb",
        kv_heads=[40, 8, 4, 1],
        ctx=ctx,
        batch=batch,
    )
    pg = kvplan.pick_g("meta-llama/Llama-2-13b-hf", gpu="a100-80gb", ctx=ctx, batch=batch)
    by_g = {row.kv_heads: row for row in pg.rows}
    for row in _rows(r):
        p = r.plans[row["plan"]]
        g = by_g[p.kv_heads]
        assert row["fits"] == g.fits
        assert row["kv_bytes"] == g.kv_bytes
        assert row["max_batch"] == g.max_batch
        assert p.kv_budget_bytes == g.kv_budget_bytes
        assert _close(row["decode_ms"], g.decode_ms)


def test_mla_design_study_uses_decompressed_heads_like_pick_g():
    r = kvplan.sweep("deepseek-ai/DeepSeek-V2-Lite", gpu="h100-sxm", kv_heads=[16, 1], ctx=4096)
    pg = kvplan.pick_g("deepseek-ai/DeepSeek-V2-Lite", gpu="h100-sxm", ctx=4096, batch=1)
    by_g = {row.kv_heads: row for row in pg.rows}
    for row in _rows(r):
        p = r.plans[row["plan"]]
        assert row["kv_bytes"] == by_g[p.kv_heads].kv_bytes


def test_hand_computed_row():
    # Llama-3.1-8B, bf16, one H100, vLLM: 32 layers x 8 heads x (128+128) x 2 B = 131072 B
    # per token; ctx 1000 -> 63 blocks of 16 = 1008 tokens -> 132,120,576 B per sequence.
    r = kvplan.sweep("meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", ctx=1000, batch=3)
    (row,) = list(_rows(r))
    assert r.plans[0].kv_bytes_per_token_per_gpu == 32 * 8 * 256 * 2
    assert row["kv_bytes"] == 3 * 1008 * 131072
    assert row["max_batch"] == r.plans[0].kv_budget_bytes // (1008 * 131072)


def test_chunks_stream_the_same_rows():
    a = kvplan.sweep(MODELS[:3], gpu="h100-sxm", ctx=[512, 8192, 70000], batch=[1, 2, 5])
    b = kvplan.sweep(
        MODELS[:3], gpu="h100-sxm", ctx=[512, 8192, 70000], batch=[1, 2, 5], chunk_rows=2
    )
    assert len(list(b.chunks())) > len(list(a.chunks()))
    assert [r["kv_bytes"] for r in _rows(a)] == [r["kv_bytes"] for r in _rows(b)]


def test_bad_input_raises_typed_errors():
    with pytest.raises(KvplanError) as e:
        kvplan.sweep("meta-llama/Llama-3.1-8B-Instruct", gpu="no-such-gpu", ctx=1)
    assert e.value.setting == "gpu"
    with pytest.raises(KvplanError):
        kvplan.sweep("meta-llama/Llama-3.1-8B-Instruct", gpu="h100-sxm", ctx=0)
    with pytest.raises(KvplanError):
        kvplan.sweep("configs/models/nothing-*.json", gpu="h100-sxm", ctx=1)


def test_glob_of_config_files():
    r = kvplan.sweep("configs/models/meta-llama__Llama-2-*-hf.json", gpu="h100-sxm", ctx=4096)
    assert {p.model for p in r.plans} == {
        "meta-llama/Llama-2-7b-hf",
        "meta-llama/Llama-2-13b-hf",
        "meta-llama/Llama-2-70b-hf",
    }


@pytest.mark.parametrize("arrow", [True, False])
def test_jsonl_and_csv_carry_the_rows(monkeypatch, tmp_path, arrow):
    from kvplan.presentation import sweep_view

    if arrow:
        pytest.importorskip("pyarrow")
    else:
        monkeypatch.setattr(sweep_view, "has_pyarrow", lambda: False)
    r = kvplan.sweep(
        ["google/gemma-2-9b-it", "meta-llama/Llama-2-70b"],
        gpu=["l40s", "h200"],
        ctx=[4096, 9000],
        batch=[1, 7],
    )
    expected = list(_rows(r))
    out = tmp_path / "rows.jsonl"
    sweep_view.write(r, "jsonl", str(out))
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == len(expected)
    for got, row in zip(lines, expected, strict=True):
        assert list(got) == list(COLUMNS)
        p = r.plans[row["plan"]]
        assert got["model"] == p.model and got["gpu"] == p.gpu
        assert got["kv_bytes"] == row["kv_bytes"] and got["fits"] == row["fits"]
        ms = row["decode_ms"]
        assert (got["decode_ms"] is None) if math.isnan(ms) else got["decode_ms"] == ms
    csv_out = tmp_path / "rows.csv"
    sweep_view.write(r, "csv", str(csv_out))
    import csv

    table = list(csv.DictReader(io.StringIO(csv_out.read_text())))
    assert len(table) == len(expected)
    assert [int(t["max_ctx"]) for t in table] == [row["max_ctx"] for row in expected]


def test_parquet(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    from kvplan.presentation import sweep_view

    r = kvplan.sweep("openai/gpt-oss-20b", gpu="h100-sxm", ctx=[128, 129, 100000], batch=[1, 9])
    path = tmp_path / "rows.parquet"
    sweep_view.write(r, "parquet", str(path))
    t = pq.read_table(path).to_pylist()
    assert [x["kv_bytes"] for x in t] == [row["kv_bytes"] for row in _rows(r)]
    assert t[0]["model"] == "openai/gpt-oss-20b"


def test_cli_sweep_jsonl(cli):
    r = cli(
        "sweep",
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100-sxm",
        "--ctx",
        "1000,2000",
        "--batch",
        "3",
        "--format",
        "jsonl",
    )
    assert r.code == 0, r.err
    rows = [json.loads(x) for x in r.out.splitlines()]
    assert [x["kv_bytes"] for x in rows] == [3 * 1008 * 131072, 3 * 2000 * 131072]
    bad = cli(
        "sweep", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100-sxm", "--ctx", "x"
    )
    assert bad.code == 2


NEW_LAYOUTS = [
    "deepseek-ai/DeepSeek-V3.2",  # MLA + indexer keys
    "deepseek-ai/DeepSeek-V4-Flash",  # compressed attention: ctx // ratio entries
    "google/gemma-4-26B-A4B",  # per-layer G and head sizes, K = V
    "nvidia/Nemotron-H-56B-Base-8K",  # Mamba-2 pattern
    "meta-llama/Llama-3.2-11B-Vision-Instruct",  # cross-attention K/V in the KV dtype
]


def test_new_layouts_rows_equal_fit():
    r = kvplan.sweep(
        NEW_LAYOUTS,
        gpu="h200",
        tp=8,
        engine=["vllm", "sglang"],
        kv_dtype=["auto", "fp8"],
        ctx=[1, 4096, 65536],
        batch=[1, 16],
    )
    assert not r.skipped
    checked = 0
    for row in _rows(r):
        p = r.plans[row["plan"]]
        kw = dict(gpu=p.gpu, tp=p.tp, engine=p.engine, kv_dtype=p.kv_dtype)
        f = kvplan.fit(p.model, ctx=row["ctx"], batch=row["batch"], **kw).to_json()
        assert (row["kv_bytes"], row["max_batch"], row["fits"]) == (
            f["kv_bytes"],
            f["max_batch"],
            f["fits"],
        ), (p.model, p.engine, p.kv_dtype, row["ctx"], row["batch"])
        lat = f["latency"]
        ms = None if math.isnan(row["decode_ms"]) else row["decode_ms"]
        assert _close(ms, lat and lat["decode_ms"]), (p.model, row, lat)
        checked += 1
    assert checked == 5 * 2 * 2 * 3 * 2


def test_engine_release_axis_rows_equal_fit():
    # vLLM 0.6 (V0), 0.16 and 0.33 and SGLang 0.4.3: each release's own budget terms,
    # scheduler defaults and latency profile, row for row as `fit --engine-version` answers
    models = [
        "meta-llama/Llama-3.1-8B-Instruct",
        "google/gemma-2-9b-it",
        "deepseek-ai/DeepSeek-V2-Lite",
        "Qwen/Qwen3-Next-80B-A3B-Thinking",
    ]
    r = kvplan.sweep(
        models,
        gpu="h100-sxm",
        tp=[1, 2],
        engine=["vllm", "sglang"],
        engine_version=["0.6", "0.16", "0.33", "0.4.3"],
        kv_dtype=["auto", "fp8"],
        ctx=[100, 4097, 131072],
        batch=[1, 64],
    )
    asked = {(p.engine, p.engine_release) for p in r.plans}
    assert {("vllm", "0.6"), ("vllm", "0.16"), ("vllm", "0.33"), ("sglang", "0.4.3")} <= asked
    # the releases differ: not one default line under four names
    assert len({p.engine_version for p in r.plans}) == 4
    for scenario, _ in r.skipped:  # a release another engine does not model is skipped
        with pytest.raises(KvplanError) as e:
            kvplan.fit(
                scenario["model"],
                gpu=scenario["gpu"],
                tp=scenario["tp"],
                engine=scenario["engine"],
                engine_version=scenario["engine_version"],
                kv_dtype=scenario["kv_dtype"],
                ctx=100,
            )
        assert e.value.setting == "engine_version"
    checked = 0
    for row in _rows(r):
        _assert_row_equals_fit(r.plans[row["plan"]], row)
        checked += 1
    assert checked == len(r.plans) * 3 * 2 > 0


def test_cli_sweep_engine_version(cli):
    r = cli(
        "sweep",
        "--model",
        "meta-llama/Llama-3.1-8B-Instruct",
        "--gpu",
        "h100-sxm",
        "--engine",
        "vllm",
        "--engine-version",
        "0.6,0.33",
        "--ctx",
        "8192",
        "--format",
        "jsonl",
    )
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    for row, release in zip(rows, ("0.6", "0.33"), strict=True):
        f = kvplan.fit(
            "meta-llama/Llama-3.1-8B-Instruct",
            gpu="h100-sxm",
            engine_version=release,
            ctx=8192,
            batch=1,
        ).to_json()
        assert row["engine_version"] == f["engine_version"]
        assert (row["kv_budget_bytes"], row["max_batch"]) == (
            f["kv_budget_bytes"],
            f["max_batch"],
        )


def test_pool_settings_rows_equal_fit():
    """Separate KV pools (TensorRT-LLM --vswa per window, SGLang's full + sliding-window
    pools at a --swa-full-tokens-ratio) cap the batch pool by pool: every sweep row, fits and
    headroom included, is `fit`'s answer with the same settings (rows past the largest batch
    do not fit even where the total bytes would)."""
    models = ["google/gemma-3-1b-it", "openai/gpt-oss-20b"]
    grid = dict(gpu="h100-sxm", ctx=[100, 4097, 32768], batch=[1, 64, 1000])
    for engine, releases, settings in (
        ("trtllm", ["pytorch", "trt", "1.0.0", "0.21.0"], {"vswa": True}),
        ("sglang", ["0.4.10.post2", "0.5.8"], {"swa_full_tokens_ratio": 0.5}),
    ):
        r = kvplan.sweep(models, engine=engine, engine_version=releases, **grid, **settings)
        assert not r.skipped
        pooled = [p for p in r.plans if p.scalar is not None]
        assert pooled, engine
        checked = 0
        for row in _rows(r):
            _assert_row_equals_fit(r.plans[row["plan"]], row, **settings)
            checked += 1
        assert checked == len(models) * len(releases) * 3 * 3


def test_sglang_swa_check_uses_the_scarcer_pool():
    """Gemma-3-27B, TP 4 on H200, SGLang 0.4.10.post2 (ratio 0.8): the full pool holds
    1,119,132 tokens at 10 layers x 2,048 B = 20,480 B per token; 34 requests of 32,768
    tokens leave (1,119,132 - 1,114,112) x 20,480 = 102,809,600 B, a 35th is
    27,748 tokens short: -568,279,040 B, so it does not fit although the total bytes
    (27.3 GB of a 118 GB budget) would."""
    kw = dict(gpu="h200", tp=4, engine="sglang", engine_version="0.4.10.post2", ctx=32768)
    ok = kvplan.fit("google/gemma-3-27b-it", batch=34, **kw).to_json()
    assert (ok["fits"], ok["max_batch"], ok["headroom_bytes"]) == (True, 34, 102_809_600)
    no = kvplan.fit("google/gemma-3-27b-it", batch=35, **kw).to_json()
    assert (no["fits"], no["max_batch"], no["headroom_bytes"]) == (False, 34, -568_279_040)
    assert no["kv_bytes"] < no["kv_budget_bytes"]


def test_cli_sweep_takes_the_other_settings_and_names_the_release(cli):
    """`sweep` takes every deployment option it does not sweep (--max-model-len,
    --enable-prefix-caching, --vswa, ...) once, as `fit` does; each row names the release
    asked for (engine_release), since releases of one line differ (vLLM hybrids: prefix
    caching on by default from 0.28.0; 0.33's GDN checkpoint page)."""
    args = ["--model", "Qwen/Qwen3.5-27B", "--gpu", "h100-sxm", "--ctx", "32768"]
    args += ["--engine-version", "0.24.0,0.28.0,0.33", "--max-model-len", "32768"]
    r = cli("sweep", *args, "--enable-prefix-caching", "--format", "jsonl")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert [(x["engine_version"], x["engine_release"]) for x in rows] == [
        ("vLLM 0.33", "0.24.0"),
        ("vLLM 0.33", "0.28.0"),
        ("vLLM 0.33", "0.33"),
    ]
    for row in rows:
        f = kvplan.fit(
            "Qwen/Qwen3.5-27B",
            gpu="h100-sxm",
            ctx=32768,
            batch=1,
            engine_version=row["engine_release"],
            max_model_len=32768,
            enable_prefix_caching=True,
        ).to_json()
        assert f["engine_release"] == row["engine_release"]
        assert (row["kv_tokens"], row["max_batch"]) == (f["kv_tokens"], f["max_batch"])
    # 0.33 with prefix caching: 333 blocks of 832 tokens, 6 sequences (GDN checkpoint page)
    assert (rows[2]["kv_blocks"], rows[2]["kv_tokens"], rows[2]["max_batch"]) == (333, 277_056, 6)
    r = cli("sweep", *args, "--vswa")
    assert r.code == 2
    assert "--vswa is a trtllm setting, but --engine is vllm" in r.err
