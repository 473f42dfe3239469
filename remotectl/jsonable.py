"""One mapping from result dataclasses to JSON, so that the table and ``--json`` read the same object.

A dataclass becomes a dict with its fields in declaration order. A field opts out with ``json_field(omit=True)``,
is renamed with ``json_field(name=...)`` or converted with ``json_field(convert=...)``; a property is added with
``json_extra``. Enums become their values, tuples lists, nested dataclasses dicts. Adding a field to a result is a
one-line change, and the JSON contract is the dataclass itself. Standard library only (every layer may use it).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Callable, Dict, Optional, Sequence

__all__ = ["json_field", "jsonable"]

_KEY = "json"


def json_field(*, omit: bool = False, name: Optional[str] = None, convert: Optional[Callable[[Any], Any]] = None,
               **kwargs: Any) -> Any:
    """``dataclasses.field`` with JSON instructions: ``omit`` (not in the JSON), ``name`` (another key),
    ``convert`` (a function of the value, applied before the generic conversion)."""
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata[_KEY] = {"omit": omit, "name": name, "convert": convert}
    return dataclasses.field(metadata=metadata, **kwargs)


def jsonable(value: Any, *, extra: Sequence[str] = ()) -> Any:
    """``value`` as plain JSON data. ``extra`` names properties of a top-level dataclass to add after its fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(value):
            how = f.metadata.get(_KEY) or {}
            if how.get("omit"):
                continue
            item = getattr(value, f.name)
            if how.get("convert") is not None:
                item = how["convert"](item)
            out[how.get("name") or f.name] = jsonable(item)
        for name in extra:
            out[name] = jsonable(getattr(value, name))
        return out
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    return value
