"""The pydantic schema of a core `Frozen` class, for reading a user's (or a bundled) file.

The core's value classes are light `Frozen` classes (no pydantic on the answer path); a file
that becomes one of them (a --gpu-file, catalog.yaml) is validated with full type checks
first. Instead of writing each class's fields a second time as a pydantic model, the schema
is derived from the one declaration: the field order, annotations, defaults and bounds
(`frozen.field(gt=..., pattern=...)`) of the `Frozen` class, with extra keys refused and
nested `Frozen` classes derived the same way. Built on first use only (pydantic's model
machinery is not imported on the answer path).
"""

from __future__ import annotations

import sys
import typing
from typing import TYPE_CHECKING, Any

from kvplan.core.frozen import MISSING, Frozen

if TYPE_CHECKING:
    from pydantic import BaseModel


_MODELS: dict[type, type[BaseModel]] = {}


def pydantic_model(cls: type[Frozen]) -> type[BaseModel]:
    """A frozen, extra="forbid" pydantic model with `cls`'s fields, named like `cls` (the
    JSON Schema's title / $defs key). One per class, built on first use."""
    if cls in _MODELS:
        return _MODELS[cls]
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    for field_name, spec in cls.model_fields.items():
        hint = _nested(_annotation(cls, field_name))
        bounds: dict[str, Any] = {
            k: v
            for k, v in (
                ("gt", spec.gt),
                ("ge", spec.ge),
                ("le", spec.le),
                ("min_length", spec.min_length),
                ("pattern", spec.pattern),
            )
            if v is not None
        }
        if spec.default_factory is not None:
            fields[field_name] = (hint, Field(default_factory=spec.default_factory, **bounds))
        elif spec.default is MISSING:
            fields[field_name] = (hint, Field(**bounds) if bounds else ...)
        else:
            fields[field_name] = (hint, Field(default=spec.default, **bounds))
    model: type[BaseModel] = create_model(
        cls.__name__,
        __config__=ConfigDict(frozen=True, extra="forbid"),
        __doc__=None,
        **fields,
    )
    _MODELS[cls] = model
    return model


def _annotation(cls: type, name: str) -> Any:
    """The evaluated annotation of field `name`, in the module of the class declaring it."""
    import inspect

    for klass in cls.__mro__:
        own = inspect.get_annotations(klass)
        if name in own:
            hint = own[name]
            if isinstance(hint, str):
                hint = eval(hint, vars(sys.modules[klass.__module__]))
            return hint
    raise KeyError(name)


def _nested(hint: Any) -> Any:
    """`hint` with every nested Frozen class replaced by its pydantic model."""
    if isinstance(hint, type) and issubclass(hint, Frozen):
        return pydantic_model(hint)
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if not args or origin is None:
        return hint
    new = tuple(_nested(a) for a in args)
    if new == args:
        return hint
    if origin is typing.Union or str(origin) == "types.UnionType":
        return typing.Union[new]  # noqa: UP007 (built dynamically)
    if origin is tuple:
        return tuple[new]  # type: ignore[valid-type]
    return hint.copy_with(new) if hasattr(hint, "copy_with") else origin[new]
