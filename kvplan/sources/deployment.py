"""What a user typed (flags or policy keys) -> one core `Deployment` (and pick-g's design
flags -> one core `DesignChoices`), validated once.

The settings, their bounds and help are declared once, as fields of
`kvplan.core.deployment.Deployment`; this module is the only place that checks a value
against them. `kvplan fit`, `pick-g`, `roofline` and `kvplan check` policies all come
through `parse_deployment`, so a policy target means exactly what the same flags mean.
A bad value raises `KvplanError` with `setting` set to the setting's name, so the policy
loader can point at the YAML line that holds it. Messages spell the setting the way the
caller does (`names`: `--tp` for flags, `tp` for policy keys).

The design knobs of `pick-g` are declared once too, as fields of
`kvplan.core.design_choices.DesignChoices`, and `parse_design` is their only validator
(each value by its kind, as a deployment setting, then how the knobs go together).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kvplan.core import dtypes, kv_formats
from kvplan.core.deployment import (
    AUTO_MAX_MODEL_LEN,
    Deployment,
    DraftModel,
    Kind,
    Setting,
    flag_name,
    settings,
)
from kvplan.core.engines import ENTRY_POINTS, Engine, engine_named
from kvplan.core.geometry import ModelSpec
from kvplan.core.prefix_cache import refusal
from kvplan.core.sizing import default_kv_dtype
from kvplan.errors import KvplanError
from kvplan.sources.gpus import load_gpus
from kvplan.sources.resolve import ResolvedModel, resolve_model
from kvplan.units import fmt_bytes, parse_count, parse_size

if TYPE_CHECKING:
    from kvplan.core.design_choices import DesignChoices

SIZE_UNIT_HINT = "a size needs a unit, e.g. 40GiB, 512MiB, 80GB"


def flag_names() -> dict[str, str]:
    """setting -> how the command line spells it (the default `names`)."""
    return {name: flag_name(name) for name in settings()}


def kv_dtype_for(spec: ModelSpec, name: str) -> str:
    """The KV format for this model: auto = its 16-bit dtype; per-token-head formats resolve
    by head dim; the DeepSeek MLA formats only for a 576-wide latent (else an input error)."""
    if name.lower() == "auto":
        return default_kv_dtype(spec)
    key = dtypes.kv_dtype(name)
    if key in kv_formats.PER_TOKEN_HEAD:
        try:
            return kv_formats.resolve_per_token_head(key, spec.head_dim)
        except KeyError:
            raise KvplanError(
                f"{name} is not modelled for head_dim {spec.head_dim}",
                hint=f"head dims: {', '.join(map(str, kv_formats.PER_TOKEN_HEAD_DIMS))}",
            ) from None
    fmt = kv_formats.KV_FORMATS.get(key)
    if fmt is not None and fmt.mla_latent is not None:
        latent = spec.mla.latent_dim if spec.mla is not None else None
        if latent != fmt.mla_latent:
            raise KvplanError(
                f"{name} is DeepSeek's {fmt.mla_latent}-wide MLA latent format; this model "
                + (f"caches a {latent}-wide latent" if latent else "has no MLA latent"),
                hint="use fp8 or nvfp4",
            )
    return key


def weight_dtype_for(name: str | None) -> str | None:
    return None if name is None or name.lower() == "auto" else dtypes.weight_dtype(name)


def _int(value: Any, label: str, s: Setting) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise KvplanError(f"{label} must be an integer, got {value!r}")
    if value < s.lo:
        raise KvplanError(f"{label} must be a positive integer, got {value}")
    if s.hi is not None and value > s.hi:
        raise KvplanError(f"{label} {value:,} is absurdly large (limit {s.hi:,})")
    return value


def _max_model_len(value: Any, label: str, s: Setting) -> int:
    """A positive length, or vLLM's auto-fit: 'auto' or -1 (as `vllm serve` takes it). The
    command line hands every value over as text, so digits are read as the number."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("auto", str(AUTO_MAX_MODEL_LEN)):
            return AUTO_MAX_MODEL_LEN
        if not text.isdigit():
            raise KvplanError(
                f"{label} must be a positive integer or auto (-1), got {value!r}",
                hint="e.g. 32768, or auto for the largest length that fits",
            )
        value = int(text)
    if value == AUTO_MAX_MODEL_LEN and not isinstance(value, bool):
        return AUTO_MAX_MODEL_LEN
    try:
        return _int(value, label, s)
    except KvplanError as exc:
        exc.hint = exc.hint or "or auto (-1) for the largest length that fits"
        raise


