"""Read a Hugging Face `config.json` (as a dict) into a `ModelSpec`.

The mapping is table-driven: each field has the config keys that carry it across model
families (`num_key_value_heads`, `num_kv_heads`, `n_head_kv`, `multi_query`, MPT's
`attn_config.kv_n_heads` ...), and each family's implicit facts (tied embeddings, norms,
biases, layer patterns, the names its `layer_types` use, transformers' defaults) come from
one table, `kvplan.sources.traits`. The reader builds a per-layer description: mixer kind
(attention / MLA / MLA + indexer / cross-attention / Mamba / Mamba-2 / Gated DeltaNet / short
conv / linear / no-op), its KV heads and K/V head sizes, its window, and its FFN kind and width,
from whichever convention the config uses (`layer_types`, `hybrid_override_pattern`,
`block_configs`, `hybrid_layer_pattern`, `cross_attention_layers`, periodic keys).

Two modes, one implementation: `parse_hf_config` stops at the first problem (ConfigError,
exit 2, naming the key); `collect_findings` runs the same reader in collect mode and returns
every problem (`kvplan check PATHS`). Anything inferred rather than read is recorded in
`ModelSpec.assumptions`. Pure: takes a dict, returns a model.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from math import ceil
from typing import Any, Literal, TypeVar

from kvplan.core import dtypes
from kvplan.core.frozen import FieldError, Frozen
from kvplan.core.geometry import (
    CompressedAttentionDims,
    Ffn,
    Layer,
    LayerKind,
    MlaDims,
    ModelSpec,
    MoeDims,
    Quantization,
    RecurrentDims,
    RopeCache,
)
from kvplan.core.kv_formats import INDEXER_FORMATS
from kvplan.core.vision import VisionEncoder
from kvplan.errors import KvplanError
from kvplan.sources.quant_config import QuantConfigError, read_quantization, with_expert_dtype
from kvplan.sources.traits import (
    CACHE_HINT_PATTERN,
    CACHE_NEUTRAL_KEYS,
    GENERIC_LAYER_TYPES,
    MSA_SUBKEYS,
    RECURRENT_HINT_KEYS,
    STRUCTURE_KEYS,
    TRAITS,
    UNSUPPORTED_KEYS,
    UNSUPPORTED_NONZERO_KEYS,
    WRAPPED_TEXT_DEFAULTS,
    Traits,
    traits_for,
)
from kvplan.sources.vision import VisionKeyError, read_vision

LAYER_KEYS = ("num_hidden_layers", "n_layer", "n_layers", "num_layers")
HEAD_KEYS = ("num_attention_heads", "n_head", "n_heads", "num_heads")
KV_HEAD_KEYS = (
    "num_key_value_heads",
    "num_kv_heads",
    "n_head_kv",
    "n_kv_heads",
    "kv_n_heads",
    "multi_query_group_num",
)
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "dim")
INTERMEDIATE_KEYS = ("intermediate_size", "ffn_hidden_size", "n_inner", "ffn_dim", "hidden_dim")
VOCAB_KEYS = ("vocab_size", "padded_vocab_size", "n_vocab")
MAX_POS_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "max_sequence_length",
    "seq_length",
    "model_max_length",
)
EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
HEAD_DIM_KEYS = ("head_dim", "kv_channels", "d_head", "attention_head_size")
TOPK_KEYS = (
    "num_experts_per_tok",
    "experts_per_token",
    "moe_top_k",
    "num_experts_per_token",
    "top_k_experts",
    "moe_k",
)
WINDOW_KEYS = ("sliding_window", "attention_window")
SHARED_INTER_KEYS = (
    "shared_expert_intermediate_size",
    "moe_shared_expert_intermediate_size",
    "shared_intermediate_size",
    "share_expert_dim",
)
MLA_KEYS = ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")
MAX_LAYERS = 100_000  # a typo, not a model: and the reader would build that many layers
# Other integer keys the reader may use, validated wherever they appear: (keys, may be zero).
OTHER_INT_KEYS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (WINDOW_KEYS, False),
    (("attention_chunk_size",), False),
    (("kv_lora_rank",), False),
    (("q_lora_rank",), False),
    (("qk_nope_head_dim",), False),
    (("qk_rope_head_dim",), True),
    (("v_head_dim",), False),
    (("moe_intermediate_size", "expert_intermediate_size"), False),
    (SHARED_INTER_KEYS, True),
    (("n_shared_experts", "num_shared_experts", "moe_num_shared_experts"), True),
    (("moe_layer_start_index",), True),
    (("moe_layer_end_index",), True),
    (("moe_layer_interval",), False),
    (("max_window_layers",), True),
    (("first_k_dense_replace",), True),
    (("sliding_window_pattern", "_sliding_window_pattern"), False),
    (("attn_layer_period",), False),
    (("attn_layer_offset",), True),
    (("multiple_of",), False),
    (("index_head_dim",), False),
    (("index_n_heads",), False),
    (("global_head_dim",), False),
    (("num_global_key_value_heads",), False),
    (("swa_num_key_value_heads",), False),
    (("swa_num_attention_heads",), False),
    (("swa_head_dim",), False),
    (("swa_v_head_dim",), False),
    (("mamba_num_heads", "mamba_n_heads"), False),
    (("mamba_head_dim", "mamba_d_head"), False),
    (("n_groups", "mamba_n_groups"), False),
    (("ssm_state_size", "mamba_d_state", "state_size"), False),
    (("conv_kernel", "mamba_d_conv"), False),
    (("conv_L_cache",), False),
    (("o_lora_rank",), False),
    (("o_groups",), False),
    (("hc_mult",), False),
    (("moe_latent_size",), False),
    (("linear_num_key_heads",), False),
    (("linear_num_value_heads",), False),
    (("linear_key_head_dim",), False),
    (("linear_value_head_dim",), False),
    (("linear_conv_kernel_dim",), False),
)
DEFAULT_DTYPE = "bf16"
_CACHE_HINT = re.compile(CACHE_HINT_PATTERN)
Severity = Literal["error", "warning"]
T = TypeVar("T")


# families whose `num_nextn_predict_layers` modules follow vLLM's deepseek_mtp.py layout
# (glm4_moe_mtp.py mirrors it)
MTP_DEEPSEEK_FAMILIES = frozenset(
    {"deepseek_v3", "deepseek_v32", "kimi_k2", "glm4_moe", "glm_moe_dsa"}
)
# families whose `mtp_num_hidden_layers` modules follow vLLM's qwen3_next_mtp.py layout
# (Qwen3NextMultiTokenPredictor: fc 2 hidden -> hidden, pre_fc_norm_embedding /
# pre_fc_norm_hidden / norm, one full-attention decoder layer; embedding and LM head are
# the target's: the checkpoint's mtp.* tensors carry neither)
MTP_QWEN_NEXT_FAMILIES = frozenset({"qwen3_next", "qwen3_5_text", "qwen3_5_moe_text"})


class ConfigError(KvplanError):
    """A config that cannot be read; names the origin and the key."""


class Finding(Frozen):
    """One problem with a config, as `kvplan check` lists it."""

    severity: Severity
    key: str | None  # the config key at fault, when there is one
    message: str
    line: int | None = None  # filled in by the caller, which has the file's text


class _Skip(Exception):
    """Collect mode: this step failed (its finding is recorded); skip what depends on it."""


def parse_hf_config(raw: Mapping[str, Any], *, name: str, origin: str) -> ModelSpec:
    """Normalize a config.json dict into a ModelSpec (raises KvplanError on bad input)."""
    if not isinstance(raw, Mapping):
        raise KvplanError(f"{origin}: config is not a JSON object")
    spec = _Reader(raw, name=name, origin=origin).spec()
    assert spec is not None
    return spec


def collect_findings(
    raw: Mapping[str, Any], *, name: str = "config", origin: str = "", meta: bool = False
) -> tuple[list[Finding], ModelSpec | None]:
    """The same reader in collect mode: every finding, and the model when there is no error."""
    reader = _Reader(raw, name=name, origin=origin, collect=True, meta=meta)
    spec = reader.spec()
    return reader.findings, spec


# A layer under construction: mixer name ('full', 'sliding', 'chunked', 'mamba', 'mamba2',
# 'gated_deltanet', 'short_conv', 'no_op', 'linear', 'cross_attention'), and overrides.
Draft = dict[str, Any]
ATTENTION_NAMES = {
    "full": LayerKind.FULL,
    "sliding": LayerKind.SLIDING,
    "chunked": LayerKind.CHUNKED,
}
RECURRENT_NAMES = {"mamba", "mamba2", "gated_deltanet", "short_conv"}


class _Reader:
    def __init__(
        self,
        raw: Mapping[str, Any],
        *,
        name: str,
        origin: str,
        collect: bool = False,
        meta: bool = False,
    ) -> None:
        self.origin = origin
        self.name = name
        self.top = raw
        self.collect = collect
        self.meta = meta
        self.findings: list[Finding] = []
        self.assumptions: list[str] = []
        cfg: Mapping[str, Any] = raw
        wrapped = False  # the text model is a multimodal wrapper's text_config
        for wrapper in ("text_config", "llm_config"):
            inner = raw.get(wrapper)
            if isinstance(inner, Mapping) and not any(k in raw for k in LAYER_KEYS):
                wrapped = wrapper == "text_config"
                cfg = {**{k: v for k, v in raw.items() if k != wrapper}, **inner}
                cfg["model_type"] = inner.get("model_type") or raw.get("model_type")
                what = "text model" if wrapper == "text_config" else "language model"
                note = "multimodal config" if wrapper == "text_config" else wrapper
                self.assumptions.append(f"read the {what} from {wrapper} ({note})")
                break
        self.family = str(cfg.get("model_type") or ("llama" if meta else "unknown"))
        self.traits: Traits = traits_for(self.family)
        self.cfg = cfg
        self.defaults = self.traits.defaults
        if wrapped and self.family in WRAPPED_TEXT_DEFAULTS:
            self.defaults = {**WRAPPED_TEXT_DEFAULTS[self.family], **self.defaults}
        attn = cfg.get("attn_config")
        self.attn_cfg: Mapping[str, Any] = attn if isinstance(attn, Mapping) else {}
        self.too_big = False

    # ---- findings ------------------------------------------------------------------
    def error(self, key: str | None, message: str) -> None:
        """A problem; raise mode stops here, collect mode records it and goes on."""
        if not self.collect:
            raise ConfigError(f"{self.origin}: {message}")
        self.findings.append(Finding(severity="error", key=key, message=message))

    def fail(self, key: str | None, message: str) -> _Skip:
        """A problem the current step cannot get past."""
        self.error(key, message)
        return _Skip()

    def warn(self, key: str | None, message: str) -> None:
        if self.collect:
            self.findings.append(Finding(severity="warning", key=key, message=message))

    def step(self, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except _Skip:
            return None

    @property
    def failed(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    # ---- key access ----------------------------------------------------------------
    def _lookup(self, keys: tuple[str, ...] | str) -> tuple[str | None, Any]:
        keys = (keys,) if isinstance(keys, str) else keys
        for key in keys:
            if key in self.cfg and self.cfg[key] is not None:
                return key, self.cfg[key]
            if key in self.attn_cfg and self.attn_cfg[key] is not None:
                return f"attn_config.{key}", self.attn_cfg[key]
        for key in keys:
            if key in self.defaults:
                note = f"{key} not in config: using the {self.family} default {self.defaults[key]}"
                if note not in self.assumptions:
                    self.assumptions.append(note)
                return key, self.defaults[key]
        return None, None

    def _key(self, keys: tuple[str, ...] | str) -> str:
        """The config key that supplied a value (for error messages)."""
        key, _ = self._lookup(keys)
        return key or (keys if isinstance(keys, str) else keys[0])

    def _int(
        self,
        keys: tuple[str, ...] | str,
        *,
        required: bool = False,
        positive: bool = True,
        default: int | None = None,
    ) -> int | None:
        keys = (keys,) if isinstance(keys, str) else keys
        key, value = self._lookup(keys)
        if key is None:
            if required:
                raise self.fail(keys[0], f"missing required key {' / '.join(keys)}")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise self.fail(key, f"key {key} must be an integer, got {value!r}")
        if isinstance(value, float):
            self.warn(key, f"key {key} is a float ({value!r}) where an integer belongs")
        value = int(value)
        if value < 0 or (value == 0 and positive):
            bound = "positive" if positive else "non-negative"
            raise self.fail(key, f"key {key} must be {bound}, got {value}")
        return value

    def _number(self, key: str, value: Any, *, where: str | None = None) -> float:
        """A positive real number (ffn_mult, expansion ratios)."""
        label = where or key
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.fail(key, f"key {label} must be a positive number, got {value!r}")
        return float(value)

    def _bool(self, key: str, default: bool) -> bool:
        value = self.cfg.get(key, self.attn_cfg.get(key))
        if value is None:
            value = self.defaults.get(key)
        return default if value is None else bool(value)

    # ---- assembly ------------------------------------------------------------------
    def spec(self) -> ModelSpec | None:
        if self.collect and not self.meta and not self.cfg.get("model_type"):
            self.warn(
                "model_type",
                "no model_type: family-specific rules (sliding-window "
                "layouts, MLP shape, biases) cannot apply; Llama-style assumed",
            )
        for key, why in UNSUPPORTED_KEYS.items():
            if self.cfg.get(key) is not None:
                self.error(key, f"key {key}: {why}")
        for key, why in UNSUPPORTED_NONZERO_KEYS.items():
            value = self.cfg.get(key)
            if value not in (None, 0, False):
                self.error(key, f"key {key} ({value!r}): {why}")
        for key, readers in STRUCTURE_KEYS.items():
            if self.cfg.get(key) is not None and self.traits.pattern not in readers:
                self.error(
                    key,
                    f"key {key}: a layer-structure key kvplan reads only for "
                    f"{_families_reading(readers)}, not for {self.family}",
                )
        for key in self.cfg:
            if (
                key not in STRUCTURE_KEYS
                and key not in CACHE_NEUTRAL_KEYS
                and self.cfg[key] is not None
                and _CACHE_HINT.search(key)
            ):
                self.error(
                    key,
                    f"key {key}: looks like a sparse / indexed / compressed attention setting "
                    f"(an extra per-token cache) that kvplan does not read for {self.family}; "
                    "refusing rather than sizing the cache without it",
                )
        if self.traits.mixer is None:
            hint = next((k for k in RECURRENT_HINT_KEYS if self.cfg.get(k) is not None), None)
            if hint is not None:
                self.error(
                    hint,
                    f"key {hint}: a recurrent (state-space / linear-attention) mixer in a "
                    f"{self.family} config, a layer kind kvplan does not model for this family",
                )
        n_layers = self.step(self._layer_count)
        if n_layers is not None and n_layers > MAX_LAYERS:
            self.too_big = True
            self.error(
                self._key(LAYER_KEYS),
                f"key {self._key(LAYER_KEYS)} ({n_layers:,}) is absurdly large "
                f"(limit {MAX_LAYERS:,})",
            )
            n_layers = None
        hidden = self.step(lambda: self._int(HIDDEN_KEYS, required=True))
        heads = self.step(lambda: self._int(HEAD_KEYS, required=True))
        kv_heads = self.step(lambda: self._kv_heads(heads))
        head_dim = self.step(lambda: self._head_dim(hidden, heads))
        intermediate = self.step(lambda: self._intermediate(hidden))
        vocab = self.step(self._vocab)
        max_pos = self.step(lambda: self._int(MAX_POS_KEYS))
        moe = self.step(lambda: self._moe(hidden))
        mla = self.step(self._mla)
        others = {keys[0]: self._other_int(keys, zero) for keys, zero in OTHER_INT_KEYS}
        layers: list[Draft] | None = None
        if n_layers is not None:
            layers = self.step(lambda: self._layers(n_layers, max_pos, hidden, heads, moe))
        self.step(lambda: self._qwen_window_layers(n_layers, others["max_window_layers"]))
        if self.failed or None in (n_layers, hidden, heads, kv_heads, head_dim, vocab, layers):
            return None
        assert hidden and heads and kv_heads and head_dim and vocab and layers is not None
        intermediate = intermediate or 0
        v_head_dim = head_dim if self._is_mla() else (self._int("v_head_dim") or head_dim)
        if mla is not None:
            head_dim, v_head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim, mla.v_head_dim
        kv_heads = self._dominant_kv_heads(layers, kv_heads, heads)
        for d in layers:  # a cross-attention layer's fixed K/V is sized from its own geometry
            if d["mixer"] == "cross_attention":
                d.setdefault("kv_heads", kv_heads)
                d.setdefault("head_dim", head_dim)
                d.setdefault("v_head_dim", v_head_dim)
        return self._build(
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            v_head_dim,
            mla,
            moe,
            intermediate,
            vocab,
            max_pos,
        )

    def _build(
        self,
        drafts: list[Draft],
        hidden: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        v_head_dim: int,
        mla: MlaDims | None,
        moe: MoeDims | None,
        intermediate: int,
        vocab: int,
        max_pos: int | None,
    ) -> ModelSpec | None:
        traits = self.traits
        bias_all = self._biases()
        quantization = self.step(self._quantization)
        if self.failed:
            return None
        try:
            layers = tuple(self._layer(d) for d in drafts)
            return ModelSpec(
                name=self.name,
                family=self.family,
                layers=layers,
                hidden_size=hidden,
                query_heads=heads,
                kv_heads=kv_heads,
                head_dim=head_dim,
                v_head_dim=v_head_dim or head_dim,
                mla=mla,
                compressed=self._compressed_dims(),
                hyper_connections=self._int("hc_mult", default=0, positive=False) or 0,
                intermediate_size=intermediate,
                gated_mlp=not traits.plain_mlp,
                moe=moe,
                vocab_size=vocab,
                tie_embeddings=self._tied(),
                learned_positions=self._learned_positions(),
                qkv_bias=bias_all[0],
                o_bias=bias_all[1],
                mlp_bias=bias_all[2],
                norm_bias=traits.layernorm and not self._bool("no_bias", False),
                norms_per_layer=self._norms_per_layer(),
                qk_norm=bool(traits.qk_norm) or self._bool("use_qk_norm", False),
                qk_norm_full_width=traits.qk_norm == "full_width",
                attention_sinks=traits.attention_sinks,
                attn_output_gate=self._bool("attn_output_gate", False),
                embedding_norm=traits.embedding_norm,
                parallel_attn_mlp=self._parallel(),
                max_position_embeddings=max_pos,
                checkpoint_dtype=self._checkpoint_dtype(),
                quantization=quantization,
                vision=self._vision(hidden),
                mtp_layers=self._mtp_layers(),
                mtp_shares_embeddings=self.family in MTP_QWEN_NEXT_FAMILIES,
                rope=self._rope(drafts, head_dim, mla, max_pos),
                assumptions=tuple(self.assumptions),
                source=self.origin,
            )
        except FieldError as exc:
            where = ".".join(str(p) for p in exc.loc) or "config"
            self.error(None, f"{where}: {exc.msg}")
            return None

    def _layer(self, d: Draft) -> Layer:
        name = d["mixer"]
        kind = ATTENTION_NAMES.get(name, LayerKind.NONE)
        mixer = "attention" if name in ATTENTION_NAMES else name
        if name == "full" and self._is_mla():
            kind, mixer = LayerKind.MLA, "mla_indexer" if d.get("index_head_dim") else "mla"
        fields = {k: v for k, v in d.items() if k not in ("mixer",) and v is not None}
        fields.update(kind=d.get("kind", kind), mixer=mixer)
        return Layer(**fields)

    @staticmethod
    def _dominant_kv_heads(layers: list[Draft], kv_heads: int, heads: int) -> int:
        """Model-wide G when every attention layer states its own (DeciLM blocks): the most
        common one; layers that differ keep theirs."""
        own = [d["kv_heads"] for d in layers if d["mixer"] in ATTENTION_NAMES and d.get("kv_heads")]
        if own and all(d.get("kv_heads") for d in layers if d["mixer"] in ATTENTION_NAMES):
            return int(Counter(own).most_common(1)[0][0])
        return kv_heads

    # ---- fields --------------------------------------------------------------------
    def _other_int(self, keys: tuple[str, ...], zero_ok: bool) -> int | None:
        if set(keys) & self.traits.free_form_keys:
            return None
        try:
            return self._int(keys, positive=not zero_ok)
        except _Skip:
            return None

    def _layer_count(self) -> int:
        """num_hidden_layers; Nemotron-H configs may give only `layers_block_type`, whose
        length transformers uses as the layer count."""
        blocks = self.cfg.get("layers_block_type")
        derive = self.traits.pattern == "nemotron_h" and self._lookup(LAYER_KEYS)[0] is None
        if derive and isinstance(blocks, list) and blocks:
            self.assumptions.append(
                f"no num_hidden_layers: {len(blocks)} layers from layers_block_type"
            )
            return len(blocks)
        value = self._int(LAYER_KEYS, required=True)
        assert value is not None
        return value

    def _kv_heads(self, heads: int | None) -> int:
        pattern = self.traits.pattern
        new_arch = self._bool("new_decoder_architecture", False)
        if pattern == "falcon" and not new_arch:
            if heads is None:
                raise _Skip()
            if self._bool("multi_query", self.family != "falcon"):
                return 1
            return heads
        if pattern == "bigcode":
            if heads is None:
                raise _Skip()
            return 1 if self._bool("multi_query", True) else heads
        kv = self._int(KV_HEAD_KEYS)
        if heads is None:
            raise _Skip()
        if kv is None:
            if self._bool("multi_query", False):
                return 1
            if pattern == "block_configs":
                return heads  # replaced by the blocks' n_heads_in_group
            self.assumptions.append(
                f"no KV-head key in config: assuming multi-head attention (G = H = {heads})"
            )
            return heads
        kv_key, head_key = self._key(KV_HEAD_KEYS), self._key(HEAD_KEYS)
        if kv > heads:
            raise self.fail(
                kv_key,
                f"key {kv_key} ({kv}) exceeds {head_key} ({heads}): more KV heads than query heads",
            )
        if heads % kv:
            raise self.fail(
                kv_key,
                f"key {kv_key} ({kv}) does not divide {head_key} ({heads}): "
                "query heads cannot be grouped evenly",
            )
        return kv

    def _head_dim(self, hidden: int | None, heads: int | None) -> int:
        explicit = self._int(HEAD_DIM_KEYS)
        if hidden is None or heads is None:
            raise _Skip()
        if explicit is not None:
            if self.traits.head_dim_from_hidden and explicit * heads != hidden:
                raise self.fail(
                    self._key(HEAD_DIM_KEYS),
                    f"key {self._key(HEAD_DIM_KEYS)} ({explicit}) x "
                    f"{self._key(HEAD_KEYS)} ({heads}) = {explicit * heads} does not match "
                    f"{self._key(HIDDEN_KEYS)} ({hidden}), which {self.family}'s attention "
                    "projections require",
                )
            return explicit
        if self._is_mla():
            return 1  # replaced by MLA dims
        if hidden % heads:
            raise self.fail(
                self._key(HIDDEN_KEYS),
                f"key {self._key(HIDDEN_KEYS)} ({hidden}) is not divisible by "
                f"{self._key(HEAD_KEYS)} ({heads}) and there is no head_dim key",
            )
        dim = hidden // heads
        self.assumptions.append(f"head_dim not in config: hidden/heads = {hidden}/{heads} = {dim}")
        return dim

    def _is_mla(self) -> bool:
        return self.cfg.get("kv_lora_rank") is not None

    def _mla(self) -> MlaDims | None:
        if not self._is_mla():
            return None
        missing = [key for key in MLA_KEYS if self.cfg.get(key) is None]
        for key in missing:
            self.error(key, f"MLA config (kv_lora_rank set) is missing {key}")
        if missing:
            raise _Skip()
        rope = self._int("qk_rope_head_dim", required=True, positive=False)
        nope = self._int("qk_nope_head_dim", required=True)
        v = self._int("v_head_dim", required=True)
        rank = self._int("kv_lora_rank", required=True)
        assert rope is not None and nope and v and rank
        return MlaDims(
            kv_lora_rank=rank,
            qk_rope_head_dim=rope,
            qk_nope_head_dim=nope,
            v_head_dim=v,
            q_lora_rank=self._int("q_lora_rank"),
        )

    def _intermediate(self, hidden: int | None) -> int:
        if self.traits.pattern == "mpt":
            if hidden is None:
                raise _Skip()
            ratio = self.cfg.get("expansion_ratio", 4)
            return int(self._number("expansion_ratio", ratio) * hidden)
        if self.traits.pattern == "block_configs":
            return 0  # per block, from ffn_mult
        if self.traits.lfm2_ff_adjust:
            return self._lfm2_ff_dim()
        if self.traits.pattern == "deepseek_v4":  # every layer is MoE
            return self._int(INTERMEDIATE_KEYS) or 0
        value = self._int(INTERMEDIATE_KEYS)
        if value is None:
            if hidden is None:
                raise _Skip()
            self.assumptions.append(
                f"no intermediate size in config: assuming 4 x hidden = {4 * hidden}"
            )
            return 4 * hidden
        return value

    def _lfm2_ff_dim(self) -> int:
        """transformers Lfm2MLP: with block_auto_adjust_ff_dim, ff = int(2 * ff / 3), then
        int(block_ffn_dim_multiplier * ff), rounded up to block_multiple_of."""
        ff = self._int(("block_ff_dim", "intermediate_size"), required=True)
        assert ff is not None
        if self._bool("block_auto_adjust_ff_dim", True):
            ff = int(2 * ff / 3)
            mult = self.cfg.get("block_ffn_dim_multiplier")
            if mult is not None:
                ff = int(self._number("block_ffn_dim_multiplier", mult) * ff)
            multiple = self._int("block_multiple_of", default=256)
            assert multiple is not None
            ff = multiple * ceil(ff / multiple)
        return ff

    def _vocab(self) -> int:
        value = self._int(VOCAB_KEYS, required=True)
        assert value is not None
        return value

    def _tied(self) -> bool:
        key = "tie_word_embeddings"
        if key in self.cfg and self.cfg[key] is not None:
            return bool(self.cfg[key])
        if key in self.top and self.top[key] is not None:
            return bool(self.top[key])
        if self.traits.tied_by_default:
            self.assumptions.append(
                f"tie_word_embeddings not in config: {self.family} ties them by default"
            )
        return self.traits.tied_by_default

    def _learned_positions(self) -> int:
        if self.traits.learned_positions:
            return self._int(MAX_POS_KEYS) or 0
        return 0

    def _biases(self) -> tuple[bool, bool, bool]:
        if self.traits.fixed_biases is not None:
            return self.traits.fixed_biases
        pattern = self.traits.pattern
        if pattern == "mpt":
            b = not self._bool("no_bias", True)
            return (b, b, b)
        if pattern == "falcon":
            b = self._bool("bias", False)
            return (b, b, b)
        if pattern == "starcoder2":
            b = self._bool("use_bias", True)
            return (b, b, b)
        attn_bias = self._bool("attention_bias", False)
        return (attn_bias, attn_bias, self._bool("mlp_bias", self.traits.mlp_bias_default))

    def _norms_per_layer(self) -> int:
        if self.traits.pattern == "falcon":
            return 2 if self._bool("new_decoder_architecture", False) else 1
        return self.traits.norms_per_layer

    def _parallel(self) -> bool:
        if self.traits.pattern == "falcon":
            return self._bool("parallel_attn", True) or self._bool(
                "new_decoder_architecture", False
            )
        if self.traits.pattern == "neox":
            return self._bool("use_parallel_residual", True)
        return self.traits.parallel

    def _checkpoint_dtype(self) -> str:
        raw = self.cfg.get("torch_dtype") or self.cfg.get("dtype") or self.top.get("torch_dtype")
        if raw is None:
            self.assumptions.append(f"checkpoint dtype not in config: assuming {DEFAULT_DTYPE}")
            return DEFAULT_DTYPE
        name = dtypes.normalize_dtype(str(raw))
        if name not in ("fp32", "fp16", "bf16"):
            self.assumptions.append(f"unrecognised torch_dtype {raw!r}: assuming {DEFAULT_DTYPE}")
            return DEFAULT_DTYPE
        return name

    def _state_dtype(self) -> str | None:
        """The recurrent-state dtype a config names (`mamba_ssm_cache_dtype`,
        `mamba_ssm_dtype`), or the family default from the traits table; None: model dtype."""
        key, raw = self._lookup(("mamba_ssm_cache_dtype", "mamba_ssm_dtype"))
        if key is None:
            return None
        name = dtypes.normalize_dtype(str(raw))
        if name not in ("fp32", "fp16", "bf16"):
            raise self.fail(key, f"key {key} must be float32, float16 or bfloat16, got {raw!r}")
        return name

    def _mtp_layers(self) -> int:
        """The checkpoint's MTP modules, for the families whose layout kvplan knows:
        DeepSeek-style (`num_nextn_predict_layers`; vLLM deepseek_mtp.py builds each as
        embed + enorm/hnorm + eh_proj + one decoder layer + shared head: DeepSeek V3/V3.2,
        Kimi K2, GLM-4.5+) and Qwen3-Next-style (`mtp_num_hidden_layers`, sharing the
        target's embedding and head). Other families' MTP keys are left unread (their
        drafts' weights are not sized, and fit says so)."""
        if self.family in MTP_DEEPSEEK_FAMILIES:
            return self._int("num_nextn_predict_layers", default=0, positive=False) or 0
        if self.family in MTP_QWEN_NEXT_FAMILIES:
            return self._int("mtp_num_hidden_layers", default=0, positive=False) or 0
        return 0

    def _rope(
        self, drafts: list[Draft], head_dim: int, mla: MlaDims | None, max_pos: int | None
    ) -> tuple[RopeCache, ...] | None:
        """The rotary cos/sin tables vLLM builds for this model (ModelSpec.rope).

        One table per distinct rope argument set (get_rope memoizes on them, so every
        layer sharing a set shares its table), of `positions` x `rotary_dim` elements:
          rotary_dim = qk_rope_head_dim (MLA) or int(head_dim x partial_rotary_factor)
            (rotary_pct, GPT-NeoX), or the config's rotary_dim (GPT-J, phi-msft, MiniMax)
          positions by rope type (vllm/model_executor/layers/rotary_embedding/):
            default, llama3, mllama4    max_position_embeddings (base.py)
            linear, dynamic (factor)    max_position_embeddings x factor
            yarn, deepseek_yarn         original_max_position_embeddings x factor
            longrope                    max_position_embeddings + original (short + long)
            mrope_section given         4 x the above (mrope.py cache_max_position_num)
        A rope layout kvplan does not read leaves the term out (None) with an assumption:
        it is a minor term (megabytes for most models), so it never stops a model loading.
        """
        traits = self.traits

        def unknown(why: str) -> tuple[RopeCache, ...] | None:
            self.assumptions.append(
                f"rotary cos/sin cache not counted ({why}); vLLM holds it beside the weights "
                "(usually tens of MiB)"
            )
            return None

        if traits.rope == "unknown":
            return unknown(f"the {self.family} rope layout is not read")
        attention = any(d["mixer"] in ATTENTION_NAMES for d in drafts)
        nope = self.cfg.get("position_embedding_type") in ("nope", "alibi")
        if traits.rope == "none" or traits.learned_positions or nope or not attention:
            return ()
        if self.cfg.get("alibi") is True or self.cfg.get("rotary") is False:
            return ()
        if max_pos is None:
            return unknown("no max_position_embeddings")
        raw = self.cfg.get("rope_parameters") or self.cfg.get("rope_scaling") or {}
        if not isinstance(raw, Mapping):
            return unknown("rope_scaling is not an object")
        per_type = bool(raw) and all(isinstance(v, Mapping) for v in raw.values())
        sets: list[Mapping[str, Any]] = []
        for candidate in raw.values() if per_type else [raw]:
            if candidate not in sets:
                sets.append(candidate)
        tables: list[RopeCache] = []
        for params in sets:
            if mla is not None:
                rotary = mla.qk_rope_head_dim
            elif isinstance(self.cfg.get("rotary_dim"), int):
                rotary = self.cfg["rotary_dim"]
            else:
                factor = params.get(
                    "partial_rotary_factor",
                    self.cfg.get("partial_rotary_factor", self.cfg.get("rotary_pct", 1.0)),
                )
                if not isinstance(factor, int | float) or not 0 < factor <= 1:
                    return unknown(f"partial_rotary_factor {factor!r}")
                rotary = int(head_dim * factor)
            original = self.cfg.get("original_max_position_embeddings")  # Phi-3: top level
            positions = _rope_positions(params, max_pos, original)
            if isinstance(positions, str):
                return unknown(positions)
            if rotary <= 0:
                continue
            tables.append(RopeCache(positions=positions, rotary_dim=rotary))
        sliding = any(d["mixer"] == "sliding" for d in drafts)
        if traits.rope == "local_global" and not per_type and sliding and tables:
            # Gemma-3's sliding layers: default rope, rope_local_base_freq, max positions
            tables.append(RopeCache(positions=max_pos, rotary_dim=tables[0].rotary_dim))
        merged: dict[tuple[int, int], int] = {}
        for t in tables:
            merged[(t.positions, t.rotary_dim)] = merged.get((t.positions, t.rotary_dim), 0) + 1
        return tuple(
            RopeCache(positions=p, rotary_dim=r, count=n, float32=traits.rope_float32)
            for (p, r), n in merged.items()
        )

    def _vision(self, text_hidden: int) -> VisionEncoder | None:
        """The image encoder of a multimodal config (sources/vision.py, one reader per
        family); a family without a reader is stated as not counted, never guessed."""
        try:
            vision = read_vision(self.top, text_hidden, self.assumptions)
        except VisionKeyError as exc:
            self.error(exc.key, exc.message)
            return None
        if vision is not None and not vision.counted:
            self.assumptions.append(
                f"vision_config of a {vision.family} model: kvplan has no reader for this "
                "image encoder, so the weights are the text decoder's only (an underestimate "
                "for engines that load the encoder)"
            )
            self.warn("vision_config", self.assumptions[-1])
        return vision

    def _quantization(self) -> Quantization | None:
        """What quantization_config says each weight group is stored in (fail closed: a
        method or scheme kvplan does not model is an error naming the key)."""
        q = self.cfg.get("quantization_config") or self.top.get("quantization_config")
        if q is None:
            return None
        if not isinstance(q, Mapping):
            raise self.fail("quantization_config", "key quantization_config must be an object")
        float_bits = 8 * int(dtypes.DTYPE_BYTES[self._checkpoint_dtype_quiet()])
        try:
            quant = read_quantization(q, float_bits=float_bits)
            return with_expert_dtype(quant, self.cfg.get("expert_dtype"))
        except QuantConfigError as exc:
            raise self.fail(exc.key, str(exc)) from None

    def _checkpoint_dtype_quiet(self) -> str:
        raw = self.cfg.get("torch_dtype") or self.cfg.get("dtype") or self.top.get("torch_dtype")
        name = dtypes.normalize_dtype(str(raw)) if raw is not None else DEFAULT_DTYPE
        return name if name in ("fp32", "fp16", "bf16") else DEFAULT_DTYPE

    # ---- MoE -----------------------------------------------------------------------
    def _moe(self, hidden: int | None) -> MoeDims | None:
        experts = self._int(EXPERT_KEYS, positive=False)  # 0: dense (Granite-4.0-H)
        if not experts or experts <= 1:
            return None
        top_k = self._int(TOPK_KEYS, default=2)
        assert top_k is not None
        expert_inter = self._int(
            ("moe_intermediate_size", "expert_intermediate_size")
        ) or self._int(INTERMEDIATE_KEYS, required=True)
        assert expert_inter is not None
        shared_inter = self._int(SHARED_INTER_KEYS, positive=False) or 0
        shared_keys = ("n_shared_experts", "num_shared_experts", "moe_num_shared_experts")
        shared_key, _ = self._lookup(shared_keys)
        if shared_key is not None:
            shared = self._int(shared_keys, positive=False) or 0
        elif self.traits.always_shared_experts:
            shared = self.traits.always_shared_experts
            shared_inter = shared_inter or expert_inter
            self.assumptions.append(
                f"{self.family} always has {shared} shared expert(s) of width {shared_inter}"
            )
        else:
            shared = 1 if shared_inter else 0
        if shared and not shared_inter:
            shared_inter = expert_inter
        if not shared:
            shared_inter = 0
        if top_k > experts:
            raise self.fail(
                self._key(TOPK_KEYS),
                f"key {self._key(TOPK_KEYS)} ({top_k}) exceeds {self._key(EXPERT_KEYS)} "
                f"({experts}): more experts per token than experts",
            )
        dense_width = 0
        if self._bool("enable_moe_block", False):
            dense_width = self._int(INTERMEDIATE_KEYS, required=True) or 0
        return MoeDims(
            num_experts=experts,
            experts_per_token=top_k,
            expert_intermediate=expert_inter,
            shared_experts=shared,
            shared_intermediate=shared_inter,
            shared_expert_gate=self.traits.shared_expert_gate,
            router_bias=self.traits.router_bias or self._bool("use_expert_bias", False),
            latent_size=self._int("moe_latent_size"),
            dense_width=dense_width,
        )

    def _moe_flags(self, n: int) -> list[bool]:
        if self.traits.pattern == "jamba":
            period = self._int("expert_layer_period", default=2)
            offset = self._int("expert_layer_offset", default=1, positive=False)
            assert period is not None and offset is not None
            return [i % period == offset for i in range(n)]
        freq_raw = self.cfg.get("moe_layer_freq")
        if isinstance(freq_raw, list):
            return self._flag_list("moe_layer_freq", freq_raw, n)
        kinds = self.cfg.get("mlp_layer_types")
        if kinds is not None:  # GLM-5.2: 'dense' / 'sparse' per layer
            if not isinstance(kinds, list) or any(k not in ("dense", "sparse") for k in kinds):
                raise self.fail(
                    "mlp_layer_types", "key mlp_layer_types must be a list of 'dense' and 'sparse'"
                )
            if len(kinds) != n:
                raise self.fail(
                    "mlp_layer_types",
                    f"key mlp_layer_types has {len(kinds)} entries for {n} layers",
                )
            return [k == "sparse" for k in kinds]
        if self.cfg.get("moe_layer_start_index") is not None:
            # ERNIE 4.5 (transformers Ernie4_5_MoeDecoderLayer): MoE iff (i + 1) % interval == 0
            # and start <= i <= end
            start = self._int("moe_layer_start_index", positive=False) or 0
            end = self._int("moe_layer_end_index", positive=False, default=n - 1)
            step = self._int("moe_layer_interval", default=1) or 1
            assert end is not None
            return [(i + 1) % step == 0 and start <= i <= end for i in range(n)]
        first_dense = (
            self._int(("first_k_dense_replace", "num_dense_layers"), default=0, positive=False) or 0
        )
        freq = (
            self._int(
                ("moe_layer_freq", "decoder_sparse_step", "interleave_moe_layer_step"), default=1
            )
            or 1
        )
        mlp_only = self.cfg.get("mlp_only_layers") or []
        flags = []
        for i in range(n):
            if i < first_dense or i in mlp_only:
                flags.append(False)
            elif self.traits.moe_step_from_one:
                flags.append((i + 1) % freq == 0)
            else:  # DeepSeek: layer_idx >= first_k_dense_replace and layer_idx % freq == 0
                flags.append(i % freq == 0)
        return flags

    def _flag_list(self, key: str, values: Any, n: int) -> list[bool]:
        if not isinstance(values, list) or any(
            isinstance(v, bool) or v not in (0, 1) for v in values
        ):
            raise self.fail(key, f"key {key} must be a list of 0 and 1, one per layer")
        if len(values) != n:
            raise self.fail(key, f"key {key} has {len(values)} entries for {n} layers")
        return [v == 1 for v in values]

    # ---- per-layer structure -------------------------------------------------------
    def _window(self) -> int | None:
        return self._int(WINDOW_KEYS)

    def _layers(
        self,
        n: int,
        max_pos: int | None,
        hidden: int | None,
        heads: int | None,
        moe: MoeDims | None,
    ) -> list[Draft]:
        pattern = self.traits.pattern
        readers: dict[str, Callable[[int], list[Draft]]] = {
            "nemotron_h": self._nemotron_h,
            "block_configs": lambda n: self._block_configs(n, hidden, heads),
            "mllama": self._mllama,
            "mimo_v2": self._mimo_v2,
            "deepseek_v4": self._deepseek_v4,
        }
        reader = readers.get(pattern or "")
        drafts = reader(n) if reader is not None else self._attention_layout(n, max_pos)
        if moe is not None:
            flags = self._moe_flags(n)
            for d, flag in zip(drafts, flags, strict=True):
                if d.get("ffn") is None:
                    d["ffn"] = Ffn.MOE if flag else Ffn.DENSE
        elif any(d.get("ffn") == Ffn.MOE for d in drafts):
            raise self.fail(
                self._key(EXPERT_KEYS),
                f"layers marked MoE but no expert count ({' / '.join(EXPERT_KEYS)})",
            )
        if self.traits.dense_width_key:
            width = self._int(self.traits.dense_width_key)
            for d in drafts:
                if d.get("ffn") in (Ffn.DENSE, None) and width:
                    d["ffn_width"] = width
        self._add_geometry(drafts)
        self._add_recurrent(drafts, hidden)
        return drafts

    def _attention_layout(self, n: int, max_pos: int | None) -> list[Draft]:
        """Attention-only (or attention + one recurrent mixer) stacks: `layer_types`, else the
        family's periodic pattern, else one window for all layers."""
        full: Draft = {"mixer": "full"}
        types = self.cfg.get("layer_types")
        window_key = self._key(WINDOW_KEYS)
        window = self.step(self._window)
        if types is not None:
            return self._layer_types(types, n, window, max_pos)
        attn_types = self.cfg.get("attn_type_list")
        if attn_types is not None:
            return self._minimax_types(attn_types, n)
        pattern = self.traits.pattern
        if pattern == "jamba":
            period = self._int("attn_layer_period", default=8)
            offset = self._int("attn_layer_offset", default=4, positive=False)
            assert period is not None and offset is not None
            if offset >= period:
                raise self.fail(
                    "attn_layer_offset",
                    f"key attn_layer_offset ({offset}) is not below "
                    f"attn_layer_period ({period}): no layer would be attention",
                )
            return [dict(full) if i % period == offset else {"mixer": "mamba"} for i in range(n)]
        if pattern == "qwen3_next":
            interval = self._int("full_attention_interval", default=4)
            assert interval is not None
            return [
                dict(full) if (i + 1) % interval == 0 else {"mixer": "gated_deltanet"}
                for i in range(n)
            ]
        if pattern == "lfm2":
            idxs = self.cfg.get("full_attn_idxs")
            if not isinstance(idxs, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in idxs
            ):
                raise self.fail(
                    "full_attn_idxs",
                    f"key full_attn_idxs must list layer indices below {n} (or give layer_types)",
                )
            return [dict(full) if i in idxs else {"mixer": "short_conv"} for i in range(n)]
        if pattern == "llama4":
            chunk = self._int("attention_chunk_size")
            nope = self.cfg.get("no_rope_layers")
            if chunk:
                local: Draft = {"mixer": "chunked", "window": chunk}
                if isinstance(nope, list) and len(nope) == n:
                    return [dict(local) if flag else dict(full) for flag in nope]
                if isinstance(nope, list) and nope:
                    self.warn(
                        "no_rope_layers",
                        f"key no_rope_layers has {len(nope)} entries for "
                        f"{n} layers: kvplan falls back to every 4th layer global",
                    )
                self.assumptions.append(
                    "no_rope_layers not given per layer: every 4th layer global "
                    "(transformers' no_rope_layer_interval 4)"
                )
                return [dict(full) if (i + 1) % 4 == 0 else dict(local) for i in range(n)]
        if window is None:
            return [dict(full) for _ in range(n)]
        sliding: Draft = {"mixer": "sliding", "window": window}
        if pattern == "qwen_window":
            if not self._bool("use_sliding_window", False):
                return [dict(full) for _ in range(n)]
            start = self._int("max_window_layers", default=n, positive=False)
            assert start is not None
            return [dict(sliding) if i >= start else dict(full) for i in range(n)]
        if pattern == "gemma2":
            return [dict(sliding) if (i + 1) % 2 else dict(full) for i in range(n)]
        if pattern == "gemma3":
            every = self._int(
                ("sliding_window_pattern", "_sliding_window_pattern"),
                default=6 if self.family != "cohere2" else 4,
            )
            assert every is not None
            return [dict(sliding) if (i + 1) % every else dict(full) for i in range(n)]
        if self.cfg.get("use_sliding_window") is False:
            return [dict(full) for _ in range(n)]
        if max_pos is not None and window >= max_pos:
            self.assumptions.append(
                f"{window_key} {window} >= max positions {max_pos}: it never binds, "
                "treated as full attention"
            )
            return [dict(full) for _ in range(n)]
        return [dict(sliding) for _ in range(n)]

    def _layer_types(
        self, types: Any, n: int, window: int | None, max_pos: int | None
    ) -> list[Draft]:
        """`layer_types`: every name must be one this family's table (or the generic one)
        knows; an unknown name is an error naming it, never a guess."""
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            raise self.fail("layer_types", "key layer_types must be a list of strings")
        table = {**GENERIC_LAYER_TYPES, **self.traits.layer_types}
        ok = True
        if len(types) != n:
            self.error("layer_types", f"key layer_types has {len(types)} entries for {n} layers")
            ok = False
        unknown = [t for t in dict.fromkeys(types) if t.lower() not in table]
        if unknown:
            self.error(
                "layer_types",
                "key layer_types has unknown layer type"
                f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            )
            ok = False
        names = [table.get(t.lower(), ("full", None)) for t in types]
        sliding = any(name == "sliding" for name, _ in names)
        if sliding and window is None and self._lookup(WINDOW_KEYS)[0] is None:
            self.error(
                "layer_types", "key layer_types has sliding layers but there is no sliding_window"
            )
            ok = False
        if sliding and window is not None and max_pos is not None and window > max_pos:
            self.error(
                self._key(WINDOW_KEYS),
                f"key {self._key(WINDOW_KEYS)} ({window}) exceeds "
                f"{self._key(MAX_POS_KEYS)} ({max_pos}), but layer_types marks layers as sliding",
            )
            ok = False
        if not ok or (sliding and window is None):
            raise _Skip()
        drafts: list[Draft] = []
        for name, ffn in names:
            d: Draft = {"mixer": name}
            if name == "sliding":
                d["window"] = window
            elif name == "chunked":
                d["window"] = self._int("attention_chunk_size", required=True)
            if ffn is not None:
                d["ffn"] = Ffn(ffn)
            drafts.append(d)
        return drafts

    def _minimax_types(self, values: Any, n: int) -> list[Draft]:
        """MiniMax `attn_type_list`: 1 softmax attention, 0 lightning (linear) attention."""
        key = "attn_type_list"
        if not isinstance(values, list) or any(
            isinstance(v, bool) or v not in (0, 1) for v in values
        ):
            raise self.fail(key, f"key {key} must be a list of 0 and 1, one per layer")
        if len(values) != n:
            raise self.fail(key, f"key {key} has {len(values)} entries for {n} layers")
        if 0 in values:
            raise self.fail(
                key,
                f"key {key} has value 0 (lightning linear attention) on "
                f"{values.count(0)} layers: a layer kind kvplan does not model",
            )
        return [{"mixer": "full"} for _ in range(n)]

    def _nemotron_h(self, n: int) -> list[Draft]:
        """Nemotron-H / Nemotron-3: one mixer per block. `hybrid_override_pattern` characters:
        M Mamba-2 only, E MoE only, * attention only, - MLP only (transformers
        NemotronHConfig._pattern_to_list); or the same as a `layers_block_type` list."""
        chars = {
            "M": ("mamba2", Ffn.NONE),
            "E": ("no_op", Ffn.MOE),
            "*": ("full", Ffn.NONE),
            "-": ("no_op", Ffn.DENSE),
        }
        for key in ("layers_block_type", "layer_types"):
            if self.cfg.get(key) is not None:
                if key == "layers_block_type":
                    return self._layer_types_as(key, self.cfg[key], n)
                return self._layer_types_as(key, self.cfg[key], n)
        key = "hybrid_override_pattern"
        pattern = self.cfg.get(key)
        if not isinstance(pattern, str) or not pattern:
            raise self.fail(key, f"key {key} must be a non-empty string of M, E, * and -")
        bad = [(i, c) for i, c in enumerate(pattern) if c not in chars]
        if bad:
            i, c = bad[0]
            raise self.fail(key, f"key {key} has an unknown layer character {c!r} at position {i}")
        if len(pattern) != n:
            raise self.fail(key, f"key {key} has {len(pattern)} entries for {n} layers")
        return [{"mixer": chars[c][0], "ffn": chars[c][1]} for c in pattern]

    def _layer_types_as(self, key: str, values: Any, n: int) -> list[Draft]:
        if not isinstance(values, list) or not all(isinstance(t, str) for t in values):
            raise self.fail(key, f"key {key} must be a list of strings")
        table = self.traits.layer_types
        unknown = [t for t in dict.fromkeys(values) if t not in table]
        if unknown:
            raise self.fail(
                key,
                f"key {key} has unknown layer type{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}",
            )
        if len(values) != n:
            raise self.fail(key, f"key {key} has {len(values)} entries for {n} layers")
        out = []
        for t in values:
            mixer, ffn = table[t]
            out.append({"mixer": mixer, "ffn": Ffn(ffn) if ffn else None})
        return out

    def _block_configs(self, n: int, hidden: int | None, heads: int | None) -> list[Draft]:
        """DeciLM / Nemotron-NAS `block_configs`: per block, attention {no_op,
        replace_with_linear, n_heads_in_group} and ffn {no_op, replace_with_linear, ffn_mult};
        FFN width = round_up(int(2 * ffn_mult * hidden / 3), 256) (modeling_decilm.py
        _ffn_mult_to_intermediate_size)."""
        key = "block_configs"
        blocks = self.cfg.get(key)
        if not isinstance(blocks, list) or not all(isinstance(b, Mapping) for b in blocks):
            raise self.fail(key, f"key {key} must be a list of objects, one per layer")
        if len(blocks) != n:
            raise self.fail(key, f"key {key} has {len(blocks)} entries for {n} layers")
        if hidden is None or heads is None:
            raise _Skip()
        unsupported = ("sparsify", "num_sink_tokens", "window_length")
        drafts: list[Draft] = []
        for i, block in enumerate(blocks):
            attn, ffn = block.get("attention"), block.get("ffn")
            if not isinstance(attn, Mapping) or not isinstance(ffn, Mapping):
                raise self.fail(key, f"key {key}[{i}] must have an 'attention' and an 'ffn' object")
            for part, sub in (("attention", attn), ("ffn", ffn)):
                for name in unsupported:
                    if sub.get(name):
                        raise self.fail(
                            key,
                            f"key {key}[{i}].{part}.{name} ({sub[name]!r}) is a block option "
                            "kvplan does not model",
                        )
            d: Draft = {}
            norms = 0
            if attn.get("no_op"):
                d["mixer"] = "no_op"
            elif attn.get("replace_with_linear"):
                d["mixer"], norms = "linear", 1
            else:
                group = attn.get("n_heads_in_group")
                where = f"{key}[{i}].attention.n_heads_in_group"
                if isinstance(group, bool) or not isinstance(group, int) or group <= 0:
                    raise self.fail(key, f"key {where} must be a positive integer, got {group!r}")
                if heads % group:
                    raise self.fail(
                        key, f"key {where} ({group}) does not divide num_attention_heads ({heads})"
                    )
                d["mixer"], d["kv_heads"], norms = "full", heads // group, 1
            if ffn.get("no_op"):
                d["ffn"] = Ffn.NONE
            elif ffn.get("replace_with_linear"):
                raise self.fail(
                    key, f"key {key}[{i}].ffn.replace_with_linear is not modelled by kvplan"
                )
            else:
                mult = self._number(key, ffn.get("ffn_mult"), where=f"{key}[{i}].ffn.ffn_mult")
                width = int(2 * mult * hidden / 3)
                d["ffn"], d["ffn_width"] = Ffn.DENSE, 256 * ceil(width / 256)
                norms += 1
            d["norms"] = norms
            drafts.append(d)
        return drafts

    def _mllama(self, n: int) -> list[Draft]:
        """Llama-3.2-Vision: `cross_attention_layers` attend to the image encoder's output,
        a fixed K/V per image (max_num_tiles x (image_size / patch_size)^2 + 1 tokens)."""
        key = "cross_attention_layers"
        idxs = self.cfg.get(key)
        if not isinstance(idxs, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < n for i in idxs
        ):
            raise self.fail(key, f"key {key} must list layer indices below {n}")
        vision = self.top.get("vision_config")
        vision = vision if isinstance(vision, Mapping) else {}
        # defaults: transformers 5.24 MllamaVisionConfig (4 tiles of 448 px, 14 px patches)
        tiles = vision.get("max_num_tiles", 4)
        size = vision.get("image_size", 448)
        patch = vision.get("patch_size", 14)
        for name, value in (("max_num_tiles", tiles), ("image_size", size), ("patch_size", patch)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise self.fail(
                    f"vision_config.{name}",
                    f"key vision_config.{name} must be a positive integer, got {value!r}",
                )
        tokens = tiles * ((size // patch) ** 2 + 1)
        self.assumptions.append(
            f"cross-attention layers hold one image's encoder K/V: {tiles} tiles x "
            f"({size}/{patch})^2 + 1 = {tokens} tokens per sequence"
        )
        return [
            {"mixer": "cross_attention", "encoder_tokens": tokens}
            if i in idxs
            else {"mixer": "full"}
            for i in range(n)
        ]

    def _mimo_v2(self, n: int) -> list[Draft]:
        """MiMo-V2: `hybrid_layer_pattern` 1 = sliding-window layer (with its own swa_* head
        counts and sizes), 0 = full attention."""
        key = "hybrid_layer_pattern"
        flags = self._flag_list(key, self.cfg.get(key), n)
        window = self._int(("sliding_window", "sliding_window_size"), required=True)
        swa = {
            "query_heads": self._int("swa_num_attention_heads"),
            "kv_heads": self._int("swa_num_key_value_heads"),
            "head_dim": self._int("swa_head_dim"),
            "v_head_dim": self._int("swa_v_head_dim"),
        }
        out: list[Draft] = []
        for flag in flags:
            if flag:
                out.append({"mixer": "sliding", "window": window, **swa})
            else:
                out.append({"mixer": "full"})
        return out

    def _deepseek_v4(self, n: int) -> list[Draft]:
        """DeepSeek-V4: every layer keeps a sliding window (`sliding_window`) of one shared
        K=V head of `head_dim`; compressed layers also keep one entry per r tokens: CSA
        (compressed_sparse_attention, r = 4, with a lightning indexer at `index_head_dim`)
        and HCA (heavily_compressed_attention, r = 128). Types come from `layer_types` or
        the legacy `compress_ratios` (0 / 4 / 128 per layer; transformers'
        _COMPRESS_RATIO_TO_LAYER_TYPE, trailing MTP entries dropped)."""
        rates = {
            0: "sliding_attention",
            4: "compressed_sparse_attention",
            128: "heavily_compressed_attention",
        }
        ratio_of = {v: k for k, v in rates.items()}
        rates_cfg = self.cfg.get("compress_rates")
        if isinstance(rates_cfg, Mapping):
            for name, value in rates_cfg.items():
                if (
                    name not in ratio_of
                    or isinstance(value, bool)
                    or not isinstance(value, int)
                    or value <= 0
                ):
                    raise self.fail(
                        "compress_rates",
                        f"key compress_rates has an unusable entry {name!r}: {value!r}",
                    )
                ratio_of[name] = value
        types = self.cfg.get("layer_types")
        if types is not None:
            key = "layer_types"
            if not isinstance(types, list) or any(t not in ratio_of for t in types):
                bad = [
                    t for t in (types if isinstance(types, list) else [types]) if t not in ratio_of
                ]
                raise self.fail(key, f"key {key} has unknown layer type {bad[0]!r}")
        else:
            key = "compress_ratios"
            ratios = self.cfg.get(key)
            if not isinstance(ratios, list) or any(
                isinstance(r, bool) or r not in rates for r in ratios
            ):
                bad = [
                    r for r in (ratios if isinstance(ratios, list) else [ratios]) if r not in rates
                ]
                raise self.fail(
                    key,
                    f"key {key} has value {bad[0]!r}: a compression kvplan does not know "
                    "(0, 4 or 128)",
                )
            types = [rates[r] for r in ratios]
        if len(types) < n:
            raise self.fail(key, f"key {key} has {len(types)} entries for {n} layers")
        if len(types) > n:
            self.assumptions.append(
                f"{key}: {len(types) - n} entries beyond the {n} layers (multi-token prediction) "
                "not counted, as transformers builds no such layers"
            )
        window = self._int(WINDOW_KEYS, required=True)
        head_dim = self._int(HEAD_DIM_KEYS, required=True)
        index_dim = self._int("index_head_dim", required=True)
        out: list[Draft] = []
        for t in types[:n]:
            r = ratio_of[t]
            d: Draft = {
                "mixer": "compressed",
                "kv_heads": 1,
                "head_dim": head_dim,
                "v_head_dim": head_dim,
            }
            if r == 0 or t == "sliding_attention":
                d.update(kind=LayerKind.SLIDING, window=window)
            else:
                d.update(kind=LayerKind.FULL, local_window=window, compress_ratio=r)
                if t == "compressed_sparse_attention":
                    d["index_head_dim"] = index_dim
            out.append(d)
        self.assumptions.append(
            "DeepSeek-V4 cache as transformers holds it: K and V of the shared head both "
            "stored, compressed entries and indexer keys in the KV dtype, compressor "
            "remainder at its r - 1 token bound"
        )
        return out

    def _compressed_dims(self) -> CompressedAttentionDims | None:
        if self.traits.pattern != "deepseek_v4":
            return None
        keys = {
            "head_dim": HEAD_DIM_KEYS,
            "q_lora_rank": ("q_lora_rank",),
            "o_lora_rank": ("o_lora_rank",),
            "o_groups": ("o_groups",),
            "index_heads": ("index_n_heads",),
            "index_head_dim": ("index_head_dim",),
        }
        values: dict[str, int] = {}
        for field, names in keys.items():
            value = self._int(names, required=True)
            assert value is not None
            values[field] = value
        return CompressedAttentionDims(**values)

    def _add_geometry(self, drafts: list[Draft]) -> None:
        """Per-layer-type attention geometry and cache extras."""
        if self.traits.pattern == "gemma4":
            if self._bool("use_double_wide_mlp", False):
                raise self.fail("use_double_wide_mlp", "key use_double_wide_mlp: not modelled")
            global_g = self._int("num_global_key_value_heads")
            global_d = self._int("global_head_dim")
            k_eq_v = self._bool("attention_k_eq_v", False)
            for d in drafts:
                if d["mixer"] == "full":
                    d.update(kv_heads=global_g, head_dim=global_d, k_eq_v=k_eq_v or None)
                    if global_d:
                        d["v_head_dim"] = global_d
            if k_eq_v:
                self.assumptions.append(
                    "attention_k_eq_v: global layers have no V projection (V = K); the cache "
                    "still stores K and V, as transformers' cache does (an engine could keep K "
                    "only)"
                )
        if self.traits.pattern == "dsa":
            dim = self._int("index_head_dim", required=True)
            idx_heads = self._int("index_n_heads", required=True)
            own = self._indexer_flags(len(drafts))
            for d, flag in zip(drafts, own, strict=True):
                if d["mixer"] == "full" and flag:
                    d.update(index_head_dim=dim, index_heads=idx_heads)
            engine_bytes = INDEXER_FORMATS["fp8_block128"].bytes_per_token(dim or 0)
            self.assumptions.append(
                f"DSA indexer keys ({dim} elements/token/layer) stored as the engine stores "
                "them: vLLM, SGLang and TensorRT-LLM in fp8 + a 4-byte scale per 128 values "
                f"({engine_bytes} B); without an engine (--engine none, `size`'s default) in "
                "the KV dtype, as transformers caches them"
            )

        if self.traits.pattern == "minimax_msa":
            self._minimax_sparse(drafts)

    def _minimax_sparse(self, drafts: list[Draft]) -> None:
        """MiniMax-M3 sparse attention (`sparse_attention_config`): each layer with
        `sparse_attention_freq` 1 runs a lightning indexer (q_proj hidden x heads*d, k_proj
        hidden x d, per-head RMSNorms on q and k) and caches ONE index key of
        `sparse_index_dim` elements per token beside its K/V (transformers
        MiniMaxM3VLSparseCacheLayer.idx_keys [batch, 1, ctx, d]; vLLM MiniMaxM3IndexerCache,
        one head; SGLang MiniMaxSparseKVPool, single-head indexer pool). With
        `sparse_disable_index_value` 0 a layer would also cache index values (SGLang's
        pool stores K+V there); transformers builds no such path, so that is refused."""
        key = "sparse_attention_config"
        cfg = self.cfg.get(key)
        if cfg is None:
            return
        if not isinstance(cfg, Mapping):
            raise self.fail(key, f"key {key} must be an object")
        for sub in cfg:
            if sub not in MSA_SUBKEYS:
                raise self.fail(
                    f"{key}.{sub}",
                    f"key {key}.{sub}: a sparse-attention setting kvplan does not know; "
                    "it may change what the cache holds, so kvplan refuses to guess",
                )
        use = cfg.get("use_sparse_attention")
        if not isinstance(use, bool):
            raise self.fail(
                f"{key}.use_sparse_attention",
                f"key {key}.use_sparse_attention must be true or false, got {use!r}",
            )
        n = len(drafts)
        freq_key = f"{key}.sparse_attention_freq"
        sparse = self._flag_list(freq_key, cfg.get("sparse_attention_freq"), n)
        if not use:
            if any(sparse):
                # transformers builds the indexers from the list alone; SGLang skips them
                # when use_sparse_attention is false: the engines disagree, so no number
                raise self.fail(
                    f"{key}.use_sparse_attention",
                    f"key {key}.use_sparse_attention is false but sparse_attention_freq marks "
                    f"{sum(sparse)} layers sparse: transformers would cache index keys there, "
                    "SGLang would not",
                )
            return
        dims: dict[str, int] = {}
        for sub in ("sparse_index_dim", "sparse_num_index_heads"):
            value = cfg.get(sub)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise self.fail(
                    f"{key}.{sub}", f"key {key}.{sub} must be a positive integer, got {value!r}"
                )
            dims[sub] = value
        no_value = self._flag_list(
            f"{key}.sparse_disable_index_value", cfg.get("sparse_disable_index_value"), n
        )
        with_value = [i for i in range(n) if sparse[i] and not no_value[i]]
        if with_value:
            raise self.fail(
                f"{key}.sparse_disable_index_value",
                f"key {key}.sparse_disable_index_value is 0 on sparse layer(s) "
                f"{with_value[:5]}: an index-value cache kvplan does not model",
            )
        for d, flag in zip(drafts, sparse, strict=True):
            if flag and d["mixer"] == "full":
                d.update(
                    index_head_dim=dims["sparse_index_dim"],
                    index_heads=dims["sparse_num_index_heads"],
                )
        self.assumptions.append(
            f"MiniMax sparse attention: {sum(sparse)} layers cache one "
            f"{dims['sparse_index_dim']}-element index key per token beside K/V (one head, "
            "not split by TP); vLLM, SGLang and TensorRT-LLM keep it in 16 bits whatever the "
            "KV dtype (vLLM MiniMaxM3IndexerCache; SGLang: the model dtype; TensorRT-LLM: "
            "fp32 only under an fp32 KV cache); without an engine (--engine none, `size`'s "
            "default) in the KV dtype, as transformers caches it"
        )

    def _indexer_flags(self, n: int) -> list[bool]:
        """GLM-5.2 `indexer_types`: 'full' layers run (and cache) their own lightning indexer,
        'shared' layers reuse the previous full layer's top-k and cache only the latent.
        Without `indexer_types`, an `index_topk_freq` above 1 says the same in a form kvplan
        does not decode: refused rather than every layer counted."""
        key = "indexer_types"
        values = self.cfg.get(key)
        if values is None:
            freq = self.cfg.get("index_topk_freq")
            if freq not in (None, 1):
                raise self.fail(
                    "index_topk_freq",
                    f"key index_topk_freq ({freq!r}) without indexer_types: which layers "
                    "cache indexer keys is not spelled out per layer",
                )
            return [True] * n
        if not isinstance(values, list) or any(v not in ("full", "shared") for v in values):
            raise self.fail(key, f"key {key} must be a list of 'full' and 'shared'")
        if len(values) != n:
            raise self.fail(key, f"key {key} has {len(values)} entries for {n} layers")
        return [v == "full" for v in values]

    def _add_recurrent(self, drafts: list[Draft], hidden: int | None) -> None:
        kinds = {d["mixer"] for d in drafts} & RECURRENT_NAMES
        if not kinds:
            return
        if hidden is None:
            raise _Skip()
        for kind in kinds:
            dims = self._recurrent_dims(kind, hidden)
            for d in drafts:
                if d["mixer"] == kind:
                    d["recurrent"] = dims

    def _recurrent_dims(self, kind: str, hidden: int) -> RecurrentDims:
        ssm_dtype = self._state_dtype()
        if kind == "gated_deltanet":
            k_heads = self._int("linear_num_key_heads", required=True)
            v_heads = self._int("linear_num_value_heads", required=True)
            k_dim = self._int("linear_key_head_dim", required=True)
            v_dim = self._int("linear_value_head_dim", required=True)
            conv = self._int("linear_conv_kernel_dim", default=4)
            assert k_heads and v_heads and k_dim and v_dim and conv
            return RecurrentDims(
                key_heads=k_heads,
                key_head_dim=k_dim,
                num_heads=v_heads,
                head_dim=v_dim,
                d_conv=conv,
                ssm_dtype=ssm_dtype,
            )
        if kind == "mamba2":
            heads = self._int(("mamba_num_heads", "mamba_n_heads"), required=True)
            head_dim = self._int(("mamba_head_dim", "mamba_d_head"), required=True)
            groups = self._int(("n_groups", "mamba_n_groups"), default=8)
            d_state = self._int(("ssm_state_size", "mamba_d_state"), default=128)
            d_conv = self._int(("conv_kernel", "mamba_d_conv"), default=4)
            assert heads and head_dim and groups and d_state and d_conv
            return RecurrentDims(
                num_heads=heads,
                head_dim=head_dim,
                n_groups=groups,
                d_state=d_state,
                d_conv=d_conv,
                conv_bias=self._bool("use_conv_bias", self._bool("mamba_conv_bias", True)),
                proj_bias=self._bool("mamba_proj_bias", False),
                ssm_dtype=ssm_dtype,
            )
        if kind == "short_conv":
            width = self._int("conv_dim", default=hidden)
            if "conv_L_cache" not in self.cfg:
                self.assumptions.append("conv_L_cache not in config: transformers' default 3")
            l_cache = self._int("conv_L_cache", default=3)
            assert width and l_cache
            return RecurrentDims(
                d_inner=width, d_conv=l_cache, conv_bias=self._bool("conv_bias", False)
            )
        # Mamba-1 (Jamba)
        expand_raw = self.cfg.get("mamba_expand", self.cfg.get("expand", 2))
        expand = self._number("mamba_expand", expand_raw)
        d_state = self._int(("mamba_d_state", "state_size", "ssm_state_size"), default=16)
        d_conv = self._int(("mamba_d_conv", "conv_kernel"), default=4)
        inner = self._int(("mamba_d_inner", "intermediate_size_mamba")) or int(expand * hidden)
        dt_rank = self._int(("mamba_dt_rank", "time_step_rank")) or ceil(hidden / 16)
        assert d_state and d_conv
        self.assumptions.append(
            f"non-attention layers: Mamba state {inner}x{d_state} + conv {inner}x{d_conv - 1} "
            "elements per sequence"
        )
        return RecurrentDims(
            d_inner=inner,
            d_state=d_state,
            d_conv=d_conv,
            dt_rank=dt_rank,
            inner_norms=self.traits.pattern == "jamba",
            ssm_dtype=ssm_dtype,
        )

    def _qwen_window_layers(self, layers: int | None, start: int | None) -> None:
        if self.traits.pattern != "qwen_window" or layers is None or start is None:
            return
        if start > layers:
            used = self.cfg.get("use_sliding_window")
            effect = (
                "harmless while use_sliding_window is false"
                if used is False
                else "no layer uses the sliding window"
            )
            self.warn(
                "max_window_layers",
                f"key max_window_layers ({start}) exceeds num_hidden_layers ({layers}): {effect}",
            )


ROPE_BY_MAX_POSITIONS = frozenset({"default", "llama3", "mllama4"})
ROPE_BY_MAX_TIMES_FACTOR = frozenset({"linear", "dynamic"})
ROPE_BY_ORIGINAL_TIMES_FACTOR = frozenset({"yarn", "deepseek_yarn"})


def _rope_positions(params: Mapping[str, Any], max_pos: int, original: Any = None) -> int | str:
    """Positions in vLLM's table for one rope argument set, or why kvplan cannot tell.

    Sources (vllm-project/vllm, rotary_embedding/): get_rope dispatch __init__.py @ 926c71f6;
    base.py `_compute_cos_sin_cache` arange(max_position_embeddings) @ 04458da0;
    linear_scaling_rope.py / dynamic_ntk_scaling_rope.py max_position_embeddings x factor;
    yarn_scaling_rope.py ceil(original x factor) (get_rope passes the original);
    deepseek_scaling_rope.py original x factor; phi3_long_rope_scaled_rope.py short
    (original) + long (max) caches in one buffer; mrope.py max_position_embeddings x 4.
    """
    kind = params.get("rope_type") or params.get("type") or "default"
    factor = params.get("factor")
    original = params.get("original_max_position_embeddings", original)
    if kind in ROPE_BY_MAX_POSITIONS:
        positions = max_pos
    elif kind in ROPE_BY_MAX_TIMES_FACTOR and "alpha" not in params:
        if not isinstance(factor, int | float) or factor <= 0:
            return f"rope type {kind} without a factor"
        positions = ceil(max_pos * factor)
    elif kind in ROPE_BY_ORIGINAL_TIMES_FACTOR:
        if not isinstance(factor, int | float) or factor <= 0 or not isinstance(original, int):
            return f"rope type {kind} without factor / original_max_position_embeddings"
        positions = ceil(original * factor)
    elif kind == "longrope":
        if not isinstance(original, int):
            return "longrope without original_max_position_embeddings"
        positions = max_pos + original
    else:
        return f"rope type {kind!r} is not one kvplan reads"
    if "mrope_section" in params:
        if kind not in ("default", "yarn"):
            return f"mrope with rope type {kind}"
        positions *= 4
    return positions


def _families_reading(patterns: frozenset[str]) -> str:
    names = sorted(f for f, t in TRAITS.items() if t.pattern in patterns)
    return ", ".join(names)


Parser = Callable[[Mapping[str, Any]], ModelSpec]
