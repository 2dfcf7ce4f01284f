"""The evaluation's saved state: one versioned JSON file that lets the rules and detectors carry on after a restart.

``STATE_DIR/evaluation-state.json`` holds, for each part of the evaluation (the rule engine's time, home care
rules, watering, DAQI, device health, the routine detector, the sensor detectors), the state that part gave
(``state()``), encoded by ``placesense.statecodec``, with the sequence number of the last journal batch it
includes (``ingest.journal``) and the event clock's time. The layout is documented in docs/state.md::

    {"format": "placesense-evaluation-state", "version": 1, "saved_at": "<RFC 3339>",
     "applied_seq": 1234, "clock_ms": 1733300000000,
     "parts": {"home": {"version": 1, "state": {...}}, "routine": {...}, ...}}

Writing is atomic (a temporary file, fsync, rename, fsync of the folder) and private (0600). Reading never
crashes the service: a missing file is a first start; a corrupt, truncated or unknown-version file, or one part
that cannot be read, is logged plainly and that part (or the whole, if the envelope is bad) starts fresh. The
previous release's ``routine.pkl`` is read once, through an unpickler that admits only placesense's own classes
and plain containers, converted, and deleted (it held residents' learned routines).

This module moves state between objects and the file; it must not evaluate readings.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from placesense.basics.errors import StorageError
from placesense.basics.files import private_dir, write_private
from placesense.statecodec import ALLOWED_PACKAGES, RENAMED, StateCodecError, decode, encode

log = logging.getLogger("placesense.evaluation.state")

STATE_FILE = "evaluation-state.json"
LEGACY_ROUTINE_FILE = "routine.pkl"
FORMAT = "placesense-evaluation-state"
VERSION = 1
# Each part's own version: bump it when that part's state changes shape in a way defaults cannot bridge, and an
# older file's part then starts fresh instead of loading wrongly.
PART_VERSIONS: dict[str, int] = {
    "engine": 1, "home": 1, "watering": 1, "daqi": 1, "health": 1, "routine": 1, "sensors": 1,
}


@dataclass
class SavedState:
    """What a state file held: each readable part's state, and where in the journal it ends."""

    applied_seq: int = 0
    clock_ms: int = 0
    saved_at_ms: int = 0
    parts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # plain lines for the log: what was not restored, and why


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def exists(state_dir: Path) -> bool:
    """Whether a state was ever saved here (this release's file, or the previous release's pickle)."""
    return state_path(state_dir).exists() or (state_dir / LEGACY_ROUTINE_FILE).exists()


def save(state_dir: Path, parts: Mapping[str, Any], *, applied_seq: int, clock_ms: int) -> int:
    """Write the parts' states atomically; returns the file's size in bytes."""
    data = encode_state(parts, applied_seq=applied_seq, clock_ms=clock_ms)
    private_dir(state_dir)
    write_private(state_path(state_dir), data)
    _fsync_dir(state_dir)
    return len(data)


def encode_state(parts: Mapping[str, Any], *, applied_seq: int, clock_ms: int) -> bytes:
    """The state document (see the module docstring) as bytes."""
    body = {
        "format": FORMAT,
        "version": VERSION,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "applied_seq": applied_seq,
        "clock_ms": clock_ms,
        "parts": {name: {"version": PART_VERSIONS[name], "state": encode(state)} for name, state in parts.items()},
    }
    return orjson.dumps(body)


