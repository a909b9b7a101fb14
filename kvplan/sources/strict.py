"""A small strict validator for user files, and the JSON Schema of what it accepts.

Why not pydantic here: `kvplan check` reads a policy file on every run, and importing
pydantic's model machinery, then building the ~70 fields of the policy models, cost more
than the whole answer (~85 ms of CPU on the development container, issue 14). The policy
needs only a handful of value kinds, so they are declared with the nodes below; the same
declaration validates a file and writes its JSON Schema (configs/policy.schema.json).

Behaviour is pydantic v2's *strict mode* with `extra="forbid"`, which the policy models
used before, so messages, their order and the "(and N more problems)" counts are unchanged
(tests/test_policy_strict.py compares both on generated files):
  - errors are dicts like pydantic's (`type`, `loc`, `input`, `ctx`, `msg`), all of them
    collected: a model's fields in declaration order, then its unknown keys in file order;
  - no coercion: an integer is an `int` (never a bool or a float), a number an `int` or a
    `float` (stored as float; never a bool; finite), a string a `str`; a literal matches
    by equality (so `1.0` and `true` are the literal 1, as in pydantic);
  - string patterns follow the Rust regex engine pydantic uses: anchored to the whole text
    and `\\s` without the ASCII separators U+001C..U+001F (Python counts them as space);
  - the JSON Schema matches pydantic's generator (keys sorted except under `properties`,
    titles from field names, `anyOf` with null for optional fields).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

Loc = tuple[str | int, ...]
Errors = list[dict[str, Any]]
I64 = (-(1 << 63), (1 << 63) - 1)  # pydantic-core parses literal integers as i64


def _error(
    errors: Errors, kind: str, loc: Loc, value: Any, msg: str, ctx: dict[str, Any] | None = None
) -> None:
    err: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx is not None:
        err["ctx"] = ctx
    errors.append(err)


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Node:
    """One kind of value: `check` returns the validated value (appending to `errors` what
    is wrong), `schema` its JSON Schema."""

    tag = "node"  # how a union names this member in an error location

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        raise NotImplementedError

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class Int(Node):
    """An integer (never a bool or a float) with `gt` < value <= `le`."""

    def __init__(self, *, gt: int | None = None, le: int | None = None) -> None:
        self.gt, self.le = gt, le
        self.tag = "int" if gt is None and le is None else "constrained-int"

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not int:
            _error(errors, "int_type", loc, value, "Input should be a valid integer")
            return None
        if self.gt is not None and not value > self.gt:
            msg = f"Input should be greater than {self.gt}"
            _error(errors, "greater_than", loc, value, msg, {"gt": self.gt})
            return None
        if self.le is not None and not value <= self.le:
            msg = f"Input should be less than or equal to {self.le}"
            _error(errors, "less_than_equal", loc, value, msg, {"le": self.le})
            return None
        return value

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer"}
        if self.gt is not None:
            out["exclusiveMinimum"] = self.gt
        if self.le is not None:
            out["maximum"] = self.le
        return out


class Bool(Node):
    """true or false (strict: never 0 / 1 or a string, as pydantic's strict bool)."""

    tag = "bool"

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not bool:
            _error(errors, "bool_type", loc, value, "Input should be a valid boolean")
            return None
        return value

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "boolean"}


class Float(Node):
    """A finite number (an int is stored as float; never a bool) with `gt` < value <= `le`."""

    tag = "constrained-float"

    def __init__(self, *, gt: float | None = None, le: float | None = None) -> None:
        self.gt, self.le = gt, le

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        number: float | None = None
        if type(value) is float:
            number = value
        elif type(value) is int:
            try:
                number = float(value)
            except OverflowError:
                number = None
        if number is None:
            _error(errors, "float_type", loc, value, "Input should be a valid number")
            return None
        if not math.isfinite(number):
            _error(errors, "finite_number", loc, value, "Input should be a finite number")
            return None
        if self.gt is not None and not number > self.gt:
            msg = f"Input should be greater than {_bound(float(self.gt))}"
            _error(errors, "greater_than", loc, value, msg, {"gt": float(self.gt)})
            return None
        if self.le is not None and not number <= self.le:
            msg = f"Input should be less than or equal to {_bound(float(self.le))}"
            _error(errors, "less_than_equal", loc, value, msg, {"le": float(self.le)})
            return None
        return number

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "number"}
        if self.gt is not None:
            out["exclusiveMinimum"] = self.gt
        if self.le is not None:
            out["maximum"] = self.le
        return out


