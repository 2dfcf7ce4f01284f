"""Alerts in the relational database: the ``Alert`` record and its audit history.

SQLAlchemy Core on the alert room's tables (``placesense.alerts.tables``; SQLite by default, PostgreSQL by URL
through ``placesense.basics.db.make_engine``). "One open alert per (rule, subject)" is enforced by the database
itself: a unique ``open_key`` column that holds ``rule/subject`` while the alert is open or acknowledged and NULL
once it is resolved (NULLs never collide, on SQLite and PostgreSQL alike). Every change writes a history row in the same
transaction as the change, so the audit trail cannot drift from the alert.

This module stores and loads; it does not decide anything. The lifecycle (dedup, escalation, who may do what)
lives in ``placesense.alerts.lifecycle``. SQLAlchemy errors are mapped to ``StorageError`` here, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from placesense.alerts.tables import alerts_table, history_table, metadata
from placesense.basics import texts
from placesense.basics.db import add_missing_columns
from placesense.basics.errors import StorageError
from placesense.basics.findings import Audience, Severity

AlertState = Literal["open", "acknowledged", "resolved"]
Evidence = Mapping[str, float | int | str | None]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change to an alert: who did what, when, with an optional note."""

    at_ms: int
    who: str
    action: str
    note: str | None
    severity: Severity


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as people see it: one per (rule, subject) while open, with its whole history."""

    id: int
    rule: str
    audience: Audience
    subject: str
    severity: Severity
    state: AlertState
    opened_at_ms: int
    updated_at_ms: int
    message: str
    evidence: Evidence = field(default_factory=dict)
    history: tuple[HistoryEntry, ...] = ()
    device_id: str | None = None
    last_notified_at_ms: int = 0
    reminders: int = 0
    text: texts.Text | None = None


def delete_dependents(conn: Connection, alert_ids: Any) -> None:
    """Delete the rows of every table that refers to the alerts ``alert_ids`` (a select of ids): their history,
    notifications and acknowledge links. Explicitly, first: SQLite only cascades when its foreign_keys pragma is
    on, so do not rely on it."""
    for table in reversed(metadata.sorted_tables):
        if table is not alerts_table and "alert_id" in table.c:
            conn.execute(delete(table).where(table.c.alert_id.in_(alert_ids)))


def open_key(rule: str, subject: str) -> str:
    return f"{rule}/{subject}"


class AlertStore:
    """Alert rows and their history in one relational database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with self._mapped():
            metadata.create_all(engine)
            add_missing_columns(engine, alerts_table)

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise StorageError(f"alert store: {type(exc).__name__}: {exc}") from exc

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit: the change and its history row commit together or not at all."""
        with self._mapped(), self.engine.begin() as conn:
            yield conn

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, alert_id: int, conn: Connection | None = None) -> Alert | None:
        if conn is None:
            with self.transaction() as own:
                return self.get(alert_id, own)
        row = conn.execute(select(alerts_table).where(alerts_table.c.id == alert_id)).mappings().first()
        return None if row is None else self._load(conn, [row])[0]

    def find_open(self, conn: Connection, rule: str, subject: str) -> Alert | None:
        row = (
            conn.execute(select(alerts_table).where(alerts_table.c.open_key == open_key(rule, subject)))
            .mappings()
            .first()
        )
        return None if row is None else self._load(conn, [row])[0]

    def query(
        self,
        audience: str | None = None,
        state: str | None = None,
        subject: str | None = None,
        subjects: frozenset[str] | None = None,
        limit: int = 500,
    ) -> list[Alert]:
        """Newest first. ``subjects`` restricts to a set (a care token's homes); ``state`` may be 'active'
        for open and acknowledged together."""
        query = select(alerts_table)
        if audience is not None:
            query = query.where(alerts_table.c.audience == audience)
        if state == "active":
            query = query.where(alerts_table.c.state.in_(("open", "acknowledged")))
        elif state is not None:
            query = query.where(alerts_table.c.state == state)
        if subject is not None:
            query = query.where(alerts_table.c.subject == subject)
        if subjects is not None:
            query = query.where(alerts_table.c.subject.in_(sorted(subjects)))
        query = query.order_by(alerts_table.c.updated_at.desc(), alerts_table.c.id.desc()).limit(limit)
        with self.transaction() as conn:
            rows = conn.execute(query).mappings().all()
            return self._load(conn, rows)

    def unacknowledged(self, conn: Connection) -> list[Alert]:
        rows = conn.execute(select(alerts_table).where(alerts_table.c.state == "open")).mappings().all()
        return self._load(conn, rows)

    # -- writes --------------------------------------------------------------------------------------

    def insert(
        self,
        conn: Connection,
        *,
        rule: str,
        audience: Audience,
        subject: str,
        severity: Severity,
        at_ms: int,
        message: str,
        evidence: Evidence,
        device_id: str | None,
        who: str,
        note: str | None,
        text: texts.Text | None = None,
    ) -> Alert:
        result = conn.execute(
            insert(alerts_table).values(
                rule=rule,
                audience=audience,
                subject=subject,
                severity=severity,
                state="open",
                opened_at=at_ms,
                updated_at=at_ms,
                message=message,
                evidence=dict(evidence),
                device_id=device_id,
                open_key=open_key(rule, subject),
                last_notified_at=at_ms,
                reminders=0,
                text=None if text is None else text.to_json(),
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        alert_id = int(key[0])
        self._history(conn, alert_id, at_ms, who, "opened", note, severity)
        found = self.get(alert_id, conn)
        assert found is not None
        return found

    def change(
        self,
        conn: Connection,
        alert: Alert,
        *,
        at_ms: int,
        who: str,
        action: str,
        note: str | None,
        **values: Any,
    ) -> Alert:
        """Update ``alert`` with ``values`` (column names), stamp ``updated_at`` and record the history row."""
        values.setdefault("updated_at", max(at_ms, alert.updated_at_ms))
        if values.get("state") == "resolved":
            values["open_key"] = None
        if "evidence" in values:
            values["evidence"] = dict(values["evidence"])
        if isinstance(values.get("text"), texts.Text):
            values["text"] = values["text"].to_json()
        conn.execute(update(alerts_table).where(alerts_table.c.id == alert.id).values(**values))
        self._history(conn, alert.id, at_ms, who, action, note, values.get("severity", alert.severity))
        found = self.get(alert.id, conn)
        assert found is not None
        return found

    def delete_subject(self, subject: str) -> int:
        """Erase every alert about ``subject`` with its history (UK GDPR erasure); return how many alerts."""
        with self.transaction() as conn:
            ids = select(alerts_table.c.id).where(alerts_table.c.subject == subject)
            delete_dependents(conn, ids)
            return int(conn.execute(delete(alerts_table).where(alerts_table.c.subject == subject)).rowcount)

    def _history(
        self, conn: Connection, alert_id: int, at_ms: int, who: str, action: str, note: str | None, severity: str
    ) -> None:
        conn.execute(
            insert(history_table).values(
                alert_id=alert_id, at=at_ms, who=who, action=action, note=note, severity=severity
            )
        )

    def _load(self, conn: Connection, rows: Any) -> list[Alert]:
        rows = list(rows)
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        history: dict[int, list[HistoryEntry]] = {i: [] for i in ids}
        for h in conn.execute(
            select(history_table)
            .where(history_table.c.alert_id.in_(ids))
            .order_by(history_table.c.at, history_table.c.id)
        ).mappings():
            history[h["alert_id"]].append(HistoryEntry(h["at"], h["who"], h["action"], h["note"], h["severity"]))
        return [
            Alert(
                id=row["id"],
                rule=row["rule"],
                audience=row["audience"],
                subject=row["subject"],
                severity=row["severity"],
                state=row["state"],
                opened_at_ms=row["opened_at"],
                updated_at_ms=row["updated_at"],
                message=row["message"],
                evidence=dict(row["evidence"] or {}),
                history=tuple(history[row["id"]]),
                device_id=row["device_id"],
                last_notified_at_ms=row["last_notified_at"],
                reminders=row["reminders"],
                text=_text(row["text"]),
            )
            for row in rows
        ]


def _text(stored: Any) -> texts.Text | None:
    """The stored template, or None for a plain-text message or one whose template this version no longer has."""
    if not stored:
        return None
    try:
        return texts.Text.from_json(stored)
    except (KeyError, TypeError):
        return None
