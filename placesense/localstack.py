"""Local mosquitto and InfluxDB processes for the demo, the tests and the benchmark.

This module only starts, checks and stops the two servers from Debian's packages, with their data in a folder
we choose (``var/`` for the demo, a temporary folder for tests). It knows nothing about readings or devices.
Production deployments point placesense at their own broker and InfluxDB instead.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from placesense.errors import PlacesenseError


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

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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


@dataclass(frozen=True)
class BrokerAuth:
    """Files that turn anonymous access off: a mosquitto password file and an ACL file.

    ``placesense broker-config`` (``placesense.broker``) generates both from the device registry.
    """

    password_file: Path
    acl_file: Path


@dataclass(frozen=True)
class TlsListener:
    """A second, TLS-only listener on loopback with the given CA, server certificate and key (PEM files)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    port: int = 0


@dataclass
class Mosquitto:
    """A mosquitto broker on a loopback port with persistence in ``data_dir``.

    By default it is anonymous and plain, as the tests and the demo have always run it; ``auth`` switches on
    passwords and ACLs, ``tls`` adds a TLS listener (``tls_port``, ``tls_url``) next to the plain one.
    """

    data_dir: Path
    port: int = 0
    extra_config: str = ""
    auth: BrokerAuth | None = None
    tls: TlsListener | None = None
    proc: ManagedProcess = field(init=False)
    tls_port: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.port == 0:
            self.port = free_port()
        if self.tls is not None:
            self.tls_port = self.tls.port or free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        binary = _require_binary("mosquitto", "mosquitto")
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(self.config_text())
        self.proc = ManagedProcess("mosquitto", [binary, "-c", str(conf)], self.data_dir / "mosquitto.log")

    def config_text(self) -> str:
        # Persistent sessions and queues must survive a broker restart, and a consumer that acknowledges
        # after a durable write needs many messages in flight; placesense bounds that itself with MQTT 5's
        # Receive Maximum.
        return "\n".join(
            [
                f"listener {self.port} 127.0.0.1",
                *self._auth_lines(),
                "persistence true",
                f"persistence_location {self.data_dir}/",
                "autosave_interval 5",
                "max_inflight_messages 0",
                "max_queued_messages 2000000",
                "max_queued_bytes 0",
                "persistent_client_expiration 7d",
                f"user {getpass.getuser()}",
                "log_dest stdout",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_timestamp true",
                self.extra_config,
                # Listener-specific options follow their own ``listener`` line, so the TLS one comes last.
                *self._tls_lines(),
                "",
            ]
        )

    def _auth_lines(self) -> list[str]:
        if self.auth is None:
            return ["allow_anonymous true" if "password_file" not in self.extra_config else ""]
        return [
            "allow_anonymous false",
            f"password_file {self.auth.password_file}",
            f"acl_file {self.auth.acl_file}",
        ]

    def _tls_lines(self) -> list[str]:
        if self.tls is None:
            return []
        return [
            f"listener {self.tls_port} 127.0.0.1",
            f"cafile {self.tls.cafile}",
            f"certfile {self.tls.certfile}",
            f"keyfile {self.tls.keyfile}",
            "tls_version tlsv1.2",
        ]

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        """The TLS listener's URL; the server certificate must name 127.0.0.1."""
        if self.tls is None:
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


@contextlib.contextmanager
def running(*servers: Mosquitto | InfluxDB) -> Iterator[None]:
    """Start the servers, and stop them however the block ends."""
    started: list[Mosquitto | InfluxDB] = []
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