def _rust_pattern(pattern: str) -> re.Pattern[str]:
    r"""`pattern` as the Rust regex engine reads it: `\s` is Unicode White_Space, which
    leaves out U+001C..U+001F (Python's `\s` includes them)."""
    return re.compile(pattern.replace(r"\s", r"[^\S\x1c-\x1f]"))


class Str(Node):
    """A string (never bytes or a number) of min_length..max_length characters matching
    `pattern` (the whole text)."""

    tag = "str"

    def __init__(
        self,
        *,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        examples: Sequence[str] | None = None,
    ) -> None:
        self.min_length, self.max_length = min_length, max_length
        self.pattern = pattern
        self.regex: re.Pattern[str] | None = None  # compiled on first use
        self.examples = list(examples) if examples else None
        if min_length is not None or max_length is not None or pattern is not None:
            self.tag = "constrained-str"

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not str:
            _error(errors, "string_type", loc, value, "Input should be a valid string")
            return None
        n = self.min_length
        if n is not None and len(value) < n:
            msg = f"String should have at least {n} character{'s' if n != 1 else ''}"
            _error(errors, "string_too_short", loc, value, msg, {"min_length": n})
            return None
        n = self.max_length
        if n is not None and len(value) > n:
            msg = f"String should have at most {n} character{'s' if n != 1 else ''}"
            _error(errors, "string_too_long", loc, value, msg, {"max_length": n})
            return None
        if self.pattern is not None:
            self.regex = self.regex or _rust_pattern(self.pattern)
        if self.regex is not None and self.regex.fullmatch(value) is None:
            msg = f"String should match pattern '{self.pattern}'"
            _error(errors, "string_pattern_mismatch", loc, value, msg, {"pattern": self.pattern})
            return None
        return value

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "string"}
        if self.min_length is not None:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.examples is not None:
            out["examples"] = self.examples
        return out


class Literal(Node):
    """One of a few strings or integers, matched by equality (as pydantic: the integer 1
    is also matched by 1.0 and true; integers outside int64 are a parsing error)."""

    def __init__(self, *values: str | int) -> None:
        self.values = values
        self.strings = {v for v in values if isinstance(v, str)}
        self.ints = {v: v for v in values if isinstance(v, int)}
        texts = [repr(v) for v in values]
        self.expected = f"{', '.join(texts[:-1])} or {texts[-1]}" if len(texts) > 1 else texts[0]
        self.tag = f"literal[{','.join(texts)}]"

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if isinstance(value, str):
            if value in self.strings:
                return value
        elif self.ints and isinstance(value, int):
            if not I64[0] <= value <= I64[1]:
                msg = "Unable to parse input string as an integer, exceeded maximum size"
                _error(errors, "int_parsing_size", loc, value, msg)
                return None
            if value in self.ints:
                return self.ints[value]
        elif self.ints and type(value) is float and value.is_integer() and value in self.ints:
            return self.ints[int(value)]
        msg = f"Input should be {self.expected}"
        _error(errors, "literal_error", loc, value, msg, {"expected": self.expected})
        return None

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        kinds = {type(v) for v in self.values}
        out: dict[str, Any] = (
            {"const": self.values[0]} if len(self.values) == 1 else {"enum": list(self.values)}
        )
        if kinds == {str}:
            out["type"] = "string"
        elif kinds == {int}:
            out["type"] = "integer"
        return out


class Union(Node):
    """The first member that accepts the value; when none does, every member's errors,
    each under the member's tag (pydantic's smart-mode union, where at most one member
    can match)."""

    def __init__(self, *members: Node) -> None:
        self.members = members

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        failures: Errors = []
        for member in self.members:
            mine: Errors = []
            result = member.check(value, (*loc, member.tag), mine)
            if not mine:
                return result
            failures += mine
        errors += failures
        return None

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [m.schema(defs) for m in self.members]}


