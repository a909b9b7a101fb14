"""A separate speculative-decoding draft model (`--draft-model`, Deployment.draft_model).

Hand-computed: Llama-3.1-8B caches 32 layers x 8 KV heads x (128 + 128) x 2 B = 131,072
B/token; Llama-3.2-1B (the draft) 16 layers x 8 KV heads x (64 + 64) x 2 B = 32,768 B/token.
vLLM adds the drafter's own attention layers to the one KV pool (its geometry); SGLang
scales the target's per-token cell by (1 + draft layers / target layers).
"""

from __future__ import annotations

import json

import pytest

import kvplan
from kvplan.core.capacity import plan
from kvplan.core.deployment import DraftModel
from kvplan.errors import ConfigError, KvplanError
from kvplan.sources.deployment import parse_deployment
from kvplan.sources.parse import parse_config_dict

TARGET = "meta-llama/Llama-3.1-8B-Instruct"
DRAFT = "meta-llama/Llama-3.2-1B-Instruct"
EAGLE3 = {  # the shape of an EAGLE-3 head's config (LlamaForCausalLMEagle3, one layer)
    "architectures": ["LlamaForCausalLMEagle3"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_hidden_layers": 1,
    "vocab_size": 128256,
    "draft_vocab_size": 32000,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-05,
    "torch_dtype": "bfloat16",
}


def _fit(**kw):
    return kvplan.fit(TARGET, gpu="h100-sxm", ctx=8192, batch=1, **kw)


def test_vllm_adds_the_drafts_own_layers_and_weights():
    base, spec = _fit(), _fit(draft_model=DRAFT)
    assert base.kv_bytes_per_token_per_gpu == 32 * 8 * 256 * 2
    assert spec.kv_bytes_per_token_per_gpu == 32 * 8 * 256 * 2 + 16 * 8 * 128 * 2  # 163,840
    draft_weights = kvplan.size(DRAFT).weight_bytes
    assert spec.weights_bytes - base.weights_bytes == draft_weights
    assert spec.kv_blocks == spec.kv_budget_bytes // (163_840 * 16)
    assert any("draft model" in n for n in spec.notes)


def test_tp2_splits_the_draft_like_the_target():
    r = _fit(tp=2, draft_model=DRAFT)
    base = _fit(tp=2)
    assert r.kv_bytes_per_token_per_gpu == 32 * 4 * 256 * 2 + 16 * 4 * 128 * 2  # 81,920
    draft = kvplan.size(DRAFT).weight_bytes
    assert r.weights_bytes - base.weights_bytes == -(-draft // 2)


def test_sglang_scales_the_target_cell_by_layer_count():
    r = _fit(engine="sglang", draft_model=DRAFT)
    assert r.kv_bytes_per_token_per_gpu == 131_072 * (32 + 16) // 32  # 196,608


def test_sweep_rows_equal_fit_with_a_draft_model():
    r = kvplan.sweep(
        [TARGET], gpu="h100-sxm", ctx=[1, 8192, 100_000], batch=[1, 5], draft_model=DRAFT
    )
    assert not r.skipped
    for chunk in r.chunks():
        flat = {k: v.ravel() for k, v in chunk.items()}
        for i in range(len(flat["plan"])):
            ctx, batch = int(flat["ctx"][i]), int(flat["batch"][i])
            one = kvplan.fit(TARGET, gpu="h100-sxm", ctx=ctx, batch=batch, draft_model=DRAFT)
            assert int(flat["kv_bytes"][i]) == one.kv_bytes
            assert int(flat["max_batch"][i]) == one.max_batch


def test_an_eagle_head_uses_its_checkpoint_bytes():
    """An EAGLE-3 head: one attention layer of 8 KV heads x 256 x 2 B = 4,096 B/token; its
    weights only from its checkpoint (here given as exact bytes, as the Hub reader does)."""
    head = parse_config_dict(EAGLE3, name="eagle3-head", origin="test")
    assert head.draft_head == "LlamaForCausalLMEagle3"
    target = kvplan.load_model(TARGET).spec
    base = parse_deployment(target, {"gpu": "h100-sxm", "tp": 2})
    exact = 1_687_200_000
    p = plan(base.with_(draft_model=DraftModel("eagle3-head", head, exact_weight_bytes=exact)))
    p0 = plan(base)
    assert p.kv_bytes_per_token == p0.kv_bytes_per_token + 4 * 256 * 2  # 4 KV heads per GPU
    assert p.weights_per_gpu == p0.weights_per_gpu + exact // 2


def test_an_eagle_head_without_checkpoint_bytes_is_refused(tmp_path, cli):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(EAGLE3))
    with pytest.raises(ConfigError, match="draft head"):
        kvplan.size(str(path))
    r = cli("fit", TARGET, "--gpu", "h100-sxm", "--draft-model", str(path), "--json")
    assert r.code == 2
    assert r.json["error"]["kind"] == "config"


def test_draft_layers_and_draft_model_together_are_refused(cli):
    with pytest.raises(KvplanError, match="give one"):
        _fit(draft_model=DRAFT, draft_layers=1)
    r = cli("fit", TARGET, "--gpu", "h100-sxm", "--draft-model", "no/such-model-x", "--json")
    assert r.code == 2
    assert r.json["error"]["setting"] == "draft_model"


def test_qwen35_mtp_module_weights_share_the_targets_embeddings():
    # Qwen3.5-27B `mtp_num_hidden_layers: 1` (vLLM qwen3_next_mtp.py
    # Qwen3NextMultiTokenPredictor): one full-attention decoder layer + fc (2h -> h) + three
    # norms, embedding and LM head shared with the target. By hand from the config
    # (h 5120, 24 heads x 256 with the output gate, 4 KV heads, FFN 17408), bf16:
    from kvplan.api import load_model
    from kvplan.core.params import mtp_weight_bytes

    h, heads, kv, d, ffn = 5120, 24, 4, 256, 17408
    layer = h * heads * d * 2 + 2 * h * kv * d + heads * d * h + 3 * h * ffn + 2 * h + 2 * d
    module = layer + 2 * h * h + 3 * h
    spec = load_model("Qwen/Qwen3.5-27B").spec
    assert spec.mtp_layers == 1 and spec.mtp_shares_embeddings
    assert mtp_weight_bytes(spec, 1) == module * 2 == 849_398_784
    # a DeepSeek-style module ships its own embedding and head: 2 x vocab x hidden more
    v3 = load_model("deepseek-ai/DeepSeek-V3").spec
    assert not v3.mtp_shares_embeddings
