"""The one screening layer for numbers and strings that come from outside kvplan.

Everything a user or a file supplies passes through here (or through
`kvplan.sources.deployment.parse_deployment`, whose bounds live on the `Deployment` fields)
before any arithmetic or allocation, so the core may assume validated input:

- JSON text (config.json, params.json, Hub configs): `load_json` refuses NaN / Infinity
  spellings cleanly, integer literals longer than any real value, duplicate keys (which
  JSON readers resolve last-wins, silently) and nesting deeper than `MAX_DEPTH`;
- a parsed model config: `screen_config` checks every number is finite, every key of
  `CONFIG_BOUNDS` holds a number (not a string, not a boolean) inside its documented
  plausible range, and every boolean key of `BOOLEAN_KEYS` holds a real boolean (a quoted
  "false" is an error, because Python reads any non-empty string as true);
- GPU catalogue entries: `screen_gpu_entries` (figures finite, positive, bounded);
- the environment: `screen_environment` (HF_HUB_*_TIMEOUT, KVPLAN_HUB_DEADLINE, COLUMNS);
- text echoed back to a terminal: `printable` (no raw newlines or escape sequences).

Every error names the key (dotted path) at fault, and is a `ConfigError` (exit 2).

The ranges are "plausible", not "published": each upper bound is at least ten times the
largest value in the bundled data (configs/models, configs/gpus.yaml;
each `why` names it), so no real config is refused, and far below the sizes that would make
kvplan allocate per-layer tables of millions of entries or take seconds to answer. The
table is printed in docs/robustness.md; tests/test_robustness.py checks every bundled and
reference config passes.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from kvplan.errors import ConfigError, KvplanError

MAX_DEPTH = 64  # published configs nest 4-5 levels (vision_config.rope_scaling...)
MAX_INT_DIGITS = 19  # |n| < 10**19 ~ 2**63: beyond every real value in any config
MAX_LIST_ITEMS = 1_000_000


class Bound:
    """A numeric key's plausible range [lo, hi]; `integer` when it counts something.
    (A plain slotted class: `@dataclass` generates its methods with `exec` at import,
    ~0.6 ms of every command, --help included.)"""

    __slots__ = ("hi", "integer", "lo", "why")

    def __init__(self, lo: float, hi: float, integer: bool = True, why: str = "") -> None:
        self.lo, self.hi, self.integer, self.why = lo, hi, integer, why

    def __repr__(self) -> str:
        return f"Bound(lo={self.lo!r}, hi={self.hi!r}, integer={self.integer!r}, why={self.why!r})"

    def describe(self) -> str:
        lo = f"{self.lo:,}" if self.integer else f"{self.lo:g}"
        hi = f"{self.hi:,}" if self.integer else f"{self.hi:g}"
        return f"{'an integer' if self.integer else 'a number'} in [{lo}, {hi}]"


def _keys(names: tuple[str, ...], bound: Bound) -> dict[str, Bound]:
    return dict.fromkeys(names, bound)


LAYERS = Bound(1, 2048, why="catalog maximum 118 (Nemotron-H-56B)")
HIDDEN = Bound(1, 1 << 18, why="catalog maximum 14,336 (BLOOM)")
HEADS = Bound(1, 4096, why="catalog maximum 128 (Falcon-40B, DeepSeek-V2)")
KV_HEADS = Bound(1, 4096, why="catalog maximum 128 (DeepSeek-V2)")
HEAD_DIM = Bound(
    1, 65536, why="catalog maximum: head_dim 256 (Gemma 3), kv_lora_rank 512 (DeepSeek-V2)"
)
INTERMEDIATE = Bound(1, 1 << 22, why="catalog maximum 36,864 (Gemma-2-27B)")
VOCAB = Bound(
    -1,
    1 << 24,
    why="catalog maximum 262,144 (Gemma 3); -1 = set by the tokenizer (Llama 2 params.json)",
)
POSITIONS = Bound(
    1, 1 << 40, why="the same limit as --ctx; catalog maximum 262,144 (Jamba 1.5 Mini)"
)
WINDOW = Bound(0, 1 << 40, why="the same limit as --ctx; catalog maximum 262,144 (Phi-4-mini)")
EXPERTS = Bound(0, 65536, why="catalog maximum 512 experts (Qwen3-Next-80B-A3B)")
LAYER_INDEX = Bound(0, 1024, why="a layer index, below the layer limit")
PERIOD = Bound(0, 1024, why="catalog maximum 8 (Jamba attn_layer_period)")
STATE = Bound(1, 1 << 16, why="catalog: 16 (Jamba 1.5 Mini)")
KERNEL = Bound(1, 1024, why="catalog: 4 (Jamba, Qwen3-Next)")
RATIO = Bound(
    0.1,
    1024,
    integer=False,
    why="catalog: 1.3 (Llama-2-70B ffn_dim_multiplier) to 4 (MPT expansion_ratio)",
)
BITS = Bound(1, 64, why="kvplan maps 4 and 8 bits")

# Per-key plausible ranges (one table for every config key kvplan reads as a number).
CONFIG_BOUNDS: dict[str, Bound] = {
    **_keys(("num_hidden_layers", "n_layer", "n_layers", "num_layers"), LAYERS),
    **_keys(("hidden_size", "n_embd", "d_model", "dim"), HIDDEN),
    **_keys(("num_attention_heads", "n_head", "n_heads", "num_heads"), HEADS),
    **_keys(
        (
            "num_key_value_heads",
            "num_kv_heads",
            "n_head_kv",
            "n_kv_heads",
            "kv_n_heads",
            "multi_query_group_num",
            "linear_num_key_heads",
            "linear_num_value_heads",
        ),
        KV_HEADS,
    ),
    **_keys(
        (
            "head_dim",
            "kv_channels",
            "d_head",
            "attention_head_size",
            "v_head_dim",
            "qk_nope_head_dim",
            "kv_lora_rank",
            "linear_key_head_dim",
            "linear_value_head_dim",
        ),
        HEAD_DIM,
    ),
    "qk_rope_head_dim": Bound(0, 65536, why="may be 0: no decoupled RoPE part"),
    "q_lora_rank": HIDDEN,
    **_keys(
        (
            "intermediate_size",
            "ffn_hidden_size",
            "n_inner",
            "ffn_dim",
            "hidden_dim",
            "moe_intermediate_size",
            "expert_intermediate_size",
            "mamba_d_inner",
            "intermediate_size_mamba",
        ),
        INTERMEDIATE,
    ),
    "shared_expert_intermediate_size": Bound(0, 1 << 22, why="0 = no shared expert"),
    **_keys(("vocab_size", "padded_vocab_size", "n_vocab"), VOCAB),
    **_keys(
        (
            "max_position_embeddings",
            "n_positions",
            "max_seq_len",
            "max_sequence_length",
            "seq_length",
            "model_max_length",
            "attention_chunk_size",
            "original_max_position_embeddings",
        ),
        POSITIONS,
    ),
    **_keys(("sliding_window",), WINDOW),
    **_keys(("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"), EXPERTS),
    **_keys(
        ("num_experts_per_tok", "experts_per_token", "moe_top_k", "num_experts_per_token"),
        EXPERTS,
    ),
    **_keys(("n_shared_experts", "num_shared_experts"), Bound(0, 1024, why="catalog: 2")),
    **_keys(
        (
            "max_window_layers",
            "first_k_dense_replace",
            "attn_layer_offset",
            "expert_layer_offset",
        ),
        Bound(0, 1 << 20, why="catalog maximum 94 (Qwen3-235B-A22B); may exceed the layer count"),
    ),
    **_keys(
        (
            "sliding_window_pattern",
            "_sliding_window_pattern",
            "attn_layer_period",
            "expert_layer_period",
            "full_attention_interval",
            "moe_layer_freq",
            "decoder_sparse_step",
            "interleave_moe_layer_step",
        ),
        PERIOD,
    ),
    **_keys(("mamba_d_state", "state_size", "ssm_state_size"), STATE),
    **_keys(("mamba_d_conv", "conv_kernel", "linear_conv_kernel_dim"), KERNEL),
    **_keys(("mamba_dt_rank", "time_step_rank"), HIDDEN),
    "multiple_of": Bound(1, 1 << 20, why="catalog maximum 4,096 (Llama-2-70B params.json)"),
    **_keys(("ffn_dim_multiplier", "expansion_ratio", "mamba_expand", "expand"), RATIO),
    **_keys(("bits", "w_bit", "weight_bits", "num_bits"), BITS),
}
# Lists of layer indices: every item an integer in LAYER_INDEX.
LAYER_LIST_KEYS = frozenset({"mlp_only_layers", "no_rope_layers"})
# Keys some families spell as per-layer lists or pattern strings instead of one number
# (MiMo-V2 / MiniMax-M3 `moe_layer_freq` lists of 0/1; EXAONE 4 `sliding_window_pattern`
# 'LLLG'): a list or string there is left to the config reader, which checks it per layer.
PER_LAYER_FORM_KEYS = frozenset({"moe_layer_freq", "sliding_window_pattern"})
# Published keys whose value is an infinite bound that kvplan never reads: NVIDIA's
# Nemotron-H / Nemotron-3 configs ship Mamba's `time_step_limit: [0.0, Infinity]`.
NONFINITE_OK_KEYS = frozenset({"time_step_limit"})
# Keys kvplan reads as booleans. JSON has true/false; a quoted "false" is a non-empty string,
# which Python reads as true, so a string here is an error, never a guess.
BOOLEAN_KEYS = frozenset(
    {
        "use_sliding_window",
        "multi_query",
        "new_decoder_architecture",
        "parallel_attn",
        "bias",
        "no_bias",
        "use_bias",
        "attention_bias",
        "mlp_bias",
        "tie_word_embeddings",
        "use_parallel_residual",
        "use_qk_norm",
        "use_scaled_rope",
        "load_in_4bit",
        "_load_in_4bit",
        "load_in_8bit",
        "_load_in_8bit",
        "alibi",
    }
)
# Pairs (smaller, larger) that must hold when both are present in one object.
ORDERED_PAIRS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (
        ("num_experts_per_tok", "experts_per_token", "moe_top_k", "num_experts_per_token"),
        ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts"),
    ),
)


# ---- JSON text -----------------------------------------------------------------------------
class _HugeInt:
    """An integer literal longer than MAX_INT_DIGITS: kept as text until the screen names
    its key (Python refuses to convert literals over 4,300 digits at all)."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


