"""How a quantized checkpoint stores each group of weights: the storage formats and the rules
that say which group (attention, dense MLP, routed experts, shared experts, router, LM head,
embeddings) is stored in which format.

A mixed-precision checkpoint is the norm, not the exception: gpt-oss keeps attention, router and
embeddings in bf16 and only the experts in mxfp4; Kimi-K2.5 stores routed experts as int4 and
attention / shared experts / dense MLPs in bf16; NVIDIA's Gemma-4 NVFP4 leaves every attention
layer in bf16. One dtype for "the linear layers" overstates or understates such a checkpoint by
10-20 %. Here each linear matrix (out x in) is costed in its own format, scales and zero points
included, from the tensor layouts the formats document:

  values   ceil(out * in * bits / 8)
  scales   out * ceil(in / group) * scale_bits / 8        (group along the input dimension)
           ceil(out / b0) * ceil(in / b1) * scale_bits / 8 (2-D blocks, fp8 [128, 128])
           out * scale_bits / 8                            (one per output channel)
           scale_bits / 8                                  (one per tensor)
  zeros    as many as scales, zero_bits each (asymmetric int formats)
  extra    fixed bytes per matrix (global scales, stored shapes) + bytes per input feature
           (GPTQ's g_idx)

e.g. int4, group 128, fp16 scale, 4-bit zero: (128 * 4 + 16 + 4) / 128 = 4.156 bits per weight.
Everything that is not one of these matrices (biases, norms, sinks, routers, embeddings unless a
rule targets them) stays at the checkpoint's float dtype. Pure data and arithmetic: the config
readers (kvplan.sources.quant_config) build a `Quantization`; kvplan.core.params applies it.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache
from math import ceil

from kvplan.core.frozen import Frozen, field


class Group(str, Enum):
    """A group of linear matrices that quantization recipes treat alike."""

    EMBEDDING = "embedding"
    LM_HEAD = "lm_head"
    ATTENTION = "attention"  # every token mixer: attention, MLA, indexer, linear attention
    DENSE_MLP = "dense_mlp"
    EXPERTS = "experts"  # routed experts
    SHARED_EXPERTS = "shared_experts"  # always-active MLPs of MoE layers
    ROUTER = "router"


class WeightFormat(Frozen):
    """The stored layout of one quantized matrix (see the module docstring for the formula)."""

    name: str
    bits: int = field(gt=0, le=32)
    group_size: int = 0  # > 0: one scale per `group_size` inputs; 0: per channel; -1: per tensor
    block: tuple[int, int] | None = None  # 2-D scale blocks (out, in), e.g. fp8 [128, 128]
    scale_bits: int = field(default=0, ge=0)
    zero_bits: int = field(default=0, ge=0)
    matrix_bytes: int = field(default=0, ge=0)  # per matrix: global scales, stored shapes
    input_bytes: int = field(default=0, ge=0)  # per input feature: GPTQ's g_idx (int32)
    dtype: str = "int4"  # the kvplan dtype name its values use in compute (roofline)

    def bytes(self, out: int, inp: int) -> int:
        """Bytes of one out x in matrix in this format, scales and zero points included."""
        values = ceil(out * inp * self.bits / 8)
        if self.block is not None:
            scales = ceil(out / self.block[0]) * ceil(inp / self.block[1])
        elif self.group_size > 0:
            scales = out * ceil(inp / self.group_size)
        elif self.group_size == 0:
            scales = out
        else:
            scales = 1
        scale_bytes = ceil(scales * self.scale_bits / 8) + ceil(scales * self.zero_bits / 8)
        return values + scale_bytes + self.matrix_bytes + self.input_bytes * inp

    @property
    def bits_per_weight(self) -> float:
        """Average bits per weight of a large matrix (for display): bits + scale overhead."""
        group = self.group_size if self.group_size > 0 else 0
        if self.block is not None:
            group = self.block[0] * self.block[1]
        extra = (self.scale_bits + self.zero_bits) / group if group else 0.0
        return self.bits + extra


# ---- the documented formats -----------------------------------------------------------------
def fp8_block(block: tuple[int, int], scale_bits: int = 32) -> WeightFormat:
    """fp8 e4m3 with one fp32 `weight_scale_inv` per 2-D block (DeepSeek-V3 / Qwen3 FP8,
    transformers FineGrainedFP8: scale shape [ceil(out / b0), ceil(in / b1)], float32)."""
    return WeightFormat(
        name=f"fp8 block {block[0]}x{block[1]}",
        bits=8,
        block=block,
        scale_bits=scale_bits,
        dtype="fp8",
    )


def fp8_tensor(static_input: bool) -> WeightFormat:
    """fp8 with one fp32 `weight_scale` per tensor (+ one fp32 `input_scale` when activations
    are static) - the per-tensor fp8 layout of transformers' fp8 / vLLM's Fp8LinearMethod."""
    return WeightFormat(
        name="fp8 per-tensor",
        bits=8,
        group_size=-1,
        scale_bits=32,
        matrix_bytes=4 if static_input else 0,
        dtype="fp8",
    )


def fp8_channel(scale_bits: int = 32) -> WeightFormat:
    """fp8 with one scale per output channel (fbgemm_fp8: float32 `weight_scale` [out, 1])."""
    return WeightFormat(
        name="fp8 per-channel", bits=8, group_size=0, scale_bits=scale_bits, dtype="fp8"
    )


def mxfp4() -> WeightFormat:
    """OCP MX fp4 (gpt-oss): 4-bit e2m1 values in `_blocks` (uint8, two per byte) and one
    8-bit e8m0 exponent per 32 in `_scales` (uint8): 4.25 bits per weight."""
    return WeightFormat(name="mxfp4", bits=4, group_size=32, scale_bits=8, dtype="mxfp4")


def nvfp4(extra_scalars: int) -> WeightFormat:
    """NVIDIA NVFP4 (ModelOpt / compressed-tensors nvfp4-pack-quantized): e2m1 values packed
    two per uint8, one fp8 e4m3 `weight_scale` per 16, and fp32 scalars per matrix
    (`weight_scale_2` / `weight_global_scale`, plus `input_scale` when activations are
    quantized): 4.5 bits per weight."""
    return WeightFormat(
        name="nvfp4",
        bits=4,
        group_size=16,
        scale_bits=8,
        matrix_bytes=4 * extra_scalars,
        dtype="mxfp4",
    )


def int_group(
    bits: int,
    group_size: int,
    *,
    scale_bits: int = 16,
    zero_bits: int = 0,
    matrix_bytes: int = 0,
    input_bytes: int = 0,
    label: str = "",
) -> WeightFormat:
    """Integer weights with a float scale per `group_size` inputs (-1 / 0: per channel), e.g.
    AWQ / GPTQ (fp16 scales, `bits`-wide packed zeros) and compressed-tensors pack-quantized
    (scales in the model dtype, zeros only when asymmetric)."""
    dtype = "int8" if bits == 8 else "int4"
    group = group_size if group_size > 0 else 0
    where = f"g{group_size}" if group_size > 0 else "per-channel"
    return WeightFormat(
        name=label or f"int{bits} {where}",
        bits=bits,
        group_size=group,
        scale_bits=scale_bits,
        zero_bits=zero_bits,
        matrix_bytes=matrix_bytes,
        input_bytes=input_bytes,
        dtype=dtype,
    )


class Scheme(Frozen):
    """One rule: the matrices it targets, and the format they are stored in."""

    targets: tuple[str, ...] = ("Linear",)  # "Linear": every quantizable matrix; else names
    format: WeightFormat


class Quantization(Frozen):
    """What a checkpoint's `quantization_config` says about each weight group.

    A matrix is stored in the format of the first scheme that targets it, unless it is one of
    the `ignore` patterns or its group is not in `groups` (the groups the method quantizes
    at all: e.g. gpt-oss mxfp4 only experts; AWQ/GPTQ/fp8 never embeddings). `overrides` are
    GPTQ `dynamic` rules: pattern -> format (None: left unquantized)."""

    method: str  # e.g. fp8, awq, gptq, mxfp4, compressed-tensors, modelopt, bitsandbytes
    weight_dtype: str  # kvplan dtype name of the main quantized format (roofline, display)
    schemes: tuple[Scheme, ...] = ()
    groups: frozenset[Group] = frozenset(
        {Group.ATTENTION, Group.DENSE_MLP, Group.EXPERTS, Group.SHARED_EXPERTS}
    )
    ignore: tuple[str, ...] = ()
    overrides: tuple[tuple[str, WeightFormat | None], ...] = ()
    notes: tuple[str, ...] = ()

    def format_for(self, group: Group, names: tuple[str, ...]) -> WeightFormat | None:
        """The format of one matrix known by `names` (aliases of its module path), or None
        when it stays at the checkpoint's float dtype."""
        for pattern, fmt in self.overrides:
            if any(_regex(pattern).match(n) for n in names):
                return fmt
        explicit = [s for s in self.schemes if _named(s.targets, names)]
        if group not in self.groups and not explicit:
            return None
        if self.ignore and any(_combined(self.ignore).search(n) for n in names):
            return None
        if explicit:
            return explicit[0].format
        for scheme in self.schemes:
            if "Linear" in scheme.targets and group is not Group.EMBEDDING:
                return scheme.format
            if "Embedding" in scheme.targets and group is Group.EMBEDDING:
                return scheme.format
        return None


def _named(targets: tuple[str, ...], names: tuple[str, ...]) -> bool:
    """A scheme names this matrix itself (not through the class names Linear / Embedding)."""
    own = tuple(t for t in targets if t not in ("Linear", "Embedding"))
    return bool(own) and any(_combined(own).search(n) for n in names)


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _piece(pattern: str) -> str:
    if pattern.startswith("re:"):
        return f"^(?:{pattern[3:]})"
    glob = ".*".join(re.escape(part) for part in pattern.split("*"))
    return rf"(?:^|\.)(?:{glob})(?:\.|$)"


@lru_cache(maxsize=256)
def _combined(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(_piece(p) for p in patterns))


def matches(pattern: str, name: str) -> bool:
    """Whether an ignore / target pattern names the module `name` (or a module above it).

    `re:<regex>`: compressed-tensors' regex form, matched from the start (re.match).
    Otherwise a module name, possibly with `*` wildcards (ModelOpt, gpt-oss), matched against
    a dotted run of the name's components: "lm_head", "gate" (the router `mlp.gate`, not
    `gate_proj`), "model.layers.*.self_attn", "model.vision_tower"."""
    return _combined((pattern,)).search(name) is not None