def _fsync_dir(directory: Path) -> None:
    """The rename that replaced the state file is durable once its folder is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load(state_dir: Path) -> SavedState:
    """Read the saved state; never raises for the file's content (see the module docstring)."""
    path = state_path(state_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return _load_legacy(state_dir)
    except OSError as exc:
        return SavedState(problems=[f"cannot read {path} ({exc.strerror}); starting with no saved state"])
    return parse_state(raw, str(path))


def parse_state(raw: bytes, path: str) -> SavedState:
    """Read a state document; ``path`` names where it came from in the notes. Never raises for its content."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return SavedState(problems=[
            f"{path} is not valid JSON (cut short or damaged: {exc}); starting with no saved state. "
            f"The readings since its last good save are in the journal and InfluxDB."
        ])
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        return SavedState(problems=[f"{path} is not a placesense evaluation state file; starting with no saved state"])
    if body.get("version") != VERSION:
        return SavedState(problems=[
            f"{path} has format version {body.get('version')!r}; this release reads version {VERSION}. "
            "Starting with no saved state."
        ])
    saved = SavedState(
        applied_seq=_int(body.get("applied_seq")),
        clock_ms=_int(body.get("clock_ms")),
        saved_at_ms=_parse_time(body.get("saved_at")),
    )
    parts = body.get("parts")
    if not isinstance(parts, dict):
        saved.problems.append(f"{path} holds no parts; starting each fresh")
        return saved
    for name, entry in parts.items():
        if name not in PART_VERSIONS:
            saved.problems.append(f"{path}: part {name!r} is unknown to this release; ignored")
            continue
        if not isinstance(entry, dict) or entry.get("version") != PART_VERSIONS[name]:
            version = entry.get("version") if isinstance(entry, dict) else None
            saved.problems.append(
                f"{path}: part {name!r} has version {version!r}, this release reads {PART_VERSIONS[name]}; "
                f"it starts fresh"
            )
            continue
        try:
            saved.parts[name] = decode(entry.get("state"))
        except (StateCodecError, RecursionError) as exc:
            saved.problems.append(f"{path}: part {name!r} cannot be read ({exc}); it starts fresh")
    return saved


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _parse_time(value: Any) -> int:
    try:
        return int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0


# -- the previous release's pickle ------------------------------------------------------------------------------


_SAFE_BUILTINS = {
    ("builtins", name) for name in ("dict", "list", "set", "frozenset", "tuple", "int", "float", "str", "bool",
                                    "bytes", "bytearray", "object")
} | {
    ("collections", "deque"), ("collections", "OrderedDict"), ("datetime", "date"), ("datetime", "datetime"),
    ("datetime", "time"), ("datetime", "timedelta"), ("zoneinfo", "ZoneInfo"), ("array", "array"),
    ("array", "_array_reconstructor"), ("copyreg", "_reconstructor"), ("zoneinfo", "ZoneInfo._unpickle"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits only plain containers, dates, arrays and placesense's own classes: the old file loads, but a
    file that names any other callable (the way a pickle runs code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_BUILTINS:
            return super().find_class(module, name)
        # a class that has moved since that release is found where it is now (``statecodec.RENAMED``)
        module, _, name = RENAMED.get(f"{module}:{name}", f"{module}:{name}").partition(":")
        if module.split(".")[0] in ALLOWED_PACKAGES and module.split(".")[0] != "river" and "." not in name:
            found = super().find_class(module, name)
            if isinstance(found, type):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a saved routine")


def _load_legacy(state_dir: Path) -> SavedState:
    path = state_dir / LEGACY_ROUTINE_FILE
    if not path.exists():
        return SavedState()
    saved = SavedState()
    try:
        legacy = _RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
        homes = legacy.get("homes") if isinstance(legacy, dict) else None
        if legacy.get("version") not in (1, 2) or not isinstance(homes, dict):
            raise pickle.UnpicklingError(f"version {legacy.get('version')!r} is not 1 or 2")
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError) as exc:
        saved.problems.append(f"{path} (the previous release's learned routines) cannot be read ({exc}); "
                              "routines are learned again")
        return saved
    saved.parts["routine"] = {"homes": homes}
    saved.problems.append(f"read learned routines of {len(homes)} homes from {path}, the previous release's format; "
                          f"they are saved in {STATE_FILE} from now on")
    return saved


def retire_legacy(state_dir: Path) -> None:
    """Delete the previous release's pickle once its content is saved in the new file."""
    (state_dir / LEGACY_ROUTINE_FILE).unlink(missing_ok=True)


# -- erasure and subject access ---------------------------------------------------------------------------------


def rewrite_without(state_dir: Path, forget: Callable[[dict[str, Any]], bool]) -> bool:
    """Load the saved state, let ``forget`` remove a subject from the decoded parts (True if it found any), and
    write it back. Used by erasure while serve is stopped (the state folder's lock is held)."""
    saved = load(state_dir)
    if saved.problems and not saved.parts:
        if not state_path(state_dir).exists() and not (state_dir / LEGACY_ROUTINE_FILE).exists():
            return False
        raise StorageError("; ".join(saved.problems))
    if not forget(saved.parts):
        return False
    save(state_dir, saved.parts, applied_seq=saved.applied_seq, clock_ms=saved.clock_ms)
    retire_legacy(state_dir)
    return True


def saved_at(state_dir: Path) -> float | None:
    """When the state was last saved (seconds since the epoch), or None."""
    try:
        return state_path(state_dir).stat().st_mtime
    except FileNotFoundError:
        return None


def age_s(state_dir: Path) -> float | None:
    mtime = saved_at(state_dir)
    return None if mtime is None else time.time() - mtime


# -- in the shared database (active/standby instances, docs/scaling.md) ----------------------------------------


class StateStore(Protocol):
    """Where the evaluation process keeps its state: a file of its own, or a row of the shared database."""

    where: str

    def exists(self) -> bool: ...

    def load(self) -> SavedState: ...

    def save(self, parts: Mapping[str, Any], *, applied_seq: int, clock_ms: int) -> int: ...

    def retire_legacy(self) -> None: ...


class FileStore:
    """``STATE_DIR/evaluation-state.json`` (one ``placesense serve``)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.where = str(state_path(state_dir))

    def exists(self) -> bool:
        return exists(self.state_dir)

    def load(self) -> SavedState:
        return load(self.state_dir)

    def save(self, parts: Mapping[str, Any], *, applied_seq: int, clock_ms: int) -> int:
        return save(self.state_dir, parts, applied_seq=applied_seq, clock_ms=clock_ms)

    def retire_legacy(self) -> None:
        retire_legacy(self.state_dir)
