"""`kvplan plan` core: occupancy integral, prefix caching, host tier, serving identities.

Numbers are hand-computed from the model's config: Llama-3.1-8B caches
2 (K, V) x 32 layers x 8 KV heads x 128 x 2 bytes = 131,072 bytes per token.
"""

from __future__ import annotations

from math import ceil

import pytest
from conftest import catalog_spec, gpu

from kvplan.core.capacity import max_batch, plan
from kvplan.core.deployment import Deployment
from kvplan.core.roofline import default_efficiency, estimate_decode
from kvplan.core.serving import (
    DECODE_FACTOR,
    PREFILL_FACTOR,
    TTFT_OVERHEAD_S,
    Price,
    Serving,
    build_report,
    cost,
    search_space,
)
from kvplan.core.workload import occupancy, workload
from kvplan.errors import KvplanError
from kvplan.units import GiB

PER_TOKEN = 2 * 32 * 8 * 128 * 2  # Llama-3.1-8B, bytes per token, bf16


def deployment(**kw) -> Deployment:
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    settings = {"gpu": gpu(kw.pop("gpu", "h100-sxm")), "kv_dtype": "bf16", **kw}
    return Deployment(spec=spec, **settings)


@pytest.mark.parametrize(
    ("inp", "out", "gpu_name", "tp"),
    [(2048, 512, "h100-sxm", 1), (1000, 24, "a100-80gb", 2), (31000, 1000, "l40s", 1)],
)
def test_guaranteed_equals_fit_for_fixed_lengths(inp, out, gpu_name, tp):
    p = plan(deployment(gpu=gpu_name, tp=tp, max_num_seqs=2048))
    occ = occupancy(p, workload("x", [(inp, out)]))
    assert 0 < occ.max_concurrency_guaranteed == max_batch(p, inp + out) < 2048


def test_occupancy_integral_by_hand_block_1():
    p = plan(deployment(block_size=1))
    occ = occupancy(p, workload("x", [(100, 4)]))
    # the request holds 100, 101, 102, 103 tokens over its 4 steps
    assert occ.steady_bytes_mean == pytest.approx(PER_TOKEN * 101.5)
    assert occ.mean_context == pytest.approx(101.5)
    assert occ.full_bytes_mean == 104 * PER_TOKEN
    # variance of (100..103) x PER_TOKEN: 1.25 tokens^2
    assert occ.steady_bytes_std == pytest.approx(PER_TOKEN * 1.25**0.5)


def test_occupancy_is_block_rounded():
    p = plan(deployment(block_size=16))
    occ = occupancy(p, workload("x", [(100, 4)]))
    # 100..103 tokens all sit in 7 blocks of 16 = 112 token slots
    assert occ.steady_bytes_mean == 112 * PER_TOKEN
    assert occ.steady_bytes_std == 0


def test_mix_weights_residents_by_output_length():
    """Little's law: a request type is resident in proportion to its output length."""
    p = plan(deployment(block_size=1))
    occ = occupancy(p, workload("mix", [(100, 1), (1000, 3)]))
    # steps: (100) and (1000, 1001, 1002): mean over the 4 resident-steps
    assert occ.steady_bytes_mean == pytest.approx(PER_TOKEN * (100 + 1000 + 1001 + 1002) / 4)
    # guaranteed: mean over requests of full length (101 and 1003 tokens)
    assert occ.full_bytes_mean == pytest.approx(PER_TOKEN * (101 + 1003) / 2)


def test_steady_concurrency_is_the_risk_limit():
    p = plan(deployment(max_num_seqs=2048))
    occ = occupancy(p, workload("x", [(2048, 2048)]))
    n = occ.max_concurrency_steady
    assert n > occ.max_concurrency_guaranteed  # growing requests average half their output
    assert occ.preemption_probability(n) <= 0.01 < occ.preemption_probability(n + 1)
    assert n <= occ.max_concurrency_mean_fill


def test_engine_cap_applies_to_both():
    p = plan(deployment(max_num_seqs=8))
    occ = occupancy(p, workload("x", [(128, 128)]))
    assert occ.max_concurrency_guaranteed == occ.max_concurrency_steady == 8
    assert occ.capped_by_engine