def _parse_int(text: str) -> int | _HugeInt:
    return _HugeInt(text) if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def load_json(data: str | bytes, *, origin: str) -> Any:
    """Parse JSON text strictly: one error line for anything a JSON reader would accept
    silently (duplicate keys, NaN) or crash on (deep nesting, 5,000-digit integers)."""
    try:
        raw = json.loads(data, parse_int=_parse_int, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{origin}: not a UTF-8 text file") from None
    except RecursionError:
        raise ConfigError(f"{origin}: JSON nested deeper than {MAX_DEPTH} levels") from None
    except _Duplicate as dup:
        raise ConfigError(
            f"{origin}: key {printable(dup.key)} appears twice in one object",
            hint="JSON readers keep the last one silently; remove one",
        ) from None
    except ValueError as exc:  # e.g. an exponent too large for a float in some builds
        raise ConfigError(f"{origin}: not valid JSON ({exc})") from None
    _check_depth(raw, origin)
    return raw


def _check_depth(value: Any, origin: str) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"{origin}: JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


# ---- a parsed model config -----------------------------------------------------------------
def screen_config(raw: Any, *, origin: str, hazards_only: bool = False) -> None:
    """Check every value of a parsed config.json / params.json before the reader sees it.

    Raises ConfigError naming the (dotted) key; returns None when the config is plausible.
    `hazards_only` (for the lint, which reports ordinary mistakes itself, all at once)
    checks only what no reader may see: non-finite numbers, integers of absurd length,
    values beyond a key's plausible range, deep nesting.
    """
    _check_depth(raw, origin)
    _walk(raw, (), origin, hazards_only)


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return printable(out) or "(top level)"


def _walk(value: Any, path: tuple[str | int, ...], origin: str, hazards_only: bool) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not hazards_only:
                _check_key(key, item, (*path, key), origin)
            else:
                _check_hazard(key, item, (*path, key), origin)
            _walk(item, (*path, key), origin, hazards_only)
        if not hazards_only:
            for smaller_keys, larger_keys in ORDERED_PAIRS:
                _check_order(value, smaller_keys, larger_keys, path, origin)
    elif isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            raise ConfigError(f"{origin}: key {_dotted(path)} has {len(value):,} items")
        for i, item in enumerate(value):
            _walk(item, (*path, i), origin, hazards_only)
    else:
        _check_scalar(value, path, origin)


def _check_scalar(value: Any, path: tuple[str | int, ...], origin: str) -> None:
    if isinstance(value, _HugeInt):
        raise ConfigError(
            f"{origin}: key {_dotted(path)} is an integer of {value.digits:,} digits, "
            "larger than any real value"
        )
    named = [part for part in path if isinstance(part, str)]
    if isinstance(value, float) and math.isinf(value) and named and named[-1] in NONFINITE_OK_KEYS:
        return  # a published infinite bound kvplan never reads
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(
            f"{origin}: key {_dotted(path)} is {value}, not a finite number",
            hint="JSON has no NaN or Infinity; write a number",
        )


def _check_hazard(key: str, value: Any, path: tuple[str | int, ...], origin: str) -> None:
    bound = CONFIG_BOUNDS.get(key)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if bound is not None and number and math.isfinite(value) and value > bound.hi:
        _check_number(value, bound, f"{origin}: key {_dotted(path)}")


def _check_key(key: str, value: Any, path: tuple[str | int, ...], origin: str) -> None:
    if value is None:
        return
    where = f"{origin}: key {_dotted(path)}"
    if key in BOOLEAN_KEYS:
        if not isinstance(value, bool):
            shown = f"the string {printable(repr(value))}" if isinstance(value, str) else value
            raise ConfigError(
                f"{where} must be true or false, got {shown}",
                hint="a quoted boolean is not read as a boolean; write true or false unquoted",
            )
        return
    if key in LAYER_LIST_KEYS:
        items = value if isinstance(value, list) else None
        if items is None or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= LAYER_INDEX.hi
            for i in items
        ):
            raise ConfigError(
                f"{where} must be a list of layer indices (integers in [0, {LAYER_INDEX.hi:,}])"
            )
        return
    bound = CONFIG_BOUNDS.get(key)
    if bound is None:
        return
    if isinstance(value, (list, dict)) and key in ("sliding_window", "bits"):
        return  # other families' structures under the same name: the reader decides
    if isinstance(value, (list, str)) and key in PER_LAYER_FORM_KEYS:
        return  # a per-layer form: the config reader checks it layer by layer
    _check_number(value, bound, where)


