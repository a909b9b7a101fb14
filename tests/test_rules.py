"""The rules that matter, pinned: each was mutated on purpose once and these tests failed.

- pick-g recommends the LARGEST G whose workload fits (not the smallest cache);
- each engine's TP rule for KV heads (vLLM: G and TP divide one another, max(1, G // tp);
  others: ceil(G / tp));
- an explicit flag / policy key wins over every default (engine fraction, scheduler limits,
  max_model_len), and means the same on the command line and in a policy;
- a setting declared once: every Deployment field is a flag and a policy key.
"""

from __future__ import annotations

import pytest
from conftest import catalog_spec, gpu, run_cli

from kvplan.core.capacity import plan
from kvplan.core.deployment import Deployment, flag_name, settings
from kvplan.core.design import pick_g
from kvplan.core.engines import ENGINES, Engine, TpError
from kvplan.sources.deployment import parse_deployment
from kvplan.units import GiB

L2_13B = "meta-llama/Llama-2-13b-hf"  # H = 40 query heads, 40 layers, head_dim 128


# ---- pick-g: the largest G that fits ---------------------------------------------------
def test_pick_g_recommends_the_largest_g_that_fits_not_the_smallest():
    # Llama-2-13B geometry, fixed 40 GiB KV budget, 16 x 8192 tokens, bf16:
    # per token per KV head: 40 layers x 2 x 128 x 2 B = 20,480 B;
    # G heads need 16 x 8192 x 20,480 x G = 2.5 GiB x G  -> G <= 16 fits 40 GiB.
    # Divisors of 40 that fit: 1, 2, 4, 5, 8, 10 (20 needs 50 GiB, 40 needs 100 GiB).
    d = Deployment(
        spec=catalog_spec(L2_13B), gpu=gpu("a100-80gb"), engine=Engine.NONE, kv_memory=40 * GiB
    )
    result = pick_g(d, ctx=8192, batch=16)
    fits = {row.kv_heads for row in result.rows if row.fits}
    assert fits == {1, 2, 4, 5, 8, 10}
    assert result.recommended_kv_heads == 10


def test_pick_g_recommends_mha_when_it_fits():
    d = Deployment(
        spec=catalog_spec(L2_13B), gpu=gpu("a100-80gb"), engine=Engine.NONE, kv_memory=40 * GiB
    )
    # 1 x 8192 tokens at G=40 needs 40 x 2.5 / 16 = 6.25 GiB: everything fits, MHA wins.
    assert pick_g(d, ctx=8192, batch=1).recommended_kv_heads == 40


# ---- each engine's TP rule -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("g", "tp", "heads"),
    [(8, 1, 8), (8, 2, 4), (8, 8, 1), (8, 16, 1), (2, 8, 1), (40, 8, 5)],
)
def test_vllm_kv_heads_per_gpu(g, tp, heads):
    assert ENGINES[Engine.VLLM].kv_heads_per_gpu(g, tp) == heads


@pytest.mark.parametrize(("g", "tp"), [(8, 3), (8, 12), (40, 16), (6, 4)])
def test_vllm_refuses_tp_and_g_that_do_not_divide_each_other(g, tp):
    with pytest.raises(TpError) as err:
        ENGINES[Engine.VLLM].kv_heads_per_gpu(g, tp)
    assert err.value.setting == "tp"


@pytest.mark.parametrize("engine", [Engine.SGLANG, Engine.TRTLLM, Engine.NONE])
@pytest.mark.parametrize(("g", "tp", "heads"), [(8, 3, 3), (8, 12, 1), (6, 4, 2), (40, 16, 3)])
def test_other_engines_take_the_ceiling(engine, g, tp, heads):
    assert ENGINES[engine].kv_heads_per_gpu(g, tp) == heads


def test_pick_g_marks_g_that_vllm_refuses_at_this_tp():
    # H = 40 at TP 8 under vLLM: G must divide 8 or be a multiple of 8 -> {1, 2, 4, 8, 40};
    # 5, 10 and 20 are refused (shown as rows saying why, never recommended). SGLang takes
    # every divisor of 40.
    spec = catalog_spec(L2_13B)
    vllm = pick_g(Deployment(spec=spec, gpu=gpu("h100-sxm"), tp=8), ctx=4096, batch=1)
    assert {r.kv_heads for r in vllm.rows if r.invalid_reason is None} == {1, 2, 4, 8, 40}
    refused = {r.kv_heads for r in vllm.rows if r.invalid_reason is not None}
    assert refused == {5, 10, 20}
    assert all(not r.fits for r in vllm.rows if r.kv_heads in refused)
    sglang = pick_g(
        Deployment(spec=spec, gpu=gpu("h100-sxm"), tp=8, engine=Engine.SGLANG), ctx=4096, batch=1
    )
    assert {r.kv_heads for r in sglang.rows if r.invalid_reason is None} == {
        1,
        2,
        4,
        5,
        8,
        10,
        20,
        40,
    }


# ---- explicit settings win over defaults -----------------------------------------------------
def _parse(**raw: object) -> Deployment:
    return parse_deployment(
        catalog_spec("meta-llama/Llama-3.1-8B-Instruct"), {"gpu": "h100", **raw}
    )


