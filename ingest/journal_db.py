"""The evaluation journal in the shared database, for active/standby instances (docs/scaling.md).

With one ``placesense serve``, the journal is files on its own disk (``ingest.journal``). With two instances
sharing PostgreSQL, the batches the leader stored and acknowledged but its rules had not yet saved must be
readable by the standby that takes over; so they are rows of ``evaluation_journal`` instead. Only the leader
appends (ingest runs on the leader alone), each append is fenced by the lease (``placesense.basics.leadership``): a
leader that lost the lease appends nothing, does not acknowledge, and the broker gives the messages to the new
one. Rows are deleted once the saved evaluation state includes them.

This module keeps bytes in order; it must not decode metrics or evaluate anything.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import BigInteger, Column, Engine, Integer, LargeBinary, MetaData, Table, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from ingest.journal import Backlog, JournalRecord
from placesense.basics.errors import RetryableStorageError
from placesense.basics.leadership import fence
from placesense.basics.term import Fenced, Term

metadata = MetaData()
journal_rows = Table(
    "evaluation_journal",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
)


class DatabaseJournal(Backlog):
    """The journal as rows of the shared database; appends fenced by this instance's term of the lease."""

    def __init__(self, engine: Engine, term: Term, max_pending_readings: int | None = None) -> None:
        super().__init__(max_pending_readings)
        self.engine = engine
        self.term = term
        metadata.create_all(engine)
        with engine.connect() as conn:
            self.last_seq = int(conn.execute(select(func.coalesce(func.max(journal_rows.c.seq), 0))).scalar_one())
            self.bytes = int(conn.execute(
                select(func.coalesce(func.sum(func.length(journal_rows.c.payload)), 0))
            ).scalar_one())
        self.remember_tail()

    def append_payload(self, seq: int, count: int, payload: bytes) -> int:
        try:
            with self.engine.begin() as conn:
                fence(conn, self.term)  # a deposed leader writes nothing: the broker redelivers to the new one
                conn.execute(insert(journal_rows).values(seq=seq, count=count, payload=payload))
        except SQLAlchemyError as exc:
            raise RetryableStorageError(f"cannot write to the evaluation journal in the database: {exc}") from exc
        return len(payload)

    def reader(self, after_seq: int) -> DatabaseReader:
        return DatabaseReader(self, after_seq)

    def release_through(self, seq: int) -> int:
        with self.engine.begin() as conn:
            fence(conn, self.term)
            freed = int(conn.execute(
                select(func.coalesce(func.sum(func.length(journal_rows.c.payload)), 0)).where(journal_rows.c.seq <= seq)
            ).scalar_one())
            conn.execute(delete(journal_rows).where(journal_rows.c.seq <= seq))
        self.bytes -= freed
        return freed


class DatabaseReader:
    """Reads the journal's rows in order; waits on the journal's own notification for rows this process appends
    (ingest and the evaluator run in one process), and reads rows a previous leader left at once."""

    def __init__(self, journal: DatabaseJournal, after_seq: int) -> None:
        self._journal = journal
        self.next_seq = after_seq + 1

    def _fetch(self, limit: int) -> list[JournalRecord]:
        with self._journal.engine.connect() as conn:
            rows = conn.execute(
                select(journal_rows).where(journal_rows.c.seq >= self.next_seq).order_by(journal_rows.c.seq)
                .limit(limit)
            ).all()
        return [JournalRecord(seq, count, bytes(payload)) for seq, count, payload in rows]

    def available(self) -> Iterator[JournalRecord]:
        while True:
            records = self._fetch(100)
            if not records:
                return
            for record in records:
                self.next_seq = record.seq + 1
                yield record

    def next(self, timeout_s: float) -> JournalRecord | None:
        records = self._fetch(1)
        if not records:
            if not self._journal.wait_for(self.next_seq, timeout_s):
                return None
            records = self._fetch(1)
            if not records:
                return None
        self.next_seq = records[0].seq + 1
        return records[0]

    def close(self) -> None:
        """Nothing held between reads."""


class StandbyJournal(Backlog):
    """What a standby instance holds in place of the journal until it leads: nothing, and it takes nothing (the
    HTTP push answers 503 there; the leader takes the readings)."""

    def __init__(self) -> None:
        super().__init__(None)

    def append_payload(self, seq: int, count: int, payload: bytes) -> int:
        raise Fenced("this instance is a standby: the leader stores and evaluates readings")

    def reader(self, after_seq: int) -> DatabaseReader:
        raise Fenced("this instance is a standby: it evaluates nothing")

    def release_through(self, seq: int) -> int:
        return 0