def yaml_exponent_hint(value: Any) -> str | None:
    """A number in exponent form that YAML read as text: YAML 1.1 (PyYAML's) takes 8.0e+12
    as a float but 8.0e12, 8e+12 and 8e-1 as strings (its float needs a dot and a signed
    exponent). How to write it, else None."""
    if not isinstance(value, str):
        return None
    parts = re.fullmatch(r"([-+]?)(\d+\.?\d*|\.\d+)[eE]([-+]?)(\d+)", value.strip())
    if parts is None:
        return None
    sign, mantissa, exp_sign, exponent = parts.groups()
    mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
    fixed = f"{sign}{mantissa}e{exp_sign or '+'}{exponent}"
    return f"YAML reads it as text: a number needs a dot and a signed exponent, {fixed}"


def _check_number(value: Any, bound: Bound, where: str) -> None:
    if isinstance(value, _HugeInt) or (isinstance(value, float) and not math.isfinite(value)):
        return  # _check_scalar names it
    kind = "an integer" if bound.integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = printable(repr(value))
        raise ConfigError(
            f"{where} must be {kind}, got {shown}",
            hint=None if bound.integer else yaml_exponent_hint(value),
        )
    if bound.integer and value != int(value):
        raise ConfigError(f"{where} must be an integer, got {value!r}")
    if value < bound.lo or (not bound.integer and value <= 0):
        if bound.lo < 0:
            raise ConfigError(f"{where} must be at least {bound.lo:g}, got {value!r}")
        if value > 0:
            raise ConfigError(
                f"{where} is {value:g}, below any real value: must be {bound.describe()}",
                hint=bound.why or None,
            )
        wanted = "non-negative" if bound.lo == 0 and bound.integer else "positive"
        raise ConfigError(f"{where} must be {wanted}, got {value!r}")
    if value > bound.hi:
        raise ConfigError(
            f"{where} is {value:,}, beyond any real value: must be {bound.describe()}",
            hint=bound.why or None,
        )


