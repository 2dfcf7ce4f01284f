"""Dead letters and discovered devices, in the relational database.

A dead letter keeps the raw payload (up to a cap), the topic, a plain reason and its kind, so an admin can see
exactly what a device sent and why it was refused, and whose it was when ingest could tell (device, home or bed,
source format and id), so that a subject-access export or an erasure finds exactly that home's letters. A message
from a device the registry does not know is a dead letter too, and its source id is recorded as *discovered* so
an admin can register it.

Storing a dead letter never fails because of what the message holds: text is cut to the columns' sizes and made
storable (no NUL, no unpaired surrogate) first, and a letter the database still refuses is stored in a plain
ASCII form instead. Only a database that cannot be reached is an error (``RetryableStorageError``: the messages
stay unacknowledged and come back).

One device must not be able to fill the disk: per source and kind, the first ``samples_per_window`` letters of a
ten-minute window are stored whole and the rest only counted onto the last of them (``repeats``,
``last_received_ms``); the whole store is bounded (``max_bytes``; the oldest letters go first), and so are the
discovered devices and this module's own bookkeeping.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

from placesense.basics.db import add_missing_columns
from placesense.basics.errors import RetryableStorageError

log = logging.getLogger("placesense.ingest.deadletters")

MAX_STORED_PAYLOAD = 64 * 1024
# Column sizes. Text columns have no size, but a topic can be 64 KiB and is shown in lists: cut it.
TOPIC_MAX = 1024
REASON_MAX = 1000
KIND_MAX = 40
ID_MAX = 64  # device ids and subjects come from the registry, which allows at most 64 characters
FORMAT_MAX = 32
SOURCE_ID_MAX = 128

WINDOW_MS = 10 * 60_000
SAMPLES_PER_WINDOW = 3
# Whole letters stored per minute across all sources; past it, letters of sources not yet sampled are counted
# per kind onto a shared row. Many devices failing at once still leave a sample of each kind.
SAMPLES_PER_MINUTE = 600
MAX_TRACKED_SOURCES = 20_000
MAX_DISCOVERED = 10_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
ROW_OVERHEAD = 64  # ids, times and sizes of a row, for the estimate of the store's size
MANY_SOURCES = "(many sources)"

metadata = MetaData()

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_ms", BigInteger, nullable=False, index=True),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_size", Integer, nullable=False),
    Column("kind", String(KIND_MAX), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("device_id", String(ID_MAX), nullable=True, index=True),
    # Added after the first release (add_missing_columns adds them to an older table).
    Column("subject", String(ID_MAX), nullable=True),
    Column("source_format", String(FORMAT_MAX), nullable=True),
    Column("source_id", Text, nullable=True),
    Column("repeats", Integer, nullable=True),
    Column("last_received_ms", BigInteger, nullable=True),
)
subject_index = Index("ix_dead_letters_subject", dead_letters.c.subject)

discovered_devices = Table(
    "discovered_devices",
    metadata,
    Column("format", String(FORMAT_MAX), primary_key=True),
    Column("source_id", String(SOURCE_ID_MAX), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("first_seen_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger, nullable=False),
    Column("messages", Integer, nullable=False),
    Column("sample_payload", LargeBinary, nullable=False),
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str
    kind: str
    received_ms: int
    device_id: str | None = None
    source_format: str | None = None
    source_id: str | None = None
    subject: str | None = None  # the home, bed or site of the device, when ingest knew the device


def storable(text: str, limit: int) -> str:
    """``text`` as any database stores it: NUL (which PostgreSQL refuses in text) written as ``\\x00``, unpaired
    surrogates (which UTF-8 cannot carry) escaped, and cut to ``limit`` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_key(text: str, limit: int) -> str:
    """An identifier cut to ``limit`` characters that stays distinct from others sharing its start."""
    text = storable(text, 10 * limit)
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{text[: limit - 17]}~{digest}"


def _optional(text: str | None, limit: int) -> str | None:
    return None if text is None else storable(text, limit)


