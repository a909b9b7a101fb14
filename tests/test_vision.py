"""Vision encoders of multimodal checkpoints (kvplan/core/vision.py, sources/vision.py).

Independent truth: transformers 5.24 builds the whole model on the meta device
(scripts/crosscheck_transformers.py, fixtures in tests/data/transformers_crosscheck);
the whole model minus its text decoder is the encoder + projector. For the models whose
fixture has no whole-model count, the totals are worked out by hand from the shapes
transformers builds (the module tree is listed in each comment).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from kvplan.core.params import param_counts, weight_bytes
from kvplan.sources.hf_config import ConfigError, parse_hf_config
from kvplan.sources.vision import FAMILIES, read_vision

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "configs" / "models"
XCHECK = Path(__file__).parent / "data" / "transformers_crosscheck"


def _raw(stem: str) -> dict:
    return json.loads((MODELS / f"{stem}.json").read_text())


def _spec(stem: str):
    return parse_hf_config(_raw(stem), name=stem, origin=stem)


def _whole_minus_text(stem: str) -> int | None:
    path = XCHECK / f"{stem}.json"
    if not path.exists():
        return None
    fx = json.loads(path.read_text())
    full = fx.get("params_full_model")
    if not full or full["lm_head_tied_to_embedding"] != fx["params"]["lm_head_tied_to_embedding"]:
        return None  # tying differs between the two builds: the difference is not the encoder
    return int(full["total"]) - int(fx["params"]["total"])


VLM_STEMS = sorted(p.stem for p in MODELS.glob("*.json") if "vision_config" in _raw(p.stem))
MEASURED = [
    s for s in VLM_STEMS if _raw(s)["model_type"] in FAMILIES and _whole_minus_text(s) is not None
]


def test_every_family_is_measured_by_transformers_or_by_hand() -> None:
    families = {_raw(s)["model_type"] for s in MEASURED}
    # qwen3_vl(_moe) and mllama have no whole-model fixture: hand-computed below; llava
    # (CLIP + projector) against the published whole-model count of llava-1.5-7b-hf, kimi_vl
    # (MoonViT, the kimi_k25 encoder under other key names) and llava_next (the llava tower
    # and projector + image_newline) by hand (tests/test_catalog_vlm.py)
    hand = {"qwen3_vl", "qwen3_vl_moe", "mllama", "llava", "llava_next", "kimi_vl"}
    assert families | hand >= set(FAMILIES)
    assert len(MEASURED) >= 11


@pytest.mark.parametrize("stem", MEASURED)
def test_encoder_params_equal_transformers_whole_model_minus_text_decoder(stem: str) -> None:
    spec = _spec(stem)
    assert spec.vision is not None and spec.vision.counted
    assert spec.vision.params == _whole_minus_text(stem)


def test_gemma3_siglip_by_hand() -> None:
    # SiglipVisionModel, h 1152, i 4304, 27 blocks: 4h^2 + 4h (q/k/v/o + biases)
    # + 2hi + i + h (fc1/fc2 + biases) + 4h (two LayerNorms) = 15,239,504 per block;
    # patch conv 3 x 14^2 x h + h, 64^2 positions x h, post LayerNorm 2h;
    # projector: 1152 x 5376 matrix + RMSNorm 1152.
    h, i = 1152, 4304
    block = 4 * h * h + 4 * h + 2 * h * i + i + h + 4 * h
    assert block == 15_239_504
    encoder = 27 * block + 3 * 14 * 14 * h + h + 64 * 64 * h + 2 * h
    assert encoder == 416_866_032
    v = _spec("google__gemma-3-27b-it").vision
    assert v is not None and v.params == encoder + 1152 * 5376 + 1152


def test_qwen3_vl_deepstack_mergers_by_hand() -> None:
    # Qwen3VLVisionModel: the Qwen3.5-9B encoder (456,010,480, equal to transformers) plus
    # three DeepStack mergers, each LayerNorm(4608) + 4608x4608 + 4608 + 4096x4608 + 4096.
    merger = 2 * 4608 + 4608 * 4608 + 4608 + 4096 * 4608 + 4096
    assert merger == 40_125_952
    v = _spec("Qwen__Qwen3-VL-8B-Instruct").vision
    assert v is not None and v.params == 456_010_480 + 3 * merger == 576_388_336


def test_mllama_local_and_gated_global_encoders_by_hand() -> None:
    # MllamaVisionModel, h 1280, i 5120: 32 local + 8 global blocks of 4h^2 (no q/k/v/o
    # biases) + 2hi + i + h + 4h, the global ones with 2 gates each; class token h; patch conv
    # 3 x 14^2 x h; 560 px tiles (the published image_size) = (560 / 14)^2 + 1 = 1601 positions:
    # gated positions 1 + 1601 h; tile embedding 9 x 4 x 1601 x h; pre/post tile embeddings
    # 2 x (1 + 9 x 4 x h); pre/post LayerNorms 4h; projector 7680 x 4096 + 4096.
    h, i = 1280, 5120
    block = 4 * h * h + 2 * h * i + i + h + 4 * h
    encoder = 40 * block + 8 * 2 + h + 3 * 196 * h
    encoder += 1 + 1601 * h + 9 * 4 * 1601 * h + 2 * (1 + 9 * 4 * h) + 4 * h
    assert encoder == 863_567_379  # 836,288,019 at the 448 px of the test dict it came from
    v = _spec("meta-llama__Llama-3.2-11B-Vision-Instruct").vision
    assert v is not None and v.params == encoder + 7680 * 4096 + 4096


def test_engines_load_the_encoder_but_a_decode_step_does_not_read_it() -> None:
    spec = _spec("google__gemma-3-27b-it")
    counts = param_counts(spec)
    wb = weight_bytes(spec)
    assert counts.vision == 423_060_336
    assert wb.vision == 2 * 423_060_336  # bf16: the encoder stays unquantized
    assert wb.total == wb.non_expert + wb.experts + wb.vision
    text_only = weight_bytes(spec.model_copy(update={"vision": None}))
    assert wb.total - text_only.total == 846_120_672
    assert wb.non_expert == text_only.non_expert  # roofline streams non_expert only


def test_unknown_family_is_stated_as_not_counted(tmp_path: Path) -> None:
    raw = _raw("google__gemma-3-27b-it")
    raw["model_type"] = "a_future_vlm"  # text still read from text_config (gemma3_text)
    spec = parse_hf_config(raw, name="f", origin="f")
    assert spec.vision is not None and not spec.vision.counted and spec.vision.params == 0
    assert any("no reader for this image encoder" in a for a in spec.assumptions)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    r = run_cli("size", str(path), "--json")
    assert r.code == 0
    assert r.json["vision_encoder"] == {"family": "a_future_vlm", "counted": False, "params": 0}
    assert r.json["weight_bytes"] == 2 * 27_009_346_304  # the text decoder only, as stated


def test_kimi_k25_moonvit_reads_the_remote_code_key_names() -> None:
    # vt_hidden_size / init_pos_emb_height / mm_hidden_size as published; MoonViT 416,866,032
    # (27 SigLIP-shaped blocks, conv patch embedding, 64 x 64 position table, final LayerNorm)
    # + patch merger 2 x 1152 + 4608^2 + 4608 + 7168 x 4608 + 7168 = 54,277,888
    v = _spec("moonshotai__Kimi-K2.5").vision
    assert v is not None and v.counted
    assert v.params == 416_866_032 + 54_277_888


def test_size_json_reports_the_encoder_beside_the_text_decoder() -> None:
    r = run_cli("size", "google/gemma-3-27b-it", "--json")
    assert r.code == 0
    assert r.json["params"] == 27_009_346_304  # transformers' text decoder
    assert r.json["vision_params"] == 423_060_336
    assert r.json["weight_bytes"] == 2 * (27_009_346_304 + 423_060_336)


def test_a_missing_key_takes_the_transformers_default_and_says_so() -> None:
    raw = _raw("google__gemma-3-27b-it")
    assert "num_channels" not in raw["vision_config"]  # as published
    spec = parse_hf_config(raw, name="g", origin="g")
    assert "vision_config.num_channels not in config: using the SiglipVisionConfig default 3" in (
        spec.assumptions
    )
    notes: list[str] = []
    v = read_vision({"model_type": "mllama", "vision_config": {}}, 4096, notes)
    assert v is not None and v.params == 867_749_395  # the defaults are the 11B's values
    assert len(notes) == 10


def test_a_malformed_key_of_a_known_family_fails_closed_naming_it(tmp_path: Path) -> None:
    raw = _raw("google__gemma-3-27b-it")
    raw["vision_config"]["hidden_size"] = "1152"
    with pytest.raises(ConfigError, match=r"vision_config\.hidden_size must be a positive"):
        parse_hf_config(raw, name="g", origin="g")
    raw["vision_config"]["hidden_size"] = 1152
    raw["vision_config"]["vision_use_head"] = True  # a pooling head kvplan does not count
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    r = run_cli("size", str(path))
    assert r.code == 2
    assert "vision_config.vision_use_head = True is not supported" in r.err
