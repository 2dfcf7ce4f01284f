"""The evaluation journal: stored readings, in the order they were stored, until the rules' saved state covers them.

Ingest appends each batch here after it is durably stored and *before* it acknowledges the messages to the
broker, so every stored reading is either in the journal or already reflected in the evaluation process's saved
state (``placesense.evaluation_state``). The evaluation process reads batches from here by sequence number; when
it saves its state it says which batch that state includes, and the segments wholly before it are deleted. After
a crash of either process, the batches after the saved state are evaluated again, from the journal, so no stored
reading goes unevaluated and none is applied twice to learned state.

Format: segment files ``<first seq, 20 digits>.jnl`` in the journal folder, each a run of records::

    seq (u64) | readings (u32) | payload length (u32) | crc32 of payload (u32) | payload

big-endian, where the payload is the batch's readings as a JSON array of ``Reading`` field arrays. A record is
written with one ``write`` call; a record cut short by a crash (bad length or checksum) ends its segment and is
dropped when the journal is opened: it was never acknowledged, so the broker delivers it again.

Files are private (0600 in a 0700 folder): the journal holds residents' readings. Segments are fsynced when
they are closed and at most every ``FSYNC_EVERY_S`` while written; a process that is killed loses nothing (the
kernel has the data), a machine that loses power may lose the last second of evaluation, never the readings.

This module keeps bytes in order; it must not decode metrics or evaluate anything.
"""

from __future__ import annotations

import itertools
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import orjson

from devices.readings import Reading

log = logging.getLogger("placesense.journal")

_HEADER = struct.Struct(">QIII")
SEGMENT_BYTES = 32 * 1024 * 1024  # a new segment after this many bytes: deletion frees space in steps this size
FSYNC_EVERY_S = 1.0
TAIL_BATCHES = 8  # batches whose readings a restart may see delivered again (appended, not yet acknowledged)
SEEN_FOR_READINGS = 100_000
SUFFIX = ".jnl"


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One stored batch: its sequence number, how many readings it holds, and their encoded form."""

    seq: int
    count: int
    payload: bytes


_EVALUATED_FIELDS = Reading._fields.index("received_ms") + 1  # ``refused`` values stay with ingest's dead letters


def encode_batch(readings: Sequence[Reading]) -> bytes:
    """The readings as the journal and the evaluation process's channel carry them (what the rules read)."""
    return orjson.dumps([tuple(reading)[:_EVALUATED_FIELDS] for reading in readings])


def decode_batch(payload: bytes) -> list[Reading]:
    return [Reading(*row) for row in orjson.loads(payload)]


