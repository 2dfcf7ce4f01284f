"""The on-disk spool: batches of line protocol that wait here while InfluxDB cannot take them.

Each batch is one segment file, written to a temporary name, fsynced and renamed, so a segment is either whole or
absent after a crash. Segments are created 0600 in a 0700 folder: they hold residents' readings. Segments are
replayed oldest first and deleted only after InfluxDB accepted them. Writes are idempotent, so a segment replayed
twice (crash between write and delete) doubles nothing.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from placesense.basics.errors import RetryableStorageError
from placesense.basics.files import create_private, private_dir


class SpoolFullError(RetryableStorageError):
    """The spool reached its size limit; ingest stops acknowledging until InfluxDB drains it."""


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        private_dir(self.directory)  # readings wait here: residents' activity, like the database
        self._lock = threading.Lock()
        self._counter = itertools.count()
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink(missing_ok=True)  # a crash mid-write: that batch was never acknowledged
        self._bytes = sum(p.stat().st_size for p in self.segments())

    def segments(self) -> list[Path]:
        """Pending segments, oldest first."""
        return sorted(self.directory.glob("*.lp"))

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self.segments())

    def append(self, body: bytes) -> Path:
        """Durably store one batch; raise ``SpoolFullError`` past the size limit."""
        with self._lock:
            if self._bytes + len(body) > self.max_bytes:
                raise SpoolFullError(
                    f"the spool in {self.directory} is full ({self._bytes / 1e6:.1f} of {self.max_bytes / 1e6:g} MB); "
                    "InfluxDB has been unreachable for long. Free disk or raise PLACESENSE_SPOOL_MAX_MB."
                )
            name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._counter):08d}"
            tmp = self.directory / f"{name}.tmp"
            final = self.directory / f"{name}.lp"
            try:
                with os.fdopen(create_private(tmp), "wb") as handle:
                    handle.write(body)
                    handle.flush()
                    os.fsync(handle.fileno())
                tmp.rename(final)
                _fsync_dir(self.directory)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise SpoolFullError(f"cannot write to the spool in {self.directory}: {exc.strerror}") from exc
            self._bytes += len(body)
            return final

    def read(self, segment: Path) -> bytes:
        return segment.read_bytes()

    def remove(self, segment: Path) -> None:
        with self._lock:
            try:
                size = segment.stat().st_size
            except FileNotFoundError:
                return
            segment.unlink()
            self._bytes = max(0, self._bytes - size)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
