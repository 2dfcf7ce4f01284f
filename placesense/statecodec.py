"""Plain state objects to JSON and back, by type name: how the evaluation state is saved, without pickle.

The rules and detectors keep their state in plain objects: dataclasses and small classes of our own holding
numbers, text, dates, arrays and containers of those. ``encode`` turns such a value into JSON-ready data that
names each object's class; ``decode`` builds it again. Loading a pickle runs whatever code the file names;
``decode`` only ever creates instances of classes defined in placesense's own packages (``ALLOWED_PACKAGES``)
and fills their fields, so a file written by someone else can at worst hold wrong numbers, never run code.

Encoding (documented in docs/state.md):

- ``null``, booleans, integers, strings and finite floats as themselves; ``{"$f": "nan" | "inf" | "-inf"}``;
- a list as a JSON array; a tuple ``{"$t": [...]}``; a set ``{"$s": [...]}``; a deque ``{"$q": [...], "max": n}``;
- a dict with string keys that do not start with ``$`` as a JSON object; any other dict ``{"$m": [[k, v], ...]}``;
- ``{"$date": "2024-01-31"}``, ``{"$dt": "<ISO 8601>"}``, ``{"$tz": "Europe/London"}``;
- bytes ``{"$b": "<base64>"}``, a bytearray ``{"$ba": …}``, an ``array.array`` ``{"$a": "d", "b": "<base64>"}``;
- an object ``{"$o": "module:QualName", "v": {field: value, ...}}``. Dataclass fields are matched by name: a field
  the file lacks gets its default, a field the class no longer has is ignored, so a new release reads an older
  file. A dataclass that moved some of its fields into another (its shape changed, not only its name) defines
  ``upgrade_saved(fields) -> fields``, which is given the decoded fields and rewrites an older file's into its
  own. Other classes restore through their own ``__setstate__`` or by attribute.

A class that moved or was renamed keeps being read under its old name through ``RENAMED`` (old name -> the name
it has now); files are always written with the new name.

A value of any other type cannot be saved: ``StateCodecError`` names it, so a new kind of state is noticed in the
contract test, not at a customer's restart. This module knows nothing of rules or detectors.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import math
import re
import sys
from array import array
from collections import deque
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from placesense.basics.errors import PlacesenseError

ALLOWED_PACKAGES = ("rules", "anomaly", "placesense", "devices", "river")
_QUALNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SCALARS = (int, float, str, bool, type(None))
# Classes saved under a name this release no longer has: "module:QualName" as an older file says it -> as it is now.
# A restart must read the file the previous release wrote, so an entry stays for as long as such files may exist.
RENAMED: dict[str, str] = {
    # home care split into one module per check (issue 22): the per-home picture left rules/home.py
    "rules.home:_Home": "rules.home.picture:HomePicture",
    # the routine detector split into one module per check (issue 22): the per-home model left anomaly/routine.py
    "anomaly.routine:HomeModel": "anomaly.routine.model:HomeModel",
}


class StateCodecError(PlacesenseError):
    """A value cannot be saved, or saved data cannot be read back as state."""


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data (see the module docstring)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else {"$f": "nan" if value != value else ("inf" if value > 0 else "-inf")}
    if kind in (int, str, bool) or value is None:
        return value
    if kind is list:
        return [encode(item) for item in value]
    if kind is dict:
        if all(type(key) is str and not key.startswith("$") for key in value):
            return {key: encode(item) for key, item in value.items()}
        return {"$m": [[encode(key), encode(item)] for key, item in value.items()]}
    if kind is tuple:
        return {"$t": [encode(item) for item in value]}
    if kind in (set, frozenset):
        items = [encode(item) for item in value]
        items.sort(key=repr)  # the same state gives the same file
        return {"$s": items}
    if kind is deque:
        return {"$q": [encode(item) for item in value], "max": value.maxlen}
    if kind is date:
        return {"$date": value.isoformat()}
    if kind is datetime:
        return {"$dt": value.isoformat()}
    if kind is ZoneInfo:
        return {"$tz": value.key}
    if kind is bytes:
        return {"$b": base64.b64encode(value).decode()}
    if kind is bytearray:
        return {"$ba": base64.b64encode(value).decode()}
    if kind is array:
        return {"$a": value.typecode, "b": base64.b64encode(value.tobytes()).decode()}
    return _encode_object(value)


def _class_name(kind: type) -> str:
    module = kind.__module__
    if module == "__main__" or module.split(".")[0] not in ALLOWED_PACKAGES:
        raise StateCodecError(f"cannot save a {kind.__module__}.{kind.__qualname__}: not a placesense state class")
    return f"{module}:{kind.__qualname__}"


def _encode_object(value: Any) -> dict[str, Any]:
    kind = type(value)
    name = _class_name(kind)
    if dataclasses.is_dataclass(value):
        fields = {spec.name: encode(getattr(value, spec.name)) for spec in dataclasses.fields(value)}
        return {"$o": name, "v": fields}
    if callable(value) and not hasattr(value, "__dict__") and not hasattr(kind, "__slots__"):
        raise StateCodecError(f"cannot save {name}: not plain data")
    return {"$o": name, "v": encode(_attributes(value))}


def _attributes(value: Any) -> dict[str, Any]:
    """An object's own attributes: its ``__getstate__`` where it defines one (to leave caches out), else its
    ``__dict__`` and slots."""
    state = value.__getstate__()
    if isinstance(state, tuple) and len(state) == 2:  # (dict or None, slots) as object.__getstate__ gives
        own, slots = state
        merged = dict(own or {})
        merged.update(slots or {})
        return merged
    if isinstance(state, dict):
        return dict(state)
    raise StateCodecError(f"cannot save {type(value).__qualname__}: its __getstate__ gives a {type(state).__name__}")


def decode(data: Any) -> Any:
    """Build the value ``encode`` described; raises ``StateCodecError`` on anything it does not know."""
    kind = type(data)
    if kind in (int, float, str, bool) or data is None:
        return data
    if kind is list:
        return [decode(item) for item in data]
    if kind is not dict:
        raise StateCodecError(f"unexpected {kind.__name__} in saved state")
    if not data or not next(iter(data)).startswith("$"):
        return {key: decode(item) for key, item in data.items()}
    tag = next(iter(data))
    try:
        match tag:
            case "$f":
                return float(data["$f"])
            case "$m":
                return {_hashable(decode(key)): decode(item) for key, item in data["$m"]}
            case "$t":
                return tuple(decode(item) for item in data["$t"])
            case "$s":
                return {_hashable(decode(item)) for item in data["$s"]}
            case "$q":
                return deque((decode(item) for item in data["$q"]), maxlen=data.get("max"))
            case "$date":
                return date.fromisoformat(data["$date"])
            case "$dt":
                return datetime.fromisoformat(data["$dt"])
            case "$tz":
                return ZoneInfo(data["$tz"])
            case "$b":
                return base64.b64decode(data["$b"], validate=True)
            case "$ba":
                return bytearray(base64.b64decode(data["$ba"], validate=True))
            case "$a":
                values = array(data["$a"])
                values.frombytes(base64.b64decode(data["b"], validate=True))
                return values
            case "$o":
                return _decode_object(data["$o"], data["v"])
    except StateCodecError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise StateCodecError(f"saved state has a malformed {tag} value: {exc}") from exc
    raise StateCodecError(f"saved state has an unknown tag {tag!r}")


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    return value


def resolve_class(name: str) -> type:
    """The class ``module:QualName`` names (or, for a class that moved, ``RENAMED`` says it became), if it is one of
    placesense's own; raises otherwise."""
    module_name, _, qualname = RENAMED.get(name, name).partition(":")
    if not _MODULE.match(module_name) or not _QUALNAME.match(qualname):
        raise StateCodecError(f"saved state names a malformed class {name!r}")
    if module_name.split(".")[0] not in ALLOWED_PACKAGES:
        raise StateCodecError(f"saved state names {name!r}, which is not a placesense class")
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    target: Any = module
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise StateCodecError(f"saved state names {name!r}, which this release does not have")
    if not isinstance(target, type):
        raise StateCodecError(f"saved state names {name!r}, which is not a class")
    return target


