"""One user of the state folder at a time: ``placesense serve`` holds it while it runs, an erasure while it erases.

The state folder holds what the evaluation process has learned (``routine.pkl``), kept in memory while the
service runs and saved every ten minutes and at stop. So two services sharing a folder would overwrite each
other's learning, and an erasure (``placesense privacy delete-home``) made while a service runs would be written
back at its next save. Each takes the folder's lock first and refuses, saying who has it, when it cannot.

The lock is an advisory ``flock`` on ``serve.lock`` in the folder. The kernel drops it when the last process
holding it ends, however it ends, so a crash leaves no stale lock; serve's evaluation process inherits it, since
it saves last. The file names the holder (pid and what it is), for the messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from placesense.basics.errors import PlacesenseError
from placesense.basics.files import private_dir

LOCK_FILE = "serve.lock"


class StateFolderInUse(PlacesenseError):
    """Another process holds the state folder."""


class StateLock:
    """The state folder, held by this process until ``release`` (or until the process ends).

    ``holder`` says what this process is ("placesense serve"); ``before`` what must wait while another holds the
    folder, for the message ("erasing a home")."""

    def __init__(self, state_dir: Path, holder: str, before: str) -> None:
        self.path = state_dir / LOCK_FILE
        try:
            private_dir(state_dir)  # what the rules learned about each home lives here
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise PlacesenseError(
                f"cannot lock the state folder {state_dir} ({exc.strerror or exc}); run as the user placesense "
                "serve runs as, or set PLACESENSE_STATE_DIR to a folder that user can write"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateFolderInUse(
                f"the state folder {state_dir} is in use by {_holder(self.path)}; stop it, or wait for it to "
                f"finish, before {before}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {holder}\n".encode())
        self._fd: int | None = fd

    def fileno(self) -> int:
        """The descriptor a child process must inherit to hold the lock as long as it runs."""
        if self._fd is None:
            raise ValueError("the state lock was released")
        return self._fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops our hold; a child that inherited the descriptor holds it until it ends
            self._fd = None

    def __enter__(self) -> StateLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid, _, what = path.read_text().strip().partition(" ")
        return f"{what or 'another process'} (pid {int(pid)})"
    return "another placesense process"