def _row(d: DeadLetter) -> dict[str, Any]:
    return {
        "received_ms": d.received_ms,
        "topic": storable(d.topic, TOPIC_MAX),
        "payload": d.payload[:MAX_STORED_PAYLOAD],
        "payload_size": len(d.payload),
        "kind": storable(d.kind, KIND_MAX),
        "reason": storable(d.reason, REASON_MAX),
        "device_id": _optional(d.device_id, ID_MAX),
        "subject": _optional(d.subject, ID_MAX),
        "source_format": _optional(d.source_format, FORMAT_MAX),
        "source_id": _optional(d.source_id, TOPIC_MAX),
        "repeats": 0,
        "last_received_ms": d.received_ms,
    }


def _plain_row(d: DeadLetter) -> dict[str, Any]:
    """The letter in ASCII only and well inside every column: what is stored when the database refused it as is."""
    row = _row(d)
    for name, limit in (("topic", 200), ("reason", 300), ("device_id", ID_MAX), ("subject", ID_MAX),
                        ("source_format", FORMAT_MAX), ("source_id", 200)):
        if row[name] is not None:
            row[name] = ascii(row[name])[1:-1][:limit]
    row["kind"] = ascii(row["kind"])[1:-1][:KIND_MAX]
    return row


def _size(row: dict[str, Any]) -> int:
    return len(row["payload"]) + len(row["topic"]) + len(row["reason"]) + ROW_OVERHEAD


def _source_of(d: DeadLetter) -> str:
    if d.device_id:
        return "device:" + d.device_id
    if d.source_id:
        return f"{d.source_format}:{d.source_id}"
    return "topic:" + d.topic[:200]


@dataclass(slots=True)
class _Window:
    """One source and kind's current ten minutes: how many whole letters it stored, and the last of them."""

    started_ms: int
    samples: int = 0
    row_id: int | None = None  # the last sample stored: repeats are counted onto it
    sample_index: int | None = None  # while that sample waits in the batch being written