class List(Node):
    """A list (YAML sequence) of items, at least `min_length` of them."""

    tag = "list"

    def __init__(self, item: Node, *, min_length: int | None = None) -> None:
        self.item, self.min_length = item, min_length

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not list:
            _error(errors, "list_type", loc, value, "Input should be a valid list")
            return None
        out = [self.item.check(v, (*loc, i), errors) for i, v in enumerate(value)]
        n = self.min_length
        if n is not None and len(value) < n:
            msg = (
                f"List should have at least {n} item{'s' if n != 1 else ''} after "
                f"validation, not {len(value)}"
            )
            ctx = {"field_type": "List", "min_length": n, "actual_length": len(value)}
            _error(errors, "too_short", loc, value, msg, ctx)
        return out

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"items": self.item.schema(defs), "type": "array"}
        if self.min_length is not None:
            out["minItems"] = self.min_length
        return out


class Field:
    """One key of a model: its value node, whether it may be null or left out (then
    `default`), and what the schema says about it."""

    def __init__(
        self,
        node: Node,
        *,
        required: bool = False,
        nullable: bool | None = None,
        default: Any = None,
        description: str | None = None,
        examples: Sequence[str] | None = None,
    ) -> None:
        self.node = node
        self.required = required
        self.nullable = (not required) if nullable is None else nullable
        self.default = default
        self.description = description
        self.examples = list(examples) if examples else None

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if value is None and self.nullable:
            return None
        return self.node.check(value, loc, errors)

    def schema(self, name: str, defs: dict[str, Any]) -> dict[str, Any]:
        inner = self.node.schema(defs)
        if self.nullable:
            members = inner["anyOf"] if list(inner) == ["anyOf"] else [inner]
            out: dict[str, Any] = {"anyOf": [*members, {"type": "null"}]}
        else:
            out = inner
        if not self.required:
            out["default"] = self.default
        if self.description is not None:
            out["description"] = self.description
        if self.examples is not None:
            out["examples"] = self.examples
        if not isinstance(self.node, Model):  # pydantic gives a model reference no title
            out["title"] = name.replace("_", " ").title()
        return out


class Model(Node):
    """A mapping with these keys and no others (pydantic's extra="forbid"): the validated
    value is a dict of every field (defaults filled in)."""

    tag = "model"

    def __init__(
        self,
        name: str,
        fields: dict[str, Field],
        *,
        description: str | None = None,
        title: str | None = None,
    ) -> None:
        self.name = name
        self.fields = fields
        self.description = description
        self.title = title or name

    def check(self, value: Any, loc: Loc, errors: Errors) -> Any:
        if type(value) is not dict:
            msg = f"Input should be a valid dictionary or instance of {self.name}"
            _error(errors, "model_type", loc, value, msg, {"class_name": self.name})
            return None
        out: dict[str, Any] = {}
        for name, field in self.fields.items():
            if name in value:
                out[name] = field.check(value[name], (*loc, name), errors)
            elif field.required:
                _error(errors, "missing", (*loc, name), value, "Field required")
            else:
                out[name] = field.default
        for key, item in value.items():
            if key not in self.fields:
                msg = "Extra inputs are not permitted"
                _error(errors, "extra_forbidden", (*loc, key), item, msg)
        return out

    def validate(self, value: Any) -> tuple[dict[str, Any] | None, Errors]:
        """(validated dict or None, every error)."""
        errors: Errors = []
        out = self.check(value, (), errors)
        return (None if errors else out), errors

    def body(self, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"additionalProperties": False, "type": "object", "title": self.title}
        if self.description is not None:
            out["description"] = self.description
        out["properties"] = {name: f.schema(name, defs) for name, f in self.fields.items()}
        required = [name for name, f in self.fields.items() if f.required]
        if required:
            out["required"] = required
        return out

    def schema(self, defs: dict[str, Any]) -> dict[str, Any]:
        if self.name not in defs:
            defs[self.name] = {}  # placeholder first: a model may refer to itself
            defs[self.name] = self.body(defs)
        return {"$ref": f"#/$defs/{self.name}"}

    def json_schema(self) -> dict[str, Any]:
        """The document's JSON Schema, as pydantic's `model_json_schema()` writes it."""
        defs: dict[str, Any] = {}
        top = self.body(defs)
        if defs:
            top["$defs"] = defs
        schema: dict[str, Any] = _sorted(top)
        return schema


def _sorted(value: Any, parent: str | None = None) -> Any:
    """Keys in alphabetical order at every level except the children of `properties` and
    `default` (pydantic's GenerateJsonSchema.sort)."""
    if isinstance(value, dict):
        keys = list(value) if parent in ("properties", "default") else sorted(value)
        return {k: _sorted(value[k], k) for k in keys}
    if isinstance(value, list):
        return [_sorted(v, parent) for v in value]
    return value