def _decode_object(name: str, fields: Any) -> Any:
    kind = resolve_class(name)
    if dataclasses.is_dataclass(kind):
        if not isinstance(fields, dict):
            raise StateCodecError(f"saved state for {name} is not a mapping of fields")
        upgrade = getattr(kind, "upgrade_saved", None)
        if upgrade is not None:  # the class reshaped its fields: it rewrites an older file's own
            fields = upgrade({key: decode(value) for key, value in fields.items()})
            decoded = True
        else:
            decoded = False
        instance = object.__new__(kind)
        for spec in dataclasses.fields(kind):
            if spec.name in fields:
                value = fields[spec.name] if decoded else decode(fields[spec.name])
            elif spec.default is not dataclasses.MISSING:
                value = spec.default
            elif spec.default_factory is not dataclasses.MISSING:
                value = spec.default_factory()
            else:
                raise StateCodecError(f"saved state for {name} lacks its field {spec.name!r}")
            object.__setattr__(instance, spec.name, value)
        return instance
    attributes = decode(fields)
    if not isinstance(attributes, dict):
        raise StateCodecError(f"saved state for {name} is not a mapping of attributes")
    instance = object.__new__(kind)
    own_setstate = getattr(kind, "__setstate__", None)
    if own_setstate is not None and own_setstate is not getattr(object, "__setstate__", None):
        slots = _all_slots(kind)
        if slots and not hasattr(instance, "__dict__"):
            instance.__setstate__((None, attributes))
        else:
            instance.__setstate__(attributes)
        return instance
    for key, value in attributes.items():
        object.__setattr__(instance, key, value)
    return instance


def _all_slots(kind: type) -> set[str]:
    slots: set[str] = set()
    for klass in kind.__mro__:
        declared = klass.__dict__.get("__slots__", ())
        slots.update([declared] if isinstance(declared, str) else declared)
    return slots
