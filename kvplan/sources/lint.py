"""Lint a model config (config.json / params.json as a dict): every problem at once.

The parser stops at the first bad key, which is right for `kvplan fit` and wrong for CI,
where a reviewer wants the whole list. So this pass walks the raw dict on its own, with the
parser's key tables (which keys carry layers, heads, KV heads ... across families), and
collects findings; the caller may then hand the dict to the real parser (`parse`) to catch
anything this pass does not know about.

Severity:
  error    the config is wrong or kvplan cannot read it: `kvplan check` exits 1;
  warning  a real, published quirk that kvplan reads correctly anyway (Qwen2.5-32B's
           max_window_layers 70 > num_hidden_layers 64, a float where an int belongs):
           reported, exit 0 unless --strict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, computed_field

from kvplan.core.geometry import LayerKind, ModelSpec
from kvplan.errors import KvplanError
from kvplan.sources.hf_config import (
    EXPERT_KEYS,
    FAMILY_DEFAULTS,
    HEAD_DIM_FROM_HIDDEN,
    HEAD_DIM_KEYS,
    HEAD_KEYS,
    HIDDEN_KEYS,
    INTERMEDIATE_KEYS,
    KV_HEAD_KEYS,
    LAYER_KEYS,
    LAYER_TYPE_NAMES,
    MAX_POS_KEYS,
    TOPK_KEYS,
    VOCAB_KEYS,
)
from kvplan.sources.meta_params import is_meta_params

Severity = Literal["error", "warning"]
MAX_LAYERS = 100_000  # a typo, not a model: and the parser would build that many layers
WINDOW_KEYS = ("sliding_window", "attention_window")
QWEN_FAMILIES = frozenset({"qwen2", "qwen2_moe", "qwen3", "qwen3_moe"})
# Other integer keys the parser reads: (keys, may be zero).
OTHER_INT_KEYS: tuple[tuple[tuple[str, ...], bool], ...] = (
    (WINDOW_KEYS, False),
    (("attention_chunk_size",), False),
    (("kv_lora_rank",), False),
    (("q_lora_rank",), False),
    (("qk_nope_head_dim",), False),
    (("qk_rope_head_dim",), True),
    (("v_head_dim",), False),
    (("moe_intermediate_size", "expert_intermediate_size"), False),
    (("shared_expert_intermediate_size",), True),
    (("n_shared_experts", "num_shared_experts"), True),
    (("max_window_layers",), True),
    (("first_k_dense_replace",), True),
    (("sliding_window_pattern", "_sliding_window_pattern"), False),
    (("attn_layer_period",), False),
    (("attn_layer_offset",), True),
    (("multiple_of",), False),
)
MLA_KEYS = ("qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    severity: Severity
    key: str | None  # the config key at fault, when there is one
    message: str
    line: int | None = None  # filled in by the reader, which has the file's text


class ConfigLint(BaseModel):
    """The findings for one config file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str
    findings: tuple[Finding, ...]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)


def lint_config(
    raw: Mapping[str, Any],
    *,
    origin: str = "",
    parse: Callable[[Mapping[str, Any]], ModelSpec] | None = None,
) -> list[Finding]:
    """All findings for one config dict; `parse` (the real parser) runs last if given."""
    linter = _Linter(raw)
    linter.run()
    order = {key: i for i, key in enumerate(raw)}  # report in the file's key order
    findings = sorted(
        linter.findings, key=lambda f: order.get((f.key or "").rpartition(".")[2], len(order))
    )
    errors = [f for f in findings if f.severity == "error"]
    if parse is not None and not linter.too_big:
        try:
            spec = parse(raw)
        except KvplanError as exc:
            message = exc.message.removeprefix(f"{origin}: ") if origin else exc.message
            if exc.hint:
                message += f" ({exc.hint})"
            # The parser stops at the first problem, usually one already listed above.
            if not any(f.key and f.key in message for f in errors):
                findings.append(Finding(severity="error", key=None, message=message))
        else:
            if all(layer.kind is LayerKind.NONE for layer in spec.layers):
                findings.append(
                    Finding(
                        severity="error",
                        key=None,
                        message=("no attention layer at all: there is no KV cache to plan"),
                    )
                )
    return findings


