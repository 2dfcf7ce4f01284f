"""Durable storage of line-protocol batches: InfluxDB when it answers, the on-disk spool when it does not.

``store`` returns only once a batch is durable somewhere, which is what lets ingest acknowledge the messages.
Retryable failures (unreachable, timeout, 5xx) switch to the spool at once and a replay loop drains it oldest
first when InfluxDB is back. Permanent failures (a point InfluxDB refuses, e.g. a field type conflict) are
narrowed down by bisection to the refused lines, which become dead letters; the rest of the batch is written.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ingest.metrics import IngestMetrics
from ingest.spool import Spool
from placesense.basics.errors import PermanentStorageError, RetryableStorageError
from placesense.storage.errors import DatabaseNotFound
from placesense.storage.influx import InfluxClient

log = logging.getLogger("placesense.ingest.writer")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line InfluxDB refused for good, with its index in the batch and InfluxDB's reason."""

    index: int
    reason: str


class StorageWriter:
    def __init__(
        self,
        influx: InfluxClient,
        spool: Spool,
        metrics: IngestMetrics,
        *,
        attempts: int = 2,
        backoff_s: float = 0.2,
        create_database: bool = True,
        on_refused: Callable[[list[tuple[str, str]]], None] | None = None,
    ) -> None:
        self.influx = influx
        self.spool = spool
        self.metrics = metrics
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.create_database = create_database
        self._influx_up = True
        self._lock = threading.Lock()
        self._database_ready = False
        # Lines refused during spool replay have no waiting message to dead-letter; this hook stores them.
        self.on_refused = on_refused

    @property
    def influx_up(self) -> bool:
        return self._influx_up

    def _mark(self, up: bool, why: str = "") -> None:
        with self._lock:
            if up == self._influx_up:
                return
            self._influx_up = up
        if up:
            log.info("InfluxDB is accepting writes again; spool drained")
        else:
            log.warning("InfluxDB unavailable (%s); spooling readings to %s", why, self.spool.directory)

    def _prepare(self) -> None:
        if self._database_ready or not self.create_database:
            return
        self.influx.ensure_database()
        self._database_ready = True

    def _write_with_retries(self, body: bytes) -> None:
        for attempt in range(self.attempts):
            try:
                self._prepare()
                self.influx.write(body)
                return
            except RetryableStorageError as exc:
                self.metrics.inc("placesense_influx_write_errors_total", kind="retryable")
                if isinstance(exc, DatabaseNotFound):
                    self._database_ready = False  # dropped since it was created: create it again on the next try
                if attempt + 1 == self.attempts:
                    raise
                # Jitter keeps many ingest processes from hammering a recovering InfluxDB in step.
                time.sleep(self.backoff_s * (2**attempt) * (0.5 + random.random()))

    def store(self, lines: list[str]) -> list[Rejected]:
        """Make ``lines`` durable; return the lines InfluxDB refused for good.

        Raises ``SpoolFullError`` (retryable) if neither InfluxDB nor the spool can take the batch.
        """
        if not lines:
            return []
        body = "\n".join(lines).encode("utf-8")
        if self._influx_up and len(self.spool) == 0:
            try:
                self._write_with_retries(body)
                self.metrics.inc("placesense_readings_written_total", len(lines))
                return []
            except RetryableStorageError as exc:
                self._mark(False, str(exc))
            except PermanentStorageError:
                self.metrics.inc("placesense_influx_write_errors_total", kind="permanent")
                return self._bisect(lines, 0)
        self.spool.append(body)
        self.metrics.inc("placesense_readings_spooled_total", len(lines))
        return []

    def _bisect(self, lines: list[str], offset: int) -> list[Rejected]:
        """Write what InfluxDB takes, return what it refuses. Rewrites are idempotent, so overlap is harmless."""
        try:
            self._write_with_retries("\n".join(lines).encode("utf-8"))
            self.metrics.inc("placesense_readings_written_total", len(lines))
            return []
        except PermanentStorageError as exc:
            if len(lines) == 1:
                return [Rejected(offset, f"InfluxDB refused the reading: {exc}")]
        middle = len(lines) // 2
        return self._bisect(lines[:middle], offset) + self._bisect(lines[middle:], offset + middle)

    def replay_once(self) -> bool:
        """Try to write the oldest spooled segment; return whether the spool made progress."""
        segments = self.spool.segments()
        if not segments:
            if not self._influx_up and self.influx.ping():
                self._mark(True)
            return False
        segment = segments[0]
        try:
            body = self.spool.read(segment)
        except FileNotFoundError:
            return True
        try:
            self._prepare()
            self.influx.write(body)
        except RetryableStorageError as exc:
            # Also how a process that starts with a full spool learns InfluxDB is down: it never tried a direct
            # write, so nothing else would tell it (or /metrics and /healthz) so.
            self._mark(False, str(exc))
            log.debug("spool replay waits: %s", exc)
            return False
        except PermanentStorageError as exc:
            # Only lines we encoded ourselves are spooled; a refusal here means a schema conflict made while
            # we were down. Keep the good lines and dead-letter the refused ones.
            lines = body.decode("utf-8").split("\n")
            refused = self._bisect(lines, 0)
            log.error("spool segment %s: InfluxDB refused %d lines: %s", segment.name, len(refused), exc)
            if self.on_refused is not None:
                self.on_refused([(lines[r.index], r.reason) for r in refused])
        else:
            self.metrics.inc("placesense_readings_written_total", body.count(b"\n") + 1)
        self.spool.remove(segment)
        if len(self.spool) == 0:
            self._mark(True)
        return True