def test_prefix_is_stored_once_in_whole_blocks():
    p = plan(deployment(block_size=16, max_num_seqs=2048))
    occ = occupancy(p, workload("x", [(2000, 100)], prefix_len=1000))
    assert occ.shared_prefix_tokens == 992  # 62 whole blocks
    assert occ.shared_prefix_bytes == 992 * PER_TOKEN
    # full length 2100 tokens = 132 blocks; 62 of them shared -> 70 private blocks
    private = 70 * 16 * PER_TOKEN
    assert occ.full_bytes_max == private
    assert occ.max_concurrency_guaranteed == (p.budget.kv_budget - 992 * PER_TOKEN) // private


def test_prefix_longer_than_input_is_bad_input():
    with pytest.raises(KvplanError):
        workload("x", [(100, 10)], prefix_len=101)


@pytest.mark.parametrize("pair", [(0, 10), (10, 0), (-1, 5)])
def test_non_positive_lengths_are_bad_input(pair):
    with pytest.raises(KvplanError):
        workload("x", [pair])


def test_host_tier_tokens_by_hand():
    from kvplan.core.workload import host_tier

    p = plan(deployment(block_size=16))
    h = host_tier(p, workload("x", [(1024, 10)]), 1 * GiB)
    # one block = 16 tokens x 131,072 B = 2 MiB -> 512 blocks -> 8,192 tokens
    assert (h.block_bytes, h.blocks, h.tokens) == (2 * 2**20, 512, 8192)
    assert h.prompts_held == 8


def test_tpot_composition_matches_the_roofline():
    """TPOT = DECODE_FACTOR x roofline step at the mean context + (C x P + overhead) / out."""
    p = plan(deployment())
    w = workload("x", [(1000, 200)])
    occ = occupancy(p, w)
    s = Serving(p, w, occ)
    c = 32
    point = s.point(c)
    ctx = round(occ.mean_context)
    assert ctx == 1100  # 1000 + (0 + ... + 199) / 200 = 1099.5 -> 1100 (banker's: 1100)
    step_ms = DECODE_FACTOR * estimate_decode(p, batch=c, ctx=ctx).decode_ms
    assert point.decode_step_ms == pytest.approx(step_ms)
    eff = default_efficiency(p.deployment.gpu, p.deployment.engine.value)
    est = estimate_decode(p, batch=1, ctx=1000, efficiency=eff)
    prefill_ms = PREFILL_FACTOR * est.prefill_flops / (est.peak_flops * eff.compute) * 1e3
    assert point.prefill_ms_per_request == pytest.approx(prefill_ms)
    over_ms = TTFT_OVERHEAD_S * 1e3
    assert point.tpot_ms == pytest.approx(step_ms + (c * prefill_ms + over_ms) / 200)
    assert point.output_tokens_per_s == pytest.approx(c * 1000 / point.tpot_ms)
    assert point.e2e_ms == pytest.approx(200 * point.tpot_ms)
    chunks = ceil(1000 / (8192 - c))
    assert point.ttft_ms == pytest.approx(prefill_ms + chunks * step_ms + over_ms)
    # benchmarks' TPOT excludes the first token: only the other C-1 prefills interfere
    after = ((200 - chunks) * step_ms + (c - 1) * prefill_ms) / 199
    assert point.tpot_after_first_ms == pytest.approx(after)


def test_cost_formula():
    price = Price(usd_per_gpu_hour=2.0, source="test")
    c = cost(price, 4, output_tokens_per_s=1000.0, input_tokens_per_s=4000.0)
    # 8 $/h over 3.6 M output tokens per hour
    assert c.cost_per_million_output_tokens == pytest.approx(8 / 3.6)
    assert c.cost_per_million_input_tokens == pytest.approx(8 / 14.4)
    assert c.usd_per_month == pytest.approx(8 * 730)


