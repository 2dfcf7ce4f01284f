"""The audit log of who read or acted on which home's data through the API. Append-only.

Each row: when, the token's name and role, the action (``readings``, ``routine``, ``alerts``, ``devices``,
``alert.ack``, ``alert.resolve``), the pseudonymous home id and a short detail (device, alert id). Refused
attempts are rows too (``refused.<why>``: a missing or unknown token, a role the route does not admit, a home
outside the token's scope), at most ``REFUSALS_PER_MINUTE`` a minute per caller and reason so that a flood of
bad requests cannot fill the disk; the rest are counted (``placesense_api_refused_total``). Rows are only
ever inserted: this module offers no update or delete, and database triggers refuse both (and, on PostgreSQL,
TRUNCATE), so even a bug elsewhere in the process cannot rewrite history. The table lives on its own
``MetaData`` in the shared engine. This module must not decide who may read what (``api.auth`` does) nor build
responses.
"""

from __future__ import annotations

import builtins
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import DDL, BigInteger, Column, Engine, Integer, MetaData, String, Table, event, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from api.auth import Principal
from placesense.basics.errors import RetryableStorageError

log = logging.getLogger("placesense.api.audit")

REFUSALS_PER_MINUTE = 60

metadata = MetaData()

api_audit = Table(
    "api_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False, index=True),
    Column("token_name", String(80), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),
    Column("home_id", String(64), nullable=False, index=True),
    Column("detail", String(200), nullable=False, default=""),
)

for _verb in ("UPDATE", "DELETE"):
    event.listen(
        api_audit,
        "after_create",
        DDL(  # type: ignore[no-untyped-call]
            f"CREATE TRIGGER IF NOT EXISTS api_audit_no_{_verb.lower()} BEFORE {_verb} ON api_audit "
            "BEGIN SELECT RAISE(ABORT, 'the API audit log is append-only'); END"
        ).execute_if(dialect="sqlite"),
    )
# PostgreSQL: one function refuses every change, for rows (UPDATE, DELETE) and for the whole table (TRUNCATE).
_POSTGRESQL_APPEND_ONLY = (
    "CREATE OR REPLACE FUNCTION api_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the API audit log is append-only'; END $$",
    "CREATE OR REPLACE TRIGGER api_audit_no_change BEFORE UPDATE OR DELETE ON api_audit "
    "FOR EACH ROW EXECUTE FUNCTION api_audit_append_only()",
    "CREATE OR REPLACE TRIGGER api_audit_no_truncate BEFORE TRUNCATE ON api_audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION api_audit_append_only()",
)
for _statement in _POSTGRESQL_APPEND_ONLY:
    event.listen(
        api_audit,
        "after_create",
        DDL(_statement).execute_if(dialect="postgresql"),  # type: ignore[no-untyped-call]
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at_ms: int
    token_name: str
    role: str
    action: str
    home_id: str
    detail: str


class AuditLog:
    def __init__(self, engine: Engine, count_refusal: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self._count_refusal = count_refusal
        self._refusals: dict[tuple[str, str], tuple[int, int]] = {}  # (caller, why) -> (minute, rows written)
        self._refusals_lock = threading.Lock()
        try:
            metadata.create_all(engine)
        except SQLAlchemyError as exc:
            raise RetryableStorageError(f"cannot prepare the API audit table: {exc}") from exc

    def refused(self, token_name: str, role: str, why: str, home: str = "", detail: str = "") -> None:
        """Record a refused attempt (``why``: unauthenticated, role, scope, origin); ``home`` the home it was about, if
        any. Never raises: the refusal stands whether or not it could be written down."""
        if self._count_refusal is not None:
            self._count_refusal(why)
        minute = time.time_ns() // 60_000_000_000
        with self._refusals_lock:
            if len(self._refusals) > 10_000:
                self._refusals = {k: v for k, v in self._refusals.items() if v[0] == minute}
            seen_minute, written = self._refusals.get((token_name, why), (minute, 0))
            if seen_minute != minute:
                written = 0
            if written >= REFUSALS_PER_MINUTE:
                return  # counted in the metric only, until the next minute
            self._refusals[(token_name, why)] = (minute, written + 1)
        if written + 1 == REFUSALS_PER_MINUTE:
            detail = f"{detail} (further such refusals this minute are only counted)"
        row = {"at_ms": time.time_ns() // 1_000_000, "token_name": token_name[:80], "role": role[:16],
               "action": f"refused.{why}"[:32], "home_id": home[:64], "detail": detail[:200]}
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(api_audit), [row])
        except SQLAlchemyError as exc:
            log.warning("could not write a refused attempt to the audit log: %s", exc)

    def record(self, principal: Principal, action: str, homes: Iterable[str], detail: str = "") -> None:
        """Append one row per home; nothing to do when no home's data was involved."""
        now = time.time_ns() // 1_000_000
        rows: list[dict[str, Any]] = [
            {
                "at_ms": now,
                "token_name": principal.name,
                "role": principal.role,
                "action": action,
                "home_id": home,
                "detail": detail[:200],
            }
            for home in sorted(set(homes))
        ]
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(api_audit), rows)
        except SQLAlchemyError as exc:
            # Refusing the read is right: data about a home must not leave unaudited.
            raise RetryableStorageError(f"cannot write the API audit log: {exc}") from exc

    def list(self, *, home_id: str | None = None, limit: int = 100, before_id: int | None = None) -> list[AuditEntry]:
        query = select(api_audit).order_by(api_audit.c.id.desc()).limit(limit)
        if home_id:
            query = query.where(api_audit.c.home_id == home_id)
        if before_id is not None:
            query = query.where(api_audit.c.id < before_id)
        with self.engine.connect() as conn:
            return [AuditEntry(**row._mapping) for row in conn.execute(query)]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(api_audit)).scalar_one())

    def latest(self, actions: tuple[str, ...], *, since_ms: int) -> builtins.list[AuditEntry]:
        """The newest row of each (action, subject) among ``actions`` since ``since_ms``, newest first (what a
        page shows as "watered at 10:05 by parks-team")."""
        newest = (
            select(func.max(api_audit.c.id))
            .where(api_audit.c.action.in_(actions), api_audit.c.at_ms >= since_ms)
            .group_by(api_audit.c.action, api_audit.c.home_id)
        )
        query = select(api_audit).where(api_audit.c.id.in_(newest)).order_by(api_audit.c.id.desc())
        with self.engine.connect() as conn:
            return [AuditEntry(**row._mapping) for row in conn.execute(query)]