class DeadLetterStore:
    def __init__(
        self,
        engine: Engine,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        samples_per_window: int = SAMPLES_PER_WINDOW,
        samples_per_minute: int = SAMPLES_PER_MINUTE,
        max_discovered: int = MAX_DISCOVERED,
    ) -> None:
        self.engine = engine
        self.max_bytes = max_bytes
        self.max_discovered = max_discovered
        self.samples_per_window = samples_per_window
        self.samples_per_minute = samples_per_minute
        self.pruned = 0  # letters removed to keep the store within max_bytes
        try:
            metadata.create_all(engine)
            add_missing_columns(engine, dead_letters)
            subject_index.create(engine, checkfirst=True)
        except SQLAlchemyError as exc:
            raise RetryableStorageError(f"cannot prepare the dead-letter tables: {exc}") from exc
        # Ingest's batch worker and the HTTP push both add letters; the windows and the size estimate must agree
        # with what was written, so one add (bookkeeping and its transaction) runs at a time. Writes to the
        # database are serialised by the database anyway; nothing else waits on this lock.
        self._writing = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._minute = (0, 0)  # (minute, whole letters stored in it)
        self._stored_bytes: int | None = None
        self._discovered: int | None = None

    # -- writing -----------------------------------------------------------------------------------------------

    def add_many(self, letters: Sequence[DeadLetter]) -> None:
        """Store letters (and discovered devices) in one transaction: whole, or counted onto an earlier sample."""
        if not letters:
            return
        with self._writing:
            try:
                self._add(letters, plain=False)
            except (OperationalError, InterfaceError) as exc:
                raise RetryableStorageError(f"cannot store dead letters: {exc}") from exc
            except (DBAPIError, UnicodeError) as exc:
                # The database refused something in the letters themselves, past what ``storable`` foresaw.
                # Retrying would refuse them again forever and hold up every message behind them.
                log.warning("the database refused dead letters as received (%s); storing them as plain ASCII",
                            type(exc).__name__)
                try:
                    self._add(letters, plain=True)
                except SQLAlchemyError as again:
                    raise RetryableStorageError(f"cannot store dead letters: {again}") from again
            except SQLAlchemyError as exc:
                raise RetryableStorageError(f"cannot store dead letters: {exc}") from exc

    def _add(self, letters: Sequence[DeadLetter], *, plain: bool) -> None:
        # Windows touched by this batch are copies, kept only if its transaction commits.
        changed: dict[tuple[str, str], _Window] = {}
        minute, stored_this_minute = self._minute
        samples: list[tuple[tuple[str, str], dict[str, Any]]] = []
        # Repeats are counted onto a window's last sample: a row already stored (its id) or one in this batch.
        onto_row: dict[int, list[int]] = {}  # row id -> [count, latest received]
        onto_sample: dict[int, list[int]] = {}  # index in samples -> [count, latest received]
        for letter in letters:
            now = letter.received_ms
            if now // 60_000 != minute:
                minute, stored_this_minute = now // 60_000, 0
            key = (_source_of(letter), letter.kind)
            window = changed.get(key) or self._windows.get(key)
            if (window is None or now - window.started_ms >= WINDOW_MS) and self._full(changed, stored_this_minute):
                self._windows = {k: w for k, w in self._windows.items() if now - w.started_ms < WINDOW_MS}
                if self._full(changed, stored_this_minute):
                    key = (MANY_SOURCES, letter.kind)  # too many sources at once: one row per kind counts them
                    window = changed.get(key) or self._windows.get(key)
            if window is None or now - window.started_ms >= WINDOW_MS:
                window = _Window(now)
            elif key not in changed:
                window = _Window(window.started_ms, window.samples, window.row_id, window.sample_index)
            changed[key] = window
            if window.samples < self.samples_per_window:
                window.samples += 1
                stored_this_minute += 1
                row = _plain_row(letter) if plain else _row(letter)
                if key[0] == MANY_SOURCES:
                    row["reason"] = storable(f"{row['reason']} (one of many sources refused at once)", REASON_MAX)
                window.sample_index = len(samples)
                samples.append((key, row))
                continue
            if window.sample_index is not None:
                count = onto_sample.setdefault(window.sample_index, [0, now])
            else:
                assert window.row_id is not None  # a window with no sample in this batch has one stored
                count = onto_row.setdefault(window.row_id, [0, now])
            count[0] += 1
            count[1] = max(count[1], now)
        with self.engine.begin() as conn:
            if samples:
                for index, row in enumerate(row for _key, row in samples):
                    if index in onto_sample:
                        row["repeats"], row["last_received_ms"] = onto_sample[index][0], onto_sample[index][1]
                ids = conn.execute(
                    insert(dead_letters).returning(dead_letters.c.id, sort_by_parameter_order=True),
                    [row for _key, row in samples],
                ).scalars().all()
                for window in changed.values():
                    if window.sample_index is not None:
                        window.row_id = int(ids[window.sample_index])
                        window.sample_index = None
            greatest = func.max if conn.dialect.name == "sqlite" else func.greatest
            for row_id, (folded, latest) in onto_row.items():
                conn.execute(
                    update(dead_letters)
                    .where(dead_letters.c.id == row_id)
                    .values(
                        repeats=func.coalesce(dead_letters.c.repeats, 0) + folded,
                        last_received_ms=greatest(func.coalesce(dead_letters.c.last_received_ms, 0), latest),
                    )
                )
            self._discover_all(conn, [d for d in letters if d.kind == "unknown_device" and d.source_id])
            pruned = self._keep_within_bounds(conn, sum(_size(row) for _key, row in samples))
        self._windows.update(changed)
        self._minute = (minute, stored_this_minute)
        if pruned:
            self.pruned += pruned
            log.warning("the dead-letter store reached %d MB: removed its %d oldest letters",
                        self.max_bytes // 1_000_000, pruned)

    def _full(self, changed: dict[tuple[str, str], _Window], stored_this_minute: int) -> bool:
        """Whether a source starting a new window must share the per-kind row: this minute's whole letters are
        spent, or this store tracks as many sources as it may."""
        return (stored_this_minute >= self.samples_per_minute
                or len(self._windows) + len(changed) >= MAX_TRACKED_SOURCES)

    def _keep_within_bounds(self, conn: Any, added: int) -> int:
        """Remove the oldest letters while the store holds more than ``max_bytes``; return how many went."""
        if self._stored_bytes is None:
            self._stored_bytes = self._measure(conn)
        else:
            self._stored_bytes += added
        if self._stored_bytes <= self.max_bytes:
            return 0
        self._stored_bytes = self._measure(conn)  # others (retention, erasure) may have deleted meanwhile
        target = int(self.max_bytes * 0.9)
        removed = 0
        while self._stored_bytes > target:
            oldest = conn.execute(
                select(dead_letters.c.id, self._size_sql()).order_by(dead_letters.c.id).limit(1000)
            ).all()
            if not oldest:
                break
            freed, last_id = 0, None
            for row_id, size in oldest:
                freed += int(size or 0)
                last_id = row_id
                removed += 1
                if self._stored_bytes - freed <= target:
                    break
            conn.execute(delete(dead_letters).where(dead_letters.c.id <= last_id))
            self._stored_bytes -= freed
        return removed

    @staticmethod
    def _size_sql() -> Any:
        return (
            func.length(dead_letters.c.payload) + func.length(dead_letters.c.topic)
            + func.length(dead_letters.c.reason) + ROW_OVERHEAD
        )

    def _measure(self, conn: Any) -> int:
        return int(conn.execute(select(func.coalesce(func.sum(self._size_sql()), 0))).scalar_one())

    def _discover_all(self, conn: Any, letters: Sequence[DeadLetter]) -> None:
        """Count unknown devices' messages, one statement per device and batch; at most ``max_discovered``."""
        latest: dict[tuple[str, str], tuple[DeadLetter, int]] = {}
        for d in letters:
            key = (bounded_key(d.source_format or "unknown", FORMAT_MAX), bounded_key(d.source_id or "",
                                                                                      SOURCE_ID_MAX))
            seen = latest.get(key)
            latest[key] = (d if seen is None or d.received_ms >= seen[0].received_ms else seen[0],
                           1 if seen is None else seen[1] + 1)
        if not latest:
            return
        if self._discovered is None:
            self._discovered = int(conn.execute(select(func.count()).select_from(discovered_devices)).scalar_one())
        for (source_format, source_id), (d, count) in latest.items():
            same = (discovered_devices.c.format == source_format) & (discovered_devices.c.source_id == source_id)
            changed = conn.execute(
                update(discovered_devices)
                .where(same)
                .values(last_seen_ms=d.received_ms, messages=discovered_devices.c.messages + count,
                        topic=storable(d.topic, TOPIC_MAX))
            ).rowcount
            if changed or self._discovered >= self.max_discovered:
                continue  # a full list keeps the devices it has; their dead letters still say what came
            conn.execute(
                insert(discovered_devices).values(
                    format=source_format,
                    source_id=source_id,
                    topic=storable(d.topic, TOPIC_MAX),
                    first_seen_ms=d.received_ms,
                    last_seen_ms=d.received_ms,
                    messages=count,
                    sample_payload=d.payload[:4096],
                )
            )
            self._discovered += 1

    # -- reading -----------------------------------------------------------------------------------------------

    def recent(self, *, limit: int = 100, offset: int = 0, kind: str | None = None) -> list[dict[str, Any]]:
        query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit).offset(offset)
        if kind:
            query = query.where(dead_letters.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def count(self, kind: str | None = None) -> int:
        """Letters stored (a sample with repeats counts once; see ``messages``)."""
        query = select(func.count()).select_from(dead_letters)
        if kind:
            query = query.where(dead_letters.c.kind == kind)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def messages(self, kind: str | None = None) -> int:
        """Messages dead-lettered: every stored letter and the repeats counted onto them."""
        query = select(func.count() + func.coalesce(func.sum(dead_letters.c.repeats), 0)).select_from(dead_letters)
        if kind:
            query = query.where(dead_letters.c.kind == kind)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def counts_by_kind(self) -> dict[str, int]:
        query = select(dead_letters.c.kind, func.count()).group_by(dead_letters.c.kind)
        with self.engine.connect() as conn:
            return {str(kind): int(n) for kind, n in conn.execute(query)}

    def discovered(self) -> list[dict[str, Any]]:
        query = select(discovered_devices).order_by(discovered_devices.c.last_seen_ms.desc())
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
