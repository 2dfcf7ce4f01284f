"""What ingest last saw of each device: last message, last event time, battery, online/offline.

Updated in memory on the hot path and saved to the relational database every few seconds, so ``/api/v1/devices``
and the offline rule have it without a query per message. Losing the last few seconds of it in a crash is
harmless: the next message restores it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from devices.readings import Reading
from placesense.basics.errors import RetryableStorageError

metadata = MetaData()

device_status = Table(
    "device_status",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("last_seen_ms", BigInteger, nullable=True),
    Column("last_event_ms", BigInteger, nullable=True),
    Column("battery_pct", Float, nullable=True),
    Column("online", Boolean, nullable=True),
    Column("status_ms", BigInteger, nullable=True),
)


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    last_seen_ms: int | None = None
    last_event_ms: int | None = None
    battery_pct: float | None = None
    online: bool | None = None
    status_ms: int | None = None


_FIELDS = tuple(column.name for column in device_status.columns)
_VALUES = tuple(name for name in _FIELDS if name != "device_id")


# A status never moves backwards: with two instances writing (a leader and the one taking over from it), the
# older report of the two keeps its place. Times keep the later value; the battery follows the later reading and
# the online flag the later of status message and reading. The same SQL serves SQLite and PostgreSQL.
_SEEN = "COALESCE(device_status.last_seen_ms, 0)"
_NEWER_READING = f"COALESCE(excluded.last_seen_ms, 0) >= {_SEEN}"
_NEWER_STATUS = (f"MAX_OF(COALESCE(excluded.status_ms, 0), COALESCE(excluded.last_seen_ms, 0)) >= "
                 f"MAX_OF(COALESCE(device_status.status_ms, 0), {_SEEN})")


def _later(column: str) -> str:
    """The later of the two values, or whichever is there (SQLite's MAX is NULL with a NULL; GREATEST skips it)."""
    return (f"{column} = COALESCE(MAX_OF(device_status.{column}, excluded.{column}), device_status.{column}, "
            f"excluded.{column})")


_NEWER_WINS_TEMPLATE = (
    _later("last_seen_ms"),
    _later("last_event_ms"),
    f"battery_pct = CASE WHEN {_NEWER_READING} THEN COALESCE(excluded.battery_pct, device_status.battery_pct) "
    "ELSE device_status.battery_pct END",
    f"online = CASE WHEN {_NEWER_STATUS} THEN excluded.online ELSE device_status.online END",
    _later("status_ms"),
)


def _newer_wins(greatest: str) -> tuple[str, ...]:
    return tuple(clause.replace("MAX_OF", greatest) for clause in _NEWER_WINS_TEMPLATE)


_NEWER_WINS = _newer_wins("MAX")


def _saver(dialect: str) -> Callable[[Connection, list[DeviceState]], None]:
    """How changed states are written: one statement that inserts a device's row or replaces its values.

    Deleting 10,000 devices' rows and inserting them again through SQLAlchemy took ~100 ms of CPU, holding the
    database's write lock (which the alert store waits for) and most of the GIL. On SQLite, the default, the
    upsert goes to the driver as tuples, executed in C: ~23 ms. PostgreSQL gets its own upsert; any other
    database deletes and inserts.
    """
    if dialect == "sqlite":
        sql = (
            f"INSERT INTO device_status ({', '.join(_FIELDS)}) VALUES ({', '.join('?' for _ in _FIELDS)}) "
            f"ON CONFLICT (device_id) DO UPDATE SET {', '.join(_NEWER_WINS)}"
        )

        def save_sqlite(conn: Connection, states: list[DeviceState]) -> None:
            conn.exec_driver_sql(sql, [_row(state) for state in states])

        return save_sqlite
    if dialect == "postgresql":
        upsert = text(
            f"INSERT INTO device_status ({', '.join(_FIELDS)}) VALUES ({', '.join(':' + f for f in _FIELDS)}) "
            f"ON CONFLICT (device_id) DO UPDATE SET {', '.join(_newer_wins('GREATEST'))}"
        )

        def save_postgresql(conn: Connection, states: list[DeviceState]) -> None:
            conn.execute(upsert, [dict(zip(_FIELDS, _row(state), strict=True)) for state in states])

        return save_postgresql

    def delete_and_insert(conn: Connection, states: list[DeviceState]) -> None:
        conn.execute(delete(device_status).where(device_status.c.device_id.in_([s.device_id for s in states])))
        conn.execute(insert(device_status), [dict(zip(_FIELDS, _row(state), strict=True)) for state in states])

    return delete_and_insert


def _row(state: DeviceState) -> tuple[str, int | None, int | None, float | None, bool | None, int | None]:
    return (state.device_id, state.last_seen_ms, state.last_event_ms, state.battery_pct, state.online,
            state.status_ms)


class DeviceStates:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._dirty: set[str] = set()
        metadata.create_all(engine)
        self._save = _saver(engine.dialect.name)
        self._states: dict[str, DeviceState] = {}
        self.reload()

    def reload(self) -> None:
        """Take what is saved (at start, and when this instance takes over from another that saved it)."""
        with self.engine.connect() as conn:
            saved = {row.device_id: DeviceState(**row._mapping) for row in conn.execute(select(device_status))}
        with self._lock:
            self._states = saved
            self._dirty.clear()

    def saw_readings(self, readings: list[Reading]) -> None:
        # One update per device per batch: the latest times and the last battery it reported.
        latest: dict[str, tuple[int, int, float | None]] = {}
        for r in readings:
            known = latest.get(r.device_id)
            if known is None:  # the usual case: one reading per device in a batch
                latest[r.device_id] = (r.received_ms, r.ts_ms, r.battery_pct)
            else:
                seen, event, battery = known
                latest[r.device_id] = (
                    max(seen, r.received_ms),
                    max(event, r.ts_ms),
                    r.battery_pct if r.battery_pct is not None else battery,
                )
        with self._lock:
            states = self._states
            for device_id, (seen, event, battery) in latest.items():
                old = states.get(device_id) or DeviceState(device_id)
                # Built field by field, not with dataclasses.replace: this runs for every device in every batch,
                # and replace looks the fields up again each time (about three times slower).
                states[device_id] = DeviceState(
                    device_id,
                    max(old.last_seen_ms or 0, seen),
                    max(old.last_event_ms or 0, event),
                    battery if battery is not None else old.battery_pct,
                    # A device that sends data is online, whatever its last status said.
                    True if old.online is False and seen > (old.status_ms or 0) else old.online,
                    old.status_ms,
                )
            self._dirty.update(latest)

    def saw_status(self, device_id: str, online: bool, at_ms: int) -> None:
        with self._lock:
            old = self._states.get(device_id) or DeviceState(device_id)
            self._states[device_id] = replace(old, online=online, status_ms=at_ms)
            self._dirty.add(device_id)

    def get(self, device_id: str) -> DeviceState | None:
        with self._lock:
            return self._states.get(device_id)

    def all(self) -> dict[str, DeviceState]:
        with self._lock:
            return dict(self._states)

    def flush(self) -> None:
        """Save changed states; on a database error keep them dirty for the next try."""
        with self._lock:
            dirty = [self._states[d] for d in self._dirty]
            self._dirty.clear()
        if not dirty:
            return
        try:
            with self.engine.begin() as conn:
                self._save(conn, dirty)
        except SQLAlchemyError as exc:
            with self._lock:
                self._dirty.update(s.device_id for s in dirty)
            raise RetryableStorageError(f"cannot save device status: {exc}") from exc
