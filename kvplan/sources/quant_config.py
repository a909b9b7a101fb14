"""Read a config's `quantization_config` into a `Quantization`: which weight groups are stored
in which format (kvplan.core.quant_groups holds the formats and their byte formulas).

Every method is read from the keys its own tooling writes; a method, scheme, strategy or bit
width kvplan does not know raises `QuantConfigError` naming the key (exit 2) rather than
guessing a size. Sources for each layout are in docs/config-keys.md ("quantization_config").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from kvplan.core.quant_groups import (
    Group,
    Quantization,
    Scheme,
    WeightFormat,
    fp8_block,
    fp8_channel,
    fp8_tensor,
    int_group,
    mxfp4,
    nvfp4,
)

LINEAR_GROUPS = frozenset({Group.ATTENTION, Group.DENSE_MLP, Group.EXPERTS, Group.SHARED_EXPERTS})
KEY = "quantization_config"
# Methods whose storage kvplan does not model: named so the error can say what it is.
UNSUPPORTED = (
    "auto-round",
    "auto_round",
    "hqq",
    "eetq",
    "exl2",
    "exl3",
    "torchao",
    "quark",
    "higgs",
    "vptq",
    "aqlm",
    "spqr",
    "fp_quant",
    "gguf",
    "bitnet",
    "quanto",
)


class QuantConfigError(ValueError):
    """A quantization_config kvplan cannot cost; `key` is the dotted key at fault."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _fail(key: str, message: str) -> QuantConfigError:
    return QuantConfigError(f"{KEY}.{key}", f"key {KEY}.{key}: {message}")