class Backlog:
    """The part every journal shares: batch numbering, and the bound on readings appended and not yet evaluated.

    ``_changed`` is where readers wait for the next batch and writers for room; nothing waits or does I/O while
    holding it. Subclasses store the batches (``append_payload``) and read them back (``reader``).
    """

    def __init__(self, max_pending_readings: int | None) -> None:
        self._lock = threading.Lock()  # serialises appends (the batch worker and the API's HTTP push)
        self._changed = threading.Condition(threading.Lock())
        self.max_pending_readings = max_pending_readings
        # Batches appended and not yet evaluated for the first time (seq, readings), oldest first: the bound
        # that makes a slow evaluation process push back on ingest, and through it on the broker.
        self._pending: deque[tuple[int, int]] = deque()
        self.pending_readings = 0
        self.last_seq = 0
        self.bytes = 0
        # (device, event time) of the readings in the last batches appended before this process started. A crash
        # between appending a batch and acknowledging it has the broker deliver those messages again; appended a
        # second time they would be evaluated twice. So they are acknowledged without a second append, until
        # ``SEEN_FOR_READINGS`` new readings have gone by (redeliveries come first after a reconnect).
        self._seen: set[tuple[str, int]] = set()
        self._seen_budget = 0

    def remember_tail(self) -> None:
        """Note the readings of the last ``TAIL_BATCHES`` batches held (at open, and when taking over)."""
        reader = self.reader(max(0, self.last_seq - TAIL_BATCHES))
        try:
            self._seen = {(row[1], row[4]) for record in reader.available() for row in orjson.loads(record.payload)}
        finally:
            reader.close()
        self._seen_budget = SEEN_FOR_READINGS if self._seen else 0

    def continue_after(self, seq: int) -> None:
        """Number the next batch after ``seq`` at least (the saved state's last batch, when the journal is empty
        or behind it): sequence numbers never go back, so a new batch is never taken for one already applied."""
        with self._lock, self._changed:
            if seq > self.last_seq:
                self.last_seq = seq

    def append(self, readings: Sequence[Reading], stopping: threading.Event | None = None,
               timeout_s: float | None = None) -> int | None:
        """Write one batch and return its sequence number.

        Waits first while ``max_pending_readings`` readings are appended and not yet evaluated (a slow or
        restarting evaluation process): the batch worker then holds its acknowledgements and the broker keeps
        the rest. Returns None, writing nothing, when ``stopping`` is set or ``timeout_s`` passes meanwhile.
        """
        if not self._wait_for_room(stopping, timeout_s):
            return None
        if self._seen_budget > 0:
            fresh = [r for r in readings if (r.device_id, r.ts_ms) not in self._seen]
            self._seen_budget -= len(readings)
            if self._seen_budget <= 0:
                self._seen = set()
            if len(fresh) < len(readings):
                log.info("%d readings delivered again after a restart were journalled before it; not twice",
                         len(readings) - len(fresh))
            if not fresh:
                return self.last_seq
            readings = fresh
        payload = encode_batch(readings)
        with self._lock:
            seq = self.last_seq + 1
            self.bytes += self.append_payload(seq, len(readings), payload)
            with self._changed:
                self.last_seq = seq
                self._pending.append((seq, len(readings)))
                self.pending_readings += len(readings)
                self._changed.notify_all()
        return seq

    def append_payload(self, seq: int, count: int, payload: bytes) -> int:
        """Store one encoded batch durably under ``seq``; returns the bytes it took. Called under ``_lock``."""
        raise NotImplementedError

    def reader(self, after_seq: int) -> BatchReader:
        raise NotImplementedError

    def release_through(self, seq: int) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to close by default."""

    def _wait_for_room(self, stopping: threading.Event | None, timeout_s: float | None) -> bool:
        bound = self.max_pending_readings
        if bound is None:
            return True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._changed:
            while self.pending_readings >= bound:
                if stopping is not None and stopping.is_set():
                    return False
                left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def track_from(self, seq: int) -> int:
        """Count the batches after ``seq`` as waiting for evaluation (the saved state covers the rest); called
        once, when the evaluation process first says where its state ends. Returns the readings waiting."""
        reader = self.reader(seq)
        try:
            waiting = [(record.seq, record.count) for record in reader.available()]
        finally:
            reader.close()
        with self._changed:
            self._pending = deque(waiting)
            self.pending_readings = sum(count for _, count in waiting)
            self._changed.notify_all()
        return self.pending_readings

    def wait_until_evaluated(self, timeout_s: float) -> bool:
        """Wait until nothing appended waits for evaluation; False after ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.pending_readings == 0, timeout_s)

    def evaluated(self, seq: int) -> int:
        """Batch ``seq`` was evaluated: it and every batch before it no longer wait. Returns how many readings
        this evaluated for the first time (0 for a batch evaluated again after a restart)."""
        freed = 0
        with self._changed:
            while self._pending and self._pending[0][0] <= seq:
                freed += self._pending.popleft()[1]
            if freed:
                self.pending_readings -= freed
                self._changed.notify_all()
        return freed

    def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until batch ``seq`` has been appended; False after ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(lambda: self.last_seq >= seq, timeout_s)

    def wake_readers(self) -> None:
        with self._changed:
            self._changed.notify_all()


class BatchReader(Protocol):
    """Reads a journal's batches in order, waiting for the next one to be appended."""

    next_seq: int

    def available(self) -> Iterator[JournalRecord]: ...

    def next(self, timeout_s: float) -> JournalRecord | None: ...

    def close(self) -> None: ...


