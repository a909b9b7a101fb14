"""`Frozen`: the core's light, immutable value classes (no pydantic on the answer path).

Why not pydantic BaseModel: defining one model class pulls in ~30 pydantic modules, and
each class's first use builds a validator (and scans installed packages for pydantic
plugins); on `kvplan size` that was more than the whole answer. Why not dataclasses: each
dataclass `exec`s generated source for `__init__`, `__repr__`, `__eq__` ... per class.
Here one shared `__init__` walks a per-class field table built once at class creation
(a dict walk, no code generation), so defining a class costs about as much as a plain
class and building one costs a few microseconds.

What it keeps from the pydantic models it replaces (so call sites and the `--json`
payloads are unchanged):
- keyword-only construction with defaults (`field(default_factory=...)` for mutable ones),
  unknown keywords refused (extra="forbid");
- the declared bounds (`field(gt=0)`, `ge`, `le`, `min_length`, `pattern`) and the class's
  own invariants (`_prepare` on the keywords before, `_check` on the object after), raised
  as `FieldError` (a ValueError naming the field) so readers can name the config key;
- immutability, equality and hashing by value, a readable repr;
- `model_copy(update=...)` and `model_construct(...)` (no checks, as pydantic's),
  `model_validate(mapping)`, `model_dump(mode="python"|"json", exclude=...)` with
  pydantic's field order (base classes first) and conversions (nested values to dicts,
  tuples to lists and enums to their values in JSON mode), `to_json()`, `model_fields`,
  and properties named in `_computed` dumped after the fields (pydantic's
  `computed_field`).
No type coercion (but, as pydantic, an int given to a `float` field is stored as a float
and a list given to a `tuple[...]` field as a tuple): values are stored as given.
`replace(**changes)` is a checked copy; `shallow_dump()` the fields without recursion.
Every user file is screened by its reader
(`kvplan.sources.validate`) or validated by a schema in `kvplan.sources` first (pydantic
for a --gpu-file, `kvplan.sources.strict` for a policy).
"""

from __future__ import annotations

import dataclasses
import re
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

    from typing_extensions import Self, dataclass_transform
else:  # the decorator only informs type checkers; importing typing_extensions costs time

    def dataclass_transform(**_: object) -> Callable[[type], type]:
        return lambda cls: cls


T = TypeVar("T")
FLOAT_HINTS = frozenset({"float", "float|None", "None|float", "Optional[float]"})


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FieldError(ValueError):
    """A value outside a field's bounds, or a broken invariant; `loc` names the field
    (empty for an invariant of the whole object), `msg` says what is wrong."""

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(f"{'.'.join(map(str, loc))}: {msg}" if loc else msg)
        self.loc = loc
        self.msg = msg


class Field:
    """One declared field: default, bounds, and whether `model_dump` leaves it out."""

    __slots__ = (
        "default",
        "default_factory",
        "exclude",
        "ge",
        "gt",
        "le",
        "min_length",
        "pattern",
        "to_float",
        "to_tuple",
    )

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Callable[[], Any] | None = None,
        gt: float | None = None,
        ge: float | None = None,
        le: float | None = None,
        min_length: int | None = None,
        pattern: str | None = None,
        exclude: bool = False,
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.gt, self.ge, self.le = gt, ge, le
        self.min_length = min_length
        self.pattern = pattern
        self.exclude = exclude
        self.to_float = False  # a float field: an int given is stored as float (pydantic does)
        self.to_tuple = False  # a tuple field: a list given is stored as a tuple (pydantic does)

    @property
    def special(self) -> bool:
        """Needs more than storing: a factory, a bound, or the float conversion."""
        return not (
            self.default_factory is None
            and not self.to_float
            and not self.to_tuple
            and self.gt is None
            and self.ge is None
            and self.le is None
            and self.min_length is None
            and self.pattern is None
        )

    def check(self, name: str, value: Any) -> Any:
        """pydantic's bounds and messages; None passes (an optional field left unset)."""
        if value is None or value is MISSING:
            return value
        if self.to_float and type(value) is int:
            value = float(value)
        elif self.to_tuple and type(value) is list:
            value = tuple(value)
        if self.gt is not None and not value > self.gt:
            raise FieldError((name,), f"Input should be greater than {self.gt}")
        if self.ge is not None and not value >= self.ge:
            raise FieldError((name,), f"Input should be greater than or equal to {self.ge}")
        if self.le is not None and not value <= self.le:
            raise FieldError((name,), f"Input should be less than or equal to {self.le}")
        if self.min_length is not None and len(value) < self.min_length:
            raise FieldError(
                (name,), f"Value should have at least {self.min_length} item after validation"
            )
        if self.pattern is not None and not re.match(self.pattern, value):
            raise FieldError((name,), f"String should match pattern '{self.pattern}'")
        return value


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | None = None,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    pattern: str | None = None,
    exclude: bool = False,
) -> Any:
    """Declare a field's default and bounds: `x: int = field(default=0, ge=0)`."""
    return Field(default, default_factory, gt, ge, le, min_length, pattern, exclude)