def _fraction(value: Any, label: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KvplanError(f"{label} must be a number in (0, 1], got {value!r}")
    if not math.isfinite(value) or not 0 < value <= 1:
        raise KvplanError(f"{label} must be in (0, 1], got {value}")
    return float(value)


def _size(value: Any, label: str, s: Setting) -> int:
    if not isinstance(value, str):
        raise KvplanError(f"{label} must be a size with a unit, got {value!r}", hint=SIZE_UNIT_HINT)
    text = value.strip()
    if text and (text[-1].isdigit() or text.endswith(".")):
        raise KvplanError(f"{label} {value!r} has no unit", hint=SIZE_UNIT_HINT)
    try:
        size = parse_size(text)
    except KvplanError as exc:
        raise KvplanError(f"{label}: {exc.message}", hint=exc.hint) from None
    if size < s.lo:
        raise KvplanError(f"{label} must be more than zero, got {value!r}")
    if s.hi is not None and size > s.hi:
        raise KvplanError(
            f"{label} {value!r} is absurdly large (limit {fmt_bytes(s.hi)} per GPU)",
            hint="sizes are per GPU, e.g. 40GiB",
        )
    return size


def _count(value: Any, label: str, s: Setting) -> int:
    """A parameter-style count: 13B, 13e9, 13000000000 (text or a number)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise KvplanError(f"{label} must be a count such as 13B, got {value!r}")
    count = parse_count(str(value))
    if s.hi is not None and count > s.hi:
        raise KvplanError(f"{label} {count:,} is absurdly large (limit {s.hi:,})")
    return count


def _flag(value: Any, label: str) -> bool:
    if not isinstance(value, bool):
        raise KvplanError(f"{label} is a switch (true or false), got {value!r}")
    return value


def _text(value: Any, label: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KvplanError(f"{label} must be a non-empty name, got {value!r}")
    return value


def parse_deployment(
    spec: ModelSpec,
    raw: Mapping[str, Any],
    *,
    gpu_file: str | None = None,
    names: Mapping[str, str] | None = None,
    weights_override: int | None = None,
) -> Deployment:
    """Parse the deployment settings a user gave (None or absent = default) into a core
    Deployment. Every value is checked against its declaration; no math here."""
    declared = settings()
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(declared), n=1)
        raise KvplanError(
            f"unknown deployment setting {unknown[0]!r}",
            hint=f"did you mean {close[0]!r}?" if close else None,
            setting=unknown[0],
        )
    spelled = names or flag_names()
    engine = engine_named(_text(raw.get("engine") or Deployment.engine.value, spelled["engine"]))
    values: dict[str, Any] = {"engine": engine}
    if engine is Engine.NONE and raw.get("engine_version") is not None:
        # plain arithmetic has no releases: a version would be silently ignored
        raise KvplanError(
            f"{spelled['engine_version']} names an engine release, but {spelled['engine']} is "
            "none (plain arithmetic, no release)",
            setting="engine_version",
        )
    for name, s in declared.items():
        value = raw.get(name)
        if name == "engine":
            continue
        label = spelled[name]
        if value is None:
            if s.required:
                raise KvplanError(f"{label} is required", setting=name)
            if s.kind is Kind.KV_DTYPE:  # "auto" is the model's own 16-bit dtype
                values[name] = parse_setting(name, lambda: kv_dtype_for(spec, "auto"))
            continue
        if s.engine is not None and s.engine is not engine:
            raise KvplanError(
                f"{label} is a {s.engine.value} setting, but {spelled['engine']} is {engine.value}",
                hint=f"leave it out, or serve with {spelled['engine']} {s.engine.value}",
                setting=name,
            )
        values[name] = parse_setting(name, _parser(s, value, label, spec, gpu_file))
    _within_gpu(values, spelled)
    d = Deployment(spec=spec, weights_override=weights_override, **values)
    parse_setting("engine_version", lambda: d.profile)  # a release outside every modelled line
    _prefix_caching(d, spelled)
    _hybrid_swa_flags(d, spelled)
    _vswa_release(d, spelled)
    if d.auto_max_model_len:
        _auto_fit_engine(d, spelled)
    return d


def _hybrid_swa_flags(d: Deployment, spelled: Mapping[str, str]) -> None:
    """SGLang's hybrid-SWA flags on a release that lacks them (kvplan.core.sglang_swa): the
    engine would reject the launch line, so kvplan names the setting instead."""
    if d.engine is not Engine.SGLANG:
        return
    given = [
        name
        for name, on in (
            ("swa_full_tokens_ratio", d.swa_full_tokens_ratio is not None),
            ("disable_hybrid_swa_memory", bool(d.disable_hybrid_swa_memory)),
        )
        if on
    ]
    if not given:
        return
    from kvplan.core.capacity import sglang_release
    from kvplan.core.sglang_swa import flags_refusal

    why = flags_refusal(sglang_release(d))
    if why is not None:
        raise KvplanError(
            f"{spelled[given[0]]} with {d.engine_label}: {why}",
            hint=f"leave it out, or pick a later release with {spelled['engine_version']}",
            setting=given[0],
        )


def _vswa_release(d: Deployment, spelled: Mapping[str, str]) -> None:
    """--vswa on a TensorRT-LLM release whose per-window split kvplan does not model
    (kvplan.core.trt_windows.share_rule_for): refused when the settings are read, in the
    words of the command line or the policy, not later while planning."""
    if not d.vswa:
        return
    from kvplan.core.trt_windows import share_rule_for

    try:
        share_rule_for(d.engine_version)
    except KvplanError as exc:
        raise KvplanError(
            f"{spelled['vswa']}: {exc.message}",
            hint=f"leave {spelled['vswa']} out for one pool (every layer over max_seq_len), "
            f"or give {spelled['engine_version']} 0.21 or later",
            setting="vswa",
        ) from None


def _prefix_caching(d: Deployment, spelled: Mapping[str, str]) -> None:
    """Prefix caching as asked, where the engine refuses it, lacks it, or runs it in a layout
    kvplan does not model (kvplan.core.prefix_cache.refusal): an error naming the setting."""
    why = refusal(d.engine, d.profile, d.engine_version, d.spec, d.enable_prefix_caching)
    if why is not None:
        label = spelled["enable_prefix_caching"]
        if label.startswith("--"):  # the command line's own pair
            said = label if d.enable_prefix_caching else f"--no-{label[2:]}"
        else:
            said = f"{label}: {str(d.enable_prefix_caching).lower()}"
        hint = (
            f"leave it out, or pick an engine: {spelled['engine']} vllm, sglang or trtllm"
            if d.engine is Engine.NONE
            else "leave prefix caching at the engine's default, or pick another release "
            f"with {spelled['engine_version']}"
        )
        raise KvplanError(
            f"{said} with {d.engine_label}: {why}", hint=hint, setting="enable_prefix_caching"
        )


def parse_design(
    raw: Mapping[str, Any] | DesignChoices | None,
    *,
    model_given: bool,
    names: Mapping[str, str] | None = None,
) -> DesignChoices:
    """Parse pick-g's design knobs (None or absent = not given) into a core DesignChoices:
    every value by its declared kind and bounds, then how the knobs go together (a design
    needs every geometry knob and no MODEL; design-only knobs need a design; MoE, sliding
    and MLA knobs need their partners). Every error names the knob (`setting`). (The
    declaration is imported here: only pick-g has design knobs.)"""
    from kvplan.core.design_choices import DesignChoices, knobs

    declared = knobs()
    if isinstance(raw, DesignChoices):
        raw = {name: getattr(raw, name) for name in declared}
    raw = raw or {}
    unknown = sorted(set(raw) - set(declared))
    if unknown:
        raise KvplanError(f"unknown design setting {unknown[0]!r}", setting=unknown[0])
    spelled = {name: flag_name(name) for name in declared} | dict(names or {})
    values: dict[str, Any] = {}
    for name, k in declared.items():
        value = raw.get(name)
        if value is not None:
            values[name] = parse_setting(name, _plain_parser(k, value, spelled[name]))
    choices = DesignChoices(**values)
    _design_structure(choices, model_given=model_given, spelled=spelled)
    return choices


def _design_structure(c: DesignChoices, *, model_given: bool, spelled: Mapping[str, str]) -> None:
    from kvplan.core.design_choices import Role, knobs

    geometry = [name for name, k in knobs().items() if k.role is Role.GEOMETRY]
    flags = [spelled[name] for name in geometry]
    given = c.given(Role.GEOMETRY)
    if given:
        if model_given:
            raise KvplanError(
                f"give either MODEL or geometry flags ({'/'.join(flags)}), not both",
                setting=given[0],
            )
        missing = [name for name in geometry if getattr(c, name) is None]
        if missing:
            raise KvplanError(
                f"designing from scratch needs {', '.join(spelled[m] for m in missing)}",
                setting=missing[0],
            )
    else:
        extra = c.given(Role.DESIGN)
        if extra:
            raise KvplanError(
                f"{spelled[extra[0]]} describes a design from flags; give "
                f"{', '.join(flags[:-1])} and {flags[-1]} instead of MODEL (a model's own "
                "config sets it)",
                setting=extra[0],
            )
    if (c.experts is None) != (c.experts_per_token is None):
        raise KvplanError(
            f"a MoE design needs both {spelled['experts']} and {spelled['experts_per_token']}",
            setting="experts" if c.experts is None else "experts_per_token",
        )
    if (
        c.experts is not None
        and c.experts_per_token is not None
        and c.experts_per_token > c.experts
    ):
        raise KvplanError(
            f"{spelled['experts_per_token']} {c.experts_per_token} exceeds "
            f"{spelled['experts']} {c.experts}",
            setting="experts_per_token",
        )
    if c.expert_intermediate is not None and c.experts is None:
        raise KvplanError(
            f"{spelled['expert_intermediate']} needs {spelled['experts']} and "
            f"{spelled['experts_per_token']}",
            setting="expert_intermediate",
        )
    if c.global_every is not None and c.window is None:
        raise KvplanError(
            f"{spelled['global_every']} needs {spelled['window']} (the sliding window in tokens)",
            setting="global_every",
        )
    if c.mla_rank is not None and c.window is not None:
        raise KvplanError(
            f"{spelled['mla_rank']} and {spelled['window']} cannot be combined in one design",
            setting="mla_rank",
        )


def _auto_fit_engine(d: Deployment, spelled: Mapping[str, str]) -> None:
    """`--max-model-len auto` (-1) is vLLM V1's auto-fit (v1/core/kv_cache_utils.py
    `_auto_fit_max_model_len`); the release lines that take it say so (`auto_fit`). The V0
    worker path sizes its profiling pass from max_model_len, and SGLang / TensorRT-LLM
    take a number."""
    if d.profile.auto_fit:
        return
    label = spelled["max_model_len"]
    if d.engine is not Engine.VLLM:
        message = f"{label} auto is vLLM's auto-fit (-1); {d.rules.label} takes a number"
    else:
        message = f"{label} auto is not known to {d.profile.name} (vLLM's auto-fit, -1)"
    raise KvplanError(
        message,
        hint="give a length, or leave it out for the model's max positions"
        + ("; or pick a newer release with --engine-version" if d.engine is Engine.VLLM else ""),
        setting="max_model_len",
    )


def _within_gpu(values: Mapping[str, Any], spelled: Mapping[str, str]) -> None:
    """Per-GPU sizes cannot exceed the GPU: `--kv-memory 1000TiB` on an 80 GB card would
    otherwise answer millions of sequences."""
    gpu = values.get("gpu")
    if gpu is None:
        return
    total = gpu.usable_memory_bytes  # what CUDA reports, the figure the budget starts from
    for name in ("kv_memory", "activation_reserve", "overhead"):
        size = values.get(name)
        if size is not None and size > total:
            raise KvplanError(
                f"{spelled[name]} {fmt_bytes(size)} is more than the whole GPU "
                f"({fmt_bytes(total)} on {gpu.name})",
                hint="sizes are per GPU",
                setting=name,
            )


def _parser(
    s: Setting, value: Any, label: str, spec: ModelSpec, gpu_file: str | None
) -> Callable[[], Any]:
    if s.kind is Kind.KV_DTYPE:
        return lambda: kv_dtype_for(spec, _text(value, label))
    if s.kind is Kind.GPU:
        return lambda: load_gpus(gpu_file).get(_text(value, label))
    return _plain_parser(s, value, label)


def _plain_parser(s: Setting, value: Any, label: str) -> Callable[[], Any]:
    """The parser of a kind that needs neither the model nor the GPU catalog."""
    parsers: dict[Kind, Callable[[], Any]] = {
        Kind.INT: lambda: _int(value, label, s),
        Kind.MAX_MODEL_LEN: lambda: _max_model_len(value, label, s),
        Kind.FRACTION: lambda: _fraction(value, label),
        Kind.SIZE: lambda: _size(value, label, s),
        Kind.ENGINE_VERSION: lambda: _text(value, label).strip(),
        Kind.ENTRY_POINT: lambda: _entry_point(value, label),
        Kind.WEIGHT_DTYPE: lambda: weight_dtype_for(_text(value, label)),
        Kind.MODEL: lambda: _draft_model(_text(value, label)),
        Kind.COUNT: lambda: _count(value, label, s),
        Kind.FLAG: lambda: _flag(value, label),
        Kind.SWITCH: lambda: _flag(value, label),
    }
    return parsers[s.kind]


def _draft_model(name: str) -> DraftModel:
    """A draft model named like MODEL (catalog, config.json path, Hub id), read by the same
    readers, so a config key kvplan does not understand is an error here too."""
    resolved = resolve_model(name.strip())
    exact = resolved.exact_weights
    return DraftModel(
        name=name.strip(),  # as the user named it: the launch line passes it to the engine
        spec=resolved.spec,
        exact_weight_bytes=int(exact.total_bytes) if exact is not None else None,
    )


def _entry_point(value: Any, label: str) -> str:
    text = _text(value, label).strip().lower()
    if text not in ENTRY_POINTS:
        raise KvplanError(
            f"{label} must be one of {', '.join(ENTRY_POINTS)}, got {value!r}",
        )
    return text


def parse_setting(name: str, parse: Callable[[], Any]) -> Any:
    """Run one parser; any input error it raises is tagged with the setting's name (the
    `setting` of a `--json` error), for every command that parses a setting."""
    try:
        return parse()
    except KvplanError as exc:
        if exc.setting is None:
            exc.setting = name
        raise


def exact_weights(resolved: ResolvedModel, weight_dtype: str | None) -> int | None:
    """Exact checkpoint bytes (Hub safetensors) when known and not overridden by a dtype."""
    exact = resolved.exact_weights
    if exact is None or weight_dtype not in (None, "auto"):
        return None
    return int(exact.total_bytes)
