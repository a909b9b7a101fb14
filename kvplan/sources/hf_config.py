"""Read a Hugging Face `config.json` (as a dict) into a `ModelSpec`.

The mapping is table-driven: each field has the config keys that carry it across model
families (`num_key_value_heads`, `num_kv_heads`, `n_head_kv`, `multi_query`, MPT's
`attn_config.kv_n_heads` ...). Anything inferred rather than read (head_dim =
hidden/heads, G = H when no KV-head key exists, a dtype default) is recorded in
`ModelSpec.assumptions` so the user sees it. Pure: takes a dict, returns a model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from math import ceil
from typing import Any

from pydantic import ValidationError

from kvplan.core import dtypes
from kvplan.core.geometry import Layer, LayerKind, MlaDims, ModelSpec, MoeDims, Quantization
from kvplan.errors import KvplanError

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
TOPK_KEYS = ("num_experts_per_tok", "experts_per_token", "moe_top_k", "num_experts_per_token")

# Families whose MLP is a plain two-matrix GELU MLP (everything else is gated).
PLAIN_MLP_FAMILIES = frozenset(
    {
        "gpt2",
        "gpt_neox",
        "gptj",
        "bloom",
        "falcon",
        "RefinedWeb",
        "RefinedWebModel",
        "mpt",
        "starcoder2",
        "gpt_bigcode",
        "opt",
        "phi",
        "phi-msft",
        "gpt_neo",
        "codegen",
        "persimmon",
    }
)
# Families whose attention projections are hidden x hidden, so head_dim must be hidden / heads
# (elsewhere an explicit head_dim may differ: Gemma, Qwen3, Mistral-Nemo, gpt-oss).
HEAD_DIM_FROM_HIDDEN = PLAIN_MLP_FAMILIES | frozenset({"phi3", "phimoe", "stablelm"})
# Families that use LayerNorm (weight + bias) rather than RMSNorm.
LAYERNORM_FAMILIES = frozenset(
    {
        "gpt2",
        "gpt_neox",
        "gptj",
        "bloom",
        "falcon",
        "RefinedWeb",
        "RefinedWebModel",
        "starcoder2",
        "gpt_bigcode",
        "opt",
        "phi",
        "phi-msft",
        "gpt_neo",
        "codegen",
        "persimmon",
        "stablelm",
    }
)
# Families that tie input and output embeddings unless the config says otherwise
# (transformers' default for the family's config class).
TIED_BY_DEFAULT = frozenset(
    {
        "gpt2",
        "bloom",
        "falcon",
        "RefinedWeb",
        "RefinedWebModel",
        "mpt",
        "gemma",
        "gemma2",
        "gemma3",
        "gemma3_text",
        "cohere",
        "cohere2",
        "gpt_bigcode",
        "opt",
        "starcoder2",
    }
)
# Norms per decoder layer where it is not 2 (pre-attention + pre-MLP).
NORMS_PER_LAYER = {
    "gemma2": 4,
    "gemma3": 4,
    "gemma3_text": 4,
    "olmo2": 2,
    "cohere": 1,
    "cohere2": 1,
    "gptj": 1,
    "phi": 1,
    "phi-msft": 1,
}
# Keys that transformers fills from its config class when a published config omits them.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "head_dim": 256,
        "rms_norm_eps": 1e-6,
    },
    "gemma2": {"sliding_window": 4096},
    "qwen3": {"head_dim": 128},
    "gpt2": {"n_positions": 1024, "vocab_size": 50257},
    "llama4_text": {"attention_chunk_size": 8192},
}
DEFAULT_DTYPE = "bf16"
# `layer_types` entries across families (transformers' names and a few synonyms).
LAYER_TYPE_NAMES: dict[str, LayerKind] = {
    **dict.fromkeys(
        ("full_attention", "attention", "global", "full", "global_attention"), LayerKind.FULL
    ),
    **dict.fromkeys(
        ("sliding_attention", "sliding_window", "local", "local_attention", "sliding"),
        LayerKind.SLIDING,
    ),
    "chunked_attention": LayerKind.CHUNKED,
    **dict.fromkeys(
        ("linear_attention", "mamba", "mamba2", "ssm", "recurrent", "conv", "rwkv"), LayerKind.NONE
    ),
}


class ConfigError(KvplanError):
    """A config that cannot be read; names the origin and the key."""


def parse_hf_config(raw: Mapping[str, Any], *, name: str, origin: str) -> ModelSpec:
    """Normalize a config.json dict into a ModelSpec (raises KvplanError on bad input)."""
    if not isinstance(raw, Mapping):
        raise KvplanError(f"{origin}: config is not a JSON object")
    return _Reader(raw, name=name, origin=origin).spec()


class _Reader:
    def __init__(self, raw: Mapping[str, Any], *, name: str, origin: str) -> None:
        self.origin = origin
        self.name = name
        self.top = raw
        self.assumptions: list[str] = []
        cfg: Mapping[str, Any] = raw
        text = raw.get("text_config")
        if isinstance(text, Mapping) and not any(k in raw for k in LAYER_KEYS):
            cfg = {**{k: v for k, v in raw.items() if k != "text_config"}, **text}
            cfg["model_type"] = text.get("model_type") or raw.get("model_type")
            self.assumptions.append("read the text model from text_config (multimodal config)")
        llm = raw.get("llm_config")
        if isinstance(llm, Mapping) and not any(k in raw for k in LAYER_KEYS):
            cfg = {**raw, **llm}
            self.assumptions.append("read the language model from llm_config")
        self.family = str(cfg.get("model_type") or "unknown")
        self.cfg = cfg
        self.defaults = FAMILY_DEFAULTS.get(self.family, {})
        attn = cfg.get("attn_config")
        self.attn_cfg: Mapping[str, Any] = attn if isinstance(attn, Mapping) else {}

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
        key, value = self._lookup(keys)
        if key is None:
            if required:
                names = keys if isinstance(keys, str) else " / ".join(keys)
                raise ConfigError(f"{self.origin}: missing required key {names}")
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise ConfigError(f"{self.origin}: key {key} must be an integer, got {value!r}")
        value = int(value)
        if positive and value <= 0:
            raise ConfigError(f"{self.origin}: key {key} must be positive, got {value}")
        return value

    def _bool(self, key: str, default: bool) -> bool:
        value = self.cfg.get(key, self.attn_cfg.get(key))
        return default if value is None else bool(value)

    # ---- assembly ------------------------------------------------------------------
    def spec(self) -> ModelSpec:
        n_layers = self._int(LAYER_KEYS, required=True)
        hidden = self._int(HIDDEN_KEYS, required=True)
        heads = self._int(HEAD_KEYS, required=True)
        assert n_layers and hidden and heads
        kv_heads = self._kv_heads(heads)
        head_dim = self._head_dim(hidden, heads)
        v_head_dim = head_dim if self._is_mla() else self._int(("v_head_dim",), default=head_dim)
        mla = self._mla(heads)
        if mla is not None:
            head_dim, v_head_dim = mla.qk_nope_head_dim + mla.qk_rope_head_dim, mla.v_head_dim
        moe = self._moe(hidden)
        kinds = self._layer_kinds(n_layers, mla is not None)
        moe_flags = self._moe_layers(n_layers) if moe else [False] * n_layers
        mixers = self._mixers(hidden, kinds)
        layers = tuple(
            Layer(kind=kind, window=window, moe=moe_flag, state_elements=state, mixer_params=params)
            for (kind, window), moe_flag, (state, params) in zip(
                kinds, moe_flags, mixers, strict=True
            )
        )
        intermediate = self._intermediate(hidden)
        family = self.family
        plain = family in PLAIN_MLP_FAMILIES
        bias_all = self._biases()
        ckpt_dtype = self._checkpoint_dtype()
        try:
            return ModelSpec(
                name=self.name,
                family=family,
                layers=layers,
                hidden_size=hidden,
                query_heads=heads,
                kv_heads=kv_heads,
                head_dim=head_dim,
                v_head_dim=v_head_dim or head_dim,
                mla=mla,
                intermediate_size=intermediate,
                gated_mlp=not plain,
                moe=moe,
                vocab_size=self._vocab(),
                tie_embeddings=self._tied(),
                learned_positions=self._learned_positions(),
                qkv_bias=bias_all["qkv"],
                o_bias=bias_all["o"],
                mlp_bias=bias_all["mlp"],
                norm_bias=family in LAYERNORM_FAMILIES and not self._bool("no_bias", False),
                norms_per_layer=self._norms_per_layer(),
                qk_norm=family
                in {"qwen3", "qwen3_moe", "gemma3", "gemma3_text", "olmo2", "qwen3_next"}
                or self._bool("use_qk_norm", False),
                parallel_attn_mlp=self._parallel(),
                max_position_embeddings=self._int(MAX_POS_KEYS),
                checkpoint_dtype=ckpt_dtype,
                quantization=self._quantization(),
                assumptions=tuple(self.assumptions),
                source=self.origin,
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "config"
            raise ConfigError(f"{self.origin}: {where}: {err['msg']}") from None

    # ---- fields --------------------------------------------------------------------
    def _kv_heads(self, heads: int) -> int:
        new_arch = self._bool("new_decoder_architecture", False)
        if self.family in {"falcon", "RefinedWeb", "RefinedWebModel"} and not new_arch:
            if self._bool("multi_query", self.family != "falcon"):
                return 1
            return heads
        if self.family == "gpt_bigcode":
            return 1 if self._bool("multi_query", True) else heads
        kv = self._int(KV_HEAD_KEYS)
        if kv is None:
            if self._bool("multi_query", False):
                return 1
            self.assumptions.append(
                f"no KV-head key in config: assuming multi-head attention (G = H = {heads})"
            )
            return heads
        kv_key, head_key = self._key(KV_HEAD_KEYS), self._key(HEAD_KEYS)
        if kv > heads:
            raise ConfigError(
                f"{self.origin}: key {kv_key} ({kv}) exceeds {head_key} ({heads}): "
                "more KV heads than query heads"
            )
        if heads % kv:
            raise ConfigError(
                f"{self.origin}: key {kv_key} ({kv}) does not divide {head_key} ({heads})"
            )
        return kv

    def _head_dim(self, hidden: int, heads: int) -> int:
        explicit = self._int(HEAD_DIM_KEYS)
        if explicit is not None:
            if self.family in HEAD_DIM_FROM_HIDDEN and explicit * heads != hidden:
                raise ConfigError(
                    f"{self.origin}: key {self._key(HEAD_DIM_KEYS)} ({explicit}) x "
                    f"{self._key(HEAD_KEYS)} ({heads}) = {explicit * heads} does not match "
                    f"{self._key(HIDDEN_KEYS)} ({hidden}), which {self.family}'s attention "
                    "projections require"
                )
            return explicit
        if self._is_mla():
            return 1  # replaced by MLA dims
        if hidden % heads:
            raise ConfigError(
                f"{self.origin}: key {self._key(HIDDEN_KEYS)} ({hidden}) is not divisible by "
                f"{self._key(HEAD_KEYS)} ({heads}) and there is no head_dim key"
            )
        dim = hidden // heads
        self.assumptions.append(f"head_dim not in config: hidden/heads = {hidden}/{heads} = {dim}")
        return dim

    def _is_mla(self) -> bool:
        return self.cfg.get("kv_lora_rank") is not None

    def _mla(self, heads: int) -> MlaDims | None:
        if not self._is_mla():
            return None
        rope = self._int("qk_rope_head_dim", required=True, positive=False)
        nope = self._int("qk_nope_head_dim", required=True)
        v = self._int("v_head_dim", required=True)
        assert rope is not None and nope is not None and v is not None
        return MlaDims(
            kv_lora_rank=self._int("kv_lora_rank", required=True),
            qk_rope_head_dim=rope,
            qk_nope_head_dim=nope,
            v_head_dim=v,
            q_lora_rank=self._int("q_lora_rank"),
        )

    def _intermediate(self, hidden: int) -> int:
        if self.family == "mpt":
            ratio = self.cfg.get("expansion_ratio", 4)
            return int(ratio * hidden)
        value = self._int(INTERMEDIATE_KEYS)
        if value is None:
            self.assumptions.append(
                f"no intermediate size in config: assuming 4 x hidden = {4 * hidden}"
            )
            return 4 * hidden
        return value

    def _vocab(self) -> int:
        value = self._int(VOCAB_KEYS)
        if value is None:
            raise ConfigError(f"{self.origin}: missing required key vocab_size")
        return value

    def _tied(self) -> bool:
        key = "tie_word_embeddings"
        if key in self.cfg and self.cfg[key] is not None:
            return bool(self.cfg[key])
        if key in self.top and self.top[key] is not None:
            return bool(self.top[key])
        return self.family in TIED_BY_DEFAULT

    def _learned_positions(self) -> int:
        if self.family in {"gpt2", "gpt_bigcode", "opt", "gpt_neo"}:
            return self._int(MAX_POS_KEYS) or 0
        return 0

    def _biases(self) -> dict[str, bool]:
        fam = self.family
        if fam in {"gptj", "codegen"}:  # bias-free attention projections, biased MLP
            return {"qkv": False, "o": False, "mlp": True}
        if fam in {"gpt2", "gpt_bigcode", "bloom", "gpt_neox", "opt", "phi", "phi-msft"}:
            return {"qkv": True, "o": True, "mlp": True}
        if fam in {"qwen2", "qwen2_moe", "qwen2_vl", "qwen2_5_vl"}:
            return {"qkv": True, "o": False, "mlp": False}
        if fam == "mpt":
            return {
                "qkv": not self._bool("no_bias", True),
                "o": not self._bool("no_bias", True),
                "mlp": not self._bool("no_bias", True),
            }
        if fam in {"falcon", "RefinedWeb", "RefinedWebModel"}:
            return {
                "qkv": self._bool("bias", False),
                "o": self._bool("bias", False),
                "mlp": self._bool("bias", False),
            }
        if fam == "starcoder2":
            b = self._bool("use_bias", True)
            return {"qkv": b, "o": b, "mlp": b}
        attn_bias = self._bool("attention_bias", False)
        return {"qkv": attn_bias, "o": attn_bias, "mlp": self._bool("mlp_bias", fam == "gpt_oss")}

    def _norms_per_layer(self) -> int:
        if self.family in {"falcon", "RefinedWeb", "RefinedWebModel"}:
            return 2 if self._bool("new_decoder_architecture", False) else 1
        return NORMS_PER_LAYER.get(self.family, 2)

    def _parallel(self) -> bool:
        if self.family in {"falcon", "RefinedWeb", "RefinedWebModel"}:
            return self._bool("parallel_attn", True) or self._bool(
                "new_decoder_architecture", False
            )
        if self.family == "gpt_neox":
            return self._bool("use_parallel_residual", True)
        return self.family in {"cohere", "cohere2", "gptj", "phi", "phi-msft"}

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

    def _quantization(self) -> Quantization | None:
        q = self.cfg.get("quantization_config") or self.top.get("quantization_config")
        if not isinstance(q, Mapping):
            return None
        method = str(q.get("quant_method") or q.get("quantization") or "unknown").lower()
        bits = q.get("bits") or q.get("w_bit") or q.get("weight_bits")
        if method in {"fp8", "fbgemm_fp8", "fp8_e4m3"}:
            return Quantization(method=method, weight_dtype="fp8")
        if method == "mxfp4":
            return Quantization(method=method, weight_dtype="mxfp4")
        if method == "bitsandbytes":
            four = q.get("load_in_4bit") or q.get("_load_in_4bit")
            return Quantization(method=method, weight_dtype="int4-g128" if four else "int8")
        if method == "compressed-tensors":
            bits = _find_num_bits(q)
        if bits is not None:
            bits = int(bits)
            if bits == 8:
                return Quantization(method=method, weight_dtype="int8")
            if bits == 4:
                return Quantization(method=method, weight_dtype="int4-g128")
        self.assumptions.append(
            f"quantization {method!r} not understood: weights counted at the checkpoint dtype"
        )
        return None

    # ---- per-layer structure -------------------------------------------------------
    def _window(self) -> int | None:
        value = self._int(("sliding_window", "attention_window"))
        return value

    def _layer_kinds(self, n: int, mla: bool) -> list[tuple[LayerKind, int | None]]:
        full: tuple[LayerKind, int | None] = (LayerKind.MLA if mla else LayerKind.FULL, None)
        types = self.cfg.get("layer_types")
        window = self._window()
        max_pos = self._int(MAX_POS_KEYS)
        if isinstance(types, list) and types and all(isinstance(t, str) for t in types):
            if len(types) != n:
                raise ConfigError(
                    f"{self.origin}: key layer_types has {len(types)} entries for {n} layers"
                )
            kinds = [self._kind_from_name(t, window, full) for t in types]
            sliding_layers = any(kind is LayerKind.SLIDING for kind, _ in kinds)
            if sliding_layers and window is not None and max_pos is not None and window > max_pos:
                raise ConfigError(
                    f"{self.origin}: key {self._key(('sliding_window', 'attention_window'))} "
                    f"({window}) exceeds {self._key(MAX_POS_KEYS)} ({max_pos}), but layer_types "
                    "marks layers as sliding"
                )
            return kinds
        fam = self.family
        if fam == "jamba":
            period = self._int("attn_layer_period", default=8)
            offset = self._int("attn_layer_offset", default=4, positive=False)
            assert period is not None and offset is not None
            return [full if i % period == offset else (LayerKind.NONE, None) for i in range(n)]
        if fam == "qwen3_next":
            interval = self._int("full_attention_interval", default=4)
            assert interval is not None
            return [full if (i + 1) % interval == 0 else (LayerKind.NONE, None) for i in range(n)]
        if fam == "nemotron_h":
            pattern = str(self.cfg.get("hybrid_override_pattern", ""))
            if len(pattern) == n:
                return [full if c == "*" else (LayerKind.NONE, None) for c in pattern]
        if fam in {"llama4", "llama4_text"}:
            chunk = self._int("attention_chunk_size")
            nope = self.cfg.get("no_rope_layers")
            if chunk:
                if isinstance(nope, list) and len(nope) == n:
                    return [(LayerKind.CHUNKED, chunk) if flag else full for flag in nope]
                return [full if (i + 1) % 4 == 0 else (LayerKind.CHUNKED, chunk) for i in range(n)]
        if window is None:
            return [full] * n
        if window <= 0:
            raise ConfigError(f"{self.origin}: key sliding_window must be positive")
        sliding = (LayerKind.SLIDING, window)
        if fam in {"qwen2", "qwen2_moe", "qwen3", "qwen3_moe"}:
            if not self._bool("use_sliding_window", False):
                return [full] * n
            start = self._int("max_window_layers", default=n, positive=False)
            assert start is not None
            return [sliding if i >= start else full for i in range(n)]
        if fam == "gemma2":
            return [sliding if (i + 1) % 2 else full for i in range(n)]
        if fam in {"gemma3", "gemma3_text", "cohere2"}:
            pattern = self._int(
                ("sliding_window_pattern", "_sliding_window_pattern"),
                default=6 if fam != "cohere2" else 4,
            )
            assert pattern is not None
            return [sliding if (i + 1) % pattern else full for i in range(n)]
        if self.cfg.get("use_sliding_window") is False:
            return [full] * n
        if max_pos is not None and window >= max_pos:
            self.assumptions.append(
                f"sliding_window {window} >= max positions {max_pos}: it never binds, "
                "treated as full attention"
            )
            return [full] * n
        return [sliding] * n

    def _kind_from_name(
        self, name: str, window: int | None, full: tuple[LayerKind, int | None]
    ) -> tuple[LayerKind, int | None]:
        kind = LAYER_TYPE_NAMES.get(name.lower())
        if kind is None:
            raise ConfigError(f"{self.origin}: key layer_types has an unknown layer type {name!r}")
        if kind is LayerKind.FULL:
            return full
        if kind is LayerKind.SLIDING:
            if window is None:
                raise ConfigError(
                    f"{self.origin}: layer_types has sliding layers but no sliding_window"
                )
            return (LayerKind.SLIDING, window)
        if kind is LayerKind.CHUNKED:
            return (LayerKind.CHUNKED, self._int("attention_chunk_size", required=True))
        return (LayerKind.NONE, None)

    def _moe(self, hidden: int) -> MoeDims | None:
        experts = self._int(EXPERT_KEYS)
        if not experts or experts <= 1:
            return None
        top_k = self._int(TOPK_KEYS, default=2)
        assert top_k is not None
        expert_inter = self._int(
            ("moe_intermediate_size", "expert_intermediate_size")
        ) or self._int(INTERMEDIATE_KEYS, required=True)
        shared_inter = self._int(("shared_expert_intermediate_size",), positive=False) or 0
        shared = (
            1
            if shared_inter
            else (self._int(("n_shared_experts", "num_shared_experts"), positive=False) or 0)
        )
        if shared and not shared_inter:
            shared_inter = expert_inter
        return MoeDims(
            num_experts=experts,
            experts_per_token=top_k,
            expert_intermediate=expert_inter,
            shared_experts=shared,
            shared_intermediate=shared_inter,
            shared_expert_gate=self.family in {"qwen2_moe", "qwen3_next"},
            router_bias=self.family == "gpt_oss",
        )

    def _moe_layers(self, n: int) -> list[bool]:
        fam = self.family
        if fam == "jamba":
            period = self._int("expert_layer_period", default=2)
            offset = self._int("expert_layer_offset", default=1, positive=False)
            assert period is not None and offset is not None
            return [i % period == offset for i in range(n)]
        first_dense = self._int("first_k_dense_replace", default=0, positive=False) or 0
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
            elif fam in {"qwen2_moe", "qwen3_moe", "qwen3_next", "llama4", "llama4_text"}:
                flags.append((i + 1) % freq == 0)
            else:  # DeepSeek: layer_idx >= first_k_dense_replace and layer_idx % freq == 0
                flags.append(i % freq == 0)
        return flags

    def _mixers(
        self, hidden: int, kinds: list[tuple[LayerKind, int | None]]
    ) -> list[tuple[int, int]]:
        """(state elements per sequence, mixer params) for layers without a KV cache."""
        if all(kind is not LayerKind.NONE for kind, _ in kinds):
            return [(0, 0)] * len(kinds)
        state, params = self._mixer_dims(hidden)
        return [(state, params) if kind is LayerKind.NONE else (0, 0) for kind, _ in kinds]

    def _mixer_dims(self, hidden: int) -> tuple[int, int]:
        c = self.cfg
        if self.family == "qwen3_next" or c.get("linear_num_value_heads"):
            # Gated DeltaNet: state = v_heads * k_dim * v_dim, conv over q,k,v channels.
            k_heads = self._int("linear_num_key_heads", required=True)
            v_heads = self._int("linear_num_value_heads", required=True)
            k_dim = self._int("linear_key_head_dim", required=True)
            v_dim = self._int("linear_value_head_dim", required=True)
            conv = self._int("linear_conv_kernel_dim", default=4)
            assert k_heads and v_heads and k_dim and v_dim and conv
            key_total, value_total = k_heads * k_dim, v_heads * v_dim
            conv_dim = 2 * key_total + value_total
            state = v_heads * k_dim * v_dim + conv_dim * (conv - 1)
            params = (
                hidden * (2 * key_total + 2 * value_total)  # q, k, v, z projections
                + hidden * 2 * v_heads  # beta, alpha
                + conv_dim * conv  # depthwise conv
                + 2 * v_heads
                + v_dim  # dt bias, A_log, gated norm
                + value_total * hidden
            )  # out projection
            return state, params
        # Mamba-1 (Jamba) or Mamba-2 style selective state space layer.
        expand = c.get("mamba_expand", c.get("expand", 2))
        d_state = self._int(("mamba_d_state", "state_size", "ssm_state_size"), default=16)
        d_conv = self._int(("mamba_d_conv", "conv_kernel"), default=4)
        inner = self._int(("mamba_d_inner", "intermediate_size_mamba")) or int(expand * hidden)
        dt_rank = self._int(("mamba_dt_rank", "time_step_rank")) or ceil(hidden / 16)
        assert d_state and d_conv
        state = inner * d_state + inner * (d_conv - 1)
        params = (
            hidden * 2 * inner
            + inner * d_conv
            + inner  # in_proj, conv1d (+bias)
            + inner * (dt_rank + 2 * d_state)  # x_proj
            + dt_rank * inner
            + inner  # dt_proj
            + inner * d_state
            + inner  # A_log, D
            + inner * hidden
        )  # out_proj
        self.assumptions.append(
            f"non-attention layers: Mamba state {inner}x{d_state} + conv {inner}x{d_conv - 1} "
            "elements per sequence, stored in the checkpoint dtype"
        )
        return state, params


def _find_num_bits(q: Mapping[str, Any]) -> int | None:
    groups = q.get("config_groups")
    if isinstance(groups, Mapping):
        for group in groups.values():
            weights = group.get("weights") if isinstance(group, Mapping) else None
            if isinstance(weights, Mapping) and weights.get("num_bits"):
                return int(weights["num_bits"])
    return None


Parser = Callable[[Mapping[str, Any]], ModelSpec]