class _Linter:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.meta = is_meta_params(raw)
        cfg: Mapping[str, Any] = raw
        # The same sub-config the parser reads for multimodal wrappers.
        for wrapper in ("text_config", "llm_config"):
            inner = raw.get(wrapper)
            if isinstance(inner, Mapping) and not any(k in raw for k in LAYER_KEYS):
                cfg = {**raw, **inner}
                break
        self.cfg = cfg
        attn = cfg.get("attn_config")
        self.attn: Mapping[str, Any] = attn if isinstance(attn, Mapping) else {}
        self.family = str(cfg.get("model_type") or ("llama" if self.meta else ""))
        self.findings: list[Finding] = []
        self.too_big = False

    # ---- helpers -------------------------------------------------------------------
    def error(self, key: str | None, message: str) -> None:
        self.findings.append(Finding(severity="error", key=key, message=message))

    def warning(self, key: str | None, message: str) -> None:
        self.findings.append(Finding(severity="warning", key=key, message=message))

    def lookup(self, keys: tuple[str, ...]) -> tuple[str | None, Any]:
        """The key the parser would read (first present, config before attn_config)."""
        for key in keys:
            if self.cfg.get(key) is not None:
                return key, self.cfg[key]
            if self.attn.get(key) is not None:
                return f"attn_config.{key}", self.attn[key]
        defaults = FAMILY_DEFAULTS.get(self.family, {})
        for key in keys:
            if key in defaults:  # transformers fills it from the family's config class
                return key, defaults[key]
        return None, None

    def integer(
        self, keys: tuple[str, ...], *, required: bool = False, zero_ok: bool = False
    ) -> tuple[str | None, int | None]:
        """Check one integer setting; returns (key, value) when it is usable."""
        key, value = self.lookup(keys)
        if key is None:
            if required:
                self.error(keys[0], f"missing required key {' / '.join(keys)}")
            return None, None
        if self.meta and key == "vocab_size" and value == -1:
            return key, None  # Llama 2 params.json: the tokenizer decides (the parser knows)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(key, f"key {key} must be an integer, got {value!r}")
            return key, None
        if value != int(value):
            self.error(key, f"key {key} must be an integer, got {value!r}")
            return key, None
        if isinstance(value, float):
            self.warning(key, f"key {key} is a float ({value!r}) where an integer belongs")
        value = int(value)
        if value < 0 or (value == 0 and not zero_ok):
            bound = "non-negative" if zero_ok else "positive"
            self.error(key, f"key {key} must be {bound}, got {value}")
            return key, None
        return key, value

    # ---- checks --------------------------------------------------------------------
    def run(self) -> None:
        if not self.meta and not self.cfg.get("model_type"):
            self.warning(
                "model_type",
                "no model_type: family-specific rules (sliding-window "
                "layouts, MLP shape, biases) cannot apply; Llama-style assumed",
            )
        layers_key, layers = self.integer(LAYER_KEYS, required=True)
        hidden_key, hidden = self.integer(HIDDEN_KEYS, required=True)
        heads_key, heads = self.integer(HEAD_KEYS, required=True)
        kv_key, kv = self.integer(KV_HEAD_KEYS)
        dim_key, head_dim = self.integer(HEAD_DIM_KEYS)
        self.integer(INTERMEDIATE_KEYS)
        self.integer(VOCAB_KEYS, required=not self.meta)
        _, max_pos = self.integer(MAX_POS_KEYS)
        experts_key, experts = self.integer(EXPERT_KEYS)
        topk_key, topk = self.integer(TOPK_KEYS)
        others = {keys[0]: self.integer(keys, zero_ok=zero) for keys, zero in OTHER_INT_KEYS}
        if layers is not None and layers > MAX_LAYERS:
            self.too_big = True
            self.error(
                layers_key,
                f"key {layers_key} ({layers:,}) is absurdly large (limit {MAX_LAYERS:,})",
            )
            layers = None
        if heads is not None and kv is not None:
            if kv > heads:
                self.error(
                    kv_key,
                    f"key {kv_key} ({kv}) exceeds {heads_key} ({heads}): more "
                    "KV heads than query heads",
                )
            elif heads % kv:
                self.error(
                    kv_key,
                    f"key {kv_key} ({kv}) does not divide {heads_key} "
                    f"({heads}): query heads cannot be grouped evenly",
                )
        mla = self.cfg.get("kv_lora_rank") is not None
        if mla:
            for key in MLA_KEYS:
                if self.cfg.get(key) is None:
                    self.error(key, f"MLA config (kv_lora_rank set) is missing {key}")
        if hidden is not None and heads is not None:
            if head_dim is not None:
                if self.family in HEAD_DIM_FROM_HIDDEN and head_dim * heads != hidden:
                    self.error(
                        dim_key,
                        f"key {dim_key} ({head_dim}) x {heads_key} ({heads}) = "
                        f"{head_dim * heads} does not match {hidden_key} ({hidden}), "
                        f"which {self.family}'s attention projections require",
                    )
            elif not mla and dim_key is None and hidden % heads:
                self.error(
                    hidden_key,
                    f"key {hidden_key} ({hidden}) is not divisible by "
                    f"{heads_key} ({heads}) and there is no head_dim key",
                )
        if experts is not None and topk is not None and experts > 1 and topk > experts:
            self.error(
                topk_key,
                f"key {topk_key} ({topk}) exceeds {experts_key} ({experts}): "
                "more experts per token than experts",
            )
        window = others["sliding_window"][1]
        self._layer_types(layers, window, max_pos)
        self._qwen_window_layers(layers, others["max_window_layers"][1])
        self._patterns(layers, others)

    def _layer_types(self, layers: int | None, window: int | None, max_pos: int | None) -> None:
        types = self.cfg.get("layer_types")
        if types is None:
            return
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            self.error("layer_types", "key layer_types must be a list of strings")
            return
        if layers is not None and len(types) != layers:
            self.error(
                "layer_types", f"key layer_types has {len(types)} entries for {layers} layers"
            )
        unknown: list[str] = []
        sliding = False
        for name in dict.fromkeys(types):
            kind = LAYER_TYPE_NAMES.get(name.lower())
            if kind is None:
                unknown.append(name)
                continue
            sliding = sliding or kind is LayerKind.SLIDING
        if unknown:
            self.error(
                "layer_types",
                "key layer_types has unknown layer type"
                f"{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            )
        if sliding and window is None and self.lookup(WINDOW_KEYS)[0] is None:
            self.error(
                "layer_types", "key layer_types has sliding layers but there is no sliding_window"
            )
        if sliding and window is not None and max_pos is not None and window > max_pos:
            self.error(
                "sliding_window",
                f"key sliding_window ({window}) exceeds the max "
                f"positions ({max_pos}), but layer_types marks layers as sliding",
            )

    def _qwen_window_layers(self, layers: int | None, start: int | None) -> None:
        if self.family not in QWEN_FAMILIES or layers is None or start is None:
            return
        if start > layers:
            used = self.cfg.get("use_sliding_window")
            effect = (
                "harmless while use_sliding_window is false"
                if used is False
                else "no layer uses the sliding window"
            )
            self.warning(
                "max_window_layers",
                f"key max_window_layers ({start}) exceeds num_hidden_layers ({layers}): {effect}",
            )

    def _patterns(
        self, layers: int | None, others: dict[str, tuple[str | None, int | None]]
    ) -> None:
        if layers is None:
            return
        if self.family == "jamba":
            period = others["attn_layer_period"][1]
            offset = others["attn_layer_offset"][1]
            if period is not None and offset is not None and offset >= period:
                self.error(
                    "attn_layer_offset",
                    f"key attn_layer_offset ({offset}) is not below "
                    f"attn_layer_period ({period}): no layer would be attention",
                )
        pattern = self.cfg.get("hybrid_override_pattern")
        if self.family == "nemotron_h" and isinstance(pattern, str) and len(pattern) != layers:
            self.error(
                "hybrid_override_pattern",
                f"key hybrid_override_pattern has {len(pattern)} entries for {layers} layers",
            )
        nope = self.cfg.get("no_rope_layers")
        if isinstance(nope, list) and len(nope) != layers:
            self.warning(
                "no_rope_layers",
                f"key no_rope_layers has {len(nope)} entries for "
                f"{layers} layers: kvplan falls back to every 4th layer global",
            )