class Journal(Backlog):
    """Append-only, segment-per-range log of stored batches on local disk (one ``placesense serve``)."""

    def __init__(self, directory: Path, max_pending_readings: int | None = None) -> None:
        super().__init__(max_pending_readings)
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self._handle: BinaryIO | None = None
        self._segment_bytes = 0
        self._last_fsync = time.monotonic()
        self.last_seq = self._recover()
        self.bytes = sum(path.stat().st_size for path in self.segments())
        self.remember_tail()

    # -- opening -----------------------------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def _recover(self) -> int:
        """Check every segment and drop a torn tail; returns the last sequence number held (0 when empty)."""
        last = 0
        for path in self.segments():
            valid_end = 0
            seq = None
            with path.open("rb") as handle:
                for record, end in _records(handle):
                    seq = record.seq
                    valid_end = end
            size = path.stat().st_size
            if valid_end < size:
                log.warning("journal segment %s ends with %d bytes of a record cut short; dropping them "
                            "(never acknowledged, so the broker delivers those messages again)",
                            path.name, size - valid_end)
                with path.open("r+b") as handle:
                    handle.truncate(valid_end)
            if seq is None:
                path.unlink()
            else:
                last = seq
        return last

    # -- writing -----------------------------------------------------------------------------------------------

    def append_payload(self, seq: int, count: int, payload: bytes) -> int:
        handle = self._writable(seq)
        # one write per record: a crash leaves a whole record or a torn tail that opening drops
        handle.write(_HEADER.pack(seq, count, len(payload), zlib.crc32(payload)) + payload)
        handle.flush()
        self._segment_bytes += _HEADER.size + len(payload)
        if time.monotonic() - self._last_fsync > FSYNC_EVERY_S:
            os.fsync(handle.fileno())
            self._last_fsync = time.monotonic()
        return _HEADER.size + len(payload)

    def _writable(self, seq: int) -> BinaryIO:
        if self._handle is not None and self._segment_bytes < SEGMENT_BYTES:
            return self._handle
        self._close_segment()
        path = self.directory / f"{seq:020d}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._handle = os.fdopen(fd, "ab")
        self._segment_bytes = 0
        return self._handle

    def _close_segment(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        with self._lock:
            self._close_segment()

    # -- reading -----------------------------------------------------------------------------------------------

    def reader(self, after_seq: int) -> JournalReader:
        """A reader that yields the batches after ``after_seq`` in order, as they are appended."""
        return JournalReader(self, after_seq)

    def release_through(self, seq: int) -> int:
        """Delete the segments whose batches are all at or before ``seq`` (the saved state covers them);
        returns how many bytes were freed. The segment being written is kept."""
        freed = 0
        with self._lock:
            paths = self.segments()
            for path, following in itertools.pairwise(paths):
                if int(following.stem) - 1 > seq:
                    break
                freed += path.stat().st_size
                path.unlink()
            self.bytes -= freed
        return freed


class JournalReader:
    """Reads batches in sequence order, following the writer from segment to segment."""

    def __init__(self, journal: Journal, after_seq: int) -> None:
        self._journal = journal
        self.next_seq = after_seq + 1
        self._handle: BinaryIO | None = None

    def available(self) -> Iterator[JournalRecord]:
        """The batches appended so far that this reader has not yet returned."""
        while self.next_seq <= self._journal.last_seq:
            record = self._read_next()
            if record is None:
                return
            yield record

    def next(self, timeout_s: float) -> JournalRecord | None:
        """The next batch, waiting up to ``timeout_s`` for it to be appended."""
        if not self._journal.wait_for(self.next_seq, timeout_s):
            return None
        return self._read_next()

    def _read_next(self) -> JournalRecord | None:
        for _ in range(3):  # the current segment, then (at its end) the one that holds the next batch
            if self._handle is None and not self._open_segment():
                return None
            assert self._handle is not None
            position = self._handle.tell()
            header = self._handle.read(_HEADER.size)
            if len(header) == _HEADER.size:
                seq, count, length, crc = _HEADER.unpack(header)
                payload = self._handle.read(length)
                if len(payload) == length and zlib.crc32(payload) == crc:
                    if seq < self.next_seq:
                        continue  # before where this reader starts: skip (only while positioning)
                    self.next_seq = seq + 1
                    return JournalRecord(seq, count, payload)
            self._handle.seek(position)
            self._close()
        return None

    def _open_segment(self) -> bool:
        """Open the segment that holds ``next_seq``."""
        candidates = [p for p in self._journal.segments() if int(p.stem) <= self.next_seq]
        if not candidates:
            return False
        path = candidates[-1]
        try:
            self._handle = path.open("rb")
        except FileNotFoundError:  # released meanwhile
            return False
        # skip to the record: records are small next to a segment, so a scan of headers is cheap
        while True:
            position = self._handle.tell()
            header = self._handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                break
            seq, _count, length, _crc = _HEADER.unpack(header)
            if seq >= self.next_seq:
                self._handle.seek(position)
                return True
            self._handle.seek(length, os.SEEK_CUR)
        # the segment ends before next_seq: it is in the next one
        self._close()
        following = [p for p in self._journal.segments() if int(p.stem) == self.next_seq]
        if not following:
            return False
        self._handle = following[0].open("rb")
        return True

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def close(self) -> None:
        self._close()


def erase_subject(directory: Path, subject: str) -> int:
    """Rewrite the journal's segments without the readings of ``subject`` (erasure, with serve stopped);
    returns how many readings were removed. Each segment is replaced atomically."""
    removed = 0
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        kept: list[bytes] = []
        changed = False
        with path.open("rb") as handle:
            for record, _ in _records(handle):
                rows = orjson.loads(record.payload)
                remaining = [row for row in rows if row[2] != subject]
                if len(remaining) != len(rows):
                    changed = True
                    removed += len(rows) - len(remaining)
                payload = orjson.dumps(remaining)
                kept.append(_HEADER.pack(record.seq, len(remaining), len(payload), zlib.crc32(payload)) + payload)
        if changed:
            partial = path.with_name(path.name + ".tmp")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(b"".join(kept))
                out.flush()
                os.fsync(out.fileno())
            partial.replace(path)
    return removed


def _records(handle: BinaryIO) -> Iterator[tuple[JournalRecord, int]]:
    """Whole, checked records of an open segment, with the offset where each ends."""
    while True:
        header = handle.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return
        seq, count, length, crc = _HEADER.unpack(header)
        payload = handle.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        yield JournalRecord(seq, count, payload), handle.tell()