def test_sizing_identities_and_ranking():
    d = deployment()
    w = workload("x", [(1000, 200)])
    r = build_report(
        model="m",
        source="s",
        deployments=[d, deployment(gpu="a100-80gb")],
        w=w,
        rate=30.0,
        slo_tpot_s=0.05,
        slo_ttft_s=2.0,
        prices={
            "h100-sxm": Price(usd_per_gpu_hour=3.0, source="t"),
            "a100-80gb": Price(usd_per_gpu_hour=1.5, source="t"),
        },
    )
    assert r.targets_met and r.chosen == 0
    feasible = [o for o in r.options if o.feasible]
    assert feasible
    for o in feasible:
        assert o.gpus == o.replicas * o.tp * o.pp
        assert o.point is not None and o.cost is not None
        assert o.point.tpot_after_first_ms <= 50 + 1e-9
        assert o.point.ttft_ms <= 2000 + 1e-9
        assert o.cost.output_tokens_per_hour == pytest.approx(30 * 200 * 3600)
        assert o.cost.cost_per_million_output_tokens == pytest.approx(
            o.cost.usd_per_gpu_hour * o.gpus / (o.cost.output_tokens_per_hour / 1e6)
        )
        # the replicas together keep up with the rate (Little's law per replica)
        assert o.replicas * o.replica_capacity_rps >= 30 - 1e-9
    costs = [o.cost.cost_per_million_output_tokens for o in feasible if o.cost]
    assert costs == sorted(costs)
    assert r.gpus == r.replicas * r.tp * r.pp


def test_rate_to_concurrency_is_littles_law():
    p = plan(deployment())
    w = workload("x", [(1000, 200)])
    s = Serving(p, w, occupancy(p, w))
    c = s.concurrency_for_rate(5.0, 256)
    assert c is not None and c > 1
    assert c >= 5.0 * s.e2e_s(c)
    assert c - 1 < 5.0 * s.e2e_s(c - 1)


def test_search_space_keeps_valid_tp():
    d = deployment()
    tps = sorted({x.tp for x in search_space(d)})
    assert tps == [1, 2, 4, 8]  # 32 query heads


def test_speculative_decoding_memory_by_hand():
    """Draft weights come off the budget; each sequence holds target + draft KV for
    in + out + k tokens (k lookahead slots), block-rounded."""
    from kvplan.core.serving import Speculation, resolve_plans

    d = Deployment(
        spec=catalog_spec("meta-llama/Llama-3.1-70B-Instruct"),
        gpu=gpu("h100-sxm"),
        tp=4,
        kv_dtype="bf16",
    )
    draft_spec = catalog_spec("meta-llama/Llama-3.2-1B-Instruct")
    base = plan(d)
    p, draft = resolve_plans(d, Speculation(draft=draft_spec, lookahead=4))
    assert draft is not None
    assert p.budget.kv_budget == pytest.approx(
        base.budget.kv_budget - draft.weights_total / 4, abs=1
    )
    occ = occupancy(p, workload("x", [(2048, 512)]), draft=draft, lookahead=4)
    # per GPU and token: 70B 80 layers x 2 heads x 128 x 2 x 2 B; 1B 16 x 2 x 64 x 2 x 2 B
    per_token = 80 * 2 * 128 * 2 * 2 + 16 * 2 * 64 * 2 * 2
    full = 161 * 16 * per_token  # 2048 + 512 + 4 = 2564 tokens -> 161 blocks
    assert occ.full_bytes_max == full
    assert occ.max_concurrency_guaranteed == p.budget.kv_budget // full


@pytest.mark.parametrize(
    "name", ["google/gemma-2-9b-it", "ai21labs/AI21-Jamba-1.5-Mini", "meta-llama/Llama-3.1-8B"]
)
@pytest.mark.parametrize(
    ("inp", "out", "block", "k"),
    [(1, 1, 16, 0), (4000, 300, 16, 0), (4090, 17, 32, 3), (100, 5000, 1, 0), (33, 64, 16, 5)],
)
def test_block_sums_equal_brute_force(name, inp, out, block, k):
    """The prefix-sum shortcut against summing token by token (sliding windows, hybrid
    state, plain full attention): the steady state's held_bytes(n + k) and the peak's
    seq_bytes(n + k) (they differ for a vLLM hybrid's sliding groups, e.g. Gemma-2)."""
    from kvplan.core.workload import _Sums

    d = Deployment(spec=catalog_spec(name), gpu=gpu("h100-sxm"), kv_dtype="bf16", block_size=block)
    p = plan(d)
    for peak, f in ((False, p.held_bytes), (True, p.seq_bytes)):
        sums = _Sums(p, lookahead=k, peak=peak)
        values = [f(n + k) for n in range(inp, inp + out)]
        assert sums.sums(inp, inp + out - 1) == (
            sum(values),
            sum(v * v for v in values),
            sum(range(inp, inp + out)),
        )
