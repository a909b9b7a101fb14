"""Element sizes of cache and weight dtypes, as exact fractions of a byte.

Sub-byte formats carry their scale overhead in the size so byte counts stay honest:
- int4 KV cache: 4-bit values plus one fp16 scale per group of 32 (the Q4_0 layout):
  (32*4 + 16) / 32 = 4.5 bits = 9/16 byte per element.
- mxfp4 weights (OCP microscaling): 4-bit values plus one 8-bit scale per 32: 4.25 bits.
- int4 weights (AWQ/GPTQ, group 128): 4-bit values plus an fp16 scale and a 4-bit zero
  point per 128: (128*4 + 16 + 4) / 128 = 4.15625 bits.
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil

from kvplan.core.kv_formats import ENGINE_ALIASES, KV_FORMATS, PER_TOKEN_HEAD
from kvplan.errors import KvplanError

INT4_KV_GROUP = 32
MXFP4_GROUP = 32
INT4_WEIGHT_GROUP = 128

# Bytes per element.
DTYPE_BYTES: dict[str, Fraction] = {
    "fp32": Fraction(4),
    "fp16": Fraction(2),
    "bf16": Fraction(2),
    "fp8": Fraction(1),
    "int8": Fraction(1),
    "int4": Fraction(INT4_KV_GROUP * 4 + 16, INT4_KV_GROUP * 8),
    "mxfp4": Fraction(MXFP4_GROUP * 4 + 8, MXFP4_GROUP * 8),
    "int4-g128": Fraction(INT4_WEIGHT_GROUP * 4 + 16 + 4, INT4_WEIGHT_GROUP * 8),
}

# Quantized KV formats with scale bytes included (kvplan.core.kv_formats).
DTYPE_BYTES.update({name: f.bytes_per_element for name, f in KV_FORMATS.items()})

KV_DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4", *KV_FORMATS)
# What a user may type for the KV cache (per-token-head formats resolve by head dim).
KV_DTYPE_NAMES = (
    "fp32",
    "fp16",
    "bf16",
    "fp8",
    "int8",
    "int4",
    "nvfp4",
    "fp8_ds_mla",
    "nvfp4_ds_mla",
    *PER_TOKEN_HEAD,
)
WEIGHT_DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4", "mxfp4")

# Names people (and configs, and engines) use for the same thing.
_ALIASES: dict[str, str] = {
    "float32": "fp32",
    "float": "fp32",
    "f32": "fp32",
    "float16": "fp16",
    "half": "fp16",
    "f16": "fp16",
    "bfloat16": "bf16",
    "fp8_e4m3": "fp8",
    "fp8_e5m2": "fp8",
    "fp8e4m3": "fp8",
    "float8": "fp8",
    "float8_e4m3fn": "fp8",
    "e4m3": "fp8",
    "e5m2": "fp8",
    "i8": "int8",
    "q8": "int8",
    "i4": "int4",
    "q4": "int4",
    "nf4": "int4",
    "fp4": "mxfp4",
    **ENGINE_ALIASES,
}

DTYPE_NOTES: dict[str, str] = {
    **{name: f.note for name, f in KV_FORMATS.items()},
    "int4": f"4-bit values + one fp16 scale per {INT4_KV_GROUP} elements = 4.5 bits/element",
    "mxfp4": f"4-bit values + one 8-bit scale per {MXFP4_GROUP} elements = 4.25 bits/element",
    "int4-g128": (
        f"4-bit values + fp16 scale and 4-bit zero per {INT4_WEIGHT_GROUP} = 4.156 bits/element"
    ),
}


def normalize_dtype(name: str) -> str:
    key = name.strip().lower().replace("torch.", "")
    return _ALIASES.get(key, key)


# K and V in different dtypes. vLLM, SGLang and TensorRT-LLM take one KV-cache dtype for
# both (vLLM --kv-cache-dtype / CacheConfig.cache_dtype; SGLang --kv-cache-dtype, whose
# DefaultPoolConfigurator._compute_cell_size sizes K and V at one element size; TensorRT-LLM
# KvCacheConfig.dtype). The one engine way to store them differently is vLLM's TurboQuant
# presets (vllm/model_executor/layers/quantization/turboquant/config.py TQ_PRESETS:
# turboquant_k8v4 = fp8 K + 4-bit V, turboquant_k3v4_nc = 3-bit K + 4-bit V, and the
# symmetric turboquant_4bit_nc / turboquant_3bit_nc). kvplan does not model them: a slot is
# key_packed + value_packed bytes per head, padded to an even number in one release and to a
# power of two in others, and vllm/engine/arg_utils.py keeps the first and last two layers
# of a dense model at the model dtype (kv_cache_dtype_skip_layers), so pages differ per
# layer; no engine log checks either. llama.cpp's --cache-type-k / --cache-type-v is not
# an engine kvplan models. So these names, and any K/V pair, are refused (fail closed).
TURBOQUANT_PREFIX = "turboquant_"
KV_PAIR_SEPARATORS = (":", ",", "/", "+")


def _refuse_split_kv(name: str) -> None:
    text = name.strip().lower()
    if text.startswith(TURBOQUANT_PREFIX):
        raise KvplanError(
            f"{name!r} is one of vLLM's TurboQuant presets (K and V in different formats, "
            "e.g. turboquant_k8v4 = fp8 keys + 4-bit values); kvplan does not model them: "
            "their slot padding changed between releases and vLLM keeps the first and last "
            "two layers at the model dtype",
            hint="the nearest modelled formats are fp8 and nvfp4; see docs/engines.md",
        )
    if any(sep in text for sep in KV_PAIR_SEPARATORS):
        raise KvplanError(
            f"{name!r} gives K and V different dtypes; vLLM, SGLang and TensorRT-LLM take one "
            "KV-cache dtype for both (llama.cpp's --cache-type-k/-v is not a kvplan engine)",
            hint=f"choose one of {', '.join(KV_DTYPE_NAMES)}",
        )


def kv_dtype(name: str) -> str:
    """Validate a KV-cache dtype name; 'auto' is resolved by the caller. K and V in
    different dtypes (a pair, or vLLM's TurboQuant presets) are refused with why."""
    _refuse_split_kv(name)
    key = normalize_dtype(name)
    if key not in KV_DTYPES and key not in PER_TOKEN_HEAD:
        raise KvplanError(
            f"unknown KV-cache dtype {name!r}", hint=f"choose one of {', '.join(KV_DTYPE_NAMES)}"
        )
    return key


def weight_dtype(name: str) -> str:
    key = normalize_dtype(name)
    if key == "int4":
        return "int4-g128"
    if key not in DTYPE_BYTES:
        raise KvplanError(
            f"unknown weight dtype {name!r}", hint=f"choose one of {', '.join(WEIGHT_DTYPES)}"
        )
    return key


def bytes_for(elements: int, dtype: str) -> int:
    """Exact bytes for `elements` values of `dtype` (rounded up to a whole byte)."""
    return ceil(elements * DTYPE_BYTES[dtype])