def _check_order(
    obj: Mapping[str, Any],
    smaller_keys: tuple[str, ...],
    larger_keys: tuple[str, ...],
    path: tuple[str | int, ...],
    origin: str,
) -> None:
    small = next(((k, obj[k]) for k in smaller_keys if _is_count(obj.get(k))), None)
    large = next(((k, obj[k]) for k in larger_keys if _is_count(obj.get(k))), None)
    if small and large and large[1] > 1 and small[1] > large[1]:
        raise ConfigError(
            f"{origin}: key {_dotted((*path, small[0]))} ({small[1]}) exceeds "
            f"{_dotted((*path, large[0]))} ({large[1]})"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---- GPU catalogue figures -----------------------------------------------------------------
GPU_BOUNDS: dict[str, Bound] = {
    "memory_marketed_gb": Bound(
        0.1, 1e6, integer=False, why="configs/gpus.yaml: 16 (t4) to 288 (mi355x)"
    ),
    "memory_bytes": Bound(
        1 << 20, 1 << 50, why="configs/gpus.yaml: 1.6e10 (t4) to 3.1e11 (mi355x)"
    ),
    "cuda_memory_bytes": Bound(1 << 20, 1 << 50, why="at most memory_bytes, at least 90 % of it"),
    "memory_bandwidth": Bound(
        1e9, 1e15, integer=False, why="B/s; configs/gpus.yaml: 3e11 (l4) to 8e12 (mi355x)"
    ),
    "interconnect_bandwidth": Bound(
        1e6, 1e15, integer=False, why="B/s; configs/gpus.yaml: 3.2e10 (t4) to 1.8e12 (gb300)"
    ),
    "tdp_watts": Bound(
        1, 1e5, integer=False, why="configs/gpus.yaml: 70 W (t4) to 1,400 W (mi355x)"
    ),
}
FLOPS_BOUND = Bound(
    1e9,
    1e18,
    integer=False,
    why="dense FLOP/s; configs/gpus.yaml: 1.4e13 (m3-max) to 1.5e16 (gb300)",
)


def screen_gpu_entries(raw: Any, *, origin: str) -> None:
    """Every figure of a GPU file: a finite, positive number in its plausible range (a
    string like "80" is refused, not coerced). Structure is left to the pydantic model."""
    _check_depth(raw, origin)
    if not isinstance(raw, dict) or not isinstance(raw.get("gpus"), list):
        return
    for i, entry in enumerate(raw["gpus"]):
        if not isinstance(entry, dict):
            continue
        label = f"{origin}: gpus[{i}] ({printable(str(entry.get('name', '?')))})"
        for key, bound in GPU_BOUNDS.items():
            if entry.get(key) is not None:
                _check_gpu_number(entry[key], bound, f"{label}: {key}")
        flops = entry.get("flops")
        if isinstance(flops, dict):
            for dtype, value in flops.items():
                _check_gpu_number(value, FLOPS_BOUND, f"{label}: flops.{printable(str(dtype))}")
        memory, cuda = entry.get("memory_bytes"), entry.get("cuda_memory_bytes")
        if isinstance(memory, int) and isinstance(cuda, int):
            if cuda > memory:
                raise ConfigError(f"{label}: cuda_memory_bytes ({cuda:,}) exceeds memory_bytes")
            # CUDA's total is the driver's total less what the driver reserves: 0-5 % in
            # every published pair in configs/gpus.yaml (GB10 unified memory 4.9 %, L4 2.0 %,
            # A100 80GB 1.1 %); below 90 % it is a unit slip (GB for GiB) or another card
            if cuda < 0.9 * memory:
                raise ConfigError(
                    f"{label}: cuda_memory_bytes ({cuda:,}) is under 90 % of memory_bytes "
                    f"({memory:,}): a CUDA total is the driver total less a small reservation"
                )
        from kvplan.core.gpu import COMPUTE_CAPABILITY_PATTERN  # not at start-up

        capability = entry.get("compute_capability")
        if capability is not None and not (
            isinstance(capability, str) and re.match(COMPUTE_CAPABILITY_PATTERN, capability)
        ):
            raise ConfigError(
                f"{label}: compute_capability must be a quoted 'major.minor' string such as "
                f'"9.0" or "10.3", got {printable(repr(capability))}'
            )
        if entry.get("cuda_memory_basis") is not None and cuda is None:
            raise ConfigError(f"{label}: cuda_memory_basis is given without cuda_memory_bytes")


def _check_gpu_number(value: Any, bound: Bound, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where} is {value}, not a finite number")
    _check_number(value, bound, where)
    if value <= 0:
        raise ConfigError(f"{where} must be positive, got {value!r}")


# ---- the environment -----------------------------------------------------------------------
HUB_DEADLINE_ENV = "KVPLAN_HUB_DEADLINE"
DEFAULT_HUB_DEADLINE_S = 15.0  # one full HF_HUB_ETAG_TIMEOUT (10 s) and the first retries
MAX_TIMEOUT_S = 3600.0
_TIMEOUT_ENVS = ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")


def env_seconds(name: str, default: float, *, integer: bool = False) -> float:
    """A timeout from the environment: a finite number of seconds in (0, 3600]."""
    text = os.environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "a whole number of seconds" if integer else "a number of seconds"
        raise KvplanError(
            f"environment variable {name}={printable(repr(text))} is not {kind}",
            setting=name,
        ) from None
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT_S:
        raise KvplanError(
            f"environment variable {name}={printable(repr(text))} must be in (0, "
            f"{MAX_TIMEOUT_S:g}] seconds",
            setting=name,
        )
    return float(value)


def hub_deadline() -> float:
    """The overall time kvplan gives the Hub for one model (KVPLAN_HUB_DEADLINE, seconds)."""
    return env_seconds(HUB_DEADLINE_ENV, DEFAULT_HUB_DEADLINE_S)


def screen_environment() -> None:
    """Environment variables kvplan or huggingface_hub read as numbers: a bad one is one
    Error line naming it (huggingface_hub would raise ValueError at import). COLUMNS that is
    not a positive width is dropped, so the terminal's real width (or 80) is used."""
    for name in _TIMEOUT_ENVS:
        env_seconds(name, 10, integer=True)
    hub_deadline()
    for name in ("COLUMNS", "LINES"):
        text = os.environ.get(name, "").strip()
        if name in os.environ and not (text.isdigit() and len(text) <= 6 and int(text) > 0):
            del os.environ[name]


# ---- text echoed back ----------------------------------------------------------------------
@cache
def _control() -> re.Pattern[str]:
    """Compiled on first use (~0.3 ms, which most commands never need)."""
    return re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Text safe to print on one line: control characters (newlines, ESC) escaped."""
    if text.isascii() and text.isprintable():
        return text  # nothing to escape (the common case: a name, a path)
    return _control().sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
