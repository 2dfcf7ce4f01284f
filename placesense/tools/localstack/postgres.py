"""A local PostgreSQL server for the tests that run the relational stores on PostgreSQL as well as SQLite.

``PostgreSQL`` makes a fresh cluster with ``initdb`` and runs Debian's ``postgres`` on a loopback port, as an
unprivileged account when we are root (``placesense.tools.localstack.process`` starts and stops it); it creates
and drops empty databases. It must not create tables: the stores do that through SQLAlchemy, as in production.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from placesense.tools.localstack.process import LocalStackError, ManagedProcess, free_port, group_of


def _postgres_bin(name: str) -> str:
    """A PostgreSQL server program from Debian's packages (``/usr/lib/postgresql/<version>/bin``), newest first."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key, reverse=True)
    for candidate in (*found, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return candidate
    raise LocalStackError(
        f"PostgreSQL's {name} is not installed. Run 'make setup' (it installs the Debian package 'postgresql'), "
        "or 'apt-get install postgresql'."
    )


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


@dataclass
class PostgreSQL:
    """A PostgreSQL server (Debian's ``postgresql``) on a loopback port, started as an ordinary process.

    ``initdb`` makes a fresh cluster with one password-protected superuser; the server listens on 127.0.0.1 only
    (no Unix socket). PostgreSQL refuses to run as root, so under root the cluster lives in a folder of its own
    under the system's temporary folder, owned by the unprivileged ``postgres`` account the Debian package
    creates, and the server runs as that account; ``remove`` deletes that folder. ``durable=False`` (tests)
    turns fsync off: a crash of the test machine may lose the cluster, which a test run throws away anyway.
    """

    data_dir: Path
    port: int = 0
    durable: bool = False
    run_as: str | None = field(default=None)
    user: str = "placesense"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    proc: ManagedProcess = field(init=False)
    cluster_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as is None and os.geteuid() == 0:
            self.run_as = "postgres"
        if self.run_as is not None:
            try:
                account = pwd.getpwnam(self.run_as)
            except KeyError as exc:
                raise LocalStackError(
                    f"PostgreSQL cannot run as root and there is no {self.run_as!r} account to run it as; "
                    "install Debian's 'postgresql' package (it creates one) or run the tests as another user."
                ) from exc
            # The account must reach the cluster, and root's temporary folders are private to root.
            self.cluster_dir = Path(tempfile.mkdtemp(prefix="placesense-pg-"))
            os.chown(self.cluster_dir, account.pw_uid, account.pw_gid)
        else:
            self.cluster_dir = self.data_dir / "cluster"
        self.proc = ManagedProcess(
            "postgres",
            [_postgres_bin("postgres"), "-D", str(self.cluster_dir / "data"), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
             "-c", "max_connections=300", "-c", "log_min_messages=warning",
             *([] if self.durable else ["-c", "fsync=off", "-c", "synchronous_commit=off",
                                        "-c", "full_page_writes=off"])],
            self.data_dir / "postgres.log",
            user=self.run_as,
            cwd=self.cluster_dir,
        )

    def _initdb(self) -> None:
        if (self.cluster_dir / "data" / "PG_VERSION").exists():
            return
        pwfile = self.cluster_dir / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.password + "\n")
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        try:
            result = subprocess.run(
                [_postgres_bin("initdb"), "-D", str(self.cluster_dir / "data"), "-U", self.user,
                 f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
                 "--no-instructions"],
                capture_output=True, text=True, check=False, user=self.run_as, group=group_of(self.run_as),
                cwd=self.cluster_dir,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LocalStackError(f"initdb failed: {(result.stderr or result.stdout).strip()[-800:]}")

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3)."""
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                               dbname="postgres", autocommit=True, connect_timeout=2)

    def ready(self) -> bool:
        try:
            with self._admin() as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:  # psycopg.OperationalError while it starts; anything else shows in the log
            return False

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting whoever still holds it (engines a test forgot to dispose)."""
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def start(self) -> None:
        self._initdb()
        self.proc.start_until(lambda: self.ready(), 30)

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: it ends open sessions instead of waiting for them.
        self.proc.stop(signal.SIGINT)

    def remove(self) -> None:
        """Stop, and delete the cluster folder made under the system's temporary folder (when run as root)."""
        self.stop()
        if self.run_as is not None:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
