"""The inputs of `kvplan check`: a policy file of serving targets, and model configs to lint.

A policy (default `kvplan.yaml`) is YAML checked strictly on load, so a CI failure always
points at a file, a line and a key:
  - the file is capped at 1 MB and read with a SafeLoader that refuses aliases (no
    billion-laughs expansion), deep nesting, tags and duplicate keys;
  - every key keeps its line (the YAML is composed to nodes, from libyaml's events when
    the document is plain, then built by hand);
  - the structure is validated strictly (unknown keys, wrong types, negative numbers are
    errors) by the declaration below, with kvplan.sources.strict (pydantic's strict mode
    without importing pydantic: it cost more than the whole check); the same declaration
    writes the JSON Schema (`kvplan check --schema`, configs/policy.schema.json). The
    deployment keys are generated from core.deployment.Deployment, and their values are
    then parsed by `kvplan.sources.deployment.parse_deployment`, the only validator of
    settings.
Each target becomes a core `Deployment` through `parse_deployment`,
the code path behind `kvplan fit`, so a policy target means what the same flags mean.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any, NoReturn

import yaml

from kvplan.core.deployment import (
    AUTO_MAX_MODEL_LEN,
    MAX_BATCH,
    MAX_CTX,
    Kind,
    Setting,
    setting_defaults,
    settings,
)
from kvplan.core.engines import Engine
from kvplan.core.frozen import dataclass
from kvplan.core.geometry import AttentionLayout
from kvplan.core.policy import Headroom, KvHeadsRule, Requirements, Target
from kvplan.errors import KvplanError
from kvplan.sources.deployment import exact_weights, parse_deployment
from kvplan.sources.gpus import load_gpus
from kvplan.sources.lint import ConfigLint, lint_config
from kvplan.sources.parse import parse_config_dict
from kvplan.sources.resolve import (
    CONFIG_FILES,
    expand_user,
    read_config_bytes,
    resolve_model,
    safe_glob,
)
from kvplan.sources.strict import Bool, Field, Float, Int, List, Literal, Model, Str, Union
from kvplan.sources.validate import load_json, printable, screen_config, yaml_exponent_hint
from kvplan.units import parse_size

DEFAULT_POLICY = "kvplan.yaml"
MAX_POLICY_BYTES = 1_000_000
MAX_DEPTH = 16  # nested mappings/lists; a policy needs 4
MAX_TARGETS = 1000  # after glob expansion
GLOB_CHARS = frozenset("*?[")

SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?\s*([kKmMgGtT][iI]?[bB]|[bB])$"
HEADROOM_PATTERN = r"^[0-9]+(\.[0-9]+)?\s*(%|[kKmMgGtT][iI]?[bB]|[bB])$"
NAME_PATTERN = r"^[^\x00-\x1f]+$"


# ---- the file's structure (it is the schema) --------------------------------------------
def _size_text() -> Str:
    return Str(pattern=SIZE_PATTERN, examples=["4GiB", "512MiB"])


KV_HEADS = Model(
    "KvHeadsPolicy",
    {
        "min": Field(Int(gt=0, le=1 << 20), description="G must be at least this."),
        "max": Field(Int(gt=0, le=1 << 20), description="G must be at most this."),
        "layout": Field(
            List(Literal("mha", "gqa", "mqa", "mla", "hybrid"), min_length=1),
            description="Allowed attention layouts.",
        ),
    },
    description="Constraints on the model's KV heads G (MLA counts as G = 1: one shared latent).",
)

REQUIREMENTS = Model(
    "RequirementsPolicy",
    {
        "min_headroom": Field(
            Str(pattern=HEADROOM_PATTERN),
            description="KV budget left after batch x ctx: a size (4GiB) or a percent of the "
            "KV budget (10%). Needs ctx and batch.",
            examples=["4GiB", "10%"],
        ),
        "min_batch": Field(
            Int(gt=0, le=MAX_BATCH),
            description="The largest batch at ctx must be at least this. Needs ctx.",
        ),
        "min_ctx": Field(
            Int(gt=0, le=MAX_CTX),
            description="The largest context at batch must be at least this. Needs batch.",
        ),
        "max_decode_ms": Field(
            Float(gt=0), description="Decode step (ms) at batch x ctx must be at most this."
        ),
        "min_tokens_per_s": Field(
            Float(gt=0),
            description="Aggregate decode tokens/s over the batch must be at least this.",
        ),
        "min_tokens_per_s_per_seq": Field(
            Float(gt=0), description="Decode tokens/s of each sequence must be at least this."
        ),
        "kv_heads": Field(KV_HEADS),
    },
    description="What must hold at the target's operating point (ctx, batch).",
)


def _deployment_field(setting: Setting, default: Any) -> Field:
    """One deployment key, from its declaration in core.deployment (bounds, help)."""
    described = f"{setting.help} [default: {setting.default_text or default}]"
    if setting.kind is Kind.INT:
        return Field(Int(gt=setting.lo - 1, le=setting.hi), description=described)
    if setting.kind is Kind.MAX_MODEL_LEN:
        length = Int(gt=setting.lo - 1, le=setting.hi)
        return Field(Union(length, Literal("auto", AUTO_MAX_MODEL_LEN)), description=described)
    if setting.kind is Kind.FRACTION:
        return Field(Float(gt=0, le=1), description=described)
    if setting.kind is Kind.SIZE:
        return Field(_size_text(), description=described)
    if setting.kind is Kind.ENGINE:
        return Field(Literal(*(e.value for e in Engine)), description=described)
    if setting.kind is Kind.ENTRY_POINT:
        return Field(Literal("serve", "llm"), description=described)
    if setting.kind in (Kind.SWITCH, Kind.FLAG):  # true / false (a flag's default: off)
        return Field(Bool(), description=described)
    return Field(Str(min_length=1), description=setting.help)


def _settings_fields() -> dict[str, Field]:
    """The keys a target and `defaults` share: one per field of core.deployment.Deployment
    (same name, bounds and help as the flag), then the model and the operating point."""
    fields = {
        name: _deployment_field(setting, default)
        for (name, setting), default in zip(
            settings().items(), setting_defaults().values(), strict=True
        )
    }
    fields["model"] = Field(
        Str(min_length=1),
        description="Catalog name, Hugging Face repo id, path to config.json/params.json, "
        "or a glob of config files (relative to this file).",
    )
    fields["revision"] = Field(Str(min_length=1), description="Hub revision.")
    fields["ctx"] = Field(Int(gt=0, le=MAX_CTX), description="Tokens per sequence.")
    fields["batch"] = Field(Int(gt=0, le=MAX_BATCH), description="Concurrent sequences.")
    fields["requirements"] = Field(REQUIREMENTS)
    return fields


DEFAULTS = Model(
    "DefaultsPolicy",
    _settings_fields(),
    description="Settings every target starts from (a target's own keys win; requirements merge).",
)

_target_fields = _settings_fields()
_target_fields["gpu"] = Field(
    Str(min_length=1), required=True, description="GPU name (`kvplan gpus`)."
)
_target_fields["model"] = Field(
    Str(min_length=1),
    required=True,
    description="Catalog name, Hugging Face repo id, path to config.json/params.json, or a "
    "glob of config files (relative to this file).",
)
_target_fields["name"] = Field(
    Str(min_length=1, max_length=200, pattern=NAME_PATTERN),
    required=True,
    description="Unique target name.",
)
TARGET = Model("TargetPolicy", _target_fields)

POLICY = Model(
    "PolicyFile",
    {
        "version": Field(Literal(1), nullable=False, default=1),
        "gpu_file": Field(
            Str(min_length=1), description="YAML file of extra GPUs (relative to this file)."
        ),
        "defaults": Field(DEFAULTS),
        "targets": Field(List(TARGET, min_length=1), required=True),
    },
    description="kvplan check policy: serving targets and what each must achieve.",
    title="kvplan policy",
)


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file (shipped as configs/policy.schema.json)."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **POLICY.json_schema()}


def policy_schema_text() -> str:
    return json.dumps(policy_schema(), indent=2) + "\n"


# ---- YAML with line numbers ------------------------------------------------------------
Loc = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and deep nesting while composing."""

    def __init__(self, stream: str, *, origin: str) -> None:
        super().__init__(stream)
        self.origin = origin
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise KvplanError(
                f"{self.origin}:{event.start_mark.line + 1}: YAML aliases "
                f"(*{event.anchor}) are not allowed in a policy",
                hint="repeat the value, or put shared settings under defaults:",
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise KvplanError(
                    f"{self.origin}:{mark.line + 1}: YAML nested deeper than {MAX_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def read_yaml(
    path: Path, *, origin: str, max_bytes: int = MAX_POLICY_BYTES
) -> tuple[Any, dict[Loc, int]]:
    """Load YAML safely; returns (data, line of every key and list item, 1-based)."""
    try:
        if not path.is_file():
            raise KvplanError(
                f"{origin}: no such file" if not path.exists() else f"{origin}: not a file"
            )
        size = path.stat().st_size
        if size > max_bytes:
            raise KvplanError(
                f"{origin}: file is {size:,} bytes, larger than the "
                f"{max_bytes:,}-byte limit for a policy"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise KvplanError(f"{origin}: cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KvplanError(f"{origin}: not a UTF-8 text file") from None
    return _load_text(text, origin=origin)


def _load_text(text: str, *, origin: str, fast: bool = True) -> tuple[Any, dict[Loc, int]]:
    """(data, lines) of a policy's text. `fast`: parse with libyaml when the document is
    plain (see `_compose_fast`); anything else, and every error, goes through `_Loader`."""
    lines: dict[Loc, int] = {}
    if fast and yaml.__with_libyaml__:
        try:
            cloader, node = _compose_fast(text)
        except _Unusual:
            pass
        else:
            try:
                if node is None:
                    return None, lines
                lines[()] = node.start_mark.line + 1
                return _build(cloader, node, (), lines, origin), lines
            finally:
                cloader.dispose()
    try:  # the reader refuses control characters as it starts
        loader = _Loader(text, origin=origin)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        problem = str(exc).splitlines()[0]
        raise KvplanError(f"{origin}:{line}: invalid YAML: {problem}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        lines[()] = node.start_mark.line + 1
        return _build(loader, node, (), lines, origin), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "cannot parse"
        raise KvplanError(f"{origin}{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise KvplanError(f"{origin}: invalid YAML: {str(exc).splitlines()[0]}") from None
    finally:
        loader.dispose()


# Where libyaml and the Python scanner part ways (found by tests/test_policy_strict.py):
# tabs (libyaml takes some the Python scanner refuses), a byte-order mark not at the
# start, the line breaks YAML 1.1 adds to \n and \r (NEL, LS, PS), and a block-scalar
# header with a comment but no space before it ("|#": libyaml takes it, the Python scanner
# and the YAML spec want whitespace before the '#').
_EXOTIC = re.compile("[\t\ufeff\x85\u2028\u2029?]|[|>][-+0-9]*#")


class _Unusual(Exception):
    """The fast path met what only `_Loader` handles the way users see it: an anchor or
    alias, a tag, a directive, nesting deeper than MAX_DEPTH, a character the reader
    refuses, a syntax error (libyaml words them differently)."""


def _compose_fast(text: str) -> tuple[Any, yaml.Node | None]:
    """(loader, root node) composed from libyaml's events (yaml.CSafeLoader).

    The pure-Python scanner and parser behind `_Loader` took ~4 ms of a `kvplan check` on
    the 80-line example; libyaml's take 0.1 ms. Only plain documents are composed here
    (no anchors, aliases, tags or directives, at most MAX_DEPTH levels): the nodes are
    those `_Loader` composes (same tags from the same resolver, same marks, plain style as
    None), and tests/test_policy_strict.py compares the two on generated documents.
    Anything else raises `_Unusual`, and the caller reads the text again with `_Loader`,
    so what is refused, and every message, stays `_Loader`'s."""
    if _EXOTIC.search(text) or yaml.reader.Reader.NON_PRINTABLE.search(text):
        raise _Unusual
    loader: Any = yaml.CSafeLoader(text)
    try:
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return loader, None
        start = loader.get_event()
        if start.version is not None or start.tags is not None:
            raise _Unusual
        node = _fast_node(loader, 1)
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise _Unusual  # a second document: _Loader says so
        return loader, node
    except (yaml.YAMLError, _Unusual):
        loader.dispose()
        raise _Unusual from None


def _fast_node(loader: Any, depth: int) -> yaml.Node:
    event: Any = loader.get_event()
    kind = type(event)
    if depth > MAX_DEPTH or kind is yaml.AliasEvent:
        raise _Unusual
    if event.anchor is not None or event.tag is not None:
        raise _Unusual
    if kind is yaml.ScalarEvent:
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        return yaml.ScalarNode(
            tag, event.value, event.start_mark, event.end_mark, style=event.style or None
        )
    if kind is yaml.SequenceStartEvent:
        tag = loader.resolve(yaml.SequenceNode, None, event.implicit)
        seq = yaml.SequenceNode(tag, [], event.start_mark, None, flow_style=event.flow_style)
        while not loader.check_event(yaml.SequenceEndEvent):
            seq.value.append(_fast_node(loader, depth + 1))
        seq.end_mark = loader.get_event().end_mark
        return seq
    if kind is yaml.MappingStartEvent:
        tag = loader.resolve(yaml.MappingNode, None, event.implicit)
        mapping = yaml.MappingNode(tag, [], event.start_mark, None, flow_style=event.flow_style)
        while not loader.check_event(yaml.MappingEndEvent):
            key = _fast_node(loader, depth + 1)
            mapping.value.append((key, _fast_node(loader, depth + 1)))
        mapping.end_mark = loader.get_event().end_mark
        return mapping
    raise _Unusual


def _build(loader: _Loader, node: yaml.Node, loc: Loc, lines: dict[Loc, int], origin: str) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise KvplanError(f"{origin}:{line}: YAML tag {node.tag} is not allowed")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            key = (
                loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            )
            if not isinstance(key, str):
                raise KvplanError(
                    f"{origin}:{key_line}: keys must be strings, got "
                    f"{_type_name(key) if key is not None else 'a ' + key_node.id}"
                )
            key_loc = (*loc, key)
            if key in out:
                raise KvplanError(
                    f"{origin}:{key_line}: duplicate key {key!r} (first at line {lines[key_loc]})"
                )
            lines[key_loc] = key_line
            out[key] = _build(loader, value_node, key_loc, lines, origin)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise KvplanError(f"{origin}:{line}: YAML tag {node.tag} is not allowed")
        items = []
        for i, item in enumerate(node.value):
            item_loc = (*loc, i)
            lines[item_loc] = item.start_mark.line + 1
            items.append(_build(loader, item, item_loc, lines, origin))
        return items
    try:
        return loader.construct_object(node)
    except yaml.constructor.ConstructorError:
        raise KvplanError(f"{origin}:{line}: YAML tag {node.tag} is not allowed") from None


# ---- validation errors -> file:line: key: message --------------------------------------
class _Where:
    """Turns a location in the policy into 'file:line: target 'x': key' text."""

    def __init__(self, origin: str, raw: Any, lines: dict[Loc, int]) -> None:
        self.origin = origin
        self.raw = raw
        self.lines = lines

    def line(self, loc: Loc) -> int:
        loc = tuple(loc)
        while loc not in self.lines and loc:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def context(self, loc: Loc) -> tuple[str, Loc]:
        """('target 'x'', rest of the key path) for a location."""
        if len(loc) >= 2 and loc[0] == "targets" and isinstance(loc[1], int):
            name = None
            targets = self.raw.get("targets") if isinstance(self.raw, dict) else None
            if (
                isinstance(targets, list)
                and loc[1] < len(targets)
                and isinstance(targets[loc[1]], dict)
            ):
                name = targets[loc[1]].get("name")
            label = f"target {name!r}" if isinstance(name, str) else f"targets[{loc[1]}]"
            return label, loc[2:]
        if loc and loc[0] == "defaults":
            return "defaults", loc[1:]
        return "", loc

    def fail(
        self, loc: Loc, message: str, *, key_loc: Loc | None = None, hint: str | None = None
    ) -> NoReturn:
        """Raise 'file:line: context: key: message' for the key at `loc`."""
        line = self.line(key_loc if key_loc is not None else loc)
        label, rest = self.context(loc)
        path = _dotted(rest)
        parts = [p for p in (label, path) if p]
        raise KvplanError(f"{self.origin}:{line}: {': '.join([*parts, message])}", hint=hint)


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _allowed_keys(loc: Loc) -> list[str]:
    """The keys a mapping at `loc` accepts (for 'did you mean')."""
    model = POLICY
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.fields.get(str(part))
        if field is None:
            return []
        inner = field.node.item if isinstance(field.node, List) else field.node
        if not isinstance(inner, Model):
            return []
        model = inner
    return list(model.fields)


def _message(err: Any) -> tuple[Loc, str]:
    """(location of the bad key, message) for one validation error (pydantic's types)."""
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    value = err.get("input")
    ctx = err.get("ctx") or {}
    got = f", got {value!r}" if not isinstance(value, dict | list) else f", got {_type_name(value)}"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        close = difflib.get_close_matches(key, _allowed_keys(loc[:-1]), n=1, cutoff=0.6)
        guess = f" (did you mean {close[0]!r}?)" if close else ""
        return loc, f"unknown key {key!r}{guess}"
    if kind == "missing":
        return loc, f"missing required key {loc[-1]!r}"
    simple = {
        "int_type": "must be an integer",
        "int_from_float": "must be an integer",
        "float_type": "must be a number",
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "list_type": "must be a list",
        "model_type": "must be a mapping",
        "dict_type": "must be a mapping",
        "model_attributes_type": "must be a mapping",
        "finite_number": "must be a finite number",
    }
    exponent = yaml_exponent_hint(value) if kind == "float_type" else None
    if exponent:
        return loc, f"{simple[kind]}{got} ({exponent})"
    if kind in simple:
        return loc, simple[kind] + (
            f", got {_type_name(value)}"
            if kind.endswith(("model_type", "dict_type", "list_type", "attributes_type"))
            else got
        )
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {
            "greater_than": "greater than",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "less_than_equal": "at most",
        }[kind]
        bound = next(iter(ctx.values()), "?")
        if isinstance(bound, float):
            bound = f"{bound:g}"
        return loc, f"must be {op} {bound}{got}"
    if kind == "literal_error":
        return loc, f"must be one of {ctx.get('expected', '?')}{got}"
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern")
        if pattern == SIZE_PATTERN:
            return loc, f"must be a size such as 4GiB or 512MiB{got}"
        if pattern == HEADROOM_PATTERN:
            return loc, f"must be a size such as 4GiB or a percent such as 10%{got}"
        return loc, f"must not contain control characters{got}"
    if kind in ("string_too_short", "too_short"):
        return loc, f"must not be empty{got}"
    return loc, f"{err['msg']}{got}"


# ---- the policy ------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedPolicy:
    path: str  # as given (what annotations and messages show)
    targets: tuple[Target, ...]


def load_policy(path_text: str, *, only_configs: Collection[Path] | None = None) -> LoadedPolicy:
    """Read, validate and resolve a policy file into core Targets (KvplanError on bad input).

    `only_configs`: keep only the targets whose model is one of these local config files
    (a path or glob in the policy, relative to its folder, that matches one): what the
    pre-commit hook re-checks when configs change. The whole file is still validated."""
    path = expand_user(path_text)
    raw, lines = read_yaml(path, origin=path_text)
    if raw is None:
        raise KvplanError(
            f"{path_text}: the policy file is empty",
            hint="see `kvplan check --schema` or configs/examples/kvplan.yaml",
        )
    if not isinstance(raw, dict):
        raise KvplanError(
            f"{path_text}:{lines.get((), 1)}: a policy must be a mapping with a "
            f"'targets' list, got {_type_name(raw)}"
        )
    merged, lines = _merge_defaults(raw, lines)
    where = _Where(path_text, merged, lines)
    parsed, errors = POLICY.validate(merged)
    if parsed is None:
        # An unknown key first: it is usually the misspelling of a missing one.
        errors = sorted(errors, key=lambda e: e["type"] != "extra_forbidden")
        loc, message = _message(errors[0])
        more = len(errors) - 1
        if more:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        if errors[0]["type"] in ("extra_forbidden", "missing"):  # the key is in the message
            where.fail(loc[:-1], message, key_loc=loc)
        where.fail(loc, message)
    base = path.parent
    gpu_file = str(base / parsed["gpu_file"]) if parsed["gpu_file"] else None
    try:
        gpus = load_gpus(gpu_file)
    except KvplanError as exc:
        where.fail(("gpu_file",), exc.message, hint=exc.hint)
    seen: dict[str, int] = {}
    targets: list[Target] = []
    for i, target in enumerate(parsed["targets"]):
        loc = ("targets", i)
        name = target["name"]
        if name in seen:
            where.fail(
                loc,
                f"duplicate target name {name!r} (first at line {seen[name]})",
                key_loc=(*loc, "name"),
            )
        seen[name] = where.line((*loc, "name"))
        requirements = _requirements(target, loc, where)
        try:  # before the model: resolving one may touch the network
            gpus.get(target["gpu"])
        except KvplanError as exc:
            where.fail((*loc, "gpu"), exc.message, hint=exc.hint)
        if only_configs is not None:
            paths = _model_paths(target["model"], base) or []
            wanted = {p.resolve() for p in only_configs}
            if not any(_config_file(p) in wanted for p in paths):
                continue
        targets += _resolve(
            target, loc, where, base, gpu_file, requirements, only_configs=only_configs
        )
        if len(targets) > MAX_TARGETS:
            where.fail(loc, f"more than {MAX_TARGETS} targets after expanding model globs")
    return LoadedPolicy(path=path_text, targets=tuple(targets))


def _merge_defaults(
    raw: dict[str, Any], lines: dict[Loc, int]
) -> tuple[dict[str, Any], dict[Loc, int]]:
    """Targets start from `defaults` (their own keys win; requirements merge key by key).
    Keys taken from defaults keep the defaults' lines."""
    defaults = raw.get("defaults")
    targets = raw.get("targets")
    if not isinstance(defaults, dict) or not isinstance(targets, list):
        return raw, lines
    if DEFAULTS.validate(defaults)[1]:
        return raw, lines  # validating the whole file reports it at defaults:
    lines = dict(lines)
    out = []
    for i, target in enumerate(targets):
        if not isinstance(target, dict):
            out.append(target)
            continue
        merged = dict(target)
        for key, value in defaults.items():
            if key == "requirements" and isinstance(value, dict):
                own = target.get("requirements")
                if own is None or isinstance(own, dict):
                    merged["requirements"] = {**value, **(own or {})}
                    for sub in value:
                        if not isinstance(own, dict) or sub not in own:
                            _copy_lines(lines, ("defaults", key, sub), ("targets", i, key, sub))
                    if own is None:
                        lines[("targets", i, key)] = lines[("defaults", key)]
                continue
            if key not in target:
                merged[key] = value
                _copy_lines(lines, ("defaults", key), ("targets", i, key))
        out.append(merged)
    return {**raw, "targets": out}, lines


def _copy_lines(lines: dict[Loc, int], src: Loc, dst: Loc) -> None:
    for loc, line in list(lines.items()):
        if loc[: len(src)] == src:
            lines[dst + loc[len(src) :]] = line


def _requirements(t: dict[str, Any], loc: Loc, where: _Where) -> Requirements:
    """A validated target's requirements, checked against its operating point."""
    r = t["requirements"] or dict.fromkeys(REQUIREMENTS.fields)
    req: Loc = (*loc, "requirements")
    needs = {
        "min_batch": ("ctx",),
        "min_ctx": ("batch",),
        "min_headroom": ("ctx", "batch"),
        "max_decode_ms": ("ctx", "batch"),
        "min_tokens_per_s": ("ctx", "batch"),
        "min_tokens_per_s_per_seq": ("ctx", "batch"),
    }
    for key, required in needs.items():
        missing = [k for k in required if t[k] is None]
        if r[key] is not None and missing:
            where.fail(
                (*req, key),
                f"needs {' and '.join(required)} on the target (the "
                "operating point it is measured at)",
            )
    kv = None
    if r["kv_heads"] is not None:
        k = r["kv_heads"]
        low, high = k["min"], k["max"]
        if low is not None and high is not None and low > high:
            where.fail((*req, "kv_heads", "min"), f"min ({low}) exceeds max ({high})")
        kv = KvHeadsRule(
            min=low, max=high, layouts=tuple(AttentionLayout(x) for x in k["layout"] or ())
        )
    headroom = None
    if r["min_headroom"] is not None:
        text = r["min_headroom"].strip()
        if text.endswith("%"):
            percent = float(text[:-1])
            if percent > 100:
                where.fail((*req, "min_headroom"), f"must be at most 100%, got {text!r}")
            headroom = Headroom(text=text, percent=percent)
        else:
            headroom = Headroom(text=text, bytes=parse_size(text))
    has_rules = any(value is not None for value in r.values())
    if not has_rules and (t["ctx"] is None or t["batch"] is None):
        where.fail(
            loc,
            "checks nothing: give ctx and batch (does the workload fit) or requirements",
            key_loc=(*loc, "name"),
        )
    return Requirements(
        min_headroom=headroom,
        min_batch=r["min_batch"],
        min_ctx=r["min_ctx"],
        max_decode_ms=r["max_decode_ms"],
        min_tokens_per_s=r["min_tokens_per_s"],
        min_tokens_per_s_per_seq=r["min_tokens_per_s_per_seq"],
        kv_heads=kv,
    )


def _model_paths(model: str, base: Path) -> list[Path] | None:
    """Local files for a model glob or path (relative to the policy's folder); None when the
    name is not local (a catalog name or Hub id)."""
    if GLOB_CHARS & set(model):
        pattern = expand_user(model)
        full = pattern if pattern.is_absolute() else base / pattern
        return safe_glob(str(full))
    candidate = expand_user(model)
    if not candidate.is_absolute():
        candidate = base / candidate
    return [candidate] if candidate.exists() else None


def _resolve(
    t: dict[str, Any],
    loc: Loc,
    where: _Where,
    base: Path,
    gpu_file: str | None,
    requirements: Requirements,
    *,
    only_configs: Collection[Path] | None = None,
) -> list[Target]:
    model = t["model"]
    paths = _model_paths(model, base)
    if paths is not None and only_configs is not None:
        wanted = {p.resolve() for p in only_configs}
        paths = [p for p in paths if _config_file(p) in wanted]
    if paths == []:
        where.fail(
            (*loc, "model"), f"{model!r} matches no files (relative to {base.as_posix() or '.'})"
        )
    names = [model] if paths is None else [str(p) for p in paths]
    glob_names = paths is not None and bool(GLOB_CHARS & set(model))
    target_lines = {
        _dotted(k[2:]): v for k, v in where.lines.items() if k[:2] == loc and len(k) > 2
    }
    chosen = {key: t[key] for key in settings()}
    out = []
    for name in names:
        try:
            resolved = resolve_model(name, revision=t["revision"])
        except KvplanError as exc:
            where.fail((*loc, "model"), str(exc))
        try:
            deployment = parse_deployment(
                resolved.spec,
                chosen,
                gpu_file=gpu_file,
                names={key: key for key in settings()},
                weights_override=exact_weights(resolved, chosen["weight_dtype"]),
            )
        except KvplanError as exc:
            key = exc.setting or "gpu"
            if exc.message.startswith(key):  # it names the key already
                where.fail(loc, exc.message, key_loc=(*loc, key), hint=exc.hint)
            where.fail((*loc, key), exc.message, hint=exc.hint)
        label = t["name"]
        if glob_names:
            label = f"{label} [{_relative(Path(name), base)}]"
        out.append(
            Target(
                name=label,
                model=resolved.spec.name,
                deployment=deployment,
                ctx=t["ctx"],
                batch=t["batch"],
                requirements=requirements,
                line=where.line(loc),
                lines=target_lines,
            )
        )
    return out


def _config_file(path: Path) -> Path:
    """A model path as a config file: a folder means the config.json / params.json in it."""
    if path.is_dir():
        for name in CONFIG_FILES:
            if (path / name).is_file():
                return (path / name).resolve()
    return path.resolve()


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


# ---- model configs to lint -------------------------------------------------------------
def is_policy_path(name: str) -> bool:
    return name.lower().endswith((".yaml", ".yml"))


def expand_config_paths(args: list[str]) -> list[Path]:
    """PATHS as given: files, folders holding config.json/params.json, or quoted globs."""
    out: list[Path] = []
    for arg in args:
        if GLOB_CHARS & set(arg) and not Path(arg).exists():
            hits = safe_glob(arg)
            if not hits:
                raise KvplanError(f"{arg}: no files match")
            out += hits
            continue
        path = expand_user(arg)
        if path.is_dir():
            inside = [path / n for n in CONFIG_FILES if (path / n).is_file()]
            if not inside:
                raise KvplanError(f"{arg}: folder has neither config.json nor params.json")
            out += inside
        elif path.exists():
            out.append(path)
        else:
            raise KvplanError(f"{arg}: no such file or folder")
    return list(dict.fromkeys(out))


def lint_config_file(path: Path) -> ConfigLint:
    """Lint one config file: every finding, then the real parser; lines from the JSON text."""
    raw = read_config_raw(path)
    origin = str(path)
    findings = lint_config(
        raw, origin=origin, parse=lambda cfg: parse_config_dict(cfg, name=path.stem, origin=origin)
    )
    text = path.read_text(encoding="utf-8", errors="replace")
    located = [
        f.model_copy(update={"line": _json_key_line(text, f.key)}) if f.key else f for f in findings
    ]
    return ConfigLint(file=origin, findings=tuple(located))


def _json_key_line(text: str, key: str) -> int | None:
    """The line of the first `"key":` in a JSON text (1-based), if any."""
    name = key.rpartition(".")[2]
    match = re.search(rf'"{re.escape(name)}"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def read_config_raw(path: Path) -> dict[str, Any]:
    """A config file as a dict; unreadable files (not JSON, not an object) are input errors."""
    try:
        data = read_config_bytes(path)
    except OSError as exc:
        raise KvplanError(f"{printable(str(path))}: cannot read ({exc.strerror})") from None
    raw = load_json(data, origin=printable(str(path)))
    if not isinstance(raw, dict):
        raise KvplanError(f"{path}: a model config must be a JSON object, got {_type_name(raw)}")
    screen_config(raw, origin=printable(str(path)), hazards_only=True)
    return raw


__all__ = [
    "DEFAULT_POLICY",
    "LoadedPolicy",
    "expand_config_paths",
    "is_policy_path",
    "lint_config_file",
    "load_policy",
    "policy_schema",
    "policy_schema_text",
    "read_config_raw",
]


# ---- a stored result, for `kvplan check --baseline` -------------------------------------
def load_baseline(path_text: str) -> dict[tuple[str, str, str], tuple[str, Any, str]]:
    """Read a `kvplan check --format json` document: (policy file, target, requirement) ->
    (unit, measured, status). Anything else is an input error naming the file."""
    path = Path(path_text).expanduser()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KvplanError(f"{path_text}: cannot read baseline ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KvplanError(f"{path_text}: baseline is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("command") != "check" or "policies" not in doc:
        raise KvplanError(
            f"{path_text}: not a `kvplan check --format json` result",
            hint="make one with: kvplan check --format json > main.json",
        )
    out: dict[tuple[str, str, str], tuple[str, Any, str]] = {}
    try:
        for policy in doc["policies"]:
            for t in policy["targets"]:
                for row in t["results"]:
                    key = (str(policy["file"]), str(t["target"]), str(row["requirement"]))
                    out[key] = (str(row["unit"]), row.get("measured"), str(row["status"]))
    except (KeyError, TypeError) as exc:
        raise KvplanError(f"{path_text}: baseline is missing field {exc}") from None
    return out
