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


def test_dump_matches_pydantic_field_order_and_json_conversions():
    c = Child(inner=Inner(n=2, share=1), items=(1, 2), table={Color.RED: 3}, hidden=9)
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
