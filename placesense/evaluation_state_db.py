"""The evaluation's saved state as a row of the shared database, for active/standby instances (docs/scaling.md).

Same document as the state file (``placesense.evaluation_state``), kept where the standby that takes over can read
it. A save is fenced by the lease (``placesense.basics.leadership``): a deposed leader's evaluation process cannot
overwrite its successor's state. Loaded only when the instance runs active/standby.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, LargeBinary, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from placesense.basics.errors import StorageError
from placesense.basics.leadership import fence
from placesense.basics.term import Term
from placesense.evaluation_state import SavedState, encode_state, parse_state

metadata = MetaData()
state_rows = Table(
    "evaluation_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("saved_ms", BigInteger, nullable=False),
)


class DatabaseStore:
    """The state as one row of the shared database, so the standby that takes over starts from it. A save is
    fenced by the lease: a deposed leader's evaluation process cannot overwrite its successor's state."""

    def __init__(self, engine: Engine, term: Term) -> None:
        self.engine = engine
        self.term = term
        self.where = "the shared database (evaluation_state)"
        metadata.create_all(engine)

    def exists(self) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(state_rows.c.name).where(state_rows.c.name == "evaluation")).first() is not None

    def load(self) -> SavedState:
        with self.engine.connect() as conn:
            row = conn.execute(select(state_rows.c.body).where(state_rows.c.name == "evaluation")).first()
        return SavedState() if row is None else parse_state(bytes(row.body), self.where)

    def save(self, parts: Mapping[str, Any], *, applied_seq: int, clock_ms: int) -> int:
        data = encode_state(parts, applied_seq=applied_seq, clock_ms=clock_ms)
        now = time.time_ns() // 1_000_000
        try:
            with self.engine.begin() as conn:
                fence(conn, self.term)
                done = conn.execute(update(state_rows).where(state_rows.c.name == "evaluation")
                                    .values(body=data, saved_ms=now)).rowcount
                if not done:
                    conn.execute(insert(state_rows).values(name="evaluation", body=data, saved_ms=now))
        except SQLAlchemyError as exc:
            raise StorageError(f"cannot save the evaluation state to the database: {exc}") from exc
        return len(data)

    def retire_legacy(self) -> None:
        """No previous-release file in the database."""