E = TypeVar("E", bound=Enum)


def enum_value(enum: type[E], value: Any, name: str) -> E:
    """`value` as a member of `enum` (a member, or its value as pydantic accepts it)."""
    if isinstance(value, enum):
        return value
    try:
        return enum(value)
    except ValueError:
        names = [repr(m.value) for m in enum]
        choices = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
        raise FieldError((name,), f"Input should be {choices}") from None


def _dump(value: Any, json: bool) -> Any:
    if isinstance(value, Frozen):
        return value.model_dump(mode="json" if json else "python")
    if isinstance(value, Enum):
        return value.value if json else value
    if isinstance(value, tuple):
        items = [_dump(v, json) for v in value]
        return items if json else tuple(items)
    if isinstance(value, list):
        return [_dump(v, json) for v in value]
    if isinstance(value, dict):
        return {(_dump(k, json) if json else k): _dump(v, json) for k, v in value.items()}
    if json and not isinstance(value, (str, int, float, bool, type(None))):
        return str(value)  # a Path, as pydantic writes it
    return value


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Frozen:
    """Base of the core's value classes: fields are the class's annotations (base classes
    first), defaults the assigned values or `field(...)`."""

    model_fields: ClassVar[dict[str, Field]] = {}
    # (name, default or MISSING, the Field when it has a factory or bounds), declared order
    _table: ClassVar[tuple[tuple[str, Any, Field | None], ...]] = ()
    _excluded: ClassVar[frozenset[str]] = frozenset()
    # properties model_dump adds after the fields (pydantic's computed_field)
    _computed: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: dict[str, Field] = {}
        for base in reversed(cls.__mro__[1:]):  # base classes first, as pydantic orders
            fields.update(base.__dict__.get("model_fields", {}))
        own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (inspect costs an import)
        for name, hint in own.items():
            if str(hint).startswith(("ClassVar", "typing.ClassVar")) or name.startswith("_"):
                continue
            value = cls.__dict__.get(name, MISSING)
            spec = value if isinstance(value, Field) else Field(value)
            spec.to_float = str(hint).replace(" ", "") in FLOAT_HINTS
            spec.to_tuple = str(hint).startswith("tuple[")
            fields[name] = spec
        for name, spec in fields.items():  # class attributes hold plain defaults only
            if isinstance(cls.__dict__.get(name), Field):
                if spec.default is MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, spec.default)
        cls.model_fields = fields
        cls._table = tuple((n, f.default, f if f.special else None) for n, f in fields.items())
        cls._excluded = frozenset(n for n, f in fields.items() if f.exclude)

    def __init__(self, **data: Any) -> None:
        data = self._prepare(data)
        values = self.__dict__
        for name, default, spec in self._table:
            value = data.pop(name, default)
            if spec is not None:
                if value is MISSING and spec.default_factory is not None:
                    value = spec.default_factory()
                value = spec.check(name, value)
            if value is MISSING:
                raise FieldError((name,), "Field required")
            values[name] = value
        if data:
            raise FieldError((next(iter(data)),), "Extra inputs are not permitted")
        self._check()

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Normalise the keywords before they are stored (a subclass may override)."""
        return data

    def _check(self) -> None:
        """The object's invariants (a subclass may override; raise FieldError)."""

    # ---- immutability, value semantics ----------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"{type(self).__name__}({body})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickling (multiprocessing, caches)
        return (_rebuild, (type(self), dict(self.__dict__)))

    # ---- the pydantic methods call sites use ------------------------------------------
    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with some fields replaced, not re-checked (as pydantic's model_copy)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        if update:
            new.__dict__.update(update)
        return new

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields replaced, checked like a new object."""
        return type(self)(**{**self.__dict__, **changes})

    def model_dump(
        self, *, mode: str = "python", exclude: set[str] | frozenset[str] | None = None
    ) -> dict[str, Any]:
        """The fields as a dict (pydantic's order and conversions; see the module doc)."""
        json = mode == "json"
        skip = self._excluded | exclude if exclude else self._excluded
        out = {k: _dump(v, json) for k, v in self.__dict__.items() if k not in skip}
        for name in self._computed:
            if name not in skip:
                out[name] = _dump(getattr(self, name), json)
        return out

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def shallow_dump(self, *, exclude: set[str] | frozenset[str] | None = None) -> dict[str, Any]:
        """The fields model_dump keeps, values as they are (nested objects not turned into
        dicts): for building another object from this one's fields."""
        skip = self._excluded | exclude if exclude else self._excluded
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """From a mapping of field values (or an instance, returned as is)."""
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise FieldError((), f"Input should be a valid dictionary or {cls.__name__}")
        return cls(**data)

    @classmethod
    def model_construct(cls, **values: Any) -> Self:
        """Trusted values (e.g. compiled data): defaults filled in, nothing checked, as
        pydantic's model_construct."""
        obj = object.__new__(cls)
        for name, default, spec in cls._table:
            if name in values:
                obj.__dict__[name] = values.pop(name)
            elif spec is not None and spec.default_factory is not None:
                obj.__dict__[name] = spec.default_factory()
            elif default is not MISSING:
                obj.__dict__[name] = default
        obj.__dict__.update(values)
        return obj

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """A field of this type inside a pydantic model (the policy and plan models): an
        instance is accepted as is, and dumps as `model_dump` does, in the same mode."""
        from pydantic_core import core_schema

        return core_schema.is_instance_schema(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda value, info: value.model_dump(mode=info.mode), info_arg=True
            ),
        )


def _rebuild(cls: type[T], values: dict[str, Any]) -> T:
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


# ---- a frozen dataclass without code generation ----------------------------------------
@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def dataclass(cls: type[T] | None = None, /, *, frozen: bool = True) -> Any:
    """A drop-in for `@dataclasses.dataclass(frozen=True)` that generates no code.

    The standard decorator `exec`s the source of `__init__`, `__repr__`, `__eq__`,
    `__hash__`, `__setattr__` and `__delattr__` for every class: ~1 ms a class, and the
    engine table, deployment, traits and roofline define ~20 of them on every `fit`. Here
    shared methods walk the class's field table instead. The class stays a dataclass to
    the standard library: `dataclasses.fields`, `replace`, `asdict` and `is_dataclass`
    work (it has `__dataclass_fields__` of real `dataclasses.Field`s); positional and
    keyword arguments, defaults, `field(default_factory=..., metadata=...)`, `init=False`,
    `__post_init__`, equality and hashing by field values and `FrozenInstanceError` on
    assignment behave as the standard decorator's. Only frozen classes are supported.
    """
    if not frozen:
        raise TypeError("kvplan.core.frozen.dataclass makes frozen classes only")

    def wrap(klass: type[T]) -> type[T]:
        _make_record(klass)
        return klass

    return wrap if cls is None else wrap(cls)


def _make_record(cls: type) -> None:
    fields: dict[str, dataclasses.Field[Any]] = {}
    for base in reversed(cls.__mro__[1:]):
        fields.update(base.__dict__.get("__dataclass_fields__", {}))
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063 (inspect costs an import)
    for name, hint in own.items():
        if str(hint).startswith(("ClassVar", "typing.ClassVar")):
            continue
        value = cls.__dict__.get(name, dataclasses.MISSING)
        if isinstance(value, dataclasses.Field):
            spec = value
            if spec.default is dataclasses.MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        else:
            spec = dataclasses.field(default=value)
        spec.name, spec.type = name, hint
        spec._field_type = dataclasses._FIELD  # type: ignore[attr-defined]
        fields[name] = spec
    seen_default = False
    for spec in fields.values():
        has_default = (
            spec.default is not dataclasses.MISSING
            or spec.default_factory is not dataclasses.MISSING
        )
        if spec.init and not has_default and seen_default:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")
        seen_default = seen_default or (spec.init and has_default)
    cls.__dataclass_fields__ = fields  # type: ignore[attr-defined]
    cls.__dataclass_params__ = None  # type: ignore[attr-defined]
    init = tuple((f.name, f.default, f.default_factory) for f in fields.values() if f.init)
    rest = tuple((f.name, f.default, f.default_factory) for f in fields.values() if not f.init)
    cls._record_init = init  # type: ignore[attr-defined]
    cls._record_rest = rest  # type: ignore[attr-defined]
    cls._record_compare = tuple(f.name for f in fields.values() if f.compare)  # type: ignore[attr-defined]
    cls._record_repr = tuple(f.name for f in fields.values() if f.repr)  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(name for name, _, _ in init)  # type: ignore[misc,attr-defined]
    methods = {
        "__init__": _record_init,
        "__repr__": _record_repr,
        "__eq__": _record_eq,
        "__setattr__": _record_setattr,
        "__delattr__": _record_delattr,
    }
    for name, method in methods.items():
        if name not in cls.__dict__:
            setattr(cls, name, method)
    if cls.__dict__.get("__hash__") is None:  # unset, or set to None by an own __eq__
        cls.__hash__ = _record_hash  # type: ignore[assignment]


_NOTHING = dataclasses.MISSING


def _record_init(self: Any, *args: Any, **kwargs: Any) -> None:
    spec = self._record_init
    if args:
        if len(args) > len(spec):
            raise TypeError(
                f"{type(self).__name__}.__init__() takes {len(spec) + 1} positional "
                f"arguments but {len(args) + 1} were given"
            )
        for (name, _, _), value in zip(spec, args, strict=False):
            if name in kwargs:
                raise TypeError(
                    f"{type(self).__name__}.__init__() got multiple values for argument {name!r}"
                )
            kwargs[name] = value
    values = self.__dict__
    for name, default, factory in spec:
        value = kwargs.pop(name, default)
        if value is _NOTHING:
            if factory is _NOTHING:
                raise TypeError(
                    f"{type(self).__name__}.__init__() missing 1 required argument: {name!r}"
                )
            value = factory()
        values[name] = value
    if kwargs:
        raise TypeError(
            f"{type(self).__name__}.__init__() got an unexpected keyword argument "
            f"{next(iter(kwargs))!r}"
        )
    for name, default, factory in self._record_rest:
        if default is not _NOTHING:
            values[name] = default
        elif factory is not _NOTHING:
            values[name] = factory()
    post_init = getattr(type(self), "__post_init__", None)
    if post_init is not None:
        post_init(self)


def _record_repr(self: Any) -> str:
    body = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._record_repr)
    return f"{type(self).__qualname__}({body})"


def _record_eq(self: Any, other: Any) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented  # type: ignore[no-any-return]
    names = self._record_compare
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _record_hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in self._record_compare))


def _record_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _record_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
