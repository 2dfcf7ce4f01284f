"""Reading other rooms' result objects (dataclasses, pydantic models or mappings) into plain mappings.

The rules and anomaly rooms return their own frozen dataclasses; the API turns them into its own response
models and never hands a room's object to the client directly. This module only converts shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from api.timefmt import rfc3339, to_ms


def as_mapping(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        result: Mapping[str, Any] = dump()
        return result
    return dict(vars(obj))


def jsonable(obj: Any) -> Any:
    """A JSON-ready copy of nested dataclasses, models, mappings, sequences and datetimes."""
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    if isinstance(obj, datetime):
        return rfc3339(to_ms(obj))
    if isinstance(obj, list | tuple | set | frozenset):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Mapping) or dataclasses.is_dataclass(obj) or hasattr(obj, "model_dump"):
        return {str(k): jsonable(v) for k, v in as_mapping(obj).items()}
    return str(obj)


def first(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in data and data[name] is not None:
            return data[name]
    return None


def when(value: Any) -> str | None:
    """RFC 3339 from epoch ms or a datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return rfc3339(to_ms(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return rfc3339(int(value))
    return str(value)
