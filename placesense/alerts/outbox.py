"""The notification outbox: every message an alert change owes someone, stored with the change, sent afterwards.

``Outbox.enqueue(conn, change, at_ms, held)`` runs inside the alert lifecycle's transaction: the change and the
rows of its deliveries (MQTT topic, webhooks, SMS, email, chat) commit together or not at all, so a crash right
after the alert was stored still leaves every message it owes in the database, and the dispatcher
(``placesense.alerts.dispatch``) sends them when placesense is back. Each row has a ``message_id`` made once,
when it is written: every retry and every resend after a restart carries the same id (the Standard Webhooks
``webhook-id``, the MQTT payload's ``message_id``, GOV.UK Notify's ``reference``, the email's ``Message-ID``), so
a receiver can drop a duplicate. Rows of one lane (channel and recipient) are sent in the order they were written.

A message to a person carries an acknowledge link (``placesense.alerts.ack_links``) made in the same transaction.

This module stores and reads deliveries (in ``placesense.alerts.tables``); what is sent to whom is
``placesense.alerts.routing``'s decision, and sending is ``placesense.alerts.dispatch``'s. SQLAlchemy errors are
mapped to ``StorageError`` here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from placesense.alerts.ack_links import AckLinks
from placesense.alerts.changes import AlertChange
from placesense.alerts.routing import Intent, Router
from placesense.alerts.tables import metadata, outbox_table
from placesense.basics.errors import StorageError

DeliveryState = Literal["pending", "sent", "delivered", "failed"]
FINAL_STATES = frozenset({"delivered", "failed"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: a message owed to one recipient on one channel."""

    id: int
    message_id: str
    alert_id: int
    action: str
    channel: str
    recipient: str
    person: str | None
    step: int
    payload: dict[str, Any]
    state: DeliveryState
    created_at_ms: int
    next_attempt_at_ms: int
    attempts: int
    sent_at_ms: int | None
    settled_at_ms: int | None
    provider: str | None
    provider_ref: str | None
    detail: str | None

    @property
    def lane(self) -> tuple[str, str]:
        """Messages of one lane go out in order: one recipient on one channel."""
        return (self.channel, self.recipient)


@dataclass(frozen=True, slots=True)
class Summary:
    """What the alert's JSON says about its notifications."""

    people: tuple[str, ...]
    pending: int
    sent: int
    delivered: int
    failed: int
    last_at_ms: int | None


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


