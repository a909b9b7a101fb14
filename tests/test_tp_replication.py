"""What an engine keeps whole on every TP rank (EngineRules.tp_replicated; sources there).

Every expected figure is computed by hand from the model's published config.json and the
engine's module classes: vLLM (deepseek_v2.py @ 002d6073) builds MLA's q_a / kv_a projection
as one replicated matrix (disable_tp=True), the MoE router as a ReplicatedLinear / GateLinear,
every RMSNorm whole, and QKVParallelLinear gives each rank max(1, G // tp) KV heads, so at
tp > G the ranks hold ceil(G / tp) x tp - G heads' k/v rows twice. Per GPU under TP x PP:
    weights = (total - replicated + duplicated KV rows) / (tp x pp) + replicated / pp
"""

from __future__ import annotations

from math import ceil

from conftest import catalog_spec, gpu

from kvplan.core.capacity import Deployment, plan
from kvplan.core.engines import ENGINES, Engine
from kvplan.core.params import kv_replica_bytes, replicated_weight_bytes, weight_bytes

# DeepSeek-V3 (config.json: hidden 7168, 61 layers, first_k_dense_replace 3, 256 routed
# experts, q_lora_rank 1536, kv_lora_rank 512, qk_rope_head_dim 64; quantization_config
# fp8 weight_block_size [128, 128], float32 weight_scale_inv; the router `gate` is bf16).
# q_a: 1536 x 7168 fp8 = 11,010,048 B + 12 x 56 fp32 scales (2,688 B);
# kv_a: 576 x 7168 fp8 = 4,128,768 B + 5 x 56 fp32 scales (1,120 B);
# latent norms q_a_layernorm + kv_a_layernorm: (1536 + 512) x 2 B (bf16) = 4,096 B.
DSV3_MLA_A = 61 * (11_010_048 + 2_688 + 4_128_768 + 1_120 + 4_096)
DSV3_ROUTER = 58 * 256 * 7168 * 2  # 58 MoE layers x E x hidden, bf16
DSV3_NORMS = (61 * 2 + 1) * 7168 * 2  # input + post-attention per layer, final; bf16


def test_deepseek_v3_replicated_tensors_by_hand():
    spec = catalog_spec("deepseek-ai/DeepSeek-V3")
    assert replicated_weight_bytes(spec, frozenset({"mla_a"})) == DSV3_MLA_A
    assert replicated_weight_bytes(spec, frozenset({"router"})) == DSV3_ROUTER
    assert replicated_weight_bytes(spec, frozenset({"norms"})) == DSV3_NORMS
    assert kv_replica_bytes(spec, 8) == 0  # MLA: no KV heads to duplicate


def test_deepseek_v3_tp8_weights_per_gpu():
    spec = catalog_spec("deepseek-ai/DeepSeek-V3")
    total = weight_bytes(spec).total
    replicated = DSV3_MLA_A + DSV3_ROUTER + DSV3_NORMS  # 1,138,574,176 B = 1.06 GiB
    d = Deployment(spec=spec, gpu=gpu("h200"), tp=8, engine=Engine.VLLM)
    p = plan(d)
    split = ceil((total - replicated) / 8)
    assert p.weights_per_gpu - p.rope_cache_per_gpu == split + replicated
    assert p.weights_replicated_per_gpu == replicated
    # no engine: an even split (the rule table's default)
    none = plan(d.with_(engine=Engine.NONE))
    assert none.weights_per_gpu - none.rope_cache_per_gpu == ceil(total / 8)
    assert none.weights_replicated_per_gpu == 0
    # PP 2 x TP 4: the replicated tensors split by stage only
    p2 = plan(d.with_(tp=4, pp=2))
    assert p2.weights_per_gpu - p2.rope_cache_per_gpu == (
        ceil((total - replicated) / 8) + ceil(replicated / 2)
    )


def test_qwen3_235b_tp8_router_and_kv_heads():
    # Qwen3-235B-A22B (config.json: hidden 4096, 94 layers all MoE, 128 experts, 4 KV heads,
    # head_dim 128, bf16). At TP 8 each rank holds 1 KV head: 8 heads stored, 4 extra.
    spec = catalog_spec("Qwen/Qwen3-235B-A22B")
    router = 94 * 128 * 4096 * 2
    norms = (94 * 2 + 1) * 4096 * 2
    kv_extra = 94 * 4 * 128 * 4096 * 2 * 2  # layers x extra heads x d x hidden x (k, v) x 2 B
    assert replicated_weight_bytes(spec, frozenset({"router"})) == router
    assert kv_replica_bytes(spec, 8) == kv_extra
    assert kv_replica_bytes(spec, 4) == 0  # 4 heads over 4 ranks: no copies
    total = weight_bytes(spec).total
    p = plan(Deployment(spec=spec, gpu=gpu("h200"), tp=8, engine=Engine.VLLM))
    expected = ceil((total - router - norms + kv_extra) / 8) + router + norms
    assert p.weights_per_gpu - p.rope_cache_per_gpu == expected
    assert p.weights_replicated_per_gpu == router + norms + kv_extra // 8


def test_dense_llama_tp2_only_norms():
    spec = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    norms = (32 * 2 + 1) * 4096 * 2  # 532,480 B
    kinds = ENGINES[Engine.VLLM].tp_replicated - {"kv_heads"}
    assert replicated_weight_bytes(spec, kinds) == norms
    assert kv_replica_bytes(spec, 2) == 0  # 8 KV heads split 4 + 4
    total = weight_bytes(spec).total
    p = plan(Deployment(spec=spec, gpu=gpu("h100-sxm"), tp=2, engine=Engine.VLLM))
    assert p.weights_per_gpu - p.rope_cache_per_gpu == ceil((total - norms) / 2) + norms


def test_tp1_is_unchanged_by_the_rule():
    spec = catalog_spec("deepseek-ai/DeepSeek-V3")
    d = Deployment(spec=spec, gpu=gpu("h200"), tp=1, pp=8, engine=Engine.VLLM)
    p = plan(d)
    assert p.weights_per_gpu - p.rope_cache_per_gpu == ceil(weight_bytes(spec).total / 8)
    assert p.weights_replicated_per_gpu == 0
