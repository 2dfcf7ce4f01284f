"""The relational database engine shared by the rooms (SQLite by default, PostgreSQL by URL).

Each room declares its own tables on its own ``MetaData`` and creates them with ``create_all``; this module
only builds the engine with settings that make SQLite safe for a multi-threaded service and private on disk,
and adds columns a newer version declares to a table an older version created.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateColumn

from placesense.basics.files import make_private, private_dir, touch_private

# The SQLite files beside the database: SQLite gives them the database file's own mode when it creates them.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite, creates the folder and a 0600 database file and turns on WAL and a busy
    timeout. ``postgresql://`` URLs use psycopg 3 (the driver placesense installs)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        server = create_engine(parsed, pool_pre_ping=True, future=True)
        # An engine dropped without dispose() would leave its pooled connections to the garbage collector, which
        # closes the sockets without saying goodbye to the server (and psycopg warns); close them properly.
        weakref.finalize(server, server.pool.dispose)
        return server
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        database = Path(parsed.database)
        private_dir(database.parent)
        # Alerts, notes and dead letters are personal data: the file is created 0600 before SQLite opens it, and
        # SQLite creates its WAL and shared-memory files with the database file's mode.
        touch_private(database)
        for suffix in SQLITE_SIDE_FILES:
            make_private(database.with_name(database.name + suffix))
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30}, future=True)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # FULL: a dead letter or alert change that was committed survives a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def add_missing_columns(engine: Engine, table: Table) -> list[str]:
    """Add to an existing ``table`` the nullable columns its declaration has and the database lacks (a table an
    older version created); return their names. ``create_all`` creates missing tables but never alters one."""
    existing = inspect(engine)
    if not existing.has_table(table.name):
        return []
    present = {column["name"] for column in existing.get_columns(table.name)}
    added = []
    with engine.begin() as conn:
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise ValueError(f"cannot add the required column {table.name}.{column.name} to an existing table")
            ddl = CreateColumn(column).compile(dialect=engine.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
            added.append(column.name)
    return added
