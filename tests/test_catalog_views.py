"""`kvplan models` and `kvplan gpus` as listings: sorted, filtered, the right labels."""

from __future__ import annotations

from conftest import run_cli

from kvplan.units import GiB, fmt_n


def test_models_sorted_with_max_context_and_filters() -> None:
    r = run_cli("models", "--json")
    names = [m["model"] for m in r.json["models"]]
    assert names == sorted(names, key=str.lower)
    by = {m["model"]: m for m in r.json["models"]}
    assert by["meta-llama/Llama-3.1-8B-Instruct"]["max_context"] == 131072  # config.json
    fam = run_cli("models", "--family", "mixtral", "--json").json["models"]
    assert fam and {m["family"] for m in fam} == {"mixtral"}
    # a family's start matches its versions (qwen -> qwen2, qwen3, qwen3_moe, ...)
    qwen = {m["family"] for m in run_cli("models", "--family", "qwen", "--json").json["models"]}
    assert {"qwen2", "qwen3", "qwen3_moe"} <= qwen and all(f.startswith("qwen") for f in qwen)
    none = run_cli("models", "--family", "nosuchfamily")
    assert none.code == 2 and "no bundled model of that family" in none.err
    assert "families: " in none.err and "llama" in none.err
    mla = run_cli("models", "--attention", "mla", "--json").json["models"]
    assert mla and {m["attention"] for m in mla} == {"mla"}
    # DeepSeek-V2/V3: kv_lora_rank 512 + qk_rope_head_dim 64 cached per token per layer
    assert {m["kv_latent_dim"] for m in mla} == {576}
    text = run_cli("models", "--attention", "mla").out
    assert "latent 576" in text and "163,840" in text
    bad = run_cli("models", "--attention", "heads")
    assert bad.code == 2 and "--attention must be one of mha, gqa, mqa, mla, hybrid" in bad.err


def test_gpus_name_the_16_bit_dtype_and_memory_kind() -> None:
    doc = {g["name"]: g for g in run_cli("gpus", "--json").json["gpus"]}
    assert "bf16" not in doc["v100-16gb"]["flops"] and "bf16" not in doc["t4"]["flops"]
    out = run_cli("gpus", env={"COLUMNS": "400"}).out  # the table layout: one row per line
    v100 = next(line for line in out.splitlines() if "v100-16gb" in line)
    assert "125 fp16" in v100 and "bf16" not in v100
    h100 = next(line for line in out.splitlines() if "h100-sxm " in line)
    assert "989 bf16" in h100
    assert (doc["h100-sxm"]["memory_family"], doc["l4"]["memory_family"]) == ("HBM", "GDDR")
    assert doc["m4-max"]["memory_family"] == "unified"
    # the memory column is the one figure fit starts from: CUDA's total where known
    a100 = doc["a100-80gb"]
    assert a100["usable_memory_bytes"] == a100["cuda_memory_bytes"] == 84_987_084_800
    line = next(x for x in out.splitlines() if "a100-80gb " in x)
    assert f"{84_987_084_800 / GiB:,.2f}" in line  # 79.15


def test_counts_are_not_written_with_s_in_brackets() -> None:
    assert fmt_n(1, "sequence") == "1 sequence"
    assert fmt_n(2, "sequence") == "2 sequences"
    assert fmt_n(1024, "token") == "1,024 tokens"


def test_llama_2_13b_is_the_current_revision_with_4096_positions() -> None:
    """The early Hub revision said 2,048 positions; the current config says 4,096 (the
    Llama 2 paper's 4k context). The catalog records which revision it holds."""
    from kvplan.sources.catalog import load_catalog

    catalog = load_catalog()
    entry = next(e for e in catalog.entries if e.repo_id == "meta-llama/Llama-2-13b-hf")
    assert catalog.load(entry).max_position_embeddings == 4096
    assert entry.revision and entry.verified


def test_instruct_and_base_variants_resolve_alike(monkeypatch) -> None:
    """Mixtral-8x22B-Instruct resolves to the catalog like Mixtral-8x7B-Instruct does."""
    from kvplan.sources.resolve import resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # from the catalog, never the network

    for instruct, base in (
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", "mistralai/Mixtral-8x7B-v0.1"),
        ("mistralai/Mixtral-8x22B-Instruct-v0.1", "mistralai/Mixtral-8x22B-v0.1"),
    ):
        a, b = resolve_model(instruct).spec, resolve_model(base).spec
        assert (a.num_layers, a.query_heads, a.kv_heads, a.head_dim) == (
            b.num_layers,
            b.query_heads,
            b.kv_heads,
            b.head_dim,
        )