def _int(q: Mapping[str, Any], key: str, default: int | None = None, *, where: str = "") -> int:
    value = q.get(key, default)
    path = f"{where}{key}"
    if value is None:
        raise _fail(path, "missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"must be an integer, got {value!r}")
    return value


def _regex_ok(key: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise _fail(key, f"{pattern!r} is not a regular expression ({exc})") from None


def _patterns(q: Mapping[str, Any], *keys: str) -> tuple[str, ...]:
    out: list[str] = []
    for key in keys:
        value = q.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(key, f"must be a list of module names, got {value!r}")
        for pattern in value:
            if pattern.startswith("re:"):
                _regex_ok(key, pattern[3:])
            out.append(pattern)
    return tuple(out)


def _dtype_label(fmt: WeightFormat) -> str:
    """The legacy one-dtype label (roofline compute dtype, display)."""
    if fmt.dtype == "int4":
        return "int4-g128"
    return fmt.dtype


def read_quantization(q: Mapping[str, Any], *, float_bits: int = 16) -> Quantization:
    """The `Quantization` a config's quantization_config describes. `float_bits`: the bits of
    the checkpoint's float dtype (compressed-tensors stores scales in it)."""
    raw = q.get("quant_method")
    if raw is None and isinstance(q.get("quantization"), Mapping):
        raw = "modelopt"  # hf_quant_config.json: {"producer": ..., "quantization": {...}}
    if raw is None:
        raise _fail("quant_method", "missing: kvplan cannot tell how the weights are stored")
    if not isinstance(raw, str):
        raise _fail("quant_method", f"must be a string, got {raw!r}")
    method = raw.lower()
    if method in ("fp8", "fbgemm_fp8"):
        return _fp8(q, method)
    if method == "mxfp4":
        ignore = _patterns(q, "modules_to_not_convert")
        fmt = mxfp4()
        return Quantization(
            method=method,
            weight_dtype="mxfp4",
            schemes=(Scheme(format=fmt),),
            groups=frozenset({Group.EXPERTS}),  # transformers' Mxfp4 quantizes only experts
            ignore=ignore,
        )
    if method == "compressed-tensors":
        return _compressed_tensors(q, float_bits)
    if method == "awq":
        return _awq(q)
    if method == "gptq":
        return _gptq(q)
    if method == "modelopt":
        return _modelopt(q)
    if method == "bitsandbytes":
        return _bitsandbytes(q)
    if method in UNSUPPORTED:
        raise _fail("quant_method", f"{raw!r}: kvplan does not model how {raw} stores weights")
    raise _fail("quant_method", f"unknown quantization method {raw!r}")


def _fp8(q: Mapping[str, Any], method: str) -> Quantization:
    ignore = _patterns(q, "modules_to_not_convert", "ignored_layers")
    if method == "fbgemm_fp8":
        fmt = fp8_channel()
    else:
        block = q.get("weight_block_size")
        if block is None:
            fmt = fp8_tensor(static_input=q.get("activation_scheme") == "static")
        elif (
            isinstance(block, list)
            and len(block) == 2
            and all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in block)
        ):
            fmt = fp8_block((block[0], block[1]))
        else:
            raise _fail("weight_block_size", f"must be two positive integers, got {block!r}")
    return Quantization(
        method=method, weight_dtype="fp8", schemes=(Scheme(format=fmt),), ignore=ignore
    )


def _awq(q: Mapping[str, Any]) -> Quantization:
    """AutoAWQ GEMM layout: qweight int32 [in, out/8], qzeros int32 [in/g, out/8] (4-bit zero
    per group when zero_point), scales fp16 [in/g, out]."""
    bits = _int(q, "bits", q.get("w_bit"))
    if bits != 4:
        raise _fail("bits", f"AWQ with {bits} bits: kvplan models 4-bit AWQ only")
    group = _int(q, "group_size", q.get("q_group_size", 128))
    zero = q.get("zero_point", True)
    version = str(q.get("version", "gemm")).lower()
    if version not in ("gemm", "gemv", "gemv_fast", "marlin", "exllama", "ipex"):
        raise _fail("version", f"unknown AWQ kernel layout {version!r}")
    fmt = int_group(bits, group, zero_bits=bits if zero else 0, label=f"awq int4 g{group}")
    return Quantization(
        method="awq",
        weight_dtype=_dtype_label(fmt),
        schemes=(Scheme(format=fmt),),
        ignore=_patterns(q, "modules_to_not_convert"),
    )


def _gptq_format(bits: int, group: int, where: str) -> WeightFormat:
    if bits not in (2, 3, 4, 8):
        raise _fail(where + "bits", f"GPTQ with {bits} bits is not a GPTQ layout")
    # qweight int32 [in*bits/32, out], qzeros int32 [in/g, out*bits/32] (stored even when
    # sym), scales fp16 [in/g, out], g_idx int32 [in].
    return int_group(bits, group, zero_bits=bits, input_bytes=4, label=f"gptq int{bits} g{group}")


def _gptq(q: Mapping[str, Any]) -> Quantization:
    bits = _int(q, "bits")
    group = _int(q, "group_size", 128)
    fmt = _gptq_format(bits, group, "")
    groups = set(LINEAR_GROUPS)
    if q.get("lm_head") is True:
        groups.add(Group.LM_HEAD)
    overrides: list[tuple[str, WeightFormat | None]] = []
    dynamic = q.get("dynamic")
    if dynamic is not None:
        if not isinstance(dynamic, Mapping):
            raise _fail("dynamic", f"must be a mapping of module regexes, got {dynamic!r}")
        for pattern, rule in dynamic.items():
            where = f"dynamic.{pattern}."
            _regex_ok(f"dynamic.{pattern}", pattern[2:] if pattern[:2] in ("-:", "+:") else pattern)
            if pattern.startswith("-:"):
                overrides.append((pattern[2:], None))
                continue
            if not isinstance(rule, Mapping):
                raise _fail(f"dynamic.{pattern}", f"must be a mapping, got {rule!r}")
            b = _int(rule, "bits", bits, where=where)
            g = _int(rule, "group_size", group, where=where)
            overrides.append((pattern.removeprefix("+:"), _gptq_format(b, g, where)))
    schemes = (Scheme(format=fmt),)
    inside = q.get("modules_in_block_to_quantize")
    if inside is not None:
        if not isinstance(inside, list):
            raise _fail("modules_in_block_to_quantize", "must be a list of module-name lists")
        names = [n for row in inside for n in (row if isinstance(row, list) else [row])]
        schemes = (Scheme(targets=tuple(str(n) for n in names), format=fmt),)
        groups = set()
    return Quantization(
        method="gptq",
        weight_dtype=_dtype_label(fmt),
        schemes=schemes,
        groups=frozenset(groups),
        ignore=_patterns(q, "modules_to_not_convert"),
        overrides=tuple(overrides),
    )


def _modelopt(q: Mapping[str, Any]) -> Quantization:
    inner = q.get("quantization")
    body: Mapping[str, Any] = inner if isinstance(inner, Mapping) else q
    algo = body.get("quant_algo")
    if not isinstance(algo, str):
        raise _fail("quant_algo", f"must name the ModelOpt algorithm, got {algo!r}")
    ignore = _patterns(body, "exclude_modules", "ignore", "modules_to_not_convert")
    if algo.upper() == "MIXED_PRECISION":
        return _modelopt_mixed(body, ignore)
    if algo.upper() == "FP8":
        fmt = fp8_tensor(static_input=True)  # weight_scale + input_scale, fp32 each
        label = "fp8"
    elif algo.upper() == "NVFP4":
        group = _int(body, "group_size", 16)
        if group != 16:
            raise _fail("group_size", f"NVFP4 uses groups of 16, got {group}")
        fmt = nvfp4(extra_scalars=2)  # weight_scale_2 + input_scale
        label = "mxfp4"
    else:
        raise _fail("quant_algo", f"ModelOpt algorithm {algo!r} is not modelled (FP8, NVFP4)")
    return Quantization(
        method="modelopt",
        weight_dtype=label,
        schemes=(Scheme(format=fmt),),
        groups=LINEAR_GROUPS | {Group.LM_HEAD},  # ModelOpt quantizes lm_head unless excluded
        ignore=ignore,
        notes=(f"ModelOpt {algo}",),
    )


# The per-layer algorithms of a ModelOpt MIXED_PRECISION checkpoint, as vLLM loads each one
# (vllm-project/vllm@00155cdecca722d98e34234c3d172725b7720b7d
# vllm/model_executor/layers/quantization/modelopt.py, ModelOptMixedPrecisionConfig and the
# linear methods it dispatches to): FP8 -> ModelOptFp8LinearMethod (fp8 weight + fp32
# weight_scale + fp32 input_scale); NVFP4 (W4A4) -> weight_scale_2 and input_scale;
# W4A16_NVFP4 -> ModelOptNvFp4W4A16LinearMethod (weight, fp8 weight_scale per 16,
# fp32 weight_scale_2; "No activation quantization", its input_scale placeholder is dropped).
_MIXED_FORMATS = {
    "FP8": lambda: fp8_tensor(static_input=True),
    "NVFP4": lambda: nvfp4(extra_scalars=2),
    "W4A16_NVFP4": lambda: nvfp4(extra_scalars=1),
}


def _modelopt_mixed(body: Mapping[str, Any], ignore: tuple[str, ...]) -> Quantization:
    """ModelOpt MIXED_PRECISION: `quantized_layers` maps each quantized module (a linear, or
    the parent `mlp.experts` of a layer's routed experts) to its own `quant_algo`; every
    module it does not name stays unquantized (vLLM: "Layer not in quantized_layers - leave
    unquantized"). One scheme per algorithm, targeting exactly the modules named."""
    layers = body.get("quantized_layers")
    if not isinstance(layers, Mapping) or not layers:
        raise _fail("quantized_layers", "missing: MIXED_PRECISION names no quantized layer")
    names: dict[str, list[str]] = {}
    for module, info in layers.items():
        where = f"quantized_layers.{module}."
        algo = info.get("quant_algo") if isinstance(info, Mapping) else None
        if not isinstance(algo, str) or algo.upper() not in _MIXED_FORMATS:
            known = ", ".join(_MIXED_FORMATS)
            raise _fail(where + "quant_algo", f"{algo!r} is not a modelled algorithm ({known})")
        if "NVFP4" in algo.upper() and _int(info, "group_size", 16, where=where) != 16:
            raise _fail(where + "group_size", "NVFP4 uses groups of 16")
        names.setdefault(algo.upper(), []).append(str(module))
    schemes = tuple(
        Scheme(targets=tuple(mods), format=_MIXED_FORMATS[algo]()) for algo, mods in names.items()
    )
    # the narrowest format named is the main one (mixed recipes put it on the bulk of the
    # weights, the MLPs / experts); a display / roofline label only, bytes are per matrix
    return Quantization(
        method="modelopt",
        weight_dtype="fp8" if set(names) == {"FP8"} else "mxfp4",
        schemes=schemes,
        groups=frozenset(),  # only the modules quantized_layers names
        ignore=ignore,
        notes=("ModelOpt MIXED_PRECISION (" + ", ".join(sorted(names)) + ")",),
    )


def _bitsandbytes(q: Mapping[str, Any]) -> Quantization:
    skip = _patterns(q, "llm_int8_skip_modules")
    groups = LINEAR_GROUPS | {Group.ROUTER}  # bnb replaces every nn.Linear but lm_head
    if q.get("load_in_4bit") or q.get("_load_in_4bit"):
        double = bool(q.get("bnb_4bit_use_double_quant"))
        # packed uint8 values, absmax per 64 (uint8 with double quant, else fp32), a 16-entry
        # fp32 quant_map, and with double quant a 256-entry fp32 nested map + fp32 absmax per
        # 256 blocks (~0.002 bits); the quant_state JSON (~200 bytes) is approximated.
        fmt = WeightFormat(
            name=f"bnb {q.get('bnb_4bit_quant_type', 'fp4')} 4-bit",
            bits=4,
            group_size=64,
            scale_bits=8 if double else 32,
            matrix_bytes=64 + (1028 if double else 0) + 200,
            dtype="int4",
        )
        label = "int4-g128"
    elif q.get("load_in_8bit") or q.get("_load_in_8bit"):
        fmt = int_group(8, 0, scale_bits=32, matrix_bytes=1, label="bnb int8")  # SCB fp32/row
        label = "int8"
    else:
        raise _fail("load_in_4bit", "bitsandbytes config with neither load_in_4bit nor 8bit")
    return Quantization(
        method="bitsandbytes",
        weight_dtype=label,
        schemes=(Scheme(format=fmt),),
        groups=groups,
        ignore=skip,
        notes=("bitsandbytes quant_state bytes approximated",),
    )


def _ct_format(
    weights: Mapping[str, Any], acts: Any, fmt_name: str, float_bits: int, where: str
) -> WeightFormat:
    """One compressed-tensors config group's weight format."""
    bits = _int(weights, "num_bits", where=where)
    kind = weights.get("type", "int")
    strategy = weights.get("strategy", "tensor")
    symmetric = weights.get("symmetric", True)
    packed = fmt_name in ("pack-quantized", "nvfp4-pack-quantized")
    shape_bytes = 16 if fmt_name == "pack-quantized" else 0  # weight_shape int64[2]
    if kind == "float" and bits == 4:
        group = _int(weights, "group_size", 16, where=where)
        if group != 16 or strategy not in ("tensor_group", "group"):
            raise _fail(where + "strategy", f"fp4 {strategy} g{group} is not NVFP4")
        quantized_acts = isinstance(acts, Mapping) and acts.get("num_bits") == 4
        return nvfp4(extra_scalars=2 if quantized_acts else 1)
    if kind == "float" and bits == 8:
        static = isinstance(acts, Mapping) and acts.get("dynamic") is False
        extra = 4 if static else 0
        if strategy == "tensor":
            return WeightFormat(
                name="fp8 per-tensor",
                bits=8,
                group_size=-1,
                scale_bits=32,
                matrix_bytes=extra,
                dtype="fp8",
            )
        if strategy == "channel":
            return WeightFormat(
                name="fp8 per-channel",
                bits=8,
                group_size=0,
                scale_bits=float_bits,
                matrix_bytes=extra,
                dtype="fp8",
            )
        if strategy == "block":
            block = weights.get("block_structure")
            if not (isinstance(block, list) and len(block) == 2):
                raise _fail(where + "block_structure", f"must be [rows, cols], got {block!r}")
            return fp8_block((int(block[0]), int(block[1])), scale_bits=float_bits)
        raise _fail(where + "strategy", f"fp8 strategy {strategy!r} is not modelled")
    if kind == "int" and bits in (2, 4, 8):
        if strategy == "group":
            group = _int(weights, "group_size", where=where)
        elif strategy == "channel":
            group = 0
        elif strategy == "tensor":
            group = -1
        else:
            raise _fail(where + "strategy", f"int strategy {strategy!r} is not modelled")
        if bits < 8 and not packed:
            raise _fail("format", f"{bits}-bit weights in format {fmt_name!r} (not packed)")
        fmt = int_group(
            bits,
            group,
            scale_bits=float_bits,
            zero_bits=0 if symmetric else (bits if packed else 8),
            matrix_bytes=shape_bytes if packed else 0,
            label=f"int{bits} {'g' + str(group) if group > 0 else strategy}"
            + ("" if symmetric else " asym"),
        )
        if group < 0:  # one scale per tensor
            fmt = fmt.model_copy(update={"group_size": -1})
        return fmt
    if kind in ("int", "float"):
        raise _fail(where + "num_bits", f"{bits}-bit {kind} weights are not a modelled scheme")
    raise _fail(where + "type", f"weight type {kind!r} is not a modelled scheme")


def _compressed_tensors(q: Mapping[str, Any], float_bits: int) -> Quantization:
    groups_cfg = q.get("config_groups")
    if not isinstance(groups_cfg, Mapping) or not groups_cfg:
        raise _fail("config_groups", "missing: no scheme says how the weights are stored")
    top_format = q.get("format", "dense")
    schemes: list[Scheme] = []
    for name, group in groups_cfg.items():
        where = f"config_groups.{name}."
        if not isinstance(group, Mapping):
            raise _fail(f"config_groups.{name}", f"must be a mapping, got {group!r}")
        weights = group.get("weights")
        if not isinstance(weights, Mapping):
            raise _fail(where + "weights", "missing: an activation-only scheme stores no weights")
        fmt_name = str(group.get("format") or top_format)
        known = ("pack-quantized", "nvfp4-pack-quantized", "float-quantized")
        if fmt_name not in (*known, "int-quantized", "naive-quantized"):
            raise _fail("format", f"compressed-tensors format {fmt_name!r} is not modelled")
        targets = group.get("targets", ["Linear"])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise _fail(where + "targets", f"must be a list of names, got {targets!r}")
        for t in targets:
            if t.startswith("re:"):
                _regex_ok(where + "targets", t[3:])
        fmt = _ct_format(
            weights, group.get("input_activations"), fmt_name, float_bits, where + "weights."
        )
        schemes.append(Scheme(targets=tuple(targets), format=fmt))
    return Quantization(
        method="compressed-tensors",
        weight_dtype=_dtype_label(schemes[0].format),
        schemes=tuple(schemes),
        groups=LINEAR_GROUPS | {Group.LM_HEAD},  # "Linear" includes lm_head unless ignored
        ignore=_patterns(q, "ignore"),
    )


def with_expert_dtype(quant: Quantization, expert_dtype: Any) -> Quantization:
    """DeepSeek-V4's top-level `expert_dtype`: routed experts stored apart from the fp8 blocks
    of `quantization_config`. "fp4": e2m1 values with an e8m0 scale per 32 inputs (the MX
    layout, as DeepSeek's FP4 experts are described; assumed, recorded as a note)."""
    if expert_dtype is None or expert_dtype == "fp8":
        return quant
    if expert_dtype != "fp4":
        raise QuantConfigError("expert_dtype", f"key expert_dtype {expert_dtype!r} is not modelled")
    fmt = mxfp4().model_copy(update={"name": "fp4 e2m1 g32 (expert_dtype)"})
    return quant.model_copy(
        update={
            "overrides": ((r".*\.experts\.", fmt), *quant.overrides),
            "notes": (*quant.notes, "expert_dtype fp4: experts as e2m1 + e8m0 scale per 32"),
        }
    )
