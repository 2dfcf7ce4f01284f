"""Dead letters and discovered devices, in the relational database.

A dead letter keeps the raw payload (up to a cap), the topic, a plain reason and its kind, so an admin can see
exactly what a device sent and why it was refused. A message from a device the registry does not know is a
dead letter too, and its source id is recorded as *discovered* so an admin can register it.
SQLAlchemy errors are mapped to ``RetryableStorageError``: the messages stay unacknowledged and come back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from placesense.errors import RetryableStorageError

MAX_STORED_PAYLOAD = 64 * 1024

metadata = MetaData()

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_ms", BigInteger, nullable=False, index=True),
    Column("topic", Text, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("payload_size", Integer, nullable=False),
    Column("kind", String(40), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("device_id", String(64), nullable=True, index=True),
)

discovered_devices = Table(
    "discovered_devices",
    metadata,
    Column("format", String(32), primary_key=True),
    Column("source_id", String(128), primary_key=True),
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


class DeadLetterStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as exc:
            raise RetryableStorageError(f"cannot prepare the dead-letter tables: {exc}") from exc

    def add_many(self, letters: Sequence[DeadLetter]) -> None:
        """Store letters (and discovered devices) in one transaction."""
        if not letters:
            return
        rows = [
            {
                "received_ms": d.received_ms,
                "topic": d.topic,
                "payload": d.payload[:MAX_STORED_PAYLOAD],
                "payload_size": len(d.payload),
                "kind": d.kind,
                "reason": d.reason,
                "device_id": d.device_id,
            }
            for d in letters
        ]
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(dead_letters), rows)
                for d in letters:
                    if d.kind == "unknown_device" and d.source_format and d.source_id:
                        self._discover(conn, d)
        except SQLAlchemyError as exc:
            raise RetryableStorageError(f"cannot store dead letters: {exc}") from exc

    @staticmethod
    def _discover(conn: Any, d: DeadLetter) -> None:
        key = (discovered_devices.c.format == d.source_format) & (discovered_devices.c.source_id == d.source_id)
        changed = conn.execute(
            update(discovered_devices)
            .where(key)
            .values(last_seen_ms=d.received_ms, messages=discovered_devices.c.messages + 1, topic=d.topic)
        ).rowcount
        if not changed:
            conn.execute(
                insert(discovered_devices).values(
                    format=d.source_format,
                    source_id=d.source_id,
                    topic=d.topic,
                    first_seen_ms=d.received_ms,
                    last_seen_ms=d.received_ms,
                    messages=1,
                    sample_payload=d.payload[:4096],
                )
            )

    def recent(self, *, limit: int = 100, offset: int = 0, kind: str | None = None) -> list[dict[str, Any]]:
        query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit).offset(offset)
        if kind:
            query = query.where(dead_letters.c.kind == kind)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def count(self, kind: str | None = None) -> int:
        query = select(func.count()).select_from(dead_letters)
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
