"""Which of several ``placesense serve`` instances evaluates: a lease in the shared database, with a fencing epoch.

Two (or more) instances sharing PostgreSQL, the broker and InfluxDB run active/standby (docs/scaling.md). Exactly
one holds the lease row ``leadership(name='evaluation')`` at a time; it renews it every third of
``PLACESENSE_HA_LEASE_S`` and runs ingest and the rules. The others watch, and take the lease over once it has
expired. Every take-over increments ``epoch``; every write only the leader may make (journal batches, the saved
evaluation state, alert changes from findings, reminders) runs ``fence`` in its own transaction, which reads the
lease row with a shared lock and refuses unless it still names this holder and epoch. A leader that was paused
(SIGSTOP, a frozen VM) past its lease therefore writes nothing when it wakes: its next fenced transaction fails,
and it steps down. The take-over itself waits for fenced transactions still running to end (the row lock), so
none straddles two terms.

A holder is ``<instance>/<boot id>``. A restarted instance may take its own lease over at once: serve holds its
state folder's lock, so the previous process of that instance is gone. This module never evaluates anything.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from placesense.basics.term import Fenced, Term

log = logging.getLogger("placesense.leadership")

metadata = MetaData()
leadership = Table(
    "leadership",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("since_ms", BigInteger, nullable=False),
)
EVALUATION = "evaluation"


@dataclass(frozen=True, slots=True)
class Holder:
    """The lease row as it is now: for /healthz and ``placesense doctor``."""

    instance: str
    epoch: int
    expires_ms: int
    since_ms: int


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def current_holder(engine: Engine) -> Holder | None:
    """The lease row as it is now, or None before any instance has led (the table is created by the first)."""
    if not inspect(engine).has_table(leadership.name):
        return None
    with engine.connect() as conn:
        row = conn.execute(select(leadership).where(leadership.c.name == EVALUATION)).first()
    if row is None:
        return None
    return Holder(row.holder.split("/", 1)[0], row.epoch, row.expires_ms, row.since_ms)


def fence(conn: Connection, term: Term) -> None:
    """Refuse (``Fenced``) unless ``term`` still holds the lease; call first in a leader-only transaction."""
    row = conn.execute(
        select(leadership.c.holder, leadership.c.epoch).where(leadership.c.name == EVALUATION)
        .with_for_update(read=True)
    ).first()
    if row is None or row.holder != term.holder or row.epoch != term.epoch:
        raise Fenced(f"the lease has passed from {term.holder} (epoch {term.epoch}) to "
                     f"{row.holder if row else 'nobody'} (epoch {row.epoch if row else '-'})")


class Lease:
    """This instance's side of the lease: acquire, renew, release, and who holds it."""

    def __init__(self, engine: Engine, url: str, instance: str, lease_s: float,
                 wall_ms: Callable[[], int] = _wall_ms) -> None:
        self.engine = engine
        self.url = url
        self.instance = instance
        self.holder = f"{instance}/{uuid.uuid4().hex[:8]}"
        self.lease_ms = int(lease_s * 1000)
        self._wall_ms = wall_ms
        self.took_over_from: str | None = None  # the instance this one last took the lease from, if another
        metadata.create_all(engine)

    def acquire(self) -> Term | None:
        """Hold (or keep holding) the lease for another ``lease_s``; the term, or None while another holds it."""
        now = self._wall_ms()
        expires = now + self.lease_ms
        try:
            with self.engine.begin() as conn:
                row = conn.execute(
                    select(leadership).where(leadership.c.name == EVALUATION).with_for_update()
                ).first()
                if row is None:
                    conn.execute(insert(leadership).values(name=EVALUATION, holder=self.holder, epoch=1,
                                                           expires_ms=expires, since_ms=now))
                    return Term(self.holder, 1, self.url)
                if row.holder == self.holder:
                    conn.execute(update(leadership).where(leadership.c.name == EVALUATION)
                                 .values(expires_ms=expires))
                    return Term(self.holder, row.epoch, self.url)
                restarted_here = row.holder.split("/", 1)[0] == self.instance
                if row.expires_ms < now or restarted_here:
                    epoch = row.epoch + 1
                    self.took_over_from = None if restarted_here else row.holder.split("/", 1)[0]
                    conn.execute(update(leadership).where(leadership.c.name == EVALUATION)
                                 .values(holder=self.holder, epoch=epoch, expires_ms=expires, since_ms=now))
                    return Term(self.holder, epoch, self.url)
                return None
        except IntegrityError:  # another instance inserted the first row at the same moment
            return None

    def release(self, term: Term) -> None:
        """Let the lease go at a clean stop, so a standby takes over at its next look rather than at expiry."""
        try:
            with self.engine.begin() as conn:
                conn.execute(update(leadership).where(
                    (leadership.c.name == EVALUATION) & (leadership.c.holder == term.holder)
                    & (leadership.c.epoch == term.epoch)
                ).values(expires_ms=0))
        except SQLAlchemyError as exc:
            log.warning("could not release the evaluation lease (%s); a standby takes over when it expires", exc)

    def holder_now(self) -> Holder | None:
        return current_holder(self.engine)


class Leadership:
    """Keeps the lease on a thread of its own and tells the service when it gains or loses it.

    ``elected(term)`` runs when this instance becomes the leader, ``deposed(term)`` when it stops being it (the
    lease passed to another, or could not be renewed within its time: better to stop than to risk two leaders).
    """

    def __init__(self, lease: Lease, elected: Callable[[Term], None], deposed: Callable[[Term], None]) -> None:
        self.lease = lease
        self._elected = elected
        self._deposed = deposed
        self.term: Term | None = None
        self._renewed_ms = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        return self.term is not None

    def start(self) -> None:
        self._look()  # at once: a single instance leads from its first second
        self._thread = threading.Thread(target=self._run, name="placesense-leadership", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching; the caller ends the term's work and then calls ``release``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.lease.lease_ms / 1000 + 5)

    def release(self) -> None:
        if self.term is not None:
            self.lease.release(self.term)
            self.term = None

    def _run(self) -> None:
        while not self._stop.wait(self.lease.lease_ms / 3000):
            self._look()

    def _look(self) -> None:
        try:
            term = self.lease.acquire()
        except SQLAlchemyError as exc:
            log.warning("cannot reach the database to renew the evaluation lease: %s", exc)
            term = self.term if self.term and self.lease._wall_ms() - self._renewed_ms < self.lease.lease_ms else None
        else:
            if term is not None:
                self._renewed_ms = self.lease._wall_ms()
        held = self.term
        if held is not None and (term is None or term.epoch != held.epoch):
            log.error("this instance (%s) is no longer the leader; stopping ingest and evaluation", held.holder)
            self.term = None
            try:
                self._deposed(held)
            except Exception:
                log.exception("stepping down failed")
        if term is not None and self.term is None and not self._stop.is_set():
            log.info("this instance (%s) leads evaluation (epoch %d)", term.holder, term.epoch)
            try:
                self._elected(term)
            except Exception:
                log.exception("taking over evaluation failed; letting the lease go")
                self.lease.release(term)
            else:
                self.term = term  # leading (for /healthz and the health watch) once ingest and evaluation run
