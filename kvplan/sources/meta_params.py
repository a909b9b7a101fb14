"""Read Meta's / Mistral's native `params.json` (what `meta-llama/Llama-2-70b` ships).

Keys: dim, n_layers, n_heads, n_kv_heads, vocab_size, multiple_of, ffn_dim_multiplier
(Meta) or hidden_dim, head_dim, sliding_window, moe (Mistral). Meta's FFN width follows
the reference implementation: h = int(2 * 4 * dim / 3); h = int(ffn_dim_multiplier * h);
h = multiple_of * ceil(h / multiple_of). Llama-2-70B: 8192 -> 21845 -> 28398 -> 28672.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvplan.core.params import llama_ffn_width
from kvplan.errors import KvplanError
from kvplan.sources.hf_config import parse_hf_config

LLAMA2_VOCAB = 32000  # vocab_size -1 in Llama 2's params.json: the tokenizer's 32000
LLAMA2_MAX_POSITIONS = 4096
LLAMA3_ROPE_THETA = 500000.0
LLAMA3_MAX_POSITIONS = 8192
LLAMA31_MAX_POSITIONS = 131072  # Llama 3.1+: use_scaled_rope true


def is_meta_params(raw: Mapping[str, Any]) -> bool:
    return "dim" in raw and "n_layers" in raw and "model_type" not in raw


def params_to_hf(
    raw: Mapping[str, Any], origin: str = "params.json"
) -> tuple[dict[str, Any], list[str]]:
    """Translate params.json keys into config.json keys; returns (config, assumptions)."""
    notes: list[str] = []
    dim = raw["dim"]
    # dim / n_layers / n_heads / n_kv_heads keep their params.json names (the config reader
    # accepts them), so an error names the key that is actually in the file.
    cfg: dict[str, Any] = {
        "model_type": "mistral" if "hidden_dim" in raw or "sliding_window" in raw else "llama",
        "dim": dim,
        "n_layers": raw["n_layers"],
        "n_heads": raw.get("n_heads"),
        "tie_word_embeddings": False,
    }
    if raw.get("n_kv_heads") is not None:
        cfg["n_kv_heads"] = raw["n_kv_heads"]
    if raw.get("head_dim") is not None:
        cfg["head_dim"] = raw["head_dim"]
    if raw.get("hidden_dim") is not None:
        cfg["intermediate_size"] = raw["hidden_dim"]
    elif isinstance(dim, int) and isinstance(raw.get("multiple_of"), int):
        multiplier = raw.get("ffn_dim_multiplier")
        if multiplier is not None and (
            isinstance(multiplier, bool)
            or not isinstance(multiplier, int | float)
            or multiplier <= 0
        ):
            raise KvplanError(
                f"{origin}: key ffn_dim_multiplier must be a positive number, got {multiplier!r}"
            )
        width = llama_ffn_width(dim, raw["multiple_of"], multiplier)
        cfg["intermediate_size"] = width
        notes.append(f"FFN width from multiple_of/ffn_dim_multiplier as Meta's code does: {width}")
    llama3 = raw.get("rope_theta") == LLAMA3_ROPE_THETA
    vocab = raw.get("vocab_size")
    if vocab is None or vocab == -1:
        vocab = LLAMA2_VOCAB
        notes.append(f"vocab_size -1 (set by the tokenizer): using Llama 2's {LLAMA2_VOCAB}")
    cfg["vocab_size"] = vocab
    if raw.get("sliding_window") is not None:
        cfg["sliding_window"] = raw["sliding_window"]
    max_pos = raw.get("max_seq_len") or raw.get("max_position_embeddings")
    if max_pos is None:
        if raw.get("use_scaled_rope"):
            max_pos = LLAMA31_MAX_POSITIONS
        else:
            max_pos = LLAMA3_MAX_POSITIONS if llama3 else LLAMA2_MAX_POSITIONS
        notes.append(f"max positions not in params.json: {max_pos} from the model family")
    cfg["max_position_embeddings"] = max_pos
    moe = raw.get("moe")
    if isinstance(moe, Mapping):
        cfg["num_local_experts"] = moe.get("num_experts")
        cfg["num_experts_per_tok"] = moe.get("num_experts_per_tok")
    cfg["torch_dtype"] = "bfloat16"
    notes.append("native params.json: checkpoint dtype taken as bf16")
    return cfg, notes


def parse_meta_params(raw: Mapping[str, Any], *, name: str, origin: str) -> Any:
    cfg, notes = params_to_hf(raw, origin)
    spec = parse_hf_config(cfg, name=name, origin=origin)
    assumptions = tuple(notes) + tuple(
        a for a in spec.assumptions if not a.startswith("checkpoint dtype")
    )
    return spec.model_copy(update={"assumptions": assumptions})
