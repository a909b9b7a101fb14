"""The rotary cos/sin tables an engine builds at load (ModelSpec.rope, capacity.rope_cache_bytes).

Every expected figure is computed by hand from the model's published config.json and the
engine's source: vLLM's get_rope builds one [positions, rotary_dim] table per distinct rope
argument set (vllm/model_executor/layers/rotary_embedding/__init__.py), positions by rope
type (base.py: max_position_embeddings; linear x factor; yarn / deepseek_yarn: original x
factor; longrope: max + original; mrope: x 4), in the model dtype (gpt-oss: fp32).
"""

from __future__ import annotations

import pytest
from conftest import catalog_spec, gpu

from kvplan.core.capacity import Deployment, plan, rope_cache_bytes
from kvplan.core.engines import Engine
from kvplan.sources.hf_config import parse_hf_config
from kvplan.units import GiB

MiB = 1024**2


def tables(name: str) -> list[tuple[int, int, int, bool]] | None:
    spec = catalog_spec(name)
    if spec.rope is None:
        return None
    return sorted((t.positions, t.rotary_dim, t.count, t.float32) for t in spec.rope)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # llama3 rope: max_position_embeddings 10,485,760, head_dim 128
        ("meta-llama/Llama-4-Scout-17B-16E-Instruct", [(10_485_760, 128, 1, False)]),
        # Gemma-3: global layers linear x 8 over 131,072 positions, sliding layers a second
        # (default, rope_local_base_freq) table of 131,072; head_dim 128
        ("google/gemma-3-27b-it", [(131_072, 128, 1, False), (1_048_576, 128, 1, False)]),
        # gemma-3-1b: no scaling, but two rope bases: two tables of 32,768 x 256
        ("google/gemma-3-1b-it", [(32_768, 256, 2, False)]),
        # gpt-oss: yarn, original 4,096 x factor 32, head_dim 64, built in fp32
        ("openai/gpt-oss-20b", [(131_072, 64, 1, True)]),
        # DeepSeek-V2-Lite (MLA): qk_rope_head_dim 64, yarn original 4,096 x factor 40
        ("deepseek-ai/DeepSeek-V2-Lite", [(163_840, 64, 1, False)]),
        # Phi-4-mini: longrope short (4,096) + long (131,072) caches; 3072 / 24 = 128 x 0.75
        ("microsoft/Phi-4-mini-instruct", [(135_168, 96, 1, False)]),
        # Qwen3.5: mrope_section -> 4 x 262,144 positions; head_dim 256 x 0.25
        ("Qwen/Qwen3.5-9B", [(1_048_576, 64, 1, False)]),
        # GPT-NeoX-20B: rotary_pct 0.25 of 6144 / 64 = 96 -> 24
        ("EleutherAI/gpt-neox-20b", [(2_048, 24, 1, False)]),
        # GPT-J: rotary_dim 64 over n_positions 2,048
        ("EleutherAI/gpt-j-6b", [(2_048, 64, 1, False)]),
        # no rotary embedding: ALiBi (BLOOM), NoPE (Jamba, Nemotron-H), learned (GPT-2)
        ("bigscience/bloom-560m", []),
        ("ai21labs/AI21-Jamba-1.5-Mini", []),
        ("openai-community/gpt2", []),
        # a layout kvplan does not read: the term is left out (None), never an error
        ("google/gemma-4-26B-A4B", None),
    ],
)
def test_rope_tables_from_the_published_configs(name, expected):
    assert tables(name) == expected


def test_unread_rope_layout_is_an_assumption_not_an_error():
    cfg = {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_hidden_layers": 4,
        "intermediate_size": 14336,
        "vocab_size": 32000,
        "max_position_embeddings": 8192,
        "rope_scaling": {"rope_type": "some_future_rope", "factor": 4.0},
    }
    spec = parse_hf_config(cfg, name="x", origin="x")
    assert spec.rope is None
    assert any("rotary cos/sin cache not counted" in a for a in spec.assumptions)
    assert rope_cache_bytes(Deployment(spec=spec, gpu=gpu("h100-sxm"))) == 0
    known = parse_hf_config({**cfg, "rope_scaling": None}, name="x", origin="x")
    assert known.rope is not None and known.rope[0].positions == 8192


def test_vllm_counts_every_table_whole_on_each_gpu():
    spec = catalog_spec("google/gemma-3-27b-it")
    h100 = gpu("h100-sxm")
    # (1,048,576 + 131,072) x 128 x 2 B = 288 MiB, at TP 1 and TP 2 alike
    for tp in (1, 2):
        assert rope_cache_bytes(Deployment(spec=spec, gpu=h100, tp=tp)) == 288 * MiB
    # the engine's own loaded-memory figure already holds it
    logged = Deployment(spec=spec, gpu=h100, weights_override=50 * GiB, weights_loaded=True)
    assert rope_cache_bytes(logged) == 0
    # checkpoint bytes (not a loaded figure) get it added
    exact = Deployment(spec=spec, gpu=h100, weights_override=50 * GiB)
    assert plan(exact).weights_per_gpu == 50 * GiB + 288 * MiB


def test_dtype_of_the_table_per_engine_and_model():
    h100, mi300x = gpu("h100-sxm"), gpu("mi300x")
    llama = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    one = 131_072 * 128  # elements
    assert rope_cache_bytes(Deployment(spec=llama, gpu=h100)) == one * 2  # vLLM: bf16
    # SGLang keeps it in fp32 on CUDA and casts it to the model dtype elsewhere
    sglang = Engine.SGLANG
    assert rope_cache_bytes(Deployment(spec=llama, gpu=h100, engine=sglang)) == one * 4
    assert rope_cache_bytes(Deployment(spec=llama, gpu=mi300x, engine=sglang)) == one * 2
    # TensorRT-LLM: not verified, not counted
    assert rope_cache_bytes(Deployment(spec=llama, gpu=h100, engine=Engine.TRTLLM)) == 0
    # gpt-oss asks vLLM for an fp32 table: 131,072 x 64 x 4 B = 32 MiB
    oss = catalog_spec("openai/gpt-oss-20b")
    assert rope_cache_bytes(Deployment(spec=oss, gpu=h100)) == 32 * MiB


def test_fit_shows_the_table_in_the_weights_line():
    from conftest import run_cli

    args = ("fit", "meta-llama/Llama-4-Scout-17B-16E-Instruct", "--gpu", "h100-sxm", "--tp", "4")
    r = run_cli(*args)
    assert r.code in (0, 1), r.err
    assert "+ rotary cache 2.50 GiB" in r.out
    j = run_cli(*args, "--json")
    assert j.json["rope_cache_bytes"] == 10_485_760 * 128 * 2
