"""The processes of the local servers: start one with its log, wait until it answers, stop it; free ports.

What the three local servers (``mosquitto``, ``influxdb``, ``postgres`` beside this module) share: finding a
Debian package's program, running it as a process of its own session with its output in a log file, polling with
a deadline until it is ready, and stopping it (or one ``make demo`` recorded in a pid file). This module must not
know any server's configuration, and knows nothing about readings or devices.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from placesense.basics.errors import PlacesenseError


class LocalStackError(PlacesenseError):
    """A local server could not be started or did not become ready."""


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts connections on ``port`` on loopback."""
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


def require_binary(name: str, package: str) -> str:
    """The path of the program ``name`` from the Debian package ``package``, or an error that says how to install it."""
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
            user=self.user, group=group_of(self.user), cwd=self.cwd,
        )
        log.close()

    def start_until(self, ready: Callable[[], object], timeout_s: float) -> None:
        """Start, and wait until ``ready()`` is true; raises, with the end of its log, if it exits or never is."""
        self.start()
        try:
            wait_until(lambda: ready() or not self.running, timeout_s, self.name)
        except LocalStackError as exc:
            raise LocalStackError(f"{exc}\n{self.log_tail()}") from exc
        if not self.running:
            raise LocalStackError(f"{self.name} exited at start:\n{self.log_tail()}")

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


def group_of(user: str | None) -> int | None:
    """The primary group of the account ``user`` (a process started as that account runs in it), or None."""
    return None if user is None else pwd.getpwnam(user).pw_gid


class Server(Protocol):
    """A local server that ``running`` starts and stops."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Start the servers, and stop them however the block ends."""
    started: list[Server] = []
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