def test_engine_defaults_apply_only_when_nothing_is_given():
    assert _parse().fraction == 0.90
    assert _parse(gpu_memory_utilization=0.5).fraction == 0.5
    old = _parse(engine="sglang", tp=8, engine_version="0.4.3")
    assert old.fraction == 0.81  # SGLang v0.4 default at TP 8
    # 0.5.3+ at TP 8 on an H100: 512 + 8192 x 1.5 + 512 x 2 + 8/8 x 1024 = 14,848 MiB
    assert _parse(engine="sglang", tp=8).fraction == round(1 - 14848 / 81559, 3) == 0.818
    assert _parse(engine="sglang", tp=8, mem_fraction_static=0.7).fraction == 0.7
    d = _parse()
    assert (d.scheduler_seqs, d.scheduler_tokens) == (
        ENGINES[Engine.VLLM].max_num_seqs,
        ENGINES[Engine.VLLM].max_num_batched_tokens,
    )
    d = _parse(max_num_seqs=7, max_num_batched_tokens=1024)
    assert (d.scheduler_seqs, d.scheduler_tokens) == (7, 1024)


def test_explicit_scheduler_limits_change_the_budget():
    base = plan(_parse())
    fewer = plan(_parse(max_num_seqs=1, max_num_batched_tokens=512))
    assert fewer.budget.activations < base.budget.activations
    assert fewer.budget.kv_budget > base.budget.kv_budget


def test_max_model_len_flag_wins_over_the_models_max_positions():
    # Llama-3.1-8B: 131,072 positions. vLLM's "maximum concurrency" figure is quoted at the
    # max_model_len the user gives, else at the model's maximum.
    args = ("fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--ctx", "8192")
    default = run_cli(*args, "--json").json
    given = run_cli(*args, "--max-model-len", "8192", "--json").json
    assert default["max_model_len"] == 131_072
    assert given["max_model_len"] == 8192
    # the pool is the same; one 8192-token request takes 512 blocks, one 131,072-token 8192
    assert given["max_concurrency"] == pytest.approx(given["kv_blocks"] / 512)
    assert default["max_concurrency"] == pytest.approx(default["kv_blocks"] / 8192)


def test_a_knob_of_another_engine_is_refused_with_its_setting():
    with pytest.raises(Exception) as err:
        _parse(engine="sglang", gpu_memory_utilization=0.5)
    assert getattr(err.value, "setting", None) == "gpu_memory_utilization"


# ---- one declaration ---------------------------------------------------------------------------
def test_every_setting_is_a_flag_of_fit_and_a_policy_key():
    from kvplan.sources.policy import policy_schema

    help_text = run_cli("fit", "--help", env={"COLUMNS": "300"}).out
    schema = policy_schema()
    target_keys = set(schema["$defs"]["TargetPolicy"]["properties"])
    for name in settings():
        assert flag_name(name) in help_text, name
        assert name in target_keys, name


# ---- TP beyond one node ------------------------------------------------------------------------
def test_tp_beyond_one_node_is_said():
    # DGX/HGX H100: 8 GPUs per NVLink node (configs/gpus.yaml node_gpus, with its source)
    spec = catalog_spec("meta-llama/Llama-3.1-70B-Instruct")
    notes16 = " ".join(plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), tp=16)).notes)
    assert "TP 16 spans more GPUs than one h100-sxm node" in notes16
    assert "TP 8 x PP 2 keeps TP in a node" in notes16
    notes8 = " ".join(plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), tp=8)).notes)
    assert "spans" not in notes8
    # PCIe-only cards have no node figure: nothing is claimed
    notes_l40s = " ".join(plan(Deployment(spec=spec, gpu=gpu("l40s"), tp=16)).notes)
    assert "spans" not in notes_l40s


def test_profile_names_are_labels_a_user_reads():
    # the release line is part of the label ("vLLM 0.19"); the plain-arithmetic row has no
    # release and reads "no engine" (it printed "no engine -" in the fit title and JSON)
    from kvplan.core.engines import profile_for

    assert profile_for(Engine.VLLM, None).name == "vLLM 0.19"
    assert profile_for(Engine.NONE, None).name == "no engine"


def test_engine_none_refuses_a_release():
    # plain arithmetic has no releases: --engine-version would be ignored, so it is bad input
    r = run_cli(
        "fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--ctx", "4096",
        "--engine", "none", "--engine-version", "0.19",
    )  # fmt: skip
    assert r.code == 2
    assert r.err.startswith("Error: --engine-version names an engine release")
    assert "Traceback" not in r.err


def test_engine_label_names_the_release_asked_for_and_its_line():
    # a release number is scored on the line that covers it; output names both, so a user
    # who asked for 0.21.0 is not told what "vLLM 0.33" would log (JSON keeps the line)
    spec, h100 = catalog_spec("meta-llama/Llama-3.1-8B-Instruct"), gpu("h100-sxm")
    assert Deployment(spec=spec, gpu=h100).engine_label == "vLLM 0.19"
    assert Deployment(spec=spec, gpu=h100, engine_version="0.33").engine_label == "vLLM 0.33"
    asked = Deployment(spec=spec, gpu=h100, engine_version="0.21.0")
    assert asked.engine_label == "vLLM 0.21.0 [0.33 line]"
    r = run_cli(
        "fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--ctx", "8192",
        "--engine-version", "0.21.0",
    )  # fmt: skip
    assert "vLLM 0.21.0 [0.33 line] would log:" in r.out
    j = run_cli(
        "fit", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--ctx", "8192",
        "--engine-version", "0.21.0", "--json",
    )  # fmt: skip
    assert j.json["engine_version"] == "vLLM 0.33"


def test_pick_g_names_the_engine_line_whose_budget_it_uses():
    # the budget column is the engine's; the title and JSON now say which line
    args = ("pick-g", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "h100", "--ctx", "8192")
    r = run_cli(*args, "--batch", "16", "--engine", "sglang")
    assert "(1 GPU: TP 1, PP 1, KV bf16, SGLang 0.5)" in r.out
    assert run_cli(*args, "--batch", "16", "--json").json["engine_version"] == "vLLM 0.19"
