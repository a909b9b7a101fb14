"""Weight bytes of mixed-precision quantized checkpoints, group by group.

Three kinds of evidence: (1) each storage format's bytes for one matrix, hand-computed from
the tensors the format writes (AWQ qweight/qzeros/scales, GPTQ + g_idx, compressed-tensors
weight_packed/weight_scale/weight_shape, mxfp4 blocks/scales, NVFP4, fp8 blocks); (2) real
catalog configs whose groups are stored differently (Kimi-K2.5 int4 experts + bf16 attention,
Gemma-4 NVFP4 with bf16 attention, gpt-oss mxfp4 experts only), hand-computed from the
config's numbers; (3) published checkpoint sizes (tests/data/quantized_checkpoints.yaml).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from conftest import DATA, catalog_spec, run_cli

from kvplan.core.params import weight_bytes
from kvplan.core.quant_groups import Group, fp8_block, int_group, matches, mxfp4, nvfp4
from kvplan.errors import KvplanError
from kvplan.sources.catalog import load_catalog
from kvplan.sources.hf_config import parse_hf_config
from kvplan.sources.quant_config import read_quantization

CATALOG = load_catalog()
CHECKPOINTS = yaml.safe_load((DATA / "quantized_checkpoints.yaml").read_text())["checkpoints"]


def raw(name: str) -> dict[str, Any]:
    entry = CATALOG.find(name)
    assert entry is not None, name
    return json.loads((CATALOG.root / entry.file).read_text())


def blocks(out: int, inp: int, b: int = 128) -> int:
    return -(-out // b) * -(-inp // b)


# ---- (1) one matrix in each format ------------------------------------------------------
def test_awq_int4_g128_matrix():
    # AutoAWQ GEMM, 4096 x 4096: qweight int32 [4096, 512], qzeros int32 [32, 512],
    # scales fp16 [32, 4096].
    q = read_quantization(
        {"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm", "zero_point": True}
    )
    fmt = q.schemes[0].format
    assert fmt.bytes(4096, 4096) == 4096 * 512 * 4 + 32 * 512 * 4 + 32 * 4096 * 2
    assert fmt.bits_per_weight == pytest.approx(4 + 20 / 128)


def test_gptq_adds_g_idx():
    # GPTQ 4-bit g128, out 2048 x in 7168: qweight int32 [896, 2048], qzeros int32
    # [56, 256], scales fp16 [56, 2048], g_idx int32 [7168].
    q = read_quantization({"quant_method": "gptq", "bits": 4, "group_size": 128, "sym": True})
    expected = 896 * 2048 * 4 + 56 * 256 * 4 + 56 * 2048 * 2 + 7168 * 4
    assert q.schemes[0].format.bytes(2048, 7168) == expected


def test_compressed_tensors_pack_quantized_int4_g32():
    # weight_packed int32 [out, in/8], weight_scale bf16 [out, in/32], weight_shape int64 [2]
    fmt = int_group(4, 32, scale_bits=16, matrix_bytes=16)
    assert fmt.bytes(2048, 7168) == 2048 * 896 * 4 + 2048 * 224 * 2 + 16


def test_mxfp4_nvfp4_fp8_block():
    # gpt-oss down_proj: blocks uint8 [2880, 90, 16], scales uint8 [2880, 90]
    assert mxfp4().bytes(2880, 2880) == 2880 * 90 * 16 + 2880 * 90
    # NVFP4: uint8 [out, in/2], fp8 weight_scale [out, in/16], fp32 weight_scale_2 + input_scale
    assert nvfp4(extra_scalars=2).bytes(5376, 21504) == 5376 * 10752 + 5376 * 1344 + 8
    # fp8 [128, 128]: e4m3 values + fp32 weight_scale_inv [ceil(out/128), ceil(in/128)]
    assert fp8_block((128, 128)).bytes(1536, 7168) == 1536 * 7168 + 12 * 56 * 4
    assert fp8_block((128, 128)).bytes(576, 7168) == 576 * 7168 + 5 * 56 * 4  # 576/128 rounds up


def test_patterns_name_modules_not_substrings():
    assert matches("gate", "model.layers.3.mlp.gate")
    assert not matches("gate", "model.layers.3.mlp.gate_proj")
    assert matches("model.layers.*.self_attn", "model.layers.7.self_attn.q_proj")
    assert matches("lm_head", "lm_head")
    assert matches("re:.*mlp\\.(gate|up|gate_up|down)_proj.*", "model.layers.0.mlp.down_proj")
    assert not matches(
        "re:.*mlp\\.(gate|up|gate_up|down)_proj.*", "model.layers.0.mlp.shared_experts.down_proj"
    )
    glob = "model.language_model.layers.1.self_attn*"
    assert matches(glob, "model.language_model.layers.1.self_attn.q_proj")
    assert not matches(glob, "model.language_model.layers.11.self_attn.q_proj")


# ---- (2) real mixed-precision configs --------------------------------------------------
def test_kimi_k25_int4_experts_bf16_everything_else():
    cfg = raw("moonshotai/Kimi-K2.5")
    text = cfg["text_config"]
    q = cfg.get("quantization_config") or text["quantization_config"]
    assert q["config_groups"]["group_0"]["weights"]["group_size"] == 32
    hidden, inter = text["hidden_size"], text["moe_intermediate_size"]
    moe_layers = text["num_hidden_layers"] - text["first_k_dense_replace"]
    # each expert matrix: int4 values, a bf16 scale per 32 inputs, the int64[2] weight_shape
    one = hidden * inter // 2 + inter * (hidden // 32) * 2 + 16  # gate / up (out = inter)
    down = inter * hidden // 2 + hidden * (inter // 32) * 2 + 16
    experts = moe_layers * text["n_routed_experts"] * (2 * one + down)
    got = weight_bytes(catalog_spec("moonshotai/Kimi-K2.5"))
    assert got.groups["experts"] == experts == 570_761_994_240
    assert got.formats["experts"] == "int4 g32"
    for group in ("attention", "shared_experts", "dense_mlp", "embedding", "lm_head", "router"):
        assert got.formats[group] == "bf16", group  # ignore: self_attn, shared_experts, mlp.*
    shared = moe_layers * 3 * hidden * inter * 2
    assert got.groups["shared_experts"] == shared
    # an all-int4 estimate (the old one dtype for every linear layer) is far lighter
    assert weight_bytes(catalog_spec("moonshotai/Kimi-K2.5"), weight_dtype="int4").total < got.total


def test_gemma4_nvfp4_keeps_attention_bf16():
    cfg = raw("nvidia/Gemma-4-31B-IT-NVFP4")
    text = cfg["text_config"]
    got = weight_bytes(catalog_spec("nvidia/Gemma-4-31B-IT-NVFP4"))
    hidden, inter, layers = (
        text["hidden_size"],
        text["intermediate_size"],
        text["num_hidden_layers"],
    )
    mlp = layers * 3 * (hidden * inter // 2 + hidden * inter // 16 + 8)
    assert got.groups["dense_mlp"] == mlp
    assert got.formats == {
        "embedding": "bf16",
        "attention": "bf16",
        "dense_mlp": "nvfp4",
        "vision": "bf16",  # the image encoder, unquantized (tests/test_vision.py)
    }


def test_gpt_oss_router_and_attention_stay_bf16():
    got = weight_bytes(catalog_spec("openai/gpt-oss-20b"))
    assert got.formats["experts"] == "mxfp4"
    assert got.formats["attention"] == got.formats["router"] == "bf16"


def test_fp8_modules_to_not_convert_and_per_tensor():
    # MiniMax-M2.7: fp8 [128, 128]; modules_to_not_convert gate (the router), lm_head
    got = weight_bytes(catalog_spec("MiniMaxAI/MiniMax-M2.7"))
    assert got.formats["experts"] == got.formats["attention"] == "fp8 block 128x128"
    assert got.formats["router"] == got.formats["lm_head"] == "bf16"
    # Devstral: per-tensor fp8 (weight_block_size null) with static activations
    spec = catalog_spec("mistralai/Devstral-Small-2-24B-Instruct-2512")
    assert weight_bytes(spec).formats["dense_mlp"] == "fp8 per-tensor"


def _with_quant(q: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(raw("meta-llama/Llama-2-7b-hf"))
    cfg["quantization_config"] = q
    return cfg


def test_gptq_dynamic_and_lm_head():
    base = {"quant_method": "gptq", "bits": 4, "group_size": 128, "lm_head": True}
    dyn = {**base, "dynamic": {"-:.*mlp\\.down_proj": {}, "+:.*self_attn\\.o_proj": {"bits": 8}}}
    spec = parse_hf_config(_with_quant(dyn), name="t", origin="t")
    got = weight_bytes(spec)
    assert got.formats["lm_head"] == "gptq int4 g128"
    assert got.formats["dense_mlp"] == "fp16 + gptq int4 g128"  # down_proj skipped (fp16 model)
    assert got.formats["attention"] == "gptq int4 g128 + gptq int8 g128"


def test_bitsandbytes_and_awq_skip_lists():
    bnb = {
        "quant_method": "bitsandbytes",
        "load_in_4bit": True,
        "llm_int8_skip_modules": ["o_proj"],
    }
    got = weight_bytes(parse_hf_config(_with_quant(bnb), name="t", origin="t"))
    assert got.formats["attention"] == "bnb fp4 4-bit + fp16"
    awq = {"quant_method": "awq", "bits": 4, "group_size": 128, "modules_to_not_convert": ["mlp"]}
    got = weight_bytes(parse_hf_config(_with_quant(awq), name="t", origin="t"))
    assert got.formats["dense_mlp"] == "fp16" and got.formats["attention"] == "awq int4 g128"


@pytest.mark.parametrize(
    ("q", "key"),
    [
        ({"quant_method": "exl3", "bits": 4}, "quantization_config.quant_method"),
        ({"quant_method": "mystery"}, "quantization_config.quant_method"),
        ({"bits": 4}, "quantization_config.quant_method"),
        ({"quant_method": "awq", "bits": 3, "group_size": 128}, "quantization_config.bits"),
        ({"quant_method": "modelopt", "quant_algo": "W4A8_AWQ"}, "quantization_config.quant_algo"),
        (
            {"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION"},
            "quantization_config.quantized_layers",
        ),
        (
            {
                "quant_method": "modelopt",
                "quant_algo": "MIXED_PRECISION",
                "quantized_layers": {"lm_head": {"quant_algo": "W4A8_AWQ"}},
            },
            "quantization_config.quantized_layers.lm_head.quant_algo",
        ),
        (
            {
                "quant_method": "modelopt",
                "quant_algo": "MIXED_PRECISION",
                "quantized_layers": {"lm_head": {"quant_algo": "NVFP4", "group_size": 32}},
            },
            "quantization_config.quantized_layers.lm_head.group_size",
        ),
        ({"quant_method": "fp8", "ignored_layers": ["re:("]}, "quantization_config.ignored_layers"),
        (
            {"quant_method": "gptq", "bits": 4, "dynamic": {"-:(": {}}},
            "quantization_config.dynamic",
        ),
        (
            {"quant_method": "fp8", "weight_block_size": [128]},
            "quantization_config.weight_block_size",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "pack-quantized",
                "config_groups": {
                    "g": {
                        "targets": ["Linear"],
                        "weights": {"num_bits": 4, "type": "int", "strategy": "token"},
                    }
                },
            },
            "quantization_config.config_groups.g.weights.strategy",
        ),
        (
            {
                "quant_method": "compressed-tensors",
                "format": "marlin-24",
                "config_groups": {"g": {"weights": {"num_bits": 4}}},
            },
            "quantization_config.format",
        ),
    ],
)
def test_unknown_methods_and_schemes_fail_closed(q, key):
    with pytest.raises(KvplanError, match=key.replace(".", r"\.")):
        parse_hf_config(_with_quant(q), name="t", origin="t")


def test_unknown_method_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_with_quant({"quant_method": "hqq"})))
    run = run_cli("size", str(path))
    assert run.code == 2 and "quantization_config.quant_method" in run.err


# ---- (3) published checkpoint sizes ------------------------------------------------------
def _spec(row: dict[str, Any]):
    if "base_config" not in row:
        return catalog_spec(row["model"])
    cfg = copy.deepcopy(raw(row["base_config"]))
    cfg["quantization_config"] = row["quantization_config"]
    return parse_hf_config(cfg, name=row["model"], origin=row["model"])


def _published(row: dict[str, Any]) -> int:
    """Tensor bytes where the source gives the headers apart, else the published figure."""
    return row["published_bytes"] - row.get("header_bytes", 0)


def _predicted(row: dict[str, Any]) -> int:
    spec = _spec(row)
    got = weight_bytes(spec).total
    extra = row.get("extra_layers", 0)
    if extra:  # DeepSeek MTP: one more MoE layer + its embed / head copies, eh_proj, 3 norms
        longer = spec.model_copy(update={"layers": spec.layers + spec.layers[-1:] * extra})
        h, v = spec.hidden_size, spec.vocab_size
        per_mtp = 2 * v * h * 2 + 2 * h * h + 4 * blocks(h, 2 * h) + 3 * h * 2
        got = weight_bytes(longer).total + extra * per_mtp
    return got


@pytest.mark.parametrize("row", CHECKPOINTS, ids=[r["model"] for r in CHECKPOINTS])
def test_weight_bytes_match_published_checkpoint(row):
    predicted, published = _predicted(row), _published(row)
    error = predicted / published - 1
    assert abs(error) <= row["tolerance"], (
        f"{row['model']}: {predicted:,} vs {published:,} ({error:+.4%})"
    )


def test_published_figures_and_errors():
    """The figures docs/config-keys.md reports (relative error of kvplan vs published)."""
    errors = {r["model"]: _predicted(r) / _published(r) - 1 for r in CHECKPOINTS}
    assert errors["openai/gpt-oss-20b"] == 0 and errors["openai/gpt-oss-120b"] == 0
    assert errors["Qwen/Qwen2.5-32B-Instruct-GPTQ-Int8"] == 0  # g_idx, qzeros, scales
    assert -0.0005 < errors["deepseek-ai/DeepSeek-V3"] < 0  # headers are in file bytes
    assert -0.0001 < errors["moonshotai/Kimi-K2-Instruct"] < 0
    # Without the MTP layer (what engines load for serving) DeepSeek-V3 is 2.2 % lighter.
    no_mtp = weight_bytes(catalog_spec("deepseek-ai/DeepSeek-V3")).total
    assert no_mtp / 688_586_727_753 - 1 == pytest.approx(-0.0224, abs=0.0005)
    assert Group.EXPERTS.value == "experts"


def test_gptq_int8_components_match_the_published_breakdown():
    """Qwen2.5-32B-Instruct-GPTQ-Int8 (source: tests/data/quantized_checkpoints.yaml): fp16
    scales 487,587,840 B, qzeros 243,793,920 B, g_idx 14,942,208 B over the quantized
    matrices kvplan lists for the model (attention + MLP of 64 layers)."""
    from kvplan.core.params import layer_linears

    row = next(r for r in CHECKPOINTS if r["model"] == "Qwen/Qwen2.5-32B-Instruct-GPTQ-Int8")
    spec = _spec(row)
    mats = [m for i, layer in enumerate(spec.layers) for m in layer_linears(spec, i, layer)]
    groups = sum(m.n * m.out * -(-m.inp // 128) for m in mats)
    assert groups * 2 == 487_587_840  # one fp16 scale per 128 inputs per output row
    assert groups * 1 == 243_793_920  # one 8-bit zero point per group
    assert sum(m.n * 4 * m.inp for m in mats) == 14_942_208  # g_idx int32 per input row


def test_mtp_module_weights_as_vllm_loads_them():
    """`--draft-layers 1` on DeepSeek-V3 loads its MTP module (vLLM deepseek_mtp.py): the
    module as the published checkpoint stores it (the extra layer of the checkpoint-size test
    above, within 0.02 % of the file total) except eh_proj, an nn.Linear vLLM dequantizes from
    fp8 blocks to bf16 at load."""
    from kvplan.core.params import mtp_weight_bytes

    row = next(r for r in CHECKPOINTS if r["model"] == "deepseek-ai/DeepSeek-V3")
    spec = _spec(row)
    assert spec.mtp_layers == 1  # num_nextn_predict_layers
    stored = _predicted(row) - weight_bytes(spec).total
    h = spec.hidden_size
    eh_fp8 = 2 * h * h + 4 * blocks(h, 2 * h)
    assert mtp_weight_bytes(spec, 1) == stored - eh_fp8 + 2 * h * h * 2
    assert mtp_weight_bytes(spec, 3) == mtp_weight_bytes(spec, 1)  # the checkpoint has one
    llama = catalog_spec("meta-llama/Llama-3.1-8B-Instruct")
    assert llama.mtp_layers == 0 and mtp_weight_bytes(llama, 1) == 0
    # fit adds them per GPU when the draft is the model's MTP module
    base = run_cli("fit", "deepseek-ai/DeepSeek-V3", "--gpu", "h200", "--tp", "8", "--json")
    mtp = run_cli(
        "fit", "deepseek-ai/DeepSeek-V3", "--gpu", "h200", "--tp", "8", "--draft-layers", "1",
        "--json",
    )  # fmt: skip
    added = mtp.json["weights_total_bytes"] - base.json["weights_total_bytes"]
    assert added == mtp_weight_bytes(catalog_spec("deepseek-ai/DeepSeek-V3"), 1)
    assert mtp.json["kv_budget_bytes"] < base.json["kv_budget_bytes"]


def test_modelopt_mixed_precision_formats_per_named_module():
    """ModelOpt MIXED_PRECISION: each module quantized_layers names is stored in its own
    algorithm's layout; a module it does not name stays unquantized (vLLM
    ModelOptMixedPrecisionConfig.get_quant_method: "Layer not in quantized_layers - leave
    unquantized"). W4A16_NVFP4 keeps no input_scale: 4 bytes per matrix less than NVFP4."""
    q = read_quantization(
        {
            "quant_method": "modelopt",
            "quant_algo": "MIXED_PRECISION",
            "quantized_layers": {
                "model.layers.0.self_attn.q_proj": {"quant_algo": "FP8"},
                "model.layers.0.mlp.experts": {"quant_algo": "W4A16_NVFP4", "group_size": 16},
                "model.layers.1.mlp.experts": {"quant_algo": "NVFP4", "group_size": 16},
            },
        }
    )
    q_proj = q.format_for(Group.ATTENTION, ("model.layers.0.self_attn.q_proj",))
    k_proj = q.format_for(Group.ATTENTION, ("model.layers.0.self_attn.k_proj",))
    w4a16 = q.format_for(Group.EXPERTS, ("model.layers.0.mlp.experts.7.up_proj",))
    w4a4 = q.format_for(Group.EXPERTS, ("model.layers.1.mlp.experts.7.up_proj",))
    other = q.format_for(Group.EXPERTS, ("model.layers.10.mlp.experts.7.up_proj",))
    assert q_proj is not None and q_proj.bytes(4096, 4096) == 4096 * 4096 + 4 + 4
    assert k_proj is None and other is None
    assert w4a16 is not None and w4a4 is not None
    assert w4a16.bytes(512, 2048) == 512 * 2048 // 2 + 512 * 2048 // 16 + 4
    assert w4a4.bytes(512, 2048) == w4a16.bytes(512, 2048) + 4
