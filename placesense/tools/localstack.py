"""Local mosquitto, InfluxDB and PostgreSQL processes for the demo, the tests and the benchmark.

This module only starts, checks and stops servers from Debian's packages, with their data in a folder we choose
(``var/`` for the demo, a temporary folder for tests). It knows nothing about readings or devices. Production
deployments point placesense at their own broker, InfluxDB and database instead.
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from placesense.basics.errors import PlacesenseError


class LocalStackError(PlacesenseError):
    """A local server could not be started or did not become ready."""


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until it returns true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise LocalStackError(f"{what} did not become ready within {timeout_s:.0f} s")


def _require_binary(name: str, package: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and Path(candidate).exists():
            return candidate
    raise LocalStackError(
        f"{name} is not installed. Run 'make setup' (it installs the Debian package {package!r}), "
        f"or 'apt-get install {package}'."
    )


@dataclass
class ManagedProcess:
    """A server process we started, with its log file."""

    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    user: str | None = None  # run as this account (PostgreSQL refuses to run as root)
    cwd: Path | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            user=self.user, group=_group_of(self.user), cwd=self.cwd,
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Mosquitto:
    """A mosquitto broker on a loopback port with persistence in ``data_dir``.

    By default it is anonymous and plain, as the tests and the benchmark run it. With ``config_dir``, a folder
    ``placesense broker-config`` wrote (``placesense.tools.broker_config``), the broker takes that folder's
    ``mosquitto.conf`` instead: its accounts, ACLs, limits and listeners, each binding client ids to usernames.
    ``port`` (and ``tls_port`` for a TLS listener) must then be the ones that configuration listens on.
    """

    data_dir: Path
    port: int = 0
    extra_config: str = ""
    config_dir: Path | None = None
    tls_port: int = 0
    proc: ManagedProcess = field(init=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = _require_binary("mosquitto", "mosquitto")
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(self.config_text())
        self.proc = ManagedProcess("mosquitto", [binary, "-c", str(conf)], self.data_dir / "mosquitto.log")

    def config_text(self) -> str:
        common = [
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "autosave_interval 5",
            "persistent_client_expiration 7d",
            f"user {getpass.getuser()}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_timestamp true",
            self.extra_config,
        ]
        if self.config_dir is not None:
            # Last, so that its limits are the ones in force; it defines the listeners itself.
            return "\n".join([*common, f"include_dir {self.config_dir.resolve()}", ""])
        # Persistent sessions and queues must survive a broker restart, and a consumer that acknowledges after a
        # durable write needs many messages in flight; placesense bounds that itself with MQTT 5's Receive Maximum.
        return "\n".join(
            [
                f"listener {self.port} 127.0.0.1",
                "allow_anonymous true",
                "max_inflight_messages 0",
                "max_queued_messages 2000000",
                "max_queued_bytes 0",
                *common,
                "",
            ]
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """The TLS listener's URL; the server certificate must name 127.0.0.1."""
        if not self.tls_port:
            raise LocalStackError("this mosquitto has no TLS listener")
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def start(self) -> None:
        self.proc.start()
        try:
            wait_until(lambda: _port_open(self.port) or not self.proc.running, 15, "mosquitto")
        except LocalStackError as exc:
            raise LocalStackError(f"{exc}\n{self.proc.log_tail()}") from exc
        if not self.proc.running:
            raise LocalStackError(f"mosquitto exited at start:\n{self.proc.log_tail()}")

    def stop(self) -> None:
        self.proc.stop()

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class InfluxDB:
    """An InfluxDB 1.x server (Debian's ``influxdb``) on loopback ports with its data in ``data_dir``."""

    data_dir: Path
    port: int = 0
    proc: ManagedProcess = field(init=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port()
        self.rpc_port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = _require_binary("influxd", "influxdb")
        conf = self.data_dir / "influxdb.conf"
        conf.write_text(self.config_text())
        self.proc = ManagedProcess("influxd", [binary, "-config", str(conf)], self.data_dir / "influxd.log")

    def config_text(self) -> str:
        d = self.data_dir
        return f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{d}/meta"
  logging-enabled = false

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
  cache-max-memory-size = "512m"
  max-series-per-database = 0
  max-values-per-tag = 0

[coordinator]
  log-queries-after = "0s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = false
  log-enabled = false
  write-tracing = false
  max-body-size = 0

[logging]
  level = "warn"

[continuous_queries]
  enabled = false
"""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ping(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        self.proc.start()
        try:
            wait_until(lambda: self.ping() or not self.proc.running, 30, "influxd")
        except LocalStackError as exc:
            raise LocalStackError(f"{exc}\n{self.proc.log_tail()}") from exc
        if not self.proc.running:
            raise LocalStackError(f"influxd exited at start:\n{self.proc.log_tail()}")

    def stop(self) -> None:
        self.proc.stop()

    def restart(self) -> None:
        self.stop()
        self.start()


def _group_of(user: str | None) -> int | None:
    return None if user is None else pwd.getpwnam(user).pw_gid


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
                capture_output=True, text=True, check=False, user=self.run_as, group=_group_of(self.run_as),
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
        self.proc.start()
        try:
            wait_until(lambda: self.ready() or not self.proc.running, 30, "postgres")
        except LocalStackError as exc:
            raise LocalStackError(f"{exc}\n{self.proc.log_tail()}") from exc
        if not self.proc.running:
            raise LocalStackError(f"postgres exited at start:\n{self.proc.log_tail()}")

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: it ends open sessions instead of waiting for them.
        self.proc.stop(signal.SIGINT)

    def remove(self) -> None:
        """Stop, and delete the cluster folder made under the system's temporary folder (when run as root)."""
        self.stop()
        if self.run_as is not None:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)


@contextlib.contextmanager
def running(*servers: Mosquitto | InfluxDB | PostgreSQL) -> Iterator[None]:
    """Start the servers, and stop them however the block ends."""
    started: list[Mosquitto | InfluxDB | PostgreSQL] = []
    try:
        for server in servers:
            server.start()
            started.append(server)
        yield
    finally:
        for server in reversed(started):
            server.stop()


def pid_file_stop(pid_file: Path, wait_s: float = 60.0) -> bool:
    """Stop a process recorded in ``pid_file`` by ``make demo`` and wait up to ``wait_s`` for it to end; return
    whether one was running. Waiting lets each stop in turn: serve stores, acknowledges and saves its last work
    while the broker and InfluxDB are still there, and lets go of its state folder before the next start."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    pid_file.unlink(missing_ok=True)
    deadline = time.monotonic() + wait_s
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        print(f"{pid_file.stem} (pid {pid}) is still stopping after {wait_s:.0f} s; it finishes on its own")
    return True


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: an ended process nobody has reaped yet (a zombie) does not."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False
