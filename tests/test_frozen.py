"""kvplan.core.frozen: the light value classes keep what the pydantic models they replaced
guaranteed (bounds, unknown keys, immutability) and dump the same dicts."""

from __future__ import annotations

import json
import pickle
from enum import Enum

import pytest
from pydantic import BaseModel, ConfigDict

from kvplan.core.frozen import FieldError, Frozen, field


class Color(str, Enum):
    RED = "red"


class Inner(Frozen):
    n: int = field(gt=0)
    share: float = 0.5


class Outer(Frozen):
    name: str
    inner: Inner | None = None
    items: tuple[int, ...] = ()
    color: Color = Color.RED
    table: dict[Color, float] = field(default_factory=dict)
    hidden: int = field(default=0, exclude=True)


class Child(Outer):
    extra: int = 1
    name: str = "child"  # overridden: keeps its position (base fields first, as pydantic)


class Twin(BaseModel):  # the pydantic model each class replaced, for comparison
    model_config = ConfigDict(frozen=True)

    n: int
    share: float = 0.5


def test_bounds_required_and_unknown_keys_raise_a_named_field_error():
    with pytest.raises(FieldError) as err:
        Inner(n=0)
    assert err.value.loc == ("n",)
    assert err.value.msg == "Input should be greater than 0"
    with pytest.raises(FieldError, match="Field required"):
        Outer()
    with pytest.raises(FieldError, match="Extra inputs are not permitted") as err:
        Inner(n=1, m=2)
    assert err.value.loc == ("m",)


def test_frozen_equal_by_value_hashable_and_picklable():
    a = Inner(n=3)
    with pytest.raises(AttributeError):
        a.n = 4  # type: ignore[misc]
    assert a == Inner(n=3) and a != Inner(n=4)
    assert hash(a) == hash(Inner(n=3))
    assert pickle.loads(pickle.dumps(a)) == a
    b = a.model_copy(update={"n": 7})
    assert (a.n, b.n, b.share) == (3, 7, 0.5)
    c = Inner.model_construct(n=0)  # trusted: not checked, defaults filled in
    assert (c.n, c.share) == (0, 0.5)
    assert Outer.model_construct(name="x").table == {}


def test_dump_matches_pydantic_field_order_and_json_conversions():
    c = Child(inner=Inner(n=2, share=1), items=[1, 2], table={Color.RED: 3}, hidden=9)
    assert c.items == (1, 2)  # a list for a tuple field is stored as a tuple, as pydantic
    assert list(Child.model_fields) == [
        "name", "inner", "items", "color", "table", "hidden", "extra"
    ]  # fmt: skip
    assert c.inner is not None and c.inner.share == 1.0 and isinstance(c.inner.share, float)
    assert c.to_json() == {
        "name": "child",
        "inner": {"n": 2, "share": 1.0},
        "items": [1, 2],
        "color": "red",
        "table": {"red": 3},
        "extra": 1,
    }
    python = c.model_dump(exclude={"extra"})
    assert python["items"] == (1, 2) and python["color"] is Color.RED
    assert "extra" not in python and "hidden" not in python
    # the same bytes as the pydantic model it replaced
    assert json.dumps(Inner(n=2, share=1).to_json()) == json.dumps(
        Twin(n=2, share=1).model_dump(mode="json")
    )


def test_a_field_of_a_pydantic_model_validates_by_type_and_dumps_the_same():
    class Holder(BaseModel):
        model_config = ConfigDict(frozen=True)
        inner: Inner

    h = Holder(inner=Inner(n=1))
    assert h.model_dump(mode="json") == {"inner": {"n": 1, "share": 0.5}}
    with pytest.raises(ValueError):
        Holder(inner={"n": 1})  # type: ignore[arg-type]


def test_the_fast_dataclass_behaves_as_the_standard_frozen_dataclass():
    import dataclasses

    from kvplan.core.frozen import dataclass

    def declare(decorator):  # the same class body under both decorators
        @decorator(frozen=True)
        class Point:
            x: int
            y: int = 2
            tags: list[str] = dataclasses.field(default_factory=list, metadata={"k": "v"})
            hidden: int = dataclasses.field(default=0, repr=False, compare=False)

            def __post_init__(self) -> None:
                object.__setattr__(self, "tags", [*self.tags, "seen"])

        return Point

    ours, std = declare(dataclass), declare(dataclasses.dataclass)
    for cls in (ours, std):
        p = cls(1, tags=["a"], hidden=5)
        assert (p.x, p.y, p.tags, p.hidden) == (1, 2, ["a", "seen"], 5)
        assert repr(p).endswith("Point(x=1, y=2, tags=['a', 'seen'])")
        assert p == cls(1, 2, ["a"], hidden=6) and p != cls(2)
        assert [f.name for f in dataclasses.fields(p)] == ["x", "y", "tags", "hidden"]
        assert dataclasses.fields(cls)[2].metadata["k"] == "v"
        assert dataclasses.is_dataclass(p)
        q = dataclasses.replace(p, y=7)
        assert (q.x, q.y, q.tags) == (1, 7, ["a", "seen", "seen"])
        assert dataclasses.asdict(cls(3)) == {"x": 3, "y": 2, "tags": ["seen"], "hidden": 0}
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.x = 3
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls(1, z=3)
        with pytest.raises(TypeError):
            cls(1, 2, [], 0, 9)
        with pytest.raises(TypeError):
            cls(1, x=1)

    @dataclass(frozen=True)
    class Pair:
        a: int
        b: str = "x"

    assert hash(Pair(1)) == hash(Pair(1, "x")) and {Pair(1), Pair(1)} == {Pair(1)}