class Outbox:
    """The outbox rows in the alert store's database, and how the lifecycle and the dispatcher use them."""

    def __init__(
        self, engine: Engine, router: Router, links: AckLinks | None = None, wall_ms: Callable[[], int] | None = None
    ) -> None:
        from time import time_ns

        self.engine = engine
        self.router = router
        self.links = links
        self._wall_ms = wall_ms or (lambda: time_ns() // 1_000_000)
        self._listeners: list[Callable[[], None]] = []
        with self._mapped():
            metadata.create_all(engine)

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise StorageError(f"notification outbox: {type(exc).__name__}: {exc}") from exc

    # -- written by the alert lifecycle, in its transaction ---------------------------------------------------

    def enqueue(self, conn: Connection, change: AlertChange, at_ms: int, held: bool) -> int:
        """Write the deliveries ``change`` owes (none while ``held`` by quiet hours); returns how many."""
        if held:
            return 0
        told = self._told(conn, change.alert.id) if change.action in ("acknowledged", "resolved") else ()
        intents = self.router.intents(change, at_ms, told)
        now = self._wall_ms()
        for intent in intents:
            self._insert(conn, change, intent, now)
        return len(intents)

    def _insert(self, conn: Connection, change: AlertChange, intent: Intent, now: int) -> None:
        message_id = new_message_id()
        payload = dict(intent.payload)
        if intent.person is not None and "text" in payload:
            link = None
            if intent.link and self.links is not None:
                link = self.links.create(conn, change.alert.id, intent.person, message_id, now)
            payload["text"] = self.router.with_link(payload["text"], link)
            payload["link"] = link
        conn.execute(insert(outbox_table).values(
            message_id=message_id, alert_id=change.alert.id, action=change.action, channel=intent.channel,
            recipient=intent.recipient, person=intent.person, step=intent.step, payload=payload, state="pending",
            created_at=now, next_attempt_at=now, attempts=0,
        ))

    def _told(self, conn: Connection, alert_id: int) -> tuple[str, ...]:
        rows = conn.execute(
            select(outbox_table.c.person).where(outbox_table.c.alert_id == alert_id, outbox_table.c.person.is_not(None))
            .group_by(outbox_table.c.person).order_by(func.min(outbox_table.c.id))
        ).scalars().all()
        return tuple(str(person) for person in rows)

    def on_enqueued(self, listener: Callable[[], None]) -> None:
        """``listener`` is called after each commit that wrote deliveries (the dispatcher's wake-up)."""
        self._listeners.append(listener)

    def wake(self) -> None:
        for listener in list(self._listeners):
            listener()

    # -- read and marked by the dispatcher --------------------------------------------------------------------

    def due(self, channel: str, now_ms: int, limit: int = 200) -> list[Delivery]:
        """The next deliveries of ``channel`` to try: the oldest pending row of each lane, if its time has come."""
        with self._mapped(), self.engine.begin() as conn:
            rows = conn.execute(
                select(outbox_table).where(outbox_table.c.state == "pending", outbox_table.c.channel == channel)
                .order_by(outbox_table.c.id).limit(limit * 4)
            ).mappings().all()
        heads: dict[tuple[str, str], Delivery] = {}
        for row in rows:
            delivery = _delivery(row)
            heads.setdefault(delivery.lane, delivery)
        return [d for d in heads.values() if d.next_attempt_at_ms <= now_ms][:limit]

    def next_due_ms(self, channel: str) -> int | None:
        with self._mapped(), self.engine.begin() as conn:
            value = conn.execute(
                select(func.min(outbox_table.c.next_attempt_at))
                .where(outbox_table.c.state == "pending", outbox_table.c.channel == channel)
            ).scalar()
        return None if value is None else int(value)

    def mark(self, delivery_id: int, **values: Any) -> None:
        with self._mapped(), self.engine.begin() as conn:
            conn.execute(update(outbox_table).where(outbox_table.c.id == delivery_id).values(**values))

    def awaiting_receipt(self, channel: str, since_ms: int, limit: int = 200) -> list[Delivery]:
        """Sent through a provider that reports delivery later (GOV.UK Notify), not yet settled."""
        with self._mapped(), self.engine.begin() as conn:
            rows = conn.execute(
                select(outbox_table).where(
                    outbox_table.c.state == "sent", outbox_table.c.channel == channel,
                    outbox_table.c.provider_ref.is_not(None), outbox_table.c.sent_at >= since_ms,
                ).order_by(outbox_table.c.id).limit(limit)
            ).mappings().all()
        return [_delivery(row) for row in rows]

    # -- read by the API ------------------------------------------------------------------------------------

    def for_alert(self, alert_id: int) -> list[Delivery]:
        with self._mapped(), self.engine.begin() as conn:
            rows = conn.execute(
                select(outbox_table).where(outbox_table.c.alert_id == alert_id).order_by(outbox_table.c.id)
            ).mappings().all()
        return [_delivery(row) for row in rows]

    def get(self, message_id: str) -> Delivery | None:
        with self._mapped(), self.engine.begin() as conn:
            row = conn.execute(select(outbox_table).where(outbox_table.c.message_id == message_id)).mappings().first()
        return None if row is None else _delivery(row)

    def summaries(self, alert_ids: Iterable[int]) -> dict[int, Summary]:
        ids = sorted(set(alert_ids))
        if not ids:
            return {}
        found: dict[int, dict[str, Any]] = {}
        with self._mapped(), self.engine.begin() as conn:
            rows = conn.execute(
                select(outbox_table.c.alert_id, outbox_table.c.person, outbox_table.c.state,
                       outbox_table.c.created_at, outbox_table.c.sent_at)
                .where(outbox_table.c.alert_id.in_(ids)).order_by(outbox_table.c.id)
            ).all()
        for alert_id, person, state, created_at, sent_at in rows:
            entry = found.setdefault(alert_id, {"people": [], "pending": 0, "sent": 0, "delivered": 0, "failed": 0,
                                                "last": None})
            if person is not None and person not in entry["people"]:
                entry["people"].append(person)
            entry[state] += 1
            entry["last"] = max(entry["last"] or 0, sent_at or created_at)
        return {
            alert_id: Summary(tuple(e["people"]), e["pending"], e["sent"], e["delivered"], e["failed"], e["last"])
            for alert_id, e in found.items()
        }

    def counts(self) -> dict[str, int]:
        """Rows by state (for /metrics)."""
        with self._mapped(), self.engine.begin() as conn:
            rows = conn.execute(
                select(outbox_table.c.state, func.count()).group_by(outbox_table.c.state)
            ).all()
        return {str(state): int(count) for state, count in rows}


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row["id"], message_id=row["message_id"], alert_id=row["alert_id"], action=row["action"],
        channel=row["channel"], recipient=row["recipient"], person=row["person"], step=row["step"],
        payload=dict(row["payload"] or {}), state=row["state"], created_at_ms=row["created_at"],
        next_attempt_at_ms=row["next_attempt_at"], attempts=row["attempts"], sent_at_ms=row["sent_at"],
        settled_at_ms=row["settled_at"], provider=row["provider"], provider_ref=row["provider_ref"],
        detail=row["detail"],
    )
